//! The typed pipeline builder. Each step returns a new builder type, so a pipeline that
//! compiles has an event time, a key and an operator, and its result type is known.

use super::{GeneratorFn, KeyFn, OutputFn, Plan, TimeFn, TransformFn};
use crate::io::source::{EventGenerator, GenOptions};
use crate::operator::KeyedOperator;
use crate::time::{duration_ms, Millis};
use crate::window::{
    Aggregator, PaneWindowOperator, SessionWindowOperator, SessionWindows, Windows,
};
use crate::Key;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// The start of a pipeline: records of type `R` as decoded from the source, transformed into
/// events of type `E` by `map` and `filter` steps.
pub struct Pipeline<R, E = R> {
    name: String,
    description: String,
    transform: TransformFn<R, E>,
    event_time: Option<TimeFn<E>>,
    watermark_delay: Millis,
    generator: Option<GeneratorFn<R>>,
}

impl<R: DeserializeOwned + Send + 'static> Pipeline<R, R> {
    /// A pipeline named `name` (what `spate run NAME` runs) reading records of type `R`.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Pipeline {
            name: name.into(),
            description: description.into(),
            transform: Arc::new(Some),
            event_time: None,
            watermark_delay: 0,
            generator: None,
        }
    }
}

impl<R: Send + 'static, E: Send + 'static> Pipeline<R, E> {
    /// Keeps only the events for which `keep` is true.
    pub fn filter(self, keep: impl Fn(&E) -> bool + Send + Sync + 'static) -> Self {
        let prev = self.transform;
        Pipeline {
            transform: Arc::new(move |r| prev(r).filter(|e| keep(e))),
            ..self
        }
    }

    /// Transforms every event. Declare `event_time` after the last `map`.
    pub fn map<E2: Send + 'static>(
        self,
        f: impl Fn(E) -> E2 + Send + Sync + 'static,
    ) -> Pipeline<R, E2> {
        self.filter_map(move |e| Some(f(e)))
    }

    /// Transforms every event, dropping those for which `f` returns `None`.
    pub fn filter_map<E2: Send + 'static>(
        self,
        f: impl Fn(E) -> Option<E2> + Send + Sync + 'static,
    ) -> Pipeline<R, E2> {
        let prev = self.transform;
        Pipeline {
            name: self.name,
            description: self.description,
            transform: Arc::new(move |r| prev(r).and_then(&f)),
            event_time: None,
            watermark_delay: self.watermark_delay,
            generator: self.generator,
        }
    }

    /// Where an event's event time (epoch milliseconds) comes from.
    pub fn event_time(self, f: impl Fn(&E) -> Millis + Send + Sync + 'static) -> Self {
        Pipeline {
            event_time: Some(Arc::new(f)),
            ..self
        }
    }

    /// How far the watermark trails the newest event time: records up to this much out of
    /// order are still on time.
    pub fn watermark_delay(self, delay: Duration) -> Self {
        Pipeline {
            watermark_delay: duration_ms(delay),
            ..self
        }
    }

    /// The generator behind `--source gen` for this pipeline.
    pub fn generator<G: EventGenerator<R> + 'static>(
        self,
        make: impl Fn(&GenOptions) -> G + Send + Sync + 'static,
    ) -> Self {
        Pipeline {
            generator: Some(Arc::new(move |o| {
                Box::new(make(o)) as Box<dyn EventGenerator<R>>
            })),
            ..self
        }
    }

    /// Groups events by key: each key's state lives in one key partition.
    ///
    /// # Panics
    /// When `event_time` was not declared (after the last `map`): a pipeline definition error.
    pub fn key_by<K: Key>(
        self,
        key: impl Fn(&E) -> K + Send + Sync + 'static,
    ) -> KeyedPipeline<R, E, K> {
        let event_time = self.event_time.clone().unwrap_or_else(|| {
            panic!(
                "pipeline `{}`: declare .event_time(..) after the last .map(..) and before .key_by(..)",
                self.name
            )
        });
        KeyedPipeline {
            base: self,
            event_time,
            key: Arc::new(key),
        }
    }
}

