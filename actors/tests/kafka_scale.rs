//! Kafka at scale against the real broker (tansu on its PostgreSQL engine): 300,000 transactions through `tx-windows`
//! Kafka→Kafka with `--until-end`, killed with SIGKILL at random moments and restarted, alone
//! and as one of two members of a consumer group; the output topic, read back read_committed,
//! equals the file run's results record for record, with no duplicate.

mod common;
#[path = "support/tansu.rs"]
mod tansu;

use common::*;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};
use tansu::Tansu;

const EVENTS: u64 = 300_000;
const PARTITIONS: i32 = 4;

/// Epochs cut by record count and checkpoints every half second, as a production job would run.
const EPOCHS: [&str; 6] = [
    "--trigger",
    "1h",
    "--max-records-per-epoch",
    "5000",
    "--checkpoint-interval",
    "500ms",
];

/// A broker whose topic `tx` holds `EVENTS` transactions of 10,000 users (less the few the
/// on-time generator leaves out), and the results of the same input run file→file.
fn setup(tmp: &Path, seed: u64) -> (Tansu, Vec<String>) {
    let broker = Tansu::start_postgres();
    broker.create_topic("tx", PARTITIONS);
    let input = tmp.join("tx.jsonl");
    write_transactions_on_time(&input, EVENTS, 10_000, seed, false);
    let lines = std::fs::read_to_string(&input).unwrap().lines().count();
    assert_eq!(broker.produce_lines("tx", &input, "user_id"), lines);
    let out = tmp.join("reference");
    let (source, sink) = (file_arg(&input), file_arg(&out));
    let mut args = vec!["run", "tx-windows", "--source", &source, "--sink", &sink];
    args.extend(["--partitions", "4"]);
    args.extend(EPOCHS);
    run_ok(&args);
    let [results, late, _] = all_outputs(&out);
    assert!(late.is_empty(), "the input is on time: {} late", late.len());
    assert!(results.len() > 10_000, "{} results", results.len());
    (broker, results)
}

/// `spate run tx-windows` from `tx` to `APP-out` with `--until-end`, plus `extra`.
fn job(broker: &Tansu, app: &str, state: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["run", "tx-windows", "--source", &broker.url("tx")]
        .map(String::from)
        .to_vec();
    args.extend(["--sink".into(), broker.url(&format!("{app}-out"))]);
    args.extend(["--app-id", app, "--state"].map(String::from));
    args.push(state.display().to_string());
    args.extend(["--until-end", "--metrics-addr", "off"].map(String::from));
    args.extend(EPOCHS.iter().chain(extra).map(|s| s.to_string()));
    args
}

fn start(args: &[String], log: &Path) -> Child {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn_logged(&args, log)
}

/// Lets `child` run for `ms` milliseconds, then SIGKILLs it; true when it was still running.
fn kill_after(child: &mut Child, ms: u64) -> bool {
    let deadline = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    child.wait().unwrap();
    running
}

fn finish(args: &[String], log: &Path) {
    let mut child = start(args, log);
    let status = wait_for(&mut child, Duration::from_secs(600));
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(log).unwrap()
    );
}

fn assert_output(broker: &Tansu, app: &str, expected: &[String]) {
    let got = broker.sorted_payloads(&format!("{app}-out"));
    assert_same_lines(
        &got,
        expected,
        &format!("{app}: results of 300,000 records"),
    );
}

#[test]
fn three_hundred_thousand_records_through_kafka_survive_random_kills() {
    let tmp = tempfile::tempdir().unwrap();
    let (broker, expected) = setup(tmp.path(), 31);
    let args = job(&broker, "kills", &tmp.path().join("state"), &[]);
    let mut rng = Rng::from_clock("kafka-scale-kills");
    let mut hits = 0;
    for i in 0..4 {
        let log = tmp.path().join(format!("run-{i}.log"));
        let mut child = start(&args, &log);
        hits += u32::from(kill_after(&mut child, rng.range(3_000, 15_000)));
    }
    assert!(
        hits > 0,
        "no kill hit a running job: the test proved nothing"
    );
    finish(&args, &tmp.path().join("last.log"));
    assert_output(&broker, "kills", &expected);
}

#[test]
fn two_group_members_one_killed_still_give_every_result_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (broker, expected) = setup(tmp.path(), 37);
    // A killed member's partitions move once its session expires: 6 s instead of 45.
    let group = [
        "--group",
        "--kafka-opt",
        "session.timeout.ms=6000",
        "--kafka-opt",
        "heartbeat.interval.ms=500",
        "--kafka-opt",
        "max.poll.interval.ms=10000",
    ];
    let member = |name: &str| job(&broker, "group", &tmp.path().join(name), &group);
    let (a_log, b_log) = (tmp.path().join("a.log"), tmp.path().join("b.log"));
    let mut a = start(&member("a"), &a_log);
    let mut b = start(&member("b"), &b_log);
    let mut rng = Rng::from_clock("kafka-scale-group");
    assert!(
        kill_after(&mut b, rng.range(3_000, 12_000)),
        "member b ended before it was killed: {}",
        std::fs::read_to_string(&b_log).unwrap()
    );
    // A takes b's partitions over and leaves once every partition is read to its end.
    let status = wait_for(&mut a, Duration::from_secs(600));
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&a_log).unwrap()
    );
    assert_output(&broker, "group", &expected);
}
