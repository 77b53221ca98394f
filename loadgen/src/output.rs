//! Where generated lines go: a JSON-lines file (a path ending in `/` means a directory, holding
//! `<scenario>.jsonl`), standard output, a Kafka topic (each record keyed by the pipeline key,
//! so a key stays in one partition), or nowhere (`null`, to measure the generator itself).

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::producer::BaseRecord;
use spate::io::kafka::producer::Producer;
use spate::io::kafka::{ensure_topics, KafkaSettings, KafkaTopic, TopicSpec};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// A destination for JSON lines.
pub enum Output {
    /// Buffered writes to a file or stdout.
    Writer(BufWriter<Box<dyn Write + Send>>),
    /// Records produced to a Kafka topic.
    Kafka(Box<KafkaOutput>),
    /// Discards everything (to measure the generator itself).
    Null,
}

/// Settings of the Kafka output.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// Partitions of the topic when it has to be created.
    pub partitions: u32,
    /// `compression.type`: none, lz4, zstd, snappy or gzip.
    pub compression: String,
    /// How long the producer waits to fill a batch (`linger.ms`).
    pub linger_ms: u64,
    /// Largest batch in bytes (`batch.size`).
    pub batch_bytes: u64,
    /// Further librdkafka properties, applied last.
    pub options: Vec<(String, String)>,
}

impl Default for KafkaOptions {
    fn default() -> Self {
        KafkaOptions {
            partitions: 4,
            compression: "lz4".into(),
            linger_ms: 10,
            batch_bytes: 1 << 20,
            options: Vec::new(),
        }
    }
}

/// An idempotent Kafka producer writing to one topic.
pub struct KafkaOutput {
    producer: Producer,
    topic: String,
    sent: u64,
}

impl KafkaOutput {
    fn open(topic: &KafkaTopic, options: &KafkaOptions) -> Result<Self> {
        let settings = KafkaSettings {
            options: options.options.clone(),
            ..KafkaSettings::default()
        };
        let admin = settings.client_config(&topic.brokers, &[]);
        ensure_topics(
            &admin,
            &topic.brokers,
            &[TopicSpec {
                name: &topic.topic,
                partitions: options.partitions,
                compacted: false,
            }],
        )
        .map_err(|e| anyhow!("{e} (--to)"))?;
        let (linger, batch) = (
            options.linger_ms.to_string(),
            options.batch_bytes.to_string(),
        );
        let defaults = [
            ("acks", "all"),
            // Java clients' partitioner: a key lands where their producers put it.
            ("partitioner", "murmur2_random"),
            ("compression.type", &options.compression),
            ("linger.ms", &linger),
            ("batch.size", &batch),
            // A generator outruns any broker: a deep queue keeps the broker busy.
            ("queue.buffering.max.messages", "1000000"),
        ];
        let producer = Producer::open(&settings, &topic.brokers, &defaults).map_err(|e| {
            anyhow!("cannot create a Kafka producer for {topic} (--to, --kafka-opt): {e}")
        })?;
        Ok(KafkaOutput {
            producer,
            topic: topic.topic.clone(),
            sent: 0,
        })
    }

    fn write(&mut self, key: Option<&[u8]>, line: &[u8]) -> Result<()> {
        let payload = line.strip_suffix(b"\n").unwrap_or(line);
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.topic).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        self.producer.send(
            record,
            &format!("records to Kafka topic {} (--to)", self.topic),
        )?;
        self.sent += 1;
        if self.sent.is_multiple_of(1024) {
            self.producer.poll();
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.producer
            .flush(&format!("the records of topic {} (--to)", self.topic))?;
        Ok(())
    }
}

impl Output {
    /// Opens `file:PATH`, `stdout`, `null` or `kafka://BROKERS/TOPIC` with default Kafka
    /// settings; `scenario` names the file inside a directory.
    pub fn open(to: &str, scenario: &str) -> Result<Self> {
        Self::open_with(to, scenario, &KafkaOptions::default())
    }

    /// Opens an output; `kafka` applies to a `kafka://` destination.
    pub fn open_with(to: &str, scenario: &str, kafka: &KafkaOptions) -> Result<Self> {
        if let Some(topic) = KafkaTopic::parse("--to", to).map_err(|e| anyhow!(e))? {
            return Ok(Output::Kafka(Box::new(KafkaOutput::open(&topic, kafka)?)));
        }
        let writer: Box<dyn Write + Send> = match to {
            "null" => return Ok(Output::Null),
            "stdout" | "-" => Box::new(std::io::stdout()),
            _ => {
                let Some(path) = to.strip_prefix("file:").filter(|p| !p.is_empty()) else {
                    bail!("invalid --to `{to}`: use file:PATH (a path ending in / is a directory), stdout, kafka://HOST:PORT/TOPIC or null");
                };
                let mut path = PathBuf::from(path);
                if to.ends_with('/') || path.is_dir() {
                    std::fs::create_dir_all(&path).with_context(|| {
                        format!("cannot create directory {} (--to)", path.display())
                    })?;
                    path = path.join(format!("{scenario}.jsonl"));
                }
                Box::new(
                    File::create(&path)
                        .with_context(|| format!("cannot create {} (--to)", path.display()))?,
                )
            }
        };
        Ok(Output::Writer(BufWriter::with_capacity(1 << 20, writer)))
    }

    /// Writes one line (the newline included); `key` is the record's pipeline key, which
    /// keys the Kafka record.
    #[inline]
    pub fn write(&mut self, key: Option<&[u8]>, line: &[u8]) -> Result<()> {
        match self {
            Output::Writer(w) => w.write_all(line).context("cannot write the output (--to)"),
            Output::Kafka(k) => k.write(key, line),
            Output::Null => Ok(()),
        }
    }

    /// Flushes buffered lines (for Kafka: waits until every record is acknowledged).
    pub fn flush(&mut self) -> Result<()> {
        match self {
            Output::Writer(w) => w.flush().context("cannot write the output (--to)"),
            Output::Kafka(k) => k.flush(),
            Output::Null => Ok(()),
        }
    }
}
