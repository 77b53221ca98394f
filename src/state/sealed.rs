//! Checksummed values: every value spate stores in sled is *sealed* behind a CRC-32 of its key
//! and payload, and each partition's checkpoint carries a [`Digest`] of its whole state, so
//! damage on disk is found when the state is read back instead of being taken for state.
//!
//! sled checks its own log, but what it recovers from a damaged file is not always what was
//! written: a value with bytes changed, or one bucket reverted to an older version while the
//! checkpoint metadata is newer. The seal catches the first, the digest the second.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Bytes of the checksum in front of a sealed value.
pub(crate) const SEAL: usize = 4;

fn crc(key: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(key);
    hasher.update(payload);
    hasher.finalize()
}

/// `value` encoded with bincode behind the CRC-32 of `key` and that encoding (little-endian).
pub(crate) fn seal<T: Serialize + ?Sized>(key: &[u8], value: &T) -> Vec<u8> {
    let mut out = vec![0; SEAL];
    bincode::serialize_into(&mut out, value).expect("bincode encodes in-memory values");
    let sum = crc(key, &out[SEAL..]);
    out[..SEAL].copy_from_slice(&sum.to_le_bytes());
    out
}

/// `payload` (already encoded) behind the CRC-32 of `key` and it (how the exchange inbox
/// in sled was written; tests write one to check it is still read).
#[cfg(test)]
pub(crate) fn seal_raw(key: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SEAL + payload.len());
    out.extend_from_slice(&crc(key, payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The seal (checksum bytes) in front of a sealed value, which [`Digest`] counts.
pub(crate) fn seal_of(sealed: &[u8]) -> [u8; SEAL] {
    let mut bytes = [0; SEAL];
    bytes.copy_from_slice(&sealed[..SEAL]);
    bytes
}

/// The checksum a sealed value carries.
fn checksum(sealed: &[u8]) -> u32 {
    u32::from_le_bytes(seal_of(sealed))
}

/// The payload of a value sealed under `key`, or why it cannot be trusted.
pub(crate) fn verify<'a>(key: &[u8], sealed: &'a [u8]) -> Result<&'a [u8], String> {
    if sealed.len() < SEAL {
        return Err(format!(
            "a stored value of {} bytes is too short",
            sealed.len()
        ));
    }
    if checksum(sealed) != crc(key, &sealed[SEAL..]) {
        return Err("a stored value fails its checksum".into());
    }
    Ok(&sealed[SEAL..])
}

/// Decodes a value sealed under `key`, or says why it cannot be trusted.
pub(crate) fn unseal<T: DeserializeOwned>(key: &[u8], sealed: &[u8]) -> Result<T, String> {
    bincode::deserialize(verify(key, sealed)?).map_err(|e| format!("a stored value: {e}"))
}

/// An order-independent digest of a partition's stored entries (each a key and its sealed
/// value): how many there are and the wrapping sum of their mixed checksums. It is updated
/// entry by entry as checkpoints change the state, and compared with a full scan at restore: an
/// entry that went missing, appeared, or reverted to an older version fails it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    entries: u64,
    sum: u64,
}

/// Spreads a 32-bit checksum over 64 bits (splitmix64's finalizer), so sums of different sets
/// rarely meet.
fn mix(checksum: u32) -> u64 {
    let mut z = u64::from(checksum).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Digest {
    /// Counts in an entry whose value is `sealed` (only its first [`SEAL`] bytes are read).
    pub(crate) fn add(&mut self, sealed: &[u8]) {
        self.entries += 1;
        self.sum = self.sum.wrapping_add(mix(checksum(sealed)));
    }

    /// Takes out an entry whose value was `sealed`.
    pub(crate) fn remove(&mut self, sealed: &[u8]) {
        self.entries -= 1;
        self.sum = self.sum.wrapping_sub(mix(checksum(sealed)));
    }

    /// How many entries it covers.
    pub(crate) fn entries(&self) -> u64 {
        self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_byte_or_another_key_fails_the_seal() {
        let sealed = seal(b"k", &(7u32, "state"));
        assert_eq!(unseal::<(u32, String)>(b"k", &sealed).unwrap().1, "state");
        assert!(unseal::<(u32, String)>(b"j", &sealed).is_err());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x10;
            let err = unseal::<(u32, String)>(b"k", &bad).unwrap_err();
            assert!(err.contains("checksum"), "{err}");
        }
    }

    #[test]
    fn the_digest_tells_an_old_version_from_the_new_one() {
        let (old, new) = (seal(b"b1", &1u64), seal(b"b1", &2u64));
        let other = seal(b"b2", &1u64);
        let mut written = Digest::default();
        written.add(&old);
        written.add(&other);
        written.remove(&old);
        written.add(&new);
        let scan = |values: &[&Vec<u8>]| {
            let mut d = Digest::default();
            values.iter().for_each(|v| d.add(v));
            d
        };
        assert_eq!(scan(&[&other, &new]), written);
        assert_ne!(scan(&[&other, &old]), written);
        assert_ne!(scan(&[&new]), written);
    }
}
