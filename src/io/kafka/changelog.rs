//! The changelog: a compacted Kafka topic, `<app-id>-<pipeline>-changelog` with one partition
//! per key partition, that carries each partition's state to whichever instance owns the
//! partition next (the Kafka Streams model; the local sled tree is a cache of it).
//!
//! At each checkpoint a partition writes, in this order, to its changelog partition:
//! 1. one *checkpoint record* (key `c`): the checkpoint's metadata, the next source offset, the
//!    state entries the epoch changed, and the epoch's outputs. The epoch's output is committed
//!    only once this record is acknowledged (the supervisor flushes the changelog once per
//!    epoch, for all partitions). A record larger than [`PIECE_BYTES`] (Kafka refuses records
//!    over 1 MB by default) goes out as *pieces* first (key `p` ‖ epoch ‖ index, each a slice
//!    of the encoded entries and outputs), then a small record `c` that names how many pieces
//!    its epoch has. Pieces have keys of their own, so compaction never replaces one epoch's
//!    pieces by another's; those of an epoch get tombstones once a newer checkpoint is
//!    acknowledged (when the epoch after it commits), so the newest record's pieces are always
//!    there;
//! 2. a copy of every changed entry under its own key (`s` ‖ key; a removal is a tombstone),
//!    which compaction keeps as the partition's whole state.
//!
//! A chained pipeline run by a consumer group keeps its later stage in the same record: its
//! metadata and changed entries ride in the record beside the first stage's (entry copies
//! under `S` ‖ key), so both stages and every output of the epoch are restored from one
//! record, at one epoch. Two records could be found at different epochs after a crash, and
//! then an output would be resent and made again, or neither.
//!
//! Restoring takes the newest value of every entry copy and lays the newest checkpoint record's
//! entries over them. That is exact even when a crash cut step 2 short or compaction ran:
//! copies of epoch e are sent after e's record and before e+1's on one idempotent producer, so
//! every copy in the log is from an epoch at or before the newest record (the idempotent
//! producer keeps a partition's records in order and without gaps), and what that epoch
//! changed is in the record itself. When the partition changes owner (or its process
//! restarts), the last owner's copies may be incomplete while the next owner's records no
//! longer carry those entries, so a restore first rewrites the newest record's copies and waits
//! for them, before the new owner writes anything; it also removes the pieces the last owner
//! left of older epochs. The record's outputs let the next owner resend whatever the last one
//! may not have made visible, so exactness never depends on redoing an epoch with the last
//! owner's timing (its watermark and processing time).

use crate::checkpoint::PartitionCheckpoint;
use crate::io::kafka::producer::Producer;
use crate::io::kafka::{client_error, ensure_topics, read_range, KafkaSettings, TopicSpec};
use crate::io::sink::{Lines, OutputStream};
use crate::{Error, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// Key of the checkpoint record.
const CHECKPOINT_KEY: &[u8] = b"c";
/// Prefix of an entry copy's key.
const ENTRY_PREFIX: u8 = b's';
/// Prefix of a later stage's entry copy's key.
const LATER_ENTRY_PREFIX: u8 = b'S';
/// Prefix of a piece's key: `p` ‖ epoch (8 bytes, big-endian) ‖ index (4 bytes, big-endian).
const PIECE_PREFIX: u8 = b'p';
/// Largest checkpoint record written whole, and the size of the pieces a larger one is cut in.
pub const PIECE_BYTES: usize = 512 * 1024;

/// One partition checkpoint as the changelog holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangelogCheckpoint {
    /// The checkpoint's metadata (epoch, watermark, ...).
    pub meta: PartitionCheckpoint,
    /// The next source offset of the partition in each input: where its owner resumes reading.
    pub next_offsets: Vec<u64>,
    /// The state entries the epoch changed (bincode key, sealed bincode value; `None`: removed).
    pub entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// The epoch's outputs (JSON lines per stream), resent by the next owner unless visible.
    pub outputs: Vec<(OutputStream, Lines)>,
    /// A chained pipeline's later stage at the same epoch, when the record carries it.
    pub later: Option<LaterCheckpoint>,
}

