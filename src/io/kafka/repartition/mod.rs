//! The repartition topic of a chained pipeline run by a consumer group: how the first stage's
//! exchange batches reach the later stage's partitions when those live in other processes,
//! the way Kafka Streams moves a re-keyed stream between sub-topologies.
//!
//! # How a batch travels
//!
//! At the end of each epoch, key partition `p` routes its first stage's results into one
//! exchange batch per key partition `q` of the later stage (see [`crate::stage`]), even an
//! empty one: it carries `p`'s watermark. The batches are an output stream of the epoch
//! ([`OutputStream::Repartition`](crate::io::sink::OutputStream::Repartition)): staged with the
//! epoch's other outputs, kept in the changelog record with them, and written when the epoch
//! commits, line `q` (the batch for `q`, bincode in base64) to partition `q` of
//! `<app-id>-stage2-repartition` with the `spate.id` header `APP/pNNN/EPOCH/q`. So they are
//! written exactly once like any output: an owner taking `p` over sends its checkpoint's
//! epoch again and skips the lines already in the topic.
//!
//! Key partition `q` reads partition `q` of the topic as a second input of its job
//! ([`WithExchange`]): its offset is part of the source position, so an epoch replays the same
//! batches, and part of `q`'s checkpoint, so the later stage's state and what it read move
//! together to another process. The later stage keeps one watermark per upstream partition,
//! raised only by what the batches carry, so which process read which batch when never
//! changes a result.

mod input;
mod sink;

pub use input::{first_stage_ended, WithExchange};
pub use sink::Repartitioned;

use crate::io::kafka::sink::headers;
use crate::io::kafka::{KafkaTopic, RecordId};
use base64::Engine;
use rdkafka::message::{BorrowedMessage, Headers, Message};

/// The repartition topic of application `app_id` on `brokers`.
pub fn topic(brokers: &str, app_id: &str) -> KafkaTopic {
    KafkaTopic {
        brokers: brokers.to_string(),
        topic: format!("{app_id}-stage2-repartition"),
    }
}

/// One exchange batch read from the repartition topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeRecord {
    /// The key partition that sent it.
    pub from: u32,
    /// The batch, as the later stage encodes it ([`crate::stage::StageRunner::encode`]).
    pub batch: Vec<u8>,
}

/// The first byte of every repartition record: the format of what follows (base64 of the
/// batch). It also keeps an empty batch's line from being empty, which a sink would skip.
const FORMAT: u8 = b'1';

/// Appends `batch` to `lines` as one line of the repartition stream.
pub fn encode_line(batch: &[u8], lines: &mut Vec<u8>) {
    let mut text = String::with_capacity(1 + batch.len().div_ceil(3) * 4);
    text.push(FORMAT as char);
    base64::engine::general_purpose::STANDARD.encode_string(batch, &mut text);
    lines.extend_from_slice(text.as_bytes());
    lines.push(b'\n');
}

/// Reads an exchange batch back from its message: the sender from the `spate.id` header, the
/// batch from the payload.
pub fn decode_record(message: &BorrowedMessage<'_>) -> Result<ExchangeRecord, String> {
    let id = (message.headers())
        .and_then(|hs| hs.iter().find(|h| h.key == headers::ID))
        .and_then(|h| RecordId::parse(h.value?))
        .ok_or("a repartition record without a spate.id header")?;
    let from = std::str::from_utf8(id.writer)
        .ok()
        .and_then(|w| w.strip_prefix('p')?.parse().ok())
        .ok_or("a repartition record whose writer is not a key partition")?;
    let payload = message.payload().unwrap_or_default();
    let text = payload.strip_suffix(b"\n").unwrap_or(payload);
    let text = text
        .strip_prefix(&[FORMAT])
        .ok_or("a repartition record of an unknown format")?;
    let batch = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("a repartition record that is not base64: {e}"))?;
    Ok(ExchangeRecord { from, batch })
}
