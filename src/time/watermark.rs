//! The job's watermark: the minimum over key partitions (and, for a pipeline with several
//! inputs, over each input of each partition: a *channel*) of their maximum event time, minus
//! the input's delay. A partition that has had nothing to read for the idle timeout does not hold it
//! back; one whose source still has records waiting (Kafka lag) is never idle, however slowly
//! the broker serves them, so a slow fetch cannot make records late. A channel whose input was
//! read to its end (a bounded input of several) can bring nothing more and does not hold it
//! back either, at once.
//!
//! Each partition decides lateness and fires its windows on its own watermark, which follows
//! its own records (see [`crate::time::rules`]); the job's watermark never holds a partition
//! back. It is recorded with every epoch, reported as a metric, and sent with each epoch's end,
//! where it moves only a partition that is behind it: an idle one (the job's minimum leaves
//! idle partitions out, so it can pass them) or, at the end of a bounded input, every one.

use super::{Millis, BEFORE_TIME};
use std::time::{Duration, Instant};

/// Tracks per-partition event-time progress and computes the watermark at each epoch end.
#[derive(Debug)]
pub struct WatermarkTracker {
    idle_timeout: Duration,
    partitions: Vec<PartitionProgress>,
    current: Millis,
}

#[derive(Debug, Clone)]
struct PartitionProgress {
    /// How far this channel's watermark trails its newest event time.
    delay: Millis,
    max_event_time: Millis,
    last_active: Instant,
    /// The source has records for this partition it has not read yet.
    waiting: bool,
    /// Its input was read to its end: nothing more can come.
    ended: bool,
}

impl PartitionProgress {
    fn idle(&self, now: Instant, timeout: Duration) -> bool {
        self.ended || (!self.waiting && now.duration_since(self.last_active) >= timeout)
    }

    /// Its newest event time minus its delay, once it has seen a record.
    fn watermark(&self) -> Option<Millis> {
        (self.max_event_time != BEFORE_TIME).then(|| self.max_event_time.saturating_sub(self.delay))
    }
}

impl WatermarkTracker {
    /// A tracker for `partitions` partitions starting from watermark `start`.
    pub fn new(partitions: u32, delay: Millis, idle_timeout: Duration, start: Millis) -> Self {
        Self::with_channels(&vec![delay; partitions as usize], idle_timeout, start)
    }

    /// A tracker over channels with these delays (one per input and partition, input-major).
    pub fn with_channels(delays: &[Millis], idle_timeout: Duration, start: Millis) -> Self {
        let now = Instant::now();
        let channel = |&delay| PartitionProgress {
            delay,
            max_event_time: BEFORE_TIME,
            last_active: now,
            waiting: false,
            ended: false,
        };
        WatermarkTracker {
            idle_timeout,
            partitions: delays.iter().map(channel).collect(),
            current: start,
        }
    }

    /// Records a partition's progress at an epoch end: whether it had records in the epoch, and
    /// whether its source still has records waiting for it (such a partition is behind, never
    /// idle).
    pub fn observe(
        &mut self,
        partition: u32,
        max_event_time: Millis,
        had_records: bool,
        waiting: bool,
    ) {
        let p = &mut self.partitions[partition as usize];
        p.max_event_time = p.max_event_time.max(max_event_time);
        p.waiting = waiting;
        if had_records {
            p.last_active = Instant::now();
        }
    }

    /// Notes that a channel's input was read to its end: from now on it is idle.
    pub fn ended(&mut self, channel: u32) {
        self.partitions[channel as usize].ended = true;
    }

    /// Computes the watermark after an epoch. It never goes backwards. Idle partitions are left
    /// out of the minimum; when every partition is idle the most advanced one decides, so a
    /// quiet stream still closes its windows.
    pub fn advance(&mut self) -> Millis {
        let now = Instant::now();
        let mut active = self
            .partitions
            .iter()
            .filter(|p| !p.idle(now, self.idle_timeout));
        let basis = match active.clone().next() {
            // A channel that has seen nothing holds the watermark where it is.
            Some(_) => active.try_fold(Millis::MAX, |min, p| p.watermark().map(|w| min.min(w))),
            None => self
                .partitions
                .iter()
                .filter_map(PartitionProgress::watermark)
                .max(),
        };
        if let Some(t) = basis {
            self.current = self.current.max(t);
        }
        self.current
    }

    /// Sets the watermark (a replayed epoch uses its recorded value; end of input uses
    /// [`END_OF_TIME`](super::END_OF_TIME)).
    pub fn set(&mut self, watermark: Millis) {
        self.current = self.current.max(watermark);
    }

    /// The current watermark.
    pub fn current(&self) -> Millis {
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_over_partitions_minus_delay() {
        let mut w = WatermarkTracker::new(2, 10, Duration::from_secs(60), BEFORE_TIME);
        w.observe(0, 100, true, false);
        assert_eq!(w.advance(), BEFORE_TIME, "partition 1 has seen nothing yet");
        w.observe(1, 50, true, false);
        assert_eq!(w.advance(), 40);
        w.observe(1, 30, true, false);
        assert_eq!(w.advance(), 40, "never goes backwards");
        w.observe(1, 200, true, false);
        assert_eq!(w.advance(), 90);
    }

    #[test]
    fn idle_partition_does_not_hold_back() {
        let mut w = WatermarkTracker::new(2, 10, Duration::ZERO, BEFORE_TIME);
        w.observe(0, 100, true, false);
        // With a zero idle timeout every partition is idle at once: the most advanced decides.
        assert_eq!(w.advance(), 90);
    }

    #[test]
    fn a_channel_whose_input_ended_does_not_hold_back_whatever_the_idle_timeout() {
        let mut w = WatermarkTracker::new(2, 10, Duration::from_secs(3600), BEFORE_TIME);
        w.observe(0, 100, true, false);
        w.observe(1, 0, true, false);
        assert_eq!(w.advance(), -10, "the table channel holds it back");
        w.ended(1);
        w.observe(0, 200, true, false);
        assert_eq!(
            w.advance(),
            190,
            "read to its end, it cannot bring anything more"
        );
    }

    #[test]
    fn a_partition_with_records_waiting_is_never_idle() {
        let mut w = WatermarkTracker::new(2, 10, Duration::ZERO, BEFORE_TIME);
        w.observe(0, 100, true, false);
        w.observe(1, 50, false, true);
        assert_eq!(
            w.advance(),
            40,
            "partition 1 is slow, not idle: it holds the watermark"
        );
        w.observe(1, 50, false, false);
        assert_eq!(w.advance(), 90, "once read to its end it is idle");
    }
}
