//! The runtime of a sink's async client (PostgreSQL, Delta Lake): sinks are called from the
//! job's actors, inside another runtime, where blocking on a future would panic, so each such
//! sink owns a runtime and blocks on it from a thread of its own.

use crate::{Error, Result};

/// A sink client's own tokio runtime.
pub(super) struct ClientRuntime {
    runtime: tokio::runtime::Runtime,
    /// The client, for the panic message.
    client: &'static str,
}

impl ClientRuntime {
    /// A runtime for `client` (e.g. "PostgreSQL client"): one thread when `threads` is 1,
    /// else a pool of `threads` workers for clients that spread their work (Parquet encoding).
    pub(super) fn new(client: &'static str, threads: usize) -> Result<Self> {
        let mut builder = match threads {
            1 => tokio::runtime::Builder::new_current_thread(),
            _ => tokio::runtime::Builder::new_multi_thread(),
        };
        if threads > 1 {
            builder.worker_threads(threads).thread_name("spate-sink");
        }
        let runtime = (builder.enable_all().build()).map_err(Error::thread(client))?;
        Ok(ClientRuntime { runtime, client })
    }

    /// Runs `work` to its end on this runtime, from a scoped thread of its own.
    pub(super) fn run<T: Send>(
        &self,
        work: impl std::future::Future<Output = Result<T>> + Send,
    ) -> Result<T> {
        std::thread::scope(|scope| {
            let runtime = &self.runtime;
            scope
                .spawn(move || runtime.block_on(work))
                .join()
                .unwrap_or_else(|_| {
                    Err(Error::Panicked {
                        what: format!("the {} thread", self.client),
                    })
                })
        })
    }
}
