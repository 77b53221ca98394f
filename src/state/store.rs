//! The sled store. Layout:
//! - tree `meta`: `job` → [`JobInfo`]; `committed` → last committed epoch; `until-end` → the
//!   end offsets of a bounded Kafka run.
//! - tree `epochs`: big-endian epoch → [`EpochRecord`] (the epoch log, trimmed below the oldest
//!   partition checkpoint).
//! - tree `p<N>` per partition: `0x00` → [`PartitionCheckpoint`] and the [`Digest`] of the
//!   state; `0x01 ‖ bincode(bucket)` → bincode(the bucket's keys and entries). A checkpoint is
//!   one `apply_batch`, which sled applies atomically, so a partition's state and its metadata
//!   can never disagree. A later keyed stage of a chained pipeline keeps its own checkpoint
//!   metadata and state in the same tree, under `0x02 ‖ stage` and `0x03 ‖ stage ‖ bucket`
//!   (see [`PartitionStore::stage`]), and written in the same batch as the first stage's;
//!   without a Kafka changelog its buckets are in a bucket log instead (`stage2/buckets/`)
//!   and here, under `0x05 ‖ stage`, the log's index (see `runtime::exchange::Chain`). The
//!   exchange batches other partitions sent it were kept under `0x04 ‖ epoch ‖ sender`
//!   (big-endian) before they went to their senders' outbox files (`runtime::outbox`, in
//!   `outbox/` here): a restore still reads them, and its next checkpoint removes them. A partition
//!   whose state may be larger than memory (`--state-memory`) keeps its buckets in a
//!   [`SliceLog`](super::slice_log) instead, and here, under `0x05`, the log's index as of its
//!   checkpoint.
//! - tree `model`: a pipeline's shared model (see `model`).
//!
//! Every value is [sealed](super::sealed) behind a checksum, and a partition's entries are
//! checked against its digest when they are read back: a damaged directory is an error naming
//! it ([`Error::DamagedState`]), never state that was not written.

use super::sealed::{seal, seal_of, unseal, verify, Digest, SEAL};
use super::slice_log::{LogIndex, SliceLog};
use crate::checkpoint::{Epoch, EpochRecord, JobInfo, PartitionCheckpoint};
use crate::retry::{given_up, pauses};
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const META_KEY: &[u8] = &[0x00];
const STATE_PREFIX: u8 = 0x01;
const STAGE_META_PREFIX: u8 = 0x02;
const STAGE_STATE_PREFIX: u8 = 0x03;
const INBOX_PREFIX: u8 = 0x04;
const LOG_INDEX_KEY: &[u8] = &[0x05];

/// The key of an inbox entry: the exchange batch `from` sent for `epoch`.
fn inbox_key(epoch: Epoch, from: u32) -> [u8; 13] {
    let mut key = [INBOX_PREFIX; 13];
    key[1..9].copy_from_slice(&epoch.to_be_bytes());
    key[9..].copy_from_slice(&from.to_be_bytes());
    key
}

/// The job's sled database.
#[derive(Clone)]
pub struct StateStore {
    pub(super) db: sled::Db,
    path: PathBuf,
    /// Whether the store outlives the process (a `--state` directory). A temporary store is
    /// deleted when the job ends, so its flushes are skipped: nothing is gained by waiting for
    /// the disk (an fsync per epoch, 0.1 ms typically but 10 ms at the 99th percentile on a
    /// busy disk), and recovery inside the process reads what sled holds either way.
    durable: bool,
    /// A temporary store's directory for files beside sled's (removed with its last copy).
    scratch: Option<Arc<tempfile::TempDir>>,
    meta: sled::Tree,
    epochs: sled::Tree,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serialize(value).expect("bincode encodes in-memory values")
}

/// The sled segment size of a new store. sled writes a value (or a tree node, which holds up to
/// 16 values) larger than a quarter of a segment to a file of its own, created and deleted on
/// every write: with 512 KiB segments (sled's default) that began at about a million keys of
/// state, whose buckets grow past 8 KiB, and made each checkpoint several times slower.
const SEGMENT_BYTES: usize = 8 << 20;

/// The segment size to open the store in `dir` with: the one it was created with (sled refuses
/// to open a store with another; stores made before `SEGMENT_BYTES` have 512 KiB), else
/// `SEGMENT_BYTES`.
fn segment_size(dir: Option<&Path>) -> usize {
    let conf = dir.and_then(|dir| std::fs::read(dir.join("conf")).ok());
    let created_with = conf.and_then(|bytes| {
        // sled's `conf`: `name: value` lines, then a checksum.
        String::from_utf8_lossy(&bytes)
            .lines()
            .find_map(|line| line.strip_prefix("segment_size: ")?.trim().parse().ok())
    });
    created_with.unwrap_or(SEGMENT_BYTES)
}

/// Removes the snapshot files sled left unfinished in `dir` when its process was killed while
/// writing one (`snap.<lsn>.generating`, renamed to `snap.<lsn>` once complete). sled 0.34
/// takes them for snapshots at the next start and fails on them ("empty/corrupt snapshot file
/// found", then "Read corrupted data"), so a job killed at that moment could not resume; the
/// last complete snapshot and the log hold everything the unfinished one would have.
fn remove_unfinished_snapshots(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(()); // a new directory: sled creates it
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            let path = entry.path();
            std::fs::remove_file(&path)
                .map_err(|e| Error::io("cannot remove sled's unfinished snapshot", path, e))?;
        }
    }
    Ok(())
}

