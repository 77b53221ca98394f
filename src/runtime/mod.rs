//! The runtime: runs a pipeline's [`Plan`] as a job of actors. One actix arbiter (thread) per
//! worker hosts the key-partition actors; the job supervisor runs on the system arbiter; the
//! source runs on its own thread. [`run`] wires them up, restores state, and returns when the
//! input ends, the job is stopped, or it fails.
//!
//! # The epoch protocol
//!
//! The input is cut into epochs (micro-batches); an epoch is the unit of exactly-once. For
//! epoch `e`, in this order:
//!
//! 1. **Batches.** The source thread reads chunks and sends each key partition one `Batch` per
//!    chunk (never one message per record). At the trigger (or `--max-records-per-epoch`) it
//!    cuts the epoch: `EpochCut` to the supervisor, with where the input ends, how many
//!    records each partition was sent, and which partitions still have input waiting.
//! 2. **Input ended.** The supervisor sends every partition `InputEnded { e, sent }` (the
//!    batches were delivered before the cut). A partition answers at once: `Progress::Ready`
//!    (its max event time, its record count) when it has processed all `sent` records,
//!    `Progress::Done` when it finished `e` before (a replay for another partition), or
//!    `Progress::Behind` when it has seen fewer (it restarted from an older checkpoint and
//!    needs the source to replay from there).
//! 3. **Record.** With every partition's progress, the supervisor computes the watermark
//!    (`time::WatermarkTracker`), decides whether `e` checkpoints, and writes the epoch's
//!    record (input range, watermark, processing time) durably to the state store **before**
//!    any partition acts on it.
//! 4. **Seal.** `SealEpoch { e, watermark, checkpoint, .. }` to every partition: advance the
//!    watermark, fire timers, close windows and sessions, stage the epoch's outputs with the
//!    sink, prepare a checkpoint when asked; report `PartitionEvent::Staged` (`EpochDone`).
//! 5. **Commit.** Once every partition has staged `e` and every earlier epoch is committed, the
//!    supervisor commits `e`'s output at the sink (visible at once, exactly once) and tells
//!    the partitions `Committed { e }`, after which they may write the checkpoints they
//!    prepared; the source then commits its offsets upstream (Kafka: to the consumer group).
//!
//! # A second keyed stage across processes
//!
//! In one process, a chained pipeline's partitions hand each other their re-keyed records at
//! step 4 as messages, each kept in its sender's outbox file until every checkpoint passed it
//! (`exchange`, `outbox`), and an epoch commits once every stage finished it. In a consumer group (`--group`) the key partitions live in several processes, so the
//! exchange goes through the repartition topic `<app-id>-stage2-repartition`, and it is an
//! output like any other:
//!
//! - At step 4, partition P's first stage routes its results into one batch per key
//!   partition Q, each carrying P's watermark, and stages them as the epoch's `Repartition`
//!   stream (topic partition Q); step 5 writes them exactly once, with both stages'
//!   checkpoint in one changelog record.
//! - At step 1, the source reads topic partition Q beside the input and hands Q's batches to
//!   partition Q (`Batch::exchanged`, counted in `InputEnded` like records, so a replay brings
//!   them again). Q's later stage takes its watermark from the batches alone: the lowest of
//!   every upstream partition's, never the epoch's, so its results do not depend on which
//!   process read what when.
//! - Once the input is read to its end the source keeps cutting epochs as batches arrive; the
//!   job's last epoch is the first whose every later stage has every upstream partition's
//!   end of time (`Progress::Ready::later_waiting`).
//!
//! # Guarantees
//!
//! - *A replay reproduces.* Every decision that shapes output (input range, watermark,
//!   processing time) is recorded at step 3 before it is used, so replaying `e` after a crash
//!   produces the same output byte for byte; sinks skip what a replay makes visible twice.
//! - *A checkpoint never passes committed output.* A partition writes the checkpoint for `e`
//!   only after `Committed { e }`, so a restart regenerates output that was staged but not
//!   yet visible. With a changelog (Kafka sources) the checkpoint also goes to the changelog
//!   and is acknowledged before `e` commits.
//! - *Restarts are local.* A partition that panics restores its own checkpoint; the source
//!   replays the recorded epochs since, and partitions that are ahead skip them.
//! - *A takeover resends one epoch, and only that.* A process that takes a Kafka partition
//!   over restores the changelog's newest checkpoint and commits that epoch's outputs again
//!   (the sink skips what is visible). Output of a later epoch of that partition in the topic
//!   means the changelog was read before its newest record showed, or another process still
//!   writes it (a member dropped from the group while finishing an epoch): the process reads
//!   the changelog again after a pause, for up to 30 s, and then stops
//!   (`Error::OutputAhead`) rather than make those results twice.
//!
//! # Where things live
//!
//! Here: job assembly ([`run`], `run_job`). Beside it: what a job is asked and reports
//! (`config`), where it resumes (`resume`), a consumer-group member's loop (`group`), stop
//! signals (`signals`), and the actors: `source` (the source thread), `partition` (key-partition
//! actors over `core`, their protocol steps in one place: `lifecycle`), `supervisor` (steps 2,
//! 3 and 5; its epoch `ledger` decides what commits when), with their `messages`.

