//! The generation loop: for each record, its due time from the schedule, its key and event time
//! from the knobs, its JSON from the scenario; written to the output, paced to wall-clock time
//! when a rate is asked, with a warning when it cannot keep up.

use crate::knobs::{KeySampler, Knobs};
use crate::output::Output;
use crate::rng::EventRng;
use crate::scenario::Scenario;
use crate::schedule::{RateShape, Schedule};
use anyhow::Result;
use spate::key::Key;
use spate::time::Millis;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// When to stop.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Stop after this many records.
    pub events: Option<u64>,
    /// Stop at records due this long after the start.
    pub duration: Option<Duration>,
}

/// What a run wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Records written (malformed ones included).
    pub events: u64,
    /// Records written malformed.
    pub malformed: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// The asked rate (mean of the shape), when paced.
    pub asked_rate: Option<f64>,
    /// The largest delay behind schedule seen while paced.
    pub max_lag: Duration,
}

impl Report {
    /// Records per second achieved.
    pub fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Whether a paced run stayed within a second of its schedule.
    pub fn kept_up(&self) -> bool {
        self.max_lag < Duration::from_secs(1)
    }
}

/// How a run is paced.
#[derive(Debug, Clone)]
pub struct Pace {
    /// The rate shape.
    pub shape: RateShape,
    /// Sleep to follow the shape in wall-clock time (otherwise only event time follows it).
    pub paced: bool,
    /// Event time of a record due at time 0.
    pub base_ms: Millis,
}

/// Makes a record malformed in one of three ways real feeds break: cut short, a key of the
/// wrong type, or the event time missing.
fn corrupt(line: &mut Vec<u8>, key_field: &str, rng: &mut EventRng) {
    let find = |line: &[u8], pat: &[u8]| line.windows(pat.len()).position(|w| w == pat);
    let kind = rng.below(3);
    let edited = match kind {
        1 => {
            // The key's value, string or integer, wrapped in an object: a wrong type.
            let pat = format!("\"{key_field}\":");
            find(line, pat.as_bytes()).map(|at| {
                let start = at + pat.len();
                let end = start
                    + line[start..]
                        .iter()
                        .take_while(|b| **b != b',' && **b != b'}')
                        .count();
                line.insert(end, b'}');
                line.splice(start..start, *b"{\"id\":");
            })
        }
        2 => {
            // Every time field goes, or the record would still carry an event time.
            let mut removed = None;
            for pat in [
                &b",\"event_ms\":"[..],
                &b",\"event_time\":"[..],
                &b",\"date_time\":"[..],
            ] {
                if let Some(at) = find(line, pat) {
                    let len = pat.len();
                    let end = at
                        + len
                        + line[at + len..]
                            .iter()
                            .take_while(|b| **b != b',' && **b != b'}')
                            .count();
                    line.drain(at..end);
                    removed = Some(());
                }
            }
            removed
        }
        _ => None,
    };
    if edited.is_none() {
        line.truncate(line.len() / 2);
    }
}

/// Generates records until `limits`, writing them to `out`.
pub fn generate(
    scenario: &mut dyn Scenario,
    knobs: &Knobs,
    pace: &Pace,
    limits: Limits,
    out: &mut Output,
) -> Result<Report> {
    let sampler = KeySampler::new(knobs);
    let mut schedule = Schedule::new(pace.shape.clone());
    let started = Instant::now();
    let progress = std::io::stderr().is_terminal();
    let mut next_note = Duration::from_secs(1);
    let (mut malformed, mut max_lag) = (0u64, Duration::ZERO);
    let mut line = Vec::with_capacity(256);
    let mut key_bytes = Vec::with_capacity(16);
    let mut index = 0u64;
    while limits.events.is_none_or(|n| index < n) {
        let due = schedule.next_due();
        if limits.duration.is_some_and(|d| due >= d.as_secs_f64()) {
            break;
        }
        if pace.paced {
            let now = started.elapsed().as_secs_f64();
            if due > now + 0.001 {
                std::thread::sleep(Duration::from_secs_f64(due - now));
            } else if now - due > max_lag.as_secs_f64() {
                max_lag = Duration::from_secs_f64(now - due);
            }
        }
        let mut rng = EventRng::new(knobs.seed, index);
        let key = if scenario.uses_keys() {
            sampler.key(index, &mut rng)
        } else {
            0
        };
        let event_ms = knobs.event_time(pace.base_ms + (due * 1000.0) as Millis, &mut rng);
        line.clear();
        let key = scenario.write(index, key, event_ms, &mut rng, &mut line);
        if rng.chance(knobs.malformed) {
            corrupt(&mut line, scenario.key_field(), &mut rng);
            malformed += 1;
        }
        line.push(b'\n');
        let record_key = scenario.uses_keys().then(|| {
            key_bytes.clear();
            scenario.key_id(key).write_record_key(&mut key_bytes);
            key_bytes.as_slice()
        });
        out.write(record_key, &line)?;
        index += 1;
        if index.is_multiple_of(4096) && started.elapsed() >= next_note {
            let elapsed = started.elapsed();
            next_note = elapsed + Duration::from_secs(1);
            let rate = index as f64 / elapsed.as_secs_f64();
            let lag = if pace.paced {
                (elapsed.as_secs_f64() - due).max(0.0)
            } else {
                0.0
            };
            if lag > 1.0 {
                eprintln!(
                    "spate-loadgen: cannot keep the asked rate: {lag:.1} s behind schedule after {index} records ({rate:.0}/s written)"
                );
            } else if progress {
                eprint!("\r{index} records, {rate:.0}/s   ");
            }
        }
    }
    out.flush()?;
    if progress {
        eprint!("\r");
    }
    Ok(Report {
        events: index,
        malformed,
        elapsed: started.elapsed(),
        asked_rate: pace.paced.then(|| {
            let secs = schedule_span(&pace.shape, index);
            index as f64 / secs.max(1e-9)
        }),
        max_lag,
    })
}

/// Seconds the schedule needs for `n` records (the asked mean rate is n / that).
fn schedule_span(shape: &RateShape, n: u64) -> f64 {
    let mut s = Schedule::new(shape.clone());
    let mut last = 0.0;
    for _ in 0..=n {
        last = s.next_due();
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corruptions_break_the_record() {
        let int_ids =
            br#"{"tx_id":1,"user_id":42,"amount":1.00,"merchant_id":3,"event_ms":1767225600000}"#;
        let string_ids = br#"{"tx_id":"t1","user_id":"u00042","amount":1.00,"merchant_id":"m3","event_ms":1767225600000}"#;
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..60 {
            let mut l = [&int_ids[..], &string_ids[..]][i as usize % 2].to_vec();
            corrupt(&mut l, "user_id", &mut EventRng::new(9, i));
            assert!(serde_json::from_slice::<spate_actors::events::Transaction>(&l).is_err());
            seen.insert(String::from_utf8(l).unwrap());
        }
        for wrong_type in [r#""user_id":{"id":42}"#, r#""user_id":{"id":"u00042"}"#] {
            assert!(seen.iter().any(|l| l.contains(wrong_type)), "{seen:?}");
        }
        assert!(
            seen.iter()
                .any(|l| !l.contains("event_ms") && l.ends_with('}')),
            "{seen:?}"
        );
        assert!(seen.iter().any(|l| !l.ends_with('}')), "{seen:?}");
    }
}
