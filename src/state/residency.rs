//! A partition's buckets in a bucket log, and state larger than memory (`--state-memory`):
//! which buckets of a partition stay in memory, how one is evicted and read back, and what an
//! evicted bucket leaves behind.
//!
//! A job without a Kafka changelog checkpoints its buckets to a [`SliceLog`] instead of sled,
//! every bucket in memory (a [`Memory`] of no limit): sled rewrote each changed bucket several
//! times over. Under a limit a partition has many more buckets
//! ([`SPILL_BUCKETS`](super::SPILL_BUCKETS)), so that one is read back cheaply. When the
//! buckets in memory take more than the budget, buckets go: one changed since it was last
//! appended is appended first. Which goes is decided by a clock (second chance): a sweeping
//! hand skips, once, buckets read since it last passed. A checkpoint appends the buckets in
//! memory that changed, then stores the log's index.
//!
//! An evicted bucket leaves a [`Parked`] summary: its key and timer counts, and one place in
//! each schedule it has keys in, at its earliest time (see [`super::schedule`]). So the timer
//! and expiry indexes hold only keys in memory, yet fire in the same order as with every bucket
//! in memory: a bucket is read back when its earliest time comes up.
//!
//! How much memory a bucket takes is estimated, not measured: its keys times the bytes a key
//! takes in memory (the hash map's slot for the key and its entry, plus a multiple of the
//! stored bytes per key, which stand for what the entry holds on the heap), and its keys'
//! timers and expiries times the bytes of a schedule place.

use super::keyed::{Bucket, KeyedState, DOMAINS};
use super::schedule::{bucket_at, bucket_order};
use super::slice_log::{LogIndex, SliceLog};
use crate::checkpoint::Epoch;
use crate::operator::TimeDomain;
use crate::time::Millis;
use crate::{Key, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::PathBuf;

/// Bytes of heap a key's state takes per byte of its stored (bincode) form: B-tree nodes,
/// vectors' spare capacity and the allocator's rounding make in-memory forms several times
/// larger. With 2.5, `fraud` under a 128 MiB limit took 245 MB over its fixed overhead; with 4,
/// 160 MB (`bench/state-memory.sh`, 2026-12-05).
const HEAP_PER_STORED_BYTE: u64 = 4;

/// The bucket log of one partition's state, its memory limit (`u64::MAX`: none) and the
/// eviction clock.
pub struct Memory<K, S> {
    /// Bytes of state to keep in memory at most (estimated).
    pub(super) budget: u64,
    /// Where the log lives: the state directory, and the partition.
    dir: PathBuf,
    partition: u32,
    /// Opened by the restore.
    log: Option<SliceLog>,
    /// The clock's hand: the next bucket it looks at.
    hand: usize,
    /// How a bucket is written to the log and read back (bincode): kept here so that only
    /// making a limited state needs the state to be serializable.
    encode: fn(&Bucket<K, S>) -> Vec<u8>,
    decode: fn(&[u8]) -> bincode::Result<Bucket<K, S>>,
    /// What eviction did so far (kept across restores, so the counts only grow).
    counts: Residency,
    /// Whether the log is synced to disk (not for a temporary state).
    pub(super) durable: bool,
}

/// What eviction did in one partition under a memory limit, for its metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Residency {
    /// Buckets evicted from memory since the job started (appended to the log first when
    /// they had changed).
    pub evictions: u64,
    /// Evicted buckets read back since the job started, for a record, timer or expiry of one
    /// of their keys.
    pub read_backs: u64,
    /// Keys whose state is out of memory now.
    pub evicted_keys: u64,
}

impl<K: Key, S: Serialize + DeserializeOwned> Memory<K, S> {
    /// A limit of `budget` bytes for `partition`, whose buckets go to a log in `dir`
    /// (`u64::MAX`: no limit, the log only takes the checkpoints).
    pub fn new(budget: u64, dir: PathBuf, partition: u32) -> Self {
        Memory {
            budget,
            dir,
            partition,
            log: None,
            hand: 0,
            encode: |bucket| bincode::serialize(bucket).expect("bincode encodes in-memory values"),
            decode: |bytes| bincode::deserialize(bytes),
            counts: Residency::default(),
            durable: true,
        }
    }
}

