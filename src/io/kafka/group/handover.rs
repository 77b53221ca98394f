//! The stop handshake between a rebalance and the job that runs on the assigned partitions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How often a revocation that still waits for the running job to stop says so.
const REVOKE_WAIT: Duration = Duration::from_secs(30);

/// The stop handshake between rebalances and the job that runs on the assigned partitions.
#[derive(Debug, Default)]
pub struct Handover {
    running: Mutex<Option<Arc<AtomicBool>>>,
    stopped: Condvar,
}

impl Handover {
    /// A job starts on the current assignment; it stops when the returned flag is raised.
    pub fn begin(&self) -> Arc<AtomicBool> {
        let stop = Arc::new(AtomicBool::new(false));
        *self.running.lock().expect("handover lock") = Some(stop.clone());
        stop
    }

    /// The job has stopped: nothing of it reaches the sink any more.
    pub fn end(&self) {
        *self.running.lock().expect("handover lock") = None;
        self.stopped.notify_all();
    }

    /// Asks the running job, if any, to stop, and waits until it has. It waits as long as that
    /// takes (a broker outage can hold up the last commit): the partitions must not reach
    /// another owner while this job may still write for them.
    pub(super) fn revoke(&self) {
        let mut running = self.running.lock().expect("handover lock");
        if let Some(stop) = running.as_ref() {
            stop.store(true, Ordering::Release);
        }
        while running.is_some() {
            let (guard, timeout) = self
                .stopped
                .wait_timeout(running, REVOKE_WAIT)
                .expect("handover lock");
            running = guard;
            if timeout.timed_out() && running.is_some() {
                tracing::warn!(
                    "still waiting for the job to commit its last epoch before giving its partitions up"
                );
            }
        }
    }
}
