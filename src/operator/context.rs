//! [`KeyedContext`]: what an operator callback sees of its key (state, timers, clocks) and
//! what it can do (emit, count, learn, set timers).

use super::{Clock, TimeDomain};
use crate::key::HashedKey;
use crate::learning::{ModelRef, PartitionModel};
use crate::operator::Counters;
use crate::state::{Entry, KeyedState, TimerIndex};
use crate::time::{Millis, OutputMode, TimeRules};
use crate::Key;
use serde::Serialize;

/// A record's touch of its key under a state TTL: the record's time on the TTL's clock, and
/// the TTL.
pub(crate) type Touch = (Millis, Millis);

/// What an operator callback can see and do for the current key.
pub struct KeyedContext<'a, K, S, O> {
    key: HashedKey<'a, K>,
    entry: KeyEntry<'a, K, S>,
    pub(crate) out: &'a mut Vec<O>,
    pub(crate) counters: &'a mut Counters,
    /// The pipeline's shared model, as the partition has it.
    pub(crate) model: &'a mut PartitionModel,
    pub(crate) clock: Clock,
    pub(crate) rules: &'a TimeRules,
    pub(crate) cleared: bool,
}

/// The current key's entry as a callback sees it: looked up (and created) the first time the
/// callback reads or writes the key's state or timers, so a record whose callback does neither
/// (a stateless map or filter, a record a join ignores) costs no lookup and leaves no entry for
/// the next checkpoint to write.
enum KeyEntry<'a, K, S> {
    /// Not looked up yet: the partition's state to look it up in, and the state TTL's touch
    /// the lookup records (see [`Touch`]).
    Unread(&'a mut KeyedState<K, S>, Option<Touch>),
    /// The key's state and pending timers, and the partition's timer index.
    Found {
        state: &'a mut S,
        key_timers: &'a mut crate::state::KeyTimers,
        timers: &'a mut TimerIndex<K>,
    },
    /// Between the two, while [`KeyedContext::entry`] looks the key up.
    LookingUp,
}

/// The outputs, counters and shared model a callback writes to.
pub(crate) type Sinks<'a, O> = (&'a mut Vec<O>, &'a mut Counters, &'a mut PartitionModel);

impl<'a, K, S, O> KeyedContext<'a, K, S, O> {
    /// The context for one callback on `key`, whose entry is already at hand.
    pub(crate) fn new(
        key: HashedKey<'a, K>,
        entry: &'a mut Entry<S>,
        timers: &'a mut TimerIndex<K>,
        sinks: Sinks<'a, O>,
        clock: Clock,
        rules: &'a TimeRules,
    ) -> Self {
        let entry = KeyEntry::Found {
            state: &mut entry.state,
            key_timers: &mut entry.timers,
            timers,
        };
        Self::with_entry(key, entry, sinks, clock, rules)
    }

    /// The context for one callback on `key`, which looks the key up in `state` when the
    /// callback first needs its entry, recording `touch` (with a state TTL) when it does.
    pub(crate) fn lazy(
        key: HashedKey<'a, K>,
        (state, touch): (&'a mut KeyedState<K, S>, Option<Touch>),
        sinks: Sinks<'a, O>,
        clock: Clock,
        rules: &'a TimeRules,
    ) -> Self {
        Self::with_entry(key, KeyEntry::Unread(state, touch), sinks, clock, rules)
    }

    fn with_entry(
        key: HashedKey<'a, K>,
        entry: KeyEntry<'a, K, S>,
        (out, counters, model): Sinks<'a, O>,
        clock: Clock,
        rules: &'a TimeRules,
    ) -> Self {
        KeyedContext {
            key,
            entry,
            out,
            counters,
            model,
            clock,
            rules,
            cleared: false,
        }
    }
}

/// The key's state, its pending timers and the partition's timer index.
type EntryParts<'e, K, S> = (
    &'e mut S,
    &'e mut crate::state::KeyTimers,
    &'e mut TimerIndex<K>,
);

impl<K: Key, S: Default> KeyEntry<'_, K, S> {
    /// The entry of `key`, looked up (and created when missing) if it was not yet.
    fn found(&mut self, key: HashedKey<'_, K>) -> EntryParts<'_, K, S> {
        if let KeyEntry::Unread(..) = self {
            if let KeyEntry::Unread(keyed, touch) = std::mem::replace(self, KeyEntry::LookingUp) {
                let (entry, timers) = match touch {
                    Some((now, ttl)) => keyed.touch_with_ttl(key, now, ttl),
                    None => keyed.touch(key),
                };
                *self = KeyEntry::Found {
                    state: &mut entry.state,
                    key_timers: &mut entry.timers,
                    timers,
                };
            }
        }
        match self {
            KeyEntry::Found {
                state,
                key_timers,
                timers,
            } => (state, key_timers, timers),
            KeyEntry::Unread(..) | KeyEntry::LookingUp => {
                unreachable!("the entry was looked up above")
            }
        }
    }
}

