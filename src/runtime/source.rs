//! The source thread: reads and decodes input in chunks, routes each record to its key
//! partition, sends one batch per partition per chunk, and cuts epochs: at the trigger while
//! live, or exactly at recorded positions while replaying.
//!
//! Backpressure: a key partition may have [`QUEUED_BATCHES`] batches queued. A partitioned
//! source (Kafka) stops reading a partition that has that many (it is *paused*: its records
//! wait in the consumer, whose prefetch is bounded) and reads it again once its actor has
//! handled one, so a slow partition holds back only itself until the epoch's cut, which waits
//! for every batch. With other sources the thread waits for the partition's oldest batch
//! before it sends it another.

use super::messages::{Batch, CutReply, EpochCut, SourceFailed};
use super::Trigger;
use crate::checkpoint::{Epoch, SourcePosition};
use crate::io::kafka::repartition::{first_stage_ended, ExchangeRecord};
use crate::io::sink::{EpochSink, OutputStream};
use crate::io::source::ROUTE_BY_KEY;
use crate::io::source::{ReadStatus, SourceReader};
use crate::io::DeadLetter;
use crate::key::{kafka_partition_of, partition_of};
use crate::metrics::Metrics;
use crate::pipeline::{InputFn, KeyFn, TimeFn, TransformFn};
use crate::time::Millis;
use crate::{Error, Key, Result};
use actix::dev::RecipientRequest;
use actix::{Addr, MailboxError, Recipient};
use futures::executor::block_on;
use futures::future::{join_all, select_all};
use futures::FutureExt;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use super::supervisor::JobSupervisor;

/// Batches one key partition may have queued (sent, not yet handled) before the source stops
/// reading its input: one being handled while the next is read and waits.
pub(crate) const QUEUED_BATCHES: usize = 2;

/// A batch sent to a partition whose handling is not yet confirmed.
type Pending<K, E> = std::pin::Pin<Box<RecipientRequest<Batch<K, E>>>>;

/// Everything the source thread owns.
pub(crate) struct SourceDriver<R, E: Send + 'static, K: Send + 'static> {
    pub(crate) reader: Box<dyn SourceReader<R>>,
    pub(crate) transform: TransformFn<R, E>,
    pub(crate) key: KeyFn<E, K>,
    pub(crate) partitions: Vec<Recipient<Batch<K, E>>>,
    pub(crate) supervisor: Addr<JobSupervisor>,
    pub(crate) control: Receiver<CutReply>,
    pub(crate) sink: Arc<dyn EpochSink>,
    pub(crate) trigger: Trigger,
    pub(crate) stop: Arc<AtomicBool>,
    /// Raised when the consumer group takes the job's partitions away: stop like `stop`.
    pub(crate) revoked: Option<Arc<AtomicBool>>,
    pub(crate) chunk: usize,
    /// Largest number of records in one live epoch (`None`: no limit).
    pub(crate) max_epoch_records: Option<u64>,
    pub(crate) metrics: Metrics,
    /// At the end of a bounded input, first cut an epoch that closes it, then, once that
    /// epoch committed, an empty one that ends the job (and moves the watermark to the end
    /// of time). A shared model learns all its micro-batches at the first one's commit; the
    /// second scores what waited for them.
    pub(crate) closes_before_end: bool,
    /// The reader brings a repartition topic's exchange batches beside the input (a chained
    /// pipeline in a consumer group), so it never ends: once the first input is read to its
    /// end, an epoch is cut for its last records and then whenever exchange batches arrive,
    /// until the supervisor ends the job (see [`SourceDriver::exchange_due`]).
    pub(crate) exchange_topic: bool,
    /// How far each input got in event time, for a pipeline with several.
    pub(crate) clock: Option<InputClock<E>>,
}

/// The newest event time read from each input of a pipeline with several: what the reader
/// [aligns](SourceReader::align) its inputs by.
pub(crate) struct InputClock<E> {
    event_time: TimeFn<E>,
    input_of: InputFn<E>,
    newest: Vec<Option<Millis>>,
}

