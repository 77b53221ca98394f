//! What a running job did in its last epochs and whether it is healthy: the data behind
//! `GET /api/progress`, `GET /health` and `spate status`.
//!
//! The supervisor adds one [`EpochProgress`] per committed epoch (the last [`KEPT_EPOCHS`]
//! are kept, like Spark's `recentProgress`); partitions report restarts and state sizes. A
//! job is **unhealthy** when one of these holds, checked in this order:
//!
//! - it failed or is stopping;
//! - a key partition restarted from its checkpoint in the last [`RESTART_WINDOW`];
//! - no epoch committed for longer than the job's stall limit (`--unhealthy-after`, 30 s by
//!   default; an idle job still commits an empty epoch at every trigger interval, and a
//!   consumer-group member waiting for partitions is not stalled);
//! - it is falling behind its Kafka input: the consumer lag grew at every one of the last
//!   [`GROWING_EPOCHS`] epochs.

use crate::io::sink::EpochStats;
use crate::time::{format_rfc3339, now_ms, Millis, BEFORE_TIME, END_OF_TIME};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many committed epochs the job keeps for `/api/progress`.
pub const KEPT_EPOCHS: usize = 100;

/// How long after a partition restart the job reports itself unhealthy.
pub const RESTART_WINDOW: Duration = Duration::from_secs(30);

/// Over how many consecutive epochs a growing consumer lag means "falling behind".
pub const GROWING_EPOCHS: usize = 10;

/// One committed epoch, as `/api/progress` lists it (the fields of Spark's
/// `StreamingQueryProgress` that spate has).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochProgress {
    /// The epoch (micro-batch) number.
    pub epoch: u64,
    /// When it committed, RFC 3339 UTC.
    pub committed_at: String,
    /// Records read in the epoch (before filtering; dead letters included).
    pub records_in: u64,
    /// Results committed to the sink.
    pub outputs: u64,
    /// Records behind the watermark, sent to the late output.
    pub late: u64,
    /// Malformed records sent to the dead-letter output.
    pub dead_letters: u64,
    /// `records_in` over the time the source read the epoch (from the previous cut to this
    /// one).
    pub input_rows_per_second: f64,
    /// `records_in` over the time from the previous epoch's commit to this one's.
    pub processed_rows_per_second: f64,
    /// How long each step of the epoch took.
    pub duration_ms: PhaseDurations,
    /// The watermark after the epoch: epoch milliseconds, `null` before the first event and
    /// after the last (the end of a bounded input).
    pub watermark_ms: Option<Millis>,
    /// The watermark as RFC 3339, or `-inf` / `+inf`.
    pub watermark: String,
    /// Wall-clock time minus the watermark, when there is one.
    pub watermark_lag_ms: Option<Millis>,
    /// Keys holding state, summed over the key partitions' last reports.
    pub state_keys: u64,
    /// Bytes of state stored as of each partition's last checkpoint, summed.
    pub state_bytes: u64,
    /// Kafka: records in the source partitions not yet read at the cut.
    pub consumer_lag: Option<u64>,
}

/// The steps of one epoch (see the runtime's epoch protocol), in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseDurations {
    /// Reading: from the previous epoch's cut to this one's (partitions process batches as
    /// they arrive).
    pub read: f64,
    /// From the cut until every partition processed its records and the epoch's record was
    /// written (steps 2 and 3).
    pub process: f64,
    /// Sealing: timers, closing windows, staging outputs and checkpoints (step 4).
    pub seal: f64,
    /// Waiting for the Kafka changelog to acknowledge the checkpoints (0 without one).
    pub changelog_flush: f64,
    /// Committing the outputs at the sink (step 5).
    pub commit: f64,
    /// From the cut to the commit.
    pub total: f64,
}

/// The instants of one epoch the supervisor measures its [`PhaseDurations`] from.
#[derive(Debug, Clone, Copy)]
pub struct EpochTimes {
    /// The previous epoch's cut (or the job's start).
    pub previous_cut: Instant,
    /// The supervisor received the cut.
    pub cut: Instant,
    /// The epoch's record was written and the partitions told to seal it.
    pub recorded: Instant,
    /// Every partition had staged the epoch.
    pub staged: Instant,
    /// The changelog acknowledged the epoch's checkpoints.
    pub flushed: Instant,
    /// The sink committed the epoch.
    pub committed: Instant,
}

