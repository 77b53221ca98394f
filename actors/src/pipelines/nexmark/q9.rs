//! `nexmark-q9`, winning bids: each auction with its winning bid (see the module `winning`: the
//! highest bid with `date_time` in `[auction.date_time, auction.expires]`, ties to the earliest,
//! then the lowest bidder), once the watermark passes `expires`; auctions without such a bid
//! are not emitted. `{"id","item_name","description","initial_bid","reserve","date_time",
//! "expires","seller","category","extra","auction","bidder","price","bid_date_time",
//! "bid_extra"}`: the auction's fields, then the bid's (its `date_time` and `extra` renamed).

use super::auctions;
use super::winning::WinningBids;
use crate::events::nexmark::{Auction, Bid};
use serde::Serialize;
use spate::time::Millis;

/// An auction and its winning bid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WinningBid {
    /// The auction.
    pub id: u64,
    /// Its item's name.
    pub item_name: String,
    /// Its item's description.
    pub description: String,
    /// Its lowest bid.
    pub initial_bid: u64,
    /// Its reserve price.
    pub reserve: u64,
    /// When it opened, epoch milliseconds.
    pub date_time: Millis,
    /// When it closed, epoch milliseconds.
    pub expires: Millis,
    /// Its seller.
    pub seller: u64,
    /// Its category.
    pub category: u64,
    /// Its padding.
    pub extra: String,
    /// The bid's auction (`id`).
    pub auction: u64,
    /// The winning bidder.
    pub bidder: u64,
    /// The winning price.
    pub price: u64,
    /// When the winning bid was made, epoch milliseconds.
    pub bid_date_time: Millis,
    /// The bid's padding.
    pub bid_extra: String,
}

impl WinningBid {
    fn new(a: Auction, b: Bid) -> Self {
        WinningBid {
            id: a.id,
            item_name: a.item_name,
            description: a.description,
            initial_bid: a.initial_bid,
            reserve: a.reserve,
            date_time: a.date_time,
            expires: a.expires,
            seller: a.seller,
            category: a.category,
            extra: a.extra,
            auction: b.auction,
            bidder: b.bidder,
            price: b.price,
            bid_date_time: b.date_time,
            bid_extra: b.extra,
        }
    }
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    auctions(
        "nexmark-q9",
        "Nexmark q9: each auction with its winning bid, once it closed",
    )
    .process(WinningBids)
    .map(|(auction, bid)| Some(WinningBid::new(auction, bid)))
}
