//! Property tests: for random keyed event sequences with bounded disorder, cut into random
//! epochs, the tumbling, sliding and session operators (run through the partition core, with a
//! checkpoint to sled and a restore in the middle) emit exactly what a naive batch computation
//! over the same on-time records gives, each window once, and only after the watermark passed
//! its end; the late records are exactly those the lateness rule names, record by record; and
//! the output, in order, does not depend on where the epochs were cut.

use proptest::prelude::*;
use serde::Serialize;
use spate::operator::KeyedOperator;
use spate::prelude::*;
use spate::runtime::PartitionCore;
use spate::state::StateStore;
use spate::time::{OutputMode, TimeRules, BEFORE_TIME, END_OF_TIME};
use spate::window::{PaneWindowOperator, SessionWindowOperator};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Ev {
    key: u8,
    ts: i64,
    v: i64,
}

type Res = (u8, i64, i64, u64, i64); // key, start, end, count, sum

/// What a run emitted: results in emission order (with their emission number in update mode)
/// and late records.
struct Run {
    results: Vec<(Res, Option<u32>)>,
    late: Vec<Ev>,
}

impl Run {
    fn sorted(&self) -> Vec<Res> {
        let mut results: Vec<Res> = self.results.iter().map(|(r, _)| *r).collect();
        results.sort();
        results
    }
}

/// Feeds `epochs` through a partition core running `op` under `rules`, restoring from a sled
/// checkpoint after epoch `restart_at`.
fn run<Op>(op: Op, epochs: &[Vec<Ev>], rules: TimeRules, restart_at: usize) -> Run
where
    Op: KeyedOperator<Key = u8, Event = Ev, Output = WindowResult<u8, (u64, i64)>>,
{
    let op = Arc::new(op);
    let make = || {
        PartitionCore::new(
            op.clone(),
            Arc::new(|e: &Ev| e.key),
            Arc::new(|e: &Ev| e.ts),
            rules,
        )
    };
    let store = StateStore::open(None).unwrap();
    let tree = store.partition(0).unwrap();
    let mut core = make();
    let (mut results, mut late) = (Vec::new(), Vec::new());
    let last = epochs.len();
    for (i, epoch) in epochs.iter().enumerate() {
        core.process(epoch.iter().cloned());
        // Only the end of input moves the watermark at an epoch end: a lone partition is never
        // idle here.
        let wm = if i + 1 == last {
            END_OF_TIME
        } else {
            BEFORE_TIME
        };
        core.advance(wm, 0);
        for r in core.take_outputs() {
            let fire_at = match rules.output_mode {
                OutputMode::Append => r.end + rules.allowed_lateness,
                OutputMode::Update => r.end,
            };
            assert!(
                fire_at <= core.watermark(),
                "window [{}, {}) emitted at watermark {}",
                r.start,
                r.end,
                core.watermark()
            );
            let res = (r.key, r.start, r.end, r.value.0, r.value.1);
            results.push((res, r.emission.map(|e| e.emission)));
        }
        late.extend(core.take_late().into_iter().map(|(_, e)| e));
        if i == restart_at {
            let meta = core.checkpoint_meta(i as u64 + 1);
            tree.write_checkpoint(core.drain_changes(), &meta).unwrap();
            core = make();
            core.restore_stored(&tree.checkpoint().unwrap(), &tree)
                .unwrap();
        }
    }
    assert_eq!(core.key_count(), 0, "state left after the end of input");
    Run { results, late }
}

/// The lateness rule, record by record in input order: a record is late when its time is
/// behind the largest time seen before it minus the delay and the allowed lateness.
fn split_late(epochs: &[Vec<Ev>], delay: i64, lateness: i64) -> (Vec<Ev>, Vec<Ev>) {
    let (mut on_time, mut late) = (Vec::new(), Vec::new());
    let mut max_ts = BEFORE_TIME;
    for e in epochs.iter().flatten() {
        if e.ts < max_ts.saturating_sub(delay).saturating_sub(lateness) {
            late.push(e.clone());
        } else {
            max_ts = max_ts.max(e.ts);
            on_time.push(e.clone());
        }
    }
    (on_time, late)
}

fn rules(delay: i64) -> TimeRules {
    TimeRules {
        watermark_delay: delay,
        ..TimeRules::default()
    }
}

/// The same events cut into epochs of `n` records.
fn recut(epochs: &[Vec<Ev>], n: usize) -> Vec<Vec<Ev>> {
    let all: Vec<Ev> = epochs.iter().flatten().cloned().collect();
    all.chunks(n).map(<[Ev]>::to_vec).collect()
}

