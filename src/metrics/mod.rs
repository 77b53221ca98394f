//! Job metrics for Prometheus (the `prometheus` crate's registry): records in, out, late and
//! dead-lettered; epoch and checkpoint durations; checkpoint size; watermark and watermark lag;
//! state keys and stored bytes per partition; partition restarts; Kafka consumer lag,
//! consumer-group rebalances, changelog restores with their durations, and source partitions
//! paused for backpressure, state expired by a TTL, and what the pipeline's operators count
//! (`spate_operator_total{name}`) with the ratios they declare (`spate_operator_ratio{name}`). Served as text on `GET /metrics` at
//! `--metrics-addr` by an HTTP server of its own (`server.rs`), with `GET /health` and
//! `GET /api/progress` (the job's last epochs and health: `status.rs`) and `GET /state/{key}`
//! (a key's state in the running job: `lookup.rs`). With `--otlp-endpoint`, OpenTelemetry traces of
//! the epochs, their phases and checkpoints go to an OTLP/HTTP collector (`traces.rs`).
//! Instruments are updated once per epoch or checkpoint, never per record.

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
use prometheus::core::Collector;
use prometheus::{
    GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry,
};
use server::Server;
pub use server::{ProgressReply, StateReply};
use std::net::SocketAddr;
use std::sync::Arc;

/// A cheap, clonable handle on the job's instruments.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Instruments>,
}

struct Instruments {
    records_in: IntCounter,
    records_out: IntCounter,
    late: IntCounter,
    dead_letters: IntCounter,
    restarts: IntCounterVec,
    epoch_seconds: Histogram,
    checkpoint_seconds: Histogram,
    checkpoint_bytes: Histogram,
    checkpoint_pause: prometheus::Gauge,
    /// Label-less vectors, so the watermark is exported only once there is one (a 0 would
    /// read as 1970, and a lag of 0 as caught up).
    watermark: IntGaugeVec,
    watermark_lag: GaugeVec,
    state_keys: IntGaugeVec,
    state_bytes: IntGaugeVec,
    consumer_lag: IntGaugeVec,
    rebalances: IntCounterVec,
    restores: IntCounterVec,
    restore_seconds: HistogramVec,
    load_seconds: Histogram,
    source_pauses: IntCounterVec,
    state_expired: IntCounter,
    state_evictions: IntCounter,
    state_read_backs: IntCounter,
    state_evicted_keys: IntGaugeVec,
    operator_counts: prometheus::CounterVec,
    operator_ratios: GaugeVec,
    operator_window: GaugeVec,
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

/// The shared model's instruments (pipelines with one; zero otherwise).
struct ModelInstruments {
    version: prometheus::IntGauge,
    updates: IntCounter,
    examples: IntCounter,
    dropped: IntCounter,
}

impl ModelInstruments {
    fn new(b: &Builder) -> Self {
        ModelInstruments {
            version: b.add(prometheus::IntGauge::new(
                "spate_model_version",
                "The shared model's newest version: how many non-empty micro-batches it learned",
            )),
            updates: b.counter(
                "spate_model_updates_total",
                "Micro-batches the shared model learned (one update each)",
            ),
            examples: b.counter(
                "spate_model_examples_total",
                "Examples the shared model learned",
            ),
            dropped: b.counter(
                "spate_model_examples_dropped_total",
                "Examples dropped because their micro-batch was learned already",
            ),
        }
    }
}

/// Registers instruments in one registry, whose every series carries the pipeline label.
struct Builder(Registry);

impl Builder {
    fn add<M: Collector + Clone + 'static>(&self, metric: prometheus::Result<M>) -> M {
        let metric = metric.expect("instrument options are valid");
        self.0
            .register(Box::new(metric.clone()))
            .expect("instrument names are unique");
        metric
    }

    fn counter(&self, name: &str, help: &str) -> IntCounter {
        self.add(IntCounter::new(name, help))
    }

    fn counters(&self, name: &str, help: &str, label: &str) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), &[label]))
    }

    fn gauges(&self, name: &str, help: &str) -> IntGaugeVec {
        self.add(IntGaugeVec::new(Opts::new(name, help), &["partition"]))
    }

    fn histogram(&self, name: &str, help: &str, buckets: &[f64]) -> Histogram {
        self.add(Histogram::with_opts(
            HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        ))
    }
}

