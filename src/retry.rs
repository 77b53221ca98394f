//! Retrying what fails for a while: pauses between attempts and the error an attempt gave up on.

use std::time::Duration;

/// Pauses between attempts: from `first`, doubling (with jitter) up to `longest`, for `total`
/// in all (`None`: for as long as it takes).
pub(crate) fn pauses(
    first: Duration,
    longest: Duration,
    total: Option<Duration>,
) -> backoff::ExponentialBackoff {
    backoff::ExponentialBackoffBuilder::new()
        .with_initial_interval(first)
        .with_max_interval(longest)
        .with_max_elapsed_time(total)
        .build()
}

/// The error a retried operation ended with: a permanent one, or the last transient one once
/// the pauses ran out (pauses without a `total` never do).
pub(crate) fn given_up<E>(error: backoff::Error<E>) -> E {
    match error {
        backoff::Error::Permanent(e) | backoff::Error::Transient { err: e, .. } => e,
    }
}
