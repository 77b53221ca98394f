//! `tx-windows`: number and total amount of each user's transactions per 1-minute tumbling
//! window.

use super::{by_user, cents, CountSum};
use spate::prelude::*;
use std::time::Duration;

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    by_user(
        "tx-windows",
        "count and sum of each user's transactions per 1-minute tumbling window",
    )
    .window(Windows::tumbling(Duration::from_secs(60)))
    .aggregate((Count, Sum::of(cents)))
    .map(|w| Some(CountSum::from_window(w)))
}
