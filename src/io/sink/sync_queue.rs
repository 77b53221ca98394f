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
//! a slower disk. Several threads, so that the
//! partitions' syncs of an epoch still overlap (the file system commits them together) and its
//! commit waits for about one sync, not eight in a row.
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
use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Threads syncing staged files: about as many as the partitions one worker hosts, whose
/// files of an epoch are staged one after another.
const THREADS: usize = 4;

/// A staged file on its way to the disk.
struct Job {
    file: File,
    partial: PathBuf,
    staged: PathBuf,
}

/// What the threads have done, by staged name.
///
/// Invariant: a staged name is in `pending`, counted once per submission (a replay may stage
/// the same file again before the first is done), until each of its files is synced and
/// renamed or its sync failed (then its error is in `failed` until a commit reports it).
#[derive(Default)]
struct Progress {
    pending: HashMap<PathBuf, usize>,
    failed: HashMap<PathBuf, (PathBuf, std::io::Error)>,
    /// A thread panicked: what it was syncing will never be done.
    stopped: bool,
}

impl Progress {
    /// Notes a submission of `staged`.
    fn submitted(&mut self, staged: &Path) {
        *self.pending.entry(staged.to_path_buf()).or_default() += 1;
    }

    /// Notes that one submission of `staged` (from `partial`) is done, with `done`'s outcome.
    fn finished(&mut self, staged: PathBuf, partial: PathBuf, done: std::io::Result<()>) {
        if let Some(count) = self.pending.get_mut(&staged) {
            *count -= 1;
            if *count == 0 {
                self.pending.remove(&staged);
            }
        }
        if let Err(e) = done {
            self.failed.insert(staged, (partial, e));
        }
    }
}

/// The progress, shared with the threads, which signal each change.
#[derive(Default)]
struct Shared {
    progress: Mutex<Progress>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        // Only the bookkeeping above is done under the lock, and it does not panic.
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Syncs and names staged files on threads of its own (see the module doc).
pub(super) struct SyncQueue {
    jobs: Option<Sender<Job>>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl SyncQueue {
    /// A queue and its threads.
    pub(super) fn start() -> Result<Self> {
        let (jobs, todo) = channel::<Job>();
        let todo = Arc::new(Mutex::new(todo));
        let shared = Arc::new(Shared::default());
        let threads = (0..THREADS)
            .map(|_| {
                let (todo, shared) = (todo.clone(), shared.clone());
                std::thread::Builder::new()
                    .name("spate-sink-sync".into())
                    .spawn(move || sync_each(&todo, &shared))
                    .map_err(Error::thread("sink sync"))
            })
            .collect::<Result<_>>()?;
        Ok(SyncQueue {
            jobs: Some(jobs),
            shared,
            threads,
        })
    }

    /// Hands `file`, written completely at `partial`, over to be synced and renamed `staged`.
    pub(super) fn submit(&self, file: File, partial: PathBuf, staged: PathBuf) -> Result<()> {
        self.shared.lock().submitted(&staged);
        let job = Job {
            file,
            partial,
            staged,
        };
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => Err(gone()),
        }
    }

    /// Waits until every file of `staged` submitted is synced under its staged name; the
    /// first that failed is the error. Files never submitted (found staged at start) are
    /// durable already.
    pub(super) fn wait<'a>(&self, staged: impl IntoIterator<Item = &'a Path>) -> Result<()> {
        let staged: Vec<&Path> = staged.into_iter().collect();
        let mut progress = self.shared.lock();
        loop {
            if let Some(path) = staged.iter().find(|p| progress.failed.contains_key(**p)) {
                let (partial, e) = progress.failed.remove(*path).expect("found above");
                return Err(Error::io("cannot stage output", partial, e));
            }
            if !staged.iter().any(|p| progress.pending.contains_key(*p)) {
                return Ok(());
            }
            if progress.stopped {
                return Err(gone());
            }
            progress = (self.shared.changed.wait(progress)).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl std::fmt::Debug for SyncQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let progress = self.shared.lock();
        (f.debug_struct("SyncQueue"))
            .field("pending", &progress.pending.len())
            .field("failed", &progress.failed.len())
            .finish()
    }
}

impl Drop for SyncQueue {
    /// Lets the threads finish what was submitted, and joins them.
    fn drop(&mut self) {
        drop(self.jobs.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A thread's loop: syncs and renames each file it takes, until the queue is dropped.
fn sync_each(todo: &Mutex<Receiver<Job>>, shared: &Shared) {
    let _panicked = OnPanic(shared);
    loop {
        let job = match todo.lock() {
            Ok(todo) => todo.recv(),
            Err(_) => return, // another thread panicked while taking a job
        };
        let Ok(job) = job else {
            return; // the queue was dropped
        };
        let done = (job.file.sync_data()).and_then(|()| fs::rename(&job.partial, &job.staged));
        shared.lock().finished(job.staged, job.partial, done);
        shared.changed.notify_all();
    }
}

/// Marks the queue stopped when a thread panics, so no commit waits for its file forever.
struct OnPanic<'a>(&'a Shared);

impl Drop for OnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().stopped = true;
            self.0.changed.notify_all();
        }
    }
}

fn gone() -> Error {
    Error::Panicked {
        what: "the file sink's sync thread".into(),
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
        queue.submit(file, partial.clone(), staged.clone()).unwrap();
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
        queue.submit(file, partial.clone(), staged.clone()).unwrap();
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
    fn a_file_staged_twice_is_pending_until_both_are_done() {
        let (staged, partial) = (PathBuf::from("s.jsonl"), PathBuf::from("s.partial"));
        let mut progress = Progress::default();
        progress.submitted(&staged);
        progress.submitted(&staged); // a replay staged it again before the first was synced
        progress.finished(staged.clone(), partial.clone(), Ok(()));
        assert!(
            progress.pending.contains_key(&staged),
            "the second is not synced yet"
        );
        progress.finished(staged.clone(), partial, Ok(()));
        assert!(progress.pending.is_empty());
    }

    #[test]
    fn a_file_never_submitted_is_not_waited_for() {
        let queue = SyncQueue::start().unwrap();
        queue.wait([Path::new("/nowhere/part.jsonl")]).unwrap();
    }
}
