//! `sessions`: each user's sessions of activity, a new one after 30 minutes without a
//! transaction; reported from the first transaction to the last plus 30 minutes.

use super::CountSum;
use crate::events::{Transaction, TransactionGenerator};
use spate::prelude::*;
use std::time::Duration;

/// The inactivity gap that ends a session.
pub const GAP: Duration = Duration::from_secs(30 * 60);

/// The pipeline.
pub fn pipeline() -> impl spate::pipeline::Runnable {
    Pipeline::<Transaction>::new(
        "sessions",
        "count and sum of each user's sessions (a new session after 30 minutes of inactivity)",
    )
    .event_time(|t| t.event_ms)
    .watermark_delay(Duration::from_secs(10))
    .generator(TransactionGenerator::new)
    .key_by(|t| t.user_id)
    .session_window(SessionWindows::with_gap(GAP))
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
