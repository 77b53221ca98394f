//! Payment transactions: the input of `tx-windows`, `fraud` and `sessions`, and the generator
//! behind `--source gen` for them.
//!
//! JSON format, one per line:
//! `{"tx_id":"t000000001","user_id":"u00042","amount":12.34,"merchant_id":"m0007","event_time":"2026-01-01T00:00:00.123Z","event_ms":1767225600123}`
//! Ids are strings or integers ([`Id`]); event time is `event_ms`, or `event_time` (RFC 3339)
//! where `event_ms` is absent.

use super::ids::{self, IdFormat};
use super::money::{deserialize_cents, serialize_cents};
use serde::{Deserialize, Serialize};
use spate::io::source::{EventGenerator, GenOptions};
use spate::key::{mix64, Id};
use spate::time::{Millis, Rfc3339Writer};

/// One payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TransactionJson")]
pub struct Transaction {
    /// Transaction id.
    pub tx_id: Id,
    /// The paying user: the key of the built-in pipelines.
    pub user_id: Id,
    /// Amount in cents (`amount` in JSON, a decimal with up to two places).
    #[serde(rename = "amount", serialize_with = "serialize_cents")]
    pub amount_cents: i64,
    /// The merchant paid.
    pub merchant_id: Id,
    /// Event time, epoch milliseconds.
    pub event_ms: Millis,
}

/// The wire format, before event time is resolved.
#[derive(Deserialize)]
struct TransactionJson {
    tx_id: Id,
    user_id: Id,
    #[serde(deserialize_with = "deserialize_cents")]
    amount: i64,
    merchant_id: Id,
    #[serde(default)]
    event_ms: Option<Millis>,
    #[serde(default)]
    event_time: Option<TimeText>,
}

/// An RFC 3339 time parsed while decoding, without keeping the string.
struct TimeText(Result<Millis, String>);

impl<'de> Deserialize<'de> for TimeText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TimeText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an RFC 3339 time string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TimeText, E> {
                Ok(TimeText(spate::time::parse_rfc3339(v)))
            }
        }
        d.deserialize_str(Visitor)
    }
}

impl TryFrom<TransactionJson> for Transaction {
    type Error = String;

    fn try_from(j: TransactionJson) -> Result<Self, String> {
        let event_ms = match (j.event_ms, j.event_time) {
            (Some(ms), _) => {
                spate::time::check_event_time(ms).map_err(|e| format!("event_ms: {e}"))?
            }
            (None, Some(TimeText(parsed))) => parsed
                .and_then(spate::time::check_event_time)
                .map_err(|e| format!("event_time: {e}"))?,
            (None, None) => return Err("missing field `event_ms` (or `event_time`)".into()),
        };
        Ok(Transaction {
            tx_id: j.tx_id,
            user_id: j.user_id,
            amount_cents: j.amount,
            merchant_id: j.merchant_id,
            event_ms,
        })
    }
}

impl Transaction {
    /// Appends this transaction as one JSON object in the input format (with both time fields),
    /// without a newline. Amounts are written from whole cents, so they round-trip exactly.
    pub fn write_json(&self, out: &mut Vec<u8>, times: &mut Rfc3339Writer) {
        let mut num = itoa::Buffer::new();
        out.extend_from_slice(b"{\"tx_id\":");
        write_id(&self.tx_id, out);
        out.extend_from_slice(b",\"user_id\":");
        write_id(&self.user_id, out);
        out.extend_from_slice(b",\"amount\":");
        if self.amount_cents < 0 {
            out.push(b'-');
        }
        let cents = self.amount_cents.unsigned_abs();
        out.extend_from_slice(num.format(cents / 100).as_bytes());
        out.extend_from_slice(&[
            b'.',
            b'0' + (cents / 10 % 10) as u8,
            b'0' + (cents % 10) as u8,
        ]);
        out.extend_from_slice(b",\"merchant_id\":");
        write_id(&self.merchant_id, out);
        out.extend_from_slice(b",\"event_time\":\"");
        times.write(self.event_ms, out);
        out.extend_from_slice(b"\",\"event_ms\":");
        out.extend_from_slice(num.format(self.event_ms).as_bytes());
        out.push(b'}');
    }

