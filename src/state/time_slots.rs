//! [`TimeSlots`]: a [`Schedule`](super::schedule::Schedule)'s places in a slot per span of
//! time, for clocks where many keys share a time.
//!
//! The timers of a window's end, hundreds of thousands of keys at one time, are each pushed into
//! their span's slot and sorted once when the span comes due. In a tree of places, the hash order
//! puts each key of a time in a random place, and each timer walked to a random leaf: with a
//! million keys, a sixth of `fraud`'s time. A slot spans [`SPAN`] milliseconds rather than one:
//! timers spread over every millisecond (sessions' ends, one a key) would otherwise each walk a
//! tree of a hundred thousand times to a slot of their own, a cache miss at every level, and a
//! session set again at its end as its first timer fires (every key, once the input ends) walked
//! it once more.

use super::schedule::Places;
use crate::time::Millis;
use crate::Key;
use smallvec::SmallVec;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

/// The milliseconds one slot spans (a power of two: slots start at its multiples).
pub const SPAN: Millis = 1024;

/// The slot `time` falls in: the start of its span.
fn span_of(time: Millis) -> Millis {
    time & !(SPAN - 1)
}

/// A place: `(time, order_of(key), key)`.
type Place<K> = (Millis, u64, K);

/// Places by span of time, a [`Slot`] per span; no slot is empty.
#[derive(Debug)]
pub struct TimeSlots<K> {
    spans: BTreeMap<Millis, Slot<K>>,
    len: usize,
}

