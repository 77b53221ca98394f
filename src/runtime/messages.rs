//! Messages between the source thread, the key-partition actors and the job supervisor: the
//! epoch protocol.
//!
//! # One epoch
//!
//! ```text
//! source ── Batch(e, first, records) ─────────────▶ partition   (any number, in input order)
//! source ── EpochCut(e, end offsets, sent) ───────▶ supervisor
//! supervisor ── InputEnded(e, sent) ────────────────▶ partition   ─▶ Progress::Ready / Behind / Done
//! supervisor: records e (input range, watermark, processing time, erasures), fsynced
//! supervisor ── SealEpoch(e, watermark, checkpoint?) ▶ partition   erases keys, fires what the epoch
//!                                                                end reaches, stages outputs,
//!                                                                prepares checkpoint
//! partition ── PartitionEvent::Staged(e) ─────────▶ supervisor  (every partition: commit e)
//! supervisor ── Committed(e) ─────────────────────▶ partition   writes checkpoints up to e
//! ```
//!
//! # Guarantees
//!
//! - **Replayable.** An epoch's record is durable before any partition finishes it, and a
//!   partition's results depend only on its records in order (its own watermark moves record
//!   by record; `SealEpoch` carries only what the epoch end adds: idleness, the end of input,
//!   processing time, erasures). So a replay of epoch `e` from the same offsets produces the same bytes.
//! - **Counted.** `Batch::first` and `InputEnded::sent` count records per partition per epoch: a
//!   partition processes each record of an epoch once, skips what a replay sends again, and
//!   answers `Behind` when it restarted and lost records, which makes the supervisor rewind the
//!   source to the partition's checkpoint.
//! - **Ordered commits.** Epochs commit in order, once every partition staged its share, and a
//!   checkpoint is written only for a committed epoch, so it never gets ahead of the visible
//!   output.

use crate::checkpoint::{Epoch, SourcePosition};
use crate::io::kafka::repartition::ExchangeRecord;
use crate::io::sink::Staged;
use crate::io::DeadLetter;
use crate::learning::{Learned, ModelHistory};
use crate::time::Millis;
use actix::Message;
use std::sync::Arc;

/// Records of one epoch for one partition: the `first`-th to `first + events.len()`-th record
/// routed to this partition in this epoch. The index lets a partition skip what it already
/// processed when the source replays.
pub struct Batch<K, E> {
    /// The epoch the records belong to.
    pub epoch: Epoch,
    /// Index of the first record within this partition's share of the epoch.
    pub first: u64,
    /// The records with their keys (computed once, by the source, to route them), in source
    /// order.
    pub events: Vec<(K, E)>,
    /// Index of the first dead letter within this partition's dead letters of the epoch.
    pub dead_first: u64,
    /// Malformed records of this partition's input (partitioned sources): the partition stages
    /// them with its outputs, so they travel with its checkpoint.
    pub dead: Vec<DeadLetter>,
    /// Index of the first exchange batch within this partition's batches of the epoch.
    pub exchanged_first: u64,
    /// Exchange batches for this partition's later stage, read from the repartition topic (a
    /// chained pipeline in a consumer group), in topic order.
    pub exchanged: Vec<ExchangeRecord>,
}

impl<K: Send + 'static, E: Send + 'static> Message for Batch<K, E> {
    type Result = ();
}

/// The source has sent a partition all of an epoch's input; the partition answers with its
/// [`Progress`] in the epoch (step 2 of the epoch protocol, see the runtime's module doc).
#[derive(Debug, Clone, Copy)]
pub struct InputEnded {
    /// The epoch.
    pub epoch: Epoch,
    /// How many records the source routed to this partition in the epoch.
    pub sent: u64,
    /// How many dead letters the source routed to this partition in the epoch.
    pub dead_sent: u64,
    /// How many exchange batches the source routed to this partition in the epoch.
    pub exchanged_sent: u64,
}

/// A partition's answer to [`InputEnded`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The partition processed all of the epoch's records.
    Ready {
        /// Its largest event time so far, per input.
        max_event_times: Vec<Millis>,
        /// Per input, whether it received records in the epoch.
        active: Vec<bool>,
        /// The upstream partitions whose last batch (the one carrying the end of time) the
        /// partition's later stage still waits for; empty when it has every one, or has no
        /// later stage.
        later_waiting: Vec<u32>,
    },
    /// The partition finished this epoch before (it is being replayed for another partition).
    Done,
    /// The partition restarted from an older checkpoint and needs the source to replay from
    /// the end of `checkpoint`.
    Behind {
        /// The epoch of its restored checkpoint.
        checkpoint: Epoch,
        /// The partition's restart count (identifies the restart).
        attempt: u32,
    },
}

