//! `spate-loadgen bench`: runs the pipeline in process, or drives an external job through a
//! real broker (tansu), and reports counts that match what was sent, with its JSON and SVG
//! outputs.

#[path = "../../actors/tests/support/tansu.rs"]
mod tansu;

use spate::io::kafka::KafkaTopic;
use spate::io::sink::SinkSpec;
use spate::io::source::SourceSpec;
use spate::runtime::RunConfig;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The sum of a JSON bench report's per-second input counts.
fn records_in_per_second(report: &serde_json::Value) -> u64 {
    report["seconds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["records_in"].as_u64().unwrap())
        .sum()
}

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
        // A state directory, as `spate run --state`: epochs are fsynced.
        .arg("--state")
        .arg(tmp.path().join("state"))
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
    let per_second = records_in_per_second(&report);
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

/// `RUST_LOG` shows the engine's log lines, each epoch's phases among them; without it the
/// report stands alone.
#[test]
fn bench_logs_the_engine_only_when_rust_log_asks() {
    let bench = |log: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_spate-loadgen"));
        command.args(["bench", "sessions", "--rate", "2000", "--duration", "1s"]);
        command.args(["--keys", "50", "--partitions", "2"]);
        match log {
            Some(level) => command.env("RUST_LOG", level),
            None => command.env_remove("RUST_LOG"),
        };
        let out = command.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        err
    };
    let logged = bench(Some("spate=debug"));
    assert!(
        logged.contains("epoch committed") && logged.contains("durations_ms"),
        "{logged}"
    );
    let quiet = bench(None);
    assert!(!quiet.contains("epoch committed"), "{quiet}");
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

/// Against an external job through Kafka: bench writes the job's input and times the results
/// the job writes, counting exactly what reached each topic.
#[test]
fn bench_through_kafka_times_the_results_an_external_job_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = tansu::Tansu::start();
    broker.create_topic("tx", 4);
    let topic = |name: &str| {
        KafkaTopic::parse("--source", &broker.url(name))
            .unwrap()
            .unwrap()
    };
    // The external job (tx-windows Kafka → Kafka), here on a thread of the test.
    let stop = Arc::new(AtomicBool::new(false));
    let config = RunConfig {
        source: SourceSpec::Kafka(topic("tx")),
        sink: SinkSpec::Kafka(topic("out")),
        state_dir: Some(tmp.path().join("state")),
        stop: stop.clone(),
        ..RunConfig::default()
    };
    let job = std::thread::spawn(move || {
        let registry = spate_actors::registry();
        registry.get("tx-windows").unwrap().run(&config)
    });
    // 72 s: a minute boundary plus the 10 s watermark delay pass, so windows close.
    let json = tmp.path().join("k.json");
    let out = Command::new(env!("CARGO_BIN_EXE_spate-loadgen"))
        .args(["bench", "tx-windows", "--rate", "500", "--duration", "72s"])
        .args(["--keys", "50", "--drain", "5s", "--warmup", "0s"])
        .args(["--to", &broker.url("tx"), "--from", &broker.url("out")])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    stop.store(true, Ordering::Release);
    job.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let written: i64 = broker.end_offsets("tx", 4).iter().sum();
    assert_eq!(report["records_in"], 36_000, "{report}");
    assert_eq!(written, 36_000, "what reached the input topic");
    let per_second = records_in_per_second(&report);
    assert_eq!(per_second, 36_000, "the time series adds up");
    // Every result the job wrote was timed, once.
    let results = broker.read_topic("out").len() as u64;
    assert!(results >= 50, "{results} results: no window closed");
    assert_eq!(report["results"].as_u64().unwrap(), results, "{report}");
    assert_eq!(report["latency"]["count"].as_u64().unwrap(), results);
    assert_eq!(report["trigger"], "external");
    assert!(report["late"].is_null(), "counted by the job, not by bench");
}
