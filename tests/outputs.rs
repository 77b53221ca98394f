//! Named outputs through the whole runtime: a pipeline that splits its results writes each
//! output to its own sink (`--sink NAME=URI`), together exactly the results of the unsplit
//! pipeline, also when the job is stopped midway and resumed; sinks that do not match the
//! pipeline's outputs are refused naming them.

mod common;

use common::{file_job, lines};
use serde::{Deserialize, Serialize};
use spate::io::sink::SinkSpec;
use spate::prelude::*;
use spate::runtime::RunConfig;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ev {
    key: u32,
    ts: i64,
    v: i64,
}

/// Count and sum per key per 100 ms; with `split`, windows of 3 records or more go to the
/// output `busy`, the others to `quiet`.
fn pipeline(split: bool) -> impl Runnable {
    let value: fn(&Ev) -> i64 = |e| e.v;
    let job = Pipeline::<Ev>::new("counts", "count and sum per key per 100 ms")
        .event_time(|e| e.ts)
        .watermark_delay(Duration::from_millis(50))
        .key_by(|e| e.key)
        .window(Windows::tumbling(Duration::from_millis(100)))
        .aggregate((Count, Sum::of(value)))
        .map(|w| Some((w.key, w.start, w.value.0, w.value.1)));
    match split {
        true => job.output("quiet").split("busy", |r| r.2 >= 3),
        false => job,
    }
}

/// 20,000 records over 40 keys, a little out of order, a few malformed lines.
fn write_input(path: &Path) {
    let mut text = String::new();
    for i in 0..20_000i64 {
        let ts = i - (i * 7919) % 40;
        text.push_str(&format!(
            "{{\"key\":{},\"ts\":{ts},\"v\":{}}}\n",
            (i * 31) % 43,
            i % 97
        ));
        if i % 5_000 == 17 {
            text.push_str("not json\n");
        }
    }
    std::fs::write(path, text).unwrap();
}

fn config(input: &Path, sinks: &[(&str, &Path)], state: Option<PathBuf>) -> RunConfig {
    RunConfig {
        named_sinks: (sinks.iter())
            .map(|(name, dir)| (name.to_string(), SinkSpec::File(dir.to_path_buf())))
            .collect(),
        ..file_job(input, sinks[0].1, state)
    }
}

fn count_of(line: &str) -> u64 {
    let row: (u32, i64, u64, i64) = serde_json::from_str(line).unwrap();
    row.2
}

/// Checks the split outputs against the unsplit run's results.
fn assert_split(quiet: &Path, busy: &Path, expected: &[String]) {
    let (quiet_lines, busy_lines) = (lines(quiet), lines(busy));
    assert!(
        !quiet_lines.is_empty() && !busy_lines.is_empty(),
        "both outputs get results"
    );
    assert!(
        busy_lines.iter().all(|l| count_of(l) >= 3),
        "busy: {busy_lines:?}"
    );
    assert!(quiet_lines.iter().all(|l| count_of(l) < 3));
    let mut all = [quiet_lines, busy_lines].concat();
    all.sort();
    assert_eq!(
        all, expected,
        "together, the outputs are the unsplit results"
    );
    assert!(
        !lines(&quiet.join("dead-letter")).is_empty(),
        "dead letters go to the first output"
    );
    assert!(lines(&busy.join("dead-letter")).is_empty());
}

#[test]
fn split_results_go_to_their_own_sinks_and_survive_a_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    write_input(&input);
    let reference = tmp.path().join("reference");
    pipeline(false)
        .run(&config(&input, &[("results", &reference)], None))
        .unwrap();
    let expected = lines(&reference);

    let (quiet, busy) = (tmp.path().join("quiet"), tmp.path().join("busy"));
    let sinks = [("quiet", quiet.as_path()), ("busy", busy.as_path())];
    pipeline(true).run(&config(&input, &sinks, None)).unwrap();
    assert_split(&quiet, &busy, &expected);

    // Stopped after a few epochs, then resumed from its state: still every result once.
    let (quiet, busy) = (tmp.path().join("quiet2"), tmp.path().join("busy2"));
    let sinks = [("quiet", quiet.as_path()), ("busy", busy.as_path())];
    let state = Some(tmp.path().join("state"));
    let stopped = config(&input, &sinks, state.clone());
    let stop = stopped.stop.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        stop.store(true, std::sync::atomic::Ordering::Release);
    });
    let first = pipeline(true).run(&stopped).unwrap();
    stopper.join().unwrap();
    let second = pipeline(true).run(&config(&input, &sinks, state)).unwrap();
    assert!(
        first.epochs > 0 && second.epochs > 0,
        "{first:?} {second:?}"
    );
    assert_split(&quiet, &busy, &expected);
}

#[test]
fn sinks_must_match_the_pipelines_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    write_input(&input);
    let out = tmp.path().join("out");
    let err = |sinks: &[(&str, &Path)]| {
        let mut config = config(&input, &sinks[..1], None);
        config.named_sinks = (sinks.iter())
            .map(|(n, d)| (n.to_string(), SinkSpec::File(d.to_path_buf())))
            .collect();
        pipeline(true)
            .run(&config)
            .expect_err("refused")
            .to_string()
    };
    let missing = err(&[("quiet", &out)]);
    assert!(
        missing.contains("--sink NAME=URI") && missing.contains("quiet, busy"),
        "{missing}"
    );
    let unknown = err(&[("quiet", &out), ("busy", &out), ("loud", &out)]);
    assert!(unknown.contains("no output `loud`"), "{unknown}");
    let described = pipeline(true).describe();
    assert!(
        described.contains("1. quiet") && described.contains("2. busy"),
        "{described}"
    );
}
