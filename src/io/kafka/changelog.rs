//! The changelog: a compacted Kafka topic, `<app-id>-<pipeline>-changelog` with one partition
//! per key partition, that carries each partition's state to whichever instance owns the
//! partition next (the Kafka Streams model; the local sled tree is a cache of it).
//!
//! At each checkpoint a partition writes, in this order, to its changelog partition:
//! 0. a *size record* (key `n`): the checkpoint's epoch and how many entries the partition's
//!    state then holds, so that a restore can read back from the end and stop once it has found
//!    them all (a changelog written without them is read back to its start);
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
//! entries over them; it reads back from the partition's end only as far as it must to find
//! every entry the size record counts. That is exact even when a crash cut step 2 short or
//! compaction ran: copies of epoch e are sent after e's record and before e+1's on one
//! idempotent producer, so every copy in the log is from an epoch at or before the newest
//! record (the idempotent producer keeps a partition's records in order and without gaps), and
//! what that epoch changed is in the record itself. When the partition changes owner (or its
//! process restarts), the last owner's copies may be incomplete while the next owner's records
//! no longer carry those entries, so a restore first rewrites the newest record's copies and
//! waits for them, before the new owner writes anything; it also removes the pieces of older
//! epochs the last owner left in what it read. The record's outputs let the next owner resend
//! whatever the last one may not have made visible, so exactness never depends on redoing an
//! epoch with the last owner's timing (its watermark and processing time).

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
/// Key of the size record, written before each checkpoint record: [`StateSize`].
const SIZE_KEY: &[u8] = b"n";
/// Records a restore reads back first; each further window is twice the last.
const FIRST_WINDOW: i64 = 256;

/// How many state entries a partition holds as of a checkpoint (the record under
/// [`SIZE_KEY`]): a restore reading back from the end can stop once it found that many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct StateSize {
    epoch: u64,
    entries: u64,
}

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
    /// How many entries the partition's state holds after this checkpoint (its stored
    /// buckets), written beside the record so a restore knows when it has read them all.
    pub held: u64,
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

/// What the pieces of a record without a later stage encode: its entries and outputs.
type PieceBody = (Vec<(Vec<u8>, Option<Vec<u8>>)>, Vec<(OutputStream, Lines)>);

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

/// A stretch of a changelog partition as read in offset order: the newest value of every
/// entry copy and piece (`None`: a tombstone, kept so that an older stretch laid
/// [under](Log::under) it cannot bring the entry back), the newest checkpoint record and the
/// newest size record.
#[derive(Default)]
struct Log {
    state: HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// A later stage's entries.
    later_state: HashMap<Vec<u8>, Option<Vec<u8>>>,
    pieces: HashMap<(u64, u32), Option<Vec<u8>>>,
    newest: Option<RecordIn>,
    size: Option<StateSize>,
}