/// Bucket bounds of the duration histograms, in seconds.
const SECONDS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

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
            records_in: b.counter("spate_records_in_total", "Records read from the source"),
            records_out: b.counter("spate_records_out_total", "Results committed to the sink"),
            late: b.counter(
                "spate_records_late_total",
                "Records behind the watermark, sent to the late output",
            ),
            dead_letters: b.counter(
                "spate_records_dead_lettered_total",
                "Malformed records sent to the dead-letter output",
            ),
            restarts: b.counters(
                "spate_partition_restarts_total",
                "Key-partition actors restarted from their checkpoint",
                "partition",
            ),
            epoch_seconds: b.histogram(
                "spate_epoch_duration_seconds",
                "Time from an epoch's cut to its commit",
                &SECONDS,
            ),
            checkpoint_seconds: b.histogram(
                "spate_checkpoint_duration_seconds",
                "Worker time one partition's checkpoint took: encoding its changed state, then writing it to sled",
                &SECONDS,
            ),
            checkpoint_pause: b.add(prometheus::Gauge::new(
                "spate_checkpoint_pause_seconds",
                "How long the next checkpoint waits after the last: --checkpoint-interval, or more when checkpoints are expensive",
            )),
            checkpoint_bytes: b.histogram(
                "spate_checkpoint_size_bytes",
                "Bytes of changed state one partition checkpoint wrote",
                &[1e3, 1e4, 1e5, 1e6, 1e7, 1e8],
            ),
            watermark: b.add(IntGaugeVec::new(
                Opts::new(
                    "spate_watermark_milliseconds",
                    "The job's event-time watermark, epoch milliseconds",
                ),
                &[],
            )),
            watermark_lag: b.add(GaugeVec::new(
                Opts::new(
                    "spate_watermark_lag_seconds",
                    "Wall-clock time minus the watermark",
                ),
                &[],
            )),
            state_keys: b.gauges("spate_state_keys", "Keys holding state, per key partition"),
            state_bytes: b.gauges(
                "spate_state_size_bytes",
                "Bytes of state stored in sled as of the last checkpoint, per key partition",
            ),
            consumer_lag: b.gauges(
                "spate_consumer_lag",
                "Kafka source: records in the topic partition not yet read, at the last epoch cut",
            ),
            rebalances: b.counters(
                "spate_rebalances_total",
                "Consumer-group rebalances that assigned partitions to this instance (kind=assigned) or took them away (kind=revoked)",
                "kind",
            ),
            restores: b.counters(
                "spate_restores_total",
                "Partitions whose state was rebuilt from the changelog (source=changelog) or found current in the local state directory (source=local)",
                "source",
            ),
            restore_seconds: b.add(HistogramVec::new(
                HistogramOpts::new(
                    "spate_restore_duration_seconds",
                    "Time to restore one partition's state at a job or rebalance start",
                )
                .buckets(vec![0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0]),
                &["source"],
            )),
            load_seconds: b.add(Histogram::with_opts(
                HistogramOpts::new(
                    "spate_state_load_duration_seconds",
                    "Time one key partition took to load its checkpointed state from the state directory into memory, at start or after a restart",
                )
                .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0]),
            )),
            source_pauses: b.counters(
                "spate_source_pauses_total",
                "Times a Kafka source stopped reading a partition because its key partition had as many batches queued as it may (resumed once it handles one)",
                "partition",
            ),
            state_expired: b.counter(
                "spate_state_expired_total",
                "Keys whose state the state TTL dropped, not touched for the TTL",
            ),
            state_evictions: b.counter(
                "spate_state_evictions_total",
                "State buckets --state-memory moved out of memory (appended to the bucket log first when changed)",
            ),
            state_read_backs: b.counter(
                "spate_state_read_backs_total",
                "Evicted state buckets read back from the bucket log, for a record, timer or expiry of one of their keys",
            ),
            state_evicted_keys: b.gauges(
                "spate_state_evicted_keys",
                "Keys whose state --state-memory keeps out of memory, per key partition",
            ),
            operator_counts: b.add(prometheus::CounterVec::new(
                Opts::new(
                    "spate_operator_total",
                    "What the pipeline's operators count (see spate describe), by name",
                ),
                &["name"],
            )),
            operator_ratios: b.add(GaugeVec::new(
                Opts::new(
                    "spate_operator_ratio",
                    "Ratios of the operators' counters over the run, by name",
                ),
                &["name"],
            )),
            operator_window: b.add(GaugeVec::new(
                Opts::new(
                    "spate_operator_window",
                    "Ratios and AUCs of the operators' counters over the epochs committed in the last 5 minutes, by name",
                ),
                &["name"],
            )),
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
        i.records_in.inc_by(records);
        i.records_out.inc_by(outputs);
        i.late.inc_by(late);
        i.dead_letters.inc_by(dead_letters);
        i.epoch_seconds.observe(epoch_ms / 1e3);
        if watermark != BEFORE_TIME && watermark != END_OF_TIME {
            i.watermark.with_label_values(&[] as &[&str]).set(watermark);
            i.watermark_lag
                .with_label_values(&[] as &[&str])
                .set((now_ms() - watermark) as f64 / 1e3);
        }
    }

    /// Records partition `partition`'s checkpoint of `epoch`, which took `millis`.
    pub fn checkpoint(&self, partition: u32, epoch: u64, millis: f64, bytes: u64) {
        self.inner.checkpoint_seconds.observe(millis / 1e3);
        self.inner.checkpoint_bytes.observe(bytes as f64);
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
        self.inner.checkpoint_pause.set(pause.as_secs_f64());
    }

    /// Records a partition's number of keys and its stored state size.
    pub fn state(&self, partition: u32, keys: u64, bytes: u64) {
        self.inner.status.state(partition, keys, bytes);
        let p = [&partition.to_string()[..]];
        self.inner.state_keys.with_label_values(&p).set(keys as i64);
        self.inner
            .state_bytes
            .with_label_values(&p)
            .set(bytes as i64);
    }

    /// Records what eviction did in a partition under `--state-memory` since it last said
    /// (`since`: its counts then).
    pub fn residency(&self, partition: u32, now: Residency, since: Residency) {
        let p = [&partition.to_string()[..]];
        let (i, keys) = (&self.inner, now.evicted_keys as i64);
        i.state_evictions
            .inc_by(now.evictions.saturating_sub(since.evictions));
        i.state_read_backs
            .inc_by(now.read_backs.saturating_sub(since.read_backs));
        i.state_evicted_keys.with_label_values(&p).set(keys);
    }

    /// Records each Kafka source partition's lag (records not yet read), index = partition.
    pub fn consumer_lag(&self, lag: &[(u32, u64)]) {
        for &(p, records) in lag {
            self.inner
                .consumer_lag
                .with_label_values(&[&p.to_string()[..]])
                .set(records as i64);
        }
    }

    /// Counts a rebalance of `kind` (`assigned` or `revoked`).
    pub fn rebalance(&self, kind: &'static str) {
        self.inner.rebalances.with_label_values(&[kind]).inc();
    }

    /// Records one partition's restore: from the changelog or the local copy, and how long.
    pub fn restore(&self, from_changelog: bool, seconds: f64) {
        let source = [if from_changelog { "changelog" } else { "local" }];
        self.inner.restores.with_label_values(&source).inc();
        self.inner
            .restore_seconds
            .with_label_values(&source)
            .observe(seconds);
    }

    /// Records how long a key partition took to load its checkpointed state into memory.
    pub fn state_loaded(&self, seconds: f64) {
        self.inner.load_seconds.observe(seconds);
    }

    /// Counts a pause of source partition `partition` (see `runtime::source`).
    pub fn source_paused(&self, partition: u32) {
        let p = partition.to_string();
        self.inner.source_pauses.with_label_values(&[&p[..]]).inc();
    }

    /// Counts keys whose state expired under the state TTL in a committed epoch.
    pub fn state_expired(&self, keys: u64) {
        self.inner.state_expired.inc_by(keys);
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
            let counter = self.inner.operator_counts.with_label_values(&[name]);
            counter.inc_by(by.max(0.0));
        }
        let computed = |name: &str| {
            decls.iter().any(|d| match d {
                MetricDecl::Ratio { name: n, .. } | MetricDecl::Auc { name: n, .. } => *n == name,
                MetricDecl::Counter { .. } => false,
            })
        };
        for (gauge, counts) in [
            (&self.inner.operator_ratios, totals),
            (&self.inner.operator_window, window),
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
        self.inner.restarts.with_label_values(&[&p[..]]).inc();
    }
}
