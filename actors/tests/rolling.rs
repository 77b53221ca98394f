//! `traffic` and `iot` through the `spate` binary against naive computations over the same
//! input, generated here with disorder (within the watermark delay, so no record is late).

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn parse(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Pings on `segments` segments, 20 ms apart, 10% displaced up to 5 s, by a pool of 300
/// vehicles (so a window sees some vehicle twice).
fn write_pings(path: &Path, n: u64, segments: u64, seed: u64) {
    let mut rng = Rng(seed | 1);
    let mut text = String::new();
    for i in 0..n {
        let mut t = 1_767_225_600_000 + i as i64 * 20;
        if rng.range(0, 10) == 0 {
            t -= rng.range(0, 5_000) as i64;
        }
        let (segment, vehicle) = (rng.range(0, segments), rng.range(0, 300));
        let speed = rng.range(50, 1_300) as f64 / 10.0;
        text += &format!(
            "{{\"segment_id\":\"s{segment:04}\",\"vehicle_id\":\"v{vehicle}\",\"lat\":48.1,\"lon\":2.3,\"speed_kmh\":{speed},\"event_ms\":{t}}}\n"
        );
    }
    std::fs::write(path, text).unwrap();
}

fn run(pipeline: &str, input: &Path, out: &Path, workers: &str) -> Vec<serde_json::Value> {
    let (source, sink) = (file_arg(input), file_arg(out));
    run_ok(&[
        "run",
        pipeline,
        "--source",
        &source,
        "--sink",
        &sink,
        "--workers",
        workers,
    ]);
    parse(&all_outputs(out)[0])
}

#[test]
fn traffic_counts_pings_vehicles_and_mean_speed_per_segment_and_30_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("traffic.jsonl");
    write_pings(&input, 60_000, 25, 3);
    type Window = (u64, BTreeSet<String>, f64);
    let mut expected: BTreeMap<(String, i64), Window> = BTreeMap::new();
    for p in json_lines(&input) {
        let start = p["event_ms"].as_i64().unwrap().div_euclid(30_000) * 30_000;
        let key = (p["segment_id"].as_str().unwrap().to_string(), start);
        let w = expected.entry(key).or_default();
        w.0 += 1;
        w.1.insert(p["vehicle_id"].as_str().unwrap().to_string());
        w.2 += p["speed_kmh"].as_f64().unwrap();
    }
    let one = run("traffic", &input, &tmp.path().join("one"), "1");
    let two = run("traffic", &input, &tmp.path().join("two"), "2");
    assert_eq!(one.len(), expected.len());
    let mut shared_vehicles = 0;
    for (got, again) in one.iter().zip(&two) {
        assert_eq!(got, again, "the same with 2 workers");
        let fields: Vec<&String> = got.as_object().unwrap().keys().collect();
        assert_eq!(
            fields,
            [
                "avg_speed_kmh",
                "pings",
                "segment_id",
                "vehicles",
                "window_end",
                "window_start"
            ]
        );
        let start = got["window_start"].as_i64().unwrap();
        assert_eq!(got["window_end"].as_i64().unwrap(), start + 30_000);
        let key = (got["segment_id"].as_str().unwrap().to_string(), start);
        let (pings, vehicles, speed) = &expected[&key];
        assert_eq!(got["pings"].as_u64().unwrap(), *pings, "{got}");
        assert_eq!(
            got["vehicles"].as_u64().unwrap(),
            vehicles.len() as u64,
            "{got}"
        );
        let mean = got["avg_speed_kmh"].as_f64().unwrap();
        assert!(
            close(mean, speed / *pings as f64),
            "{got}: {}",
            speed / *pings as f64
        );
        shared_vehicles += (*pings > vehicles.len() as u64) as u32;
    }
    assert!(shared_vehicles > 10, "some window must see a vehicle twice");
}

#[test]
fn iot_keeps_rolling_temperature_statistics_per_device() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("sensors.jsonl");
    write_readings(&input, 40_000, 15, 6);
    let mut readings: BTreeMap<(String, i64), Vec<(f64, f64)>> = BTreeMap::new();
    for r in json_lines(&input) {
        let t = r["event_ms"].as_i64().unwrap();
        let device = r["device_id"].as_str().unwrap().to_string();
        let value = (
            r["temperature"].as_f64().unwrap(),
            r["vibration"].as_f64().unwrap(),
        );
        let last = t.div_euclid(10_000) * 10_000;
        for start in (0..6).map(|k| last - k * 10_000) {
            readings
                .entry((device.clone(), start))
                .or_default()
                .push(value);
        }
    }
    let one = run("iot", &input, &tmp.path().join("one"), "1");
    let two = run("iot", &input, &tmp.path().join("two"), "2");
    assert_eq!(one, two, "the same with 2 workers");
    assert_eq!(one.len(), readings.len());
    for got in &one {
        let start = got["window_start"].as_i64().unwrap();
        assert_eq!(got["window_end"].as_i64().unwrap(), start + 60_000);
        let key = (got["device_id"].as_str().unwrap().to_string(), start);
        let values = &readings[&key];
        let n = values.len() as f64;
        let mean = values.iter().map(|v| v.0).sum::<f64>() / n;
        let variance = values.iter().map(|v| (v.0 - mean).powi(2)).sum::<f64>() / n;
        let max = values.iter().map(|v| v.1).fold(f64::MIN, f64::max);
        assert_eq!(got["count"].as_u64().unwrap(), values.len() as u64, "{got}");
        assert!(
            close(got["mean_temperature"].as_f64().unwrap(), mean),
            "{got}: {mean}"
        );
        assert!(
            (got["stddev_temperature"].as_f64().unwrap() - variance.sqrt()).abs() < 1e-9,
            "{got}: {}",
            variance.sqrt()
        );
        assert_eq!(got["max_vibration"].as_f64().unwrap(), max, "{got}");
    }
}
