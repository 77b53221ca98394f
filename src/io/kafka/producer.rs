//! A Kafka producer that rides out a slow broker: records go out in bounded flights, and every
//! wait (for room in the flight, for the last acknowledgement) lasts as long as the broker makes
//! progress, however slow; only a broker that acknowledges nothing for `--broker-timeout` stops
//! the job, with an error that says so.
//!
//! librdkafka's own limit is a fixed deadline per record (`message.timeout.ms`, 5 minutes by
//! default): a large epoch on a slow broker failed with `MessageTimedOut` although the broker
//! was working through it. Here that deadline is off, librdkafka retries for as long as needed
//! (idempotence makes a retried batch the broker already holds a no-op, not a duplicate), and
//! the watchdog is progress: any delivery report resets it.
//!
//! ```text
//! send: queue full?  ── serve reports, wait ──► room (≤ FLIGHT_RECORDS records, FLIGHT_KBYTES)
//! flush: in flight?  ── serve reports, wait ──► all acknowledged, or the first rejection
//!           └── no report for --broker-timeout ──► Error::BrokerGone
//! ```

use super::{client_error, Deliveries, KafkaSettings};
use crate::{Error, Result};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use std::time::{Duration, Instant};

/// Records a producer may have queued or unacknowledged at once: one flight. Small enough that
/// a slow broker acknowledges a flight well within any request timeout, large enough to keep a
/// fast one busy (several batches per partition).
pub const FLIGHT_RECORDS: u32 = 20_000;
/// Kilobytes a producer may have queued or unacknowledged at once.
pub const FLIGHT_KBYTES: u32 = 32 * 1024;
/// How often a wait logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// librdkafka settings of the job's output producer (the sink), which `spate-loadgen pipe`
/// copies to measure the broker's ceiling.
pub const OUTPUT_SETTINGS: [(&str, &str); 3] = [
    ("acks", "all"),
    ("linger.ms", "5"),
    ("compression.type", "lz4"),
];

/// librdkafka settings of every producer spate uses (users' `--kafka-opt` still override them):
/// bounded flights, no per-record deadline, idempotence (which also keeps each partition's
/// records in send order through retries), and requests that may take a slow broker two
/// minutes before they are retried.
fn ride_out_settings() -> [(&'static str, String); 5] {
    [
        ("queue.buffering.max.messages", FLIGHT_RECORDS.to_string()),
        ("queue.buffering.max.kbytes", FLIGHT_KBYTES.to_string()),
        ("message.timeout.ms", "0".into()),
        ("request.timeout.ms", "120000".into()),
        ("enable.idempotence", "true".into()),
    ]
}

/// An idempotent producer whose waits end on progress, not on a clock (see the module doc).
pub struct Producer {
    inner: BaseProducer<Deliveries>,
    brokers: String,
    /// How long the broker may acknowledge nothing before the producer gives up.
    patience: Duration,
}

/// What a wait is for, as its log lines and errors name it.
struct Waiting<'a> {
    what: &'a str,
    started: Instant,
    last_progress: Instant,
    /// Delivery reports served as of the last look, and as of the last log line.
    seen: u64,
    logged: u64,
    next_log: Instant,
}

impl Producer {
    /// A producer for `brokers` with the ride-out settings, then `defaults`, then the user's
    /// options of `settings`; it gives up on a broker silent for `settings.broker_timeout`.
    pub fn open(
        settings: &KafkaSettings,
        brokers: &str,
        defaults: &[(&str, &str)],
    ) -> Result<Self> {
        let ride_out = ride_out_settings();
        let mut all: Vec<(&str, &str)> = ride_out.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(defaults);
        let inner = settings
            .client_config(brokers, &all)
            .create_with_context(Deliveries::default())
            .map_err(|e| client_error(brokers, e))?;
        Ok(Producer {
            inner,
            brokers: brokers.to_string(),
            patience: settings.broker_timeout,
        })
    }

    /// Queues `record`; while the flight is full, serves delivery reports and waits for room.
    /// `what` names the output in messages.
    pub fn send(&self, mut record: BaseRecord<'_, [u8], [u8]>, what: &str) -> Result<()> {
        let mut waiting: Option<Waiting<'_>> = None;
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    let w = waiting.get_or_insert_with(|| self.waiting(what));
                    self.serve(w)?;
                }
                Err((e, _)) => {
                    let action = format!("cannot send {what} to Kafka at {}", self.brokers);
                    return Err(Error::kafka(action, e));
                }
            }
        }
    }

    /// Waits until every record sent so far is acknowledged or rejected; fails when any was
    /// rejected, or when the broker acknowledged nothing for the producer's patience.
    pub fn flush(&self, what: &str) -> Result<()> {
        let mut waiting = self.waiting(what);
        // `in_flight_count` counts records not yet acknowledged and reports not yet served.
        while self.inner.in_flight_count() > 0 {
            // A zero-timeout flush sends what lingers in the producer's batches right away.
            match self.inner.flush(Duration::ZERO) {
                Ok(()) | Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) => {}
                Err(e) => return Err(Error::kafka(format!("cannot flush {what} to Kafka"), e)),
            }
            self.serve(&mut waiting)?;
        }
        match self.inner.context().first_error() {
            Some(error) => Err(Error::KafkaRejected {
                what: what.to_string(),
                error,
            }),
            None => Ok(()),
        }
    }

    fn waiting<'a>(&self, what: &'a str) -> Waiting<'a> {
        let now = Instant::now();
        let reports = self.inner.context().reports();
        Waiting {
            what,
            started: now,
            last_progress: now,
            seen: reports,
            logged: reports,
            next_log: now + PROGRESS_EVERY,
        }
    }

    /// Serves the delivery reports that are there (sleeping 1 ms when there are none), notes
    /// progress, logs it every [`PROGRESS_EVERY`], and gives up after `patience` without any.
    ///
    /// rdkafka's `poll` and `flush` run to their deadline even after serving an event, so this
    /// polls with a zero timeout and sleeps itself.
    fn serve(&self, w: &mut Waiting<'_>) -> Result<()> {
        loop {
            let served = self.inner.context().reports();
            self.inner.poll(Duration::ZERO);
            if self.inner.context().reports() == served {
                break;
            }
        }
        let now = Instant::now();
        let reports = self.inner.context().reports();
        if reports > w.seen {
            (w.seen, w.last_progress) = (reports, now);
        }
        if now >= w.next_log {
            tracing::warn!(
                acknowledged = reports - w.logged,
                in_flight = self.inner.in_flight_count(),
                "Kafka is slow with {}: waiting for {} s so far, still making progress",
                w.what,
                w.started.elapsed().as_secs()
            );
            w.logged = reports;
            w.next_log = now + PROGRESS_EVERY;
        }
        if now.duration_since(w.last_progress) >= self.patience {
            return Err(Error::BrokerGone {
                brokers: self.brokers.clone(),
                what: w.what.to_string(),
                waited: self.patience,
                in_flight: self.inner.in_flight_count().max(0) as u64,
            });
        }
        if self.inner.in_flight_count() > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Serves the delivery reports that are ready, without waiting (a long writer calls it now
    /// and then, so reports do not pile up between flushes).
    pub fn poll(&self) {
        self.inner.poll(Duration::ZERO);
    }

    /// The delivery counts (for tests and reports).
    pub fn deliveries(&self) -> &Deliveries {
        self.inner.context()
    }
}
