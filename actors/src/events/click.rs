//! Page views and purchases on a web shop: the `clicks` scenario's event.

use serde::{Deserialize, Serialize};
use spate::key::Id;
use spate::time::Millis;

/// What a click did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A page view.
    View,
    /// A purchase of the page's item.
    Purchase,
}

/// One click.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Click {
    /// The visitor: the key.
    pub user_id: Id,
    /// The page.
    pub page: String,
    /// `view` or `purchase` (anything else is malformed).
    pub action: Action,
    /// Price of a purchase, in cents (0 for a view).
    pub price_cents: i64,
    /// Event time, epoch milliseconds.
    pub event_ms: Millis,
}
