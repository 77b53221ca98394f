//! Tumbling and sliding windows as a keyed operator. State per key is a short list of
//! slide-sized panes; a record updates exactly one pane, and a window is the merge of the
//! `size / slide` panes it covers, computed when it fires.
//!
//! Each key keeps one pending "fire" timer: the time the earliest window that still has to
//! fire is due. Firing it emits that window, drops panes no later window (or late record) needs,
//! and registers the next window that has data, so per-record work never touches the timer
//! index in order. A window is due at its end plus the allowed lateness in append mode, at its
//! end in update mode; in update mode a fired window is kept until its end plus the allowed
//! lateness (a cleanup timer), and a record that lands in it emits it again at once.

use super::{end_after, schedule_fire, Aggregator, Emission, NextFire, WindowResult, Windows};
use crate::operator::{KeyedContext, KeyedOperator, Timer};
use crate::time::{format_millis, Millis, OutputMode};
use crate::Key;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::marker::PhantomData;

/// Per-key state: panes in start order, the time of the next fire timer, and (update mode)
/// the ends of windows already emitted that are still kept, with their emission counts.
///
/// A key mostly has one pane open, kept inline: with many keys, a pointer to a pane on the heap
/// is one more cache miss per record. (Stored as a `Vec` would be.)
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaneState<A> {
    panes: SmallVec<[(Millis, A); 1]>,
    next_fire: Option<Millis>,
    emitted: Vec<(Millis, u32)>,
}

impl<A> NextFire for PaneState<A> {
    fn next_fire(&mut self) -> &mut Option<Millis> {
        &mut self.next_fire
    }
}

impl<A> Default for PaneState<A> {
    fn default() -> Self {
        PaneState {
            panes: SmallVec::new(),
            next_fire: None,
            emitted: Vec::new(),
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

impl<E, K: Key, A: Aggregator<E>> PaneWindowOperator<E, K, A> {
    /// When the window ending at `end` is due: at its end in update mode, after the allowed
    /// lateness too in append mode.
    fn due(&self, ctx: &Ctx<'_, K, A::Acc, A::Out>, end: Millis) -> Millis {
        match ctx.output_mode() {
            OutputMode::Append => end.saturating_add(ctx.allowed_lateness()),
            OutputMode::Update => end,
        }
    }

    /// The first end after `after` of a window that holds one of `panes`.
    fn next_end(&self, panes: &[(Millis, A::Acc)], after: Millis) -> Option<Millis> {
        let (size, slide) = (self.windows.size(), self.windows.slide());
        panes
            .iter()
            .map(|(p, _)| p.saturating_add(slide).max(after.saturating_add(slide)))
            .zip(panes.iter().map(|(p, _)| p.saturating_add(size)))
            .filter(|(end, last)| end <= last)
            .map(|(end, _)| end)
            .min()
    }

    /// Emits the window ending at `end`, if any pane of it has records. In update mode the
    /// window's emission count goes up by one and it is kept for late records.
    fn emit(&self, ctx: &mut Ctx<'_, K, A::Acc, A::Out>, end: Millis) {
        let start = end - self.windows.size();
        let update = ctx.output_mode() == OutputMode::Update;
        let state = ctx.state();
        let mut acc: Option<A::Acc> = None;
        for (_, pane) in state.panes.iter().filter(|(s, _)| *s >= start && *s < end) {
            match acc.as_mut() {
                Some(acc) => self.aggregator.merge(acc, pane),
                None => acc = Some(pane.clone()),
            }
        }
        let Some(acc) = acc else { return };
        let emission = update.then(|| {
            let n = match state.emitted.iter_mut().find(|(e, _)| *e == end) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    state.emitted.push((end, 1));
                    1
                }
            };
            Emission::nth(n)
        });
        let value = self.aggregator.finish(&acc);
        let key = ctx.key().clone();
        ctx.emit(WindowResult {
            key,
            start,
            end,
            value,
            emission,
        });
        if update {
            // Kept until the allowed lateness has passed (with none, the firing timer's own
            // cleanup drops it). A cleanup time the watermark already passed fires in the
            // same round of timers.
            let cleanup = end.saturating_add(ctx.allowed_lateness());
            if cleanup > ctx.time() {
                ctx.register_event_timer(cleanup);
            }
        }
    }

    /// Update mode: a record landed in pane `pane` behind the watermark; every window of the
    /// pane that has fired is emitted again with it.
    fn emit_late(&self, ctx: &mut Ctx<'_, K, A::Acc, A::Out>, pane: Millis) {
        let (size, slide) = (self.windows.size(), self.windows.slide());
        let mut end = pane.saturating_add(slide);
        while end <= pane.saturating_add(size) && end <= ctx.watermark() {
            self.emit(ctx, end);
            end = end.saturating_add(slide);
        }
    }
}

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

