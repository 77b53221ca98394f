//! In-process jobs through the whole runtime (source thread, partition actors, supervisor,
//! sled, file sink): a partition whose operator panics once is restarted from its snapshot and
//! the output stays exact; a record that always panics stops the job with a clear error;
//! malformed input lands in the dead-letter output with its offset.

mod common;

use common::{file_job, lines, take};
use serde::{Deserialize, Serialize};
use spate::operator::{KeyedContext, KeyedOperator, Timer};
use spate::prelude::*;
use spate::runtime::{JobReport, RunConfig, TriggerSpec};
use spate::window::PaneWindowOperator;
use spate::Runnable;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ev {
    key: u32,
    ts: i64,
    v: i64,
}

type Inner = PaneWindowOperator<Ev, u32, (Count, Sum<fn(&Ev) -> i64, i64>)>;

/// A tumbling-window count/sum that panics when told to: on the record with `v == POISON`
/// (while `EVENT_PANICS` > 0) or on a timer (while `TIMER_PANICS` > 0).
struct Flaky(Inner);

const POISON: i64 = 777_777;
static EVENT_PANICS: AtomicU32 = AtomicU32::new(0);
static TIMER_PANICS: AtomicU32 = AtomicU32::new(0);
static TIMER_ARMED_AFTER: std::sync::atomic::AtomicI64 =
    std::sync::atomic::AtomicI64::new(i64::MAX);
/// Serializes the tests of this file: they share the panic switches.
static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

type Ctx<'a> =
    KeyedContext<'a, u32, <Inner as KeyedOperator>::State, <Inner as KeyedOperator>::Output>;

impl KeyedOperator for Flaky {
    type Key = u32;
    type Event = Ev;
    type State = <Inner as KeyedOperator>::State;
    type Output = <Inner as KeyedOperator>::Output;

    fn on_event(&self, event: &Ev, ctx: &mut Ctx<'_>) {
        if event.v == POISON && take(&EVENT_PANICS) {
            panic!("injected panic on record {event:?}");
        }
        self.0.on_event(event, ctx)
    }

    fn on_timer(&self, timer: Timer, ctx: &mut Ctx<'_>) {
        if timer.time >= TIMER_ARMED_AFTER.load(Ordering::SeqCst) && take(&TIMER_PANICS) {
            panic!("injected panic on timer {}", timer.time);
        }
        self.0.on_timer(timer, ctx)
    }
}

fn pipeline() -> impl Runnable {
    let value: fn(&Ev) -> i64 = |e| e.v;
    Pipeline::<Ev>::new("flaky", "tumbling count and sum that can be told to panic")
        .event_time(|e| e.ts)
        .watermark_delay(Duration::from_millis(50))
        .key_by(|e| e.key)
        .process(Flaky(PaneWindowOperator::new(
            Windows::tumbling(Duration::from_millis(100)),
            (Count, Sum::of(value)),
        )))
        .map(|w| Some((w.key, w.start, w.value.0, w.value.1)))
}

/// 20,000 records over 40 keys, a little out of order, one of them the poison record.
fn write_input(path: &Path, malformed: bool) {
    let mut text = String::new();
    for i in 0..20_000i64 {
        let ts = i - (i * 7919) % 40;
        let v = if i == 12_345 { POISON } else { i % 97 };
        text.push_str(&format!(
            "{{\"key\":{},\"ts\":{ts},\"v\":{v}}}\n",
            (i * 31) % 40
        ));
        if malformed && i % 5_000 == 17 {
            text.push_str("{\"key\":\"not a number\",\"ts\":1,\"v\":1}\nthis is not json\n");
        }
    }
    std::fs::write(path, text).unwrap();
}

fn reference(input: &Path, tmp: &Path) -> (Vec<String>, JobReport) {
    let out = tmp.join("reference");
    let report = pipeline().run(&file_job(input, &out, None)).unwrap();
    (lines(&out), report)
}

