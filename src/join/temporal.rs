//! The temporal table join: each left record with the table row of its key valid at the
//! record's event time.

use super::Either;
use crate::operator::{KeyedContext, KeyedOperator, Timer, Waiting};
use crate::time::Millis;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;

/// Joins each left record (the stream) with the version of the right input (a keyed table) valid
/// at the record's event time: a table row is valid from its own event time until the next row
/// of its key. Two rows of a key at the same time: the later one in the input wins.
///
/// A left record waits until the watermarks of both inputs have passed its time, so every table
/// row that is on time is in the table when it is looked up, however slowly the table input is
/// read. Left records come out in event-time order per key (ties in input order). The table
/// keeps each key's latest row valid at the watermark and the rows after it; its rows never
/// expire (give the pipeline a state TTL to forget keys).
pub struct TemporalJoin<K, L, T, O, F> {
    join: F,
    types: PhantomData<fn(K, L, T) -> O>,
}

impl<K, L, T, O, F> TemporalJoin<K, L, T, O, F>
where
    F: Fn(&L, Option<&T>) -> O,
{
    /// A join whose output is `join(record, row valid then)`, `None` when the key had no row yet.
    pub fn new(join: F) -> Self {
        TemporalJoin {
            join,
            types: PhantomData,
        }
    }
}

/// A key's state in a temporal join.
#[derive(Debug, Serialize, Deserialize)]
pub struct TemporalState<L, T> {
    /// Table rows by the time they become valid, ascending.
    versions: Vec<(Millis, T)>,
    /// Left records waiting for the watermark.
    waiting: Waiting<L>,
}

impl<L, T> Default for TemporalState<L, T> {
    fn default() -> Self {
        TemporalState {
            versions: Vec::new(),
            waiting: Waiting::default(),
        }
    }
}

impl<L, T> TemporalState<L, T> {
    /// The row valid at `time`.
    fn valid_at(&self, time: Millis) -> Option<&T> {
        let after = self.versions.partition_point(|(from, _)| *from <= time);
        after.checked_sub(1).map(|i| &self.versions[i].1)
    }

    /// Adds a row valid from `from`, replacing one valid from the same time.
    fn upsert(&mut self, from: Millis, row: T) {
        let at = self.versions.partition_point(|(f, _)| *f < from);
        match self.versions.get_mut(at) {
            Some(v) if v.0 == from => v.1 = row,
            _ => self.versions.insert(at, (from, row)),
        }
    }

    /// Forgets the rows no record at `horizon` or later can see.
    fn trim(&mut self, horizon: Millis) {
        let valid = self.versions.partition_point(|(from, _)| *from <= horizon);
        if valid > 1 {
            self.versions.drain(..valid - 1);
        }
    }
}

impl<K, L, T, O, F> KeyedOperator for TemporalJoin<K, L, T, O, F>
where
    K: crate::Key,
    L: Clone + Serialize + DeserializeOwned + Send + 'static,
    T: Clone + Serialize + DeserializeOwned + Send + 'static,
    O: Send + 'static,
    F: Fn(&L, Option<&T>) -> O + Send + Sync + 'static,
{
    type Key = K;
    type Event = Either<L, T>;
    type State = TemporalState<L, T>;
    type Output = O;

    fn on_event(&self, record: &Either<L, T>, ctx: &mut KeyedContext<'_, K, Self::State, O>) {
        let time = ctx.time();
        let state = ctx.state();
        match record {
            Either::Left(l) => state.waiting.push(time, l.clone()),
            Either::Right(row) => state.upsert(time, row.clone()),
        }
        // Left records are released, and old rows trimmed, once the watermark passes `time`.
        ctx.register_event_timer(time.saturating_add(1));
    }

    fn describe(&self) -> String {
        "temporal table join: each record of input 1 with the row of input 2 valid at its time"
            .into()
    }

    fn on_timer(&self, timer: Timer, ctx: &mut KeyedContext<'_, K, Self::State, O>) {
        let watermark = ctx.watermark();
        let state = ctx.state();
        let released: Vec<O> = (state.waiting.release_before(timer.time).iter())
            .map(|(time, l)| (self.join)(l, state.valid_at(*time)))
            .collect();
        let horizon = state
            .waiting
            .earliest()
            .map_or(watermark, |t| t.min(watermark));
        state.trim(horizon);
        for output in released {
            ctx.emit(output);
        }
    }
}