impl<E> InputClock<E> {
    /// A clock over `inputs` inputs.
    pub(crate) fn new(event_time: TimeFn<E>, input_of: InputFn<E>, inputs: usize) -> Self {
        InputClock {
            event_time,
            input_of,
            newest: vec![None; inputs],
        }
    }

    /// Notes that `event` was read.
    fn tick(&mut self, event: &E) {
        let time = (self.event_time)(event);
        if let Some(newest) = self.newest.get_mut((self.input_of)(event)) {
            *newest = Some(newest.map_or(time, |n| n.max(time)));
        }
    }
}

/// Where reading starts, and the recorded epoch ends to replay first.
pub(crate) struct ReadPlan {
    pub(crate) from: SourcePosition,
    pub(crate) next_epoch: Epoch,
    pub(crate) replay: VecDeque<(Epoch, SourcePosition)>,
}

/// How an epoch's cut treats the end of the input.
#[derive(Debug, Clone, Copy)]
struct Ends {
    /// The input is exhausted and the job ends with this epoch.
    ended: bool,
    /// The input is exhausted and this epoch closes it (the job goes on).
    closes: bool,
}

/// What the read loop does after an epoch's cut.
enum Flow {
    /// Read on.
    Read,
    /// The job is done or failed: stop reading.
    Stop,
}

/// The epoch being read: records and dead letters routed to each partition but not yet sent,
/// how many each was sent, and the epoch's counts.
struct EpochInput<K, E> {
    routed: Vec<Vec<(K, E)>>,
    dead_routed: Vec<Vec<DeadLetter>>,
    exchanged_routed: Vec<Vec<ExchangeRecord>>,
    /// Dead letters of an input that is not partitioned, staged by the source itself.
    dead_lines: Vec<u8>,
    sent: Vec<u64>,
    dead_sent: Vec<u64>,
    exchanged_sent: Vec<u64>,
    /// Records read (before filtering).
    records: u64,
    dead_letters: u64,
    first_dead_error: Option<String>,
}

impl<K, E> EpochInput<K, E> {
    fn new(n: usize) -> Self {
        EpochInput {
            routed: (0..n).map(|_| Vec::new()).collect(),
            dead_routed: (0..n).map(|_| Vec::new()).collect(),
            exchanged_routed: (0..n).map(|_| Vec::new()).collect(),
            dead_lines: Vec::new(),
            sent: vec![0; n],
            dead_sent: vec![0; n],
            exchanged_sent: vec![0; n],
            records: 0,
            dead_letters: 0,
            first_dead_error: None,
        }
    }

    /// Counts dead letters and routes each: with its source partition's outputs (and so its
    /// checkpoint) when the input is partitioned (`route_of`: route of each source
    /// partition), else to the source's own dead-letter lines.
    fn route_exchanged(&mut self, exchanged: &mut Vec<(u32, ExchangeRecord)>) {
        let n = self.exchanged_routed.len();
        for (route, batch) in exchanged.drain(..) {
            self.exchanged_routed[route as usize % n].push(batch);
        }
    }

    fn route_dead(&mut self, dead: Vec<DeadLetter>, route_of: Option<&[usize]>) {
        let n = self.routed.len();
        for d in dead {
            self.dead_letters += 1;
            if self.first_dead_error.is_none() {
                self.first_dead_error = Some(d.error.clone());
            }
            match (d.partition, route_of) {
                (Some(id), Some(route_of)) => self.dead_routed[route_of[id as usize] % n].push(d),
                _ => d.write_json_line(&mut self.dead_lines),
            }
        }
    }
}

/// The route of each source partition of an already partitioned input (dead letters name
/// their source partition).
fn route_of(ids: Option<&[u32]>) -> Vec<usize> {
    let mut route_of = Vec::new();
    for (route, &id) in ids.into_iter().flatten().enumerate() {
        if route_of.len() <= id as usize {
            route_of.resize(id as usize + 1, 0);
        }
        route_of[id as usize] = route;
    }
    route_of
}

