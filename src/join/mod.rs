//! Joins of two keyed inputs, each a [keyed operator](crate::operator) over [`Either`] record of
//! the two inputs, its state bounded by the watermark and checkpointed like a window's:
//!
//! - [`TemporalJoin`]: each left record with the version of a keyed table valid at its event
//!   time (Flink's `FOR SYSTEM_TIME AS OF`, a Kafka Streams KTable lookup);
//! - [`IntervalJoin`]: pairs whose right time lies in `[left time + lower, left time + upper]`,
//!   inner or left outer;
//! - [`WindowJoin`]: pairs in the same tumbling window.
//!
//! # Why the results do not depend on timing
//!
//! Each input keeps its own watermark and a record is late only behind its own input's (see
//! [`PartitionCore`](crate::runtime::PartitionCore)), and a join keeps a record as long as the
//! smaller of the two watermarks says a partner may still come. So every pair of on-time
//! records that should meet does meet, whichever input is read faster: the set of results
//! depends only on the inputs. A temporal join goes further and emits each left record only
//! once both watermarks have passed it, so a table row that is on time is always seen.
//!
//! A temporal join of payments with the user rows valid when they happened, driven the way a
//! key partition drives it:
//!
//! ```
//! use spate::join::{Either, TemporalJoin};
//! use spate::runtime::PartitionCore;
//! use spate::time::{TimeRules, END_OF_TIME};
//! use std::sync::Arc;
//!
//! #[derive(Clone, serde::Serialize, serde::Deserialize)]
//! struct Pay { user: u32, cents: i64, ts: i64 }
//! #[derive(Clone, serde::Serialize, serde::Deserialize)]
//! struct User { user: u32, segment: String, ts: i64 }
//!
//! let join = TemporalJoin::new(|p: &Pay, u: Option<&User>| {
//!     (p.cents, u.map_or("unknown".to_string(), |u| u.segment.clone()))
//! });
//! let mut core = PartitionCore::new(
//!     Arc::new(join),
//!     Arc::new(|r: &Either<Pay, User>| r.map_either(|p| p.user, |u| u.user)),
//!     Arc::new(|r: &Either<Pay, User>| r.map_either(|p| p.ts, |u| u.ts)),
//!     TimeRules::default(),
//! )
//! .with_inputs(Arc::new(Either::side), &[0, 0]);
//! let pay = |cents, ts| Either::Left(Pay { user: 1, cents, ts });
//! let user = |segment: &str, ts| Either::Right(User { user: 1, segment: segment.into(), ts });
//! core.process([pay(100, 5), user("gold", 10), pay(200, 10), pay(300, 20), user("vip", 15)]);
//! core.advance(END_OF_TIME, 0);
//! assert_eq!(
//!     core.take_outputs(),
//!     vec![(100, "unknown".into()), (200, "gold".into()), (300, "vip".into())]
//! );
//! ```

mod interval;
mod temporal;
mod window;

#[cfg(test)]
mod tests;

pub use interval::{IntervalJoin, JoinKind};
pub use temporal::TemporalJoin;
pub use window::WindowJoin;

use serde::{Deserialize, Serialize};

/// A record of one of a join's two inputs: the left (the stream) or the right (the other
/// stream, or the table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Either<L, R> {
    /// A record of the first input.
    Left(L),
    /// A record of the second input.
    Right(R),
}

impl<L, R> Either<L, R> {
    /// The input the record came from: 0 for left, 1 for right.
    pub fn side(&self) -> usize {
        match self {
            Either::Left(_) => 0,
            Either::Right(_) => 1,
        }
    }

    /// Applies `left` or `right`, whichever the record is.
    pub fn map_either<T>(&self, left: impl FnOnce(&L) -> T, right: impl FnOnce(&R) -> T) -> T {
        match self {
            Either::Left(l) => left(l),
            Either::Right(r) => right(r),
        }
    }
}

/// A record kept in a join's state with its event time. Vectors of them are in arrival order,
/// so a stable sort by time orders ties as they came.
type Held<E> = (crate::time::Millis, E);