/// Opens sled's database, waiting up to a second for its lock: sled lets go of a database's
/// files in its own threads after the last handle is dropped (sled issue #1234), so a job
/// resumed in the same process right after another one stopped can find the lock still held.
/// Another process holding it holds it for longer, and gets [`Error::State`]'s advice.
fn open_waiting_for_lock(config: &sled::Config) -> sled::Result<sled::Db> {
    let attempt = || {
        config
            .open()
            .map_err(|e| match crate::error::is_locked(&e) {
                true => backoff::Error::transient(e),
                false => backoff::Error::permanent(e),
            })
    };
    let total = Some(Duration::from_secs(1));
    let policy = pauses(Duration::from_millis(10), Duration::from_millis(200), total);
    backoff::retry(policy, attempt).map_err(given_up)
}

impl StateStore {
    /// Opens (or creates) the store in `dir`; `None` gives a temporary store removed at exit.
    pub fn open(dir: Option<&Path>) -> Result<Self> {
        let config = sled::Config::new()
            // sled's default page cache is 1 GB; state is hot in actor memory anyway.
            .cache_capacity(16 * 1024 * 1024)
            .mode(sled::Mode::LowSpace)
            .segment_size(segment_size(dir))
            .flush_every_ms(None);
        let (config, path) = match dir {
            Some(dir) => (config.path(dir), dir.to_path_buf()),
            None => (config.temporary(true), PathBuf::from("(temporary)")),
        };
        if let Some(dir) = dir {
            remove_unfinished_snapshots(dir)?;
        }
        let err = |source| Error::state(path.clone(), source);
        // sled panics on some damage (`tried to serialize Uninitialized`) instead of failing.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let db = open_waiting_for_lock(&config)?;
            let meta = db.open_tree("meta")?;
            let epochs = db.open_tree("epochs")?;
            Ok::<_, sled::Error>((db, meta, epochs))
        }));
        let (db, meta, epochs) = match opened {
            Ok(opened) => opened.map_err(err)?,
            Err(panic) => {
                return Err(Error::DamagedState {
                    path,
                    place: "sled's files".into(),
                    detail: format!("sled cannot read them: {}", panic_text(&panic)),
                })
            }
        };
        let scratch = match dir {
            Some(_) => None,
            None => Some(Arc::new(tempfile::tempdir().map_err(|e| {
                Error::io(
                    "cannot create a temporary directory in",
                    std::env::temp_dir(),
                    e,
                )
            })?)),
        };
        Ok(StateStore {
            db,
            durable: dir.is_some(),
            scratch,
            path,
            meta,
            epochs,
        })
    }

    /// Opens the store a job left in `dir`, refusing a directory that holds none (instead of
    /// creating one, as [`open`](Self::open) does).
    pub fn open_existing(dir: &Path) -> Result<Self> {
        if !dir.join("conf").exists() || !dir.join("db").exists() {
            return Err(Error::config(
                "--state",
                dir.display(),
                "no job's state is there: give the --state directory of a job that ran",
            ));
        }
        Self::open(Some(dir))
    }

    pub(super) fn err(&self, source: sled::Error) -> Error {
        Error::state(self.path.clone(), source)
    }

    /// Decodes a value sealed under `key` in `place`, or reports the directory damaged.
    pub(super) fn unseal<T: DeserializeOwned>(
        &self,
        place: &str,
        key: &[u8],
        sealed: &[u8],
    ) -> Result<T> {
        unseal(key, sealed).map_err(|detail| Error::DamagedState {
            path: self.path.clone(),
            place: place.to_string(),
            detail,
        })
    }

    /// The state directory (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where files beside sled's go (a chained pipeline's exchange outboxes): the `--state`
    /// directory, or a temporary directory for a temporary store.
    pub fn files_dir(&self) -> &Path {
        self.scratch.as_ref().map_or(&self.path, |dir| dir.path())
    }

    /// Whether the store outlives the process (a `--state` directory): its writes must reach
    /// the disk.
    pub fn is_durable(&self) -> bool {
        self.durable
    }

    /// The store as a person reads it: `the --state directory DIR`, or `a temporary state (no
    /// --state)`.
    pub fn describe(&self) -> String {
        if self.durable {
            format!("the --state directory {}", self.path.display())
        } else {
            "a temporary state (no --state)".to_string()
        }
    }

    /// Checks that the store belongs to `info`'s job, recording `info` on first use. Returns the
    /// stored identity (whose generator base time wins over a new one).
    pub fn claim(&self, info: &JobInfo) -> Result<JobInfo> {
        let Some(stored) = self.meta_value::<JobInfo>("job")? else {
            self.set_meta_value("job", info)?;
            return Ok(info.clone());
        };
        let settings = |j: &JobInfo| {
            [
                format!("pipeline {}", j.pipeline),
                format!("--partitions {}", j.partitions),
                format!("--source {}", j.source),
                format!("--sink {}", j.sink),
                format!("state format {}", j.state_format),
            ]
        };
        let (was, now) = (settings(&stored), settings(info));
        let differ: Vec<usize> = (0..was.len()).filter(|&i| was[i] != now[i]).collect();
        if differ.is_empty() {
            return Ok(stored);
        }
        let list = |s: &[String; 5]| {
            differ
                .iter()
                .map(|&i| s[i].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(Error::StateMismatch {
            path: self.path.clone(),
            stored: list(&was),
            requested: list(&now),
        })
    }

    /// Makes an epoch's record durable (fsync) before any of its output is committed.
    pub fn record_epoch(&self, record: &EpochRecord) -> Result<()> {
        let key = record.epoch.to_be_bytes();
        self.epochs
            .insert(key, seal(&key, record))
            .map_err(|e| self.err(e))?;
        self.flush()
    }

    /// Recorded epochs from `first` on, in order.
    pub fn epochs_from(&self, first: Epoch) -> Result<Vec<EpochRecord>> {
        self.epochs
            .range(first.to_be_bytes()..)
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.err(e))?;
                self.unseal("the epoch log", &k, &v)
            })
            .collect()
    }

    /// Drops epoch records before `epoch`: no partition needs them for replay any more.
    pub fn forget_epochs_before(&self, epoch: Epoch) -> Result<()> {
        self.forget_erase_requests_before(epoch)?;
        for key in self.epochs.range(..epoch.to_be_bytes()).keys() {
            self.epochs
                .remove(key.map_err(|e| self.err(e))?)
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Drops every epoch record (a job whose partitions were restored from elsewhere starts a
    /// new epoch log).
    pub fn forget_all_epochs(&self) -> Result<()> {
        self.forget_all_erase_requests()?;
        self.epochs.clear().map_err(|e| self.err(e))?;
        self.flush()
    }

    /// Notes the last committed epoch (informational: sinks decide what is visible).
    pub fn set_committed(&self, epoch: Epoch) -> Result<()> {
        self.meta
            .insert("committed", seal(b"committed", &epoch))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The last committed epoch noted by [`set_committed`](Self::set_committed) (0 before any).
    pub fn committed(&self) -> Result<Epoch> {
        Ok(self.meta_value("committed")?.unwrap_or(0))
    }

    /// A value the job keeps about itself under `key` in the `meta` tree (e.g. the end offsets
    /// of a bounded Kafka run), if it was stored.
    pub fn meta_value<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.meta
            .get(key)
            .map_err(|e| self.err(e))?
            .map(|sealed| self.unseal(&format!("meta/{key}"), key.as_bytes(), &sealed))
            .transpose()
    }

    /// Stores `value` under `key` in the `meta` tree, durably.
    pub fn set_meta_value<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        self.meta
            .insert(key, seal(key.as_bytes(), value))
            .map_err(|e| self.err(e))?;
        self.flush()
    }

    /// The partition tree of key partition `partition`.
    pub fn partition(&self, partition: u32) -> Result<PartitionStore> {
        let tree = self
            .db
            .open_tree(format!("p{partition:04}"))
            .map_err(|e| self.err(e))?;
        Ok(PartitionStore {
            tree,
            store: self.clone(),
            partition,
            stage: 0,
            sums: Arc::default(),
        })
    }

    /// Fsyncs everything written so far (nothing to do for a temporary store).
    pub fn flush(&self) -> Result<()> {
        if self.durable {
            self.db.flush().map_err(|e| self.err(e))?;
        }
        Ok(())
    }
}

/// The text of a caught panic.
fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// A partition's checkpoint metadata as stored: with the digest of its state entries.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredMeta {
    checkpoint: PartitionCheckpoint,
    digest: Digest,
}

