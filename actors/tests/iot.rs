//! `iot-anomaly` through the `spate` binary: on readings with drift, noise, disorder and
//! planted anomalies (generated here, independently of the load generator), it finds nearly
//! every anomaly a device's trained model can see with almost no false alarm, and its output
//! is the same with 1, 2 and 4 workers and after SIGKILLs.

mod common;

use common::*;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// The anomalies a device's model could see: after the device's 50th reading.
fn visible(path: &Path, planted: &BTreeSet<(String, i64)>) -> BTreeSet<(String, i64)> {
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut visible = BTreeSet::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = (
            v["device_id"].as_str().unwrap().to_string(),
            v["event_ms"].as_i64().unwrap(),
        );
        let n = seen.entry(key.0.clone()).or_default();
        *n += 1;
        if *n > 50 && planted.contains(&key) {
            visible.insert(key);
        }
    }
    visible
}

fn alerts(lines: &[String]) -> BTreeSet<(String, i64)> {
    lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["device_id"].as_str().unwrap().to_string(),
                v["event_ms"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn iot_anomaly_finds_planted_anomalies_the_same_on_any_number_of_workers() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("sensors.jsonl");
    let planted = write_readings(&input, 120_000, 80, 5);
    let visible = visible(&input, &planted);
    assert!(
        visible.len() > 80,
        "too few anomalies to measure: {}",
        visible.len()
    );
    let source = format!("sensors={}", file_arg(&input));
    let mut outputs = Vec::new();
    for workers in ["1", "2", "4"] {
        let out = tmp.path().join(format!("out-{workers}"));
        let sink = file_arg(&out);
        run_ok(&[
            "run",
            "iot-anomaly",
            "--source",
            &source,
            "--sink",
            &sink,
            "--workers",
            workers,
            "--partitions",
            "4",
            "--max-records-per-epoch",
            "7000",
        ]);
        outputs.push(all_outputs(&out)[0].clone());
    }
    assert_same_lines(&outputs[1], &outputs[0], "2 workers against 1");
    assert_same_lines(&outputs[2], &outputs[0], "4 workers against 1");
    let found = alerts(&outputs[0]);
    let caught = visible.intersection(&found).count();
    let false_alarms = found.difference(&planted).count();
    let recall = caught as f64 / visible.len() as f64;
    eprintln!(
        "iot-anomaly: {caught} of {} visible anomalies ({recall:.3}), {false_alarms} false alarms in {} alerts",
        visible.len(),
        found.len()
    );
    assert!(recall >= 0.9, "recall {recall:.3}");
    assert!(
        false_alarms * 20 <= found.len(),
        "{false_alarms} false alarms in {} alerts",
        found.len()
    );
}

#[test]
fn parameters_tune_the_detector_and_unknown_ones_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("sensors.jsonl");
    write_readings(&input, 20_000, 10, 8);
    let source = format!("sensors={}", file_arg(&input));
    let count = |params: &[&str]| {
        let out = tmp.path().join(format!("out-{}", params.join("-")));
        let sink = file_arg(&out);
        let mut args = vec!["run", "iot-anomaly", "--source", &source, "--sink", &sink];
        for p in params {
            args.extend(["--param", p]);
        }
        run_ok(&args);
        all_outputs(&out)[0].len()
    };
    let default = count(&[]);
    assert!(default > 5, "{default}");
    assert_eq!(count(&["threshold=1e9"]), 0, "nothing is that far");
    assert!(
        count(&["threshold=2", "batch=8"]) > default,
        "a low threshold finds more"
    );

    let describe =
        String::from_utf8_lossy(&run_ok(&["describe", "iot-anomaly"]).stdout).into_owned();
    assert!(describe.contains("threshold (default 6)"), "{describe}");
    for (param, says) in [
        ("k=3", "takes threshold, batch"),
        ("threshold=abc", "threshold=abc"),
    ] {
        let out = spate(&["run", "iot-anomaly", "--source", &source, "--param", param])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains(says));
    }
}