mod checkpoint_pace;
mod config;
mod erasures;
mod exchange;
mod group;
mod hooks;
mod input_check;
mod ledger;
mod lifecycle;
mod live_counts;
mod messages;
mod open;
mod outbox;
mod partition;
mod result_lines;
mod resume;
mod seed;
mod signals;
mod source;
mod supervisor;

pub use crate::stage::{BatchStats, Change, PartitionCore, StoredBucket};
pub(crate) use config::Trigger;
pub use config::{cores, JobReport, RunConfig, TriggerSpec};
pub use live_counts::{CountsSnapshot, LiveCounts};
pub use seed::export_keyed;

use crate::checkpoint::JobInfo;
use crate::io::kafka::Changelog;
use crate::io::sink::SinkContext;
use crate::io::source::{open_source, SourceSpec};
use crate::learning::ModelLedger;
use crate::metrics::Metrics;
use crate::operator::KeyedOperator;
use crate::pipeline::{Emit, Plan};
use crate::state::StateStore;
use crate::time::{OutputMode, WatermarkTracker};
use crate::{Error, Result};
use actix::{Actor, Arbiter, AsyncContext, Recipient};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use group::{run_in_group, Assignment};
use open::{input_sources, joined_identity, key_partitions, output_sinks, with_open_context};
use partition::{PartitionActor, PartitionSetup};
use resume::{resume_from_changelog, resume_local};
use signals::wait_for_stop_signal;
use source::SourceDriver;
use supervisor::{JobSupervisor, PartitionLink, SupervisorConfig};

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
    let sources = input_sources(&plan.name, &plan.inputs, config)?;
    let sinks = output_sinks(&plan.name, &plan.outputs, config)?;
    // From here on `source` and `sink` are the first input's and output's, however named.
    let config = &RunConfig {
        source: sources[0].clone(),
        sink: sinks[0].clone(),
        ..config.clone()
    };
    let metrics = Metrics::new(
        &plan.name,
        config.metrics_addr,
        config.unhealthy_after,
        config.otlp_endpoint.as_deref(),
    )?;
    metrics.status().set_description(plan.describe());
    let store = StateStore::open(config.state_dir.as_deref())?;
    if config.group {
        refuse_group(&plan, &sources)?;
    }
    let report = match &config.source {
        SourceSpec::Kafka(topic) if config.group => {
            run_in_group(&plan, config, topic, &store, &metrics)
        }
        _ => run_job(&plan, config, &store, &metrics, None),
    };
    metrics.flush_traces();
    report
}

