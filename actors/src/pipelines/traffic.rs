//! `traffic`: per road segment per 30-second tumbling window, how many pings, how many distinct
//! vehicles and their average speed. Input `traffic` (the generator's vehicle pings,
//! [`VehiclePing`]), 10 s of allowed disorder. Output, one per segment and window with pings:
//! `{"segment_id","window_start","window_end","pings","vehicles","avg_speed_kmh"}`.

use crate::events::VehiclePing;
use serde::Serialize;
use spate::prelude::*;
use std::time::Duration;

/// One segment's window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentTraffic {
    /// The road segment, as the input wrote it.
    pub segment_id: Id,
    /// Window start, epoch milliseconds (inclusive).
    pub window_start: Millis,
    /// Window end, epoch milliseconds (exclusive).
    pub window_end: Millis,
    /// Pings in the window.
    pub pings: u64,
    /// Distinct vehicles among them.
    pub vehicles: u64,
    /// Their mean speed, km/h.
    pub avg_speed_kmh: f64,
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    Pipeline::<VehiclePing>::new(
        "traffic",
        "pings, distinct vehicles and average speed per road segment per 30-second tumbling window",
    )
    .input("traffic")
    .event_time(|p| p.event_ms)
    .watermark_delay(Duration::from_secs(10))
    .key_by(|p| p.segment_id.clone())
    .window(Windows::tumbling(Duration::from_secs(30)))
    .aggregate((
        Count,
        CountDistinct::of(|p: &VehiclePing| p.vehicle_id.clone()),
        Avg::of(|p: &VehiclePing| p.speed_kmh),
    ))
    .map(|w| {
        let (pings, vehicles, avg) = w.value;
        Some(SegmentTraffic {
            segment_id: w.key,
            window_start: w.start,
            window_end: w.end,
            pings,
            vehicles,
            avg_speed_kmh: avg?,
        })
    })
}
