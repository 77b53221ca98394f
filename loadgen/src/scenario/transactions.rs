//! `transactions`: payments, the input of `tx-windows`, `fraud`, `sessions` and the joins. With
//! a fraud rate, some users are compromised: a compromised card pays 2–5 times in a row at one
//! of 50 merchants no other payment goes to, $800–$5,000 each; those payments are fraud. With a
//! label collector it also notes each payment's outcome (`labels`).

use super::Scenario;
use crate::rng::EventRng;
use spate::key::{mix64, Id};
use spate::time::{Millis, Rfc3339Writer};
use spate_actors::events::ids::{self, IdFormat};
use spate_actors::events::Transaction;
use std::collections::HashMap;

/// Merchants of fraudulent payments only: `m5000`–`m5049`.
pub const FRAUD_MERCHANTS: std::ops::Range<u64> = 5_000..5_050;

/// A payment's outcome, known later (a chargeback, or its settling).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Label {
    /// The payment.
    pub tx_id: Id,
    /// Whether it was fraud.
    pub fraud: bool,
    /// When the outcome became known: 5 minutes to 2 hours after a fraud, 30 minutes to 6
    /// hours after a legitimate payment.
    pub event_ms: Millis,
}

/// Payments by user (the key) at one of 5,000 merchants.
#[derive(Debug, Default)]
pub struct Transactions {
    times: Rfc3339Writer,
    ids: IdFormat,
    /// Share of payments that compromise their user's card.
    fraud: f64,
    /// Fraudulent payments still to come from each compromised user.
    compromised: HashMap<u64, u32>,
    /// Where the payments' outcomes are collected, when they are.
    labels: Option<Vec<Label>>,
}

impl Transactions {
    /// Transactions whose ids are written in `ids`.
    pub fn new(ids: IdFormat) -> Self {
        Transactions {
            ids,
            ..Transactions::default()
        }
    }

    /// The same with a share `rate` of payments starting a fraud burst.
    pub fn with_fraud(self, rate: f64) -> Self {
        Transactions {
            fraud: rate,
            ..self
        }
    }

    /// The same, noting every payment's outcome (see [`take_labels`](Self::take_labels)).
    pub fn collecting_labels(self) -> Self {
        Transactions {
            labels: Some(Vec::new()),
            ..self
        }
    }

    /// The outcomes noted so far, in payment order.
    pub fn take_labels(&mut self) -> Vec<Label> {
        self.labels.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Whether this payment of `key` is fraud (drawing from `rng` only with a fraud rate, so
    /// output without one stays as it was).
    fn is_fraud(&mut self, key: u64, rng: &mut EventRng) -> bool {
        if self.fraud <= 0.0 {
            return false;
        }
        if let Some(left) = self.compromised.get_mut(&key) {
            *left -= 1;
            if *left == 0 {
                self.compromised.remove(&key);
            }
            return true;
        }
        if rng.chance(self.fraud) {
            let burst = 2 + rng.below(4) as u32; // 2–5 payments in all
            self.compromised.insert(key, burst - 1);
            return true;
        }
        false
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
        let fraud = self.is_fraud(key, rng);
        let (amount_cents, merchant) = if fraud {
            let span = FRAUD_MERCHANTS.end - FRAUD_MERCHANTS.start;
            (
                80_000 + rng.below(420_001) as i64,
                FRAUD_MERCHANTS.start + rng.below(span),
            )
        } else {
            (Transaction::random_amount_cents(bits), (bits >> 44) % 5_000)
        };
        let tx = Transaction {
            tx_id: self.ids.id(ids::TRANSACTION, index + 1),
            user_id: self.ids.id(ids::USER, key),
            amount_cents,
            merchant_id: self.ids.id(ids::MERCHANT, merchant),
            event_ms,
        };
        tx.write_json(out, &mut self.times);
        if let Some(labels) = self.labels.as_mut() {
            let (min, span) = if fraud {
                (5 * 60_000, 115 * 60_000)
            } else {
                (30 * 60_000, 330 * 60_000)
            };
            let delay = min + (mix64(index ^ 0x1abe_1ab1) % span) as Millis;
            labels.push(Label {
                tx_id: tx.tx_id,
                fraud,
                event_ms: event_ms + delay,
            });
        }
        key
    }
}