/// The seals (checksums) of a partition's entries, by key, and their digest: what a
/// checkpoint needs to update the digest without reading the old values back.
#[derive(Default)]
struct Sums {
    seals: HashMap<Vec<u8>, [u8; SEAL]>,
    digest: Digest,
}

/// How a partition view's sums change when a checkpoint batch is applied.
struct SumsUpdate {
    seals: Vec<(Vec<u8>, Option<[u8; SEAL]>)>,
    digest: Digest,
}

/// One key partition's tree, as seen by one keyed stage of its pipeline (the first unless
/// [`stage`](Self::stage) chose another).
#[derive(Clone)]
pub struct PartitionStore {
    tree: sled::Tree,
    store: StateStore,
    partition: u32,
    /// The keyed stage whose checkpoint this view reads and writes: 0 for the first.
    stage: u8,
    /// Filled by [`entries`](Self::entries) (a partition reads its state before it writes
    /// checkpoints), or on the first checkpoint.
    sums: Arc<Mutex<Option<Sums>>>,
}

impl PartitionStore {
    /// The same partition's view for keyed stage `stage` of a chained pipeline (0: the first).
    pub fn stage(&self, stage: u8) -> PartitionStore {
        PartitionStore {
            stage,
            sums: Arc::default(),
            ..self.clone()
        }
    }

    /// The key of this stage's checkpoint metadata.
    fn meta_key(&self) -> Vec<u8> {
        match self.stage {
            0 => META_KEY.to_vec(),
            s => vec![STAGE_META_PREFIX, s],
        }
    }

    /// The key of this stage's bucket log index (`0x05`, and the stage after it for a later
    /// stage).
    fn log_index_key(&self) -> Vec<u8> {
        match self.stage {
            0 => LOG_INDEX_KEY.to_vec(),
            s => vec![LOG_INDEX_KEY[0], s],
        }
    }

    /// The directory of a later stage's bucket log (`stage2/buckets/` for the second), in the
    /// state directory, or a temporary store's.
    pub fn stage_log_dir(&self) -> PathBuf {
        (self.store.files_dir()).join(format!("stage{}", u32::from(self.stage) + 1))
    }

    /// The prefix of this stage's state entries.
    fn state_prefix(&self) -> Vec<u8> {
        match self.stage {
            0 => vec![STATE_PREFIX],
            s => vec![STAGE_STATE_PREFIX, s],
        }
    }

    /// Where this view's values live, for messages.
    fn place(&self, what: &str) -> String {
        match self.stage {
            0 => format!("partition {} {what}", self.partition),
            s => format!("partition {} stage {} {what}", self.partition, s + 1),
        }
    }

    fn stored_meta(&self) -> Result<Option<StoredMeta>> {
        let place = self.place("checkpoint");
        let key = self.meta_key();
        self.tree
            .get(&key)
            .map_err(|e| self.store.err(e))?
            .map(|sealed| self.store.unseal(&place, &key, &sealed))
            .transpose()
    }

    /// The state directory (for messages).
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// The store this partition's tree is in.
    pub fn store(&self) -> &StateStore {
        &self.store
    }

