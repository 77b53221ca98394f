//! The registry: the pipelines an application ships, looked up by name by `spate run` and
//! listed by `spate list`. It lives beside the command line that runs them, so
//! [`crate::pipeline`] only describes jobs.

use super::params::{ParamDecl, Params};
use crate::operator::KeyedOperator;
use crate::pipeline::Job;
use crate::runtime::{JobReport, RunConfig};
use crate::state::{Erasure, KeyReport, PartitionSummary, StateStore};
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

    /// Writes the state of every key of a stopped job's `store` (`partitions` partitions) as
    /// JSON lines `{"key","state"}`; returns how many keys.
    fn export_state(
        &self,
        store: &crate::state::StateStore,
        partitions: u32,
        out: &mut dyn std::io::Write,
    ) -> Result<u64>;

    /// What each key partition of a stopped job's `store` holds (`spate state inspect`).
    fn inspect_state(&self, store: &StateStore, partitions: u32) -> Result<Vec<PartitionSummary>>;

    /// One key's state in a stopped job's `store` (`spate state get`; `key` as JSON or the
    /// bare text of a string key).
    fn key_state(
        &self,
        store: &StateStore,
        partitions: u32,
        key: &str,
    ) -> Result<Option<KeyReport>>;

    /// Removes one key's state from a stopped job's `store` (`spate state erase`).
    fn erase_key(&self, store: &StateStore, partitions: u32, key: &str) -> Result<Option<Erasure>>;
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

    fn export_state(
        &self,
        store: &crate::state::StateStore,
        partitions: u32,
        out: &mut dyn std::io::Write,
    ) -> Result<u64> {
        match &self.plan.model {
            Some(spec) => crate::learning::export_model(spec, store, out).map(|_| 1),
            None => crate::runtime::export_keyed::<Op>(store, partitions, out),
        }
    }

    fn inspect_state(&self, store: &StateStore, partitions: u32) -> Result<Vec<PartitionSummary>> {
        crate::state::summarize::<Op::Key, Op::State>(store, partitions)
    }

    fn key_state(
        &self,
        store: &StateStore,
        partitions: u32,
        key: &str,
    ) -> Result<Option<KeyReport>> {
        crate::state::find_key::<Op::Key, Op::State>(store, partitions, key)
    }

    fn erase_key(&self, store: &StateStore, partitions: u32, key: &str) -> Result<Option<Erasure>> {
        crate::state::erase_key::<Op::Key, Op::State>(store, partitions, key)
    }
}

/// Builds a pipeline from its parameters.
pub type BuildFn = Arc<dyn Fn(&Params) -> Result<Arc<dyn Runnable>> + Send + Sync>;

/// A registered pipeline: as built with its defaults, and how to build it with others.
#[derive(Clone)]
struct Entry {
    pipeline: Arc<dyn Runnable>,
    params: Vec<ParamDecl>,
    build: Option<BuildFn>,
}

/// The pipelines an application offers, by name.
#[derive(Default, Clone)]
pub struct Registry {
    pipelines: Vec<Entry>,
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
        self.add(Entry {
            pipeline: Arc::new(pipeline),
            params: Vec::new(),
            build: None,
        })
    }

    /// Adds a pipeline that takes `params` (`--param NAME=VALUE`), built by `build`.
    ///
    /// # Panics
    /// When a pipeline with the same name is already registered, or `build` refuses the
    /// defaults.
    pub fn register_with_params<P: Runnable + 'static>(
        &mut self,
        params: Vec<ParamDecl>,
        build: impl Fn(&Params) -> Result<P> + Send + Sync + 'static,
    ) -> &mut Self {
        let build: BuildFn = Arc::new(move |p| Ok(Arc::new(build(p)?) as Arc<dyn Runnable>));
        let defaults = Params::defaults(&params);
        let pipeline = build(&defaults).expect("a pipeline builds with its parameters' defaults");
        self.add(Entry {
            pipeline,
            params,
            build: Some(build),
        })
    }

    fn add(&mut self, entry: Entry) -> &mut Self {
        let name = entry.pipeline.name().to_string();
        assert!(
            self.get(&name).is_none(),
            "pipeline `{name}` registered twice"
        );
        self.pipelines.push(entry);
        self
    }

    /// The pipeline called `name`, with its parameters' defaults.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Runnable>> {
        self.entry(name).map(|e| e.pipeline.clone())
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        self.pipelines.iter().find(|e| e.pipeline.name() == name)
    }

    /// The parameters pipeline `name` takes.
    pub fn params(&self, name: &str) -> &[ParamDecl] {
        self.entry(name).map_or(&[], |e| &e.params)
    }

    /// The pipeline called `name` built with `--param` texts `NAME=VALUE` (`None`: no such
    /// pipeline).
    pub fn build(&self, name: &str, texts: &[String]) -> Option<Result<Arc<dyn Runnable>>> {
        let entry = self.entry(name)?;
        let params = match Params::parse(name, &entry.params, texts) {
            Ok(params) => params,
            Err(e) => return Some(Err(e)),
        };
        Some(match &entry.build {
            Some(build) => build(&params),
            None => Ok(entry.pipeline.clone()),
        })
    }

    /// All pipelines (with their defaults), in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Runnable>> {
        self.pipelines.iter().map(|e| &e.pipeline)
    }
}
