//! Job metrics for Prometheus (the `prometheus` crate's registry): records in, out, late and
//! dead-lettered; epoch and checkpoint durations; checkpoint size; watermark and watermark lag;
//! state keys and stored bytes per partition; partition restarts; Kafka consumer lag,
//! consumer-group rebalances, changelog restores with their durations, and source partitions
//! paused for backpressure; state expired by a TTL; what the pipeline's operators count
//! (`spate_operator_total{name}`) with the ratios they declare (`spate_operator_ratio{name}`);
//! the shared model's version and updates. The instruments are declared in `instruments.rs`,
//! grouped by what updates them; [`Metrics`] is the handle the job updates them through.
//!
//! Served as text on `GET /metrics` at `--metrics-addr` (`server.rs`, on axum), with
//! `GET /health` and `GET /api/progress` (the job's last epochs and health: `status.rs`) and
//! `GET /state/{key}` (a key's state in the running job: `lookup.rs`). With `--otlp-endpoint`,
//! OpenTelemetry traces of the epochs, their phases and checkpoints go to an OTLP/HTTP collector
//! (`traces.rs`). Instruments are updated once per epoch or checkpoint, never per record.

mod instruments;
mod lookup;
mod server;
mod status;
mod traces;

pub use lookup::{
    EraseRefused, EraseRequest, LiveState, PartitionsLookup, StateAccess, StateLookup,
};
pub use status::{
    EpochProgress, EpochTimes, Health, JobStatus, PhaseDurations, GROWING_EPOCHS, KEPT_EPOCHS,
    RESTART_WINDOW,
};

use crate::state::Residency;
use crate::time::{now_ms, Millis, BEFORE_TIME, END_OF_TIME};
use crate::Result;
use instruments::{
    Builder, CheckpointInstruments, EpochInstruments, KafkaInstruments, ModelInstruments,
    OperatorInstruments, StateInstruments,
};
use prometheus::Registry;
use server::Server;
pub use server::{ProgressReply, StateReply};
use std::net::SocketAddr;
use std::sync::Arc;

/// A cheap, clonable handle on the job's instruments.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Instruments>,
}

/// Every instrument of the job, by what updates it, and what the endpoint serves besides.
struct Instruments {
    epochs: EpochInstruments,
    checkpoints: CheckpointInstruments,
    state: StateInstruments,
    kafka: KafkaInstruments,
    operators: OperatorInstruments,
    model: ModelInstruments,
    /// The job's recent epochs and health.
    status: Arc<JobStatus>,
    /// The running job's keyed state, by key.
    live_state: Arc<LiveState>,
    /// Held for its `Drop`, which stops the endpoint's thread.
    _server: Option<Server>,
    /// The traces exported over OTLP (`--otlp-endpoint`).
    traces: Option<traces::Traces>,
}

impl Metrics {
    /// Instruments for `pipeline`, served at `addr` when given, with traces exported to the
    /// OTLP/HTTP collector at `otlp` when given; the job reports itself unhealthy once no
    /// epoch committed for `stall_limit`. Every counter is exported from the
    /// start, at 0 (a dashboard's rate over a counter that appears only with its first event
    /// shows nothing until then).
    pub fn new(
        pipeline: &str,
        addr: Option<SocketAddr>,
        stall_limit: std::time::Duration,
        otlp: Option<&str>,
    ) -> Result<Self> {
        let traces = otlp
            .map(|endpoint| traces::Traces::start(endpoint, pipeline))
            .transpose()?;
        let status = Arc::new(JobStatus::new(stall_limit));
        let live_state = Arc::new(LiveState::default());
        let labels = [("pipeline".to_string(), pipeline.to_string())].into();
        let registry = Registry::new_custom(None, Some(labels)).expect("a valid pipeline label");
        let b = Builder(registry.clone());
        let instruments = Instruments {
            epochs: EpochInstruments::new(&b),
            checkpoints: CheckpointInstruments::new(&b),
            state: StateInstruments::new(&b),
            kafka: KafkaInstruments::new(&b),
            operators: OperatorInstruments::new(&b),
            model: ModelInstruments::new(&b),
            _server: (addr.map(|addr| {
                let shared = (status.clone(), live_state.clone());
                Server::start(addr, registry, pipeline, shared)
            }))
            .transpose()?,
            status,
            live_state,
            traces,
        };
        Ok(Metrics {
            inner: Arc::new(instruments),
        })
    }

    /// Records a committed epoch.
    pub fn epoch_committed(
        &self,
        records: u64,
        outputs: u64,
        late: u64,
        dead_letters: u64,
        epoch_ms: f64,
        watermark: Millis,
    ) {
        let i = &self.inner;
        i.epochs.records_in.inc_by(records);
        i.epochs.records_out.inc_by(outputs);
        i.epochs.late.inc_by(late);
        i.epochs.dead_letters.inc_by(dead_letters);
        i.epochs.seconds.observe(epoch_ms / 1e3);
        if watermark != BEFORE_TIME && watermark != END_OF_TIME {
            i.epochs
                .watermark
                .with_label_values(&[] as &[&str])
                .set(watermark);
            i.epochs
                .watermark_lag
                .with_label_values(&[] as &[&str])
                .set((now_ms() - watermark) as f64 / 1e3);
        }
    }

    /// Records partition `partition`'s checkpoint of `epoch`, which took `millis`.
    pub fn checkpoint(&self, partition: u32, epoch: u64, millis: f64, bytes: u64) {
        self.inner.checkpoints.seconds.observe(millis / 1e3);
        self.inner.checkpoints.bytes.observe(bytes as f64);
        if let Some(traces) = &self.inner.traces {
            traces.checkpoint(partition, epoch, millis, bytes);
        }
    }

