//! `spate-loadgen pipe`: copies every record of a Kafka topic (up to the end offsets seen at
//! start) into another topic, partition N to partition N, with the same key and with the
//! producer settings spate's sink uses. Nothing is computed, so its rate is the ceiling a
//! Kafka→Kafka job can reach on that broker with this client library.

use anyhow::{anyhow, bail, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use spate::io::kafka::producer::{Producer, OUTPUT_SETTINGS};
use spate::io::kafka::{ensure_topics, partition_count, KafkaSettings, KafkaTopic, TopicSpec};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a copy did.
#[derive(Debug, Clone, Copy)]
pub struct PipeReport {
    /// Records copied.
    pub records: u64,
    /// Wall time from the first fetch to the last acknowledgement.
    pub elapsed: Duration,
}

/// Copies `from` into `to` (created like spate's sink topics when missing).
pub fn pipe(from: &KafkaTopic, to: &KafkaTopic) -> Result<PipeReport> {
    let settings = KafkaSettings::default();
    // Read as spate's Kafka source reads (src/io/kafka/source.rs): the same bound on prefetch.
    let client = settings.client_config(
        &from.brokers,
        &[
            ("group.id", "spate-loadgen-pipe"),
            ("queued.max.messages.kbytes", "16384"),
        ],
    );
    let partitions = partition_count(&client, from)?
        .ok_or_else(|| anyhow!("topic {from} does not exist (--from)"))?;
    ensure_topics(
        &settings.client_config(&to.brokers, &[]),
        &to.brokers,
        &[TopicSpec {
            name: &to.topic,
            partitions,
            compacted: false,
        }],
    )?;
    let consumer: Arc<BaseConsumer> = Arc::new(client.create()?);
    let (queues, ends) = assign_all(&consumer, from, partitions as i32)?;
    let mut next: Vec<i64> = ends.iter().map(|&(low, _)| low).collect();
    let remaining: u64 = ends
        .iter()
        .map(|&(low, high)| (high - low).max(0) as u64)
        .sum();
    let producer = Producer::open(&settings, &to.brokers, &OUTPUT_SETTINGS)?;
    let started = Instant::now();
    let mut copied = 0u64;
    let mut last_record = Instant::now();
    while copied < remaining {
        let mut turn = 0;
        for (p, queue) in queues.iter().enumerate() {
            while next[p] < ends[p].1 {
                let Some(message) = queue.poll(Duration::ZERO) else {
                    break;
                };
                let message = message?;
                next[p] = message.offset() + 1;
                let mut record = BaseRecord::<[u8], [u8]>::to(&to.topic).partition(p as i32);
                if let Some(payload) = message.payload() {
                    record = record.payload(payload);
                }
                if let Some(key) = message.key() {
                    record = record.key(key);
                }
                producer.send(record, &format!("records to {to}"))?;
                copied += 1;
                turn += 1;
                if copied.is_multiple_of(1024) {
                    producer.poll();
                }
            }
        }
        if turn > 0 {
            last_record = Instant::now();
            continue;
        }
        if last_record.elapsed() > Duration::from_secs(30) {
            bail!(
                "no record from {from} for 30 s with {} still to copy",
                remaining - copied
            );
        }
        // Nothing waiting: serve the client's events and the producer's reports a moment.
        consumer.poll(Duration::from_millis(10));
        producer.poll();
    }
    producer.flush(&format!("the copy to {to}"))?;
    Ok(PipeReport {
        records: copied,
        elapsed: started.elapsed(),
    })
}

/// A partition's (low, high) water marks at the start of the copy.
type WaterMarks = (i64, i64);

type PartitionQueue =
    rdkafka::consumer::base_consumer::PartitionQueue<rdkafka::consumer::DefaultConsumerContext>;

/// Assigns every partition of `from` at its low-water mark and gives each its own queue (taken
/// in turns, as spate's Kafka source reads); returns the queues and each partition's
/// (low, high) water marks.
fn assign_all(
    consumer: &Arc<BaseConsumer>,
    from: &KafkaTopic,
    partitions: i32,
) -> Result<(Vec<PartitionQueue>, Vec<WaterMarks>)> {
    let mut list = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in 0..partitions {
        let (low, high) = consumer.fetch_watermarks(&from.topic, p, Duration::from_secs(30))?;
        list.add_partition_offset(&from.topic, p, Offset::Offset(low))?;
        ends.push((low, high));
    }
    consumer.assign(&list)?;
    let queues = (0..partitions)
        .map(|p| {
            consumer
                .split_partition_queue(&from.topic, p)
                .ok_or_else(|| anyhow!("cannot open a queue for partition {p} of {from}"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((queues, ends))
}
