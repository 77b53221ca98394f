//! The runtime: runs a pipeline's [`Plan`] as a job of actors. One actix arbiter (thread) per
//! worker hosts the key-partition actors; the job supervisor runs on the system arbiter; the
//! source runs on its own thread. [`run`] wires them up, restores state, and returns when the
//! input ends, the job is stopped, or it fails.

mod core;
mod hooks;
mod input_check;
mod live_counts;
mod messages;
mod partition;
mod source;
mod supervisor;

pub use self::core::{BatchStats, Change, PartitionCore, StoredBucket};
pub use live_counts::{CountsSnapshot, LiveCounts};

use crate::checkpoint::{Epoch, EpochRecord, JobInfo, SourcePosition};
use crate::io::group::GroupMember;
use crate::io::kafka::KafkaSettings;
use crate::io::sink::{EpochSink, EpochStats, SinkContext, SinkSpec, Staged};
use crate::io::source::{
    FileOptions, FileReader, GenOptions, GeneratorReader, KafkaReader, SourceReader, SourceSpec,
    StdinReader,
};
use crate::metrics::Metrics;
use crate::operator::KeyedOperator;
use crate::pipeline::Plan;
use crate::state::{Changelog, StateStore};
use crate::time::{Millis, OutputMode, WatermarkTracker, BEFORE_TIME};
use crate::{Error, Result};
use actix::{Actor, Arbiter, AsyncContext};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use partition::{PartitionActor, PartitionSetup};
use source::{ReadPlan, SourceDriver};
use supervisor::{JobSupervisor, PartitionLink, SupervisorConfig};

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
    fn new(spec: TriggerSpec) -> Self {
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
    /// Where records come from.
    pub source: SourceSpec,
    /// Where results go.
    pub sink: SinkSpec,
    /// The sled state directory; `None` keeps state in a temporary store (no recovery).
    pub state_dir: Option<PathBuf>,
    /// Number of key partitions.
    pub partitions: u32,
    /// Number of worker threads (actix arbiters) hosting the partitions.
    pub workers: usize,
    /// When epochs end.
    pub trigger: TriggerSpec,
    /// A partition without input for this long does not hold the watermark back.
    pub idle_timeout: Duration,
    /// Minimum time between state checkpoints (epochs end more often).
    pub checkpoint_interval: Duration,
    /// Built-in generator settings (for `--source gen`).
    pub generator: GenOptions,
    /// Serve Prometheus metrics here; `None` for no endpoint.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Stop gracefully (finish the epoch, checkpoint, exit) on SIGINT and SIGTERM.
    pub handle_signals: bool,
    /// Setting this flag stops the job gracefully, like a signal.
    pub stop: Arc<AtomicBool>,
    /// Records read per source chunk (one batch per partition per chunk).
    pub chunk_size: usize,
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
            sink: SinkSpec::Stdout,
            state_dir: None,
            partitions: DEFAULT_PARTITIONS,
            workers: cores(),
            trigger: TriggerSpec::Interval(Duration::from_millis(100)),
            idle_timeout: Duration::from_secs(5),
            checkpoint_interval: Duration::from_secs(1),
            generator: GenOptions::default(),
            metrics_addr: None,
            handle_signals: false,
            stop: Arc::new(AtomicBool::new(false)),
            chunk_size: 16 * 1024,
            max_records_per_epoch: None,
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
}

impl JobReport {
    /// Adds the counts of `other` (a later run of the same job) to this report.
    fn absorb(&mut self, other: &JobReport) {
        self.epochs += other.epochs;
        self.records_in += other.records_in;
        self.outputs += other.outputs;
        self.late += other.late;
        self.dead_letters += other.dead_letters;
        self.restarts += other.restarts;
        self.end_of_input = other.end_of_input;
    }
}

/// The number of key partitions: a Kafka topic's partition count, else `--partitions`.
fn key_partitions(config: &RunConfig, app_id: &str) -> Result<u32> {
    let SourceSpec::Kafka(topic) = &config.source else {
        if config.partitions == 0 {
            return Err(Error::config("--partitions", 0, "use at least 1"));
        }
        return Ok(config.partitions);
    };
    let client = config
        .kafka
        .client_config(&topic.brokers, &[("group.id", app_id)]);
    crate::io::kafka::partition_count(&client, topic)?.ok_or_else(|| {
        Error::config(
            "--source",
            topic,
            "the topic does not exist; create it (or produce to it) first",
        )
    })
}

