//! Page views and purchases on a web shop: the `clicks` scenario's event.

use serde::{Deserialize, Serialize};
use spate::key::Id;
use spate::time::Millis;

/// One click.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Click {
    /// The visitor: the key.
    pub user_id: Id,
    /// The page.
    pub page: String,
    /// `view` or `purchase`.
    pub action: String,
    /// Price of a purchase, in cents (0 for a view).
    pub price_cents: i64,
    /// Event time, epoch milliseconds.
    pub event_ms: Millis,
}
