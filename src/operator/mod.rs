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

mod context;
mod counters;
mod ordered;
mod waiting;

pub use context::KeyedContext;
pub use counters::{score_bucket, CounterWindow, Counters, MetricDecl, WINDOW};
pub use ordered::{InOrder, Ordered, OrderedOperator};
pub use waiting::Waiting;

use crate::time::Millis;
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

    /// [`on_event`](Self::on_event) with the record handed over: the engine is done with
    /// each record once the operator has seen it, so an operator that keeps a record or moves
    /// its fields into an output (a buffer, a pass-through) takes them here instead of cloning.
    /// Calls `on_event` by default.
    fn on_event_owned(
        &self,
        event: Self::Event,
        ctx: &mut KeyedContext<'_, Self::Key, Self::State, Self::Output>,
    ) {
        self.on_event(&event, ctx);
    }

    /// Called when a timer registered by this key fires; nothing by default (an operator that
    /// registers no timers needs no handler).
    fn on_timer(
        &self,
        _timer: Timer,
        _ctx: &mut KeyedContext<'_, Self::Key, Self::State, Self::Output>,
    ) {
    }

    /// [`prefetch`](crate::state::prefetch)es the heap memory of a key's state that
    /// `on_event` and `on_timer` will read (a `Vec`'s or a spilled `SmallVec`'s buffer: the
    /// state itself is prefetched already). Called a few records ahead when a partition's state
    /// is larger than the cache, so that its cache misses overlap; nothing by default. A hint
    /// only: what it prefetches does not change any result.
    fn prefetch(&self, _state: &Self::State) {}

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