impl Message for InputEnded {
    type Result = Progress;
}

/// Seals an epoch at a partition, once the supervisor has every partition's progress: advance
/// the watermark, fire timers, stage outputs, maybe checkpoint.
#[derive(Clone)]
pub struct SealEpoch {
    /// The epoch.
    pub epoch: Epoch,
    /// The epoch's watermark.
    pub watermark: Millis,
    /// The epoch's processing time.
    pub processing_time: Millis,
    /// Write a checkpoint after this epoch.
    pub checkpoint: bool,
    /// The epoch was committed before (a replay for another partition): stage nothing.
    pub suppress_output: bool,
    /// The partition's next source offset in each input after this epoch (partitioned
    /// sources; 0 otherwise).
    pub next_offsets: Vec<u64>,
    /// The shared model's versions the epoch is sealed with (pipelines with one).
    pub model: Option<Arc<ModelHistory>>,
    /// Keys whose state the epoch's end erases (`POST /state/erase`), as recorded with the
    /// epoch, before its timers fire: a replay erases them again.
    pub erase: Arc<[String]>,
}

impl Message for SealEpoch {
    type Result = ();
}

/// Tells a partition that every epoch up to `epoch` is committed: it may now write the
/// checkpoints it prepared for them. A checkpoint never gets ahead of the committed output,
/// so a restart always regenerates output that was staged but not yet visible, whatever the
/// sink keeps across a crash. Answers with the partition's durable checkpoint epoch.
#[derive(Debug, Clone, Copy)]
pub struct Committed {
    /// The last committed epoch.
    pub epoch: Epoch,
    /// The oldest checkpoint of the job's partitions the supervisor knows to be written: a
    /// partition's exchange outbox may forget the batches of epochs up to it.
    pub checkpointed: Epoch,
}

impl Message for Committed {
    type Result = Epoch;
}

/// What a partition reports to the supervisor.
#[derive(Debug)]
pub enum PartitionEvent {
    /// The partition finished `epoch`.
    Staged(Box<EpochDone>),
    /// Processing `epoch` failed (a panic); the partition restored its checkpoint and will
    /// redo the epoch when the source replays it.
    Failed {
        /// The partition.
        partition: u32,
        /// The epoch it could not finish.
        epoch: Epoch,
        /// The checkpoint it restores.
        checkpoint: Epoch,
        /// The partition's restart count after this failure (identifies the restart).
        attempt: u32,
    },
    /// The partition wrote a checkpoint of its state as of `epoch` (after reporting the
    /// epoch's output: committing output needs the epoch record, not the checkpoint, so the
    /// checkpoint stays off the latency path).
    Checkpointed {
        /// The partition.
        partition: u32,
        /// The epoch the checkpoint covers.
        epoch: Epoch,
        /// Bytes written.
        bytes: u64,
        /// Worker time it took: encoding the changed state, then writing it.
        millis: f64,
    },
    /// The partition cannot go on (state store failure, repeated panics): the job stops.
    Fatal {
        /// The partition.
        partition: u32,
        /// What went wrong.
        error: Box<crate::Error>,
    },
    /// The partition restarted from its checkpoint after a panic.
    Restarted {
        /// The partition.
        partition: u32,
        /// The checkpoint epoch it restored.
        checkpoint: Epoch,
        /// The panic message.
        message: String,
        /// Restarts so far.
        attempt: u32,
    },
}

impl Message for PartitionEvent {
    type Result = ();
}

/// A partition's result for one epoch.
#[derive(Debug)]
pub struct EpochDone {
    /// The partition.
    pub partition: u32,
    /// The epoch.
    pub epoch: Epoch,
    /// True when the partition had finished the epoch before (nothing new staged).
    pub skipped: bool,
    /// Staged outputs to commit.
    pub staged: Vec<Staged>,
    /// Results emitted.
    pub outputs: u64,
    /// Late records.
    pub late: u64,
    /// Keys whose state expired under the state TTL.
    pub expired: u64,
    /// What the operators counted.
    pub counters: crate::operator::Counters,
    /// The examples the operators taught the shared model.
    pub learned: Vec<Learned>,
    /// The keys of the epoch's erasures this partition held state for.
    pub erased: Vec<Erased>,
}

