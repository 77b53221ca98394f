//! [`Bucket`]: one hash bucket of a partition's keyed state, a hash table whose lookups can be
//! started before they are needed.
//!
//! With a state larger than the cache, a lookup waits on memory twice: for the table's control
//! bytes (small, mostly cached) and for the entry it compares the key with (a miss). Looking a
//! few keys up ahead ([`KeyedState::warm`](super::KeyedState::warm)) only overlaps as many of
//! those misses as the CPU keeps in flight. [`Bucket::prefetch`] reads only the control bytes
//! and asks for the entry they point to without waiting for it, so a pass over the next keys
//! puts all their misses in flight at once.
//!
//! A bucket files a key by its stable hash ([`Key::partition_hash`]), which the caller has
//! computed to find the bucket and passes to every lookup, instead of hashing the key a second
//! way: a string id's stable hash is a loop over its bytes, and a record's key was hashed six
//! times on its way through a partition.
//!
//! The control bytes are a miss of their own once the tables outgrow the cache (a byte and
//! more a key: 11 to 23 MB for ten million), and reading them to find the entry makes the two
//! misses come one after the other. [`Bucket::prefetch_control`] asks for a key's control bytes from
//! arithmetic alone, so a look-ahead can ask for the next keys' control bytes while it asks for
//! the current keys' entries: each wait is then for one miss, not two in a row.
//!
//! A key the table does not hold yet has no entry to ask for, but it will have one at once:
//! its first record writes it whole, and a write waits on lines not in the cache as a read
//! does. [`Bucket::prefetch`] asks for the slot hashbrown will put it in instead.
//!
//! It serializes as a map of key to entry, byte for byte as the `HashMap` it replaced.

use super::keyed::Entry;
use super::prefetch::{prefetch, prefetch_address, prefetch_range};
use crate::Key;
use hashbrown::HashTable;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::fmt;
use std::marker::PhantomData;

/// The keys of one hash bucket and their entries.
pub struct Bucket<K, S> {
    table: HashTable<(K, Entry<S>)>,
    /// The address of the table's control bytes as last seen, or 0: a hint for
    /// [`Bucket::prefetch_control`], never dereferenced (see [`control_address`]).
    control: usize,
}

/// The address of a table's control bytes, from element `index` at address `element`.
/// hashbrown lays a table out as `[T_n, ..., T_1, T_0][control bytes]`: element `i` ends
/// `i` elements before the control bytes begin. hashbrown does not promise that layout, so
/// the address is only ever prefetched (a hint that cannot fault): were the layout to change,
/// prefetches would ask for the wrong line and nothing else would differ. The unit test
/// `the_control_address_follows_every_element` checks the layout on the hashbrown in use.
fn control_address<T>(element: &T, index: usize) -> usize {
    element as *const T as usize + (index + 1) * std::mem::size_of::<T>()
}

/// The hash a bucket files a key under, from the key's stable hash ([`Key::partition_hash`],
/// which every lookup has already computed to find the bucket): the stable hash's low bits
/// choose the bucket and its high bits the partition, so they are the same for all of a
/// bucket's keys; rotated and multiplied, every bit of the table's hash depends on the
/// others' (the table places a key by the low bits and tells keys apart by the top seven).
#[inline]
fn table_hash(stable: u64) -> u64 {
    stable.rotate_left(32).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The control bytes hashbrown reads at once, as it chooses its group: 16 with SSE2, a machine
/// word elsewhere (its NEON and generic groups). Its probe sequence steps by groups, so
/// [`Bucket::vacancy`] must use the same width.
const GROUP_WIDTH: usize = if cfg!(all(
    target_feature = "sse2",
    any(target_arch = "x86", target_arch = "x86_64"),
    not(miri)
)) {
    16
} else {
    std::mem::size_of::<usize>()
};

/// The table hash of `key`, for moving it when the table grows.
fn rehash<K: Key, S>((key, _): &(K, Entry<S>)) -> u64 {
    table_hash(key.partition_hash())
}

impl<K, S> Default for Bucket<K, S> {
    fn default() -> Self {
        Bucket {
            table: HashTable::new(),
            control: 0,
        }
    }
}

impl<K, S> Bucket<K, S> {
    /// Keys in the bucket.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the bucket holds no key.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The keys and their entries, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &Entry<S>)> {
        self.table.iter().map(|(k, e)| (k, e))
    }

    /// The keys and their entries, to change, in no order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut Entry<S>)> {
        self.table.iter_mut().map(|(k, e)| (&*k, e))
    }

    /// The entries, in no order.
    pub fn values(&self) -> impl Iterator<Item = &Entry<S>> {
        self.table.iter().map(|(_, e)| e)
    }
}

