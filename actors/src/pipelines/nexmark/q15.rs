//! `nexmark-q15`, bidding statistics per day: per UTC day (see the module `daily` for days and
//! ranks), once the watermark passes the day's end: `{"day","total_bids","rank1_bids",
//! "rank2_bids","rank3_bids","total_bidders","rank1_bidders","rank2_bidders","rank3_bidders",
//! "total_auctions","rank1_auctions","rank2_auctions","rank3_auctions"}` (bidders and auctions
//! counted distinct). Flink's q15 re-emits an unbounded `GROUP BY day` at every bid; spate emits
//! each day once, complete.

use super::daily::{day, ByRank, RankCounts, DAY, DAY_MS};
use super::slim_bids;
use serde::Serialize;
use spate::prelude::*;

/// One day's statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayStats {
    /// The day, `yyyy-MM-dd`.
    pub day: String,
    /// Bids.
    pub total_bids: u64,
    /// Bids of rank 1.
    pub rank1_bids: u64,
    /// Bids of rank 2.
    pub rank2_bids: u64,
    /// Bids of rank 3.
    pub rank3_bids: u64,
    /// Distinct bidders.
    pub total_bidders: u64,
    /// Distinct bidders of rank-1 bids.
    pub rank1_bidders: u64,
    /// Distinct bidders of rank-2 bids.
    pub rank2_bidders: u64,
    /// Distinct bidders of rank-3 bids.
    pub rank3_bidders: u64,
    /// Distinct auctions.
    pub total_auctions: u64,
    /// Distinct auctions of rank-1 bids.
    pub rank1_auctions: u64,
    /// Distinct auctions of rank-2 bids.
    pub rank2_auctions: u64,
    /// Distinct auctions of rank-3 bids.
    pub rank3_auctions: u64,
}

impl DayStats {
    /// The statistics of the day starting at `start`.
    pub fn new(start: Millis, counts: &RankCounts) -> Self {
        let [total_bids, rank1_bids, rank2_bids, rank3_bids] = counts.bids;
        let [total_bidders, rank1_bidders, rank2_bidders, rank3_bidders] =
            RankCounts::sizes(&counts.bidders);
        let [total_auctions, rank1_auctions, rank2_auctions, rank3_auctions] =
            RankCounts::sizes(&counts.auctions);
        DayStats {
            day: day(start),
            total_bids,
            rank1_bids,
            rank2_bids,
            rank3_bids,
            total_bidders,
            rank1_bidders,
            rank2_bidders,
            rank3_bidders,
            total_auctions,
            rank1_auctions,
            rank2_auctions,
            rank3_auctions,
        }
    }
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    slim_bids(
        "nexmark-q15",
        "Nexmark q15: bids, bidders and auctions per day, by price rank",
        // All of a day's bids meet in one key: the day's start.
        |b| b.date_time.div_euclid(DAY_MS) * DAY_MS,
    )
    .window(Windows::tumbling(DAY))
    .aggregate(ByRank)
    .map(|w| Some(DayStats::new(w.start, &w.value)))
}
