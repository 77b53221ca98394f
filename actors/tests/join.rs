//! Pipelines over two inputs through the `spate` binary: `tx-enriched` (a temporal table join
//! of transactions with a users table) equals a naive as-of lookup computed here, dead letters
//! name their input, and a join refuses sources it cannot pair with its inputs.

mod common;

use common::*;

/// Transactions and a users table whose rows change during the transactions' 30 s.
fn inputs(
    dir: &std::path::Path,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    Vec<spate_actors::events::UserRow>,
) {
    let (tx, users) = (dir.join("tx.jsonl"), dir.join("users.jsonl"));
    write_transactions_on_time(&tx, 30_000, 500, 21, true);
    let rows = user_rows(400, 600, 30_000, 21);
    write_users(&users, &rows);
    (tx, users, rows)
}

#[test]
fn tx_enriched_equals_a_naive_temporal_join() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, users, rows) = inputs(tmp.path());
    let out = tmp.path().join("out");
    let (tx_arg, users_arg) = (
        format!("transactions={}", file_arg(&tx)),
        format!("users={}", file_arg(&users)),
    );
    let sink = file_arg(&out);
    run_ok(&[
        "run",
        "tx-enriched",
        "--source",
        &tx_arg,
        "--source",
        &users_arg,
        "--sink",
        &sink,
        "--partitions",
        "3",
        "--max-records-per-epoch",
        "3000",
    ]);
    let [results, late, dead] = all_outputs(&out);
    let expected = naive_enrichment(&tx, &rows);
    assert_eq!(results.len(), expected.len(), "one result per transaction");
    assert_eq!(enrichment_of(&results), expected);
    let known = expected.iter().filter(|(_, s, _)| s != "unknown").count();
    assert!(
        known > expected.len() / 2,
        "most transactions find their user: {known}"
    );
    assert!(late.is_empty(), "nothing is late: {late:?}");
    assert!(
        !dead.is_empty(),
        "the malformed transactions are dead-lettered"
    );
    for line in &dead {
        assert!(
            line.contains("\"input\":\"transactions\""),
            "the dead letter names its input: {line}"
        );
    }
}

#[test]
fn a_join_needs_a_named_source_for_each_input() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, _, _) = inputs(tmp.path());
    let source = file_arg(&tx);
    let run = |args: &[&str]| {
        let out = spate(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} must fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(&[
        "run",
        "tx-enriched",
        "--source",
        &source,
        "--sink",
        "stdout",
    ]);
    assert!(
        err.contains("--source NAME=URI") && err.contains("users"),
        "{err}"
    );
    let named = format!("purchases={source}");
    let err = run(&["run", "tx-enriched", "--source", &named, "--sink", "stdout"]);
    assert!(
        err.contains("no input `purchases`") && err.contains("transactions, users"),
        "{err}"
    );
    let named = format!("users={source}");
    let err = run(&["run", "tx-windows", "--source", &named, "--sink", "stdout"]);
    assert!(err.contains("no input `users`"), "{err}");
}

#[test]
fn describe_and_list_name_a_joins_inputs() {
    let out = run_ok(&["describe", "tx-enriched"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for part in [
        "1. transactions: Transaction records, watermark 10s",
        "2. users: UserRow records, watermark 10s",
        "keyed by Id: temporal table join",
        "outputs (--sink NAME=URI): EnrichedTx records",
        "1. results, with the late records and dead letters",
    ] {
        assert!(text.contains(part), "`{part}` missing from:\n{text}");
    }
    let out = run_ok(&["describe", "tx-windows"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1m tumbling windows"), "{text}");
    let list = run_ok(&["list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("(inputs: transactions, users)"));
    let unknown = spate(&["describe", "nope"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("available: tx-windows"));
}
