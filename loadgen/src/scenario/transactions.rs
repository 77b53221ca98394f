//! `transactions`: payments, the input of `tx-windows`, `fraud` and `sessions`.

use super::Scenario;
use crate::rng::EventRng;
use spate::time::{Millis, Rfc3339Writer};
use spate_actors::events::Transaction;

/// Payments by user (the key) at one of 5,000 merchants.
#[derive(Debug, Default)]
pub struct Transactions {
    times: Rfc3339Writer,
}

impl Scenario for Transactions {
    fn name(&self) -> &'static str {
        "transactions"
    }

    fn key_field(&self) -> &'static str {
        "user_id"
    }

    fn write(
        &mut self,
        index: u64,
        key: u64,
        event_ms: Millis,
        rng: &mut EventRng,
        out: &mut Vec<u8>,
    ) {
        let bits = rng.next_u64();
        Transaction {
            tx_id: index + 1,
            user_id: key,
            amount_cents: Transaction::random_amount_cents(bits),
            merchant_id: (bits >> 44) % 5_000,
            event_ms,
        }
        .write_json(out, &mut self.times);
    }
}
