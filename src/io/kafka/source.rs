//! The Kafka source: reads the topic partitions the job owns, each into its own key partition
//! (producers key records by the pipeline key, so a topic partition already holds whole keys).
//! Its position is the next offset of each partition it reads, in route order, so an epoch
//! replays exactly; each partition has its own queue, so a replay stops every partition at its
//! recorded offset without reading past it.

use crate::checkpoint::SourcePosition;
use crate::io::kafka::group::GroupMember;
use crate::io::kafka::{KafkaSettings, KafkaTopic};
use crate::io::source::{decode_json_line, trim_line, ReadStatus, SourceReader};
use crate::io::DeadLetter;
use crate::{Error, Result};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, DefaultConsumerContext};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

type PartitionQueue = rdkafka::consumer::base_consumer::PartitionQueue<DefaultConsumerContext>;

/// Turns one Kafka message into a record, or says why it is not one (a dead letter).
pub type Decoder<R> = fn(&BorrowedMessage<'_>) -> std::result::Result<R, String>;

/// Most records taken from one partition before the next partition's turn, so one busy
/// partition cannot starve the others within a chunk.
const TURN: usize = 512;

/// Reads JSON records from partitions of a Kafka topic.
pub struct KafkaReader<R> {
    consumer: Arc<BaseConsumer>,
    topic: KafkaTopic,
    /// The topic partitions read, in route order.
    ids: Vec<u32>,
    /// The consumer group offsets are committed through, when the job is one of its members
    /// (otherwise this reader's own consumer commits them, unless `commits` is false).
    group: Option<Arc<GroupMember>>,
    /// Whether committed positions are told to the consumer group at all.
    commits: bool,
    decoder: Decoder<R>,
    /// The source as named on the command line, for dead letters.
    name: String,
    queues: Vec<PartitionQueue>,
    /// Whether the partitions are assigned (at `next`). Not until the first seek or read: an
    /// assignment starts fetching at once, and a restarted job seeks elsewhere right away.
    assigned: bool,
    /// Next offset to read, per partition.
    next: Vec<u64>,
    /// Where each partition ends for a bounded run (`--until-end`).
    end: Option<Vec<u64>>,
    /// The partition whose turn comes first in the next read.
    cursor: usize,
    /// Routes not read for now (see [`SourceReader::pause`]).
    paused: Vec<bool>,
    last_warning: Option<Instant>,
    _record: PhantomData<fn() -> R>,
}

impl<R: DeserializeOwned> KafkaReader<R> {
    /// Connects to `topic`'s brokers to read the JSON records of the topic partitions `ids`
    /// (route `i` reads partition `ids[i]`). `end`, when given, bounds each of them (offsets to
    /// stop at, in route order). Offsets are committed to the group `app_id`, through `group`
    /// when the job is its member.
    pub fn open(
        topic: &KafkaTopic,
        settings: &KafkaSettings,
        app_id: &str,
        ids: Vec<u32>,
        end: Option<Vec<u64>>,
        group: Option<Arc<GroupMember>>,
    ) -> Result<Self> {
        let mut reader = Self::open_with(topic, settings, app_id, (ids, end), json_record::<R>)?;
        reader.group = group;
        reader.commits = true;
        Ok(reader)
    }
}

impl<R> KafkaReader<R> {
    /// Connects to `topic`'s brokers to read the partitions `ids` (bounded by `end`, as for
    /// [`open`](Self::open)), each message turned into a record by `decoder`; positions are
    /// not committed to any consumer group.
    pub fn open_with(
        topic: &KafkaTopic,
        settings: &KafkaSettings,
        app_id: &str,
        (ids, end): (Vec<u32>, Option<Vec<u64>>),
        decoder: Decoder<R>,
    ) -> Result<Self> {
        let config = settings.client_config(
            &topic.brokers,
            &[
                ("group.id", app_id),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                // A job that never read a partition starts at its beginning (assigned as
                // `Offset::Beginning`); a recorded offset the topic no longer holds is an error,
                // not a silent jump to another place in the log.
                ("auto.offset.reset", "error"),
                // Bounds the records prefetched per partition (librdkafka's default is 64 MB).
                ("queued.max.messages.kbytes", "16384"),
            ],
        );
        let consumer: BaseConsumer = config
            .create()
            .map_err(|e| crate::io::kafka::client_error(&topic.brokers, e))?;
        let reader = KafkaReader {
            consumer: Arc::new(consumer),
            topic: topic.clone(),
            name: topic.to_string(),
            queues: Vec::new(),
            assigned: false,
            next: vec![0; ids.len()],
            ids,
            group: None,
            commits: false,
            decoder,
            end,
            cursor: 0,
            paused: Vec::new(),
            last_warning: None,
            _record: PhantomData,
        };
        Ok(reader)
    }

    /// Assigns every partition at its next offset and gives each its own queue. Assigning
    /// drops whatever was prefetched, so nothing read before a seek can come back after it.
    ///
    /// Assigning also starts fetching, so a reader is assigned only when it is first told where
    /// to read (or read): a restarted job assigned at the beginning and then sought to its
    /// checkpoint had its broker serve whole partitions from offset 0 first (tansu took 2–7 s
    /// for those fetches, and the offset check queued behind them on the same connection).
    fn assign(&mut self) -> Result<()> {
        self.assigned = true;
        self.check_offsets()?;
        self.queues.clear();
        let mut list = TopicPartitionList::new();
        for (p, &offset) in self.next.iter().enumerate() {
            // Offset 0 means nothing was read yet (a position is the last offset read + 1).
            let at = match offset {
                0 => Offset::Beginning,
                n => Offset::Offset(n as i64),
            };
            list.add_partition_offset(&self.topic.topic, self.ids[p] as i32, at)
                .map_err(|e| self.error(e))?;
        }
        self.consumer.assign(&list).map_err(|e| self.error(e))?;
        self.queues = (0..self.next.len())
            .map(|p| {
                let id = self.ids[p];
                self.consumer
                    .split_partition_queue(&self.topic.topic, id as i32)
                    .ok_or_else(|| Error::KafkaTopic {
                        topic: self.topic.topic.clone(),
                        brokers: self.topic.brokers.clone(),
                        problem: format!("librdkafka gave no queue for partition {id}"),
                        hint: "check that the topic still has that partition, and restart the job",
                    })
            })
            .collect::<Result<_>>()?;
        Ok(())
    }

    /// Refuses to resume at an offset the topic no longer holds (deleted by retention, or the
    /// topic was recreated): reading from elsewhere could not reproduce the recorded epochs.
    /// Brokers answer such fetches differently (Kafka with an out-of-range error, which
    /// `auto.offset.reset=error` turns into a failure too; some with nothing at all), so the
    /// range is checked here. A broker that cannot be asked right now skips the check.
    fn check_offsets(&self) -> Result<()> {
        for (&p, &next) in self.ids.iter().zip(&self.next) {
            if next == 0 {
                continue; // nothing read yet: starts at the beginning, wherever that is
            }
            let (low, high) = match self.consumer.fetch_watermarks(
                &self.topic.topic,
                p as i32,
                Duration::from_secs(10),
            ) {
                Ok((low, high)) => (low.max(0) as u64, high.max(0) as u64),
                Err(e) => {
                    tracing::warn!(source = %self.name, "cannot check partition {p}'s offsets ({e}); resuming at {next}");
                    continue;
                }
            };
            if next < low || next > high {
                return Err(Error::OffsetGone {
                    place: format!("partition {p} of {}", self.name),
                    what: format!("the recorded offset {next}"),
                    why: format!("it holds {low}..{high}"),
                });
            }
        }
        Ok(())
    }

    fn error(&self, e: rdkafka::error::KafkaError) -> Error {
        Error::kafka(format!("Kafka source {}", self.name), e)
    }

    /// Where partition `p` must stop in this read: the replay's recorded offset or the end
    /// of a bounded run, whichever comes first.
    fn limit(&self, p: usize, until: Option<&SourcePosition>) -> u64 {
        let end = self.end.as_ref().map_or(u64::MAX, |e| e[p]);
        until.map_or(end, |u| end.min(u.offset_of(p)))
    }

    /// Partition `p`'s high-water mark as of the last fetch response, without a broker request;
    /// `None` before the first one.
    fn high_watermark(&self, p: usize) -> Option<u64> {
        let topic = std::ffi::CString::new(self.topic.topic.as_str()).ok()?;
        let (mut low, mut high) = (-1i64, -1i64);
        // SAFETY: the client pointer is valid while `self.consumer` lives, the topic is a
        // NUL-terminated string, and both outputs are valid i64s. librdkafka answers from the
        // high-water marks of the last fetch responses, without a broker request.
        let err = unsafe {
            rdkafka::bindings::rd_kafka_get_watermark_offsets(
                self.consumer.client().native_ptr(),
                topic.as_ptr(),
                self.ids[p] as i32,
                &mut low,
                &mut high,
            )
        };
        (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
            .then_some(high as u64)
    }

    fn warn(&mut self, message: String) {
        // Broker trouble repeats on every poll: say it at most every ten seconds.
        if self
            .last_warning
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
        {
            tracing::warn!(source = %self.name, "{message}; retrying");
            self.last_warning = Some(Instant::now());
        }
    }
}

/// A JSON record: the message's payload, one JSON value (a trailing newline allowed).
fn json_record<R: DeserializeOwned>(
    message: &BorrowedMessage<'_>,
) -> std::result::Result<R, String> {
    let payload = message.payload().unwrap_or_default();
    let text = payload.strip_suffix(b"\n").unwrap_or(payload);
    match trim_line(text) {
        Some(text) => decode_json_line(text),
        None => Err("empty record".to_string()),
    }
}

/// Decodes one message of route `p` (topic partition `id`) into `out` (and its route into
/// `routes`), or into a dead letter naming where it came from.
fn decode<R>(
    (source, decoder): (&str, Decoder<R>),
    (p, id): (usize, u32),
    message: &BorrowedMessage<'_>,
    out: &mut Vec<R>,
    routes: &mut Vec<u32>,
    dead: &mut Vec<DeadLetter>,
) {
    match decoder(message) {
        Ok(record) => {
            out.push(record);
            routes.push(p as u32);
        }
        Err(error) => {
            let payload = message.payload().unwrap_or_default();
            let text = payload.strip_suffix(b"\n").unwrap_or(payload);
            dead.push(DeadLetter {
                input: None,
                source: source.to_string(),
                file: None,
                partition: Some(id),
                offset: message.offset().max(0) as u64,
                error,
                raw: String::from_utf8_lossy(text).into_owned(),
            })
        }
    }
}

impl<R: Send> SourceReader<R> for KafkaReader<R> {
    fn seek(&mut self, position: SourcePosition) -> Result<()> {
        for (p, next) in self.next.iter_mut().enumerate() {
            *next = position.offset_of(p);
        }
        self.assign()
    }

    fn position(&self) -> SourcePosition {
        SourcePosition::Offsets(self.next.clone())
    }

    fn read(
        &mut self,
        out: &mut Vec<R>,
        routes: &mut Vec<u32>,
        dead: &mut Vec<DeadLetter>,
        max: usize,
        until: Option<&SourcePosition>,
    ) -> Result<ReadStatus> {
        if !self.assigned {
            self.assign()?;
        }
        let n = self.queues.len();
        let mut read = 0;
        let mut open = true;
        while read < max && open {
            open = false;
            for i in 0..n {
                let p = (self.cursor + i) % n;
                if self.paused.get(p).copied().unwrap_or(false) {
                    continue;
                }
                let limit = self.limit(p, until);
                let mut turn = 0;
                while turn < TURN && read < max && self.next[p] < limit {
                    let message = match self.queues[p].poll(Duration::ZERO) {
                        None => break,
                        Some(Err(e))
                            if e.rdkafka_error_code()
                                == Some(RDKafkaErrorCode::AutoOffsetReset) =>
                        {
                            return Err(Error::OffsetGone {
                                place: format!("partition {} of {}", self.ids[p], self.name),
                                what: format!("offset {}", self.next[p]),
                                why: e.to_string(),
                            });
                        }
                        Some(Err(e)) => {
                            self.warn(format!("partition {}: {e}", self.ids[p]));
                            break;
                        }
                        Some(Ok(m)) => m,
                    };
                    let offset = message.offset().max(0) as u64;
                    if offset < self.next[p] {
                        continue; // fetched before a seek to a later offset
                    }
                    let id = self.ids[p];
                    let decoding = (self.name.as_str(), self.decoder);
                    decode(decoding, (p, id), &message, out, routes, dead);
                    self.next[p] = offset + 1;
                    read += 1;
                    turn += 1;
                }
                open |= turn == TURN;
            }
            self.cursor = (self.cursor + 1) % n.max(1);
        }
        if read > 0 {
            return Ok(ReadStatus::Data);
        }
        let done = (0..n).all(|p| self.next[p] >= self.limit(p, until));
        if done {
            return Ok(match (until, &self.end) {
                (None, Some(_)) => ReadStatus::End,
                _ => ReadStatus::Data,
            });
        }
        // Nothing is waiting: serve the client's events (errors, statistics) while idle.
        if let Some(Err(e)) = self.consumer.poll(Duration::from_millis(5)) {
            if e.rdkafka_error_code() == Some(RDKafkaErrorCode::AutoOffsetReset) {
                return Err(Error::OffsetGone {
                    place: self.name.clone(),
                    what: "a recorded offset".into(),
                    why: e.to_string(),
                });
            }
            self.warn(e.to_string());
        }
        Ok(ReadStatus::Idle)
    }

    fn replayable(&self) -> bool {
        true
    }

    fn partitions(&self) -> Option<Vec<u32>> {
        Some(self.ids.clone())
    }

    fn lag(&self) -> Option<Vec<(u32, u64)>> {
        (0..self.next.len())
            .map(|p| {
                let high = self.high_watermark(p)?;
                Some((self.ids[p], high.saturating_sub(self.next[p])))
            })
            .collect()
    }

    fn waiting(&self) -> Option<Vec<bool>> {
        let waiting = (0..self.next.len()).map(|p| match &self.end {
            Some(end) => self.next[p] < end[p],
            None => self
                .high_watermark(p)
                .is_none_or(|high| self.next[p] < high),
        });
        Some(waiting.collect())
    }

    /// Skips the paused partitions' queues. Their records stay in librdkafka's queue, which
    /// stops fetching at `queued.max.messages.kbytes`; librdkafka's own `pause` is not used,
    /// because it drops what was prefetched and fetches it again on resume.
    fn pause(&mut self, paused: &[bool]) {
        self.paused.clear();
        self.paused.extend_from_slice(paused);
    }

    fn committed(&mut self, position: &SourcePosition) {
        if !self.commits {
            return;
        }
        let offsets: Vec<(u32, u64)> = self
            .ids
            .iter()
            .enumerate()
            .map(|(p, &id)| (id, position.offset_of(p)))
            .collect();
        let result = match &self.group {
            Some(group) => group.commit(&self.topic.topic, &offsets),
            None => {
                let mut list = TopicPartitionList::new();
                for &(id, offset) in &offsets {
                    let offset = Offset::Offset(offset as i64);
                    if list
                        .add_partition_offset(&self.topic.topic, id as i32, offset)
                        .is_err()
                    {
                        return;
                    }
                }
                self.consumer
                    .commit(&list, CommitMode::Async)
                    .map_err(|e| Error::kafka("cannot commit offsets to the consumer group", e))
            }
        };
        if let Err(e) = result {
            self.warn(e.to_string());
        }
    }
}
