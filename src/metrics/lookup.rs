//! A running job's keyed state: one key's (`GET /state/{key}`, like Kafka Streams'
//! interactive queries), what each partition holds (`GET /api/state`, `spate state inspect
//! --addr`), and one key's erasure (`POST /state/erase`, `spate state erase --addr`). The runtime installs the lookups over its partition actors while a job runs, and
//! the endpoints answer "no job running" between jobs.

use crate::state::{Erasure, KeyReport, PartitionSummary};
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex};

/// Looks one key up in the running job's partitions: the key's state, `None` when it has
/// none, or why the key cannot be one of the pipeline's (`Err`).
pub type StateLookup =
    Arc<dyn Fn(String) -> BoxFuture<'static, Result<Option<KeyReport>, String>> + Send + Sync>;

/// Erases one key's state in the running job (see [`crate::state::Erasure`]): answers once
/// the epoch that erased it is committed, with the erasure, or `None` when no partition held
/// state for the key.
pub type EraseRequest =
    Arc<dyn Fn(String) -> BoxFuture<'static, Result<Option<Erasure>, EraseRefused>> + Send + Sync>;

/// Why an erasure was not done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EraseRefused {
    /// The text cannot be a key of the pipeline (why).
    NotAKey(String),
    /// The job ended (or failed) before the erasure's epoch was committed.
    JobEnded,
}

/// Summarizes each of the running job's partitions, ascending.
pub type PartitionsLookup =
    Arc<dyn Fn() -> BoxFuture<'static, Vec<PartitionSummary>> + Send + Sync>;

/// The running job's lookups.
#[derive(Clone)]
pub struct StateAccess {
    /// One key's state.
    pub key: StateLookup,
    /// What each partition holds.
    pub partitions: PartitionsLookup,
    /// One key's erasure.
    pub erase: EraseRequest,
}

/// The lookups of the job running now, if one is.
#[derive(Default)]
pub struct LiveState {
    access: Mutex<Option<StateAccess>>,
}

impl LiveState {
    /// Installs (`Some`) or removes (`None`) the running job's lookups.
    pub fn set(&self, access: Option<StateAccess>) {
        *self.access.lock().unwrap_or_else(|e| e.into_inner()) = access;
    }

    /// The running job's lookups.
    pub fn get(&self) -> Option<StateAccess> {
        self.access
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