impl<K: Key, S: Default, O> KeyedContext<'_, K, S, O> {
    /// The current key.
    pub fn key(&self) -> &K {
        self.key.key
    }

    /// The current key's state.
    pub fn state(&mut self) -> &mut S {
        self.cleared = false;
        self.entry().0
    }

    /// The key's entry, looked up (and created when missing) on first use.
    fn entry(&mut self) -> EntryParts<'_, K, S> {
        self.entry.found(self.key)
    }

    /// The event time of the record being processed, or the time of the timer that fired.
    pub fn time(&self) -> Millis {
        self.clock.time
    }

    /// The partition's watermark: every record still to come with a time older than it minus
    /// the allowed lateness is late.
    pub fn watermark(&self) -> Millis {
        self.clock.watermark
    }

    /// The processing time of the current epoch.
    pub fn processing_time(&self) -> Millis {
        self.clock.processing_time
    }

    /// How far behind the watermark records are still taken (the pipeline's
    /// `allowed_lateness`): state a late record could update must be kept this much longer.
    pub fn allowed_lateness(&self) -> Millis {
        self.rules.allowed_lateness
    }

    /// Whether results are written once (append) or as they change (update).
    pub fn output_mode(&self) -> OutputMode {
        self.rules.output_mode
    }

    /// Emits an output.
    pub fn emit(&mut self, output: O) {
        self.out.push(output);
    }

    /// Adds `by` to the operator's counter `name` (declare it in
    /// [`KeyedOperator::metrics`](super::KeyedOperator::metrics) to have it exported).
    pub fn count(&mut self, name: &'static str, by: f64) {
        self.counters.add(name, by);
    }

    /// The pipeline's shared model for the callback's time (see [`crate::learning`]): the
    /// version that learned every micro-batch before the one [`time`](Self::time) falls in.
    /// `None` while that version is not known yet (register a
    /// [`TimeDomain::Model`] timer at the time to be called when it is), or when the pipeline
    /// shares no model of type `M`.
    pub fn model<M: 'static>(&self) -> Option<ModelRef<'_, M>> {
        let version = self.model.history.as_ref()?.for_time(self.clock.time)?;
        Some(ModelRef {
            version: version.version,
            model: version.value.downcast_ref::<M>()?,
        })
    }

    /// Teaches the pipeline's shared model `example`, which became known at `time` (e.g. when
    /// the outcome it pairs with a record's features arrived): it is learned with the
    /// micro-batch `time` falls in. An example whose micro-batch was learned already (its
    /// time is behind the job's watermark) is dropped and counted.
    pub fn learn<E: Serialize>(&mut self, time: Millis, example: &E) {
        let bytes = bincode::serialize(example).expect("bincode encodes in-memory values");
        self.model.learned.push((time, bytes));
    }

    /// Registers a timer that fires when the shared model for `time` is known.
    pub fn register_model_timer(&mut self, time: Millis) {
        self.register_timer(TimeDomain::Model, time);
    }

    /// Registers a timer for this key; registering the same time twice has no extra effect.
    pub fn register_timer(&mut self, domain: TimeDomain, time: Millis) {
        let key = self.key;
        let (_, key_timers, timers) = self.entry();
        if !key_timers.contains(&(domain, time)) {
            key_timers.push((domain, time));
            timers.insert_hashed(domain, time, key.key.clone(), key.stable);
        }
    }

    /// Registers an event-time timer: it fires when the watermark reaches `time`.
    pub fn register_event_timer(&mut self, time: Millis) {
        self.register_timer(TimeDomain::EventTime, time);
    }

    /// Registers a processing-time timer: it fires at the first epoch end at or after `time`.
    pub fn register_processing_timer(&mut self, time: Millis) {
        self.register_timer(TimeDomain::ProcessingTime, time);
    }

    /// Deletes a pending timer of this key.
    pub fn delete_timer(&mut self, domain: TimeDomain, time: Millis) {
        let key = self.key;
        let (_, key_timers, timers) = self.entry();
        if key_timers.remove((domain, time)) {
            timers.remove(domain, time, key.key);
        }
    }

    /// Forgets this key: its state and its timers. The next checkpoint deletes it from sled.
    pub fn clear_state(&mut self) {
        self.cleared = true;
        if let KeyEntry::Unread(keyed, _) = &mut self.entry {
            if !keyed.contains(self.key) {
                return; // nothing to forget
            }
        }
        let key = self.key;
        let (state, key_timers, timers) = self.entry();
        for &(domain, time) in &std::mem::take(key_timers) {
            timers.remove(domain, time, key.key);
        }
        *state = S::default();
    }

    /// Whether the last callback cleared the key (`clear_state` without state written since).
    pub(crate) fn was_cleared(&self) -> bool {
        self.cleared
    }

    /// Whether the callback looked the key's entry up (it read or wrote state or timers).
    pub(crate) fn looked_up(&self) -> bool {
        !matches!(self.entry, KeyEntry::Unread(..))
    }

    /// A context for the same key, time and timers over a part of this key's state (what an
    /// operator wrapping another hands the inner one). The view's `time` is `time`.
    pub(crate) fn view<S2>(
        &mut self,
        time: Millis,
        part: impl FnOnce(&mut S) -> &mut S2,
    ) -> KeyedContext<'_, K, S2, O> {
        let clock = Clock { time, ..self.clock };
        let (key, rules) = (self.key, self.rules);
        let (out, counters, model) = (&mut *self.out, &mut *self.counters, &mut *self.model);
        let (state, key_timers, timers) = self.entry.found(key);
        let entry = KeyEntry::Found {
            state: part(state),
            key_timers,
            timers,
        };
        KeyedContext::with_entry(key, entry, (out, counters, model), clock, rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::KeyedOperator;
    use crate::runtime::PartitionCore;
    use std::sync::Arc;

    /// Keyed by `n % 7`: counts even numbers in state, emits odd ones without touching it, and
    /// forgets the key at a multiple of 10.
    struct EvensCounted;

    impl KeyedOperator for EvensCounted {
        type Key = u64;
        type Event = u64;
        type State = u32;
        type Output = u64;

        fn on_event(&self, n: &u64, ctx: &mut KeyedContext<'_, u64, u32, u64>) {
            if n.is_multiple_of(10) {
                ctx.clear_state();
            } else if n.is_multiple_of(2) {
                *ctx.state() += 1;
            } else {
                ctx.emit(*n);
            }
        }
    }

    fn core() -> PartitionCore<EvensCounted> {
        PartitionCore::new(
            Arc::new(EvensCounted),
            Arc::new(|n: &u64| n % 7),
            Arc::new(|n: &u64| *n as Millis),
            TimeRules::default(),
        )
    }

    #[test]
    fn a_callback_that_leaves_the_state_alone_makes_no_entry_and_no_change() {
        let mut core = core();
        core.process([1, 3, 5, 9]);
        assert_eq!(core.take_outputs(), vec![1, 3, 5, 9]);
        assert_eq!(core.key_count(), 0);
        assert!(
            core.drain_changes().is_empty(),
            "nothing for a checkpoint to write"
        );
        core.process([12, 16, 19]); // 19 is key 5 again, and leaves its state alone
        assert_eq!((core.state_of(&5), core.state_of(&2)), (Some(&1), Some(&1)));
        assert_eq!(core.key_count(), 2);
        assert_eq!(core.drain_changes().len(), 2);
    }

    #[test]
    fn clearing_a_key_forgets_it_whether_or_not_the_callback_read_it() {
        let mut core = core();
        core.process([6, 20]); // 20 is key 6: it clears what 6 stored
        assert_eq!((core.state_of(&6), core.key_count()), (None, 0));
        core.process([30]); // key 2, never stored: nothing to clear
        assert_eq!(core.key_count(), 0);
    }

    /// Emits each record it is handed over, and nothing when only shown it.
    struct Moved;

    impl KeyedOperator for Moved {
        type Key = u64;
        type Event = String;
        type State = ();
        type Output = String;

        fn on_event(&self, _: &String, _: &mut KeyedContext<'_, u64, (), String>) {}

        fn on_event_owned(&self, s: String, ctx: &mut KeyedContext<'_, u64, (), String>) {
            ctx.emit(s);
        }
    }

    #[test]
    fn the_partition_hands_each_record_over_to_the_operator() {
        let mut core = PartitionCore::new(
            Arc::new(Moved),
            Arc::new(|s: &String| s.len() as u64),
            Arc::new(|_: &String| 0),
            TimeRules::default(),
        );
        core.process(["a".to_string(), "bc".to_string()]);
        assert_eq!(core.take_outputs(), ["a", "bc"]);
    }
}
