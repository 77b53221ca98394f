//! `nexmark-q7`, highest bid: per 10-second tumbling window, every bid whose price equals the
//! window's highest, once the watermark passes the window's end:
//! `{"auction","price","bidder","date_time","window_start","window_end"}` (in input order
//! within a window). Keyed by window, so one partition holds each window's bids.

use super::bids;
use crate::events::nexmark::Bid;
use serde::{Deserialize, Serialize};
use spate::operator::{KeyedContext, KeyedOperator, Timer};
use spate::time::Millis;

/// The window size.
pub const WINDOW: Millis = 10_000;

/// One of a window's highest bids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HighestBid {
    /// The auction.
    pub auction: u64,
    /// The price: the window's highest.
    pub price: u64,
    /// The bidder.
    pub bidder: u64,
    /// When it was made, epoch milliseconds.
    pub date_time: Millis,
    /// Window start, epoch milliseconds (inclusive).
    pub window_start: Millis,
    /// Window end, epoch milliseconds (exclusive).
    pub window_end: Millis,
}

/// A window's highest price so far and its bids at that price.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Highest {
    price: u64,
    bids: Vec<(u64, u64, Millis)>,
}

/// Keeps each window's highest bids and emits them when it closes.
pub struct HighestBids;

type Ctx<'a> = KeyedContext<'a, Millis, Highest, HighestBid>;

impl KeyedOperator for HighestBids {
    type Key = Millis;
    type Event = Bid;
    type State = Highest;
    type Output = HighestBid;

    fn on_event(&self, bid: &Bid, ctx: &mut Ctx<'_>) {
        let end = ctx.key() + WINDOW;
        let highest = ctx.state();
        if highest.bids.is_empty() || bid.price > highest.price {
            highest.price = bid.price;
            highest.bids.clear();
        }
        if bid.price == highest.price {
            highest.bids.push((bid.auction, bid.bidder, bid.date_time));
        }
        ctx.register_event_timer(end);
    }

    fn on_timer(&self, _: Timer, ctx: &mut Ctx<'_>) {
        let window_start = *ctx.key();
        let Highest { price, bids } = std::mem::take(ctx.state());
        for (auction, bidder, date_time) in bids {
            ctx.emit(HighestBid {
                auction,
                price,
                bidder,
                date_time,
                window_start,
                window_end: window_start + WINDOW,
            });
        }
        ctx.clear_state();
    }

    fn describe(&self) -> String {
        "each 10 s window's highest bids, when the watermark passes its end".into()
    }
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    bids(
        "nexmark-q7",
        "Nexmark q7: per 10-second window, the bids at the window's highest price",
        |b| b.date_time.div_euclid(WINDOW) * WINDOW,
    )
    .process(HighestBids)
}
