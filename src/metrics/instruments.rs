//! The job's Prometheus instruments, registered once in one registry and grouped by what
//! updates them: each committed epoch, each checkpoint, the keyed state, Kafka, the operators'
//! own counters and the shared model.

use prometheus::core::Collector;
use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

/// Bucket bounds of the duration histograms, in seconds.
const SECONDS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Registers instruments in one registry, whose every series carries the pipeline label.
pub(super) struct Builder(pub(super) Registry);

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

    /// Integer gauges by `partition`.
    fn gauges(&self, name: &str, help: &str) -> IntGaugeVec {
        self.add(IntGaugeVec::new(Opts::new(name, help), &["partition"]))
    }

    /// Float gauges by `label`; no label: a gauge exported only once it is set.
    fn float_gauges(&self, name: &str, help: &str, label: &[&str]) -> GaugeVec {
        self.add(GaugeVec::new(Opts::new(name, help), label))
    }

    fn histogram(&self, name: &str, help: &str, buckets: &[f64]) -> Histogram {
        self.add(Histogram::with_opts(
            HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        ))
    }
}

/// What each committed epoch updates: the records, its duration and the watermark.
pub(super) struct EpochInstruments {
    pub records_in: IntCounter,
    pub records_out: IntCounter,
    pub late: IntCounter,
    pub dead_letters: IntCounter,
    pub seconds: Histogram,
    /// Label-less vectors, so the watermark is exported only once there is one (a 0 would
    /// read as 1970, and a lag of 0 as caught up).
    pub watermark: IntGaugeVec,
    pub watermark_lag: GaugeVec,
    pub restarts: IntCounterVec,
}

impl EpochInstruments {
    pub fn new(b: &Builder) -> Self {
        EpochInstruments {
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
            seconds: b.histogram(
                "spate_epoch_duration_seconds",
                "Time from an epoch's cut to its commit",
                &SECONDS,
            ),
            watermark: b.add(IntGaugeVec::new(
                Opts::new(
                    "spate_watermark_milliseconds",
                    "The job's event-time watermark, epoch milliseconds",
                ),
                &[],
            )),
            watermark_lag: b.float_gauges(
                "spate_watermark_lag_seconds",
                "Wall-clock time minus the watermark",
                &[],
            ),
            restarts: b.counters(
                "spate_partition_restarts_total",
                "Key-partition actors restarted from their checkpoint",
                "partition",
            ),
        }
    }
}

/// What each checkpoint updates.
pub(super) struct CheckpointInstruments {
    pub seconds: Histogram,
    pub bytes: Histogram,
    pub pause: Gauge,
}

impl CheckpointInstruments {
    pub fn new(b: &Builder) -> Self {
        CheckpointInstruments {
            seconds: b.histogram(
                "spate_checkpoint_duration_seconds",
                "Worker time one partition's checkpoint took: encoding its changed state, then writing it to sled",
                &SECONDS,
            ),
            bytes: b.histogram(
                "spate_checkpoint_size_bytes",
                "Bytes of changed state one partition checkpoint wrote",
                &[1e3, 1e4, 1e5, 1e6, 1e7, 1e8],
            ),
            pause: b.add(Gauge::new(
                "spate_checkpoint_pause_seconds",
                "How long the next checkpoint waits after the last: --checkpoint-interval, or more when checkpoints are expensive",
            )),
        }
    }
}

/// The keyed state: its size, what expired, what `--state-memory` evicted, and loading it.
pub(super) struct StateInstruments {
    pub keys: IntGaugeVec,
    pub bytes: IntGaugeVec,
    pub expired: IntCounter,
    pub evictions: IntCounter,
    pub read_backs: IntCounter,
    pub evicted_keys: IntGaugeVec,
    pub load_seconds: Histogram,
}

impl StateInstruments {
    pub fn new(b: &Builder) -> Self {
        StateInstruments {
            keys: b.gauges("spate_state_keys", "Keys holding state, per key partition"),
            bytes: b.gauges(
                "spate_state_size_bytes",
                "Bytes of state stored in sled as of the last checkpoint, per key partition",
            ),
            expired: b.counter(
                "spate_state_expired_total",
                "Keys whose state the state TTL dropped, not touched for the TTL",
            ),
            evictions: b.counter(
                "spate_state_evictions_total",
                "State buckets --state-memory moved out of memory (appended to the bucket log first when changed)",
            ),
            read_backs: b.counter(
                "spate_state_read_backs_total",
                "Evicted state buckets read back from the bucket log, for a record, timer or expiry of one of their keys",
            ),
            evicted_keys: b.gauges(
                "spate_state_evicted_keys",
                "Keys whose state --state-memory keeps out of memory, per key partition",
            ),
            load_seconds: b.histogram(
                "spate_state_load_duration_seconds",
                "Time one key partition took to load its checkpointed state from the state directory into memory, at start or after a restart",
                &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0],
            ),
        }
    }
}

/// Kafka: consumer lag, rebalances, restores from the changelog, paused source partitions.
pub(super) struct KafkaInstruments {
    pub consumer_lag: IntGaugeVec,
    pub rebalances: IntCounterVec,
    pub restores: IntCounterVec,
    pub restore_seconds: HistogramVec,
    pub source_pauses: IntCounterVec,
}

impl KafkaInstruments {
    pub fn new(b: &Builder) -> Self {
        KafkaInstruments {
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
            source_pauses: b.counters(
                "spate_source_pauses_total",
                "Times a Kafka source stopped reading a partition because its key partition had as many batches queued as it may (resumed once it handles one)",
                "partition",
            ),
        }
    }
}

/// What the pipeline's operators count, and the ratios they declare over the run and the
/// last 5 minutes.
pub(super) struct OperatorInstruments {
    pub counts: prometheus::CounterVec,
    pub ratios: GaugeVec,
    pub window: GaugeVec,
}

impl OperatorInstruments {
    pub fn new(b: &Builder) -> Self {
        OperatorInstruments {
            counts: b.add(prometheus::CounterVec::new(
                Opts::new(
                    "spate_operator_total",
                    "What the pipeline's operators count (see spate describe), by name",
                ),
                &["name"],
            )),
            ratios: b.float_gauges(
                "spate_operator_ratio",
                "Ratios of the operators' counters over the run, by name",
                &["name"],
            ),
            window: b.float_gauges(
                "spate_operator_window",
                "Ratios and AUCs of the operators' counters over the epochs committed in the last 5 minutes, by name",
                &["name"],
            ),
        }
    }
}

/// The shared model's instruments (pipelines with one; zero otherwise).
pub(super) struct ModelInstruments {
    pub version: IntGauge,
    pub updates: IntCounter,
    pub examples: IntCounter,
    pub dropped: IntCounter,
}

impl ModelInstruments {
    pub fn new(b: &Builder) -> Self {
        ModelInstruments {
            version: b.add(IntGauge::new(
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
