//! A two-stage pipeline in process, through the whole runtime: per-key tumbling sums, re-keyed
//! by the sum's residue into a second tumbling window. Its output equals a naive computation
//! over random inputs (any partitions, any epoch cuts), and a second-stage partition that
//! panics once restarts from its snapshot with the output unchanged.

mod common;

use common::{file_job, lines, take};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use spate::operator::{KeyedContext, KeyedOperator, Timer};
use spate::prelude::*;
use spate::runtime::RunConfig;
use spate::window::PaneWindowOperator;
use spate::Runnable;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ev {
    key: u32,
    ts: i64,
    v: i64,
}

/// A first-stage result: one key's sum in one 100 ms window.
type KeySum = WindowResult<u32, i64>;
type Inner = PaneWindowOperator<KeySum, u32, (Count, Sum<fn(&KeySum) -> i64, i64>)>;

/// The second stage's windows, which panic on an event or a timer while told to.
struct Flaky(Inner);

static EVENT_PANICS: AtomicU32 = AtomicU32::new(0);
static TIMER_PANICS: AtomicU32 = AtomicU32::new(0);
/// Serializes the tests of this file: they share the panic switches.
static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

type Ctx<'a> =
    KeyedContext<'a, u32, <Inner as KeyedOperator>::State, <Inner as KeyedOperator>::Output>;

impl KeyedOperator for Flaky {
    type Key = u32;
    type Event = KeySum;
    type State = <Inner as KeyedOperator>::State;
    type Output = <Inner as KeyedOperator>::Output;

    fn on_event(&self, event: &KeySum, ctx: &mut Ctx<'_>) {
        if event.start >= 1_000 && take(&EVENT_PANICS) {
            panic!("injected panic on {event:?}");
        }
        self.0.on_event(event, ctx)
    }

    fn on_timer(&self, timer: Timer, ctx: &mut Ctx<'_>) {
        if timer.time >= 1_500 && take(&TIMER_PANICS) {
            panic!("injected panic on timer {}", timer.time);
        }
        self.0.on_timer(timer, ctx)
    }
}

const RESIDUES: i64 = 5;

fn pipeline() -> impl Runnable {
    let value: fn(&Ev) -> i64 = |e| e.v;
    let sum: fn(&KeySum) -> i64 = |w| w.value;
    Pipeline::<Ev>::new("two-stage", "per-key sums, re-keyed by residue")
        .event_time(|e| e.ts)
        .watermark_delay(Duration::from_millis(50))
        .key_by(|e| e.key)
        .window(Windows::tumbling(Duration::from_millis(100)))
        .aggregate(Sum::of(value))
        .event_time(|w| w.end - 1)
        .key_by(|w| w.value.rem_euclid(RESIDUES) as u32)
        .process(Flaky(PaneWindowOperator::new(
            Windows::tumbling(Duration::from_millis(100)),
            (Count, Sum::of(sum)),
        )))
        .map(|w| Some((w.key, w.start, w.value.0, w.value.1)))
}

/// The pipeline's output computed naively: per key and 100 ms window the sum, then per
/// residue of that sum and window, how many keys and their total, as the output's JSON.
fn naive(events: &[Ev]) -> Vec<String> {
    let mut first: BTreeMap<(u32, i64), i64> = BTreeMap::new();
    for e in events {
        *first
            .entry((e.key, e.ts.div_euclid(100) * 100))
            .or_default() += e.v;
    }
    let mut second: BTreeMap<(u32, i64), (u64, i64)> = BTreeMap::new();
    for ((_, start), sum) in first {
        let w = second
            .entry((sum.rem_euclid(RESIDUES) as u32, start))
            .or_default();
        w.0 += 1;
        w.1 += sum;
    }
    let mut lines: Vec<String> = second
        .into_iter()
        .map(|((r, start), (n, sum))| format!("[{r},{start},{n},{sum}]"))
        .collect();
    lines.sort();
    lines
}

/// `n` events over `keys` keys, at most `disorder` ms out of order (less than the 50 ms
/// watermark delay, so none is late).
fn events(n: i64, keys: u32, disorder: i64, seed: u64) -> Vec<Ev> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| Ev {
            key: (next() % keys as u64) as u32,
            ts: (i - (next() % (disorder as u64 + 1)) as i64).max(0),
            v: (next() % 1_000) as i64 - 300,
        })
        .collect()
}

fn write(path: &Path, events: &[Ev]) {
    let text: String = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    std::fs::write(path, text).unwrap();
}

/// A file-to-file job on `partitions` partitions, in chunks of 300 records.
fn config(input: &Path, out: &Path, state: Option<PathBuf>, partitions: u32) -> RunConfig {
    RunConfig {
        partitions,
        chunk_size: 300,
        ..file_job(input, out, state)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn a_rekeyed_aggregation_equals_a_naive_one(
        n in 200i64..3_000,
        keys in 1u32..60,
        disorder in 0i64..45,
        partitions in 1u32..5,
        max_epoch in prop::option::of(50u64..700),
        seed in any::<u64>(),
    ) {
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let tmp = tempfile::tempdir().unwrap();
        let input = tmp.path().join("in.jsonl");
        let events = events(n, keys, disorder, seed);
        write(&input, &events);
        let out = tmp.path().join("out");
        let mut config = config(&input, &out, None, partitions);
        config.max_records_per_epoch = max_epoch;
        let report = pipeline().run(&config).unwrap();
        prop_assert_eq!(report.late, 0);
        prop_assert_eq!(lines(&out), naive(&events));
    }
}

#[test]
fn a_second_stage_partition_that_panics_once_restarts_from_its_snapshot() {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    let events = events(20_000, 40, 40, 7);
    write(&input, &events);
    let expected = naive(&events);
    assert!(expected.len() > 500, "too few results: {}", expected.len());
    for (what, switch) in [("event", &EVENT_PANICS), ("timer", &TIMER_PANICS)] {
        switch.store(1, Ordering::SeqCst);
        let out = tmp.path().join(what);
        let state = Some(tmp.path().join(format!("state-{what}")));
        let report = pipeline().run(&config(&input, &out, state, 4)).unwrap();
        assert_eq!(switch.load(Ordering::SeqCst), 0, "no {what} panicked");
        assert_eq!(report.restarts, 1, "{what}");
        assert_eq!(lines(&out), expected, "after a panic on an {what}");
    }
}