/// The lookups take the key's stable hash ([`Key::partition_hash`]) as `stable`: the caller
/// computed it to find the bucket, and a string's is a loop over its bytes.
impl<K: Key, S> Bucket<K, S> {
    /// The bytes of one slot of the table: a key and its entry.
    const SLOT: usize = std::mem::size_of::<(K, Entry<S>)>();

    /// Asks the CPU for the entry a key of stable hash `stable` most likely has, reading only
    /// the table's control bytes: nothing waits for the entry itself (see the module doc). A
    /// key the table does not hold gets the slot it will be inserted in asked for instead.
    #[inline]
    pub fn prefetch(&self, stable: u64) {
        let hash = table_hash(stable);
        match self.table.iter_hash_buckets(hash).next() {
            // SAFETY: `iter_hash_buckets` yields indexes of full buckets only.
            Some(index) => prefetch(unsafe { self.table.get_bucket_unchecked(index) }),
            None => self.prefetch_vacancy(hash),
        }
    }

    /// Asks for the slot a new key of table hash `hash` will be written to ([`Bucket::vacancy`]).
    /// A new key's entry is written whole, and a write to lines not in the cache waits for them
    /// as a read does: at ten million keys a tenth of the records are a key's first, and the
    /// writes of their entries were 5% of a run.
    fn prefetch_vacancy(&self, hash: u64) {
        if let Some(slot) = self.vacancy(hash) {
            prefetch_range(slot, Self::SLOT);
        }
    }

    /// The address hashbrown will write a new key of table hash `hash` to, unless the table
    /// grows first: the first slot not full along the key's probe sequence (its first group
    /// of slots, then groups further on, as hashbrown probes). Whether a slot is full is read
    /// through the table, from the control bytes [`Bucket::prefetch_control`] asked for a
    /// round earlier; the address is derived as [`control_address`] is, so it is only ever
    /// prefetched.
    fn vacancy(&self, hash: u64) -> Option<usize> {
        if self.control == 0 {
            return None;
        }
        let mask = self.table.num_buckets() - 1;
        let (mut group, mut stride) = (hash as usize & mask, 0);
        let index = loop {
            let mut slots = (group..group + GROUP_WIDTH).map(|i| i & mask);
            if let Some(i) = slots.find(|&i| self.table.get_bucket(i).is_none()) {
                break i;
            }
            stride += GROUP_WIDTH;
            if stride > mask {
                return None; // every group seen: a full table grows before it inserts
            }
            group = (group + stride) & mask;
        };
        Some(self.control.wrapping_sub((index + 1) * Self::SLOT))
    }

    /// Asks the CPU for the control bytes a key of stable hash `stable` is looked up by,
    /// without reading anything (see the module doc): its first probe group, which holds the
    /// key unless the table is crowded.
    #[inline]
    pub fn prefetch_control(&self, stable: u64) {
        if self.control != 0 {
            let first = table_hash(stable) as usize & (self.table.num_buckets() - 1);
            prefetch_address(self.control.wrapping_add(first));
            prefetch_address(self.control.wrapping_add(first + GROUP_WIDTH - 1));
        }
    }

    /// The entry of `key`.
    #[inline]
    pub fn get(&self, key: &K, stable: u64) -> Option<&Entry<S>> {
        let found = self.table.find(table_hash(stable), |(k, _)| k == key);
        found.map(|(_, entry)| entry)
    }

    /// The entry of `key`, to change.
    #[inline]
    pub fn get_mut(&mut self, key: &K, stable: u64) -> Option<&mut Entry<S>> {
        let found = self.table.find_mut(table_hash(stable), |(k, _)| k == key);
        found.map(|(_, entry)| entry)
    }

    /// Whether the bucket holds `key`.
    pub fn contains_key(&self, key: &K, stable: u64) -> bool {
        self.get(key, stable).is_some()
    }

    /// Removes `key`, returning its entry.
    pub fn remove(&mut self, key: &K, stable: u64) -> Option<Entry<S>> {
        let found = (self.table)
            .find_entry(table_hash(stable), |(k, _)| k == key)
            .ok()?;
        Some(found.remove().0 .1)
    }