/// Refuses `--group` for a pipeline that consumer groups cannot run: one whose inputs are not
/// all topics (every member would read a file whole), or that shares one model.
fn refuse_group<R, Op: KeyedOperator, Out>(
    plan: &Plan<R, Op, Out>,
    sources: &[SourceSpec],
) -> Result<()> {
    let name = &plan.name;
    let not_topic = (plan.inputs.iter().zip(sources))
        .find(|(_, source)| !matches!(source, SourceSpec::Kafka(_)));
    let reason = if let Some((input, source)) = not_topic {
        format!("input `{}` of pipeline `{name}` is {source}, not a Kafka topic: a consumer group splits topic partitions, and every member would read it whole; give it as a topic co-partitioned with the others, or run without --group", input.name)
    } else if plan.model.is_some() {
        format!("pipeline `{name}` shares one model among all its partitions, which consumer groups cannot yet learn together; run it without --group (one process runs every partition)")
    } else {
        return Ok(());
    };
    Err(Error::Refused {
        flag: "--group".into(),
        reason,
    })
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
    let mut rules = match plan.later_stage() {
        Some(stage) => stage.rules(),
        None => plan.rules,
    };
    if let Some(mode) = config.output_mode {
        if mode == OutputMode::Update && !plan.supports_update {
            return Err(refuse("--output-mode", "update".into()));
        }
        rules.output_mode = mode;
    }
    if let Some(lateness) = config.allowed_lateness {
        if lateness > 0 && !plan.supports_update {
            return Err(refuse("--allowed-lateness", format!("{lateness}ms")));
        }
        rules.allowed_lateness = lateness;
    }
    // The flags set the stage whose outputs are the results.
    match plan.later_stage() {
        Some(stage) => plan.output = Emit::Stage(Arc::from(stage.with_rules(rules))),
        None => plan.rules = rules,
    }
    Ok(plan)
}

/// What a job has opened and restored before its actors start.
struct JobParts<R> {
    /// The key partitions this job runs (ascending): all, or its group assignment.
    ids: Vec<u32>,
    reader: Box<dyn crate::io::source::SourceReader<R>>,
    sink: Arc<dyn crate::io::sink::EpochSink>,
    changelog: Option<Arc<Changelog>>,
    resume: resume::Resume,
    /// Each key partition's state tree, in `ids` order.
    stores: Vec<crate::state::PartitionStore>,
    /// The pipeline's shared model, if it has one.
    model: Option<ModelLedger>,
    /// The job's key partitions, all of them.
    partitions: u32,
    /// A chained pipeline's exchange goes through the repartition topic (a consumer group).
    exchange_topic: bool,
    /// Each partition's share of `--state-memory`, in bytes.
    memory_budget: Option<u64>,
}