/// A later stage's part of a checkpoint record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaterCheckpoint {
    /// The later stage's checkpoint metadata.
    pub meta: PartitionCheckpoint,
    /// The later stage's changed entries (as [`ChangelogCheckpoint::entries`]).
    pub entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// A later stage's part of a [`CheckpointRecord`], borrowed.
#[derive(Debug, Clone, Copy)]
pub struct LaterRecord<'a> {
    /// See [`LaterCheckpoint::meta`].
    pub meta: &'a PartitionCheckpoint,
    /// See [`LaterCheckpoint::entries`].
    pub entries: &'a [(Vec<u8>, Option<Vec<u8>>)],
}

/// A checkpoint as the partition hands it over to be written: [`ChangelogCheckpoint`]
/// borrowed, so writing copies neither its changed state nor its outputs.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointRecord<'a> {
    /// See [`ChangelogCheckpoint::meta`].
    pub meta: &'a PartitionCheckpoint,
    /// See [`ChangelogCheckpoint::next_offsets`].
    pub next_offsets: &'a [u64],
    /// See [`ChangelogCheckpoint::entries`].
    pub entries: &'a [(Vec<u8>, Option<Vec<u8>>)],
    /// See [`ChangelogCheckpoint::outputs`].
    pub outputs: &'a [(OutputStream, Lines)],
    /// See [`ChangelogCheckpoint::later`].
    pub later: Option<LaterRecord<'a>>,
}

/// The value of a checkpoint record (key `c`) as written.
#[derive(Serialize)]
struct RecordOut<'a> {
    meta: &'a PartitionCheckpoint,
    next_offsets: &'a [u64],
    body: BodyOut<'a>,
}

/// What a checkpoint record carries besides its metadata, as written (bincode encodes a slice
/// and a `Vec` alike, so it reads back as a [`Body`]). The chained variants come last, so
/// records written before them read as they did.
#[derive(Serialize)]
enum BodyOut<'a> {
    Inline {
        entries: &'a [(Vec<u8>, Option<Vec<u8>>)],
        outputs: &'a [(OutputStream, Lines)],
    },
    Pieces {
        count: u32,
    },
    Chained {
        entries: &'a [(Vec<u8>, Option<Vec<u8>>)],
        outputs: &'a [(OutputStream, Lines)],
        later_meta: &'a PartitionCheckpoint,
        later_entries: &'a [(Vec<u8>, Option<Vec<u8>>)],
    },
    /// The pieces encode `(entries, outputs, later_entries)`.
    ChainedPieces {
        count: u32,
        later_meta: &'a PartitionCheckpoint,
    },
}

/// The value of a checkpoint record (key `c`) as read.
#[derive(Deserialize)]
struct RecordIn {
    meta: PartitionCheckpoint,
    next_offsets: Vec<u64>,
    body: Body,
}

/// The changed entries and outputs of a checkpoint: in its record, or in `count` pieces
/// (keyed by the record's epoch) that together encode `(entries, outputs)`; with a later
/// stage's, `(entries, outputs, later_entries)`.
#[derive(Deserialize)]
enum Body {
    Inline {
        entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        outputs: Vec<(OutputStream, Lines)>,
    },
    Pieces {
        count: u32,
    },
    Chained {
        entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        outputs: Vec<(OutputStream, Lines)>,
        later_meta: PartitionCheckpoint,
        later_entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    },
    ChainedPieces {
        count: u32,
        later_meta: PartitionCheckpoint,
    },
}

impl Body {
    /// The later stage's metadata, when the record carries a later stage.
    fn later_meta(&self) -> Option<&PartitionCheckpoint> {
        match self {
            Body::Chained { later_meta, .. } | Body::ChainedPieces { later_meta, .. } => {
                Some(later_meta)
            }
            Body::Inline { .. } | Body::Pieces { .. } => None,
        }
    }
}

