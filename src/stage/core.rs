//! The processing core of one key partition, free of actors: lateness, per-key operator calls,
//! timer firing, state expiry, outputs, and the state changes a checkpoint writes. The
//! partition actor wraps it; tests drive it directly as an operator harness.
//!
//! The core keeps the partition's own watermark and moves it record by record (see
//! [`crate::time::rules`]): a record is late when it is behind the watermark the records before
//! it made, and event-time timers fire the moment the watermark reaches them. So what the core
//! emits, and in which order, depends only on its records in their order, never on where the
//! epochs that brought them were cut.
//!
//! A pipeline with several inputs (a join) keeps one watermark per input, moved by that input's
//! records alone, and decides a record's lateness on its own input's watermark; timers fire on
//! the smallest of them. So a slow input holds the operator back but never makes the other
//! input's records late, and which records are late does not depend on how the inputs'
//! records interleave.

use crate::checkpoint::{Epoch, PartitionCheckpoint};
use crate::key::HashedKey;
use crate::learning::{Learned, ModelHistory, PartitionModel};
use crate::operator::{Clock, Counters, KeyedContext, KeyedOperator, TimeDomain, Timer};
use crate::pipeline::{InputFn, KeyFn, TimeFn};
use crate::state::{Bucket, KeyedState, LogIndex, WARM_AHEAD};
use crate::time::{Millis, TimeRules, TtlClock, BEFORE_TIME, END_OF_TIME};
use smallvec::SmallVec;
use std::sync::Arc;

/// A state bucket changed since the last checkpoint, with its keys' entries (`None`: it
/// became empty).
pub type Change<'a, Op> = (
    u32,
    Option<&'a Bucket<<Op as KeyedOperator>::Key, <Op as KeyedOperator>::State>>,
);

/// A stored state bucket: its number, its keys' entries and its stored size in bytes.
pub type StoredBucket<Op> = (
    u32,
    Bucket<<Op as KeyedOperator>::Key, <Op as KeyedOperator>::State>,
    u64,
);

/// Counts from processing one batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchStats {
    /// Records handed to the operator.
    pub processed: u64,
    /// Records behind the watermark, sent to the late output.
    pub late: u64,
}

/// Counts since the core was made (or restored).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CoreCounts {
    /// Keys whose state expired under the state TTL.
    pub expired: u64,
}

/// One input's event-time progress in a partition.
#[derive(Debug, Clone, Copy)]
struct InputClock {
    /// How far its watermark trails its newest event time; `None` for an upstream channel,
    /// whose watermark the upstream partition sets.
    delay: Option<Millis>,
    /// Its newest event time.
    max_event_time: Millis,
    /// Its watermark: its records' newest time minus the delay, or what an epoch end raised it to.
    watermark: Millis,
    /// Records of it received since the core was made (late ones included).
    received: u64,
}

impl InputClock {
    fn new(delay: Option<Millis>) -> Self {
        InputClock {
            delay,
            max_event_time: BEFORE_TIME,
            watermark: BEFORE_TIME,
            received: 0,
        }
    }
}

/// One key partition's operator, state and buffered outputs.
pub struct PartitionCore<Op: KeyedOperator> {
    operator: Arc<Op>,
    key: KeyFn<Op::Event, Op::Key>,
    event_time: TimeFn<Op::Event>,
    /// Which input a record came from (pipelines with several inputs).
    input_of: Option<InputFn<Op::Event>>,
    rules: TimeRules,
    state: KeyedState<Op::Key, Op::State>,
    outputs: Vec<Op::Output>,
    /// The key each output was emitted for, in step with `outputs`.
    output_keys: Vec<Op::Key>,
    late: Vec<(Millis, Op::Event)>,
    /// The watermark each output was emitted under (the partition's before the record or
    /// watermark step that emitted it), in step with `outputs`: what a later stage decides
    /// lateness by.
    output_watermarks: Vec<Millis>,
    /// Each input's clock; the partition's watermark is the smallest of theirs.
    inputs: Vec<InputClock>,
    watermark: Millis,
    /// The watermark outputs emitted now are emitted under.
    emitting_under: Millis,
    /// What the operator counted since the last epoch end.
    counters: Counters,
    /// The pipeline's shared model, and what the operator taught it since the last report.
    model: PartitionModel,
    processing_time: Millis,
    counts: CoreCounts,
    /// The bucket count (a power of two) a partition checkpointed for the first time gets.
    fresh_bits: u32,
}

