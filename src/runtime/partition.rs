//! The key-partition actor: owns every key that hashes to its partition, runs the operator on
//! each batch, and at each epoch end fires timers, stages and reports its outputs, then (when
//! asked) prepares a checkpoint of its changed state buckets, which it writes once the epoch
//! is committed. A panic in operator code stops the actor;
//! actix's supervisor restarts it and `restarting` restores the last checkpoint, after which the
//! job supervisor has the source replay what the partition lost.

use super::core::PartitionCore;
use super::lifecycle::{EpochLifecycle, Panicked};
use super::messages::{
    Batch, Committed, EpochDone, InputEnded, PartitionEvent, Progress, SealEpoch,
};
use crate::checkpoint::{Epoch, PartitionCheckpoint};
use crate::io::kafka::{Changelog, CheckpointRecord};
use crate::io::sink::Staged;
use crate::io::sink::{EpochSink, Lines, OutputStream};
use crate::metrics::Metrics;
use crate::operator::KeyedOperator;
use crate::pipeline::{OutputFn, RouteFn};
use crate::state::{PartitionStore, PreparedCheckpoint};
use crate::time::Millis;
use crate::Key;
use crate::{Error, Result};
use actix::{Actor, ActorContext, Context, Handler, Recipient, Supervised};
use serde::Serialize;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

/// How often in a row one partition may fail before the job gives up (a record that always
/// panics would otherwise restart the partition forever).
const MAX_CONSECUTIVE_FAILURES: u32 = 3;

/// A late record as written to the late output. It holds nothing that depends on how the run
/// was cut into epochs (epoch number, exact watermark), so two runs over the same input write
/// the same late records.
#[derive(Serialize)]
struct LateRecord<'a, E> {
    partition: u32,
    event_time: Millis,
    record: &'a E,
}

/// One output stream's JSON lines of an epoch.
type StreamLines = (OutputStream, Lines);

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
    output: OutputFn<Op::Output, Out>,
    /// Which of the pipeline's outputs a result goes to (several outputs).
    route: Option<RouteFn<Out>>,
    store: PartitionStore,
    sink: Arc<dyn EpochSink>,
    supervisor: Recipient<PartitionEvent>,
    metrics: Metrics,
    /// The last durable checkpoint.
    checkpoint: PartitionCheckpoint,
    /// Checkpoints prepared at the end of epochs not yet committed, oldest first.
    prepared: VecDeque<PreparedCheckpoint>,
    /// The epoch whose records are arriving.
    next_epoch: Epoch,
    /// Records of `next_epoch` processed so far (the source's per-partition index).
    seen: u64,
    /// Records of each input the core had received when the epoch began.
    received_before: Vec<u64>,
    /// Stored size of each state bucket, for the state-bytes metric.
    bucket_bytes: Vec<u64>,
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
    /// State expiries counted by the core up to the last epoch end.
    expired_seen: u64,
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
}

