//! In-memory keyed state of one partition: each key's typed state and timers, grouped into
//! hash buckets, the buckets changed since the last checkpoint, the time-ordered timer index,
//! and the expiry index of a state TTL.
//!
//! Why buckets: sled's cost (time and, in 0.34, memory that outgrows its cache) is per
//! operation, so a checkpoint that wrote one value per changed key slowed down and grew memory
//! with the key count. A checkpoint now writes one value per changed bucket: at most
//! [`BUCKETS`] per partition, whatever the number of keys. A partition whose state may be
//! larger than memory (`--state-memory`) has [`SPILL_BUCKETS`] instead, small enough to be read
//! back one at a time (see [`super::residency`]); a partition keeps the count it was first
//! checkpointed with.

use super::residency::{Memory, Parked};
use super::schedule::{Next, PlaceTree, Schedule};
use crate::key::HashedKey;
use crate::operator::TimeDomain;
use crate::time::Millis;
use crate::Key;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// Hash buckets per partition, as a power of two: [`BUCKETS`] is `1 << BUCKET_BITS`.
pub const BUCKET_BITS: u32 = 9;

/// Hash buckets per partition (see the module doc).
pub const BUCKETS: usize = 1 << BUCKET_BITS;

/// Hash buckets per partition, as a power of two, of a partition whose state may be larger than
/// memory: 16,384, about 60 keys a bucket at a million keys in one partition. More make
/// reading one back cheaper, but each costs about 150 bytes of memory, evicted or not.
pub const SPILL_BUCKET_BITS: u32 = 14;

/// Hash buckets per partition whose state may be larger than memory.
pub const SPILL_BUCKETS: usize = 1 << SPILL_BUCKET_BITS;

/// How many records (or due timers) a partition looks up ahead together before it processes
/// them, when its state is larger than the CPU's caches ([`KeyedState::warm`]). A key's lookup
/// is then two or more cache misses (the bucket's control bytes, the entry, and any heap memory
/// of its state, see [`KeyedOperator::prefetch`]); issued back to back they overlap, where one
/// record at a time waits for each in turn. Measured at a million keys from the generator
/// (medians of 5 interleaved runs): 16 made `sessions`, `fraud` and `tx-windows` 1.09, 1.14 and
/// 1.22 times as fast.
///
/// [`KeyedOperator::prefetch`]: crate::operator::KeyedOperator::prefetch
pub const WARM_AHEAD: usize = 16;

/// Keys in memory from which a partition warms its lookups: below it the state stays in the
/// cache and warming would only add the lookups (but see [`KeyedState::warm_due`]).
const WARM_FROM_KEYS: usize = 10_000;

/// Stale expiry places a partition keeps at least before it sweeps them out (fewer would sweep
/// a small index over and over).
const STALE_EXPIRIES_SWEPT_FROM: usize = 4_096;

pub use super::bucket::Bucket;
pub use super::key_timers::KeyTimers;

/// One key's state and its pending timers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Entry<S> {
    /// The operator's state for this key.
    pub state: S,
    /// Pending timers of this key.
    pub timers: KeyTimers,
    /// When a record last touched this key, on the state TTL's clock (0 without a TTL).
    pub touched: Millis,
    /// Where the key is filed in the expiry index (with a TTL): at or before `touched + ttl`,
    /// since touching a key does not move it there. Rebuilt when the key is read back.
    #[serde(skip)]
    pub(super) filed: Millis,
}

/// Pending timers of all keys of a partition, one `Schedule` per clock: ordered by time, then
/// by bucket and key, so firing order, and with it output order, is deterministic.
#[derive(Debug)]
pub struct TimerIndex<K> {
    clocks: [Schedule<K>; 3],
}

impl<K> Default for TimerIndex<K> {
    fn default() -> Self {
        TimerIndex {
            clocks: Default::default(),
        }
    }
}

/// The index of `domain`'s schedule.
fn clock_of(domain: TimeDomain) -> usize {
    match domain {
        TimeDomain::EventTime => 0,
        TimeDomain::ProcessingTime => 1,
        TimeDomain::Model => 2,
    }
}

/// The clocks, in the order of [`clock_of`].
pub(super) const DOMAINS: [TimeDomain; 3] = [
    TimeDomain::EventTime,
    TimeDomain::ProcessingTime,
    TimeDomain::Model,
];

impl<K: Key> TimerIndex<K> {
    /// The schedule of `domain`.
    pub(super) fn clock(&mut self, domain: TimeDomain) -> &mut Schedule<K> {
        &mut self.clocks[clock_of(domain)]
    }

    /// Adds a timer the key does not have yet.
    pub fn insert(&mut self, domain: TimeDomain, time: Millis, key: K) {
        self.clock(domain).insert(time, key)
    }

    /// [`TimerIndex::insert`] for a key whose stable hash ([`Key::partition_hash`]) is known.
    pub fn insert_hashed(&mut self, domain: TimeDomain, time: Millis, key: K, stable: u64) {
        self.clock(domain).insert_hashed(time, key, stable)
    }

    /// Removes a timer.
    pub fn remove(&mut self, domain: TimeDomain, time: Millis, key: &K) {
        self.clock(domain).remove(time, key);
    }