/// A checkpoint's changed entries and outputs, and its later stage's entries.
type Parts = (
    Vec<(Vec<u8>, Option<Vec<u8>>)>,
    Vec<(OutputStream, Lines)>,
    Option<LaterCheckpoint>,
);

/// The key of piece `index` of `epoch`'s checkpoint record.
fn piece_key(epoch: u64, index: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(13);
    key.push(PIECE_PREFIX);
    key.extend_from_slice(&epoch.to_be_bytes());
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// The (epoch, index) a piece key names.
fn parse_piece_key(key: &[u8]) -> Option<(u64, u32)> {
    let rest = key.strip_prefix(&[PIECE_PREFIX])?;
    let epoch = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let index = u32::from_be_bytes(rest.get(8..)?.try_into().ok()?);
    Some((epoch, index))
}

/// The records (key, value) that write `record`, in order: its pieces when it is larger than
/// [`PIECE_BYTES`], then the checkpoint record. Entry copies are not included.
fn encode(record: &CheckpointRecord<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let (entries, outputs) = (record.entries, record.outputs);
    let whole = RecordOut {
        meta: record.meta,
        next_offsets: record.next_offsets,
        body: match record.later {
            None => BodyOut::Inline { entries, outputs },
            Some(later) => BodyOut::Chained {
                entries,
                outputs,
                later_meta: later.meta,
                later_entries: later.entries,
            },
        },
    };
    // Sized first (a walk, no copy), so a large record is encoded once, as pieces.
    let size = bincode::serialized_size(&whole).expect("bincode sizes checkpoints");
    if size <= PIECE_BYTES as u64 {
        let value = bincode::serialize(&whole).expect("bincode encodes checkpoints");
        return vec![(CHECKPOINT_KEY.to_vec(), value)];
    }
    let body = match record.later {
        None => bincode::serialize(&(entries, outputs)),
        Some(later) => bincode::serialize(&(entries, outputs, later.entries)),
    }
    .expect("bincode encodes checkpoints");
    let mut out: Vec<_> = body
        .chunks(PIECE_BYTES)
        .enumerate()
        .map(|(i, piece)| (piece_key(record.meta.epoch, i as u32), piece.to_vec()))
        .collect();
    let count = out.len() as u32;
    let head = RecordOut {
        meta: record.meta,
        next_offsets: record.next_offsets,
        body: match record.later {
            None => BodyOut::Pieces { count },
            Some(later) => BodyOut::ChainedPieces {
                count,
                later_meta: later.meta,
            },
        },
    };
    out.push((
        CHECKPOINT_KEY.to_vec(),
        bincode::serialize(&head).expect("bincode encodes checkpoints"),
    ));
    out
}

/// A changelog partition as read in offset order: the newest value of every entry copy and
/// piece, and the newest checkpoint record.
#[derive(Default)]
struct Log {
    state: HashMap<Vec<u8>, Vec<u8>>,
    /// A later stage's entries.
    later_state: HashMap<Vec<u8>, Vec<u8>>,
    pieces: HashMap<(u64, u32), Vec<u8>>,
    newest: Option<RecordIn>,
}

impl Log {
    /// Takes in the record at `offset` of the partition named `what`.
    fn apply(&mut self, key: &[u8], value: Option<&[u8]>, what: &str, offset: i64) -> Result<()> {
        if key == CHECKPOINT_KEY {
            if let Some(value) = value {
                self.newest =
                    Some(
                        bincode::deserialize(value).map_err(|e| Error::DamagedChangelog {
                            place: format!("{what} offset {offset}"),
                            detail: e.to_string(),
                        })?,
                    );
            }
        } else if let Some(entry) = key.strip_prefix(&[ENTRY_PREFIX]) {
            put(&mut self.state, entry, value);
        } else if let Some(entry) = key.strip_prefix(&[LATER_ENTRY_PREFIX]) {
            put(&mut self.later_state, entry, value);
        } else if let Some(piece) = parse_piece_key(key) {
            match value {
                Some(value) => self.pieces.insert(piece, value.to_vec()),
                None => self.pieces.remove(&piece),
            };
        }
        Ok(())
    }

    /// The newest checkpoint with its entries and outputs (from its pieces when it has
    /// them), the state as of it, and the pieces of other epochs still in the log; `None`
    /// when the partition holds no checkpoint.
    fn finish(mut self, what: &str) -> Result<Option<Found>> {
        let Some(record) = self.newest.take() else {
            return Ok(None);
        };
        let epoch = record.meta.epoch;
        let (entries, outputs, later) = self.parts(record.body, epoch, what)?;
        for (entry, value) in &entries {
            put(&mut self.state, entry, value.as_deref());
        }
        let later_state = later.as_ref().map(|later| {
            for (entry, value) in &later.entries {
                put(&mut self.later_state, entry, value.as_deref());
            }
            sorted(std::mem::take(&mut self.later_state))
        });
        let mut stale: Vec<_> = (self.pieces.into_keys())
            .filter(|(e, _)| *e != epoch)
            .collect();
        stale.sort_unstable();
        let checkpoint = ChangelogCheckpoint {
            meta: record.meta,
            next_offsets: record.next_offsets,
            entries,
            outputs,
            later,
        };
        Ok(Some(Found {
            checkpoint,
            state: sorted(self.state),
            later_state,
            stale,
        }))
    }

    /// The entries, outputs and later stage of `epoch`'s record with `body`, from its pieces
    /// when it has them.
    fn parts(&mut self, body: Body, epoch: u64, what: &str) -> Result<Parts> {
        let later_meta = body.later_meta().cloned();
        let count = match body {
            Body::Inline { entries, outputs } => return Ok((entries, outputs, None)),
            Body::Chained {
                entries,
                outputs,
                later_meta,
                later_entries,
            } => {
                let later = LaterCheckpoint {
                    meta: later_meta,
                    entries: later_entries,
                };
                return Ok((entries, outputs, Some(later)));
            }
            Body::Pieces { count } | Body::ChainedPieces { count, .. } => count,
        };
        let mut bytes = Vec::new();
        for index in 0..count {
            let piece =
                self.pieces
                    .remove(&(epoch, index))
                    .ok_or_else(|| Error::DamagedChangelog {
                        place: what.to_string(),
                        detail: format!(
                            "piece {index} of {count} of the checkpoint of epoch {epoch} is missing"
                        ),
                    })?;
            bytes.extend_from_slice(&piece);
        }
        let damaged = |e: bincode::Error| Error::DamagedChangelog {
            place: format!("{what}, the checkpoint of epoch {epoch}"),
            detail: e.to_string(),
        };
        Ok(match later_meta {
            None => {
                let (entries, outputs) = bincode::deserialize(&bytes).map_err(damaged)?;
                (entries, outputs, None)
            }
            Some(meta) => {
                let (entries, outputs, later_entries) =
                    bincode::deserialize(&bytes).map_err(damaged)?;
                let later = LaterCheckpoint {
                    meta,
                    entries: later_entries,
                };
                (entries, outputs, Some(later))
            }
        })
    }
}

/// Sets (`Some`) or removes (`None`) `entry` in `state`.
fn put(state: &mut HashMap<Vec<u8>, Vec<u8>>, entry: &[u8], value: Option<&[u8]>) {
    match value {
        Some(value) => state.insert(entry.to_vec(), value.to_vec()),
        None => state.remove(entry),
    };
}

/// The entries of `state` in key order.
fn sorted(state: HashMap<Vec<u8>, Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut state: Vec<_> = state.into_iter().collect();
    state.sort_unstable();
    state
}

/// What [`Log::finish`] finds in a changelog partition.
struct Found {
    /// The newest checkpoint, with its entries and outputs.
    checkpoint: ChangelogCheckpoint,
    /// Every state entry as of that checkpoint, in key order.
    state: Vec<(Vec<u8>, Vec<u8>)>,
    /// Every later-stage entry as of that checkpoint, when it has a later stage.
    later_state: Option<Vec<(Vec<u8>, Vec<u8>)>>,
    /// Pieces (epoch, index) of other epochs' records, to be dropped.
    stale: Vec<(u64, u32)>,
}

/// A partition's state as restored from the changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The newest checkpoint record (its entries are already part of `state`).
    pub checkpoint: ChangelogCheckpoint,
    /// Every state entry as of that checkpoint (bincode key, sealed bincode value).
    pub state: Vec<(Vec<u8>, Vec<u8>)>,
    /// Every entry of the later stage as of that checkpoint, when the record has one (its
    /// metadata is the checkpoint's `later`, whose entries are already part of this).
    pub later_state: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

/// What [`Changelog::newest_checkpoint`] reads of a partition's newest record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewestCheckpoint {
    /// The checkpoint's metadata.
    pub meta: PartitionCheckpoint,
    /// The next source offset in each input.
    pub next_offsets: Vec<u64>,
    /// The later stage's metadata, when the record has one.
    pub later: Option<PartitionCheckpoint>,
}

