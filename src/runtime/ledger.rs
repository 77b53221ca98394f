//! The supervisor's epoch ledger: the epochs recorded but not yet committed, each partition's
//! answer for them, and the order they commit in. Free of actors, so its rules are unit-tested
//! on their own:
//!
//! - an epoch is ready once every partition answered it, and epochs leave in order, so a
//!   later epoch never commits before an earlier one;
//! - a partition's "skipped" answer (it finished the epoch before a replay) never replaces
//!   its real answer, and a real answer replaces a skipped one;
//! - a replayed cut re-read the same input, so its counts replace the first attempt's, and a
//!   partition that failed finishing an epoch answers it again;
//! - an epoch at or below the committed one is not tracked again.

use super::messages::{EpochCut, EpochDone};
use crate::checkpoint::{Epoch, EpochRecord};
use crate::io::sink::{EpochStats, Staged};
use std::collections::BTreeMap;
use std::time::Instant;

/// An epoch that is recorded but not yet committed.
struct PendingEpoch {
    record: EpochRecord,
    done: Vec<Option<EpochDone>>,
    source_staged: Option<Staged>,
    records: u64,
    dead_letters: u64,
    first_dead_error: Option<String>,
    consumer_lag: Option<u64>,
    times: CutTimes,
    ends_job: bool,
}

/// When an epoch's reading began and ended, and when it was recorded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CutTimes {
    /// The previous epoch's cut, or the job's start: when reading the epoch began.
    pub(crate) previous_cut: Instant,
    /// When the source cut it.
    pub(crate) cut: Instant,
    /// When its record was written and the partitions were told to seal it.
    pub(crate) recorded: Instant,
}

/// An epoch every partition finished, gathered for its commit.
pub(crate) struct ReadyEpoch {
    /// The epoch.
    pub(crate) epoch: Epoch,
    /// Everything staged for it: the source's dead letters first, then each partition's.
    pub(crate) staged: Vec<Staged>,
    /// Its counts, for the sink's commit.
    pub(crate) stats: EpochStats,
    /// State keys expired in it.
    pub(crate) expired: u64,
    /// What the operators counted in it.
    pub(crate) counters: crate::operator::Counters,
    /// The examples the operators taught the shared model in it, by partition.
    pub(crate) learned: Vec<crate::learning::Learned>,
    /// It exhausted the input, and the job goes on for one more epoch.
    pub(crate) closes_input: bool,
    /// Why its first dead letter was rejected.
    pub(crate) first_dead_error: Option<String>,
    /// Kafka: records not yet read at its cut, over the source partitions.
    pub(crate) consumer_lag: Option<u64>,
    /// When it was read, cut and recorded.
    pub(crate) times: CutTimes,
    /// The job ends with it.
    pub(crate) ends_job: bool,
    /// The keys its end erased.
    pub(crate) erased: Vec<super::messages::Erased>,
}

/// Epochs between their record and their commit.
pub(crate) struct EpochLedger {
    partitions: usize,
    pending: BTreeMap<Epoch, PendingEpoch>,
    committed: Epoch,
    /// The last cut, or the ledger's creation (the job's start).
    last_cut: Instant,
}

impl EpochLedger {
    /// A ledger for `partitions` partitions whose output is committed up to `committed`.
    pub(crate) fn new(partitions: usize, committed: Epoch) -> Self {
        EpochLedger {
            partitions,
            pending: BTreeMap::new(),
            committed,
            last_cut: Instant::now(),
        }
    }

    /// The last committed epoch.
    pub(crate) fn committed(&self) -> Epoch {
        self.committed
    }

    /// Tracks `record`'s epoch until it commits, with the counts and staged dead letters of
    /// its cut (a replayed cut's replace the first attempt's). Committed epochs are ignored.
    pub(crate) fn cut(&mut self, record: &EpochRecord, cut: &mut EpochCut, ends_job: bool) {
        let previous_cut = std::mem::replace(&mut self.last_cut, cut.at);
        if record.epoch <= self.committed {
            return;
        }
        let times = CutTimes {
            previous_cut,
            cut: cut.at,
            recorded: Instant::now(),
        };
        let n = self.partitions;
        let pending = self
            .pending
            .entry(record.epoch)
            .or_insert_with(|| PendingEpoch {
                record: record.clone(),
                done: (0..n).map(|_| None).collect(),
                source_staged: None,
                records: 0,
                dead_letters: 0,
                first_dead_error: None,
                consumer_lag: None,
                times,
                ends_job,
            });
        pending.source_staged = cut.staged.take();
        pending.records = cut.records;
        pending.dead_letters = cut.dead_letters;
        pending.first_dead_error = cut.first_dead_error.take();
        pending.times = times;
        pending.consumer_lag = (cut.lag.as_ref()).map(|lag| lag.iter().map(|(_, n)| n).sum());
        pending.ends_job |= ends_job;
    }

    /// Records a partition's answer for an epoch (ignored once the epoch committed).
    pub(crate) fn done(&mut self, done: EpochDone) {
        let Some(pending) = self.pending.get_mut(&done.epoch) else {
            return;
        };
        let slot = &mut pending.done[done.partition as usize];
        if slot.is_none() || !done.skipped {
            *slot = Some(done);
        }
    }

