//! Everything Kafka, in one place: the [source] and [sink], the consumer
//! [group] membership, the [changelog] that carries state between instances, the [producer]
//! they share, and here the plumbing under all of them: topic addresses
//! (`kafka://BROKERS/TOPIC`), client settings (application id, librdkafka properties, delivery
//! guarantee), and the metadata and admin calls that find a topic's partitions or create the
//! topics a job needs.

pub mod changelog;
pub mod group;
pub mod producer;
pub mod repartition;
pub mod sink;
pub mod source;

pub use changelog::{
    Changelog, ChangelogCheckpoint, CheckpointRecord, LaterCheckpoint, LaterRecord,
    NewestCheckpoint, Restored, PIECE_BYTES,
};
pub use sink::{KafkaSink, RecordId};
pub use source::KafkaReader;

use crate::retry::{given_up, pauses};
use crate::{Error, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, DeliveryResult, Message};
use rdkafka::producer::ProducerContext;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A topic on a Kafka cluster, as written on the command line: `kafka://HOST:PORT[,…]/TOPIC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaTopic {
    /// The bootstrap servers (`bootstrap.servers`).
    pub brokers: String,
    /// The topic name.
    pub topic: String,
}

impl KafkaTopic {
    /// Parses `kafka://BROKERS/TOPIC`; `None` when `text` is not a Kafka address at all.
    pub fn parse(flag: &str, text: &str) -> Result<Option<Self>> {
        let Some(rest) = text.strip_prefix("kafka://") else {
            return Ok(None);
        };
        match rest.split_once('/') {
            Some((brokers, topic))
                if !brokers.is_empty() && !topic.is_empty() && !topic.contains('/') =>
            {
                Ok(Some(KafkaTopic {
                    brokers: brokers.to_string(),
                    topic: topic.to_string(),
                }))
            }
            _ => Err(Error::config(
                flag,
                text,
                "use kafka://HOST:PORT/TOPIC (several brokers separated by commas)",
            )),
        }
    }
}

impl std::fmt::Display for KafkaTopic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "kafka://{}/{}", self.brokers, self.topic)
    }
}

/// What a Kafka sink promises after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Guarantee {
    /// Every result exactly once: replayed records already in the topic are skipped.
    #[default]
    ExactlyOnce,
    /// Every result at least once: a replay may send some again (no tail scan at start).
    AtLeastOnce,
}

impl Guarantee {
    /// Parses `exactly-once` or `at-least-once`.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "exactly-once" => Ok(Guarantee::ExactlyOnce),
            "at-least-once" => Ok(Guarantee::AtLeastOnce),
            _ => Err(Error::config(
                "--guarantee",
                text,
                "use exactly-once or at-least-once",
            )),
        }
    }
}

/// Settings every Kafka client of a job shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    /// The application id: the consumer group, and the prefix of the job's own topics
    /// (`<app-id>-late`, `<app-id>-dead-letter`). `None` means `spate-<pipeline>`.
    pub app_id: Option<String>,
    /// librdkafka properties applied after spate's defaults (`security.protocol`, `sasl.*`, …).
    pub options: Vec<(String, String)>,
    /// The Kafka sink's guarantee.
    pub guarantee: Guarantee,
    /// How long a broker may acknowledge nothing of what the job sends (output, changelog)
    /// before the job stops (`--broker-timeout`); a slow broker that makes progress is waited
    /// for however long it takes.
    pub broker_timeout: Duration,
}

/// [`KafkaSettings::broker_timeout`] by default: five minutes, like Kafka Streams'
/// `task.timeout.ms`.
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(300);

impl Default for KafkaSettings {
    fn default() -> Self {
        KafkaSettings {
            app_id: None,
            options: Vec::new(),
            guarantee: Guarantee::default(),
            broker_timeout: BROKER_TIMEOUT,
        }
    }
}

impl KafkaSettings {
    /// The application id for `pipeline`.
    pub fn app_id(&self, pipeline: &str) -> String {
        self.app_id
            .clone()
            .unwrap_or_else(|| format!("spate-{pipeline}"))
    }

