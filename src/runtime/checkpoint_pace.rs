//! When the next checkpoint is due: `--checkpoint-interval` after the last one at the
//! earliest, and later when checkpoints are expensive, so that they never take more than a
//! tenth of the workers' time.
//!
//! A checkpoint writes every state bucket that changed since the last one. With a large state
//! whose keys are all touched between two checkpoints (a million users' open windows), that is
//! the whole state each time: at a fixed 1 s interval such a job spent most of its time
//! checkpointing (`tx-windows` over a million keys: 206,000 events/s with a 1 s interval,
//! 567,000 with 10 s). Flink bounds the same cost with a minimum pause between checkpoints;
//! spate sets the pause from what the last checkpoint cost:
//!
//! ```text
//! cost   = worker time of the newest checkpoint (prepare + write, all partitions) ÷ workers
//! due   ⇔ time since the last checkpoint ≥ max(--checkpoint-interval, cost × (1 ÷ SHARE − 1))
//! ```
//!
//! A restart replays the epochs since the last checkpoint, so a longer pause means a longer
//! replay, which is bounded by the same rule: about nine times what writing the state costs.

use crate::checkpoint::Epoch;
use std::time::{Duration, Instant};

/// The largest share of the workers' time checkpoints may take.
pub(crate) const SHARE: f64 = 0.1;

/// The supervisor's clock for checkpoints.
#[derive(Debug)]
pub(crate) struct CheckpointPace {
    /// `--checkpoint-interval`: the shortest pause.
    interval: Duration,
    /// Worker threads the partitions share: their checkpoints run this many at once.
    workers: u32,
    /// When the last checkpoint was asked for.
    last: Instant,
    /// Worker time of the last checkpoint every partition reported.
    complete: Duration,
    /// The newest checkpoint being reported: its epoch and the worker time reported so far.
    newest: (Epoch, Duration),
}

impl CheckpointPace {
    /// A pace that asks for the first checkpoint `interval` from now.
    pub(crate) fn new(interval: Duration, workers: u32) -> Self {
        CheckpointPace {
            interval,
            workers: workers.max(1),
            last: Instant::now(),
            complete: Duration::ZERO,
            newest: (0, Duration::ZERO),
        }
    }

    /// The pause the next checkpoint waits for after the last one.
    pub(crate) fn pause(&self) -> Duration {
        let cost = self.complete.max(self.newest.1) / self.workers;
        self.interval.max(cost.mul_f64(1.0 / SHARE - 1.0))
    }

    /// Whether a checkpoint is due now.
    pub(crate) fn due(&self) -> bool {
        self.last.elapsed() >= self.pause()
    }

    /// A checkpoint was asked for now.
    pub(crate) fn started(&mut self) {
        self.last = Instant::now();
    }

    /// A partition's checkpoint of `epoch` took `spent` of its worker's time.
    pub(crate) fn reported(&mut self, epoch: Epoch, spent: Duration) {
        if epoch > self.newest.0 {
            if self.newest.0 > 0 {
                self.complete = self.newest.1;
            }
            self.newest = (epoch, Duration::ZERO);
        }
        if epoch == self.newest.0 {
            self.newest.1 += spent;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn cheap_checkpoints_keep_the_interval() {
        let mut pace = CheckpointPace::new(ms(1000), 2);
        for _ in 0..8 {
            pace.reported(5, ms(2));
        }
        assert_eq!(pace.pause(), ms(1000));
    }

    #[test]
    fn an_expensive_checkpoint_stretches_the_pause_to_keep_its_share() {
        let mut pace = CheckpointPace::new(ms(1000), 2);
        // Eight partitions of 100 ms each on two workers: 400 ms of wall time, so the next
        // checkpoint waits nine times that and checkpoints take a tenth of the time.
        for _ in 0..8 {
            pace.reported(5, ms(100));
        }
        assert_eq!(pace.pause(), ms(3600));
        assert!(!pace.due());
    }

    #[test]
    fn the_pause_follows_the_newest_complete_checkpoint() {
        let mut pace = CheckpointPace::new(ms(1000), 1);
        pace.reported(5, ms(500));
        pace.reported(5, ms(500));
        assert_eq!(pace.pause(), ms(9000));
        // The next checkpoint is cheaper: while it is being reported the larger one counts,
        // once a later one starts it is the last complete one.
        pace.reported(9, ms(10));
        assert_eq!(pace.pause(), ms(9000));
        pace.reported(12, ms(10));
        assert_eq!(pace.pause(), ms(1000));
        // Reports of an older checkpoint arriving late change nothing.
        pace.reported(9, ms(10_000));
        assert_eq!(pace.pause(), ms(1000));
    }

    #[test]
    fn a_checkpoint_is_due_once_the_pause_has_passed() {
        let mut pace = CheckpointPace::new(Duration::ZERO, 1);
        assert!(pace.due());
        pace.started();
        assert!(pace.due());
    }
}
