//! `nexmark-q19`, top bids per auction: each auction's bids taken in event-time order (ties in
//! input order) once the watermark has passed them; its ten highest so far are ranked by price
//! (equal prices by the order taken). Each bid that enters the ten emits the auction's whole
//! ranking again (update mode, keyed by auction and rank):
//! `{"auction","bidder","price","channel","url","date_time","extra","rank_number"}`, ranks 1 to
//! at most 10.

use super::full_bids;
use crate::events::nexmark::FullBid;
use serde::Serialize;
use spate::operator::{InOrder, KeyedContext, OrderedOperator};

/// How many bids an auction's ranking holds.
pub const TOP: usize = 10;

/// A bid and its rank in its auction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankedBid {
    /// The bid.
    #[serde(flatten)]
    pub bid: FullBid,
    /// Its rank, 1 for the highest.
    pub rank_number: u64,
}

/// Keeps each auction's ten highest bids.
pub struct TopBids;

impl OrderedOperator for TopBids {
    type Key = u64;
    type Event = FullBid;
    /// The ranking, highest first.
    type State = Vec<FullBid>;
    type Output = RankedBid;

    fn on_record(&self, bid: &FullBid, ctx: &mut KeyedContext<'_, u64, Vec<FullBid>, RankedBid>) {
        let top = ctx.state();
        let at = top.iter().take_while(|b| b.price >= bid.price).count();
        if at >= TOP {
            return;
        }
        top.insert(at, bid.clone());
        top.truncate(TOP);
        let ranked: Vec<RankedBid> = (top.iter().zip(1..))
            .map(|(bid, rank_number)| RankedBid {
                bid: bid.clone(),
                rank_number,
            })
            .collect();
        for row in ranked {
            ctx.emit(row);
        }
    }
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    full_bids(
        "nexmark-q19",
        "Nexmark q19: each auction's ten highest bids, ranked (update mode)",
        |b| b.auction,
    )
    .process(InOrder(TopBids))
}
