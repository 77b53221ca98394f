//! Records held in a key's state until the watermark passes them, then released sorted by
//! event time, ties in the order they arrived: what an [ordered operator](super::InOrder) and
//! the [temporal join](crate::join::TemporalJoin) keep.

use crate::time::Millis;
use serde::{Deserialize, Serialize};

/// A key's records waiting for the watermark.
///
/// Invariant: the records are kept in arrival order, except that a release sorts them by time
/// with a stable sort, which keeps ties in arrival order; so no arrival number is needed.
#[derive(Debug, Serialize, Deserialize)]
pub struct Waiting<E> {
    records: Vec<(Millis, E)>,
}

impl<E> Default for Waiting<E> {
    fn default() -> Self {
        Waiting {
            records: Vec::new(),
        }
    }
}

impl<E> Waiting<E> {
    /// Holds `record`, of event time `time`.
    pub fn push(&mut self, time: Millis, record: E) {
        self.records.push((time, record));
    }

    /// Takes the records with a time before `time`, by time, ties in arrival order.
    pub fn release_before(&mut self, time: Millis) -> Vec<(Millis, E)> {
        self.records.sort_by_key(|r| r.0);
        let due = self.records.partition_point(|r| r.0 < time);
        self.records.drain(..due).collect()
    }

    /// The earliest time still waiting.
    pub fn earliest(&self) -> Option<Millis> {
        self.records.iter().map(|r| r.0).min()
    }

    /// The times of the waiting records, in no particular order.
    pub fn times(&self) -> impl Iterator<Item = Millis> + '_ {
        self.records.iter().map(|r| r.0)
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}
