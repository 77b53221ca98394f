//! [`Id`]: an identifier as real feeds write it, a JSON string (`"u00033"`) or a JSON integer
//! (`33`), kept exactly as it came.
//!
//! Feeds disagree on how ids look: one payment system writes `"user_id":"u00033"`, another
//! `"user_id":33`. An `Id` takes either. The two are different keys (`"33"` is not `33`), and an
//! `Id` writes itself back the way it came, so a result's `"key"` is the input's id.
//!
//! ```
//! use spate::key::{Id, Key};
//!
//! let s: Id = serde_json::from_str("\"u00033\"").unwrap();
//! let n: Id = serde_json::from_str("33").unwrap();
//! assert_ne!(s, n);
//! assert_eq!(serde_json::to_string(&s).unwrap(), "\"u00033\"");
//! assert_eq!(serde_json::to_string(&n).unwrap(), "33");
//! let mut record_key = Vec::new();
//! s.write_record_key(&mut record_key); // a Kafka record key: the string's bytes
//! assert_eq!(record_key, b"u00033");
//! ```
//!
//! Strings of up to 24 bytes are stored inline ([`CompactString`]), so decoding an id does not
//! allocate. In sled and the changelog (bincode) an `Id` is stored tagged, since bincode cannot
//! tell a string from an integer by looking.

use super::{hash_bytes, mix64, Key};
use compact_str::CompactString;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// An identifier that came as a JSON string or a JSON integer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Id {
    /// An id written as a JSON integer.
    Int(i64),
    /// An id written as a JSON string.
    Str(CompactString),
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Int(n) => write!(f, "{n}"),
            Id::Str(s) => f.write_str(s),
        }
    }
}

impl From<i64> for Id {
    fn from(n: i64) -> Self {
        Id::Int(n)
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Id::Str(s.into())
    }
}

impl From<String> for Id {
    fn from(s: String) -> Self {
        Id::Str(s.into())
    }
}

impl Key for Id {
    #[inline]
    fn partition_hash(&self) -> u64 {
        match self {
            // The same hash as an integer key, so integer ids keep their partitions.
            Id::Int(n) => mix64(*n as u64),
            Id::Str(s) => hash_bytes(s.as_bytes()),
        }
    }

    fn write_record_key(&self, out: &mut Vec<u8>) {
        match self {
            Id::Int(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
            Id::Str(s) => out.extend_from_slice(s.as_bytes()),
        }
    }
}

/// How an `Id` is stored where the format is not self-describing (bincode).
#[derive(Serialize, Deserialize)]
enum Stored<'a> {
    Int(i64),
    Str(#[serde(borrow)] std::borrow::Cow<'a, str>),
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self, s.is_human_readable()) {
            (Id::Int(n), true) => s.serialize_i64(*n),
            (Id::Str(text), true) => s.serialize_str(text),
            (Id::Int(n), false) => Stored::Int(*n).serialize(s),
            (Id::Str(text), false) => Stored::Str(text.as_str().into()).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            d.deserialize_any(IdVisitor)
        } else {
            Ok(match Stored::deserialize(d)? {
                Stored::Int(n) => Id::Int(n),
                Stored::Str(text) => Id::Str(CompactString::from(text)),
            })
        }
    }
}

/// Reads an id from a JSON string or integer, and explains anything else.
struct IdVisitor;

impl<'de> Visitor<'de> for IdVisitor {
    type Value = Id;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an id: a string or an integer")
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Id, E> {
        Ok(Id::Int(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Id, E> {
        i64::try_from(n).map(Id::Int).map_err(|_| {
            E::custom(format!(
                "id {n} is larger than 9223372036854775807; write it as a string"
            ))
        })
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Id, E> {
        Err(E::custom(format!(
            "id {n} is not an integer; ids are strings or integers"
        )))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Id, E> {
        Ok(Id::Str(CompactString::from(s)))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Id, E> {
        Ok(Id::Str(CompactString::from(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_integers_are_different_keys_written_as_they_came() {
        let s: Id = serde_json::from_str("\"33\"").unwrap();
        let n: Id = serde_json::from_str("33").unwrap();
        assert_eq!(s, Id::from("33"));
        assert_eq!(n, Id::Int(33));
        assert_ne!(s, n);
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"33\"");
        assert_eq!(serde_json::to_string(&n).unwrap(), "33");
        assert_eq!(
            serde_json::to_string(&Id::from("a\"b")).unwrap(),
            "\"a\\\"b\""
        );
    }

    #[test]
    fn other_json_is_refused_with_a_reason() {
        let err = |text| serde_json::from_str::<Id>(text).unwrap_err().to_string();
        assert!(err("4.5").contains("not an integer"), "{}", err("4.5"));
        assert!(err("true").contains("a string or an integer"));
        assert!(err("18446744073709551615").contains("write it as a string"));
        assert_eq!(serde_json::from_str::<Id>("-5").unwrap(), Id::Int(-5));
    }

    #[test]
    fn bincode_keeps_the_kind() {
        for id in [
            Id::Int(7),
            Id::from("7"),
            Id::from("a long id that does not fit inline at all"),
        ] {
            let bytes = bincode::serialize(&id).unwrap();
            assert_eq!(bincode::deserialize::<Id>(&bytes).unwrap(), id);
        }
    }

    #[test]
    fn integer_ids_hash_like_integer_keys() {
        assert_eq!(Id::Int(42).partition_hash(), 42u64.partition_hash());
        assert_eq!(
            Id::from("u1").partition_hash(),
            "u1".to_string().partition_hash()
        );
        let key = |id: Id| {
            let mut out = Vec::new();
            id.write_record_key(&mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(key(Id::Int(-3)), "-3");
        assert_eq!(key(Id::from("u00033")), "u00033");
    }
}
