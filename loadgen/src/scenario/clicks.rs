//! `clicks`: page views and purchases; combine with `--burstiness` for session-like runs of one
//! visitor.

use super::{write_serde, Scenario};
use crate::rng::EventRng;
use spate::key::Id;
use spate::time::Millis;
use spate_actors::events::ids::{self, IdFormat};
use spate_actors::events::Click;

const PAGES: [&str; 5] = ["/", "/search", "/cart", "/account", "/deals"];

/// Clicks by visitor (the key): 3% are purchases of a product page's item.
#[derive(Debug, Default)]
pub struct Clicks {
    /// How ids are written.
    pub ids: IdFormat,
}

impl Scenario for Clicks {
    fn name(&self) -> &'static str {
        "clicks"
    }

    fn key_field(&self) -> &'static str {
        "user_id"
    }

    fn key_id(&self, key: u64) -> Id {
        self.ids.id(ids::USER, key)
    }

    fn write(
        &mut self,
        _index: u64,
        key: u64,
        event_ms: Millis,
        rng: &mut EventRng,
        out: &mut Vec<u8>,
    ) -> u64 {
        let purchase = rng.chance(0.03);
        let product = rng.below(2_000);
        let page = if purchase || rng.chance(0.5) {
            format!("/product/{product}")
        } else {
            PAGES[rng.below(PAGES.len() as u64) as usize].to_string()
        };
        let click = Click {
            user_id: self.ids.id(ids::USER, key),
            page,
            action: if purchase { "purchase" } else { "view" }.to_string(),
            price_cents: if purchase {
                199 + (product * 7_919) as i64 % 49_800
            } else {
                0
            },
            event_ms,
        };
        write_serde(&click, out);
        key
    }
}