impl<Op: KeyedOperator> PartitionCore<Op> {
    /// A core with empty state, deciding lateness, emission and expiry by `rules`.
    pub fn new(
        operator: Arc<Op>,
        key: KeyFn<Op::Event, Op::Key>,
        event_time: TimeFn<Op::Event>,
        rules: TimeRules,
    ) -> Self {
        PartitionCore {
            operator,
            key,
            event_time,
            input_of: None,
            inputs: vec![InputClock::new(Some(rules.watermark_delay))],
            rules,
            state: KeyedState::default(),
            outputs: Vec::new(),
            output_keys: Vec::new(),
            late: Vec::new(),
            output_watermarks: Vec::new(),
            watermark: BEFORE_TIME,
            emitting_under: BEFORE_TIME,
            counters: Counters::default(),
            model: PartitionModel::default(),
            processing_time: 0,
            counts: CoreCounts::default(),
            fresh_bits: crate::state::BUCKET_BITS,
        }
    }

    /// A core whose records come from several inputs: `input_of` tells a record's input (an
    /// index into `delays`, each input's watermark delay).
    pub fn with_inputs(mut self, input_of: InputFn<Op::Event>, delays: &[Millis]) -> Self {
        self.input_of = Some(input_of);
        self.inputs = delays.iter().map(|&d| InputClock::new(Some(d))).collect();
        self
    }

    /// A core of a later stage, fed by `upstream` partitions through
    /// [`process_channel`](Self::process_channel): one watermark per upstream partition.
    pub fn with_channels(mut self, upstream: usize) -> Self {
        self.inputs = vec![InputClock::new(None); upstream];
        self
    }

    /// Runs the operator on records from upstream partition `from`, in the order it emitted
    /// them, each with the watermark it was emitted under: a record is late only behind that
    /// watermark. Then raises the channel's watermark to `watermark`, the upstream partition's
    /// after the batch, firing what the smallest channel watermark reaches.
    pub fn process_channel(
        &mut self,
        from: usize,
        records: Vec<(Op::Key, Op::Event, Millis)>,
        watermark: Millis,
    ) -> BatchStats {
        let mut stats = BatchStats::default();
        self.warmed(
            records,
            |(key, _, _)| key,
            |core, (key, event, under), stable| {
                core.process_from(from, (key, stable), event, under, &mut stats)
            },
        );
        let clock = &mut self.inputs[from];
        clock.watermark = clock.watermark.max(watermark);
        self.move_watermark();
        stats
    }

    /// Processes one record of upstream channel `from`, emitted under watermark `under`; its
    /// key comes with its stable hash.
    fn process_from(
        &mut self,
        from: usize,
        (key, stable): (Op::Key, u64),
        event: Op::Event,
        under: Millis,
        stats: &mut BatchStats,
    ) {
        let time = (self.event_time)(&event);
        let clock = &mut self.inputs[from];
        clock.received += 1;
        clock.watermark = clock.watermark.max(under);
        let channel_watermark = clock.watermark;
        self.move_watermark();
        let clock = &mut self.inputs[from];
        if self.rules.is_late(time, channel_watermark) {
            self.late.push((time, event));
            stats.late += 1;
            return;
        }
        clock.max_event_time = clock.max_event_time.max(time);
        stats.processed += 1;
        self.on_event(HashedKey { key: &key, stable }, event, time);
    }