/// Claims the state directory, opens the job's readers, sink and changelog, and finds where it
/// resumes.
fn prepare_job<R, Op, Out>(
    plan: &Plan<R, Op, Out>,
    config: &RunConfig,
    store: &StateStore,
    metrics: &Metrics,
    assignment: Option<&Assignment>,
) -> Result<JobParts<R>>
where
    R: DeserializeOwned + Send + 'static,
    Op: KeyedOperator,
{
    let app_id = config.kafka.app_id(&plan.name);
    let sources = input_sources(&plan.name, &plan.inputs, config)?;
    let sinks = output_sinks(&plan.name, &plan.outputs, config)?;
    let n = key_partitions(config, &plan.inputs, &sources, &app_id)?;
    let info = claim(plan, config, store, (&sources, &sinks, n))?;
    let ids: Vec<u32> = assignment.map_or_else(|| (0..n).collect(), |a| a.ids.clone());
    let ids_len = ids.len();
    let job = (&info, store, plan.name.as_str());
    let reader = with_open_context(config, job, (&app_id, assignment), |open| {
        match &plan.open_inputs {
            Some(open_inputs) => open_inputs(&sources, open),
            None => open_source(&sources[0], open, plan.generator.as_ref(), plan.decode),
        }
    })?;
    let sink = open_sinks(&sinks, config, &app_id, n)?;
    // In a consumer group, a chained pipeline's exchange goes through the repartition topic.
    let exchange_topic = assignment.is_some() && plan.later_stage().is_some();
    let (reader, sink) = match (&config.source, exchange_topic) {
        (SourceSpec::Kafka(topic), true) => {
            let name = &plan.inputs[0].name;
            with_repartition_topic((reader, sink), (name, topic), config, (&app_id, &ids, n))?
        }
        _ => (reader, sink),
    };
    let changelog = open_changelog(plan, config, (&sources, exchange_topic), &app_id, n)?;
    check_state_memory(config, changelog.is_some())?;
    let model = match &plan.model {
        Some(spec) => Some(open_model(spec, plan, config, store)?),
        None => {
            seed_from_model_file(plan, config, store, (n, &sources[0]))?;
            None
        }
    };
    let resume = match &changelog {
        Some(changelog) => {
            // The repartition topic is read as one more input.
            let inputs = sources.len() + usize::from(exchange_topic);
            resume_from_changelog(changelog, store, &ids, &*sink, metrics, inputs)?
        }
        None => resume_local(store, n, &*sink, config.overwrite)?,
    };
    let stores = ids
        .iter()
        .map(|&p| store.partition(p))
        .collect::<Result<Vec<_>>>()?;
    Ok(JobParts {
        ids,
        reader,
        sink,
        changelog,
        resume,
        stores,
        model,
        partitions: n,
        exchange_topic,
        memory_budget: (config.state_memory).map(|limit| limit / ids_len.max(1) as u64),
    })
}

/// Refuses `--state-memory` with a Kafka changelog (it keeps the state's buckets in a log in
/// the `--state` directory, checkpointed there) and with `--model` (whose state is seeded into
/// the directory's sled trees).
fn check_state_memory(config: &RunConfig, changelog: bool) -> Result<()> {
    match config.state_memory {
        Some(limit) if changelog => Err(Error::config(
            "--state-memory",
            bytesize::ByteSize(limit),
            "it does not work with a Kafka changelog yet (a job reading Kafka): run without it",
        )),
        Some(limit) if config.model.is_some() => Err(Error::config(
            "--state-memory",
            bytesize::ByteSize(limit),
            "it does not work with --model yet (the model file's state is written to the state directory in the form --state-memory cannot read): run without one of them",
        )),
        _ => Ok(()),
    }
}

/// The job's Kafka changelog, when its state follows its partitions: every input a topic (a
/// file's position is the job's, not a partition's), no shared model, and a chained
/// pipeline's exchange through the repartition topic (between the partitions of one process
/// it goes through outbox files, kept in --state only, for now).
fn open_changelog<R, Op: KeyedOperator, Out>(
    plan: &Plan<R, Op, Out>,
    config: &RunConfig,
    (sources, exchange_topic): (&[SourceSpec], bool),
    app_id: &str,
    n: u32,
) -> Result<Option<Arc<Changelog>>> {
    let all_kafka = sources.iter().all(|s| matches!(s, SourceSpec::Kafka(_)));
    let local_only = (plan.later_stage().is_some() && !exchange_topic) || plan.model.is_some();
    match &config.source {
        SourceSpec::Kafka(topic) if all_kafka && !local_only => Ok(Some(Arc::new(
            Changelog::open(&config.kafka, &topic.brokers, app_id, &plan.name, n)?,
        ))),
        _ => Ok(None),
    }
}