impl PhaseDurations {
    /// The durations between `t`'s instants.
    pub fn between(t: &EpochTimes) -> Self {
        let ms =
            |from: Instant, to: Instant| to.saturating_duration_since(from).as_secs_f64() * 1e3;
        PhaseDurations {
            read: ms(t.previous_cut, t.cut),
            process: ms(t.cut, t.recorded),
            seal: ms(t.recorded, t.staged),
            changelog_flush: ms(t.staged, t.flushed),
            commit: ms(t.flushed, t.committed),
            total: ms(t.cut, t.committed),
        }
    }
}

/// Whether a job is healthy, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Committing epochs, no recent restart, keeping up.
    Healthy,
    /// The reason, one line (`failed: …`, `stopping`, `restarting: …`, `stalled: …`,
    /// `falling behind: …`).
    Unhealthy(String),
}

/// The job's recent epochs and the facts its health is judged on; shared by the supervisor,
/// the partitions and the HTTP endpoint. Invariant: `epochs` holds at most [`KEPT_EPOCHS`]
/// entries, oldest first, in commit (= epoch) order.
#[derive(Debug)]
pub struct JobStatus {
    stall_limit: Duration,
    inner: Mutex<Inner>,
    /// The pipeline's topology (`spate describe`), for the status page.
    description: Mutex<String>,
}

#[derive(Debug)]
struct Inner {
    started: Instant,
    epochs: VecDeque<EpochProgress>,
    last_commit: Option<Instant>,
    /// The last commit, or when the job started or last had nothing to run.
    quiet_since: Instant,
    /// Each partition's last reported (keys, stored bytes).
    state: BTreeMap<u32, (u64, u64)>,
    /// Restarts in the last [`RESTART_WINDOW`]: (when, partition).
    restarts: VecDeque<(Instant, u32)>,
    stopping: bool,
    failed: Option<String>,
}

