//! Tumbling and sliding windows as a keyed operator. State per key is a short list of
//! slide-sized panes; a record updates exactly one pane, and a window is the merge of the
//! `size / slide` panes it covers, computed when it fires.
//!
//! Each key keeps one pending "fire" timer: the time the earliest window that still has to
//! fire is due. Firing it emits that window (and the key's later ones the watermark has passed
//! too), drops panes no later window (or late record) needs, and registers the next window that
//! has data, so per-record work never touches the timer index in order. A window is due at
//! its end plus the allowed lateness in append mode, at its end in update mode; in update mode
//! a fired window is kept until its end plus the allowed lateness (a cleanup timer), and a
//! record that lands in it emits it again at once.

use super::{
    end_after, schedule_fire, Aggregator, Emission, FireAt, NextFire, WindowResult, Windows,
};
use crate::operator::{KeyedContext, KeyedOperator, Timer};
use crate::time::{format_millis, Millis, OutputMode};
use crate::Key;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::marker::PhantomData;
use thin_vec::ThinVec;

/// Per-key state: panes in start order, the time of the next fire timer, and (update mode)
/// the ends of windows already emitted that are still kept, with their emission counts.
///
/// Two panes are kept inline: a tumbling window's key has one open, two while its records
/// cross a window's end (the next pane opens before the last window fired); a sliding window's
/// key has one for each slide it had records in, up to `size / slide`, and only its first two
/// stay inline. With many keys, panes on the heap are one more cache miss per record and an
/// allocation and a free per key. The emitted windows, empty in append mode, take one pointer
/// (`ThinVec`, 8 bytes where a `Vec` takes 24) and the fire timer 8 bytes ([`FireAt`]), so
/// that a string id's entry of `(Count, Sum)` panes fits in two cache lines. Stored as
/// `Vec`s and an `Option` would be.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaneState<A> {
    panes: SmallVec<[(Millis, A); 2]>,
    next_fire: FireAt,
    emitted: ThinVec<(Millis, u32)>,
}

impl<A> NextFire for PaneState<A> {
    fn next_fire(&mut self) -> &mut FireAt {
        &mut self.next_fire
    }
}

