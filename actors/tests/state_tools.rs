//! `spate state inspect|get|erase` on the state directories of stopped jobs and `GET
//! /state/{key}` on running ones: they agree with `spate model export` and with each other, an
//! erasure removes one key and nothing else, for good, and a directory whose next start would
//! replay the key's records is refused.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

const RECORDS: u64 = 20_000;

/// `tx-windows` on `tx` with `--follow` (so its last windows stay open) and `extra` flags,
/// once it has read `records` records (0: any) and committed three epochs; with its metrics
/// address.
/// Partitions never count as idle, so a stop changes no window.
fn follow_job(tx: &Path, st: &Path, out: &Path, records: usize, extra: &[&str]) -> (Child, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let (source, sink) = (file_arg(tx), file_arg(out));
    let mut args = vec![
        "run",
        "tx-windows",
        "--follow",
        "--source",
        &source,
        "--sink",
        &sink,
        "--state",
        st.to_str().unwrap(),
        "--metrics-addr",
        &addr,
        "--idle-timeout",
        "1h",
    ];
    args.extend(extra);
    let child = spate(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the records read", Duration::from_secs(60), || {
        (records == 0 || counter(&addr, "spate_records_in_total") == Some(records as f64))
            && counter(&addr, "spate_epoch_duration_seconds_count").is_some_and(|n| n >= 3.0)
    });
    (child, addr)
}

fn stop(mut child: Child) {
    assert!(sigterm(&child));
    assert!(child.wait().unwrap().success());
}

/// `spate state ARGS…`: exit code, stdout, stderr.
fn run_state(args: &[&str]) -> (Option<i32>, String, String) {
    let out = spate(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code(), text(out.stdout), text(out.stderr))
}

/// `spate state COMMAND --state st [--key key]` on a stopped job.
fn state(command: &str, st: &Path, key: Option<&str>) -> (Option<i32>, String, String) {
    let mut args = vec!["state", command, "--state", st.to_str().unwrap()];
    args.extend(key.iter().flat_map(|k| ["--key", k]));
    run_state(&args)
}

/// `spate state get --addr addr --key key` on a running job.
fn state_at(addr: &str, key: &str) -> (Option<i32>, String, String) {
    run_state(&["state", "get", "--addr", addr, "--key", key])
}

/// `spate model export` of `st`: every key's `{"key","state"}` line, sorted.
fn export(st: &Path) -> Vec<String> {
    let out = run_ok(&["model", "export", "--state", st.to_str().unwrap()]);
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

/// The number in column `column` of the `total` row of `spate state inspect`.
fn total(inspect: &str, column: usize) -> u64 {
    let row = inspect
        .lines()
        .find(|l| l.trim_start().starts_with("total"))
        .unwrap_or_else(|| panic!("no total row in:\n{inspect}"));
    row.split_whitespace().nth(column).unwrap().parse().unwrap()
}

/// The input file, state directory and output directory of a test's job under `dir`.
fn paths(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let at = |name| dir.join(name);
    (at("tx.jsonl"), at("st"), at("out"))
}

#[test]
fn get_and_inspect_agree_with_the_export_and_an_erasure_removes_one_key_for_good() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, st, out) = paths(tmp.path());
    write_transactions_on_time(&tx, RECORDS, 300, 5, false);
    let lines = std::fs::read_to_string(&tx).unwrap().lines().count();
    let (job, addr) = follow_job(&tx, &st, &out, lines, &[]);
    // GET /state/{key} on the running job, for the first users.
    let live: Vec<(String, String)> = (0..10)
        .map(|u| format!("u{u:05}"))
        .filter_map(|key| {
            let response = http_get(&addr, &format!("/state/{key}")).unwrap();
            let ok = response.starts_with("HTTP/1.1 200");
            assert!(ok || response.starts_with("HTTP/1.1 404"), "{response}");
            ok.then(|| (key, response.split_once("\r\n\r\n").unwrap().1.to_string()))
        })
        .collect();
    let running = run_ok(&["state", "inspect", "--addr", &addr]);
    let running = String::from_utf8(running.stdout).unwrap();
    let (code, live_get, err) = state_at(&addr, &live[0].0);
    stop(job);
    assert!(!live.is_empty(), "none of the first users holds state");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        live_get.trim(),
        live[0].1,
        "spate state get --addr is GET /state/KEY"
    );
    let before = export(&st);
    assert!(
        before.len() > 10,
        "open windows hold state: {}",
        before.len()
    );

    let (code, inspect, err) = state("inspect", &st, None);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        inspect.contains("pipeline tx-windows, 8 key partitions"),
        "{inspect}"
    );
    assert_eq!(total(&inspect, 1), before.len() as u64, "keys:\n{inspect}");
    assert!(running.contains("the running job at"), "{running}");
    for column in [1, 3] {
        assert_eq!(
            total(&running, column),
            total(&inspect, column),
            "{running}{inspect}"
        );
    }
    assert!(
        total(&inspect, 3) >= before.len() as u64,
        "a timer per open window:\n{inspect}"
    );
    let value = |line: &str| serde_json::from_str::<serde_json::Value>(line).unwrap();
    for (key, running) in &live {
        let (code, stopped, err) = state("get", &st, Some(key));
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(
            value(running),
            value(stopped.trim()),
            "{key}: running vs stopped"
        );
    }
    for line in before.iter().step_by(before.len() / 3) {
        let exported = value(line);
        let key = exported["key"].as_str().unwrap();
        let (code, got, err) = state("get", &st, Some(key));
        assert_eq!(code, Some(0), "{err}");
        let got = value(got.trim());
        assert_eq!(got["key"], exported["key"]);
        assert_eq!(got["state"], exported["state"], "{key}");
        assert!(!got["timers"].as_array().unwrap().is_empty(), "{got}");
    }

    let erased = value(&before[0]);
    let key = erased["key"].as_str().unwrap();
    let (code, _, err) = state("erase", &st, Some(key));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains(&format!("erased the state of key \"{key}\"")),
        "{err}"
    );
    let (code, _, err) = state("get", &st, Some(key));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("has no state"), "{err}");
    assert_same_lines(&export(&st), &before[1..], "every other key's state");
    let (code, again, _) = state("erase", &st, Some(key));
    assert_eq!(code, Some(1), "a second erasure finds nothing: {again}");

    // The job restarts on the edited directory (its checks pass) without the key.
    stop(follow_job(&tx, &st, &out, 0, &[]).0);
    let (code, _, err) = state("get", &st, Some(key));
    assert_eq!(code, Some(1), "the key came back: {err}");
    let (_, inspect, _) = state("inspect", &st, None);
    assert!(
        inspect.contains(&format!("erased: key \"{key}\"")),
        "{inspect}"
    );
}