/// Where a bounded Kafka run stops: the end offsets recorded at the job's first start, so a
/// restart after a crash stops at the same place.
fn kafka_end_offsets(
    config: &RunConfig,
    store: &StateStore,
    topic: &crate::io::kafka::KafkaTopic,
    partitions: u32,
) -> Result<Option<Vec<u64>>> {
    if !config.until_end {
        return Ok(None);
    }
    if let Some(end) = store.meta_value::<Vec<u64>>("until-end")? {
        return Ok(Some(end));
    }
    let end = crate::io::kafka::end_offsets(&config.kafka, topic, partitions)?;
    store.set_meta_value("until-end", &end)?;
    tracing::info!(?end, "reading up to these end offsets (--until-end)");
    Ok(Some(end))
}

fn open_reader<R: DeserializeOwned + Send + 'static, Op: KeyedOperator, Out>(
    plan: &Plan<R, Op, Out>,
    config: &RunConfig,
    info: &JobInfo,
    store: &StateStore,
    app_id: &str,
    assignment: Option<&Assignment>,
) -> Result<Box<dyn SourceReader<R>>> {
    Ok(match &config.source {
        SourceSpec::Generator => {
            let make = plan.generator.as_ref().ok_or_else(|| {
                Error::config(
                    "--source",
                    "gen",
                    format!(
                        "pipeline `{}` has no built-in generator; use --source file:PATH or stdin",
                        plan.name
                    ),
                )
            })?;
            let options = GenOptions {
                base_ms: info.generator_base_ms,
                ..config.generator.clone()
            };
            Box::new(GeneratorReader::new(make(&options), &options))
        }
        SourceSpec::File(path) => Box::new(FileReader::open(
            path,
            &FileOptions {
                follow: config.follow,
                follow_symlinks: config.follow_symlinks,
                max_record_bytes: config.max_record_bytes,
            },
        )?),
        SourceSpec::Stdin => Box::new(StdinReader::open(config.max_record_bytes)),
        SourceSpec::Kafka(topic) => {
            let ids: Vec<u32> =
                assignment.map_or_else(|| (0..info.partitions).collect(), |a| a.ids.clone());
            let end = kafka_end_offsets(config, store, topic, info.partitions)?
                .map(|end| ids.iter().map(|&p| end[p as usize]).collect());
            Box::new(KafkaReader::open(
                topic,
                &config.kafka,
                app_id,
                ids,
                end,
                assignment.map(|a| a.member.clone()),
            )?)
        }
    })
}

/// Where a job resumes: what its source, supervisor and partitions start from.
struct Resume {
    read_plan: ReadPlan,
    start_watermark: Millis,
    /// The epoch log since the oldest partition checkpoint.
    recorded: Vec<EpochRecord>,
    /// Each partition's checkpoint epoch.
    checkpoints: Vec<Epoch>,
    /// The epoch the job starts after (see [`PartitionSetup::base_epoch`]).
    base_epoch: Epoch,
}

/// Resumes from the state directory alone: each partition resumes after its own checkpoint;
/// the source resumes after the oldest one and replays the recorded epochs since, which
/// partitions ahead of it skip.
fn resume_local(
    store: &StateStore,
    n: u32,
    sink: &dyn EpochSink,
    overwrite: bool,
) -> Result<Resume> {
    let checkpoints: Vec<_> = (0..n)
        .map(|p| store.partition(p)?.checkpoint())
        .collect::<Result<_>>()?;
    let oldest = checkpoints.iter().map(|c| c.epoch).min().unwrap_or(0);
    let recorded = store.epochs_from(oldest)?;
    let last_recorded = recorded.last().map_or(oldest, |r| r.epoch);
    sink.claim_output(last_recorded, &store.describe(), overwrite)?;
    sink.recover(oldest, last_recorded)?;
    let oldest_record = recorded.iter().find(|r| r.epoch == oldest);
    let read_plan = ReadPlan {
        from: oldest_record.map_or(SourcePosition::Start, |r| r.end.clone()),
        next_epoch: oldest + 1,
        replay: recorded
            .iter()
            .filter(|r| r.epoch > oldest)
            .map(|r| (r.epoch, r.end.clone()))
            .collect(),
    };
    if recorded.last().is_some_and(|r| r.final_epoch) {
        tracing::warn!(
            "{} holds a job that read its input to the end, which closed every window: records added to the input since are late; pass --follow to keep a job open to new input",
            store.describe()
        );
    }
    if oldest > 0 || last_recorded > oldest {
        tracing::info!(
            checkpoint = oldest,
            replay = last_recorded - oldest,
            "resuming from the state directory"
        );
    }
    Ok(Resume {
        read_plan,
        start_watermark: oldest_record.map_or(BEFORE_TIME, |r| r.watermark),
        recorded,
        checkpoints: checkpoints.iter().map(|c| c.epoch).collect(),
        base_epoch: 0,
    })
}

