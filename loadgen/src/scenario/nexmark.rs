//! `nexmark`: the Nexmark benchmark's Person, Auction and Bid events from the `nexmark` crate
//! (its own ids and hot keys), stamped with the schedule's event time (so rate shapes and the
//! disorder knobs apply).

use super::{write_serde, Scenario};
use crate::rng::EventRng;
use nexmark::config::NexmarkConfig;
use nexmark::event::Event;
use spate::time::Millis;

/// Nexmark events in the crate's JSON shape (`{"Person":{…}}`, `{"Auction":{…}}`, `{"Bid":{…}}`).
pub struct Nexmark {
    events: nexmark::EventGenerator,
}

impl Nexmark {
    /// A generator whose first event is at `base_ms`.
    pub fn new(base_ms: Millis) -> Self {
        let config = NexmarkConfig {
            base_time: base_ms.max(0) as u64,
            ..NexmarkConfig::default()
        };
        Nexmark {
            events: nexmark::EventGenerator::new(config),
        }
    }
}

impl Scenario for Nexmark {
    fn name(&self) -> &'static str {
        "nexmark"
    }

    fn key_field(&self) -> &'static str {
        "id"
    }

    fn uses_keys(&self) -> bool {
        false
    }

    fn write(
        &mut self,
        _index: u64,
        _key: u64,
        event_ms: Millis,
        _rng: &mut EventRng,
        out: &mut Vec<u8>,
    ) -> u64 {
        let mut event = self
            .events
            .next()
            .expect("the Nexmark generator is unbounded");
        let at = event_ms.max(0) as u64;
        match &mut event {
            Event::Person(p) => p.date_time = at,
            Event::Auction(a) => {
                a.expires = at + a.expires.saturating_sub(a.date_time);
                a.date_time = at;
            }
            Event::Bid(b) => b.date_time = at,
        }
        write_serde(&event, out);
        0 // Nexmark picks its own ids: its records are not keyed
    }
}
