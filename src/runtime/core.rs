//! The processing core of one key partition, free of actors: lateness, per-key operator calls,
//! timer firing, outputs, and the state changes a checkpoint writes. The partition actor wraps
//! it; tests drive it directly as an operator harness.

use crate::checkpoint::{Epoch, PartitionCheckpoint};
use crate::operator::{KeyedContext, KeyedOperator, TimeDomain, Timer};
use crate::pipeline::{KeyFn, TimeFn};
use crate::state::{Bucket, KeyedState};
use crate::time::{Millis, BEFORE_TIME};
use std::sync::Arc;

/// A state bucket changed since the last checkpoint, with its keys' entries (`None`: it
/// became empty).
pub type Change<'a, Op> = (
    u32,
    Option<&'a Bucket<<Op as KeyedOperator>::Key, <Op as KeyedOperator>::State>>,
);

/// A stored state bucket: its number and its keys' entries.
pub type StoredBucket<Op> = (
    u32,
    Bucket<<Op as KeyedOperator>::Key, <Op as KeyedOperator>::State>,
);

/// Counts from processing one batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchStats {
    /// Records handed to the operator.
    pub processed: u64,
    /// Records behind the watermark, sent to the late output.
    pub late: u64,
}

/// One key partition's operator, state and buffered outputs.
pub struct PartitionCore<Op: KeyedOperator> {
    operator: Arc<Op>,
    key: KeyFn<Op::Event, Op::Key>,
    event_time: TimeFn<Op::Event>,
    state: KeyedState<Op::Key, Op::State>,
    outputs: Vec<Op::Output>,
    /// The key each output was emitted for, in step with `outputs`.
    output_keys: Vec<Op::Key>,
    late: Vec<(Millis, Op::Event)>,
    watermark: Millis,
    max_event_time: Millis,
    processing_time: Millis,
}

impl<Op: KeyedOperator> PartitionCore<Op> {
    /// A core with empty state.
    pub fn new(
        operator: Arc<Op>,
        key: KeyFn<Op::Event, Op::Key>,
        event_time: TimeFn<Op::Event>,
    ) -> Self {
        PartitionCore {
            operator,
            key,
            event_time,
            state: KeyedState::default(),
            outputs: Vec::new(),
            output_keys: Vec::new(),
            late: Vec::new(),
            watermark: BEFORE_TIME,
            max_event_time: BEFORE_TIME,
            processing_time: 0,
        }
    }

    /// Runs the operator on each record; records older than the watermark go to the late
    /// buffer instead.
    pub fn process(&mut self, events: impl IntoIterator<Item = Op::Event>) -> BatchStats {
        let key = self.key.clone();
        self.process_keyed(events.into_iter().map(|e| (key(&e), e)))
    }

    /// [`PartitionCore::process`] for records whose key is already known (the source computes
    /// it to route each record, so the partition does not compute it again).
    pub fn process_keyed(
        &mut self,
        events: impl IntoIterator<Item = (Op::Key, Op::Event)>,
    ) -> BatchStats {
        let mut stats = BatchStats::default();
        let operator = &*self.operator;
        for (key, event) in events {
            let time = (self.event_time)(&event);
            if time < self.watermark {
                self.late.push((time, event));
                stats.late += 1;
                continue;
            }
            stats.processed += 1;
            self.max_event_time = self.max_event_time.max(time);
            let (entry, timers) = self.state.touch(&key);
            let mut ctx = KeyedContext::new(
                &key,
                entry,
                timers,
                &mut self.outputs,
                time,
                self.watermark,
                self.processing_time,
            );
            operator.on_event(&event, &mut ctx);
            let cleared = ctx.cleared;
            Self::key_outputs(&self.outputs, &mut self.output_keys, &key);
            if cleared {
                self.state.remove_if_idle(&key);
            }
        }
        stats
    }

