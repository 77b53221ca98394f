//! Re-keying in the builder: a job's results, given an event time and a new key, feed a second
//! keyed stage (windows, sessions or a custom operator), whose results become the job's.
//!
//! ```
//! use spate::pipeline::Pipeline;
//! use spate::window::{Count, Windows};
//! use std::time::Duration;
//!
//! #[derive(serde::Serialize, serde::Deserialize, Clone)]
//! struct Click { user: String, page: String, ms: i64 }
//!
//! // Clicks per user per minute, then how many users had N clicks in each minute.
//! let job = Pipeline::<Click>::new("histogram", "users by clicks per minute")
//!     .event_time(|c| c.ms)
//!     .key_by(|c| c.user.clone())
//!     .window(Windows::tumbling(Duration::from_secs(60)))
//!     .aggregate(Count)
//!     .event_time(|w| w.end - 1) // a window's result happens at its last instant
//!     .key_by(|w| w.value)
//!     .window(Windows::tumbling(Duration::from_secs(60)))
//!     .aggregate(Count);
//! assert!(job.plan().later_stage().is_some());
//! ```

use super::{Emit, Job, KeyedStream, SessionPipeline, TimeFn, WindowedPipeline};
use crate::operator::KeyedOperator;
use crate::stage::KeyedStage;
use crate::time::{Millis, StateTtl, TimeRules};
use crate::window::{SessionWindows, Windows};
use crate::Key;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;

impl<R: Send + 'static, Op: KeyedOperator, Out: Send + 'static> Job<R, Op, Out> {
    /// Where a result's event time comes from, to key the results again with
    /// [`TimedResults::key_by`]. A window result's time is best its window's last instant
    /// (`end - 1`): it is emitted when the watermark passes it, so it is never late in
    /// the next stage.
    pub fn event_time(
        self,
        f: impl Fn(&Out) -> Millis + Send + Sync + 'static,
    ) -> TimedResults<R, Op, Out> {
        TimedResults {
            job: self,
            event_time: Arc::new(f),
        }
    }
}

/// A job's results with an event time: key them to run a second keyed stage.
pub struct TimedResults<R, Op: KeyedOperator, E> {
    job: Job<R, Op, E>,
    event_time: TimeFn<E>,
}

impl<R, Op, E> TimedResults<R, Op, E>
where
    R: Send + 'static,
    Op: KeyedOperator,
    E: Serialize + DeserializeOwned + Send + 'static,
{
    /// Keys the results again: their records move to the key partitions of their new key at
    /// each epoch's end (see [`crate::stage`]).
    ///
    /// # Panics
    /// On a job that already has two keyed stages, or whose results were split (pipeline
    /// definition errors).
    pub fn key_by<K: Key>(
        self,
        key: impl Fn(&E) -> K + Send + Sync + 'static,
    ) -> RekeyedPipeline<R, Op, E, K> {
        let name = &self.job.plan.name;
        assert!(
            self.job.plan.route.is_none(),
            "pipeline `{name}`: split the results of the last stage, not before .key_by(..)"
        );
        assert!(
            self.job.plan.later_stage().is_none(),
            "pipeline `{name}`: spate chains two keyed stages; a third .key_by(..) is not supported"
        );
        RekeyedPipeline {
            job: self.job,
            event_time: self.event_time,
            key: Arc::new(key),
            ttl: None,
        }
    }
}

/// A second keyed stage over a job's results: choose windows or a custom keyed operator.
pub struct RekeyedPipeline<R, Op: KeyedOperator, E, K> {
    job: Job<R, Op, E>,
    event_time: TimeFn<E>,
    key: super::KeyFn<E, K>,
    ttl: Option<StateTtl>,
}

impl<R, Op, E, K> RekeyedPipeline<R, Op, E, K>
where
    R: Send + 'static,
    Op: KeyedOperator,
    E: Serialize + DeserializeOwned + Send + 'static,
    K: Key,
{
    /// Drops the state of keys no record touched for a while: see [`StateTtl`].
    pub fn state_ttl(self, ttl: StateTtl) -> Self {
        RekeyedPipeline {
            ttl: Some(ttl),
            ..self
        }
    }

    /// Runs a custom keyed operator on every key of the second stage.
    pub fn process<Op2>(self, operator: Op2) -> Job<R, Op, Op2::Output>
    where
        Op2: KeyedOperator<Key = K, Event = E>,
    {
        self.process_with(operator, 0, false)
    }

    /// Tumbling or sliding windows; follow with `aggregate`.
    pub fn window(self, windows: Windows) -> WindowedPipeline<Self, E, K> {
        WindowedPipeline::new(self, windows)
    }

    /// Session windows; follow with `aggregate`.
    pub fn session_window(self, sessions: SessionWindows) -> SessionPipeline<Self, E, K> {
        SessionPipeline::new(self, sessions)
    }
}

impl<R, Op, E, K> KeyedStream<E, K> for RekeyedPipeline<R, Op, E, K>
where
    R: Send + 'static,
    Op: KeyedOperator,
    E: Serialize + DeserializeOwned + Send + 'static,
    K: Key,
{
    type Job<Op2: KeyedOperator<Key = K, Event = E>> = Job<R, Op, Op2::Output>;

    fn process_with<Op2: KeyedOperator<Key = K, Event = E>>(
        self,
        operator: Op2,
        allowed_lateness: Millis,
        supports_update: bool,
    ) -> Job<R, Op, Op2::Output> {
        let Emit::Results(input) = self.job.plan.output.clone() else {
            unreachable!("key_by refuses a job with two stages")
        };
        let stage = KeyedStage {
            input,
            event_time: self.event_time,
            key: self.key,
            operator: Arc::new(operator),
            rules: TimeRules {
                allowed_lateness,
                ttl: self.ttl,
                ..TimeRules::default()
            },
            output: Arc::new(|o, emit| emit(o)),
        };
        let mut plan = self.job.plan.with_output(Emit::Stage(Arc::new(stage)));
        plan.supports_update = supports_update;
        Job { plan }
    }
}
