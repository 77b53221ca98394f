//! Crash recovery of the `spate` binary: killed with SIGKILL at random moments several times
//! mid-run and restarted, a job's committed output (results, late records, dead letters) equals
//! an uninterrupted run's, record for record. A SIGTERM finishes the epoch, checkpoints and
//! exits 0, and the resumed job is exact too.

mod common;

use common::*;
use spate::io::source::{EventGenerator, GenOptions};
use spate_actors::events::TransactionGenerator;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How every run here cuts epochs: by record count, and checkpoints often. Results no longer
/// depend on where epochs end (see `exact.rs`), but small epochs and frequent checkpoints give
/// the kills many different moments to land in: while reading, between an epoch's staging and
/// its commit, or in a checkpoint.
const EPOCHS: [&str; 6] = [
    "--trigger",
    "1h",
    "--max-records-per-epoch",
    "2000",
    "--checkpoint-interval",
    "150ms",
];

/// Runs `spate ARGS` (with the test hooks `hooks` set) `kills` times, killing each run at a
/// random moment within `span` (the uninterrupted run's duration), then lets it finish; returns
/// how many kills hit a running job.
fn kill_and_resume(
    (args, hooks): (&[&str], &[(&str, &str)]),
    (kills, span): (u32, Duration),
    rng: &mut Rng,
) -> u32 {
    // Each run gets a random slice of at most 60% of the whole job, so most kills land
    // mid-run: while reading, between an epoch's staging and its commit, or in a checkpoint.
    let span_ms = span.as_millis() as u64;
    let window = (span_ms / 10 + 20, span_ms * 6 / 10 + 40);
    let hits = kill_randomly_hooked(args, hooks, kills, window, rng);
    finish_ok(spate(args).envs(hooks.iter().copied()));
    hits
}

/// Runs `job` (`spate run …` without sink and state) once uninterrupted, then with `kills`
/// SIGKILLs at random moments and resumes, and asserts both commit the same results, late
/// records and dead letters and leave nothing staged. Returns the reference outputs.
///
/// The kill moments scale with the reference run's duration, which a busy machine (the other
/// crash tests run in parallel) makes a poor guide: when every run of an attempt finished before
/// its kill, the attempt proved nothing and the test starts over with fresh output and state and
/// half the delays.
fn assert_survives_kills(name: &str, job: &[&str], kills: u32) -> [Vec<String>; 3] {
    assert_survives_kills_with(name, job, (&[], &[]), kills)
}

/// [`assert_survives_kills`], the killed runs (those with a state directory) given `stateful`
/// arguments and the test hooks `hooks` too.
fn assert_survives_kills_with(
    name: &str,
    job: &[&str],
    (stateful, hooks): (&[&str], &[(&str, &str)]),
    kills: u32,
) -> [Vec<String>; 3] {
    let mut rng = Rng::from_clock(name);
    let tmp = tempfile::tempdir().unwrap();
    let run = |out: &Path, state: Option<&Path>| -> Vec<String> {
        let mut args: Vec<String> = job.iter().map(|a| a.to_string()).collect();
        args.extend(EPOCHS.map(String::from));
        args.extend(["--sink".into(), file_arg(out)]);
        if let Some(state) = state {
            args.extend(["--state".into(), state.display().to_string()]);
            args.extend(stateful.iter().map(|a| a.to_string()));
        }
        args
    };
    let reference = tmp.path().join("reference");
    let started = Instant::now();
    let args = run(&reference, None);
    run_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut span = started.elapsed();
    let expected = all_outputs(&reference);
    assert!(!expected[0].is_empty(), "{name}: no results");
    for attempt in 0..4 {
        let out = tmp.path().join(format!("out-{attempt}"));
        let args = run(&out, Some(&tmp.path().join(format!("state-{attempt}"))));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if kill_and_resume((&args, hooks), (kills, span), &mut rng) == 0 {
            span /= 2;
            continue;
        }
        let got = all_outputs(&out);
        for (i, what) in ["results", "late records", "dead letters"]
            .iter()
            .enumerate()
        {
            assert_same_lines(&got[i], &expected[i], &format!("{name}: {what}"));
        }
        // Nothing but committed results matches DIR/*.jsonl, and nothing is left staged.
        let staged: Vec<_> = std::fs::read_dir(out.join(".staging/results"))
            .unwrap()
            .collect();
        assert!(
            staged.is_empty(),
            "{name}: left staged after the job finished: {staged:?}"
        );
        return expected;
    }
    panic!("{name}: every run finished before it could be killed, even with short delays: the test proved nothing");
}