impl<R: Send + 'static, E: Send + 'static, K: Key> SourceDriver<R, E, K> {
    /// Runs until the job finishes; reports a failure to the supervisor.
    pub(crate) fn run(mut self, plan: ReadPlan) {
        if let Err(e) = self.read_loop(plan) {
            self.supervisor.do_send(SourceFailed(e));
        }
    }

    fn seek(&mut self, plan: &ReadPlan) -> Result<()> {
        if !self.reader.replayable()
            && (plan.from.parts() != self.reader.position().parts() || !plan.replay.is_empty())
        {
            return Err(Error::NotReplayable {
                source_name: "stdin",
            });
        }
        self.reader.seek(plan.from.clone())
    }

    /// Waits until every batch sent is handled.
    fn wait(queued: &mut [VecDeque<Pending<K, E>>]) -> Result<(), MailboxError> {
        block_on(join_all(queued.iter_mut().flat_map(|q| q.drain(..))))
            .into_iter()
            .collect::<Result<Vec<()>, _>>()
            .map(|_| ())
    }

    /// Drops the batches already handled from the front of each partition's queue.
    fn settle(queued: &mut [VecDeque<Pending<K, E>>]) -> Result<(), MailboxError> {
        for q in queued {
            while let Some(front) = q.front_mut() {
                match front.now_or_never() {
                    Some(result) => {
                        q.pop_front();
                        result?;
                    }
                    None => break,
                }
            }
        }
        Ok(())
    }

    /// Settles the queues and tells the reader which partitions are full (and so paused),
    /// counting each pause. When every partition is full there is nothing to read: waits for
    /// any one to handle a batch.
    fn pause_full(
        &mut self,
        queued: &mut [VecDeque<Pending<K, E>>],
        paused: &mut [bool],
        ids: &[u32],
    ) -> Result<(), MailboxError> {
        Self::settle(queued)?;
        if queued.iter().all(|q| q.len() >= QUEUED_BATCHES) {
            let (result, i, _) = block_on(select_all(
                queued
                    .iter_mut()
                    .map(|q| q.front_mut().expect("a full queue has a front")),
            ));
            queued[i].pop_front();
            result?;
            Self::settle(queued)?;
        }
        let mut changed = false;
        for (p, q) in queued.iter().enumerate() {
            let full = q.len() >= QUEUED_BATCHES;
            if full && !paused[p] {
                self.metrics.source_paused(ids[p]);
            }
            changed |= full != paused[p];
            paused[p] = full;
        }
        if changed {
            self.reader.pause(paused);
        }
        Ok(())
    }

