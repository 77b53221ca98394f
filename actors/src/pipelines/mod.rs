//! The built-in pipelines, one module each.

pub mod enrich;
pub mod failed_logins;
pub mod fraud;
pub mod fraud_score;
pub mod funnel;
pub mod iot;
pub mod iot_anomaly;
pub mod nexmark;
pub mod sessions;
pub mod traffic;
pub mod tx_enriched;
pub mod tx_windows;

use crate::events::{Transaction, TransactionGenerator};
use serde::Serialize;
use spate::pipeline::KeyedPipeline;
use spate::prelude::*;
use spate::window::Emission;
use std::time::Duration;

/// The head all transaction pipelines share: event time from `event_ms`, 10 s of allowed
/// disorder, the transaction generator for `--source gen`, keyed by user.
pub fn by_user(name: &str, description: &str) -> KeyedPipeline<Transaction, Transaction, Id> {
    Pipeline::<Transaction>::new(name, description)
        .input("transactions")
        .event_time(|t| t.event_ms)
        .watermark_delay(Duration::from_secs(10))
        .generator(TransactionGenerator::new)
        .key_by(|t| t.user_id.clone())
}

/// The amount of a transaction in cents (what the pipelines sum).
pub fn cents(t: &Transaction) -> i64 {
    t.amount_cents
}

/// A window's count and exact sum for one user: the output of `tx-windows` and `sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CountSum {
    /// The user, as the input wrote it (string or integer).
    pub key: Id,
    /// Window start, epoch milliseconds (inclusive).
    pub window_start: Millis,
    /// Window end, epoch milliseconds (exclusive).
    pub window_end: Millis,
    /// Transactions in the window.
    pub count: u64,
    /// Their total amount, in cents (`sum` in JSON, as a decimal).
    #[serde(
        rename = "sum",
        serialize_with = "crate::events::money::serialize_cents"
    )]
    pub sum_cents: i64,
    /// In update mode, which emission of the window this is (`"update"`, `"emission"`);
    /// absent in append mode.
    #[serde(flatten)]
    pub emission: Option<Emission>,
}

impl CountSum {
    /// From a window's `(count, sum)` result.
    pub fn from_window(w: WindowResult<Id, (u64, i64)>) -> Self {
        CountSum {
            key: w.key,
            window_start: w.start,
            window_end: w.end,
            count: w.value.0,
            sum_cents: w.value.1,
            emission: w.emission,
        }
    }
}
