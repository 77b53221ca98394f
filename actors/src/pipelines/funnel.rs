//! `funnel`: purchases per product page and 5 minutes, and how many of them followed a view.
//! Input `clicks` (`{"user_id","page","action","price_cents","event_ms"}`, [`Click`]; action
//! `view` or `purchase`, any other a dead letter), 10 s of allowed disorder.
//!
//! A purchase is *attributed* when the same user viewed the same page at an event time in
//! `[purchase − 10 min, purchase]`. Per page per 5-minute tumbling window of purchase time, one
//! row for each page and window with at least one purchase:
//! `{"page","window_start","window_end","purchases","attributed","revenue_cents"}` (the revenue
//! of all the window's purchases, exact in cents).
//!
//! Two keyed stages: [`Attribution`], keyed by (user, page), decides each purchase once the
//! watermark has passed it (every view that could attribute it has come, or is late); the
//! windows, keyed by page, count them.

use crate::events::{Action, Click};
use serde::{Deserialize, Serialize};
use spate::operator::{KeyedContext, KeyedOperator, Timer};
use spate::prelude::*;
use spate::time::StateTtl;
use std::time::Duration;

/// How long before a purchase a view attributes it.
pub const ATTRIBUTION: Millis = 10 * 60_000;

/// A decided purchase, on its way to its page's window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purchase {
    /// The page.
    pub page: String,
    /// Its time, epoch milliseconds.
    pub event_ms: Millis,
    /// Whether a view attributes it.
    pub attributed: bool,
    /// Its price in cents.
    pub price_cents: i64,
}

/// One page's window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageFunnel {
    /// The page.
    pub page: String,
    /// Window start, epoch milliseconds (inclusive).
    pub window_start: Millis,
    /// Window end, epoch milliseconds (exclusive).
    pub window_end: Millis,
    /// Purchases in the window.
    pub purchases: u64,
    /// Those a view attributes.
    pub attributed: u64,
    /// The revenue of all of them, in cents.
    pub revenue_cents: i64,
}

/// A user's views of a page and purchases on it not decided yet.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct PageVisits {
    /// Times of views that could still attribute a purchase.
    views: Vec<Millis>,
    /// Purchases waiting for the watermark: time and price.
    purchases: Vec<(Millis, i64)>,
}

/// Decides, per user and page, whether each purchase followed a view.
pub struct Attribution;

type Ctx<'a> = KeyedContext<'a, (Id, String), PageVisits, Purchase>;

impl KeyedOperator for Attribution {
    type Key = (Id, String);
    type Event = Click;
    type State = PageVisits;
    type Output = Purchase;

    fn on_event(&self, click: &Click, ctx: &mut Ctx<'_>) {
        let t = click.event_ms;
        let oldest_useful = ctx.watermark().saturating_sub(ATTRIBUTION);
        let visits = ctx.state();
        match click.action {
            Action::Purchase => {
                visits.purchases.push((t, click.price_cents));
                ctx.register_event_timer(t);
            }
            Action::View => {
                visits.views.retain(|v| *v >= oldest_useful);
                visits.views.push(t);
            }
        }
    }

    fn on_timer(&self, timer: Timer, ctx: &mut Ctx<'_>) {
        let t = timer.time;
        let page = ctx.key().1.clone();
        let visits = ctx.state();
        let attributed = visits
            .views
            .iter()
            .any(|v| (t - ATTRIBUTION..=t).contains(v));
        let (due, waiting): (Vec<_>, Vec<_>) =
            visits.purchases.iter().partition(|(at, _)| *at == t);
        visits.purchases = waiting;
        visits.views.retain(|v| *v >= t - ATTRIBUTION);
        let idle = visits.purchases.is_empty() && visits.views.is_empty();
        for (_, price_cents) in due {
            ctx.emit(Purchase {
                page: page.clone(),
                event_ms: t,
                attributed,
                price_cents,
            });
        }
        if idle {
            ctx.clear_state();
        }
    }

    fn describe(&self) -> String {
        "decides each purchase once the watermark passed it: attributed when the user viewed the page in the 10 minutes before".into()
    }
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    Pipeline::<Click>::new(
        "funnel",
        "purchases, attributed purchases (a view of the page by the buyer in the 10 minutes before) and revenue per page per 5-minute window",
    )
    .input("clicks")
    .event_time(|c| c.event_ms)
    .watermark_delay(Duration::from_secs(10))
    .key_by(|c| (c.user_id.clone(), c.page.clone()))
    .state_ttl(StateTtl::event_time(Duration::from_secs(15 * 60)))
    .process(Attribution)
    .event_time(|p| p.event_ms)
    .key_by(|p| p.page.clone())
    .window(Windows::tumbling(Duration::from_secs(5 * 60)))
    .aggregate((
        Count,
        Sum::of(|p: &Purchase| u64::from(p.attributed)),
        Sum::of(|p: &Purchase| p.price_cents),
    ))
    .map(|w| {
        let (purchases, attributed, revenue_cents) = w.value;
        Some(PageFunnel {
            page: w.key,
            window_start: w.start,
            window_end: w.end,
            purchases,
            attributed,
            revenue_cents,
        })
    })
}
