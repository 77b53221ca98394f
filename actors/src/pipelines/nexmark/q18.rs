//! `nexmark-q18`, last bid per bidder and auction: each bidder's bids on each auction taken in
//! event-time order (ties in input order) once the watermark has passed them; a bid later than
//! the pair's last so far becomes its last and is emitted (update mode, keyed by bidder and
//! auction): `{"auction","bidder","price","channel","url","date_time","extra"}`. A bid at the same
//! time as the pair's last one does not replace it.

use super::full_bids;
use crate::events::nexmark::FullBid;
use spate::operator::{InOrder, KeyedContext, OrderedOperator};
use spate::time::Millis;

/// Emits each bidder's newest bid on each auction.
pub struct LastBids;

impl OrderedOperator for LastBids {
    type Key = (u64, u64);
    type Event = FullBid;
    /// The time of the pair's last bid.
    type State = Option<Millis>;
    type Output = FullBid;

    fn on_record(
        &self,
        bid: &FullBid,
        ctx: &mut KeyedContext<'_, (u64, u64), Option<Millis>, FullBid>,
    ) {
        let last = ctx.state();
        if last.is_none_or(|t| bid.date_time > t) {
            *last = Some(bid.date_time);
            ctx.emit(bid.clone());
        }
    }
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    full_bids(
        "nexmark-q18",
        "Nexmark q18: each bidder's last bid on each auction (update mode)",
        |b| (b.bidder, b.auction),
    )
    .process(InOrder(LastBids))
}
