//! A two-stage pipeline through the `spate` binary: `enrich` (a temporal join keyed by user,
//! re-keyed by segment and country into 1-minute windows) equals a naive computation here.

mod common;

use common::*;

/// Transactions over 3 minutes and a users table whose rows change during them.
fn inputs(dir: &std::path::Path) -> (String, String, Vec<String>) {
    let (tx, users) = (dir.join("tx.jsonl"), dir.join("users.jsonl"));
    write_transactions_on_time(&tx, 30_000, 500, 23, true);
    let rows = user_rows(500, 700, 180_000, 23);
    write_users(&users, &rows);
    let expected = naive_segment_windows(&tx, &rows);
    (
        format!("transactions={}", file_arg(&tx)),
        format!("users={}", file_arg(&users)),
        expected,
    )
}

#[test]
fn enrich_equals_a_naive_join_then_window() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, users, expected) = inputs(tmp.path());
    for (partitions, epoch) in [("3", "2500"), ("1", "100000")] {
        let out = tmp.path().join(format!("out-{partitions}"));
        let sink = file_arg(&out);
        run_ok(&[
            "run",
            "enrich",
            "--source",
            &tx,
            "--source",
            &users,
            "--sink",
            &sink,
            "--partitions",
            partitions,
            "--max-records-per-epoch",
            epoch,
        ]);
        let [results, late, _dead] = all_outputs(&out);
        assert!(late.is_empty(), "nothing is late: {late:?}");
        assert_same_lines(
            &segment_windows_of(&results),
            &expected,
            &format!("enrich on {partitions} partitions"),
        );
    }
    assert!(
        expected.iter().any(|l| l.starts_with("unknown,unknown,")),
        "some transactions come before their user's first row"
    );
}

#[test]
fn describe_shows_both_stages() {
    let out = run_ok(&["describe", "enrich"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for part in [
        "stage 1: keyed by Id: temporal table join",
        "re-keyed",
        "stage 2: keyed by (String, String): 1m tumbling windows",
        "SegmentWindow records",
    ] {
        assert!(text.contains(part), "`{part}` missing from:\n{text}");
    }
}
