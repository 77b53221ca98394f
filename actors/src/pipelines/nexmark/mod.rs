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

use crate::events::nexmark::{
    decode_line, Auction, Bid, DecodedAuction, DecodedBid, DecodedPerson, FullBid, NexmarkBid,
    NexmarkGenerator, Person, PersonOrAuction, Skipped, SlimAuction, SlimBid,
};
use crate::events::NexmarkEvent;
use spate::operator::{KeyedContext, KeyedOperator};
use spate::pipeline::KeyedPipeline;
use spate::prelude::*;
use std::marker::PhantomData;
use std::time::Duration;

/// How far behind the latest event time the watermark stays, as in Flink's Nexmark.
const WATERMARK_DELAY: Duration = Duration::from_secs(4);

/// The input's events decoded with bids as `B`, auctions as `A` and persons as `P`, with the
/// generator.
fn input<B: DecodedBid, A: DecodedAuction, P: DecodedPerson>(
    name: &str,
    description: &str,
) -> Pipeline<NexmarkEvent<B, A, P>> {
    Pipeline::<NexmarkEvent<B, A, P>>::new(name, description)
        .input("nexmark")
        .generator(NexmarkGenerator::new)
        .decode_lines_with(decode_line::<B, A, P>)
}

/// The input of the queries over bids alone: persons and auctions are checked to be JSON and
/// skipped, nothing of them decoded.
type BidEvent<B> = NexmarkEvent<B, Skipped, Skipped>;

/// The head of the queries that pass bids through: the input's bids, without channel and url,
/// keyed by `key`.
pub fn bids<K: spate::Key>(
    name: &str,
    description: &str,
    key: impl Fn(&Bid) -> K + Send + Sync + 'static,
) -> KeyedPipeline<BidEvent<Bid>, Bid, K> {
    bids_as(name, description, key)
}

/// The head of the queries that read a bid's numbers alone: the input's bids as [`SlimBid`]s
/// (no string decoded), keyed by `key`.
pub fn slim_bids<K: spate::Key>(
    name: &str,
    description: &str,
    key: impl Fn(&SlimBid) -> K + Send + Sync + 'static,
) -> KeyedPipeline<BidEvent<SlimBid>, SlimBid, K> {
    bids_as(name, description, key)
}

/// The head of the queries over bids alone that read their channel or url: the input's bids,
/// keyed by `key`.
pub fn full_bids<K: spate::Key>(
    name: &str,
    description: &str,
    key: impl Fn(&FullBid) -> K + Send + Sync + 'static,
) -> KeyedPipeline<BidEvent<FullBid>, FullBid, K> {
    bids_as(name, description, key)
}

/// The input's bids (as `B`), keyed by `key`.
fn bids_as<B: NexmarkBid, K: spate::Key>(
    name: &str,
    description: &str,
    key: impl Fn(&B) -> K + Send + Sync + 'static,
) -> KeyedPipeline<BidEvent<B>, B, K> {
    input::<B, Skipped, Skipped>(name, description)
        .filter_map(NexmarkEvent::into_bid)
        .event_time(B::date_time)
        .watermark_delay(WATERMARK_DELAY)
        .key_by(key)
}

/// The head of the queries joining persons with their auctions: persons and auctions keyed by
/// person (an auction by its seller); bids, nine events in ten, are skipped undecoded, and of
/// an auction its numbers alone are decoded.
pub fn people(
    name: &str,
    description: &str,
) -> KeyedPipeline<NexmarkEvent<Skipped, SlimAuction>, PersonOrAuction, u64> {
    input::<Skipped, SlimAuction, Person>(name, description)
        .filter_map(PersonOrAuction::of)
        .event_time(PersonOrAuction::date_time)
        .watermark_delay(WATERMARK_DELAY)
        .key_by(PersonOrAuction::person)
}

/// The head of the queries over auctions and their bids (as `B`): auctions and bids (persons
/// are dropped), keyed by auction.
pub fn auctions<B: NexmarkBid>(
    name: &str,
    description: &str,
) -> KeyedPipeline<NexmarkEvent<B>, NexmarkEvent<B>, u64> {
    input::<B, Auction, Person>(name, description)
        .filter(|e| !matches!(e, NexmarkEvent::Person(_)))
        .event_time(NexmarkEvent::date_time)
        .watermark_delay(WATERMARK_DELAY)
        .key_by(|e| match e {
            NexmarkEvent::Auction(a) => a.id,
            NexmarkEvent::Bid(b) => b.auction(),
            NexmarkEvent::Person(p) => p.id,
        })
}

/// Emits what `map` makes of each bid (a `B`), keeping no state: the stateless queries.
pub struct Stateless<F, B = Bid> {
    map: F,
    _bid: PhantomData<fn(B)>,
}

impl<F, B> Stateless<F, B> {
    /// Emits what `map` makes of each bid.
    pub fn new(map: F) -> Self {
        Stateless {
            map,
            _bid: PhantomData,
        }
    }
}

impl<O, F, B> KeyedOperator for Stateless<F, B>
where
    O: Send + 'static,
    B: NexmarkBid,
    F: Fn(B) -> Option<O> + Send + Sync + 'static,
{
    type Key = u64;
    type Event = B;
    type State = ();
    type Output = O;

    fn on_event(&self, bid: &B, ctx: &mut KeyedContext<'_, u64, (), O>) {
        self.on_event_owned(bid.clone(), ctx);
    }

    /// `map` takes the bid, so its strings move into the output uncopied.
    fn on_event_owned(&self, bid: B, ctx: &mut KeyedContext<'_, u64, (), O>) {
        if let Some(out) = (self.map)(bid) {
            ctx.emit(out);
        }
    }

    fn describe(&self) -> String {
        "each bid on its own (no state)".into()
    }
}
