//! Keyed stages: the processing core of one key partition ([`PartitionCore`]), and the later
//! stages of a chained pipeline, which re-key the results of the stage before.
//!
//! # Chaining and the exchange
//!
//! A pipeline's first keyed stage gets its records from the source. A later stage gets the
//! results of the stage before, re-keyed: every partition of the earlier stage routes its
//! results to the partitions of the later one as it emits them, and sends them at the end of
//! each epoch (one exchange batch per partition pair and epoch, never one message per record;
//! a restored partition drops what it had routed since its checkpoint, and its replay routes it
//! again), and each partition of the later stage processes the epoch once it has the batch of
//! every upstream partition, in upstream partition order. So the epoch stays the unit of
//! exactly-once: it commits when every stage has finished it, and a replayed epoch produces the
//! same batches at every stage.
//!
//! ```text
//!   stage 1 (keyed by user)           stage 2 (keyed by segment, country)
//!   partition 0 ──┬─ epoch e, 0→0 ──▶ partition 0   waits for 0→0 and 1→0, then processes
//!                 └─ epoch e, 0→1 ─┐                 them in that order
//!   partition 1 ──┬─ epoch e, 1→0 ─┼▶
//!                 └─ epoch e, 1→1 ─┴▶ partition 1
//! ```
//!
//! # Time across the exchange
//!
//! Each record crosses with the watermark its upstream partition had when it emitted it (before
//! the record or watermark step that emitted it), and each batch with the upstream partition's
//! watermark after the epoch. The later stage keeps one watermark per upstream partition
//! ([`PartitionCore::with_channels`]): a record is late only behind the watermark it was
//! emitted under, and timers fire on the smallest channel watermark. A window result emitted
//! when the watermark passed its end, with the window's last instant as its time, is therefore
//! never late downstream; and which records a later window counts depends only on what each
//! upstream partition emitted, never on how the exchange interleaved the partitions or where
//! the epochs were cut.
//!
//! # Recovery
//!
//! Every exchange batch to another partition is also appended to its sender's outbox, a file
//! of its own beside the state store (`runtime::outbox`), durable by the time the sender's
//! checkpoint of its epoch is, and deleted once every partition's checkpoint has passed its
//! epoch. A partition restored from an older checkpoint than its peers therefore finds the
//! batches they will not send again in their outboxes; the batches a replay sends twice are
//! dropped by epoch.

mod core;
mod keyed;
mod late;
mod mapped;

pub use self::core::{BatchStats, Change, CoreCounts, PartitionCore, StoredBucket};
pub use keyed::KeyedStage;
pub use late::write_late_lines;
pub use mapped::MappedStage;

use crate::checkpoint::Epoch;
use crate::learning::{Learned, ModelHistory};
use crate::state::{PartitionStore, PreparedCheckpoint, SliceLog};
use crate::time::{format_millis, Millis, TimeRules, TtlClock};
use crate::Result;
use std::any::Any;
use std::fmt::Write;
use std::sync::Arc;

/// One exchange batch, typed by the stage that reads it (see [`StageRunner::route`]).
pub type Exchanged = Box<dyn Any + Send>;

/// One epoch's exchange batches of an upstream partition (see [`StageRunner::take_routed`]).
pub struct Routed {
    /// One batch per partition of the later stage, in partition order.
    pub batches: Vec<Exchanged>,
    /// The records they hold in all.
    pub records: usize,
}

/// Takes a stage's results, each with a writer of its record key.
pub type EachResult<'a, Out> = dyn FnMut(&dyn Fn(&mut Vec<u8>), Out) + 'a;

/// A later keyed stage of a pipeline, as the pipeline declares it: `In` is what the stage
/// before emits, `Out` the results this stage's chain ends in.
pub trait LaterStage<In, Out>: Send + Sync {
    /// The stage's part in one key partition (`partition` of `partitions`).
    fn start(&self, partition: u32, partitions: u32) -> Box<dyn StageRunner<In, Out>>;

    /// Appends the stage to a `spate describe` text as stage `number`.
    fn describe(&self, number: usize, text: &mut String);

    /// The stage's time rules, which a run's `--allowed-lateness` and `--output-mode` set.
    fn rules(&self) -> TimeRules;