/// A key whose state a partition erased at an epoch's end.
#[derive(Debug, Clone)]
pub struct Erased {
    /// The key as the erasure request gave it.
    pub request: String,
    /// The key as JSON.
    pub key: String,
    /// The key partition that held it.
    pub partition: u32,
}

/// The source's request to end an epoch.
#[derive(Debug)]
pub struct EpochCut {
    /// The epoch being cut.
    pub epoch: Epoch,
    /// Where the source stands: the epoch's end.
    pub end: SourcePosition,
    /// Records routed to each partition in the epoch.
    pub sent: Vec<u64>,
    /// Dead letters routed to each partition in the epoch (partitioned sources).
    pub dead_sent: Vec<u64>,
    /// Exchange batches routed to each partition in the epoch (see [`Batch::exchanged`]).
    pub exchanged_sent: Vec<u64>,
    /// Records read (before filtering).
    pub records: u64,
    /// Dead letters found in the epoch.
    pub dead_letters: u64,
    /// Why the epoch's first dead letter was rejected.
    pub first_dead_error: Option<String>,
    /// The dead letters the source staged itself (unpartitioned sources).
    pub staged: Option<Staged>,
    /// The input is exhausted.
    pub end_of_input: bool,
    /// The input is exhausted, and the job ends with the next (empty) epoch, cut once this
    /// one committed.
    pub closes_input: bool,
    /// A stop was requested: checkpoint and finish after this epoch.
    pub stopping: bool,
    /// Records not yet read in each source partition (Kafka), when the source knows, as
    /// (source partition, records).
    pub lag: Option<Vec<(u32, u64)>>,
    /// Per key partition, whether the source still has records waiting for it (see
    /// [`SourceReader::waiting`](crate::io::source::SourceReader::waiting)).
    pub waiting: Option<Vec<bool>>,
    /// Per input, whether it was read to its end (see
    /// [`SourceReader::inputs_ended`](crate::io::source::SourceReader::inputs_ended)).
    pub inputs_ended: Vec<bool>,
    /// When the source cut the epoch.
    pub at: std::time::Instant,
}

/// Asks a partition for one key's state (`GET /state/{key}`): the key as JSON or the bare text
/// of a string key. Answers `None` when the partition holds no state for it.
pub struct QueryKey(pub String);

impl Message for QueryKey {
    type Result = std::result::Result<Option<crate::state::KeyReport>, String>;
}

/// Asks the supervisor to erase one key's state (`POST /state/erase`), given as for
/// [`QueryKey`]: the next epoch recorded erases it at its end in every partition, and `reply`
/// gets the erasure once that epoch is committed (`None`: no partition held state for the
/// key). Dropped unanswered when the job ends first.
pub struct EraseKey {
    /// The key, as the request gave it.
    pub key: String,
    /// Where the outcome goes.
    pub reply: tokio::sync::oneshot::Sender<Option<crate::state::Erasure>>,
}

impl Message for EraseKey {
    type Result = ();
}

/// Asks a partition what it holds now (`GET /api/state`): keys, timers, and the bytes stored
/// as of its last checkpoint.
pub struct InspectPartition;

impl Message for InspectPartition {
    type Result = crate::state::PartitionSummary;
}

/// The supervisor's answer to [`EpochCut`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CutReply {
    /// Go on with the next epoch; `finished` when the job ends with this epoch.
    Go {
        /// The job ends here: the source stops reading.
        finished: bool,
    },
    /// Replay: seek to `from` and re-cut the recorded epochs `replay` before reading on.
    Rewind {
        /// Where to seek.
        from: SourcePosition,
        /// The first epoch to re-read.
        next_epoch: Epoch,
        /// Recorded epoch ends to cut at, in order.
        replay: Vec<(Epoch, SourcePosition)>,
    },
    /// The job failed: stop reading.
    Abort,
}

impl Message for EpochCut {
    type Result = CutReply;
}

/// The source thread failed.
#[derive(Debug)]
pub struct SourceFailed(pub crate::Error);

impl Message for SourceFailed {
    type Result = ();
}