    /// This transaction as one JSON line (see [`Transaction::write_json`]).
    pub fn to_json_line(&self) -> String {
        let mut out = Vec::with_capacity(128);
        self.write_json(&mut out, &mut Rfc3339Writer::default());
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    /// A transaction amount in cents from 64 random bits: mostly $1–$500, one in 500 between
    /// $2,000 and $80,000.
    pub fn random_amount_cents(bits: u64) -> i64 {
        if bits.is_multiple_of(500) {
            200_000 + (bits >> 20) as i64 % 7_800_000
        } else {
            100 + (bits >> 20) as i64 % 49_900
        }
    }
}

/// Appends an id as JSON: an integer as digits, a plain string between quotes, anything else
/// through serde_json's escaping.
fn write_id(id: &Id, out: &mut Vec<u8>) {
    match id {
        Id::Int(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
        Id::Str(s)
            if s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) =>
        {
            out.push(b'"');
            out.extend_from_slice(s.as_bytes());
            out.push(b'"');
        }
        Id::Str(_) => serde_json::to_writer(out, id).expect("ids serialize to JSON"),
    }
}

/// Deterministic transactions: event `i` depends only on the seed and `i`.
///
/// Event time advances at `--rate` events per second (1,000 when unpaced) from the job's base
/// time. 10% of events are up to 5 s out of order and 0.05% are 30–120 s late. Amounts are
/// mostly $1–$500 with 0.2% large ones up to $80,000; one 32-event block in 2,000 is a burst
/// from a single user (card testing), the pattern `fraud`'s count rule catches.
#[derive(Debug, Clone)]
pub struct TransactionGenerator {
    seed: u64,
    users: u64,
    base_ms: Millis,
    micros_per_event: u64,
    ids: IdFormat,
}

impl TransactionGenerator {
    /// A generator for `options`.
    pub fn new(options: &GenOptions) -> Self {
        let rate = options.rate.unwrap_or(1_000.0).max(1e-3);
        TransactionGenerator {
            seed: mix64(options.seed),
            users: options.keys.max(1),
            base_ms: options.base_ms,
            micros_per_event: (1e6 / rate).max(1.0) as u64,
            ids: IdFormat::default(),
        }
    }

