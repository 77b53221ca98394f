//! What a person at a terminal sees while a job runs: one line, refreshed about once a second,
//! with records in, the rate, the watermark, results, late records and dead letters; and a
//! summary when the job ends.

use crate::runtime::{CountsSnapshot, JobReport, LiveCounts};
use crate::time::{format_rfc3339, BEFORE_TIME, END_OF_TIME};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A thread redrawing the progress line on stderr until dropped.
pub(super) struct ProgressLine {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressLine {
    /// Starts redrawing `counts` every second.
    pub(super) fn start(counts: Arc<LiveCounts>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("spate-progress".into())
            .spawn(move || {
                let started = Instant::now();
                let mut last = (Instant::now(), counts.snapshot().records_in);
                while !stopped.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(100));
                    if last.0.elapsed() < Duration::from_secs(1) {
                        continue;
                    }
                    let now = counts.snapshot();
                    let rate = (now.records_in - last.1) as f64 / last.0.elapsed().as_secs_f64();
                    last = (Instant::now(), now.records_in);
                    let line = describe(&now, rate, started.elapsed());
                    let _ = write!(std::io::stderr(), "\r\x1b[2K{line}");
                }
                let _ = write!(std::io::stderr(), "\r\x1b[2K");
            })
            .ok();
        ProgressLine { stop, thread }
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One progress line.
fn describe(c: &CountsSnapshot, rate: f64, elapsed: Duration) -> String {
    let watermark = match c.watermark {
        BEFORE_TIME => "none yet".to_string(),
        END_OF_TIME => "end of input".to_string(),
        t => format_rfc3339(t),
    };
    format!(
        "{:>6.0}s  {} records ({:.0}/s)  watermark {watermark}  {} results  {} late  {} dead letters",
        elapsed.as_secs_f64(),
        c.records_in,
        rate,
        c.outputs,
        c.late,
        c.dead_letters
    )
}

/// The line printed when a job ends.
pub(super) fn summary(pipeline: &str, report: &JobReport) -> String {
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    format!(
        "spate: {pipeline}: {} records in {:.1} s ({:.0}/s), {} results, {} late, {} dead letters",
        report.records_in,
        secs,
        report.records_in as f64 / secs,
        report.outputs,
        report.late,
        report.dead_letters
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_what_happened() {
        let c = CountsSnapshot {
            records_in: 1_000,
            outputs: 20,
            late: 3,
            dead_letters: 1,
            watermark: 1_767_225_600_000,
        };
        let line = describe(&c, 500.0, Duration::from_secs(2));
        assert!(line.contains("1000 records (500/s)"), "{line}");
        assert!(
            line.contains("watermark 2026-01-01T00:00:00.000Z"),
            "{line}"
        );
        assert!(
            line.contains("3 late") && line.contains("1 dead letters"),
            "{line}"
        );
        let report = JobReport {
            records_in: 10,
            outputs: 2,
            elapsed: Duration::from_secs(2),
            ..JobReport::default()
        };
        assert!(summary("fraud", &report).starts_with("spate: fraud: 10 records in 2.0 s (5/s)"));
    }
}