    /// Timers of keys in memory.
    pub(super) fn resident(&self) -> usize {
        self.clocks.iter().map(Schedule::len).sum()
    }
}

/// Checkpoint bookkeeping of one bucket.
#[derive(Debug, Default)]
pub(super) struct Slot {
    /// Changed since the last [`KeyedState::drain_changes`].
    pub(super) dirty: bool,
    /// Changed since it was last appended to the log (with a memory limit).
    pub(super) modified: bool,
    /// Bytes of its stored version (0: none).
    pub(super) stored: u64,
    /// Read lately (the eviction clock's second chance).
    pub(super) referenced: bool,
    /// Set while the bucket is evicted: what the partition still needs to know of it.
    pub(super) evicted: Option<Box<Parked>>,
}

impl Slot {
    /// Its bucket changed: the next checkpoint writes it, and (with a limit) the log needs it.
    #[inline]
    fn mark_changed(&mut self) {
        self.dirty = true;
        self.modified = true;
    }
}

/// All keys of one partition.
///
/// Invariants: a bucket is in memory (`buckets[b]`) or evicted (`slots[b].evicted`), never
/// both; an evicted bucket's newest version is in the bucket log; `timers` and `expiry` hold
/// the places of keys in memory, and each evicted bucket one place per schedule it has keys in;
/// `expiry` may also hold stale places of dropped keys (without a memory limit), at most about
/// as many as live ones (see `stale_expiries`).
pub struct KeyedState<K, S> {
    pub(super) bits: u32,
    pub(super) buckets: Vec<Bucket<K, S>>,
    pub(super) slots: Vec<Slot>,
    /// Keys with state, evicted ones included.
    pub(super) keys: usize,
    pub(super) timers: TimerIndex<K>,
    /// Keys by the time their state expires (with a TTL). Kept lazily: touching a key moves
    /// its `touched` time, not its place here; [`KeyedState::pop_expired`] re-files a key whose
    /// time moved. A key's live place is at its entry's `filed` time. Without a memory limit a
    /// dropped key leaves its place behind (a stale one, skipped when it comes due: removing
    /// it was a walk to a random leaf for every key dropped), and the stale places are swept
    /// out once they outnumber the live ones (see [`KeyedState::drop_expiry_place`]).
    pub(super) expiry: Schedule<K, PlaceTree<K>>,
    /// Places in `expiry` left by dropped keys (an estimate from above: a key dropped and
    /// added again at the same time has one place for both).
    pub(super) stale_expiries: usize,
    /// The state TTL, once known.
    pub(super) ttl: Option<Millis>,
    /// Keys of evicted buckets, and their timers.
    pub(super) evicted_keys: usize,
    pub(super) evicted_timers: usize,
    /// Sum of the buckets' stored sizes.
    pub(super) stored_bytes: u64,
    /// Set with a memory limit (`--state-memory`).
    pub(super) memory: Option<Memory<K, S>>,
}

/// [`KeyedState::warm`] over `buckets`, `1 << bits` of them.
fn warm<'k, K: Key + 'k, S>(
    buckets: &[Bucket<K, S>],
    bits: u32,
    keys: impl IntoIterator<Item = HashedKey<'k, K>>,
    state_heap: impl Fn(&S),
) {
    // Every entry is asked for, then each read once it is (mostly) there: the misses overlap.
    // The keys come hashed, so the loop that waits on the tables' control bytes is short and
    // the CPU has all of them in flight at once.
    let keys: SmallVec<[HashedKey<'k, K>; WARM_AHEAD]> = keys.into_iter().collect();
    for key in &keys {
        buckets[bucket_at_hash(key.stable, bits)].prefetch(key.stable);
    }
    for HashedKey { key, stable } in keys {
        if let Some(entry) = buckets[bucket_at_hash(stable, bits)].get(key, stable) {
            state_heap(&entry.state);
        }
    }
}

/// A new key's entry, filed to expire at `expires` (with a TTL).
fn new_entry<K: Key, S: Default>(
    key: &K,
    stable: u64,
    expires: Option<Millis>,
    expiry: &mut Schedule<K, PlaceTree<K>>,
) -> Entry<S> {
    let mut entry = Entry::default();
    if let Some(at) = expires {
        entry.filed = at;
        expiry.insert_hashed(at, key.clone(), stable);
    }
    entry
}

impl<K: Key, S: Default> Default for KeyedState<K, S> {
    fn default() -> Self {
        Self::with_bits(BUCKET_BITS)
    }
}

impl<K, S> std::fmt::Debug for KeyedState<K, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedState")
            .field("buckets", &self.buckets.len())
            .field("keys", &self.keys)
            .field("evicted_keys", &self.evicted_keys)
            .finish_non_exhaustive()
    }
}

/// The bucket of a key among `1 << bits`. Uses the low bits of the stable hash; the partition
/// is chosen by the high bits, so every bucket of a partition is used.
#[inline]
pub fn bucket_of<K: Key>(key: &K, bits: u32) -> usize {
    bucket_at_hash(key.partition_hash(), bits)
}

/// [`bucket_of`] a key whose stable hash is `stable`.
#[inline]
fn bucket_at_hash(stable: u64, bits: u32) -> usize {
    (stable as usize) & ((1 << bits) - 1)
}