/// Seeds a keyed pipeline's state from `--model FILE`, when given.
fn seed_from_model_file<R, Op, Out>(
    plan: &Plan<R, Op, Out>,
    config: &RunConfig,
    store: &StateStore,
    (n, source): (u32, &SourceSpec),
) -> Result<()>
where
    Op: KeyedOperator,
{
    if let Some(model) = &config.model {
        let seeded = seed::seed_keyed(model, || new_core(plan), (store, n, source))?;
        tracing::info!(keys = seeded, file = %model.display(), "started from the --model file's state");
    }
    Ok(())
}

/// A job's reader and sink.
type ReaderAndSink<R> = (
    Box<dyn crate::io::source::SourceReader<R>>,
    Arc<dyn crate::io::sink::EpochSink>,
);

/// The job's `reader` and `sink` with the repartition topic of a chained pipeline in a
/// consumer group beside them: read with the input named `name` (topic `input`), written by
/// the partitions `ids` of `n` (see [`crate::io::kafka::repartition`]).
fn with_repartition_topic<R: Send + 'static>(
    (reader, sink): ReaderAndSink<R>,
    (name, input): (&str, &crate::io::kafka::KafkaTopic),
    config: &RunConfig,
    (app_id, ids, n): (&str, &[u32], u32),
) -> Result<ReaderAndSink<R>> {
    use crate::io::kafka::repartition::{self, Repartitioned, WithExchange};
    use crate::io::kafka::{KafkaReader, KafkaSink};
    use crate::io::source::NamedReader;
    let topic = repartition::topic(&input.brokers, app_id);
    // Created (or checked) by the sink before the reader assigns its partitions.
    let written = KafkaSink::repartition(&topic, &config.kafka, app_id, n)?;
    let decode = repartition::decode_record;
    let exchange =
        KafkaReader::open_with(&topic, &config.kafka, app_id, (ids.to_vec(), None), decode)?;
    let reader = WithExchange::new(
        NamedReader {
            name: name.to_string(),
            reader,
        },
        NamedReader {
            name: topic.topic.clone(),
            reader: Box::new(exchange),
        },
    )?;
    Ok((
        Box::new(reader),
        Arc::new(Repartitioned::new(sink, written)),
    ))
}

/// The shared model's ledger: what `store` holds, or the `--model` file's model, or the
/// pipeline's initial one.
fn open_model<R, Op: KeyedOperator, Out>(
    spec: &Arc<crate::learning::ModelSpec>,
    plan: &Plan<R, Op, Out>,
    config: &RunConfig,
    store: &StateStore,
) -> Result<ModelLedger> {
    let initial = (config.model.as_deref())
        .map(|file| crate::learning::read_model_file(spec, file, store))
        .transpose()?;
    let lateness = match plan.later_stage() {
        Some(stage) => stage.rules().allowed_lateness,
        None => 0,
    }
    .max(plan.rules.allowed_lateness);
    ModelLedger::open(spec.clone(), store.clone(), lateness, initial)
}

/// Claims `store` for this job: its pipeline, partitions, sources and sinks (a directory of
/// another job, or of this one with other settings, is refused).
fn claim<R, Op: KeyedOperator, Out>(
    plan: &Plan<R, Op, Out>,
    config: &RunConfig,
    store: &StateStore,
    (sources, sinks, n): (&[SourceSpec], &[crate::io::sink::SinkSpec], u32),
) -> Result<JobInfo> {
    let identities = |specs: Vec<Result<String>>| specs.into_iter().collect::<Result<Vec<_>>>();
    store.claim(&JobInfo {
        pipeline: plan.name.clone(),
        partitions: n,
        source: joined_identity(
            plan.inputs.iter().map(|i| i.name.as_str()),
            identities(sources.iter().map(SourceSpec::identity).collect())?,
        ),
        sink: joined_identity(
            plan.outputs.iter().map(String::as_str),
            identities(sinks.iter().map(|s| s.identity()).collect())?,
        ),
        generator_base_ms: config.generator.base_ms,
        state_format: crate::checkpoint::STATE_FORMAT,
    })
}

