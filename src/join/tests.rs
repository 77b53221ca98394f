//! Each join against a naive batch join over random keyed streams with bounded disorder, read
//! in a random interleaving of the two inputs: the results must not depend on it.

use super::*;
use crate::operator::{InOrder, KeyedContext, KeyedOperator, OrderedOperator};
use crate::runtime::PartitionCore;
use crate::time::{Millis, TimeRules, END_OF_TIME};
use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;

/// A record of either input: its key, event time and a unique id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Rec {
    key: u8,
    t: Millis,
    id: u32,
}

/// How far records may be out of order (and so the watermark delay: nothing is late).
const DISORDER: Millis = 50;

/// Records with times rising by `steps`, each moved up to `DISORDER` later.
fn stream(first_id: u32, rows: Vec<(u8, Millis, Millis)>) -> Vec<Rec> {
    let mut base = 0;
    rows.into_iter()
        .enumerate()
        .map(|(i, (key, step, jitter))| {
            base += step;
            Rec {
                key,
                t: base + jitter,
                id: first_id + i as u32,
            }
        })
        .collect()
}

fn rows() -> impl Strategy<Value = Vec<(u8, Millis, Millis)>> {
    prop::collection::vec((0u8..3, 0i64..30, 0..DISORDER), 0..40)
}

/// Both streams merged in the order `picks` says (true: next left), the rest appended.
fn interleave(left: &[Rec], right: &[Rec], picks: &[bool]) -> Vec<Either<Rec, Rec>> {
    let (mut l, mut r) = (left.iter(), right.iter());
    let mut merged: Vec<Either<Rec, Rec>> = picks
        .iter()
        .filter_map(|&left| match left {
            true => l.next().map(|x| Either::Left(*x)),
            false => r.next().map(|x| Either::Right(*x)),
        })
        .collect();
    merged.extend(l.map(|x| Either::Left(*x)));
    merged.extend(r.map(|x| Either::Right(*x)));
    merged
}

/// Runs `join` over `records` as a key partition would, in chunks of `chunk`, and returns its
/// outputs sorted.
fn run<Op, O: Ord>(join: Op, records: Vec<Either<Rec, Rec>>, chunk: usize) -> Vec<O>
where
    Op: KeyedOperator<Key = u8, Event = Either<Rec, Rec>, Output = O>,
{
    let side = |r: &Either<Rec, Rec>| r.map_either(|x| *x, |x| *x);
    let mut core = PartitionCore::new(
        Arc::new(join),
        Arc::new(move |r| side(r).key),
        Arc::new(move |r| side(r).t),
        TimeRules::default(),
    )
    .with_inputs(Arc::new(Either::side), &[DISORDER, DISORDER]);
    let mut late = 0;
    for batch in records.chunks(chunk.max(1)) {
        late += core.process(batch.iter().cloned()).late;
    }
    core.advance(END_OF_TIME, 0);
    assert_eq!(
        late, 0,
        "bounded disorder within the delay: nothing is late"
    );
    let mut out = core.take_outputs();
    out.sort();
    out
}

fn picks() -> impl Strategy<Value = Vec<bool>> {
    prop::collection::vec(any::<bool>(), 0..80)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn temporal_join_equals_a_naive_as_of_lookup(
        left in rows(), right in rows(), picks in picks(), chunk in 1usize..20,
    ) {
        let (left, right) = (stream(0, left), stream(1000, right));
        let join = TemporalJoin::new(|a: &Rec, row: Option<&Rec>| (a.id, row.map(|r| r.id)));
        let got = run(join, interleave(&left, &right, &picks), chunk);
        let mut want: Vec<_> = left
            .iter()
            .map(|a| {
                // The row of the key valid at a.t: the latest valid-from at or before it, the
                // later in the input on a tie.
                let row = right
                    .iter()
                    .filter(|r| r.key == a.key && r.t <= a.t)
                    .max_by_key(|r| (r.t, r.id));
                (a.id, row.map(|r| r.id))
            })
            .collect();
        want.sort();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn interval_join_equals_a_naive_nested_loop(
        left in rows(), right in rows(), picks in picks(), chunk in 1usize..20,
        before in 0i64..40, after in 0i64..40, outer in any::<bool>(),
    ) {
        let (left, right) = (stream(0, left), stream(1000, right));
        let kind = if outer { JoinKind::LeftOuter } else { JoinKind::Inner };
        let join = IntervalJoin::new(
            Duration::from_millis(before as u64),
            Duration::from_millis(after as u64),
            kind,
            |a: &Rec, b: Option<&Rec>| (a.id, b.map(|b| b.id)),
        );
        let got = run(join, interleave(&left, &right, &picks), chunk);
        let mut want = Vec::new();
        for a in &left {
            let partners: Vec<_> = right
                .iter()
                .filter(|b| b.key == a.key && b.t >= a.t - before && b.t <= a.t + after)
                .map(|b| (a.id, Some(b.id)))
                .collect();
            if partners.is_empty() && outer {
                want.push((a.id, None));
            }
            want.extend(partners);
        }
        want.sort();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn window_join_equals_a_naive_join_per_window(
        left in rows(), right in rows(), picks in picks(), chunk in 1usize..20,
        size in 1i64..100,
    ) {
        let (left, right) = (stream(0, left), stream(1000, right));
        let join = WindowJoin::new(Duration::from_millis(size as u64), |start, a: &Rec, b: &Rec| {
            (start, a.id, b.id)
        });
        let got = run(join, interleave(&left, &right, &picks), chunk);
        let start = |t: Millis| t.div_euclid(size) * size;
        let mut want: Vec<_> = left
            .iter()
            .flat_map(|a| {
                right
                    .iter()
                    .filter(move |b| b.key == a.key && start(b.t) == start(a.t))
                    .map(move |b| (start(a.t), a.id, b.id))
            })
            .collect();
        want.sort();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn an_ordered_operator_sees_each_key_in_event_time_order(
        rows in rows(), chunk in 1usize..20,
    ) {
        struct Trace;
        impl OrderedOperator for Trace {
            type Key = u8;
            type Event = Rec;
            type State = u32;
            type Output = (u8, u32, Millis, u32);
            fn on_record(&self, r: &Rec, ctx: &mut KeyedContext<'_, u8, u32, Self::Output>) {
                let n = ctx.state();
                *n += 1;
                let n = *n;
                ctx.emit((r.key, n, ctx.time(), r.id));
            }
        }
        let records = stream(0, rows);
        let mut core = PartitionCore::new(
            Arc::new(InOrder(Trace)),
            Arc::new(|r: &Rec| r.key),
            Arc::new(|r: &Rec| r.t),
            TimeRules { watermark_delay: DISORDER, ..TimeRules::default() },
        );
        for batch in records.chunks(chunk) {
            core.process(batch.iter().copied());
        }
        core.advance(END_OF_TIME, 0);
        let mut got = core.take_outputs();
        got.sort();
        // Per key: stable sort by time (ties in input order), numbered from 1.
        let mut want = Vec::new();
        for key in 0..3u8 {
            let mut mine: Vec<_> = records.iter().filter(|r| r.key == key).collect();
            mine.sort_by_key(|r| r.t);
            want.extend(mine.iter().enumerate().map(|(i, r)| (key, i as u32 + 1, r.t, r.id)));
        }
        want.sort();
        prop_assert_eq!(got, want);
    }
}