    /// The same stage with other time rules.
    fn with_rules(&self, rules: TimeRules) -> Box<dyn LaterStage<In, Out>>;

    /// The stage's operator's own metrics.
    fn metrics(&self) -> Vec<crate::operator::MetricDecl>;
}

/// A later stage's state and processing in one key partition, driven by the partition actor
/// (see the module doc for the order of calls).
pub trait StageRunner<In, Out>: Send {
    /// Routes results of the stage before (each with the watermark it was emitted under) into
    /// the epoch's exchange batches, one per partition of this stage, as the stage before
    /// emits them: after each of its batches, and as its timers fire.
    fn route(&mut self, results: &mut dyn Iterator<Item = (In, Millis)>);

    /// Takes the epoch's exchange batches (one per partition of this stage, even empty), each
    /// carrying `watermark`, the upstream partition's after the epoch.
    fn take_routed(&mut self, watermark: Millis) -> Routed;

    /// An exchange batch as its inbox stores it.
    fn encode(&self, batch: &Exchanged) -> Vec<u8>;

    /// An exchange batch read back from the inbox.
    fn decode(&self, bytes: &[u8]) -> std::result::Result<Exchanged, String>;

    /// Runs the operator on upstream partition `from`'s batch (operator code: may panic).
    fn process(&mut self, from: usize, batch: Exchanged);

    /// Ends the epoch with the shared model's versions of its seal, if the pipeline has one
    /// (see [`PartitionCore::install_model`] and [`PartitionCore::advance`]; may panic).
    fn advance(
        &mut self,
        watermark: Millis,
        processing_time: Millis,
        model: Option<&Arc<ModelHistory>>,
    );

    /// Hands each result emitted since the last call to `each`, with a writer of its record
    /// key.
    fn take_results(&mut self, each: &mut EachResult<'_, Out>);

    /// Appends the late records since the last call to `out` as JSON lines; returns how many.
    fn take_late(&mut self, partition: u32, out: &mut Vec<u8>) -> Result<u64>;

    /// Encodes the state changed since the last checkpoint, as of `epoch`.
    fn prepare_checkpoint(&mut self, epoch: Epoch) -> PreparedCheckpoint;

    /// Like [`StageRunner::prepare_checkpoint`], the changed buckets appended to `log`
    /// instead (see [`PartitionStore::prepare_logged`]).
    fn prepare_logged(&mut self, epoch: Epoch, log: &mut SliceLog) -> Result<PreparedCheckpoint>;

    /// Replaces the stage's state with its checkpoint in `store` (its stage view), its
    /// buckets read from `log` when the stage keeps them in one; returns the checkpoint's
    /// epoch.
    fn restore(&mut self, store: &PartitionStore, log: Option<&SliceLog>) -> Result<Epoch>;

    /// Keys holding state.
    fn key_count(&self) -> usize;

    /// The stage's watermark: the smallest of its upstream partitions'.
    fn watermark(&self) -> Millis;

    /// The upstream partitions whose watermark has not reached the end of time: those whose
    /// last batch the stage still waits for.
    fn unended_upstream(&self) -> Vec<u32>;

    /// What the stage's operator counted since the last call.
    fn take_counters(&mut self) -> crate::operator::Counters;

    /// The examples the stage's operator taught the shared model since the last call.
    fn take_learned(&mut self) -> Vec<Learned>;
}

/// Appends keyed stage `number` (key type, operator, lateness, TTL) to a `spate describe` text.
pub fn describe_keyed(
    text: &mut String,
    number: usize,
    key: &str,
    operator: &str,
    rules: &TimeRules,
) {
    let key = crate::pipeline::short_type_name(key);
    let _ = writeln!(text, "stage {number}: keyed by {key}: {operator}");
    let _ = writeln!(
        text,
        "  records later than {} behind the watermark go to the late output",
        format_millis(rules.allowed_lateness)
    );
    if let Some(ttl) = rules.ttl {
        let clock = match ttl.clock {
            TtlClock::EventTime => "event",
            TtlClock::ProcessingTime => "processing",
        };
        let _ = writeln!(
            text,
            "  a key's state expires after {} of {clock} time without a record",
            format_millis(ttl.ttl)
        );
    }
}
