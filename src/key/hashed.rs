//! [`HashedKey`]: a key with its stable hash, computed once for every structure that files it.

use super::Key;

/// A key and its stable hash ([`Key::partition_hash`]).
///
/// A partition files a record's key in several places (its bucket of keyed state, the
/// bucket's hash table, the timer and expiry schedules), each by the stable hash, and a string
/// key's stable hash is a loop over its bytes: a record's path through a partition computes it
/// once and hands this around. Anything taking `impl Into<HashedKey>` also takes a plain `&K`,
/// and hashes it then.
///
/// ```
/// use spate::key::{HashedKey, Id, Key};
///
/// let id = Id::from("u00033");
/// let hashed = HashedKey::new(&id);
/// assert_eq!(hashed.stable, id.partition_hash());
/// ```
#[derive(Debug)]
pub struct HashedKey<'k, K> {
    /// The key.
    pub key: &'k K,
    /// `key.partition_hash()`.
    pub stable: u64,
}

impl<K> Clone for HashedKey<'_, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for HashedKey<'_, K> {}

impl<'k, K: Key> HashedKey<'k, K> {
    /// `key` with its stable hash.
    #[inline]
    pub fn new(key: &'k K) -> Self {
        HashedKey {
            key,
            stable: key.partition_hash(),
        }
    }
}

impl<'k, K: Key> From<&'k K> for HashedKey<'k, K> {
    #[inline]
    fn from(key: &'k K) -> Self {
        HashedKey::new(key)
    }
}
