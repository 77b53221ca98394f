//! A Kafka-source job as a member of its consumer group: one job per assignment, leaving once
//! the group has read every partition to its end (`--until-end`).

use super::open::{kafka_end_offsets, key_partitions};
use super::signals::wait_for_stop_signal;
use super::{run_job, JobReport, RunConfig};
use crate::io::kafka::group::GroupMember;
use crate::io::kafka::Changelog;
use crate::metrics::Metrics;
use crate::operator::KeyedOperator;
use crate::pipeline::Plan;
use crate::state::StateStore;
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often a member whose partitions are done says what the group still waits for.
const WAITING_NOTICE: Duration = Duration::from_secs(30);

/// The Kafka topic partitions a job owns as a member of its consumer group.
pub(super) struct Assignment {
    /// The topic partitions, ascending.
    pub(super) ids: Vec<u32>,
    pub(super) member: Arc<GroupMember>,
    /// Raised when a rebalance takes the partitions away.
    pub(super) revoked: Arc<AtomicBool>,
}

/// Runs a Kafka-source job as a member of its consumer group: each assignment runs as one job
/// on the assigned partitions, stopped at an epoch boundary when a rebalance revokes them. With
/// `--until-end` the instance leaves once the group has committed every partition's end
/// offset and every partition's last checkpoint is final, whichever member processed it.
pub(super) fn run_in_group<R, Op, Out>(
    plan: &Plan<R, Op, Out>,
    config: &RunConfig,
    topic: &crate::io::kafka::KafkaTopic,
    store: &StateStore,
    metrics: &Metrics,
) -> Result<JobReport>
where
    R: DeserializeOwned + Send + 'static,
    Op: KeyedOperator,
    Out: Serialize + Send + 'static,
{
    let started = std::time::Instant::now();
    let app_id = config.kafka.app_id(&plan.name);
    let sources = [config.source.clone()];
    let n = key_partitions(config, &plan.inputs, &sources, &app_id)?;
    let end = kafka_end_offsets(config, store, topic, n)?;
    let member = Arc::new(GroupMember::join(topic, &config.kafka, &app_id)?);
    // With --until-end: where each partition ends, and the changelog that tells whether its
    // last checkpoint is final.
    let bounded = match end {
        Some(end) => Some((
            end,
            Changelog::open(&config.kafka, &topic.brokers, &app_id, &plan.name, n)?,
        )),
        None => None,
    };
    if config.handle_signals {
        watch_stop_signals(config.stop.clone())?;
    }
    let job_config = RunConfig {
        handle_signals: false,
        ..config.clone()
    };
    tracing::info!(group = %app_id, "joined the consumer group; waiting for partitions");
    let mut total = JobReport::default();
    let mut told = std::time::Instant::now();
    while !config.stop.load(Ordering::Acquire) {
        metrics.status().idle();
        let Some(taken) = member.handover().take(Duration::from_millis(250)) else {
            if let Some((end, changelog)) = &bounded {
                let Some(waiting) = awaited(&member, changelog, end)? else {
                    tracing::info!(
                        "the group has read every partition to its end and emitted every window: leaving"
                    );
                    break;
                };
                if told.elapsed() >= WAITING_NOTICE {
                    tracing::info!(%waiting, "waiting for the group to finish");
                    told = std::time::Instant::now();
                }
            }
            continue;
        };
        metrics.rebalance("assigned");
        if taken.ids.is_empty() {
            tracing::info!("no partitions assigned to this instance: waiting");
            continue;
        }
        tracing::info!(partitions = ?taken.ids, "partitions assigned: starting");
        let assignment = Assignment {
            ids: taken.ids,
            member: member.clone(),
            revoked: taken.stop,
        };
        let result = run_job(plan, &job_config, store, metrics, Some(&assignment));
        member.handover().end();
        let report = result?;
        if assignment.revoked.load(Ordering::Acquire) {
            metrics.rebalance("revoked");
        }
        total.absorb(&report);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// Raises `stop` on SIGINT or SIGTERM, from a thread of its own (a group member runs one job
/// after another, so the signals outlive each job).
fn watch_stop_signals(stop: Arc<AtomicBool>) -> Result<()> {
    std::thread::Builder::new()
        .name("spate-signals".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a signal runtime starts");
            runtime.block_on(wait_for_stop_signal());
            tracing::info!("stop requested: finishing the current epoch");
            stop.store(true, Ordering::Release);
        })
        .map(|_| ())
        .map_err(Error::thread("signal"))
}

/// What a bounded group (`--until-end`) still waits for before its members leave, or `None`
/// when it is done: the group's committed offsets at every partition's end, and every
/// partition's final checkpoint (see [`unfinished`]).
fn awaited(member: &GroupMember, changelog: &Changelog, end: &[u64]) -> Result<Option<String>> {
    if !member.all_committed(end)? {
        return Ok(Some(
            "the group's committed offsets to reach every partition's end".into(),
        ));
    }
    Ok(unfinished(changelog, end)?.map(|p| format!("partition {p}'s final checkpoint")))
}

/// The first partition whose newest checkpoint in `changelog` is not final (taken at the end
/// of a bounded run, with the watermark at +∞ in every stage, so every window was emitted, and
/// at or after `end`). A committed group offset alone does not say that: a member that stops
/// (or dies) after reading to the end but before its final epoch leaves windows open.
fn unfinished(changelog: &Changelog, end: &[u64]) -> Result<Option<u32>> {
    for (p, &end) in end.iter().enumerate() {
        if end == 0 {
            continue; // an empty partition has nothing to emit
        }
        let fin = changelog
            .newest_checkpoint(p as u32)?
            .is_some_and(|newest| {
                let ended = |meta: &crate::checkpoint::PartitionCheckpoint| {
                    meta.watermark == crate::time::END_OF_TIME
                };
                ended(&newest.meta)
                    && newest.later.as_ref().is_none_or(ended)
                    && newest.next_offsets.first().is_some_and(|&next| next >= end)
            });
        if !fin {
            return Ok(Some(p as u32));
        }
    }
    Ok(None)
}
