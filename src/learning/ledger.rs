//! The supervisor's side of the shared model: examples waiting for their micro-batch to close,
//! the versions learned so far, and their persistence (see the module doc of
//! [`crate::learning`] for the rules).

use super::{Learned, ModelHistory, ModelMark, ModelSpec, ModelVersion};
use crate::checkpoint::{Epoch, EpochRecord};
use crate::state::{StateStore, StoredModel};
use crate::time::{Millis, BEFORE_TIME, END_OF_TIME};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the shared model learned: in one commit, or over a job.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ModelReport {
    /// The newest version.
    pub version: u64,
    /// Versions made (non-empty micro-batches learned).
    pub updates: u64,
    /// Examples they learned.
    pub examples: u64,
    /// Examples dropped because their micro-batch was learned already.
    pub dropped: u64,
}

impl ModelReport {
    /// Adds one commit's learning, after which the newest version is `version`.
    pub(crate) fn learned(&mut self, version: u64, commit: &ModelReport) {
        self.version = version;
        self.updates += commit.updates;
        self.examples += commit.examples;
        self.dropped += commit.dropped;
    }

    /// Adds a later run's report.
    pub(crate) fn absorb(&mut self, other: &ModelReport) {
        self.learned(other.version, other);
    }
}

/// The shared model's versions and waiting examples, as the supervisor keeps them.
pub(crate) struct ModelLedger {
    spec: Arc<ModelSpec>,
    store: StateStore,
    /// How far behind the watermark records are still taken: how old a version seals keep.
    lateness: Millis,
    /// The last epoch whose examples are included (learned or waiting).
    epoch: Epoch,
    closed_until: Millis,
    /// Every version: its encoding and what partitions read.
    versions: BTreeMap<u64, (Vec<u8>, Arc<ModelVersion>)>,
    /// Examples by the start of their micro-batch.
    waiting: BTreeMap<Millis, Vec<Learned>>,
}

impl ModelLedger {
    /// The model `store` holds, or `spec`'s initial one (`initial` replaces it: a `--model`
    /// file, for a job with no model yet), which is stored at once: a restart scores what
    /// waits for version 0 with it.
    pub(crate) fn open(
        spec: Arc<ModelSpec>,
        store: StateStore,
        lateness: Millis,
        initial: Option<Vec<u8>>,
    ) -> Result<Self> {
        let stored = match store.load_model()? {
            Some(stored) => stored,
            None => {
                let initial = (0, BEFORE_TIME, initial.unwrap_or(spec.initial.clone()));
                store.save_model((0, BEFORE_TIME), std::slice::from_ref(&initial), &[], &[])?;
                StoredModel {
                    epoch: 0,
                    closed_until: BEFORE_TIME,
                    versions: vec![initial],
                    waiting: Vec::new(),
                }
            }
        };
        let mut ledger = ModelLedger {
            spec,
            store,
            lateness,
            epoch: stored.epoch,
            closed_until: stored.closed_until,
            versions: BTreeMap::new(),
            waiting: BTreeMap::new(),
        };
        for (version, covers, bytes) in stored.versions {
            ledger.add_version(version, covers, bytes)?;
        }
        for (time, example) in stored.waiting {
            let start = ledger.spec.batch_start(time);
            ledger
                .waiting
                .entry(start)
                .or_default()
                .push((time, example));
        }
        Ok(ledger)
    }

    fn add_version(&mut self, version: u64, covers: Millis, bytes: Vec<u8>) -> Result<()> {
        let value = self
            .spec
            .decode(&bytes)
            .map_err(|reason| self.error(reason))?;
        let decoded = Arc::new(ModelVersion {
            version,
            covers,
            value,
        });
        self.versions.insert(version, (bytes, decoded));
        Ok(())
    }

    fn error(&self, reason: String) -> Error {
        Error::Model {
            model: self.spec.type_name,
            reason,
        }
    }

    /// The newest version and how far it learned: what a new epoch record notes.
    pub(crate) fn mark(&self) -> ModelMark {
        ModelMark {
            version: self.versions.last_key_value().map_or(0, |(v, _)| *v),
            closed_until: self.closed_until,
        }
    }

    /// The versions `record`'s seal hands out: up to its mark, from the oldest one a record of
    /// its epoch could need (`previous` is the record before it, when known).
    pub(crate) fn history(
        &self,
        record: &EpochRecord,
        previous: Option<&EpochRecord>,
    ) -> Arc<ModelHistory> {
        let oldest_needed = previous.map_or(BEFORE_TIME, |p| self.oldest_needed_after(p));
        let mark = record.model;
        let upto: Vec<_> = (self.versions.range(..=mark.version))
            .map(|(_, (_, v))| v.clone())
            .collect();
        let first = upto.partition_point(|v| v.covers <= oldest_needed);
        Arc::new(ModelHistory {
            batch: self.spec.batch,
            closed_until: mark.closed_until,
            versions: upto[first.saturating_sub(1)..].to_vec(),
        })
    }

