//! The shared model's tree `model` in the job's sled database: `0x00` → how far the model
//! learned (the last epoch included, and the time every learned micro-batch ends by);
//! `0x01 ‖ version` → the version's time covered and encoding; `0x02 ‖ batch start ‖ epoch` →
//! the examples that epoch brought for that micro-batch, still waiting for it to close. One
//! commit's changes are one atomic, fsynced batch (see [`crate::learning`]).

use super::sealed::seal;
use super::StateStore;
use crate::checkpoint::Epoch;
use crate::learning::Learned;
use crate::time::Millis;
use crate::Result;

const HEAD: &[u8] = &[0x00];
const VERSION: u8 = 0x01;
const WAITING: u8 = 0x02;

/// The shared model as the state directory holds it.
pub struct StoredModel {
    /// The last epoch whose examples it includes.
    pub epoch: Epoch,
    /// Every micro-batch ending by this time is learned.
    pub closed_until: Millis,
    /// Every version kept (see [`StateStore::forget_model_versions`]): number, time covered,
    /// encoding.
    pub versions: Vec<(u64, Millis, Vec<u8>)>,
    /// The examples waiting for their micro-batch.
    pub waiting: Vec<Learned>,
}

/// A time as a key part that sorts like the time.
fn time_key(time: Millis) -> [u8; 8] {
    ((time as u64) ^ (1 << 63)).to_be_bytes()
}

fn waiting_key(start: Millis, epoch: Epoch) -> Vec<u8> {
    let mut key = vec![WAITING];
    key.extend_from_slice(&time_key(start));
    key.extend_from_slice(&epoch.to_be_bytes());
    key
}

impl StateStore {
    fn model_tree(&self) -> Result<sled::Tree> {
        self.db.open_tree("model").map_err(|e| self.err(e))
    }

    /// The shared model the directory holds, if any.
    pub fn load_model(&self) -> Result<Option<StoredModel>> {
        let tree = self.model_tree()?;
        let Some(head) = tree.get(HEAD).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        let (epoch, closed_until) = self.unseal("model/head", HEAD, &head)?;
        let mut stored = StoredModel {
            epoch,
            closed_until,
            versions: Vec::new(),
            waiting: Vec::new(),
        };
        for kv in tree.range([VERSION].as_slice()..) {
            let (key, value) = kv.map_err(|e| self.err(e))?;
            match key.first() {
                Some(&VERSION) => {
                    let (version, covers, bytes) = self.unseal("model/version", &key, &value)?;
                    stored.versions.push((version, covers, bytes));
                }
                _ => {
                    let examples: Vec<Learned> = self.unseal("model/waiting", &key, &value)?;
                    stored.waiting.extend(examples);
                }
            }
        }
        Ok(Some(stored))
    }

    /// Stores, atomically and durably, one commit's changes to the shared model: how far it
    /// learned, the versions `made`, the examples of `epoch` still `waiting` (by micro-batch
    /// start), and the micro-batches `closed` (their waiting examples are dropped).
    pub fn save_model(
        &self,
        (epoch, closed_until): (Epoch, Millis),
        made: &[(u64, Millis, Vec<u8>)],
        waiting: &[(Millis, &[Learned])],
        closed: &[Millis],
    ) -> Result<()> {
        let tree = self.model_tree()?;
        let mut batch = sled::Batch::default();
        batch.insert(HEAD, seal(HEAD, &(epoch, closed_until)));
        for (version, covers, bytes) in made {
            let key = version_key(*version);
            batch.insert(key.clone(), seal(&key, &(version, covers, bytes)));
        }
        for (start, examples) in waiting {
            let key = waiting_key(*start, epoch);
            batch.insert(key.clone(), seal(&key, examples));
        }
        for &start in closed {
            let range = waiting_key(start, 0)..=waiting_key(start, Epoch::MAX);
            for key in tree.range(range).keys() {
                batch.remove(key.map_err(|e| self.err(e))?);
            }
        }
        tree.apply_batch(batch).map_err(|e| self.err(e))?;
        self.flush()
    }

    /// Removes the model versions numbered below `kept`, which no replay needs any more.
    pub fn forget_model_versions(&self, kept: u64) -> Result<()> {
        let tree = self.model_tree()?;
        let mut batch = sled::Batch::default();
        let (from, to) = (version_key(0), version_key(kept));
        for key in tree.range(from..to).keys() {
            batch.remove(key.map_err(|e| self.err(e))?);
        }
        tree.apply_batch(batch).map_err(|e| self.err(e))
    }
}

/// The key of model version `version`.
fn version_key(version: u64) -> Vec<u8> {
    let mut key = vec![VERSION];
    key.extend_from_slice(&version.to_be_bytes());
    key
}
