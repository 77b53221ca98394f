//! Event time and processing time: the millisecond timestamp type, parsing of RFC 3339 times
//! and of durations given on the command line, the [watermark] that tracks event time, and a
//! pipeline's event-time [rules] (lateness, output mode, state TTL).

pub mod rules;
pub mod watermark;

pub use rules::{OutputMode, StateTtl, TimeRules, TtlClock};
pub use watermark::WatermarkTracker;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time as milliseconds since the Unix epoch (UTC). Event time and processing time
/// both use it; windows are `[start, end)` in these units.
pub type Millis = i64;

/// The watermark once a bounded input is exhausted: every window and timer fires.
pub const END_OF_TIME: Millis = Millis::MAX;

/// The watermark before any event has been seen.
pub const BEFORE_TIME: Millis = Millis::MIN;

/// The earliest event time accepted: 0001-01-01T00:00:00Z.
pub const MIN_EVENT_TIME: Millis = -62_135_596_800_000;
/// The latest event time accepted: 9999-12-31T23:59:59.999Z.
pub const MAX_EVENT_TIME: Millis = 253_402_300_799_999;

/// `ms` when it is a time RFC 3339 can write (years 1 to 9999); otherwise why not. Decoders
/// send records with other times to the dead-letter output, so window arithmetic never meets
/// a time near the ends of `i64`.
pub fn check_event_time(ms: Millis) -> Result<Millis, String> {
    if (MIN_EVENT_TIME..=MAX_EVENT_TIME).contains(&ms) {
        Ok(ms)
    } else {
        Err(format!(
            "event time {ms} is outside the years 1 to 9999 ({MIN_EVENT_TIME} to {MAX_EVENT_TIME} ms)"
        ))
    }
}

/// Wall-clock time now, in milliseconds since the Unix epoch.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// Converts a `Duration` to whole milliseconds, saturating.
pub fn duration_ms(d: Duration) -> Millis {
    d.as_millis().min(Millis::MAX as u128) as Millis
}

/// A duration in milliseconds as a person reads it (`1m`, `10s`, `1h 30m`).
pub fn format_millis(ms: Millis) -> String {
    humantime::format_duration(Duration::from_millis(ms.max(0) as u64)).to_string()
}

/// Parses an RFC 3339 timestamp such as `2026-01-01T00:00:00.123Z` or
/// `2026-01-01T01:00:00+01:00` into epoch milliseconds.
pub fn parse_rfc3339(text: &str) -> Result<Millis, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            format!(
                "`{text}` is not an RFC 3339 time ({e}); expected e.g. 2026-01-01T00:00:00.123Z"
            )
        })
}

/// Formats epoch milliseconds as RFC 3339 in UTC with millisecond precision.
pub fn format_rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// Writes RFC 3339 UTC times with millisecond precision (`2026-01-01T00:00:00.123Z`) into a
/// byte buffer. The date is formatted once per day and the time of day by arithmetic, so
/// stamping millions of records per second stays cheap even when their times jump around.
#[derive(Debug, Default)]
pub struct Rfc3339Writer {
    day: Option<Millis>,
    date: String,
}

impl Rfc3339Writer {
    /// Appends `ms` as RFC 3339 text (without quotes).
    pub fn write(&mut self, ms: Millis, out: &mut Vec<u8>) {
        const DAY: Millis = 86_400_000;
        let (day, in_day) = (ms.div_euclid(DAY), ms.rem_euclid(DAY));
        if self.day != Some(day) {
            self.date = format_rfc3339(day * DAY);
            self.date.truncate(11); // "YYYY-MM-DDT"
            self.day = Some(day);
        }
        let two = |v: Millis| [b'0' + (v / 10) as u8, b'0' + (v % 10) as u8];
        let (h, m, sec, milli) = (
            in_day / 3_600_000,
            in_day / 60_000 % 60,
            in_day / 1000 % 60,
            in_day % 1000,
        );
        out.extend_from_slice(self.date.as_bytes());
        out.extend_from_slice(&two(h));
        out.push(b':');
        out.extend_from_slice(&two(m));
        out.push(b':');
        out.extend_from_slice(&two(sec));
        out.extend_from_slice(&[
            b'.',
            b'0' + (milli / 100) as u8,
            b'0' + (milli / 10 % 10) as u8,
            b'0' + (milli % 10) as u8,
            b'Z',
        ]);
    }
}

/// Parses a duration such as `100ms`, `5s`, `1.5s`, `1m30s` or `2h` (humantime's units; a bare
/// number means milliseconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if let Ok(ms) = t.parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    if let Some(seconds) = t.strip_suffix('s').filter(|n| n.contains('.')) {
        // humantime takes no fractions: 1.5s is read here.
        if let Some(d) = seconds
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
        {
            return Ok(d);
        }
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("`{text}` is not a duration ({e}); use e.g. 100ms, 1.5s, 1m30s or 2h"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        assert_eq!(
            parse_rfc3339("2026-01-01T00:00:00.123Z"),
            Ok(1_767_225_600_123)
        );
        assert_eq!(
            parse_rfc3339("2026-01-01T01:00:00.123+01:00"),
            Ok(1_767_225_600_123)
        );
        assert_eq!(
            format_rfc3339(1_767_225_600_123),
            "2026-01-01T00:00:00.123Z"
        );
        assert!(parse_rfc3339("yesterday")
            .unwrap_err()
            .contains("yesterday"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1_500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7_200)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("fast").is_err());
    }
}
