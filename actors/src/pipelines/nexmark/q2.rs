//! `nexmark-q2`, selection: `{"auction","price"}` of every bid whose `auction % 123 == 0`.

use super::{slim_bids, Stateless};
use crate::events::nexmark::SlimBid;
use serde::Serialize;

/// A selected bid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuctionPrice {
    /// The auction.
    pub auction: u64,
    /// The price.
    pub price: u64,
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    slim_bids(
        "nexmark-q2",
        "Nexmark q2: auction and price of the bids on auctions whose id is a multiple of 123",
        |b| b.auction,
    )
    .process(Stateless::new(|b: SlimBid| {
        b.auction.is_multiple_of(123).then_some(AuctionPrice {
            auction: b.auction,
            price: b.price,
        })
    }))
}
