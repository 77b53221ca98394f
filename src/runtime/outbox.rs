//! [`Outbox`]: the exchange batches one partition of a chained pipeline sent the others, kept
//! in append-only files of its own, so that a partition restored from an older checkpoint than
//! its peers finds the batches they will not send again ([`batches_for`]).
//!
//! # Protocol
//!
//! - A sender appends each batch it sends another partition (its epoch, the receiver, the
//!   encoded batch) before it sends it as a message ([`Outbox::append`]): one `write` per
//!   batch, so a partition of the process that restores sees every batch that was sent to it.
//! - Before the sender writes its checkpoint of epoch `e`, it syncs the file
//!   ([`Outbox::sync`]): a checkpoint never passes batches that are not on disk, since after
//!   it the sender does not send them again.
//! - Once that checkpoint is written, the sender starts a new file (a generation) and deletes
//!   the files whose batches are all of epochs every partition's written checkpoint had
//!   passed: the oldest the partitions reported to the supervisor, which comes with
//!   `Committed` ([`Outbox::trim`]).
//! - A partition restored at epoch `c` reads every sender's files for its batches of epochs
//!   after `c` ([`batches_for`]). A file ends at its first record that does not check: a
//!   write a crash cut short, after the file's last sync, which its sender's checkpoint did not
//!   pass, so the sender sends that batch again when it replays.
//!
//! A record is `[payload length: u32][CRC-32 of the rest: u32][epoch: u64][receiver: u32]`
//! and the payload, little-endian; the sender is in the file's name.
//!
//! The batches were kept in sled before, in the receiver's tree (its "inbox"): sled rewrites a
//! leaf of up to 16 of them at every tenth change to it and at each split and merge, so each
//! batch was written about six times (`fraud-score` over 2 million events wrote 1.02 GB for 90
//! MB of batches, 50 MB of checkpoints and 122 MB of results; 466 MB with one partition, where
//! no batch crosses). [`crate::state::PartitionStore::inbox_after`] still reads what a state
//! directory written before holds.

use crate::checkpoint::Epoch;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// Bytes before a record's payload.
const HEADER: usize = 20;

/// One exchange batch read back: its epoch, its sender and its encoded records.
pub(crate) type StoredBatch = (Epoch, u32, Vec<u8>);

/// One sender's outbox (see the module doc).
pub(crate) struct Outbox {
    dir: PathBuf,
    from: u32,
    /// Whether writes must reach the disk (a `--state` directory) or only the process.
    durable: bool,
    file: File,
    /// The generation appended to, the last in `newest`.
    generation: u64,
    /// Each generation kept, and the newest epoch of a batch in it (0: none).
    newest: BTreeMap<u64, Epoch>,
    /// Whether the file was appended to since its last sync.
    unsynced: bool,
}