    fn read_loop(&mut self, mut plan: ReadPlan) -> Result<()> {
        self.seek(&plan)?;
        let n = self.partitions.len();
        let mut epoch = plan.next_epoch;
        let mut input = EpochInput::new(n);
        let mut raw = Vec::with_capacity(self.chunk);
        let mut routes = Vec::new();
        let mut exchanged = Vec::new();
        let mut queued: Vec<VecDeque<Pending<K, E>>> = (0..n).map(|_| VecDeque::new()).collect();
        let mut paused = vec![false; n];
        // The source partition of each route, when the input is already partitioned.
        let ids = self.reader.partitions();
        let route_of = route_of(ids.as_deref());
        // Ends of cut epochs not yet known to be committed.
        let mut cut_ends: VecDeque<(Epoch, SourcePosition)> = VecDeque::new();
        // The epoch that closed the input (see `closes_before_end`).
        let mut closed_in: Option<Epoch> = None;
        // An epoch was cut after the first input was read to its end (`exchange_topic`).
        let mut input_closed = false;
        loop {
            let until = plan.replay.front().map(|(_, end)| end.clone());
            if until.is_some() && self.stopping() {
                // A replayed epoch can only end where it ended before: stop without it.
                return Err(Error::StoppedInReplay { epoch });
            }
            // A capped epoch reads no more than its remaining room, so it ends exactly at the cap.
            let room = match (&until, self.max_epoch_records) {
                (None, Some(max)) => max.saturating_sub(input.records).max(1) as usize,
                _ => usize::MAX,
            };
            let room_made = match &ids {
                Some(ids) => self.pause_full(&mut queued, &mut paused, ids),
                None => Self::settle(&mut queued),
            };
            if room_made.is_err() {
                return Ok(()); // the job is shutting down
            }
            let mut dead = Vec::new();
            let status = self.reader.read(
                &mut raw,
                &mut routes,
                &mut dead,
                self.chunk.min(room),
                until.as_ref(),
            )?;
            input.records += raw.len() as u64;
            self.route(&mut raw, &mut routes, ids.is_some(), &mut input);
            if let Some(clock) = &self.clock {
                self.reader.align(&clock.newest);
            }
            input.route_dead(dead, ids.is_some().then_some(route_of.as_slice()));
            self.reader.take_exchanged(&mut exchanged);
            input.route_exchanged(&mut exchanged);
            if !self.send_batches(&mut input, &mut queued, epoch) {
                return Ok(()); // the job is shutting down
            }
            let position = self.reader.position();
            let due = until.is_none() && self.exchange_due(&input, &mut input_closed);
            if !due && !self.is_cut(epoch, until.as_ref(), status, &position, input.records)? {
                continue;
            }
            // A partition reports its progress only once it handled every batch of the epoch.
            if Self::wait(&mut queued).is_err() {
                return Ok(());
            }
            let replaying = until.is_some();
            let ended = !replaying && status == ReadStatus::End;
            let ends = self.end_of_input(ended, epoch, &mut closed_in);
            let cut = self.epoch_cut(epoch, &position, &mut input, ends, !replaying)?;
            let reply = block_on(self.supervisor.send(cut)).unwrap_or(CutReply::Abort);
            match self.follow(reply, (&mut plan, &mut epoch), &position, &mut cut_ends)? {
                Flow::Read => {}
                Flow::Stop => return Ok(()),
            }
        }
    }

    /// Decodes `raw` into events and routes each to its key partition: its source partition's
    /// (an already partitioned input) or its key's.
    fn route(
        &mut self,
        raw: &mut Vec<R>,
        routes: &mut Vec<u32>,
        partitioned: bool,
        input: &mut EpochInput<K, E>,
    ) {
        let n = input.routed.len();
        if !partitioned {
            routes.clear();
        }
        let mut routes = routes.drain(..);
        for record in raw.drain(..) {
            let route = routes.next();
            let Some(event) = (self.transform)(record) else {
                continue;
            };
            let key = (self.key)(&event);
            if let Some(clock) = &mut self.clock {
                clock.tick(&event);
            }
            let p = match route {
                // A record of an input that is not a topic goes where a Kafka producer would
                // have put its key.
                Some(ROUTE_BY_KEY) => kafka_partition_of(&key, n as u32) as usize,
                Some(p) => p as usize,
                None => partition_of(&key, n as u32) as usize,
            };
            input.routed[p % n].push((key, event));
        }
    }

