//! A custom keyed operator on the partition core: per-key typed state, event-time and
//! processing-time timers, deleting timers, and clearing state.

use serde::{Deserialize, Serialize};
use spate::operator::{KeyedContext, KeyedOperator, TimeDomain, Timer};
use spate::runtime::PartitionCore;
use std::sync::Arc;

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
        }
    }
}

#[test]
fn timers_in_both_domains_and_state_expiry() {
    let mut core = PartitionCore::new(
        Arc::new(Guard),
        Arc::new(|l: &Login| l.user),
        Arc::new(|l: &Login| l.ts),
    );
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
