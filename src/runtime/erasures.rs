//! The supervisor's erasures of a running job (`POST /state/erase`): an erasure is an epoch
//! decision, like the watermark. The request waits for the next epoch recorded, is written
//! with that epoch's record (so a replay of the epoch erases the key again, and no replay brings
//! it back), goes to every partition with the epoch's [`SealEpoch`](super::messages::SealEpoch),
//! which removes the key's state before the epoch's timers fire, and is answered once the epoch
//! is committed. The checkpoint of that epoch, and with a changelog its copy in Kafka, no longer
//! holds the key.

use super::messages::{EraseKey, Erased};
use crate::checkpoint::Epoch;
use crate::state::{Erasure, StateStore};
use crate::time::{format_rfc3339, now_ms};
use crate::Result;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Erasures asked, recorded and awaiting their epoch's commit.
#[derive(Default)]
pub(crate) struct Erasures {
    /// Asked since the last epoch was recorded.
    queued: Vec<EraseKey>,
    /// The keys each recorded epoch erases (the ones a replay may still need).
    recorded: BTreeMap<Epoch, Arc<[String]>>,
    /// The requests answered at each epoch's commit.
    waiting: BTreeMap<Epoch, Vec<EraseKey>>,
}

impl Erasures {
    /// The erasures of the epochs recorded before a restart (see
    /// [`StateStore::erase_requests_from`]).
    pub(crate) fn new(recorded: BTreeMap<Epoch, Vec<String>>) -> Self {
        Erasures {
            recorded: (recorded.into_iter())
                .map(|(epoch, keys)| (epoch, keys.into()))
                .collect(),
            ..Erasures::default()
        }
    }

    /// Queues `request` for the next epoch recorded.
    pub(crate) fn ask(&mut self, request: EraseKey) {
        self.queued.push(request);
    }

    /// Gives the queued requests to the new epoch `epoch`, writing them to `store`; the
    /// epoch's record, written next, makes them durable.
    pub(crate) fn record(&mut self, store: &StateStore, epoch: Epoch) -> Result<()> {
        if self.queued.is_empty() {
            return Ok(());
        }
        let mut keys: Vec<String> = self.queued.iter().map(|r| r.key.clone()).collect();
        keys.sort();
        keys.dedup();
        store.record_erase_requests(epoch, &keys)?;
        self.recorded.insert(epoch, keys.into());
        self.waiting.insert(epoch, std::mem::take(&mut self.queued));
        Ok(())
    }

    /// The keys `epoch`'s end erases.
    pub(crate) fn keys(&self, epoch: Epoch) -> Arc<[String]> {
        self.recorded.get(&epoch).cloned().unwrap_or_default()
    }

    /// `epoch` is committed with the partitions' `erased` keys: records each erasure in
    /// `store` (what `spate state inspect` lists) and answers the epoch's requests.
    pub(crate) fn committed(
        &mut self,
        store: &StateStore,
        epoch: Epoch,
        erased: Vec<Erased>,
    ) -> Result<()> {
        let at = format_rfc3339(now_ms());
        let mut done = Vec::with_capacity(erased.len());
        for e in erased {
            let erasure = Erasure {
                key: e.key,
                partition: e.partition,
                epoch,
                at: at.clone(),
            };
            crate::state::record_erasure(store, erasure.clone())?;
            tracing::info!(key = %erasure.key, partition = erasure.partition, epoch, "erased a key's state");
            done.push((e.request, erasure));
        }
        for request in self.waiting.remove(&epoch).unwrap_or_default() {
            let found = done.iter().find(|(asked, _)| *asked == request.key);
            let _ = request
                .reply
                .send(found.map(|(_, erasure)| erasure.clone()));
        }
        Ok(())
    }

    /// Forgets the erasures of epochs before `epoch` (no replay needs them any more).
    pub(crate) fn forget_before(&mut self, epoch: Epoch) {
        self.recorded = self.recorded.split_off(&epoch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    fn ask(erasures: &mut Erasures, key: &str) -> oneshot::Receiver<Option<Erasure>> {
        let (reply, answer) = oneshot::channel();
        erasures.ask(EraseKey {
            key: key.into(),
            reply,
        });
        answer
    }

    #[test]
    fn a_request_waits_for_the_next_epoch_and_is_answered_at_its_commit() {
        let store = StateStore::open(None).unwrap();
        let mut erasures = Erasures::new(BTreeMap::new());
        let mut found = ask(&mut erasures, "u1");
        let mut missing = ask(&mut erasures, "u9");
        let mut twice = ask(&mut erasures, "u1");
        assert!(erasures.keys(4).is_empty());
        erasures.record(&store, 4).unwrap();
        erasures.record(&store, 5).unwrap();
        assert_eq!(&*erasures.keys(4), ["u1".to_string(), "u9".to_string()]);
        assert!(erasures.keys(5).is_empty(), "each request has one epoch");
        assert_eq!(store.erase_requests_from(0).unwrap().len(), 1);
        assert!(found.try_recv().is_err(), "answered before the commit");
        let erased = Erased {
            request: "u1".into(),
            key: "\"u1\"".into(),
            partition: 3,
        };
        erasures.committed(&store, 4, vec![erased]).unwrap();
        let erasure = found.try_recv().unwrap().unwrap();
        assert_eq!((erasure.key.as_str(), erasure.partition), ("\"u1\"", 3));
        assert_eq!(erasure.epoch, 4);
        assert_eq!(twice.try_recv().unwrap(), Some(erasure.clone()));
        assert_eq!(missing.try_recv().unwrap(), None);
        assert_eq!(crate::state::erasures(&store).unwrap(), [erasure]);
    }

    #[test]
    fn erasures_recorded_before_a_restart_are_sealed_again_until_forgotten() {
        let erasures = BTreeMap::from([(7, vec!["u2".to_string()])]);
        let mut erasures = Erasures::new(erasures);
        assert_eq!(&*erasures.keys(7), ["u2".to_string()]);
        erasures.forget_before(8);
        assert!(erasures.keys(7).is_empty());
    }
}