#[test]
fn a_partition_that_panics_once_restarts_from_its_snapshot() {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    write_input(&input, false);
    let (expected, clean) = reference(&input, tmp.path());
    assert!(
        expected.len() > 5_000,
        "too few results to be a test: {}",
        expected.len()
    );

    // Panic while processing a record.
    EVENT_PANICS.store(1, Ordering::SeqCst);
    let out = tmp.path().join("event-panic");
    let report = pipeline()
        .run(&file_job(&input, &out, Some(tmp.path().join("st1"))))
        .unwrap();
    assert_eq!(
        EVENT_PANICS.load(Ordering::SeqCst),
        0,
        "the poison record was never processed"
    );
    assert_eq!(report.restarts, 1);
    assert_eq!(lines(&out), expected);
    assert_eq!((report.outputs, report.late), (clean.outputs, clean.late));

    // Panic while firing a window's timer, half-way through the input.
    TIMER_ARMED_AFTER.store(10_000, Ordering::SeqCst);
    TIMER_PANICS.store(1, Ordering::SeqCst);
    let out = tmp.path().join("timer-panic");
    let report = pipeline()
        .run(&file_job(&input, &out, Some(tmp.path().join("st2"))))
        .unwrap();
    assert_eq!(TIMER_PANICS.load(Ordering::SeqCst), 0, "no timer panicked");
    assert_eq!(report.restarts, 1);
    assert_eq!(lines(&out), expected);

    // Panic in an epoch holding the whole input, after its first batches made results: the
    // restarted partition makes them again, once.
    EVENT_PANICS.store(1, Ordering::SeqCst);
    let out = tmp.path().join("long-epoch-panic");
    let job = RunConfig {
        trigger: TriggerSpec::Interval(Duration::from_secs(3_600)),
        ..file_job(&input, &out, Some(tmp.path().join("st3")))
    };
    let report = pipeline().run(&job).unwrap();
    assert_eq!(report.restarts, 1);
    assert!(
        report.epochs <= 2,
        "the input and its end: {}",
        report.epochs
    );
    assert_eq!(lines(&out), expected);
}

#[test]
fn a_record_that_always_panics_stops_the_job_with_a_clear_error() {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    write_input(&input, false);
    EVENT_PANICS.store(u32::MAX, Ordering::SeqCst);
    let out = tmp.path().join("out");
    let err = pipeline()
        .run(&file_job(&input, &out, Some(tmp.path().join("st"))))
        .unwrap_err()
        .to_string();
    EVENT_PANICS.store(0, Ordering::SeqCst);
    assert!(err.contains("failed 3 times"), "{err}");
    assert!(err.contains("injected panic on record"), "{err}");
}

#[test]
fn malformed_input_goes_to_the_dead_letter_output_with_its_offset() {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let clean_input = tmp.path().join("clean.jsonl");
    write_input(&clean_input, false);
    let (expected, _) = reference(&clean_input, tmp.path());
    let input = tmp.path().join("in.jsonl");
    write_input(&input, true);
    let out = tmp.path().join("out");
    let report = pipeline()
        .run(&file_job(&input, &out, Some(tmp.path().join("st"))))
        .unwrap();
    assert_eq!(lines(&out), expected, "malformed lines changed the results");
    assert_eq!(report.dead_letters, 8);
    let text = std::fs::read(&input).unwrap();
    let dead = lines(&out.join("dead-letter"));
    assert_eq!(dead.len(), 8);
    for line in dead {
        let d: serde_json::Value = serde_json::from_str(&line).unwrap();
        let offset = d["offset"].as_u64().unwrap() as usize;
        let raw = d["raw"].as_str().unwrap();
        assert_eq!(
            &text[offset..offset + raw.len()],
            raw.as_bytes(),
            "offset points at the line"
        );
        assert!(d["error"].as_str().unwrap().len() > 5);
        assert!(d["file"].as_str().unwrap().ends_with("in.jsonl"));
    }
}

#[test]
fn max_records_per_epoch_caps_every_epoch_without_changing_results() {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    write_input(&input, false);
    let (expected, _) = reference(&input, tmp.path());
    let out = tmp.path().join("capped");
    let capped = RunConfig {
        // The trigger never fires during the run: only the cap and the end of input cut epochs.
        trigger: TriggerSpec::Interval(Duration::from_secs(3_600)),
        max_records_per_epoch: Some(1_000),
        // Chunks larger than the cap: the epoch must still end exactly at 1,000 records.
        chunk_size: 4_096,
        ..file_job(&input, &out, Some(tmp.path().join("st")))
    };
    let report = pipeline().run(&capped).unwrap();
    assert_eq!(report.records_in, 20_000);
    assert_eq!(
        report.epochs, 21,
        "20 full epochs of 1,000 records, then the end of input"
    );
    assert_eq!(lines(&out), expected);
}
