//! The interval join: pairs of records of a key whose times are close.

use super::{Either, Held};
use crate::operator::{KeyedContext, KeyedOperator, Timer};
use crate::time::{duration_ms, Millis};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::time::Duration;

/// Whether left records without a partner are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// Only pairs.
    Inner,
    /// Pairs, and each left record that found no partner, with `None`, once the watermark has
    /// passed the end of its interval.
    LeftOuter,
}

/// Joins left record `a` with right record `b` of the same key when
/// `b.time ∈ [a.time + lower, a.time + upper]` (Flink's interval join). A pair is emitted when
/// its second record arrives; a record is kept until the watermark has passed every time a
/// partner could have.
pub struct IntervalJoin<K, L, R, O, F> {
    lower: Millis,
    upper: Millis,
    kind: JoinKind,
    join: F,
    types: PhantomData<fn(K, L, R) -> O>,
}

impl<K, L, R, O, F> IntervalJoin<K, L, R, O, F>
where
    F: Fn(&L, Option<&R>) -> O,
{
    /// Pairs right records from `lower` before to `upper` after each left record's time
    /// (`before` and `after` may be zero); the output is `join(left, Some(right))`, or
    /// `join(left, None)` for a left record without partner in a left outer join.
    pub fn new(before: Duration, after: Duration, kind: JoinKind, join: F) -> Self {
        IntervalJoin {
            lower: -duration_ms(before),
            upper: duration_ms(after),
            kind,
            join,
            types: PhantomData,
        }
    }
}

/// A key's state in an interval join.
#[derive(Debug, Serialize, Deserialize)]
pub struct IntervalState<L, R> {
    /// Left records still joinable, each with whether it found a partner.
    lefts: Vec<(Held<L>, bool)>,
    /// Right records still joinable.
    rights: Vec<Held<R>>,
}

impl<L, R> Default for IntervalState<L, R> {
    fn default() -> Self {
        IntervalState {
            lefts: Vec::new(),
            rights: Vec::new(),
        }
    }
}

impl<K, L, R, O, F> KeyedOperator for IntervalJoin<K, L, R, O, F>
where
    K: crate::Key,
    L: Clone + Serialize + DeserializeOwned + Send + 'static,
    R: Clone + Serialize + DeserializeOwned + Send + 'static,
    O: Send + 'static,
    F: Fn(&L, Option<&R>) -> O + Send + Sync + 'static,
{
    type Key = K;
    type Event = Either<L, R>;
    type State = IntervalState<L, R>;
    type Output = O;

    fn on_event(&self, record: &Either<L, R>, ctx: &mut KeyedContext<'_, K, Self::State, O>) {
        let time = ctx.time();
        let state = ctx.state();
        let mut out = Vec::new();
        let expires = match record {
            Either::Left(a) => {
                let within = |b: &&Held<R>| (time + self.lower..=time + self.upper).contains(&b.0);
                out.extend(
                    state
                        .rights
                        .iter()
                        .filter(within)
                        .map(|b| (self.join)(a, Some(&b.1))),
                );
                state.lefts.push(((time, a.clone()), !out.is_empty()));
                // No right record on time can pair with it once the watermark is past this.
                time + self.upper + 1
            }
            Either::Right(b) => {
                for ((ta, a), matched) in &mut state.lefts {
                    if (*ta + self.lower..=*ta + self.upper).contains(&time) {
                        out.push((self.join)(a, Some(b)));
                        *matched = true;
                    }
                }
                state.rights.push((time, b.clone()));
                time - self.lower + 1
            }
        };
        ctx.register_event_timer(expires);
        for output in out {
            ctx.emit(output);
        }
    }

    fn describe(&self) -> String {
        let kind = match self.kind {
            JoinKind::Inner => "inner",
            JoinKind::LeftOuter => "left outer",
        };
        format!(
            "{kind} interval join: input 2 records from {} before to {} after each input 1 record",
            crate::time::format_millis(-self.lower),
            crate::time::format_millis(self.upper)
        )
    }

    fn on_timer(&self, timer: Timer, ctx: &mut KeyedContext<'_, K, Self::State, O>) {
        let state = ctx.state();
        let (lower, upper, now) = (self.lower, self.upper, timer.time);
        state.rights.retain(|b| b.0 - lower >= now);
        let mut expired: Vec<_> = state
            .lefts
            .iter()
            .filter(|(a, _)| a.0 + upper < now)
            .cloned()
            .collect();
        state.lefts.retain(|(a, _)| a.0 + upper >= now);
        let empty = state.lefts.is_empty() && state.rights.is_empty();
        if self.kind == JoinKind::LeftOuter {
            expired.sort_by_key(|(a, _)| a.0);
            for ((_, a), _) in expired.into_iter().filter(|(_, matched)| !matched) {
                ctx.emit((self.join)(&a, None));
            }
        }
        if empty {
            ctx.clear_state();
        }
    }
}
