//! Scenarios: what one generated record looks like. The generator hands a scenario the
//! record's index, key, event time and randomness; the scenario writes one JSON object.

mod clicks;
mod logins;
mod nexmark;
mod sensors;
mod traffic;
mod transactions;

pub use clicks::Clicks;
pub use logins::Logins;
pub use nexmark::Nexmark;
pub use sensors::Sensors;
pub use traffic::Traffic;
pub use transactions::Transactions;

use crate::rng::EventRng;
use spate::key::Id;
use spate::time::Millis;
use spate_actors::events::IdFormat;

/// A kind of generated event.
pub trait Scenario: Send {
    /// The scenario's name (also the file name inside a `--to` directory).
    fn name(&self) -> &'static str;
    /// The JSON field holding the key (malformed records get a wrongly typed value there).
    fn key_field(&self) -> &'static str;
    /// Whether `--keys`, `--skew` and `--burstiness` apply (Nexmark picks its own ids).
    fn uses_keys(&self) -> bool {
        true
    }
    /// The id key number `key` stands for in the records (what keys a Kafka record).
    fn key_id(&self, key: u64) -> Id {
        Id::Int(key as i64)
    }
    /// Appends record `index` as one JSON object, without a newline, and returns the key
    /// number of the record written: `key`, unless the scenario picked another for it (a
    /// Kafka record is keyed by [`key_id`](Self::key_id) of what this returns, so a key stays
    /// in one partition).
    fn write(
        &mut self,
        index: u64,
        key: u64,
        event_ms: Millis,
        rng: &mut EventRng,
        out: &mut Vec<u8>,
    ) -> u64;

    /// Flushes what the scenario writes besides its records (the sensors' truth file).
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The scenarios, by name.
pub const NAMES: [&str; 6] = [
    "transactions",
    "clicks",
    "sensors",
    "traffic",
    "logins",
    "nexmark",
];

/// The scenario called `name`; `base_ms` is the event time of the first record, `ids` how its
/// ids are written.
pub fn by_name(name: &str, base_ms: Millis, ids: IdFormat) -> Option<Box<dyn Scenario>> {
    Some(match name {
        "transactions" => Box::new(Transactions::new(ids)),
        "clicks" => Box::new(Clicks::new(ids)),
        "sensors" => Box::new(Sensors {
            base_ms,
            ids,
            truth: None,
        }),
        "traffic" => Box::new(Traffic { ids }),
        "logins" => Box::new(Logins { ids }),
        "nexmark" => Box::new(Nexmark::new(base_ms)),
        _ => return None,
    })
}

/// The scenario whose records are the input of the built-in pipeline `pipeline`.
pub fn input_of(pipeline: &str) -> Option<&'static str> {
    match pipeline {
        "tx-windows" | "fraud" | "sessions" => Some("transactions"),
        _ => None,
    }
}

/// Serializes `value` as JSON into `out` (the scenarios' events are plain data).
pub(crate) fn write_serde<T: serde::Serialize>(value: &T, out: &mut Vec<u8>) {
    serde_json::to_writer(out, value).expect("scenario events serialize to JSON");
}
