//! The Kafka sink: results go to the sink topic, late records to `<app-id>-late`, dead letters to
//! `<app-id>-dead-letter` (the raw record as value; source, partition, offset and error in
//! headers). Exactly-once without broker transactions: an epoch's output is sent only after its
//! epoch record is durable, so a replay reproduces it record for record; every record carries
//! one header, `spate.id`, naming the job, the writer (key partition), the epoch and its
//! sequence in the epoch; at start the sink reads each partition's tail back to the last committed epoch and
//! skips the replayed records found there. A writer's records go to the output partition of
//! the same number, where a key's records land with Kafka's default partitioner too when
//! results are keyed like the input. A process that takes a key partition over from the
//! changelog resends the outputs of the checkpoint it restored; when that writer's output in
//! the topic already goes past that checkpoint, it stops ([`Error::OutputAhead`]) rather than
//! make those results a second time.

use crate::checkpoint::Epoch;
use crate::io::kafka::producer::{Producer, OUTPUT_SETTINGS};
use crate::io::kafka::{
    ensure_topics, read_range, Guarantee, KafkaSettings, KafkaTopic, TopicSpec,
};
use crate::io::sink::{EpochSink, EpochStats, Lines, OutputStream, Staged, StagedPayload};
use crate::{Error, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

/// Header names on the records the sink writes.
pub mod headers {
    /// Every record: `APP/WRITER/EPOCH/SEQ`, the application id of the job that wrote it, the
    /// writer (`pNNN` for key partition NNN, `src` for the source), the epoch it belongs to and
    /// its sequence number among that writer's records of the epoch. One header rather than
    /// four: brokers store each header of each record (tansu as a database row), and the four
    /// made the sink's records twice as large. See [`RecordId`](crate::io::sink::RecordId).
    pub const ID: &str = "spate.id";
    /// Dead letters: the source the record came from.
    pub const SOURCE: &str = "spate.source";
    /// Dead letters: the source partition.
    pub const PARTITION: &str = "spate.partition";
    /// Dead letters: the offset in the source (Kafka offset or file byte offset).
    pub const OFFSET: &str = "spate.offset";
    /// Dead letters: why the record was rejected.
    pub const ERROR: &str = "spate.error";
}

/// Where a record in an output topic comes from: the value of its [`headers::ID`] header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordId<'a> {
    /// The application id of the job that wrote the record.
    pub app: &'a [u8],
    /// The writer: `pNNN` for key partition NNN, `src` for the source.
    pub writer: &'a [u8],
    /// The epoch the record belongs to.
    pub epoch: Epoch,
    /// The record's place among its writer's records of the epoch.
    pub seq: u64,
}

impl<'a> RecordId<'a> {
    /// Parses a header value `APP/WRITER/EPOCH/SEQ` (the application id may itself hold `/`);
    /// `None` when it is not one.
    pub fn parse(value: &'a [u8]) -> Option<Self> {
        fn number(field: &[u8]) -> Option<u64> {
            std::str::from_utf8(field).ok()?.parse().ok()
        }
        let mut fields = value.rsplitn(4, |b| *b == b'/');
        let seq = number(fields.next()?)?;
        let epoch = number(fields.next()?)?;
        let writer = fields.next()?;
        let app = fields.next()?;
        Some(RecordId {
            app,
            writer,
            epoch,
            seq,
        })
    }

    /// Appends the header value to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        out.extend_from_slice(self.app);
        out.push(b'/');
        out.extend_from_slice(self.writer);
        write!(out, "/{}/{}", self.epoch, self.seq).expect("writing to a Vec cannot fail");
    }
}

/// One output topic.
struct OutTopic {
    name: String,
    partitions: u32,
}

/// What the tail scan makes of one of the job's records.
enum Tail {
    /// From before the output being recovered: the scan of this partition can stop.
    Older,
    /// Output being recovered: note it so it is not sent again.
    Present,
    /// The same writer's, of an epoch after the one being recovered: that writer's output
    /// went on past the checkpoint this process resumes it from ([`Error::OutputAhead`]).
    Newer,
    /// Neither (another writer's, or newer output the caller does not judge).
    Ignore,
}

/// Records found in the topics at start, by (stream, writer, epoch): their sequence numbers.
type Present = HashMap<(OutputStream, String, Epoch), HashSet<u64>>;

/// Sends each committed epoch's output to Kafka topics.
pub struct KafkaSink {
    producer: Producer,
    config: ClientConfig,
    app_id: String,
    /// Results, late records, dead letters (in [`OutputStream::ALL`] order); the repartition
    /// topic three times for a repartition sink.
    topics: [OutTopic; 3],
    /// The streams this sink writes: [`OutputStream::ALL`], or the repartition stream alone.
    streams: &'static [OutputStream],
    guarantee: Guarantee,
    present: Mutex<Present>,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KafkaSink({})", self.topics[0].name)
    }
}

