//! The key-partition actor: owns every key that hashes to its partition, runs the operator on
//! each batch, and at each epoch end fires timers, stages and reports its outputs, then (when
//! asked) prepares a checkpoint of its changed state buckets, which it writes once the epoch
//! is committed. In a chained pipeline it also runs its share of the later stage: at each
//! epoch end it sends the first stage's results to the later stage's partitions instead, and
//! stages the epoch once the later stage has every partition's batch (see [`crate::stage`]).
//! A panic in operator code stops the actor;
//! actix's supervisor restarts it and `restarting` restores the last checkpoint, after which the
//! job supervisor has the source replay what the partition lost.

use super::exchange::{Chain, Exchange, Peers, ReadyEpoch, SealedEpoch, StreamLines};
use super::lifecycle::{EpochLifecycle, Panicked};
use super::messages::{
    Batch, Committed, EpochDone, Erased, InputEnded, InspectPartition, PartitionEvent, Progress,
    QueryKey, SealEpoch,
};
use super::result_lines::{LineForm, PartsTo, ResultLines, PART_BYTES};
use crate::checkpoint::{Epoch, PartitionCheckpoint};
use crate::io::kafka::repartition::{self, ExchangeRecord};
use crate::io::kafka::{Changelog, CheckpointRecord, LaterRecord};
use crate::io::sink::Staged;
use crate::io::sink::{EpochSink, Lines, OutputStream};
use crate::metrics::Metrics;
use crate::operator::KeyedOperator;
use crate::pipeline::{Emit, OutputFn, RouteFn};
use crate::stage::write_late_lines;
use crate::stage::PartitionCore;
use crate::stage::{Exchanged, Routed};
use crate::state::{PartitionStore, PreparedCheckpoint, Residency};
use crate::time::{BEFORE_TIME, END_OF_TIME};
use crate::Key;
use crate::{Error, Result};
use actix::{Actor, ActorContext, Context, Handler, Recipient, Supervised};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often in a row one partition may fail before the job gives up (a record that always
/// panics would otherwise restart the partition forever).
const MAX_CONSECUTIVE_FAILURES: u32 = 3;

/// A checkpoint prepared at an epoch end: the first stage's, and the later stage's in a
/// chained pipeline (written together, in one batch).
struct Prepared {
    first: PreparedCheckpoint,
    later: Option<PreparedCheckpoint>,
    /// Time spent encoding both (the writing is timed when it happens).
    encoding: Duration,
}

/// One key partition.
pub(crate) struct PartitionActor<Op: KeyedOperator, Out> {
    /// The key partition (the source partition for Kafka): names its output, state and
    /// changelog partition.
    partition: u32,
    /// Its place among the job's partitions, which the supervisor knows it by.
    index: u32,
    writer: String,
    /// Boxed: actix needs the actor to be `Unpin`, the operator's state types need not be.
    core: Box<PartitionCore<Op>>,
    /// Operator output → results (a single-stage pipeline).
    output: Option<OutputFn<Op::Output, Out>>,
    /// The later stage's share in this partition (a chained pipeline).
    chain: Option<Box<Chain<Op::Output, Out>>>,
    /// Which of the pipeline's outputs a result goes to (several outputs).
    route: Option<RouteFn<Out>>,
    store: PartitionStore,
    sink: Arc<dyn EpochSink>,
    supervisor: Recipient<PartitionEvent>,
    metrics: Metrics,
    /// The last durable checkpoint.
    checkpoint: PartitionCheckpoint,
    /// Checkpoints prepared at the end of epochs not yet committed, oldest first.
    prepared: VecDeque<Prepared>,
    /// The epoch whose records are arriving.
    next_epoch: Epoch,
    /// Records of `next_epoch` processed so far (the source's per-partition index).
    seen: u64,
    /// Records of each input the core had received when the epoch began.
    received_before: Vec<u64>,
    /// Set when operator code panicked; the restart restores the checkpoint.
    failure: Option<String>,
    restarts: u32,
    consecutive_failures: u32,
    /// The epoch the last failure happened in: the failure streak ends only once the partition
    /// gets past it (replayed epochs before it prove nothing).
    failed_epoch: Epoch,
    /// Where checkpoints go before their epoch's output is committed (Kafka sources).
    changelog: Option<Arc<Changelog>>,
    /// The last epoch written to the changelog: a replay never writes an older one over it.
    changelog_epoch: Epoch,
    /// Checkpoint records sent in pieces (epoch, pieces), dropped once a newer checkpoint is
    /// committed.
    changelog_pieces: VecDeque<(Epoch, u32)>,
    /// The epoch the job started after: a checkpoint older than it (restored from the
    /// changelog, written by another run) counts as this epoch's.
    base_epoch: Epoch,
    /// Dead letters of `next_epoch` received so far, as JSON lines, and how many.
    dead_lines: Vec<u8>,
    dead_seen: u64,
    /// The later stage's batches come through the repartition topic (a consumer group), not
    /// from the other partitions of this job.
    exchange_topic: bool,
    /// Exchange batches of `next_epoch` processed so far (see [`Batch::exchanged`]).
    exchanged_seen: u64,
    /// State expiries counted by the core up to the last epoch end.
    expired_seen: u64,
    /// What eviction had done at the last report (`--state-memory`).
    residency_seen: Residency,
    /// The keys erased at each epoch's end not yet reported (see [`EpochDone::erased`]).
    erased: BTreeMap<Epoch, Vec<Erased>>,
    /// The results of `next_epoch` so far (a single-stage pipeline), written after each batch
    /// while the records they were made of are still in the cache (written at the epoch's
    /// end, every string of them was a cache miss), and staged in parts of [`PART_BYTES`] as
    /// they pass it when the sink takes parts.
    results: ResultLines,
}

/// Where a partition stands in its job.
pub(crate) struct PartitionSetup {
    /// Its place among the job's partitions.
    pub(crate) index: u32,
    /// The changelog (Kafka sources), written before an epoch's output is committed.
    pub(crate) changelog: Option<Arc<Changelog>>,
    /// The epoch the job starts after: a checkpoint older than it (restored from the
    /// changelog, written by another run) counts as this epoch's.
    pub(crate) base_epoch: Epoch,
    /// Every partition's state tree, by index (a chained pipeline's partitions write each
    /// other's inbox).
    pub(crate) trees: Vec<PartitionStore>,
    /// The job's key partitions, all of them (a consumer-group member runs some).
    pub(crate) key_partitions: u32,
    /// A chained pipeline's exchange goes through the repartition topic.
    pub(crate) exchange_topic: bool,
    /// Bytes of its first stage's state to keep in memory (`--state-memory`); the rest is
    /// read back from `store` when needed.
    pub(crate) memory_budget: Option<u64>,
}

impl<Op: KeyedOperator, Out: Serialize + Send + 'static> PartitionActor<Op, Out> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        partition: u32,
        core: PartitionCore<Op>,
        (output, route): (Emit<Op::Output, Out>, Option<RouteFn<Out>>),
        store: PartitionStore,
        sink: Arc<dyn EpochSink>,
        supervisor: Recipient<PartitionEvent>,
        metrics: Metrics,
        setup: PartitionSetup,
    ) -> Self {
        let mut core = core;
        let (dir, durable) = (
            store.store().files_dir().to_path_buf(),
            store.store().is_durable(),
        );
        match setup.memory_budget {
            Some(budget) => core.limit_memory(budget, dir, partition),
            None if setup.changelog.is_none() => core.log_buckets(dir, partition, durable),
            None => {}
        }
        let (output, chain) = match output {
            Emit::Results(output) => (Some(output), None),
            Emit::Stage(stage) => {
                let runner = stage.start(partition, setup.key_partitions);
                let logged = setup.changelog.is_none();
                let chain = Chain::new(runner, setup.index, setup.trees, logged);
                (None, Some(Box::new(chain)))
            }
        };
        // With their keys when the sink uses them or the changelog keeps the lines for
        // whichever run stages them; not at all when the sink drops them.
        let form = LineForm::of(&*sink, setup.changelog.is_some());
        let writer = crate::io::sink::writer_name(partition);
        let part_bytes = super::hooks::result_part_bytes(PART_BYTES);
        let parts = PartsTo::new(sink.clone(), writer.clone(), part_bytes);
        let mut actor = PartitionActor {
            partition,
            index: setup.index,
            writer,
            core: Box::new(core),
            output,
            chain,
            route,
            store,
            sink,
            supervisor,
            metrics,
            checkpoint: PartitionCheckpoint::default(),
            prepared: VecDeque::new(),
            next_epoch: 1,
            seen: 0,
            received_before: Vec::new(),
            failure: None,
            restarts: 0,
            consecutive_failures: 0,
            failed_epoch: 0,
            changelog: setup.changelog,
            changelog_epoch: 0,
            changelog_pieces: VecDeque::new(),
            base_epoch: setup.base_epoch,
            dead_lines: Vec::new(),
            dead_seen: 0,
            exchange_topic: setup.exchange_topic,
            exchanged_seen: 0,
            expired_seen: 0,
            residency_seen: Residency::default(),
            erased: BTreeMap::new(),
            results: ResultLines::new(form).in_parts(parts, 1),
        };
        if let Err(e) = actor.on_restore() {
            actor.fatal(e);
        }
        actor
    }

    /// Erases the first stage's state of `keys` (see [`SealEpoch::erase`]), noting those it
    /// held for `epoch`'s report.
    fn erase(&mut self, epoch: Epoch, keys: &[String]) {
        let found: Vec<_> = (keys.iter())
            .filter_map(|text| {
                let (key, json) = crate::state::parse_key::<Op::Key>(text).ok()?;
                self.core.erase(&key).then(|| Erased {
                    request: text.clone(),
                    key: json.to_string(),
                    partition: self.partition,
                })
            })
            .collect();
        if !found.is_empty() {
            self.erased.insert(epoch, found);
        }
    }

    fn report_state(&mut self) {
        let later_keys = self.chain.as_ref().map_or(0, |c| c.runner.key_count());
        self.metrics.state(
            self.partition,
            (self.core.key_count() + later_keys) as u64,
            self.core.stored_bytes(),
        );
        if let Some(now) = self.core.residency() {
            (self.metrics).residency(self.partition, now, self.residency_seen);
            self.residency_seen = now;
        }
    }

    fn fatal(&self, error: Error) {
        self.supervisor.do_send(PartitionEvent::Fatal {
            partition: self.partition,
            error: Box::new(error),
        });
    }

    fn fail(&mut self, ctx: &mut Context<Self>, panic: Box<dyn std::any::Any + Send>) {
        let message = panic_message(&panic);
        tracing::error!(partition = self.partition, "operator panicked: {message}");
        self.failure = Some(message);
        self.failed_epoch = self.failed_epoch.max(self.next_epoch);
        ctx.stop();
    }

    /// The first stage's results of the epoch (a single-stage pipeline), as JSON lines.
    fn first_results(&mut self) -> Result<ResultLines> {
        self.write_results();
        let next = self.results.sized_alike(self.next_epoch + 1);
        std::mem::replace(&mut self.results, next).finish()
    }

    /// Adds what the first stage emitted since the last call to the epoch's results, when
    /// they are the pipeline's (a single-stage pipeline).
    fn write_results(&mut self) {
        let output = self.output.as_ref();
        write_results(
            &mut self.core,
            output,
            self.route.as_ref(),
            &mut self.results,
        );
    }

    /// The first stage's late records of the epoch as JSON lines, how many, and its dead
    /// letters.
    fn first_late_and_dead(&mut self) -> Result<(Vec<u8>, u64, Vec<u8>)> {
        let mut late_lines = Vec::new();
        let late = write_late_lines(self.partition, &self.core.take_late(), &mut late_lines)?;
        Ok((late_lines, late, std::mem::take(&mut self.dead_lines)))
    }

    /// Stages serialized outputs of `epoch` with the sink.
    fn stage(&self, epoch: Epoch, streams: Vec<StreamLines>) -> Result<Vec<Staged>> {
        let mut staged = Vec::with_capacity(streams.len());
        for (stream, lines) in streams {
            staged.extend(self.sink.stage_keyed(epoch, stream, &self.writer, lines)?);
        }
        Ok(staged)
    }

    /// Prepares the first stage's checkpoint of `msg`'s epoch, and says how long encoding it
    /// took; with a changelog, sends it there with the epoch's `streams` (and the later
    /// stage's checkpoint `later`, when the record carries it) first.
    fn prepare_first(
        &mut self,
        msg: &SealEpoch,
        streams: &[StreamLines],
        later: Option<&PreparedCheckpoint>,
    ) -> Result<(PreparedCheckpoint, Duration)> {
        let started = Instant::now();
        let meta = self.core.checkpoint_meta(msg.epoch);
        let prepared = if self.core.is_logged() {
            let logged = self.core.checkpoint_log(msg.epoch)?;
            let bytes = logged.as_ref().map_or(0, |(_, bytes)| *bytes);
            PreparedCheckpoint {
                bytes,
                ..PreparedCheckpoint::logged(meta.clone(), logged.map(|(index, _)| index))
            }
        } else {
            let (prepared, sizes) =
                PartitionStore::prepare_checkpoint(self.core.drain_changes(), &meta);
            self.core.note_stored(sizes);
            prepared
        };
        let encoding = started.elapsed();
        if let Some(changelog) = self
            .changelog
            .as_ref()
            .filter(|_| msg.epoch > self.changelog_epoch)
        {
            let pieces = changelog.send_checkpoint(
                self.partition,
                &CheckpointRecord {
                    meta: &meta,
                    next_offsets: &msg.next_offsets,
                    entries: &prepared.entries,
                    outputs: streams,
                    later: later.map(|l| LaterRecord {
                        meta: &l.meta,
                        entries: &l.entries,
                    }),
                    held: self.core.stored_entries() as u64,
                },
            )?;
            if pieces > 0 {
                self.changelog_pieces.push_back((msg.epoch, pieces));
            }
            self.changelog_epoch = msg.epoch;
        }
        Ok((prepared, encoding))
    }

    /// Stages the epoch's outputs and reports them; then, when asked, checkpoints. With a
    /// changelog the checkpoint and the outputs are sent to it first; the supervisor commits
    /// the epoch once the changelog acknowledged them, when another instance could take over.
    fn finish_epoch(&mut self, msg: SealEpoch) -> Result<()> {
        let mut results = self.first_results()?;
        let outputs = results.count;
        let parts = results.finish_parts()?;
        let mut streams = results.into_streams();
        let (late_lines, late, dead_lines) = self.first_late_and_dead()?;
        streams.extend(late_and_dead(late_lines, dead_lines));
        if msg.checkpoint {
            let (first, encoding) = self.prepare_first(&msg, &streams, None)?;
            self.prepared.push_back(Prepared {
                first,
                later: None,
                encoding,
            });
        }
        self.report_staged(&msg, (parts, streams), (outputs, late))
    }

    /// Stages `streams` for `msg`'s epoch and reports them, with the outputs staged in `parts`
    /// already (`outputs` results and `late` late records), to the supervisor.
    fn report_staged(
        &mut self,
        msg: &SealEpoch,
        (mut staged, streams): (Vec<Staged>, Vec<StreamLines>),
        (outputs, late): (u64, u64),
    ) -> Result<()> {
        staged.extend(self.stage(msg.epoch, streams)?);
        if msg.suppress_output {
            staged.clear();
        }
        let expired = self.core.counts().expired - self.expired_seen;
        self.expired_seen += expired;
        let mut counters = self.core.take_counters();
        let mut learned = self.core.take_learned();
        if let Some(chain) = self.chain.as_mut() {
            counters.merge(&chain.runner.take_counters());
            learned.extend(chain.runner.take_learned());
        }
        self.supervisor
            .do_send(PartitionEvent::Staged(Box::new(EpochDone {
                partition: self.index,
                epoch: msg.epoch,
                skipped: false,
                staged,
                outputs,
                late,
                expired,
                counters,
                learned,
                erased: self.erased.remove(&msg.epoch).unwrap_or_default(),
            })));
        self.report_state();
        Ok(())
    }

    /// Seals the first stage's share of `msg`'s epoch in a chained pipeline: its results go
    /// to the later stage (`batches`, routed), its late records and dead letters and its
    /// checkpoint wait for the later stage to finish the epoch.
    fn seal_into_chain(&mut self, msg: SealEpoch, batches: Vec<Exchanged>) -> Result<()> {
        let (late_lines, late, dead_lines) = self.first_late_and_dead()?;
        let checkpoint = match msg.checkpoint {
            true => Some(self.prepare_first(&msg, &[], None)?),
            false => None,
        };
        let sealed = SealedEpoch {
            seal: msg,
            late_lines,
            late,
            dead_lines,
            checkpoint,
        };
        self.chain
            .as_mut()
            .expect("a chained partition")
            .send(batches, sealed)
    }

    /// Finishes `msg`'s epoch of a chained partition whose exchange goes through the
    /// repartition topic: the first stage's `batches` (one per key partition, even empty: each
    /// carries the watermark; none once the end of time was sent) become the epoch's repartition stream, the later stage's results
    /// (it processed the batches that arrived in the epoch, and its watermark moved only with
    /// theirs) its results; both stages checkpoint in one record.
    fn seal_through_topic(&mut self, msg: SealEpoch, batches: Vec<Exchanged>) -> Result<()> {
        let chain = self.chain.as_mut().expect("a chained partition");
        let mut exchange = Vec::new();
        for batch in &batches {
            repartition::encode_line(&chain.runner.encode(batch), &mut exchange);
        }
        let mut results = self.later_results(msg.epoch)?;
        let parts = results.finish_parts()?;
        let (mut late_lines, first_late, dead_lines) = self.first_late_and_dead()?;
        let chain = self.chain.as_mut().expect("a chained partition");
        let late = first_late + chain.runner.take_late(self.partition, &mut late_lines)?;
        let outputs = results.count;
        let mut streams = vec![(OutputStream::Repartition, Lines::unkeyed(exchange))];
        streams.extend(results.into_streams());
        streams.extend(late_and_dead(late_lines, dead_lines));
        if msg.checkpoint {
            let started = Instant::now();
            let later = chain.prepare_checkpoint(msg.epoch)?;
            let later_encoding = started.elapsed();
            let (first, encoding) = self.prepare_first(&msg, &streams, Some(&later))?;
            self.prepared.push_back(Prepared {
                first,
                later: Some(later),
                encoding: encoding + later_encoding,
            });
        }
        self.report_staged(&msg, (parts, streams), (outputs, late))
    }

    /// Runs the later stage on exchange batches read from the repartition topic (operator
    /// code: may panic); a batch that does not decode stops the job.
    fn process_exchanged(&mut self, exchanged: Vec<ExchangeRecord>) -> Result<(), Panicked> {
        let Some(chain) = self.chain.as_mut() else {
            return Ok(());
        };
        let mut decoded = Vec::with_capacity(exchanged.len());
        for record in exchanged {
            match chain.runner.decode(&record.batch) {
                Ok(batch) => decoded.push((record.from as usize, batch)),
                Err(detail) => {
                    self.fatal(Error::ForeignExchange {
                        place: format!(
                            "the repartition topic (a batch from partition {} to partition {})",
                            record.from, self.partition
                        ),
                        detail: format!("it does not decode: {detail}"),
                    });
                    return Ok(());
                }
            }
        }
        let runner = &mut chain.runner;
        catch_unwind(AssertUnwindSafe(|| {
            for (from, batch) in decoded {
                runner.process(from, batch);
            }
        }))
        .map_err(Panicked)
    }

    /// The later stage's results of `epoch` since the last call, as JSON lines.
    fn later_results(&mut self, epoch: Epoch) -> Result<ResultLines> {
        let chain = self.chain.as_mut().expect("a chained partition");
        let mut results = self.results.emptied(epoch);
        let route = self.route.as_ref();
        chain
            .runner
            .take_results(&mut |key, out| results.add(route, key, &out));
        results.finish()
    }

    /// Runs the later stage over every epoch it has all batches of, in order, staging and
    /// reporting each.
    fn finish_later(&mut self) -> Result<(), Panicked> {
        while let Some(ReadyEpoch { batches, sealed }) =
            self.chain.as_mut().and_then(|c| c.take_ready())
        {
            let runner = &mut self.chain.as_mut().expect("a chained partition").runner;
            let seal = &sealed.seal;
            let ran = catch_unwind(AssertUnwindSafe(|| {
                for (from, batch) in batches.into_iter().enumerate() {
                    runner.process(from, batch);
                }
                runner.advance(seal.watermark, seal.processing_time, seal.model.as_ref());
            }));
            if let Err(panic) = ran {
                self.supervisor.do_send(PartitionEvent::Failed {
                    partition: self.index,
                    epoch: seal.epoch,
                    checkpoint: self.checkpoint.epoch,
                    attempt: self.restarts + 1,
                });
                return Err(Panicked(panic));
            }
            if let Err(e) = self.stage_later(sealed) {
                self.fatal(e);
                break;
            }
        }
        Ok(())
    }

    /// Stages the later stage's results of `sealed`'s epoch with the first stage's late
    /// records and dead letters, reports them, and keeps both stages' checkpoint when asked.
    fn stage_later(&mut self, mut sealed: SealedEpoch) -> Result<()> {
        let mut results = self.later_results(sealed.seal.epoch)?;
        let parts = results.finish_parts()?;
        let chain = self.chain.as_mut().expect("a chained partition");
        let late = sealed.late
            + chain
                .runner
                .take_late(self.partition, &mut sealed.late_lines)?;
        if let Some((first, first_encoding)) = sealed.checkpoint {
            let started = Instant::now();
            let later = Some(chain.prepare_checkpoint(sealed.seal.epoch)?);
            self.prepared.push_back(Prepared {
                first,
                later,
                encoding: first_encoding + started.elapsed(),
            });
        }
        let outputs = results.count;
        let mut streams = results.into_streams();
        streams.extend(late_and_dead(sealed.late_lines, sealed.dead_lines));
        self.report_staged(&sealed.seal, (parts, streams), (outputs, late))
    }

    /// Restores the first stage's state as of `meta`: from sled (a job with a Kafka
    /// changelog), or from the bucket log. A directory whose state is in sled (written with a
    /// changelog, or before the log) moves it to the log when run without a changelog.
    fn restore_state(&mut self, meta: &PartitionCheckpoint) -> Result<()> {
        let index = self.store.log_index()?;
        if !self.core.is_logged() {
            if index.is_some() {
                return Err(Error::config(
                    "--state",
                    self.store.path().display(),
                    "its state is in bucket logs, written by a run without a Kafka changelog: run the job that way, or start it with a new --state directory",
                ));
            }
            return self.core.restore_stored(meta, &self.store);
        }
        let written_without_limit = || {
            Error::config(
                "--state",
                self.store.path().display(),
                "its state was written without --state-memory: run without it, or start the job in a new --state directory",
            )
        };
        let limited = self.core.is_limited();
        match index {
            Some(_) if limited && meta.bucket_bits != crate::state::SPILL_BUCKET_BITS => {
                Err(written_without_limit())
            }
            Some(index) => self.core.restore_logged(meta, Some(index)),
            // A new job's state, or one seeded from --model, is in sled too.
            None if !limited => self.core.restore_moving(meta, &self.store),
            None if meta.epoch == 0 => self.core.restore_logged(meta, None),
            None => Err(written_without_limit()),
        }
    }

    /// Writes the prepared checkpoints of committed epochs, oldest first, and drops the
    /// changelog pieces of records older than the newest one written for a committed epoch
    /// (the changelog acknowledged it before the commit).
    fn write_committed_checkpoints(&mut self, msg: Committed) -> Result<()> {
        let Committed {
            epoch: committed,
            checkpointed,
        } = msg;
        if let Some(changelog) = &self.changelog {
            // The newest record this partition wrote that is surely acknowledged.
            let newest = committed.min(self.changelog_epoch);
            while let Some(&(epoch, pieces)) = self.changelog_pieces.front() {
                if epoch >= newest {
                    break;
                }
                changelog.drop_pieces(self.partition, epoch, pieces)?;
                self.changelog_pieces.pop_front();
            }
        }
        while self
            .prepared
            .front()
            .is_some_and(|c| c.first.meta.epoch <= committed)
        {
            let Prepared {
                first,
                later,
                encoding,
            } = self.prepared.pop_front().expect("checked above");
            let started = Instant::now();
            let meta = first.meta.clone();
            let bytes = first.bytes + later.as_ref().map_or(0, |l| l.bytes);
            self.core.sync_log()?;
            match (later, self.chain.as_mut()) {
                (Some(later), Some(chain)) => {
                    chain.sync()?;
                    PartitionStore::apply_checkpoints(
                        vec![(&self.store, first), (&chain.store, later)],
                        Some(meta.epoch),
                    )?;
                    chain.written(meta.epoch, checkpointed)?;
                }
                _ => self.store.apply_checkpoint(first)?,
            }
            self.core.written(meta.epoch)?;
            self.supervisor.do_send(PartitionEvent::Checkpointed {
                partition: self.index,
                epoch: meta.epoch,
                bytes,
                millis: (encoding + started.elapsed()).as_secs_f64() * 1e3,
            });
            self.checkpoint = meta;
        }
        Ok(())
    }
}