/// Opens the job's sinks, one per output (together when there are several).
fn open_sinks(
    sinks: &[crate::io::sink::SinkSpec],
    config: &RunConfig,
    app_id: &str,
    n: u32,
) -> Result<Arc<dyn crate::io::sink::EpochSink>> {
    let context = || SinkContext {
        follow_symlinks: config.follow_symlinks,
        partitions: n,
        app_id,
        kafka: &config.kafka,
    };
    let mut opened = (sinks.iter())
        .map(|spec| spec.open(context()))
        .collect::<Result<Vec<_>>>()?;
    Ok(match opened.len() {
        1 => opened.remove(0),
        _ => Arc::new(crate::io::sink::Outputs::new(opened)),
    })
}

/// A key partition's processing core for `plan`, with one clock per input.
fn new_core<R, Op: KeyedOperator, Out>(plan: &Plan<R, Op, Out>) -> PartitionCore<Op> {
    let core = PartitionCore::new(
        plan.operator.clone(),
        plan.key.clone(),
        plan.event_time.clone(),
        plan.rules,
    );
    match &plan.input_of {
        Some(input_of) => {
            let delays: Vec<_> = plan.inputs.iter().map(|i| i.watermark_delay).collect();
            core.with_inputs(input_of.clone(), &delays)
        }
        None => core,
    }
}

/// The links to a job's partition actors: the source's, and the supervisor's.
type Links<K, E> = (Vec<Recipient<messages::Batch<K, E>>>, Vec<PartitionLink>);

/// The running job's state lookups over its partition actors (see
/// [`crate::metrics::StateAccess`]).
fn state_access<A>(
    partitions: Vec<actix::Addr<A>>,
    supervisor: Recipient<messages::EraseKey>,
) -> crate::metrics::StateAccess
where
    A: actix::Actor<Context = actix::Context<A>>
        + actix::Handler<messages::QueryKey>
        + actix::Handler<messages::InspectPartition>,
{
    use futures::FutureExt;
    let inspected: Vec<Recipient<messages::InspectPartition>> =
        partitions.iter().map(|a| a.clone().recipient()).collect();
    let summaries = Arc::new(move || {
        let asks: Vec<_> = (inspected.iter())
            .map(|p| p.send(messages::InspectPartition))
            .collect();
        // A partition restarting (its mailbox closed) is left out until it is back.
        async move {
            let answers = futures::future::join_all(asks).await;
            answers.into_iter().filter_map(|a| a.ok()).collect()
        }
        .boxed()
    });
    let queried: Vec<Recipient<messages::QueryKey>> =
        partitions.into_iter().map(|a| a.recipient()).collect();
    let key = key_lookup(queried);
    crate::metrics::StateAccess {
        erase: erase_request(key.clone(), supervisor),
        key,
        partitions: summaries,
    }
}

/// Erasures through `supervisor` (see [`crate::metrics::EraseRequest`]): a key text that
/// cannot be one of the pipeline's (`key` says) is refused before it is queued.
fn erase_request(
    key: crate::metrics::StateLookup,
    supervisor: Recipient<messages::EraseKey>,
) -> crate::metrics::EraseRequest {
    use crate::metrics::EraseRefused;
    use futures::FutureExt;
    Arc::new(move |text: String| {
        let (check, supervisor) = (key(text.clone()), supervisor.clone());
        async move {
            check.await.map_err(EraseRefused::NotAKey)?;
            let (reply, answer) = tokio::sync::oneshot::channel();
            let request = messages::EraseKey { key: text, reply };
            supervisor
                .try_send(request)
                .map_err(|_| EraseRefused::JobEnded)?;
            answer.await.map_err(|_| EraseRefused::JobEnded)
        }
        .boxed()
    })
}

