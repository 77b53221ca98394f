//! What a checkpoint records: the job's identity, each epoch's input range and the time
//! decisions it used (the epoch log), and each partition's checkpoint metadata. These are the
//! values that make a replayed epoch decide exactly as the original did.

use crate::time::Millis;
use serde::{Deserialize, Serialize};

/// An epoch number. Epoch 0 is "before the first epoch": the empty initial state.
pub type Epoch = u64;

/// A position in a source from which reading can resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SourcePosition {
    /// Before anything was read.
    #[default]
    Start,
    /// The event index of the generator (`segment` 0), or bytes read from stdin.
    At {
        /// Always 0 (kept for the shape these sources share).
        segment: u32,
        /// Byte offset or event index.
        offset: u64,
    },
    /// Byte `offset` in file `name`, number `index` in name order of a file source's files: the
    /// name lets a restart tell that files were added before it or removed.
    File {
        /// The file's index among the source's files, in name order (0 for a single file).
        index: u32,
        /// The file's name (empty before the first file of an empty directory).
        name: String,
        /// Bytes of the file read.
        offset: u64,
    },
    /// The next offset to read in each partition of a Kafka topic (index = partition).
    Offsets(Vec<u64>),
    /// Each input's position, in the pipeline's input order (pipelines with several inputs).
    Inputs(Vec<SourcePosition>),
}

impl SourcePosition {
    /// The (file index, offset) pair of a file, generator or stdin position; `Start` and
    /// partitioned positions are (0, 0).
    pub fn parts(&self) -> (u32, u64) {
        match *self {
            SourcePosition::At { segment, offset } => (segment, offset),
            SourcePosition::File { index, offset, .. } => (index, offset),
            SourcePosition::Start | SourcePosition::Offsets(_) | SourcePosition::Inputs(_) => {
                (0, 0)
            }
        }
    }

    /// Each input's part of this position: itself for a single input.
    pub fn inputs(&self) -> Vec<SourcePosition> {
        match self {
            SourcePosition::Inputs(parts) => parts.clone(),
            other => vec![other.clone()],
        }
    }

    /// The next offset of partition `p` in each input (see [`offset_of`](Self::offset_of)).
    pub fn offsets_of(&self, p: usize) -> Vec<u64> {
        self.inputs()
            .iter()
            .map(|input| input.offset_of(p))
            .collect()
    }

    /// The position of `inputs` inputs whose partitions are at `offsets[p][input]`.
    pub fn from_partition_offsets(inputs: usize, offsets: &[Vec<u64>]) -> Self {
        let input = |i: usize| {
            SourcePosition::Offsets(
                offsets
                    .iter()
                    .map(|o| o.get(i).copied().unwrap_or(0))
                    .collect(),
            )
        };
        match inputs {
            1 => input(0),
            n => SourcePosition::Inputs((0..n).map(input).collect()),
        }
    }

    /// The next offset of partition `p` of a partitioned (Kafka) position; 0 before any.
    pub fn offset_of(&self, p: usize) -> u64 {
        match self {
            SourcePosition::Offsets(offsets) => offsets.get(p).copied().unwrap_or(0),
            _ => 0,
        }
    }

    /// Whether reading has gone past `other`: positions only move forward, so for partitioned
    /// positions this means some partition is further on.
    pub fn is_after(&self, other: &SourcePosition) -> bool {
        match (self, other) {
            (SourcePosition::Inputs(parts), _) => {
                let others = other.inputs();
                parts
                    .iter()
                    .enumerate()
                    .any(|(i, part)| part.is_after(others.get(i).unwrap_or(&SourcePosition::Start)))
            }
            (SourcePosition::Offsets(a), _) => a
                .iter()
                .enumerate()
                .any(|(p, &offset)| offset > other.offset_of(p)),
            _ => self.parts() > other.parts(),
        }
    }

    /// Builds a position from its parts.
    pub fn at(segment: u32, offset: u64) -> Self {
        SourcePosition::At { segment, offset }
    }
}

/// One epoch's decisions, made durable before any of its output becomes visible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// The epoch number.
    pub epoch: Epoch,
    /// Where the source stood at the end of the epoch (the next epoch starts here).
    pub end: SourcePosition,
    /// The watermark at the end of this epoch: timers up to it fire in this epoch, and records of
    /// the next epoch older than it are late.
    pub watermark: Millis,
    /// The processing time of this epoch: processing-time timers up to it fire.
    pub processing_time: Millis,
    /// True when this epoch ended the input (bounded source exhausted).
    pub final_epoch: bool,
    /// True when the input was exhausted in this epoch but the job goes on for one more,
    /// empty, epoch (a pipeline with a shared model learns all of it at this one's commit).
    pub closes_input: bool,
    /// How far the pipeline's shared model had learned when the epoch was sealed (the
    /// default for a pipeline without one).
    pub model: crate::learning::ModelMark,
}

/// A partition's checkpoint metadata, written atomically with its changed state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PartitionCheckpoint {
    /// The last epoch whose effects the partition's stored state includes.
    pub epoch: Epoch,
    /// The watermark after that epoch.
    pub watermark: Millis,
    /// The partition's maximum event time seen so far, per input.
    pub max_event_times: Vec<Millis>,
    /// The processing time of that epoch.
    pub processing_time: Millis,
    /// A later stage's watermark per upstream partition, as that partition's batches raised it
    /// (empty for a first stage). Restored as they were: an upstream partition that already
    /// sent its end of time sends nothing more, so its channel must not fall back to the
    /// stage's (smallest) watermark.
    pub channel_watermarks: Vec<Millis>,
    /// The partition's state buckets, as a power of two (see [`crate::state::BUCKETS`]); 0
    /// before its first checkpoint, which takes the job's (more with `--state-memory`).
    pub bucket_bits: u32,
}

/// Version of the on-disk state layout ([`crate::state`]); a state directory of another
/// version is refused rather than misread. 6: checkpoints keep a later stage's watermark per
/// upstream partition ([`PartitionCheckpoint::channel_watermarks`]). 7: a partition's bucket
/// count is part of its checkpoint ([`PartitionCheckpoint::bucket_bits`]).
pub const STATE_FORMAT: u32 = 7;

/// Who a state directory belongs to: checked at start so state is never reused by another job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInfo {
    /// The pipeline name.
    pub pipeline: String,
    /// The number of key partitions.
    pub partitions: u32,
    /// The source's identity ([`crate::io::source::SourceSpec::identity`]: a file by its
    /// canonical path, so a path given relatively or absolutely is the same source).
    pub source: String,
    /// The sink's identity ([`crate::io::sink::SinkSpec::identity`]): a job's committed
    /// output and its state belong together.
    pub sink: String,
    /// Base event time of the built-in generator, fixed at the job's first start so a replay
    /// generates the same events.
    pub generator_base_ms: Millis,
    /// The state layout version ([`STATE_FORMAT`]).
    pub state_format: u32,
}