#[test]
fn an_erasure_is_refused_where_the_next_start_would_replay_the_keys_records() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, st, out) = paths(tmp.path());
    write_transactions(&tx, RECORDS, 300, 6, false);
    // No checkpoint after the first, then kill -9: the next start replays every epoch.
    let records = RECORDS as usize;
    let (mut job, _) = follow_job(&tx, &st, &out, records, &["--checkpoint-interval", "1h"]);
    job.kill().unwrap();
    job.wait().unwrap();
    let before = export(&st);
    let (code, _, err) = state("erase", &st, Some("u00001"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("(it was killed)"), "{err}");
    assert!(err.contains("stop it with SIGTERM"), "{err}");
    assert_eq!(export(&st), before, "nothing was erased");
}

/// `GET /state/{key}` of each of `keys` that holds state in the running job at `addr`.
fn live_states(addr: &str, keys: &[String]) -> Vec<(String, String)> {
    keys.iter()
        .filter_map(|key| {
            let response = http_get(addr, &format!("/state/{key}"))?;
            let ok = response.starts_with("HTTP/1.1 200");
            let body = response.split_once("\r\n\r\n")?.1.to_string();
            ok.then(|| (key.clone(), body))
        })
        .collect()
}

#[test]
fn an_erasure_on_a_running_job_is_done_at_an_epoch_end_and_its_replay_does_it_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, st, out) = paths(tmp.path());
    write_transactions_on_time(&tx, RECORDS, 300, 8, false);
    let lines = std::fs::read_to_string(&tx).unwrap().lines().count();
    // No checkpoint after the first: after a kill -9 the next start replays every epoch, the
    // erasure's among them, from state that still holds the key.
    let no_checkpoints = ["--checkpoint-interval", "1h"];
    let (mut job, addr) = follow_job(&tx, &st, &out, lines, &no_checkpoints);
    let keys: Vec<String> = (0..30).map(|u| format!("u{u:05}")).collect();
    let before = live_states(&addr, &keys);
    assert!(before.len() > 3, "few users hold state: {before:?}");
    let erased = before[0].0.clone();

    let (code, _, err) = run_state(&["state", "erase", "--addr", &addr, "--key", &erased]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "erased the state of key \"{erased}\" from partition"
        )),
        "{err}"
    );
    assert_eq!(
        state_at(&addr, &erased).0,
        Some(1),
        "the key is gone at once"
    );
    let (code, _, err) = run_state(&["state", "erase", "--addr", &addr, "--key", &erased]);
    assert_eq!(code, Some(1), "a second erasure finds nothing: {err}");
    assert!(err.contains("has no state in the running job"), "{err}");
    assert_eq!(live_states(&addr, &keys)[..], before[1..], "other keys");

    job.kill().unwrap();
    job.wait().unwrap();
    let (job, addr) = follow_job(&tx, &st, &out, 0, &no_checkpoints);
    wait_until("the replay", Duration::from_secs(60), || {
        live_states(&addr, &keys[1..]) == before[1..]
    });
    let (code, _, err) = state_at(&addr, &erased);
    assert_eq!(code, Some(1), "the replay brought the key back: {err}");
    stop(job);
    let (_, inspect, _) = state("inspect", &st, None);
    let recorded = format!("erased: key \"{erased}\"");
    assert_eq!(inspect.matches(&recorded).count(), 1, "{inspect}");
}
