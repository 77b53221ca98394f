//! The job supervisor: owns the trigger, turns the source's epoch cuts into recorded epochs
//! (progress → watermark → durable epoch record → `SealEpoch` to every partition), commits each
//! epoch's staged output in order once every partition has finished it, trims the epoch log
//! behind the oldest checkpoint, answers partition restarts by rewinding the source, and gives
//! erasures asked of the running job to the next epoch (see [`super::erasures`]).
//!
//! Invariants relied on for exactly-once output: an epoch's record (input range, watermark,
//! processing time) is fsynced in sled before any partition is told to finish the epoch, so
//! every output that can become visible was produced from recorded decisions and a replay
//! reproduces it byte for byte; and a partition writes the checkpoint it prepared at an epoch's
//! end only once that epoch is committed (`Committed`), so a restart never skips output that
//! was staged but not yet visible, whether the sink keeps staged output across a crash (files)
//! or not (Kafka). Sinks skip what a replay makes visible twice. With a changelog (Kafka
//! sources) partitions checkpoint every epoch and send the checkpoint, with the epoch's
//! outputs, to the changelog before they report the epoch finished, and the supervisor waits
//! for the changelog to acknowledge all of them (one flush per epoch) before it commits the
//! epoch, so nothing is committed that the partition's next owner could not restore and resend.

use super::checkpoint_pace::CheckpointPace;
use super::erasures::Erasures;
use super::input_check::InputCheck;
use super::ledger::{EpochLedger, ReadyEpoch};
use super::live_counts::{CountsSnapshot, LiveCounts};
use super::messages::{
    Committed, CutReply, EpochCut, EpochDone, EraseKey, InputEnded, PartitionEvent, Progress,
    SealEpoch, SourceFailed,
};
use super::{hooks, JobReport, Trigger};
use crate::checkpoint::{Epoch, EpochRecord, SourcePosition};
use crate::io::kafka::repartition::first_stage_ended;
use crate::io::kafka::Changelog;
use crate::io::sink::{EpochSink, EpochStats, OutputStream};
use crate::learning::{Learned, ModelLedger};
use crate::metrics::{EpochTimes, Metrics, PhaseDurations};
use crate::operator::{CounterWindow, Counters};
use crate::state::StateStore;
use crate::time::{now_ms, Millis, WatermarkTracker, END_OF_TIME};
use crate::{Error, Result};
use actix::prelude::*;
use futures::future::join_all;
use std::collections::BTreeMap;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The supervisor's handles on one partition actor.
pub(crate) struct PartitionLink {
    pub(crate) input_ended: Recipient<InputEnded>,
    pub(crate) seal: Recipient<SealEpoch>,
    pub(crate) committed: Recipient<Committed>,
}

/// Settings the supervisor needs from the run configuration.
pub(crate) struct SupervisorConfig {
    pub(crate) trigger: Trigger,
    /// When checkpoints are due (`--checkpoint-interval`, stretched when they are expensive).
    pub(crate) checkpoint_pace: CheckpointPace,
    pub(crate) recorded: Vec<EpochRecord>,
    /// The erasures of the recorded epochs.
    pub(crate) erase_requests: BTreeMap<Epoch, Vec<String>>,
    pub(crate) checkpoints: Vec<Epoch>,
    /// The job's changelog (Kafka sources): partitions then checkpoint at every epoch and send
    /// their checkpoints to it, and an epoch is committed only once it acknowledged them.
    pub(crate) changelog: Option<Arc<Changelog>>,
    /// `--max-dead-letter-ratio`.
    pub(crate) max_dead_letter_ratio: Option<f64>,
    /// Where committed counts are published for a progress display.
    pub(crate) progress: Arc<LiveCounts>,
    /// The pipeline's shared model, if it has one.
    pub(crate) model: Option<ModelLedger>,
    /// The metrics the pipeline's operators declare.
    pub(crate) operator_metrics: Vec<crate::operator::MetricDecl>,
    /// A chained pipeline's exchange goes through the repartition topic (a consumer group):
    /// the job ends when every partition's later stage has every upstream partition's last
    /// batch, not when its input ends.
    pub(crate) exchange_topic: bool,
}

