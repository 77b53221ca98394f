//! Tumbling and sliding windows as a keyed operator. State per key is a short list of
//! slide-sized panes; a record updates exactly one pane, and a window is the merge of the
//! `size / slide` panes it covers, computed once when the watermark passes its end.
//!
//! Each key keeps one pending event-time timer: the end of the earliest window that still has
//! to fire. Firing it emits that window, drops panes no later window needs, and registers the
//! next end that has data, so per-record work never touches the timer index in order.

use super::{schedule_fire, Aggregator, NextFire, WindowResult, Windows};
use crate::operator::{KeyedContext, KeyedOperator, Timer};
use crate::time::Millis;
use crate::Key;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;

/// Per-key state: panes in start order and the end of the next window to fire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaneState<A> {
    panes: Vec<(Millis, A)>,
    next_fire: Option<Millis>,
}

impl<A> NextFire for PaneState<A> {
    fn next_fire(&mut self) -> &mut Option<Millis> {
        &mut self.next_fire
    }
}

impl<A> Default for PaneState<A> {
    fn default() -> Self {
        PaneState {
            panes: Vec::new(),
            next_fire: None,
        }
    }
}

/// Aggregates each key's records over tumbling or sliding windows.
pub struct PaneWindowOperator<E, K, A> {
    windows: Windows,
    aggregator: A,
    _types: PhantomData<fn(E) -> K>,
}

impl<E, K, A> PaneWindowOperator<E, K, A> {
    /// An operator for `windows`, aggregating with `aggregator`.
    pub fn new(windows: Windows, aggregator: A) -> Self {
        PaneWindowOperator {
            windows,
            aggregator,
            _types: PhantomData,
        }
    }
}

type Ctx<'a, K, Acc, Out> = KeyedContext<'a, K, PaneState<Acc>, WindowResult<K, Out>>;

impl<E, K, A> KeyedOperator for PaneWindowOperator<E, K, A>
where
    E: Serialize + Send + 'static,
    K: Key,
    A: Aggregator<E>,
{
    type Key = K;
    type Event = E;
    type State = PaneState<A::Acc>;
    type Output = WindowResult<K, A::Out>;

    fn on_event(&self, event: &E, ctx: &mut Ctx<'_, K, A::Acc, A::Out>) {
        let slide = self.windows.slide();
        let pane = ctx.time().div_euclid(slide) * slide;
        let panes = &mut ctx.state().panes;
        // Records mostly land in the newest pane: search from the back.
        let pos = panes.iter().rposition(|(start, _)| *start <= pane);
        match pos {
            Some(i) if panes[i].0 == pane => self.aggregator.add(&mut panes[i].1, event),
            _ => {
                let at = pos.map_or(0, |i| i + 1);
                let mut acc = self.aggregator.create();
                self.aggregator.add(&mut acc, event);
                panes.insert(at, (pane, acc));
                schedule_fire(ctx, pane.saturating_add(slide));
            }
        }
    }

    fn on_timer(&self, timer: Timer, ctx: &mut Ctx<'_, K, A::Acc, A::Out>) {
        let (size, slide) = (self.windows.size(), self.windows.slide());
        let end = timer.time;
        if ctx.state().next_fire != Some(end) {
            return; // superseded by an earlier registration that already fired
        }
        let start = end - size;
        let state = ctx.state();
        let mut acc: Option<A::Acc> = None;
        for (_, pane) in state.panes.iter().filter(|(s, _)| *s >= start && *s < end) {
            match acc.as_mut() {
                Some(acc) => self.aggregator.merge(acc, pane),
                None => acc = Some(pane.clone()),
            }
        }
        // Panes whose last window ends at or before `end` are finished.
        state.panes.retain(|(s, _)| s.saturating_add(size) > end);
        state.next_fire = None;
        let next = state
            .panes
            .first()
            .map(|(first, _)| end.saturating_add(slide).max(first.saturating_add(slide)));
        if let Some(acc) = acc {
            let value = self.aggregator.finish(&acc);
            let key = ctx.key().clone();
            ctx.emit(WindowResult {
                key,
                start,
                end,
                value,
            });
        }
        match next {
            Some(next) => schedule_fire(ctx, next),
            None => ctx.clear_state(),
        }
    }
}