/// A keyed pipeline: choose windows or a custom keyed operator.
pub struct KeyedPipeline<R, E, K> {
    base: Pipeline<R, E>,
    event_time: TimeFn<E>,
    key: KeyFn<E, K>,
}

impl<R, E, K> KeyedPipeline<R, E, K>
where
    R: Send + 'static,
    E: Serialize + Send + 'static,
    K: Key,
{
    /// Runs a custom keyed operator on every key.
    pub fn process<Op>(self, operator: Op) -> Job<R, Op, Op::Output>
    where
        Op: KeyedOperator<Key = K, Event = E>,
    {
        Job {
            plan: Plan {
                name: self.base.name,
                description: self.base.description,
                transform: self.base.transform,
                event_time: self.event_time,
                watermark_delay: self.base.watermark_delay,
                key: self.key,
                operator: Arc::new(operator),
                output: Arc::new(Some),
                generator: self.base.generator,
            },
        }
    }

    /// Tumbling or sliding windows; follow with `aggregate`.
    pub fn window(self, windows: Windows) -> WindowedPipeline<R, E, K> {
        WindowedPipeline {
            keyed: self,
            windows,
        }
    }

    /// Session windows; follow with `aggregate`.
    pub fn session_window(self, sessions: SessionWindows) -> SessionPipeline<R, E, K> {
        SessionPipeline {
            keyed: self,
            sessions,
        }
    }
}

/// A windowed job before `map`: its results are the operator's window results.
pub type WindowJob<R, Op> = Job<R, Op, <Op as KeyedOperator>::Output>;

/// A keyed pipeline with tumbling or sliding windows.
pub struct WindowedPipeline<R, E, K> {
    keyed: KeyedPipeline<R, E, K>,
    windows: Windows,
}

impl<R, E, K> WindowedPipeline<R, E, K>
where
    R: Send + 'static,
    E: Serialize + Send + 'static,
    K: Key,
{
    /// Aggregates every window with `aggregator`; results are emitted once per window.
    pub fn aggregate<A: Aggregator<E>>(
        self,
        aggregator: A,
    ) -> WindowJob<R, PaneWindowOperator<E, K, A>>
    where
        A::Out: Send + 'static,
    {
        self.keyed
            .process(PaneWindowOperator::new(self.windows, aggregator))
    }
}

/// A keyed pipeline with session windows.
pub struct SessionPipeline<R, E, K> {
    keyed: KeyedPipeline<R, E, K>,
    sessions: SessionWindows,
}

impl<R, E, K> SessionPipeline<R, E, K>
where
    R: Send + 'static,
    E: Serialize + Send + 'static,
    K: Key,
{
    /// Aggregates every session with `aggregator`; results are emitted once per session.
    pub fn aggregate<A: Aggregator<E>>(
        self,
        aggregator: A,
    ) -> WindowJob<R, SessionWindowOperator<E, K, A>>
    where
        A::Out: Send + 'static,
    {
        self.keyed
            .process(SessionWindowOperator::new(self.sessions, aggregator))
    }
}

/// A complete pipeline, ready to register and run. `Out` is its result type.
pub struct Job<R, Op: KeyedOperator, Out> {
    pub(crate) plan: Plan<R, Op, Out>,
}

impl<R: Send + 'static, Op: KeyedOperator, Out: Send + 'static> Job<R, Op, Out> {
    /// Maps each result, dropping those for which `f` returns `None` (e.g. alert thresholds).
    pub fn map<Out2>(
        self,
        f: impl Fn(Out) -> Option<Out2> + Send + Sync + 'static,
    ) -> Job<R, Op, Out2> {
        let prev = self.plan.output;
        let output: OutputFn<Op::Output, Out2> = Arc::new(move |o| prev(o).and_then(&f));
        Job {
            plan: Plan {
                name: self.plan.name,
                description: self.plan.description,
                transform: self.plan.transform,
                event_time: self.plan.event_time,
                watermark_delay: self.plan.watermark_delay,
                key: self.plan.key,
                operator: self.plan.operator,
                output,
                generator: self.plan.generator,
            },
        }
    }

    /// The plan the runtime executes.
    pub fn plan(&self) -> &Plan<R, Op, Out> {
        &self.plan
    }
}
