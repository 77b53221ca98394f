//! `nexmark-q13`, bounded side input join: each bid joined with the row of a side table whose
//! `key` equals the bid's `auction % 10000`: `{"auction","bidder","price","date_time","value"}`.
//! Inputs `nexmark` and `side` (JSON lines `{"key","value"}`, `value` a string, typically a
//! file); bids without a row are dropped. The side rows hold from the start of time, a later
//! row of a key replacing an earlier one, and a bid waits until the side input's watermark has
//! passed its time (for a file, until it was read to its end), so a slow side input never
//! changes the result.

use super::slim_bids;
use crate::events::nexmark::SlimBid;
use serde::{Deserialize, Serialize};
use spate::pipeline::{KeyedPipeline, Pipeline};
use spate::time::Millis;

/// How bids find their row: `auction % KEYS`.
pub const KEYS: u64 = 10_000;

/// One side table row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideRow {
    /// Its key.
    pub key: u64,
    /// Its value.
    pub value: String,
}

/// A bid with its side row's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SideBid {
    /// The auction.
    pub auction: u64,
    /// The bidder.
    pub bidder: u64,
    /// The price.
    pub price: u64,
    /// When it was made, epoch milliseconds.
    pub date_time: Millis,
    /// The side row's value.
    pub value: String,
}

/// The side table: keyed by `key`, every row valid from the start of time.
pub fn side() -> KeyedPipeline<SideRow, SideRow, u64> {
    Pipeline::<SideRow>::new("side", "side rows")
        .input("side")
        .event_time(|_| 0)
        .key_by(|r| r.key)
}

fn joined(bid: &SlimBid, row: Option<&SideRow>) -> Option<SideBid> {
    row.map(|row| SideBid {
        auction: bid.auction,
        bidder: bid.bidder,
        price: bid.price,
        date_time: bid.date_time,
        value: row.value.clone(),
    })
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    slim_bids(
        "nexmark-q13",
        "Nexmark q13: bids joined with a side table on auction % 10000",
        |b| b.auction % KEYS,
    )
    .join_table(side(), joined)
    .map(|row| row)
}
