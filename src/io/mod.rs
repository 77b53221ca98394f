//! Where records come from and where results go: [sources](source) that decode and can replay
//! their input from a position, [sinks](sink) that make each epoch's output visible once, and
//! the [Kafka](kafka) plumbing both share (with a [producer] that rides out a slow broker), and
//! the consumer [group] that spreads a Kafka source's partitions over instances.

pub mod dead_letter;
pub mod group;
pub mod kafka;
pub mod producer;
pub mod sink;
pub mod source;

pub use dead_letter::DeadLetter;