impl<K, S> Memory<K, S> {
    /// Whether buckets may be evicted.
    pub(super) fn limited(&self) -> bool {
        self.budget < u64::MAX
    }

    /// Bytes of the buckets' newest versions in the log.
    pub(super) fn live_bytes(&self) -> u64 {
        self.log.as_ref().map_or(0, SliceLog::live_bytes)
    }

    fn log(&mut self) -> &mut SliceLog {
        self.log
            .as_mut()
            .expect("a limited state is restored before use")
    }
}

/// What an evicted bucket leaves in memory (48 bytes: a partition may have tens of thousands).
#[derive(Debug)]
pub struct Parked {
    /// Its keys.
    pub(super) keys: u32,
    /// Its pending timers.
    pub(super) timers: u32,
    /// Its earliest timer per clock (in [`DOMAINS`] order; `Millis::MAX`: none).
    pub(super) first: [Millis; 3],
    /// Its latest timer (`Millis::MIN`: none).
    pub(super) last_timer: Millis,
    /// When its first key's state expires (with a TTL; `Millis::MAX`: never).
    pub(super) expires: Millis,
}

impl Parked {
    /// The summary of `bucket`, under a state TTL of `ttl`.
    fn of<K, S>(bucket: &Bucket<K, S>, ttl: Option<Millis>) -> Self {
        let mut parked = Parked {
            keys: bucket.len() as u32,
            timers: 0,
            first: [Millis::MAX; 3],
            last_timer: Millis::MIN,
            expires: Millis::MAX,
        };
        for entry in bucket.values() {
            for &(domain, time) in &entry.timers {
                let i = DOMAINS.iter().position(|d| *d == domain).expect("a clock");
                parked.first[i] = parked.first[i].min(time);
                parked.last_timer = parked.last_timer.max(time);
                parked.timers += 1;
            }
            if let Some(ttl) = ttl {
                parked.expires = parked.expires.min(entry.touched.saturating_add(ttl));
            }
        }
        parked
    }

    /// Its earliest timer per clock, and its earliest expiry, where it has one.
    fn places(&self) -> impl Iterator<Item = (Option<TimeDomain>, Millis)> + '_ {
        let timers = DOMAINS.iter().zip(self.first).map(|(d, t)| (Some(*d), t));
        timers
            .chain([(None, self.expires)])
            .filter(|(_, t)| *t != Millis::MAX)
    }
}

impl<K: Key, S: Default> KeyedState<K, S> {
    /// Estimated bytes one key takes in memory: its slot in the hash table, which is between
    /// 7/16 and 7/8 full (so 1.5 slots a key), and [`HEAP_PER_STORED_BYTE`] times its stored
    /// bytes for what it holds on the heap.
    pub(super) fn key_bytes(&self) -> u64 {
        let slot = std::mem::size_of::<(K, super::Entry<S>)>() as u64 + 1;
        slot * 3 / 2 + HEAP_PER_STORED_BYTE * self.stored_bytes() / self.keys.max(1) as u64
    }

    /// Estimated bytes of one place in a schedule (a timer, or an expiry with a TTL): a copy
    /// of its key and order, its time's slot's share, and the tree's (or of a place noted as
    /// removed from a long slot, at most half as many again).
    fn place_bytes(&self) -> u64 {
        std::mem::size_of::<(Millis, u64, K)>() as u64 + 24
    }

    /// Whether the state in memory, with `keys` more keys and `places` more schedule places,
    /// is more than the limit allows.
    pub(super) fn over_budget(&self, keys: usize, places: usize) -> bool {
        let Some(memory) = self.memory.as_ref() else {
            return false;
        };
        let keys = (self.resident_keys() + keys) as u64;
        let places = (self.timers.resident() + self.expiry.len() + places) as u64;
        keys * self.key_bytes() + places * self.place_bytes() > memory.budget
    }

