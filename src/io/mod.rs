//! Where records come from and where results go: [sources](source) that decode and can replay
//! their input from a position, [sinks](sink) that make each epoch's output visible once, and
//! everything [Kafka](kafka) (its source and sink, the consumer group that spreads a topic's
//! partitions over instances, the changelog that carries their state).

pub mod dead_letter;
pub mod kafka;
pub mod sink;
pub mod source;

pub use dead_letter::DeadLetter;
