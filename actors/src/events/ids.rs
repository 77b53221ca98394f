//! How generated ids look: strings shaped like real feeds' ids (`u00042`, `t000000001`), or
//! plain integers. Both the built-in generator and `spate-loadgen` write ids through here.

use compact_str::CompactString;
use spate::key::Id;

/// Whether generated ids are JSON strings or integers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IdFormat {
    /// Strings with a one-letter prefix and zero padding, such as `u00042` (the default:
    /// the shape of most real feeds).
    #[default]
    String,
    /// Plain integers, such as `42`.
    Int,
}

/// The shape of one kind of id: its prefix and the digits it is padded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdShape {
    prefix: &'static str,
    width: usize,
}

/// Users: `u00042`.
pub const USER: IdShape = IdShape::new("u", 5);
/// Transactions: `t000000001`.
pub const TRANSACTION: IdShape = IdShape::new("t", 9);
/// Merchants: `m1868`.
pub const MERCHANT: IdShape = IdShape::new("m", 4);
/// Devices: `d00042`.
pub const DEVICE: IdShape = IdShape::new("d", 5);
/// Accounts: `a00042`.
pub const ACCOUNT: IdShape = IdShape::new("a", 5);
/// Road segments: `s0042`.
pub const SEGMENT: IdShape = IdShape::new("s", 4);
/// Vehicles: `v00042`.
pub const VEHICLE: IdShape = IdShape::new("v", 5);

impl IdShape {
    /// A shape: `prefix`, then the number padded with zeros to `width` digits.
    pub const fn new(prefix: &'static str, width: usize) -> Self {
        IdShape { prefix, width }
    }
}

impl IdFormat {
    /// Parses `string` or `int`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "string" | "str" => Ok(IdFormat::String),
            "int" | "integer" => Ok(IdFormat::Int),
            _ => Err(format!("`{text}` is not an id format: use string or int")),
        }
    }

    /// The id numbered `n` of a kind.
    pub fn id(self, shape: IdShape, n: u64) -> Id {
        match self {
            IdFormat::Int => Id::Int(n as i64),
            IdFormat::String => {
                // Pieces pushed rather than `format!`: generators make millions of ids a second.
                const ZEROS: &str = "0000000000000000";
                let mut digits = itoa::Buffer::new();
                let digits = digits.format(n);
                let mut pad = shape.width.saturating_sub(digits.len());
                let mut id = CompactString::with_capacity(shape.prefix.len() + pad + digits.len());
                id.push_str(shape.prefix);
                while pad > 0 {
                    let zeros = pad.min(ZEROS.len());
                    id.push_str(&ZEROS[..zeros]);
                    pad -= zeros;
                }
                id.push_str(digits);
                Id::Str(id)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_prefixed_and_padded() {
        assert_eq!(IdFormat::String.id(USER, 42), Id::from("u00042"));
        assert_eq!(IdFormat::String.id(USER, 1_234_567), Id::from("u1234567"));
        assert_eq!(IdFormat::String.id(TRANSACTION, 1), Id::from("t000000001"));
        assert_eq!(IdFormat::Int.id(USER, 42), Id::Int(42));
        assert_eq!(IdFormat::parse("int"), Ok(IdFormat::Int));
        assert!(IdFormat::parse("uuid")
            .unwrap_err()
            .contains("string or int"));
    }
}
