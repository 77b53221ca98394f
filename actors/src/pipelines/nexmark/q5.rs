//! `nexmark-q5`, hot items: per 10-second window sliding every 2 seconds, every auction whose
//! bid count in the window equals the window's highest count:
//! `{"auction","num","window_start","window_end"}`. Two keyed stages: bids counted per auction
//! and window, then, keyed by window, the counts at the window's maximum, once the watermark
//! passes the window's end.

use super::bids;
use serde::{Deserialize, Serialize};
use spate::operator::{KeyedContext, KeyedOperator, Timer};
use spate::prelude::*;
use std::time::Duration;

/// One auction's bid count in one window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionCount {
    /// The auction.
    pub auction: u64,
    /// Its bids in the window.
    pub num: u64,
    /// Window start, epoch milliseconds (inclusive).
    pub window_start: Millis,
    /// Window end, epoch milliseconds (exclusive).
    pub window_end: Millis,
}

/// A window's highest count so far and the auctions at it.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Hottest {
    num: u64,
    counts: Vec<AuctionCount>,
}

/// Keeps each window's hottest auctions and emits them when the window closes.
pub struct HotItems;

type Ctx<'a> = KeyedContext<'a, Millis, Hottest, AuctionCount>;

impl KeyedOperator for HotItems {
    type Key = Millis;
    type Event = AuctionCount;
    type State = Hottest;
    type Output = AuctionCount;

    fn on_event(&self, count: &AuctionCount, ctx: &mut Ctx<'_>) {
        let hottest = ctx.state();
        if hottest.counts.is_empty() || count.num > hottest.num {
            hottest.num = count.num;
            hottest.counts.clear();
        }
        if count.num == hottest.num {
            hottest.counts.push(count.clone());
        }
        ctx.register_event_timer(count.window_end);
    }

    fn on_timer(&self, _: Timer, ctx: &mut Ctx<'_>) {
        for count in std::mem::take(&mut ctx.state().counts) {
            ctx.emit(count);
        }
        ctx.clear_state();
    }

    fn describe(&self) -> String {
        "each window's auctions at its highest bid count, when the watermark passes its end".into()
    }
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    bids(
        "nexmark-q5",
        "Nexmark q5: per 10 s window sliding every 2 s, the auctions with the most bids",
        |b| b.auction,
    )
    .window(Windows::sliding(
        Duration::from_secs(10),
        Duration::from_secs(2),
    ))
    .aggregate(Count)
    .map(|w| {
        Some(AuctionCount {
            auction: w.key,
            num: w.value,
            window_start: w.start,
            window_end: w.end,
        })
    })
    .event_time(|c| c.window_end - 1)
    .key_by(|c| c.window_start)
    .process(HotItems)
}