/// A file-source job of `pipeline` over `events` transactions with malformed lines.
fn check_pipeline(pipeline: &str, events: u64, kills: u32) {
    check_pipeline_hooked(pipeline, events, kills, &[]);
}

/// [`check_pipeline`], the killed runs with the test hooks `hooks` set.
fn check_pipeline_hooked(pipeline: &str, events: u64, kills: u32, hooks: &[(&str, &str)]) {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tx.jsonl");
    write_transactions(&input, events, 2_000, 7, true);
    let source = file_arg(&input);
    let job = ["run", pipeline, "--source", &source, "--partitions", "4"];
    let expected = assert_survives_kills_with(pipeline, &job, (&[], hooks), kills);
    assert!(
        !expected[2].is_empty(),
        "the input's malformed lines were not dead-lettered"
    );
}

#[test]
fn tx_windows_survives_random_kills() {
    check_pipeline("tx-windows", 60_000, 6);
}

/// Results staged in parts as they are written (`SPATE_RESULT_PART_BYTES`: parts of 256 bytes
/// instead of megabytes, so every epoch's are) commit what an uninterrupted run that staged
/// each epoch's results whole commits, through kills that land between two parts.
#[test]
fn results_staged_in_parts_survive_random_kills() {
    let parts = [("SPATE_RESULT_PART_BYTES", "256")];
    check_pipeline_hooked("sessions", 60_000, 4, &parts);
}

#[test]
fn fraud_survives_random_kills() {
    check_pipeline("fraud", 60_000, 4);
}

#[test]
fn sessions_survive_random_kills() {
    check_pipeline("sessions", 60_000, 4);
}

/// Under `--state-memory` below its state (2,000 users' sessions in 4 partitions, 64 KiB each:
/// about 37,000 evictions in a run), a job keeps state buckets in its bucket log and reads them
/// back when a key or a timer needs them; killed at random moments, it still commits exactly
/// the output of an uninterrupted run holding everything in memory. (With 1 MiB nothing is
/// evicted; a checkpoint that left out the buckets changed in memory failed this test.)
#[test]
fn sessions_under_a_memory_limit_survive_random_kills() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tx.jsonl");
    write_transactions(&input, 60_000, 2_000, 7, true);
    let source = file_arg(&input);
    let job = ["run", "sessions", "--source", &source, "--partitions", "4"];
    let limit = ["--state-memory", "256KiB"];
    assert_survives_kills_with("sessions under --state-memory", &job, (&limit, &[]), 4);
}

/// A two-input job: the temporal join of transactions (with very late and malformed records)
/// and a users table changing during the run.
#[test]
fn a_temporal_join_survives_random_kills() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, users) = (tmp.path().join("tx.jsonl"), tmp.path().join("users.jsonl"));
    write_transactions(&tx, 40_000, 1_000, 9, true);
    write_users(&users, &user_rows(1_000, 1_500, 40_000, 9));
    let (tx, users) = (
        format!("transactions={}", file_arg(&tx)),
        format!("users={}", file_arg(&users)),
    );
    let job = [
        "run",
        "tx-enriched",
        "--source",
        &tx,
        "--source",
        &users,
        "--partitions",
        "4",
    ];
    let expected = assert_survives_kills("tx-enriched", &job, 5);
    assert!(
        !expected[1].is_empty(),
        "the very late transactions are late"
    );
}

