//! The bundled load generator: scenarios of typed events (transactions, clicks, sensors,
//! traffic, logins, Nexmark) and the user table a join reads, realism knobs (key skew, disorder, late and malformed records,
//! bursts), rate shapes, outputs, the `bench` that measures a pipeline's end-to-end latency, and
//! `pipe`, the Kafka copy that measures a broker's ceiling. Every random choice derives from the seed and the event's
//! index, so the same seed gives byte-identical output.

#![deny(missing_docs)]

pub mod bench;
pub mod generate;
pub mod knobs;
pub mod output;
pub mod pipe;
pub mod rng;
pub mod scenario;
pub mod schedule;
pub mod users;

pub use generate::{generate, Limits, Report};
pub use knobs::Knobs;
pub use output::{KafkaOptions, Output};
pub use scenario::Scenario;
pub use schedule::{RateShape, Schedule};
