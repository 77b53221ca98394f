//! A running job's keyed state, looked up by key for `GET /state/{key}` (read-only, like Kafka
//! Streams' interactive queries): the runtime installs a lookup over its partition actors while
//! a job runs, and the endpoint answers "no job running" between jobs.

use crate::state::KeyReport;
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex};

/// Looks one key up in the running job's partitions: the key's state, `None` when it has
/// none, or why the key cannot be one of the pipeline's (`Err`).
pub type StateLookup =
    Arc<dyn Fn(String) -> BoxFuture<'static, Result<Option<KeyReport>, String>> + Send + Sync>;

/// The lookup of the job running now, if one is.
#[derive(Default)]
pub struct LiveState {
    lookup: Mutex<Option<StateLookup>>,
}

impl LiveState {
    /// Installs (`Some`) or removes (`None`) the running job's lookup.
    pub fn set(&self, lookup: Option<StateLookup>) {
        *self.lookup.lock().unwrap_or_else(|e| e.into_inner()) = lookup;
    }

    /// The running job's lookup.
    pub fn get(&self) -> Option<StateLookup> {
        self.lookup
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