/// A lookup of keys' state over `partitions` (see [`crate::metrics::StateLookup`]): asks each
/// and takes the one that holds the key.
fn key_lookup(partitions: Vec<Recipient<messages::QueryKey>>) -> crate::metrics::StateLookup {
    use futures::FutureExt;
    Arc::new(move |key: String| {
        let asks: Vec<_> = (partitions.iter())
            .map(|p| p.send(messages::QueryKey(key.clone())))
            .collect();
        async move {
            let mut found = None;
            for answer in futures::future::join_all(asks).await {
                match answer {
                    Ok(Ok(Some(report))) => found = Some(report),
                    Ok(Err(why)) => return Err(why),
                    // A partition restarting (its mailbox closed) holds nothing to show now.
                    Ok(Ok(None)) | Err(_) => {}
                }
            }
            Ok(found)
        }
        .boxed()
    })
}

/// Starts a partition actor for each of `parts.ids`, spread over `workers`, reporting to
/// `supervisor`.
fn start_partitions<R, Op, Out>(
    plan: &Plan<R, Op, Out>,
    parts: &JobParts<R>,
    workers: &[actix::ArbiterHandle],
    (supervisor, metrics): (actix::Addr<JobSupervisor>, &Metrics),
) -> Links<Op::Key, Op::Event>
where
    Op: KeyedOperator,
    Out: Serialize + Send + 'static,
{
    let (mut batches, mut links, mut peers) = (Vec::new(), Vec::new(), Vec::new());
    for (index, &p) in parts.ids.iter().enumerate() {
        let core = new_core(plan);
        let output = (plan.output.clone(), plan.route.clone());
        let (store, sink) = (parts.stores[index].clone(), parts.sink.clone());
        let (supervisor, metrics) = (supervisor.clone().recipient(), metrics.clone());
        let setup = PartitionSetup {
            index: index as u32,
            changelog: parts.changelog.clone(),
            base_epoch: parts.resume.base_epoch,
            trees: parts.stores.clone(),
            key_partitions: parts.partitions,
            exchange_topic: parts.exchange_topic,
            memory_budget: parts.memory_budget,
        };
        let addr =
            actix::Supervisor::start_in_arbiter(&workers[index % workers.len()], move |_| {
                PartitionActor::new(p, core, output, store, sink, supervisor, metrics, setup)
            });
        batches.push(addr.clone().recipient());
        peers.push(addr.clone());
        links.push(PartitionLink {
            input_ended: addr.clone().recipient(),
            seal: addr.clone().recipient(),
            committed: addr.recipient(),
        });
    }
    if plan.later_stage().is_some() {
        let exchange: Vec<_> = peers.iter().map(|a| a.clone().recipient()).collect();
        for addr in &peers {
            addr.do_send(exchange::Peers(exchange.clone()));
        }
    }
    let access = state_access(peers.clone(), supervisor.recipient());
    metrics.live_state().set(Some(access));
    (batches, links)
}

