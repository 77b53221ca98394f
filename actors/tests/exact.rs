//! Exact results on real-shaped data: the three transaction pipelines, run by the `spate` binary
//! on a feed with string ids (and some integer ones), disorder, stragglers hours late and
//! malformed lines, commit exactly what an independent computation gives when it applies the
//! lateness rule record by record, in input order, per key partition; and the committed output
//! is byte for byte the same whatever the trigger, the epoch size or the number of workers.

mod common;

use common::*;
use serde_json::{json, Value};
use spate::io::source::{EventGenerator, GenOptions};
use spate::key::{partition_of, Id};
use spate_actors::events::TransactionGenerator;
use std::collections::BTreeMap;
use std::path::Path;

const PARTITIONS: u32 = 8; // spate's default
const DELAY: i64 = 10_000;
const BASE: i64 = 1_767_225_600_000;
const HOUR: i64 = 3_600_000;

/// A payment feed of `n` lines: the generator's string ids and disorder (10% up to 5 s, some
/// 30–120 s late), every 997th record two to three hours late, every 101st with an integer user
/// id (`42` next to `"u00042"`: another key), every 1009th line malformed. Event time advances
/// 200 ms per record, so 40,000 records span more than two hours.
fn write_feed(path: &Path, n: u64) -> u64 {
    let generator = TransactionGenerator::new(&GenOptions {
        seed: 11,
        keys: 2_000,
        rate: Some(5.0),
        base_ms: BASE,
        ..GenOptions::default()
    });
    let (mut text, mut malformed) = (String::new(), 0);
    for i in 0..n {
        let mut tx = generator.generate(i);
        if i % 997 == 5 {
            tx.event_ms -= 2 * HOUR + (i as i64 * 7_919) % HOUR;
        }
        if i % 101 == 7 {
            let Id::Str(s) = &tx.user_id else { panic!() };
            tx.user_id = Id::Int(s[1..].parse().unwrap());
        }
        text.push_str(&tx.to_json_line());
        text.push('\n');
        if i % 1_009 == 3 {
            malformed += 1;
            text.push_str(match i % 3 {
                0 => "{\"tx_id\":\"t1\",\"user_id\":\"u00001\",\"amou\n",
                1 => "{\"tx_id\":\"t1\",\"user_id\":{\"id\":1},\"amount\":1,\"merchant_id\":1,\"event_ms\":1}\n",
                _ => "{\"tx_id\":\"t1\",\"user_id\":\"u00001\",\"amount\":1,\"merchant_id\":\"m1\"}\n",
            });
        }
    }
    std::fs::write(path, text).unwrap();
    malformed
}

/// One decoded input record, read independently of spate's types.
#[derive(Debug, Clone)]
struct Tx {
    user: Value,
    tx_id: Value,
    cents: i64,
    time: i64,
}

fn read_feed(path: &Path) -> Vec<Tx> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let v: Value = serde_json::from_str(line).ok()?;
            let user = v.get("user_id").filter(|u| u.is_string() || u.is_i64())?;
            Some(Tx {
                user: user.clone(),
                tx_id: v["tx_id"].clone(),
                cents: (v["amount"].as_f64()? * 100.0).round() as i64,
                time: v.get("event_ms")?.as_i64()?,
            })
        })
        .collect()
}

fn id_of(user: &Value) -> Id {
    match user {
        Value::String(s) => Id::from(s.as_str()),
        other => Id::Int(other.as_i64().unwrap()),
    }
}

/// The lateness rule, per key partition in input order: a record is late when its time is
/// behind the largest time its partition saw before it minus the delay.
fn split(feed: &[Tx]) -> (Vec<Tx>, Vec<(u32, i64, Value)>) {
    let mut max = vec![i64::MIN; PARTITIONS as usize];
    let (mut on_time, mut late) = (Vec::new(), Vec::new());
    for tx in feed {
        let p = partition_of(&id_of(&tx.user), PARTITIONS);
        if tx.time < max[p as usize].saturating_sub(DELAY) {
            late.push((p, tx.time, tx.tx_id.clone()));
        } else {
            max[p as usize] = max[p as usize].max(tx.time);
            on_time.push(tx.clone());
        }
    }
    late.sort_by_key(|l| format!("{l:?}"));
    (on_time, late)
}

fn money(cents: i64) -> Value {
    json!(cents as f64 / 100.0)
}

