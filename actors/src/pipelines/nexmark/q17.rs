//! `nexmark-q17`, auction statistics per day: per auction per UTC day (see the module `daily`),
//! once the watermark passes the day's end: `{"auction","day","total_bids","rank1_bids",
//! "rank2_bids","rank3_bids","min_price","max_price","avg_price","sum_price"}`, `avg_price` the
//! mean price as a double.

use super::daily::{day, Prices, DAY};
use super::slim_bids;
use serde::Serialize;
use spate::prelude::*;

/// One auction's statistics of one day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuctionDay {
    /// The auction.
    pub auction: u64,
    /// The day, `yyyy-MM-dd`.
    pub day: String,
    /// Bids.
    pub total_bids: u64,
    /// Bids of rank 1.
    pub rank1_bids: u64,
    /// Bids of rank 2.
    pub rank2_bids: u64,
    /// Bids of rank 3.
    pub rank3_bids: u64,
    /// The lowest price.
    pub min_price: u64,
    /// The highest price.
    pub max_price: u64,
    /// The mean price.
    pub avg_price: f64,
    /// The prices' sum.
    pub sum_price: u64,
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    slim_bids(
        "nexmark-q17",
        "Nexmark q17: bids and prices per auction per day",
        |b| b.auction,
    )
    .window(Windows::tumbling(DAY))
    .aggregate(Prices)
    .map(|w| {
        let p = w.value;
        Some(AuctionDay {
            auction: w.key,
            day: day(w.start),
            total_bids: p.bids[0],
            rank1_bids: p.bids[1],
            rank2_bids: p.bids[2],
            rank3_bids: p.bids[3],
            min_price: p.min,
            max_price: p.max,
            avg_price: p.sum as f64 / p.bids[0] as f64,
            sum_price: p.sum,
        })
    })
}
