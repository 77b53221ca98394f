//! The typed pipeline builder. Each step returns a new builder type, so a pipeline that
//! compiles has an event time, a key and an operator, and its result type is known.

use super::{Emit, GeneratorFn, InputDecl, KeyFn, OutputFn, Plan, TimeFn, TransformFn};
use crate::io::source::{EventGenerator, GenOptions, LineDecoder};
use crate::operator::KeyedOperator;
use crate::stage::MappedStage;
use crate::time::{duration_ms, Millis, StateTtl, TimeRules};
use crate::window::{
    Aggregator, PaneWindowOperator, SessionWindowOperator, SessionWindows, Windows,
};
use crate::Key;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// A keyed builder, of a first stage ([`KeyedPipeline`]) or a later one
/// ([`RekeyedPipeline`](super::RekeyedPipeline)): what it becomes once its operator is chosen.
pub trait KeyedStream<E, K>: Sized {
    /// The job it becomes with operator `Op`.
    type Job<Op: KeyedOperator<Key = K, Event = E>>;

    /// The job running `operator`, taking records up to `allowed_lateness` behind the
    /// watermark; `supports_update`: the operator honours `--output-mode update`.
    fn process_with<Op: KeyedOperator<Key = K, Event = E>>(
        self,
        operator: Op,
        allowed_lateness: Millis,
        supports_update: bool,
    ) -> Self::Job<Op>;
}

/// The start of a pipeline: records of type `R` as decoded from the source, transformed into
/// events of type `E` by `map` and `filter` steps.
pub struct Pipeline<R, E = R> {
    pub(super) name: String,
    pub(super) description: String,
    /// The name of its input (`--source NAME=URI`).
    pub(super) input: String,
    pub(super) transform: TransformFn<R, E>,
    event_time: Option<TimeFn<E>>,
    pub(super) watermark_delay: Millis,
    generator: Option<GeneratorFn<R>>,
    decode: Option<LineDecoder<R>>,
}

impl<R: DeserializeOwned + Send + 'static> Pipeline<R, R> {
    /// A pipeline named `name` (what `spate run NAME` runs) reading records of type `R` from
    /// its input, named `input` until [`input`](Self::input) names it.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Pipeline {
            name: name.into(),
            description: description.into(),
            input: "input".into(),
            transform: Arc::new(Some),
            event_time: None,
            watermark_delay: 0,
            generator: None,
            decode: None,
        }
    }
}

impl<R: Send + 'static, E: Send + 'static> Pipeline<R, E> {
    /// Names the pipeline's input: `--source NAME=URI` gives its source (a pipeline with one
    /// input also takes `--source URI`).
    pub fn input(self, name: impl Into<String>) -> Self {
        Pipeline {
            input: name.into(),
            ..self
        }
    }

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
            input: self.input,
            transform: Arc::new(move |r| prev(r).and_then(&f)),
            event_time: None,
            watermark_delay: self.watermark_delay,
            generator: self.generator,
            decode: self.decode,
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

    /// Decodes each line of a file or stdin input with `decode` instead of serde_json: for a
    /// record type with a faster way to read its lines. `decode` must give what serde_json
    /// gives for every line, the same record or an error (a decoder with a fast path hands
    /// every line it is unsure of to [`decode_json_line`](crate::io::source::decode_json_line)).
    pub fn decode_lines_with(self, decode: LineDecoder<R>) -> Self {
        Pipeline {
            decode: Some(decode),
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
            ttl: None,
        }
    }
}

/// A keyed pipeline: choose windows or a custom keyed operator.
pub struct KeyedPipeline<R, E, K> {
    pub(super) base: Pipeline<R, E>,
    pub(super) event_time: TimeFn<E>,
    pub(super) key: KeyFn<E, K>,
    pub(super) ttl: Option<StateTtl>,
}

