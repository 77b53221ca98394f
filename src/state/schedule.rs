//! [`Schedule`]: keys ordered by a time (a timer's, or when a key's state expires), with a
//! stand-in for each bucket of keys that is not in memory.
//!
//! Keys due at the same time are taken in the order of their bucket, then by key: a key's place
//! is `(time, order_of(key), key)`, where [`order_of`] is the key's stable hash with its bits
//! reversed. A bucket is a run of the hash's low bits, so reversed they lead and every bucket's
//! keys sort together, whatever the number of buckets. That is what lets a partition keep only
//! some buckets in memory (`--state-memory`): an evicted bucket leaves one place, `(its earliest
//! time, the order its keys start at)`, and a key of a bucket in memory is taken only once no
//! evicted bucket comes before it; else the bucket is read back first. The order is the same with
//! every bucket in memory, so output does not depend on the memory limit.
//!
//! How the places of keys in memory are kept is the schedule's [`Places`]: a tree of places
//! ([`PlaceTree`]) where most times have a key or a few (state expiries), a slot per second
//! ([`TimeSlots`]) where many keys share a time or a second (timers at windows' and sessions'
//! ends).

pub use super::place_tree::PlaceTree;
pub use super::time_slots::TimeSlots;
use crate::time::Millis;
use crate::Key;
use std::collections::BTreeSet;

/// Where `key` sorts among keys due at the same time: its stable hash, bits reversed.
#[inline]
pub fn order_of<K: Key>(key: &K) -> u64 {
    key.partition_hash().reverse_bits()
}

/// The order the keys of bucket `bucket` start at (see [`order_of`]).
#[inline]
pub fn bucket_order(bucket: usize) -> u64 {
    (bucket as u64).reverse_bits()
}

/// The bucket whose keys start at `order`, among `1 << bits` buckets.
#[inline]
pub fn bucket_at(order: u64, bits: u32) -> usize {
    (order.reverse_bits() as usize) & ((1 << bits) - 1)
}

/// What comes next in a [`Schedule`].
#[derive(Debug, PartialEq, Eq)]
pub enum Next<K> {
    /// This key, due at this time (taken out of the schedule).
    Due(Millis, K),
    /// An evicted bucket (by [`bucket_order`]) holds what is due next: read it back first.
    Load(u64),
    /// Nothing is due.
    Idle,
}

/// How a [`Schedule`] keeps the places of keys in memory: `(time, order, key)`, taken in that
/// order.
pub trait Places<K>: Default {
    /// Adds a place (a key is added at a time once: a second place would come due again).
    fn insert(&mut self, time: Millis, order: u64, key: K);
    /// Removes a place it has.
    fn remove(&mut self, time: Millis, order: u64, key: &K);
    /// Adds places in any order (a restore files its keys' places at once).
    fn extend(&mut self, places: Vec<(Millis, u64, K)>);
    /// The first place's time and order (this may sort the first time's places: ask only when
    /// the time is due).
    fn first(&mut self) -> Option<(Millis, u64)>;
    /// Takes the first place out.
    fn pop_first(&mut self) -> Option<(Millis, K)>;
    /// The keys at or before `upto`, in order.
    fn upcoming<'a>(&'a mut self, upto: Millis) -> impl Iterator<Item = &'a K>
    where
        K: 'a;
    /// The number of places.
    fn len(&self) -> usize;
    /// The earliest time of a place.
    fn first_time(&self) -> Option<Millis>;
    /// The latest time of a place.
    fn last_time(&self) -> Option<Millis>;
}

/// Keys by time, then [`order_of`], then key (in `P`); and evicted buckets by their earliest
/// time.
#[derive(Debug)]
pub struct Schedule<K, P = TimeSlots<K>> {
    keys: P,
    evicted: BTreeSet<(Millis, u64)>,
    key: std::marker::PhantomData<K>,
}

impl<K, P: Default> Default for Schedule<K, P> {
    fn default() -> Self {
        Schedule {
            keys: P::default(),
            evicted: BTreeSet::new(),
            key: std::marker::PhantomData,
        }
    }
}

impl<K: Key, P: Places<K>> Schedule<K, P> {
    /// Adds places, in any order (a restore files the places of the keys it keeps in memory).
    pub fn extend(&mut self, places: Vec<(Millis, u64, K)>) {
        self.keys.extend(places);
    }