    /// Puts the exchange batch `from` sent this partition for `epoch` in its inbox, as jobs did
    /// before batches went to their sender's outbox file (`runtime::outbox`): a directory they
    /// wrote may still hold some, which [`inbox_after`](Self::inbox_after) reads.
    #[cfg(test)]
    pub(crate) fn put_inbox(&self, epoch: Epoch, from: u32, payload: &[u8]) -> Result<()> {
        let key = inbox_key(epoch, from);
        self.tree
            .insert(key, super::sealed::seal_raw(&key, payload))
            .map_err(|e| self.store.err(e))?;
        Ok(())
    }

    /// The inbox's exchange batches of epochs after `epoch`: (epoch, sender, payload), in
    /// epoch and sender order.
    pub fn inbox_after(&self, epoch: Epoch) -> Result<Vec<(Epoch, u32, Vec<u8>)>> {
        let place = self.place("inbox");
        let from = inbox_key(epoch.saturating_add(1), 0);
        let mut batches = Vec::new();
        for kv in self.tree.range(from..=inbox_key(Epoch::MAX, u32::MAX)) {
            let (k, v) = kv.map_err(|e| self.store.err(e))?;
            let payload = verify(&k, &v).map_err(|detail| self.damaged(&place, detail))?;
            let epoch = Epoch::from_be_bytes(k[1..9].try_into().expect("inbox key"));
            let sender = u32::from_be_bytes(k[9..13].try_into().expect("inbox key"));
            batches.push((epoch, sender, payload.to_vec()));
        }
        Ok(batches)
    }

    /// The partition's last checkpoint metadata (the default, epoch 0, when it has none).
    pub fn checkpoint(&self) -> Result<PartitionCheckpoint> {
        Ok(self
            .stored_meta()?
            .map(|m| m.checkpoint)
            .unwrap_or_default())
    }

    /// The bucket log's index as of the last checkpoint, for a stage whose state is kept in
    /// one (a first stage under `--state-memory`, a later stage without a changelog).
    pub fn log_index(&self) -> Result<Option<LogIndex>> {
        let place = self.place("bucket log index");
        let key = self.log_index_key();
        self.tree
            .get(&key)
            .map_err(|e| self.store.err(e))?
            .map(|sealed| self.store.unseal(&place, &key, &sealed))
            .transpose()
    }

    /// Every bucket `log` holds, with its stored size, each checked against its seal: a
    /// logged later stage's state, stored as a checkpoint's sealed values.
    pub fn logged_entries<V: DeserializeOwned>(
        &self,
        log: &SliceLog,
    ) -> Result<Vec<(u32, V, u64)>> {
        let place = self.place("state");
        let mut entries = Vec::new();
        for bucket in 0..log.buckets() {
            let sealed = log.read(bucket)?;
            if sealed.is_empty() {
                continue;
            }
            let bucket = bucket as u32;
            let value = self.store.unseal(&place, &encode(&bucket), &sealed)?;
            entries.push((bucket, value, sealed.len() as u64));
        }
        Ok(entries)
    }

    /// This stage's sealed state entries in sled, by bucket, checked against the digest (what
    /// a later stage moves to its bucket log when a directory written before the log is
    /// run again).
    pub fn sealed_entries(&self) -> Result<Vec<(u32, Vec<u8>)>> {
        let place = self.place("state");
        (self.verified())
            .map(|entry| {
                let (key, value) = entry?;
                let bucket = bincode::deserialize::<u32>(&key)
                    .map_err(|e| self.damaged(&place, format!("a bucket key: {e}")))?;
                Ok((bucket, value.to_vec()))
            })
            .collect()
    }

    /// This view's key partition.
    pub fn partition_id(&self) -> u32 {
        self.partition
    }

    /// The stored value of one `key`, its seal checked (a single value: no digest check).
    pub fn value<K: Serialize, V: DeserializeOwned>(&self, key: &K) -> Result<Option<V>> {
        let key = encode(key);
        let mut stored = self.state_prefix();
        stored.extend_from_slice(&key);
        let place = self.place("state");
        self.tree
            .get(&stored)
            .map_err(|e| self.store.err(e))?
            .map(|sealed| self.store.unseal(&place, &key, &sealed))
            .transpose()
    }

    /// Every stored `(key, value)` pair, with the value's stored size in bytes, checked against
    /// the checkpoint's digest.
    pub fn entries<K: DeserializeOwned, V: DeserializeOwned>(&self) -> Result<Vec<(K, V, u64)>> {
        self.stored_entries().collect()
    }

