//! `fraud-score` through the `spate` binary, on payments and outcomes generated here
//! (independently of the load generator): every payment is scored once, by exactly the model
//! version the outcomes before its micro-batch make, whatever the workers and epochs; the
//! prequential AUC is high; and a model exported from one job starts another.

mod common;

use common::*;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

const MINUTE: i64 = 60_000;

/// One scored payment: (tx_id, event_ms, probability, model_version).
fn scores(lines: &[String]) -> Vec<(String, i64, f64, u64)> {
    lines
        .iter()
        .map(|l| {
            let v = object_with(
                l,
                &[
                    "event_ms",
                    "model_version",
                    "probability",
                    "tx_id",
                    "user_id",
                ],
            );
            (
                v["tx_id"].as_str().unwrap().to_string(),
                v["event_ms"].as_i64().unwrap(),
                v["probability"].as_f64().unwrap(),
                v["model_version"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The area under the ROC curve of `pairs` (score, positive), ties counted half.
fn auc(pairs: &[(f64, bool)]) -> f64 {
    let mut negatives: Vec<f64> = pairs.iter().filter(|p| !p.1).map(|p| p.0).collect();
    negatives.sort_by(f64::total_cmp);
    let positives: Vec<f64> = pairs.iter().filter(|p| p.1).map(|p| p.0).collect();
    let below = |x: f64| negatives.partition_point(|n| *n < x) as f64;
    let not_above = |x: f64| negatives.partition_point(|n| *n <= x) as f64;
    let wins: f64 = (positives.iter())
        .map(|&p| (below(p) + not_above(p)) / 2.0)
        .sum();
    wins / (positives.len() as f64 * negatives.len() as f64)
}

/// The version the model for time `t` must have: the micro-batches (1 minute of outcome
/// time) before `t`'s that hold an outcome.
fn expected_versions(labels: &Path) -> impl Fn(i64) -> u64 {
    let batches: BTreeSet<i64> = std::fs::read_to_string(labels)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["event_ms"].as_i64().unwrap().div_euclid(MINUTE)
        })
        .collect();
    move |t| batches.range(..t.div_euclid(MINUTE)).count() as u64
}

fn run(tx: &Path, labels: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let sources = fraud_sources(tx, labels);
    let sink = file_arg(out);
    let mut args = fraud_run(&sources).to_vec();
    args.extend(["--sink", &sink]);
    args.extend(extra);
    run_ok(&args);
    all_outputs(out)[0].clone()
}

#[test]
fn every_payment_is_scored_once_by_the_model_of_its_time_whatever_the_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, labels) = (tmp.path().join("tx.jsonl"), tmp.path().join("labels.jsonl"));
    let truth = write_payments((&tx, &labels), 100_000, 1_500, 7);
    let mut outputs = Vec::new();
    for (workers, epoch) in [("1", "5000"), ("2", "1700"), ("4", "0")] {
        let out = tmp.path().join(format!("out-{workers}"));
        let cut: &[&str] = match epoch {
            "0" => &["--trigger", "20ms"],
            n => &["--trigger", "1h", "--max-records-per-epoch", n],
        };
        let mut extra = vec!["--workers", workers, "--partitions", "4"];
        extra.extend(cut);
        outputs.push(run(&tx, &labels, &out, &extra));
    }
    assert_same_lines(
        &outputs[1],
        &outputs[0],
        "2 workers, other epochs, against 1",
    );
    assert_same_lines(
        &outputs[2],
        &outputs[0],
        "4 workers, timed epochs, against 1",
    );

    let scored = scores(&outputs[0]);
    let ids: BTreeSet<&String> = scored.iter().map(|s| &s.0).collect();
    assert_eq!(
        (scored.len(), ids.len()),
        (truth.len(), truth.len()),
        "each payment once"
    );
    let version_of = expected_versions(&labels);
    let mut pairs = Vec::new();
    for (id, t, p, version) in &scored {
        let (time, fraud) = truth[id];
        assert_eq!(*t, time, "{id}");
        assert_eq!(
            *version,
            version_of(*t),
            "{id} at {t}: the model of its time"
        );
        assert!((0.0..=1.0).contains(p), "{id}: {p}");
        if *version == 0 {
            assert_eq!(*p, 0.5, "{id}: an untrained model says 0.5");
        }
        if *version >= 30 {
            pairs.push((*p, fraud));
        }
    }
    let frauds = pairs.iter().filter(|p| p.1).count();
    let auc = auc(&pairs);
    eprintln!(
        "fraud-score: prequential AUC {auc:.4} over {} payments ({frauds} fraud) scored by version 30 or later",
        pairs.len()
    );
    assert!(frauds > 500, "too few frauds to measure: {frauds}");
    assert!(auc >= 0.95, "prequential AUC {auc:.4}");
}

#[test]
fn an_exported_model_starts_another_job() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, labels) = (tmp.path().join("tx.jsonl"), tmp.path().join("labels.jsonl"));
    write_payments((&tx, &labels), 30_000, 500, 3);
    let state = tmp.path().join("state");
    let state_arg = state.display().to_string();
    run(
        &tx,
        &labels,
        &tmp.path().join("first"),
        &["--state", &state_arg],
    );
    let exported = run_ok(&["model", "export", "--state", &state_arg]).stdout;
    let document: serde_json::Value = serde_json::from_slice(&exported).unwrap();
    let version = document["version"].as_u64().unwrap();
    assert!(version > 50, "{document}");
    let model = tmp.path().join("model.json");
    std::fs::write(&model, &exported).unwrap();

    let model_arg = model.display().to_string();
    let second = run(
        &tx,
        &labels,
        &tmp.path().join("second"),
        &["--model", &model_arg],
    );
    let scored = scores(&second);
    let untrained: HashMap<u64, Vec<f64>> =
        scored
            .iter()
            .filter(|s| s.3 == 0)
            .fold(HashMap::new(), |mut m, s| {
                m.entry(s.3).or_default().push(s.2);
                m
            });
    let first_scores = &untrained[&0];
    assert!(
        first_scores.iter().any(|p| *p != 0.5),
        "version 0 is the exported model, not an untrained one"
    );

    let describe =
        String::from_utf8_lossy(&run_ok(&["describe", "fraud-score"]).stdout).into_owned();
    for says in [
        "shared model: FraudModel",
        "micro_batch (default 1m)",
        "labels",
    ] {
        assert!(describe.contains(says), "{says}:\n{describe}");
    }
    let sources = fraud_sources(&tx, &labels);
    let model = tx.display().to_string();
    let out = spate(&[&fraud_run(&sources)[..], &["--model", &model]].concat())
        .output()
        .unwrap();
    assert!(!out.status.success(), "a payments file is not a model");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a model file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
