//! Nexmark queries over `spate-loadgen nexmark` events (one input, `nexmark`, holding Person,
//! Auction and Bid records as the generator writes them), with a 4 s watermark delay as in
//! Flink's Nexmark. Each query is a module: its output is specified in its doc.

mod daily;
mod maxima;
pub mod q0;
pub mod q1;
pub mod q11;
pub mod q12;
pub mod q13;
pub mod q14;
pub mod q15;
pub mod q16;
pub mod q17;
pub mod q18;
pub mod q19;
pub mod q2;
pub mod q20;
pub mod q21;
pub mod q22;
pub mod q3;
pub mod q4;
pub mod q5;
pub mod q7;
pub mod q8;
pub mod q9;
mod winning;

use crate::events::nexmark::{Bid, NexmarkGenerator};
use crate::events::NexmarkEvent;
use spate::operator::{KeyedContext, KeyedOperator, Timer};
use spate::pipeline::KeyedPipeline;
use spate::prelude::*;
use std::time::Duration;

/// The head of the queries over bids alone: the input's bids, keyed by `key`.
pub fn bids<K: spate::Key>(
    name: &str,
    description: &str,
    key: impl Fn(&Bid) -> K + Send + Sync + 'static,
) -> KeyedPipeline<NexmarkEvent, Bid, K> {
    Pipeline::<NexmarkEvent>::new(name, description)
        .input("nexmark")
        .generator(NexmarkGenerator::new)
        .filter_map(NexmarkEvent::into_bid)
        .event_time(|b| b.date_time)
        .watermark_delay(Duration::from_secs(4))
        .key_by(key)
}

/// The head of the queries joining persons with their auctions: persons and auctions (bids are
/// dropped), keyed by person (an auction by its seller).
pub fn people(name: &str, description: &str) -> KeyedPipeline<NexmarkEvent, NexmarkEvent, u64> {
    events(
        name,
        description,
        |e| !matches!(e, NexmarkEvent::Bid(_)),
        |e| match e {
            NexmarkEvent::Person(p) => p.id,
            NexmarkEvent::Auction(a) => a.seller,
            NexmarkEvent::Bid(b) => b.bidder,
        },
    )
}

/// The head of the queries over auctions and their bids: auctions and bids (persons are
/// dropped), keyed by auction.
pub fn auctions(name: &str, description: &str) -> KeyedPipeline<NexmarkEvent, NexmarkEvent, u64> {
    events(
        name,
        description,
        |e| !matches!(e, NexmarkEvent::Person(_)),
        |e| match e {
            NexmarkEvent::Auction(a) => a.id,
            NexmarkEvent::Bid(b) => b.auction,
            NexmarkEvent::Person(p) => p.id,
        },
    )
}

/// The input's events that `keep` keeps, keyed by `key`.
fn events(
    name: &str,
    description: &str,
    keep: fn(&NexmarkEvent) -> bool,
    key: fn(&NexmarkEvent) -> u64,
) -> KeyedPipeline<NexmarkEvent, NexmarkEvent, u64> {
    Pipeline::<NexmarkEvent>::new(name, description)
        .input("nexmark")
        .generator(NexmarkGenerator::new)
        .filter(keep)
        .event_time(NexmarkEvent::date_time)
        .watermark_delay(Duration::from_secs(4))
        .key_by(key)
}

/// Emits what `map` makes of each record, keeping no state: the stateless queries.
pub struct Stateless<F>(pub F);

impl<O, F> KeyedOperator for Stateless<F>
where
    O: Send + 'static,
    F: Fn(&Bid) -> Option<O> + Send + Sync + 'static,
{
    type Key = u64;
    type Event = Bid;
    type State = ();
    type Output = O;

    fn on_event(&self, bid: &Bid, ctx: &mut KeyedContext<'_, u64, (), O>) {
        if let Some(out) = (self.0)(bid) {
            ctx.emit(out);
        }
        ctx.clear_state();
    }

    fn on_timer(&self, _: Timer, _: &mut KeyedContext<'_, u64, (), O>) {}

    fn describe(&self) -> String {
        "each bid on its own (no state)".into()
    }
}