/// Supervises one job.
pub(crate) struct JobSupervisor {
    partitions: Vec<PartitionLink>,
    store: StateStore,
    sink: Arc<dyn EpochSink>,
    metrics: Metrics,
    tracker: WatermarkTracker,
    trigger: Trigger,
    checkpoint_pace: CheckpointPace,
    changelog: Option<Arc<Changelog>>,
    /// The last epoch recorded before this start: the end of the replay a restart begins with.
    replayed_until: Epoch,
    input_check: InputCheck,
    progress: Arc<LiveCounts>,
    /// The pipeline's shared model, if it has one.
    model: Option<ModelLedger>,
    /// The operators' counts of the epochs committed lately.
    window: CounterWindow,
    last_processing_time: i64,
    /// The epoch log since the oldest partition checkpoint.
    recorded: BTreeMap<Epoch, EpochRecord>,
    ledger: EpochLedger,
    /// Erasures asked of the running job, by the epoch that applies them.
    erasures: Erasures,
    /// Each partition's last checkpoint epoch.
    checkpoints: Vec<Epoch>,
    /// Restart attempts already answered with a rewind, per partition.
    handled_attempt: Vec<u32>,
    rewind_to: Option<Epoch>,
    /// The source has cut the job's last epoch and waits on `control`.
    source_draining: bool,
    /// See [`SupervisorConfig::exchange_topic`].
    exchange_topic: bool,
    /// What the job last said its later stages wait for (see [`Self::note_waiting`]).
    waiting_noted: String,
    control: Sender<CutReply>,
    result: Option<oneshot::Sender<Result<JobReport>>>,
    report: JobReport,
    started: Instant,
}

