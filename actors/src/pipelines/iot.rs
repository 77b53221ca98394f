//! `iot`: rolling statistics per sensor: per device, 1-minute windows sliding every 10 seconds,
//! the readings' count, the mean and population standard deviation of their temperature, and
//! their highest vibration. Input `sensors` ([`SensorReading`]), 10 s of allowed disorder.
//! Output, one per device and window with readings: `{"device_id","window_start","window_end",
//! "count","mean_temperature","stddev_temperature","max_vibration"}`.

use crate::events::SensorReading;
use serde::Serialize;
use spate::prelude::*;
use std::time::Duration;

/// One device's window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SensorStats {
    /// The device, as the input wrote it.
    pub device_id: Id,
    /// Window start, epoch milliseconds (inclusive).
    pub window_start: Millis,
    /// Window end, epoch milliseconds (exclusive).
    pub window_end: Millis,
    /// Readings in the window.
    pub count: u64,
    /// Their mean temperature.
    pub mean_temperature: f64,
    /// The population standard deviation of their temperature.
    pub stddev_temperature: f64,
    /// Their highest vibration.
    pub max_vibration: f64,
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    Pipeline::<SensorReading>::new(
        "iot",
        "per device, 1-minute windows sliding every 10 s: count, mean and standard deviation of temperature, highest vibration",
    )
    .input("sensors")
    .event_time(|r| r.event_ms)
    .watermark_delay(Duration::from_secs(10))
    .key_by(|r| r.device_id.clone())
    .window(Windows::sliding(
        Duration::from_secs(60),
        Duration::from_secs(10),
    ))
    .aggregate((
        Moments::of(|r: &SensorReading| r.temperature),
        Max::of(|r: &SensorReading| r.vibration),
    ))
    .map(|w| {
        let (temperature, vibration) = w.value;
        Some(SensorStats {
            device_id: w.key,
            window_start: w.start,
            window_end: w.end,
            count: temperature.count,
            mean_temperature: temperature.mean?,
            stddev_temperature: temperature.stddev?,
            max_vibration: vibration?,
        })
    })
}
