//! Rate control: when each record is due. A rate shape (constant, ramp, sine, burst) gives the
//! rate at each moment; the schedule steps through it record by record, so record `i`'s due
//! time, and with it its event time, is deterministic.

use std::time::Duration;

/// Records per second over time.
#[derive(Debug, Clone, PartialEq)]
pub enum RateShape {
    /// A steady rate.
    Constant(f64),
    /// From `from` to `to` linearly over `over`, then `to`.
    Ramp {
        /// Rate at the start.
        from: f64,
        /// Rate at the end.
        to: f64,
        /// Ramp length.
        over: Duration,
    },
    /// `mean × (1 + amplitude × sin(2πt / period))`.
    Sine {
        /// Mean rate.
        mean: f64,
        /// Relative amplitude (0..1).
        amplitude: f64,
        /// Period.
        period: Duration,
    },
    /// `peak` for the first `duty` fraction of every `period`, `base` otherwise.
    Burst {
        /// Rate outside bursts.
        base: f64,
        /// Rate during bursts.
        peak: f64,
        /// Burst period.
        period: Duration,
        /// Fraction of each period spent at `peak`.
        duty: f64,
    },
}

impl RateShape {
    /// Parses `--shape` for a `--rate` of `rate`: `constant`, `ramp:TO:OVER`,
    /// `sine:AMPLITUDE:PERIOD` or `burst:PEAK:PERIOD:DUTY` (durations like `30s`).
    pub fn parse(shape: &str, rate: f64) -> Result<Self, String> {
        let bad = || {
            format!("invalid --shape `{shape}`: use constant, ramp:TO:OVER, sine:AMPLITUDE:PERIOD or burst:PEAK:PERIOD:DUTY (e.g. ramp:500000:60s, sine:0.5:30s, burst:1000000:10s:0.2)")
        };
        let parts: Vec<&str> = shape.split(':').collect();
        let num = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0);
        let dur = |s: &str| spate::time::parse_duration(s).ok().filter(|d| !d.is_zero());
        let parsed = match parts.as_slice() {
            ["constant"] => Some(RateShape::Constant(rate)),
            ["ramp", to, over] => num(to).zip(dur(over)).map(|(to, over)| RateShape::Ramp {
                from: rate,
                to,
                over,
            }),
            ["sine", amplitude, period] => num(amplitude)
                .filter(|a| *a <= 1.0)
                .zip(dur(period))
                .map(|(amplitude, period)| RateShape::Sine {
                    mean: rate,
                    amplitude,
                    period,
                }),
            ["burst", peak, period, duty] => match (num(peak), dur(period), num(duty)) {
                (Some(peak), Some(period), Some(duty)) if duty <= 1.0 => Some(RateShape::Burst {
                    base: rate,
                    peak,
                    period,
                    duty,
                }),
                _ => None,
            },
            _ => None,
        };
        parsed.ok_or_else(bad)
    }

    /// The rate at `t` seconds.
    pub fn rate_at(&self, t: f64) -> f64 {
        match *self {
            RateShape::Constant(r) => r,
            RateShape::Ramp { from, to, over } => {
                let f = (t / over.as_secs_f64()).min(1.0);
                from + (to - from) * f
            }
            RateShape::Sine {
                mean,
                amplitude,
                period,
            } => {
                mean * (1.0 + amplitude * (std::f64::consts::TAU * t / period.as_secs_f64()).sin())
            }
            RateShape::Burst {
                base,
                peak,
                period,
                duty,
            } => {
                let phase = (t / period.as_secs_f64()).fract();
                if phase < duty {
                    peak
                } else {
                    base
                }
            }
        }
    }
}

/// Steps through a rate shape: the due time of each record in turn.
#[derive(Debug, Clone)]
pub struct Schedule {
    shape: RateShape,
    t: f64,
    count: u64,
}

/// Below this rate a schedule waits for the rate to rise instead of stepping by 1/rate.
const MIN_RATE: f64 = 1e-3;

impl Schedule {
    /// A schedule starting at time 0.
    pub fn new(shape: RateShape) -> Self {
        Schedule {
            shape,
            t: 0.0,
            count: 0,
        }
    }

    /// The due time (seconds from the start) of the next record.
    pub fn next_due(&mut self) -> f64 {
        if let RateShape::Constant(rate) = self.shape {
            // Exact: record i is due at i / rate, with no rounding error accumulating.
            self.count += 1;
            return (self.count - 1) as f64 / rate.max(MIN_RATE);
        }
        let due = self.t;
        let mut rate = self.shape.rate_at(self.t);
        // A rate of zero (a burst shape's base, a ramp from 0) pauses: skip ahead in small steps.
        while rate < MIN_RATE {
            self.t += 0.01;
            rate = self.shape.rate_at(self.t);
        }
        self.t += 1.0 / rate;
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_in(shape: RateShape, secs: f64) -> usize {
        let mut s = Schedule::new(shape);
        std::iter::from_fn(|| Some(s.next_due()))
            .take_while(|t| *t < secs)
            .count()
    }

    #[test]
    fn shapes_deliver_their_rates() {
        assert_eq!(count_in(RateShape::Constant(1000.0), 2.0), 2000);
        // A ramp from 0 to 1000 over 10 s averages 500/s.
        let ramp = count_in(RateShape::parse("ramp:1000:10s", 0.0).unwrap(), 10.0);
        assert!((4_900..=5_100).contains(&ramp), "{ramp}");
        // A full sine period averages the mean.
        let sine = count_in(RateShape::parse("sine:0.9:4s", 1000.0).unwrap(), 4.0);
        assert!((3_900..=4_100).contains(&sine), "{sine}");
        // 20% of the time at 5000/s, the rest at 1000/s: 1800/s on average.
        let burst = count_in(RateShape::parse("burst:5000:1s:0.2", 1000.0).unwrap(), 10.0);
        assert!((17_800..=18_200).contains(&burst), "{burst}");
        assert!(RateShape::parse("sine:2:1s", 1.0)
            .unwrap_err()
            .contains("--shape"));
        assert!(RateShape::parse("zigzag", 1.0).is_err());
    }
}
