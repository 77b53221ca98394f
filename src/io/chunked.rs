//! Writing a large buffer to a file in pieces the page cache can take quickly.
//!
//! The kernel sizes the page-cache folios a `write` allocates by the write's length: one
//! write of an epoch's 30 MB of results asks for large folios, which a machine whose free
//! memory is fragmented, or handed back to its hypervisor, finds slowly. On the 2-core VMs
//! spate is measured on, one write of 224 MB took 0.4–2.5 s, and the same bytes in writes of
//! 64 KiB 0.06–0.08 s (`fraud` at 10M events over 1M keys spent 1.5–2.8 s of system time
//! before, 0.7–0.9 s after). A write of 64 KiB costs as few system calls per byte as it
//! needs.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

/// The most written at once.
pub const CHUNK: usize = 64 * 1024;

/// Writes all of `bytes` to `file`, [`CHUNK`] at a time.
pub fn write_all(mut file: impl Write, bytes: &[u8]) -> io::Result<()> {
    bytes
        .chunks(CHUNK)
        .try_for_each(|chunk| file.write_all(chunk))
}

/// Writes all of `bytes` to `file` from `offset` on, [`CHUNK`] at a time.
pub fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    let mut at = offset;
    for chunk in bytes.chunks(CHUNK) {
        file.write_all_at(chunk, at)?;
        at += chunk.len() as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_buffer_larger_than_a_chunk_is_written_whole_and_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..CHUNK * 2 + 123).map(|i| (i % 251) as u8).collect();
        let file = File::create(&path).unwrap();
        write_all(&file, &bytes[..10]).unwrap();
        write_all_at(&file, &bytes[10..], 10).unwrap();
        let mut read = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut read).unwrap();
        assert!(
            read == bytes,
            "{} bytes read of {}",
            read.len(),
            bytes.len()
        );
    }
}
