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
use crate::io::sink::{EpochSink, OutputStream};
use crate::io::source::ROUTE_BY_KEY;
use crate::io::source::{ReadStatus, SourceReader};
use crate::io::DeadLetter;
use crate::key::{kafka_partition_of, partition_of};
use crate::metrics::Metrics;
use crate::pipeline::{KeyFn, TransformFn};
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
}

/// Where reading starts, and the recorded epoch ends to replay first.
pub(crate) struct ReadPlan {
    pub(crate) from: SourcePosition,
    pub(crate) next_epoch: Epoch,
    pub(crate) replay: VecDeque<(Epoch, SourcePosition)>,
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
            return Err(Error::Runtime(
                "a partition must replay its input, but stdin cannot be read again; rerun with a file or generator source (the state directory keeps the last checkpoint)".into(),
            ));
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
        let mut sent = vec![0u64; n];
        let mut dead_sent = vec![0u64; n];
        let mut routed: Vec<Vec<(K, E)>> = (0..n).map(|_| Vec::new()).collect();
        let mut dead_routed: Vec<Vec<DeadLetter>> = (0..n).map(|_| Vec::new()).collect();
        let mut raw = Vec::with_capacity(self.chunk);
        let mut dead = Vec::new();
        let mut dead_lines = Vec::new();
        let (mut records, mut dead_letters) = (0u64, 0u64);
        let mut first_dead_error = None;
        let mut queued: Vec<VecDeque<Pending<K, E>>> = (0..n).map(|_| VecDeque::new()).collect();
        let mut paused = vec![false; n];
        let mut routes = Vec::new();
        // The source partition of each route, when the input is already partitioned.
        let ids = self.reader.partitions();
        let partitioned = ids.is_some();
        // Route of each source partition (dead letters name their source partition).
        let mut route_of = Vec::new();
        for (route, &id) in ids.iter().flatten().enumerate() {
            if route_of.len() <= id as usize {
                route_of.resize(id as usize + 1, 0);
            }
            route_of[id as usize] = route;
        }
        // Ends of cut epochs not yet known to be committed.
        let mut cut_ends: VecDeque<(Epoch, SourcePosition)> = VecDeque::new();
        loop {
            let until = plan.replay.front().map(|(_, end)| end.clone());
            if until.is_some() && self.stopping() {
                // A replayed epoch can only end where it ended before: stop without it.
                return Err(Error::StoppedInReplay { epoch });
            }
            // A capped epoch reads no more than its remaining room, so it ends exactly at the cap.
            let room = match (&until, self.max_epoch_records) {
                (None, Some(max)) => max.saturating_sub(records).max(1) as usize,
                _ => usize::MAX,
            };
            let room_made = match &ids {
                Some(ids) => self.pause_full(&mut queued, &mut paused, ids),
                None => Self::settle(&mut queued),
            };
            if room_made.is_err() {
                return Ok(()); // the job is shutting down
            }
            let status = self.reader.read(
                &mut raw,
                &mut routes,
                &mut dead,
                self.chunk.min(room),
                until.as_ref(),
            )?;
            let read = raw.len();
            records += read as u64;
            if partitioned {
                // Input already split by key (a Kafka topic): its partition is the key partition.
                for (record, p) in raw.drain(..).zip(routes.drain(..)) {
                    if let Some(event) = (self.transform)(record) {
                        let key = (self.key)(&event);
                        let p = match p {
                            // A record of an input that is not a topic goes where a Kafka
                            // producer would have put its key.
                            ROUTE_BY_KEY => kafka_partition_of(&key, n as u32),
                            p => p,
                        };
                        routed[p as usize % n].push((key, event));
                    }
                }
            } else {
                for record in raw.drain(..) {
                    if let Some(event) = (self.transform)(record) {
                        let key = (self.key)(&event);
                        let p = partition_of(&key, n as u32) as usize;
                        routed[p].push((key, event));
                    }
                }
            }
            for d in dead.drain(..) {
                dead_letters += 1;
                if first_dead_error.is_none() {
                    first_dead_error = Some(d.error.clone());
                }
                match d.partition.filter(|_| partitioned) {
                    // A partitioned source's dead letters travel with their partition's outputs
                    // (and so with its checkpoint).
                    Some(id) => dead_routed[route_of[id as usize] % n].push(d),
                    None => d.write_json_line(&mut dead_lines),
                }
            }
            for (p, (events, dead)) in routed.iter_mut().zip(&mut dead_routed).enumerate() {
                if events.is_empty() && dead.is_empty() {
                    continue;
                }
                // A partition with a full queue (a source that cannot pause it read for it
                // anyway) gets its next batch once it handled its oldest.
                if queued[p].len() >= QUEUED_BATCHES {
                    let oldest = queued[p].pop_front().expect("a full queue has a front");
                    if block_on(oldest).is_err() {
                        return Ok(()); // the job is shutting down
                    }
                }
                let events = std::mem::replace(events, Vec::with_capacity(read / n + 16));
                let dead = std::mem::take(dead);
                let (first, dead_first) = (sent[p], dead_sent[p]);
                sent[p] += events.len() as u64;
                dead_sent[p] += dead.len() as u64;
                queued[p].push_back(Box::pin(self.partitions[p].send(Batch {
                    epoch,
                    first,
                    events,
                    dead_first,
                    dead,
                })));
            }
            let replaying = until.is_some();
            let position = self.reader.position();
            let cut = match &until {
                // A replay that ends early or reads past its recorded end would never reach it.
                Some(end)
                    if position != *end
                        && (status == ReadStatus::End || position.is_after(end)) =>
                {
                    let found = match status {
                        ReadStatus::End => "the input ends before it".to_string(),
                        _ => format!("it went on to {}", self.reader.describe(&position)),
                    };
                    return Err(Error::InputChanged {
                        epoch,
                        recorded: self.reader.describe(end),
                        found,
                    });
                }
                Some(end) => position == *end,
                None => {
                    status == ReadStatus::End
                        || self.stopping()
                        || self.max_epoch_records.is_some_and(|max| records >= max)
                        || self.trigger.take_due()
                        || (self.trigger.continuous
                            && records > 0
                            && self.trigger.previous_committed(epoch))
                }
            };
            if !cut {
                continue;
            }
            // A partition reports its progress only once it handled every batch of the epoch.
            if Self::wait(&mut queued).is_err() {
                return Ok(());
            }
            let staged = self.sink.stage(
                epoch,
                OutputStream::DeadLetter,
                "src",
                std::mem::take(&mut dead_lines),
            )?;
            let mut reply = block_on(self.supervisor.send(EpochCut {
                epoch,
                end: position.clone(),
                sent: std::mem::replace(&mut sent, vec![0; n]),
                dead_sent: std::mem::replace(&mut dead_sent, vec![0; n]),
                records: std::mem::take(&mut records),
                dead_letters: std::mem::take(&mut dead_letters),
                first_dead_error: first_dead_error.take(),
                staged,
                end_of_input: !replaying && status == ReadStatus::End,
                stopping: !replaying && self.stopping(),
                lag: self.reader.lag(),
                waiting: self.reader.waiting(),
            }))
            .unwrap_or(CutReply::Abort);
            loop {
                match reply {
                    CutReply::Abort => return Ok(()),
                    CutReply::Go { finished } => {
                        if plan.replay.front().is_some_and(|(e, _)| *e == epoch) {
                            plan.replay.pop_front();
                        }
                        cut_ends.push_back((epoch, position.clone()));
                        self.tell_committed(&mut cut_ends);
                        epoch += 1;
                        if !finished {
                            break;
                        }
                        // The last epoch is cut: wait until it commits, or until a partition
                        // that failed while finishing it needs a replay.
                        reply = self.control.recv().unwrap_or(CutReply::Abort);
                        if let CutReply::Go { .. } = reply {
                            self.reader.committed(&position);
                            return Ok(());
                        }
                    }
                    CutReply::Rewind {
                        from,
                        next_epoch,
                        replay,
                    } => {
                        cut_ends.retain(|(e, _)| *e < next_epoch);
                        plan = Self::rewind_plan(from, next_epoch, replay, position);
                        epoch = plan.next_epoch;
                        self.seek(&plan)?;
                        break;
                    }
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
