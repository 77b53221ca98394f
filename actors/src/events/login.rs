//! Login attempts: the `logins` scenario's event.

use serde::{Deserialize, Serialize};
use spate::key::Id;
use spate::time::Millis;

/// One login attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginAttempt {
    /// The account: the key.
    pub account_id: Id,
    /// Client address.
    pub ip: String,
    /// Whether the password was right.
    pub success: bool,
    /// Event time, epoch milliseconds.
    pub event_ms: Millis,
}