/// `(count, sum)` per user per window of `size` starting every `slide`.
fn windows(txs: &[Tx], size: i64, slide: i64) -> BTreeMap<(String, i64), (Value, u64, i64)> {
    let mut acc = BTreeMap::new();
    for tx in txs {
        let mut start = tx.time.div_euclid(slide) * slide;
        while start > tx.time - size {
            let e = acc
                .entry((tx.user.to_string(), start))
                .or_insert((tx.user.clone(), 0, 0));
            e.1 += 1;
            e.2 += tx.cents;
            start -= slide;
        }
    }
    acc
}

fn expected_tx_windows(txs: &[Tx]) -> Vec<String> {
    let rows = windows(txs, 60_000, 60_000).into_iter().map(|((_, s), (k, c, sum))| {
        json!({"key": k, "window_start": s, "window_end": s + 60_000, "count": c, "sum": money(sum)})
    });
    canonical(rows)
}

fn expected_fraud(txs: &[Tx]) -> Vec<String> {
    let rows = windows(txs, 300_000, 60_000)
        .into_iter()
        .filter(|(_, (_, c, sum))| *c > 10 || *sum > 5_000_000)
        .map(|((_, s), (k, c, sum))| {
            let avg = (sum as f64 / c as f64).round() as i64;
            json!({"key": k, "window_start": s, "window_end": s + 300_000, "count": c,
                   "sum": money(sum), "avg": money(avg)})
        });
    canonical(rows)
}

fn expected_sessions(txs: &[Tx]) -> Vec<String> {
    const GAP: i64 = 30 * 60_000;
    let mut by_user: BTreeMap<String, Vec<&Tx>> = BTreeMap::new();
    for tx in txs {
        by_user.entry(tx.user.to_string()).or_default().push(tx);
    }
    let mut rows = Vec::new();
    for txs in by_user.values_mut() {
        txs.sort_by_key(|t| t.time);
        let mut session: Option<(i64, i64, u64, i64)> = None;
        for tx in txs.iter() {
            session = match session {
                Some((first, last, c, s)) if tx.time - last < GAP => {
                    Some((first, tx.time, c + 1, s + tx.cents))
                }
                done => {
                    if let Some((first, last, c, s)) = done {
                        rows.push(session_row(&tx.user, first, last + GAP, c, s));
                    }
                    Some((tx.time, tx.time, 1, tx.cents))
                }
            };
        }
        if let Some((first, last, c, s)) = session {
            rows.push(session_row(&txs[0].user, first, last + GAP, c, s));
        }
    }
    canonical(rows)
}

fn session_row(user: &Value, start: i64, end: i64, count: u64, cents: i64) -> Value {
    json!({"key": user, "window_start": start, "window_end": end, "count": count, "sum": money(cents)})
}

/// JSON values as sorted canonical text (object keys in order).
fn canonical(rows: impl IntoIterator<Item = Value>) -> Vec<String> {
    let mut out: Vec<String> = rows.into_iter().map(|v| v.to_string()).collect();
    out.sort();
    out
}

fn committed_canonical(dir: &Path) -> Vec<String> {
    canonical(
        committed(dir)
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()),
    )
}

fn committed_late(dir: &Path) -> Vec<(u32, i64, Value)> {
    let mut late: Vec<_> = committed(&dir.join("late"))
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let p = v["partition"].as_u64().unwrap() as u32;
            (
                p,
                v["event_time"].as_i64().unwrap(),
                v["record"]["tx_id"].clone(),
            )
        })
        .collect();
    late.sort_by_key(|l| format!("{l:?}"));
    late
}

#[test]
fn the_three_pipelines_equal_the_lateness_rule_applied_record_by_record() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tx.jsonl");
    let malformed = write_feed(&input, 40_000);
    let feed = read_feed(&input);
    let (on_time, late) = split(&feed);
    assert!(
        late.len() > 30,
        "the feed should have stragglers: {}",
        late.len()
    );
    let expected: [(&str, Vec<String>); 3] = [
        ("tx-windows", expected_tx_windows(&on_time)),
        ("fraud", expected_fraud(&on_time)),
        ("sessions", expected_sessions(&on_time)),
    ];
    for (pipeline, rows) in expected {
        let out = tmp.path().join(pipeline);
        let source = file_arg(&input);
        let sink = file_arg(&out);
        run_ok(&["run", pipeline, "--source", &source, "--sink", &sink]);
        assert_same_lines(&committed_canonical(&out), &rows, pipeline);
        assert_eq!(committed_late(&out), late, "{pipeline}: late records");
        let dead = committed(&out.join("dead-letter"));
        assert_eq!(dead.len() as u64, malformed, "{pipeline}: dead letters");
    }
}

