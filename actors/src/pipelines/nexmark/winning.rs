//! [`WinningBids`]: per auction (the key), its winning bid, the highest bid made while it was
//! open, known once the watermark passes its close (q4, q9).
//!
//! A bid is *valid* for its auction when its `date_time` lies in `[auction.date_time,
//! auction.expires]`; the winner is the valid bid with the highest price, ties going to the
//! earliest, then to the lowest bidder id, then to the first that came. The winner is emitted
//! when the watermark passes `expires` (a valid bid arriving later is late); an auction without
//! a valid bid emits nothing. Bids may come before their auction: they wait until the
//! watermark passes their own time, after which their auction, if it comes, is late.

use crate::events::nexmark::{Auction, Bid};
use crate::events::NexmarkEvent;
use serde::{Deserialize, Serialize};
use spate::operator::{KeyedContext, KeyedOperator, Timer};
use spate::time::Millis;
use std::cmp::Ordering;

/// An auction's state: the auction once seen, its best valid bid, or the bids waiting for it.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct AuctionBids {
    auction: Option<Auction>,
    best: Option<Bid>,
    /// Bids seen before the auction, in the order they came.
    waiting: Vec<Bid>,
}

/// Whether `bid` beats `best`: a higher price, then an earlier time, then a lower bidder.
fn beats(bid: &Bid, best: &Bid) -> bool {
    let order = (bid.price.cmp(&best.price))
        .then(best.date_time.cmp(&bid.date_time))
        .then(best.bidder.cmp(&bid.bidder));
    order == Ordering::Greater
}

impl AuctionBids {
    fn offer(&mut self, bid: &Bid) {
        let Some(auction) = &self.auction else {
            return;
        };
        let valid = (auction.date_time..=auction.expires).contains(&bid.date_time);
        if valid && self.best.as_ref().is_none_or(|best| beats(bid, best)) {
            self.best = Some(bid.clone());
        }
    }
}

/// Finds each auction's winning bid (see the module doc).
pub struct WinningBids;

type Ctx<'a> = KeyedContext<'a, u64, AuctionBids, (Auction, Bid)>;

impl KeyedOperator for WinningBids {
    type Key = u64;
    type Event = NexmarkEvent;
    type State = AuctionBids;
    type Output = (Auction, Bid);

    fn on_event(&self, event: &NexmarkEvent, ctx: &mut Ctx<'_>) {
        let state = ctx.state();
        match event {
            NexmarkEvent::Auction(a) if state.auction.is_none() => {
                state.auction = Some(a.clone());
                for bid in std::mem::take(&mut state.waiting) {
                    state.offer(&bid);
                }
                ctx.register_event_timer(closed_at(a));
            }
            NexmarkEvent::Bid(b) if state.auction.is_some() => state.offer(b),
            NexmarkEvent::Bid(b) => {
                state.waiting.push(b.clone());
                ctx.register_event_timer(b.date_time + 1);
            }
            NexmarkEvent::Auction(_) | NexmarkEvent::Person(_) => {}
        }
    }

    fn on_timer(&self, timer: Timer, ctx: &mut Ctx<'_>) {
        let state = ctx.state();
        match &state.auction {
            Some(a) if timer.time >= closed_at(a) => {
                let (auction, best) = (state.auction.take(), state.best.take());
                ctx.clear_state();
                if let (Some(auction), Some(best)) = (auction, best) {
                    ctx.emit((auction, best));
                }
            }
            Some(_) => {}
            None => {
                state.waiting.retain(|b| b.date_time >= timer.time);
                if state.waiting.is_empty() {
                    ctx.clear_state();
                }
            }
        }
    }

    fn describe(&self) -> String {
        "each auction's highest bid while it was open, once the watermark passes its close".into()
    }
}

/// The timer that closes `auction`: bids at `expires` still count.
fn closed_at(auction: &Auction) -> Millis {
    auction.expires + 1
}