    /// Sends each partition its routed records and dead letters as one batch. A partition with
    /// a full queue (a source that cannot pause it read for it anyway) gets its next batch once
    /// it handled its oldest. False when the job is shutting down.
    fn send_batches(
        &self,
        input: &mut EpochInput<K, E>,
        queued: &mut [VecDeque<Pending<K, E>>],
        epoch: Epoch,
    ) -> bool {
        for (p, queue) in queued.iter_mut().enumerate() {
            if input.routed[p].is_empty()
                && input.dead_routed[p].is_empty()
                && input.exchanged_routed[p].is_empty()
            {
                continue;
            }
            if queue.len() >= QUEUED_BATCHES {
                let oldest = queue.pop_front().expect("a full queue has a front");
                if block_on(oldest).is_err() {
                    return false;
                }
            }
            let capacity = input.routed[p].len() + 16;
            let events = std::mem::replace(&mut input.routed[p], Vec::with_capacity(capacity));
            let dead = std::mem::take(&mut input.dead_routed[p]);
            let exchanged = std::mem::take(&mut input.exchanged_routed[p]);
            let (first, dead_first) = (input.sent[p], input.dead_sent[p]);
            let exchanged_first = input.exchanged_sent[p];
            input.sent[p] += events.len() as u64;
            input.dead_sent[p] += dead.len() as u64;
            input.exchanged_sent[p] += exchanged.len() as u64;
            queue.push_back(Box::pin(self.partitions[p].send(Batch {
                epoch,
                first,
                events,
                dead_first,
                dead,
                exchanged_first,
                exchanged,
            })));
        }
        true
    }

    /// Whether the epoch ends at `position`: exactly where it ended before while replaying (an
    /// error when the input no longer gets there), else at the end of the input, a stop, the
    /// epoch's record cap or the trigger.
    fn is_cut(
        &self,
        epoch: Epoch,
        until: Option<&SourcePosition>,
        status: ReadStatus,
        position: &SourcePosition,
        records: u64,
    ) -> Result<bool> {
        let Some(end) = until else {
            return Ok(status == ReadStatus::End
                || self.stopping()
                || self.max_epoch_records.is_some_and(|max| records >= max)
                || self.trigger.take_due()
                || (self.trigger.continuous
                    && records > 0
                    && self.trigger.previous_committed(epoch)));
        };
        // A replay that ends early or reads past its recorded end would never reach it.
        if position != end && (status == ReadStatus::End || position.is_after(end)) {
            let found = match status {
                ReadStatus::End => "the input ends before it".to_string(),
                _ => format!("it went on to {}", self.reader.describe(position)),
            };
            return Err(Error::InputChanged {
                epoch,
                recorded: self.reader.describe(end),
                found,
            });
        }
        Ok(position == end)
    }

    /// Whether a live epoch is cut for the repartition topic: the first input's last records
    /// (or, once, none, so the supervisor sees it ended) and every arrival of exchange batches
    /// after it; a trigger waiting for more input would wait forever.
    fn exchange_due(&self, input: &EpochInput<K, E>, input_closed: &mut bool) -> bool {
        if !self.exchange_topic || !first_stage_ended(&self.reader.inputs_ended()) {
            return false;
        }
        let arrived = input.exchanged_sent.iter().any(|&n| n > 0);
        let due = input.records > 0 || arrived || !*input_closed;
        *input_closed = true;
        due
    }

    /// Whether the cut of `epoch` ends the input and whether it closes it, given that the
    /// input is exhausted (`ended`): see `closes_before_end`. Waits for the closing epoch's
    /// commit before the one that ends the job.
    fn end_of_input(&self, ended: bool, epoch: Epoch, closed_in: &mut Option<Epoch>) -> Ends {
        if !ended || !self.closes_before_end {
            return Ends {
                ended,
                closes: false,
            };
        }
        let Some(closing) = *closed_in else {
            *closed_in = Some(epoch);
            return Ends {
                ended: false,
                closes: true,
            };
        };
        while self.trigger.committed.load(Ordering::Acquire) < closing
            && self.supervisor.connected()
            && !self.stopping()
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Ends {
            ended: true,
            closes: false,
        }
    }

