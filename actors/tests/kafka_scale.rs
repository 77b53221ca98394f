//! Kafka at scale against the real broker (tansu on its PostgreSQL engine): 300,000 transactions through `tx-windows`
//! Kafka→Kafka with `--until-end`, killed with SIGKILL at random moments and restarted, alone
//! and as one of two members of a consumer group; the output topic, read back read_committed,
//! equals the file run's results record for record, with no duplicate. The same for the
//! re-keyed `funnel` in a group of two, whose exchange goes through its repartition topic.

mod common;
#[path = "support/tansu.rs"]
mod tansu;

use common::*;
use std::path::Path;
use std::process::Child;
use std::time::Duration;
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
    job_of("tx-windows", broker, ("tx", app), state, extra)
}

/// `pipeline` reading topic `input` as `app`, writing `<app>-out` (see [`job`]).
fn job_of(
    pipeline: &str,
    broker: &Tansu,
    (input, app): (&str, &str),
    state: &Path,
    extra: &[&str],
) -> Vec<String> {
    let mut args: Vec<String> = ["run", pipeline, "--source", &broker.url(input)]
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

fn finish(args: &[String], log: &Path) {
    let mut child = start(args, log);
    let status = wait_for(&mut child, Duration::from_secs(600));
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(log).unwrap()
    );
}

/// Checks the results topic of `app` against `expected`; when they differ, `context` (the
/// members' logs, say) is printed first.
fn assert_output(broker: &Tansu, app: &str, expected: &[String], context: &str) {
    let got = broker.sorted_payloads(&format!("{app}-out"));
    if got != expected {
        eprintln!("{context}");
    }
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
    assert_output(&broker, "kills", &expected, "");
}

#[test]
fn two_group_members_one_killed_still_give_every_result_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (broker, expected) = setup(tmp.path(), 37);
    let member = |name: &str| job(&broker, "group", &tmp.path().join(name), &FAST_GROUP);
    kill_one_of_two(tmp.path(), member, ("kafka-scale-group", (3_000, 12_000)));
    // Duplicates were seen here once (2026-12-04, under a full test run's load), likely from
    // a job started on a stale queued assignment, which gave a partition two owners (fixed in
    // `Handover`, 2026-12-06): the members' takeover lines are what tells why.
    let told = |name: &str| takeover_lines(&tmp.path().join(name));
    let context = format!(
        "\nmember a (survivor):\n{}\nmember b (killed):\n{}",
        told("a.log"),
        told("b.log")
    );
    assert_output(&broker, "group", &expected, &context);
}

/// Clicks of 3,000 visitors over 40 product pages in time order (one in 25 a purchase), as
/// `funnel` reads them; the same visitor's clicks are keyed by its id.
fn write_clicks(path: &Path, n: u64, seed: u64) {
    let mut rng = Rng(seed | 1);
    let mut text = String::new();
    for i in 0..n {
        let t = 1_767_225_600_000 + i * 20;
        let (user, page) = (rng.range(0, 3_000), rng.range(0, 40));
        let (action, cents) = match rng.range(0, 25) {
            0 => ("purchase", rng.range(100, 50_000)),
            _ => ("view", 0),
        };
        text += &format!(
            "{{\"user_id\":\"u{user}\",\"page\":\"/product/{page}\",\"action\":\"{action}\",\"price_cents\":{cents},\"event_ms\":{t}}}\n"
        );
    }
    std::fs::write(path, text).unwrap();
}

/// `funnel` keys clicks by visitor and page, then re-keys the purchases by page: across two
/// group members its exchange goes through the repartition topic. One member is killed; the
/// other takes its partitions (state and unread batches included) and the output topic holds
/// the file run's results, each once.
#[test]
fn a_re_keyed_pipeline_in_a_group_of_two_survives_a_killed_member() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = Tansu::start_postgres();
    broker.create_topic("clicks", PARTITIONS);
    let input = tmp.path().join("clicks.jsonl");
    write_clicks(&input, 200_000, 41);
    assert_eq!(broker.produce_lines("clicks", &input, "user_id"), 200_000);
    let reference = tmp.path().join("reference");
    let (source, sink) = (file_arg(&input), file_arg(&reference));
    let mut args = vec!["run", "funnel", "--source", &source, "--sink", &sink];
    args.extend(["--partitions", "4"]);
    args.extend(EPOCHS);
    run_ok(&args);
    let [mut expected, late, _] = all_outputs(&reference);
    assert!(
        late.is_empty(),
        "the clicks are in order: {} late",
        late.len()
    );
    assert!(expected.len() > 500, "{} results", expected.len());

    let state = |name: &str| tmp.path().join(name);
    let member = |name: &str| {
        job_of(
            "funnel",
            &broker,
            ("clicks", "funnel"),
            &state(name),
            &FAST_GROUP,
        )
    };
    kill_one_of_two(
        tmp.path(),
        member,
        ("kafka-scale-rekeyed-group", (3_000, 12_000)),
    );
    let got = broker.sorted_payloads("funnel-out");
    expected.sort();
    assert_same_lines(&got, &expected, "funnel in a group of two, one killed");
    assert!(
        broker.record_count("funnel-stage2-repartition") > 0,
        "the exchange went through the repartition topic"
    );
}
