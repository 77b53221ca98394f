//! `enrich`: transactions enriched with their user's segment and country as of their event time
//! (the temporal join of `tx-enriched`), re-keyed by (segment, country), counted and summed per
//! 1-minute tumbling window. Inputs `transactions` and `users` ([`UserRow`]), each with 10 s of
//! allowed disorder; a transaction whose user had no row yet counts under `"unknown"` for both.
//!
//! Output, one per (segment, country) and window:
//! `{"segment","country","window_start","window_end","count","sum"}` (`sum` exact to the cent).
//!
//! Two keyed stages: the join, keyed by user, and the windows, keyed by (segment, country).

use super::tx_enriched::{users, Payment};
use crate::events::money::serialize_cents;
use crate::events::{Transaction, UserRow};
use serde::{Deserialize, Serialize};
use spate::prelude::*;
use std::time::Duration;

/// A transaction as the second stage sees it: its amount and time under its user's segment
/// and country.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentPayment {
    /// The user's segment at the transaction's time, or `"unknown"`.
    pub segment: String,
    /// The user's country at the transaction's time, or `"unknown"`.
    pub country: String,
    /// Amount in cents.
    pub amount_cents: i64,
    /// Event time, epoch milliseconds.
    pub event_ms: Millis,
}

/// A payment under the user row valid at its time.
pub fn segment_of(p: &Payment, user: Option<&UserRow>) -> SegmentPayment {
    let field = |f: fn(&UserRow) -> &String| user.map_or("unknown", |u| f(u).as_str()).to_string();
    SegmentPayment {
        segment: field(|u| &u.segment),
        country: field(|u| &u.country),
        amount_cents: p.amount_cents,
        event_ms: p.event_ms,
    }
}

/// One (segment, country) window's count and exact sum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentWindow {
    /// The segment.
    pub segment: String,
    /// The country.
    pub country: String,
    /// Window start, epoch milliseconds (inclusive).
    pub window_start: Millis,
    /// Window end, epoch milliseconds (exclusive).
    pub window_end: Millis,
    /// Transactions in the window.
    pub count: u64,
    /// Their total amount, in cents (`sum` in JSON, as a decimal).
    #[serde(rename = "sum", serialize_with = "serialize_cents")]
    pub sum_cents: i64,
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    Pipeline::<Transaction>::new(
        "enrich",
        "count and sum per (segment, country) and 1-minute window, each transaction under its user's row as of its time",
    )
    .input("transactions")
    .map(Payment::from)
    .event_time(|p| p.event_ms)
    .watermark_delay(Duration::from_secs(10))
    .key_by(|p| p.user_id.clone())
    .join_table(users(), segment_of)
    .event_time(|s| s.event_ms)
    .key_by(|s| (s.segment.clone(), s.country.clone()))
    .window(Windows::tumbling(Duration::from_secs(60)))
    .aggregate((Count, Sum::of(|s: &SegmentPayment| s.amount_cents)))
    .map(|w| {
        let (segment, country) = w.key;
        Some(SegmentWindow {
            segment,
            country,
            window_start: w.start,
            window_end: w.end,
            count: w.value.0,
            sum_cents: w.value.1,
        })
    })
}