#[test]
fn model_metrics_are_served_and_reported() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("sensors.jsonl");
    write_readings(&input, 20_000, 10, 4);
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = spate(&[
        "run",
        "iot-anomaly",
        "--source",
        "stdin",
        "--sink",
        "stdout",
        "--trigger",
        "50ms",
        "--metrics-addr",
        &addr,
        "--report",
    ])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let readings = std::fs::read(&input).unwrap();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&readings).unwrap();
        stdin // kept open until the metrics were read
    });
    wait_until(
        "the model metrics",
        std::time::Duration::from_secs(60),
        || {
            let ended = child.try_wait().unwrap();
            assert!(ended.is_none(), "the job ended early: {ended:?}");
            counter(&addr, "spate_operator_total").is_some()
                && http_get(&addr, "/metrics").is_some_and(|b| b.contains("name=\"alert_rate\""))
        },
    );
    let body = http_get(&addr, "/metrics").unwrap();
    for name in ["model_updates", "model_examples", "scored", "alerts"] {
        assert!(
            body.contains(&format!("spate_operator_total{{name=\"{name}\"")),
            "{name}:\n{body}"
        );
    }
    drop(writer.join().unwrap());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("spate report operator:"))
        .unwrap();
    let value = |name: &str| -> f64 {
        let field = line
            .split(' ')
            .find(|f| f.starts_with(&format!("{name}=")))
            .unwrap();
        field.split('=').nth(1).unwrap().parse().unwrap()
    };
    assert_eq!(value("examples_per_update"), 16.0, "{line}");
    assert!((value("alert_rate") - value("alerts") / value("scored")).abs() < 1e-9);
    assert!(
        value("scored") > 19_000.0 && value("mean_score") > 0.5,
        "{line}"
    );
}

/// The model a run leaves is what `spate model export` writes, and a new job started from it
/// with `--model` continues exactly where the first left off: on the second half of the input
/// it alerts exactly as one job over the whole input does there.
#[test]
fn an_exported_model_continues_the_run_that_trained_it() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole.jsonl");
    write_readings(&whole, 60_000, 12, 21);
    let text = std::fs::read_to_string(&whole).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = (
        tmp.path().join("first.jsonl"),
        tmp.path().join("second.jsonl"),
    );
    let half = lines.len() / 2;
    std::fs::write(&first, lines[..half].join("\n") + "\n").unwrap();
    std::fs::write(&second, lines[half..].join("\n") + "\n").unwrap();
    let run = |input: &Path, name: &str, model: Option<&Path>| -> Vec<String> {
        let (out, state) = (
            tmp.path().join(name),
            tmp.path().join(format!("{name}-state")),
        );
        let (source, sink) = (format!("sensors={}", file_arg(input)), file_arg(&out));
        let state = state.display().to_string();
        let mut args = vec![
            "run",
            "iot-anomaly",
            "--source",
            &source,
            "--sink",
            &sink,
            "--state",
            &state,
        ];
        let model = model.map(|m| m.display().to_string());
        if let Some(model) = &model {
            args.extend(["--model", model]);
        }
        run_ok(&args);
        all_outputs(&out)[0].clone()
    };
    run(&first, "trainer", None);
    let state = tmp.path().join("trainer-state").display().to_string();
    let export = run_ok(&[
        "model",
        "export",
        "--state",
        &state,
        "--pipeline",
        "iot-anomaly",
    ]);
    let model = tmp.path().join("model.jsonl");
    std::fs::write(&model, &export.stdout).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&export.stdout).lines().count(),
        12,
        "one line per device"
    );

    let continued = run(&second, "continued", Some(&model));
    // A device's readings in the second half come in the same order in both runs, after the
    // same first half: its model, and so its alerts, are the same.
    let reading_of = |l: &str| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        (v["device_id"].to_string(), v["event_ms"].as_i64().unwrap())
    };
    let second_half: std::collections::HashSet<_> =
        lines[half..].iter().map(|l| reading_of(l)).collect();
    let late_enough = |l: &&String| second_half.contains(&reading_of(l));
    let whole_run = run(&whole, "whole", None);
    let expected: Vec<String> = whole_run.iter().filter(late_enough).cloned().collect();
    let got: Vec<String> = continued.iter().filter(late_enough).cloned().collect();
    assert!(
        expected.len() > 3,
        "too few alerts to compare: {} of {}",
        expected.len(),
        whole_run.len()
    );
    assert_same_lines(&got, &expected, "started from the exported model");

    let again = spate(&[
        "run",
        "iot-anomaly",
        "--source",
        &format!("sensors={}", file_arg(&first)),
        "--sink",
        &file_arg(&tmp.path().join("trainer")),
        "--state",
        &state,
        "--model",
        &model.display().to_string(),
    ])
    .output()
    .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds checkpoints"));
}
