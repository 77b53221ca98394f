//! [`PlaceTree`]: a [`Schedule`](super::schedule::Schedule)'s places in one tree, for clocks
//! where most times have a key or a few (state expiries, at each key's last touch plus the TTL).

use super::schedule::Places;
use crate::time::Millis;
use crate::Key;
use std::collections::BTreeSet;

/// Places in one ordered set.
#[derive(Debug)]
pub struct PlaceTree<K>(BTreeSet<(Millis, u64, K)>);

impl<K> Default for PlaceTree<K> {
    fn default() -> Self {
        PlaceTree(BTreeSet::new())
    }
}

impl<K: Key> Places<K> for PlaceTree<K> {
    fn insert(&mut self, time: Millis, order: u64, key: K) {
        self.0.insert((time, order, key));
    }

    fn remove(&mut self, time: Millis, order: u64, key: &K) {
        self.0.remove(&(time, order, key.clone()));
    }

    /// Sorting, then building the tree, is several times faster than inserting a hundred
    /// thousand places one by one.
    fn extend(&mut self, mut places: Vec<(Millis, u64, K)>) {
        places.sort_unstable();
        if self.0.is_empty() {
            self.0 = BTreeSet::from_iter(places);
        } else {
            self.0.extend(places);
        }
    }

    fn first(&mut self) -> Option<(Millis, u64)> {
        self.0.first().map(|(time, order, _)| (*time, *order))
    }

    fn pop_first(&mut self) -> Option<(Millis, K)> {
        self.0.pop_first().map(|(time, _, key)| (time, key))
    }

    fn upcoming<'a>(&'a mut self, upto: Millis) -> impl Iterator<Item = &'a K>
    where
        K: 'a,
    {
        (self.0.iter())
            .take_while(move |(time, _, _)| *time <= upto)
            .map(|(_, _, key)| key)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn first_time(&self) -> Option<Millis> {
        self.0.first().map(|p| p.0)
    }

    fn last_time(&self) -> Option<Millis> {
        self.0.last().map(|p| p.0)
    }
}
