//! Pipelines with online models over Kafka against a real broker (tansu), each from topics to a
//! topic equal to the same job from files, also after SIGKILLs at random moments:
//! `iot-anomaly` (each device's model travels with its partition's state through the
//! changelog) and `fraud-score` (its shared model and the exchange between its stages are kept
//! in `--state`).

mod common;
#[path = "support/tansu.rs"]
mod tansu;

use common::*;
use std::path::Path;
use std::time::Instant;
use tansu::Tansu;

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Runs `pipeline` over the topics `sources` (`NAME=TOPIC`) to a topic until their end, once
/// cleanly and once with SIGKILLs, each in its own state directory under `tmp`, and checks
/// both wrote `expected` (sorted lines).
fn assert_kafka_run_equals(
    broker: &Tansu,
    tmp: &Path,
    (pipeline, sources): (&str, &[(&str, &str)]),
    expected: &[String],
) {
    let job = |app: &str| -> Vec<String> {
        let mut args: Vec<String> = vec!["run".into(), pipeline.into()];
        for (name, topic) in sources {
            args.extend(["--source".into(), format!("{name}={}", broker.url(topic))]);
        }
        args.extend([
            "--sink".into(),
            broker.url(&format!("{app}-out")),
            "--app-id".into(),
            app.into(),
            "--state".into(),
            tmp.join(app).display().to_string(),
            "--until-end".into(),
        ]);
        args.extend(KAFKA_EPOCHS.map(String::from));
        args
    };
    let results = |app: &str| broker.sorted_payloads(&format!("{app}-out"));

    let started = Instant::now();
    run_ok(&strs(&job("clean")));
    let span = started.elapsed().as_millis() as u64;
    assert_same_lines(&results("clean"), expected, "Kafka against the file");

    let args = job("kills");
    let mut rng = Rng::from_clock(&format!("kafka-{pipeline}-kills"));
    let hits = kill_randomly(&strs(&args), 3, (span / 5, span * 7 / 10), &mut rng);
    run_ok(&strs(&args));
    assert!(
        hits > 0,
        "no kill hit a running job: the test proved nothing"
    );
    assert_same_lines(&results("kills"), expected, &format!("after {hits} kills"));
}

#[test]
fn iot_anomaly_over_kafka_equals_the_file_run_after_random_kills() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("sensors.jsonl");
    write_readings(&input, 30_000, 40, 12);
    let from_file = tmp.path().join("file-out");
    let (source, sink) = (
        format!("sensors={}", file_arg(&input)),
        file_arg(&from_file),
    );
    run_ok(&["run", "iot-anomaly", "--source", &source, "--sink", &sink]);
    let mut expected = all_outputs(&from_file)[0].clone();
    expected.sort();
    assert!(expected.len() > 10, "too few anomalies: {}", expected.len());

    let broker = Tansu::start_postgres();
    broker.create_topic("sensors", 4);
    broker.produce_lines("sensors", &input, "device_id");
    let job = ("iot-anomaly", [("sensors", "sensors")].as_slice());
    assert_kafka_run_equals(&broker, tmp.path(), job, &expected);
}

#[test]
fn fraud_score_over_kafka_equals_the_file_run_after_random_kills() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, labels) = (tmp.path().join("tx.jsonl"), tmp.path().join("labels.jsonl"));
    write_payments((&tx, &labels), 20_000, 400, 21);
    let from_file = tmp.path().join("file-out");
    let sources = fraud_sources(&tx, &labels);
    let sink = file_arg(&from_file);
    let mut args = fraud_run(&sources).to_vec();
    args.extend(["--sink", &sink, "--partitions", "4"]);
    run_ok(&args);
    let mut expected = all_outputs(&from_file)[0].clone();
    expected.sort();
    assert_eq!(expected.len(), 20_000);

    let broker = Tansu::start_postgres();
    for (topic, file, key) in [("tx", &tx, "user_id"), ("labels", &labels, "tx_id")] {
        broker.create_topic(topic, 4);
        broker.produce_lines(topic, file, key);
    }
    let job = (
        "fraud-score",
        [("transactions", "tx"), ("labels", "labels")].as_slice(),
    );
    assert_kafka_run_equals(&broker, tmp.path(), job, &expected);
}
