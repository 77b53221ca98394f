//! The registry: the pipelines an application ships, looked up by name by `spate run` and
//! listed by `spate list`. It lives beside the command line that runs them, so
//! [`crate::pipeline`] only describes jobs.

use crate::operator::KeyedOperator;
use crate::pipeline::Job;
use crate::runtime::{JobReport, RunConfig};
use crate::Result;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;

/// A pipeline with its types erased: what the command line can run.
pub trait Runnable: Send + Sync {
    /// The name `spate run` takes.
    fn name(&self) -> &str;
    /// One line on what it computes.
    fn description(&self) -> &str;
    /// Its inputs' names, in order (`--source NAME=URI` gives each its source).
    fn inputs(&self) -> Vec<String>;
    /// Whether `--source gen` works for it.
    fn has_generator(&self) -> bool;
    /// How far its watermark trails the newest event time, in milliseconds.
    fn watermark_delay(&self) -> crate::time::Millis;
    /// Its topology in words (`spate describe`).
    fn describe(&self) -> String;
    /// Runs the pipeline until its input ends or it is asked to stop.
    fn run(&self, config: &RunConfig) -> Result<JobReport>;
}

impl<R, Op, Out> Runnable for Job<R, Op, Out>
where
    R: DeserializeOwned + Send + 'static,
    Op: KeyedOperator,
    Out: Serialize + Send + 'static,
{
    fn name(&self) -> &str {
        &self.plan.name
    }

    fn description(&self) -> &str {
        &self.plan.description
    }

    fn inputs(&self) -> Vec<String> {
        self.plan.inputs.iter().map(|i| i.name.clone()).collect()
    }

    fn has_generator(&self) -> bool {
        self.plan.generator.is_some()
    }

    fn watermark_delay(&self) -> crate::time::Millis {
        self.plan.rules.watermark_delay
    }

    fn describe(&self) -> String {
        self.plan.describe()
    }

    fn run(&self, config: &RunConfig) -> Result<JobReport> {
        crate::runtime::run(self.plan.clone(), config)
    }
}

/// The pipelines an application offers, by name.
#[derive(Default, Clone)]
pub struct Registry {
    pipelines: Vec<Arc<dyn Runnable>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a pipeline.
    ///
    /// # Panics
    /// When a pipeline with the same name is already registered.
    pub fn register(&mut self, pipeline: impl Runnable + 'static) -> &mut Self {
        assert!(
            self.get(pipeline.name()).is_none(),
            "pipeline `{}` registered twice",
            pipeline.name()
        );
        self.pipelines.push(Arc::new(pipeline));
        self
    }

    /// The pipeline called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Runnable>> {
        self.pipelines.iter().find(|p| p.name() == name).cloned()
    }

    /// All pipelines, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Runnable>> {
        self.pipelines.iter()
    }
}
