//! [`TimeSlots`]: a [`Schedule`](super::schedule::Schedule)'s places in a slot per time, for
//! clocks where many keys share a time.
//!
//! The timers of a window's end, hundreds of thousands of keys at one time, are each pushed into
//! their time's slot and sorted once when the time comes due. In a tree of places, the hash order
//! puts each key of a time in a random place, and each timer walked to a random leaf: with a
//! million keys, a sixth of `fraud`'s time.

use super::schedule::Places;
use crate::time::Millis;
use crate::Key;
use smallvec::SmallVec;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

/// Places by time, a [`Slot`] per time; no slot is empty.
#[derive(Debug)]
pub struct TimeSlots<K> {
    times: BTreeMap<Millis, Slot<K>>,
    len: usize,
}

impl<K> Default for TimeSlots<K> {
    fn default() -> Self {
        TimeSlots {
            times: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<K> TimeSlots<K> {
    /// Slots sorted into a tree.
    #[cfg(test)]
    pub(super) fn opened(&self) -> usize {
        (self.times.values())
            .filter(|slot| matches!(slot, Slot::Open(_)))
            .count()
    }
}

impl<K: Key> Places<K> for TimeSlots<K> {
    fn insert(&mut self, time: Millis, order: u64, key: K) {
        match self.times.entry(time) {
            Entry::Occupied(slot) => slot.into_mut().insert((order, key)),
            Entry::Vacant(slot) => {
                slot.insert(Slot::of((order, key)));
            }
        }
        self.len += 1;
    }

    fn remove(&mut self, time: Millis, order: u64, key: &K) {
        let Some(slot) = self.times.get_mut(&time) else {
            return;
        };
        let before = slot.len();
        slot.remove((order, key.clone()));
        self.len -= before - slot.len();
        if slot.len() == 0 {
            self.times.remove(&time);
        }
    }

    /// Sorted, then built into a tree at once, places take a fraction of the time of filing a
    /// hundred thousand places one by one.
    fn extend(&mut self, mut places: Vec<(Millis, u64, K)>) {
        if !self.times.is_empty() {
            for (time, order, key) in places {
                self.insert(time, order, key);
            }
            return;
        }
        places.sort_unstable();
        self.len = places.len();
        let mut slots: Vec<(Millis, Slot<K>)> = Vec::new();
        for (time, order, key) in places {
            match slots.last_mut() {
                Some((last, slot)) if *last == time => slot.insert((order, key)),
                _ => slots.push((time, Slot::of((order, key)))),
            }
        }
        self.times = BTreeMap::from_iter(slots);
    }

    fn first(&mut self) -> Option<(Millis, u64)> {
        let mut first = self.times.first_entry()?;
        let order = first.get_mut().first().expect("no slot is empty");
        Some((*first.key(), order))
    }

    fn pop_first(&mut self) -> Option<(Millis, K)> {
        let mut first = self.times.first_entry()?;
        let (_, key) = first.get_mut().pop_first().expect("no slot is empty");
        let time = *first.key();
        if first.get().len() == 0 {
            first.remove();
        }
        self.len -= 1;
        Some((time, key))
    }

    fn upcoming<'a>(&'a mut self, upto: Millis) -> impl Iterator<Item = &'a K>
    where
        K: 'a,
    {
        (self.times.range_mut(..=upto)).flat_map(|(_, slot)| slot.iter().map(|(_, key)| key))
    }

    fn len(&self) -> usize {
        self.len
    }

    fn first_time(&self) -> Option<Millis> {
        self.times.first_key_value().map(|p| *p.0)
    }

    fn last_time(&self) -> Option<Millis> {
        self.times.last_key_value().map(|p| *p.0)
    }
}

/// The places due at one time, as `(order_of(key), key)`.
///
/// A short slot keeps its places sorted (a few keys, as a session's end or a payment's
/// micro-batch mostly has: a shift of a few places). A long one, a window's end, takes pushes
/// unsorted until its time is first taken from; then it is sorted once into a tree, which takes
/// what comes and goes while its time is being taken from (a bucket read back, a timer set
/// again).
#[derive(Debug)]
enum Slot<K> {
    /// Places, and those removed from them. Invariant: with at most [`SHORT`] places they are
    /// sorted and none is noted as removed. Longer, they are unsorted, a removed place is noted
    /// instead of searched for, and the noted ones are taken out when the slot opens or when
    /// they are half as many as its places (so that they cost at most half as much memory
    /// again).
    Filling {
        places: SmallVec<[(u64, K); 1]>,
        removed: Vec<(u64, K)>,
    },
    /// Sorted places.
    Open(BTreeSet<(u64, K)>),
}

/// The most places a filling slot keeps sorted (and searches for a place to remove).
const SHORT: usize = 64;

impl<K: Key> Slot<K> {
    /// A slot of one place.
    fn of(place: (u64, K)) -> Self {
        Slot::Filling {
            places: smallvec::smallvec![place],
            removed: Vec::new(),
        }
    }

    /// Places in the slot.
    fn len(&self) -> usize {
        match self {
            Slot::Filling { places, removed } => places.len() - removed.len(),
            Slot::Open(places) => places.len(),
        }
    }

    fn insert(&mut self, place: (u64, K)) {
        match self {
            Slot::Filling { places, .. } if places.len() < SHORT => {
                let at = places.partition_point(|p| *p < place);
                places.insert(at, place);
            }
            Slot::Filling { places, .. } => places.push(place),
            Slot::Open(places) => {
                places.insert(place);
            }
        }
    }

    /// Removes a place it has.
    fn remove(&mut self, place: (u64, K)) {
        match self {
            Slot::Filling { places, removed } if places.len() > SHORT => {
                removed.push(place);
                if removed.len() * 2 > places.len() {
                    take_out(places, removed);
                }
            }
            Slot::Filling { places, .. } => {
                if let Ok(at) = places.binary_search(&place) {
                    places.remove(at);
                }
            }
            Slot::Open(places) => {
                places.remove(&place);
            }
        }
    }

    /// The slot's first place (its order).
    fn first(&mut self) -> Option<u64> {
        match self.sorted() {
            Sorted::Short(places) => places.first().map(|p| p.0),
            Sorted::Tree(places) => places.first().map(|p| p.0),
        }
    }

    /// Takes the slot's first place out.
    fn pop_first(&mut self) -> Option<(u64, K)> {
        match self.sorted() {
            Sorted::Short(places) => (!places.is_empty()).then(|| places.remove(0)),
            Sorted::Tree(places) => places.pop_first(),
        }
    }

    /// The slot's places in order.
    fn iter(&mut self) -> impl Iterator<Item = &(u64, K)> {
        let (short, tree) = match self.sorted() {
            Sorted::Short(places) => (Some(places.iter()), None),
            Sorted::Tree(places) => (None, Some(places.iter())),
        };
        short
            .into_iter()
            .flatten()
            .chain(tree.into_iter().flatten())
    }

    /// The places in order: a short slot's as they are, a long one's sorted into a tree.
    fn sorted(&mut self) -> Sorted<'_, K> {
        if let Slot::Filling { places, removed } = self {
            if places.len() > SHORT {
                take_out(places, removed);
                *self = Slot::Open(BTreeSet::from_iter(std::mem::take(places)));
            }
        }
        match self {
            Slot::Filling { places, .. } => Sorted::Short(places),
            Slot::Open(places) => Sorted::Tree(places),
        }
    }
}

/// A sorted slot's places.
enum Sorted<'a, K> {
    Short(&'a mut SmallVec<[(u64, K); 1]>),
    Tree(&'a mut BTreeSet<(u64, K)>),
}

/// Sorts `places` and takes the `removed` ones out (each once).
fn take_out<P: Ord>(places: &mut SmallVec<[P; 1]>, removed: &mut Vec<P>) {
    places.sort_unstable();
    if removed.is_empty() {
        return;
    }
    removed.sort_unstable();
    let mut removed = std::mem::take(removed).into_iter().peekable();
    places.retain(|p| {
        while removed.next_if(|r| r < p).is_some() {}
        removed.next_if(|r| r == p).is_none()
    });
}