/// Adds what `core` emitted since the last call to `results`, through the pipeline's `output`
/// (a single-stage pipeline; without one the outputs stay for the next stage).
fn write_results<Op: KeyedOperator, Out: Serialize>(
    core: &mut PartitionCore<Op>,
    output: Option<&OutputFn<Op::Output, Out>>,
    route: Option<&RouteFn<Out>>,
    results: &mut ResultLines,
) {
    let Some(output) = output else {
        return;
    };
    for (key, o) in core.take_keyed_outputs() {
        output(o, &mut |out| {
            results.add(route, &|k| key.write_record_key(k), &out);
        });
    }
}

/// The late records' and dead letters' streams, when there are any.
fn late_and_dead(late_lines: Vec<u8>, dead_lines: Vec<u8>) -> Vec<StreamLines> {
    let mut streams = Vec::new();
    if !late_lines.is_empty() {
        streams.push((OutputStream::Late, Lines::unkeyed(late_lines)));
    }
    if !dead_lines.is_empty() {
        streams.push((OutputStream::DeadLetter, Lines::unkeyed(dead_lines)));
    }
    streams
}

/// The text of a panic payload.
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".into())
}

impl<Op: KeyedOperator, Out: Serialize + Send + 'static> Actor for PartitionActor<Op, Out> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Room for a batch per source chunk plus control messages; the source waits for each
        // batch to be handled, so the mailbox never grows beyond this.
        ctx.set_mailbox_capacity(64);
    }
}

