//! `spate delta optimize PATH`: compacts a Delta table's small files (each epoch of a
//! `delta:` sink writes at least one per writer) into files of the target size, as Delta's
//! `OPTIMIZE` does. The rows stay the same and the compaction is a commit of its own, so a job
//! may keep writing to the table meanwhile.

use super::load;
use crate::io::sink::client_runtime::ClientRuntime;
use crate::{Error, Result};
use std::num::NonZeroU64;
use std::path::Path;

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Compaction {
    /// Files written.
    pub files_added: u64,
    /// Small files replaced by them.
    pub files_removed: u64,
    /// The table's version after the compaction.
    pub version: u64,
}

/// Compacts the table at `path` into files of about `target_size` bytes (Delta's default,
/// 100 MiB, when `None`).
pub fn optimize(path: &Path, target_size: Option<NonZeroU64>) -> Result<Compaction> {
    let failed = |detail: &dyn std::fmt::Display| Error::Sink {
        sink: format!("the Delta table {}", path.display()),
        action: "optimize".into(),
        detail: detail.to_string(),
    };
    let runtime = ClientRuntime::new("Delta Lake client", 2)?;
    runtime.run(async {
        let table = load(path).await.map_err(|e| failed(&e))?;
        let Some(before) = table.version() else {
            return Err(failed(&"there is no Delta table there"));
        };
        let mut builder = table.optimize();
        if let Some(size) = target_size {
            builder = builder.with_target_size(size);
        }
        let (table, metrics) = builder.await.map_err(|e| failed(&e))?;
        Ok(Compaction {
            files_added: metrics.num_files_added,
            files_removed: metrics.num_files_removed,
            version: table.version().unwrap_or(before),
        })
    })
}