    /// Adds `key` at `time`, where it is not yet.
    pub fn insert(&mut self, time: Millis, key: K) {
        let stable = key.partition_hash();
        self.insert_hashed(time, key, stable);
    }

    /// [`Schedule::insert`] for a key whose stable hash ([`Key::partition_hash`]) the caller
    /// has computed already.
    pub fn insert_hashed(&mut self, time: Millis, key: K, stable: u64) {
        debug_assert_eq!(stable, key.partition_hash());
        self.keys.insert(time, stable.reverse_bits(), key);
    }

    /// Removes `key`'s place at `time`, which it has.
    pub fn remove(&mut self, time: Millis, key: &K) {
        self.keys.remove(time, order_of(key), key);
    }

    /// The keys in memory due at or before `upto`, in the order they come due (what
    /// [`Schedule::next`] would take, evicted buckets aside).
    pub fn upcoming(&mut self, upto: Millis) -> impl Iterator<Item = &K> {
        self.keys.upcoming(upto)
    }

    /// Takes what is due next at or before `upto`.
    pub fn next(&mut self, upto: Millis) -> Next<K> {
        // Only a due time is sorted: the next one still takes its timers unsorted.
        let due = self.keys.first_time().is_some_and(|time| time <= upto);
        let key = if due { self.keys.first() } else { None };
        match self.evicted.first() {
            // At the same place, the bucket first: the key may be one of its keys.
            Some(&(time, order)) if time <= upto && key.is_none_or(|k| (time, order) <= k) => {
                Next::Load(order)
            }
            _ => match key {
                Some(_) => {
                    let (time, key) = self.keys.pop_first().expect("checked above");
                    Next::Due(time, key)
                }
                None => Next::Idle,
            },
        }
    }

    /// Files an evicted bucket (by [`bucket_order`]) at its earliest time.
    pub fn park(&mut self, time: Millis, bucket: u64) {
        self.evicted.insert((time, bucket));
    }

    /// Takes an evicted bucket's place back (it is read into memory).
    pub fn unpark(&mut self, time: Millis, bucket: u64) {
        self.evicted.remove(&(time, bucket));
    }

    /// Places of keys in memory.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The earliest time scheduled, in memory or evicted.
    pub fn first(&self) -> Option<Millis> {
        let key = self.keys.first_time();
        let evicted = self.evicted.first().map(|p| p.0);
        key.into_iter().chain(evicted).min()
    }

