//! `nexmark-q20`, expanded bids: each bid on an auction of category 10, with its auction's
//! fields, once both are seen: `{"auction","bidder","price","channel","url","date_time","extra",
//! "item_name","description","initial_bid","reserve","auction_date_time","expires","seller",
//! "category","auction_extra"}`. An incremental join keyed by auction, as Flink's regular join:
//! bids seen before their auction wait for it (without end), and an auction of another category
//! drops them and those to come.

use super::auctions;
use crate::events::nexmark::{Auction, FullBid};
use crate::events::NexmarkEvent;
use serde::{Deserialize, Serialize};
use spate::operator::{KeyedContext, KeyedOperator};
use spate::time::Millis;

/// The category joined.
pub const CATEGORY: u64 = 10;

/// A bid with its auction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpandedBid {
    /// The bid.
    #[serde(flatten)]
    pub bid: FullBid,
    /// The auction's item name.
    pub item_name: String,
    /// The auction's item description.
    pub description: String,
    /// The auction's lowest bid.
    pub initial_bid: u64,
    /// The auction's reserve price.
    pub reserve: u64,
    /// When the auction opened, epoch milliseconds.
    pub auction_date_time: Millis,
    /// When it closes, epoch milliseconds.
    pub expires: Millis,
    /// The seller.
    pub seller: u64,
    /// The category.
    pub category: u64,
    /// The auction's padding.
    pub auction_extra: String,
}

impl ExpandedBid {
    fn new(bid: FullBid, a: &Auction) -> Self {
        ExpandedBid {
            bid,
            item_name: a.item_name.clone(),
            description: a.description.clone(),
            initial_bid: a.initial_bid,
            reserve: a.reserve,
            auction_date_time: a.date_time,
            expires: a.expires,
            seller: a.seller,
            category: a.category,
            auction_extra: a.extra.clone(),
        }
    }
}

/// An auction as the join knows it.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub enum Side {
    /// Not seen yet: its bids so far, in input order.
    #[default]
    Unknown,
    /// Waiting bids.
    Waiting(Vec<FullBid>),
    /// An auction of category 10.
    Matched(Auction),
    /// An auction of another category.
    Other,
}

/// Joins bids with their auctions of category 10.
pub struct ExpandBids;

type Ctx<'a> = KeyedContext<'a, u64, Side, ExpandedBid>;

impl KeyedOperator for ExpandBids {
    type Key = u64;
    type Event = NexmarkEvent<FullBid>;
    type State = Side;
    type Output = ExpandedBid;

    fn on_event(&self, event: &NexmarkEvent<FullBid>, ctx: &mut Ctx<'_>) {
        let side = ctx.state();
        match (event, &mut *side) {
            (NexmarkEvent::Auction(a), Side::Unknown | Side::Waiting(_)) => {
                let matched = a.category == CATEGORY;
                let next = if matched {
                    Side::Matched(a.clone())
                } else {
                    Side::Other
                };
                if let Side::Waiting(bids) = std::mem::replace(side, next) {
                    for bid in bids.into_iter().filter(|_| matched) {
                        ctx.emit(ExpandedBid::new(bid, a));
                    }
                }
            }
            (NexmarkEvent::Bid(b), Side::Matched(a)) => {
                let row = ExpandedBid::new(b.clone(), a);
                ctx.emit(row);
            }
            (NexmarkEvent::Bid(b), Side::Waiting(bids)) => bids.push(b.clone()),
            (NexmarkEvent::Bid(b), Side::Unknown) => *side = Side::Waiting(vec![b.clone()]),
            _ => {}
        }
    }

    fn describe(&self) -> String {
        "joins each bid with its auction when the auction is of category 10".into()
    }
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    auctions(
        "nexmark-q20",
        "Nexmark q20: bids on auctions of category 10, with the auction's fields",
    )
    .process(ExpandBids)
}