#[test]
fn a_rekeyed_two_stage_pipeline_survives_random_kills() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, users) = (tmp.path().join("tx.jsonl"), tmp.path().join("users.jsonl"));
    write_transactions(&tx, 40_000, 1_000, 11, true);
    let rows = user_rows(1_000, 1_500, 40_000, 11);
    write_users(&users, &rows);
    let (tx_arg, users_arg) = (
        format!("transactions={}", file_arg(&tx)),
        format!("users={}", file_arg(&users)),
    );
    let job = [
        "run",
        "enrich",
        "--source",
        &tx_arg,
        "--source",
        &users_arg,
        "--partitions",
        "4",
    ];
    let expected = assert_survives_kills("enrich", &job, 5);
    assert!(
        !expected[1].is_empty(),
        "the very late transactions are late"
    );
}

#[test]
fn per_device_models_survive_random_kills() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("sensors.jsonl");
    write_readings(&input, 60_000, 40, 3);
    let source = format!("sensors={}", file_arg(&input));
    let job = [
        "run",
        "iot-anomaly",
        "--source",
        &source,
        "--partitions",
        "4",
    ];
    assert_survives_kills("iot-anomaly", &job, 5);
}

#[test]
fn shared_model_scores_survive_random_kills() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, labels) = (tmp.path().join("tx.jsonl"), tmp.path().join("labels.jsonl"));
    write_payments((&tx, &labels), 40_000, 800, 9);
    let sources = fraud_sources(&tx, &labels);
    let job = [&fraud_run(&sources)[..], &["--partitions", "4"]].concat();
    assert_survives_kills("fraud-score", &job, 5);
}

/// The generator source's replay (events regenerated by index, event time fixed by `--start`),
/// on input without very late records (checked below), so nothing depends on the first epoch.
#[test]
fn the_generator_source_survives_random_kills() {
    let generator = TransactionGenerator::new(&GenOptions {
        seed: 5,
        keys: 50,
        rate: Some(3_000.0),
        base_ms: spate::time::parse_rfc3339("2026-03-01T00:00:00Z").unwrap(),
        ..GenOptions::default()
    });
    let base = generator.generate(0).event_ms;
    let very_late = (0..3_000u64)
        .filter(|&i| generator.generate(i).event_ms < base + (i * 333) as i64 / 1_000 - 20_000)
        .count();
    assert_eq!(very_late, 0, "pick a seed without very late records");
    let job = [
        "run",
        "fraud",
        "--events",
        "3000",
        "--rate",
        "3000",
        "--keys",
        "50",
        "--seed",
        "5",
        "--start",
        "2026-03-01T00:00:00Z",
    ];
    assert_survives_kills("gen", &job, 4);
}

#[test]
fn sigterm_stops_gracefully_and_the_job_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tx.jsonl");
    write_transactions(&input, 150_000, 2_000, 11, false);
    let source = file_arg(&input);
    let reference = tmp.path().join("reference");
    let sink = file_arg(&reference);
    let mut args = vec!["run", "tx-windows", "--source", &source, "--sink", &sink];
    args.extend(EPOCHS);
    run_ok(&args);

    let out = tmp.path().join("out");
    let (sink, state) = (
        file_arg(&out),
        tmp.path().join("state").display().to_string(),
    );
    let mut args = vec!["run", "tx-windows", "--source", &source, "--sink", &sink];
    args.extend(["--state", &state]);
    args.extend(EPOCHS);
    let child = spate(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert!(sigterm(&child));
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

/// A job that crashed after epoch 3 (its checkpoint still at the start), restarted on an input
/// that `change` edited: the restart stops within seconds with an error naming the file.
fn restart_on_changed_input(change: impl Fn(&Path)) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let (input, args) = epoch_job(tmp.path(), 5, "2000");
    crash_after(&args, "3");
    change(&input);
    let mut child = spate(&as_strs(&args))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the restart on a changed input hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the input changed since epoch") && err.contains(&input.display().to_string()),
        "{err}"
    );
    err
}

