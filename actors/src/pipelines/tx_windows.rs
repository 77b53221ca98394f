//! `tx-windows`: number and total amount of each user's transactions per 1-minute tumbling
//! window.

use super::CountSum;
use crate::events::{Transaction, TransactionGenerator};
use spate::prelude::*;
use std::time::Duration;

/// The pipeline.
pub fn pipeline() -> impl spate::pipeline::Runnable {
    Pipeline::<Transaction>::new(
        "tx-windows",
        "count and sum of each user's transactions per 1-minute tumbling window",
    )
    .event_time(|t| t.event_ms)
    .watermark_delay(Duration::from_secs(10))
    .generator(TransactionGenerator::new)
    .key_by(|t| t.user_id)
    .window(Windows::tumbling(Duration::from_secs(60)))
    .aggregate((Count, Sum::of(|t: &Transaction| t.amount_cents)))
    .map(|w| {
        Some(CountSum {
            key: w.key,
            window_start: w.start,
            window_end: w.end,
            count: w.value.0,
            sum_cents: w.value.1,
        })
    })
}
