//! Per-day bid statistics by price rank, shared by q15, q16 and q17: a day is a UTC calendar
//! day (a 1-day tumbling window aligned to the Unix epoch), written `yyyy-MM-dd`.
//!
//! A bid's rank is 1 when its price is below 10,000, 2 from 10,000 to below 1,000,000, and 3
//! from 1,000,000 on.

use crate::events::nexmark::NexmarkBid;
use serde::{Deserialize, Serialize};
use spate::time::Millis;
use spate::window::Aggregator;
use std::collections::BTreeSet;
use std::time::Duration;

/// One day, in milliseconds.
pub const DAY_MS: Millis = 24 * 60 * 60 * 1000;
/// One day.
pub const DAY: Duration = Duration::from_millis(DAY_MS as u64);

/// A bid's rank, 1 to 3.
pub fn rank(price: u64) -> usize {
    match price {
        0..10_000 => 1,
        10_000..1_000_000 => 2,
        _ => 3,
    }
}

/// `time` as `format` (chrono's `strftime` syntax) in UTC.
pub fn utc(time: Millis, format: &str) -> String {
    chrono::DateTime::from_timestamp_millis(time)
        .map_or_else(|| time.to_string(), |t| t.format(format).to_string())
}

/// The day of `time`: `yyyy-MM-dd`.
pub fn day(time: Millis) -> String {
    utc(time, "%Y-%m-%d")
}

/// Bids, distinct bidders and distinct auctions, in total (index 0) and per rank (1 to 3), and
/// the latest bid's time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankCounts {
    /// Bids.
    pub bids: [u64; 4],
    /// Distinct bidders.
    pub bidders: [BTreeSet<u64>; 4],
    /// Distinct auctions.
    pub auctions: [BTreeSet<u64>; 4],
    /// The latest bid's time.
    pub last: Millis,
}

impl RankCounts {
    /// How many distinct ids each of `sets` holds.
    pub fn sizes(sets: &[BTreeSet<u64>; 4]) -> [u64; 4] {
        sets.each_ref().map(|s| s.len() as u64)
    }
}

/// Counts bids, bidders and auctions per rank: [`RankCounts`].
pub struct ByRank;

impl<B: NexmarkBid> Aggregator<B> for ByRank {
    type Acc = RankCounts;
    type Out = RankCounts;

    fn create(&self) -> RankCounts {
        RankCounts {
            last: Millis::MIN,
            ..RankCounts::default()
        }
    }

    fn add(&self, acc: &mut RankCounts, bid: &B) {
        for i in [0, rank(bid.price())] {
            acc.bids[i] += 1;
            acc.bidders[i].insert(bid.bidder());
            acc.auctions[i].insert(bid.auction());
        }
        acc.last = acc.last.max(bid.date_time());
    }

    fn merge(&self, acc: &mut RankCounts, other: &RankCounts) {
        for i in 0..4 {
            acc.bids[i] += other.bids[i];
            acc.bidders[i].extend(&other.bidders[i]);
            acc.auctions[i].extend(&other.auctions[i]);
        }
        acc.last = acc.last.max(other.last);
    }

    fn finish(&self, acc: &RankCounts) -> RankCounts {
        acc.clone()
    }
}

/// Bids per rank (index 0: all) and the lowest, highest and summed price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceStats {
    /// Bids, in total and per rank.
    pub bids: [u64; 4],
    /// The lowest price.
    pub min: u64,
    /// The highest price.
    pub max: u64,
    /// The prices' sum.
    pub sum: u64,
}

/// Counts bids per rank and sums their prices: [`PriceStats`].
pub struct Prices;

impl<B: NexmarkBid> Aggregator<B> for Prices {
    type Acc = PriceStats;
    type Out = PriceStats;

    fn create(&self) -> PriceStats {
        PriceStats {
            bids: [0; 4],
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }

    fn add(&self, acc: &mut PriceStats, bid: &B) {
        let price = bid.price();
        acc.bids[0] += 1;
        acc.bids[rank(price)] += 1;
        acc.min = acc.min.min(price);
        acc.max = acc.max.max(price);
        acc.sum += price;
    }

    fn merge(&self, acc: &mut PriceStats, other: &PriceStats) {
        for i in 0..4 {
            acc.bids[i] += other.bids[i];
        }
        acc.min = acc.min.min(other.min);
        acc.max = acc.max.max(other.max);
        acc.sum += other.sum;
    }

    fn finish(&self, acc: &PriceStats) -> PriceStats {
        *acc
    }
}