impl<A> Default for PaneState<A> {
    fn default() -> Self {
        PaneState {
            panes: SmallVec::new(),
            next_fire: FireAt::NONE,
            emitted: ThinVec::new(),
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

    /// Emits the window ending at `end`, if any pane of it has records, as of event time `now`.
    /// In update mode the window's emission count goes up by one and it is kept for late
    /// records.
    fn emit(&self, ctx: &mut Ctx<'_, K, A::Acc, A::Out>, end: Millis, now: Millis) {
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
            if cleanup > now {
                ctx.register_event_timer(cleanup);
            }
        }
    }

    /// Emits the window due at `due` and every later one the watermark has passed too, then
    /// registers the next one still to come; returns when the last emitted one was due.
    ///
    /// A key whose windows the watermark passed several at once (the end of the input, a
    /// jump in event time) emits them in one visit rather than one timer each: with many keys
    /// each visit is a cache miss, and between two of one key's timers every other key's come.
    fn fire_due(&self, ctx: &mut Ctx<'_, K, A::Acc, A::Out>, mut due: Millis) -> Millis {
        let mut end = match ctx.output_mode() {
            OutputMode::Append => due.saturating_sub(ctx.allowed_lateness()),
            OutputMode::Update => due,
        };
        loop {
            self.emit(ctx, end, due);
            let Some(next) = self.next_end(&ctx.state().panes, end) else {
                return due;
            };
            let next_due = self.due(ctx, next);
            if next_due > ctx.watermark() {
                schedule_fire(ctx, next_due);
                return due;
            }
            (end, due) = (next, next_due);
        }
    }

    /// Update mode: a record landed in pane `pane` behind the watermark; every window of the
    /// pane that has fired is emitted again with it.
    fn emit_late(&self, ctx: &mut Ctx<'_, K, A::Acc, A::Out>, pane: Millis) {
        let (size, slide) = (self.windows.size(), self.windows.slide());
        let mut end = pane.saturating_add(slide);
        while end <= pane.saturating_add(size) && end <= ctx.watermark() {
            self.emit(ctx, end, ctx.time());
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
        let mut now = t;
        if ctx.state().next_fire.get() == Some(t) {
            // A window is due (other times are cleanup timers, or fire timers superseded by
            // an earlier registration that already fired).
            ctx.state().next_fire.clear();
            now = self.fire_due(ctx, t);
        }
        // Panes and emitted windows no record can reach any more.
        let cutoff = now.saturating_sub(lateness);
        let state = ctx.state();
        state.panes.retain(|(s, _)| s.saturating_add(size) > cutoff);
        state.emitted.retain(|(end, _)| *end > cutoff);
        if state.panes.is_empty() && state.emitted.is_empty() {
            ctx.clear_state();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::PartitionCore;
    use crate::time::TimeRules;
    use crate::window::Count;
    use std::sync::Arc;
    use std::time::Duration;

    /// Counts `(key, time)` records over 3-second windows sliding every second.
    fn sliding_counts() -> PartitionCore<PaneWindowOperator<(u32, Millis), u32, Count>> {
        let windows = Windows::sliding(Duration::from_secs(3), Duration::from_secs(1));
        PartitionCore::new(
            Arc::new(PaneWindowOperator::new(windows, Count)),
            Arc::new(|r: &(u32, Millis)| r.0),
            Arc::new(|r: &(u32, Millis)| r.1),
            TimeRules::default(),
        )
    }

    #[test]
    fn a_key_emits_every_window_one_watermark_passed_in_one_visit_in_end_order() {
        let mut core = sliding_counts();
        core.process([(1, 100), (2, 200), (1, 300), (2, 900)]);
        assert!(core.take_outputs().is_empty(), "no window ended yet");
        core.advance(Millis::MAX, 0);
        let fired: Vec<_> = (core.take_outputs().into_iter())
            .map(|w| (w.key, w.end, w.value))
            .collect();
        let key_1 = [(1, 1_000, 2), (1, 2_000, 2), (1, 3_000, 2)];
        let key_2 = [(2, 1_000, 2), (2, 2_000, 2), (2, 3_000, 2)];
        // Each key's windows together: not every key's first window, then every key's second,
        // as one timer per window would give.
        let (first, second) = fired.split_at(3);
        assert!(
            (first, second) == (&key_1[..], &key_2[..])
                || (first, second) == (&key_2[..], &key_1[..]),
            "{fired:?}"
        );
        assert_eq!((core.key_count(), core.timer_count()), (0, 0));
    }

    #[test]
    fn a_key_with_records_across_a_slides_end_keeps_its_two_panes_inline() {
        let mut core = sliding_counts();
        core.process([(1, 100), (1, 1_100)]);
        let state = core.state_of(&1).expect("key 1 has state");
        assert_eq!(state.panes.len(), 2);
        assert!(!state.panes.spilled(), "two panes on the heap");
        core.process([(1, 2_100)]);
        assert!(
            core.state_of(&1).expect("key 1").panes.spilled(),
            "a third spills"
        );
    }

    #[test]
    fn a_pane_state_is_stored_as_its_vecs_and_option_were() {
        let mut state = PaneState::<(u64, i64)>::default();
        state.panes.push((60_000, (2, -7)));
        state.next_fire.set(120_000);
        state.emitted.extend([(60_000, 1), (120_000, 3)]);
        let before = (
            vec![(60_000i64, (2u64, -7i64))],
            Some(120_000i64),
            vec![(60_000i64, 1u32), (120_000, 3)],
        );
        let bytes = bincode::serialize(&state).unwrap();
        assert_eq!(bytes, bincode::serialize(&before).unwrap());
        let again: PaneState<(u64, i64)> = bincode::deserialize(&bytes).unwrap();
        assert_eq!(bincode::serialize(&again).unwrap(), bytes);
    }

    #[test]
    fn a_count_and_sum_keys_entry_fits_in_two_cache_lines() {
        // `tx-windows` and `fraud`: a string id and its panes of `(Count, Sum)`. Every record
        // waits for its key's entry, a line at a time (it was 160 bytes, three lines).
        type Slot = (crate::key::Id, crate::state::Entry<PaneState<(u64, i64)>>);
        assert_eq!(std::mem::size_of::<Slot>(), 128);
    }

    #[test]
    fn a_watermark_firing_many_windows_hands_them_out_in_pieces_the_same_as_at_once() {
        let records: Vec<_> = (0..3_000).map(|k| (k, 500)).collect();
        let mut whole = sliding_counts();
        whole.process(records.clone());
        whole.advance(Millis::MAX, 0);
        let whole: Vec<_> = whole.take_keyed_outputs().collect();

        let mut pieces = sliding_counts();
        pieces.process(records);
        let mut taken = Vec::new();
        let mut sizes = Vec::new();
        pieces.advance_draining(Millis::MAX, 0, &mut |core| {
            let piece: Vec<_> = core.take_keyed_outputs().collect();
            sizes.push(piece.len());
            taken.extend(piece);
        });
        taken.extend(pieces.take_keyed_outputs());
        assert_eq!(whole.len(), 9_000, "3 windows for each of 3,000 keys");
        assert!(taken == whole, "the same outputs in the same order");
        assert!(
            sizes.len() >= 2 && sizes.iter().all(|&n| n <= 4_098),
            "{sizes:?}"
        );
    }
}
