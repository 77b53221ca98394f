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

/// Keys by time, then [`order_of`], then key; and evicted buckets by their earliest time.
#[derive(Debug)]
pub struct Schedule<K> {
    keys: BTreeSet<(Millis, u64, K)>,
    evicted: BTreeSet<(Millis, u64)>,
}

impl<K> Default for Schedule<K> {
    fn default() -> Self {
        Schedule {
            keys: BTreeSet::new(),
            evicted: BTreeSet::new(),
        }
    }
}

impl<K: Key> Schedule<K> {
    /// Adds places, in any order, to a schedule of evicted buckets only (a restore builds the
    /// places of the keys it keeps in memory in bulk: sorting, then building the tree, is
    /// several times faster than inserting a hundred thousand places one by one).
    pub fn extend_sorted(&mut self, mut places: Vec<(Millis, u64, K)>) {
        places.sort_unstable();
        if self.keys.is_empty() {
            self.keys = BTreeSet::from_iter(places);
        } else {
            self.keys.extend(places);
        }
    }

    /// Adds `key` at `time`; false when it was there already.
    pub fn insert(&mut self, time: Millis, key: K) -> bool {
        self.keys.insert((time, order_of(&key), key))
    }

    /// Removes `key`'s place at `time`.
    pub fn remove(&mut self, time: Millis, key: &K) {
        self.keys.remove(&(time, order_of(key), key.clone()));
    }

    /// The keys in memory due at or before `upto`, in the order they come due (what
    /// [`Schedule::next`] would take, evicted buckets aside).
    pub fn upcoming(&self, upto: Millis) -> impl Iterator<Item = &K> {
        (self.keys.iter())
            .take_while(move |(time, _, _)| *time <= upto)
            .map(|(_, _, key)| key)
    }

    /// Takes what is due next at or before `upto`.
    pub fn next(&mut self, upto: Millis) -> Next<K> {
        let key = self.keys.first().map(|(t, o, _)| (*t, *o));
        match self.evicted.first() {
            Some(&(time, order)) if time <= upto && key.is_none_or(|k| (time, order) < k) => {
                Next::Load(order)
            }
            _ => match key {
                Some((time, _)) if time <= upto => {
                    let (time, _, key) = self.keys.pop_first().expect("checked above");
                    Next::Due(time, key)
                }
                _ => Next::Idle,
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
        let key = self.keys.first().map(|p| p.0);
        let evicted = self.evicted.first().map(|p| p.0);
        key.into_iter().chain(evicted).min()
    }

    /// The latest time of a key in memory.
    pub fn last(&self) -> Option<Millis> {
        self.keys.last().map(|p| p.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_evicted_bucket_is_read_back_before_anything_after_its_earliest_time() {
        let bits = 4;
        let (a, b) = (1u64, 2u64);
        let bucket_b = (b.partition_hash() as usize) & ((1 << bits) - 1);
        let mut s = Schedule::default();
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
        let mut s = Schedule::default();
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
