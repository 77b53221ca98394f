//! `sensors`: IoT readings with a per-device baseline that drifts over the day, noise, and
//! injected anomalies (0.1% of readings: a heat spike with strong vibration).

use super::{write_serde, Scenario};
use crate::knobs::trait_of;
use crate::rng::EventRng;
use spate::key::Id;
use spate::time::Millis;
use spate_actors::events::ids::{self, IdFormat};
use spate_actors::events::SensorReading;

/// Fraction of readings that are anomalies.
pub const ANOMALY_RATE: f64 = 0.001;

/// Readings by device (the key).
#[derive(Debug)]
pub struct Sensors {
    /// Event time of the first record, the origin of the drift.
    pub base_ms: Millis,
    /// How ids are written.
    pub ids: IdFormat,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Scenario for Sensors {
    fn name(&self) -> &'static str {
        "sensors"
    }

    fn key_field(&self) -> &'static str {
        "device_id"
    }

    fn key_id(&self, key: u64) -> Id {
        self.ids.id(ids::DEVICE, key)
    }

    fn write(
        &mut self,
        _index: u64,
        key: u64,
        event_ms: Millis,
        rng: &mut EventRng,
        out: &mut Vec<u8>,
    ) -> u64 {
        let device = trait_of(key, 1);
        let base_temp = 20.0 + (device % 200) as f64 / 10.0;
        let phase = (device >> 8) as f64 % std::f64::consts::TAU;
        let hours = (event_ms - self.base_ms) as f64 / 3_600_000.0;
        let drift = 2.0 * (std::f64::consts::TAU * hours / 24.0 + phase).sin();
        let base_vibration = 1.0 + ((device >> 16) % 40) as f64 / 10.0;
        let anomaly = rng.chance(ANOMALY_RATE);
        let (spike, shake) = if anomaly {
            (15.0 + rng.unit() * 10.0, 5.0)
        } else {
            (0.0, 1.0)
        };
        let reading = SensorReading {
            device_id: self.ids.id(ids::DEVICE, key),
            temperature: round2(base_temp + drift + spike + 0.3 * rng.normal()),
            vibration: round2((base_vibration * shake + 0.2 * rng.normal()).max(0.0)),
            pressure: round2(101.3 + ((device >> 24) % 100) as f64 / 20.0 + 0.5 * rng.normal()),
            event_ms,
        };
        write_serde(&reading, out);
        key
    }
}
