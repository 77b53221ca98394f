//! Event types the built-in pipelines consume, with their JSON formats and generators.

pub mod money;
pub mod transaction;

pub use transaction::{Transaction, TransactionGenerator};