impl JobSupervisor {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        partitions: Vec<PartitionLink>,
        store: StateStore,
        sink: Arc<dyn EpochSink>,
        metrics: Metrics,
        tracker: WatermarkTracker,
        config: SupervisorConfig,
        control: Sender<CutReply>,
        result: oneshot::Sender<Result<JobReport>>,
    ) -> Self {
        let committed = config.checkpoints.iter().copied().min().unwrap_or(0);
        let n = partitions.len();
        JobSupervisor {
            partitions,
            store,
            sink,
            metrics,
            tracker,
            trigger: config.trigger,
            checkpoint_pace: config.checkpoint_pace,
            changelog: config.changelog,
            replayed_until: config.recorded.last().map_or(0, |r| r.epoch),
            input_check: InputCheck::new(config.max_dead_letter_ratio),
            progress: config.progress,
            model: config.model,
            window: CounterWindow::default(),
            last_processing_time: config.recorded.last().map_or(0, |r| r.processing_time),
            recorded: config.recorded.into_iter().map(|r| (r.epoch, r)).collect(),
            ledger: EpochLedger::new(n, committed),
            erasures: Erasures::new(config.erase_requests),
            checkpoints: config.checkpoints,
            handled_attempt: vec![0; n],
            rewind_to: None,
            source_draining: false,
            exchange_topic: config.exchange_topic,
            waiting_noted: String::new(),
            control,
            result: Some(result),
            report: JobReport {
                metrics: config.operator_metrics,
                ..JobReport::default()
            },
            started: Instant::now(),
        }
    }

    /// Where the source restarts so that partitions restored to checkpoint `epoch` get their
    /// input again: the end of that epoch, then every recorded epoch after it.
    fn rewind(&self, epoch: Epoch) -> CutReply {
        let from = self
            .recorded
            .get(&epoch)
            .map_or(SourcePosition::Start, |r| r.end.clone());
        CutReply::Rewind {
            from,
            next_epoch: epoch + 1,
            replay: self
                .recorded
                .range(epoch + 1..)
                .map(|(e, r)| (*e, r.end.clone()))
                .collect(),
        }
    }

    fn request_rewind(&mut self, epoch: Epoch) {
        if self.source_draining {
            // The source already cut its last epoch and waits: send it back now.
            self.source_draining = false;
            let _ = self.control.send(self.rewind(epoch));
        } else {
            self.rewind_to = Some(self.rewind_to.map_or(epoch, |r| r.min(epoch)));
        }
    }

    fn finish(&mut self, result: Result<JobReport>) {
        let _ = self.control.send(if result.is_ok() {
            CutReply::Go { finished: true }
        } else {
            CutReply::Abort
        });
        if let Some(tx) = self.result.take() {
            let _ = tx.send(result);
        }
    }

    /// Ends the job with `error`, which [`run`](super::run) returns: the caller reports it
    /// (the command line prints it once), so it is only traced here.
    fn fail(&mut self, error: Error) {
        tracing::debug!("job failed: {error}");
        self.metrics.status().failed(&error.to_string());
        self.finish(Err(error));
    }

    fn failed(&self) -> bool {
        self.result.is_none()
    }

    /// The second half of an epoch cut, once every partition reported its progress.
    fn on_progress(
        &mut self,
        mut cut: EpochCut,
        answers: Vec<Result<Progress, MailboxError>>,
    ) -> Result<CutReply> {
        let (rewind, waiting) = self.observe(&cut, answers)?;
        let later_ended = waiting.is_none();
        if let Some(epoch) = rewind {
            tracing::info!(
                from_epoch = epoch,
                "replaying the source for restarted partitions"
            );
            return Ok(self.rewind(epoch));
        }
        if let Some(lag) = &cut.lag {
            self.metrics.consumer_lag(lag);
        }
        // Through a repartition topic, the first stage closes everything once its input is
        // read to the end (its last batches carry the end of time), and the job ends once
        // every later stage has had every upstream partition's last batch.
        let first_stage_ended = self.exchange_topic && first_stage_ended(&cut.inputs_ended);
        cut.end_of_input |= first_stage_ended && later_ended;
        if let (true, Some(waiting)) = (first_stage_ended, waiting) {
            self.note_waiting(waiting);
        }
        let record = self.record(&cut, first_stage_ended)?;
        let ends_job = record.final_epoch || cut.stopping;
        if cut.stopping {
            self.metrics.status().stopping();
        }
        self.seal(&record, ends_job);
        self.ledger.cut(&record, &mut cut, ends_job);
        if ends_job {
            self.source_draining = true;
        }
        Ok(CutReply::Go { finished: ends_job })
    }

    /// Says which partitions' later stages still wait for which upstream partitions' last
    /// batches, each time that changes. A bounded job whose input is read waits for nothing
    /// else, and cuts no epoch while no batch arrives: without this it would wait in silence.
    fn note_waiting(&mut self, waiting: String) {
        if waiting != self.waiting_noted {
            tracing::info!(
                %waiting,
                "the input is read to its end; the later stages wait for the last exchange batches"
            );
            self.waiting_noted = waiting;
        }
    }

    /// Step 2's answers: feeds each partition's progress to the watermark tracker (one channel
    /// per input and partition, input-major) and returns the epoch to replay from when a
    /// restarted partition is behind (or a rewind was requested), and what the later stages
    /// still wait for (`None` once every partition's has ended; see [`Progress::Ready`]).
    fn observe(
        &mut self,
        cut: &EpochCut,
        answers: Vec<Result<Progress, MailboxError>>,
    ) -> Result<(Option<Epoch>, Option<String>)> {
        let n = self.partitions.len();
        let mut behind: Option<Epoch> = None;
        let mut waiting: Option<Vec<String>> = None;
        for (p, answer) in answers.into_iter().enumerate() {
            let gone = |e: MailboxError| Error::PartGone {
                part: format!("partition {p}"),
                detail: e.to_string(),
            };
            match answer.map_err(gone)? {
                Progress::Ready {
                    max_event_times,
                    active,
                    later_waiting,
                } => {
                    if !later_waiting.is_empty() {
                        let on = format!("partition {p} on {later_waiting:?}");
                        waiting.get_or_insert_with(Vec::new).push(on);
                    }
                    for (input, (max, active)) in
                        max_event_times.into_iter().zip(active).enumerate()
                    {
                        let channel = input * n + p;
                        let slow = cut.waiting.as_ref().and_then(|w| w.get(channel).copied());
                        self.tracker
                            .observe(channel as u32, max, active, slow.unwrap_or(false));
                        if cut.inputs_ended.get(input).copied().unwrap_or(false) {
                            self.tracker.ended(channel as u32);
                        }
                    }
                }
                Progress::Done => {
                    let replayed = format!("partition {p} (replayed)");
                    waiting.get_or_insert_with(Vec::new).push(replayed);
                }
                Progress::Behind {
                    checkpoint,
                    attempt,
                } => {
                    self.handled_attempt[p] = self.handled_attempt[p].max(attempt);
                    behind = Some(behind.map_or(checkpoint, |b| b.min(checkpoint)));
                    let restarted = format!("partition {p} (restarted)");
                    waiting.get_or_insert_with(Vec::new).push(restarted);
                }
            }
        }
        let rewind = match (behind, self.rewind_to.take()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok((rewind, waiting.map(|w| w.join("; "))))
    }

    /// Step 3: the epoch's record, written durably before any partition acts on it; a replayed
    /// epoch keeps the record it had, and must end where it ended. The watermark is the end of
    /// time at the end of the input, or (`closes`) when the first stage's input ended.
    fn record(&mut self, cut: &EpochCut, closes: bool) -> Result<EpochRecord> {
        if let Some(record) = self.recorded.get(&cut.epoch) {
            if record.end != cut.end {
                return Err(Error::InputChanged {
                    epoch: cut.epoch,
                    recorded: format!("{:?}", record.end),
                    found: format!("it ended at {:?}", cut.end),
                });
            }
            self.tracker.set(record.watermark);
            return Ok(record.clone());
        }
        let watermark = if cut.end_of_input || closes {
            END_OF_TIME
        } else {
            self.tracker.advance()
        };
        self.tracker.set(watermark);
        self.last_processing_time = self.last_processing_time.max(now_ms());
        let record = EpochRecord {
            epoch: cut.epoch,
            end: cut.end.clone(),
            watermark,
            processing_time: self.last_processing_time,
            final_epoch: cut.end_of_input,
            closes_input: cut.closes_input,
            model: self
                .model
                .as_ref()
                .map(ModelLedger::mark)
                .unwrap_or_default(),
        };
        self.erasures.record(&self.store, cut.epoch)?;
        self.store.record_epoch(&record)?;
        self.recorded.insert(cut.epoch, record.clone());
        Ok(record)
    }

    /// Step 4: seals the recorded epoch at every partition, asking for a checkpoint at the
    /// end of the job, at the end of a restart's replay, with a changelog, or once its pace
    /// says one is due (see [`CheckpointPace`]).
    fn seal(&mut self, record: &EpochRecord, ends_job: bool) {
        // The last epoch a restart replays checkpoints at once: a job killed more often than
        // its checkpoint interval would otherwise replay from the same old checkpoint forever.
        let caught_up = record.epoch == self.replayed_until;
        let checkpoint =
            ends_job || caught_up || self.changelog.is_some() || self.checkpoint_pace.due();
        if checkpoint {
            self.checkpoint_pace.started();
        }
        let previous = record
            .epoch
            .checked_sub(1)
            .and_then(|e| self.recorded.get(&e));
        let model = (self.model.as_ref()).map(|m| m.history(record, previous));
        let erase = self.erasures.keys(record.epoch);
        for (p, link) in self.partitions.iter().enumerate() {
            link.seal.do_send(SealEpoch {
                epoch: record.epoch,
                watermark: record.watermark,
                processing_time: record.processing_time,
                checkpoint,
                suppress_output: record.epoch <= self.ledger.committed(),
                next_offsets: record.end.offsets_of(p),
                model: model.clone(),
                erase: erase.clone(),
            });
        }
    }

    fn on_done(&mut self, done: EpochDone, ctx: &mut Context<Self>) {
        self.ledger.done(done);
        match self.commit_ready() {
            Ok(Some(last)) => self.finish_after_checkpoints(last, ctx),
            Ok(None) => {}
            Err(e) => self.fail(e),
        }
    }

    /// The job's last epoch is committed: once every partition has written its checkpoint
    /// for it, the job is done (a restart then has nothing to replay).
    fn finish_after_checkpoints(&mut self, last: Epoch, ctx: &mut Context<Self>) {
        let requests: Vec<_> = self
            .partitions
            .iter()
            .map(|link| {
                let checkpointed = self.oldest_checkpoint();
                link.committed.send(Committed {
                    epoch: last,
                    checkpointed,
                })
            })
            .collect();
        ctx.spawn(join_all(requests).into_actor(self).map(|_, act, _ctx| {
            if !act.failed() {
                act.report.elapsed = act.started.elapsed();
                let report = act.report.clone();
                act.finish(Ok(report));
            }
        }));
    }

    /// Drops epoch records, and shared model versions, no partition needs for a replay any
    /// more.
    /// The oldest checkpoint a partition reported written.
    fn oldest_checkpoint(&self) -> Epoch {
        self.checkpoints.iter().copied().min().unwrap_or(0)
    }

    fn trim_epoch_log(&mut self) -> Result<()> {
        let oldest = self.oldest_checkpoint();
        if self
            .recorded
            .first_key_value()
            .is_some_and(|(e, _)| *e < oldest)
        {
            self.store.forget_epochs_before(oldest)?;
            self.recorded = self.recorded.split_off(&oldest);
            self.erasures.forget_before(oldest);
            if let (Some(model), Some(record)) = (&mut self.model, self.recorded.get(&oldest)) {
                model.prune(record)?;
            }
        }
        Ok(())
    }

    /// Commits, in epoch order, every pending epoch all partitions have finished, and lets
    /// partitions write the checkpoints they prepared for them. Returns the epoch that ends
    /// the job once it is committed.
    fn commit_ready(&mut self) -> Result<Option<Epoch>> {
        while let Some(ready) = self.ledger.pop_ready() {
            let ReadyEpoch {
                epoch,
                staged,
                stats,
                expired,
                counters,
                learned,
                closes_input,
                first_dead_error,
                consumer_lag,
                times,
                ends_job,
                erased,
            } = ready;
            let (records, dead_letters) = (stats.records_in, stats.dead_letters);
            let (outputs, watermark) = (stats.outputs, stats.watermark);
            let staged_at = Instant::now();
            if let Some(changelog) = &self.changelog {
                changelog.flush(epoch)?;
            }
            hooks::crash_point(hooks::Crash::BeforeCommit, epoch);
            let flushed = Instant::now();
            self.sink.commit(epoch, staged, &stats)?;
            let times = EpochTimes {
                previous_cut: times.previous_cut,
                cut: times.cut,
                recorded: times.recorded,
                staged: staged_at,
                flushed,
                committed: Instant::now(),
            };
            tracing::debug!(
                epoch,
                records,
                outputs,
                durations_ms = ?PhaseDurations::between(&times),
                "epoch committed"
            );
            hooks::crash_point(hooks::Crash::AfterCommit, epoch);
            self.trigger
                .committed
                .store(epoch, std::sync::atomic::Ordering::Release);
            let closes = match closes_input {
                true => END_OF_TIME,
                false => watermark,
            };
            self.commit_model(epoch, learned, closes)?;
            self.erasures.committed(&self.store, epoch, erased)?;
            self.store.set_committed(epoch)?;
            // Judged once the epoch's dead letters are visible, so the error can point at them.
            let sink = &self.sink;
            self.input_check.committed(
                (records, dead_letters),
                first_dead_error.as_deref(),
                stats.final_epoch,
                || sink.location(OutputStream::DeadLetter),
            )?;
            self.account(&stats, &counters, expired, &times);
            (self.metrics.status()).committed(epoch, &stats, consumer_lag, &times);
            (self.metrics).trace_epoch(epoch, &stats, &times, self.changelog.is_some());
            if ends_job {
                self.report.end_of_input = stats.final_epoch;
                return Ok(Some(epoch));
            }
            let checkpointed = self.oldest_checkpoint();
            for link in &self.partitions {
                link.committed.do_send(Committed {
                    epoch,
                    checkpointed,
                });
            }
        }
        Ok(None)
    }

    /// Learns the shared model's micro-batches that `epoch` closed (see [`crate::learning`]),
    /// before the epoch is noted committed.
    fn commit_model(&mut self, epoch: Epoch, learned: Vec<Learned>, closes: Millis) -> Result<()> {
        let Some(model) = &mut self.model else {
            return Ok(());
        };
        let learning = model.commit(epoch, learned, closes)?;
        let report = self.report.model.get_or_insert_default();
        report.learned(model.mark().version, &learning);
        self.metrics.model_learned(report);
        Ok(())
    }

    /// Adds a committed epoch's counts to the progress display, the report and the metrics.
    fn account(
        &mut self,
        stats: &EpochStats,
        counters: &Counters,
        expired: u64,
        times: &EpochTimes,
    ) {
        let (records, dead_letters) = (stats.records_in, stats.dead_letters);
        let (outputs, late, watermark) = (stats.outputs, stats.late, stats.watermark);
        self.progress.committed(CountsSnapshot {
            records_in: records,
            outputs,
            late,
            dead_letters,
            watermark,
        });
        let report = &mut self.report;
        report.epochs += 1;
        report.records_in += records;
        report.dead_letters += dead_letters;
        report.outputs += outputs;
        report.late += late;
        report.counters.merge(counters);
        self.window.push(Instant::now(), counters);
        let window = self.window.totals();
        let report = &self.report;
        self.metrics
            .operator(counters, (&report.counters, &window), &report.metrics);
        let epoch_ms = PhaseDurations::between(times).total;
        self.metrics
            .epoch_committed(records, outputs, late, dead_letters, epoch_ms, watermark);
        self.metrics.state_expired(expired);
    }
}

