//! A real Kafka-compatible broker for tests: tansu 0.6.0 on a free loopback port with its data
//! in a temporary directory, stopped when dropped; plus producing to and reading back topics
//! with rdkafka. [`Tansu::start`] runs it on its sqlite engine; [`Tansu::start_postgres`] on its
//! PostgreSQL engine, with a PostgreSQL server of its own (data copied from a template that
//! already holds tansu's schema), for hundreds of thousands of records, which the sqlite engine
//! stalls on. `scripts/test` (the README's test command) installs both and says where they are
//! (`SPATE_TANSU`, `SPATE_TANSU_PG`, `SPATE_PG_BIN`, `SPATE_PG_TEMPLATE`; see scripts/lib).

// Each test binary uses a different part of this support module.
#![allow(dead_code)]

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
#[path = "postgres.rs"]
mod postgres;

use postgres::{listening, log_file, on_a_free_port, tool, Postgres};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

/// A running tansu broker (and the PostgreSQL server holding its topics, on that engine).
pub struct Tansu {
    child: Option<Child>,
    /// The PostgreSQL server when the broker runs on that engine.
    postgres: Option<Postgres>,
    port: u16,
    dir: tempfile::TempDir,
}

/// tansu on its sqlite engine: SPATE_TANSU, target/tools/bin/tansu, or `tansu` on the PATH.
fn sqlite_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SPATE_TANSU") {
        return PathBuf::from(path);
    }
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/bin/tansu");
    if tools.exists() {
        return tools;
    }
    PathBuf::from("tansu")
}

impl Tansu {
    /// Starts a broker on its sqlite engine on a free loopback port.
    pub fn start() -> Tansu {
        Tansu::start_on(false)
    }

    /// Starts PostgreSQL and a broker on its postgres engine on free loopback ports.
    pub fn start_postgres() -> Tansu {
        Tansu::start_on(true)
    }

    fn start_on(postgres: bool) -> Tansu {
        let dir = tempfile::tempdir().unwrap();
        let mut broker = Tansu {
            child: None,
            postgres: postgres.then(Postgres::start),
            port: 0,
            dir,
        };
        on_a_free_port("tansu", |port| {
            broker.port = port;
            broker.launch()
        });
        broker
    }

