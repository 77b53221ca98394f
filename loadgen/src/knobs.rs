//! Realism knobs shared by every scenario: how keys are drawn (count, uniform or Zipf skew,
//! bursts of one key), how far event time strays from the schedule (out-of-order and very late
//! records), and how many records are malformed.

use crate::rng::EventRng;
use spate::key::mix64;
use spate::time::Millis;

/// How keys are distributed.
#[derive(Debug, Clone, PartialEq)]
pub enum Skew {
    /// Every key equally likely.
    Uniform,
    /// Key of rank r (0-based) has weight 1 / (r + 1)^exponent.
    Zipf(f64),
}

impl Skew {
    /// Parses `uniform` or `zipf:EXPONENT` (e.g. `zipf:1.1`).
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            None if text == "uniform" => Ok(Skew::Uniform),
            Some(("zipf", e)) => e
                .parse::<f64>()
                .ok()
                .filter(|e| *e > 0.0 && e.is_finite())
                .map(Skew::Zipf)
                .ok_or_else(|| format!("invalid --skew `{text}`: the Zipf exponent must be a positive number, e.g. zipf:1.1")),
            _ => Err(format!("invalid --skew `{text}`: use uniform or zipf:EXPONENT (e.g. zipf:1.1)")),
        }
    }
}

/// The realism settings of a run.
#[derive(Debug, Clone)]
pub struct Knobs {
    /// Seed of every random choice.
    pub seed: u64,
    /// Distinct keys (users, devices, segments, accounts).
    pub keys: u64,
    /// Key distribution.
    pub skew: Skew,
    /// Fraction of records whose event time is moved back by up to `max_delay_ms`.
    pub out_of_order: f64,
    /// Largest displacement of an out-of-order record.
    pub max_delay_ms: Millis,
    /// Fraction of records moved back by `late_delay_ms` to twice that: behind any watermark.
    pub late: f64,
    /// How far back a very late record is moved, at least.
    pub late_delay_ms: Millis,
    /// Fraction of records written malformed (truncated, wrongly typed key, or missing time).
    pub malformed: f64,
    /// Fraction of 16-record blocks that are a burst from one key.
    pub burstiness: f64,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            seed: 1,
            keys: 10_000,
            skew: Skew::Uniform,
            out_of_order: 0.1,
            max_delay_ms: 5_000,
            late: 0.0,
            late_delay_ms: 60_000,
            malformed: 0.0,
            burstiness: 0.0,
        }
    }
}

/// Records per burst block.
pub const BURST_BLOCK: u64 = 16;

/// Draws keys according to [`Knobs`].
#[derive(Debug, Clone)]
pub struct KeySampler {
    seed: u64,
    keys: u64,
    /// Cumulative Zipf weights, normalized to 1 (empty for uniform).
    cdf: Vec<f64>,
    burstiness: f64,
}

impl KeySampler {
    /// A sampler for `knobs`. A Zipf table holds one `f64` per key.
    pub fn new(knobs: &Knobs) -> Self {
        let keys = knobs.keys.max(1);
        let cdf = match knobs.skew {
            Skew::Uniform => Vec::new(),
            Skew::Zipf(exponent) => {
                let mut acc = 0.0;
                let mut cdf: Vec<f64> = (0..keys)
                    .map(|r| {
                        acc += 1.0 / ((r + 1) as f64).powf(exponent);
                        acc
                    })
                    .collect();
                cdf.iter_mut().for_each(|c| *c /= acc);
                cdf
            }
        };
        KeySampler {
            seed: knobs.seed,
            keys,
            cdf,
            burstiness: knobs.burstiness,
        }
    }

    fn draw(&self, rng: &mut EventRng) -> u64 {
        if self.cdf.is_empty() {
            rng.below(self.keys)
        } else {
            let u = rng.unit();
            (self.cdf.partition_point(|c| *c < u) as u64).min(self.keys - 1)
        }
    }

    /// The key of record `index`: inside a burst block, the block's key; otherwise a fresh draw.
    pub fn key(&self, index: u64, rng: &mut EventRng) -> u64 {
        let block = index / BURST_BLOCK;
        let mut block_rng = EventRng::new(self.seed ^ 0xB1_0C, block);
        if block_rng.chance(self.burstiness) {
            return self.draw(&mut block_rng);
        }
        self.draw(rng)
    }
}

impl Knobs {
    /// The event time of a record scheduled at `scheduled_ms`, after disorder and lateness.
    pub fn event_time(&self, scheduled_ms: Millis, rng: &mut EventRng) -> Millis {
        let u = rng.unit();
        if u < self.late {
            let d = self.late_delay_ms.max(1) as u64;
            scheduled_ms - self.late_delay_ms - rng.below(d) as Millis
        } else if u < self.late + self.out_of_order {
            scheduled_ms - rng.below(self.max_delay_ms.max(0) as u64 + 1) as Millis
        } else {
            scheduled_ms
        }
    }

    /// Checks the fractions; the error names the flag.
    pub fn validate(&self) -> Result<(), String> {
        for (flag, v) in [
            ("--out-of-order", self.out_of_order),
            ("--late", self.late),
            ("--malformed", self.malformed),
            ("--burstiness", self.burstiness),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!(
                    "invalid {flag} {v}: use a fraction between 0 and 1"
                ));
            }
        }
        if self.out_of_order + self.late > 1.0 {
            return Err("--out-of-order plus --late exceed 1: lower one of them".into());
        }
        if self.keys == 0 {
            return Err("invalid --keys 0: use at least 1".into());
        }
        Ok(())
    }
}

/// A stable scramble of a key, for derived attributes (a device's baseline, a segment's place).
pub fn trait_of(key: u64, salt: u64) -> u64 {
    mix64(key ^ salt.rotate_left(32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_skew() {
        assert_eq!(Skew::parse("uniform"), Ok(Skew::Uniform));
        assert_eq!(Skew::parse("zipf:1.2"), Ok(Skew::Zipf(1.2)));
        assert!(Skew::parse("zipf:-1").unwrap_err().contains("--skew"));
        assert!(Skew::parse("pareto").unwrap_err().contains("--skew"));
    }
}
