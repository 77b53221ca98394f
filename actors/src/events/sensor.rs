//! IoT sensor readings: the `sensors` scenario's event.

use serde::{Deserialize, Serialize};
use spate::key::Id;
use spate::time::Millis;

/// One reading of a device's sensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorReading {
    /// The device: the key.
    pub device_id: Id,
    /// Degrees Celsius.
    pub temperature: f64,
    /// Vibration, mm/s RMS.
    pub vibration: f64,
    /// Pressure, kPa.
    pub pressure: f64,
    /// Event time, epoch milliseconds.
    pub event_ms: Millis,
}
