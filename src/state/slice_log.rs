//! [`SliceLog`]: where a partition whose state may be larger than memory (`--state-memory`)
//! keeps its buckets: an append-only file per partition in the state directory, and an index
//! of where each bucket's newest version lies.
//!
//! sled cannot hold such a state: it keeps several times the bytes of a write batch in memory,
//! and thousands of bytes per small value, whatever its cache size (measured with sled 0.34.7
//! and spate's settings: 65,536 values of 250 bytes, one batch a round, took RSS from 338 to
//! 606 MB in three rounds; 524,288 such values, 4.4 GB after one). So the buckets
//! go to this log, and sled keeps only the partition's checkpoint metadata and the log's index
//! ([`LogIndex`], 16 bytes a bucket), written together in one batch as before.
//!
//! - A bucket is appended when it leaves memory changed, and at a checkpoint when it changed
//!   since it was last appended. Its old version becomes garbage.
//! - A checkpoint fsyncs the log, then writes its index to sled: the index of the last written
//!   checkpoint names only bytes that are on disk. What was appended after it (a bucket
//!   evicted, a checkpoint not written) is ignored by a restart and written over by nothing:
//!   appends go after it.
//! - Each version carries a CRC-32 of its bucket number and bytes in the index: a damaged or
//!   stale file is found when a bucket is read, never taken for state.
//! - When garbage outweighs live bytes, a checkpoint copies the live versions to a new file
//!   (the next generation) and the old one is deleted once that checkpoint is written.

use crate::checkpoint::Epoch;
use crate::io::chunked;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Where one version of a bucket lies in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    offset: u64,
    len: u32,
    crc: u32,
}

/// The log's index as a checkpoint stores it: the file generation and each bucket's place
/// (`None`: empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogIndex {
    /// The generation of the file the places are in.
    pub generation: u64,
    /// Each bucket's newest version.
    pub places: Vec<Option<Place>>,
}

/// Copy the live versions to a new file once the file is larger than this many times their
/// bytes (and at least [`COMPACT_FLOOR`]).
const COMPACT_RATIO: u64 = 2;
const COMPACT_FLOOR: u64 = 64 << 20;

/// A compaction whose checkpoint is not written yet: the epoch, and the file it replaced.
struct Retiring {
    epoch: Epoch,
    generation: u64,
}

/// One partition's bucket log (see the module doc).
pub struct SliceLog {
    dir: PathBuf,
    partition: u32,
    generation: u64,
    file: File,
    /// Bytes in the file.
    len: u64,
    /// Bytes of the versions `places` names.
    live: u64,
    places: Vec<Option<Place>>,
    retiring: Option<Retiring>,
    /// Whether [`SliceLog::sync`] reaches the disk (not for a temporary state, which is never
    /// fsynced).
    durable: bool,
}

fn crc(bucket: usize, bytes: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&(bucket as u32).to_le_bytes());
    hasher.update(bytes);
    hasher.finalize()
}

