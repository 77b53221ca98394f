//! `transactions`: payments, the input of `tx-windows`, `fraud` and `sessions`.

use super::Scenario;
use crate::rng::EventRng;
use spate::key::Id;
use spate::time::{Millis, Rfc3339Writer};
use spate_actors::events::ids::{self, IdFormat};
use spate_actors::events::Transaction;

/// Payments by user (the key) at one of 5,000 merchants.
#[derive(Debug, Default)]
pub struct Transactions {
    times: Rfc3339Writer,
    ids: IdFormat,
}

impl Transactions {
    /// Transactions whose ids are written in `ids`.
    pub fn new(ids: IdFormat) -> Self {
        Transactions {
            times: Rfc3339Writer::default(),
            ids,
        }
    }
}

impl Scenario for Transactions {
    fn name(&self) -> &'static str {
        "transactions"
    }

    fn key_field(&self) -> &'static str {
        "user_id"
    }

    fn key_id(&self, key: u64) -> Id {
        self.ids.id(ids::USER, key)
    }

    fn write(
        &mut self,
        index: u64,
        key: u64,
        event_ms: Millis,
        rng: &mut EventRng,
        out: &mut Vec<u8>,
    ) -> u64 {
        let bits = rng.next_u64();
        Transaction {
            tx_id: self.ids.id(ids::TRANSACTION, index + 1),
            user_id: self.ids.id(ids::USER, key),
            amount_cents: Transaction::random_amount_cents(bits),
            merchant_id: self.ids.id(ids::MERCHANT, (bits >> 44) % 5_000),
            event_ms,
        }
        .write_json(out, &mut self.times);
        key
    }
}