impl<Op: KeyedOperator, Out: Serialize + Send + 'static> PartitionActor<Op, Out> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        partition: u32,
        core: PartitionCore<Op>,
        (output, route): (OutputFn<Op::Output, Out>, Option<RouteFn<Out>>),
        store: PartitionStore,
        sink: Arc<dyn EpochSink>,
        supervisor: Recipient<PartitionEvent>,
        metrics: Metrics,
        setup: PartitionSetup,
    ) -> Self {
        let mut actor = PartitionActor {
            partition,
            index: setup.index,
            writer: crate::io::sink::writer_name(partition),
            core: Box::new(core),
            output,
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
            bucket_bytes: vec![0; crate::state::BUCKETS],
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
            expired_seen: 0,
        };
        if let Err(e) = actor.on_restore() {
            actor.fatal(e);
        }
        actor
    }

    fn report_state(&self) {
        self.metrics.state(
            self.partition,
            self.core.key_count() as u64,
            self.bucket_bytes.iter().sum(),
        );
    }

    fn fatal(&self, error: Error) {
        self.supervisor.do_send(PartitionEvent::Fatal {
            partition: self.partition,
            error: error.to_string(),
        });
    }

    fn fail(&mut self, ctx: &mut Context<Self>, panic: Box<dyn std::any::Any + Send>) {
        let message = panic_message(&panic);
        tracing::error!(partition = self.partition, "operator panicked: {message}");
        self.failure = Some(message);
        self.failed_epoch = self.failed_epoch.max(self.next_epoch);
        ctx.stop();
    }

    /// Serializes the epoch's results, late records and dead letters as JSON lines, per
    /// stream. Returns them with the number of results and late records.
    fn serialize_outputs(&mut self) -> Result<(Vec<StreamLines>, u64, u64)> {
        let mut streams = Vec::new();
        let mut results: Vec<Lines> = Vec::new();
        let mut outputs = 0u64;
        for (key, o) in self.core.take_keyed_outputs() {
            if let Some(out) = (self.output)(o) {
                let i = self.route.as_ref().map_or(0, |route| route(&out));
                if results.len() <= i {
                    results.resize_with(i + 1, Lines::default);
                }
                let lines = &mut results[i];
                serde_json::to_writer(&mut lines.bytes, &out).map_err(|e| {
                    Error::Runtime(format!("cannot serialize a result to JSON: {e}"))
                })?;
                lines.bytes.push(b'\n');
                lines.push_key(|k| key.write_record_key(k));
                outputs += 1;
            }
        }
        for (i, lines) in results.into_iter().enumerate() {
            let stream = match i {
                0 => OutputStream::Results,
                i => OutputStream::Named(i as u8),
            };
            if !lines.bytes.is_empty() {
                streams.push((stream, lines));
            }
        }
        let late = self.core.take_late();
        let late_count = late.len() as u64;
        if !late.is_empty() {
            let mut buf = Vec::new();
            for (event_time, record) in &late {
                let line = LateRecord {
                    partition: self.partition,
                    event_time: *event_time,
                    record,
                };
                serde_json::to_writer(&mut buf, &line).map_err(|e| {
                    Error::Runtime(format!("cannot serialize a late record to JSON: {e}"))
                })?;
                buf.push(b'\n');
            }
            streams.push((OutputStream::Late, Lines::unkeyed(buf)));
        }
        if !self.dead_lines.is_empty() {
            streams.push((
                OutputStream::DeadLetter,
                Lines::unkeyed(std::mem::take(&mut self.dead_lines)),
            ));
        }
        Ok((streams, outputs, late_count))
    }

    /// Stages serialized outputs of `epoch` with the sink.
    fn stage(&self, epoch: Epoch, streams: Vec<StreamLines>) -> Result<Vec<Staged>> {
        let mut staged = Vec::with_capacity(streams.len());
        for (stream, lines) in streams {
            staged.extend(self.sink.stage_keyed(epoch, stream, &self.writer, lines)?);
        }
        Ok(staged)
    }

    /// Stages the epoch's outputs and reports them; then, when asked, checkpoints. With a
    /// changelog the checkpoint and the outputs are sent to it first; the supervisor commits
    /// the epoch once the changelog acknowledged them, when another instance could take over.
    fn finish_epoch(&mut self, msg: SealEpoch) -> Result<()> {
        let (streams, outputs, late) = self.serialize_outputs()?;
        if msg.checkpoint {
            let meta = self.core.checkpoint_meta(msg.epoch);
            let (prepared, sizes) =
                PartitionStore::prepare_checkpoint(self.core.drain_changes(), &meta);
            for (bucket, size) in sizes {
                self.bucket_bytes[bucket as usize] = size;
            }
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
                        outputs: &streams,
                    },
                )?;
                if pieces > 0 {
                    self.changelog_pieces.push_back((msg.epoch, pieces));
                }
                self.changelog_epoch = msg.epoch;
            }
            self.prepared.push_back(prepared);
        }
        let mut staged = self.stage(msg.epoch, streams)?;
        if msg.suppress_output {
            staged.clear();
        }
        let expired = self.core.counts().expired - self.expired_seen;
        self.expired_seen += expired;
        self.supervisor
            .do_send(PartitionEvent::Staged(Box::new(EpochDone {
                partition: self.index,
                epoch: msg.epoch,
                skipped: false,
                staged,
                outputs,
                late,
                expired,
            })));
        self.report_state();
        Ok(())
    }

    /// Writes the prepared checkpoints of committed epochs, oldest first, and drops the
    /// changelog pieces of records older than the newest one written for a committed epoch
    /// (the changelog acknowledged it before the commit).
    fn write_committed_checkpoints(&mut self, committed: Epoch) -> Result<()> {
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
            .is_some_and(|c| c.meta.epoch <= committed)
        {
            let prepared = self.prepared.pop_front().expect("checked above");
            let started = Instant::now();
            let (meta, bytes) = (prepared.meta.clone(), prepared.bytes);
            self.store.apply_checkpoint(prepared)?;
            self.supervisor.do_send(PartitionEvent::Checkpointed {
                partition: self.index,
                epoch: meta.epoch,
                bytes,
                millis: started.elapsed().as_secs_f64() * 1e3,
            });
            self.checkpoint = meta;
        }
        Ok(())
    }
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
        let skip = self.seen.checked_sub(batch.first).map(|s| s as usize);
        let Some(skip) = skip.filter(|&s| s < batch.events.len()) else {
            return Ok(());
        };
        self.seen = batch.first + batch.events.len() as u64;
        let core = &mut self.core;
        catch_unwind(AssertUnwindSafe(|| {
            core.process_keyed(batch.events.into_iter().skip(skip))
        }))
        .map(|_| ())
        .map_err(Panicked)
    }

    fn on_input_ended(&self, msg: &InputEnded) -> Progress {
        if msg.epoch < self.next_epoch {
            return Progress::Done;
        }
        if msg.epoch > self.next_epoch || self.seen < msg.sent || self.dead_seen < msg.dead_sent {
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
        }
    }

    fn on_seal(&mut self, msg: SealEpoch) -> Result<(), Panicked> {
        if msg.epoch != self.next_epoch {
            if msg.epoch < self.next_epoch {
                let skipped = EpochDone::skipped(self.index, msg.epoch);
                self.supervisor
                    .do_send(PartitionEvent::Staged(Box::new(skipped)));
            }
            return Ok(()); // ahead of a restarted partition: the replay brings it again
        }
        let core = &mut self.core;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| {
            core.advance(msg.watermark, msg.processing_time)
        })) {
            self.supervisor.do_send(PartitionEvent::Failed {
                partition: self.index,
                epoch: msg.epoch,
                checkpoint: self.checkpoint.epoch,
                attempt: self.restarts + 1,
            });
            return Err(Panicked(panic));
        }
        if let Err(e) = self.finish_epoch(msg) {
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
        Ok(())
    }

    fn on_commit(&mut self, epoch: Epoch) -> Epoch {
        if let Err(e) = self.write_committed_checkpoints(epoch) {
            self.fatal(e);
        }
        self.checkpoint.epoch
    }

    fn on_restore(&mut self) -> Result<()> {
        let meta = self.store.checkpoint()?;
        self.bucket_bytes.iter_mut().for_each(|b| *b = 0);
        let buckets = self
            .store
            .entries()?
            .into_iter()
            .map(|(b, bucket, size)| {
                self.bucket_bytes[b as usize] = size;
                (b, bucket)
            })
            .collect();
        self.core.restore(&meta, buckets);
        self.prepared.clear();
        let epoch = meta.epoch.max(self.base_epoch);
        self.next_epoch = epoch + 1;
        self.checkpoint = PartitionCheckpoint { epoch, ..meta };
        self.seen = 0;
        self.received_before = self.core.received();
        self.dead_lines.clear();
        self.dead_seen = 0;
        self.expired_seen = self.core.counts().expired;
        self.report_state();
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
        actix::MessageResult(self.on_commit(msg.epoch))
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
        }
    }
}
