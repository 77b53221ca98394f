//! The built-in pipelines, one module each.

pub mod fraud;
pub mod sessions;
pub mod tx_windows;

use serde::Serialize;
use spate::time::Millis;

/// A window's count and exact sum for one user: the output of `tx-windows` and `sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CountSum {
    /// The user.
    pub key: u64,
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
}