    /// Every stored `(key, value)` pair, with the value's stored size in bytes, read one at a
    /// time: each value's seal is checked as it is read and, after the last, the whole against
    /// the checkpoint's digest (an error is the last item).
    pub fn stored_entries<K: DeserializeOwned, V: DeserializeOwned>(
        &self,
    ) -> impl Iterator<Item = Result<(K, V, u64)>> + '_ {
        let place = self.place("state");
        self.verified().map(move |entry| {
            let (key, value) = entry?;
            let payload = &value[SEAL..];
            bincode::deserialize::<K>(key.as_ref())
                .and_then(|k| Ok((k, bincode::deserialize::<V>(payload)?, value.len() as u64)))
                .map_err(|e| self.damaged(&place, format!("a stored entry: {e}")))
        })
    }

    /// Every state entry, raw (its key without the prefix, and its sealed value), each seal
    /// checked, then the whole against the checkpoint's digest; the partition's sums are set
    /// once all are read.
    fn verified(&self) -> Verified<'_> {
        Verified {
            view: self,
            prefix: self.state_prefix().len(),
            entries: self.tree.scan_prefix(self.state_prefix()),
            sums: Some(Sums::default()),
        }
    }

    /// Checks `sums`, made from every stored entry, against the checkpoint's digest.
    fn check_digest(&self, sums: &Sums) -> Result<()> {
        let expected = self.stored_meta()?.map(|m| m.digest).unwrap_or_default();
        if sums.digest == expected {
            return Ok(());
        }
        let (found, wanted) = (sums.digest.entries(), expected.entries());
        let versions = if found == wanted {
            " but other versions of them"
        } else {
            ""
        };
        Err(self.damaged(
            &self.place("state"),
            format!(
                "its {found} entries do not match its checkpoint, which has {wanted}{versions}"
            ),
        ))
    }

    fn damaged(&self, place: &str, detail: String) -> Error {
        Error::DamagedState {
            path: self.store.path.clone(),
            place: place.to_string(),
            detail,
        }
    }
    /// Writes changed values (`Some`), removals (`None`) and the checkpoint metadata in one
    /// atomic batch and fsyncs. Returns each written key with its value's stored size (0 for a
    /// removal).
    pub fn write_checkpoint<K: Serialize, V: Serialize>(
        &self,
        changes: impl IntoIterator<Item = (K, Option<V>)>,
        checkpoint: &PartitionCheckpoint,
    ) -> Result<Vec<(K, u64)>> {
        let (prepared, sizes) = Self::prepare_checkpoint(changes, checkpoint);
        self.apply_checkpoint(prepared)?;
        Ok(sizes)
    }

    /// Encodes a checkpoint without writing it: changed values (`Some`), removals (`None`) and
    /// the metadata, plus each key's stored size (0 for a removal). The partition writes it
    /// with [`apply_checkpoint`](Self::apply_checkpoint) once its epoch is committed.
    pub fn prepare_checkpoint<K: Serialize, V: Serialize>(
        changes: impl IntoIterator<Item = (K, Option<V>)>,
        checkpoint: &PartitionCheckpoint,
    ) -> (PreparedCheckpoint, Vec<(K, u64)>) {
        let mut entries = Vec::new();
        let mut sizes = Vec::new();
        let mut bytes = 0;
        for (key, value) in changes {
            let key_bytes = encode(&key);
            let value = value.map(|v| seal(&key_bytes, &v));
            let size = value.as_ref().map_or(0, |v| v.len() as u64);
            bytes += size;
            sizes.push((key, size));
            entries.push((key_bytes, value));
        }
        let prepared = PreparedCheckpoint {
            entries,
            meta: checkpoint.clone(),
            bytes,
            index: None,
        };
        (prepared, sizes)
    }

    /// Like [`PartitionStore::prepare_checkpoint`] for a stage whose buckets are in `log`:
    /// appends each changed bucket there, sealed as sled would hold it (`None`: emptied), and
    /// returns the checkpoint carrying the log's index.
    pub fn prepare_logged<V: Serialize>(
        changes: impl IntoIterator<Item = (u32, Option<V>)>,
        checkpoint: &PartitionCheckpoint,
        log: &mut SliceLog,
    ) -> Result<PreparedCheckpoint> {
        let mut bytes = 0;
        for (bucket, value) in changes {
            let sealed = value
                .map(|v| seal(&encode(&bucket), &v))
                .unwrap_or_default();
            bytes += sealed.len() as u64;
            log.append(bucket as usize, &sealed)?;
        }
        let index = log.checkpoint(checkpoint.epoch)?;
        Ok(PreparedCheckpoint {
            bytes,
            ..PreparedCheckpoint::logged(checkpoint.clone(), Some(index))
        })
    }

    /// Writes a prepared checkpoint in one atomic batch, with the digest of the state it
    /// leaves, and fsyncs.
    pub fn apply_checkpoint(&self, prepared: PreparedCheckpoint) -> Result<()> {
        Self::apply_checkpoints(vec![(self, prepared)], None)
    }

    /// Writes the prepared checkpoints of several stages of one partition (views of the same
    /// tree) in one atomic batch and fsyncs; with `inbox_upto`, the batch also empties the
    /// inbox of that epoch and before, which the checkpoint has consumed.
    pub fn apply_checkpoints(
        parts: Vec<(&PartitionStore, PreparedCheckpoint)>,
        inbox_upto: Option<Epoch>,
    ) -> Result<()> {
        let Some(&(first, _)) = parts.first() else {
            return Ok(());
        };
        let mut batch = sled::Batch::default();
        if let Some(upto) = inbox_upto {
            let range = inbox_key(0, 0)..=inbox_key(upto, u32::MAX);
            for key in first.tree.range(range).keys() {
                batch.remove(key.map_err(|e| first.store.err(e))?);
            }
        }
        let mut updates = Vec::with_capacity(parts.len());
        for (view, prepared) in parts {
            updates.push((view, view.add_to_batch(prepared, &mut batch)?));
        }
        first
            .tree
            .apply_batch(batch)
            .map_err(|e| first.store.err(e))?;
        first.store.flush()?;
        for (view, update) in updates {
            view.apply_sums(update);
        }
        Ok(())
    }

    /// Adds a prepared checkpoint's entries and metadata to `batch`; returns how the sums
    /// change once the batch is applied.
    fn add_to_batch(
        &self,
        prepared: PreparedCheckpoint,
        batch: &mut sled::Batch,
    ) -> Result<SumsUpdate> {
        if self.sums.lock().expect("sums lock").is_none() {
            // Reading every entry, checked, sets the sums.
            for entry in self.verified() {
                entry?;
            }
        }
        let sums = self.sums.lock().expect("sums lock");
        let sums = sums.as_ref().expect("set by a complete read");
        let mut digest = sums.digest;
        let mut seals = Vec::with_capacity(prepared.entries.len());
        let prefix = self.state_prefix();
        if prepared.index.is_some() {
            // A stage's checkpoint in its log: sled keeps none of its state (a stage moved
            // there from sled leaves it at its first).
            for key in sums.seals.keys() {
                seals.push((key.clone(), None));
                batch.remove([prefix.as_slice(), key].concat());
            }
            digest = Digest::default();
        }
        let mut key_buf = Vec::with_capacity(32);
        for (key, value) in prepared.entries {
            if let Some(old) = sums.seals.get(&key) {
                digest.remove(old);
            }
            key_buf.clear();
            key_buf.extend_from_slice(&prefix);
            key_buf.extend_from_slice(&key);
            match value {
                Some(value) => {
                    digest.add(&value);
                    seals.push((key, Some(seal_of(&value))));
                    batch.insert(key_buf.as_slice(), value);
                }
                None => {
                    seals.push((key, None));
                    batch.remove(key_buf.as_slice());
                }
            }
        }
        self.add_meta(batch, prepared.meta, digest);
        if let Some(index) = prepared.index {
            let key = self.log_index_key();
            batch.insert(key.as_slice(), seal(&key, &index));
        }
        Ok(SumsUpdate { seals, digest })
    }

    /// Takes the seals and digest of a written checkpoint.
    fn apply_sums(&self, update: SumsUpdate) {
        let mut sums = self.sums.lock().expect("sums lock");
        let sums = sums.as_mut().expect("sums loaded before the checkpoint");
        for (key, seal) in update.seals {
            match seal {
                Some(seal) => sums.seals.insert(key, seal),
                None => sums.seals.remove(&key),
            };
        }
        sums.digest = update.digest;
    }

    /// Adds the checkpoint metadata with `digest` to `batch`.
    fn add_meta(&self, batch: &mut sled::Batch, checkpoint: PartitionCheckpoint, digest: Digest) {
        let key = self.meta_key();
        let meta = seal(&key, &StoredMeta { checkpoint, digest });
        batch.insert(key, meta);
    }

    /// Replaces the partition's whole state with `entries` (encoded keys and sealed values, as
    /// in a [`PreparedCheckpoint`]) and `meta`, in one atomic batch: how a partition takes over
    /// a checkpoint restored from elsewhere (the changelog). A value whose seal does not match
    /// is refused.
    pub fn replace(
        &self,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        meta: &PartitionCheckpoint,
    ) -> Result<()> {
        let mut sums = self.sums.lock().expect("sums lock");
        *sums = None;
        let mut batch = sled::Batch::default();
        let prefix = self.state_prefix();
        for key in self.tree.scan_prefix(&prefix).keys() {
            batch.remove(key.map_err(|e| self.store.err(e))?);
        }
        let mut next = Sums::default();
        let mut key_buf = Vec::with_capacity(32);
        for (key, value) in entries {
            verify(&key, &value).map_err(|detail| Error::DamagedChangelog {
                place: format!("of partition {}, epoch {}", self.partition, meta.epoch),
                detail,
            })?;
            next.digest.add(&value);
            key_buf.clear();
            key_buf.extend_from_slice(&prefix);
            key_buf.extend_from_slice(&key);
            next.seals.insert(key, seal_of(&value));
            batch.insert(key_buf.as_slice(), value);
        }
        self.add_meta(&mut batch, meta.clone(), next.digest);
        self.tree
            .apply_batch(batch)
            .map_err(|e| self.store.err(e))?;
        self.store.flush()?;
        *sums = Some(next);
        Ok(())
    }
}

