//! The changelog: a compacted Kafka topic, `<app-id>-<pipeline>-changelog` with one partition
//! per key partition, that carries each partition's state to whichever instance owns the
//! partition next (the Kafka Streams model; the local sled tree is a cache of it).
//!
//! At each checkpoint a partition writes, in this order, to its changelog partition:
//! 1. one *checkpoint record* (key `c`): the checkpoint's metadata, the next source offset, the
//!    state entries the epoch changed, and the epoch's outputs. The epoch's output is committed
//!    only once this record is acknowledged (the supervisor flushes the changelog once per
//!    epoch, for all partitions);
//! 2. a copy of every changed entry under its own key (`s` ‖ key; a removal is a tombstone),
//!    which compaction keeps as the partition's whole state.
//!
//! Restoring takes the newest value of every entry copy and lays the newest checkpoint record's
//! entries over them. That is exact even when a crash cut step 2 short or compaction ran:
//! copies of epoch e are sent after e's record and before e+1's on one idempotent producer, so
//! every copy in the log is from an epoch at or before the newest record (the idempotent producer
//! keeps a partition's records in order and without gaps), and what that epoch
//! changed is in the record itself. When the partition changes owner (or its process
//! restarts), the last owner's copies may be incomplete while the next owner's records no
//! longer carry those entries, so a restore first rewrites the newest record's copies and waits
//! for them, before the new owner writes anything. The record's outputs let the next owner resend whatever the
//! last one may not have made visible, so exactness never depends on redoing an epoch with the
//! last owner's timing (its watermark and processing time).

use crate::checkpoint::PartitionCheckpoint;
use crate::io::kafka::{
    client_error, ensure_topics, flush_checked, read_range, send_waiting, Deliveries,
    KafkaSettings, TopicSpec,
};
use crate::io::sink::OutputStream;
use crate::{Error, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// Key of the checkpoint record.
const CHECKPOINT_KEY: &[u8] = b"c";
/// Prefix of an entry copy's key.
const ENTRY_PREFIX: u8 = b's';

/// One partition checkpoint as the changelog holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangelogCheckpoint {
    /// The checkpoint's metadata (epoch, watermark, ...).
    pub meta: PartitionCheckpoint,
    /// The next source offset of the partition: where its owner resumes reading.
    pub next_offset: u64,
    /// The state entries the epoch changed (bincode key, bincode value; `None`: removed).
    pub entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// The epoch's outputs (JSON lines per stream), resent by the next owner unless visible.
    pub outputs: Vec<(OutputStream, Vec<u8>)>,
}

/// A checkpoint record as written: [`ChangelogCheckpoint`] borrowed from the partition, so
/// writing copies neither its changed state nor its outputs (bincode encodes a slice and a
/// `Vec` alike, so it reads back as a `ChangelogCheckpoint`).
#[derive(Debug, Serialize)]
pub struct CheckpointRecord<'a> {
    /// See [`ChangelogCheckpoint::meta`].
    pub meta: &'a PartitionCheckpoint,
    /// See [`ChangelogCheckpoint::next_offset`].
    pub next_offset: u64,
    /// See [`ChangelogCheckpoint::entries`].
    pub entries: &'a [(Vec<u8>, Option<Vec<u8>>)],
    /// See [`ChangelogCheckpoint::outputs`].
    pub outputs: &'a [(OutputStream, Vec<u8>)],
}

/// A partition's state as restored from the changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The newest checkpoint record (its entries are already part of `state`).
    pub checkpoint: ChangelogCheckpoint,
    /// Every state entry as of that checkpoint (bincode key, bincode value).
    pub state: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A job's changelog topic.
