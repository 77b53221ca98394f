//! Live counts of a running job for a progress display: the supervisor adds each committed
//! epoch's counts; anyone holding the [`LiveCounts`] reads them, on any thread, without locks.

use crate::time::{Millis, BEFORE_TIME};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Counts of everything committed so far (shared through `RunConfig::progress`).
#[derive(Debug)]
pub struct LiveCounts {
    records_in: AtomicU64,
    outputs: AtomicU64,
    late: AtomicU64,
    dead_letters: AtomicU64,
    watermark: AtomicI64,
}

/// What [`LiveCounts::snapshot`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountsSnapshot {
    /// Records read (dead letters excluded).
    pub records_in: u64,
    /// Results written.
    pub outputs: u64,
    /// Late records.
    pub late: u64,
    /// Malformed records.
    pub dead_letters: u64,
    /// The job's watermark ([`BEFORE_TIME`] before the first).
    pub watermark: Millis,
}

impl Default for LiveCounts {
    fn default() -> Self {
        LiveCounts {
            records_in: AtomicU64::new(0),
            outputs: AtomicU64::new(0),
            late: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            watermark: AtomicI64::new(BEFORE_TIME),
        }
    }
}

impl LiveCounts {
    /// Adds a committed epoch's counts.
    pub(crate) fn committed(&self, counts: CountsSnapshot) {
        self.records_in
            .fetch_add(counts.records_in, Ordering::Relaxed);
        self.outputs.fetch_add(counts.outputs, Ordering::Relaxed);
        self.late.fetch_add(counts.late, Ordering::Relaxed);
        self.dead_letters
            .fetch_add(counts.dead_letters, Ordering::Relaxed);
        self.watermark
            .fetch_max(counts.watermark, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> CountsSnapshot {
        CountsSnapshot {
            records_in: self.records_in.load(Ordering::Relaxed),
            outputs: self.outputs.load(Ordering::Relaxed),
            late: self.late.load(Ordering::Relaxed),
            dead_letters: self.dead_letters.load(Ordering::Relaxed),
            watermark: self.watermark.load(Ordering::Relaxed),
        }
    }
}