    /// Files `entry` under `key`, returning the entry it replaces.
    pub fn insert(&mut self, key: K, stable: u64, entry: Entry<S>) -> Option<Entry<S>> {
        match (self.table).entry(table_hash(stable), |(k, _)| *k == key, rehash) {
            hashbrown::hash_table::Entry::Occupied(mut found) => {
                Some(std::mem::replace(&mut found.get_mut().1, entry))
            }
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                let inserted = vacant.insert((key, entry));
                self.control = control_address(inserted.get(), inserted.bucket_index());
                None
            }
        }
    }

    /// The entry of `key`, made by `new` when the bucket holds none; says whether it was.
    #[inline]
    pub fn get_or_insert_with(
        &mut self,
        key: &K,
        stable: u64,
        new: impl FnOnce() -> Entry<S>,
    ) -> (&mut Entry<S>, bool) {
        match (self.table).entry(table_hash(stable), |(k, _)| k == key, rehash) {
            hashbrown::hash_table::Entry::Occupied(found) => (&mut found.into_mut().1, false),
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                let inserted = vacant.insert((key.clone(), new()));
                self.control = control_address(inserted.get(), inserted.bucket_index());
                (&mut inserted.into_mut().1, true)
            }
        }
    }
}

impl<K: Clone, S: Clone> Clone for Bucket<K, S> {
    fn clone(&self) -> Self {
        let table = self.table.clone();
        let control = (table.iter_buckets().next())
            .and_then(|i| Some(control_address(table.get_bucket(i)?, i)))
            .unwrap_or(0);
        Bucket { table, control }
    }
}

impl<K: fmt::Debug, S: fmt::Debug> fmt::Debug for Bucket<K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.table.iter().map(|(k, e)| (k, e)))
            .finish()
    }
}

impl<K, S> IntoIterator for Bucket<K, S> {
    type Item = (K, Entry<S>);
    type IntoIter = hashbrown::hash_table::IntoIter<(K, Entry<S>)>;

    fn into_iter(self) -> Self::IntoIter {
        self.table.into_iter()
    }
}

/// A key and its entry, borrowed from the table's pair.
type Pair<'a, K, S> = (&'a K, &'a Entry<S>);

impl<'a, K, S> IntoIterator for &'a Bucket<K, S> {
    type Item = Pair<'a, K, S>;
    type IntoIter = std::iter::Map<
        hashbrown::hash_table::Iter<'a, (K, Entry<S>)>,
        fn(&'a (K, Entry<S>)) -> Pair<'a, K, S>,
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.table.iter().map(|(k, e)| (k, e))
    }
}

impl<K: Serialize, S: Serialize> Serialize for Bucket<K, S> {
    fn serialize<Ser: Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        let mut map = serializer.serialize_map(Some(self.table.len()))?;
        for (key, entry) in &self.table {
            map.serialize_entry(key, entry)?;
        }
        map.end()
    }
}

impl<'de, K, S> Deserialize<'de> for Bucket<K, S>
where
    K: Key,
    S: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(BucketVisitor(PhantomData))
    }
}

/// Reads a [`Bucket`] from a map.
struct BucketVisitor<K, S>(PhantomData<fn() -> (K, S)>);

