//! User rows: the table the `tx-enriched` pipeline joins transactions with.
//!
//! JSON format, one per line: `{"user_id":"u00042","segment":"premium","country":"DE","updated_ms":1767225600000}`.
//! A row is valid from `updated_ms` until the next row of the same user.

use serde::{Deserialize, Serialize};
use spate::key::Id;
use spate::time::Millis;

/// One version of a user's profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    /// The user (string or integer, as in the transactions).
    pub user_id: Id,
    /// Customer segment.
    pub segment: String,
    /// Country code.
    pub country: String,
    /// From when this row is valid, epoch milliseconds.
    pub updated_ms: Millis,
}

/// The segments `spate-loadgen users` assigns.
pub const SEGMENTS: [&str; 4] = ["retail", "business", "premium", "student"];

/// The countries `spate-loadgen users` assigns.
pub const COUNTRIES: [&str; 6] = ["US", "DE", "FR", "GB", "JP", "BR"];
