//! Record keys: what `key_by` returns, the stable hash that routes a key to its partition (and
//! [`HashedKey`], a key with it), and [`Id`], the key of records whose ids come as JSON
//! strings or integers.

mod hashed;
mod id;

pub use hashed::HashedKey;
pub use id::Id;

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::hash::Hash;

/// A key that records are grouped by.
///
/// `partition_hash` must be stable across processes and releases: it decides which key partition
/// (and so which sled tree) owns the key's state, so a restarted job finds its state again.
/// Rust's `Hash` makes no such promise, hence this separate method.
pub trait Key:
    Clone + Eq + Hash + Ord + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// A stable 64-bit hash of the key.
    fn partition_hash(&self) -> u64;

    /// Appends the key as the key of a Kafka record: integers in decimal and strings as their
    /// bytes (as `spate-loadgen` and the Java clients' string serializer key records), anything
    /// else as JSON. Results are keyed this way, like the input that made them.
    fn write_record_key(&self, out: &mut Vec<u8>) {
        serde_json::to_writer(out, self).expect("keys serialize to JSON");
    }
}

/// SplitMix64's finaliser: a cheap, well-mixed, stable hash of an integer.
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// FNV-1a over bytes, finished with [`mix64`]: stable for strings and byte keys.
#[inline]
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    mix64(h)
}

macro_rules! int_key {
    ($($t:ty),*) => {$(
        impl Key for $t {
            #[inline]
            fn partition_hash(&self) -> u64 {
                mix64(*self as u64)
            }

            fn write_record_key(&self, out: &mut Vec<u8>) {
                use std::io::Write;
                write!(out, "{self}").expect("writing to a Vec cannot fail");
            }
        }
    )*};
}
int_key!(u8, u16, u32, u64, i8, i16, i32, i64, usize);

impl Key for String {
    #[inline]
    fn partition_hash(&self) -> u64 {
        hash_bytes(self.as_bytes())
    }

    fn write_record_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl<A: Key, B: Key> Key for (A, B) {
    #[inline]
    fn partition_hash(&self) -> u64 {
        mix64(self.0.partition_hash() ^ self.1.partition_hash().rotate_left(17))
    }
}

/// The key partition (0..partitions) that owns `key`.
#[inline]
pub fn partition_of<K: Key>(key: &K, partitions: u32) -> u32 {
    // Multiply-shift maps the hash onto 0..partitions without a division.
    ((u128::from(key.partition_hash()) * u128::from(partitions)) >> 64) as u32
}

/// The Kafka topic partition a producer keying records by `key` writes it to: the Java
/// clients' default partitioner (murmur2 of the record key, as [`Key::write_record_key`] writes
/// it), which `spate-loadgen` and librdkafka's `murmur2_random` use too. Records of an input
/// that is not a topic are routed this way when the job's other input is one, so both inputs'
/// records of a key meet in one key partition.
pub fn kafka_partition_of<K: Key>(key: &K, partitions: u32) -> u32 {
    let mut bytes = Vec::with_capacity(16);
    key.write_record_key(&mut bytes);
    (murmur2(&bytes) & 0x7fff_ffff) % partitions.max(1)
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`).
fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, &b) in rest.iter().enumerate().rev() {
            h ^= u32::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

#[cfg(test)]
mod tests {
    #[test]
    fn murmur2_matches_the_java_clients() {
        // Kafka's UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (bytes, want) in cases {
            assert_eq!(super::murmur2(bytes) as i32, want, "{bytes:?}");
        }
    }

    use super::*;

    #[test]
    fn partition_is_stable_and_in_range() {
        // Fixed expectations: changing the hash would strand existing state directories.
        assert_eq!(partition_of(&42u64, 4), partition_of(&42u64, 4));
        assert_eq!(mix64(0), 0xE220_A839_7B1D_CDAF);
        for k in 0..10_000u64 {
            assert!(partition_of(&k, 7) < 7);
        }
        let mut counts = [0u32; 4];
        for k in 0..100_000u64 {
            counts[partition_of(&k, 4) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 23_000), "skewed: {counts:?}");
        assert_eq!(
            partition_of(&"user-1".to_string(), 4),
            partition_of(&"user-1".to_string(), 4)
        );
    }

    #[test]
    fn record_keys_are_decimal_text_raw_strings_or_json() {
        let key = |k: &dyn Fn(&mut Vec<u8>)| {
            let mut out = Vec::new();
            k(&mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(key(&|o| 42u64.write_record_key(o)), "42");
        assert_eq!(key(&|o| (-7i32).write_record_key(o)), "-7");
        assert_eq!(key(&|o| "user-1".to_string().write_record_key(o)), "user-1");
        assert_eq!(
            key(&|o| (1u32, "a".to_string()).write_record_key(o)),
            "[1,\"a\"]"
        );
    }
}
