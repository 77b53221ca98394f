//! `nexmark-q5`, hot items: per 10-second window sliding every 2 seconds, every auction whose
//! bid count in the window equals the window's highest count:
//! `{"auction","num","window_start","window_end"}`. Two keyed stages: bids counted per auction
//! and window, then, keyed by window, the counts at the window's maximum, once the watermark
//! passes the window's end.

use super::maxima::Maxima;
use super::slim_bids;
use serde::{Deserialize, Serialize};
use spate::prelude::*;
use std::time::Duration;

/// The window size.
const SIZE: Millis = 10_000;

/// One auction's bid count in one window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionCount {
    /// The auction.
    pub auction: u64,
    /// Its bids in the window.
    pub num: u64,
    /// Window start, epoch milliseconds (inclusive).
    pub window_start: Millis,
    /// Window end, epoch milliseconds (exclusive).
    pub window_end: Millis,
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    slim_bids(
        "nexmark-q5",
        "Nexmark q5: per 10 s window sliding every 2 s, the auctions with the most bids",
        |b| b.auction,
    )
    .window(Windows::sliding(
        Duration::from_secs(10),
        Duration::from_secs(2),
    ))
    .aggregate(Count)
    .map(|w| {
        Some(AuctionCount {
            auction: w.key,
            num: w.value,
            window_start: w.start,
            window_end: w.end,
        })
    })
    .event_time(|c| c.window_end - 1)
    .key_by(|c| c.window_start)
    .process(Maxima::new(
        SIZE,
        |c: &AuctionCount| c.num,
        |c, _, _| c,
        "each window's auctions at its highest bid count",
    ))
}
