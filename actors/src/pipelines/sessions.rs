//! `sessions`: each user's sessions of activity, a new one after 30 minutes without a
//! transaction; reported from the first transaction to the last plus 30 minutes.

use super::{by_user, cents, CountSum};
use spate::prelude::*;
use std::time::Duration;

/// The inactivity gap that ends a session.
pub const GAP: Duration = Duration::from_secs(30 * 60);

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    by_user(
        "sessions",
        "count and sum of each user's sessions (a new session after 30 minutes of inactivity)",
    )
    .session_window(SessionWindows::with_gap(GAP))
    .aggregate((Count, Sum::of(cents)))
    .map(|w| Some(CountSum::from_window(w)))
}
