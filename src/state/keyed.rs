//! In-memory keyed state of one partition: each key's typed state and timers, grouped into a
//! fixed number of hash buckets, the buckets changed since the last checkpoint, the
//! time-ordered timer index, and the expiry index of a state TTL.
//!
//! Why buckets: sled's cost (time and, in 0.34, memory that outgrows its cache) is per
//! operation, so a checkpoint that wrote one value per changed key slowed down and grew memory
//! with the key count. A checkpoint now writes one value per changed bucket — at most
//! [`BUCKETS`] per partition, whatever the number of keys.

use crate::operator::TimeDomain;
use crate::time::Millis;
use crate::Key;
use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Hash buckets per partition. Part of the on-disk format: changing it needs a new
/// [`crate::checkpoint::STATE_FORMAT`].
pub const BUCKETS: usize = 512;

/// The keys of one bucket with their entries, as stored in one sled value. hashbrown's map
/// for its `entry_ref`: a record finds (or makes) its key's entry in one lookup, cloning the
/// key only when it is new.
pub type Bucket<K, S> = hashbrown::HashMap<K, Entry<S>, FxBuildHasher>;

/// One key's state and its pending timers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Entry<S> {
    /// The operator's state for this key.
    pub state: S,
    /// Pending timers of this key.
    pub timers: Vec<(TimeDomain, Millis)>,
    /// When a record last touched this key, on the state TTL's clock (0 without a TTL).
    pub touched: Millis,
}

/// Pending timers of all keys of a partition, ordered by time then key (so firing order, and
/// with it output order, is deterministic).
#[derive(Debug)]
pub struct TimerIndex<K> {
    event: BTreeSet<(Millis, K)>,
    processing: BTreeSet<(Millis, K)>,
    model: BTreeSet<(Millis, K)>,
}

impl<K: Ord + Clone> TimerIndex<K> {
    fn set(&mut self, domain: TimeDomain) -> &mut BTreeSet<(Millis, K)> {
        match domain {
            TimeDomain::EventTime => &mut self.event,
            TimeDomain::ProcessingTime => &mut self.processing,
            TimeDomain::Model => &mut self.model,
        }
    }

    /// Adds a timer; returns false when it already existed.
    pub fn insert(&mut self, domain: TimeDomain, time: Millis, key: K) -> bool {
        self.set(domain).insert((time, key))
    }

    /// Removes a timer.
    pub fn remove(&mut self, domain: TimeDomain, time: Millis, key: &K) {
        self.set(domain).remove(&(time, key.clone()));
    }

    /// Takes the earliest timer at or before `upto`.
    pub fn pop_due(&mut self, domain: TimeDomain, upto: Millis) -> Option<(Millis, K)> {
        let set = self.set(domain);
        if set.first().is_some_and(|(t, _)| *t <= upto) {
            set.pop_first()
        } else {
            None
        }
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.event.len() + self.processing.len() + self.model.len()
    }

    /// The earliest and the latest pending timer's time, over every clock.
    pub fn span(&self) -> Option<(Millis, Millis)> {
        let sets = [&self.event, &self.processing, &self.model];
        let first = sets.iter().filter_map(|s| s.first().map(|t| t.0)).min()?;
        let last = sets.iter().filter_map(|s| s.last().map(|t| t.0)).max()?;
        Some((first, last))
    }

    /// True when no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// All keys of one partition.
#[derive(Debug)]
pub struct KeyedState<K, S> {
    buckets: Vec<Bucket<K, S>>,
    /// Buckets changed since the last checkpoint.
    dirty: Vec<bool>,
    keys: usize,
    timers: TimerIndex<K>,
    /// Keys by the time their state expires (with a TTL). Kept lazily: touching a key moves
    /// its `touched` time, not its place here; [`KeyedState::pop_expired`] re-files a key whose
    /// time moved. At most one place per key that has an entry, besides stale places of keys
    /// already gone, which are skipped when they come up.
    expiry: BTreeSet<(Millis, K)>,
}

impl<K: Key, S: Default> Default for KeyedState<K, S> {
    fn default() -> Self {
        KeyedState {
            buckets: (0..BUCKETS).map(|_| Bucket::default()).collect(),
            dirty: vec![false; BUCKETS],
            keys: 0,
            timers: TimerIndex {
                event: BTreeSet::new(),
                processing: BTreeSet::new(),
                model: BTreeSet::new(),
            },
            expiry: BTreeSet::new(),
        }
    }
}

/// The set of `items`, built in bulk once they are sorted (duplicates are dropped, as inserting
/// them one by one would).
fn sorted_set<T: Ord>(mut items: Vec<T>) -> BTreeSet<T> {
    items.sort_unstable();
    BTreeSet::from_iter(items)
}

/// The bucket of a key. Uses the low bits of the stable hash; the partition is chosen by the
/// high bits, so every bucket of a partition is used.
#[inline]
pub fn bucket_of<K: Key>(key: &K) -> usize {
    (key.partition_hash() as usize) & (BUCKETS - 1)
}

impl<K: Key, S: Default> KeyedState<K, S> {
    /// The entry of `key` (created when missing) and the timer index; its bucket is marked
    /// changed.
    pub fn touch(&mut self, key: &K) -> (&mut Entry<S>, &mut TimerIndex<K>) {
        self.upsert(key, None)
    }