impl<K: Key, S: Default> KeyedState<K, S> {
    /// Empty state in `1 << bits` buckets.
    pub fn with_bits(bits: u32) -> Self {
        KeyedState {
            bits,
            buckets: (0..1usize << bits).map(|_| Bucket::default()).collect(),
            slots: (0..1usize << bits).map(|_| Slot::default()).collect(),
            keys: 0,
            timers: TimerIndex::default(),
            expiry: Schedule::default(),
            stale_expiries: 0,
            ttl: None,
            evicted_keys: 0,
            evicted_timers: 0,
            stored_bytes: 0,
            memory: None,
        }
    }

    /// Keeps at most about `budget` bytes of state in memory, the buckets in a log in `dir`
    /// (see the `residency` module); [`restore_logged`](Self::restore_logged) opens it.
    pub fn limit_memory(&mut self, budget: u64, dir: std::path::PathBuf, partition: u32)
    where
        S: Serialize + DeserializeOwned,
    {
        self.memory = Some(Memory::new(budget, dir, partition));
    }

    /// Keeps every bucket in memory and the checkpoints' changed buckets in a log in `dir`
    /// (synced to disk when `durable`); [`restore_logged`](Self::restore_logged) opens it.
    pub fn keep_log(&mut self, dir: std::path::PathBuf, partition: u32, durable: bool)
    where
        S: Serialize + DeserializeOwned,
    {
        let mut memory = Memory::new(u64::MAX, dir, partition);
        memory.durable = durable;
        self.memory = Some(memory);
    }

    /// Whether a memory limit may evict buckets (a log without a limit never does).
    pub fn is_limited(&self) -> bool {
        self.memory.as_ref().is_some_and(Memory::limited)
    }

    /// Fills an empty state kept in a bucket log without a limit with `buckets` (number,
    /// entries, stored size) from sled, each marked for the log's next checkpoint.
    pub fn take_moved(&mut self, buckets: impl IntoIterator<Item = (u32, Bucket<K, S>, u64)>) {
        debug_assert!(self.is_empty() && self.is_logged() && !self.is_limited());
        self.fill(buckets);
        for slot in &mut self.slots {
            slot.modified = true;
        }
    }

    /// The number of buckets, as a power of two.
    pub fn bucket_bits(&self) -> u32 {
        self.bits
    }

    /// The bucket of a hashed key (whose stable hash the bucket's lookups take too).
    #[inline]
    fn bucket(&self, key: HashedKey<'_, K>) -> usize {
        debug_assert_eq!(
            key.stable,
            key.key.partition_hash(),
            "a key with another's hash"
        );
        bucket_at_hash(key.stable, self.bits)
    }

    /// Bucket `b`, in memory (read back if it was evicted) and marked as read lately.
    #[inline]
    fn resident(&mut self, b: usize) -> &mut Bucket<K, S> {
        if self.slots[b].evicted.is_some() {
            self.load(b);
        }
        self.slots[b].referenced = true;
        &mut self.buckets[b]
    }

    /// Marks bucket `b` changed since the last checkpoint.
    #[inline]
    fn mark_dirty(&mut self, b: usize) {
        self.slots[b].mark_changed();
    }

