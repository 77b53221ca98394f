//! Test hooks, set through environment variables, for what no random kill or real workload can
//! be relied on to produce: a crash at an exact point of an epoch's commit, and a partition
//! slower than the others. Each is read once; unset, a hook costs one load of a cached value.

use crate::checkpoint::Epoch;
use std::sync::OnceLock;
use std::time::Duration;

/// Where [`crash_point`] can abort the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Crash {
    /// `SPATE_CRASH_BEFORE_COMMIT=N`: once epoch N is finished everywhere (and, with a
    /// changelog, checkpointed there) but before its output reaches the sink.
    BeforeCommit,
    /// `SPATE_CRASH_AFTER_COMMIT=N`: right after epoch N's output reached the sink and before
    /// the epoch is marked committed, so a restart must not show it twice.
    AfterCommit,
}

impl Crash {
    fn variable(self) -> &'static str {
        match self {
            Crash::BeforeCommit => "SPATE_CRASH_BEFORE_COMMIT",
            Crash::AfterCommit => "SPATE_CRASH_AFTER_COMMIT",
        }
    }
}

/// Aborts the process when the hook `at` is set to `epoch`.
pub(crate) fn crash_point(at: Crash, epoch: Epoch) {
    static AT: OnceLock<[Option<Epoch>; 2]> = OnceLock::new();
    let epochs = AT.get_or_init(|| {
        [Crash::BeforeCommit, Crash::AfterCommit].map(|c| {
            std::env::var(c.variable())
                .ok()
                .and_then(|v| v.parse().ok())
        })
    });
    if epochs[at as usize] == Some(epoch) {
        eprintln!("{}={epoch}: aborting", at.variable());
        std::process::abort();
    }
}

/// `SPATE_RESULT_PART_BYTES=N`: partitions stage their results in parts of N bytes instead of
/// `default` (how the tests make epochs of a few lines staged in parts).
pub(crate) fn result_part_bytes(default: usize) -> usize {
    static BYTES: OnceLock<Option<usize>> = OnceLock::new();
    let bytes = BYTES.get_or_init(|| std::env::var("SPATE_RESULT_PART_BYTES").ok()?.parse().ok());
    bytes.unwrap_or(default)
}

/// `SPATE_SLOW_PARTITION=P:MS`: key partition P sleeps MS milliseconds before it handles each
/// batch of records (how the tests make one partition the bottleneck).
pub(crate) fn slow_partition(partition: u32) {
    static SLOW: OnceLock<Option<(u32, Duration)>> = OnceLock::new();
    let slow = SLOW.get_or_init(|| {
        let value = std::env::var("SPATE_SLOW_PARTITION").ok()?;
        let (p, ms) = value.split_once(':')?;
        Some((p.parse().ok()?, Duration::from_millis(ms.parse().ok()?)))
    });
    if let Some((p, pause)) = *slow {
        if p == partition {
            std::thread::sleep(pause);
        }
    }
}