    /// Runs `each` on `records` in order, with the stable hash of each one's key; when the
    /// state [`warms`](KeyedState::warms), [`WARM_AHEAD`] at a time, each group in three steps
    /// a group apart: its control bytes asked for while the group before is processed
    /// ([`KeyedState::prefetch_control`]), then its entries looked up ([`KeyedState::warm`]),
    /// then its records processed. Each hash is computed once. The keys are read where the
    /// records are: a record moves once, into `each`.
    fn warmed<T>(
        &mut self,
        records: Vec<T>,
        key: impl Fn(&T) -> &Op::Key,
        mut each: impl FnMut(&mut Self, T, u64),
    ) {
        let mut records = records.into_iter();
        if !self.state.warms() {
            return records.for_each(|record| {
                let stable = HashedKey::new(key(&record)).stable;
                each(self, record, stable)
            });
        }
        let hashes_of = |records: &[T]| -> SmallVec<[u64; WARM_AHEAD]> {
            let group = &records[..records.len().min(WARM_AHEAD)];
            group
                .iter()
                .map(|r| HashedKey::new(key(r)).stable)
                .collect()
        };
        let mut hashes = hashes_of(records.as_slice());
        self.state.prefetch_control(&hashes);
        while !hashes.is_empty() {
            let rest = records.as_slice();
            let next = hashes_of(&rest[hashes.len()..]);
            self.state.prefetch_control(&next);
            let hashed = (rest.iter().zip(&hashes)).map(|(r, &stable)| HashedKey {
                key: key(r),
                stable,
            });
            let operator = &self.operator;
            self.state.warm(hashed, |s| operator.prefetch(s));
            for &stable in &hashes {
                let record = records.next().expect("a hash per record ahead");
                each(self, record, stable);
            }
            hashes = next;
        }
    }

    /// Runs the operator on each record, in order; late records go to the late buffer
    /// instead. A record that moves the watermark fires the timers it reaches before the next
    /// record is looked at.
    pub fn process(&mut self, events: impl IntoIterator<Item = Op::Event>) -> BatchStats {
        let key = self.key.clone();
        self.process_keyed(events.into_iter().map(|e| (key(&e), e)).collect())
    }

    /// [`PartitionCore::process`] for records whose key is already known (the source computes
    /// it to route each record, so the partition does not compute it again). With a state
    /// larger than the cache, takes the records [`WARM_AHEAD`] at a time and warms their keys'
    /// state first (see [`KeyedState::warm`]).
    pub fn process_keyed(&mut self, events: Vec<(Op::Key, Op::Event)>) -> BatchStats {
        let mut stats = BatchStats::default();
        self.warmed(
            events,
            |(key, _)| key,
            |core, (key, event), stable| core.process_one((key, stable), event, &mut stats),
        );
        stats
    }

    /// Processes one record (its key with its stable hash): late, or run by the operator and
    /// its time noted.
    fn process_one(
        &mut self,
        (key, stable): (Op::Key, u64),
        event: Op::Event,
        stats: &mut BatchStats,
    ) {
        let time = (self.event_time)(&event);
        let input = self.input_of.as_ref().map_or(0, |f| f(&event));
        let clock = &mut self.inputs[input];
        clock.received += 1;
        if self.rules.is_late(time, clock.watermark) {
            self.late.push((time, event));
            stats.late += 1;
            return;
        }
        stats.processed += 1;
        self.on_event(HashedKey { key: &key, stable }, event, time);
        let clock = &mut self.inputs[input];
        if time > clock.max_event_time {
            clock.max_event_time = time;
            let delay = clock.delay.unwrap_or(0);
            clock.watermark = clock.watermark.max(time.saturating_sub(delay));
            self.move_watermark();
        }
    }

    /// Moves the partition's watermark to the smallest input watermark, firing what it reaches.
    fn move_watermark(&mut self) {
        let watermark = self.inputs.iter().map(|c| c.watermark).min();
        if let Some(watermark) = watermark.filter(|&w| w > self.watermark) {
            self.emitting_under = self.watermark;
            self.watermark = watermark;
            self.on_event_time();
        }
    }

    /// Runs the operator on one record that is not late.
    ///
    /// The key's entry is looked up only if the operator reads or writes it
    /// ([`KeyedContext::lazy`]). With a state TTL every record refreshes its key's: the
    /// lookup records the touch, or, when the operator did not look, the key's entry is
    /// touched after the callback if it has one (a key without state has nothing to keep).
    fn on_event(&mut self, hashed: HashedKey<'_, Op::Key>, event: Op::Event, time: Millis) {
        let clock = Clock {
            time,
            watermark: self.watermark,
            processing_time: self.processing_time,
        };
        self.emitting_under = self.watermark;
        let out = (&mut self.outputs, &mut self.counters, &mut self.model);
        let touch = self.rules.ttl.map(|ttl| match ttl.clock {
            TtlClock::EventTime => (time, ttl.ttl),
            TtlClock::ProcessingTime => (self.processing_time, ttl.ttl),
        });
        let state = (&mut self.state, touch);
        let mut ctx = KeyedContext::lazy(hashed, state, out, clock, &self.rules);
        self.operator.on_event_owned(event, &mut ctx);
        let (cleared, looked_up) = (ctx.was_cleared(), ctx.looked_up());
        self.key_outputs(hashed.key);
        match (cleared, looked_up, touch) {
            (true, ..) => self.state.remove_if_idle(hashed),
            (false, false, Some((now, _))) => self.state.refresh_touch(hashed, now),
            _ => {}
        }
    }

