//! `spate-loadgen bench`: runs the pipeline in process and reports counts that match what was
//! sent, with its JSON and SVG outputs.

use std::process::Command;

#[test]
fn bench_reports_what_was_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, svg) = (tmp.path().join("b.json"), tmp.path().join("b.svg"));
    let out = Command::new(env!("CARGO_BIN_EXE_spate-loadgen"))
        .args([
            "bench",
            "sessions",
            "--rate",
            "20000",
            "--duration",
            "3s",
            "--keys",
            "500",
            "--partitions",
            "2",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("records in          60000"), "{table}");

    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(
        report["records_in"], 60_000,
        "every generated event was read"
    );
    let per_second: u64 = report["seconds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["records_in"].as_u64().unwrap())
        .sum();
    assert_eq!(per_second, 60_000, "the time series adds up");
    // 500 users, 30-minute sessions, 3 s of input: each user's one session is flushed at the end.
    let (results, flushed) = (
        report["results"].as_u64().unwrap(),
        report["flushed"].as_u64().unwrap(),
    );
    assert_eq!(results + flushed, 500, "{report}");
    assert!(report["throughput_in"].as_f64().unwrap() > 10_000.0);
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg") && chart.matches("<polyline").count() == 2);
}

#[test]
fn bench_names_unknown_pipelines() {
    let out = Command::new(env!("CARGO_BIN_EXE_spate-loadgen"))
        .args(["bench", "nope", "--rate", "10"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope") && err.contains("tx-windows"), "{err}");
}