    /// Evicts buckets other than `keep` until the state in memory fits the limit.
    pub(super) fn make_room(&mut self, keep: usize) {
        let mask = self.buckets.len() - 1;
        let mut passed = 0;
        while self.over_budget(0, 0) && passed <= 2 * self.buckets.len() {
            passed += 1;
            let memory = self.memory.as_mut().expect("over a limit");
            let b = memory.hand;
            memory.hand = (b + 1) & mask;
            let slot = &mut self.slots[b];
            if b == keep || slot.evicted.is_some() {
                continue;
            }
            if self.buckets[b].is_empty() {
                // Its table may still be as large as when it was full.
                self.buckets[b] = Bucket::default();
                continue;
            }
            if std::mem::take(&mut slot.referenced) {
                continue; // its second chance
            }
            self.evict(b);
        }
    }

    /// Appends bucket `b` (in memory) to the log if it changed since it was; returns the bytes
    /// appended.
    ///
    /// # Panics
    ///
    /// When the log cannot be written: the partition fails and restarts from its checkpoint.
    fn append(&mut self, b: usize) -> u64 {
        if !std::mem::take(&mut self.slots[b].modified) {
            return 0;
        }
        let memory = self.memory.as_mut().expect("only a logged state appends");
        let bytes = if self.buckets[b].is_empty() {
            Vec::new()
        } else {
            (memory.encode)(&self.buckets[b])
        };
        (memory.log().append(b, &bytes))
            .unwrap_or_else(|e| panic!("cannot append state bucket {b} to its log: {e}"));
        bytes.len() as u64
    }

    /// What eviction did so far, under a memory limit.
    pub fn residency(&self) -> Option<Residency> {
        let memory = self.memory.as_ref().filter(|m| m.limited())?;
        Some(Residency {
            evicted_keys: self.evicted_keys as u64,
            ..memory.counts
        })
    }

    /// Drops bucket `b` from memory (appended first if changed), leaving its summary.
    fn evict(&mut self, b: usize) {
        self.append(b);
        (self.memory.as_mut().expect("over a limit").counts).evictions += 1;
        let bucket = std::mem::take(&mut self.buckets[b]);
        for (key, entry) in &bucket {
            for &(domain, time) in &entry.timers {
                self.timers.remove(domain, time, key);
            }
            if self.ttl.is_some() {
                self.expiry.remove(entry.filed, key);
            }
        }
        self.park(b, bucket);
    }

    /// Leaves bucket `b`'s summary in place of `bucket`, whose keys are in no schedule.
    fn park(&mut self, b: usize, bucket: Bucket<K, S>) {
        let parked = Parked::of(&bucket, self.ttl);
        let order = bucket_order(b);
        for (domain, time) in parked.places() {
            match domain {
                Some(domain) => self.timers.clock(domain).park(time, order),
                None => self.expiry.park(time, order),
            }
        }
        self.evicted_keys += parked.keys as usize;
        self.evicted_timers += parked.timers as usize;
        self.slots[b].evicted = Some(Box::new(parked));
    }

    /// Reads back the evicted bucket whose keys start at `order`.
    pub(super) fn load_at(&mut self, order: u64) {
        self.load(bucket_at(order, self.bits));
    }

    /// Bucket `b` as the log holds it.
    fn read(&mut self, b: usize) -> Result<Bucket<K, S>> {
        let memory = self.memory.as_mut().expect("only a limited state evicts");
        let bytes = memory.log().read(b)?;
        if bytes.is_empty() {
            return Ok(Bucket::default());
        }
        (memory.decode)(&bytes).map_err(|e| crate::Error::DamagedState {
            path: memory.dir.clone(),
            place: format!("partition {} bucket {b}", memory.partition),
            detail: format!("it cannot be decoded: {e}"),
        })
    }