impl SliceLog {
    /// The log of `partition` in `dir`, as `index` (the last written checkpoint's; `None`: a
    /// new partition) left it, for `buckets` buckets. Files of other generations are deleted:
    /// no checkpoint names them.
    pub fn open(
        dir: &Path,
        partition: u32,
        index: Option<LogIndex>,
        buckets: usize,
    ) -> Result<Self> {
        let dir = dir.join("buckets");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io("cannot create the bucket log directory", &dir, e))?;
        let index = index.unwrap_or(LogIndex {
            generation: 0,
            places: vec![None; buckets],
        });
        let mut log = SliceLog {
            file: open_file(&file_path(&dir, partition, index.generation))?,
            dir,
            partition,
            generation: index.generation,
            len: 0,
            live: (index.places.iter().flatten())
                .map(|p| u64::from(p.len))
                .sum(),
            places: index.places,
            retiring: None,
            durable: true,
        };
        log.len = log
            .file
            .metadata()
            .map_err(|e| log.io_error("cannot read", e))?
            .len();
        log.remove_other_generations()?;
        Ok(log)
    }

    fn path(&self) -> PathBuf {
        file_path(&self.dir, self.partition, self.generation)
    }

    fn io_error(&self, action: &'static str, e: std::io::Error) -> Error {
        Error::io(action, self.path(), e)
    }

    /// Deletes this partition's files of other generations.
    fn remove_other_generations(&self) -> Result<()> {
        let own = format!("p{:04}-", self.partition);
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| Error::io("cannot list", &self.dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&own) && entry.path() != self.path() {
                std::fs::remove_file(entry.path())
                    .map_err(|e| Error::io("cannot remove an old bucket log", entry.path(), e))?;
            }
        }
        Ok(())
    }

    /// Makes `bytes` bucket `bucket`'s newest version (empty: the bucket holds nothing). A
    /// bucket past the index's last is added to it.
    pub fn append(&mut self, bucket: usize, bytes: &[u8]) -> Result<()> {
        if bucket >= self.places.len() {
            self.places.resize(bucket + 1, None);
        }
        if let Some(old) = self.places[bucket].take() {
            self.live -= u64::from(old.len);
        }
        if bytes.is_empty() {
            return Ok(());
        }
        (chunked::write_all_at(&self.file, bytes, self.len))
            .map_err(|e| self.io_error("cannot write", e))?;
        self.places[bucket] = Some(Place {
            offset: self.len,
            len: bytes.len() as u32,
            crc: crc(bucket, bytes),
        });
        self.len += bytes.len() as u64;
        self.live += bytes.len() as u64;
        Ok(())
    }

    /// The buckets the index has a place for (holding something or not).
    pub fn buckets(&self) -> usize {
        self.places.len()
    }

    /// Bucket `bucket`'s newest version (empty when it holds nothing), checked.
    pub fn read(&self, bucket: usize) -> Result<Vec<u8>> {
        let Some(place) = self.places.get(bucket).copied().flatten() else {
            return Ok(Vec::new());
        };
        let mut bytes = vec![0; place.len as usize];
        (self.file.read_exact_at(&mut bytes, place.offset))
            .map_err(|e| self.io_error("cannot read", e))?;
        if crc(bucket, &bytes) != place.crc {
            return Err(Error::DamagedState {
                path: self.path(),
                place: format!("partition {} bucket {bucket}", self.partition),
                detail: "its bytes fail their checksum".into(),
            });
        }
        Ok(bytes)
    }

    /// The index a checkpoint of `epoch` stores, after copying the live versions to a new
    /// file when garbage outweighs them.
    pub fn checkpoint(&mut self, epoch: Epoch) -> Result<LogIndex> {
        let wasteful = self.len > COMPACT_FLOOR.max(COMPACT_RATIO * self.live);
        if wasteful && self.retiring.is_none() {
            self.compact(epoch)?;
        }
        Ok(LogIndex {
            generation: self.generation,
            places: self.places.clone(),
        })
    }

    /// Copies the live versions to the next generation's file.
    fn compact(&mut self, epoch: Epoch) -> Result<()> {
        let next = file_path(&self.dir, self.partition, self.generation + 1);
        let file = open_file(&next)?;
        file.set_len(0)
            .map_err(|e| Error::io("cannot empty", &next, e))?;
        let mut len = 0;
        for bucket in 0..self.places.len() {
            let Some(place) = self.places[bucket] else {
                continue;
            };
            let bytes = self.read(bucket)?;
            (chunked::write_all_at(&file, &bytes, len))
                .map_err(|e| Error::io("cannot write", &next, e))?;
            self.places[bucket] = Some(Place {
                offset: len,
                ..place
            });
            len += bytes.len() as u64;
        }
        self.retiring = Some(Retiring {
            epoch,
            generation: self.generation,
        });
        self.generation += 1;
        (self.file, self.len) = (file, len);
        Ok(())
    }

    /// The same log, whose [`sync`](Self::sync) does nothing unless `durable` (a temporary
    /// state's log is deleted at exit).
    pub fn durable(self, durable: bool) -> Self {
        SliceLog { durable, ..self }
    }

    /// Makes everything appended so far durable (before the checkpoint naming it is written).
    pub fn sync(&self) -> Result<()> {
        if !self.durable {
            return Ok(());
        }
        self.file
            .sync_data()
            .map_err(|e| self.io_error("cannot sync", e))
    }

    /// The checkpoint of `epoch` is written: a file it no longer names is deleted.
    pub fn written(&mut self, epoch: Epoch) -> Result<()> {
        match &self.retiring {
            Some(r) if r.epoch <= epoch => {
                let old = file_path(&self.dir, self.partition, r.generation);
                self.retiring = None;
                std::fs::remove_file(&old)
                    .map_err(|e| Error::io("cannot remove an old bucket log", old, e))
            }
            _ => Ok(()),
        }
    }

    /// Bytes of the buckets' newest versions.
    pub fn live_bytes(&self) -> u64 {
        self.live
    }
}

fn file_path(dir: &Path, partition: u32, generation: u64) -> PathBuf {
    dir.join(format!("p{partition:04}-{generation:06}.log"))
}

fn open_file(path: &Path) -> Result<File> {
    (OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false))
    .open(path)
    .map_err(|e| Error::io("cannot open the bucket log", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_back_checked_and_a_reopen_sees_the_checkpointed_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SliceLog::open(dir.path(), 3, None, 8).unwrap();
        log.append(1, b"one").unwrap();
        log.append(2, b"two").unwrap();
        log.append(1, b"uno").unwrap();
        assert_eq!(log.read(1).unwrap(), b"uno");
        assert_eq!(log.read(5).unwrap(), b"", "an empty bucket");
        assert_eq!(log.live_bytes(), 6);
        let index = log.checkpoint(1).unwrap();
        log.sync().unwrap();
        log.append(2, b"later, not checkpointed").unwrap();
        drop(log);

        let log = SliceLog::open(dir.path(), 3, Some(index.clone()), 8).unwrap();
        assert_eq!(log.read(2).unwrap(), b"two", "the checkpoint's version");
        let damaged = LogIndex {
            places: (index.places.iter())
                .map(|p| {
                    p.map(|p| Place {
                        crc: p.crc ^ 1,
                        ..p
                    })
                })
                .collect(),
            ..index
        };
        let log = SliceLog::open(dir.path(), 3, Some(damaged), 8).unwrap();
        let err = log.read(1).unwrap_err().to_string();
        assert!(err.contains("partition 3 bucket 1"), "{err}");
    }

    #[test]
    fn a_wasteful_log_is_copied_to_a_new_file_and_the_old_one_goes_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SliceLog::open(dir.path(), 0, None, 4).unwrap();
        let big = vec![7u8; 1 << 20];
        for _ in 0..80 {
            log.append(0, &big).unwrap();
        }
        log.append(1, b"small").unwrap();
        let index = log.checkpoint(5).unwrap();
        assert_eq!(index.generation, 1);
        assert_eq!(
            (log.read(0).unwrap(), log.read(1).unwrap()),
            (big, b"small".to_vec())
        );
        let files = || {
            std::fs::read_dir(dir.path().join("buckets"))
                .unwrap()
                .count()
        };
        assert_eq!(
            files(),
            2,
            "the old file stays until the checkpoint is written"
        );
        log.written(5).unwrap();
        assert_eq!(files(), 1);
        assert_eq!(log.len, log.live_bytes());
    }
}
