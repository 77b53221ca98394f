//! Event types the built-in pipelines consume, with their JSON formats and generators.

pub mod click;
pub mod ids;
pub mod login;
pub mod money;
pub mod nexmark;
pub mod sensor;
pub mod skim;
pub mod transaction;
pub mod user;
pub mod vehicle;

pub use click::{Action, Click};
pub use ids::IdFormat;
pub use login::LoginAttempt;
pub use nexmark::NexmarkEvent;
pub use sensor::SensorReading;
pub use transaction::{Transaction, TransactionGenerator};
pub use user::UserRow;
pub use vehicle::VehiclePing;