#[test]
fn a_restart_on_an_edited_input_stops_with_an_error_instead_of_spinning() {
    // A short line inserted at the start shifts every line: the replay of epoch 1 reads past
    // where epoch 1 ended (a reader that only stopped *at* the recorded end looped forever).
    let err = restart_on_changed_input(|input| {
        let text = std::fs::read(input).unwrap();
        std::fs::write(input, [&b"{\"x\":1}\n"[..], &text].concat()).unwrap();
    });
    assert!(err.contains("it went on to byte"), "{err}");
    // Truncated: the replay reaches the end of the input before the recorded end.
    let err = restart_on_changed_input(|input| {
        let file = std::fs::OpenOptions::new().write(true).open(input).unwrap();
        file.set_len(100_000).unwrap();
    });
    assert!(err.contains("the input ends before it"), "{err}");
}

#[test]
fn a_restart_checkpoints_once_it_has_caught_up_with_its_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, args) = epoch_job(tmp.path(), 8, "1000");
    let crash_at = |epoch| crash_after(&args, epoch);
    crash_at("3");
    let second = crash_at("6");
    assert!(
        second.contains("checkpoint=0") && second.contains("replay=3"),
        "{second}"
    );
    // The second run replayed epochs 1-3 and checkpointed at 3: the third resumes from there.
    let third = crash_at("8");
    assert!(
        third.contains("checkpoint=3") && third.contains("replay=3"),
        "{third}"
    );
}

/// A state database deleted or emptied no longer accounts for the output in the file sink: the
/// job is refused. One cut in half comes back, as sled recovers, at an earlier consistent point
/// of its log: refused when that point no longer accounts for the output, or resumed from it
/// when it does (its lost checkpoints replayed, as after a crash just before them). Either way
/// nothing is written twice or changed.
#[test]
fn a_lost_or_truncated_state_database_is_refused_and_nothing_is_written_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tx.jsonl");
    write_transactions(&input, 5_000, 100, 9, false);
    let out = tmp.path().join("out");
    let (source, sink) = (file_arg(&input), file_arg(&out));
    let state = tmp.path().join("state");
    let state_arg = state.display().to_string();
    let args = [
        "run",
        "tx-windows",
        "--source",
        &source,
        "--sink",
        &sink,
        "--state",
        &state_arg,
    ];
    run_ok(&args);
    let results = all_outputs(&out);
    let db = state.join("db");
    let size = std::fs::metadata(&db).unwrap().len();
    let damages: [(&str, &dyn Fn(), bool); 3] = [
        (
            "truncated to nothing",
            &|| std::fs::File::create(&db).map(drop).unwrap(),
            true,
        ),
        ("deleted", &|| std::fs::remove_file(&db).unwrap(), true),
        (
            "cut in half",
            &|| {
                let file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
                file.set_len(size / 2).unwrap();
            },
            false,
        ),
    ];
    let backup = tmp.path().join("backup");
    std::fs::create_dir_all(&backup).unwrap();
    for entry in std::fs::read_dir(&state).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_file() {
            std::fs::copy(entry.path(), backup.join(entry.file_name())).unwrap();
        }
    }
    for (what, damage, refused) in damages {
        std::fs::remove_dir_all(&state).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        for entry in std::fs::read_dir(&backup).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), state.join(entry.file_name())).unwrap();
        }
        damage();
        let rerun = spate(&args).output().unwrap();
        let err = String::from_utf8_lossy(&rerun.stderr);
        assert!(
            !(refused && rerun.status.success()),
            "{what}: the job started over: {err}"
        );
        assert_eq!(
            all_outputs(&out),
            results,
            "{what}: output written twice or changed"
        );
    }
}

