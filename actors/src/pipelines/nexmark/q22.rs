//! `nexmark-q22`, url directories: every bid as `{"auction","bidder","price","channel","dir1",
//! "dir2","dir3"}`, `dir1` to `dir3` being the url's parts 3 to 5 when split at `/` (counting
//! from 0: `https:`, the empty part, the host, then the directories), `null` when the url has
//! fewer parts.

use super::{full_bids, Stateless};
use crate::events::nexmark::FullBid;
use serde::Serialize;

/// A bid with its url's first three directories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UrlBid {
    /// The auction.
    pub auction: u64,
    /// The bidder.
    pub bidder: u64,
    /// The price.
    pub price: u64,
    /// The channel.
    pub channel: String,
    /// Part 3 of the url.
    pub dir1: Option<String>,
    /// Part 4 of the url.
    pub dir2: Option<String>,
    /// Part 5 of the url.
    pub dir3: Option<String>,
}

fn split_url(bid: FullBid) -> Option<UrlBid> {
    let mut parts = bid.url.split('/').skip(3).map(String::from);
    Some(UrlBid {
        auction: bid.auction,
        bidder: bid.bidder,
        price: bid.price,
        channel: bid.channel,
        dir1: parts.next(),
        dir2: parts.next(),
        dir3: parts.next(),
    })
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    full_bids(
        "nexmark-q22",
        "Nexmark q22: bids with the first three directories of their url",
        |b| b.auction,
    )
    .process(Stateless::new(split_url))
}
