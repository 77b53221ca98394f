//! Event-time ordered processing: an operator that receives each key's records sorted by event
//! time (ties in input order) once the watermark has passed them, for logic that depends on
//! order, such as pattern detection. Flink's CEP sorts the same way before matching.
//!
//! Three failures in a row, counted in event-time order whatever order they arrived in:
//!
//! ```
//! use spate::operator::{InOrder, KeyedContext, OrderedOperator};
//! use spate::runtime::PartitionCore;
//! use spate::time::TimeRules;
//! use std::sync::Arc;
//!
//! #[derive(Clone, serde::Serialize, serde::Deserialize)]
//! struct Login { user: u32, ok: bool, ts: i64 }
//!
//! struct ThreeFailures;
//!
//! impl OrderedOperator for ThreeFailures {
//!     type Key = u32;
//!     type Event = Login;
//!     type State = u32; // failures in a row
//!     type Output = i64;
//!
//!     fn on_record(&self, login: &Login, ctx: &mut KeyedContext<'_, u32, u32, i64>) {
//!         let failures = ctx.state();
//!         *failures = if login.ok { 0 } else { *failures + 1 };
//!         if *failures == 3 {
//!             ctx.emit(ctx.time());
//!         }
//!     }
//! }
//!
//! let mut core = PartitionCore::new(
//!     Arc::new(InOrder(ThreeFailures)),
//!     Arc::new(|l: &Login| l.user),
//!     Arc::new(|l: &Login| l.ts),
//!     TimeRules { watermark_delay: 100, ..TimeRules::default() },
//! );
//! let login = |ok, ts| Login { user: 1, ok, ts };
//! // Out of order: the success at 15 comes last but breaks the run of failures at 10, 20, 30.
//! core.process([login(false, 10), login(false, 20), login(false, 30), login(true, 15)]);
//! core.process([login(false, 40), login(true, 500)]); // the watermark passes 40
//! assert_eq!(core.take_outputs(), vec![40]);
//! ```

use super::{KeyedContext, KeyedOperator, TimeDomain, Timer, Waiting};
use crate::time::Millis;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Per-key logic over records in event-time order. Its records wait in the key's state until
/// the watermark has passed them (so a record at `t` is released once no record before or at
/// `t` can still come on time), then arrive sorted by event time, ties in the order they came.
///
/// An ordered operator has no timers of its own: the records' release is what drives it. Use
/// a state TTL to forget quiet keys.
pub trait OrderedOperator: Send + Sync + 'static {
    /// The key records are grouped by.
    type Key: crate::Key;
    /// The input record; kept in state until released, so it is serializable.
    type Event: Clone + Serialize + DeserializeOwned + Send + 'static;
    /// Per-key state; `Default` is the state of a key never seen.
    type State: Serialize + DeserializeOwned + Default + Send + 'static;
    /// What the operator emits.
    type Output: Send + 'static;

    /// Called for each record, in event-time order; `ctx.time()` is the record's time.
    fn on_record(
        &self,
        event: &Self::Event,
        ctx: &mut KeyedContext<'_, Self::Key, Self::State, Self::Output>,
    );
}

/// Runs an [`OrderedOperator`] as a [`KeyedOperator`]: `.process(InOrder(op))`.
pub struct InOrder<Op>(pub Op);

/// The state of a key under [`InOrder`]: the operator's own state and the records waiting for
/// the watermark.
#[derive(Debug, Serialize, Deserialize)]
pub struct Ordered<S, E> {
    /// The operator's state.
    pub inner: S,
    /// Records not yet released.
    waiting: Waiting<E>,
}

impl<S: Default, E> Default for Ordered<S, E> {
    fn default() -> Self {
        Ordered {
            inner: S::default(),
            waiting: Waiting::default(),
        }
    }
}

impl<Op: OrderedOperator> KeyedOperator for InOrder<Op> {
    type Key = Op::Key;
    type Event = Op::Event;
    type State = Ordered<Op::State, Op::Event>;
    type Output = Op::Output;

    fn on_event(
        &self,
        event: &Op::Event,
        ctx: &mut KeyedContext<'_, Op::Key, Self::State, Op::Output>,
    ) {
        self.on_event_owned(event.clone(), ctx);
    }

    /// Keeps the record until the watermark passes its time.
    fn on_event_owned(
        &self,
        event: Op::Event,
        ctx: &mut KeyedContext<'_, Op::Key, Self::State, Op::Output>,
    ) {
        let time = ctx.time();
        ctx.state().waiting.push(time, event);
        // Released once the watermark passes `time`: then nothing at `time` is still on time.
        ctx.register_event_timer(time.saturating_add(1));
    }

    fn describe(&self) -> String {
        format!(
            "{} over each key's records in event-time order",
            crate::pipeline::short_type_name(std::any::type_name::<Op>())
        )
    }

    fn on_timer(&self, timer: Timer, ctx: &mut KeyedContext<'_, Op::Key, Self::State, Op::Output>) {
        if timer.domain != TimeDomain::EventTime {
            return;
        }
        let released = ctx.state().waiting.release_before(timer.time);
        let mut cleared = false;
        for (time, event) in &released {
            let mut inner = ctx.view(*time, |s| &mut s.inner);
            self.0.on_record(event, &mut inner);
            cleared = inner.was_cleared();
        }
        if !cleared {
            return;
        }
        // The operator forgot the key: records still waiting keep it (and get their timers back).
        let waiting: Vec<Millis> = ctx.state().waiting.times().collect();
        if waiting.is_empty() {
            ctx.clear_state();
        }
        for time in waiting {
            ctx.register_event_timer(time.saturating_add(1));
        }
    }
}
