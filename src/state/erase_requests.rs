//! The log of erasures asked of a running job (`POST /state/erase`), by the epoch that applies
//! them: like the epoch log, written before the epoch's record and read again by a restart, so
//! a replayed epoch erases what its first run erased and a replay never brings a key back.

use super::store::StateStore;
use crate::checkpoint::Epoch;
use crate::Result;
use std::collections::BTreeMap;

/// The sled tree of the log.
const TREE: &str = "erase-requests";

impl StateStore {
    fn erase_tree(&self) -> Result<sled::Tree> {
        self.db.open_tree(TREE).map_err(|e| self.err(e))
    }

    /// Notes that `epoch` erases `keys` (as the pipeline's key text). Made durable by the
    /// epoch's [`record_epoch`](Self::record_epoch), which must follow.
    pub fn record_erase_requests(&self, epoch: Epoch, keys: &[String]) -> Result<()> {
        let key = epoch.to_be_bytes();
        let value = super::sealed::seal(&key, keys);
        self.erase_tree()?
            .insert(key, value)
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The erasures of epochs from `first` on, by epoch.
    pub fn erase_requests_from(&self, first: Epoch) -> Result<BTreeMap<Epoch, Vec<String>>> {
        let tree = self.erase_tree()?;
        tree.range(first.to_be_bytes()..)
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.err(e))?;
                let keys: Vec<String> = self.unseal("the erase log", &k, &v)?;
                let epoch = Epoch::from_be_bytes(k.as_ref().try_into().unwrap_or_default());
                Ok((epoch, keys))
            })
            .collect()
    }

    /// Drops the erasures of epochs before `epoch` (with the epoch log: no replay needs them).
    pub(super) fn forget_erase_requests_before(&self, epoch: Epoch) -> Result<()> {
        let tree = self.erase_tree()?;
        for key in tree.range(..epoch.to_be_bytes()).keys() {
            tree.remove(key.map_err(|e| self.err(e))?)
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Drops every erasure request (with the epoch log, see
    /// [`forget_all_epochs`](Self::forget_all_epochs)).
    pub(super) fn forget_all_erase_requests(&self) -> Result<()> {
        self.erase_tree()?.clear().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_kept_by_epoch_and_forgotten_with_the_epoch_log() {
        let store = StateStore::open(None).unwrap();
        store.record_erase_requests(3, &["u1".into()]).unwrap();
        store
            .record_erase_requests(5, &["u2".into(), "u3".into()])
            .unwrap();
        let from4 = store.erase_requests_from(4).unwrap();
        assert_eq!(
            from4.into_iter().collect::<Vec<_>>(),
            [(5, vec!["u2".to_string(), "u3".to_string()])]
        );
        store.forget_erase_requests_before(5).unwrap();
        assert_eq!(store.erase_requests_from(0).unwrap().len(), 1);
        store.forget_all_erase_requests().unwrap();
        assert!(store.erase_requests_from(0).unwrap().is_empty());
    }
}
