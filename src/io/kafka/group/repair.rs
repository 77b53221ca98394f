//! Assignments a broker got wrong, and the rejoin that repairs them. Kafka's coordinator never
//! produces these; tansu 0.6's can, after a member dies during a rebalance:
//!
//! - **The same partitions back.** A rebalance revokes this member's partitions and assigns
//!   exactly the same ones: tansu dropped a member whose session expired but handed the
//!   survivors their old assignments, so the dead member's partitions stay owned by nobody.
//!   With Kafka such a rebalance is rare (another member's subscription changed), so the member
//!   rejoins once for it.
//! - **Nothing held although partitions outnumber members.** When the leader dies between its
//!   JoinGroup and its SyncGroup, tansu takes a follower's SyncGroup (which carries no
//!   assignment) as the leader's: the group is formed with every member assigned nothing, and
//!   stays so, since every heartbeat then succeeds. spate's assignors (range, roundrobin) give
//!   every member at least one partition of the one subscribed topic while the group has no
//!   more members than the topic has partitions, so a member that holds nothing in such a
//!   group, at two checks [`CHECK_EVERY`] apart, rejoins.
//!
//! A rejoin leaves the group and joins it again as a new member, which makes the coordinator
//! form the group anew and the new leader compute a new assignment.

use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a member that holds no partition asks the broker whether that can be right.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// How long the check waits for the broker's answers (it runs on the thread that serves the
/// group protocol's callbacks, so not long).
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Watches one member's assignments for the broker mistakes in the module doc and says when the
/// member must rejoin the group. Rebalance callbacks report to it; the group thread asks
/// [`rejoin_due`](Self::rejoin_due) between polls.
#[derive(Debug, Default)]
pub(super) struct AssignmentRepair {
    state: Mutex<RepairState>,
    /// Raised by a suspect assignment: the group thread rejoins at its next poll.
    rejoin: AtomicBool,
}

#[derive(Debug, Default)]
struct RepairState {
    /// The partitions the last rebalance revoked.
    revoked: Vec<u32>,
    /// The assignment the last "same partitions back" rejoin was made for.
    rejoined_for: Option<Vec<u32>>,
    /// Set while this member holds no partition.
    empty: Option<EmptyHolding>,
    /// Whether this member said that the broker does not answer the check.
    told_unanswered: bool,
}

#[derive(Debug)]
struct EmptyHolding {
    last_check: Instant,
    /// How many checks in a row found the empty assignment impossible.
    impossible_checks: u32,
}

impl AssignmentRepair {
    /// A rebalance revoked `ids` (ascending).
    pub(super) fn revoked(&self, ids: Vec<u32>) {
        let mut state = self.state.lock().expect("repair lock");
        state.revoked = ids;
        state.empty = None;
    }

    /// A rebalance assigned `ids` (ascending). False when the assignment is suspect and a
    /// rejoin was asked for instead: the member must not start on it.
    pub(super) fn assigned(&self, ids: &[u32]) -> bool {
        let mut state = self.state.lock().expect("repair lock");
        let revoked = std::mem::take(&mut state.revoked);
        if !ids.is_empty() && ids == revoked && state.rejoined_for.as_deref() != Some(ids) {
            tracing::warn!(
                partitions = ?ids,
                "the rebalance gave back the same partitions; rejoining the group once in case the broker kept a departed member's assignment"
            );
            state.rejoined_for = Some(ids.to_vec());
            self.rejoin.store(true, Ordering::Release);
            return false;
        }
        state.rejoined_for = None;
        state.empty = ids.is_empty().then(|| EmptyHolding {
            last_check: Instant::now(),
            impossible_checks: 0,
        });
        true
    }