    /// Parses one `--kafka-opt KEY=VALUE`.
    pub fn parse_option(text: &str) -> Result<(String, String)> {
        match text.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(Error::config(
                "--kafka-opt",
                text,
                "use KEY=VALUE with a librdkafka property, e.g. security.protocol=SSL",
            )),
        }
    }

    /// A client configuration for `brokers`: spate's `defaults`, then the user's options.
    pub fn client_config(&self, brokers: &str, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", brokers);
        for (k, v) in defaults {
            config.set(*k, *v);
        }
        for (k, v) in &self.options {
            config.set(k, v);
        }
        config
    }
}

/// A producer context that counts failed deliveries (reported on librdkafka's thread) and
/// keeps the first error, so a flush can tell whether everything sent was accepted.
#[derive(Debug, Default)]
pub struct Deliveries {
    reports: AtomicU64,
    failed: AtomicU64,
    first: Mutex<Option<String>>,
}

impl Deliveries {
    /// The number of delivery reports served so far (accepted or failed records).
    pub fn reports(&self) -> u64 {
        self.reports.load(Ordering::Acquire)
    }

    /// The number of records Kafka did not accept.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Acquire)
    }

    /// The first delivery error, if any record failed.
    pub fn first_error(&self) -> Option<String> {
        self.first.lock().expect("delivery lock").clone()
    }
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        self.reports.fetch_add(1, Ordering::AcqRel);
        if let Err((e, message)) = result {
            if self.failed.fetch_add(1, Ordering::AcqRel) == 0 {
                *self.first.lock().expect("delivery lock") =
                    Some(format!("{e} (topic {})", message.topic()));
            }
        }
    }
}

/// Reads partition `partition` of `topic` from offset `from` up to `stop` (exclusive) or the
/// partition's end, whichever comes first, handing each record to `each`. The consumer must
/// have `enable.partition.eof` set. `what` names the read in errors.
pub fn read_range(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    (from, stop): (i64, i64),
    what: &str,
    mut each: impl FnMut(&BorrowedMessage<'_>) -> Result<()>,
) -> Result<()> {
    let fail = |e: KafkaError| Error::kafka(format!("cannot read {what}"), e);
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, partition, Offset::Offset(from))
        .map_err(fail)?;
    consumer.assign(&list).map_err(fail)?;
    let mut next = from;
    let waited = Duration::from_secs(30);
    while next < stop {
        let message = match consumer.poll(waited) {
            None => {
                return Err(Error::KafkaReadTimeout {
                    what: what.to_string(),
                    offset: next,
                    waited,
                })
            }
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(e)) => return Err(fail(e)),
            Some(Ok(m)) => m,
        };
        if message.offset() >= stop {
            break;
        }
        next = message.offset() + 1;
        each(&message)?;
    }
    Ok(())
}

/// The error for a Kafka client that cannot be created: almost always a bad property.
pub(crate) fn client_error(brokers: &str, e: rdkafka::error::KafkaError) -> Error {
    let action = format!(
        "cannot create a Kafka client for {brokers} (check the --kafka-opt flags and the [kafka] table of the --config file)"
    );
    Error::kafka(action, e)
}

/// How long one metadata request may take before it is retried.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// The number of partitions of `topic`, waiting (with backoff and a log line per attempt) while
/// the brokers cannot be reached. `Ok(None)` when the cluster answers that the topic does not
/// exist.
pub fn partition_count(config: &ClientConfig, topic: &KafkaTopic) -> Result<Option<u32>> {
    let consumer: BaseConsumer = config
        .create()
        .map_err(|e| client_error(&topic.brokers, e))?;
    topic_partitions(&consumer, &topic.brokers, &topic.topic)
}

/// While the brokers cannot be reached or cannot create a topic yet: from 200 ms, doubling to
/// 10 s, for as long as it takes.
fn until_reachable() -> backoff::ExponentialBackoff {
    pauses(Duration::from_millis(200), Duration::from_secs(10), None)
}