    /// The entry of `key` (created when missing) and the timer index; its bucket is marked
    /// changed.
    pub fn touch<'k>(
        &mut self,
        key: impl Into<HashedKey<'k, K>>,
    ) -> (&mut Entry<S>, &mut TimerIndex<K>)
    where
        K: 'k,
    {
        self.upsert(key.into(), None)
    }

    /// Changes nothing: asks for `keys`' entries all at once ([`Bucket::prefetch`]), then
    /// looks them up and lets `state_heap` prefetch what their states hold on the heap, so
    /// that the misses of a few keys overlap instead of coming one after another (see
    /// [`WARM_AHEAD`]). Worth it only when [`KeyedState::warms`].
    pub fn warm<'k>(
        &self,
        keys: impl IntoIterator<Item = HashedKey<'k, K>>,
        state_heap: impl Fn(&S),
    ) where
        K: 'k,
    {
        warm(&self.buckets, self.bits, keys, state_heap);
    }

    /// Changes nothing: asks for the control bytes that keys of stable hashes `stables` will be
    /// looked up by ([`Bucket::prefetch_control`]), a round before [`KeyedState::warm`] asks
    /// for their entries, which reads them.
    pub fn prefetch_control(&self, stables: &[u64]) {
        for &stable in stables {
            self.buckets[bucket_at_hash(stable, self.bits)].prefetch_control(stable);
        }
    }

    /// True when the keys in memory are too many to stay in the cache, so that looking a few up
    /// ahead pays ([`KeyedState::warm`]).
    pub fn warms(&self) -> bool {
        self.resident_keys() >= WARM_FROM_KEYS
    }

    /// Fetches ahead what firing the next [`WARM_AHEAD`] timers due on `domain`'s clock at or
    /// before `upto` reads: their keys' entries and state ([`KeyedState::warm`]) when the
    /// partition [`warms`](KeyedState::warms), else only the entries the tables' control bytes
    /// point at ([`Bucket::prefetch`]: no key compared, no state read). A due key was last
    /// touched up to a window ago, so even a small partition's tables have often left the
    /// cache by then: at a minute's end, a partition of 1,250 keys fired its windows in 24%
    /// less time. Warming fully cost more than it saved where the state had stayed in the
    /// cache (README, Latency).
    pub fn warm_due(&mut self, domain: TimeDomain, upto: Millis, state_heap: impl Fn(&S)) {
        let warms = self.warms();
        let due = self.timers.clocks[clock_of(domain)].upcoming(upto);
        let due = due.take(WARM_AHEAD).map(HashedKey::new);
        if warms {
            return warm(&self.buckets, self.bits, due, state_heap);
        }
        for key in due {
            self.buckets[bucket_at_hash(key.stable, self.bits)].prefetch(key.stable);
        }
    }

    /// The entry of `key` if it exists (its bucket marked changed), and the timer index.
    pub fn touch_existing<'k>(
        &mut self,
        key: impl Into<HashedKey<'k, K>>,
    ) -> Option<(&mut Entry<S>, &mut TimerIndex<K>)>
    where
        K: 'k,
    {
        let key = key.into();
        let b = self.bucket(key);
        self.resident(b);
        let entry = self.buckets[b].get_mut(key.key, key.stable)?;
        self.slots[b].mark_changed();
        Some((entry, &mut self.timers))
    }

    /// Drops `key`'s entry (the next checkpoint deletes it) unless it still has timers.
    pub fn remove_if_idle<'k>(&mut self, key: impl Into<HashedKey<'k, K>>)
    where
        K: 'k,
    {
        let key = key.into();
        let b = self.bucket(key);
        if (self.resident(b).get(key.key, key.stable)).is_some_and(|e| e.timers.is_empty()) {
            self.take(b, key.key, key.stable);
        }
    }

    /// Drops `key`'s entry and its timers (an erasure); the next checkpoint deletes it. False
    /// when the key has no state.
    pub fn remove(&mut self, key: &K) -> bool {
        let stable = key.partition_hash();
        let b = self.bucket(HashedKey { key, stable });
        if !self.resident(b).contains_key(key, stable) {
            return false;
        }
        let entry = self.take(b, key, stable);
        for &(domain, time) in &entry.timers {
            self.timers.remove(domain, time, key);
        }
        true
    }

    /// Takes `key`'s entry out of bucket `b` (in memory), and its expiry place.
    fn take(&mut self, b: usize, key: &K, stable: u64) -> Entry<S> {
        let entry = self.take_entry(b, key, stable);
        if self.ttl.is_some() {
            self.drop_expiry_place(entry.filed, key);
        }
        entry
    }

    /// Takes `key`'s entry out of bucket `b` (in memory), leaving the expiry index alone.
    fn take_entry(&mut self, b: usize, key: &K, stable: u64) -> Entry<S> {
        self.mark_dirty(b);
        let entry = (self.buckets[b].remove(key, stable)).expect("the caller checked");
        self.keys -= 1;
        entry
    }

    /// Gives up the expiry place at `filed` of `key`, whose entry was dropped. Under a memory
    /// limit it is removed (evicting must free what it counts); otherwise it is left to be
    /// skipped when due, and once the stale places outnumber the live ones (and a few
    /// thousand) the index is swept, so that it holds at most about twice the live places.
    fn drop_expiry_place(&mut self, filed: Millis, key: &K) {
        if self.is_limited() {
            self.expiry.remove(filed, key);
            return;
        }
        self.stale_expiries += 1;
        let live = self.expiry.len().saturating_sub(self.stale_expiries);
        if self.stale_expiries > live.max(STALE_EXPIRIES_SWEPT_FROM) {
            self.refile_expiries();
        }
    }

    /// Sweeps the stale expiry places out by building the index anew from the entries, each
    /// at its `filed` time (without a memory limit every key is in memory, and with a TTL
    /// every key has its place). Sorting the live places and building the tree in bulk took
    /// about 3.5% of `fraud-score`'s samples where looking up each place's key to keep or
    /// drop it, a cache miss per place, took 5.4%: within the noise in its run time, and
    /// shorter code.
    fn refile_expiries(&mut self) {
        let places = (self.buckets.iter().flatten())
            .map(|(key, entry)| (entry.filed, super::schedule::order_of(key), key.clone()))
            .collect();
        self.expiry = Schedule::default();
        self.expiry.extend(places);
        self.stale_expiries = 0;
    }

    /// Like [`KeyedState::touch`], and records that a record touched `key` at `now` on the
    /// clock of a state TTL of `ttl`: the key's state expires at `touched + ttl`.
    pub fn touch_with_ttl<'k>(
        &mut self,
        key: impl Into<HashedKey<'k, K>>,
        now: Millis,
        ttl: Millis,
    ) -> (&mut Entry<S>, &mut TimerIndex<K>)
    where
        K: 'k,
    {
        self.ttl = Some(ttl);
        let (entry, timers) = self.upsert(key.into(), Some(now.saturating_add(ttl)));
        entry.touched = entry.touched.max(now);
        (entry, timers)
    }

    /// Records that a record touched `key` at `now` on the state TTL's clock, like
    /// [`KeyedState::touch_with_ttl`], if the key has state: a key without has none to keep.
    pub fn refresh_touch<'k>(&mut self, key: impl Into<HashedKey<'k, K>>, now: Millis)
    where
        K: 'k,
    {
        if let Some((entry, _)) = self.touch_existing(key) {
            entry.touched = entry.touched.max(now);
        }
    }

    /// The entry of `key`, created when missing (and then filed to expire at `expires`, with
    /// a TTL); its bucket is marked changed.
    fn upsert(
        &mut self,
        hashed: HashedKey<'_, K>,
        expires: Option<Millis>,
    ) -> (&mut Entry<S>, &mut TimerIndex<K>) {
        let b = self.bucket(hashed);
        let HashedKey { key, stable } = hashed;
        self.resident(b);
        self.mark_dirty(b);
        if self.is_limited() && !self.buckets[b].contains_key(key, stable) {
            // Under a limit a new key may evict other buckets, which needs the whole state.
            self.insert_new(b, key, stable, expires);
            self.make_room(b);
        }
        let (keys, expiry) = (&mut self.keys, &mut self.expiry);
        let (entry, new) = (self.buckets[b])
            .get_or_insert_with(key, stable, || new_entry(key, stable, expires, expiry));
        *keys += usize::from(new);
        (entry, &mut self.timers)
    }

    /// Adds `key`, which bucket `b` does not hold, with a new entry.
    fn insert_new(&mut self, b: usize, key: &K, stable: u64, expires: Option<Millis>) {
        self.keys += 1;
        let entry = new_entry(key, stable, expires, &mut self.expiry);
        self.buckets[b].insert(key.clone(), stable, entry);
    }

    /// Removes and returns the next key whose state expired by `now` under a TTL of `ttl`,
    /// with its timers; keys touched since they were filed are filed again at their new time.
    pub fn pop_expired(&mut self, now: Millis, ttl: Millis) -> Option<K> {
        self.ttl = Some(ttl);
        loop {
            let (time, key) = match self.expiry.next(now) {
                Next::Idle => return None,
                Next::Load(order) => {
                    self.load_at(order);
                    continue;
                }
                Next::Due(time, key) => (time, key),
            };
            let stable = key.partition_hash();
            let b = self.bucket(HashedKey { key: &key, stable });
            let entry = self.buckets[b].get_mut(&key, stable);
            let Some(entry) = entry.filter(|e| e.filed == time) else {
                // A dropped key's place: the key is gone, or came back filed elsewhere.
                self.stale_expiries = self.stale_expiries.saturating_sub(1);
                continue;
            };
            let due = entry.touched.saturating_add(ttl);
            if due > now {
                entry.filed = due;
                self.expiry.insert_hashed(due, key, stable);
                continue;
            }
            let entry = self.take_entry(b, &key, stable); // its expiry place was just taken
            for &(domain, time) in &entry.timers {
                self.timers.remove(domain, time, &key);
            }
            return Some(key);
        }
    }

    /// Takes the earliest due timer of `domain` (its key's bucket in memory).
    pub fn pop_due(&mut self, domain: TimeDomain, upto: Millis) -> Option<(Millis, K)> {
        loop {
            match self.timers.clock(domain).next(upto) {
                Next::Idle => return None,
                Next::Load(order) => self.load_at(order),
                Next::Due(time, key) => return Some((time, key)),
            }
        }
    }

    /// Every bucket changed since the last call, with its entries (`None` when it became
    /// empty: the checkpoint deletes it), and forgets the changes.
    pub fn drain_changes(&mut self) -> Vec<(u32, Option<&Bucket<K, S>>)> {
        let mut changed = Vec::new();
        for (b, slot) in self.slots.iter_mut().enumerate() {
            if std::mem::take(&mut slot.dirty) {
                changed.push(b);
            }
        }
        changed
            .into_iter()
            .map(|b| {
                let bucket = &self.buckets[b];
                (b as u32, (!bucket.is_empty()).then_some(bucket))
            })
            .collect()
    }

    /// Notes the stored size of buckets a checkpoint encoded.
    pub fn note_stored(&mut self, sizes: impl IntoIterator<Item = (u32, u64)>) {
        for (b, size) in sizes {
            let slot = &mut self.slots[b as usize];
            self.stored_bytes = self.stored_bytes - slot.stored + size;
            slot.stored = size;
        }
    }

    /// Number of buckets holding at least one key: the entries a checkpoint leaves stored.
    pub fn stored_buckets(&self) -> usize {
        let resident = self.buckets.iter().filter(|b| !b.is_empty()).count();
        let evicted = (self.slots.iter())
            .filter(|s| s.evicted.as_ref().is_some_and(|p| p.keys > 0))
            .count();
        resident + evicted
    }

    /// Bytes of the stored buckets (in sled, or with a memory limit in the log).
    pub fn stored_bytes(&self) -> u64 {
        match self.memory.as_ref() {
            Some(memory) => memory.live_bytes(),
            None => self.stored_bytes,
        }
    }

    /// Whether the state's checkpoints go to a bucket log (under a memory limit, or without a
    /// Kafka changelog) instead of sled.
    pub fn is_logged(&self) -> bool {
        self.memory.is_some()
    }

    /// Replaces everything with stored buckets, `1 << bits` of them, (number, entries, stored
    /// size), and rebuilds the timer index, and the expiry index for a state TTL of `ttl`.
    pub fn restore(
        &mut self,
        bits: u32,
        buckets: impl IntoIterator<Item = (u32, Bucket<K, S>, u64)>,
        ttl: Option<Millis>,
    ) {
        *self = KeyedState::with_bits(bits);
        self.ttl = ttl;
        self.fill(buckets);
    }

    /// Puts `buckets` (number, entries, stored size) in place in an empty state, and builds
    /// the timer index, and the expiry index under the state's TTL.
    pub(super) fn fill(&mut self, buckets: impl IntoIterator<Item = (u32, Bucket<K, S>, u64)>) {
        let ttl = self.ttl;
        // The indexes are built in bulk from sorted runs at the end: inserting key by key took
        // about as long as reading the state, with a hundred thousand keys or more.
        let mut timers: [Vec<(Millis, u64, K)>; 3] = Default::default();
        let mut expiry = Vec::new();
        for (b, mut bucket, size) in buckets {
            let b = b as usize;
            self.keys += bucket.len();
            self.slots[b].stored = size;
            self.stored_bytes += size;
            for (key, entry) in bucket.iter_mut() {
                let order = super::schedule::order_of(key);
                for &(domain, time) in &entry.timers {
                    timers[clock_of(domain)].push((time, order, key.clone()));
                }
                if let Some(ttl) = ttl {
                    entry.filed = entry.touched.saturating_add(ttl);
                    expiry.push((entry.filed, order, key.clone()));
                }
            }
            self.buckets[b] = bucket;
        }
        for (clock, places) in self.timers.clocks.iter_mut().zip(timers) {
            clock.extend(places);
        }
        self.expiry.extend(expiry);
    }

    /// Keys of buckets in memory.
    pub(super) fn resident_keys(&self) -> usize {
        self.keys - self.evicted_keys
    }

    /// Number of keys with state.
    pub fn len(&self) -> usize {
        self.keys
    }

    /// True when no key has state.
    pub fn is_empty(&self) -> bool {
        self.keys == 0
    }

    /// Number of pending timers.
    pub fn timer_count(&self) -> usize {
        self.timers.resident() + self.evicted_timers
    }

    /// The earliest and the latest pending timer's time.
    pub fn timer_span(&self) -> Option<(Millis, Millis)> {
        let first = self
            .timers
            .clocks
            .iter()
            .filter_map(Schedule::first)
            .min()?;
        let evicted = (self.slots.iter())
            .filter_map(|s| Some(s.evicted.as_ref()?.last_timer).filter(|t| *t != Millis::MIN));
        let resident = self.timers.clocks.iter().filter_map(Schedule::last);
        let last = resident.chain(evicted).max()?;
        Some((first, last))
    }

    /// One key's entry: its state and timers (for queries).
    pub fn entry<'k>(&mut self, key: impl Into<HashedKey<'k, K>>) -> Option<&Entry<S>>
    where
        K: 'k,
    {
        let key = key.into();
        let b = self.bucket(key);
        self.resident(b).get(key.key, key.stable)
    }

    /// Read access to one key's state in memory (for tests): `None` for a key of an evicted
    /// bucket too; [`entry`](Self::entry) reads it back.
    pub fn get(&self, key: &K) -> Option<&S> {
        let key = HashedKey::new(key);
        let b = self.bucket(key);
        self.buckets[b].get(key.key, key.stable).map(|e| &e.state)
    }

    /// True when `key` has state.
    pub fn contains<'k>(&mut self, key: impl Into<HashedKey<'k, K>>) -> bool
    where
        K: 'k,
    {
        self.entry(key).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_reported_per_bucket_and_once() {
        let mut s: KeyedState<u64, u32> = KeyedState::default();
        for k in 0..20_000u64 {
            s.touch(&k).0.state += 1;
        }
        assert_eq!(s.len(), 20_000);
        let changed = s.drain_changes();
        assert_eq!(changed.len(), BUCKETS, "20,000 keys touch every bucket");
        let stored: usize = changed.iter().map(|(_, b)| b.map_or(0, |b| b.len())).sum();
        assert_eq!(stored, 20_000);
        assert!(s.drain_changes().is_empty(), "changes are reported once");

        s.remove_if_idle(&7);
        let changed = s.drain_changes();
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].0 as usize, bucket_of(&7u64, BUCKET_BITS));
        assert_eq!(s.len(), 19_999);
        assert_eq!(s.get(&8), Some(&1));
    }

    #[test]
    fn untouched_keys_expire_with_their_timers_and_touched_ones_wait() {
        let mut s: KeyedState<u64, u32> = KeyedState::default();
        let (entry, timers) = s.touch_with_ttl(&1, 100, 50);
        entry.timers.push((TimeDomain::EventTime, 500));
        timers.insert(TimeDomain::EventTime, 500, 1);
        s.touch_with_ttl(&2, 100, 50);
        s.touch_with_ttl(&2, 140, 50);
        s.drain_changes();
        assert_eq!(s.pop_expired(149, 50), None);
        assert_eq!(s.pop_expired(150, 50), Some(1));
        assert_eq!(s.pop_expired(150, 50), None, "key 2 was touched at 140");
        assert_eq!((s.len(), s.timer_count()), (1, 0));
        assert_eq!(s.drain_changes().len(), 1, "the expiry is checkpointed");
        assert_eq!(s.pop_expired(190, 50), Some(2));
        assert!(s.is_empty());
    }

    #[test]
    fn dropped_keys_leave_no_trace_in_what_expires_and_a_bounded_index() {
        // Most keys expire (a short TTL), or most are dropped long before they would (the
        // stale places are swept out).
        for (ttl, tick) in [(1_000, 25), (60_000, 250)] {
            let swept = expire_against_a_model(ttl, tick);
            assert_eq!(swept, ttl > 10_000, "TTL {ttl}: sweeps {swept}");
        }
    }

    /// Keys touched, dropped and touched again at random, against a map of last touches: each
    /// tick expires exactly the keys a TTL of `ttl` past their last touch, and the expiry index
    /// stays within its bound. Whether the index was swept.
    fn expire_against_a_model(ttl: Millis, tick: Millis) -> bool {
        let mut s: KeyedState<u64, u32> = KeyedState::default();
        let mut model: std::collections::HashMap<u64, Millis> = Default::default();
        let (mut rng, mut swept) = (7u64, false);
        let mut next = move |n: u64| {
            rng = crate::key::mix64(rng);
            rng % n
        };
        for now in (0..400).map(|step| step * tick) {
            for _ in 0..500 {
                let (key, stale) = (next(20_000), s.stale_expiries);
                if next(2) == 0 {
                    s.remove_if_idle(&key);
                    model.remove(&key);
                } else {
                    let at = now + next(tick as u64) as Millis;
                    s.touch_with_ttl(&key, at, ttl);
                    let touched = model.entry(key).or_insert(at);
                    *touched = (*touched).max(at);
                }
                swept |= stale > STALE_EXPIRIES_SWEPT_FROM && s.stale_expiries == 0;
            }
            let mut expired = Vec::from_iter(std::iter::from_fn(|| s.pop_expired(now, ttl)));
            let mut expected = Vec::from_iter(
                (model.iter()).filter_map(|(key, touched)| (touched + ttl <= now).then_some(*key)),
            );
            model.retain(|_, touched| *touched + ttl > now);
            expired.sort_unstable();
            expected.sort_unstable();
            assert_eq!(expired, expected, "at {now}");
            assert_eq!(s.len(), model.len());
            let bound = 2 * s.len() + STALE_EXPIRIES_SWEPT_FROM + 1;
            assert!(s.expiry.len() <= bound, "at {now}: {}", s.expiry.len());
        }
        swept
    }

    #[test]
    fn an_erased_key_loses_its_state_and_timers_and_its_bucket_is_checkpointed() {
        let mut s: KeyedState<u64, u32> = KeyedState::default();
        for key in [1, 2] {
            let (entry, timers) = s.touch(&key);
            entry.timers.push((TimeDomain::EventTime, 500));
            timers.insert(TimeDomain::EventTime, 500, key);
        }
        s.drain_changes();
        assert!(s.remove(&1));
        assert!(!s.remove(&1), "nothing left to erase");
        assert_eq!((s.len(), s.timer_count()), (1, 1));
        assert_eq!(s.pop_due(TimeDomain::EventTime, 1_000), Some((500, 2)));
        let changed = s.drain_changes();
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].0 as usize, bucket_of(&1u64, BUCKET_BITS));
    }

    /// Gives keys `keys` of `s` a state, two timers of one clock and a TTL, `round` changing
    /// what they hold.
    fn fill(s: &mut KeyedState<u64, u32>, keys: std::ops::Range<u64>, round: u64) {
        for k in keys {
            let (entry, timers) = s.touch_with_ttl(&k, ((k + round) % 7) as Millis, 1_000);
            entry.state = (k + round) as u32;
            let domain = DOMAINS[k as usize % 2];
            for time in [((k + round) % 13) as Millis, 100 + (k % 5) as Millis] {
                if !entry.timers.contains(&(domain, time)) {
                    entry.timers.push((domain, time));
                    timers.insert(domain, time, k);
                }
            }
        }
    }

    /// A state of `1 << bits` buckets filled with `fill` over 2,000 keys.
    fn filled(bits: u32) -> KeyedState<u64, u32> {
        let mut s = KeyedState::with_bits(bits);
        fill(&mut s, 0..2_000, 0);
        s
    }

    /// Everything `s` does from here: due timers, then expiries, then what is left.
    fn run_out(s: &mut KeyedState<u64, u32>) -> Vec<(u8, Millis, u64)> {
        let mut seen = Vec::new();
        for (i, domain) in DOMAINS[..2].iter().enumerate() {
            for upto in [12, 104] {
                while let Some((t, k)) = s.pop_due(*domain, upto) {
                    let entry = s.touch_existing(&k).unwrap().0;
                    entry.timers.retain(|x| *x != (*domain, t));
                    seen.push((i as u8, t, k));
                }
            }
        }
        while let Some(k) = s.pop_expired(1_003, 1_000) {
            seen.push((2, 1_003, k));
        }
        seen.extend((0..2_000u64).filter_map(|k| Some((3, s.entry(&k)?.state as Millis, k))));
        seen
    }

    #[test]
    fn a_restore_rebuilds_the_timers_and_expiries_in_their_order() {
        let mut s = filled(BUCKET_BITS);
        let buckets: Vec<(u32, Bucket<u64, u32>, u64)> = (s.drain_changes().into_iter())
            .map(|(b, bucket)| (b, bucket.cloned().unwrap_or_default(), 0))
            .collect();
        let mut restored: KeyedState<u64, u32> = KeyedState::default();
        restored.restore(BUCKET_BITS, buckets, Some(1_000));
        assert_eq!((restored.len(), restored.timer_count()), (2_000, 4_000));
        assert_eq!(run_out(&mut restored), run_out(&mut s));
        assert_eq!(restored.len(), s.len());
    }

    /// An empty state of `1 << SPILL_BUCKET_BITS` buckets kept in a log in `dir` under a
    /// memory limit of 20 kB, as of the checkpoint `index` (`None`: a new one).
    fn limited(
        dir: &std::path::Path,
        index: Option<super::super::LogIndex>,
    ) -> KeyedState<u64, u32> {
        let mut s = KeyedState::with_bits(SPILL_BUCKET_BITS);
        s.limit_memory(20_000, dir.to_path_buf(), 0);
        s.restore_logged(SPILL_BUCKET_BITS, index, Some(1_000))
            .unwrap();
        s
    }

    #[test]
    fn a_state_over_its_memory_limit_evicts_and_reads_back_and_does_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = limited(dir.path(), None);
        fill(&mut s, 0..2_000, 0);
        let resident = s.resident_keys();
        assert!(resident < 500, "{resident} keys in memory");
        let mut unlimited = filled(SPILL_BUCKET_BITS);
        assert_eq!((s.len(), s.timer_count()), (2_000, 4_000));
        assert_eq!(s.stored_buckets(), unlimited.stored_buckets());
        assert_eq!(s.timer_span(), unlimited.timer_span());
        let evicted = s.residency().unwrap();
        assert!(
            evicted.evictions > 0 && evicted.evicted_keys > 1_500,
            "{evicted:?}"
        );
        assert_eq!(run_out(&mut s), run_out(&mut unlimited));
        let after = s.residency().unwrap();
        assert!(after.read_backs > 0, "{after:?}");
        assert_eq!(unlimited.residency(), None);
    }

    #[test]
    fn a_restore_under_a_memory_limit_gives_the_checkpoint_not_what_was_evicted_after() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = limited(dir.path(), None);
        fill(&mut s, 0..2_000, 0);
        let index = s.checkpoint_log(1).unwrap().map(|(index, _)| index);
        s.sync_log().unwrap();
        s.written(1).unwrap();
        // Changes after the checkpoint, evicted to the log: a restart must not see them.
        fill(&mut s, 0..2_000, 1);
        drop(s);
        let mut restored = limited(dir.path(), index);
        assert!(restored.resident_keys() < 500);
        assert_eq!((restored.len(), restored.timer_count()), (2_000, 4_000));
        assert_eq!(
            run_out(&mut restored),
            run_out(&mut filled(SPILL_BUCKET_BITS))
        );
    }

    /// An empty state of `1 << BUCKET_BITS` buckets whose checkpoints go to a log in `dir`,
    /// without a memory limit, as of the checkpoint `index` (`None`: a new one).
    fn logged(
        dir: &std::path::Path,
        index: Option<super::super::LogIndex>,
    ) -> KeyedState<u64, u32> {
        let mut s = KeyedState::with_bits(BUCKET_BITS);
        s.keep_log(dir.to_path_buf(), 0, true);
        s.restore_logged(BUCKET_BITS, index, Some(1_000)).unwrap();
        s
    }

    #[test]
    fn a_state_moved_from_sled_to_a_log_without_a_limit_keeps_every_key_in_memory_and_comes_back_the_same(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut sled_state = filled(BUCKET_BITS);
        let stored: Vec<(u32, Bucket<u64, u32>, u64)> = (sled_state.drain_changes().into_iter())
            .map(|(b, bucket)| (b, bucket.cloned().unwrap_or_default(), 0))
            .collect();
        let mut moved = logged(dir.path(), None);
        moved.take_moved(stored);
        assert_eq!((moved.resident_keys(), moved.timer_count()), (2_000, 4_000));
        assert!(!moved.is_limited() && moved.residency().is_none());
        let (index, appended) =
            (moved.checkpoint_log(1).unwrap()).expect("a logged state checkpoints to its log");
        moved.sync_log().unwrap();
        moved.written(1).unwrap();
        assert_eq!(appended, moved.stored_bytes());
        let live = index.places.iter().flatten().count();
        assert_eq!(
            live,
            moved.stored_buckets(),
            "every bucket holding keys is in the log"
        );
        let mut restored = logged(dir.path(), Some(index));
        assert_eq!(restored.resident_keys(), 2_000);
        assert_eq!(run_out(&mut restored), run_out(&mut filled(BUCKET_BITS)));
        assert_eq!(run_out(&mut moved), run_out(&mut sled_state));
    }
}
