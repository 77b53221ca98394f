//! `fraud`: alerts on users whose 5-minute sliding window (every minute) holds more than 10
//! transactions or more than $50,000.

use super::{by_user, cents};
use crate::events::money::{round_cents, serialize_cents};
use serde::Serialize;
use spate::prelude::*;
use spate::window::Emission;
use std::time::Duration;

/// More transactions than this in a window raise an alert.
pub const MAX_COUNT: u64 = 10;
/// A window total above this (in cents) raises an alert.
pub const MAX_SUM_CENTS: i64 = 5_000_000;

/// One alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FraudAlert {
    /// The user, as the input wrote it (string or integer).
    pub key: Id,
    /// Window start, epoch milliseconds.
    pub window_start: Millis,
    /// Window end, epoch milliseconds.
    pub window_end: Millis,
    /// Transactions in the window.
    pub count: u64,
    /// Their total, in cents (`sum` in JSON).
    #[serde(rename = "sum", serialize_with = "serialize_cents")]
    pub sum_cents: i64,
    /// Average amount rounded to the cent (`avg` in JSON).
    #[serde(rename = "avg", serialize_with = "serialize_cents")]
    pub avg_cents: i64,
    /// In update mode, which emission of the window this is (`"update"`, `"emission"`);
    /// absent in append mode.
    #[serde(flatten)]
    pub emission: Option<Emission>,
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    by_user(
        "fraud",
        "alerts for users with more than 10 transactions or over $50,000 in a 5-minute window sliding every minute",
    )
    .window(Windows::sliding(
        Duration::from_secs(5 * 60),
        Duration::from_secs(60),
    ))
    .aggregate((Count, Sum::of(cents)))
    .map(|w| {
        let (count, sum_cents) = w.value;
        (count > MAX_COUNT || sum_cents > MAX_SUM_CENTS).then(|| FraudAlert {
            key: w.key,
            window_start: w.start,
            window_end: w.end,
            count,
            sum_cents,
            avg_cents: round_cents(sum_cents, count),
            emission: w.emission,
        })
    })
}