/// The state entries of a partition as [`PartitionStore::verified`] reads them.
struct Verified<'a> {
    view: &'a PartitionStore,
    prefix: usize,
    entries: sled::Iter,
    /// What was read so far; taken at the end.
    sums: Option<Sums>,
}

impl Iterator for Verified<'_> {
    type Item = Result<(sled::IVec, sled::IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        let sums = self.sums.as_mut()?;
        let view = self.view;
        let read = match self.entries.next() {
            Some(read) => read,
            None => {
                let sums = self.sums.take().expect("checked above");
                return match view.check_digest(&sums) {
                    Ok(()) => {
                        *view.sums.lock().expect("sums lock") = Some(sums);
                        None
                    }
                    Err(e) => Some(Err(e)),
                };
            }
        };
        let checked = read.map_err(|e| view.store.err(e)).and_then(|(k, v)| {
            let key = k.subslice(self.prefix, k.len() - self.prefix);
            // The value's seal covers its key too.
            verify(&key, &v).map_err(|detail| view.damaged(&view.place("state"), detail))?;
            sums.digest.add(&v);
            sums.seals.insert(key.to_vec(), seal_of(&v));
            Ok((key, v))
        });
        if checked.is_err() {
            self.sums = None;
        }
        Some(checked)
    }
}

/// A checkpoint encoded and waiting to be written (see [`PartitionStore::prepare_checkpoint`]).
#[derive(Debug, Clone)]
pub struct PreparedCheckpoint {
    /// Changed keys (bincode) and their new values (`None`: removed), bincode-encoded and
    /// sealed behind a checksum.
    pub entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Its metadata.
    pub meta: PartitionCheckpoint,
    /// Bytes of changed values it writes.
    pub bytes: u64,
    /// With a bucket log, the log's index the checkpoint stores (its buckets are in the log,
    /// not in `entries`).
    pub index: Option<LogIndex>,
}

