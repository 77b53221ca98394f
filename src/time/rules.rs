//! The event-time rules of a pipeline: how far its watermark trails the newest event, how late
//! a record may still be taken, whether windows report once or as they change, and how long
//! untouched state lives.
//!
//! # The lateness rule
//!
//! Every key partition keeps its own watermark, decided by its records alone, in the order it
//! receives them (the way Kafka Streams keeps per-partition stream time):
//!
//! ```text
//! watermark(before record r) = max(event time of the records before r) − delay
//! r is late                 ⇔ time(r) < watermark(before r) − allowed_lateness
//! ```
//!
//! Windows and timers fire on that watermark as soon as it moves, record by record, so which
//! records are late and what every window holds do not depend on how the input was cut into
//! epochs, on the trigger, on the number of workers or on the machine's speed. Only idleness
//! can move a partition's watermark further: a partition without input for `--idle-timeout`
//! (wall-clock time) is advanced to the job's watermark, and that, like the end of a bounded
//! input, happens at an epoch end.

use super::Millis;
use std::time::Duration;

/// When a window's result is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OutputMode {
    /// Each window once, when the watermark has passed its end plus the allowed lateness, so
    /// no record can change it any more (Spark's append mode; Flink without late firings).
    #[default]
    Append,
    /// Each window when the watermark passes its end, then again, marked as an update, each
    /// time a record within the allowed lateness changes it (Flink's late firings; Spark's
    /// update mode).
    Update,
}

impl OutputMode {
    /// Parses `append` or `update`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "append" => Ok(OutputMode::Append),
            "update" => Ok(OutputMode::Update),
            _ => Err(format!(
                "`{text}` is not an output mode: use append or update"
            )),
        }
    }
}

/// Which clock a state TTL follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlClock {
    /// A key's state expires once the watermark is `ttl` past the newest record that touched it.
    EventTime,
    /// A key's state expires at the first epoch end `ttl` of processing time after the epoch
    /// whose record last touched it.
    ProcessingTime,
}

/// A time to live for keyed state (Flink's `StateTtlConfig`, Spark's `transformWithState`
/// TTL): a key that no record touched for `ttl` loses its state and its timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateTtl {
    /// How long untouched state lives.
    pub ttl: Millis,
    /// The clock it is measured on.
    pub clock: TtlClock,
}

impl StateTtl {
    /// State expires `ttl` of event time (watermark) after the last record that touched it.
    pub fn event_time(ttl: Duration) -> Self {
        StateTtl {
            ttl: super::duration_ms(ttl),
            clock: TtlClock::EventTime,
        }
    }

    /// State expires `ttl` of processing time after the last record that touched it.
    pub fn processing_time(ttl: Duration) -> Self {
        StateTtl {
            ttl: super::duration_ms(ttl),
            clock: TtlClock::ProcessingTime,
        }
    }
}

/// Everything a key partition needs to decide lateness, emission and expiry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRules {
    /// How far the watermark trails the newest event time.
    pub watermark_delay: Millis,
    /// How far behind the watermark a record is still taken (it updates windows that have
    /// fired but are kept for it).
    pub allowed_lateness: Millis,
    /// When windows write their results.
    pub output_mode: OutputMode,
    /// Expiry of untouched keyed state.
    pub ttl: Option<StateTtl>,
}

impl TimeRules {
    /// Whether a record at `time` is late for a partition whose watermark is `watermark`.
    #[inline]
    pub fn is_late(&self, time: Millis, watermark: Millis) -> bool {
        time < watermark.saturating_sub(self.allowed_lateness)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::BEFORE_TIME;

    #[test]
    fn lateness_counts_the_allowed_lateness() {
        let strict = TimeRules::default();
        assert!(strict.is_late(9, 10));
        assert!(!strict.is_late(10, 10));
        assert!(!strict.is_late(BEFORE_TIME, BEFORE_TIME));
        let lenient = TimeRules {
            allowed_lateness: 5,
            ..strict
        };
        assert!(!lenient.is_late(5, 10));
        assert!(lenient.is_late(4, 10));
        assert_eq!(OutputMode::parse("update"), Ok(OutputMode::Update));
        assert!(OutputMode::parse("complete").is_err());
    }
}
