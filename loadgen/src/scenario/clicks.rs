//! `clicks`: page views and purchases, the input of `funnel`; combine with `--burstiness` for
//! session-like runs of one visitor. Most purchases (85%) buy the product whose page the visitor
//! viewed last, when that was at most 10 minutes before; the rest buy a product at random.

use super::{write_serde, Scenario};
use crate::rng::EventRng;
use spate::key::Id;
use spate::time::Millis;
use spate_actors::events::ids::{self, IdFormat};
use spate_actors::events::{Action, Click};
use std::collections::HashMap;

const PAGES: [&str; 5] = ["/", "/search", "/cart", "/account", "/deals"];

/// Clicks by visitor (the key): 3% are purchases of a product page's item.
#[derive(Debug, Default)]
pub struct Clicks {
    /// How ids are written.
    pub ids: IdFormat,
    /// Each visitor's last product page view: the product and when.
    viewed: HashMap<u64, (u64, Millis)>,
}

impl Clicks {
    /// Clicks whose ids are written in `ids`.
    pub fn new(ids: IdFormat) -> Self {
        Clicks {
            ids,
            viewed: HashMap::new(),
        }
    }

    /// The product a purchase of `key` at `event_ms` buys: mostly the one it viewed last.
    fn purchased(&self, key: u64, event_ms: Millis, rng: &mut EventRng) -> u64 {
        let random = rng.below(2_000);
        match self.viewed.get(&key) {
            Some(&(product, at)) if event_ms - at <= 10 * 60_000 && rng.chance(0.85) => product,
            _ => random,
        }
    }
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
        let product = match purchase {
            true => self.purchased(key, event_ms, rng),
            false => rng.below(2_000),
        };
        let product_page = purchase || rng.chance(0.5);
        if product_page && !purchase {
            self.viewed.insert(key, (product, event_ms));
        }
        let page = if product_page {
            format!("/product/{product}")
        } else {
            PAGES[rng.below(PAGES.len() as u64) as usize].to_string()
        };
        let click = Click {
            user_id: self.ids.id(ids::USER, key),
            page,
            action: if purchase {
                Action::Purchase
            } else {
                Action::View
            },
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