/// While a created topic does not show in the metadata yet: from 100 ms, doubling to 2 s, for
/// 30 s in all.
fn until_shown() -> backoff::ExponentialBackoff {
    let total = Some(Duration::from_secs(30));
    pauses(Duration::from_millis(100), Duration::from_secs(2), total)
}

/// One topic's partition count (one metadata request per topic: asking for every topic of a
/// cluster can be slow), waiting while the brokers cannot be reached.
fn topic_partitions(consumer: &BaseConsumer, brokers: &str, name: &str) -> Result<Option<u32>> {
    let fetch = || {
        (consumer.fetch_metadata(Some(name), METADATA_TIMEOUT)).map_err(backoff::Error::transient)
    };
    let warn = |e: KafkaError, pause: Duration| {
        tracing::warn!(brokers, "cannot reach Kafka ({e}); retrying in {pause:?}");
    };
    let metadata = backoff::retry_notify(until_reachable(), fetch, warn)
        .map_err(|e| Error::kafka(format!("cannot read the metadata of {name}"), given_up(e)))?;
    let Some(t) = metadata.topics().iter().find(|t| t.name() == name) else {
        return Ok(None);
    };
    match t.error().map(RDKafkaErrorCode::from) {
        None => Ok(Some(t.partitions().len() as u32).filter(|n| *n > 0)),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) => Ok(None),
        Some(code) => Err(Error::KafkaTopic {
            topic: name.to_string(),
            brokers: brokers.to_string(),
            problem: format!("the broker answers {code}"),
            hint: "check the topic and the job's permissions (--kafka-opt for credentials)",
        }),
    }
}

/// The current end (high-water) offset of every partition of `topic`.
pub(crate) fn end_offsets(
    settings: &KafkaSettings,
    topic: &KafkaTopic,
    partitions: u32,
) -> Result<Vec<u64>> {
    let consumer: BaseConsumer = settings
        .client_config(&topic.brokers, &[])
        .create()
        .map_err(|e| client_error(&topic.brokers, e))?;
    (0..partitions as i32)
        .map(|p| {
            consumer
                .fetch_watermarks(&topic.topic, p, Duration::from_secs(30))
                .map(|(_, high)| high.max(0) as u64)
                .map_err(|e| {
                    Error::kafka(
                        format!("cannot read the end offsets of {topic} partition {p}"),
                        e,
                    )
                })
        })
        .collect()
}

/// Whether an admin error may go away by itself (the broker is restarting or unreachable).
fn transient(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::NetworkException
            | RDKafkaErrorCode::NotController
            | RDKafkaErrorCode::LeaderNotAvailable
    )
}

/// A topic a job or the load generator writes to, created when missing.
#[derive(Debug, Clone, Copy)]
pub struct TopicSpec<'a> {
    /// The topic name.
    pub name: &'a str,
    /// Partitions to create it with.
    pub partitions: u32,
    /// Compacted (`cleanup.policy=compact`), for changelogs.
    pub compacted: bool,
}

/// Creates the topics in `topics` that do not exist yet; returns each topic's partition count.
/// It asks to create every topic and takes "already exists" as success: some brokers answer
/// metadata requests for missing topics slowly, and a creation request settles it either way.
pub fn ensure_topics(
    config: &ClientConfig,
    brokers: &str,
    topics: &[TopicSpec<'_>],
) -> Result<Vec<u32>> {
    let admin: AdminClient<DefaultClientContext> =
        config.create().map_err(|e| client_error(brokers, e))?;
    let refused = create_topics(&admin, brokers, topics);
    let consumer: BaseConsumer = config.create().map_err(|e| client_error(brokers, e))?;
    topics
        .iter()
        .map(|spec| created_partitions(&consumer, brokers, spec.name, &refused))
        .collect()
}

/// The creation request for `spec`.
fn new_topic<'a>(spec: &TopicSpec<'a>) -> NewTopic<'a> {
    // -1: the cluster's default replication factor.
    let topic = NewTopic::new(
        spec.name,
        spec.partitions as i32,
        TopicReplication::Fixed(-1),
    );
    if spec.compacted {
        topic.set("cleanup.policy", "compact")
    } else {
        topic
    }
}

