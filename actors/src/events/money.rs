//! Money as whole cents: parsed from JSON decimals such as `12.34` and written back the same
//! way, so sums are exact (no float drift across a window).

use serde::{Deserialize, Deserializer, Serializer};

/// The largest amount accepted, in cents ($100 billion): sums of up to 92 million of them fit
/// in an `i64`, so window sums cannot overflow on any real window.
pub const MAX_CENTS: i64 = 10_000_000_000_000;

/// Reads a JSON number with at most two decimals as cents.
pub fn deserialize_cents<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let value = f64::deserialize(d)?;
    let cents = (value * 100.0).round();
    if (value * 100.0 - cents).abs() > 1e-6 {
        return Err(serde::de::Error::custom(format!(
            "amount {value} is not a whole number of cents (at most two decimals)"
        )));
    }
    if cents.abs() > MAX_CENTS as f64 {
        return Err(serde::de::Error::custom(format!(
            "amount {value} is out of range (at most 100,000,000,000.00 either way)"
        )));
    }
    Ok(cents as i64)
}

/// Writes cents as a JSON decimal (`1234` → `12.34`). The nearest double to a two-decimal
/// value prints as that value, so no drift appears in the text.
pub fn serialize_cents<S: Serializer>(cents: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(*cents as f64 / 100.0)
}

/// Cents rounded to the nearest cent, written as a decimal (for averages).
pub fn round_cents(numerator: i64, denominator: u64) -> i64 {
    if denominator == 0 {
        return 0;
    }
    (numerator as f64 / denominator as f64).round() as i64
}