    /// The cut of `epoch` at `position`, taking the epoch's counts out of `input`; `live`:
    /// the epoch is read for the first time.
    fn epoch_cut(
        &self,
        epoch: Epoch,
        position: &SourcePosition,
        input: &mut EpochInput<K, E>,
        Ends { ended, closes }: Ends,
        live: bool,
    ) -> Result<EpochCut> {
        let n = input.routed.len();
        let staged = self.sink.stage(
            epoch,
            OutputStream::DeadLetter,
            "src",
            std::mem::take(&mut input.dead_lines),
        )?;
        Ok(EpochCut {
            epoch,
            end: position.clone(),
            sent: std::mem::replace(&mut input.sent, vec![0; n]),
            dead_sent: std::mem::replace(&mut input.dead_sent, vec![0; n]),
            exchanged_sent: std::mem::replace(&mut input.exchanged_sent, vec![0; n]),
            records: std::mem::take(&mut input.records),
            dead_letters: std::mem::take(&mut input.dead_letters),
            first_dead_error: input.first_dead_error.take(),
            staged,
            end_of_input: ended,
            closes_input: closes,
            stopping: live && self.stopping(),
            lag: self.reader.lag(),
            waiting: self.reader.waiting(),
            inputs_ended: self.reader.inputs_ended(),
            at: std::time::Instant::now(),
        })
    }

    /// Acts on the supervisor's answer to the cut of `epoch` at `position`: read the next
    /// epoch, wait for the last one's commit, or seek back for a replay.
    fn follow(
        &mut self,
        mut reply: CutReply,
        (plan, epoch): (&mut ReadPlan, &mut Epoch),
        position: &SourcePosition,
        cut_ends: &mut VecDeque<(Epoch, SourcePosition)>,
    ) -> Result<Flow> {
        loop {
            match reply {
                CutReply::Abort => return Ok(Flow::Stop),
                CutReply::Go { finished } => {
                    if plan.replay.front().is_some_and(|(e, _)| *e == *epoch) {
                        plan.replay.pop_front();
                    }
                    cut_ends.push_back((*epoch, position.clone()));
                    self.tell_committed(cut_ends);
                    *epoch += 1;
                    if !finished {
                        return Ok(Flow::Read);
                    }
                    // The last epoch is cut: wait until it commits, or until a partition
                    // that failed while finishing it needs a replay.
                    reply = self.control.recv().unwrap_or(CutReply::Abort);
                    if let CutReply::Go { .. } = reply {
                        self.reader.committed(position);
                        return Ok(Flow::Stop);
                    }
                }
                CutReply::Rewind {
                    from,
                    next_epoch,
                    replay,
                } => {
                    cut_ends.retain(|(e, _)| *e < next_epoch);
                    *plan = Self::rewind_plan(from, next_epoch, replay, position.clone());
                    *epoch = plan.next_epoch;
                    self.seek(plan)?;
                    return Ok(Flow::Read);
                }
            }
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
            || self
                .revoked
                .as_ref()
                .is_some_and(|r| r.load(Ordering::Acquire))
    }

    /// Tells the reader how far the committed epochs reach.
    fn tell_committed(&mut self, cut_ends: &mut VecDeque<(Epoch, SourcePosition)>) {
        let committed = self.trigger.committed.load(Ordering::Acquire);
        let mut last = None;
        while cut_ends.front().is_some_and(|(e, _)| *e <= committed) {
            last = cut_ends.pop_front();
        }
        if let Some((_, position)) = last {
            self.reader.committed(&position);
        }
    }

    /// The plan after a rewind requested at a cut at `position`. Partitions that did not fail
    /// already processed input up to `position`, so the first epoch after the recorded ones
    /// must end exactly there, or they would hold records of the epoch after it.
    fn rewind_plan(
        from: SourcePosition,
        next_epoch: Epoch,
        replay: Vec<(Epoch, SourcePosition)>,
        position: SourcePosition,
    ) -> ReadPlan {
        let mut replay: VecDeque<_> = replay.into();
        let last = replay.back().map_or(&from, |(_, end)| end);
        if position.is_after(last) {
            let e = replay.back().map_or(next_epoch, |&(e, _)| e + 1);
            replay.push_back((e, position));
        }
        ReadPlan {
            from,
            next_epoch,
            replay,
        }
    }
}
