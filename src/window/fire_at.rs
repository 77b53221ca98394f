//! [`FireAt`]: the time of a key's pending fire timer, if any, in the 8 bytes of a time.

use crate::time::Millis;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The time of a key's pending fire timer, or none. Kept in a key's entry, which every record
/// of the key reads: `Option<Millis>` takes 16 bytes, this takes 8 (with ten million keys an
/// entry's size decides how many cache lines a record waits for). No timer is at
/// [`Millis::MIN`] (a window ends after a record's time, a session's timer after its last
/// record), so that value stands for none. Serialized as `Option<Millis>` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FireAt(Millis);

impl FireAt {
    /// No timer pending.
    pub(crate) const NONE: FireAt = FireAt(Millis::MIN);

    /// The pending timer's time.
    pub(crate) fn get(self) -> Option<Millis> {
        (self != Self::NONE).then_some(self.0)
    }

    /// A timer is pending at `time` (never [`Millis::MIN`]).
    pub(crate) fn set(&mut self, time: Millis) {
        debug_assert_ne!(time, Millis::MIN, "no timer is at Millis::MIN");
        self.0 = time;
    }

    /// No timer is pending any more.
    pub(crate) fn clear(&mut self) {
        *self = Self::NONE;
    }
}

impl Default for FireAt {
    fn default() -> Self {
        Self::NONE
    }
}

impl Serialize for FireAt {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for FireAt {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Option::<Millis>::deserialize(deserializer)?.map_or(Self::NONE, FireAt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_stored_as_the_option_it_replaces() {
        for (fire, option) in [
            (FireAt::NONE, None),
            (FireAt(-5), Some(-5)),
            (FireAt(0), Some(0)),
        ] {
            let bytes = bincode::serialize(&fire).unwrap();
            assert_eq!(bytes, bincode::serialize(&option).unwrap());
            assert_eq!(bincode::deserialize::<FireAt>(&bytes).unwrap(), fire);
            assert_eq!(fire.get(), option);
        }
        assert_eq!(std::mem::size_of::<FireAt>(), 8);
    }
}