fn stream_index(stream: OutputStream) -> usize {
    match stream {
        OutputStream::Results | OutputStream::Named(_) | OutputStream::Repartition => 0,
        OutputStream::Late => 1,
        OutputStream::DeadLetter => 2,
    }
}

impl KafkaSink {
    /// Connects to `topic`'s brokers and creates missing output topics with `partitions`
    /// partitions (one per key partition).
    pub fn open(
        topic: &KafkaTopic,
        settings: &KafkaSettings,
        app_id: &str,
        partitions: u32,
    ) -> Result<Self> {
        let config = settings.client_config(&topic.brokers, &[("group.id", app_id)]);
        let names = [
            topic.topic.clone(),
            format!("{app_id}-late"),
            format!("{app_id}-dead-letter"),
        ];
        let specs: Vec<TopicSpec<'_>> = names
            .iter()
            .map(|name| TopicSpec {
                name,
                partitions,
                compacted: false,
            })
            .collect();
        let counts = ensure_topics(&config, &topic.brokers, &specs)?;
        let topics = [0, 1, 2].map(|i| OutTopic {
            name: names[i].clone(),
            partitions: counts[i].max(1),
        });
        Self::with_topics(
            config,
            topic,
            settings,
            app_id,
            (topics, &OutputStream::ALL),
        )
    }

    /// A sink of a chained pipeline's exchange batches ([`OutputStream::Repartition`]) to the
    /// repartition topic `topic`, which has `partitions` partitions (created when missing):
    /// writer `pNNN`'s line `q` of an epoch goes to partition `q`.
    pub fn repartition(
        topic: &KafkaTopic,
        settings: &KafkaSettings,
        app_id: &str,
        partitions: u32,
    ) -> Result<Self> {
        let config = settings.client_config(&topic.brokers, &[("group.id", app_id)]);
        let spec = TopicSpec {
            name: &topic.topic,
            partitions,
            compacted: false,
        };
        let counts = ensure_topics(&config, &topic.brokers, &[spec])?;
        if counts[0] != partitions {
            return Err(Error::TopicPartitions {
                role: "repartition",
                topic: topic.topic.clone(),
                found: counts[0],
                partitions,
                advice: "it belongs to another job of this --app-id: use another --app-id, or delete the topic only together with that job's state and changelog (it holds batches in flight between its stages)",
            });
        }
        let topics = [0, 1, 2].map(|_| OutTopic {
            name: topic.topic.clone(),
            partitions,
        });
        let streams = &[OutputStream::Repartition];
        Self::with_topics(config, topic, settings, app_id, (topics, streams))
    }

    /// The sink of `streams` to `topics` (by [`stream_index`]), with the client `config` its
    /// topics were made with.
    fn with_topics(
        config: ClientConfig,
        topic: &KafkaTopic,
        settings: &KafkaSettings,
        app_id: &str,
        (topics, streams): ([OutTopic; 3], &'static [OutputStream]),
    ) -> Result<Self> {
        let producer = Producer::open(settings, &topic.brokers, &OUTPUT_SETTINGS)?;
        Ok(KafkaSink {
            producer,
            config,
            app_id: app_id.to_string(),
            topics,
            streams,
            guarantee: settings.guarantee,
            present: Mutex::new(HashMap::new()),
        })
    }

    /// The partitions of `stream`'s topic that `writer`'s records go to.
    fn partitions_of(&self, stream: OutputStream, writer: &str) -> Vec<i32> {
        let partitions = self.topics[stream_index(stream)].partitions;
        match stream {
            OutputStream::Repartition => (0..partitions as i32).collect(),
            _ => vec![Self::partition_of(writer, partitions)],
        }
    }

    /// The output partition of `writer`'s records: key partition N writes to partition N.
    fn partition_of(writer: &str, partitions: u32) -> i32 {
        let n = writer
            .strip_prefix('p')
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0);
        (n % partitions) as i32
    }

    fn send(&self, record: BaseRecord<'_, [u8], [u8]>) -> Result<()> {
        let topic = record.topic.to_string();
        self.producer
            .send(record, &format!("records to Kafka topic {topic}"))
    }

    /// Waits until everything sent for `epoch` is acknowledged.
    fn flush(&self, epoch: Epoch) -> Result<()> {
        self.producer.flush(&format!("the output of epoch {epoch}"))
    }

