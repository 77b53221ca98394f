//! `spate-loadgen sensors --truth FILE`: every planted anomaly is listed once, names a reading
//! that was written, and stands out from its device's other readings; the truth file is
//! refused for other scenarios.

use std::collections::HashMap;

mod common;

use common::loadgen;

#[test]
fn the_truth_file_lists_the_planted_anomalies() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, truth) = (tmp.path().join("s.jsonl"), tmp.path().join("truth.jsonl"));
    let to = format!("file:{}", data.display());
    let truth_arg = truth.display().to_string();
    let out = loadgen(&[
        "sensors", "--events", "100000", "--keys", "20", "--truth", &truth_arg, "--to", &to,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A device can have two readings in one millisecond: keep them all.
    let mut readings: HashMap<(String, i64), Vec<serde_json::Value>> = HashMap::new();
    for line in std::fs::read_to_string(&data).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = (
            v["device_id"].as_str().unwrap().to_string(),
            v["event_ms"].as_i64().unwrap(),
        );
        readings.entry(key).or_default().push(v);
    }
    let planted: Vec<serde_json::Value> = std::fs::read_to_string(&truth)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        (60..=150).contains(&planted.len()),
        "about 0.1%: {}",
        planted.len()
    );
    let mut kinds: HashMap<String, usize> = HashMap::new();
    for p in &planted {
        let key = (
            p["device_id"].as_str().unwrap().to_string(),
            p["event_ms"].as_i64().unwrap(),
        );
        let same = readings
            .get(&key)
            .unwrap_or_else(|| panic!("{p} names no reading"));
        let kind = p["kind"].as_str().unwrap();
        *kinds.entry(kind.to_string()).or_default() += 1;
        let stands_out = |r: &serde_json::Value| match kind {
            "pressure_drop" => r["pressure"].as_f64().unwrap() < 60.0,
            "heat" | "vibration_surge" => r["vibration"].as_f64().unwrap() > 4.0,
            other => panic!("unknown kind {other}"),
        };
        assert!(same.iter().any(stands_out), "{p}: {same:?}");
    }
    assert_eq!(kinds.len(), 3, "every kind is planted: {kinds:?}");

    let out = loadgen(&[
        "clicks", "--events", "10", "--truth", &truth_arg, "--to", "null",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--truth is for sensors"));
}
