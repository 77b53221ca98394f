//! A model shared by a whole pipeline, learned once per event-time micro-batch: every key
//! partition scores with it, every partition teaches it, and what it scores depends only on the
//! input.
//!
//! # Usage
//!
//! A pipeline declares its model with [`Job::shared_model`](crate::pipeline::Job::shared_model):
//! an initial value of a type implementing [`SharedModel`] and the length of a micro-batch in
//! event time. Its operators then
//!
//! - **learn** with [`KeyedContext::learn`](crate::operator::KeyedContext::learn): an example
//!   and its event time (when its outcome became known), from any partition and stage;
//! - **score** with [`KeyedContext::model`](crate::operator::KeyedContext::model): the model
//!   for the callback's time, or `None` while that model is not known yet. The way to wait for
//!   it is a [`TimeDomain::Model`](crate::operator::TimeDomain::Model) timer at the record's
//!   time: it fires at the end of the first epoch in which the model for that time is known.
//!
//! # Guarantees
//!
//! - **The model for time `t`** is the initial model after learning, in order, every
//!   micro-batch that ends at or before `t`'s micro-batch starts: every example with a time
//!   before `floor(t / batch) · batch`, and no other. Its version is the number of non-empty
//!   micro-batches it learned. Which examples exist depends only on the input (an example is
//!   learned unless the record that made it was late), so a record's score depends only on the
//!   input, never on epochs, workers, restarts or the machine; and no record is scored by a
//!   model that learned from an example made after its micro-batch began.
//! - **One update per micro-batch.** A micro-batch's examples from every partition are put in
//!   one order (by time, then by their encoding, so neither partitioning nor arrival decides it)
//!   and learned with one [`SharedModel::learn`] call.
//! - **Models are state.** The supervisor learns a micro-batch once the job's watermark has
//!   passed its end (no example of it can come any more: its record would be late), at the
//!   commit of the epoch that passed it, and stores the new version, the examples still
//!   waiting for their micro-batch, and the epoch they include in the state directory in one
//!   atomic, fsynced write before the epoch commits. Every epoch's record names the newest
//!   version it was sealed with, so a replayed epoch scores with exactly the models it scored
//!   with before; a restarted job goes on with the model an uninterrupted run would have.
//!   Versions older than the one a record after the oldest partition checkpoint could be
//!   scored with are forgotten as checkpoints move on (a replay never reaches back past them).
//! - **The end of a bounded input** is cut as a closing epoch, at whose commit every micro-batch
//!   left is learned, then an empty final epoch, sealed with those versions, so nothing waits
//!   unscored.
//! - **One process.** The model lives in `--state` only: a pipeline with a shared model has no
//!   Kafka changelog and refuses `--group` (its partitions cannot learn together across
//!   processes yet).
//!
//! # Where things live
//!
//! Here: the [`SharedModel`] trait and its type-erased [`ModelSpec`]; `history` holds the
//! versions a seal hands the partitions ([`ModelHistory`]); `ledger` the supervisor's side
//! (examples waiting, versions, persistence, in `crate::state`'s tree `model`); `file` the
//! model as JSON (`spate model export`, `--model FILE`).

mod file;
mod history;
mod ledger;

pub use file::{export_model, read_model_file};
pub use history::{ModelHistory, ModelMark, ModelRef, ModelVersion};
pub(crate) use ledger::ModelLedger;
pub use ledger::ModelReport;

use crate::time::Millis;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::any::Any;
use std::sync::Arc;

/// A model the whole pipeline shares (see the module doc): it learns a micro-batch of examples
/// at a time and is stored as bincode.
pub trait SharedModel: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// One training example, as operators hand it to
    /// [`KeyedContext::learn`](crate::operator::KeyedContext::learn).
    type Example: Serialize + DeserializeOwned;

    /// Learns one micro-batch's examples, in the order given; an error stops the job, naming
    /// the model.
    fn learn(&mut self, examples: &[Self::Example]) -> Result<(), String>;
}

/// A decoded model version, as partitions read it.
pub type Decoded = Arc<dyn Any + Send + Sync>;

