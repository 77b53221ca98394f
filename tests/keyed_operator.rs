//! A custom keyed operator on the partition core: per-key typed state, event-time and
//! processing-time timers, deleting timers, clearing state, and a declarative state TTL.

use serde::{Deserialize, Serialize};
use spate::operator::{KeyedContext, KeyedOperator, TimeDomain, Timer};
use spate::runtime::PartitionCore;
use spate::state::StateStore;
use spate::time::{StateTtl, TimeRules};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
struct Login {
    user: u32,
    ts: i64,
    ok: bool,
}

/// Alerts when a user fails three logins with no success in between, at most once per
/// processing-time minute; forgets a user an hour (event time) after their last login.
struct Guard;

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    failures: u32,
    expires: Option<i64>,
    muted_until: i64,
}

impl KeyedOperator for Guard {
    type Key = u32;
    type Event = Login;
    type State = State;
    type Output = (u32, &'static str, i64);

    fn on_event(&self, e: &Login, ctx: &mut KeyedContext<'_, u32, State, Self::Output>) {
        let now = ctx.processing_time();
        let s = ctx.state();
        s.failures = if e.ok { 0 } else { s.failures + 1 };
        let (alert, old) = (
            s.failures == 3 && now >= s.muted_until,
            s.expires.replace(e.ts + 3_600_000),
        );
        if alert {
            s.muted_until = now + 60_000;
            ctx.register_processing_timer(now + 60_000);
            ctx.emit((e.user, "alert", e.ts));
        }
        if let Some(old) = old {
            ctx.delete_timer(TimeDomain::EventTime, old);
        }
        ctx.register_event_timer(e.ts + 3_600_000);
    }

    fn on_timer(&self, t: Timer, ctx: &mut KeyedContext<'_, u32, State, Self::Output>) {
        let user = *ctx.key();
        match t.domain {
            TimeDomain::ProcessingTime => ctx.emit((user, "unmuted", t.time)),
            TimeDomain::EventTime => {
                ctx.emit((user, "expired", t.time));
                ctx.clear_state();
            }
            TimeDomain::Model => unreachable!("the guard registers no model timers"),
        }
    }
}

/// A partition core running `operator` on logins keyed by user, timed by `ts`.
fn logins_by_user<Op>(operator: Op, rules: TimeRules) -> PartitionCore<Op>
where
    Op: KeyedOperator<Key = u32, Event = Login>,
{
    PartitionCore::new(
        Arc::new(operator),
        Arc::new(|l: &Login| l.user),
        Arc::new(|l: &Login| l.ts),
        rules,
    )
}

#[test]
fn timers_in_both_domains_and_state_expiry() {
    let mut core = logins_by_user(Guard, TimeRules::default());
    let login = |user, ts, ok| Login { user, ts, ok };
    core.advance(0, 1_000);
    core.process([
        login(1, 10, false),
        login(1, 20, false),
        login(2, 25, false),
        login(1, 30, false),
    ]);
    assert_eq!(core.take_outputs(), vec![(1, "alert", 30)]);
    assert_eq!(core.key_count(), 2);
    // Processing time reaches the mute timer; the watermark is not yet at any expiry.
    core.advance(1_000, 61_000);
    assert_eq!(core.take_outputs(), vec![(1, "unmuted", 61_000)]);
    // A later login of user 2 moves its expiry: the old timer was deleted and does not fire.
    core.process([login(2, 600_000, true)]);
    core.advance(3_600_030, 61_000);
    assert_eq!(core.take_outputs(), vec![(1, "expired", 3_600_030)]);
    assert_eq!(core.key_count(), 1, "user 1's state was cleared");
    assert_eq!(core.state_of(&2).map(|s| s.failures), Some(0));
    core.advance(4_200_000, 61_000);
    assert_eq!(core.take_outputs(), vec![(2, "expired", 4_200_000)]);
    assert_eq!((core.key_count(), core.timer_count()), (0, 0));
}

/// Counts each user's successful logins (a failed one does not look at the state), and
/// forgets nothing by itself: the TTL does.
struct Counter;

impl KeyedOperator for Counter {
    type Key = u32;
    type Event = Login;
    type State = u64;
    type Output = (u32, u64);

