//! `nexmark-q7`, highest bid: per 10-second tumbling window, every bid whose price equals the
//! window's highest, once the watermark passes the window's end:
//! `{"auction","price","bidder","date_time","window_start","window_end"}`. Keyed by window, so
//! one partition holds each window's bids.

use super::maxima::Maxima;
use super::slim_bids;
use crate::events::nexmark::SlimBid;
use serde::Serialize;
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

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    slim_bids(
        "nexmark-q7",
        "Nexmark q7: per 10-second window, the bids at the window's highest price",
        |b| b.date_time.div_euclid(WINDOW) * WINDOW,
    )
    .process(Maxima::new(
        WINDOW,
        |b: &SlimBid| b.price,
        |b, window_start, window_end| HighestBid {
            auction: b.auction,
            price: b.price,
            bidder: b.bidder,
            date_time: b.date_time,
            window_start,
            window_end,
        },
        "each 10 s window's bids at its highest price",
    ))
}
