//! `nexmark-q14`, calculation: the bids whose price × 0.908 lies strictly between 1,000,000 and
//! 50,000,000, as `{"auction","bidder","price","bid_time_type","date_time","extra",
//! "c_counts"}`: `price` × 0.908 as in q1, `bid_time_type` from the bid's hour of day (UTC)
//! — `dayTime` from 8 to 18, `nightTime` at 6 and before or 20 and after, `otherTime` else —
//! and `c_counts` the number of `c` characters in `extra`.

use super::q1::euros;
use super::{bids, Stateless};
use crate::events::nexmark::Bid;
use serde::Serialize;
use spate::time::Millis;

/// A bid with its price converted and classified.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassifiedBid {
    /// The auction.
    pub auction: u64,
    /// The bidder.
    pub bidder: u64,
    /// The price × 0.908.
    pub price: f64,
    /// `dayTime`, `nightTime` or `otherTime`.
    pub bid_time_type: &'static str,
    /// When it was made, epoch milliseconds.
    pub date_time: Millis,
    /// The generator's padding.
    pub extra: String,
    /// How many `c` characters `extra` holds.
    pub c_counts: u64,
}

/// The part of the day of `time`'s hour (UTC: Unix time has no leap seconds, so the hour is
/// plain arithmetic, with no formatting on the way for every bid).
pub fn time_type(time: Millis) -> &'static str {
    const HOUR: Millis = 60 * 60 * 1000;
    match time.div_euclid(HOUR).rem_euclid(24) {
        8..=18 => "dayTime",
        0..=6 | 20.. => "nightTime",
        _ => "otherTime",
    }
}

fn classify(bid: Bid) -> Option<ClassifiedBid> {
    // 0.908 × price in (1e6, 5e7), in exact integers: 908 × price in (1e9, 5e10).
    let scaled = bid.price as u128 * 908;
    (scaled > 1_000_000_000 && scaled < 50_000_000_000).then(|| ClassifiedBid {
        auction: bid.auction,
        bidder: bid.bidder,
        price: euros(bid.price),
        bid_time_type: time_type(bid.date_time),
        date_time: bid.date_time,
        c_counts: bid.extra.bytes().filter(|&b| b == b'c').count() as u64,
        extra: bid.extra,
    })
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    bids(
        "nexmark-q14",
        "Nexmark q14: bids in a price band, converted, with their part of the day and the c's in extra",
        |b| b.auction,
    )
    .process(Stateless::new(classify))
}