/// Resumes a Kafka-source job from its changelog, whoever wrote it: each partition takes the
/// changelog's newest checkpoint (the local copy when it is that one, otherwise rebuilt from
/// the changelog), the outputs of that checkpoint's epoch are committed again (the sink skips
/// what is already visible), and the job goes on from the checkpoints' offsets with epochs
/// numbered after every epoch any owner used. Nothing is replayed: an epoch's output is
/// committed only after its checkpoint is in the changelog.
fn resume_from_changelog(
    changelog: &Changelog,
    store: &StateStore,
    ids: &[u32],
    sink: &dyn EpochSink,
    metrics: &Metrics,
) -> Result<Resume> {
    let committed = store.committed()?;
    sink.recover(committed, committed)?;
    // Reading the changelog is the slow part (a consumer and a round trip per partition):
    // read every partition's at once.
    let started = std::time::Instant::now();
    let found: Vec<Result<_>> = std::thread::scope(|scope| {
        let readers: Vec<_> = ids
            .iter()
            .map(|&p| scope.spawn(move || changelog.restore(p)))
            .collect();
        readers
            .into_iter()
            .map(|r| {
                r.join()
                    .unwrap_or_else(|_| Err(Error::Runtime("a changelog reader panicked".into())))
            })
            .collect()
    });
    let read_seconds = started.elapsed().as_secs_f64();
    let mut restored = Vec::with_capacity(ids.len());
    for (&p, found) in ids.iter().zip(found) {
        let started = std::time::Instant::now();
        let partition = store.partition(p)?;
        let local = partition.checkpoint()?;
        match found? {
            Some(found) => {
                let stale = local != found.checkpoint.meta;
                if stale {
                    tracing::info!(
                        partition = p,
                        epoch = found.checkpoint.meta.epoch,
                        entries = found.state.len(),
                        "restored the partition's state from the changelog"
                    );
                    partition.replace(found.state, &found.checkpoint.meta)?;
                }
                metrics.restore(stale, read_seconds + started.elapsed().as_secs_f64());
                restored.push(Some(found.checkpoint));
            }
            None if local.epoch > 0 => {
                return Err(Error::Runtime(format!(
                    "the state directory {} holds a checkpoint of partition {p} (epoch {}) that the changelog topic {} does not: the topic was deleted or belongs to another job; restore the topic, or start over with a new --state directory and --app-id",
                    store.path().display(),
                    local.epoch,
                    changelog.topic()
                )))
            }
            None => restored.push(None),
        }
    }
    let base_epoch = restored
        .iter()
        .flatten()
        .map(|c| c.meta.epoch)
        .chain(store.epochs_from(0)?.last().map(|r| r.epoch))
        .chain([committed])
        .max()
        .unwrap_or(0);

    // Commit the newest checkpoints' outputs again: their owner may have stopped before they
    // were all visible.
    let mut resent = Vec::new();
    let mut pending: BTreeMap<Epoch, Vec<Staged>> = BTreeMap::new();
    for (p, checkpoint) in restored.iter_mut().enumerate() {
        let Some(checkpoint) = checkpoint else {
            continue;
        };
        let writer = crate::io::sink::writer_name(p as u32);
        let epoch = checkpoint.meta.epoch;
        for (stream, lines) in std::mem::take(&mut checkpoint.outputs) {
            if let Some(staged) = sink.stage_keyed(epoch, stream, &writer, lines)? {
                pending.entry(epoch).or_default().push(staged);
            }
        }
        if pending.contains_key(&epoch) {
            resent.push((writer, epoch));
        }
    }
    sink.recover_resent(&resent)?;
    for (epoch, staged) in pending {
        sink.commit(epoch, staged, &EpochStats::default())?;
    }

    let offsets = restored
        .iter()
        .map(|c| c.as_ref().map_or(0, |c| c.next_offset))
        .collect();
    let start_watermark = restored
        .iter()
        .map(|c| c.as_ref().map_or(BEFORE_TIME, |c| c.meta.watermark))
        .min()
        .unwrap_or(BEFORE_TIME);
    let start = EpochRecord {
        epoch: base_epoch,
        end: SourcePosition::Offsets(offsets),
        watermark: start_watermark,
        processing_time: restored
            .iter()
            .flatten()
            .map(|c| c.meta.processing_time)
            .max()
            .unwrap_or(0),
        final_epoch: false,
    };
    // The epoch log starts over at the restored position: in-process restarts rewind to it.
    store.forget_all_epochs()?;
    store.record_epoch(&start)?;
    if base_epoch > 0 {
        tracing::info!(epoch = base_epoch, "resuming from the changelog");
    }
    Ok(Resume {
        read_plan: ReadPlan {
            from: start.end.clone(),
            next_epoch: base_epoch + 1,
            replay: Default::default(),
        },
        start_watermark,
        recorded: vec![start],
        checkpoints: vec![base_epoch; ids.len()],
        base_epoch,
    })
}

