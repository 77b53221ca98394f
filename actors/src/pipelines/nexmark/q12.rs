//! `nexmark-q12`, bids per bidder per window: per bidder per 10-second tumbling window, once the
//! watermark passes its end: `{"bidder","bid_count","window_start","window_end"}`. Flink's q12
//! windows by processing time; spate's by event time, so the result depends on the input alone.

use super::q11::BidderBids;
use super::slim_bids;
use spate::prelude::*;
use std::time::Duration;

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    slim_bids(
        "nexmark-q12",
        "Nexmark q12: bids per bidder per 10-second window",
        |b| b.bidder,
    )
    .window(Windows::tumbling(Duration::from_secs(10)))
    .aggregate(Count)
    .map(|w| {
        let end = w.end;
        Some(BidderBids::new(w, end))
    })
}