impl Outbox {
    /// Opens partition `from`'s outbox in `dir` (`<state>/outbox`), starting a new generation
    /// after those a previous run left, which stay until trimmed.
    pub(crate) fn open(dir: &Path, from: u32, durable: bool) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io("cannot create the exchange outbox directory", dir, e))?;
        let mut newest = BTreeMap::new();
        for (generation, path) in generations(dir, Some(from))?
            .remove(&from)
            .unwrap_or_default()
        {
            let mut last = 0;
            each_record(&path, |epoch, _, _| last = last.max(epoch))?;
            newest.insert(generation, last);
        }
        let generation = newest.keys().next_back().map_or(0, |g| g + 1);
        newest.insert(generation, 0);
        Ok(Outbox {
            file: create(&file_path(dir, from, generation))?,
            dir: dir.to_path_buf(),
            from,
            durable,
            generation,
            newest,
            unsynced: false,
        })
    }

    /// Appends the batch for partition `to` of `epoch` (`payload`, encoded).
    pub(crate) fn append(&mut self, epoch: Epoch, to: u32, payload: &[u8]) -> Result<()> {
        let mut record = Vec::with_capacity(HEADER + payload.len());
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&[0; 4]);
        record.extend_from_slice(&epoch.to_le_bytes());
        record.extend_from_slice(&to.to_le_bytes());
        record.extend_from_slice(payload);
        let crc = crc32fast::hash(&record[8..]);
        record[4..8].copy_from_slice(&crc.to_le_bytes());
        (crate::io::chunked::write_all(&self.file, &record))
            .map_err(|e| self.io_error("cannot append to the exchange outbox", e))?;
        let newest = self.newest.entry(self.generation).or_default();
        *newest = (*newest).max(epoch);
        self.unsynced = true;
        Ok(())
    }

    /// Makes what was appended durable (nothing to do for a temporary state).
    pub(crate) fn sync(&mut self) -> Result<()> {
        if self.durable && self.unsynced {
            (self.file.sync_data())
                .map_err(|e| self.io_error("cannot sync the exchange outbox", e))?;
        }
        self.unsynced = false;
        Ok(())
    }

    /// After a checkpoint was written, when every partition's checkpoint is at `passed` or
    /// later: starts a new generation, and deletes those holding no batch after `passed`.
    pub(crate) fn trim(&mut self, passed: Epoch) -> Result<()> {
        if self.newest.get(&self.generation).is_some_and(|&e| e > 0) {
            self.sync()?;
            self.generation += 1;
            self.file = create(&file_path(&self.dir, self.from, self.generation))?;
            self.newest.insert(self.generation, 0);
        }
        let done: Vec<u64> = (self.newest.iter())
            .filter(|&(&g, &newest)| g != self.generation && newest <= passed)
            .map(|(&g, _)| g)
            .collect();
        for generation in done {
            let path = file_path(&self.dir, self.from, generation);
            std::fs::remove_file(&path)
                .map_err(|e| Error::io("cannot delete the exchange outbox file", &path, e))?;
            self.newest.remove(&generation);
        }
        Ok(())
    }

    fn io_error(&self, action: &'static str, e: std::io::Error) -> Error {
        Error::io(action, file_path(&self.dir, self.from, self.generation), e)
    }
}

/// Every batch a sender's outbox in `dir` holds for partition `to` of an epoch after `after`,
/// by sender and in the order they were sent.
pub(crate) fn batches_for(dir: &Path, to: u32, after: Epoch) -> Result<Vec<StoredBatch>> {
    let mut batches = Vec::new();
    for (from, files) in generations(dir, None)? {
        for (_, path) in files {
            each_record(&path, |epoch, receiver, payload| {
                if receiver == to && epoch > after {
                    batches.push((epoch, from, payload.to_vec()));
                }
            })?;
        }
    }
    Ok(batches)
}

/// The outbox files in `dir` (of sender `only`, or all), by sender and generation.
fn generations(dir: &Path, only: Option<u32>) -> Result<BTreeMap<u32, Vec<(u64, PathBuf)>>> {
    let mut found: BTreeMap<u32, Vec<(u64, PathBuf)>> = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(Error::io("cannot list the exchange outbox", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("cannot list the exchange outbox", dir, e))?;
        let Some((from, generation)) = parse_name(&entry.file_name().to_string_lossy()) else {
            continue;
        };
        if only.is_none_or(|o| o == from) {
            found
                .entry(from)
                .or_default()
                .push((generation, entry.path()));
        }
    }
    found.values_mut().for_each(|files| files.sort_unstable());
    Ok(found)
}

/// Calls `visit(epoch, receiver, payload)` for a file's records, up to the first that does
/// not check (a file deleted since it was listed has none).
fn each_record(path: &Path, mut visit: impl FnMut(Epoch, u32, &[u8])) -> Result<()> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("cannot read the exchange outbox", path, e)),
    };
    let mut rest = bytes.as_slice();
    while rest.len() >= HEADER {
        let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        let Some(record) = rest.get(8..HEADER + len) else {
            break;
        };
        if crc32fast::hash(record) != crc {
            break;
        }
        let epoch = Epoch::from_le_bytes(record[0..8].try_into().expect("8 bytes"));
        let to = u32::from_le_bytes(record[8..12].try_into().expect("4 bytes"));
        visit(epoch, to, &record[12..]);
        rest = &rest[HEADER + len..];
    }
    Ok(())
}