/// The Kafka topic partitions a job owns as a member of its consumer group.
struct Assignment {
    /// The topic partitions, ascending.
    ids: Vec<u32>,
    member: Arc<GroupMember>,
    /// Raised when a rebalance takes the partitions away.
    revoked: Arc<AtomicBool>,
}

/// Runs `plan` with `config` until the input ends (bounded sources), a stop is requested, or
/// the job fails. Resumes from the state directory's last checkpoint when there is one (or, for
/// a Kafka source, from its changelog); with `group`, a Kafka source joins the consumer group
/// `--app-id` and runs on the partitions it is assigned.
pub fn run<R, Op, Out>(plan: Plan<R, Op, Out>, config: &RunConfig) -> Result<JobReport>
where
    R: DeserializeOwned + Send + 'static,
    Op: KeyedOperator,
    Out: Serialize + Send + 'static,
{
    let plan = with_run_rules(plan, config)?;
    let metrics = Metrics::new(&plan.name, config.metrics_addr)?;
    let store = StateStore::open(config.state_dir.as_deref())?;
    match &config.source {
        SourceSpec::Kafka(topic) if config.group => {
            run_in_group(&plan, config, topic, &store, &metrics)
        }
        _ => run_job(&plan, config, &store, &metrics, None),
    }
}

/// `plan` with the output mode and allowed lateness of `config`, where it sets them.
fn with_run_rules<R, Op: KeyedOperator, Out>(
    mut plan: Plan<R, Op, Out>,
    config: &RunConfig,
) -> Result<Plan<R, Op, Out>> {
    let refuse = |flag: &str, value: String| {
        Error::config(
            flag,
            value,
            format!(
                "pipeline `{}` has no windows to update or keep; leave {flag} out",
                plan.name
            ),
        )
    };
    if let Some(mode) = config.output_mode {
        if mode == OutputMode::Update && !plan.supports_update {
            return Err(refuse("--output-mode", "update".into()));
        }
        plan.rules.output_mode = mode;
    }
    if let Some(lateness) = config.allowed_lateness {
        if lateness > 0 && !plan.supports_update {
            return Err(refuse("--allowed-lateness", format!("{lateness}ms")));
        }
        plan.rules.allowed_lateness = lateness;
    }
    Ok(plan)
}

