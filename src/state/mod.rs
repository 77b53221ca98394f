//! Durable state in sled: one database per job (`--state DIR`) holding a metadata tree (job
//! identity, the epoch log) and one tree per key partition (its keys' state, in hash buckets, and
//! its checkpoint metadata, written together by one atomic batch), and the Kafka changelog
//! that carries a partition's state to its next owner.

mod changelog;
mod keyed;
mod sealed;
mod store;

pub use changelog::{Changelog, ChangelogCheckpoint, CheckpointRecord, Restored, PIECE_BYTES};
pub use keyed::{bucket_of, Bucket, Entry, KeyedState, TimerIndex, BUCKETS};
pub use store::{PartitionStore, PreparedCheckpoint, StateStore};