    fn on_event(&self, e: &Login, ctx: &mut KeyedContext<'_, u32, u64, Self::Output>) {
        if e.ok {
            *ctx.state() += 1;
            let n = *ctx.state();
            ctx.emit((e.user, n));
        }
    }
}

/// Rules with a state TTL of `ms` milliseconds of event time.
fn event_time_ttl(ms: u64) -> TimeRules {
    TimeRules {
        ttl: Some(StateTtl::event_time(Duration::from_millis(ms))),
        ..TimeRules::default()
    }
}

#[test]
fn state_ttl_drops_untouched_keys_and_they_stay_gone_after_a_restart() {
    let rules = event_time_ttl(1_000);
    let make = || logins_by_user(Counter, rules);
    let login = |user, ts| Login { user, ts, ok: true };
    let store = StateStore::open(None).unwrap();
    let tree = store.partition(0).unwrap();
    let mut core = make();
    core.process([login(1, 0), login(2, 0), login(2, 900), login(3, 1_500)]);
    // The watermark reached 1,500: user 1 (last seen at 0) expired, user 2 (900) did not.
    assert_eq!(core.state_of(&1), None);
    assert_eq!(core.state_of(&2), Some(&2));
    assert_eq!(core.counts().expired, 1);
    let meta = core.checkpoint_meta(1);
    tree.write_checkpoint(core.drain_changes(), &meta).unwrap();

    let restored = |tree: &spate::state::PartitionStore| {
        let mut core = make();
        core.restore_stored(&tree.checkpoint().unwrap(), tree)
            .unwrap();
        core
    };
    let mut core = restored(&tree);
    assert_eq!((core.state_of(&1), core.state_of(&2)), (None, Some(&2)));
    // A new login of user 1 starts from nothing; user 2 expires once the watermark passes 1,900.
    core.take_outputs();
    core.process([login(1, 1_600), login(4, 2_000)]);
    assert_eq!(core.take_outputs(), vec![(1, 1), (4, 1)]);
    assert_eq!(core.state_of(&2), None);
    let meta = core.checkpoint_meta(2);
    tree.write_checkpoint(core.drain_changes(), &meta).unwrap();
    let core = restored(&tree);
    assert_eq!(core.state_of(&2), None, "the expiry was checkpointed");
    assert_eq!(core.key_count(), 3);
}

#[test]
fn a_record_that_leaves_the_state_alone_keeps_it_alive_and_creates_none() {
    let rules = event_time_ttl(1_000);
    let mut core = logins_by_user(Counter, rules);
    let login = |user, ts, ok| Login { user, ts, ok };
    core.process([
        login(1, 0, true),
        login(1, 900, false),
        login(2, 900, false),
    ]);
    core.process([login(3, 1_500, true)]);
    assert_eq!(
        core.state_of(&1),
        Some(&1),
        "touched at 900: expires at 1,900"
    );
    assert_eq!(core.state_of(&2), None);
    assert_eq!(core.key_count(), 2, "user 2 has no state to keep");
    core.process([login(3, 2_000, true)]);
    assert_eq!((core.state_of(&1), core.state_of(&3)), (None, Some(&2)));
    assert_eq!(core.counts().expired, 1);
}

#[test]
fn a_processing_time_ttl_expires_at_the_epoch_end_that_reaches_it() {
    let rules = TimeRules {
        ttl: Some(StateTtl::processing_time(Duration::from_millis(1_000))),
        ..TimeRules::default()
    };
    let mut core = logins_by_user(Counter, rules);
    let login = |user, ts| Login { user, ts, ok: true };
    core.advance(i64::MIN, 5_000);
    core.process([login(1, 0)]);
    core.advance(i64::MIN, 5_500);
    core.process([login(2, 10_000_000)]); // event time does not count
    assert_eq!(core.key_count(), 2);
    core.advance(i64::MIN, 6_000);
    assert_eq!((core.state_of(&1), core.state_of(&2)), (None, Some(&1)));
    assert_eq!(core.counts().expired, 1);
}

/// A later stage's watermark is the smallest of its upstream partitions'. One upstream
/// partition sent its end of time (and sends nothing more), the other did not yet: restored
/// from a checkpoint, the stage still knows the first one ended, so the second one's end of
/// time ends it (before, each channel restarted at the stage's watermark, and a re-keyed job
/// restarted between two upstream ends waited for ever).
#[test]
fn a_later_stage_restores_the_watermark_of_each_upstream_partition() {
    use spate::time::END_OF_TIME;
    let make = || logins_by_user(Counter, TimeRules::default()).with_channels(2);
    let mut core = make();
    core.process_channel(0, Vec::new(), END_OF_TIME);
    let login = Login {
        user: 1,
        ts: 50,
        ok: true,
    };
    core.process_channel(1, vec![(1, login, 0)], 100);
    assert_eq!(core.watermark(), 100);
    let meta = core.checkpoint_meta(1);
    let mut restored = make();
    restored.restore(&meta, Vec::new());
    assert_eq!(restored.watermark(), 100);
    restored.process_channel(1, Vec::new(), END_OF_TIME);
    assert_eq!(
        restored.watermark(),
        END_OF_TIME,
        "both upstream partitions ended"
    );
}

/// Counts each user's logins per second of event time, and emits a second's count when the
/// watermark passes its end; counts the states it is asked to prefetch.
#[derive(Default)]
struct PerSecond {
    prefetched: Arc<AtomicU64>,
}

impl KeyedOperator for PerSecond {
    type Key = u32;
    type Event = Login;
    /// Count by the second's end.
    type State = std::collections::BTreeMap<i64, u64>;
    type Output = (u32, i64, u64);