/// Runs a Kafka-source job as a member of its consumer group: each assignment runs as one job
/// on the assigned partitions, stopped at an epoch boundary when a rebalance revokes them. With
/// `--until-end` the instance leaves once the group has committed every partition's end
/// offset and every partition's last checkpoint is final, whichever member processed it.
fn run_in_group<R, Op, Out>(
    plan: &Plan<R, Op, Out>,
    config: &RunConfig,
    topic: &crate::io::kafka::KafkaTopic,
    store: &StateStore,
    metrics: &Metrics,
) -> Result<JobReport>
where
    R: DeserializeOwned + Send + 'static,
    Op: KeyedOperator,
    Out: Serialize + Send + 'static,
{
    let started = std::time::Instant::now();
    let app_id = config.kafka.app_id(&plan.name);
    let n = key_partitions(config, &app_id)?;
    let end = kafka_end_offsets(config, store, topic, n)?;
    let member = Arc::new(GroupMember::join(topic, &config.kafka, &app_id)?);
    // With --until-end: where each partition ends, and the changelog that tells whether its
    // last checkpoint is final.
    let bounded = match end {
        Some(end) => Some((
            end,
            Changelog::open(&config.kafka, &topic.brokers, &app_id, &plan.name, n)?,
        )),
        None => None,
    };
    if config.handle_signals {
        let stop = config.stop.clone();
        std::thread::Builder::new()
            .name("spate-signals".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a signal runtime starts");
                runtime.block_on(wait_for_stop_signal());
                tracing::info!("stop requested: finishing the current epoch");
                stop.store(true, Ordering::Release);
            })
            .map_err(|e| Error::Runtime(format!("cannot start the signal thread: {e}")))?;
    }
    let job_config = RunConfig {
        handle_signals: false,
        ..config.clone()
    };
    tracing::info!(group = %app_id, "joined the consumer group; waiting for partitions");
    let mut total = JobReport::default();
    while !config.stop.load(Ordering::Acquire) {
        let Some(ids) = member.next_assignment(Duration::from_millis(250)) else {
            if let Some((end, changelog)) = &bounded {
                if member.all_committed(end)? && all_final(changelog, end)? {
                    tracing::info!(
                        "the group has read every partition to its end and emitted every window: leaving"
                    );
                    break;
                }
            }
            continue;
        };
        metrics.rebalance("assigned");
        if ids.is_empty() {
            tracing::info!("no partitions assigned to this instance: waiting");
            continue;
        }
        tracing::info!(partitions = ?ids, "partitions assigned: starting");
        let assignment = Assignment {
            ids,
            member: member.clone(),
            revoked: member.handover().begin(),
        };
        let result = run_job(plan, &job_config, store, metrics, Some(&assignment));
        member.handover().end();
        let report = result?;
        if assignment.revoked.load(Ordering::Acquire) {
            metrics.rebalance("revoked");
        }
        total.absorb(&report);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// Whether every partition's newest checkpoint in `changelog` is final (taken at the end of a
/// bounded run, with the watermark at +∞, so every window was emitted) and lies at or after
/// `end`. A committed group offset alone does not say that: a member that stops (or dies)
/// after reading to the end but before its final epoch leaves windows open.
fn all_final(changelog: &Changelog, end: &[u64]) -> Result<bool> {
    for (p, &end) in end.iter().enumerate() {
        if end == 0 {
            continue; // an empty partition has nothing to emit
        }
        let fin = changelog
            .newest_checkpoint(p as u32)?
            .is_some_and(|(meta, next_offset)| {
                meta.watermark == crate::time::END_OF_TIME && next_offset >= end
            });
        if !fin {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Runs one job: on every key partition, or on a consumer group assignment.
fn run_job<R, Op, Out>(
    plan: &Plan<R, Op, Out>,
    config: &RunConfig,
    store: &StateStore,
    metrics: &Metrics,
    assignment: Option<&Assignment>,
) -> Result<JobReport>
where
    R: DeserializeOwned + Send + 'static,
    Op: KeyedOperator,
    Out: Serialize + Send + 'static,
{
    let app_id = config.kafka.app_id(&plan.name);
    let n = key_partitions(config, &app_id)?;
    let info = store.claim(&JobInfo {
        pipeline: plan.name.clone(),
        partitions: n,
        source: config.source.identity()?,
        sink: config.sink.identity()?,
        generator_base_ms: config.generator.base_ms,
        state_format: crate::checkpoint::STATE_FORMAT,
    })?;
    // The key partitions this job runs (ascending): all, or its group assignment.
    let ids: Vec<u32> = assignment.map_or_else(|| (0..n).collect(), |a| a.ids.clone());
    let m = ids.len() as u32;
    let reader = open_reader(plan, config, &info, store, &app_id, assignment)?;
    let sink = config.sink.open(SinkContext {
        follow_symlinks: config.follow_symlinks,
        partitions: n,
        app_id: &app_id,
        kafka: &config.kafka,
    })?;

    let changelog = match &config.source {
        SourceSpec::Kafka(topic) => Some(Arc::new(Changelog::open(
            &config.kafka,
            &topic.brokers,
            &app_id,
            &plan.name,
            n,
        )?)),
        _ => None,
    };
    let resume = match &changelog {
        Some(changelog) => resume_from_changelog(changelog, store, &ids, &*sink, metrics)?,
        None => resume_local(store, n, &*sink, config.overwrite)?,
    };

    let metrics = metrics.clone();
    let trigger = Trigger::new(config.trigger);
    let workers = config.workers.max(1).min(m as usize);
    let stop = config.stop.clone();
    let revoked = assignment.map(|a| a.revoked.clone());
    let handle_signals = config.handle_signals;
    let chunk = config.chunk_size.max(1);
    let max_epoch_records = config.max_records_per_epoch.filter(|m| *m > 0);
    let supervisor_config = SupervisorConfig {
        trigger: trigger.clone(),
        checkpoint_interval: config.checkpoint_interval,
        recorded: resume.recorded,
        checkpoints: resume.checkpoints,
        changelog: changelog.clone(),
        max_dead_letter_ratio: config.max_dead_letter_ratio,
        progress: config.progress.clone(),
    };
    let tracker = WatermarkTracker::new(
        m,
        plan.rules.watermark_delay,
        config.idle_timeout,
        resume.start_watermark,
    );
    let (read_plan, base_epoch) = (resume.read_plan, resume.base_epoch);

    let partition_stores = ids
        .iter()
        .map(|&p| store.partition(p))
        .collect::<Result<Vec<_>>>()?;
    let system = actix::System::new();
    let arbiters: Vec<Arbiter> = (0..workers).map(|_| Arbiter::new()).collect();
    let handles: Vec<_> = arbiters.iter().map(Arbiter::handle).collect();
    let result = system.block_on(async move {
        let (result_tx, result_rx) = tokio::sync::oneshot::channel();
        let (control_tx, control_rx) = std::sync::mpsc::channel();
        let mut batch_links = Vec::with_capacity(m as usize);
        let supervisor = JobSupervisor::create(|ctx| {
            let me = ctx.address().recipient();
            let mut links = Vec::with_capacity(m as usize);
            for (index, &p) in ids.iter().enumerate() {
                let core = PartitionCore::new(
                    plan.operator.clone(),
                    plan.key.clone(),
                    plan.event_time.clone(),
                    plan.rules,
                );
                let (output, sink, metrics, me) = (
                    plan.output.clone(),
                    sink.clone(),
                    metrics.clone(),
                    me.clone(),
                );
                let partition_store = partition_stores[index].clone();
                let setup = PartitionSetup {
                    index: index as u32,
                    changelog: changelog.clone(),
                    base_epoch,
                };
                let addr =
                    actix::Supervisor::start_in_arbiter(&handles[index % workers], move |_| {
                        PartitionActor::new(
                            p,
                            core,
                            output,
                            partition_store,
                            sink,
                            me,
                            metrics,
                            setup,
                        )
                    });
                batch_links.push(addr.clone().recipient());
                links.push(PartitionLink {
                    end_epoch: addr.clone().recipient(),
                    advance: addr.clone().recipient(),
                    committed: addr.recipient(),
                });
            }
            JobSupervisor::new(
                links,
                store.clone(),
                sink.clone(),
                metrics.clone(),
                tracker,
                supervisor_config,
                control_tx,
                result_tx,
            )
        });

        let driver = SourceDriver {
            reader,
            transform: plan.transform.clone(),
            key: plan.key.clone(),
            partitions: batch_links,
            supervisor: supervisor.clone(),
            control: control_rx,
            sink: sink.clone(),
            trigger,
            stop: stop.clone(),
            revoked,
            chunk,
            max_epoch_records,
            metrics: metrics.clone(),
        };
        let (source_done_tx, source_done_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("spate-source".into())
            .spawn(move || {
                driver.run(read_plan);
                let _ = source_done_tx.send(());
            })
            .map_err(|e| Error::Runtime(format!("cannot start the source thread: {e}")))?;

        if handle_signals {
            let stop = stop.clone();
            actix::spawn(async move {
                wait_for_stop_signal().await;
                tracing::info!("stop requested: finishing the current epoch");
                stop.store(true, Ordering::Release);
            });
        }

        let result = result_rx.await.unwrap_or_else(|_| {
            Err(Error::Runtime(
                "the job supervisor stopped unexpectedly".into(),
            ))
        });
        // The source may be waiting for the supervisor: keep the system running until it is out.
        let _ = source_done_rx.await;
        result
    });
    for arbiter in &arbiters {
        arbiter.stop();
    }
    for arbiter in arbiters {
        let _ = arbiter.join();
    }
    result
}

#[cfg(unix)]
async fn wait_for_stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_stop_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
