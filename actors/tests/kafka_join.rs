//! A join over Kafka against a real broker (tansu): `tx-enriched` over two co-partitioned
//! topics equals a naive as-of lookup, also after SIGKILLs at random moments (state and both
//! inputs' offsets follow each partition through the changelog); a topic joins with a file
//! table; topics of different partition counts are refused, naming both. `enrich` (the join
//! re-keyed into a second stage of windows) is exact Kafka to Kafka after SIGKILLs too, as two
//! consumer-group members, one of them killed, and with a partition read slowly.

mod common;
#[path = "support/tansu.rs"]
mod tansu;

use common::*;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tansu::Tansu;

/// What `inputs` writes: the transactions file, the users file, and the expected enrichment.
type Inputs = (PathBuf, PathBuf, Vec<(String, String, String)>);

/// `events` transactions and a users table written as files, with what `tx-enriched` must give.
fn inputs(tmp: &Path, events: u64) -> Inputs {
    let (tx, users) = (tmp.join("tx.jsonl"), tmp.join("users.jsonl"));
    write_transactions_on_time(&tx, events, 300, 5, true);
    let rows = user_rows(300, 400, events as i64, 5);
    write_users(&users, &rows);
    let expected = naive_enrichment(&tx, &rows);
    (tx, users, expected)
}

/// `spate run tx-enriched` reading `users` from `users` (a URL) up to the topics' ends.
fn job(broker: &Tansu, app: &str, users: &str, state: &Path) -> Vec<String> {
    job_of("tx-enriched", broker, app, users, state)
}

/// `spate run PIPELINE` over the `tx` topic and `users`, up to the topics' ends.
fn job_of(pipeline: &str, broker: &Tansu, app: &str, users: &str, state: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "run",
        pipeline,
        "--source",
        &format!("transactions={}", broker.url("tx")),
        "--source",
        &format!("users={users}"),
        "--sink",
        &broker.url(&format!("{app}-out")),
        "--app-id",
        app,
        "--state",
        &state.display().to_string(),
        "--until-end",
    ]
    .map(String::from)
    .to_vec();
    args.extend(KAFKA_EPOCHS.map(String::from));
    args
}

/// A broker (the postgres engine: tansu's sqlite one serves a topic that kills filled with
/// unconfirmed sends too slowly to read back, see scripts/lib/tansu.sh) with 4-partition topics
/// `tx` and `users` holding the files' lines, keyed by user.
fn broker_with(tx: &Path, users: &Path) -> Tansu {
    let broker = Tansu::start_postgres();
    broker.create_topic("tx", 4);
    broker.create_topic("users", 4);
    broker.produce_lines("tx", tx, "user_id");
    broker.produce_lines("users", users, "user_id");
    broker
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn results(broker: &Tansu, app: &str) -> Vec<(String, String, String)> {
    let lines: Vec<String> = broker
        .read_topic(&format!("{app}-out"))
        .into_iter()
        .map(|r| r.payload)
        .collect();
    enrichment_of(&lines)
}

#[test]
fn a_join_of_two_topics_is_exact_after_random_kills() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, users, expected) = inputs(tmp.path(), 20_000);
    let broker = broker_with(&tx, &users);
    let users = broker.url("users");

    let started = Instant::now();
    run_ok(&as_strs(&job(
        &broker,
        "timing",
        &users,
        &tmp.path().join("timing"),
    )));
    let span = started.elapsed().as_millis() as u64;
    assert_eq!(results(&broker, "timing"), expected, "uninterrupted");

    let args = job(&broker, "kills", &users, &tmp.path().join("state"));
    let mut rng = Rng::from_clock("kafka-join-kills");
    let hits = kill_randomly(&as_strs(&args), 4, (span / 5, span * 7 / 10), &mut rng);
    run_ok(&as_strs(&args));
    assert!(
        hits > 0,
        "no kill hit a running job: the test proved nothing"
    );
    assert_eq!(results(&broker, "kills"), expected, "after {hits} kills");
}

#[test]
fn a_topic_joins_a_file_table_and_mismatched_topics_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, users, expected) = inputs(tmp.path(), 10_000);
    // The postgres engine, as above: reading the results back from the sqlite one takes longer
    // than the reader waits when the machine is busy with the other tests.
    let broker = Tansu::start_postgres();
    broker.create_topic("tx", 4);
    broker.produce_lines("tx", &tx, "user_id");
    // The file's rows go to the key partition a producer keying them by user would pick.
    let file = file_arg(&users);
    run_ok(&as_strs(&job(
        &broker,
        "mixed",
        &file,
        &tmp.path().join("mixed"),
    )));
    assert_eq!(results(&broker, "mixed"), expected);

    broker.create_topic("users2", 2);
    broker.produce_lines("users2", &users, "user_id");
    let args = job(
        &broker,
        "mismatch",
        &broker.url("users2"),
        &tmp.path().join("mismatch"),
    );
    let out = spate(&as_strs(&args)).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("not co-partitioned")
            && err.contains("(4 partitions)")
            && err.contains("(2 partitions)"),
        "{err}"
    );
}

