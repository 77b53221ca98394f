//! Durable state in sled: one database per job (`--state DIR`) holding a metadata tree (job
//! identity, the epoch log) and one tree per key partition (its keys' state, in hash buckets, and
//! its checkpoint metadata, written together by one atomic batch), and the in-memory keyed
//! state those trees checkpoint (`keyed`), ordered by time in `schedule` (its places in
//! `time_slots` or a `place_tree`), brought into the CPU's cache ahead of use (`prefetch`), kept
//! partly on disk under a memory limit (`residency`), a stopped job's state looked at and erased
//! by key (`inspect`), and the erasures asked of a running job, by epoch (`erase_requests`). sled alone: the Kafka changelog that carries a
//! partition's state to its next owner lives with the rest of Kafka, in
//! [`crate::io::kafka::changelog`].

mod bucket;
mod erase_requests;
mod inspect;
mod key_timers;
mod keyed;
mod model;
mod place_tree;
mod prefetch;
mod residency;
mod schedule;
mod sealed;
mod slice_log;
mod stopped;
mod store;
mod time_slots;

pub use inspect::{
    erase_key, erasures, find_key, key_report, parse_key, record_erasure, summarize, Erasure,
    KeyReport, PartitionSummary, TimerReport,
};
pub use keyed::{
    bucket_of, Bucket, Entry, KeyTimers, KeyedState, TimerIndex, BUCKETS, BUCKET_BITS,
    SPILL_BUCKETS, SPILL_BUCKET_BITS, WARM_AHEAD,
};
pub use model::StoredModel;
pub use prefetch::prefetch;
pub use residency::Residency;
pub use slice_log::{LogIndex, SliceLog};
pub use stopped::StoppedPartition;
pub use store::{PartitionStore, PreparedCheckpoint, StateStore};
