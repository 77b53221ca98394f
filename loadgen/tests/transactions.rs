//! `spate-loadgen transactions`: deterministic for a seed, and its output is what spate reads.

use std::process::Command;

mod common;

use common::loadgen;

#[test]
fn same_seed_same_bytes_and_valid_transactions() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, seed: &str, ids: &str| {
        let path = tmp.path().join(name);
        let to = format!("file:{}", path.display());
        let out = loadgen(&[
            "transactions",
            "--events",
            "5000",
            "--users",
            "50",
            "--seed",
            seed,
            "--to",
            &to,
            "--id-format",
            ids,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read(path).unwrap()
    };
    let (a, b, c) = (
        write("a", "7", "string"),
        write("b", "7", "string"),
        write("c", "8", "string"),
    );
    assert_eq!(a, b);
    assert_ne!(a, c);
    let parse = |bytes: &[u8]| -> Vec<serde_json::Value> {
        let lines: Vec<_> = std::str::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 5000);
        lines
    };
    // String ids by default, shaped like real feeds' ids; integers when asked.
    assert!(parse(&a).iter().all(|t| {
        let user = t["user_id"].as_str().unwrap();
        let n: u64 = user.strip_prefix('u').unwrap().parse().unwrap();
        user.len() == 6 && n < 50 && t["tx_id"].as_str().unwrap().starts_with('t')
    }));
    let ints = parse(&write("d", "7", "int"));
    assert!(ints
        .iter()
        .all(|t| t["user_id"].as_u64().unwrap() < 50 && t["event_ms"].is_i64()));
    let bad = loadgen(&["transactions", "--id-format", "uuid"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--id-format"));
}

#[test]
fn a_bad_destination_names_the_flag() {
    let out = loadgen(&["transactions", "--to", "kafka"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--to"));
}

#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_spate-loadgen"))
        .args(["transactions", "--events", "5000000", "--to", "stdout"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take()); // like `| head`
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