    /// Traces committed epoch `epoch` (with `--otlp-endpoint`): its counts and phase times,
    /// the changelog's flush with a `changelog`.
    pub fn trace_epoch(
        &self,
        epoch: u64,
        stats: &crate::io::sink::EpochStats,
        times: &EpochTimes,
        changelog: bool,
    ) {
        if let Some(traces) = &self.inner.traces {
            traces.epoch(epoch, stats, times, changelog);
        }
    }

    /// Sends the traces not sent yet (the end of a run).
    pub fn flush_traces(&self) {
        if let Some(traces) = &self.inner.traces {
            traces.flush();
        }
    }

    /// Records the pause the next checkpoint waits for.
    pub fn checkpoint_pause(&self, pause: std::time::Duration) {
        self.inner.checkpoints.pause.set(pause.as_secs_f64());
    }

    /// Records a partition's number of keys and its stored state size.
    pub fn state(&self, partition: u32, keys: u64, bytes: u64) {
        self.inner.status.state(partition, keys, bytes);
        let p = [&partition.to_string()[..]];
        self.inner.state.keys.with_label_values(&p).set(keys as i64);
        self.inner
            .state
            .bytes
            .with_label_values(&p)
            .set(bytes as i64);
    }

    /// Records what eviction did in a partition under `--state-memory` since it last said
    /// (`since`: its counts then).
    pub fn residency(&self, partition: u32, now: Residency, since: Residency) {
        let p = [&partition.to_string()[..]];
        let (i, keys) = (&self.inner, now.evicted_keys as i64);
        i.state
            .evictions
            .inc_by(now.evictions.saturating_sub(since.evictions));
        i.state
            .read_backs
            .inc_by(now.read_backs.saturating_sub(since.read_backs));
        i.state.evicted_keys.with_label_values(&p).set(keys);
    }

    /// Records each Kafka source partition's lag (records not yet read), index = partition.
    pub fn consumer_lag(&self, lag: &[(u32, u64)]) {
        for &(p, records) in lag {
            self.inner
                .kafka
                .consumer_lag
                .with_label_values(&[&p.to_string()[..]])
                .set(records as i64);
        }
    }

    /// Counts a rebalance of `kind` (`assigned` or `revoked`).
    pub fn rebalance(&self, kind: &'static str) {
        self.inner.kafka.rebalances.with_label_values(&[kind]).inc();
    }

    /// Records one partition's restore: from the changelog or the local copy, and how long.
    pub fn restore(&self, from_changelog: bool, seconds: f64) {
        let source = [if from_changelog { "changelog" } else { "local" }];
        self.inner.kafka.restores.with_label_values(&source).inc();
        self.inner
            .kafka
            .restore_seconds
            .with_label_values(&source)
            .observe(seconds);
    }

    /// Records how long a key partition took to load its checkpointed state into memory.
    pub fn state_loaded(&self, seconds: f64) {
        self.inner.state.load_seconds.observe(seconds);
    }

    /// Counts a pause of source partition `partition` (see `runtime::source`).
    pub fn source_paused(&self, partition: u32) {
        let p = partition.to_string();
        self.inner
            .kafka
            .source_pauses
            .with_label_values(&[&p[..]])
            .inc();
    }

    /// Counts keys whose state expired under the state TTL in a committed epoch.
    pub fn state_expired(&self, keys: u64) {
        self.inner.state.expired.inc_by(keys);
    }

    /// Adds what the operators counted in a committed epoch (`counts`), and sets the values
    /// computed from counters (ratios, AUCs) among `decls` to their value over the run so far
    /// (`totals`) and over the sliding window (`window`).
    pub fn operator(
        &self,
        counts: &crate::operator::Counters,
        (totals, window): (&crate::operator::Counters, &crate::operator::Counters),
        decls: &[crate::operator::MetricDecl],
    ) {
        use crate::operator::MetricDecl;
        for (name, by) in counts.iter() {
            let counter = self.inner.operators.counts.with_label_values(&[name]);
            counter.inc_by(by.max(0.0));
        }
        let computed = |name: &str| {
            decls.iter().any(|d| match d {
                MetricDecl::Ratio { name: n, .. } | MetricDecl::Auc { name: n, .. } => *n == name,
                MetricDecl::Counter { .. } => false,
            })
        };
        for (gauge, counts) in [
            (&self.inner.operators.ratios, totals),
            (&self.inner.operators.window, window),
        ] {
            for (name, value) in counts.values(decls) {
                if computed(name) {
                    gauge.with_label_values(&[name]).set(value);
                }
            }
        }
    }

    /// Sets what the shared model learned over the run so far.
    pub fn model_learned(&self, report: &crate::learning::ModelReport) {
        let m = &self.inner.model;
        m.version.set(report.version as i64);
        m.updates.inc_by(report.updates - m.updates.get());
        m.examples.inc_by(report.examples - m.examples.get());
        m.dropped.inc_by(report.dropped - m.dropped.get());
    }

    /// The job's recent epochs and health, for the supervisor to add to.
    pub fn status(&self) -> &JobStatus {
        &self.inner.status
    }

    /// Where the running job installs its state lookup.
    pub fn live_state(&self) -> &LiveState {
        &self.inner.live_state
    }

    /// Counts a partition restart.
    pub fn restart(&self, partition: u32) {
        self.inner.status.restarted(partition);
        let p = partition.to_string();
        self.inner
            .epochs
            .restarts
            .with_label_values(&[&p[..]])
            .inc();
    }
}
