//! Pipelines written in Rust: a typed builder (`input`, `filter`, `map`, `event_time`,
//! `key_by`, `window`, `session_window`, `aggregate`, `process`, and the joins `join_table`,
//! `interval_join`, `window_join`) that yields a [`Job`]: a [`Plan`] the runtime runs. A job's
//! results can be mapped (`map`, `flat_map`), given an event time and keyed again
//! (`event_time(..).key_by(..)`) to run a second keyed stage (see [`crate::stage`]). The
//! command line's [`Registry`](crate::cli::Registry) names the jobs an application ships.

mod builder;
mod describe;
mod join;
mod rekey;

pub use builder::{
    Job, KeyedPipeline, KeyedStream, Pipeline, SessionPipeline, WindowedPipeline, DEFAULT_OUTPUT,
};
pub use describe::short_type_name;
pub use join::JoinJob;
pub use rekey::{RekeyedPipeline, TimedResults};

use crate::io::source::{
    EventGenerator, GenOptions, LineDecoder, OpenContext, SourceReader, SourceSpec,
};
use crate::operator::KeyedOperator;
use crate::stage::LaterStage;
use crate::time::{Millis, TimeRules};
use std::sync::Arc;

/// Turns a decoded input record into the pipeline's event, or drops it (filter).
pub type TransformFn<R, E> = Arc<dyn Fn(R) -> Option<E> + Send + Sync>;
/// Extracts a record's key.
pub type KeyFn<E, K> = Arc<dyn Fn(&E) -> K + Send + Sync>;
/// Extracts a record's event time.
pub type TimeFn<E> = Arc<dyn Fn(&E) -> Millis + Send + Sync>;
/// Tells which of a pipeline's inputs a record came from (an index in declaration order).
pub type InputFn<E> = Arc<dyn Fn(&E) -> usize + Send + Sync>;
/// Maps an operator output to results (none, one or several), handing each to the callback.
pub type OutputFn<O, Out> = Arc<dyn Fn(O, &mut dyn FnMut(Out)) + Send + Sync>;
/// Opens the reader of a pipeline with several inputs, given each input's source in order.
pub type OpenInputsFn<R> = Arc<
    dyn Fn(&[SourceSpec], &OpenContext) -> crate::Result<Box<dyn SourceReader<R>>> + Send + Sync,
>;
/// Picks the output a result goes to (an index into the plan's outputs).
pub type RouteFn<Out> = Arc<dyn Fn(&Out) -> usize + Send + Sync>;
/// Builds the pipeline's built-in generator for the `gen` source.
pub type GeneratorFn<R> = Arc<dyn Fn(&GenOptions) -> Box<dyn EventGenerator<R>> + Send + Sync>;

/// What becomes of a job's first keyed stage's outputs.
pub enum Emit<O, Out> {
    /// They are mapped to the job's results.
    Results(OutputFn<O, Out>),
    /// They feed a later keyed stage, whose results are the job's.
    Stage(Arc<dyn LaterStage<O, Out>>),
}

impl<O, Out> Clone for Emit<O, Out> {
    fn clone(&self) -> Self {
        match self {
            Emit::Results(f) => Emit::Results(f.clone()),
            Emit::Stage(s) => Emit::Stage(s.clone()),
        }
    }
}

/// One input of a pipeline, as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputDecl {
    /// Its name, as `--source NAME=URI` gives its source.
    pub name: String,
    /// How far its watermark trails its newest event time.
    pub watermark_delay: Millis,
    /// The Rust type its records decode into.
    pub record_type: &'static str,
}

/// Everything the runtime needs to run one pipeline, fully typed: `R` is what the source
/// decodes, `Op` the keyed operator, `Out` the result type.
pub struct Plan<R, Op: KeyedOperator, Out> {
    /// The pipeline's name.
    pub name: String,
    /// One line on what it computes.
    pub description: String,
    /// Source record → event (map and filter steps).
    pub transform: TransformFn<R, Op::Event>,
    /// Event time of an event.
    pub event_time: TimeFn<Op::Event>,
    /// Watermark delay, allowed lateness, output mode and state TTL (of the first stage; a
    /// later stage has its own).
    pub rules: TimeRules,
    /// Whether the stage whose outputs are the results can write updates (`--output-mode
    /// update`): windows can.
    pub supports_update: bool,
    /// Key of an event.
    pub key: KeyFn<Op::Event, Op::Key>,
    /// The keyed operator.
    pub operator: Arc<Op>,
    /// Operator output → results, or the later stage that takes them.
    pub output: Emit<Op::Output, Out>,
    /// The built-in generator, when the pipeline has one.
    pub generator: Option<GeneratorFn<R>>,
    /// What decodes a line of its file or stdin input, when not serde_json.
    pub decode: Option<LineDecoder<R>>,
    /// The pipeline's inputs, in order: one, or two for a join.
    pub inputs: Vec<InputDecl>,
    /// Which input an event came from (pipelines with several inputs).
    pub input_of: Option<InputFn<Op::Event>>,
    /// Opens the reader over all inputs (pipelines with several inputs).
    pub open_inputs: Option<OpenInputsFn<R>>,
    /// The names of the pipeline's outputs (`--sink NAME=URI`), the first taking late
    /// records and dead letters too.
    pub outputs: Vec<String>,
    /// Which output a result goes to, when there are several.
    pub route: Option<RouteFn<Out>>,
    /// The model the pipeline's partitions share, if it has one.
    pub model: Option<Arc<crate::learning::ModelSpec>>,
}

impl<R, Op: KeyedOperator, Out> Clone for Plan<R, Op, Out> {
    fn clone(&self) -> Self {
        Plan {
            name: self.name.clone(),
            description: self.description.clone(),
            transform: self.transform.clone(),
            event_time: self.event_time.clone(),
            rules: self.rules,
            supports_update: self.supports_update,
            key: self.key.clone(),
            operator: self.operator.clone(),
            output: self.output.clone(),
            generator: self.generator.clone(),
            decode: self.decode,
            inputs: self.inputs.clone(),
            input_of: self.input_of.clone(),
            open_inputs: self.open_inputs.clone(),
            outputs: self.outputs.clone(),
            route: self.route.clone(),
            model: self.model.clone(),
        }
    }
}

impl<R, Op: KeyedOperator, Out> Plan<R, Op, Out> {
    /// The same plan with another fate for the first stage's outputs (and no split).
    pub(crate) fn with_output<Out2>(self, output: Emit<Op::Output, Out2>) -> Plan<R, Op, Out2> {
        Plan {
            name: self.name,
            description: self.description,
            transform: self.transform,
            event_time: self.event_time,
            rules: self.rules,
            supports_update: self.supports_update,
            key: self.key,
            operator: self.operator,
            output,
            generator: self.generator,
            decode: self.decode,
            inputs: self.inputs,
            input_of: self.input_of,
            open_inputs: self.open_inputs,
            outputs: self.outputs,
            route: None,
            model: self.model,
        }
    }

    /// The metrics every stage's operator declares.
    pub fn operator_metrics(&self) -> Vec<crate::operator::MetricDecl> {
        let mut decls = self.operator.metrics();
        if let Some(stage) = self.later_stage() {
            decls.extend(stage.metrics());
        }
        decls
    }

    /// The later stage, when the pipeline re-keys its first stage's results.
    pub fn later_stage(&self) -> Option<&Arc<dyn LaterStage<Op::Output, Out>>> {
        match &self.output {
            Emit::Stage(stage) => Some(stage),
            Emit::Results(_) => None,
        }
    }
}
