//! `spate status`: a running job's last epochs and health, fetched from `GET /api/progress` at
//! its metrics address and printed as a table. Exit code 0 when the job is healthy, 1 when it
//! is not (the reason is printed), 2 when no job answers (stopped, or another address).

use crate::metrics::{EpochProgress, ProgressReply};
use std::fmt::Write;
use std::process::ExitCode;

/// Prints the last `last` epochs of the job serving metrics at `addr` (as given, for messages)
/// and its health; returns the exit code.
pub(super) fn status(addr: &str, last: usize) -> ExitCode {
    let reply = fetch_progress(addr, last);
    match reply {
        Ok(reply) => {
            print!("{}", table(&reply));
            match reply.reason {
                None => ExitCode::SUCCESS,
                Some(_) => ExitCode::FAILURE,
            }
        }
        Err(why) => {
            eprintln!(
                "error: no spate job answers at {addr}: {why}; is the job running, with --metrics-addr {addr}?"
            );
            ExitCode::from(2)
        }
    }
}

/// `GET /api/progress?last=N` at `addr`, decoded.
fn fetch_progress(addr: &str, last: usize) -> Result<ProgressReply, String> {
    let path = format!("/api/progress?last={last}");
    let (code, body) = super::http::get(addr, &path)?;
    if code != 200 {
        return Err(format!("GET {path} answered {code}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("its /api/progress is not spate's ({e})"))
}

/// The health line, the epochs as a table, and the reason when unhealthy.
fn table(reply: &ProgressReply) -> String {
    let mut text = format!("pipeline {}: {}\n", reply.pipeline, reply.health);
    let lag = reply.epochs.iter().any(|e| e.consumer_lag.is_some());
    let _ = write!(
        text,
        "{:>7}  {:24}  {:>9}  {:>10}  {:>10}  {:>9}  {:24}  {:>6}  {:>6}  {:>9}",
        "epoch",
        "committed at",
        "records",
        "in/s",
        "done/s",
        "total ms",
        "watermark",
        "late",
        "dead",
        "keys"
    );
    text.push_str(if lag { "  kafka lag\n" } else { "\n" });
    for e in &reply.epochs {
        text.push_str(&row(e));
    }
    if reply.epochs.is_empty() {
        text.push_str("(no epoch committed yet)\n");
    }
    if let Some(reason) = &reply.reason {
        let _ = writeln!(text, "unhealthy: {reason}");
    }
    text
}

/// One epoch's row.
fn row(e: &EpochProgress) -> String {
    let mut line = format!(
        "{:>7}  {:24}  {:>9}  {:>10.0}  {:>10.0}  {:>9.1}  {:24}  {:>6}  {:>6}  {:>9}",
        e.epoch,
        e.committed_at,
        e.records_in,
        e.input_rows_per_second,
        e.processed_rows_per_second,
        e.duration_ms.total,
        e.watermark,
        e.late,
        e.dead_letters,
        e.state_keys
    );
    if let Some(lag) = e.consumer_lag {
        let _ = write!(line, "  {lag:>9}");
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::PhaseDurations;

    fn epoch(n: u64, lag: Option<u64>) -> EpochProgress {
        EpochProgress {
            epoch: n,
            committed_at: "2026-12-03T23:00:00.000Z".into(),
            records_in: 1_000,
            outputs: 3,
            late: 1,
            dead_letters: 2,
            input_rows_per_second: 10_000.0,
            processed_rows_per_second: 9_000.0,
            duration_ms: PhaseDurations {
                total: 12.5,
                ..PhaseDurations::default()
            },
            watermark_ms: Some(0),
            watermark: "1970-01-01T00:00:00.000Z".into(),
            watermark_lag_ms: Some(5),
            state_keys: 42,
            state_bytes: 4_200,
            consumer_lag: lag,
        }
    }

    #[test]
    fn the_table_shows_each_epoch_and_says_why_a_job_is_unhealthy() {
        let reply = ProgressReply {
            pipeline: "tx-windows".into(),
            health: "unhealthy".into(),
            reason: Some("stalled: no epoch committed for 40 s".into()),
            epochs: vec![epoch(7, Some(123)), epoch(8, Some(456))],
        };
        let text = table(&reply);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "pipeline tx-windows: unhealthy");
        assert!(lines[1].ends_with("kafka lag"), "{text}");
        assert!(lines[2]
            .trim_start()
            .starts_with("7  2026-12-03T23:00:00.000Z"));
        assert!(lines[3].ends_with("456"), "{text}");
        assert_eq!(lines[4], "unhealthy: stalled: no epoch committed for 40 s");
    }

    #[test]
    fn a_job_that_committed_nothing_yet_says_so() {
        let reply = ProgressReply {
            pipeline: "fraud".into(),
            health: "healthy".into(),
            reason: None,
            epochs: vec![],
        };
        let text = table(&reply);
        assert!(text.ends_with("(no epoch committed yet)\n"), "{text}");
        assert!(!text.contains("kafka lag"), "{text}");
    }
}