    /// Ends an epoch: moves the watermark and processing time forward and fires every timer
    /// they reached, in time order.
    pub fn advance(&mut self, watermark: Millis, processing_time: Millis) {
        self.watermark = self.watermark.max(watermark);
        self.processing_time = self.processing_time.max(processing_time);
        self.fire(TimeDomain::EventTime, self.watermark);
        self.fire(TimeDomain::ProcessingTime, self.processing_time);
    }

    fn fire(&mut self, domain: TimeDomain, upto: Millis) {
        let operator = &*self.operator;
        while let Some((time, key)) = self.state.pop_due(domain, upto) {
            let Some((entry, timers)) = self.state.touch_existing(&key) else {
                continue;
            };
            entry.timers.retain(|t| *t != (domain, time));
            let mut ctx = KeyedContext::new(
                &key,
                entry,
                timers,
                &mut self.outputs,
                time,
                self.watermark,
                self.processing_time,
            );
            operator.on_timer(Timer { time, domain }, &mut ctx);
            let cleared = ctx.cleared;
            Self::key_outputs(&self.outputs, &mut self.output_keys, &key);
            if cleared {
                self.state.remove_if_idle(&key);
            }
        }
    }

    /// Records `key` for the outputs one callback emitted (those `keys` does not cover yet).
    fn key_outputs(outputs: &[Op::Output], keys: &mut Vec<Op::Key>, key: &Op::Key) {
        let emitted = outputs.len() - keys.len();
        keys.extend(std::iter::repeat_n(key, emitted).cloned());
    }

    /// Takes the outputs emitted since the last call.
    pub fn take_outputs(&mut self) -> Vec<Op::Output> {
        self.output_keys.clear();
        std::mem::take(&mut self.outputs)
    }

    /// Takes the outputs emitted since the last call, each with the key it was emitted for.
    pub fn take_keyed_outputs(&mut self) -> impl Iterator<Item = (Op::Key, Op::Output)> {
        std::mem::take(&mut self.output_keys)
            .into_iter()
            .zip(std::mem::take(&mut self.outputs))
    }

    /// Takes the late records (with their event time) since the last call.
    pub fn take_late(&mut self) -> Vec<(Millis, Op::Event)> {
        std::mem::take(&mut self.late)
    }

    /// State buckets changed since the last call, with their entries (`None`: now empty).
    pub fn drain_changes(&mut self) -> Vec<Change<'_, Op>> {
        self.state.drain_changes()
    }

    /// The checkpoint metadata describing the current state as of `epoch`.
    pub fn checkpoint_meta(&self, epoch: Epoch) -> PartitionCheckpoint {
        PartitionCheckpoint {
            epoch,
            watermark: self.watermark,
            max_event_time: self.max_event_time,
            processing_time: self.processing_time,
        }
    }

    /// Replaces everything with a checkpoint's state; buffered outputs are discarded.
    pub fn restore(&mut self, meta: &PartitionCheckpoint, entries: Vec<StoredBucket<Op>>) {
        self.state.restore(entries);
        self.outputs.clear();
        self.output_keys.clear();
        self.late.clear();
        self.watermark = if meta.epoch == 0 {
            BEFORE_TIME
        } else {
            meta.watermark
        };
        self.max_event_time = if meta.epoch == 0 {
            BEFORE_TIME
        } else {
            meta.max_event_time
        };
        self.processing_time = meta.processing_time;
    }

    /// The current watermark.
    pub fn watermark(&self) -> Millis {
        self.watermark
    }

    /// The largest event time processed.
    pub fn max_event_time(&self) -> Millis {
        self.max_event_time
    }

    /// Number of keys holding state.
    pub fn key_count(&self) -> usize {
        self.state.len()
    }

    /// Number of pending timers.
    pub fn timer_count(&self) -> usize {
        self.state.timer_count()
    }

    /// One key's state.
    pub fn state_of(&self, key: &Op::Key) -> Option<&Op::State> {
        self.state.get(key)
    }
}
