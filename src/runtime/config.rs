//! How a job is asked to run ([`RunConfig`], its trigger) and what it reports when it ends
//! ([`JobReport`]).

use super::live_counts::LiveCounts;
use crate::io::kafka::KafkaSettings;
use crate::io::sink::SinkSpec;
use crate::io::source::{FileOptions, GenOptions, SourceSpec};
use crate::time::{Millis, OutputMode};
use crate::{Error, Result};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// When epochs end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerSpec {
    /// Every interval (micro-batches).
    Interval(Duration),
    /// As fast as the job can go: an epoch ends as soon as input has arrived and every earlier
    /// epoch has committed.
    Continuous,
}

impl TriggerSpec {
    /// Parses `100ms`, `1s`, ... or `continuous`.
    pub fn parse(text: &str) -> Result<Self> {
        if text == "continuous" {
            return Ok(TriggerSpec::Continuous);
        }
        crate::time::parse_duration(text)
            .ok()
            .filter(|d| !d.is_zero())
            .map(TriggerSpec::Interval)
            .ok_or_else(|| {
                Error::config(
                    "--trigger",
                    text,
                    "use an interval such as 100ms or 1s, or continuous",
                )
            })
    }
}

/// The shared trigger: the supervisor's timer raises `due`, the source cuts an epoch and lowers
/// it. In continuous mode the source instead cuts as soon as every earlier epoch has committed
/// (`committed` is the last committed epoch), so one epoch is in flight while the next gathers
/// input: latency stays one epoch's processing time, and epochs grow with load instead of the
/// job paying per-epoch costs thousands of times a second.
#[derive(Debug, Clone)]
pub(crate) struct Trigger {
    pub(crate) interval: Duration,
    pub(crate) continuous: bool,
    pub(crate) due: Arc<AtomicBool>,
    pub(crate) committed: Arc<std::sync::atomic::AtomicU64>,
}

