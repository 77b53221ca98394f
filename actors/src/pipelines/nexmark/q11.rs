//! `nexmark-q11`, user sessions: per bidder, sessions of bids, a bid more than 10 s after the
//! bidder's previous one starting a new session (bids exactly 10 s apart stay in one, as in
//! Flink, whose session windows merge when they touch):
//! `{"bidder","bid_count","window_start","window_end"}`, `window_start` the first bid's time and
//! `window_end` the last bid's plus 10 s, once the watermark passes that end.
//!
//! spate's sessions join a record less than the gap after the last one, so the gap is 10 s plus
//! 1 ms (event times are whole milliseconds) and the reported end is taken back by that 1 ms.

use super::slim_bids;
use serde::Serialize;
use spate::prelude::*;
use std::time::Duration;

/// The gap that closes a session.
pub const GAP: Millis = 10_000;

/// One bidder's bids in one window (q12) or session (q11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BidderBids {
    /// The bidder.
    pub bidder: u64,
    /// Its bids in the window or session.
    pub bid_count: u64,
    /// The window's start or the session's first bid's time, epoch milliseconds.
    pub window_start: Millis,
    /// The window's end or the session's last bid's time plus 10 s, epoch milliseconds.
    pub window_end: Millis,
}

impl BidderBids {
    /// A bidder's count in the window `[start, end)` (`end` as the row writes it).
    pub fn new(w: WindowResult<u64, u64>, end: Millis) -> Self {
        BidderBids {
            bidder: w.key,
            bid_count: w.value,
            window_start: w.start,
            window_end: end,
        }
    }
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    slim_bids(
        "nexmark-q11",
        "Nexmark q11: bids per bidder session (10 s of inactivity closes one)",
        |b| b.bidder,
    )
    .session_window(SessionWindows::with_gap(Duration::from_millis(
        GAP as u64 + 1,
    )))
    .aggregate(Count)
    .map(|w| {
        let end = w.end - 1;
        Some(BidderBids::new(w, end))
    })
}