impl Actor for JobSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.trigger.committed.store(
            self.ledger.committed(),
            std::sync::atomic::Ordering::Release,
        );
        let due = self.trigger.due.clone();
        ctx.run_interval(self.trigger.interval, move |_, _| {
            due.store(true, std::sync::atomic::Ordering::Release);
        });
    }
}

impl Handler<EpochCut> for JobSupervisor {
    type Result = ResponseActFuture<Self, CutReply>;

    fn handle(&mut self, cut: EpochCut, _ctx: &mut Context<Self>) -> Self::Result {
        if self.failed() {
            return Box::pin(actix::fut::ready(CutReply::Abort));
        }
        let requests: Vec<_> = self
            .partitions
            .iter()
            .enumerate()
            .map(|(p, link)| {
                let count = |sent: &[u64]| sent.get(p).copied().unwrap_or(0);
                link.input_ended.send(InputEnded {
                    epoch: cut.epoch,
                    sent: count(&cut.sent),
                    dead_sent: count(&cut.dead_sent),
                    exchanged_sent: count(&cut.exchanged_sent),
                })
            })
            .collect();
        Box::pin(
            join_all(requests)
                .into_actor(self)
                .map(move |answers, act, _ctx| {
                    if act.failed() {
                        return CutReply::Abort;
                    }
                    match act.on_progress(cut, answers) {
                        Ok(reply) => reply,
                        Err(e) => {
                            act.fail(e);
                            CutReply::Abort
                        }
                    }
                }),
        )
    }
}