    /// The latest time of a key in memory.
    pub fn last(&self) -> Option<Millis> {
        self.keys.last_time()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_evicted_bucket_is_read_back_before_anything_after_its_earliest_time() {
        evicted_first::<TimeSlots<u64>>();
        evicted_first::<PlaceTree<u64>>();
    }

    fn evicted_first<P: Places<u64>>() {
        let bits = 4;
        let (a, b) = (1u64, 2u64);
        let bucket_b = (b.partition_hash() as usize) & ((1 << bits) - 1);
        let mut s = Schedule::<u64, P>::default();
        s.insert(10, a);
        s.park(10, bucket_order(bucket_b));
        let first = if bucket_order(bucket_b) < order_of(&a) {
            assert_eq!(s.next(10), Next::Load(bucket_order(bucket_b)));
            s.unpark(10, bucket_order(bucket_b));
            s.insert(10, b);
            b
        } else {
            a
        };
        assert_eq!(s.next(9), Next::Idle, "nothing due before 10");
        assert_eq!(s.next(10), Next::Due(10, first));
        assert_eq!(bucket_at(bucket_order(bucket_b), bits), bucket_b);
    }

    #[test]
    fn upcoming_lists_the_keys_due_in_the_order_next_takes_them() {
        upcoming_in_order::<TimeSlots<u64>>();
        upcoming_in_order::<PlaceTree<u64>>();
    }

    fn upcoming_in_order<P: Places<u64>>() {
        let mut s = Schedule::<u64, P>::default();
        for (time, key) in [(30, 1u64), (10, 2), (20, 3), (10, 4), (40, 5)] {
            s.insert(time, key);
        }
        let upcoming: Vec<u64> = s.upcoming(30).copied().collect();
        let mut taken = Vec::new();
        while let Next::Due(_, key) = s.next(30) {
            taken.push(key);
        }
        assert_eq!(upcoming, taken);
        assert_eq!(taken.len(), 4, "40 is not due");
        assert_eq!(s.upcoming(30).count(), 0);
    }

    #[test]
    fn a_time_not_yet_due_takes_its_timers_unsorted() {
        let mut s = Schedule::<u64, TimeSlots<u64>>::default();
        for key in 0..1_000 {
            s.insert(60_000, key);
        }
        assert_eq!(s.next(59_999), Next::Idle);
        assert_eq!(
            s.keys.opened(),
            0,
            "the slot of 60,000 is not sorted before it is due"
        );
        assert!(matches!(s.next(60_000), Next::Due(60_000, _)));
        assert_eq!(s.keys.opened(), 1);
    }

    #[test]
    fn places_are_taken_in_order_whatever_is_added_and_removed() {
        in_order_whatever_comes_and_goes::<TimeSlots<u64>>();
        in_order_whatever_comes_and_goes::<PlaceTree<u64>>();
    }

    /// `P` against a model, a set of places: many keys at few times (windows' ends) and the odd
    /// time of its own, placed and removed at random, taken as time goes on.
    fn in_order_whatever_comes_and_goes<P: Places<u64>>() {
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut step = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut s = Schedule::<u64, P>::default();
        let mut tree: BTreeSet<(Millis, u64, u64)> = BTreeSet::new();
        let mut now = 0;
        for round in 0..40_000 {
            let r = step();
            let time = now + (r % 4) as Millis * 10 + Millis::from(r % 97 == 0);
            let key = (r >> 8) % 3_000;
            match (r >> 40) % 8 {
                0..=4 => {
                    if tree.insert((time, order_of(&key), key)) {
                        s.insert(time, key);
                    }
                }
                5 | 6 => {
                    let pick = (tree.iter())
                        .nth((r >> 20) as usize % tree.len().max(1))
                        .cloned();
                    if let Some((t, o, k)) = pick {
                        tree.remove(&(t, o, k));
                        s.remove(t, &k);
                    }
                }
                _ => {
                    now += Millis::from((r >> 50) % 15 == 0) * 10; // slots fill up meanwhile
                    let upcoming: Vec<u64> = s.upcoming(now).copied().collect();
                    let due: Vec<u64> = (tree.iter())
                        .take_while(|p| p.0 <= now)
                        .map(|p| p.2)
                        .collect();
                    assert_eq!(upcoming, due, "upcoming at {now}, round {round}");
                    for _ in 0..(r >> 56) % 40 {
                        let expected = tree.first().filter(|p| p.0 <= now).cloned();
                        if expected.is_some() {
                            tree.pop_first();
                        }
                        match (s.next(now), expected) {
                            (Next::Due(t, k), Some((et, _, ek))) => assert_eq!((t, k), (et, ek)),
                            (Next::Idle, None) => break,
                            (got, expected) => panic!("{got:?} where {expected:?} was due"),
                        }
                    }
                }
            }
            assert_eq!(s.len(), tree.len());
            assert_eq!(s.first(), tree.first().map(|p| p.0));
            assert_eq!(s.last(), tree.last().map(|p| p.0));
        }
    }

    #[test]
    fn the_keys_of_a_bucket_sort_together_whatever_the_bucket_count() {
        for bits in [1, 9, 16] {
            let mut keys: Vec<u64> = (0..2_000).collect();
            keys.sort_by_key(order_of);
            let buckets: Vec<usize> = (keys.iter())
                .map(|k| (k.partition_hash() as usize) & ((1 << bits) - 1))
                .collect();
            let runs = 1 + buckets.windows(2).filter(|w| w[0] != w[1]).count();
            let distinct = buckets.iter().collect::<BTreeSet<_>>().len();
            assert_eq!(runs, distinct, "one run per bucket with {bits} bits");
            for (k, b) in keys.iter().zip(&buckets) {
                assert!(order_of(k) >= bucket_order(*b));
                assert_eq!(bucket_at(order_of(k), bits), *b);
            }
        }
    }
}