    /// Forgets a partition's answer for an epoch: it failed finishing it and will answer
    /// again after the replay.
    pub(crate) fn forget_answer(&mut self, partition: u32, epoch: Epoch) {
        if let Some(pending) = self.pending.get_mut(&epoch) {
            pending.done[partition as usize] = None;
        }
    }

    /// The oldest epoch, when every partition answered it, taken out of the ledger as
    /// committed: call until `None`, committing each in turn.
    pub(crate) fn pop_ready(&mut self) -> Option<ReadyEpoch> {
        let entry = self.pending.first_entry()?;
        if entry.get().done.iter().any(Option::is_none) {
            return None;
        }
        let (epoch, pending) = entry.remove_entry();
        self.committed = epoch;
        let mut staged: Vec<Staged> = pending.source_staged.into_iter().collect();
        let (mut outputs, mut late, mut expired) = (0, 0, 0);
        let mut counters = crate::operator::Counters::default();
        let (mut learned, mut erased) = (Vec::new(), Vec::new());
        for done in pending.done.into_iter().flatten() {
            learned.extend(done.learned);
            erased.extend(done.erased);
            outputs += done.outputs;
            late += done.late;
            expired += done.expired;
            counters.merge(&done.counters);
            staged.extend(done.staged);
        }
        Some(ReadyEpoch {
            epoch,
            staged,
            stats: EpochStats {
                records_in: pending.records,
                outputs,
                late,
                dead_letters: pending.dead_letters,
                watermark: pending.record.watermark,
                final_epoch: pending.record.final_epoch,
            },
            expired,
            counters,
            learned,
            closes_input: pending.record.closes_input,
            first_dead_error: pending.first_dead_error,
            consumer_lag: pending.consumer_lag,
            times: pending.times,
            ends_job: pending.ends_job,
            erased,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::SourcePosition;

    fn record(epoch: Epoch) -> EpochRecord {
        EpochRecord {
            epoch,
            end: SourcePosition::Start,
            watermark: epoch as i64 * 10,
            processing_time: 0,
            final_epoch: false,
            closes_input: false,
            model: Default::default(),
        }
    }

    fn cut(epoch: Epoch, records: u64) -> EpochCut {
        EpochCut {
            epoch,
            end: SourcePosition::Start,
            sent: vec![],
            dead_sent: vec![],
            exchanged_sent: vec![],
            records,
            dead_letters: 0,
            first_dead_error: None,
            staged: None,
            end_of_input: false,
            closes_input: false,
            stopping: false,
            lag: None,
            waiting: None,
            inputs_ended: Vec::new(),
            at: Instant::now(),
        }
    }

    fn done(partition: u32, epoch: Epoch, outputs: u64, skipped: bool) -> EpochDone {
        EpochDone {
            partition,
            epoch,
            skipped,
            staged: vec![],
            outputs,
            late: 1,
            expired: 0,
            counters: Default::default(),
            learned: vec![],
            erased: vec![],
        }
    }

    fn ledger_with(epochs: &[Epoch]) -> EpochLedger {
        let mut ledger = EpochLedger::new(2, 0);
        for &e in epochs {
            ledger.cut(&record(e), &mut cut(e, 100), false);
        }
        ledger
    }

    #[test]
    fn epochs_commit_in_order_once_every_partition_answered() {
        let mut ledger = ledger_with(&[1, 2]);
        ledger.done(done(0, 2, 5, false));
        ledger.done(done(1, 2, 5, false));
        assert!(ledger.pop_ready().is_none(), "epoch 2 waits for epoch 1");
        ledger.done(done(0, 1, 3, false));
        assert!(
            ledger.pop_ready().is_none(),
            "partition 1 has not answered epoch 1"
        );
        ledger.done(done(1, 1, 4, false));
        let first = ledger.pop_ready().expect("epoch 1 is ready");
        assert_eq!(
            (first.epoch, first.stats.outputs, first.stats.late),
            (1, 7, 2)
        );
        assert_eq!((first.stats.records_in, first.stats.watermark), (100, 10));
        assert_eq!(ledger.pop_ready().map(|r| r.epoch), Some(2));
        assert!(ledger.pop_ready().is_none());
        assert_eq!(ledger.committed(), 2);
    }

    #[test]
    fn a_skipped_answer_never_replaces_a_real_one() {
        let mut ledger = ledger_with(&[1]);
        ledger.done(done(0, 1, 3, false));
        ledger.done(done(0, 1, 0, true));
        ledger.done(done(1, 1, 0, true));
        ledger.done(done(1, 1, 4, false));
        assert_eq!(ledger.pop_ready().map(|r| r.stats.outputs), Some(7));
    }

    #[test]
    fn a_replayed_cut_replaces_the_counts_and_committed_epochs_are_not_tracked() {
        let mut ledger = ledger_with(&[1]);
        ledger.cut(&record(1), &mut cut(1, 40), true);
        ledger.done(done(0, 1, 0, false));
        ledger.done(done(1, 1, 0, false));
        let ready = ledger.pop_ready().expect("ready");
        assert_eq!((ready.stats.records_in, ready.ends_job), (40, true));
        ledger.cut(&record(1), &mut cut(1, 40), false);
        ledger.done(done(0, 1, 9, false));
        assert!(ledger.pop_ready().is_none(), "epoch 1 committed already");
        assert_eq!(ledger.committed(), 1);
    }
}
