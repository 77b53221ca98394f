//! The keyed operator API, spate's equivalent of Flink's `KeyedProcessFunction` and Spark's
//! `flatMapGroupsWithState`: per-key typed state, event-time and processing-time timers, and
//! outputs. The built-in window and session operators are written against it too.
//!
//! A whole keyed operator: alert when a user fails three logins in a row, and forget users
//! quiet for an hour of event time through a declarative TTL. [`PartitionCore`] runs it the way
//! a key partition does, without actors (`.key_by(..).state_ttl(..).process(FailedLogins)` runs
//! it in a job):
//!
//! ```
//! use spate::operator::{KeyedContext, KeyedOperator};
//! use spate::runtime::PartitionCore;
//! use spate::time::{StateTtl, TimeRules};
//! use std::{sync::Arc, time::Duration};
//!
//! #[derive(serde::Serialize)]
//! struct Login { user: u32, ok: bool, ts: i64 }
//!
//! struct FailedLogins;
//!
//! impl KeyedOperator for FailedLogins {
//!     type Key = u32;
//!     type Event = Login;
//!     type State = u32; // failures in a row
//!     type Output = (u32, i64);
//!
//!     fn on_event(&self, login: &Login, ctx: &mut KeyedContext<'_, u32, u32, (u32, i64)>) {
//!         let failures = ctx.state();
//!         *failures = if login.ok { 0 } else { *failures + 1 };
//!         if *failures == 3 {
//!             ctx.emit((login.user, ctx.time()));
//!         }
//!     }
//! }
//!
//! let rules = TimeRules {
//!     ttl: Some(StateTtl::event_time(Duration::from_secs(3600))),
//!     ..TimeRules::default()
//! };
//! let mut core = PartitionCore::new(
//!     Arc::new(FailedLogins),
//!     Arc::new(|l: &Login| l.user),
//!     Arc::new(|l: &Login| l.ts),
//!     rules,
//! );
//! let login = |user, ok, ts| Login { user, ok, ts };
//! core.process([login(7, false, 0), login(7, false, 10), login(8, true, 20), login(7, false, 30)]);
//! assert_eq!(core.take_outputs(), vec![(7, 30)]);
//! core.process([login(9, true, 3_600_030)]); // an hour later: 7 and 8 are forgotten
//! assert_eq!((core.state_of(&7), core.state_of(&8), core.counts().expired), (None, None, 2));
//! ```
//!
//! [`PartitionCore`]: crate::runtime::PartitionCore

mod counters;
mod ordered;
mod waiting;

pub use counters::{score_bucket, CounterWindow, Counters, MetricDecl, WINDOW};
pub use ordered::{InOrder, Ordered, OrderedOperator};
pub use waiting::Waiting;

use crate::learning::{ModelRef, PartitionModel};
use crate::state::{Entry, TimerIndex};
use crate::time::{Millis, OutputMode, TimeRules};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Which clock a timer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TimeDomain {
    /// Fires when the watermark reaches the timer's time.
    EventTime,
    /// Fires at the first epoch end whose processing time reaches the timer's time.
    ProcessingTime,
    /// Fires at the first epoch end at which the pipeline's shared model for the timer's time
    /// is known (see [`crate::learning`]).
    Model,
}

/// A timer that fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    /// The time it was registered for.
    pub time: Millis,
    /// Its clock.
    pub domain: TimeDomain,
}

/// Per-key processing logic. One instance serves every key of every partition, so it holds
/// configuration only; everything per key lives in `State`, which is checkpointed.
///
/// Determinism matters: given the same records, watermarks and processing times, an operator
/// must emit the same outputs in the same order, so a replayed epoch reproduces its results.
/// Read time from the context, never from the system clock.
pub trait KeyedOperator: Send + Sync + 'static {
    /// The key records are grouped by.
    type Key: crate::Key;
    /// The input record.
    type Event: Serialize + Send + 'static;
    /// Per-key state; `Default` is the state of a key never seen.
    type State: Serialize + DeserializeOwned + Default + Send + 'static;
    /// What the operator emits.
    type Output: Send + 'static;

    /// Called for every record that is not late, with its key's state.
    fn on_event(
        &self,
        event: &Self::Event,
        ctx: &mut KeyedContext<'_, Self::Key, Self::State, Self::Output>,
    );

    /// Called when a timer registered by this key fires; nothing by default (an operator that
    /// registers no timers needs no handler).
    fn on_timer(
        &self,
        _timer: Timer,
        _ctx: &mut KeyedContext<'_, Self::Key, Self::State, Self::Output>,
    ) {
    }

    /// What the operator does, in a few words (`spate describe`); its type name by default.
    fn describe(&self) -> String {
        crate::pipeline::short_type_name(std::any::type_name::<Self>())
    }

    /// The operator's own metrics (counters it adds to with
    /// [`KeyedContext::count`], and ratios of them); none by default.
    fn metrics(&self) -> Vec<MetricDecl> {
        Vec::new()
    }
}

