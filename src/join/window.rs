//! The window join: pairs of records of a key in the same tumbling window.

use super::{Either, Held};
use crate::operator::{KeyedContext, KeyedOperator, Timer};
use crate::time::{duration_ms, Millis};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::time::Duration;

/// Joins the left and right records of a key that fall in the same tumbling window
/// `[start, start + size)` aligned to the Unix epoch (Flink's window join). When the watermark
/// passes a window's end, it emits every pair of the window, left records in event-time order
/// (ties in input order), each with the right records in the same order; then it forgets the
/// window.
pub struct WindowJoin<K, L, R, O, F> {
    size: Millis,
    join: F,
    types: PhantomData<fn(K, L, R) -> O>,
}

impl<K, L, R, O, F> WindowJoin<K, L, R, O, F>
where
    F: Fn(Millis, &L, &R) -> O,
{
    /// Tumbling windows of `size`; the output is `join(window start, left, right)`.
    ///
    /// # Panics
    /// When `size` is zero: a pipeline definition error.
    pub fn new(size: Duration, join: F) -> Self {
        let size = duration_ms(size);
        assert!(size > 0, "a window join needs windows longer than 0 ms");
        WindowJoin {
            size,
            join,
            types: PhantomData,
        }
    }
}

/// One window's records of both sides.
type Sides<L, R> = (Vec<Held<L>>, Vec<Held<R>>);

/// A key's state in a window join: its open windows by start.
#[derive(Debug, Serialize, Deserialize)]
pub struct WindowJoinState<L, R> {
    windows: BTreeMap<Millis, Sides<L, R>>,
}

impl<L, R> Default for WindowJoinState<L, R> {
    fn default() -> Self {
        WindowJoinState {
            windows: BTreeMap::new(),
        }
    }
}

impl<K, L, R, O, F> KeyedOperator for WindowJoin<K, L, R, O, F>
where
    K: crate::Key,
    L: Clone + Serialize + DeserializeOwned + Send + 'static,
    R: Clone + Serialize + DeserializeOwned + Send + 'static,
    O: Send + 'static,
    F: Fn(Millis, &L, &R) -> O + Send + Sync + 'static,
{
    type Key = K;
    type Event = Either<L, R>;
    type State = WindowJoinState<L, R>;
    type Output = O;

    fn on_event(&self, record: &Either<L, R>, ctx: &mut KeyedContext<'_, K, Self::State, O>) {
        let time = ctx.time();
        let start = time.div_euclid(self.size) * self.size;
        let state = ctx.state();
        let (lefts, rights) = state.windows.entry(start).or_default();
        match record {
            Either::Left(l) => lefts.push((time, l.clone())),
            Either::Right(r) => rights.push((time, r.clone())),
        }
        ctx.register_event_timer(start + self.size);
    }

    fn describe(&self) -> String {
        format!(
            "window join: pairs of both inputs in the same {} tumbling window",
            crate::time::format_millis(self.size)
        )
    }

    fn on_timer(&self, timer: Timer, ctx: &mut KeyedContext<'_, K, Self::State, O>) {
        let start = timer.time - self.size;
        let Some((mut lefts, mut rights)) = ctx.state().windows.remove(&start) else {
            return;
        };
        // Stable: ties stay in arrival order.
        lefts.sort_by_key(|r| r.0);
        rights.sort_by_key(|r| r.0);
        for (_, l) in &lefts {
            for (_, r) in &rights {
                ctx.emit((self.join)(start, l, r));
            }
        }
        if ctx.state().windows.is_empty() {
            ctx.clear_state();
        }
    }
}