impl PreparedCheckpoint {
    /// The checkpoint of a partition whose buckets are in a bucket log: its metadata and the
    /// log's `index`.
    pub fn logged(meta: PartitionCheckpoint, index: Option<LogIndex>) -> Self {
        PreparedCheckpoint {
            entries: Vec::new(),
            meta,
            bytes: 0,
            index,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::SourcePosition;

    /// Opens the store in `dir` again after a handle to it was dropped.
    fn reopen(dir: &Path) -> StateStore {
        StateStore::open(Some(dir)).unwrap()
    }

    #[test]
    fn an_open_waits_for_a_lock_let_go_of_soon_and_refuses_one_held_on() {
        let dir = tempfile::tempdir().unwrap();
        let held = sled::Config::new().path(dir.path()).open().unwrap();
        let err = StateStore::open(Some(dir.path())).err().expect("refused");
        assert!(err.to_string().contains("another spate"), "{err}");
        let letting_go = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            drop(held);
        });
        let started = std::time::Instant::now();
        let store = StateStore::open(Some(dir.path())).expect("opened once the lock is free");
        assert!(started.elapsed() >= Duration::from_millis(100));
        letting_go.join().unwrap();
        drop(store);
    }

    /// The identity of a test job whose state has `state_format`.
    fn job_info(state_format: u32) -> JobInfo {
        JobInfo {
            pipeline: "p".into(),
            partitions: 2,
            source: "gen".into(),
            sink: "stdout".into(),
            generator_base_ms: 5,
            state_format,
        }
    }