impl<R, E, K> KeyedPipeline<R, E, K>
where
    R: Send + 'static,
    E: Serialize + Send + 'static,
    K: Key,
{
    /// Drops the state (and timers) of keys no record touched for a while: see [`StateTtl`].
    /// Expired keys are checkpointed as deleted and counted (`spate_state_expired_total`).
    pub fn state_ttl(self, ttl: StateTtl) -> Self {
        KeyedPipeline {
            ttl: Some(ttl),
            ..self
        }
    }

    /// Runs a custom keyed operator on every key.
    pub fn process<Op>(self, operator: Op) -> Job<R, Op, Op::Output>
    where
        Op: KeyedOperator<Key = K, Event = E>,
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

impl<R, E, K> KeyedStream<E, K> for KeyedPipeline<R, E, K>
where
    R: Send + 'static,
    E: Serialize + Send + 'static,
    K: Key,
{
    type Job<Op: KeyedOperator<Key = K, Event = E>> = Job<R, Op, Op::Output>;

    fn process_with<Op>(
        self,
        operator: Op,
        allowed_lateness: Millis,
        supports_update: bool,
    ) -> Job<R, Op, Op::Output>
    where
        Op: KeyedOperator<Key = K, Event = E>,
    {
        Job {
            plan: Plan {
                name: self.base.name,
                description: self.base.description,
                transform: self.base.transform,
                event_time: self.event_time,
                rules: TimeRules {
                    watermark_delay: self.base.watermark_delay,
                    allowed_lateness,
                    ttl: self.ttl,
                    ..TimeRules::default()
                },
                supports_update,
                key: self.key,
                operator: Arc::new(operator),
                output: Emit::Results(Arc::new(|o, emit| emit(o))),
                inputs: vec![InputDecl {
                    name: self.base.input,
                    watermark_delay: self.base.watermark_delay,
                    record_type: std::any::type_name::<R>(),
                }],
                input_of: None,
                open_inputs: None,
                outputs: vec![DEFAULT_OUTPUT.into()],
                route: None,
                model: None,
                generator: self.base.generator,
                decode: self.base.decode,
            },
        }
    }
}

/// A keyed pipeline (`P`, of a first or later stage) with tumbling or sliding windows.
pub struct WindowedPipeline<P, E, K> {
    keyed: P,
    windows: Windows,
    allowed_lateness: Millis,
    types: PhantomData<fn(E) -> K>,
}

impl<P, E, K> WindowedPipeline<P, E, K>
where
    P: KeyedStream<E, K>,
    E: Serialize + Send + 'static,
    K: Key,
{
    pub(super) fn new(keyed: P, windows: Windows) -> Self {
        WindowedPipeline {
            keyed,
            windows,
            allowed_lateness: 0,
            types: PhantomData,
        }
    }

    /// Keeps each window's state for `lateness` of watermark time after it fired (Flink's
    /// `allowedLateness`): records that late still count. In append mode a window is written
    /// once that time has passed; in update mode it is written when the watermark passes its
    /// end and again, marked as an update, for each late record.
    pub fn allowed_lateness(self, lateness: Duration) -> Self {
        WindowedPipeline {
            allowed_lateness: duration_ms(lateness),
            ..self
        }
    }

    /// Aggregates every window with `aggregator`; results are emitted once per window (append
    /// mode) or as they change (update mode).
    pub fn aggregate<A: Aggregator<E>>(self, aggregator: A) -> P::Job<PaneWindowOperator<E, K, A>>
    where
        A::Out: Send + 'static,
    {
        let operator = PaneWindowOperator::new(self.windows, aggregator);
        self.keyed
            .process_with(operator, self.allowed_lateness, true)
    }
}

/// A keyed pipeline (`P`, of a first or later stage) with session windows.
pub struct SessionPipeline<P, E, K> {
    keyed: P,
    sessions: SessionWindows,
    allowed_lateness: Millis,
    types: PhantomData<fn(E) -> K>,
}

impl<P, E, K> SessionPipeline<P, E, K>
where
    P: KeyedStream<E, K>,
    E: Serialize + Send + 'static,
    K: Key,
{
    pub(super) fn new(keyed: P, sessions: SessionWindows) -> Self {
        SessionPipeline {
            keyed,
            sessions,
            allowed_lateness: 0,
            types: PhantomData,
        }
    }

    /// Keeps each session's state for `lateness` of watermark time after it closed: see
    /// [`WindowedPipeline::allowed_lateness`].
    pub fn allowed_lateness(self, lateness: Duration) -> Self {
        SessionPipeline {
            allowed_lateness: duration_ms(lateness),
            ..self
        }
    }

    /// Aggregates every session with `aggregator`; results are emitted once per session
    /// (append mode) or as they change (update mode).
    pub fn aggregate<A: Aggregator<E>>(
        self,
        aggregator: A,
    ) -> P::Job<SessionWindowOperator<E, K, A>>
    where
        A::Out: Send + 'static,
    {
        let operator = SessionWindowOperator::new(self.sessions, aggregator);
        self.keyed
            .process_with(operator, self.allowed_lateness, true)
    }
}

/// The name of a pipeline's output until [`Job::output`] names it.
pub const DEFAULT_OUTPUT: &str = "results";

/// A complete pipeline, ready to register and run. `Out` is its result type.
pub struct Job<R, Op: KeyedOperator, Out> {
    pub(crate) plan: Plan<R, Op, Out>,
}

impl<R: Send + 'static, Op: KeyedOperator, Out: Send + 'static> Job<R, Op, Out> {
    /// Maps each result, dropping those for which `f` returns `None` (e.g. alert thresholds).
    ///
    /// # Panics
    /// After [`split`](Self::split): split the final results (a pipeline definition error).
    pub fn map<Out2: 'static>(
        self,
        f: impl Fn(Out) -> Option<Out2> + Send + Sync + 'static,
    ) -> Job<R, Op, Out2> {
        self.then(Arc::new(move |out, emit| {
            if let Some(out) = f(out) {
                emit(out)
            }
        }))
    }

    /// Turns each result into any number of results (Flink's and Kafka Streams' `flatMap`).
    ///
    /// # Panics
    /// After [`split`](Self::split): split the final results (a pipeline definition error).
    pub fn flat_map<Out2: 'static, I: IntoIterator<Item = Out2>>(
        self,
        f: impl Fn(Out) -> I + Send + Sync + 'static,
    ) -> Job<R, Op, Out2> {
        self.then(Arc::new(move |out, emit| {
            f(out).into_iter().for_each(&mut *emit)
        }))
    }

    /// Applies `map` to every result, in whichever stage makes them.
    fn then<Out2: 'static>(self, map: OutputFn<Out, Out2>) -> Job<R, Op, Out2> {
        assert!(
            self.plan.route.is_none(),
            "pipeline `{}`: call .split(..) after the last .map(..)",
            self.plan.name
        );
        let output = match self.plan.output.clone() {
            Emit::Results(prev) => Emit::Results(Arc::new(move |o, emit: &mut dyn FnMut(Out2)| {
                prev(o, &mut |out| map(out, emit))
            }) as OutputFn<_, _>),
            Emit::Stage(inner) => Emit::Stage(Arc::new(MappedStage { inner, map })),
        };
        Job {
            plan: self.plan.with_output(output),
        }
    }

    /// Names the pipeline's (first) output: `--sink NAME=URI` gives its sink (a pipeline with
    /// one output also takes `--sink URI`). Unnamed, it is `results`.
    pub fn output(mut self, name: impl Into<String>) -> Self {
        self.plan.outputs[0] = name.into();
        self
    }

    /// Sends the results for which `matches` holds to a further output `name` (`--sink
    /// NAME=URI`) instead, like Kafka Streams' `split`; a result goes to the first split that
    /// takes it. Late records and dead letters stay with the first output.
    pub fn split(
        mut self,
        name: impl Into<String>,
        matches: impl Fn(&Out) -> bool + Send + Sync + 'static,
    ) -> Self {
        let index = self.plan.outputs.len();
        self.plan.outputs.push(name.into());
        let earlier = self.plan.route.take();
        self.plan.route = Some(Arc::new(move |out: &Out| {
            match earlier.as_ref().map_or(0, |route| route(out)) {
                0 if matches(out) => index,
                taken => taken,
            }
        }));
        self
    }

    /// Gives the pipeline a model all its partitions share, starting as `initial` and learning
    /// micro-batches of `batch` event time: its operators score with
    /// [`KeyedContext::model`](crate::operator::KeyedContext::model) and teach it with
    /// [`KeyedContext::learn`](crate::operator::KeyedContext::learn) (see
    /// [`crate::learning`]).
    pub fn shared_model<M: crate::learning::SharedModel>(
        mut self,
        initial: &M,
        batch: std::time::Duration,
    ) -> Self {
        let batch = batch.as_millis() as Millis;
        self.plan.model = Some(Arc::new(crate::learning::ModelSpec::of(initial, batch)));
        self
    }

    /// The plan the runtime executes.
    pub fn plan(&self) -> &Plan<R, Op, Out> {
        &self.plan
    }
}