    /// The earliest time a record of an epoch after `record`'s may be scored at: its watermark
    /// less the allowed lateness (records behind it are late), or what the model had not
    /// learned by then.
    fn oldest_needed_after(&self, record: &EpochRecord) -> Millis {
        let behind = record.watermark.saturating_sub(self.lateness);
        record.model.closed_until.min(self.spec.batch_start(behind))
    }

    /// Forgets, in memory and in the store, the versions no epoch after `oldest` can need:
    /// `oldest` is the record of the oldest epoch a replay starts after (every partition's
    /// checkpoint is at or after it), so the versions older than the one for its
    /// [oldest needed time](Self::oldest_needed_after) are never handed out again.
    pub(crate) fn prune(&mut self, oldest: &EpochRecord) -> Result<()> {
        let needed = self.oldest_needed_after(oldest);
        // The versions that learned nothing after `needed`: the newest of them is kept.
        let older = (self.versions.values())
            .take_while(|(_, v)| v.covers <= needed)
            .count();
        if older < 2 {
            return Ok(());
        }
        let kept = *self.versions.keys().nth(older - 1).expect("counted above");
        self.versions = self.versions.split_off(&kept);
        self.store.forget_model_versions(kept)
    }

    /// Takes the examples of committed `epoch` and learns every micro-batch its `watermark`
    /// closed, then stores the new versions and the examples still waiting, durably, before
    /// the epoch commits. An epoch included before (a replay after a restart) is skipped.
    pub(crate) fn commit(
        &mut self,
        epoch: Epoch,
        learned: Vec<Learned>,
        watermark: Millis,
    ) -> Result<ModelReport> {
        let mut learning = ModelReport::default();
        if epoch <= self.epoch {
            return Ok(learning);
        }
        // How many examples each micro-batch got in this epoch (the last ones of its list).
        let mut arrived: BTreeMap<Millis, usize> = BTreeMap::new();
        for (time, example) in learned {
            let start = self.spec.batch_start(time);
            if start.saturating_add(self.spec.batch) <= self.closed_until {
                learning.dropped += 1;
                continue;
            }
            *arrived.entry(start).or_default() += 1;
            self.waiting.entry(start).or_default().push((time, example));
        }
        let close = match watermark == END_OF_TIME {
            true => END_OF_TIME,
            false => self.spec.batch_start(watermark),
        };
        let mut made = Vec::new();
        let mut closed = Vec::new();
        while let Some(entry) = self.waiting.first_entry() {
            let start = *entry.key();
            if start.saturating_add(self.spec.batch) > close {
                break;
            }
            let mut examples = entry.remove();
            examples.sort_unstable();
            let version = self.mark().version + 1;
            let covers = start.saturating_add(self.spec.batch);
            let bytes = self.learn_batch(&examples)?;
            made.push((version, covers, bytes.clone()));
            self.add_version(version, covers, bytes)?;
            arrived.remove(&start);
            closed.push(start);
            learning.updates += 1;
            learning.examples += examples.len() as u64;
        }
        self.epoch = epoch;
        self.closed_until = self.closed_until.max(close);
        let still_waiting: Vec<(Millis, &[Learned])> = (arrived.into_iter())
            .map(|(start, n)| {
                let examples = &self.waiting[&start];
                (start, &examples[examples.len() - n..])
            })
            .collect();
        let saved = (epoch, self.closed_until);
        self.store
            .save_model(saved, &made, &still_waiting, &closed)?;
        Ok(learning)
    }