    /// The same generator writing ids in `format` (strings such as `u00042` by default).
    pub fn with_ids(self, format: IdFormat) -> Self {
        TransactionGenerator {
            ids: format,
            ..self
        }
    }
}

impl EventGenerator<Transaction> for TransactionGenerator {
    fn generate(&self, i: u64) -> Transaction {
        let r1 = mix64(self.seed ^ i);
        let r2 = mix64(r1);
        let block = i / 32;
        let burst = mix64(self.seed ^ block ^ 0xB0B0).is_multiple_of(2_000);
        let user_id = if burst {
            mix64(block) % self.users
        } else {
            r1 % self.users
        };
        let amount_cents = Transaction::random_amount_cents(r2);
        let mut event_ms = self.base_ms + ((i * self.micros_per_event) / 1_000) as Millis;
        match (r1 >> 40) % 10_000 {
            0..=4 => event_ms -= 30_000 + ((r2 >> 8) % 90_000) as Millis,
            5..=1004 => event_ms -= ((r2 >> 8) % 5_000) as Millis,
            _ => {}
        }
        Transaction {
            tx_id: self.ids.id(ids::TRANSACTION, i + 1),
            user_id: self.ids.id(ids::USER, user_id),
            amount_cents,
            merchant_id: self.ids.id(ids::MERCHANT, (r2 >> 44) % 5_000),
            event_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_both_time_fields_and_exact_cents() {
        let t: Transaction = serde_json::from_str(
            r#"{"tx_id":1,"user_id":2,"amount":0.29,"merchant_id":3,"event_time":"2026-01-01T00:00:00.123Z"}"#,
        )
        .unwrap();
        assert_eq!((t.amount_cents, t.event_ms), (29, 1_767_225_600_123));
        let t: Transaction = serde_json::from_str(
            r#"{"tx_id":1,"user_id":2,"amount":12,"merchant_id":3,"event_time":"bad","event_ms":5}"#,
        )
        .unwrap();
        assert_eq!((t.amount_cents, t.event_ms), (1200, 5), "event_ms wins");
        let round: Transaction = serde_json::from_str(&t.to_json_line()).unwrap();
        assert_eq!(round, t);
    }

    #[test]
    fn ids_come_as_strings_or_integers_and_go_back_as_they_came() {
        let line = r#"{"tx_id":"t000000001","user_id":"u00033","amount":4.64,"merchant_id":"m1868","event_time":"2026-01-01T00:00:00.000Z","event_ms":1767225600000}"#;
        let t: Transaction = serde_json::from_str(line).unwrap();
        assert_eq!(t.user_id, Id::from("u00033"));
        assert_eq!(t.to_json_line(), line);
        let mixed: Transaction = serde_json::from_str(
            r#"{"tx_id":7,"user_id":"we\"ird","amount":1,"merchant_id":3,"event_ms":1}"#,
        )
        .unwrap();
        assert_eq!(mixed.tx_id, Id::Int(7));
        let round: Transaction = serde_json::from_str(&mixed.to_json_line()).unwrap();
        assert_eq!(round, mixed);
    }

    #[test]
    fn rejects_what_it_cannot_read_exactly() {
        let err = |s: &str| {
            serde_json::from_str::<Transaction>(s)
                .unwrap_err()
                .to_string()
        };
        assert!(
            err(r#"{"tx_id":1,"user_id":2,"amount":1.234,"merchant_id":3,"event_ms":1}"#)
                .contains("two decimals")
        );
        assert!(err(r#"{"tx_id":1,"user_id":2,"amount":1,"merchant_id":3}"#).contains("event_ms"));
        assert!(
            err(r#"{"tx_id":1,"user_id":{"id":2},"amount":1,"merchant_id":3,"event_ms":1}"#)
                .contains("a string or an integer")
        );
        assert!(
            err(r#"{"tx_id":1,"user_id":2.5,"amount":1,"merchant_id":3,"event_ms":1}"#)
                .contains("not an integer")
        );
        assert!(
            err(r#"{"tx_id":1,"user_id":2,"amount":1,"merchant_id":3,"event_time":"soon"}"#)
                .contains("RFC 3339")
        );
        // Times and amounts that window and sum arithmetic cannot hold are refused.
        let min = format!(
            r#"{{"tx_id":1,"user_id":2,"amount":1,"merchant_id":3,"event_ms":{}}}"#,
            i64::MIN
        );
        assert!(
            err(&min).contains("outside the years 1 to 9999"),
            "{}",
            err(&min)
        );
        assert!(
            err(r#"{"tx_id":1,"user_id":2,"amount":1e12,"merchant_id":3,"event_ms":1}"#)
                .contains("out of range")
        );
    }

    #[test]
    fn generator_is_deterministic_per_seed() {
        let opts = GenOptions::default();
        let a = TransactionGenerator::new(&opts);
        let b = TransactionGenerator::new(&opts);
        let c = TransactionGenerator::new(&GenOptions {
            seed: 2,
            ..opts.clone()
        });
        let xs: Vec<_> = (0..1000).map(|i| a.generate(i)).collect();
        assert_eq!(xs, (0..1000).map(|i| b.generate(i)).collect::<Vec<_>>());
        assert_ne!(xs, (0..1000).map(|i| c.generate(i)).collect::<Vec<_>>());
        assert!(xs.iter().all(|t| t.amount_cents >= 100));
        let users: std::collections::BTreeSet<_> = xs.iter().map(|t| &t.user_id).collect();
        assert!(users.len() as u64 <= opts.keys);
        assert!(users
            .iter()
            .all(|u| matches!(u, Id::Str(s) if s.starts_with('u'))));
        let ints = TransactionGenerator::new(&opts).with_ids(IdFormat::Int);
        assert!(matches!(ints.generate(0).user_id, Id::Int(n) if (n as u64) < opts.keys));
    }
}