/// Damage in sled's file or in a bucket log either stops the job naming the state directory or
/// hit nothing it needed; the output is never wrong.
#[test]
fn a_corrupted_state_database_stops_the_job_and_never_writes_wrong_output() {
    let mut rng = Rng::from_clock("corrupted state");
    let tmp = tempfile::tempdir().unwrap();
    let (_, mut args) = epoch_job(tmp.path(), 14, "2000");
    *args.last_mut().unwrap() = "1ms".into(); // a checkpoint every epoch
    let reference = tmp.path().join("reference");
    let mut bounded = as_strs(&args)[..4].to_vec();
    let reference_arg = file_arg(&reference);
    bounded.extend(["--sink", &reference_arg]);
    run_ok(&bounded);
    let want = all_outputs(&reference);
    let (out, state) = (tmp.path().join("out"), tmp.path().join("state"));
    for trial in 0..8 {
        let _ = std::fs::remove_dir_all(&out);
        let _ = std::fs::remove_dir_all(&state);
        crash_after(&args, "6");
        // Random bytes or flipped bits somewhere in sled's file, or in a partition's bucket log.
        let db = if trial < 4 {
            state.join("db")
        } else {
            let logs: Vec<_> = (std::fs::read_dir(state.join("buckets")).unwrap())
                .map(|e| e.unwrap().path())
                .filter(|p| std::fs::metadata(p).unwrap().len() > 0)
                .collect();
            logs[rng.range(0, logs.len() as u64) as usize].clone()
        };
        let mut bytes = std::fs::read(&db).unwrap();
        for _ in 0..1 + trial % 4 {
            let at = rng.range(0, bytes.len() as u64) as usize;
            let end = (at + rng.range(1, 64) as usize).min(bytes.len());
            for b in &mut bytes[at..end] {
                *b = if trial % 2 == 0 {
                    rng.range(0, 256) as u8
                } else {
                    !*b
                };
            }
        }
        std::fs::write(&db, bytes).unwrap();
        let rerun = spate(&as_strs(&args)).output().unwrap();
        let err = String::from_utf8_lossy(&rerun.stderr);
        let got = all_outputs(&out);
        if rerun.status.success() {
            // The damage hit nothing the job needed: the output must be exact.
            assert_eq!(
                got, want,
                "trial {trial}: wrong output after a damaged state"
            );
        } else {
            assert_eq!(rerun.status.code(), Some(1), "trial {trial}: {err}");
            assert!(
                err.contains(&state.display().to_string()),
                "trial {trial}: the error does not name the state directory: {err}"
            );
            for (stream, lines) in got.iter().enumerate() {
                for line in lines {
                    assert!(
                        want[stream].binary_search(line).is_ok(),
                        "trial {trial}: a wrong line in the output: {line}"
                    );
                }
            }
        }
    }
}

#[test]
fn sigterm_during_a_replay_stops_at_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, args) = epoch_job(tmp.path(), 10, "1000");
    crash_after(&args, "12");
    // A slow partition makes the replay of 12 epochs take seconds; SIGTERM lands in it.
    let mut child = spate(&as_strs(&args))
        .env("SPATE_SLOW_PARTITION", "0:250")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1_500));
    sigterm(&child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "SIGTERM during a replay was ignored"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("stopped while replaying epoch"), "{err}");
    // And the job resumes and finishes.
    run_ok(&as_strs(&args));
}

/// Appends `lines` to `path`, creating it if needed.
fn append_lines(path: &Path, lines: &[String]) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    file.write_all(lines.concat().as_bytes()).unwrap();
}

