//! `traffic`: vehicle GPS pings on road segments, slower in the morning and evening rush.

use super::{write_serde, Scenario};
use crate::knobs::trait_of;
use crate::rng::EventRng;
use spate::key::Id;
use spate::time::Millis;
use spate_actors::events::ids::{self, IdFormat};
use spate_actors::events::VehiclePing;

/// Pings by road segment (the key).
/// Rush hours follow the UTC time of day of each record's event time.
#[derive(Debug, Default)]
pub struct Traffic {
    /// How ids are written.
    pub ids: IdFormat,
}

impl Scenario for Traffic {
    fn name(&self) -> &'static str {
        "traffic"
    }

    fn key_field(&self) -> &'static str {
        "segment_id"
    }

    fn key_id(&self, key: u64) -> Id {
        self.ids.id(ids::SEGMENT, key)
    }

    fn write(
        &mut self,
        _index: u64,
        key: u64,
        event_ms: Millis,
        rng: &mut EventRng,
        out: &mut Vec<u8>,
    ) -> u64 {
        let segment = trait_of(key, 2);
        let free_flow = 40.0 + (segment % 9) as f64 * 10.0;
        let hour = event_ms.rem_euclid(86_400_000) as f64 / 3_600_000.0;
        // Congestion peaks at 8:00 and 17:30.
        let rush = (-((hour - 8.0) / 1.2).powi(2)).exp() + (-((hour - 17.5) / 1.5).powi(2)).exp();
        let speed = free_flow * (1.0 - 0.7 * rush.min(1.0)) * (0.85 + 0.3 * rng.unit());
        let (lat0, lon0) = (
            48.0 + (segment >> 8) as f64 % 2.0,
            2.0 + (segment >> 16) as f64 % 2.0,
        );
        let along = rng.unit() * 0.01;
        let ping = VehiclePing {
            segment_id: self.ids.id(ids::SEGMENT, key),
            vehicle_id: self.ids.id(ids::VEHICLE, rng.below(1_000_000)),
            lat: ((lat0 + along) * 1e5).round() / 1e5,
            lon: ((lon0 + along) * 1e5).round() / 1e5,
            speed_kmh: (speed * 10.0).round() / 10.0,
            event_ms,
        };
        write_serde(&ping, out);
        key
    }
}
