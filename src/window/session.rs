//! Session windows as a keyed operator. A key's session grows while records arrive less than
//! `gap` apart and is emitted once the watermark passes its last record plus the gap. Records
//! out of order may bridge two sessions, which then merge. A session is reported as
//! `[first record, last record + gap)`.

use super::{schedule_fire, Aggregator, NextFire, SessionWindows, WindowResult};
use crate::operator::{KeyedContext, KeyedOperator, Timer};
use crate::time::Millis;
use crate::Key;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;

/// One open session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session<A> {
    first: Millis,
    last: Millis,
    acc: A,
}

/// Per-key state: open sessions in start order and the pending timer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionState<A> {
    sessions: Vec<Session<A>>,
    next_fire: Option<Millis>,
}

impl<A> NextFire for SessionState<A> {
    fn next_fire(&mut self) -> &mut Option<Millis> {
        &mut self.next_fire
    }
}

impl<A> Default for SessionState<A> {
    fn default() -> Self {
        SessionState {
            sessions: Vec::new(),
            next_fire: None,
        }
    }
}

/// Aggregates each key's records per session.
pub struct SessionWindowOperator<E, K, A> {
    gap: Millis,
    aggregator: A,
    _types: PhantomData<fn(E) -> K>,
}

impl<E, K, A> SessionWindowOperator<E, K, A> {
    /// An operator for `sessions`, aggregating with `aggregator`.
    pub fn new(sessions: SessionWindows, aggregator: A) -> Self {
        SessionWindowOperator {
            gap: sessions.gap(),
            aggregator,
            _types: PhantomData,
        }
    }
}

type Ctx<'a, K, Acc, Out> = KeyedContext<'a, K, SessionState<Acc>, WindowResult<K, Out>>;

impl<E, K, A> KeyedOperator for SessionWindowOperator<E, K, A>
where
    E: Serialize + Send + 'static,
    K: Key,
    A: Aggregator<E>,
{
    type Key = K;
    type Event = E;
    type State = SessionState<A::Acc>;
    type Output = WindowResult<K, A::Out>;

    fn on_event(&self, event: &E, ctx: &mut Ctx<'_, K, A::Acc, A::Out>) {
        let (t, gap) = (ctx.time(), self.gap);
        let sessions = &mut ctx.state().sessions;
        let mut merged = Session {
            first: t,
            last: t,
            acc: self.aggregator.create(),
        };
        self.aggregator.add(&mut merged.acc, event);
        // Sessions within `gap` of the record join it; they are contiguous in start order.
        let touches =
            |s: &Session<A::Acc>| t < s.last.saturating_add(gap) && s.first < t.saturating_add(gap);
        let from = sessions.iter().position(touches);
        let at = match from {
            Some(from) => {
                let to = from + sessions[from..].iter().take_while(|s| touches(s)).count();
                for s in sessions.drain(from..to) {
                    merged.first = merged.first.min(s.first);
                    merged.last = merged.last.max(s.last);
                    self.aggregator.merge(&mut merged.acc, &s.acc);
                }
                from
            }
            None => sessions.partition_point(|s| s.first < t),
        };
        let end = merged.last.saturating_add(gap);
        sessions.insert(at, merged);
        schedule_fire(ctx, end);
    }

    fn on_timer(&self, timer: Timer, ctx: &mut Ctx<'_, K, A::Acc, A::Out>) {
        if ctx.state().next_fire != Some(timer.time) {
            return; // superseded by an earlier registration that already fired
        }
        let gap = self.gap;
        let state = ctx.state();
        state.next_fire = None;
        let (done, open): (Vec<_>, Vec<_>) = std::mem::take(&mut state.sessions)
            .into_iter()
            .partition(|s| s.last.saturating_add(gap) <= timer.time);
        state.sessions = open;
        let next = state
            .sessions
            .iter()
            .map(|s| s.last.saturating_add(gap))
            .min();
        for s in done {
            let key = ctx.key().clone();
            ctx.emit(WindowResult {
                key,
                start: s.first,
                end: s.last.saturating_add(gap),
                value: self.aggregator.finish(&s.acc),
            });
        }
        match next {
            Some(next) => schedule_fire(ctx, next),
            None => ctx.clear_state(),
        }
    }
}