/// Asks the brokers to create `topics`, again while they answer with a transient error; returns
/// the topics they refused, with why.
fn create_topics(
    admin: &AdminClient<DefaultClientContext>,
    brokers: &str,
    topics: &[TopicSpec<'_>],
) -> Vec<(String, String)> {
    let new: Vec<NewTopic<'_>> = topics.iter().map(new_topic).collect();
    let options = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
    let attempt = || {
        let mut refused = Vec::new();
        match futures::executor::block_on(admin.create_topics(&new, &options)) {
            Ok(results) => {
                for result in results {
                    match result {
                        Ok(name) => tracing::info!(topic = %name, "created Kafka topic"),
                        Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                        Err((_, code)) if transient(code) => {
                            return Err(backoff::Error::transient(()))
                        }
                        Err((name, code)) => refused.push((name, code.to_string())),
                    }
                }
            }
            Err(e) if e.rdkafka_error_code().is_none_or(transient) => {
                return Err(backoff::Error::transient(()))
            }
            Err(e) => refused.extend(topics.iter().map(|t| (t.name.to_string(), e.to_string()))),
        }
        Ok(refused)
    };
    let warn = |(), pause: Duration| {
        tracing::warn!(
            brokers,
            "cannot create the job's Kafka topics yet; retrying in {pause:?}"
        );
    };
    // Retried for as long as it takes: an error can only be a permanent one, which there is not.
    backoff::retry_notify(until_reachable(), attempt, warn).unwrap_or_default()
}

/// The partition count of topic `name` once the brokers' metadata shows it (it can lag behind
/// a creation for a moment), or why it is not there: the brokers `refused` it, or it did not
/// show within 30 s.
fn created_partitions(
    consumer: &BaseConsumer,
    brokers: &str,
    name: &str,
    refused: &[(String, String)],
) -> Result<u32> {
    let missing = |problem: String, hint| Error::KafkaTopic {
        topic: name.to_string(),
        brokers: brokers.to_string(),
        problem,
        hint,
    };
    let shown = || match topic_partitions(consumer, brokers, name) {
        Ok(Some(n)) => Ok(n),
        Err(e) => Err(backoff::Error::permanent(e)),
        Ok(None) => Err(match refused.iter().find(|(topic, _)| topic == name) {
            Some((_, why)) => backoff::Error::permanent(missing(
                format!("cannot be created: {why}"),
                "create it by hand or grant the job's principal CreateTopics",
            )),
            None => backoff::Error::transient(missing(
                "still missing 30 s after it was created".into(),
                "the broker's log says why it dropped it; start the job again once it is there",
            )),
        }),
    };
    backoff::retry(until_shown(), shown).map_err(given_up)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_topic_addresses() {
        let t = KafkaTopic::parse("--source", "kafka://127.0.0.1:9092,h:1/tx")
            .unwrap()
            .unwrap();
        assert_eq!(t.brokers, "127.0.0.1:9092,h:1");
        assert_eq!(t.topic, "tx");
        assert_eq!(t.to_string(), "kafka://127.0.0.1:9092,h:1/tx");
        assert!(KafkaTopic::parse("--source", "file:x").unwrap().is_none());
        for bad in ["kafka://", "kafka://host", "kafka:///t", "kafka://h:1/a/b"] {
            let err = KafkaTopic::parse("--sink", bad).unwrap_err().to_string();
            assert!(
                err.contains("--sink") && err.contains("kafka://HOST:PORT/TOPIC"),
                "{err}"
            );
        }
        assert_eq!(
            KafkaSettings::parse_option("sasl.username=a=b").unwrap(),
            ("sasl.username".into(), "a=b".into())
        );
        assert!(KafkaSettings::parse_option("novalue").is_err());
        assert_eq!(
            Guarantee::parse("at-least-once").unwrap(),
            Guarantee::AtLeastOnce
        );
        assert!(Guarantee::parse("maybe").is_err());
    }
}