    /// The watermark moved: fires the event-time timers it reached, then expires state an
    /// event-time TTL no longer keeps. At the end of the input, expiry waits for the epoch's
    /// end ([`advance`](Self::advance)), so that state waiting for the shared model's last
    /// versions is scored first.
    fn on_event_time(&mut self) {
        self.fire(TimeDomain::EventTime, self.watermark, &mut |_| {});
        if self.watermark < END_OF_TIME {
            self.expire(TtlClock::EventTime, self.watermark);
        }
    }

    /// Drops the state of keys untouched for the TTL on `clock` as of `now`.
    fn expire(&mut self, clock: TtlClock, now: Millis) {
        let Some(ttl) = self.rules.ttl.filter(|t| t.clock == clock) else {
            return;
        };
        while self.state.pop_expired(now, ttl.ttl).is_some() {
            self.counts.expired += 1;
        }
    }

    /// Ends an epoch: moves the processing time forward, and the watermark to at least
    /// `watermark` (the job's: it passes the partition's own only when the partition was idle,
    /// or at the end of the input), and fires every timer they reached, in time order.
    pub fn advance(&mut self, watermark: Millis, processing_time: Millis) {
        self.advance_draining(watermark, processing_time, &mut |_| {});
    }

    /// [`advance`](Self::advance), handing the core to `drain` each time the timers fired so far
    /// left 4,096 outputs or more, for it to take them
    /// ([`take_keyed_outputs`](Self::take_keyed_outputs)) as they come. A watermark that
    /// fires a million keys' windows then never holds a million outputs at once: growing their
    /// buffer that far copied it again and again into memory the system had to hand out anew.
    pub fn advance_draining(
        &mut self,
        watermark: Millis,
        processing_time: Millis,
        drain: &mut dyn FnMut(&mut Self),
    ) {
        self.processing_time = self.processing_time.max(processing_time);
        for clock in &mut self.inputs {
            clock.watermark = clock.watermark.max(watermark);
        }
        self.emitting_under = self.watermark;
        self.watermark = self.watermark.max(watermark);
        self.fire(TimeDomain::EventTime, self.watermark, drain);
        if let Some(history) = &self.model.history {
            // A timer at `t` waits for the model of `t`'s micro-batch, known once the batches
            // before it are learned: `batch_start(t) <= closed_until`. Before expiry, so that
            // the end of the input scores what waited before it forgets anything.
            let known = history.closed_until().saturating_add(history.batch - 1);
            self.fire(TimeDomain::Model, known, drain);
        }
        self.expire(TtlClock::EventTime, self.watermark);
        self.fire(TimeDomain::ProcessingTime, self.processing_time, drain);
        self.expire(TtlClock::ProcessingTime, self.processing_time);
    }

    /// Hands the operator the shared model's versions of an epoch's seal (before
    /// [`advance`](Self::advance), which fires the model timers they answer).
    pub fn install_model(&mut self, history: Arc<ModelHistory>) {
        self.model.history = Some(history);
    }

    /// Takes the examples the operator learned since the last call.
    pub fn take_learned(&mut self) -> Vec<Learned> {
        std::mem::take(&mut self.model.learned)
    }

