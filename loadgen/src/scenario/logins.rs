//! `logins`: login attempts, 3% failing, plus credential-stuffing attacks: one block of 64
//! attempts in 500 is a run of failures against one account from one address.

use super::{write_serde, Scenario};
use crate::rng::EventRng;
use spate::key::Id;
use spate::time::Millis;
use spate_actors::events::ids::{self, IdFormat};
use spate_actors::events::LoginAttempt;

/// Attempts per attack block.
pub const ATTACK_BLOCK: u64 = 64;
/// One block in this many is an attack.
pub const ATTACK_ONE_IN: u64 = 500;

/// Attempts by account (the key).
#[derive(Debug, Default)]
pub struct Logins {
    /// How ids are written.
    pub ids: IdFormat,
}

/// An address in the documentation ranges (never a real host).
fn address(bits: u64) -> String {
    let net = ["192.0.2", "198.51.100", "203.0.113"][(bits % 3) as usize];
    format!("{net}.{}", (bits >> 8) % 254 + 1)
}

impl Scenario for Logins {
    fn name(&self) -> &'static str {
        "logins"
    }

    fn key_field(&self) -> &'static str {
        "account_id"
    }

    fn key_id(&self, key: u64) -> Id {
        self.ids.id(ids::ACCOUNT, key)
    }

    fn write(
        &mut self,
        index: u64,
        key: u64,
        event_ms: Millis,
        rng: &mut EventRng,
        out: &mut Vec<u8>,
    ) -> u64 {
        let block = index / ATTACK_BLOCK;
        let mut attack = EventRng::new(0xA77AC, block);
        // An attack block hammers one account of its own, whatever key was drawn.
        let (key, ip, success) = if attack.below(ATTACK_ONE_IN) == 0 {
            (
                attack.next_u64() % 1_000_003,
                address(attack.next_u64()),
                false,
            )
        } else {
            (key, address(rng.next_u64()), !rng.chance(0.03))
        };
        let attempt = LoginAttempt {
            account_id: self.key_id(key),
            ip,
            success,
            event_ms,
        };
        write_serde(&attempt, out);
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attempt_is_keyed_by_its_own_account_attacks_included() {
        let mut logins = Logins::default();
        let mut attacks = 0;
        for index in 0..ATTACK_BLOCK * ATTACK_ONE_IN * 3 {
            let (mut rng, mut out) = (EventRng::new(1, index), Vec::new());
            let key = logins.write(index, index % 100, 0, &mut rng, &mut out);
            let attempt: LoginAttempt = serde_json::from_slice(&out).unwrap();
            assert_eq!(attempt.account_id, logins.key_id(key), "record {index}");
            attacks += u32::from(key != index % 100);
        }
        assert!(attacks > 0, "no attack block in the sample");
    }
}
