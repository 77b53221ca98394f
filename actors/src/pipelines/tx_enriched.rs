//! `tx-enriched`: each transaction with the segment and country of its user's row valid at the
//! transaction's event time (a temporal table join), `"unknown"` for both when the user had no
//! row yet. Inputs `transactions` and `users` ([`UserRow`]), each with 10 s of allowed
//! disorder.
//!
//! Output, one per transaction, in event-time order per user:
//! `{"tx_id","user_id","amount","event_ms","segment","country"}`.

use crate::events::money::serialize_cents;
use crate::events::{Transaction, UserRow};
use serde::{Deserialize, Serialize};
use spate::prelude::*;
use std::time::Duration;

/// The part of a transaction the join keeps while it waits for the watermark.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payment {
    /// Transaction id.
    pub tx_id: Id,
    /// The paying user.
    pub user_id: Id,
    /// Amount in cents.
    pub amount_cents: i64,
    /// Event time, epoch milliseconds.
    pub event_ms: Millis,
}

impl From<Transaction> for Payment {
    fn from(t: Transaction) -> Self {
        Payment {
            tx_id: t.tx_id,
            user_id: t.user_id,
            amount_cents: t.amount_cents,
            event_ms: t.event_ms,
        }
    }
}

/// A transaction with its user's segment and country then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnrichedTx {
    /// Transaction id.
    pub tx_id: Id,
    /// The paying user.
    pub user_id: Id,
    /// Amount (`amount` in JSON, a decimal).
    #[serde(rename = "amount", serialize_with = "serialize_cents")]
    pub amount_cents: i64,
    /// Event time, epoch milliseconds.
    pub event_ms: Millis,
    /// The user's segment at `event_ms`, or `"unknown"`.
    pub segment: String,
    /// The user's country at `event_ms`, or `"unknown"`.
    pub country: String,
}

/// A payment with the user row valid at its time.
pub fn enrich(p: &Payment, user: Option<&UserRow>) -> EnrichedTx {
    let field = |f: fn(&UserRow) -> &String| user.map_or("unknown", |u| f(u).as_str()).to_string();
    EnrichedTx {
        tx_id: p.tx_id.clone(),
        user_id: p.user_id.clone(),
        amount_cents: p.amount_cents,
        event_ms: p.event_ms,
        segment: field(|u| &u.segment),
        country: field(|u| &u.country),
    }
}

/// The user table as an input: keyed by user, each row valid from `updated_ms`.
pub fn users() -> spate::pipeline::KeyedPipeline<UserRow, UserRow, Id> {
    Pipeline::<UserRow>::new("users", "user rows")
        .input("users")
        .event_time(|u| u.updated_ms)
        .watermark_delay(Duration::from_secs(10))
        .key_by(|u| u.user_id.clone())
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    Pipeline::<Transaction>::new(
        "tx-enriched",
        "each transaction with its user's segment and country as of its time (temporal join)",
    )
    .input("transactions")
    .map(Payment::from)
    .event_time(|p| p.event_ms)
    .watermark_delay(Duration::from_secs(10))
    .key_by(|p| p.user_id.clone())
    .join_table(users(), enrich)
}
