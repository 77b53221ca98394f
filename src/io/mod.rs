//! Where records come from and where results go: [sources](source) that decode and can replay
//! their input from a position, [sinks](sink) that make each epoch's output visible once, and
//! everything [Kafka](kafka) (its source and sink, the consumer group that spreads a topic's
//! partitions over instances, the changelog that carries their state).

pub(crate) mod chunked;
pub mod dead_letter;
pub mod kafka;
pub mod sink;
pub mod source;

pub use dead_letter::DeadLetter;

/// Splits `NAME=URI` (a name of letters, digits, `_` and `-`) into its name and URI; anything
/// else is a plain URI.
pub(crate) fn split_name(text: &str) -> (Option<&str>, &str) {
    let named = text.split_once('=').filter(|(name, _)| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    match named {
        Some((name, uri)) => (Some(name), uri),
        None => (None, text),
    }
}
