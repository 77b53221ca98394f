//! `sensors`: IoT readings with a per-device baseline that drifts over the day, noise, and
//! injected anomalies (0.1% of readings) of three kinds: a heat spike with strong vibration,
//! a pressure sensor dropping out (reading a fraction of its value), and a vibration surge
//! alone. With a truth writer it writes, for each anomaly it plants,
//! `{"device_id","event_ms","kind"}`: what a detector's output can be scored against, never a
//! field of the readings themselves.

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
pub struct Sensors {
    /// Event time of the first record, the origin of the drift.
    pub base_ms: Millis,
    /// How ids are written.
    pub ids: IdFormat,
    /// Where the planted anomalies are listed, if anywhere.
    pub truth: Option<Box<dyn std::io::Write + Send>>,
}

impl std::fmt::Debug for Sensors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sensors")
            .field("base_ms", &self.base_ms)
            .field("truth", &self.truth.is_some())
            .finish()
    }
}

/// A kind of planted anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anomaly {
    /// Temperature 15–25 °C above normal with five times the vibration.
    Heat,
    /// The pressure sensor reads 20–50% of its value.
    PressureDrop,
    /// Four to six times the vibration, temperature normal.
    VibrationSurge,
}

impl Anomaly {
    fn name(self) -> &'static str {
        match self {
            Anomaly::Heat => "heat",
            Anomaly::PressureDrop => "pressure_drop",
            Anomaly::VibrationSurge => "vibration_surge",
        }
    }
}

/// A truth-file line.
#[derive(serde::Serialize)]
struct Planted<'a> {
    device_id: &'a Id,
    event_ms: Millis,
    kind: &'static str,
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

    fn finish(&mut self) -> std::io::Result<()> {
        self.truth.as_mut().map_or(Ok(()), |t| t.flush())
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
        let anomaly = rng.chance(ANOMALY_RATE).then(|| match rng.below(3) {
            0 => Anomaly::Heat,
            1 => Anomaly::PressureDrop,
            _ => Anomaly::VibrationSurge,
        });
        let (spike, shake, pressure_factor) = match anomaly {
            Some(Anomaly::Heat) => (15.0 + rng.unit() * 10.0, 5.0, 1.0),
            Some(Anomaly::PressureDrop) => (0.0, 1.0, 0.2 + rng.unit() * 0.3),
            Some(Anomaly::VibrationSurge) => (0.0, 4.0 + rng.unit() * 2.0, 1.0),
            None => (0.0, 1.0, 1.0),
        };
        let pressure = 101.3 + ((device >> 24) % 100) as f64 / 20.0 + 0.5 * rng.normal();
        let reading = SensorReading {
            device_id: self.ids.id(ids::DEVICE, key),
            temperature: round2(base_temp + drift + spike + 0.3 * rng.normal()),
            vibration: round2((base_vibration * shake + 0.2 * rng.normal()).max(0.0)),
            pressure: round2(pressure * pressure_factor),
            event_ms,
        };
        if let (Some(kind), Some(truth)) = (anomaly, self.truth.as_mut()) {
            let line = Planted {
                device_id: &reading.device_id,
                event_ms,
                kind: kind.name(),
            };
            // A truth file that cannot be written fails the run at `finish`.
            let _ = serde_json::to_writer(&mut *truth, &line)
                .and_then(|()| truth.write_all(b"\n").map_err(serde_json::Error::io));
        }
        write_serde(&reading, out);
        key
    }
}
