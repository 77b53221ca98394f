//! Where a job resumes: from its state directory alone, or from its Kafka changelog.

use super::source::ReadPlan;
use crate::checkpoint::{Epoch, EpochRecord, SourcePosition};
use crate::io::kafka::{Changelog, ChangelogCheckpoint};
use crate::io::sink::{EpochSink, EpochStats, Staged};
use crate::metrics::Metrics;
use crate::retry::{given_up, pauses};
use crate::state::StateStore;
use crate::time::{Millis, BEFORE_TIME};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::time::Duration;

/// Where a job resumes: what its source, supervisor and partitions start from.
pub(super) struct Resume {
    pub(super) read_plan: ReadPlan,
    pub(super) start_watermark: Millis,
    /// The epoch log since the oldest partition checkpoint.
    pub(super) recorded: Vec<EpochRecord>,
    /// The erasures of the recorded epochs, which their replay applies again.
    pub(super) erase_requests: BTreeMap<Epoch, Vec<String>>,
    /// Each partition's checkpoint epoch.
    pub(super) checkpoints: Vec<Epoch>,
    /// The epoch the job starts after (see [`PartitionSetup::base_epoch`]).
    pub(super) base_epoch: Epoch,
}

/// Resumes from the state directory alone: each partition resumes after its own checkpoint;
/// the source resumes after the oldest one and replays the recorded epochs since, which
/// partitions ahead of it skip.
pub(super) fn resume_local(
    store: &StateStore,
    n: u32,
    sink: &dyn EpochSink,
    overwrite: bool,
) -> Result<Resume> {
    let checkpoints: Vec<_> = (0..n)
        .map(|p| store.partition(p)?.checkpoint())
        .collect::<Result<_>>()?;
    let oldest = checkpoints.iter().map(|c| c.epoch).min().unwrap_or(0);
    let recorded = store.epochs_from(oldest)?;
    let last_recorded = recorded.last().map_or(oldest, |r| r.epoch);
    sink.claim_output(last_recorded, &store.describe(), overwrite)?;
    sink.recover(oldest, last_recorded)?;
    let oldest_record = recorded.iter().find(|r| r.epoch == oldest);
    let read_plan = ReadPlan {
        from: oldest_record.map_or(SourcePosition::Start, |r| r.end.clone()),
        next_epoch: oldest + 1,
        replay: recorded
            .iter()
            .filter(|r| r.epoch > oldest)
            .map(|r| (r.epoch, r.end.clone()))
            .collect(),
    };
    if recorded.last().is_some_and(|r| r.final_epoch) {
        tracing::warn!(
            "{} holds a job that read its input to the end, which closed every window: records added to the input since are late; pass --follow to keep a job open to new input",
            store.describe()
        );
    }
    if oldest > 0 || last_recorded > oldest {
        tracing::info!(
            checkpoint = oldest,
            replay = last_recorded - oldest,
            "resuming from the state directory"
        );
    }
    Ok(Resume {
        read_plan,
        start_watermark: oldest_record.map_or(BEFORE_TIME, |r| r.watermark),
        recorded,
        erase_requests: store.erase_requests_from(oldest)?,
        checkpoints: checkpoints.iter().map(|c| c.epoch).collect(),
        base_epoch: 0,
    })
}