    /// Reads evicted bucket `b` back into memory and files its keys' timers and expiry.
    ///
    /// # Panics
    ///
    /// When the log cannot give the bucket back as it was evicted (a read error, or a damaged
    /// state directory): the partition fails, and its restart reads its checkpoint again,
    /// checking it, or stops the job naming what is damaged.
    pub(super) fn load(&mut self, b: usize) {
        let Some(parked) = self.slots[b].evicted.take() else {
            return;
        };
        let mut bucket = (self.read(b))
            .unwrap_or_else(|e| panic!("cannot read back evicted state bucket {b}: {e}"));
        (self.memory.as_mut().expect("evicted under a limit").counts).read_backs += 1;
        assert_eq!(
            bucket.len(),
            parked.keys as usize,
            "the log's state bucket {b} is not the one evicted"
        );
        let order = bucket_order(b);
        for (domain, time) in parked.places() {
            match domain {
                Some(domain) => self.timers.clock(domain).unpark(time, order),
                None => self.expiry.unpark(time, order),
            }
        }
        self.file_places(&mut bucket);
        self.evicted_keys -= parked.keys as usize;
        self.evicted_timers -= parked.timers as usize;
        self.buckets[b] = bucket;
        self.slots[b].referenced = true;
        self.make_room(b);
    }

    /// Files the timers and expiry of `bucket`'s keys, coming into memory.
    fn file_places(&mut self, bucket: &mut Bucket<K, S>) {
        for (key, entry) in bucket.iter_mut() {
            for &(domain, time) in &entry.timers {
                self.timers.insert(domain, time, key.clone());
            }
            if let Some(ttl) = self.ttl {
                entry.filed = entry.touched.saturating_add(ttl);
                self.expiry.insert(entry.filed, key.clone());
            }
        }
    }

    /// Replaces everything with the buckets of the log `index` describes (`None`: a new
    /// partition), `1 << bits` of them, keeping in memory those that fit the limit; a state
    /// TTL of `ttl`.
    pub fn restore_logged(
        &mut self,
        bits: u32,
        index: Option<LogIndex>,
        ttl: Option<Millis>,
    ) -> Result<()> {
        let mut memory = self.memory.take().expect("a limited state");
        *self = KeyedState::with_bits(bits);
        self.ttl = ttl;
        let log = SliceLog::open(&memory.dir, memory.partition, index, 1 << bits)?;
        memory.log = Some(log.durable(memory.durable));
        memory.hand = 0;
        let limited = memory.limited();
        self.memory = Some(memory);
        if !limited {
            // Everything stays in memory: the indexes are built in bulk, as from sled.
            let buckets = (0..self.buckets.len())
                .map(|b| Ok((b as u32, self.read(b)?, 0)))
                .collect::<Result<Vec<_>>>()?;
            self.fill(buckets);
            return Ok(());
        }
        for b in 0..self.buckets.len() {
            let mut bucket = self.read(b)?;
            self.keys += bucket.len();
            let places = bucket.values().map(|e| e.timers.len()).sum::<usize>()
                + if ttl.is_some() { bucket.len() } else { 0 };
            if self.over_budget(bucket.len(), places) {
                self.park(b, bucket);
            } else {
                self.file_places(&mut bucket);
                self.buckets[b] = bucket;
            }
        }
        Ok(())
    }

    /// Appends the buckets in memory changed since they were, and returns the log's index for
    /// the checkpoint of `epoch` with the bytes appended (`None` without a log).
    pub fn checkpoint_log(&mut self, epoch: Epoch) -> Result<Option<(LogIndex, u64)>> {
        if self.memory.is_none() {
            return Ok(None);
        }
        let mut appended = 0;
        for b in 0..self.buckets.len() {
            self.slots[b].dirty = false;
            appended += self.append(b);
        }
        let memory = self.memory.as_mut().expect("checked above");
        Ok(Some((memory.log().checkpoint(epoch)?, appended)))
    }

    /// Makes what the log holds durable, before the checkpoint naming it is written.
    pub fn sync_log(&mut self) -> Result<()> {
        match self.memory.as_mut() {
            Some(memory) => memory.log().sync(),
            None => Ok(()),
        }
    }

    /// The checkpoint of `epoch` is written.
    pub fn written(&mut self, epoch: Epoch) -> Result<()> {
        match self.memory.as_mut() {
            Some(memory) => memory.log().written(epoch),
            None => Ok(()),
        }
    }
}
