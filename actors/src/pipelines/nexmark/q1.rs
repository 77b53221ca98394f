//! `nexmark-q1`, currency conversion: every bid as `{"auction","bidder","price","date_time",
//! "extra"}` with `price` in euros, the dollar price × 0.908 (exact to three decimals: the
//! product of the integer price and 908, divided by 1,000, as the nearest double, which JSON
//! writes with at most three decimals).

use super::{bids, Stateless};
use crate::events::nexmark::Bid;
use serde::Serialize;
use spate::time::Millis;

/// A bid with its price converted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EuroBid {
    /// The auction.
    pub auction: u64,
    /// The bidder.
    pub bidder: u64,
    /// The price × 0.908.
    pub price: f64,
    /// When it was made, epoch milliseconds.
    pub date_time: Millis,
    /// The generator's padding.
    pub extra: String,
}

/// `price` × 0.908, exact to three decimals.
pub fn euros(price: u64) -> f64 {
    (price as u128 * 908) as f64 / 1_000.0
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    bids(
        "nexmark-q1",
        "Nexmark q1: every bid, its price × 0.908",
        |b| b.auction,
    )
    .process(Stateless::new(|b: Bid| {
        Some(EuroBid {
            auction: b.auction,
            bidder: b.bidder,
            price: euros(b.price),
            date_time: b.date_time,
            extra: b.extra,
        })
    }))
}