/// Resumes a Kafka-source job from its changelog, whoever wrote it: each partition takes the
/// changelog's newest checkpoint (the local copy when it is that one, otherwise rebuilt from
/// the changelog), the outputs of that checkpoint's epoch are committed again (the sink skips
/// what is already visible), and the job goes on from the checkpoints' offsets with epochs
/// numbered after every epoch any owner used. Nothing is replayed: an epoch's output is
/// committed only after its checkpoint is in the changelog.
///
/// So output of a partition's writer newer than the checkpoint read means that checkpoint is
/// not the newest ([`Error::OutputAhead`]): the changelog was read before the last owner's
/// newest record showed, or that owner, dropped from the group while it finished an epoch,
/// still writes. Either way a later read finds the record that output came after: the resume
/// reads the changelog again after a pause, for [`until_caught_up`], before it gives up.
pub(super) fn resume_from_changelog(
    changelog: &Changelog,
    store: &StateStore,
    ids: &[u32],
    sink: &dyn EpochSink,
    metrics: &Metrics,
    inputs: usize,
) -> Result<Resume> {
    let committed = store.committed()?;
    sink.recover(committed, committed)?;
    let restored = retry_while_ahead(until_caught_up(), || {
        let mut restored = restore_partitions(changelog, store, ids, metrics)?;
        resend_outputs(sink, ids, &mut restored)?;
        Ok(restored)
    })?;
    let base_epoch = restored
        .iter()
        .flatten()
        .map(|c| c.meta.epoch)
        .chain(store.epochs_from(0)?.last().map(|r| r.epoch))
        .chain([committed])
        .max()
        .unwrap_or(0);
    let start = start_record(&restored, base_epoch, inputs);
    // The epoch log starts over at the restored position: in-process restarts rewind to it.
    store.forget_all_epochs()?;
    store.record_epoch(&start)?;
    if base_epoch > 0 {
        tracing::info!(epoch = base_epoch, "resuming from the changelog");
    }
    Ok(Resume {
        read_plan: ReadPlan {
            from: start.end.clone(),
            next_epoch: base_epoch + 1,
            replay: Default::default(),
        },
        start_watermark: start.watermark,
        recorded: vec![start],
        erase_requests: BTreeMap::new(),
        checkpoints: vec![base_epoch; ids.len()],
        base_epoch,
    })
}

/// How long a resume waits for the changelog to catch up with the output: pauses from 250 ms,
/// doubling to 4 s, for 30 s in all.
fn until_caught_up() -> backoff::ExponentialBackoff {
    let total = Some(Duration::from_secs(30));
    pauses(Duration::from_millis(250), Duration::from_secs(4), total)
}

/// Runs `attempt` again after each pause of `policy` while it finds output ahead of the changelog;
/// any other error, or the last [`Error::OutputAhead`] once the pauses run out, is returned.
fn retry_while_ahead<T>(
    policy: backoff::ExponentialBackoff,
    mut attempt: impl FnMut() -> Result<T>,
) -> Result<T> {
    let classify = || match attempt() {
        Err(ahead @ Error::OutputAhead { .. }) => Err(backoff::Error::transient(ahead)),
        other => other.map_err(backoff::Error::permanent),
    };
    let note = |ahead: Error, pause: Duration| {
        if let Error::OutputAhead {
            topic,
            partition,
            writer,
            found,
            restored,
        } = ahead
        {
            tracing::warn!(
                "Kafka topic {topic} partition {partition} holds output of epoch {found} from {writer}, after the changelog's newest checkpoint of it (epoch {restored}): its last owner may still be finishing an epoch, or the changelog was read short; reading it again in {:.1} s",
                pause.as_secs_f64()
            );
        }
    };
    backoff::retry_notify(policy, classify, note).map_err(given_up)
}