impl Handler<PartitionEvent> for JobSupervisor {
    type Result = ();

    fn handle(&mut self, event: PartitionEvent, ctx: &mut Context<Self>) {
        if self.failed() {
            return;
        }
        match event {
            PartitionEvent::Staged(done) => self.on_done(*done, ctx),
            PartitionEvent::Failed {
                partition,
                epoch,
                checkpoint,
                attempt,
            } => {
                self.ledger.forget_answer(partition, epoch);
                let p = partition as usize;
                if attempt > self.handled_attempt[p] {
                    self.handled_attempt[p] = attempt;
                    self.request_rewind(checkpoint);
                }
            }
            PartitionEvent::Restarted {
                partition,
                checkpoint,
                message,
                attempt,
            } => {
                self.report.restarts += 1;
                tracing::warn!(
                    partition,
                    checkpoint,
                    attempt,
                    "partition restarted after: {message}"
                );
            }
            PartitionEvent::Checkpointed {
                partition,
                epoch,
                bytes,
                millis,
            } => {
                tracing::debug!(partition, epoch, bytes, millis, "partition checkpointed");
                self.checkpoints[partition as usize] = epoch;
                self.metrics.checkpoint(partition, epoch, millis, bytes);
                let spent = Duration::from_secs_f64(millis / 1e3);
                self.checkpoint_pace.reported(epoch, spent);
                self.metrics.checkpoint_pause(self.checkpoint_pace.pause());
                if let Err(e) = self.trim_epoch_log() {
                    self.fail(e);
                }
            }
            PartitionEvent::Fatal { partition, error } => {
                self.fail(Error::InPartition {
                    partition,
                    source: error,
                });
            }
        }
    }
}

impl Handler<EraseKey> for JobSupervisor {
    type Result = ();

    /// Queues the erasure for the next epoch (a failed job drops it, unanswered).
    fn handle(&mut self, request: EraseKey, _ctx: &mut Context<Self>) {
        if !self.failed() {
            self.erasures.ask(request);
        }
    }
}

impl Handler<SourceFailed> for JobSupervisor {
    type Result = ();

    fn handle(&mut self, msg: SourceFailed, _ctx: &mut Context<Self>) {
        if !self.failed() {
            self.fail(msg.0);
        }
    }
}
