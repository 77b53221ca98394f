//! `nexmark-q0`, pass-through: every bid as `{"auction","bidder","price","date_time","extra"}`.

use super::{bids, Stateless};
use crate::events::nexmark::Bid;

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    bids("nexmark-q0", "Nexmark q0: every bid, passed through", |b| {
        b.auction
    })
    .process(Stateless(|b: &Bid| Some(b.clone())))
}