    /// The entry of `key` if it exists (its bucket marked changed), and the timer index.
    pub fn touch_existing(&mut self, key: &K) -> Option<(&mut Entry<S>, &mut TimerIndex<K>)> {
        let b = bucket_of(key);
        let entry = self.buckets[b].get_mut(key)?;
        self.dirty[b] = true;
        Some((entry, &mut self.timers))
    }

    /// Drops `key`'s entry (the next checkpoint deletes it) unless it still has timers.
    pub fn remove_if_idle(&mut self, key: &K) {
        let b = bucket_of(key);
        if self.buckets[b]
            .get(key)
            .is_some_and(|e| e.timers.is_empty())
        {
            self.buckets[b].remove(key);
            self.keys -= 1;
            self.dirty[b] = true;
        }
    }

    /// Drops `key`'s entry and its timers (an erasure); the next checkpoint deletes it. False
    /// when the key has no state.
    pub fn remove(&mut self, key: &K) -> bool {
        let b = bucket_of(key);
        let Some(entry) = self.buckets[b].remove(key) else {
            return false;
        };
        for (domain, time) in entry.timers {
            self.timers.remove(domain, time, key);
        }
        self.keys -= 1;
        self.dirty[b] = true;
        true
    }

    /// Like [`KeyedState::touch`], and records that a record touched `key` at `now` on the
    /// clock of a state TTL of `ttl`: the key's state expires at `touched + ttl`.
    pub fn touch_with_ttl(
        &mut self,
        key: &K,
        now: Millis,
        ttl: Millis,
    ) -> (&mut Entry<S>, &mut TimerIndex<K>) {
        let (entry, timers) = self.upsert(key, Some(now.saturating_add(ttl)));
        entry.touched = entry.touched.max(now);
        (entry, timers)
    }

    /// The entry of `key`, created when missing (and then filed to expire at `expires`, with
    /// a TTL); its bucket is marked changed.
    fn upsert(&mut self, key: &K, expires: Option<Millis>) -> (&mut Entry<S>, &mut TimerIndex<K>) {
        let b = bucket_of(key);
        self.dirty[b] = true;
        let entry = match self.buckets[b].entry_ref(key) {
            hashbrown::hash_map::EntryRef::Occupied(found) => found.into_mut(),
            hashbrown::hash_map::EntryRef::Vacant(new) => {
                self.keys += 1;
                if let Some(at) = expires {
                    self.expiry.insert((at, key.clone()));
                }
                new.insert(Entry::default())
            }
        };
        (entry, &mut self.timers)
    }

    /// Removes and returns the next key whose state expired by `now` under a TTL of `ttl`,
    /// with its timers; keys touched since they were filed are filed again at their new time.
    pub fn pop_expired(&mut self, now: Millis, ttl: Millis) -> Option<K> {
        while self.expiry.first().is_some_and(|(t, _)| *t <= now) {
            let (_, key) = self.expiry.pop_first().expect("checked above");
            let b = bucket_of(&key);
            let Some(entry) = self.buckets[b].get(&key) else {
                continue; // gone already
            };
            let due = entry.touched.saturating_add(ttl);
            if due > now {
                self.expiry.insert((due, key));
                continue;
            }
            let entry = self.buckets[b].remove(&key).expect("looked up above");
            for (domain, time) in entry.timers {
                self.timers.remove(domain, time, &key);
            }
            self.keys -= 1;
            self.dirty[b] = true;
            return Some(key);
        }
        None
    }

    /// Takes the earliest due timer of `domain`.
    pub fn pop_due(&mut self, domain: TimeDomain, upto: Millis) -> Option<(Millis, K)> {
        self.timers.pop_due(domain, upto)
    }

