//! `nexmark-q16`, channel statistics per day: per bid channel per UTC day (see
//! `daily`), once the watermark passes the day's end: `{"channel","day","minute",
//! "total_bids","rank1_bids","rank2_bids","rank3_bids","total_bidders","rank1_bidders",
//! "rank2_bidders","rank3_bidders","total_auctions","rank1_auctions","rank2_auctions",
//! "rank3_auctions"}`, `minute` being the latest bid's time of day, `HH:mm` (UTC), and the
//! counts as in q15.

use super::daily::{utc, ByRank, DAY};
use super::full_bids;
use super::q15::DayStats;
use serde::Serialize;
use spate::prelude::*;

/// One channel's statistics of one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelStats {
    /// The channel.
    pub channel: String,
    /// The latest bid's time of day, `HH:mm`.
    pub minute: String,
    /// The day and its counts, as q15 writes them.
    #[serde(flatten)]
    pub stats: DayStats,
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    full_bids(
        "nexmark-q16",
        "Nexmark q16: bids, bidders and auctions per channel per day, by price rank",
        |b| b.channel.clone(),
    )
    .window(Windows::tumbling(DAY))
    .aggregate(ByRank)
    .map(|w| {
        Some(ChannelStats {
            minute: utc(w.value.last, "%H:%M"),
            stats: DayStats::new(w.start, &w.value),
            channel: w.key,
        })
    })
}