fn naive_windows(events: &[Ev], size: i64, slide: i64) -> Vec<Res> {
    let mut acc: BTreeMap<(u8, i64), (u64, i64)> = BTreeMap::new();
    for e in events {
        // Every window [s, s + size) with s a multiple of slide that contains e.ts.
        let mut s = e.ts.div_euclid(slide) * slide;
        while s > e.ts - size {
            let a = acc.entry((e.key, s)).or_default();
            a.0 += 1;
            a.1 += e.v;
            s -= slide;
        }
    }
    acc.into_iter()
        .map(|((k, s), (c, v))| (k, s, s + size, c, v))
        .collect()
}

fn naive_sessions(events: &[Ev], gap: i64) -> Vec<Res> {
    let mut by_key: BTreeMap<u8, Vec<&Ev>> = BTreeMap::new();
    for e in events {
        by_key.entry(e.key).or_default().push(e);
    }
    let mut out = Vec::new();
    for (key, mut evs) in by_key {
        evs.sort_by_key(|e| e.ts);
        let mut cur: Option<(i64, i64, u64, i64)> = None;
        for e in evs {
            cur = match cur {
                Some((first, last, c, v)) if e.ts - last < gap => {
                    Some((first, e.ts, c + 1, v + e.v))
                }
                Some((first, last, c, v)) => {
                    out.push((key, first, last + gap, c, v));
                    Some((e.ts, e.ts, 1, e.v))
                }
                None => Some((e.ts, e.ts, 1, e.v)),
            };
        }
        if let Some((first, last, c, v)) = cur {
            out.push((key, first, last + gap, c, v));
        }
    }
    out.sort();
    out
}

/// Keyed events with bounded disorder, cut into epochs, plus a watermark delay.
fn scenario() -> impl Strategy<Value = (Vec<Vec<Ev>>, i64, usize)> {
    let event = (0u8..6, 0i64..40, -120i64..=0, -50i64..200);
    (
        prop::collection::vec(event, 1..250),
        prop::collection::vec(1usize..40, 1..30),
        0i64..150,
        0usize..30,
    )
        .prop_map(|(raw, cuts, delay, restart)| {
            let events: Vec<Ev> = raw
                .into_iter()
                .scan(0i64, |clock, (key, step, jitter, v)| {
                    *clock += step;
                    Some(Ev {
                        key,
                        ts: *clock + jitter - 1_000,
                        v,
                    })
                })
                .collect();
            let mut epochs = Vec::new();
            let mut rest = events.as_slice();
            for cut in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (head, tail) = rest.split_at((*cut).min(rest.len()));
                epochs.push(head.to_vec());
                rest = tail;
            }
            let restart = restart % epochs.len();
            (epochs, delay, restart)
        })
}

