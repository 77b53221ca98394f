//! Durable state in sled: one database per job (`--state DIR`) holding a metadata tree (job
//! identity, the epoch log) and one tree per key partition (its keys' state and its checkpoint
//! metadata, written together by one atomic batch).

mod keyed;
mod store;

pub use keyed::{Entry, KeyedState, TimerIndex};
pub use store::{PartitionStore, StateStore};