impl Log {
    /// Takes in the record at `offset` of the partition named `what`.
    fn apply(&mut self, key: &[u8], value: Option<&[u8]>, what: &str, offset: i64) -> Result<()> {
        let owned = || value.map(<[u8]>::to_vec);
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
        } else if key == SIZE_KEY {
            // Only a hint where a restore may stop: one that does not decode makes it read on.
            self.size = value.and_then(|v| bincode::deserialize(v).ok());
        } else if let Some(entry) = key.strip_prefix(&[ENTRY_PREFIX]) {
            self.state.insert(entry.to_vec(), owned());
        } else if let Some(entry) = key.strip_prefix(&[LATER_ENTRY_PREFIX]) {
            self.later_state.insert(entry.to_vec(), owned());
        } else if let Some(piece) = parse_piece_key(key) {
            self.pieces.insert(piece, owned());
        }
        Ok(())
    }

    /// Lays `older`, the stretch of the partition just before this one, under it: what this
    /// stretch holds stays, what only `older` holds is added.
    fn under(&mut self, older: Log) {
        fn fill<K: std::hash::Hash + Eq, V>(newer: &mut HashMap<K, V>, older: HashMap<K, V>) {
            for (key, value) in older {
                newer.entry(key).or_insert(value);
            }
        }
        fill(&mut self.state, older.state);
        fill(&mut self.later_state, older.later_state);
        fill(&mut self.pieces, older.pieces);
        self.newest = self.newest.take().or(older.newest);
        self.size = self.size.or(older.size);
    }

    /// Whether this stretch, the end of the partition, holds the whole state as of its newest
    /// checkpoint: the size record of that checkpoint's epoch says how many entries the state
    /// holds, and that many are live here once the record's own entries are laid over the
    /// copies. Older copies could only add entries, so none is missing. A record carrying a
    /// later stage (whose entries the size does not count) is never known to be whole.
    fn holds_whole_state(&self) -> bool {
        let (Some(record), Some(size)) = (&self.newest, self.size) else {
            return false;
        };
        if size.epoch != record.meta.epoch {
            return false;
        }
        let decoded;
        let entries = match &record.body {
            Body::Inline { entries, .. } => entries,
            Body::Pieces { count } => match self.piece_bytes(record.meta.epoch, *count) {
                Ok(bytes) => match bincode::deserialize::<PieceBody>(&bytes) {
                    Ok((entries, _)) => {
                        decoded = entries;
                        &decoded
                    }
                    Err(_) => return false,
                },
                Err(_missing) => return false,
            },
            Body::Chained { .. } | Body::ChainedPieces { .. } => return false,
        };
        let mut live = self.state.values().filter(|v| v.is_some()).count() as i64;
        for (entry, value) in entries {
            let copied = self.state.get(entry).is_some_and(Option::is_some);
            live += i64::from(value.is_some()) - i64::from(copied);
        }
        live == size.entries as i64
    }

    /// The pieces `0..count` of `epoch`'s record joined; `Err` names the first piece this
    /// stretch of the log does not hold.
    fn piece_bytes(&self, epoch: u64, count: u32) -> std::result::Result<Vec<u8>, u32> {
        let mut bytes = Vec::new();
        for index in 0..count {
            let piece = self.pieces.get(&(epoch, index)).and_then(Option::as_deref);
            bytes.extend_from_slice(piece.ok_or(index)?);
        }
        Ok(bytes)
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
        self.state.extend(entries.iter().cloned());
        let later_state = later.as_ref().map(|later| {
            self.later_state.extend(later.entries.iter().cloned());
            sorted(std::mem::take(&mut self.later_state))
        });
        let mut stale: Vec<_> = (self.pieces.into_iter())
            .filter(|((e, _), piece)| *e != epoch && piece.is_some())
            .map(|(key, _)| key)
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
    fn parts(&self, body: Body, epoch: u64, what: &str) -> Result<Parts> {
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
        let bytes = self
            .piece_bytes(epoch, count)
            .map_err(|index| Error::DamagedChangelog {
                place: what.to_string(),
                detail: format!(
                    "piece {index} of {count} of the checkpoint of epoch {epoch} is missing"
                ),
            })?;
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

/// Reads a changelog partition whose offsets are `low..high` back from its end, in stretches
/// of [`FIRST_WINDOW`] records and then twice as many each time (`stretch((from, stop))` reads
/// offsets `from..stop`), until what was read [holds the whole
/// state](Log::holds_whole_state) or the partition's start is reached.
///
/// Reading the whole partition made a restore cost as much as the job's history on a broker
/// that does not compact (tansu: 16 s a partition after a million keys' worth of epochs),
/// while the state is in the last few epochs' copies when every bucket changes often. Pieces of
/// older records left without tombstones before the point where the reading stopped stay in
/// the topic (they are never read as state).
fn read_back(
    (low, high): (i64, i64),
    mut stretch: impl FnMut((i64, i64)) -> Result<Log>,
) -> Result<Log> {
    let (mut log, mut stop, mut step) = (Log::default(), high, FIRST_WINDOW);
    loop {
        let from = (stop - step).max(low);
        log.under(stretch((from, stop))?);
        if from <= low || log.holds_whole_state() {
            return Ok(log);
        }
        (stop, step) = (from, step.saturating_mul(2));
    }
}

/// The live entries of `state` (tombstones left out) in key order.
fn sorted(state: HashMap<Vec<u8>, Option<Vec<u8>>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut state: Vec<_> = (state.into_iter())
        .filter_map(|(entry, value)| Some((entry, value?)))
        .collect();
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
            return Err(Error::TopicPartitions {
                role: "changelog",
                topic: topic.to_string(),
                found: counts[0],
                partitions,
                advice: "delete the topic (the job's state goes with it) or use another --app-id",
            });
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

    /// Sends `checkpoint` for `partition`: its size record, the checkpoint record (after its
    /// pieces, when it is large), then the copies of its entries. Nothing is acknowledged yet: [`Changelog::flush`]
    /// waits for that, once for the checkpoints of every partition. Returns how many pieces the
    /// record took (0: none), to be dropped with [`Changelog::drop_pieces`] once a newer
    /// checkpoint is acknowledged.
    pub fn send_checkpoint(
        &self,
        partition: u32,
        checkpoint: &CheckpointRecord<'_>,
    ) -> Result<u32> {
        let size = StateSize {
            epoch: checkpoint.meta.epoch,
            entries: checkpoint.held,
        };
        let size = bincode::serialize(&size).expect("bincode encodes sizes");
        self.send(partition, SIZE_KEY, Some(&size))?;
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
            .map_err(|e| Error::kafka(format!("cannot read {what}"), e))?;
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
            let log = self.read_log(&consumer, partition, (from, stop), &what, true)?;
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

    /// Offsets `from..stop` of `partition` read into a [`Log`]; with `records_only`, only the
    /// checkpoint records (finding the newest one needs no copy of the state).
    fn read_log(
        &self,
        consumer: &BaseConsumer,
        partition: u32,
        (from, stop): (i64, i64),
        what: &str,
        records_only: bool,
    ) -> Result<Log> {
        let mut log = Log::default();
        read_range(
            consumer,
            &self.topic,
            partition as i32,
            (from, stop),
            what,
            |m| match m.key() {
                Some(key) if !records_only || key == CHECKPOINT_KEY => {
                    log.apply(key, m.payload(), what, m.offset())
                }
                _ => Ok(()),
            },
        )?;
        Ok(log)
    }

    /// Reads `partition` of the changelog back from its end as far as its state needs (see
    /// `read_back`): `None` when it holds no checkpoint. Also
    /// rewrites the copies of the newest checkpoint's entries, which its writer may not have
    /// finished, so the invariant above holds for the checkpoints the next owner writes, and
    /// drops the pieces of older checkpoint records the last owner left in what it read.
    pub fn restore(&self, partition: u32) -> Result<Option<Restored>> {
        let (consumer, range, what) = self.reader(partition)?;
        if range.1 <= range.0 {
            return Ok(None);
        }
        let stretch = |range| self.read_log(&consumer, partition, range, &what, false);
        let log = read_back(range, stretch)?;
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
            channel_watermarks: vec![7, 13],
            bucket_bits: 9,
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
            held: 0,
        }
    }

    type Records = Vec<(Vec<u8>, Option<Vec<u8>>)>;

    /// A changelog partition written as `send_checkpoint` writes it: per epoch its size record,
    /// checkpoint record (in pieces when large) and entry copies.
    #[derive(Default)]
    struct History {
        records: Records,
        live: std::collections::BTreeSet<Vec<u8>>,
    }

    impl History {
        /// Appends `epoch`, changing `entries` (key, `None`: removed) to values of `bytes`.
        fn epoch(&mut self, epoch: u64, entries: &[(u32, bool)], bytes: usize) {
            let entries: Vec<_> = (entries.iter())
                .map(|&(k, live)| {
                    (
                        k.to_be_bytes().to_vec(),
                        live.then(|| vec![epoch as u8; bytes]),
                    )
                })
                .collect();
            for (k, v) in &entries {
                match v {
                    Some(_) => self.live.insert(k.clone()),
                    None => self.live.remove(k),
                };
            }
            let owned = ChangelogCheckpoint {
                entries,
                ..checkpoint(epoch, 0, 0)
            };
            let size = StateSize {
                epoch,
                entries: self.live.len() as u64,
            };
            self.records
                .push((SIZE_KEY.to_vec(), Some(bincode::serialize(&size).unwrap())));
            self.records.extend(written(&borrowed(&owned)));
            self.records.extend(
                (owned.entries.iter())
                    .map(|(k, v)| ([&[ENTRY_PREFIX], &k[..]].concat(), v.clone())),
            );
        }

        /// What `read_back` finds in the records, and the lowest offset it read.
        fn read_back(&self) -> (Option<Found>, i64) {
            let mut lowest = i64::MAX;
            let stretch = |(from, stop): (i64, i64)| {
                lowest = lowest.min(from);
                let mut log = Log::default();
                for offset in from..stop {
                    let (key, value) = &self.records[offset as usize];
                    log.apply(key, value.as_deref(), "test", offset)?;
                }
                Ok(log)
            };
            let log = read_back((0, self.records.len() as i64), stretch).unwrap();
            (log.finish("test").unwrap(), lowest)
        }
    }

    fn same(a: &Found, b: &Found) -> bool {
        (a.checkpoint == b.checkpoint) && a.state == b.state && a.later_state == b.later_state
    }

    #[test]
    fn a_restore_reads_back_only_as_far_as_the_state_needs_and_finds_the_same_state() {
        let mut history = History::default();
        for epoch in 1..=300u64 {
            // 40 entries change every epoch; every tenth epoch removes one and brings another back.
            let mut changes: Vec<_> = (0..40).map(|k| (k, true)).collect();
            if epoch % 10 == 0 {
                changes[(epoch / 10) as usize % 40].1 = false;
            }
            history.epoch(epoch, &changes, 16);
        }
        let whole = read(&history.records).unwrap();
        let (found, lowest) = history.read_back();
        assert!(same(&found.unwrap(), &whole));
        assert!(
            lowest > 0,
            "read {} of {} records",
            history.records.len() as i64 - lowest,
            history.records.len()
        );

        // Large records, in pieces: the pieces are read with their record.
        history.epoch(301, &(0..40).map(|k| (k, true)).collect::<Vec<_>>(), 30_000);
        let whole = read(&history.records).unwrap();
        let (found, lowest) = history.read_back();
        assert!(same(&found.unwrap(), &whole));
        assert!(lowest > 0);
    }

    #[test]
    fn an_entry_unchanged_since_the_start_is_found_and_a_removed_one_stays_removed() {
        let mut history = History::default();
        history.epoch(1, &[(1000, true), (1001, true)], 8);
        for epoch in 2..=3_000u64 {
            let mut changes = vec![(1, true), (2, true)];
            if epoch <= 200 {
                changes.push((1001, epoch < 200));
            }
            history.epoch(epoch, &changes, 8);
        }
        let whole = read(&history.records).unwrap();
        let (found, lowest) = history.read_back();
        let found = found.unwrap();
        assert!(same(&found, &whole));
        assert_eq!(lowest, 0, "entry 1000 is in the first epoch's copies");
        let keys: Vec<_> = found.state.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, [1u32, 2, 1000].map(|k| k.to_be_bytes().to_vec()));
    }

    #[test]
    fn without_a_size_record_of_the_newest_epoch_the_whole_partition_is_read() {
        let mut history = History::default();
        for epoch in 1..=300u64 {
            history.epoch(epoch, &(0..40).map(|k| (k, true)).collect::<Vec<_>>(), 8);
        }
        // Written before size records existed: none at all.
        let old = History {
            records: (history.records.iter())
                .filter(|(k, _)| k != SIZE_KEY)
                .cloned()
                .collect(),
            ..History::default()
        };
        // A writer that died after the next epoch's size record, before its checkpoint record.
        let mut cut = History {
            records: history.records.clone(),
            ..History::default()
        };
        let next = StateSize {
            epoch: 301,
            entries: 40,
        };
        cut.records
            .push((SIZE_KEY.to_vec(), Some(bincode::serialize(&next).unwrap())));
        for history in [old, cut] {
            let (found, lowest) = history.read_back();
            let (found, whole) = (found.unwrap(), read(&history.records).unwrap());
            assert!(same(&found, &whole));
            assert_eq!(lowest, 0);
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