    fn on_event(&self, e: &Login, ctx: &mut KeyedContext<'_, u32, Self::State, Self::Output>) {
        let end = e.ts - e.ts.rem_euclid(1_000) + 1_000;
        *ctx.state().entry(end).or_default() += 1;
        ctx.register_event_timer(end);
    }

    fn on_timer(&self, t: Timer, ctx: &mut KeyedContext<'_, u32, Self::State, Self::Output>) {
        let user = *ctx.key();
        let count = ctx.state().remove(&t.time).expect("a count per timer");
        ctx.emit((user, t.time, count));
        if ctx.state().is_empty() {
            ctx.clear_state();
        }
    }

    fn prefetch(&self, state: &Self::State) {
        assert!(!state.is_empty(), "only the state of a key that exists");
        self.prefetched.fetch_add(1, Ordering::Relaxed);
    }
}

/// A partition with more keys than it keeps cold looks each batch's keys up ahead (and the
/// keys of the timers about to fire), asking the operator to prefetch their states: the
/// lookups change nothing, so the counts are a naive count's and no key is added or kept.
#[test]
fn a_partition_with_many_keys_warms_its_lookups_and_counts_the_same() {
    let operator = PerSecond::default();
    let prefetched = operator.prefetched.clone();
    let mut core = logins_by_user(operator, TimeRules::default());
    let users = 30_000u32;
    // 40 logins a millisecond, in time order; 5,761 is prime to 30,000, so every second
    // (40,000 logins) has every user.
    let logins: Vec<Login> = (0..120_000u32)
        .map(|i| Login {
            user: (u64::from(i) * 5_761 % u64::from(users)) as u32,
            ts: i64::from(i / 40),
            ok: true,
        })
        .collect();
    let mut expected = std::collections::BTreeMap::new();
    for l in &logins {
        *expected
            .entry((l.user, l.ts / 1_000 * 1_000 + 1_000))
            .or_insert(0u64) += 1;
    }
    for batch in logins.chunks(7_777) {
        core.process(batch.iter().cloned());
    }
    assert_eq!(core.key_count(), users as usize, "the last second's keys");
    core.advance(i64::MAX, 0);
    let mut counted: Vec<_> = core.take_outputs();
    counted.sort_unstable();
    let expected: Vec<_> = (expected.into_iter())
        .map(|((user, end), n)| (user, end, n))
        .collect();
    let first_difference = counted.iter().zip(&expected).find(|(a, b)| a != b);
    assert_eq!(first_difference, None);
    assert_eq!(counted.len(), expected.len());
    assert_eq!((core.key_count(), core.timer_count()), (0, 0));
    // A login finds its key's state when its user logged in before within the second (30,000
    // of the 120,000 logins), and so do most seconds' timers: each of the 210,000 at most once.
    let prefetched = prefetched.load(Ordering::Relaxed);
    assert!(
        (30_000..=210_000).contains(&prefetched),
        "{prefetched} states prefetched"
    );
}
