//! The versions of a shared model a seal hands the partitions, and how a partition finds the
//! model for a time among them.

use super::{batch_start, Decoded};
use crate::time::{Millis, BEFORE_TIME};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One version of the shared model.
pub struct ModelVersion {
    /// How many non-empty micro-batches it learned (0: the initial model).
    pub version: u64,
    /// It learned every example before this time, and none after.
    pub covers: Millis,
    /// The model, decoded once for every partition.
    pub(crate) value: Decoded,
}

/// How far the shared model had learned when an epoch was sealed: part of the epoch's record,
/// so a replay seals it with the same versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelMark {
    /// The newest version.
    pub version: u64,
    /// Every micro-batch that ends at or before this time was learned.
    pub closed_until: Millis,
}

impl Default for ModelMark {
    fn default() -> Self {
        ModelMark {
            version: 0,
            closed_until: BEFORE_TIME,
        }
    }
}

/// The model versions a partition may still need, as one seal hands them out: the newest, and
/// the older ones records not yet late could need.
pub struct ModelHistory {
    /// The micro-batch length.
    pub(crate) batch: Millis,
    /// Every micro-batch that ends at or before this time was learned.
    pub(crate) closed_until: Millis,
    /// Versions in order, oldest first.
    pub(crate) versions: Vec<Arc<ModelVersion>>,
}

impl ModelHistory {
    /// The model for `time`: the version that learned every micro-batch before `time`'s
    /// (see the module doc of [`crate::learning`]); `None` while that is not known yet.
    pub fn for_time(&self, time: Millis) -> Option<&ModelVersion> {
        let start = batch_start(time, self.batch);
        if start > self.closed_until {
            return None;
        }
        let newer = self.versions.partition_point(|v| v.covers <= start);
        assert!(
            newer > 0,
            "the model version for {time} is missing from the history"
        );
        self.versions.get(newer.checked_sub(1)?).map(|v| &**v)
    }

    /// Every micro-batch that ends at or before this time was learned: model timers up to it
    /// fire.
    pub fn closed_until(&self) -> Millis {
        self.closed_until
    }
}

/// The shared model for a callback's time, typed.
pub struct ModelRef<'a, M> {
    /// Its version: how many non-empty micro-batches it learned.
    pub version: u64,
    /// The model.
    pub model: &'a M,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(version: u64, covers: Millis) -> Arc<ModelVersion> {
        Arc::new(ModelVersion {
            version,
            covers,
            value: Arc::new(version),
        })
    }

    #[test]
    fn a_time_gets_the_version_that_learned_the_batches_before_its_own() {
        let history = ModelHistory {
            batch: 100,
            closed_until: 400,
            versions: vec![version(0, BEFORE_TIME), version(1, 200), version(2, 400)],
        };
        let of = |t| history.for_time(t).map(|v| v.version);
        assert_eq!(of(50), Some(0));
        assert_eq!(of(199), Some(0));
        assert_eq!(
            of(200),
            Some(1),
            "batch [100, 200) is learned, [200, 300) is not"
        );
        assert_eq!(of(399), Some(1));
        assert_eq!(of(450), Some(2));
        assert_eq!(of(500), None, "batch [400, 500) is not closed yet");
    }
}
