//! Joins in the builder: a keyed pipeline joined (or connected, [`KeyedPipeline::connect`])
//! with a second input keyed the same way, giving a job whose two inputs each take their own
//! `--source NAME=URI`.

use super::{Emit, InputDecl, Job, KeyedPipeline, Plan};
use crate::io::source::{open_source, NamedReader, TwoInputs};
use crate::join::{Either, IntervalJoin, JoinKind, TemporalJoin, WindowJoin};
use crate::operator::KeyedOperator;
use crate::time::{Millis, TimeRules};
use crate::{Error, Key};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// A job over two inputs (`R1` and `R2` as decoded) run by the join operator `Op`.
pub type JoinJob<R1, R2, Op> = Job<Either<R1, R2>, Op, <Op as KeyedOperator>::Output>;

impl<R, E, K> KeyedPipeline<R, E, K>
where
    R: DeserializeOwned + Send + 'static,
    E: Clone + Serialize + DeserializeOwned + Send + 'static,
    K: Key,
{
    /// Joins each record with the row of `table` (a second input, keyed the same way) valid at
    /// the record's event time: see [`TemporalJoin`]. `join` gets `None` when the key had no
    /// row yet.
    pub fn join_table<R2, T, O, F>(
        self,
        table: KeyedPipeline<R2, T, K>,
        join: F,
    ) -> JoinJob<R, R2, TemporalJoin<K, E, T, O, F>>
    where
        R2: DeserializeOwned + Send + 'static,
        T: Clone + Serialize + DeserializeOwned + Send + 'static,
        O: Send + 'static,
        F: Fn(&E, Option<&T>) -> O + Send + Sync + 'static,
    {
        self.connect(table, TemporalJoin::new(join))
    }

    /// Pairs each record `a` with the records `b` of `other` whose time lies in
    /// `[a.time − before, a.time + after]`: see [`IntervalJoin`].
    pub fn interval_join<R2, E2, O, F>(
        self,
        other: KeyedPipeline<R2, E2, K>,
        before: Duration,
        after: Duration,
        kind: JoinKind,
        join: F,
    ) -> JoinJob<R, R2, IntervalJoin<K, E, E2, O, F>>
    where
        R2: DeserializeOwned + Send + 'static,
        E2: Clone + Serialize + DeserializeOwned + Send + 'static,
        O: Send + 'static,
        F: Fn(&E, Option<&E2>) -> O + Send + Sync + 'static,
    {
        self.connect(other, IntervalJoin::new(before, after, kind, join))
    }

    /// Pairs the records of both inputs that fall in the same tumbling window of `size`: see
    /// [`WindowJoin`].
    pub fn window_join<R2, E2, O, F>(
        self,
        other: KeyedPipeline<R2, E2, K>,
        size: Duration,
        join: F,
    ) -> JoinJob<R, R2, WindowJoin<K, E, E2, O, F>>
    where
        R2: DeserializeOwned + Send + 'static,
        E2: Clone + Serialize + DeserializeOwned + Send + 'static,
        O: Send + 'static,
        F: Fn(Millis, &E, &E2) -> O + Send + Sync + 'static,
    {
        self.connect(other, WindowJoin::new(size, join))
    }

    /// Runs `operator` over this input's records (left) and `other`'s (right), each keyed its
    /// own way, like Flink's `connect` with a `KeyedCoProcessFunction`: a record of either
    /// input reaches the operator with the state of its key, and each input keeps its own
    /// watermark. The joins are such operators.
    pub fn connect<R2, E2, Op>(
        self,
        other: KeyedPipeline<R2, E2, K>,
        operator: Op,
    ) -> JoinJob<R, R2, Op>
    where
        R2: DeserializeOwned + Send + 'static,
        E2: Send + 'static,
        Op: KeyedOperator<Key = K, Event = Either<E, E2>>,
    {
        let declare = |name: &str, delay: Millis, record_type| InputDecl {
            name: name.to_string(),
            watermark_delay: delay,
            record_type,
        };
        let inputs = vec![
            declare(
                &self.base.input,
                self.base.watermark_delay,
                std::any::type_name::<R>(),
            ),
            declare(
                &other.base.input,
                other.base.watermark_delay,
                std::any::type_name::<R2>(),
            ),
        ];
        let (t1, t2) = (self.base.transform, other.base.transform);
        let (time1, time2) = (self.event_time, other.event_time);
        let (key1, key2) = (self.key, other.key);
        let names = [self.base.input, other.base.input];
        Job {
            plan: Plan {
                name: self.base.name,
                description: self.base.description,
                transform: Arc::new(move |r| match r {
                    Either::Left(r) => t1(r).map(Either::Left),
                    Either::Right(r) => t2(r).map(Either::Right),
                }),
                event_time: Arc::new(move |e| e.map_either(|a| time1(a), |b| time2(b))),
                rules: TimeRules {
                    watermark_delay: self.base.watermark_delay,
                    ttl: self.ttl,
                    ..TimeRules::default()
                },
                supports_update: false,
                key: Arc::new(move |e| e.map_either(|a| key1(a), |b| key2(b))),
                operator: Arc::new(operator),
                output: Emit::Results(Arc::new(|o, emit| emit(o))),
                generator: None,
                decode: None,
                inputs,
                input_of: Some(Arc::new(Either::side)),
                outputs: vec![super::builder::DEFAULT_OUTPUT.into()],
                route: None,
                model: None,
                open_inputs: Some(Arc::new(move |specs, ctx| {
                    let [left, right] = specs else {
                        return Err(Error::Config {
                            what: "number of sources of a join".into(),
                            value: specs.len().to_string(),
                            hint: "a join reads two inputs: give each its --source NAME=URI".into(),
                        });
                    };
                    let [left_name, right_name] = names.clone();
                    Ok(Box::new(TwoInputs::new(
                        NamedReader {
                            reader: open_source::<R>(left, ctx, None, None)?,
                            name: left_name,
                        },
                        NamedReader {
                            reader: open_source::<R2>(right, ctx, None, None)?,
                            name: right_name,
                        },
                    )?))
                })),
            },
        }
    }
}