impl<Op: KeyedOperator, Out: Serialize + Send + 'static> Supervised for PartitionActor<Op, Out> {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        let message = self.failure.take().unwrap_or_else(|| "stopped".into());
        self.restarts += 1;
        self.consecutive_failures += 1;
        self.metrics.restart(self.partition);
        if let Err(e) = self.on_restore() {
            return self.fatal(e);
        }
        tracing::warn!(
            partition = self.partition,
            checkpoint = self.checkpoint.epoch,
            attempt = self.restarts,
            "partition restarted from its checkpoint"
        );
        if self.consecutive_failures >= MAX_CONSECUTIVE_FAILURES {
            return self.fatal(Error::PartitionFailed {
                partition: self.partition,
                attempts: self.consecutive_failures,
                message,
            });
        }
        self.supervisor.do_send(PartitionEvent::Restarted {
            partition: self.partition,
            checkpoint: self.checkpoint.epoch,
            message,
            attempt: self.restarts,
        });
    }
}

/// The partition's protocol steps (see [`EpochLifecycle`]); the handlers below delegate here.
impl<Op: KeyedOperator, Out: Serialize + Send + 'static> EpochLifecycle
    for PartitionActor<Op, Out>
{
    type Key = Op::Key;
    type Event = Op::Event;

    fn on_batch(&mut self, batch: Batch<Op::Key, Op::Event>) -> Result<(), Panicked> {
        super::hooks::slow_partition(self.partition);
        if batch.epoch != self.next_epoch {
            return Ok(());
        }
        if batch.dead_first <= self.dead_seen {
            let skip = (self.dead_seen - batch.dead_first) as usize;
            for dead in batch.dead.iter().skip(skip) {
                dead.write_json_line(&mut self.dead_lines);
                self.dead_seen += 1;
            }
        }
        if batch.exchanged_first <= self.exchanged_seen && !batch.exchanged.is_empty() {
            let skip = (self.exchanged_seen - batch.exchanged_first) as usize;
            let fresh: Vec<_> = batch.exchanged.into_iter().skip(skip).collect();
            self.exchanged_seen += fresh.len() as u64;
            self.process_exchanged(fresh)?;
        }
        let skip = self.seen.checked_sub(batch.first).map(|s| s as usize);
        let Some(skip) = skip.filter(|&s| s < batch.events.len()) else {
            return Ok(());
        };
        self.seen = batch.first + batch.events.len() as u64;
        let mut events = batch.events;
        events.drain(..skip);
        catch_unwind(AssertUnwindSafe(|| {
            self.core.process_keyed(events);
            self.write_results();
            if let Some(chain) = self.chain.as_mut() {
                chain.route(&mut self.core.drain_outputs_under());
            }
        }))
        .map_err(Panicked)
    }

    fn on_input_ended(&self, msg: &InputEnded) -> Progress {
        if msg.epoch < self.next_epoch {
            return Progress::Done;
        }
        if msg.epoch > self.next_epoch
            || self.seen < msg.sent
            || self.dead_seen < msg.dead_sent
            || self.exchanged_seen < msg.exchanged_sent
        {
            return Progress::Behind {
                checkpoint: self.checkpoint.epoch,
                attempt: self.restarts,
            };
        }
        let before = |i: usize| self.received_before.get(i).copied().unwrap_or(0);
        Progress::Ready {
            max_event_times: self.core.max_event_times(),
            active: (self.core.received().iter().enumerate())
                .map(|(i, &n)| n > before(i))
                .collect(),
            later_waiting: (self.chain.as_ref())
                .map_or_else(Vec::new, |c| c.runner.unended_upstream()),
        }
    }

    fn on_seal(&mut self, msg: SealEpoch) -> Result<(), Panicked> {
        if msg.epoch != self.next_epoch {
            // A chained partition whose later stage has not finished the epoch reports it
            // when it does.
            let finished = self.chain.as_ref().is_none_or(|c| c.finished(msg.epoch));
            if msg.epoch < self.next_epoch && finished {
                let skipped = EpochDone::skipped(self.index, msg.epoch);
                self.supervisor
                    .do_send(PartitionEvent::Staged(Box::new(skipped)));
            }
            return Ok(()); // ahead of a restarted partition: the replay brings it again
        }
        self.erase(msg.epoch, &msg.erase);
        let (core, chain, topic) = (&mut self.core, &mut self.chain, self.exchange_topic);
        let (output, route, results) =
            (self.output.as_ref(), self.route.as_ref(), &mut self.results);
        if let Some(model) = &msg.model {
            core.install_model(model.clone());
        }
        let sealed = catch_unwind(AssertUnwindSafe(|| {
            // A first stage that had already sent its end of time has nothing more to send.
            let closed = core.watermark() == END_OF_TIME;
            // A single stage writes its results as its timers fire, a chain's first stage
            // routes them to the next stage.
            let write = &mut |core: &mut PartitionCore<Op>| match chain.as_mut() {
                Some(chain) => chain.route(&mut core.drain_outputs_under()),
                None => write_results(core, output, route, results),
            };
            core.advance_draining(msg.watermark, msg.processing_time, write);
            let chain = chain.as_mut()?;
            chain.route(&mut core.drain_outputs_under());
            let Routed { batches, records } = chain.take_routed(core.watermark());
            let quiet = closed && records == 0;
            if topic {
                // Through the topic, only the batches' watermarks move the later stage's time.
                let (time, model) = (msg.processing_time, msg.model.as_ref());
                chain.runner.advance(BEFORE_TIME, time, model);
            }
            Some((batches, quiet))
        }));
        let batches = match sealed {
            Ok(batches) => batches,
            Err(panic) => {
                self.supervisor.do_send(PartitionEvent::Failed {
                    partition: self.index,
                    epoch: msg.epoch,
                    checkpoint: self.checkpoint.epoch,
                    attempt: self.restarts + 1,
                });
                return Err(Panicked(panic));
            }
        };
        let finished = match batches {
            Some((batches, quiet)) if self.exchange_topic => {
                self.seal_through_topic(msg, if quiet { Vec::new() } else { batches })
            }
            Some((batches, _)) => self.seal_into_chain(msg, batches),
            None => self.finish_epoch(msg),
        };
        if let Err(e) = finished {
            self.fatal(e);
            return Ok(());
        }
        if self.next_epoch >= self.failed_epoch {
            self.consecutive_failures = 0;
        }
        self.next_epoch += 1;
        self.seen = 0;
        self.received_before = self.core.received();
        self.dead_seen = 0;
        self.exchanged_seen = 0;
        self.finish_later()
    }

    fn on_exchange(&mut self, msg: Exchange) -> Result<(), Panicked> {
        let Some(chain) = self.chain.as_mut() else {
            return Ok(());
        };
        chain.receive(msg.epoch, msg.from, msg.batch);
        self.finish_later()
    }

    fn on_commit(&mut self, msg: Committed) -> Epoch {
        if let Err(e) = self.write_committed_checkpoints(msg) {
            self.fatal(e);
        }
        self.checkpoint.epoch
    }

    fn on_restore(&mut self) -> Result<()> {
        let started = Instant::now();
        let meta = self.store.checkpoint()?;
        self.restore_state(&meta)?;
        self.prepared.clear();
        self.erased.clear();
        if let Some(chain) = self.chain.as_mut() {
            let later = chain.restore_stage()?;
            if later != meta.epoch {
                return Err(Error::DamagedState {
                    path: self.store.path().to_path_buf(),
                    place: format!("partition {} checkpoint", self.partition),
                    detail: format!(
                        "its first stage is at epoch {} and its second at epoch {later}; they are written together",
                        meta.epoch
                    ),
                });
            }
            chain.restore(meta.epoch)?;
        }
        let epoch = meta.epoch.max(self.base_epoch);
        self.next_epoch = epoch + 1;
        self.results = self.results.emptied(self.next_epoch);
        self.checkpoint = PartitionCheckpoint { epoch, ..meta };
        self.seen = 0;
        self.received_before = self.core.received();
        self.dead_lines.clear();
        self.dead_seen = 0;
        self.exchanged_seen = 0;
        self.expired_seen = self.core.counts().expired;
        self.report_state();
        (self.metrics).state_loaded(started.elapsed().as_secs_f64());
        Ok(())
    }
}