    #[test]
    fn a_store_keeps_the_segment_size_it_was_created_with() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (dir.path().join("old"), dir.path().join("new"));
        // A store made before spate chose its segment size: sled's default, 512 KiB.
        drop(sled::Config::new().path(&old).open().unwrap());
        assert_eq!(segment_size(Some(&old)), 512 * 1024);
        drop(reopen(&old));
        drop(reopen(&new));
        assert_eq!(segment_size(Some(&new)), SEGMENT_BYTES);
        drop(reopen(&new));
    }

    #[test]
    fn a_snapshot_sled_left_unfinished_when_killed_does_not_stop_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let info = job_info(crate::checkpoint::STATE_FORMAT);
        drop(reopen(dir.path()).claim(&info).unwrap());
        // What a SIGKILL while sled wrote a snapshot leaves: the file it renames once written.
        let unfinished = dir.path().join("snap.FFFFFFFFFFFFFFFF.generating");
        std::fs::write(&unfinished, b"").unwrap();
        let store = reopen(dir.path());
        assert_eq!(store.claim(&info).unwrap(), info, "the state is intact");
        assert!(!unfinished.exists());
    }

    #[test]
    fn epochs_checkpoints_and_identity() {
        let dir = tempfile::tempdir().unwrap();
        let info = job_info(1);
        {
            let store = StateStore::open(Some(dir.path())).unwrap();
            assert_eq!(store.claim(&info).unwrap(), info);
            for epoch in 1..=3 {
                store
                    .record_epoch(&EpochRecord {
                        epoch,
                        end: SourcePosition::at(0, epoch * 10),
                        watermark: 0,
                        processing_time: 0,
                        final_epoch: false,
                        closes_input: false,
                        model: Default::default(),
                    })
                    .unwrap();
            }
            store.forget_epochs_before(2).unwrap();
            let p = store.partition(1).unwrap();
            let ckpt = PartitionCheckpoint {
                epoch: 3,
                ..Default::default()
            };
            p.write_checkpoint(
                [(7u64, Some("seven".to_string())), (8, Some("eight".into()))],
                &ckpt,
            )
            .unwrap();
            p.write_checkpoint([(8u64, None::<String>)], &ckpt).unwrap();
        }
        let store = reopen(dir.path());
        let again = JobInfo {
            generator_base_ms: 99,
            ..info.clone()
        };
        assert_eq!(store.claim(&again).unwrap().generator_base_ms, 5);
        let other = JobInfo {
            partitions: 3,
            ..info.clone()
        };
        let err = store.claim(&other).unwrap_err().to_string();
        assert!(
            err.contains("--partitions 2") && err.contains("--partitions 3"),
            "{err}"
        );
        let elsewhere = JobInfo {
            sink: "file:/out".into(),
            ..info
        };
        let err = store.claim(&elsewhere).unwrap_err().to_string();
        assert!(
            err.contains("--sink stdout") && err.contains("--sink file:/out"),
            "{err}"
        );
        assert!(!err.contains("--partitions"), "only what differs: {err}");
        let epochs: Vec<u64> = store
            .epochs_from(0)
            .unwrap()
            .iter()
            .map(|r| r.epoch)
            .collect();
        assert_eq!(epochs, vec![2, 3]);
        let p = store.partition(1).unwrap();
        assert_eq!(p.checkpoint().unwrap().epoch, 3);
        assert_eq!(
            p.entries::<u64, String>().unwrap(),
            vec![(7, "seven".to_string(), 13 + SEAL as u64)]
        );
        assert_eq!(store.partition(0).unwrap().checkpoint().unwrap().epoch, 0);
    }

    /// Checkpoint metadata of `epoch`, nothing else set.
    fn checkpoint_at(epoch: Epoch) -> PartitionCheckpoint {
        PartitionCheckpoint {
            epoch,
            ..Default::default()
        }
    }

    #[test]
    fn two_stages_checkpoint_together_and_the_inbox_is_trimmed_with_them() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = StateStore::open(Some(dir.path())).unwrap();
            let first = store.partition(0).unwrap();
            let later = first.stage(1);
            for (epoch, from) in [(2, 1), (3, 2), (3, 1), (4, 1)] {
                let payload = format!("{epoch}/{from}");
                first.put_inbox(epoch, from, payload.as_bytes()).unwrap();
            }
            let (a, _) =
                PartitionStore::prepare_checkpoint([(1u32, Some(10u64))], &checkpoint_at(3));
            let (b, _) =
                PartitionStore::prepare_checkpoint([(1u32, Some(20u64))], &checkpoint_at(3));
            PartitionStore::apply_checkpoints(vec![(&first, a), (&later, b)], Some(3)).unwrap();
        }
        let store = reopen(dir.path());
        let first = store.partition(0).unwrap();
        let later = first.stage(1);
        assert_eq!(first.checkpoint().unwrap().epoch, 3);
        assert_eq!(later.checkpoint().unwrap().epoch, 3);
        let values = |p: &PartitionStore| -> Vec<(u32, u64)> {
            p.entries()
                .unwrap()
                .into_iter()
                .map(|(k, v, _)| (k, v))
                .collect()
        };
        assert_eq!(values(&first), [(1, 10)], "each stage has its own entries");
        assert_eq!(values(&later), [(1, 20)]);
        let inbox = first.inbox_after(0).unwrap();
        assert_eq!(
            inbox,
            [(4, 1, b"4/1".to_vec())],
            "epochs up to 3 are consumed"
        );
        first.put_inbox(5, 0, b"5/0").unwrap();
        first.put_inbox(5, 3, b"5/3").unwrap();
        let senders: Vec<u32> = first.inbox_after(4).unwrap().iter().map(|b| b.1).collect();
        assert_eq!(senders, [0, 3], "after epoch 4, in sender order");
    }

    #[test]
    fn a_later_stage_moves_its_buckets_from_sled_to_its_log_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(Some(dir.path())).unwrap();
        let first = store.partition(0).unwrap();
        let later = first.stage(1);
        // Written before the log: both stages' buckets in sled.
        let (a, _) = PartitionStore::prepare_checkpoint([(1u32, Some(10u64))], &checkpoint_at(1));
        let changes = [(3u32, Some(30u64)), (700, Some(7000))];
        let (b, _) = PartitionStore::prepare_checkpoint(changes, &checkpoint_at(1));
        PartitionStore::apply_checkpoints(vec![(&first, a), (&later, b)], Some(1)).unwrap();
        // What a restore in a run with the log does: the sled buckets go to the log ...
        let mut log =
            SliceLog::open(&later.stage_log_dir(), 0, later.log_index().unwrap(), 0).unwrap();
        for (bucket, sealed) in later.sealed_entries().unwrap() {
            log.append(bucket as usize, &sealed).unwrap();
        }
        // ... and the next checkpoint writes its changes there, and the index to sled.
        let (a, _) = PartitionStore::prepare_checkpoint([(1u32, Some(11u64))], &checkpoint_at(2));
        let removed = [(3u32, None::<u64>)];
        let b = PartitionStore::prepare_logged(removed, &checkpoint_at(2), &mut log).unwrap();
        log.sync().unwrap();
        PartitionStore::apply_checkpoints(vec![(&first, a), (&later, b)], Some(2)).unwrap();
        drop((log, first, later, store));

        let store = reopen(dir.path());
        let first = store.partition(0).unwrap();
        let later = first.stage(1);
        assert_eq!(later.checkpoint().unwrap().epoch, 2);
        assert!(
            later.entries::<u32, u64>().unwrap().is_empty(),
            "sled keeps none of the later stage's buckets"
        );
        let values = |entries: Vec<(u32, u64, u64)>| -> Vec<(u32, u64)> {
            entries.into_iter().map(|(k, v, _)| (k, v)).collect()
        };
        assert_eq!(
            values(first.entries().unwrap()),
            [(1, 11)],
            "the first stage's"
        );
        assert_eq!(
            first.log_index().unwrap(),
            None,
            "the first stage has no log"
        );
        let index = later.log_index().unwrap();
        assert!(index.is_some());
        let log = SliceLog::open(&later.stage_log_dir(), 0, index, 0).unwrap();
        assert_eq!(values(later.logged_entries(&log).unwrap()), [(700, 7000)]);
    }

    #[test]
    fn damaged_values_and_stale_entries_are_refused_naming_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(Some(dir.path())).unwrap();
        let p = store.partition(0).unwrap();
        let meta = |epoch| PartitionCheckpoint {
            epoch,
            ..Default::default()
        };
        p.write_checkpoint([(1u64, Some(10u64)), (2, Some(20))], &meta(1))
            .unwrap();
        let key = [&[STATE_PREFIX][..], &encode(&1u64)].concat();
        let old = p.tree.get(&key).unwrap().unwrap();
        p.write_checkpoint([(1u64, Some(11u64))], &meta(2)).unwrap();
        assert_eq!(p.entries::<u64, u64>().unwrap().len(), 2);
        let entries = |p: &PartitionStore| p.entries::<u64, u64>().unwrap_err().to_string();

        // An older version of a bucket under the newer checkpoint: each value is sound.
        p.tree.insert(&key, old.clone()).unwrap();
        let err = entries(&p);
        assert!(
            err.contains(&dir.path().display().to_string())
                && err.contains("2 entries do not match its checkpoint")
                && err.contains("other versions"),
            "{err}"
        );
        // A changed byte.
        let mut flipped = old.to_vec();
        flipped[6] ^= 1;
        p.tree.insert(&key, flipped).unwrap();
        assert!(entries(&p).contains("fails its checksum"));
        // A lost entry.
        p.tree.remove(&key).unwrap();
        assert!(entries(&p).contains("its 1 entries do not match its checkpoint, which has 2"));
        // Damaged metadata.
        let mut meta_bytes = p.tree.get(META_KEY).unwrap().unwrap().to_vec();
        meta_bytes[5] ^= 1;
        p.tree.insert(META_KEY, meta_bytes).unwrap();
        let err = p.checkpoint().unwrap_err().to_string();
        assert!(
            err.contains("partition 0 checkpoint") && err.contains("damaged"),
            "{err}"
        );
    }
}