    fn fire(&mut self, domain: TimeDomain, upto: Millis, drain: &mut dyn FnMut(&mut Self)) {
        let operator = self.operator.clone();
        for fired in 0.. {
            if fired % WARM_AHEAD == 0 {
                self.state.warm_due(domain, upto, |s| operator.prefetch(s));
            }
            let Some((time, key)) = self.state.pop_due(domain, upto) else {
                return;
            };
            let hashed = HashedKey::new(&key);
            let Some((entry, timers)) = self.state.touch_existing(hashed) else {
                continue;
            };
            entry.timers.retain(|t| *t != (domain, time));
            let clock = Clock {
                time,
                watermark: self.watermark,
                processing_time: self.processing_time,
            };
            let out = (&mut self.outputs, &mut self.counters, &mut self.model);
            let mut ctx = KeyedContext::new(hashed, entry, timers, out, clock, &self.rules);
            operator.on_timer(Timer { time, domain }, &mut ctx);
            let cleared = ctx.was_cleared();
            self.key_outputs(&key);
            if cleared {
                self.state.remove_if_idle(hashed);
            }
            if self.outputs.len() >= ROOM_AT_MOST {
                drain(self);
            }
        }
    }

    /// Records `key` and the watermark they were emitted under for the outputs one callback
    /// emitted (those not covered yet).
    fn key_outputs(&mut self, key: &Op::Key) {
        let emitted = self.outputs.len() - self.output_keys.len();
        self.output_keys
            .extend(std::iter::repeat_n(key, emitted).cloned());
        self.output_watermarks
            .extend(std::iter::repeat_n(self.emitting_under, emitted));
    }

    /// Takes the outputs emitted since the last call.
    pub fn take_outputs(&mut self) -> Vec<Op::Output> {
        self.output_keys.clear();
        self.output_watermarks.clear();
        take_sized(&mut self.outputs)
    }