/// What the supervisor of the job of `parts` needs from `plan` and `config`; takes what
/// resuming found (the recorded epochs and checkpoints) and the shared model out of `parts`.
fn supervisor_config<R, Op: KeyedOperator, Out>(
    plan: &Plan<R, Op, Out>,
    config: &RunConfig,
    parts: &mut JobParts<R>,
    trigger: &Trigger,
) -> SupervisorConfig {
    let workers = config.workers.max(1).min(parts.ids.len()) as u32;
    SupervisorConfig {
        trigger: trigger.clone(),
        checkpoint_pace: checkpoint_pace::CheckpointPace::new(config.checkpoint_interval, workers),
        recorded: std::mem::take(&mut parts.resume.recorded),
        erase_requests: std::mem::take(&mut parts.resume.erase_requests),
        checkpoints: std::mem::take(&mut parts.resume.checkpoints),
        changelog: parts.changelog.clone(),
        max_dead_letter_ratio: config.max_dead_letter_ratio,
        progress: config.progress.clone(),
        operator_metrics: plan.operator_metrics(),
        model: parts.model.take(),
        exchange_topic: parts.exchange_topic,
    }
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
    let mut parts = prepare_job(plan, config, store, metrics, assignment)?;
    let m = parts.ids.len();
    let trigger = Trigger::new(config.trigger);
    let supervisor_config = supervisor_config(plan, config, &mut parts, &trigger);
    // One watermark channel per input and partition, input-major.
    let delays: Vec<_> = (plan.inputs.iter())
        .flat_map(|input| std::iter::repeat_n(input.watermark_delay, m))
        .collect();
    let tracker =
        WatermarkTracker::with_channels(&delays, config.idle_timeout, parts.resume.start_watermark);
    let system = actix::System::new();
    let arbiters: Vec<Arbiter> = (0..config.workers.max(1).min(m))
        .map(|_| Arbiter::new())
        .collect();
    let workers: Vec<_> = arbiters.iter().map(Arbiter::handle).collect();
    let result = system.block_on(async move {
        let (result_tx, result_rx) = tokio::sync::oneshot::channel();
        let (control_tx, control_rx) = std::sync::mpsc::channel();
        let mut batch_links = Vec::new();
        let supervisor = JobSupervisor::create(|ctx| {
            let me = ctx.address();
            let (batches, links) = start_partitions(plan, &parts, &workers, (me, metrics));
            batch_links = batches;
            JobSupervisor::new(
                links,
                store.clone(),
                parts.sink.clone(),
                metrics.clone(),
                tracker,
                supervisor_config,
                control_tx,
                result_tx,
            )
        });
        let driver = SourceDriver {
            reader: crate::io::source::read_ahead(parts.reader),
            transform: plan.transform.clone(),
            key: plan.key.clone(),
            partitions: batch_links,
            supervisor,
            control: control_rx,
            sink: parts.sink,
            trigger,
            stop: config.stop.clone(),
            revoked: assignment.map(|a| a.revoked.clone()),
            chunk: config.chunk_size.max(1),
            max_epoch_records: config.max_records_per_epoch.filter(|m| *m > 0),
            metrics: metrics.clone(),
            closes_before_end: plan.model.is_some(),
            exchange_topic: parts.exchange_topic,
            clock: (plan.input_of.clone()).map(|input_of| {
                source::InputClock::new(plan.event_time.clone(), input_of, plan.inputs.len())
            }),
        };
        run_actors(driver, parts.resume.read_plan, config, result_rx).await
    });
    metrics.live_state().set(None);
    for arbiter in &arbiters {
        arbiter.stop();
    }
    for arbiter in arbiters {
        let _ = arbiter.join();
    }
    result
}

/// Starts the source thread (and, when asked, the stop-signal handler), then waits for the
/// supervisor's result and for the source thread to be out.
async fn run_actors<R, E, K>(
    driver: SourceDriver<R, E, K>,
    read_plan: source::ReadPlan,
    config: &RunConfig,
    result: tokio::sync::oneshot::Receiver<Result<JobReport>>,
) -> Result<JobReport>
where
    R: Send + 'static,
    E: Send + 'static,
    K: crate::Key,
{
    let (source_done_tx, source_done_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("spate-source".into())
        .spawn(move || {
            driver.run(read_plan);
            let _ = source_done_tx.send(());
        })
        .map_err(Error::thread("source"))?;
    if config.handle_signals {
        let stop = config.stop.clone();
        actix::spawn(async move {
            wait_for_stop_signal().await;
            tracing::info!("stop requested: finishing the current epoch");
            stop.store(true, Ordering::Release);
        });
    }
    let result = result.await.unwrap_or_else(|_| {
        Err(Error::PartGone {
            part: "the job supervisor".into(),
            detail: "it ended without a result".into(),
        })
    });
    // The source may be waiting for the supervisor: keep the system running until it is out.
    let _ = source_done_rx.await;
    result
}