/// The times a callback runs at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    /// The record's event time, or the timer's time.
    pub(crate) time: Millis,
    /// The partition's watermark.
    pub(crate) watermark: Millis,
    /// The epoch's processing time.
    pub(crate) processing_time: Millis,
}

/// What an operator callback can see and do for the current key.
pub struct KeyedContext<'a, K, S, O> {
    pub(crate) key: &'a K,
    pub(crate) state: &'a mut S,
    /// The key's pending timers (kept in its state entry).
    pub(crate) key_timers: &'a mut Vec<(TimeDomain, Millis)>,
    /// The partition's timer index.
    pub(crate) timers: &'a mut TimerIndex<K>,
    pub(crate) out: &'a mut Vec<O>,
    pub(crate) counters: &'a mut Counters,
    /// The pipeline's shared model, as the partition has it.
    pub(crate) model: &'a mut PartitionModel,
    pub(crate) clock: Clock,
    pub(crate) rules: &'a TimeRules,
    pub(crate) cleared: bool,
}

impl<'a, K, S, O> KeyedContext<'a, K, S, O> {
    /// The context for one callback on `key`.
    pub(crate) fn new(
        key: &'a K,
        entry: &'a mut Entry<S>,
        timers: &'a mut TimerIndex<K>,
        (out, counters, model): (&'a mut Vec<O>, &'a mut Counters, &'a mut PartitionModel),
        clock: Clock,
        rules: &'a TimeRules,
    ) -> Self {
        KeyedContext {
            key,
            state: &mut entry.state,
            key_timers: &mut entry.timers,
            timers,
            out,
            counters,
            model,
            clock,
            rules,
            cleared: false,
        }
    }
}

impl<K: Ord + Clone, S: Default, O> KeyedContext<'_, K, S, O> {
    /// The current key.
    pub fn key(&self) -> &K {
        self.key
    }

    /// The current key's state.
    pub fn state(&mut self) -> &mut S {
        self.cleared = false;
        self.state
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
    /// [`KeyedOperator::metrics`] to have it exported).
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
        if !self.key_timers.contains(&(domain, time)) {
            self.key_timers.push((domain, time));
            self.timers.insert(domain, time, self.key.clone());
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
        if let Some(i) = self.key_timers.iter().position(|t| *t == (domain, time)) {
            self.key_timers.swap_remove(i);
            self.timers.remove(domain, time, self.key);
        }
    }

    /// Forgets this key: its state and its timers. The next checkpoint deletes it from sled.
    pub fn clear_state(&mut self) {
        for (domain, time) in std::mem::take(self.key_timers) {
            self.timers.remove(domain, time, self.key);
        }
        *self.state = S::default();
        self.cleared = true;
    }

    /// Whether the last callback cleared the key (`clear_state` without state written since).
    pub(crate) fn was_cleared(&self) -> bool {
        self.cleared
    }

    /// A context for the same key, time and timers over a part of this key's state (what an
    /// operator wrapping another hands the inner one). The view's `time` is `time`.
    pub(crate) fn view<S2>(
        &mut self,
        time: Millis,
        part: impl FnOnce(&mut S) -> &mut S2,
    ) -> KeyedContext<'_, K, S2, O> {
        KeyedContext {
            key: self.key,
            state: part(self.state),
            key_timers: self.key_timers,
            timers: self.timers,
            out: self.out,
            counters: self.counters,
            model: self.model,
            clock: Clock { time, ..self.clock },
            rules: self.rules,
            cleared: false,
        }
    }
}