impl Trigger {
    pub(super) fn new(spec: TriggerSpec) -> Self {
        let (interval, continuous) = match spec {
            TriggerSpec::Interval(d) => (d, false),
            // Continuous epochs still end every 100 ms while no input arrives, so the watermark
            // and processing-time timers move on a quiet stream.
            TriggerSpec::Continuous => (Duration::from_millis(100), true),
        };
        Trigger {
            interval,
            continuous,
            due: Arc::new(AtomicBool::new(false)),
            committed: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    pub(crate) fn take_due(&self) -> bool {
        self.due.swap(false, Ordering::AcqRel)
    }

    /// Continuous mode: whether `epoch` may end now (every earlier epoch has committed).
    pub(crate) fn previous_committed(&self, epoch: crate::checkpoint::Epoch) -> bool {
        self.committed.load(Ordering::Acquire) + 1 >= epoch
    }
}

/// How to run a job.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Where records come from (`--source URI`): the source of a pipeline with one input.
    pub source: SourceSpec,
    /// Sources given by input name (`--source NAME=URI`), in the order given.
    pub named_sources: Vec<(String, SourceSpec)>,
    /// Where results go (`--sink URI`): the sink of a pipeline with one output.
    pub sink: SinkSpec,
    /// Sinks given by output name (`--sink NAME=URI`), in the order given.
    pub named_sinks: Vec<(String, SinkSpec)>,
    /// The sled state directory; `None` keeps state in a temporary store (no recovery).
    pub state_dir: Option<PathBuf>,
    /// Keyed state to start a new job from (`--model FILE`, JSON lines `{"key","state"}`).
    pub model: Option<PathBuf>,
    /// Number of key partitions.
    pub partitions: u32,
    /// Number of worker threads (actix arbiters) hosting the partitions.
    pub workers: usize,
    /// When epochs end.
    pub trigger: TriggerSpec,
    /// A partition without input for this long does not hold the watermark back.
    pub idle_timeout: Duration,
    /// Minimum time between state checkpoints (epochs end more often); the supervisor waits
    /// longer after an expensive one (see `runtime::checkpoint_pace`).
    pub checkpoint_interval: Duration,
    /// Built-in generator settings (for `--source gen`).
    pub generator: GenOptions,
    /// Serve Prometheus metrics, `/health` and `/api/progress` here; `None` for no endpoint.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// `/health` reports the job unhealthy once no epoch committed for this long.
    pub unhealthy_after: Duration,
    /// Export traces of the epochs and their phases to this OTLP/HTTP collector (see
    /// [`crate::metrics`]); `None` for no traces.
    pub otlp_endpoint: Option<String>,
    /// Stop gracefully (finish the epoch, checkpoint, exit) on SIGINT and SIGTERM.
    pub handle_signals: bool,
    /// Setting this flag stops the job gracefully, like a signal.
    pub stop: Arc<AtomicBool>,
    /// Records read per source chunk (one batch per partition per chunk).
    pub chunk_size: usize,
    /// Bytes of keyed state to keep in memory (`--state-memory`), shared evenly by the
    /// partitions; the rest stays in the state store and is read back when a key of it is
    /// needed. `None`: all of it in memory.
    pub state_memory: Option<u64>,
    /// Largest number of records read into one epoch (`None`: no limit besides the trigger).
    /// Bounds the memory an epoch's outputs and late records can take when input is fast.
    pub max_records_per_epoch: Option<u64>,
    /// Kafka client settings (application id, librdkafka properties, sink guarantee).
    pub kafka: KafkaSettings,
    /// Read a Kafka source only up to the end offsets seen when the job first started, then
    /// finish every window and exit (like Spark's availableNow trigger).
    pub until_end: bool,
    /// Kafka source: run as a member of the consumer group `--app-id`, on the partitions it
    /// assigns (scale-out); otherwise read every partition.
    pub group: bool,
    /// Overrides the pipeline's output mode (`--output-mode`).
    pub output_mode: Option<OutputMode>,
    /// Overrides the pipeline's allowed lateness, in milliseconds (`--allowed-lateness`).
    pub allowed_lateness: Option<Millis>,
    /// Stop the job when more than this share of its lines are malformed.
    pub max_dead_letter_ratio: Option<f64>,
    /// Delete committed output in the sink that the state does not account for, instead of
    /// refusing to start.
    pub overwrite: bool,
    /// File sources: keep reading lines appended to the last file and new files of a directory
    /// instead of ending at the end of the input (`--follow`).
    pub follow: bool,
    /// Read symbolic links in a source directory, and write through sink folders that are.
    pub follow_symlinks: bool,
    /// File sources: longer lines are dead-lettered (truncated, with their length) without
    /// being held in memory.
    pub max_record_bytes: usize,
    /// Counts of what the job has committed so far, for a progress display.
    pub progress: Arc<LiveCounts>,
}

/// Key partitions when `--partitions` is not given. A constant, not the core count: records
/// are routed by key to partitions, and each partition's watermark follows its own records, so
/// the partition count is part of what decides the results, and the same command must give the
/// same results on every machine.
pub const DEFAULT_PARTITIONS: u32 = 8;

/// The number of CPU cores.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            source: SourceSpec::Generator,
            named_sources: Vec::new(),
            named_sinks: Vec::new(),
            sink: SinkSpec::Stdout,
            state_dir: None,
            model: None,
            partitions: DEFAULT_PARTITIONS,
            workers: cores(),
            trigger: TriggerSpec::Interval(Duration::from_millis(100)),
            idle_timeout: Duration::from_secs(5),
            checkpoint_interval: Duration::from_secs(1),
            generator: GenOptions::default(),
            metrics_addr: None,
            unhealthy_after: Duration::from_secs(30),
            otlp_endpoint: None,
            handle_signals: false,
            stop: Arc::new(AtomicBool::new(false)),
            chunk_size: 16 * 1024,
            max_records_per_epoch: None,
            state_memory: None,
            kafka: KafkaSettings::default(),
            until_end: false,
            group: false,
            output_mode: None,
            allowed_lateness: None,
            max_dead_letter_ratio: None,
            overwrite: false,
            follow: false,
            follow_symlinks: false,
            max_record_bytes: FileOptions::default().max_record_bytes,
            progress: Arc::default(),
        }
    }
}

/// What a finished job did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobReport {
    /// Epochs committed.
    pub epochs: u64,
    /// Records read from the source (including filtered ones, excluding dead letters).
    pub records_in: u64,
    /// Results written.
    pub outputs: u64,
    /// Late records.
    pub late: u64,
    /// Malformed records sent to the dead-letter output.
    pub dead_letters: u64,
    /// Partition restarts.
    pub restarts: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// The job ended because its input did (a bounded source, or `--until-end`).
    pub end_of_input: bool,
    /// What the operators counted in committed epochs.
    pub counters: crate::operator::Counters,
    /// The operators' declared metrics (their counters and ratios).
    pub metrics: Vec<crate::operator::MetricDecl>,
    /// What the pipeline's shared model learned, if it has one.
    pub model: Option<crate::learning::ModelReport>,
}

impl JobReport {
    /// Adds the counts of `other` (a later run of the same job) to this report.
    pub(super) fn absorb(&mut self, other: &JobReport) {
        self.epochs += other.epochs;
        self.records_in += other.records_in;
        self.outputs += other.outputs;
        self.late += other.late;
        self.dead_letters += other.dead_letters;
        self.restarts += other.restarts;
        self.end_of_input = other.end_of_input;
        self.counters.merge(&other.counters);
        if let Some(model) = &other.model {
            self.model.get_or_insert_default().absorb(model);
        }
        if self.metrics.is_empty() {
            self.metrics = other.metrics.clone();
        }
    }

    /// The value of every metric the operators declared, over the committed epochs.
    pub fn operator_values(&self) -> Vec<(&'static str, f64)> {
        self.counters.values(&self.metrics)
    }
}
