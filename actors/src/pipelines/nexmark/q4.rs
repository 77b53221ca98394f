//! `nexmark-q4`, average price per category: `{"category","avg_final"}`. An auction's final
//! price is its winning bid's (see the module `winning`: the highest bid with `date_time` in
//! `[auction.date_time, auction.expires]`), known once the watermark passes `expires`; auctions
//! without such a bid have none. Per category, the average of its auctions' final prices (a
//! double), emitted again (update mode) each time it changes.
//!
//! Two keyed stages: winning bids per auction, then, keyed by category, the averages. The
//! second stage takes the final prices in the order of their auctions' close (`expires`, ties
//! by auction id) once the watermark has passed it, so the sequence of averages depends on the
//! input alone, never on how the partitions' results interleaved.

use super::auctions;
use super::winning::WinningBids;
use serde::{Deserialize, Serialize};
use spate::operator::{KeyedContext, KeyedOperator, Timer};
use spate::time::Millis;
use std::collections::BTreeMap;

/// One auction's final price, on its way to its category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalPrice {
    /// The auction's category.
    pub category: u64,
    /// The auction.
    pub auction: u64,
    /// When it closed, epoch milliseconds.
    pub expires: Millis,
    /// Its winning bid's price.
    pub price: u64,
}

/// A category's average final price.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryAverage {
    /// The category.
    pub category: u64,
    /// The average of its auctions' final prices so far.
    pub avg_final: f64,
}

/// A category's sum and count of final prices, and the prices waiting to be taken in order.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Averaged {
    sum: u128,
    count: u64,
    /// Final prices by (close, auction), taken once the watermark passes the close.
    waiting: BTreeMap<(Millis, u64), u64>,
}

impl Averaged {
    /// Adds one final price; whether the average changed.
    fn add(&mut self, price: u64) -> bool {
        let (sum, count) = (self.sum, self.count as u128);
        self.sum += price as u128;
        self.count += 1;
        count == 0 || self.sum * count != sum * self.count as u128
    }
}

/// Averages each category's final prices, in the order the auctions closed.
pub struct CategoryAverages;

type Ctx<'a> = KeyedContext<'a, u64, Averaged, CategoryAverage>;

impl KeyedOperator for CategoryAverages {
    type Key = u64;
    type Event = FinalPrice;
    type State = Averaged;
    type Output = CategoryAverage;

    fn on_event(&self, price: &FinalPrice, ctx: &mut Ctx<'_>) {
        let key = (price.expires, price.auction);
        ctx.state().waiting.insert(key, price.price);
        ctx.register_event_timer(price.expires + 1);
    }

    fn on_timer(&self, timer: Timer, ctx: &mut Ctx<'_>) {
        let category = *ctx.key();
        let state = ctx.state();
        let later = state.waiting.split_off(&(timer.time, 0));
        let due = std::mem::replace(&mut state.waiting, later);
        let mut averages = Vec::new();
        for price in due.into_values() {
            if state.add(price) {
                averages.push(state.sum as f64 / state.count as f64);
            }
        }
        for avg_final in averages {
            ctx.emit(CategoryAverage {
                category,
                avg_final,
            });
        }
    }

    fn describe(&self) -> String {
        "each category's average final price, again at each change, in order of close".into()
    }
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    auctions(
        "nexmark-q4",
        "Nexmark q4: per category, the average final price of its auctions (update mode)",
    )
    .process(WinningBids)
    .map(|(auction, bid)| {
        Some(FinalPrice {
            category: auction.category,
            auction: auction.id,
            expires: auction.expires,
            price: bid.price,
        })
    })
    .event_time(|f| f.expires)
    .key_by(|f| f.category)
    .process(CategoryAverages)
}