/// Each writer's committed files of one stream, concatenated in epoch order.
fn by_writer(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|e| e == "jsonl"));
    files.sort();
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let writer = name.rsplit('-').next().unwrap().to_string();
        out.entry(writer)
            .or_default()
            .extend(std::fs::read(&path).unwrap());
    }
    out
}

#[test]
fn committed_output_is_byte_identical_whatever_the_trigger_epoch_size_or_workers() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tx.jsonl");
    write_feed(&input, 30_000);
    let source = file_arg(&input);
    let settings: [&[&str]; 3] = [
        &[],
        &["--trigger", "continuous", "--workers", "1"],
        &[
            "--trigger",
            "1h",
            "--max-records-per-epoch",
            "777",
            "--workers",
            "3",
            "--checkpoint-interval",
            "10ms",
        ],
    ];
    for pipeline in ["tx-windows", "sessions"] {
        let mut runs = Vec::new();
        for (i, extra) in settings.iter().enumerate() {
            let out = tmp.path().join(format!("{pipeline}-{i}"));
            let state = tmp.path().join(format!("{pipeline}-{i}-state"));
            let sink = file_arg(&out);
            let state_arg = state.display().to_string();
            let mut args = vec!["run", pipeline, "--source", &source, "--sink", &sink];
            args.extend(["--state", &state_arg]);
            args.extend(extra.iter());
            run_ok(&args);
            runs.push([by_writer(&out), by_writer(&out.join("late"))]);
        }
        assert!(runs[0][0].len() > 1 && !runs[0][1].is_empty());
        for (i, run) in runs.iter().enumerate().skip(1) {
            assert!(
                run == &runs[0],
                "{pipeline}: settings {:?} committed other bytes than the defaults",
                settings[i]
            );
        }
    }
}

/// One user's payments at these offsets (seconds from `BASE`), one dollar each.
fn write_payments(path: &Path, seconds: &[i64]) {
    let lines: Vec<String> = seconds
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({"tx_id": format!("t{i}"), "user_id": "u00033", "amount": 1.0,
                   "merchant_id": "m1", "event_ms": BASE + s * 1_000})
            .to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn allowed_lateness_updates_a_window_and_past_it_a_record_is_late() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tx.jsonl");
    // Watermark delay 10 s, allowed lateness 60 s. 75 s moves the watermark to 65 s, past
    // [0, 60); 30 s is 35 s behind it: inside the allowed lateness, it updates [0, 60). 200 s
    // moves the watermark to 190 s; 50 s is then 140 s behind: late.
    write_payments(&input, &[0, 75, 30, 200, 50]);
    let source = file_arg(&input);
    let window = |start: i64, count: u64, emission: Option<(bool, u32)>| {
        let mut row = json!({"key": "u00033", "window_start": BASE + start * 1_000,
            "window_end": BASE + (start + 60) * 1_000, "count": count, "sum": count as f64});
        if let Some((update, n)) = emission {
            row["update"] = json!(update);
            row["emission"] = json!(n);
        }
        row
    };
    let run = |mode: &str| {
        let out = tmp.path().join(mode);
        let sink = file_arg(&out);
        run_ok(&[
            "run",
            "tx-windows",
            "--source",
            &source,
            "--sink",
            &sink,
            "--allowed-lateness",
            "1m",
            "--output-mode",
            mode,
        ]);
        let late = committed(&out.join("late"));
        (committed_canonical(&out), late)
    };
    let (rows, late) = run("update");
    let expected = canonical([
        window(0, 1, Some((false, 1))),
        window(0, 2, Some((true, 2))),
        window(60, 1, Some((false, 1))),
        window(180, 1, Some((false, 1))),
    ]);
    assert_same_lines(&rows, &expected, "update mode");
    assert_eq!(late.len(), 1, "{late:?}");
    assert!(late[0].contains(&format!("\"event_time\":{}", BASE + 50_000)));

    let (rows, late) = run("append");
    let expected = canonical([
        window(0, 2, None),
        window(60, 1, None),
        window(180, 1, None),
    ]);
    assert_same_lines(&rows, &expected, "append mode");
    assert_eq!(late.len(), 1);
}
