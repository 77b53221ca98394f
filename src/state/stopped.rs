//! A stopped job's first-stage buckets, wherever its last checkpoint left them: in sled (a job
//! with a Kafka changelog) or in the partition's bucket log (every other job, see
//! [`super::residency`]). What `spate state` and `spate model export` read and edit.

use super::keyed::Bucket;
use super::slice_log::SliceLog;
use super::store::{PartitionStore, PreparedCheckpoint, StateStore};
use crate::checkpoint::PartitionCheckpoint;
use crate::{Error, Key, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A stored bucket: its number, its entries and its stored size in bytes.
pub type StoredBucket<K, S> = (u32, Bucket<K, S>, u64);

/// One key partition of a stopped job: its sled tree, and its bucket log when it has one.
pub struct StoppedPartition {
    tree: PartitionStore,
    log: Option<SliceLog>,
}

impl StoppedPartition {
    /// Partition `partition` of `store`, as its last checkpoint left it.
    pub fn open(store: &StateStore, partition: u32) -> Result<Self> {
        let tree = store.partition(partition)?;
        let log = match tree.log_index()? {
            Some(index) => {
                let buckets = index.places.len();
                let dir = store.files_dir();
                Some(SliceLog::open(dir, partition, Some(index), buckets)?)
            }
            None => None,
        };
        Ok(StoppedPartition { tree, log })
    }

    /// Its sled tree (checkpoint metadata, and the buckets without a log).
    pub fn tree(&self) -> &PartitionStore {
        &self.tree
    }

    /// Every bucket holding keys: its number, its entries and its stored size in bytes.
    pub fn buckets<K, S>(&self) -> Result<Vec<StoredBucket<K, S>>>
    where
        K: Key + DeserializeOwned,
        S: DeserializeOwned,
    {
        let Some(log) = &self.log else {
            return self.tree.entries();
        };
        (0..log.buckets() as u32)
            .filter_map(|b| self.logged(log, b).transpose())
            .collect()
    }

    /// Bucket `bucket`, when it holds keys.
    pub fn bucket<K, S>(&self, bucket: u32) -> Result<Option<Bucket<K, S>>>
    where
        K: Key + DeserializeOwned,
        S: DeserializeOwned,
    {
        match &self.log {
            None => self.tree.value(&bucket),
            Some(log) => Ok(self.logged(log, bucket)?.map(|(_, entries, _)| entries)),
        }
    }

    /// Writes `entries` (`None`: emptied) as bucket `bucket` of the partition's checkpoint
    /// `checkpoint`, durably.
    pub fn rewrite<K, S>(
        &mut self,
        bucket: u32,
        entries: Option<Bucket<K, S>>,
        checkpoint: &PartitionCheckpoint,
    ) -> Result<()>
    where
        K: Key + Serialize,
        S: Serialize,
    {
        let Some(log) = self.log.as_mut() else {
            self.tree
                .write_checkpoint([(bucket, entries)], checkpoint)?;
            return Ok(());
        };
        let bytes = entries.map_or_else(Vec::new, |entries| {
            bincode::serialize(&entries).expect("bincode encodes in-memory values")
        });
        log.append(bucket as usize, &bytes)?;
        log.sync()?;
        let index = log.checkpoint(checkpoint.epoch)?;
        let prepared = PreparedCheckpoint::logged(checkpoint.clone(), Some(index));
        self.tree.apply_checkpoint(prepared)?;
        log.written(checkpoint.epoch)
    }

    /// Bucket `bucket` as `log` holds it, decoded (`None`: empty).
    fn logged<K, S>(&self, log: &SliceLog, bucket: u32) -> Result<Option<StoredBucket<K, S>>>
    where
        K: Key + DeserializeOwned,
        S: DeserializeOwned,
    {
        let bytes = log.read(bucket as usize)?;
        if bytes.is_empty() {
            return Ok(None);
        }
        let entries = bincode::deserialize(&bytes).map_err(|e| Error::DamagedState {
            path: self.tree.path().to_path_buf(),
            place: format!("partition {} bucket {bucket}", self.tree.partition_id()),
            detail: format!("it cannot be decoded: {e}"),
        })?;
        Ok(Some((bucket, entries, bytes.len() as u64)))
    }
}
