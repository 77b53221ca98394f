//! [`Maxima`]: per window (the key: its start), the records at the window's highest value of a
//! measure, emitted in arrival order once the watermark passes the window's end (q5, q7).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use spate::operator::{KeyedContext, KeyedOperator, Timer};
use spate::time::Millis;
use std::marker::PhantomData;

/// A window's highest measure so far and its records at it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AtMaximum<E> {
    best: u64,
    records: Vec<E>,
}

impl<E> Default for AtMaximum<E> {
    fn default() -> Self {
        AtMaximum {
            best: 0,
            records: Vec::new(),
        }
    }
}

/// Keeps each window's records at its highest `measure` and emits them, as `output` makes them
/// of the window's start and end, once the watermark passes the window's end (`size` after its
/// start).
pub struct Maxima<E, O> {
    size: Millis,
    measure: fn(&E) -> u64,
    output: fn(E, Millis, Millis) -> O,
    what: &'static str,
    _types: PhantomData<fn(E) -> O>,
}

impl<E, O> Maxima<E, O> {
    /// Windows of `size`; `what` says what is kept (`spate describe`).
    pub fn new(
        size: Millis,
        measure: fn(&E) -> u64,
        output: fn(E, Millis, Millis) -> O,
        what: &'static str,
    ) -> Self {
        Maxima {
            size,
            measure,
            output,
            what,
            _types: PhantomData,
        }
    }
}

type Ctx<'a, E, O> = KeyedContext<'a, Millis, AtMaximum<E>, O>;

impl<E, O> KeyedOperator for Maxima<E, O>
where
    E: Clone + Serialize + DeserializeOwned + Send + 'static,
    O: Send + 'static,
{
    type Key = Millis;
    type Event = E;
    type State = AtMaximum<E>;
    type Output = O;

    fn on_event(&self, record: &E, ctx: &mut Ctx<'_, E, O>) {
        let end = ctx.key() + self.size;
        let value = (self.measure)(record);
        let window = ctx.state();
        if window.records.is_empty() || value > window.best {
            window.best = value;
            window.records.clear();
        }
        if value == window.best {
            window.records.push(record.clone());
        }
        ctx.register_event_timer(end);
    }

    fn on_timer(&self, _: Timer, ctx: &mut Ctx<'_, E, O>) {
        let start = *ctx.key();
        for record in std::mem::take(&mut ctx.state().records) {
            ctx.emit((self.output)(record, start, start + self.size));
        }
        ctx.clear_state();
    }

    fn describe(&self) -> String {
        format!("{}, when the watermark passes the window's end", self.what)
    }
}