    /// Drains the outputs emitted since the last call, each with the watermark it was emitted
    /// under (what a later stage decides its lateness by). The buffers keep their room: a
    /// chain's first stage drains them after every batch.
    pub fn drain_outputs_under(&mut self) -> impl Iterator<Item = (Op::Output, Millis)> + '_ {
        self.output_keys.clear();
        self.outputs.drain(..).zip(self.output_watermarks.drain(..))
    }

    /// Takes the outputs emitted since the last call, each with the key it was emitted for.
    pub fn take_keyed_outputs(&mut self) -> impl Iterator<Item = (Op::Key, Op::Output)> {
        self.output_watermarks.clear();
        take_sized(&mut self.output_keys)
            .into_iter()
            .zip(take_sized(&mut self.outputs))
    }

    /// Takes what the operator counted since the last call.
    pub fn take_counters(&mut self) -> Counters {
        std::mem::take(&mut self.counters)
    }

    /// Takes the late records (with their event time) since the last call.
    pub fn take_late(&mut self) -> Vec<(Millis, Op::Event)> {
        std::mem::take(&mut self.late)
    }

    /// State buckets changed since the last call, with their entries (`None`: now empty).
    pub fn drain_changes(&mut self) -> Vec<Change<'_, Op>> {
        self.state.drain_changes()
    }

    /// Notes the stored sizes of the buckets a checkpoint encoded (bucket, bytes).
    pub fn note_stored(&mut self, sizes: impl IntoIterator<Item = (u32, u64)>) {
        self.state.note_stored(sizes);
    }

    /// With a bucket log: appends the state in memory changed since it was to the log, and
    /// returns the log's index for the checkpoint of `epoch` with the bytes appended.
    pub fn checkpoint_log(&mut self, epoch: Epoch) -> crate::Result<Option<(LogIndex, u64)>> {
        self.state.checkpoint_log(epoch)
    }

    /// With a bucket log: makes it durable, before a checkpoint naming it is written.
    pub fn sync_log(&mut self) -> crate::Result<()> {
        self.state.sync_log()
    }

    /// The checkpoint of `epoch` is written.
    pub fn written(&mut self, epoch: Epoch) -> crate::Result<()> {
        self.state.written(epoch)
    }

    /// Whether the state's checkpoints go to a bucket log instead of sled.
    pub fn is_logged(&self) -> bool {
        self.state.is_logged()
    }

    /// What eviction did so far, under a memory limit.
    pub fn residency(&self) -> Option<crate::state::Residency> {
        self.state.residency()
    }

    /// Bytes of the stored state buckets.
    pub fn stored_bytes(&self) -> u64 {
        self.state.stored_bytes()
    }

    /// Keeps about `budget` bytes of state in memory (`--state-memory`), its buckets in a log
    /// in the state directory `dir` (see [`crate::state`]'s `residency`); a new partition then
    /// gets [`SPILL_BUCKETS`](crate::state::SPILL_BUCKETS), small enough to read back one by one.
    pub fn limit_memory(&mut self, budget: u64, dir: std::path::PathBuf, partition: u32) {
        self.fresh_bits = crate::state::SPILL_BUCKET_BITS;
        self.state.limit_memory(budget, dir, partition);
    }

    /// Keeps every key in memory and writes the checkpoints' changed buckets to a bucket log
    /// in the state directory `dir` instead of sled (a job without a Kafka changelog, whose
    /// changelog would carry the buckets from sled): sled rewrites a value several times over
    /// as its pages fill and split, and with a million keys every bucket changes between two
    /// checkpoints. The log is synced to disk when `durable` (not for a temporary state).
    pub fn log_buckets(&mut self, dir: std::path::PathBuf, partition: u32, durable: bool) {
        self.state.keep_log(dir, partition, durable);
    }

    /// How many entries (buckets holding keys) a checkpoint of the current state stores.
    pub fn stored_entries(&self) -> usize {
        self.state.stored_buckets()
    }

    /// The checkpoint metadata describing the current state as of `epoch`.
    pub fn checkpoint_meta(&self, epoch: Epoch) -> PartitionCheckpoint {
        PartitionCheckpoint {
            epoch,
            watermark: self.watermark,
            max_event_times: self.max_event_times(),
            processing_time: self.processing_time,
            channel_watermarks: (self.inputs.iter())
                .filter(|c| c.delay.is_none())
                .map(|c| c.watermark)
                .collect(),
            bucket_bits: self.state.bucket_bits(),
        }
    }

    /// Replaces everything with a checkpoint's state; buffered outputs are discarded.
    pub fn restore(
        &mut self,
        meta: &PartitionCheckpoint,
        entries: impl IntoIterator<Item = StoredBucket<Op>>,
    ) {
        let ttl = self.rules.ttl.map(|ttl| ttl.ttl);
        self.state.restore(self.bits_of(meta), entries, ttl);
        self.reset_to(meta);
    }

    /// Replaces everything with the checkpoint `meta` and its state in `store`, read one
    /// bucket at a time and checked.
    pub fn restore_stored(
        &mut self,
        meta: &PartitionCheckpoint,
        store: &crate::state::PartitionStore,
    ) -> crate::Result<()> {
        let mut damaged = None;
        let buckets =
            (store.stored_entries()).map_while(|entry| entry.map_err(|e| damaged = Some(e)).ok());
        self.restore(meta, buckets);
        damaged.map_or(Ok(()), Err)
    }

    /// Replaces everything with the checkpoint `meta` of a state kept in a bucket log, its
    /// buckets in the log `index` describes.
    pub fn restore_logged(
        &mut self,
        meta: &PartitionCheckpoint,
        index: Option<LogIndex>,
    ) -> crate::Result<()> {
        let ttl = self.rules.ttl.map(|ttl| ttl.ttl);
        self.state.restore_logged(self.bits_of(meta), index, ttl)?;
        self.reset_to(meta);
        Ok(())
    }

    /// Replaces everything with the checkpoint `meta` of a state stored in sled (`store`),
    /// and moves it to the bucket log: the next checkpoint appends every bucket there and
    /// removes them from sled.
    pub fn restore_moving(
        &mut self,
        meta: &PartitionCheckpoint,
        store: &crate::state::PartitionStore,
    ) -> crate::Result<()> {
        self.restore_logged(meta, None)?;
        let mut damaged = None;
        let buckets =
            (store.stored_entries()).map_while(|entry| entry.map_err(|e| damaged = Some(e)).ok());
        self.state.take_moved(buckets);
        damaged.map_or(Ok(()), Err)
    }

    /// Whether a memory limit may evict state (`--state-memory`).
    pub fn is_limited(&self) -> bool {
        self.state.is_limited()
    }

    /// The bucket count (a power of two) of the partition checkpointed as `meta`.
    fn bits_of(&self, meta: &PartitionCheckpoint) -> u32 {
        match meta.bucket_bits {
            0 => self.fresh_bits,
            bits => bits,
        }
    }

    /// Sets everything but the state to the checkpoint `meta`: buffered outputs are discarded.
    fn reset_to(&mut self, meta: &PartitionCheckpoint) {
        self.outputs.clear();
        self.output_keys.clear();
        self.output_watermarks.clear();
        self.late.clear();
        self.counters = Counters::default();
        self.model = PartitionModel::default();
        let fresh = meta.epoch == 0;
        self.watermark = if fresh { BEFORE_TIME } else { meta.watermark };
        for (i, clock) in self.inputs.iter_mut().enumerate() {
            *clock = InputClock::new(clock.delay);
            if let Some(&max) = meta.max_event_times.get(i).filter(|_| !fresh) {
                // An input's watermark is its records' (newest − delay) unless an epoch end
                // raised it, and then the partition's watermark is at least that high.
                clock.max_event_time = max;
                clock.watermark = match clock.delay {
                    Some(delay) => max.saturating_sub(delay).max(self.watermark),
                    // An upstream channel's is what its batches raised it to, and at least
                    // the partition's.
                    None => (meta.channel_watermarks.get(i).copied())
                        .map_or(self.watermark, |w| w.max(self.watermark)),
                };
            }
        }
        self.processing_time = meta.processing_time;
    }

    /// The current watermark.
    pub fn watermark(&self) -> Millis {
        self.watermark
    }

    /// The inputs (a later stage's upstream partitions) whose watermark is below `watermark`.
    pub fn inputs_behind(&self, watermark: Millis) -> Vec<u32> {
        (self.inputs.iter().enumerate())
            .filter(|(_, clock)| clock.watermark < watermark)
            .map(|(i, _)| i as u32)
            .collect()
    }

    /// The largest event time processed, over all inputs.
    pub fn max_event_time(&self) -> Millis {
        self.inputs
            .iter()
            .map(|c| c.max_event_time)
            .max()
            .unwrap_or(BEFORE_TIME)
    }

    /// The largest event time processed of each input.
    pub fn max_event_times(&self) -> Vec<Millis> {
        self.inputs.iter().map(|c| c.max_event_time).collect()
    }

    /// Records received of each input since the core was made or restored (late ones too).
    pub fn received(&self) -> Vec<u64> {
        self.inputs.iter().map(|c| c.received).collect()
    }

    /// Counts since the core was made.
    pub fn counts(&self) -> CoreCounts {
        self.counts
    }

    /// Number of keys holding state.
    pub fn key_count(&self) -> usize {
        self.state.len()
    }

    /// One key's state and timers, if it has state (`GET /state/{key}`).
    pub fn entry(&mut self, key: &Op::Key) -> Option<&crate::state::Entry<Op::State>> {
        self.state.entry(key)
    }

    /// Drops `key`'s state and timers (an erasure); false when it has none.
    pub fn erase(&mut self, key: &Op::Key) -> bool {
        self.state.remove(key)
    }

    /// Number of pending timers.
    pub fn timer_count(&self) -> usize {
        self.state.timer_count()
    }

    /// The earliest and the latest pending timer's time.
    pub fn timer_span(&self) -> Option<(Millis, Millis)> {
        self.state.timer_span()
    }

    /// Sets `key`'s state (a job started from exported or offline-trained state); the next
    /// checkpoint writes it.
    pub fn seed(&mut self, key: &Op::Key, state: Op::State) {
        self.state.touch(key).0.state = state;
    }

    /// One key's state (in memory: under a memory limit, [`entry`](Self::entry) reads an
    /// evicted one back).
    pub fn state_of(&self, key: &Op::Key) -> Option<&Op::State> {
        self.state.get(key)
    }
}

/// The most room [`take_sized`] leaves: a batch's outputs are rarely more, and a watermark
/// that fires the windows of a million keys at once would otherwise leave as much room
/// reserved in every partition (a fifth more peak memory for `fraud` at 10M events over 1M
/// keys).
const ROOM_AT_MOST: usize = 4096;

/// Takes what `buffer` holds, leaving it room for as much (up to [`ROOM_AT_MOST`]): the next
/// batch's outputs are likely as many, and pushing them into an empty vector would copy them
/// as it grows.
pub(super) fn take_sized<T>(buffer: &mut Vec<T>) -> Vec<T> {
    let room = Vec::with_capacity(buffer.len().min(ROOM_AT_MOST));
    std::mem::replace(buffer, room)
}