pub struct Changelog {
    producer: BaseProducer<Deliveries>,
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
        let producer = settings
            .client_config(
                brokers,
                &[
                    ("enable.idempotence", "true"),
                    ("acks", "all"),
                    ("linger.ms", "2"),
                    ("compression.type", "lz4"),
                ],
            )
            .create_with_context(Deliveries::default())
            .map_err(|e| client_error(brokers, e))?;
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
        send_waiting(&self.producer, record).map_err(|e| {
            Error::Runtime(format!(
                "cannot write to the changelog topic {}: {e}",
                self.topic
            ))
        })
    }

    /// Sends `checkpoint` for `partition`: the checkpoint record, then the copies of its
    /// entries. Nothing is acknowledged yet: [`Changelog::flush`] waits for that, once for the
    /// checkpoints of every partition.
    pub fn send_checkpoint(&self, partition: u32, checkpoint: &CheckpointRecord<'_>) -> Result<()> {
        let record = bincode::serialize(checkpoint).expect("bincode encodes checkpoints");
        self.send(partition, CHECKPOINT_KEY, Some(&record))?;
        self.send_copies(partition, checkpoint.entries)
    }

    /// Waits until the changelog has acknowledged everything sent so far, the checkpoints of
    /// `epoch` included; fails when the broker rejected any of it.
    pub fn flush(&self, epoch: u64) -> Result<()> {
        flush_checked(
            &self.producer,
            &format!("the changelog checkpoints of epoch {epoch}"),
        )
    }

    /// Sends the entry copies of `entries` (acknowledged with a later flush).
    fn send_copies(&self, partition: u32, entries: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        let mut key = Vec::with_capacity(32);
        for (entry, value) in entries {
            key.clear();
            key.push(ENTRY_PREFIX);
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

    /// Decodes the checkpoint record at `offset` of the partition named `what`.
    fn decode(what: &str, offset: i64, value: &[u8]) -> Result<ChangelogCheckpoint> {
        bincode::deserialize(value).map_err(|e| Error::Corrupt {
            place: format!("{what} offset {offset}"),
            detail: e.to_string(),
        })
    }

    /// The newest checkpoint record of `partition`, found by reading back from the
    /// partition's end (the copies written after a record are at most one per changed entry,
    /// so this reads little); `None` when the partition holds no checkpoint.
    pub fn newest_checkpoint(&self, partition: u32) -> Result<Option<ChangelogCheckpoint>> {
        let (consumer, (low, mut stop), what) = self.reader(partition)?;
        let mut step = 1024;
        while stop > low {
            let from = (stop - step).max(low);
            let mut newest = None;
            read_range(
                &consumer,
                &self.topic,
                partition as i32,
                (from, stop),
                &what,
                |m| {
                    if let (Some(CHECKPOINT_KEY), Some(value)) = (m.key(), m.payload()) {
                        newest = Some((m.offset(), value.to_vec()));
                    }
                    Ok(())
                },
            )?;
            if let Some((offset, value)) = newest {
                return Self::decode(&what, offset, &value).map(Some);
            }
            stop = from;
            step *= 2;
        }
        Ok(None)
    }

    /// Reads `partition` of the changelog to its end: `None` when it holds no checkpoint. Also
    /// rewrites the copies of the newest checkpoint's entries, which its writer may not have
    /// finished, so the invariant below holds for the checkpoints the next owner writes.
    pub fn restore(&self, partition: u32) -> Result<Option<Restored>> {
        let (consumer, range, what) = self.reader(partition)?;
        if range.1 <= range.0 {
            return Ok(None);
        }
        let mut state: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        let mut newest: Option<ChangelogCheckpoint> = None;
        read_range(
            &consumer,
            &self.topic,
            partition as i32,
            range,
            &what,
            |message| {
                let Some(key) = message.key() else {
                    return Ok(());
                };
                if key == CHECKPOINT_KEY {
                    if let Some(value) = message.payload() {
                        newest = Some(Self::decode(&what, message.offset(), value)?);
                    }
                } else if let Some(entry) = key.strip_prefix(&[ENTRY_PREFIX]) {
                    match message.payload() {
                        Some(value) => state.insert(entry.to_vec(), value.to_vec()),
                        None => state.remove(entry),
                    };
                }
                Ok(())
            },
        )?;
        let Some(mut checkpoint) = newest else {
            return Ok(None);
        };
        for (entry, value) in &checkpoint.entries {
            match value {
                Some(value) => state.insert(entry.clone(), value.clone()),
                None => state.remove(entry),
            };
        }
        // The last owner may have died (or stopped without flushing) before all copies of its
        // newest checkpoint were written, and the next checkpoint record will no longer carry
        // those entries: complete the copies now, before anything is written after them.
        self.send_copies(partition, &checkpoint.entries)?;
        flush_checked(
            &self.producer,
            &format!("the restored changelog entries of partition {partition}"),
        )?;
        checkpoint.entries.clear();
        let mut state: Vec<_> = state.into_iter().collect();
        state.sort_unstable();
        Ok(Some(Restored { checkpoint, state }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrowed_record_reads_back_as_a_checkpoint() {
        let owned = ChangelogCheckpoint {
            meta: PartitionCheckpoint {
                epoch: 7,
                watermark: 5,
                max_event_time: 9,
                processing_time: 11,
            },
            next_offset: 42,
            entries: vec![(vec![1], Some(vec![2, 3])), (vec![4], None)],
            outputs: vec![(OutputStream::Late, b"{}\n".to_vec())],
        };
        let borrowed = CheckpointRecord {
            meta: &owned.meta,
            next_offset: owned.next_offset,
            entries: &owned.entries,
            outputs: &owned.outputs,
        };
        let bytes = bincode::serialize(&borrowed).unwrap();
        assert_eq!(bincode::serialize(&owned).unwrap(), bytes);
        assert_eq!(
            bincode::deserialize::<ChangelogCheckpoint>(&bytes).unwrap(),
            owned
        );
    }
}