    /// The newest version after learning `examples`, encoded.
    fn learn_batch(&self, examples: &[Learned]) -> Result<Vec<u8>> {
        let newest = self.versions.last_key_value().map(|(_, (b, _))| b);
        let newest = newest.expect("the ledger always holds the initial version");
        let refs: Vec<&[u8]> = examples.iter().map(|(_, e)| e.as_slice()).collect();
        self.spec
            .learn(newest, &refs)
            .map_err(|reason| self.error(reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learning::SharedModel;
    use serde::{Deserialize, Serialize};

    /// A model that notes each micro-batch it learned, in order.
    #[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
    struct Batches(Vec<Vec<i64>>);

    impl SharedModel for Batches {
        type Example = i64;

        fn learn(&mut self, examples: &[i64]) -> Result<(), String> {
            self.0.push(examples.to_vec());
            Ok(())
        }
    }

    fn example(time: Millis, value: i64) -> Learned {
        (time, bincode::serialize(&value).unwrap())
    }

    fn ledger(store: &StateStore) -> ModelLedger {
        let spec = Arc::new(ModelSpec::of(&Batches::default(), 100));
        ModelLedger::open(spec, store.clone(), 0, None).unwrap()
    }

    /// The record of `epoch` at `watermark`, with `ledger`'s mark.
    fn record(ledger: &ModelLedger, epoch: Epoch, watermark: Millis) -> EpochRecord {
        EpochRecord {
            epoch,
            end: crate::checkpoint::SourcePosition::Start,
            watermark,
            processing_time: 0,
            final_epoch: false,
            closes_input: false,
            model: ledger.mark(),
        }
    }

    fn newest(ledger: &ModelLedger) -> Batches {
        let history = ledger.history(&record(ledger, 1, 0), None);
        let version = history.versions.last().unwrap();
        version.value.downcast_ref::<Batches>().unwrap().clone()
    }

    #[test]
    fn a_micro_batch_is_learned_once_its_end_passed_in_one_sorted_update() {
        let store = StateStore::open(None).unwrap();
        let mut ledger = ledger(&store);
        let first = vec![
            example(150, 3),
            example(20, 2),
            example(120, 1),
            example(10, 9),
        ];
        let learned = ledger.commit(1, first, 130).unwrap();
        assert_eq!(
            (learned.updates, learned.examples),
            (1, 2),
            "[0, 100) closed"
        );
        assert_eq!(newest(&ledger), Batches(vec![vec![9, 2]]), "by time");
        let learned = ledger.commit(2, vec![example(250, 4)], 420).unwrap();
        assert_eq!(
            (
                learned.updates,
                ledger.mark().version,
                ledger.mark().closed_until
            ),
            (2, 3, 400),
            "[100, 200) and [200, 300) learned, [300, 400) was empty"
        );
        assert_eq!(newest(&ledger).0[1..], [vec![1, 3], vec![4]]);
        let late = ledger.commit(3, vec![example(350, 5)], 430).unwrap();
        assert_eq!(late.dropped, 1, "its micro-batch was learned");
    }

    #[test]
    fn a_reopened_ledger_goes_on_where_it_stopped_and_skips_epochs_it_has() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(Some(dir.path())).unwrap();
        let _ = ledger(&store);
        let mut ledger = ledger(&store);
        assert_eq!(
            newest(&ledger),
            Batches::default(),
            "the initial version is stored"
        );
        ledger
            .commit(1, vec![example(10, 1), example(150, 2)], 100)
            .unwrap();
        ledger.commit(2, vec![example(160, 3)], 120).unwrap();
        let mut reopened = self::ledger(&store);
        assert_eq!(reopened.mark(), ledger.mark());
        let replayed = reopened.commit(2, vec![example(160, 3)], 120).unwrap();
        assert_eq!(replayed, ModelReport::default(), "epoch 2 is in already");
        reopened.commit(3, vec![], 200).unwrap();
        assert_eq!(newest(&reopened), Batches(vec![vec![1], vec![2, 3]]));
    }

    #[test]
    fn versions_no_replay_can_need_are_forgotten_in_memory_and_in_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(Some(dir.path())).unwrap();
        let mut ledger = ledger(&store);
        for epoch in 1..=5 {
            let time = epoch as Millis * 100 - 50;
            ledger
                .commit(epoch, vec![example(time, epoch as i64)], time + 50)
                .unwrap();
        }
        let versions = |store: &StateStore| -> Vec<u64> {
            let stored = store.load_model().unwrap().unwrap();
            stored.versions.iter().map(|v| v.0).collect()
        };
        assert_eq!(versions(&store), [0, 1, 2, 3, 4, 5]);
        // Every partition checkpointed epoch 3, sealed at watermark 320: a record after it is
        // at 320 or later, in micro-batch [300, 400), scored by version 3 (it learned up to 300).
        let oldest = record(&ledger, 3, 320);
        let before = ledger.history(&record(&ledger, 4, 420), Some(&oldest));
        ledger.prune(&oldest).unwrap();
        assert_eq!(versions(&store), [3, 4, 5]);
        let after = ledger.history(&record(&ledger, 4, 420), Some(&oldest));
        let numbers = |h: &ModelHistory| h.versions.iter().map(|v| v.version).collect::<Vec<_>>();
        assert_eq!(
            numbers(&after),
            numbers(&before),
            "a replay gets the same versions"
        );
        assert_eq!(after.for_time(320).unwrap().version, 3);
        let reopened = self::ledger(&store);
        assert_eq!(
            (reopened.mark(), newest(&reopened)),
            (ledger.mark(), newest(&ledger))
        );
    }
}