#[test]
fn a_rekeyed_pipeline_is_exact_kafka_to_kafka_after_random_kills() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, users) = (tmp.path().join("tx.jsonl"), tmp.path().join("users.jsonl"));
    write_transactions_on_time(&tx, 15_000, 300, 13, true);
    let rows = user_rows(300, 400, 15_000, 13);
    // Transactions before their user's first row count under "unknown".
    write_users(&users, &rows);
    let broker = broker_with(&tx, &users);
    let users = broker.url("users");
    let windows = |app: &str| -> Vec<String> {
        let lines: Vec<String> = (broker.read_topic(&format!("{app}-out")).into_iter())
            .map(|r| r.payload)
            .collect();
        segment_windows_of(&lines)
    };
    let state = |name: &str| tmp.path().join(name);

    let started = Instant::now();
    run_ok(&as_strs(&job_of(
        "enrich",
        &broker,
        "clean",
        &users,
        &state("clean"),
    )));
    let span = started.elapsed().as_millis() as u64;
    let expected = naive_segment_windows(&tx, &rows);
    assert_same_lines(&windows("clean"), &expected, "uninterrupted");

    let args = job_of("enrich", &broker, "kills", &users, &state("kills"));
    let mut rng = Rng::from_clock("kafka-enrich-kills");
    let hits = kill_randomly(&as_strs(&args), 4, (span / 5, span * 7 / 10), &mut rng);
    run_ok(&as_strs(&args));
    assert!(
        hits > 0,
        "no kill hit a running job: the test proved nothing"
    );
    assert_same_lines(&windows("kills"), &expected, &format!("after {hits} kills"));

    // Every group member would read a file input whole: refused, naming it.
    let users_file = file_arg(&tmp.path().join("users.jsonl"));
    let mut group = job_of("enrich", &broker, "group", &users_file, &state("group"));
    group.push("--group".into());
    let out = spate(&as_strs(&group)).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("input `users`") && err.contains("not a Kafka topic"),
        "{err}"
    );
}

/// `enrich` (a join of two topics, re-keyed into a second stage) as two consumer-group members:
/// each reads its partitions of both topics, the exchange crosses the repartition topic, one
/// member is killed and the other finishes; the output equals the naive computation.
#[test]
fn a_rekeyed_join_in_a_group_of_two_survives_a_killed_member() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, users) = (tmp.path().join("tx.jsonl"), tmp.path().join("users.jsonl"));
    write_transactions_on_time(&tx, 60_000, 300, 17, true);
    let rows = user_rows(300, 400, 60_000, 17);
    write_users(&users, &rows);
    let broker = broker_with(&tx, &users);
    let users_url = broker.url("users");
    let member = |name: &str| {
        let mut args = job_of(
            "enrich",
            &broker,
            "grouped",
            &users_url,
            &tmp.path().join(name),
        );
        args.extend(["--metrics-addr", "off"].map(String::from));
        args.extend(FAST_GROUP.map(String::from));
        args
    };
    kill_one_of_two(tmp.path(), member, ("kafka-enrich-group", (2_000, 8_000)));
    let lines: Vec<String> = (broker.read_topic("grouped-out").into_iter())
        .map(|r| r.payload)
        .collect();
    let expected = naive_segment_windows(&tx, &rows);
    let got = segment_windows_of(&lines);
    // The input is on time: nothing may turn late. Counts were lost here once (CI,
    // 2026-12-06, not reproduced since): the late records and the takeover lines tell whether
    // records turned late or went missing, and where the partitions moved.
    let late = broker.sorted_payloads("grouped-late");
    if got != expected || !late.is_empty() {
        let told = |name: &str| takeover_lines(&tmp.path().join(name));
        eprintln!("member a (survivor):\n{}", told("a.log"));
        eprintln!("member b (killed):\n{}", told("b.log"));
    }
    assert_same_lines(&got, &expected, "a group of two, one killed");
    assert_none_late(&late);
    assert!(
        broker.record_count("grouped-stage2-repartition") > 0,
        "the exchange went through the repartition topic"
    );
    let survivor = std::fs::read_to_string(tmp.path().join("a.log")).unwrap();
    assert!(
        survivor.contains("the later stages wait for the last exchange batches"),
        "the survivor says what its later stages wait for once its input is read: {survivor}"
    );
}

/// A partition of a re-keyed group job read slowly (its key partition takes 300 ms a batch, so
/// the source pauses it) is behind, not idle, even with an idle timeout of zero: the source
/// reads the join's two topics beside the repartition topic, and says for each of their
/// partitions whether records still wait in the broker. None turns late.
#[test]
fn a_rekeyed_group_job_with_a_slow_partition_makes_nothing_late() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, users) = (tmp.path().join("tx.jsonl"), tmp.path().join("users.jsonl"));
    write_transactions_on_time(&tx, 12_000, 300, 23, false);
    let rows = user_rows(300, 400, 12_000, 23);
    write_users(&users, &rows);
    let broker = broker_with(&tx, &users);
    let state = tmp.path().join("state");
    let mut args = job_of("enrich", &broker, "slow", &broker.url("users"), &state);
    args.push("--group".into());
    let idle = args.iter().position(|a| a == "--idle-timeout").unwrap();
    args[idle + 1] = "0s".into();
    finish_ok(spate(&as_strs(&args)).env("SPATE_SLOW_PARTITION", "0:300"));
    assert_none_late(&broker.sorted_payloads("slow-late"));
    let lines = broker.sorted_payloads("slow-out");
    assert_same_lines(
        &segment_windows_of(&lines),
        &naive_segment_windows(&tx, &rows),
        "a re-keyed group job with a slow partition and --idle-timeout 0s",
    );
}

/// Asserts an on-time input made no `late` records, showing the first few otherwise.
fn assert_none_late(late: &[String]) {
    let first = &late[..late.len().min(3)];
    assert!(late.is_empty(), "{} late records: {first:#?}", late.len());
}
