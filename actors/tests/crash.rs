//! Crash recovery of the `spate` binary: killed with SIGKILL at random moments several times
//! mid-run and restarted, a job's committed output (results, late records, dead letters) equals
//! an uninterrupted run's, record for record. A SIGTERM finishes the epoch, checkpoints and
//! exits 0, and the resumed job is exact too.

mod common;

use common::*;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Kills the job `kills` times at random moments within `span` (the uninterrupted run's
/// duration), then lets it finish; returns how many kills hit a running job.
fn crash_and_resume(
    pipeline: &str,
    input: &Path,
    out: &Path,
    state: &Path,
    (kills, span): (u32, Duration),
    rng: &mut Rng,
) -> u32 {
    let (source, sink, state) = (
        format!("file:{}", input.display()),
        format!("file:{}", out.display()),
        state.display().to_string(),
    );
    let args = [
        "run",
        pipeline,
        "--source",
        &source,
        "--sink",
        &sink,
        "--state",
        &state,
        "--trigger",
        "20ms",
        "--checkpoint-interval",
        "150ms",
        "--partitions",
        "4",
    ];
    let mut hits = 0;
    for _ in 0..kills {
        let mut child = spate(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Each run gets a random slice of at most 60% of the whole job, so most kills land
        // mid-run: while reading, between an epoch's staging and its commit, or in a checkpoint.
        let span_ms = span.as_millis() as u64;
        let deadline = Instant::now()
            + Duration::from_millis(rng.range(span_ms / 10 + 20, span_ms * 6 / 10 + 40));
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            hits += 1;
        }
        child.wait().unwrap();
    }
    run_ok(&args);
    hits
}

fn check_pipeline(pipeline: &str, events: u64, kills: u32) {
    let mut rng = Rng::from_clock(pipeline);
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tx.jsonl");
    write_transactions(&input, events, 2_000, 7, true);
    let reference = tmp.path().join("reference");
    let started = Instant::now();
    run_ok(&[
        "run",
        pipeline,
        "--source",
        &format!("file:{}", input.display()),
        "--sink",
        &format!("file:{}", reference.display()),
        "--trigger",
        "20ms",
        "--checkpoint-interval",
        "150ms",
        "--partitions",
        "4",
    ]);
    let span = started.elapsed();
    let expected = all_outputs(&reference);
    assert!(!expected[0].is_empty(), "{pipeline} produced no results");
    assert!(
        !expected[2].is_empty(),
        "the input's malformed lines were not dead-lettered"
    );

    let out = tmp.path().join("out");
    let state = tmp.path().join("state");
    let hits = crash_and_resume(pipeline, &input, &out, &state, (kills, span), &mut rng);
    assert!(
        hits > 0,
        "every run finished before it could be killed: the test proved nothing"
    );
    let got = all_outputs(&out);
    for (i, name) in ["results", "late records", "dead letters"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            got[i].len(),
            expected[i].len(),
            "{pipeline}: number of {name} differs"
        );
        assert!(
            got[i] == expected[i],
            "{pipeline}: {name} differ from the uninterrupted run"
        );
    }
    // Nothing but committed results matches DIR/*.jsonl, and nothing is left staged.
    let staged: Vec<_> = std::fs::read_dir(out.join(".staging/results"))
        .unwrap()
        .collect();
    assert!(
        staged.is_empty(),
        "left staged after the job finished: {staged:?}"
    );
}

#[test]
fn tx_windows_survives_random_kills() {
    check_pipeline("tx-windows", 60_000, 6);
}

#[test]
fn fraud_survives_random_kills() {
    check_pipeline("fraud", 60_000, 4);
}

#[test]
fn sessions_survive_random_kills() {
    check_pipeline("sessions", 60_000, 4);
}

#[test]
fn sigterm_stops_gracefully_and_the_job_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tx.jsonl");
    write_transactions(&input, 150_000, 2_000, 11, false);
    let source = format!("file:{}", input.display());
    let reference = tmp.path().join("reference");
    run_ok(&[
        "run",
        "tx-windows",
        "--source",
        &source,
        "--sink",
        &format!("file:{}", reference.display()),
    ]);

    let out = tmp.path().join("out");
    let (sink, state) = (
        format!("file:{}", out.display()),
        tmp.path().join("state").display().to_string(),
    );
    let args = [
        "run",
        "tx-windows",
        "--source",
        &source,
        "--sink",
        &sink,
        "--state",
        &state,
        "--trigger",
        "20ms",
    ];
    let child = spate(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let stopped = child.wait_with_output().unwrap();
    assert!(
        stopped.status.success(),
        "SIGTERM did not exit 0: {}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    let partial = committed(&out).len();
    assert!(
        partial < all_outputs(&reference)[0].len(),
        "the job finished before SIGTERM: raise the input size"
    );

    run_ok(&args);
    assert_eq!(all_outputs(&out), all_outputs(&reference));
}