/// Each partition's newest changelog checkpoint (`None`: the changelog has none), its state
/// laid into the partition's tree unless the local copy is that checkpoint already. A local
/// checkpoint the changelog does not hold is refused.
fn restore_partitions(
    changelog: &Changelog,
    store: &StateStore,
    ids: &[u32],
    metrics: &Metrics,
) -> Result<Vec<Option<ChangelogCheckpoint>>> {
    // Reading the changelog is the slow part (a consumer and a round trip per partition):
    // read every partition's at once.
    let started = std::time::Instant::now();
    let found: Vec<Result<_>> = std::thread::scope(|scope| {
        let readers: Vec<_> = ids
            .iter()
            .map(|&p| scope.spawn(move || changelog.restore(p)))
            .collect();
        readers
            .into_iter()
            .map(|r| {
                r.join().unwrap_or_else(|_| {
                    Err(Error::Panicked {
                        what: "a changelog reader".into(),
                    })
                })
            })
            .collect()
    });
    let read_seconds = started.elapsed().as_secs_f64();
    let mut restored = Vec::with_capacity(ids.len());
    for (&p, found) in ids.iter().zip(found) {
        let started = std::time::Instant::now();
        let partition = store.partition(p)?;
        let local = partition.checkpoint()?;
        match found? {
            Some(found) => {
                let later = found.checkpoint.later.as_ref().map(|l| &l.meta);
                let later_tree = partition.stage(1);
                let stale = local != found.checkpoint.meta
                    || later
                        .is_some_and(|meta| later_tree.checkpoint().ok().as_ref() != Some(meta));
                if stale {
                    tracing::info!(
                        partition = p,
                        epoch = found.checkpoint.meta.epoch,
                        entries = found.state.len(),
                        "restored the partition's state from the changelog"
                    );
                    partition.replace(found.state, &found.checkpoint.meta)?;
                    if let (Some(meta), Some(state)) = (later, found.later_state) {
                        later_tree.replace(state, meta)?;
                    }
                }
                metrics.restore(stale, read_seconds + started.elapsed().as_secs_f64());
                restored.push(Some(found.checkpoint));
            }
            None if local.epoch > 0 => {
                return Err(Error::ChangelogLost {
                    state: store.path().to_path_buf(),
                    partition: p,
                    epoch: local.epoch,
                    topic: changelog.topic().to_string(),
                })
            }
            None => restored.push(None),
        }
    }
    Ok(restored)
}

/// Commits the newest checkpoints' outputs again: their owner may have stopped before they
/// were all visible (the sink skips what is). `restored` is in the order of `ids`, the key
/// partitions whose writers wrote them.
fn resend_outputs(
    sink: &dyn EpochSink,
    ids: &[u32],
    restored: &mut [Option<ChangelogCheckpoint>],
) -> Result<()> {
    let mut resent = Vec::new();
    let mut pending: BTreeMap<Epoch, Vec<Staged>> = BTreeMap::new();
    for (&p, checkpoint) in ids.iter().zip(restored.iter_mut()) {
        let Some(checkpoint) = checkpoint else {
            continue;
        };
        let writer = crate::io::sink::writer_name(p);
        let epoch = checkpoint.meta.epoch;
        for (stream, lines) in std::mem::take(&mut checkpoint.outputs) {
            if let Some(staged) = sink.stage_keyed(epoch, stream, &writer, lines)? {
                pending.entry(epoch).or_default().push(staged);
            }
        }
        if pending.contains_key(&epoch) {
            resent.push((writer, epoch));
        }
    }
    sink.recover_resent(&resent)?;
    for (epoch, staged) in pending {
        sink.commit(epoch, staged, &EpochStats::default())?;
    }
    Ok(())
}