impl<Op: KeyedOperator, Out: Serialize + Send + 'static> Handler<Batch<Op::Key, Op::Event>>
    for PartitionActor<Op, Out>
{
    type Result = ();

    fn handle(&mut self, batch: Batch<Op::Key, Op::Event>, ctx: &mut Context<Self>) {
        if let Err(Panicked(panic)) = self.on_batch(batch) {
            self.fail(ctx, panic);
        }
    }
}

impl<Op: KeyedOperator, Out: Serialize + Send + 'static> Handler<QueryKey>
    for PartitionActor<Op, Out>
{
    type Result = std::result::Result<Option<crate::state::KeyReport>, String>;

    /// Answers from the keys' state as of the batches handled so far (read-only).
    fn handle(&mut self, msg: QueryKey, _ctx: &mut Context<Self>) -> Self::Result {
        let (key, json) = crate::state::parse_key::<Op::Key>(&msg.0).map_err(|e| e.to_string())?;
        (self.core.entry(&key))
            .map(|entry| crate::state::key_report(json, self.partition, entry))
            .transpose()
            .map_err(|e| e.to_string())
    }
}

impl<Op: KeyedOperator, Out: Serialize + Send + 'static> Handler<InspectPartition>
    for PartitionActor<Op, Out>
{
    type Result = actix::MessageResult<InspectPartition>;

    /// The first keyed stage's keys and timers now, its bytes as of the last checkpoint.
    fn handle(&mut self, _msg: InspectPartition, _ctx: &mut Context<Self>) -> Self::Result {
        let span = self.core.timer_span();
        actix::MessageResult(crate::state::PartitionSummary {
            partition: self.partition,
            checkpoint_epoch: self.checkpoint.epoch,
            keys: self.core.key_count() as u64,
            bytes: self.core.stored_bytes(),
            timers: self.core.timer_count() as u64,
            oldest_timer: span.map(|s| s.0),
            newest_timer: span.map(|s| s.1),
        })
    }
}