#[test]
fn a_followed_directory_is_read_exactly_once_across_a_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let lines = transaction_lines(50_000, 300, 12);
    let part = |from: usize, to: usize| &lines[from * 1_000..to * 1_000];
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    append_lines(&input.join("a.jsonl"), part(0, 10));
    let (out, state) = (tmp.path().join("out"), tmp.path().join("state"));
    let job = |follow: bool, addr: &str| -> Vec<String> {
        let mut args: Vec<String> = ["run", "tx-windows", "--trigger", "100ms"]
            .map(String::from)
            .to_vec();
        args.extend(["--checkpoint-interval".into(), "200ms".into()]);
        args.extend(["--source".into(), file_arg(&input)]);
        args.extend(["--sink".into(), file_arg(&out)]);
        args.extend(["--state".into(), state.display().to_string()]);
        args.extend(["--metrics-addr".into(), addr.into()]);
        if follow {
            args.push("--follow".into());
        }
        args
    };
    let start = |addr: &str| {
        spate(&as_strs(&job(true, addr)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let committed_at_least = |addr: &str, n: f64| {
        wait_until(
            &format!("{n} records are committed"),
            Duration::from_secs(90),
            || counter(addr, "spate_records_in_total").is_some_and(|c| c >= n),
        )
    };

    // A following job reads the file, lines appended to it and a new file, then is killed.
    let addr = format!("127.0.0.1:{}", free_port());
    let mut first = start(&addr);
    committed_at_least(&addr, 10_000.0);
    append_lines(&input.join("a.jsonl"), part(10, 20));
    append_lines(&input.join("b.jsonl"), part(20, 30));
    committed_at_least(&addr, 30_000.0);
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();

    // While it is down, the last file grows and a new one appears: the restarted job reads
    // them, and SIGTERM stops it.
    append_lines(&input.join("b.jsonl"), part(30, 40));
    append_lines(&input.join("c.jsonl"), part(40, 50));
    let addr = format!("127.0.0.1:{}", free_port());
    let second = start(&addr);
    committed_at_least(&addr, 20_000.0);
    sigterm(&second);
    let stopped = second.wait_with_output().unwrap();
    assert!(stopped.status.success(), "SIGTERM did not exit 0");

    // A bounded run finishes what is open; all of it equals one bounded run over the input.
    run_ok(&as_strs(&job(false, "off")));
    let reference = tmp.path().join("reference");
    run_ok(&[
        "run",
        "tx-windows",
        "--source",
        &file_arg(&input),
        "--sink",
        &file_arg(&reference),
    ]);
    let [got, want] = [&out, &reference].map(|dir| all_outputs(dir));
    assert!(!want[0].is_empty());
    for (what, i) in [("results", 0), ("late records", 1), ("dead letters", 2)] {
        assert_same_lines(&got[i], &want[i], what);
    }
}

/// A `tx-windows` job over 20,000 generated transactions (`seed`) in `tmp`, cut into epochs of
/// `per_epoch` records and never checkpointed on time (`--checkpoint-interval 1h`), so only the
/// rule under test checkpoints. Returns the input file and the arguments.
fn epoch_job(tmp: &Path, seed: u64, per_epoch: &str) -> (std::path::PathBuf, Vec<String>) {
    let input = tmp.join("tx.jsonl");
    write_transactions(&input, 20_000, 300, seed, false);
    let args = [
        "run".into(),
        "tx-windows".into(),
        "--source".into(),
        file_arg(&input),
        "--sink".into(),
        file_arg(&tmp.join("out")),
        "--state".into(),
        tmp.join("state").display().to_string(),
        "--trigger".into(),
        "1h".into(),
        "--max-records-per-epoch".into(),
        per_epoch.into(),
        "--checkpoint-interval".into(),
        "1h".into(),
    ];
    (input, args.to_vec())
}

/// Runs `args` (with `RUST_LOG=info`) until the crash hook aborts it after epoch `epoch`'s
/// commit; returns what it logged.
fn crash_after(args: &[String], epoch: &str) -> String {
    let out = spate(&as_strs(args))
        .env("SPATE_CRASH_AFTER_COMMIT", epoch)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the crash hook at {epoch} did not fire"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
