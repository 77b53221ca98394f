//! Consumer-group membership of a Kafka source: which of the topic's partitions this instance
//! owns. Every `spate run` with one `--app-id` joins the group `<app-id>`; Kafka's group
//! coordinator spreads the partitions over the members and moves them when one joins, leaves
//! or dies, which is the only cluster mechanism spate has.
//!
//! The member only holds membership: it pauses what it is assigned and never reads records.
//! The job reads its partitions with its own consumer, at the offsets of their checkpoints.
//! Partitions move with the eager protocol: before a rebalance hands partitions to another
//! member, the revoke callback stops the running job at an epoch boundary and waits until it
//! has committed its last epoch, so no output of a revoked partition is sent after the next
//! owner has started; and a job starts only on the newest assignment, while it stands
//! ([`Handover`]).
//!
//! Brokers can get an assignment wrong (tansu 0.6 does, when a member dies during a
//! rebalance); `repair` notices and rejoins the group.

mod handover;
mod repair;

use crate::io::kafka::{client_error, KafkaSettings, KafkaTopic};
use crate::{Error, Result};
pub use handover::{Handover, Taken};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use repair::AssignmentRepair;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

struct MemberContext {
    topic: String,
    handover: Arc<Handover>,
    repair: AssignmentRepair,
}

impl MemberContext {
    fn partitions(&self, list: &TopicPartitionList) -> Vec<u32> {
        let mut ids: Vec<u32> = list
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition() as u32)
            .collect();
        ids.sort_unstable();
        ids
    }
}

impl ClientContext for MemberContext {}

impl ConsumerContext for MemberContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            if list.count() > 0 {
                tracing::info!(
                    partitions = list.count(),
                    "partitions revoked: stopping the job"
                );
                self.handover.revoke();
            }
            // Even an empty revocation starts a rebalance: no repair while it runs.
            self.repair.revoked(self.partitions(list));
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                // The member never reads: the job reads with its own consumer.
                if let Err(e) = consumer.pause(list) {
                    tracing::warn!("cannot pause the membership consumer: {e}");
                }
                let ids = self.partitions(list);
                if self.repair.assigned(&ids) {
                    self.handover.offer(ids);
                }
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!("consumer group rebalance failed: {e}"),
        }
    }
}

/// This instance's membership in the group of a Kafka source.
pub struct GroupMember {
    /// `None` once dropped (see `Drop`).
    consumer: Option<Arc<BaseConsumer<MemberContext>>>,
    handover: Arc<Handover>,
    shutdown: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    topic: KafkaTopic,
}

impl std::fmt::Debug for GroupMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GroupMember({})", self.topic)
    }
}

impl GroupMember {
    /// Joins the group `app_id` for `topic`. Jobs take its assignments from
    /// [`handover`](Self::handover).
    pub fn join(topic: &KafkaTopic, settings: &KafkaSettings, app_id: &str) -> Result<Self> {
        let handover = Arc::new(Handover::default());
        let context = MemberContext {
            topic: topic.topic.clone(),
            handover: handover.clone(),
            repair: AssignmentRepair::default(),
        };
        let consumer: BaseConsumer<MemberContext> = settings
            .client_config(
                &topic.brokers,
                &[
                    ("group.id", app_id),
                    ("enable.auto.commit", "false"),
                    ("enable.auto.offset.store", "false"),
                    ("partition.assignment.strategy", "range,roundrobin"),
                ],
            )
            .create_with_context(context)
            .map_err(|e| client_error(&topic.brokers, e))?;
        consumer.subscribe(&[&topic.topic]).map_err(|e| {
            Error::kafka(
                format!("cannot join the consumer group {app_id} for {topic}"),
                e,
            )
        })?;
        let consumer = Arc::new(consumer);
        let shutdown = Arc::new(AtomicBool::new(false));
        let thread = {
            let (consumer, shutdown) = (consumer.clone(), shutdown.clone());
            let (topic_name, group) = (topic.topic.clone(), app_id.to_string());
            std::thread::Builder::new()
                .name("spate-group".into())
                .spawn(move || {
                    // Polling serves the group protocol's callbacks; the member reads nothing.
                    while !shutdown.load(Ordering::Acquire) {
                        if let Some(Err(e)) = consumer.poll(Duration::from_millis(100)) {
                            tracing::debug!("consumer group: {e}");
                        }
                        let repair = &consumer.context().repair;
                        if repair.rejoin_due(&*consumer, &group, &topic_name) {
                            consumer.unsubscribe();
                            if let Err(e) = consumer.subscribe(&[&topic_name]) {
                                tracing::error!("cannot rejoin the consumer group: {e}");
                            }
                        }
                    }
                })
                .map_err(Error::thread("group"))?
        };
        Ok(GroupMember {
            consumer: Some(consumer),
            handover,
            shutdown,
            thread: Some(thread),
            topic: topic.clone(),
        })
    }

    fn consumer(&self) -> &BaseConsumer<MemberContext> {
        self.consumer
            .as_ref()
            .expect("the member is live until dropped")
    }

    /// Where a job takes the group's assignment from, and says when it stopped.
    pub fn handover(&self) -> &Handover {
        &self.handover
    }

    /// Commits `offsets` (partition of `topic`, next offset) to the group, for monitoring
    /// tools. `topic` is the group's topic or another input of the job, read at the same
    /// partitions (the group commits offsets of any topic).
    pub fn commit(&self, topic: &str, offsets: &[(u32, u64)]) -> Result<()> {
        let mut list = TopicPartitionList::new();
        for &(p, offset) in offsets {
            list.add_partition_offset(topic, p as i32, Offset::Offset(offset as i64))
                .map_err(|e| Error::kafka("cannot commit offsets", e))?;
        }
        self.consumer()
            .commit(&list, CommitMode::Async)
            .map_err(|e| Error::kafka("cannot commit offsets to the consumer group", e))
    }

    /// Whether the group has committed at least `end[p]` for every partition `p` of the topic:
    /// every member's bounded run (`--until-end`) is done.
    pub fn all_committed(&self, end: &[u64]) -> Result<bool> {
        let mut list = TopicPartitionList::new();
        for p in 0..end.len() {
            list.add_partition(&self.topic.topic, p as i32);
        }
        let committed = self
            .consumer()
            .committed_offsets(list, Duration::from_secs(10))
            .map_err(|e| Error::kafka("cannot read the group's offsets", e))?;
        Ok(end.iter().enumerate().all(|(p, &end)| {
            end == 0
                || committed
                    .find_partition(&self.topic.topic, p as i32)
                    .is_some_and(|e| matches!(e.offset(), Offset::Offset(o) if o as u64 >= end))
        }))
    }
}

impl Drop for GroupMember {
    /// Leaves the group by letting the session expire instead of sending LeaveGroup, as Kafka
    /// Streams does (`internal.leave.group.on.close=false`): a process that restarts at once
    /// does not cause two rebalances. It also sidesteps a tansu 0.6 bug: a leader that leaves
    /// while the group is rebalancing stays the group's leader, and no member that joins later
    /// is ever assigned anything.
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(consumer) = self.consumer.take().and_then(Arc::into_inner) {
            let client = consumer.client().native_ptr();
            // rdkafka's own drop would close the consumer (and leave the group) first.
            std::mem::forget(consumer);
            // SAFETY: `client` is the consumer's live handle, used by nothing else now (the
            // group thread has ended and the wrapper was forgotten, so it is destroyed once).
            unsafe {
                rdkafka::bindings::rd_kafka_destroy_flags(
                    client,
                    rdkafka::bindings::RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE,
                )
            };
        }
    }
}
