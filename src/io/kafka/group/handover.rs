//! The handshake between the group's rebalances and the job that runs on the assigned
//! partitions: which assignment a job may start on, and when a revoked one has stopped.
//!
//! The rebalance callbacks run on the group thread, the jobs on the member's main thread. Two
//! rules keep a partition from having two owners:
//!
//! - **Only the newest assignment starts a job, and only while it stands.** An assignment
//!   replaces the one offered before it; a revocation withdraws it. A member that was assigned
//!   all partitions and, before its job started, a share of them after another member joined,
//!   starts on the share: an assignment queued behind another (as a channel would keep it)
//!   would run a job on partitions the group had already given to the other member.
//! - **A revocation waits for the job it stopped, and no job starts meanwhile.** Taking an
//!   assignment and registering the job happen under one lock, and a revocation withdraws the
//!   offer before it waits, so the job it waits for is the one it stopped.
//!
//! ```
//! use spate::io::kafka::group::Handover;
//! use std::sync::atomic::Ordering;
//! use std::time::Duration;
//!
//! let handover = Handover::default();
//! handover.offer(vec![0, 1, 2, 3]); // the group's first assignment
//! handover.offer(vec![2, 3]); // a second member joined before a job started
//! let job = handover.take(Duration::ZERO).expect("an assignment stands");
//! assert_eq!(job.ids, [2, 3]);
//! assert!(!job.stop.load(Ordering::Acquire));
//! handover.end(); // the job stopped (a revocation would have raised `job.stop`)
//! assert!(handover.take(Duration::ZERO).is_none(), "each assignment starts one job");
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often a revocation that still waits for the running job to stop says so.
const REVOKE_WAIT: Duration = Duration::from_secs(30);

/// The handshake between rebalances and the job on the assigned partitions (see the module
/// doc). Invariant: while a revocation waits, nothing is offered, so no job starts.
#[derive(Debug, Default)]
pub struct Handover {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// The newest assignment, until a job takes it or a revocation withdraws it.
    offered: Option<Vec<u32>>,
    /// The running job's stop flag.
    running: Option<Arc<AtomicBool>>,
}

/// An assignment a job starts on.
#[derive(Debug)]
pub struct Taken {
    /// The topic partitions, ascending (empty: this member holds none).
    pub ids: Vec<u32>,
    /// Raised when a rebalance revokes them: the job stops at an epoch boundary.
    pub stop: Arc<AtomicBool>,
}

impl Handover {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("handover lock")
    }

    /// The group assigned `ids` (ascending): it replaces any assignment not yet taken.
    pub fn offer(&self, ids: Vec<u32>) {
        self.state().offered = Some(ids);
        self.changed.notify_all();
    }

    /// Takes the standing assignment, waiting up to `wait` for one, and registers the job that
    /// runs on it (unless it is empty) until [`end`](Self::end).
    pub fn take(&self, wait: Duration) -> Option<Taken> {
        let deadline = Instant::now() + wait;
        let mut state = self.state();
        loop {
            if let Some(ids) = state.offered.take() {
                let stop = Arc::new(AtomicBool::new(false));
                if !ids.is_empty() {
                    state.running = Some(stop.clone());
                }
                return Some(Taken { ids, stop });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .expect("handover lock")
                .0;
        }
    }

    /// The job has stopped: nothing of it reaches the sink any more.
    pub fn end(&self) {
        self.state().running = None;
        self.changed.notify_all();
    }

    /// Withdraws the standing assignment, asks the running job, if any, to stop, and waits
    /// until it has. It waits as long as that takes (a broker outage can hold up the last
    /// commit): the partitions must not reach another owner while this job may still write
    /// for them.
    pub(super) fn revoke(&self) {
        let mut state = self.state();
        state.offered = None;
        if let Some(stop) = state.running.as_ref() {
            stop.store(true, Ordering::Release);
        }
        while state.running.is_some() {
            let (guard, timeout) = self
                .changed
                .wait_timeout(state, REVOKE_WAIT)
                .expect("handover lock");
            state = guard;
            if timeout.timed_out() && state.running.is_some() {
                tracing::warn!(
                    "still waiting for the job to commit its last epoch before giving its partitions up"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::ZERO;

    #[test]
    fn a_revocation_withdraws_an_assignment_no_job_took() {
        let handover = Handover::default();
        handover.offer(vec![0, 1]);
        handover.revoke();
        assert!(handover.take(NOW).is_none());
        handover.offer(vec![1]);
        assert_eq!(handover.take(NOW).unwrap().ids, [1]);
    }

    /// The sequence that ran a job on partitions the group had given away, then hung: a job
    /// started on the first of two queued assignments; the revocation of the second stopped it,
    /// and a job started on the second while the revocation waited, for that job now.
    #[test]
    fn a_revocation_waits_for_the_job_it_stopped_and_no_stale_assignment_starts() {
        let handover = Arc::new(Handover::default());
        handover.offer(vec![0, 1, 2, 3]);
        handover.offer(vec![2, 3]);
        let job = handover.take(NOW).unwrap();
        assert_eq!(job.ids, [2, 3], "the newest assignment");
        let revoking = {
            let handover = handover.clone();
            std::thread::spawn(move || handover.revoke())
        };
        while !job.stop.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        assert!(!revoking.is_finished(), "the job has not stopped yet");
        handover.end();
        assert!(
            handover.take(Duration::from_millis(50)).is_none(),
            "nothing stands once revoked"
        );
        revoking.join().unwrap();
    }

    #[test]
    fn an_empty_assignment_registers_no_job() {
        let handover = Handover::default();
        handover.offer(Vec::new());
        assert!(handover.take(NOW).unwrap().ids.is_empty());
        handover.revoke(); // returns at once: nothing runs
    }
}
