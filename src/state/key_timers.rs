//! [`KeyTimers`]: one key's pending timers, the first kept inline, in 16 bytes.

use crate::operator::TimeDomain;
use crate::time::Millis;
use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};
use std::fmt;
use thin_vec::ThinVec;

/// One pending timer: its clock and its time.
type KeyTimer = (TimeDomain, Millis);

/// One key's pending timers, in the order they were registered (a removal moves the last one
/// into its place). Every record of a key reads them with its entry, and a key mostly has one:
/// that one is kept inline, more go to the heap. 16 bytes, where a `SmallVec` of one takes 24
/// (a `Vec` 24 and an allocation): with ten million keys the size of an entry decides how many
/// cache lines each record waits for. Stored as a `Vec` of them would be.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeyTimers(Repr);

/// Invariant: `Many` holds at least two timers, so each list has one representation.
#[derive(Clone, Default, PartialEq, Eq)]
enum Repr {
    #[default]
    None,
    One(KeyTimer),
    Many(ThinVec<KeyTimer>),
}

impl KeyTimers {
    /// The timers, as a slice.
    pub fn as_slice(&self) -> &[KeyTimer] {
        match &self.0 {
            Repr::None => &[],
            Repr::One(timer) => std::slice::from_ref(timer),
            Repr::Many(timers) => timers,
        }
    }

    /// Adds `timer` at the end.
    pub fn push(&mut self, timer: KeyTimer) {
        self.0 = match std::mem::take(&mut self.0) {
            Repr::None => Repr::One(timer),
            Repr::One(first) => Repr::Many(thin_vec::thin_vec![first, timer]),
            Repr::Many(mut timers) => {
                timers.push(timer);
                Repr::Many(timers)
            }
        };
    }

    /// Removes `timer` if it is pending, moving the last timer into its place; says whether it
    /// was.
    pub fn remove(&mut self, timer: KeyTimer) -> bool {
        let Some(i) = self.iter().position(|t| *t == timer) else {
            return false;
        };
        match &mut self.0 {
            Repr::Many(timers) => {
                timers.swap_remove(i);
                self.settle();
            }
            _ => self.0 = Repr::None,
        }
        true
    }

    /// Keeps only the timers `keep` says yes to, in their order.
    pub fn retain(&mut self, mut keep: impl FnMut(&KeyTimer) -> bool) {
        match &mut self.0 {
            Repr::None => {}
            Repr::One(timer) if keep(timer) => {}
            Repr::One(_) => self.0 = Repr::None,
            Repr::Many(timers) => timers.retain(|t| keep(t)),
        }
        self.settle();
    }

    /// Restores the invariant of [`Repr`] after a removal: fewer than two are not `Many`. (A
    /// `One` that lost its timer is `None` already.)
    fn settle(&mut self) {
        if let Repr::Many(timers) = &self.0 {
            self.0 = match timers.as_slice() {
                [] => Repr::None,
                [timer] => Repr::One(*timer),
                _ => return,
            };
        }
    }
}

impl std::ops::Deref for KeyTimers {
    type Target = [KeyTimer];

    fn deref(&self) -> &[KeyTimer] {
        self.as_slice()
    }
}

impl<'a> IntoIterator for &'a KeyTimers {
    type Item = &'a KeyTimer;
    type IntoIter = std::slice::Iter<'a, KeyTimer>;

    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl FromIterator<KeyTimer> for KeyTimers {
    fn from_iter<I: IntoIterator<Item = KeyTimer>>(timers: I) -> Self {
        let mut all = KeyTimers::default();
        timers.into_iter().for_each(|timer| all.push(timer));
        all
    }
}

impl fmt::Debug for KeyTimers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for KeyTimers {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.as_slice())
    }
}

impl<'de> Deserialize<'de> for KeyTimers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Reads the sequence into the timers without a `Vec` between (a restore reads one
        /// list a key).
        struct Timers;
        impl<'de> Visitor<'de> for Timers {
            type Value = KeyTimers;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of timers")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyTimers, A::Error> {
                let mut timers = KeyTimers::default();
                while let Some(timer) = seq.next_element()? {
                    timers.push(timer);
                }
                Ok(timers)
            }
        }
        deserializer.deserialize_seq(Timers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DOMAINS: [TimeDomain; 3] = [
        TimeDomain::EventTime,
        TimeDomain::ProcessingTime,
        TimeDomain::Model,
    ];

    #[test]
    fn it_takes_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<KeyTimers>(), 16);
    }

    #[test]
    fn timers_are_stored_as_a_vec_of_them_was() {
        for timers in [
            vec![],
            vec![(TimeDomain::EventTime, 5)],
            vec![(TimeDomain::Model, 1); 3],
        ] {
            let kept: KeyTimers = timers.iter().copied().collect();
            let bytes = bincode::serialize(&kept).unwrap();
            assert_eq!(bytes, bincode::serialize(&timers).unwrap());
            assert_eq!(bincode::deserialize::<KeyTimers>(&bytes).unwrap(), kept);
        }
    }

    proptest! {
        /// Pushes, removals and retains at random, against a `Vec` doing the same: the same
        /// timers in the same order, and one representation for each list (equal lists are
        /// equal however they were reached).
        #[test]
        fn it_keeps_what_a_vec_would(
            ops in prop::collection::vec((0u8..3, 0usize..3, 0i64..4), 0..40)
        ) {
            let (mut kept, mut model) = (KeyTimers::default(), Vec::new());
            for (op, domain, time) in ops {
                let timer = (DOMAINS[domain], time);
                match op {
                    0 => {
                        kept.push(timer);
                        model.push(timer);
                    }
                    1 => {
                        let i = model.iter().position(|t| *t == timer);
                        i.map(|i| model.swap_remove(i));
                        prop_assert_eq!(kept.remove(timer), i.is_some());
                    }
                    _ => {
                        kept.retain(|t| t.1 != time);
                        model.retain(|t| t.1 != time);
                    }
                }
                prop_assert_eq!(kept.as_slice(), model.as_slice());
                prop_assert_eq!(&kept, &model.iter().copied().collect::<KeyTimers>());
            }
        }
    }
}