    /// Every bucket changed since the last call, with its entries (`None` when it became
    /// empty: the checkpoint deletes it), and forgets the changes.
    pub fn drain_changes(&mut self) -> Vec<(u32, Option<&Bucket<K, S>>)> {
        let changed = self
            .dirty
            .iter_mut()
            .enumerate()
            .filter_map(|(b, dirty)| std::mem::take(dirty).then_some(b))
            .collect::<Vec<_>>();
        changed
            .into_iter()
            .map(|b| {
                let bucket = &self.buckets[b];
                (b as u32, (!bucket.is_empty()).then_some(bucket))
            })
            .collect()
    }

    /// Number of buckets holding at least one key: the entries a checkpoint leaves stored.
    pub fn stored_buckets(&self) -> usize {
        self.buckets.iter().filter(|b| !b.is_empty()).count()
    }

    /// Replaces everything with restored buckets and rebuilds the timer index, and the expiry
    /// index for a state TTL of `ttl`.
    pub fn restore(&mut self, buckets: Vec<(u32, Bucket<K, S>)>, ttl: Option<Millis>) {
        *self = KeyedState::default();
        // The indexes are built in bulk from sorted runs at the end: inserting key by key took
        // about as long as reading the state, with a hundred thousand keys or more.
        let (mut event, mut processing, mut model) = (Vec::new(), Vec::new(), Vec::new());
        let mut expiry = Vec::new();
        for (b, bucket) in buckets {
            for (key, entry) in &bucket {
                for &(domain, time) in &entry.timers {
                    let index: &mut Vec<_> = match domain {
                        TimeDomain::EventTime => &mut event,
                        TimeDomain::ProcessingTime => &mut processing,
                        TimeDomain::Model => &mut model,
                    };
                    index.push((time, key.clone()));
                }
                if let Some(ttl) = ttl {
                    expiry.push((entry.touched.saturating_add(ttl), key.clone()));
                }
            }
            self.keys += bucket.len();
            self.buckets[b as usize] = bucket;
        }
        self.timers = TimerIndex {
            event: sorted_set(event),
            processing: sorted_set(processing),
            model: sorted_set(model),
        };
        self.expiry = sorted_set(expiry);
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
        self.timers.len()
    }

    /// The earliest and the latest pending timer's time.
    pub fn timer_span(&self) -> Option<(Millis, Millis)> {
        self.timers.span()
    }

    /// One key's entry: its state and timers (for queries).
    pub fn entry(&self, key: &K) -> Option<&Entry<S>> {
        self.buckets[bucket_of(key)].get(key)
    }

    /// Read access to one key's state (for tests and queries).
    pub fn get(&self, key: &K) -> Option<&S> {
        self.buckets[bucket_of(key)].get(key).map(|e| &e.state)
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
        assert_eq!(changed[0].0 as usize, bucket_of(&7u64));
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
        assert_eq!(changed[0].0 as usize, bucket_of(&1u64));
    }

    #[test]
    fn a_restore_rebuilds_the_timers_and_expiries_in_their_order() {
        let mut s: KeyedState<u64, u32> = KeyedState::default();
        for k in 0..2_000u64 {
            let (entry, timers) = s.touch_with_ttl(&k, (k % 7) as Millis, 1_000);
            let domain = [TimeDomain::EventTime, TimeDomain::ProcessingTime][k as usize % 2];
            for time in [(k % 13) as Millis, 100 + (k % 5) as Millis] {
                entry.timers.push((domain, time));
                timers.insert(domain, time, k);
            }
        }
        let buckets: Vec<(u32, Bucket<u64, u32>)> = (s.drain_changes().into_iter())
            .map(|(b, bucket)| (b, bucket.cloned().unwrap_or_default()))
            .collect();
        let mut restored: KeyedState<u64, u32> = KeyedState::default();
        restored.restore(buckets, Some(1_000));
        assert_eq!((restored.len(), restored.timer_count()), (2_000, 4_000));
        for domain in [TimeDomain::EventTime, TimeDomain::ProcessingTime] {
            for upto in [12, 104] {
                let due = |s: &mut KeyedState<u64, u32>| {
                    std::iter::from_fn(|| s.pop_due(domain, upto)).collect::<Vec<_>>()
                };
                assert_eq!(due(&mut restored), due(&mut s));
            }
        }
        let expired = |s: &mut KeyedState<u64, u32>| {
            std::iter::from_fn(|| s.pop_expired(1_003, 1_000)).collect::<Vec<_>>()
        };
        assert_eq!(expired(&mut restored), expired(&mut s));
        assert_eq!(restored.len(), s.len());
    }
}
