//! `nexmark-q21`, channel ids: `{"auction","bidder","price","channel","channel_id"}` for each bid
//! whose channel is known or whose url names one: `channel_id` is `0` for the channel `apple`,
//! `1` for `google`, `2` for `facebook`, `3` for `baidu` (any case), and otherwise the value of
//! the url's `channel_id` parameter (the text after `channel_id=` at the url's start or after an
//! `&`, up to the next `&`). Bids with neither are dropped.

use super::{full_bids, Stateless};
use crate::events::nexmark::FullBid;
use serde::Serialize;

/// A bid with its channel id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelBid {
    /// The auction.
    pub auction: u64,
    /// The bidder.
    pub bidder: u64,
    /// The price.
    pub price: u64,
    /// The channel.
    pub channel: String,
    /// The channel's id.
    pub channel_id: String,
}

/// The `channel_id` parameter of `url`, if it has one.
pub fn url_channel_id(url: &str) -> Option<&str> {
    const NAME: &str = "channel_id=";
    let mut from = 0;
    while let Some(found) = url[from..].find(NAME) {
        let at = from + found;
        if at == 0 || url.as_bytes()[at - 1] == b'&' {
            let value = &url[at + NAME.len()..];
            return Some(value.split('&').next().unwrap_or(value));
        }
        from = at + 1;
    }
    None
}

fn with_channel_id(bid: FullBid) -> Option<ChannelBid> {
    let known = ["apple", "google", "facebook", "baidu"]
        .iter()
        .position(|c| bid.channel.eq_ignore_ascii_case(c));
    let channel_id = match known {
        Some(i) => i.to_string(),
        None => url_channel_id(&bid.url)?.to_string(),
    };
    Some(ChannelBid {
        auction: bid.auction,
        bidder: bid.bidder,
        price: bid.price,
        channel: bid.channel,
        channel_id,
    })
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    full_bids(
        "nexmark-q21",
        "Nexmark q21: bids with the id of their channel",
        |b| b.auction,
    )
    .process(Stateless::new(with_channel_id))
}
