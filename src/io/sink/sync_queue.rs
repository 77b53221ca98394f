//! The file sink's sync queue: staged output files made durable on threads of the sink's own,
//! so a key partition hands its epoch's file over and goes on with the next epoch instead of
//! waiting for the disk.
//!
//! A partition writes its staged file as `….partial` and [submits](SyncQueue::submit) it. One
//! of the queue's threads syncs the file's data and only then renames it to its staged name, so
//! the staging folder still only ever holds complete, durable files (what recovery trusts). An
//! epoch's commit [waits](SyncQueue::wait) for its files before renaming them into place, so a
//! committed file is always a durable one.
//!
//! Why threads: a data sync takes about a millisecond on a virtual disk and more on network
//! block storage, and every partition stages a file per epoch. Synced where they were written,
//! eight partitions on two workers waited for eight syncs an epoch: up to a twentieth of
//! `fraud-score`'s time from a file on this project's machines (README, Online models), more on
//! a slower disk. The syncs run on tokio's blocking pool, up to [`THREADS`] at once, so that
//! the partitions' syncs of an epoch still overlap (the file system commits them together) and
//! its commit waits for about one sync, not eight in a row.
//!
//! ```no_run
//! # use spate::io::sink::FileSink;
//! # use spate::io::sink::{EpochSink, EpochStats, OutputStream};
//! # fn main() -> spate::Result<()> {
//! let sink = FileSink::open(std::path::Path::new("out"), false)?;
//! // A partition stages its file; its sync runs on one of the queue's threads.
//! let staged = sink.stage(1, OutputStream::Results, "p000", b"{\"n\":1}\n".to_vec())?;
//! // The commit waits for the sync, then renames the file into place.
//! sink.commit(1, staged.into_iter().collect(), &EpochStats::default())?;
//! # Ok(())
//! # }
//! ```

use crate::{Error, Result};
use futures::executor::block_on;
use futures::future::join_all;
use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio::task::JoinHandle;

/// Syncs at once at most: about as many as the partitions one worker hosts, whose files of an
/// epoch are staged one after another.
const THREADS: usize = 4;

/// One submission's sync: its `.partial` file (what an error names) and its task.
type Sync = (PathBuf, JoinHandle<std::io::Result<()>>);

/// Syncs and names staged files on a blocking pool of its own (see the module doc).
#[derive(Debug)]
pub(super) struct SyncQueue {
    runtime: tokio::runtime::Runtime,
    /// The syncs not yet waited for, by staged name: a replay may stage the same file again
    /// before the first sync of it is done, and a commit waits for both.
    pending: Mutex<HashMap<PathBuf, Vec<Sync>>>,
}

impl SyncQueue {
    /// A queue and its (idle until used) blocking pool.
    pub(super) fn start() -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(THREADS)
            .thread_name("spate-sink-sync")
            .build()
            .map_err(Error::thread("sink sync"))?;
        Ok(SyncQueue {
            runtime,
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// Hands `file`, written completely at `partial`, over to be synced and renamed `staged`.
    pub(super) fn submit(&self, file: File, partial: PathBuf, staged: PathBuf) {
        let (from, to) = (partial.clone(), staged.clone());
        let task = self
            .runtime
            .spawn_blocking(move || file.sync_data().and_then(|()| fs::rename(from, to)));
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.entry(staged).or_default().push((partial, task));
    }

    /// Waits until every file of `staged` submitted is synced under its staged name; the
    /// first that failed is the error. Files never submitted (found staged at start) are
    /// durable already.
    pub(super) fn wait<'a>(&self, staged: impl IntoIterator<Item = &'a Path>) -> Result<()> {
        let syncs: Vec<Sync> = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            (staged.into_iter())
                .filter_map(|path| pending.remove(path))
                .flatten()
                .collect()
        };
        let (partials, tasks): (Vec<PathBuf>, Vec<_>) = syncs.into_iter().unzip();
        for (partial, done) in partials.into_iter().zip(block_on(join_all(tasks))) {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(Error::io("cannot stage output", partial, e)),
                Err(_) => {
                    return Err(Error::Panicked {
                        what: "the file sink's sync of a staged file".into(),
                    })
                }
            }
        }
        Ok(())
    }
}

impl Drop for SyncQueue {
    /// Finishes every sync submitted (a runtime shutting down drops the tasks not started yet),
    /// so that what a sink staged is in its staging folder once the sink is gone.
    fn drop(&mut self) {
        let pending = self.pending.get_mut().unwrap_or_else(|e| e.into_inner());
        let tasks = pending
            .drain()
            .flat_map(|(_, syncs)| syncs)
            .map(|(_, task)| task);
        block_on(join_all(tasks));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn staged_file(dir: &Path, name: &str) -> (File, PathBuf, PathBuf) {
        let partial = dir.join(format!("{name}.partial"));
        let mut file = File::create(&partial).unwrap();
        file.write_all(b"{}\n").unwrap();
        (file, partial, dir.join(format!("{name}.jsonl")))
    }

    #[test]
    fn a_file_is_named_staged_once_synced_and_wait_returns_after_it() {
        let tmp = tempfile::tempdir().unwrap();
        let queue = SyncQueue::start().unwrap();
        let (file, partial, staged) = staged_file(tmp.path(), "a");
        queue.submit(file, partial.clone(), staged.clone());
        queue.wait([staged.as_path()]).unwrap();
        assert!(staged.exists() && !partial.exists());
        assert_eq!(fs::read(&staged).unwrap(), b"{}\n");
    }

    #[test]
    fn a_failed_sync_or_rename_is_the_commits_error_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let queue = SyncQueue::start().unwrap();
        let (file, partial, _) = staged_file(tmp.path(), "b");
        // Its staged name is in a folder that does not exist: the rename fails.
        let staged = tmp.path().join("gone").join("b.jsonl");
        queue.submit(file, partial.clone(), staged.clone());
        let err = queue.wait([staged.as_path()]).unwrap_err().to_string();
        assert!(
            err.contains("cannot stage output") && err.contains("b.partial"),
            "{err}"
        );
        assert!(
            partial.exists(),
            "the partial file is left for recovery to drop"
        );
    }

    #[test]
    fn a_file_staged_twice_is_waited_for_until_both_are_synced() {
        let tmp = tempfile::tempdir().unwrap();
        let queue = SyncQueue::start().unwrap();
        let (first, first_partial, staged) = staged_file(tmp.path(), "c");
        let (second, second_partial, _) = staged_file(tmp.path(), "c-again");
        queue.submit(first, first_partial.clone(), staged.clone());
        queue.submit(second, second_partial.clone(), staged.clone());
        assert_eq!(
            queue.pending.lock().unwrap()[&staged].len(),
            2,
            "both are awaited"
        );
        queue.wait([staged.as_path()]).unwrap();
        assert!(!first_partial.exists() && !second_partial.exists());
        assert!(queue.pending.lock().unwrap().is_empty());
    }

    #[test]
    fn a_file_never_submitted_is_not_waited_for() {
        let queue = SyncQueue::start().unwrap();
        queue.wait([Path::new("/nowhere/part.jsonl")]).unwrap();
    }
}
