//! The `spate` command line as a user meets it: listing, the embedded default run, errors that
//! name the input and the fix, and the Prometheus endpoint.

mod common;

use common::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn list_shows_every_pipeline() {
    let out = run_ok(&["list"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for name in ["tx-windows", "fraud", "sessions"] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing from:\n{text}"
        );
    }
}

#[test]
fn default_run_prints_fraud_alerts_from_the_generator() {
    let out = run_ok(&["run", "fraud", "--events", "30000"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let alerts: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        !alerts.is_empty(),
        "no alerts in 30,000 generated transactions"
    );
    for a in &alerts {
        let (count, sum) = (a["count"].as_u64().unwrap(), a["sum"].as_f64().unwrap());
        assert!(count > 10 || sum > 50_000.0, "not an alert: {a}");
        assert_eq!(
            a["window_end"].as_i64().unwrap() - a["window_start"].as_i64().unwrap(),
            300_000
        );
        let key = a["key"].as_str().unwrap();
        assert!(a["avg"].is_number() && key.starts_with('u'), "{a}");
    }
}

#[test]
fn errors_name_the_input_and_the_fix() {
    let out = spate(&["run", "no-such"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such") && err.contains("tx-windows"),
        "{err}"
    );

    let out = spate(&["run", "fraud", "--source", "kafkaa://x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--source") && err.contains("file:PATH"),
        "{err}"
    );
    // Each bad flag: a failure whose message names the flag and the fix.
    for (args, words) in [
        (
            &["--source", "kafka://x"][..],
            &["--source", "kafka://HOST:PORT/TOPIC"][..],
        ),
        (&["--kafka-opt", "novalue"], &["--kafka-opt", "KEY=VALUE"]),
        (&["--app-id", "a b"], &["--app-id", "letters, digits"]),
        (&["--guarantee", "maybe"], &["--guarantee", "at-least-once"]),
        (
            &["--output-mode", "complete"],
            &["--output-mode", "append or update"],
        ),
        (
            &["--allowed-lateness", "soon"],
            &["--allowed-lateness", "1m30s"],
        ),
        (&["--workers", "0"], &["--workers", "at least 1"]),
        (
            &["--max-dead-letter-ratio", "2"],
            &["--max-dead-letter-ratio", "0 to 1"],
        ),
        (
            &["--metrics-addr", "nowhere"],
            &["--metrics-addr", "HOST:PORT"],
        ),
    ] {
        let mut all = vec!["run", "fraud"];
        all.extend(args);
        let out = spate(&all).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(words.iter().all(|w| err.contains(w)), "{args:?}: {err}");
    }

    // A config file: bad TOML names the file; a bad librdkafka property in [kafka] names it.
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[kafka\n").unwrap();
    let bad = bad.display().to_string();
    let out = spate(&["run", "fraud", "--config", &bad]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--config") && err.contains("bad.toml"),
        "{err}"
    );
    let config = tmp.path().join("spate.toml");
    std::fs::write(&config, "[kafka]\n\"no.such.property\" = 5\n").unwrap();
    let config = config.display().to_string();
    let out = spate(&[
        "run",
        "fraud",
        "--config",
        &config,
        "--source",
        "kafka://127.0.0.1:9/tx",
    ])
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no.such.property") && err.contains("[kafka]"),
        "{err}"
    );

    let out = spate(&["run", "fraud", "--source", "file:/no/such/tx.jsonl"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("/no/such/tx.jsonl"),
        "{err}"
    );

    let out = spate(&["run", "fraud", "--trigger", "soon"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--trigger") && err.contains("continuous"),
        "{err}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().display().to_string();
    run_ok(&[
        "run",
        "tx-windows",
        "--events",
        "1000",
        "--partitions",
        "2",
        "--state",
        &state,
    ]);
    let out = spate(&[
        "run",
        "tx-windows",
        "--events",
        "1000",
        "--partitions",
        "3",
        "--state",
        &state,
    ])
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--partitions 2") && err.contains("--partitions 3"),
        "{err}"
    );
}

/// Stops a job with SIGTERM and waits for it.
fn terminate(mut child: std::process::Child) -> std::process::ExitStatus {
    sigterm(&child);
    child.wait().unwrap()
}

#[test]
fn metrics_are_served_for_prometheus() {
    let (child, addr) = metered_job("20000", &[], &[]);
    let mut body = String::new();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let Some(response) = http_get(&addr, "/metrics") else {
            continue;
        };
        body = response;
        if body.contains("spate_records_in_total") && body.contains("spate_watermark_lag") {
            break;
        }
    }
    let status = terminate(child);
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    for metric in [
        "spate_records_in_total",
        "spate_epoch_duration_seconds_bucket",
        "spate_state_keys",
        "spate_state_size_bytes",
        "spate_watermark_lag",
        "spate_state_expired_total",
    ] {
        assert!(body.contains(metric), "{metric} missing from:\n{body}");
    }
    assert!(
        status.success(),
        "SIGTERM did not stop the job cleanly: {status}"
    );
}

#[test]
fn stdin_with_the_continuous_trigger() {
    let mut child = spate(&[
        "run",
        "sessions",
        "--source",
        "stdin",
        "--trigger",
        "continuous",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let input = concat!(
        "{\"tx_id\":1,\"user_id\":5,\"amount\":10.5,\"merchant_id\":1,\"event_ms\":1000}\n",
        "{\"tx_id\":2,\"user_id\":5,\"amount\":0.25,\"merchant_id\":1,\"event_time\":\"1970-01-01T00:10:00Z\"}\n",
        "not json\n",
        "{\"tx_id\":3,\"user_id\":5,\"amount\":1,\"merchant_id\":1,\"event_ms\":7200000}\n",
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(
        results,
        [
            r#"{"key":5,"window_start":1000,"window_end":2400000,"count":2,"sum":10.75}"#,
            r#"{"key":5,"window_start":7200000,"window_end":9000000,"count":1,"sum":1.0}"#,
        ]
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"raw\":\"not json\"") && err.contains("\"source\":\"stdin\""),
        "{err}"
    );
}

/// A job on stdin that crashed before its last checkpoint cannot get its input again: the
/// restart stops, saying so and what to run instead, rather than skip or redo epochs.
#[test]
fn a_restart_that_must_replay_stdin_stops_saying_so() {
    let tmp = tempfile::tempdir().unwrap();
    let (state, sink) = (tmp.path().join("state"), tmp.path().join("out"));
    let (state, sink) = (state.to_str().unwrap(), format!("file:{}", sink.display()));
    let input: String = (0..2_000)
        .map(|i| {
            format!(
                "{{\"tx_id\":{i},\"user_id\":{},\"amount\":1.5,\"merchant_id\":1,\"event_ms\":{}}}\n",
                i % 50,
                i * 1_000
            )
        })
        .collect();
    let run = |crash: Option<&str>| {
        let args = ["run", "tx-windows", "--source", "stdin", "--sink", &sink];
        let mut command = spate(&args);
        command.args(["--state", state, "--max-records-per-epoch", "100"]);
        command.args(["--checkpoint-interval", "1h"]);
        if let Some(epoch) = crash {
            command.env("SPATE_CRASH_BEFORE_COMMIT", epoch);
        }
        let mut child = (command.stdin(Stdio::piped()).stdout(Stdio::null()))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        // The crashed run stops reading: a broken pipe is expected then.
        let _ = pipe.write_all(input.as_bytes());
        drop(pipe);
        child.wait_with_output().unwrap()
    };
    let crashed = run(Some("3"));
    assert!(!crashed.status.success(), "the crash point was not reached");
    let restarted = run(None);
    let err = String::from_utf8_lossy(&restarted.stderr);
    assert!(!restarted.status.success(), "{err}");
    assert!(
        err.contains("stdin cannot be read again") && err.contains("rerun with a file"),
        "{err}"
    );
}

#[test]
fn a_second_job_on_the_same_state_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let dir = state.display().to_string();
    let args = [
        "run",
        "tx-windows",
        "--events",
        "0",
        "--rate",
        "2000",
        "--state",
        &dir,
    ];
    let mut first = spate(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // sled creates its database file when it opens (and locks) the directory.
    for _ in 0..100 {
        if state.join("db").exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    // Bounded, so a second job that wrongly got in would end instead of hanging the test.
    let second = spate(&["run", "tx-windows", "--events", "10", "--state", &dir])
        .output()
        .unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status();
    assert!(first.wait().unwrap().success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        !second.status.success(),
        "the second job ran on a state directory in use"
    );
    assert!(
        err.contains("another spate") && err.contains("state"),
        "{err}"
    );
}

#[test]
fn a_closed_stdout_ends_the_job_quietly() {
    let mut child = spate(&["run", "tx-windows", "--events", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take()); // like `| head`
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("error"), "{err}");
}

#[test]
fn a_feed_of_another_shape_stops_with_its_first_error_and_keeps_its_dead_letters() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, lines: &str, extra: &[&str]| {
        let input = tmp.path().join(format!("{name}.jsonl"));
        std::fs::write(&input, lines).unwrap();
        let (source, out) = (file_arg(&input), tmp.path().join(name));
        let sink = file_arg(&out);
        let mut args = vec!["run", "tx-windows", "--source", &source, "--sink", &sink];
        args.extend(extra);
        let result = spate(&args).output().unwrap();
        let err = String::from_utf8_lossy(&result.stderr).into_owned();
        (result.status.code(), err, out)
    };
    // Orders, not payments: every line is a dead letter.
    let orders = "{\"order\":1,\"customer\":\"c1\"}\n".repeat(1_500);
    let (code, err, out) = run("orders", &orders, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("missing field `tx_id`"), "{err}");
    let dead = out.join("dead-letter");
    assert!(err.contains(&dead.display().to_string()), "{err}");
    assert_eq!(committed(&dead).len(), 1_500, "the dead letters are kept");
    // All of a small input.
    let (code, err, _) = run("three", "a\nb\nc\n", &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("first 3 lines were all malformed"), "{err}");
    // A few bad lines pass, unless a ratio says otherwise.
    let tx = tmp.path().join("tx.jsonl");
    write_transactions(&tx, 20_000, 100, 3, true);
    let mixed = std::fs::read_to_string(&tx).unwrap() + &"oops\n".repeat(500);
    let (code, err, _) = run("mixed", &mixed, &[]);
    assert_eq!(code, Some(0), "{err}");
    let (code, err, _) = run("strict", &mixed, &["--max-dead-letter-ratio", "0.01"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--max-dead-letter-ratio 0.01"), "{err}");
}

#[test]
fn a_blackhole_sink_makes_and_drops_the_results_and_keeps_bad_input_on_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let tx = tmp.path().join("tx.jsonl");
    write_transactions_on_time(&tx, 20_000, 100, 5, false);
    let mixed = std::fs::read_to_string(&tx).unwrap() + "oops\nnot json\n";
    std::fs::write(&tx, mixed).unwrap();
    let source = file_arg(&tx);
    let report = |sink: &str| {
        let run = run_ok(&[
            "run",
            "tx-windows",
            "--source",
            &source,
            "--sink",
            sink,
            "--report",
        ]);
        let err = String::from_utf8_lossy(&run.stderr).into_owned();
        let results = err.split_whitespace().find(|w| w.starts_with("results="));
        let results = results.expect("the report counts results").to_string();
        (run.stdout, err, results)
    };
    let (stdout, err, dropped) = report("blackhole");
    assert!(stdout.is_empty(), "no result is written");
    assert_eq!(err.matches("dead letter: ").count(), 2, "{err}");
    let (_, _, written) = report(&file_arg(&tmp.path().join("out")));
    assert_eq!(dropped, written, "the same results are made");
    assert_ne!(dropped, "results=0");
}

#[test]
fn idle_connections_do_not_hold_up_a_scrape_and_health_answers() {
    let (child, addr) = metered_job("1000", &[], &[]);
    let mut health = None;
    for _ in 0..100 {
        health = http_get(&addr, "/health");
        if health.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Ten clients connect and say nothing (the old endpoint served one connection at a time,
    // waiting 2 s for each to speak).
    let idle: Vec<_> = (0..10)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    let started = std::time::Instant::now();
    let body = http_get(&addr, "/metrics").unwrap_or_default();
    let took = started.elapsed();
    drop(idle);
    terminate(child);
    let health = health.expect("/health never answered");
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"),
        "{health}"
    );
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    // Counters are exported from the start, before any late record or dead letter, with the
    // pipeline label and nothing of an OpenTelemetry bridge.
    for counter in [
        "spate_records_in_total{pipeline=\"tx-windows\"}",
        "spate_records_out_total{pipeline=\"tx-windows\"}",
        "spate_records_late_total{pipeline=\"tx-windows\"}",
        "spate_records_dead_lettered_total{pipeline=\"tx-windows\"}",
        "spate_state_expired_total{pipeline=\"tx-windows\"}",
        "spate_state_evictions_total{pipeline=\"tx-windows\"}",
        "spate_state_read_backs_total{pipeline=\"tx-windows\"}",
    ] {
        assert!(body.contains(counter), "{counter} missing:\n{body}");
    }
    assert!(
        !body.contains("otel_scope") && !body.contains("target_info"),
        "{body}"
    );
    // Generous for a shared machine; the old endpoint took 20 s here.
    assert!(
        took < Duration::from_secs(2),
        "a scrape took {took:?} behind idle connections"
    );
}

#[test]
fn a_state_directory_knows_its_source_by_any_path_and_refuses_another_sink() {
    let tmp = tempfile::tempdir().unwrap();
    write_transactions(&tmp.path().join("tx.jsonl"), 3_000, 50, 4, false);
    let run = |source: &str, sink: &str| {
        spate(&[
            "run",
            "tx-windows",
            "--source",
            source,
            "--sink",
            sink,
            "--state",
            "st",
        ])
        .current_dir(tmp.path())
        .output()
        .unwrap()
    };
    let absolute = file_arg(&tmp.path().join("tx.jsonl"));
    assert!(run("file:tx.jsonl", "file:out").status.success());
    // The same file and directory, named another way: the job resumes (and has nothing to do).
    let again = run(&absolute, "file:./out/");
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{err}");
    // Another sink: refused, naming the setting that differs and both values.
    let other = run(&absolute, "file:elsewhere");
    let err = String::from_utf8_lossy(&other.stderr);
    assert_eq!(other.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--sink file:") && err.contains("/out") && err.contains("/elsewhere"),
        "{err}"
    );
    assert!(!err.contains("--partitions"), "only what differs: {err}");
    // A missing source is refused before anything is recorded.
    let missing = run("file:nope.jsonl", "file:out");
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        !missing.status.success() && err.contains("nope.jsonl"),
        "{err}"
    );
}

#[test]
fn a_sink_directory_with_output_the_state_does_not_account_for_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tx.jsonl");
    write_transactions(&input, 5_000, 50, 6, false);
    let source = file_arg(&input);
    let out = tmp.path().join("out");
    let sink = file_arg(&out);
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "tx-windows", "--source", &source, "--sink", &sink];
        args.extend(extra);
        spate(&args).output().unwrap()
    };
    assert!(run(&[]).status.success());
    let first = committed(&out);
    assert!(!first.is_empty());
    // The same job again into the same directory: every file name exists already. It used to
    // skip writing them all and exit 0; it is refused, naming the sink and the state.
    let again = run(&[]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&out.display().to_string()) && err.contains("temporary state"),
        "{err}"
    );
    assert!(err.contains("--overwrite"), "{err}");
    let state = tmp.path().join("state").display().to_string();
    let with_state = run(&["--state", &state]);
    let err = String::from_utf8_lossy(&with_state.stderr);
    assert!(
        err.contains("--state directory") && err.contains(&state),
        "{err}"
    );
    // --overwrite deletes the earlier output and writes this job's in full.
    let over = run(&["--overwrite"]);
    assert!(
        over.status.success(),
        "{}",
        String::from_utf8_lossy(&over.stderr)
    );
    assert_eq!(committed(&out), first);
}

#[test]
fn a_terminal_shows_a_progress_line_and_a_file_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = file_arg(&tmp.path().join("out"));
    let args = [
        "run",
        "tx-windows",
        "--events",
        "60000",
        "--rate",
        "20000",
        "--sink",
        &sink,
        "--metrics-addr",
        "off",
    ];
    // Under a pseudo-terminal (util-linux `script`), which is what a person at a shell has.
    let command = format!("{} {}", env!("CARGO_BIN_EXE_spate"), args.join(" "));
    let tty = std::process::Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script` runs commands under a pseudo-terminal");
    let screen = String::from_utf8_lossy(&tty.stdout);
    assert!(tty.status.success(), "{screen}");
    assert!(
        screen.contains("\r\x1b[2K")
            && screen.contains("records (")
            && screen.contains("watermark 20"),
        "no progress line on a terminal:\n{screen}"
    );
    assert!(
        screen.contains("spate: tx-windows: 60000 records"),
        "{screen}"
    );
    // Into a pipe: the summary, no progress line; --quiet: neither.
    let sink = file_arg(&tmp.path().join("out2"));
    let piped = spate(&["run", "tx-windows", "--events", "20000", "--sink", &sink])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&piped.stderr);
    assert!(
        !err.contains('\r') && err.contains("spate: tx-windows: 20000 records"),
        "{err}"
    );
    let sink = file_arg(&tmp.path().join("out3"));
    let quiet = spate(&[
        "run",
        "tx-windows",
        "--events",
        "20000",
        "--sink",
        &sink,
        "--quiet",
    ])
    .output()
    .unwrap();
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
}

#[test]
fn a_line_of_hundreds_of_megabytes_stays_under_the_memory_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tx.jsonl");
    write_transactions(&input, 2_000, 20, 11, false);
    {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&input)
            .unwrap();
        let block = vec![b'x'; 1 << 20];
        file.write_all(b"{\"tx_id\":\"").unwrap();
        for _ in 0..256 {
            file.write_all(&block).unwrap(); // one 256 MB line
        }
        file.write_all(b"\"}\n").unwrap();
    }
    let source = file_arg(&input);
    let out = tmp.path().join("out");
    let sink = file_arg(&out);
    let run = spate(&[
        "run",
        "tx-windows",
        "--source",
        &source,
        "--sink",
        &sink,
        "--report",
    ])
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    let peak = peak_mb(&err);
    assert!(peak < 128, "reading a 256 MB line took {peak} MB");
    let dead = committed(&out.join("dead-letter"));
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].contains("a line of 268435468 bytes"),
        "{}",
        &dead[0][..300]
    );

    // The same through stdin (which counts the newline into the line's bytes).
    let mut child = spate(&["run", "tx-windows", "--source", "stdin", "--report"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let mut file = std::fs::File::open(&input).unwrap();
        std::io::copy(&mut file, &mut pipe).unwrap();
    });
    let run = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    let start = &err[..err.len().min(2_000)];
    assert!(run.status.success(), "{start}");
    assert!(
        err.contains("dead letter: ") && err.contains("a line of 268435469 bytes"),
        "{start}"
    );
    let peak = peak_mb(start);
    assert!(
        peak < 160,
        "reading a 256 MB line from stdin took {peak} MB"
    );
}

/// The peak memory in MB that a `--report` line on `stderr` states.
fn peak_mb(stderr: &str) -> u64 {
    stderr
        .split("peak_memory=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|mb| mb.parse().ok())
        .unwrap_or_else(|| panic!("no peak memory in: {}", &stderr[..stderr.len().min(2_000)]))
}

#[test]
fn a_sink_is_given_by_its_outputs_name_or_refused_naming_the_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tx.jsonl");
    write_transactions(&input, 3_000, 50, 3, false);
    let source = file_arg(&input);
    let named = format!("results={}", file_arg(&tmp.path().join("out")));
    run_ok(&["run", "tx-windows", "--source", &source, "--sink", &named]);
    assert!(!committed(&tmp.path().join("out")).is_empty());
    let wrong = format!("alerts={}", file_arg(&tmp.path().join("x")));
    let out = spate(&["run", "tx-windows", "--source", &source, "--sink", &wrong])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("no output `alerts`") && err.contains("outputs are: results"),
        "{err}"
    );
}

#[test]
fn a_reader_that_goes_away_ends_a_command_quietly() {
    // The reader closes before `spate describe` prints (as `| head -0` would): the old command
    // panicked in `print!` ("failed printing to stdout").
    let mut child = spate(&["describe", "tx-windows"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains("panicked"), "{err}");
}

/// `--state-memory` keeps what does not fit in memory in the `--state` directory: without one,
/// and on a directory whose state was written without it, the job stops naming what to change;
/// `spate state` reads a directory written with it as one written without.
#[test]
fn state_memory_is_refused_where_it_cannot_work() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tx.jsonl");
    write_transactions(&input, 2_000, 50, 7, false);
    let source = file_arg(&input);
    let dir = |name: &str| tmp.path().join(name).display().to_string();
    let job = |out: &str| {
        let sink = format!("file:{}", dir(out));
        let args = ["run", "tx-windows", "--source", &source, "--sink", &sink];
        spate(&args)
    };
    let fails = |mut command: Command, says: &[&str]| {
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        for part in says {
            assert!(stderr.contains(part), "no `{part}` in: {stderr}");
        }
    };
    let mut alone = job("a");
    alone.args(["--state-memory", "1MiB"]);
    fails(alone, &["--state-memory", "give one"]);

    assert!(job("b")
        .args(["--state", &dir("b.state")])
        .status()
        .unwrap()
        .success());
    let mut later = job("b");
    later.args(["--state", &dir("b.state"), "--state-memory", "1MiB"]);
    fails(later, &["written without --state-memory", &dir("b.state")]);
    let model = tmp.path().join("model.jsonl");
    std::fs::write(&model, "").unwrap();
    let mut seeded = job("m");
    let model_arg = model.display().to_string();
    seeded.args(["--state", &dir("m.state"), "--state-memory", "1MiB"]);
    seeded.args(["--model", &model_arg]);
    fails(seeded, &["--state-memory", "--model"]);

    let mut limited = job("c");
    limited.args(["--state", &dir("c.state"), "--state-memory", "16KiB"]);
    assert!(limited.status().unwrap().success());
    assert_eq!(
        committed(&tmp.path().join("c")),
        committed(&tmp.path().join("b"))
    );
    let keys_and_timers = |name: &str| {
        let out = spate(&["state", "inspect", "--state", &dir(name)])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let total = text.lines().find(|l| l.trim_start().starts_with("total"));
        let total: Vec<&str> = total.expect("a total row").split_whitespace().collect();
        (total[1].to_string(), total[3].to_string())
    };
    assert_eq!(keys_and_timers("c.state"), keys_and_timers("b.state"));
}