fn file_path(dir: &Path, from: u32, generation: u64) -> PathBuf {
    dir.join(format!("p{from:05}-{generation:010}.log"))
}

/// The sender and generation a file name gives (`p00003-0000000012.log`).
fn parse_name(name: &str) -> Option<(u32, u64)> {
    let (from, generation) = name
        .strip_prefix('p')?
        .strip_suffix(".log")?
        .split_once('-')?;
    Some((from.parse().ok()?, generation.parse().ok()?))
}

fn create(path: &Path) -> Result<File> {
    (OpenOptions::new().append(true).create(true).truncate(false))
        .open(path)
        .map_err(|e| Error::io("cannot create the exchange outbox file", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(epoch: Epoch, from: u32, to: u32) -> Vec<u8> {
        format!("{epoch}:{from}->{to}").into_bytes()
    }

    #[test]
    fn a_receiver_reads_its_batches_after_its_checkpoint_from_every_sender() {
        let dir = tempfile::tempdir().unwrap();
        let mut outboxes: Vec<Outbox> = (0..3)
            .map(|from| Outbox::open(dir.path(), from, true).unwrap())
            .collect();
        for epoch in 1..=4 {
            for (from, outbox) in outboxes.iter_mut().enumerate() {
                for to in (0..3).filter(|&to| to != from as u32) {
                    outbox
                        .append(epoch, to, &payload(epoch, from as u32, to))
                        .unwrap();
                }
            }
        }
        let mut got = batches_for(dir.path(), 1, 2).unwrap();
        got.sort();
        let want: Vec<StoredBatch> = [(3, 0), (3, 2), (4, 0), (4, 2)]
            .into_iter()
            .map(|(e, from)| (e, from, payload(e, from, 1)))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn trimming_keeps_what_a_checkpoint_has_not_passed_and_a_reopen_appends_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(dir.path(), 0, true).unwrap();
        for epoch in 1..=3 {
            outbox.append(epoch, 1, &payload(epoch, 0, 1)).unwrap();
        }
        outbox.trim(2).unwrap(); // epoch 3 is in the first generation: it stays
        outbox.append(4, 1, &payload(4, 0, 1)).unwrap();
        let epochs = |after| -> Vec<Epoch> {
            (batches_for(dir.path(), 1, after).unwrap().iter())
                .map(|b| b.0)
                .collect()
        };
        assert_eq!(epochs(0), vec![1, 2, 3, 4]);
        outbox.trim(3).unwrap(); // the first generation goes
        assert_eq!(epochs(0), vec![4]);
        drop(outbox);
        let mut reopened = Outbox::open(dir.path(), 0, true).unwrap();
        reopened.append(5, 1, &payload(5, 0, 1)).unwrap();
        assert_eq!(epochs(0), vec![4, 5]);
        reopened.trim(4).unwrap();
        assert_eq!(epochs(0), vec![5]);
    }

    #[test]
    fn a_file_ends_at_a_record_a_crash_cut_short_or_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(dir.path(), 2, true).unwrap();
        for epoch in 1..=3 {
            outbox.append(epoch, 0, &payload(epoch, 2, 0)).unwrap();
        }
        drop(outbox);
        let path = file_path(dir.path(), 2, 0);
        let bytes = std::fs::read(&path).unwrap();
        let record = HEADER + payload(1, 2, 0).len();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap(); // the third cut short
        assert_eq!(batches_for(dir.path(), 0, 0).unwrap().len(), 2);
        let mut damaged = bytes.clone();
        damaged[record + HEADER] ^= 1; // the second's payload
        std::fs::write(&path, &damaged).unwrap();
        assert_eq!(batches_for(dir.path(), 0, 0).unwrap().len(), 1);
    }
}