impl<'de, K, S> Visitor<'de> for BucketVisitor<K, S>
where
    K: Key,
    S: Deserialize<'de>,
{
    type Value = Bucket<K, S>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of keys to their state")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut entries: M) -> Result<Self::Value, M::Error> {
        let mut table = HashTable::with_capacity(entries.size_hint().unwrap_or(0).min(1 << 16));
        let mut control = 0;
        while let Some((key, entry)) = entries.next_entry::<K, Entry<S>>()? {
            let stable = key.partition_hash();
            let inserted = table.insert_unique(table_hash(stable), (key, entry), rehash);
            control = control_address(inserted.get(), inserted.bucket_index());
        }
        Ok(Bucket { table, control })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_bucket_is_stored_byte_for_byte_as_the_map_it_replaced() {
        let mut bucket = Bucket::<u64, u32>::default();
        let mut map = HashMap::<u64, Entry<u32>>::new();
        for key in 0..1_000u64 {
            let entry = Entry {
                state: key as u32 * 3,
                touched: key as i64,
                ..Entry::default()
            };
            assert!(bucket
                .insert(key, key.partition_hash(), entry.clone())
                .is_none());
            map.insert(key, entry);
        }
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for (key, entry) in bucket.iter() {
            ours.push((*key, bincode::serialize(entry).unwrap()));
        }
        for (key, entry) in &map {
            theirs.push((*key, bincode::serialize(entry).unwrap()));
        }
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs);
        // A map written by the old type reads back, and the same again.
        let read: Bucket<u64, u32> =
            bincode::deserialize(&bincode::serialize(&map).unwrap()).unwrap();
        assert_eq!(read.len(), 1_000);
        assert_eq!(
            read.get(&7, 7u64.partition_hash()).map(|e| e.state),
            Some(21)
        );
        let again: HashMap<u64, Entry<u32>> =
            bincode::deserialize(&bincode::serialize(&read).unwrap()).unwrap();
        assert_eq!(again.len(), 1_000);
        assert_eq!(again[&999].touched, 999);
        // A key filed again replaces its entry, keeping one place.
        let replaced = bucket.insert(7, 7u64.partition_hash(), Entry::default());
        assert_eq!((replaced.map(|e| e.state), bucket.len()), (Some(21), 1_000));
    }

    #[test]
    fn the_keys_of_one_bucket_and_partition_spread_over_the_table() {
        // Their stable hashes share the low bits (the bucket) and the top ones (the partition).
        let (bucket_bits, partitions) = (8, 8);
        let same: Vec<u64> = (0..u64::MAX)
            .filter(|k| crate::key::partition_of(k, partitions) == 3)
            .map(|k| k.partition_hash())
            .filter(|h| h & 0xff == 0x2a)
            .take(4096)
            .collect();
        assert!(same.iter().all(|h| h & ((1 << bucket_bits) - 1) == 0x2a));
        let slots: std::collections::HashSet<u64> =
            same.iter().map(|h| table_hash(*h) & 4095).collect();
        let tags: std::collections::HashSet<u64> =
            same.iter().map(|h| table_hash(*h) >> 57).collect();
        // 4,096 keys thrown at random into 4,096 places fill about 2,590 of them.
        assert!(slots.len() > 2_400, "{} places", slots.len());
        assert_eq!(tags.len(), 128);
    }

    /// The control address every element gives, or `None` when they disagree.
    fn agreed_control<K, S>(bucket: &Bucket<K, S>) -> Option<usize> {
        let table = &bucket.table;
        let mut addresses = (table.iter_buckets())
            .map(|i| control_address(table.get_bucket(i).expect("a full bucket"), i));
        let first = addresses.next()?;
        addresses.all(|a| a == first).then_some(first)
    }

    #[test]
    fn the_control_address_follows_every_element() {
        let mut bucket = Bucket::<u64, u32>::default();
        assert_eq!(
            bucket.control, 0,
            "an empty table has no control bytes to ask for"
        );
        for key in 0..1_000u64 {
            let stable = key.partition_hash();
            if key % 2 == 0 {
                bucket.insert(key, stable, Entry::default());
            } else {
                bucket.get_or_insert_with(&key, stable, Entry::default);
            }
            // Every element, wherever the table grew to, ends as far before the control bytes
            // as its index says: the layout the hint relies on.
            assert_eq!(
                agreed_control(&bucket),
                Some(bucket.control),
                "after key {key}"
            );
        }
        let cloned = bucket.clone();
        assert_eq!(agreed_control(&cloned), Some(cloned.control));
        assert_ne!(cloned.control, bucket.control);
        let read: Bucket<u64, u32> =
            bincode::deserialize(&bincode::serialize(&bucket).unwrap()).unwrap();
        assert_eq!(agreed_control(&read), Some(read.control));
        for key in 0..1_000u64 {
            bucket.prefetch_control(key.partition_hash()); // a hint: nothing to see, no fault
        }
    }

    #[test]
    fn a_new_key_lands_in_the_slot_its_prefetch_asked_for() {
        let mut bucket = Bucket::<u64, [u64; 5]>::default();
        let (mut landed, mut grew) = (0, 0);
        for key in 0..5_000u64 {
            let stable = key.partition_hash();
            let (buckets, predicted) = (
                bucket.table.num_buckets(),
                bucket.vacancy(table_hash(stable)),
            );
            let (entry, new) = bucket.get_or_insert_with(&key, stable, Entry::default);
            assert!(new);
            let address = entry as *const Entry<[u64; 5]> as usize
                - std::mem::offset_of!((u64, Entry<[u64; 5]>), 1);
            if bucket.table.num_buckets() != buckets {
                grew += 1; // the table moved: no slot of the old one is right
                continue;
            }
            if buckets < GROUP_WIDTH {
                continue; // a table smaller than a group wraps its probe differently
            }
            assert_eq!(predicted, Some(address), "key {key}");
            landed += 1;
        }
        assert!(
            landed > 4_900 && grew > 5,
            "{landed} predicted, {grew} grew"
        );
    }
}