    /// Whether the member must leave and rejoin the group now: a suspect assignment asked for
    /// it, or this member has held nothing at two checks that found the group with no more
    /// members than `topic` has partitions.
    pub(super) fn rejoin_due<C: ConsumerContext>(
        &self,
        consumer: &impl Consumer<C>,
        group: &str,
        topic: &str,
    ) -> bool {
        if self.rejoin.swap(false, Ordering::AcqRel) {
            return true;
        }
        let mut state = self.state.lock().expect("repair lock");
        let Some(empty) = state.empty.as_mut() else {
            return false;
        };
        if empty.last_check.elapsed() < CHECK_EVERY {
            return false;
        }
        empty.last_check = Instant::now();
        let (members, partitions) = match group_size(consumer, group, topic) {
            Ok(size) => size,
            Err(e) => {
                if !std::mem::replace(&mut state.told_unanswered, true) {
                    tracing::warn!(
                        "cannot ask the broker how many members the group has ({e}): if it lost the group's assignment, this member will not notice"
                    );
                }
                return false;
            }
        };
        if !state
            .empty
            .as_mut()
            .is_some_and(|e| e.impossible(members, partitions))
        {
            return false;
        }
        tracing::warn!(
            members,
            partitions,
            "this member holds no partition although the group has no more members than the topic has partitions: the broker lost the group's assignment; rejoining the group"
        );
        state.empty = None;
        true
    }
}

impl EmptyHolding {
    /// Counts a check that found the group with `members` members and the topic with
    /// `partitions` partitions; true when holding nothing was impossible at two checks in a row.
    fn impossible(&mut self, members: usize, partitions: usize) -> bool {
        if members == 0 || members > partitions {
            self.impossible_checks = 0;
            return false;
        }
        self.impossible_checks += 1;
        self.impossible_checks >= 2
    }
}

/// The number of members of `group` and of partitions of `topic`, as the broker says now.
fn group_size<C: ConsumerContext>(
    consumer: &impl Consumer<C>,
    group: &str,
    topic: &str,
) -> KafkaResult<(usize, usize)> {
    let groups = consumer.fetch_group_list(Some(group), CHECK_TIMEOUT)?;
    let metadata = consumer.fetch_metadata(Some(topic), CHECK_TIMEOUT)?;
    let partitions = metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len());
    let members = groups.groups().first().map_or(0, |g| g.members().len());
    Ok((members, partitions))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_partitions_back_ask_for_one_rejoin_only() {
        let repair = AssignmentRepair::default();
        repair.revoked(vec![0, 1]);
        assert!(!repair.assigned(&[0, 1]), "suspect: a rejoin instead");
        assert!(repair.rejoin.swap(false, Ordering::AcqRel));
        repair.revoked(vec![0, 1]);
        assert!(repair.assigned(&[0, 1]), "after the rejoin, taken as it is");
        repair.revoked(vec![0, 1]);
        assert!(
            repair.assigned(&[0, 1, 2, 3]),
            "other partitions: no suspicion"
        );
        assert!(!repair.rejoin.load(Ordering::Acquire));
    }

    #[test]
    fn only_an_empty_assignment_is_checked() {
        let repair = AssignmentRepair::default();
        assert!(repair.assigned(&[2, 3]));
        assert!(repair.state.lock().unwrap().empty.is_none());
        repair.revoked(vec![2, 3]);
        assert!(repair.assigned(&[]));
        assert!(repair.state.lock().unwrap().empty.is_some());
        repair.revoked(Vec::new());
        assert!(
            repair.state.lock().unwrap().empty.is_none(),
            "a rebalance runs"
        );
    }

    #[test]
    fn holding_nothing_is_impossible_twice_in_a_row_with_no_more_members_than_partitions() {
        let holding = || EmptyHolding {
            last_check: Instant::now(),
            impossible_checks: 0,
        };
        let mut empty = holding();
        assert!(!empty.impossible(1, 4), "once is not yet enough");
        assert!(
            !empty.impossible(5, 4),
            "more members than partitions: possible"
        );
        assert!(!empty.impossible(4, 4), "the count starts again");
        assert!(empty.impossible(2, 4), "twice in a row");
        let mut empty = holding();
        assert!(
            !empty.impossible(0, 4) && !empty.impossible(0, 4),
            "no group found"
        );
    }
}