    /// A consumer for reading the output topics' tails.
    fn tail_consumer(&self) -> Result<BaseConsumer> {
        let mut config = self.config.clone();
        config
            .set("group.id", format!("{}-tail-scan", self.app_id))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true");
        config
            .create()
            .map_err(|e| Error::kafka("cannot read Kafka output topics", e))
    }

    fn log_found(present: &Present) {
        let found: usize = present.values().map(HashSet::len).sum();
        if found > 0 {
            tracing::info!(
                records = found,
                "found output of replayed epochs already in Kafka: it will not be sent again"
            );
        }
    }

    /// Reads back from the end of each of `partitions` of `stream`'s topic until `classify`
    /// calls a record of this job [`Tail::Older`] (or the start), noting the records it calls
    /// [`Tail::Present`]. Returns the first record it calls [`Tail::Newer`], if any: (partition,
    /// epoch).
    fn scan_tail(
        &self,
        consumer: &BaseConsumer,
        stream: OutputStream,
        partitions: &[i32],
        classify: impl Fn(&[u8], Epoch) -> Tail,
        present: &mut Present,
    ) -> Result<Option<(i32, Epoch)>> {
        let mut newer = None;
        let topic = &self.topics[stream_index(stream)];
        let fail = |e: KafkaError| {
            let action = format!(
                "cannot read the tail of Kafka topic {} to skip output sent before a restart",
                topic.name
            );
            Error::kafka(action, e)
        };
        for &q in partitions {
            let (low, high) = consumer
                .fetch_watermarks(&topic.name, q, Duration::from_secs(30))
                .map_err(fail)?;
            let (low, mut stop) = (low.max(0), high.max(0));
            let mut step = 4096;
            while stop > low {
                let from = (stop - step).max(low);
                let mut older = false;
                let what = format!(
                    "the tail of Kafka topic {} partition {q} (to skip output sent before a restart)",
                    topic.name
                );
                read_range(consumer, &topic.name, q, (from, stop), &what, |message| {
                    let id = message.headers().and_then(|hs| {
                        hs.iter()
                            .find(|h| h.key == headers::ID)
                            .and_then(|h| RecordId::parse(h.value?))
                    });
                    let Some(RecordId {
                        app,
                        writer,
                        epoch,
                        seq,
                    }) = id
                    else {
                        return Ok(());
                    };
                    if app != self.app_id.as_bytes() {
                        return Ok(());
                    }
                    match classify(writer, epoch) {
                        Tail::Older => older = true,
                        Tail::Present => {
                            present
                                .entry((
                                    stream,
                                    String::from_utf8_lossy(writer).into_owned(),
                                    epoch,
                                ))
                                .or_default()
                                .insert(seq);
                        }
                        Tail::Newer => newer = newer.or(Some((q, epoch))),
                        Tail::Ignore => {}
                    }
                    Ok(())
                })?;
                if older {
                    break;
                }
                stop = from;
                step = step.saturating_mul(2);
            }
        }
        Ok(newer)
    }
}

impl EpochSink for KafkaSink {
    fn location(&self, stream: OutputStream) -> String {
        format!("Kafka topic {}", self.topics[stream_index(stream)].name)
    }

    fn stage(
        &self,
        epoch: Epoch,
        stream: OutputStream,
        writer: &str,
        bytes: Vec<u8>,
    ) -> Result<Option<Staged>> {
        self.stage_keyed(epoch, stream, writer, Lines::unkeyed(bytes))
    }

    /// A result's key is its record's key.
    fn keyed(&self) -> bool {
        true
    }

    fn stage_keyed(
        &self,
        epoch: Epoch,
        stream: OutputStream,
        writer: &str,
        lines: Lines,
    ) -> Result<Option<Staged>> {
        Ok(Staged::lines(epoch, stream, writer, lines))
    }