impl<K> Default for TimeSlots<K> {
    fn default() -> Self {
        TimeSlots {
            spans: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<K> TimeSlots<K> {
    /// Slots sorted into a tree.
    #[cfg(test)]
    pub(super) fn opened(&self) -> usize {
        (self.spans.values())
            .filter(|slot| matches!(slot, Slot::Open(_)))
            .count()
    }

    /// Slots.
    #[cfg(test)]
    fn slots(&self) -> usize {
        self.spans.len()
    }
}

impl<K: Key> Places<K> for TimeSlots<K> {
    fn insert(&mut self, time: Millis, order: u64, key: K) {
        match self.spans.entry(span_of(time)) {
            Entry::Occupied(slot) => slot.into_mut().insert((time, order, key)),
            Entry::Vacant(slot) => {
                slot.insert(Slot::of((time, order, key)));
            }
        }
        self.len += 1;
    }

    fn remove(&mut self, time: Millis, order: u64, key: &K) {
        let span = span_of(time);
        let Some(slot) = self.spans.get_mut(&span) else {
            return;
        };
        let before = slot.len();
        slot.remove((time, order, key.clone()));
        self.len -= before - slot.len();
        if slot.len() == 0 {
            self.spans.remove(&span);
        }
    }

    /// Sorted, then built into a tree at once, places take a fraction of the time of filing a
    /// hundred thousand places one by one.
    fn extend(&mut self, mut places: Vec<(Millis, u64, K)>) {
        if !self.spans.is_empty() {
            for (time, order, key) in places {
                self.insert(time, order, key);
            }
            return;
        }
        places.sort_unstable();
        self.len = places.len();
        let mut slots: Vec<(Millis, Slot<K>)> = Vec::new();
        for place in places {
            match slots.last_mut() {
                Some((span, slot)) if *span == span_of(place.0) => slot.insert(place),
                _ => slots.push((span_of(place.0), Slot::of(place))),
            }
        }
        self.spans = BTreeMap::from_iter(slots);
    }

    fn first(&mut self) -> Option<(Millis, u64)> {
        let mut first = self.spans.first_entry()?;
        let (time, order, _) = first.get_mut().first().expect("no slot is empty");
        Some((*time, *order))
    }

    fn pop_first(&mut self) -> Option<(Millis, K)> {
        let mut first = self.spans.first_entry()?;
        let (time, _, key) = first.get_mut().pop_first().expect("no slot is empty");
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
        // A slot is sorted only once a place in it is due.
        (self.spans.range_mut(..=span_of(upto)))
            .take_while(move |(_, slot)| slot.earliest() <= upto)
            .flat_map(|(_, slot)| slot.iter())
            .take_while(move |(time, _, _)| *time <= upto)
            .map(|(_, _, key)| key)
    }

    fn len(&self) -> usize {
        self.len
    }

    fn first_time(&self) -> Option<Millis> {
        self.spans
            .first_key_value()
            .map(|(_, slot)| slot.earliest())
    }

    fn last_time(&self) -> Option<Millis> {
        self.spans.last_key_value().map(|(_, slot)| slot.latest())
    }
}

/// The places due in one span of time.
///
/// A short slot keeps its places sorted (a few keys, as a session's end or a payment's
/// micro-batch mostly has: a shift of a few places). A long one, a window's end, takes pushes
/// unsorted until its span is first taken from; then it is sorted once into a tree, which takes
/// what comes and goes while its span is being taken from (a bucket read back, a timer set
/// again).
#[derive(Debug)]
enum Slot<K> {
    /// Places, those removed from them, and, once they are more than [`SHORT`], the earliest
    /// and latest time among them. Invariant: with at most [`SHORT`] places they are sorted
    /// (their first and last are the slot's earliest and latest) and none is noted as removed.
    /// Longer, they are unsorted, their `bounds` are kept, a removed place is noted instead of
    /// searched for, and the noted ones are taken out when the slot opens, when they are half as
    /// many as its places (so that they cost at most half as much memory again), or when the
    /// last place of the earliest or latest time goes (to find the next one).
    Filling {
        places: SmallVec<[Place<K>; 1]>,
        removed: Vec<Place<K>>,
        bounds: Bounds,
    },
    /// Sorted places.
    Open(BTreeSet<Place<K>>),
}

/// The most places a filling slot keeps sorted (and searches for a place to remove).
const SHORT: usize = 64;

impl<K: Key> Slot<K> {
    /// A slot of one place.
    fn of(place: Place<K>) -> Self {
        Slot::Filling {
            bounds: Bounds::of(place.0),
            places: smallvec::smallvec![place],
            removed: Vec::new(),
        }
    }

    /// Places in the slot.
    fn len(&self) -> usize {
        match self {
            Slot::Filling {
                places, removed, ..
            } => places.len() - removed.len(),
            Slot::Open(places) => places.len(),
        }
    }

    /// The earliest time of its places.
    fn earliest(&self) -> Millis {
        match self {
            Slot::Filling { places, .. } if places.len() <= SHORT => places[0].0,
            Slot::Filling { bounds, .. } => bounds.first,
            Slot::Open(places) => places.first().expect("no slot is empty").0,
        }
    }

    /// The latest time of its places.
    fn latest(&self) -> Millis {
        match self {
            Slot::Filling { places, .. } if places.len() <= SHORT => places[places.len() - 1].0,
            Slot::Filling { bounds, .. } => bounds.last,
            Slot::Open(places) => places.last().expect("no slot is empty").0,
        }
    }

    fn insert(&mut self, place: Place<K>) {
        match self {
            Slot::Filling { places, .. } if places.len() < SHORT => {
                let at = places.partition_point(|p| *p < place);
                places.insert(at, place);
            }
            Slot::Filling { places, bounds, .. } => {
                if places.len() == SHORT {
                    *bounds = Bounds::of_sorted(places); // the last sorted moment
                }
                bounds.add(place.0);
                places.push(place);
            }
            Slot::Open(places) => {
                places.insert(place);
            }
        }
    }

    /// Removes a place it has.
    fn remove(&mut self, place: Place<K>) {
        match self {
            Slot::Filling {
                places,
                removed,
                bounds,
            } if places.len() > SHORT => {
                let time = place.0;
                removed.push(place);
                let bounded = bounds.remove(time);
                if !bounded || removed.len() * 2 > places.len() {
                    take_out(places, removed);
                }
                if !bounded && !places.is_empty() {
                    *bounds = Bounds::of_sorted(places);
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

    /// The slot's first place.
    fn first(&mut self) -> Option<&Place<K>> {
        match self.sorted() {
            Sorted::Short(places) => places.first(),
            Sorted::Tree(places) => places.first(),
        }
    }

    /// Takes the slot's first place out.
    fn pop_first(&mut self) -> Option<Place<K>> {
        match self.sorted() {
            Sorted::Short(places) => (!places.is_empty()).then(|| places.remove(0)),
            Sorted::Tree(places) => places.pop_first(),
        }
    }

    /// The slot's places in order.
    fn iter(&mut self) -> impl Iterator<Item = &Place<K>> {
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
        if let Slot::Filling {
            places, removed, ..
        } = self
        {
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

/// The earliest and the latest time of a filling slot's places, and how many places each has.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    first: Millis,
    at_first: usize,
    last: Millis,
    at_last: usize,
}

impl Bounds {
    /// The bounds of one place at `time`.
    fn of(time: Millis) -> Self {
        Bounds {
            first: time,
            at_first: 1,
            last: time,
            at_last: 1,
        }
    }

    /// The bounds of sorted places (at least one).
    fn of_sorted<K>(places: &[Place<K>]) -> Self {
        let (first, last) = (places[0].0, places[places.len() - 1].0);
        Bounds {
            first,
            at_first: places.iter().take_while(|p| p.0 == first).count(),
            last,
            at_last: places.iter().rev().take_while(|p| p.0 == last).count(),
        }
    }

    /// Counts a place at `time`.
    fn add(&mut self, time: Millis) {
        if time < self.first {
            (self.first, self.at_first) = (time, 0);
        }
        if time > self.last {
            (self.last, self.at_last) = (time, 0);
        }
        self.at_first += usize::from(time == self.first);
        self.at_last += usize::from(time == self.last);
    }

    /// Uncounts a place at `time`; false when that was the last place at a bound (which is
    /// then unknown).
    fn remove(&mut self, time: Millis) -> bool {
        self.at_first -= usize::from(time == self.first);
        self.at_last -= usize::from(time == self.last);
        self.at_first > 0 && self.at_last > 0
    }
}

/// A sorted slot's places.
enum Sorted<'a, K> {
    Short(&'a mut SmallVec<[Place<K>; 1]>),
    Tree(&'a mut BTreeSet<Place<K>>),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::schedule::order_of;

    #[test]
    fn timers_a_millisecond_apart_share_a_slot_a_span_and_come_out_in_time_order() {
        // Sessions' ends: a key a millisecond, set again later as their first timer fires.
        let mut slots = TimeSlots::<u64>::default();
        for key in 0..10_000u64 {
            let time = (key * 7_919 % 10_000) as Millis; // every millisecond, out of order
            slots.insert(time, order_of(&key), key);
        }
        assert_eq!(slots.slots(), 10, "10,000 ms in slots of {SPAN} ms");
        assert_eq!(
            (slots.first_time(), slots.last_time()),
            (Some(0), Some(9_999))
        );
        let mut taken = Vec::new();
        while let Some((time, key)) = slots.pop_first() {
            if time % 2 == 0 && key < 10_000 {
                slots.insert(time + 5_000, order_of(&(key + 10_000)), key + 10_000);
            }
            taken.push(time);
        }
        assert_eq!(taken.len(), 10_000 + 5_000);
        assert!(taken.windows(2).all(|w| w[0] <= w[1]), "in time order");
    }

    #[test]
    fn removing_a_long_slots_earliest_place_finds_the_next_earliest() {
        let mut slots = TimeSlots::<u64>::default();
        for key in 0..200u64 {
            slots.insert(100 + key as Millis, order_of(&key), key);
        }
        slots.remove(100, order_of(&0), &0);
        slots.remove(299, order_of(&199), &199);
        assert_eq!(
            (slots.first_time(), slots.last_time()),
            (Some(101), Some(298))
        );
        assert_eq!(slots.len(), 198);
        assert_eq!(slots.opened(), 0, "not sorted into a tree before it is due");
    }
}