impl<Op: KeyedOperator, Out: Serialize + Send + 'static> Handler<InputEnded>
    for PartitionActor<Op, Out>
{
    type Result = actix::MessageResult<InputEnded>;

    fn handle(&mut self, msg: InputEnded, _ctx: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(self.on_input_ended(&msg))
    }
}

impl<Op: KeyedOperator, Out: Serialize + Send + 'static> Handler<SealEpoch>
    for PartitionActor<Op, Out>
{
    type Result = ();

    fn handle(&mut self, msg: SealEpoch, ctx: &mut Context<Self>) {
        if let Err(Panicked(panic)) = self.on_seal(msg) {
            self.fail(ctx, panic);
        }
    }
}

impl<Op: KeyedOperator, Out: Serialize + Send + 'static> Handler<Committed>
    for PartitionActor<Op, Out>
{
    type Result = actix::MessageResult<Committed>;

    fn handle(&mut self, msg: Committed, _ctx: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(self.on_commit(msg))
    }
}

impl<Op: KeyedOperator, Out: Serialize + Send + 'static> Handler<Exchange>
    for PartitionActor<Op, Out>
{
    type Result = ();

    fn handle(&mut self, msg: Exchange, ctx: &mut Context<Self>) {
        if let Err(Panicked(panic)) = self.on_exchange(msg) {
            self.fail(ctx, panic);
        }
    }
}

impl<Op: KeyedOperator, Out: Serialize + Send + 'static> Handler<Peers>
    for PartitionActor<Op, Out>
{
    type Result = ();

    fn handle(&mut self, msg: Peers, _ctx: &mut Context<Self>) {
        if let Some(chain) = self.chain.as_mut() {
            chain.set_peers(msg.0);
        }
    }
}

impl EpochDone {
    fn skipped(partition: u32, epoch: Epoch) -> Self {
        EpochDone {
            partition,
            epoch,
            skipped: true,
            staged: Vec::new(),
            outputs: 0,
            late: 0,
            expired: 0,
            counters: Default::default(),
            learned: Vec::new(),
            erased: Vec::new(),
        }
    }
}
