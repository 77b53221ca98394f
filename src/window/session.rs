//! Session windows as a keyed operator. A key's session grows while records arrive less than
//! `gap` apart and is emitted once the watermark passes its last record plus the gap (plus the
//! allowed lateness, in append mode). Records out of order may bridge two sessions, which then
//! merge. A session is reported as `[first record, last record + gap)`. In update mode a
//! closed session is kept for the allowed lateness, and a record that joins it emits it again.

use super::{schedule_fire, Aggregator, Emission, FireAt, NextFire, SessionWindows, WindowResult};
use crate::operator::{KeyedContext, KeyedOperator, Timer};
use crate::time::{Millis, OutputMode};
use crate::Key;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::marker::PhantomData;

/// One session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session<A> {
    first: Millis,
    last: Millis,
    acc: A,
    /// Times it was emitted (update mode).
    emissions: u32,
    /// Update mode: it holds records its last emission did not (a record joined it since).
    changed: bool,
}
/// Per-key state: open sessions in start order and the pending timer. A key mostly has one
/// session open, kept inline (see [`PaneState`](super::pane::PaneState)).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionState<A> {
    sessions: SmallVec<[Session<A>; 1]>,
    next_fire: FireAt,
}

impl<A> NextFire for SessionState<A> {
    fn next_fire(&mut self) -> &mut FireAt {
        &mut self.next_fire
    }
}

impl<A> Default for SessionState<A> {
    fn default() -> Self {
        SessionState {
            sessions: SmallVec::new(),
            next_fire: FireAt::NONE,
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

impl<E, K: Key, A: Aggregator<E>> SessionWindowOperator<E, K, A> {
    /// When `s` next needs its timer: emitted at its end (update mode, changed since its last
    /// emission) or at its end plus the allowed lateness (append mode: emitted; update mode:
    /// dropped).
    fn due(&self, s: &Session<A::Acc>, mode: OutputMode, lateness: Millis) -> Millis {
        let end = s.last.saturating_add(self.gap);
        match mode {
            OutputMode::Update if s.changed => end,
            _ => end.saturating_add(lateness),
        }
    }

    fn emit(&self, ctx: &mut Ctx<'_, K, A::Acc, A::Out>, s: &mut Session<A::Acc>) {
        s.emissions += 1;
        s.changed = false;
        let emission =
            (ctx.output_mode() == OutputMode::Update).then(|| Emission::nth(s.emissions));
        let key = ctx.key().clone();
        ctx.emit(WindowResult {
            key,
            start: s.first,
            end: s.last.saturating_add(self.gap),
            value: self.aggregator.finish(&s.acc),
            emission,
        });
    }

    /// Registers the timer the earliest session needs, or forgets the key when none is left.
    fn reschedule(&self, ctx: &mut Ctx<'_, K, A::Acc, A::Out>) {
        let (mode, lateness) = (ctx.output_mode(), ctx.allowed_lateness());
        let next = ctx
            .state()
            .sessions
            .iter()
            .map(|s| self.due(s, mode, lateness))
            .min();
        match next {
            Some(next) => schedule_fire(ctx, next),
            None => ctx.clear_state(),
        }
    }
}

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

    /// The sessions when they outgrew the entry (the entry itself is prefetched already).
    fn prefetch(&self, state: &Self::State) {
        if state.sessions.spilled() {
            crate::state::prefetch(state.sessions.as_slice());
        }
    }

    fn describe(&self) -> String {
        format!(
            "session windows closed by {} without a record, aggregate {}",
            crate::time::format_millis(self.gap),
            crate::pipeline::short_type_name(std::any::type_name::<A>())
        )
    }

    fn on_event(&self, event: &E, ctx: &mut Ctx<'_, K, A::Acc, A::Out>) {
        let (t, gap) = (ctx.time(), self.gap);
        let sessions = &mut ctx.state().sessions;
        let mut merged = Session {
            first: t,
            last: t,
            acc: self.aggregator.create(),
            emissions: 0,
            changed: true,
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
                    merged.emissions = merged.emissions.max(s.emissions);
                    self.aggregator.merge(&mut merged.acc, &s.acc);
                }
                from
            }
            None => sessions.partition_point(|s| s.first < t),
        };
        let closed = merged.last.saturating_add(gap) <= ctx.watermark();
        if ctx.output_mode() == OutputMode::Update && closed {
            // A late record in a session the watermark has closed: emit it again now.
            self.emit(ctx, &mut merged);
        }
        let due = self.due(&merged, ctx.output_mode(), ctx.allowed_lateness());
        ctx.state().sessions.insert(at, merged);
        schedule_fire(ctx, due);
    }

    fn on_timer(&self, timer: Timer, ctx: &mut Ctx<'_, K, A::Acc, A::Out>) {
        if ctx.state().next_fire.get() != Some(timer.time) {
            return; // superseded by an earlier registration that already fired
        }
        let (mode, lateness) = (ctx.output_mode(), ctx.allowed_lateness());
        let state = ctx.state();
        state.next_fire.clear();
        let mut sessions = std::mem::take(&mut state.sessions);
        sessions.retain_mut(|s| {
            let end = s.last.saturating_add(self.gap);
            let kept_until = end.saturating_add(lateness);
            let first_emission_due = match mode {
                OutputMode::Append => kept_until <= timer.time,
                OutputMode::Update => s.changed && end <= timer.time,
            };
            if first_emission_due {
                self.emit(ctx, s);
            }
            kept_until > timer.time
        });
        ctx.state().sessions = sessions;
        self.reschedule(ctx);
    }
}
