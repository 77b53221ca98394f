//! Vehicle GPS pings on road segments: the `traffic` scenario's event.

use serde::{Deserialize, Serialize};
use spate::key::Id;
use spate::time::Millis;

/// One position report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VehiclePing {
    /// The road segment: the key.
    pub segment_id: Id,
    /// The vehicle.
    pub vehicle_id: Id,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Speed, km/h.
    pub speed_kmh: f64,
    /// Event time, epoch milliseconds.
    pub event_ms: Millis,
}
