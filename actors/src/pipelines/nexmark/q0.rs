//! `nexmark-q0`, pass-through: every bid as `{"auction","bidder","price","date_time","extra"}`.

use super::{bids, Stateless};
use crate::events::nexmark::Bid;
use serde::Serialize;
use spate::time::Millis;

/// A bid as q0 writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PassedBid {
    /// The auction.
    pub auction: u64,
    /// The bidder.
    pub bidder: u64,
    /// The price, in cents.
    pub price: u64,
    /// When it was made, epoch milliseconds.
    pub date_time: Millis,
    /// The generator's padding.
    pub extra: String,
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    bids("nexmark-q0", "Nexmark q0: every bid, passed through", |b| {
        b.auction
    })
    .process(Stateless::new(|b: Bid| {
        Some(PassedBid {
            auction: b.auction,
            bidder: b.bidder,
            price: b.price,
            date_time: b.date_time,
            extra: b.extra,
        })
    }))
}