/// A job's changelog topic.
pub struct Changelog {
    producer: Producer,
    consumer: ClientConfig,
    topic: String,
    brokers: String,
}

impl std::fmt::Debug for Changelog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Changelog({})", self.topic)
    }
}

impl Changelog {
    /// The changelog topic of pipeline `pipeline` in application `app_id`.
    pub fn topic_name(app_id: &str, pipeline: &str) -> String {
        format!("{app_id}-{pipeline}-changelog")
    }

    /// Connects to `brokers` and creates the changelog topic (compacted, `partitions`
    /// partitions) when it is missing.
    pub fn open(
        settings: &KafkaSettings,
        brokers: &str,
        app_id: &str,
        pipeline: &str,
        partitions: u32,
    ) -> Result<Self> {
        let topic = Self::topic_name(app_id, pipeline);
        let consumer = settings.client_config(
            brokers,
            &[
                ("group.id", &format!("{app_id}-changelog-restore")),
                ("enable.auto.commit", "false"),
                ("enable.partition.eof", "true"),
            ],
        );
        let counts = ensure_topics(
            &consumer,
            brokers,
            &[TopicSpec {
                name: &topic,
                partitions,
                compacted: true,
            }],
        )?;
        if counts[0] < partitions {
            return Err(Error::Runtime(format!(
                "the changelog topic `{topic}` has {} partitions but the job has {partitions} key partitions; delete the topic (the job's state goes with it) or use another --app-id",
                counts[0]
            )));
        }
        let defaults = [
            ("acks", "all"),
            ("linger.ms", "2"),
            ("compression.type", "lz4"),
        ];
        let producer = Producer::open(settings, brokers, &defaults)?;
        Ok(Changelog {
            producer,
            consumer,
            topic,
            brokers: brokers.to_string(),
        })
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    fn send(&self, partition: u32, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        let mut record = BaseRecord::to(&self.topic)
            .partition(partition as i32)
            .key(key);
        if let Some(value) = value {
            record = record.payload(value);
        }
        self.producer.send(
            record,
            &format!("records to the changelog topic {}", self.topic),
        )
    }

    /// Sends `checkpoint` for `partition`: the checkpoint record (after its pieces, when it is
    /// large), then the copies of its entries. Nothing is acknowledged yet: [`Changelog::flush`]
    /// waits for that, once for the checkpoints of every partition. Returns how many pieces the
    /// record took (0: none), to be dropped with [`Changelog::drop_pieces`] once a newer
    /// checkpoint is acknowledged.
    pub fn send_checkpoint(
        &self,
        partition: u32,
        checkpoint: &CheckpointRecord<'_>,
    ) -> Result<u32> {
        let records = encode(checkpoint);
        for (key, value) in &records {
            self.send(partition, key, Some(value))?;
        }
        self.send_copies(partition, ENTRY_PREFIX, checkpoint.entries)?;
        if let Some(later) = checkpoint.later {
            self.send_copies(partition, LATER_ENTRY_PREFIX, later.entries)?;
        }
        Ok(records.len() as u32 - 1)
    }

    /// Sends tombstones for the `count` pieces of `epoch`'s checkpoint record in `partition`,
    /// which a newer acknowledged checkpoint made useless (acknowledged with a later flush).
    pub fn drop_pieces(&self, partition: u32, epoch: u64, count: u32) -> Result<()> {
        for index in 0..count {
            self.send(partition, &piece_key(epoch, index), None)?;
        }
        Ok(())
    }

    /// Waits until the changelog has acknowledged everything sent so far, the checkpoints of
    /// `epoch` included; fails when the broker rejected any of it.
    pub fn flush(&self, epoch: u64) -> Result<()> {
        self.producer
            .flush(&format!("the changelog checkpoints of epoch {epoch}"))
    }

    /// Sends the entry copies of `entries` under `prefix` (acknowledged with a later flush).
    fn send_copies(
        &self,
        partition: u32,
        prefix: u8,
        entries: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<()> {
        let mut key = Vec::with_capacity(32);
        for (entry, value) in entries {
            key.clear();
            key.push(prefix);
            key.extend_from_slice(entry);
            self.send(partition, &key, value.as_deref())?;
        }
        Ok(())
    }

    /// A consumer for reading `partition`, the partition's offset range (low, high), and the
    /// partition's name for errors.
    fn reader(&self, partition: u32) -> Result<(BaseConsumer, (i64, i64), String)> {
        let what = format!(
            "partition {partition} of the changelog topic {} at {}",
            self.topic, self.brokers
        );
        let consumer: BaseConsumer = self
            .consumer
            .create()
            .map_err(|e| client_error(&self.brokers, e))?;
        let (low, high) = consumer
            .fetch_watermarks(&self.topic, partition as i32, Duration::from_secs(30))
            .map_err(|e| Error::Runtime(format!("cannot read {what}: {e}")))?;
        Ok((consumer, (low.max(0), high.max(0)), what))
    }

    /// The metadata and next offset of the newest checkpoint record of `partition`, found by
    /// reading back from the partition's end (after a record come at most its entry copies and
    /// tombstones for older pieces, so this reads little); `None` when the partition holds no
    /// checkpoint.
    pub fn newest_checkpoint(&self, partition: u32) -> Result<Option<NewestCheckpoint>> {
        let (consumer, (low, mut stop), what) = self.reader(partition)?;
        let mut step = 1024;
        while stop > low {
            let from = (stop - step).max(low);
            let mut log = Log::default();
            read_range(
                &consumer,
                &self.topic,
                partition as i32,
                (from, stop),
                &what,
                |m| match (m.key(), m.payload()) {
                    (Some(CHECKPOINT_KEY), Some(value)) => {
                        log.apply(CHECKPOINT_KEY, Some(value), &what, m.offset())
                    }
                    _ => Ok(()),
                },
            )?;
            if let Some(record) = log.newest {
                return Ok(Some(NewestCheckpoint {
                    later: record.body.later_meta().cloned(),
                    meta: record.meta,
                    next_offsets: record.next_offsets,
                }));
            }
            stop = from;
            step *= 2;
        }
        Ok(None)
    }

    /// Reads `partition` of the changelog to its end: `None` when it holds no checkpoint. Also
    /// rewrites the copies of the newest checkpoint's entries, which its writer may not have
    /// finished, so the invariant above holds for the checkpoints the next owner writes, and
    /// drops the pieces of older checkpoint records the last owner left.
    pub fn restore(&self, partition: u32) -> Result<Option<Restored>> {
        let (consumer, range, what) = self.reader(partition)?;
        if range.1 <= range.0 {
            return Ok(None);
        }
        let mut log = Log::default();
        read_range(
            &consumer,
            &self.topic,
            partition as i32,
            range,
            &what,
            |m| match m.key() {
                Some(key) => log.apply(key, m.payload(), &what, m.offset()),
                None => Ok(()),
            },
        )?;
        let Some(Found {
            mut checkpoint,
            state,
            later_state,
            stale,
        }) = log.finish(&what)?
        else {
            return Ok(None);
        };
        // The last owner may have died (or stopped without flushing) before all copies of its
        // newest checkpoint were written, and the next checkpoint record will no longer carry
        // those entries: complete the copies now, before anything is written after them.
        self.send_copies(partition, ENTRY_PREFIX, &checkpoint.entries)?;
        if let Some(later) = checkpoint.later.as_mut() {
            self.send_copies(partition, LATER_ENTRY_PREFIX, &later.entries)?;
            later.entries.clear();
        }
        for (epoch, index) in stale {
            self.send(partition, &piece_key(epoch, index), None)?;
        }
        self.producer.flush(&format!(
            "the restored changelog entries of partition {partition}"
        ))?;
        checkpoint.entries.clear();
        Ok(Some(Restored {
            checkpoint,
            state,
            later_state,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(epoch: u64) -> PartitionCheckpoint {
        PartitionCheckpoint {
            epoch,
            watermark: 5,
            max_event_times: vec![9],
            processing_time: 11,
        }
    }

    /// Reads `records` (key, value; `None`: tombstone) as a changelog partition in this order.
    fn read(records: &[(Vec<u8>, Option<Vec<u8>>)]) -> Option<Found> {
        let mut log = Log::default();
        for (offset, (key, value)) in records.iter().enumerate() {
            log.apply(key, value.as_deref(), "test", offset as i64)
                .unwrap();
        }
        log.finish("test").unwrap()
    }

    fn written(record: &CheckpointRecord<'_>) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        encode(record)
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect()
    }

    fn checkpoint(epoch: u64, entries: usize, entry_bytes: usize) -> ChangelogCheckpoint {
        ChangelogCheckpoint {
            meta: meta(epoch),
            next_offsets: vec![epoch * 10],
            entries: (0..entries)
                .map(|i| {
                    (
                        (i as u32).to_be_bytes().to_vec(),
                        Some(vec![epoch as u8; entry_bytes]),
                    )
                })
                .collect(),
            outputs: vec![(OutputStream::Late, Lines::unkeyed(b"{}\n".to_vec()))],
            later: None,
        }
    }

    /// `checkpoint(epoch, ..)` with a later stage of `entries` entries of `entry_bytes`.
    fn chained(epoch: u64, entries: usize, entry_bytes: usize) -> ChangelogCheckpoint {
        let later = LaterCheckpoint {
            meta: PartitionCheckpoint {
                watermark: 3,
                ..meta(epoch)
            },
            entries: (0..entries)
                .map(|i| (vec![b'k', i as u8], Some(vec![!(epoch as u8); entry_bytes])))
                .chain([(vec![b'x'], None)])
                .collect(),
        };
        ChangelogCheckpoint {
            later: Some(later),
            ..checkpoint(epoch, entries, entry_bytes)
        }
    }

    fn borrowed(c: &ChangelogCheckpoint) -> CheckpointRecord<'_> {
        CheckpointRecord {
            meta: &c.meta,
            next_offsets: &c.next_offsets,
            entries: &c.entries,
            outputs: &c.outputs,
            later: c.later.as_ref().map(|l| LaterRecord {
                meta: &l.meta,
                entries: &l.entries,
            }),
        }
    }

    #[test]
    fn a_later_stage_rides_in_the_record_small_or_in_pieces_and_keeps_its_entries_apart() {
        for (entries, bytes) in [(3, 10), (200, 4_000)] {
            let owned = chained(7, entries, bytes);
            let mut records = written(&borrowed(&owned));
            assert_eq!(records.len() > 1, entries * bytes > PIECE_BYTES);
            // Entry copies of both stages, as `send_checkpoint` writes them: the same keys,
            // kept apart by their prefixes.
            for (prefix, list) in [
                (ENTRY_PREFIX, &owned.entries),
                (LATER_ENTRY_PREFIX, &owned.later.as_ref().unwrap().entries),
            ] {
                records.extend(
                    list.iter()
                        .map(|(k, v)| ([&[prefix], &k[..]].concat(), v.clone())),
                );
            }
            let found = read(&records).unwrap();
            assert_eq!(found.checkpoint, owned);
            assert_eq!(found.state.len(), entries);
            let later_state = found.later_state.unwrap();
            assert_eq!(
                later_state.len(),
                entries,
                "the removed entry is not restored"
            );
            assert!(later_state
                .iter()
                .all(|(k, v)| k[0] == b'k' && v[0] == !7u8));
        }
    }

    #[test]
    fn a_record_without_a_later_stage_restores_none() {
        let found = read(&written(&borrowed(&checkpoint(4, 2, 8)))).unwrap();
        assert_eq!(found.checkpoint.later, None);
        assert_eq!(found.later_state, None);
    }

    #[test]
    fn a_small_checkpoint_is_one_record_and_reads_back_whole() {
        let owned = checkpoint(7, 3, 10);
        let records = written(&borrowed(&owned));
        assert_eq!(records.len(), 1);
        let found = read(&records).unwrap();
        assert_eq!(found.checkpoint, owned);
        assert_eq!(found.state.len(), 3);
        assert!(found.stale.is_empty());
    }

    #[test]
    fn a_large_checkpoint_goes_out_in_pieces_under_the_size_limit_and_reads_back_whole() {
        let owned = checkpoint(7, 3_000, 1_000); // about 3 MB
        let records = written(&borrowed(&owned));
        assert!(records.len() >= 6, "{} records", records.len());
        assert!(records
            .iter()
            .all(|(_, v)| v.as_ref().unwrap().len() <= PIECE_BYTES));
        assert_eq!(records.last().unwrap().0, CHECKPOINT_KEY);
        assert_eq!(read(&records).unwrap().checkpoint, owned);
    }

    #[test]
    fn the_newest_record_decides_and_older_pieces_are_reported_stale() {
        let old = checkpoint(7, 3_000, 1_000);
        let new = checkpoint(8, 2_000, 1_000);
        let mut log = written(&borrowed(&old));
        log.extend(written(&borrowed(&new)));
        // The pieces of a later epoch whose record never arrived (its writer died) are stale.
        let cut = checkpoint(9, 2_000, 1_000);
        let unfinished = written(&borrowed(&cut));
        log.extend_from_slice(&unfinished[..2]);
        let Found {
            checkpoint: back,
            stale,
            ..
        } = read(&log).unwrap();
        assert_eq!(back, new);
        assert!(stale.iter().any(|(e, _)| *e == 7) && stale.iter().any(|(e, _)| *e == 9));
        assert!(stale.iter().all(|(e, _)| *e != 8));
        // Once epoch 7's pieces have tombstones, they are gone from what a restore sees.
        for &(epoch, index) in &stale {
            log.push((piece_key(epoch, index), None));
        }
        assert!(read(&log).unwrap().stale.is_empty());
    }

    #[test]
    fn a_missing_piece_of_the_newest_record_is_an_error_naming_it() {
        let owned = checkpoint(7, 3_000, 1_000);
        let mut records = written(&borrowed(&owned));
        records.remove(1);
        let mut log = Log::default();
        for (offset, (key, value)) in records.iter().enumerate() {
            log.apply(key, value.as_deref(), "test", offset as i64)
                .unwrap();
        }
        let error = log.finish("test").err().unwrap().to_string();
        assert!(error.contains("piece 1 of"), "{error}");
    }
}