impl JobStatus {
    /// A job that started now and is unhealthy once no epoch committed for `stall_limit`.
    pub fn new(stall_limit: Duration) -> Self {
        JobStatus {
            stall_limit,
            description: Mutex::default(),
            inner: Mutex::new(Inner {
                started: Instant::now(),
                epochs: VecDeque::new(),
                last_commit: None,
                quiet_since: Instant::now(),
                state: BTreeMap::new(),
                restarts: VecDeque::new(),
                stopping: false,
                failed: None,
            }),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind: keep serving it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the pipeline's topology, as `spate describe` prints it.
    pub fn set_description(&self, text: String) {
        *self.description.lock().unwrap_or_else(|e| e.into_inner()) = text;
    }

    /// The pipeline's topology.
    pub fn description(&self) -> String {
        self.description
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Adds committed `epoch` with its counts, the Kafka consumer lag at its cut (summed over
    /// the source partitions) and its step times.
    pub fn committed(
        &self,
        epoch: u64,
        counts: &EpochStats,
        consumer_lag: Option<u64>,
        times: &EpochTimes,
    ) {
        let mut inner = self.inner();
        let durations = PhaseDurations::between(times);
        let since_commit = inner.last_commit.unwrap_or(inner.started);
        let per_second = |seconds: f64| match seconds > 0.0 {
            true => counts.records_in as f64 / seconds,
            false => 0.0,
        };
        let processed = times.committed.saturating_duration_since(since_commit);
        let (state_keys, state_bytes) = inner
            .state
            .values()
            .fold((0, 0), |(k, b), (keys, bytes)| (k + keys, b + bytes));
        let watermark = counts.watermark;
        let known = (watermark != BEFORE_TIME && watermark != END_OF_TIME).then_some(watermark);
        let progress = EpochProgress {
            epoch,
            committed_at: format_rfc3339(now_ms()),
            records_in: counts.records_in,
            outputs: counts.outputs,
            late: counts.late,
            dead_letters: counts.dead_letters,
            input_rows_per_second: per_second(durations.read / 1e3),
            processed_rows_per_second: per_second(processed.as_secs_f64()),
            duration_ms: durations,
            watermark_ms: known,
            watermark: match watermark {
                BEFORE_TIME => "-inf".into(),
                END_OF_TIME => "+inf".into(),
                w => format_rfc3339(w),
            },
            watermark_lag_ms: known.map(|w| now_ms() - w),
            state_keys,
            state_bytes,
            consumer_lag,
        };
        if inner.epochs.len() == KEPT_EPOCHS {
            inner.epochs.pop_front();
        }
        inner.epochs.push_back(progress);
        inner.last_commit = Some(times.committed);
        inner.quiet_since = times.committed;
    }

    /// Notes a partition's keys and stored bytes.
    pub fn state(&self, partition: u32, keys: u64, bytes: u64) {
        self.inner().state.insert(partition, (keys, bytes));
    }

    /// Notes that `partition` restarted from its checkpoint.
    pub fn restarted(&self, partition: u32) {
        self.inner().restarts.push_back((Instant::now(), partition));
    }

    /// Notes that the instance has nothing to run right now (a consumer-group member between
    /// assignments, or without partitions): not a stall, so the stall clock starts again.
    pub fn idle(&self) {
        self.inner().quiet_since = Instant::now();
    }

    /// Notes that the job is finishing its last epoch after a stop request.
    pub fn stopping(&self) {
        self.inner().stopping = true;
    }

    /// Notes that the job failed with `error`.
    pub fn failed(&self, error: &str) {
        self.inner().failed = Some(error.to_string());
    }

    /// The last `last` committed epochs, oldest first.
    pub fn recent(&self, last: usize) -> Vec<EpochProgress> {
        let inner = self.inner();
        let skip = inner.epochs.len().saturating_sub(last);
        inner.epochs.iter().skip(skip).cloned().collect()
    }

    /// The job's health now.
    pub fn health(&self) -> Health {
        self.health_at(Instant::now())
    }

    /// The job's health at `now` (see the module doc for the rules).
    fn health_at(&self, now: Instant) -> Health {
        let mut inner = self.inner();
        if let Some(error) = &inner.failed {
            return Health::Unhealthy(format!("failed: {error}"));
        }
        if inner.stopping {
            return Health::Unhealthy(
                "stopping: finishing the last epoch after a stop request".into(),
            );
        }
        while inner
            .restarts
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > RESTART_WINDOW)
        {
            inner.restarts.pop_front();
        }
        if let Some(&(at, partition)) = inner.restarts.back() {
            let ago = now.saturating_duration_since(at).as_secs();
            return Health::Unhealthy(format!(
                "restarting: key partition {partition} restarted from its checkpoint {ago} s ago ({} restarts in the last {} s)",
                inner.restarts.len(),
                RESTART_WINDOW.as_secs()
            ));
        }
        let quiet = now.saturating_duration_since(inner.quiet_since);
        if quiet > self.stall_limit {
            return Health::Unhealthy(format!(
                "stalled: no epoch committed for {:.0} s (limit --unhealthy-after {})",
                quiet.as_secs_f64(),
                humantime::format_duration(self.stall_limit)
            ));
        }
        match growing_lag(&inner.epochs) {
            Some((from, to)) => Health::Unhealthy(format!(
                "falling behind: the Kafka consumer lag grew at each of the last {GROWING_EPOCHS} epochs, from {from} to {to} records"
            )),
            None => Health::Healthy,
        }
    }
}

/// The lag before and after the last [`GROWING_EPOCHS`] epochs when it grew at each of them.
fn growing_lag(epochs: &VecDeque<EpochProgress>) -> Option<(u64, u64)> {
    let lags: Vec<u64> = epochs
        .iter()
        .rev()
        .take(GROWING_EPOCHS + 1)
        .map(|e| e.consumer_lag)
        .collect::<Option<_>>()?;
    let grew = lags.len() == GROWING_EPOCHS + 1 && lags.windows(2).all(|w| w[0] > w[1]);
    grew.then(|| (lags[GROWING_EPOCHS], lags[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(at: Instant) -> EpochTimes {
        let ms = |n| at + Duration::from_millis(n);
        EpochTimes {
            previous_cut: at,
            cut: ms(100),
            recorded: ms(110),
            staged: ms(130),
            flushed: ms(130),
            committed: ms(135),
        }
    }

    fn commit(status: &JobStatus, epoch: u64, lag: Option<u64>) -> Instant {
        let at = Instant::now();
        let counts = EpochStats {
            records_in: 1_000,
            watermark: 1_700_000_000_000,
            ..EpochStats::default()
        };
        status.committed(epoch, &counts, lag, &times(at));
        at
    }

    #[test]
    fn an_epoch_reports_its_steps_rates_and_the_partitions_state() {
        let status = JobStatus::new(Duration::from_secs(30));
        status.state(0, 10, 1_000);
        status.state(1, 5, 500);
        status.state(0, 12, 1_200);
        commit(&status, 7, None);
        let [e] = &status.recent(10)[..] else {
            panic!("one epoch")
        };
        assert_eq!((e.epoch, e.records_in), (7, 1_000));
        assert_eq!((e.state_keys, e.state_bytes), (17, 1_700));
        let d = &e.duration_ms;
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(close(d.read, 100.0) && close(d.process, 10.0) && close(d.seal, 20.0));
        assert!(close(d.changelog_flush, 0.0) && close(d.commit, 5.0) && close(d.total, 35.0));
        assert!(close(e.input_rows_per_second, 10_000.0), "{e:?}");
        assert_eq!(e.watermark, "2023-11-14T22:13:20.000Z");
        assert_eq!(e.watermark_ms, Some(1_700_000_000_000));
    }

    #[test]
    fn only_the_last_epochs_are_kept_oldest_first() {
        let status = JobStatus::new(Duration::from_secs(30));
        for epoch in 1..=KEPT_EPOCHS as u64 + 5 {
            commit(&status, epoch, None);
        }
        let all = status.recent(usize::MAX);
        assert_eq!(all.len(), KEPT_EPOCHS);
        assert_eq!(all[0].epoch, 6);
        let last: Vec<u64> = status.recent(3).iter().map(|e| e.epoch).collect();
        assert_eq!(last, [103, 104, 105]);
    }

    #[test]
    fn a_job_committing_epochs_is_healthy_until_it_stalls() {
        let status = JobStatus::new(Duration::from_secs(5));
        let at = commit(&status, 1, None);
        assert_eq!(
            status.health_at(at + Duration::from_secs(4)),
            Health::Healthy
        );
        let Health::Unhealthy(why) = status.health_at(at + Duration::from_secs(6)) else {
            panic!("stalled")
        };
        assert!(why.starts_with("stalled: no epoch committed for"), "{why}");
        assert!(why.contains("--unhealthy-after 5s"), "{why}");
    }

    #[test]
    fn a_restart_is_unhealthy_for_the_restart_window() {
        let status = JobStatus::new(Duration::from_secs(3_600));
        status.restarted(3);
        let now = Instant::now();
        let Health::Unhealthy(why) = status.health_at(now) else {
            panic!("restarting")
        };
        assert!(why.starts_with("restarting: key partition 3"), "{why}");
        let later = now + RESTART_WINDOW + Duration::from_secs(1);
        assert_eq!(status.health_at(later), Health::Healthy);
    }

    #[test]
    fn a_lag_growing_at_every_recent_epoch_is_falling_behind() {
        let status = JobStatus::new(Duration::from_secs(3_600));
        for epoch in 0..GROWING_EPOCHS as u64 {
            commit(&status, epoch, Some(100 + epoch));
        }
        assert_eq!(status.health(), Health::Healthy, "one sample short");
        commit(&status, 10, Some(200));
        let Health::Unhealthy(why) = status.health() else {
            panic!("falling behind")
        };
        assert!(why.contains("from 100 to 200 records"), "{why}");
        commit(&status, 11, Some(200));
        assert_eq!(status.health(), Health::Healthy, "a flat lag keeps up");
    }

    #[test]
    fn failing_and_stopping_are_unhealthy() {
        let status = JobStatus::new(Duration::from_secs(3_600));
        status.stopping();
        assert!(matches!(status.health(), Health::Unhealthy(w) if w.starts_with("stopping")));
        status.failed("partition 2: disk full");
        assert_eq!(
            status.health(),
            Health::Unhealthy("failed: partition 2: disk full".into())
        );
    }
}