    /// Starts the broker process; false when it exits at once (its port was taken).
    fn launch(&mut self) -> bool {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let (storage, binary) = match &self.postgres {
            Some(server) => (
                server.url("postgres"),
                tool("SPATE_TANSU_PG", "tansu-pg/bin/tansu"),
            ),
            None => ("sqlite://tansu.db".to_string(), sqlite_binary()),
        };
        let log = self.dir.path().join("tansu.log");
        let (out, err) = log_file(&log);
        let mut child = Command::new(&binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", &storage])
            .current_dir(self.dir.path())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}): run the tests with scripts/test",
                    binary.display()
                )
            });
        if listening(&mut child, self.port, "tansu", &log) {
            self.child = Some(child);
            return true;
        }
        false
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default()
    }

    /// `HOST:PORT` of the broker.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `kafka://HOST:PORT/TOPIC`.
    pub fn url(&self, topic: &str) -> String {
        format!("kafka://{}/{topic}", self.brokers())
    }

    /// Stops the broker (its storage stays) and starts it again on the same port.
    pub fn restart(&mut self, down_for: Duration) {
        self.stop();
        std::thread::sleep(down_for);
        assert!(
            self.launch(),
            "tansu did not come back on port {}",
            self.port
        );
    }

    /// Stops the broker (its storage stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.brokers());
        config
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let admin: AdminClient<_> = self.config().create().unwrap();
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
        let result =
            futures::executor::block_on(admin.create_topics([&new], &AdminOptions::new())).unwrap();
        result[0].as_ref().unwrap();
    }

    /// Produces each line of `path` to `topic`, keyed by the JSON field `key_field`, with the
    /// Java clients' partitioner (as the load generator does).
    pub fn produce_lines(&self, topic: &str, path: &Path, key_field: &str) -> usize {
        self.produce_lines_at(topic, path, key_field, None)
    }

    /// As [`produce_lines`](Self::produce_lines), at most `rate` lines per second when given
    /// (a steady stream rather than one burst).
    pub fn produce_lines_at(
        &self,
        topic: &str,
        path: &Path,
        key_field: &str,
        rate: Option<u32>,
    ) -> usize {
        let started = std::time::Instant::now();
        let producer: BaseProducer = self
            .config()
            .set("enable.idempotence", "true")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .create()
            .unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let mut n = 0;
        for line in text.lines() {
            // Keyed as spate and the Java clients' string serializer key records: a string
            // as its bytes, anything else as JSON.
            let key = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| match v.get(key_field)? {
                    serde_json::Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                })
                .unwrap_or_default();
            let mut record = BaseRecord::to(topic).payload(line).key(&key);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
            n += 1;
            if let Some(rate) = rate.filter(|_| n % 100 == 0) {
                let due = started + Duration::from_secs_f64(n as f64 / f64::from(rate));
                producer.poll(Duration::ZERO);
                std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
            }
        }
        producer.flush(Duration::from_secs(60)).unwrap();
        n
    }

    /// Writes a tombstone (a record without value) keyed `key` to partition `partition` of
    /// `topic`.
    pub fn produce_tombstone(&self, topic: &str, partition: i32, key: &[u8]) {
        let producer: BaseProducer = self.config().create().unwrap();
        let record: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to(topic).partition(partition).key(key);
        producer.send(record).map_err(|(e, _)| e).unwrap();
        producer.flush(Duration::from_secs(60)).unwrap();
    }

    /// How many records `topic` holds over all its partitions; 0 while it does not exist.
    pub fn record_count(&self, topic: &str) -> i64 {
        let consumer: BaseConsumer = self.config().create().unwrap();
        let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) else {
            return 0;
        };
        let partitions = metadata
            .topics()
            .first()
            .map_or(0, |t| t.partitions().len());
        (0..partitions as i32)
            .filter_map(|p| {
                consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(10))
                    .ok()
            })
            .map(|(low, high)| high - low)
            .sum()
    }

    /// The end offset of each partition of `topic`.
    pub fn end_offsets(&self, topic: &str, partitions: i32) -> Vec<i64> {
        let consumer: BaseConsumer = self.config().create().unwrap();
        (0..partitions)
            .map(|p| {
                consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(10))
                    .unwrap()
                    .1
            })
            .collect()
    }

    /// The offsets the consumer group `group` committed for each partition of `topic` (-1:
    /// none).
    pub fn committed_offsets(&self, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
        let consumer: BaseConsumer = self.config().set("group.id", group).create().unwrap();
        let mut list = TopicPartitionList::new();
        for p in 0..partitions {
            list.add_partition(topic, p);
        }
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(10))
            .unwrap();
        (0..partitions)
            .map(
                |p| match committed.find_partition(topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => o,
                    _ => -1,
                },
            )
            .collect()
    }

    /// The payloads of every record of `topic`, sorted.
    pub fn sorted_payloads(&self, topic: &str) -> Vec<String> {
        let mut lines: Vec<String> = self
            .read_topic(topic)
            .into_iter()
            .map(|r| r.payload)
            .collect();
        lines.sort();
        lines
    }

    /// Every record of `topic` (read_committed): (partition, payload, headers), in partition and
    /// offset order.
    pub fn read_topic(&self, topic: &str) -> Vec<KafkaRecord> {
        let consumer: BaseConsumer = self
            .config()
            .set("group.id", "spate-tests-reader")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .unwrap();
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap();
        let partitions = metadata.topics()[0].partitions().len() as i32;
        let mut records = Vec::new();
        for p in 0..partitions {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap();
            if high <= low {
                continue;
            }
            let mut list = TopicPartitionList::new();
            list.add_partition_offset(topic, p, Offset::Offset(low))
                .unwrap();
            consumer.assign(&list).unwrap();
            let mut next = low;
            while next < high {
                // tansu on PostgreSQL can fall silent for more than 10 s under load (seen once
                // in the full suite): wait up to a minute for each record before giving up.
                let m = (0..6)
                    .find_map(|_| consumer.poll(Duration::from_secs(10)))
                    .expect("records up to the high watermark within a minute")
                    .unwrap();
                next = m.offset() + 1;
                let headers = m
                    .headers()
                    .map(|hs| {
                        hs.iter()
                            .map(|h| {
                                (
                                    h.key.to_string(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                records.push(KafkaRecord {
                    partition: p,
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    payload: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                    headers,
                });
            }
        }
        records
    }
}

/// One record read back from a topic.
#[derive(Debug, Clone)]
pub struct KafkaRecord {
    pub partition: i32,
    pub key: Option<String>,
    pub payload: String,
    pub headers: Vec<(String, String)>,
}

impl KafkaRecord {
    /// The value of header `key`.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop(); // the broker first, then its PostgreSQL server (dropped after)
    }
}