type LearnFn = dyn Fn(&[u8], &[&[u8]]) -> Result<Vec<u8>, String> + Send + Sync;
type DecodeFn = dyn Fn(&[u8]) -> Result<Decoded, String> + Send + Sync;
type JsonFn = dyn Fn(&[u8]) -> Result<serde_json::Value, String> + Send + Sync;
type FromJsonFn = dyn Fn(serde_json::Value) -> Result<Vec<u8>, String> + Send + Sync;

/// A pipeline's shared model, without its type: what the runtime needs to learn, store and
/// hand out versions of it.
#[derive(Clone)]
pub struct ModelSpec {
    /// The model's type (`spate describe`).
    pub type_name: &'static str,
    /// The length of a micro-batch, in event time.
    pub batch: Millis,
    /// The initial model, encoded.
    pub initial: Vec<u8>,
    learn: Arc<LearnFn>,
    decode: Arc<DecodeFn>,
    to_json: Arc<JsonFn>,
    from_json: Arc<FromJsonFn>,
}

impl ModelSpec {
    /// The spec of a model of type `M` starting as `initial`, learning micro-batches of
    /// `batch` milliseconds of event time.
    pub fn of<M: SharedModel>(initial: &M, batch: Millis) -> Self {
        let decode_m = |bytes: &[u8]| -> Result<M, String> {
            bincode::deserialize(bytes).map_err(|e| format!("cannot decode the model: {e}"))
        };
        ModelSpec {
            type_name: std::any::type_name::<M>(),
            batch: batch.max(1),
            initial: bincode::serialize(initial).expect("bincode encodes in-memory values"),
            learn: Arc::new(move |model, examples| {
                let mut model = decode_m(model)?;
                let examples = (examples.iter())
                    .map(|e| bincode::deserialize::<M::Example>(e))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("cannot decode an example: {e}"))?;
                model.learn(&examples)?;
                Ok(bincode::serialize(&model).expect("bincode encodes in-memory values"))
            }),
            decode: Arc::new(move |bytes| Ok(Arc::new(decode_m(bytes)?) as Decoded)),
            to_json: Arc::new(move |bytes| {
                serde_json::to_value(decode_m(bytes)?).map_err(|e| e.to_string())
            }),
            from_json: Arc::new(|json| {
                let model: M = serde_json::from_value(json).map_err(|e| e.to_string())?;
                Ok(bincode::serialize(&model).expect("bincode encodes in-memory values"))
            }),
        }
    }

    /// The model `model` (encoded) after learning `examples` (encoded, in order), encoded.
    pub fn learn(&self, model: &[u8], examples: &[&[u8]]) -> Result<Vec<u8>, String> {
        (self.learn)(model, examples)
    }

    /// An encoded model, decoded for partitions to read.
    pub fn decode(&self, bytes: &[u8]) -> Result<Decoded, String> {
        (self.decode)(bytes)
    }

    /// An encoded model as JSON (`spate model export`).
    pub fn to_json(&self, bytes: &[u8]) -> Result<serde_json::Value, String> {
        (self.to_json)(bytes)
    }

    /// A model given as JSON (`spate run --model FILE`), encoded.
    pub fn from_json(&self, json: serde_json::Value) -> Result<Vec<u8>, String> {
        (self.from_json)(json)
    }

    /// The start of the micro-batch `time` falls in.
    pub fn batch_start(&self, time: Millis) -> Millis {
        batch_start(time, self.batch)
    }
}

/// The start of the micro-batch of length `batch` that `time` falls in.
pub fn batch_start(time: Millis, batch: Millis) -> Millis {
    time.div_euclid(batch).saturating_mul(batch)
}

/// An example an operator learned, encoded, with its time.
pub type Learned = (Millis, Vec<u8>);

/// A partition's side of the shared model: the versions its last seal handed it, and the
/// examples its operators learned since its last report.
#[derive(Default)]
pub(crate) struct PartitionModel {
    /// The versions of the last seal (none before the first, or without a shared model).
    pub(crate) history: Option<Arc<ModelHistory>>,
    /// Examples learned since the last report.
    pub(crate) learned: Vec<Learned>,
}