    /// The panes when they outgrew the entry (the entry itself is prefetched already).
    fn prefetch(&self, state: &Self::State) {
        if state.panes.spilled() {
            crate::state::prefetch(state.panes.as_slice());
        }
    }

    fn describe(&self) -> String {
        let (size, slide) = (self.windows.size(), self.windows.slide());
        let aggregate = crate::pipeline::short_type_name(std::any::type_name::<A>());
        match size == slide {
            true => format!(
                "{} tumbling windows, aggregate {aggregate}",
                format_millis(size)
            ),
            false => format!(
                "{} windows sliding every {}, aggregate {aggregate}",
                format_millis(size),
                format_millis(slide)
            ),
        }
    }

    fn on_event(&self, event: &E, ctx: &mut Ctx<'_, K, A::Acc, A::Out>) {
        let slide = self.windows.slide();
        let pane = ctx.time().div_euclid(slide).saturating_mul(slide);
        let panes = &mut ctx.state().panes;
        // Records mostly land in the newest pane: search from the back.
        let pos = panes.iter().rposition(|(start, _)| *start <= pane);
        let new_pane = match pos {
            Some(i) if panes[i].0 == pane => {
                self.aggregator.add(&mut panes[i].1, event);
                false
            }
            _ => {
                let at = pos.map_or(0, |i| i + 1);
                let mut acc = self.aggregator.create();
                self.aggregator.add(&mut acc, event);
                panes.insert(at, (pane, acc));
                true
            }
        };
        if ctx.output_mode() == OutputMode::Update {
            self.emit_late(ctx, pane);
            let first = end_after(ctx.watermark(), slide).max(pane.saturating_add(slide));
            if first <= pane.saturating_add(self.windows.size()) {
                schedule_fire(ctx, first);
            }
        } else if new_pane {
            let due = self.due(ctx, pane.saturating_add(slide));
            schedule_fire(ctx, due);
        }
    }

    fn on_timer(&self, timer: Timer, ctx: &mut Ctx<'_, K, A::Acc, A::Out>) {
        let size = self.windows.size();
        let lateness = ctx.allowed_lateness();
        let t = timer.time;
        if ctx.state().next_fire == Some(t) {
            // A window is due (other times are cleanup timers, or fire timers superseded by
            // an earlier registration that already fired).
            let end = match ctx.output_mode() {
                OutputMode::Append => t.saturating_sub(lateness),
                OutputMode::Update => t,
            };
            ctx.state().next_fire = None;
            self.emit(ctx, end);
            if let Some(next) = self.next_end(&ctx.state().panes, end) {
                let due = self.due(ctx, next);
                schedule_fire(ctx, due);
            }
        }
        // Panes and emitted windows no record can reach any more.
        let cutoff = t.saturating_sub(lateness);
        let state = ctx.state();
        state.panes.retain(|(s, _)| s.saturating_add(size) > cutoff);
        state.emitted.retain(|(end, _)| *end > cutoff);
        if state.panes.is_empty() && state.emitted.is_empty() {
            ctx.clear_state();
        }
    }
}