    fn commit(&self, epoch: Epoch, staged: Vec<Staged>, _stats: &EpochStats) -> Result<()> {
        if staged.is_empty() {
            return Ok(());
        }
        let mut present = self.present.lock().expect("sink lock");
        let mut id = Vec::with_capacity(64);
        for s in &staged {
            let StagedPayload::Lines { writer, lines } = &s.payload else {
                continue;
            };
            let topic = &self.topics[stream_index(s.stream)];
            let sent = present.remove(&(s.stream, writer.clone(), epoch));
            let mut keys = lines.keys();
            let lines = lines
                .bytes
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .enumerate();
            for (seq, line) in lines {
                let key = keys.next();
                let seq = seq as u64;
                if sent.as_ref().is_some_and(|sent| sent.contains(&seq)) {
                    continue; // sent before a restart
                }
                id.clear();
                RecordId {
                    app: self.app_id.as_bytes(),
                    writer: writer.as_bytes(),
                    epoch,
                    seq,
                }
                .write(&mut id);
                let mut hs = OwnedHeaders::new_with_capacity(5).insert(header(headers::ID, &id));
                let mut payload: &[u8] = line;
                let mut partition = match s.stream {
                    // Line q of a writer's exchange batches is the batch for key partition q.
                    OutputStream::Repartition => (seq % u64::from(topic.partitions)) as i32,
                    _ => Self::partition_of(writer, topic.partitions),
                };
                let dead: Option<DeadLetterLine> = match s.stream {
                    OutputStream::DeadLetter => serde_json::from_slice(line).ok(),
                    _ => None,
                };
                if let Some(dead) = &dead {
                    let offset_text = dead.offset.to_string();
                    let source_partition = dead.partition.unwrap_or(0);
                    partition = (source_partition % topic.partitions) as i32;
                    hs = hs
                        .insert(header(headers::SOURCE, dead.source.as_bytes()))
                        .insert(header(
                            headers::PARTITION,
                            source_partition.to_string().as_bytes(),
                        ))
                        .insert(header(headers::OFFSET, offset_text.as_bytes()))
                        .insert(header(headers::ERROR, dead.error.as_bytes()));
                    payload = dead.raw.as_bytes();
                }
                let mut record = BaseRecord::to(&topic.name)
                    .partition(partition)
                    .payload(payload)
                    .headers(hs);
                if let Some(key) = key {
                    record = record.key(key);
                }
                self.send(record)?;
            }
        }
        drop(present);
        self.flush(epoch)
    }

    fn recover(&self, committed: Epoch, recorded: Epoch) -> Result<()> {
        if self.guarantee == Guarantee::AtLeastOnce || recorded <= committed {
            return Ok(());
        }
        let consumer = self.tail_consumer()?;
        let mut present = self.present.lock().expect("sink lock");
        for &stream in self.streams {
            let all: Vec<i32> = (0..self.topics[stream_index(stream)].partitions as i32).collect();
            let classify = |_: &[u8], epoch| match epoch {
                e if e <= committed => Tail::Older,
                e if e <= recorded => Tail::Present,
                _ => Tail::Ignore,
            };
            self.scan_tail(&consumer, stream, &all, classify, &mut present)?;
        }
        Self::log_found(&present);
        Ok(())
    }

    fn recover_resent(&self, resent: &[(String, Epoch)]) -> Result<()> {
        if self.guarantee == Guarantee::AtLeastOnce || resent.is_empty() {
            return Ok(());
        }
        let consumer = self.tail_consumer()?;
        let mut present = self.present.lock().expect("sink lock");
        for (writer, resent_epoch) in resent {
            for &stream in self.streams {
                let partitions = self.partitions_of(stream, writer);
                let classify = |w: &[u8], epoch: Epoch| match epoch {
                    _ if w != writer.as_bytes() => Tail::Ignore,
                    e if e < *resent_epoch => Tail::Older,
                    e if e == *resent_epoch => Tail::Present,
                    _ => Tail::Newer,
                };
                let newer =
                    self.scan_tail(&consumer, stream, &partitions, classify, &mut present)?;
                if let Some((partition, found)) = newer {
                    return Err(Error::OutputAhead {
                        topic: self.topics[stream_index(stream)].name.clone(),
                        partition,
                        writer: writer.clone(),
                        found,
                        restored: *resent_epoch,
                    });
                }
            }
        }
        Self::log_found(&present);
        Ok(())
    }

    fn exactly_once(&self) -> bool {
        self.guarantee == Guarantee::ExactlyOnce
    }
}

fn header<'a>(key: &'a str, value: &'a [u8]) -> Header<'a, &'a [u8]> {
    Header {
        key,
        value: Some(value),
    }
}

/// The fields of a dead-letter line the sink moves into headers.
#[derive(serde::Deserialize)]
struct DeadLetterLine {
    source: String,
    #[serde(default)]
    partition: Option<u32>,
    offset: u64,
    error: String,
    raw: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_id_reads_back_as_written_even_with_slashes_in_the_app_id() {
        let id = RecordId {
            app: b"team/fraud",
            writer: b"p003",
            epoch: 41,
            seq: 7,
        };
        let mut value = Vec::new();
        id.write(&mut value);
        assert_eq!(value, b"team/fraud/p003/41/7");
        assert_eq!(RecordId::parse(&value), Some(id));
    }

    #[test]
    fn other_header_values_are_no_record_id() {
        for value in [&b""[..], b"app/p001/7", b"app/p001/x/7", b"app/p001/7/-1"] {
            assert_eq!(RecordId::parse(value), None, "{value:?}");
        }
    }
}