fn count_sum() -> (Count, Sum<impl Fn(&Ev) -> i64 + Send + Sync + 'static, i64>) {
    (Count, Sum::of(|e: &Ev| e.v))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn tumbling_matches_naive((epochs, delay, restart) in scenario(), size in 1i64..90) {
        let op = || PaneWindowOperator::new(Windows::tumbling(Duration::from_millis(size as u64)), count_sum());
        let out = run(op(), &epochs, rules(delay), restart);
        let (on_time, expected_late) = split_late(&epochs, delay, 0);
        prop_assert_eq!(&out.late, &expected_late);
        prop_assert_eq!(out.sorted(), naive_windows(&on_time, size, size));
        let whole = run(op(), &recut(&epochs, usize::MAX), rules(delay), 0);
        prop_assert_eq!(out.results, whole.results, "output depends on the epoch cuts");
    }

    #[test]
    fn sliding_matches_naive((epochs, delay, restart) in scenario(), slide in 1i64..30, panes in 1i64..6) {
        let size = slide * panes;
        let windows = Windows::sliding(Duration::from_millis(size as u64), Duration::from_millis(slide as u64));
        let out = run(PaneWindowOperator::new(windows, count_sum()), &epochs, rules(delay), restart);
        let (on_time, expected_late) = split_late(&epochs, delay, 0);
        prop_assert_eq!(&out.late, &expected_late);
        prop_assert_eq!(out.sorted(), naive_windows(&on_time, size, slide));
        let single = run(PaneWindowOperator::new(windows, count_sum()), &recut(&epochs, 1), rules(delay), 0);
        prop_assert_eq!(out.results, single.results, "output depends on the epoch cuts");
    }

    #[test]
    fn sessions_match_naive((epochs, delay, restart) in scenario(), gap in 1i64..120) {
        let op = || SessionWindowOperator::new(SessionWindows::with_gap(Duration::from_millis(gap as u64)), count_sum());
        let out = run(op(), &epochs, rules(delay), restart);
        let (on_time, expected_late) = split_late(&epochs, delay, 0);
        prop_assert_eq!(&out.late, &expected_late);
        prop_assert_eq!(out.sorted(), naive_sessions(&on_time, gap));
        let whole = run(op(), &recut(&epochs, 7), rules(delay), 0);
        prop_assert_eq!(out.results, whole.results, "output depends on the epoch cuts");
    }

    #[test]
    fn allowed_lateness_in_append_mode_counts_late_records_once(
        (epochs, delay, restart) in scenario(), slide in 1i64..30, panes in 1i64..4, lateness in 0i64..80, gap in 1i64..60,
    ) {
        let size = slide * panes;
        let rules = TimeRules { allowed_lateness: lateness, ..rules(delay) };
        let windows = Windows::sliding(Duration::from_millis(size as u64), Duration::from_millis(slide as u64));
        let out = run(PaneWindowOperator::new(windows, count_sum()), &epochs, rules, restart);
        let (on_time, expected_late) = split_late(&epochs, delay, lateness);
        prop_assert_eq!(&out.late, &expected_late);
        prop_assert_eq!(out.sorted(), naive_windows(&on_time, size, slide));
        let sessions = SessionWindowOperator::new(SessionWindows::with_gap(Duration::from_millis(gap as u64)), count_sum());
        let out = run(sessions, &epochs, rules, restart);
        prop_assert_eq!(out.sorted(), naive_sessions(&on_time, gap));
    }

    #[test]
    fn update_mode_ends_each_window_at_its_exact_value(
        (epochs, delay, restart) in scenario(), slide in 1i64..30, panes in 1i64..4, lateness in 0i64..80,
    ) {
        let size = slide * panes;
        let rules = TimeRules { allowed_lateness: lateness, output_mode: OutputMode::Update, ..rules(delay) };
        let windows = Windows::sliding(Duration::from_millis(size as u64), Duration::from_millis(slide as u64));
        let out = run(PaneWindowOperator::new(windows, count_sum()), &epochs, rules, restart);
        let (on_time, expected_late) = split_late(&epochs, delay, lateness);
        prop_assert_eq!(&out.late, &expected_late);
        // The last emission of each window is its exact value; emissions count 1, 2, 3, ...
        let mut last: BTreeMap<(u8, i64, i64), (Res, u32)> = BTreeMap::new();
        for (r, n) in &out.results {
            let n = n.expect("update mode numbers every emission");
            let before = last.insert((r.0, r.1, r.2), (*r, n)).map_or(0, |(_, n)| n);
            prop_assert_eq!(n, before + 1);
        }
        let finals: Vec<Res> = last.into_values().map(|(r, _)| r).collect();
        prop_assert_eq!(finals, naive_windows(&on_time, size, slide));
        let whole = run(PaneWindowOperator::new(windows, count_sum()), &recut(&epochs, usize::MAX), rules, 0);
        prop_assert_eq!(out.results, whole.results, "output depends on the epoch cuts");
    }

    #[test]
    fn update_mode_sessions_end_at_the_exact_sessions(
        (epochs, delay, restart) in scenario(), gap in 1i64..60, lateness in 0i64..80,
    ) {
        let rules = TimeRules { allowed_lateness: lateness, output_mode: OutputMode::Update, ..rules(delay) };
        let op = || SessionWindowOperator::new(SessionWindows::with_gap(Duration::from_millis(gap as u64)), count_sum());
        let out = run(op(), &epochs, rules, restart);
        let (on_time, expected_late) = split_late(&epochs, delay, lateness);
        prop_assert_eq!(&out.late, &expected_late);
        // A session emitted again replaces every earlier emission of its key it overlaps (a
        // late record may have grown it or merged two); what is left are the exact sessions.
        let mut current: Vec<Res> = Vec::new();
        for (r, n) in &out.results {
            prop_assert!(n.is_some());
            current.retain(|c| c.0 != r.0 || c.2 <= r.1 || r.2 <= c.1);
            current.push(*r);
        }
        current.sort();
        prop_assert_eq!(current, naive_sessions(&on_time, gap));
        let whole = run(op(), &recut(&epochs, 3), rules, 0);
        prop_assert_eq!(out.results, whole.results, "output depends on the epoch cuts");
    }
}