/// The record the job starts after: epoch `base_epoch`, ending at every partition's restored
/// offsets (of each of `inputs` inputs), at the smallest restored watermark.
fn start_record(
    restored: &[Option<ChangelogCheckpoint>],
    base_epoch: Epoch,
    inputs: usize,
) -> EpochRecord {
    let offsets: Vec<Vec<u64>> = restored
        .iter()
        .map(|c| c.as_ref().map_or_else(Vec::new, |c| c.next_offsets.clone()))
        .collect();
    let watermark = restored
        .iter()
        .map(|c| c.as_ref().map_or(BEFORE_TIME, |c| c.meta.watermark))
        .min()
        .unwrap_or(BEFORE_TIME);
    EpochRecord {
        epoch: base_epoch,
        end: SourcePosition::from_partition_offsets(inputs, &offsets),
        watermark,
        processing_time: restored
            .iter()
            .flatten()
            .map(|c| c.meta.processing_time)
            .max()
            .unwrap_or(0),
        final_epoch: false,
        closes_input: false,
        model: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::PartitionCheckpoint;
    use crate::io::sink::{Lines, OutputStream};
    use std::sync::Mutex;

    /// A sink that keeps who staged what, and what was committed.
    #[derive(Default)]
    struct Recorded {
        staged: Mutex<Vec<(Epoch, String, Vec<u8>)>>,
        resent: Mutex<Vec<(String, Epoch)>>,
        committed: Mutex<Vec<Epoch>>,
    }

    impl EpochSink for Recorded {
        fn stage(
            &self,
            epoch: Epoch,
            stream: OutputStream,
            writer: &str,
            bytes: Vec<u8>,
        ) -> Result<Option<Staged>> {
            let record = (epoch, writer.to_string(), bytes.clone());
            self.staged.lock().unwrap().push(record);
            Ok(Staged::in_memory(epoch, stream, bytes))
        }
        fn location(&self, _: OutputStream) -> String {
            "memory".into()
        }
        fn commit(&self, epoch: Epoch, _: Vec<Staged>, _: &EpochStats) -> Result<()> {
            self.committed.lock().unwrap().push(epoch);
            Ok(())
        }
        fn recover(&self, _: Epoch, _: Epoch) -> Result<()> {
            Ok(())
        }
        fn exactly_once(&self) -> bool {
            true
        }
        fn recover_resent(&self, resent: &[(String, Epoch)]) -> Result<()> {
            self.resent.lock().unwrap().extend_from_slice(resent);
            Ok(())
        }
    }

    fn checkpoint(epoch: Epoch, line: &[u8]) -> Option<ChangelogCheckpoint> {
        Some(ChangelogCheckpoint {
            meta: PartitionCheckpoint {
                epoch,
                ..Default::default()
            },
            outputs: vec![(OutputStream::Results, Lines::unkeyed(line.to_vec()))],
            ..Default::default()
        })
    }

    fn ahead(found: Epoch) -> Error {
        Error::OutputAhead {
            topic: "out".into(),
            partition: 0,
            writer: "p000".into(),
            found,
            restored: 7,
        }
    }

    fn quick_pauses(total: Duration) -> backoff::ExponentialBackoff {
        pauses(
            Duration::from_millis(1),
            Duration::from_millis(5),
            Some(total),
        )
    }

    #[test]
    fn output_ahead_of_the_changelog_is_read_again_until_the_changelog_catches_up() {
        let mut attempts = 0;
        let resumed = retry_while_ahead(quick_pauses(Duration::from_secs(10)), || {
            attempts += 1;
            match attempts {
                1 | 2 => Err(ahead(8)),
                _ => Ok(attempts),
            }
        });
        assert_eq!(resumed.unwrap(), 3);
    }

    #[test]
    fn output_that_stays_ahead_stops_the_resume_and_other_errors_are_not_retried() {
        let mut attempts = 0;
        let stuck = retry_while_ahead(quick_pauses(Duration::from_millis(50)), || {
            attempts += 1;
            Err::<(), _>(ahead(8))
        });
        assert!(matches!(stuck, Err(Error::OutputAhead { found: 8, .. })));
        assert!(attempts > 1, "{attempts} attempts");
        let mut attempts = 0;
        let lost = retry_while_ahead(quick_pauses(Duration::from_secs(10)), || {
            attempts += 1;
            Err::<(), _>(Error::Panicked {
                what: "a changelog reader".into(),
            })
        });
        assert!(matches!(lost, Err(Error::Panicked { .. })));
        assert_eq!(attempts, 1);
    }

    #[test]
    fn outputs_are_resent_under_the_writer_of_the_partition_that_made_them() {
        // A group member assigned key partitions 2 and 5 (not 0 and 1).
        let sink = Recorded::default();
        let mut restored = vec![checkpoint(7, b"{\"a\":1}\n"), None, checkpoint(4, b"{}\n")];
        resend_outputs(&sink, &[2, 5, 9], &mut restored).unwrap();
        let staged = sink.staged.lock().unwrap().clone();
        assert_eq!(
            staged,
            vec![
                (7, "p002".to_string(), b"{\"a\":1}\n".to_vec()),
                (4, "p009".to_string(), b"{}\n".to_vec())
            ]
        );
        let resent = sink.resent.lock().unwrap().clone();
        assert_eq!(resent, vec![("p002".into(), 7), ("p009".into(), 4)]);
        assert_eq!(*sink.committed.lock().unwrap(), vec![4, 7]);
    }
}
