//! [`Moments`]: the count, mean and population standard deviation of a field, kept as Welford's
//! running mean and sum of squared deviations and merged with Chan's formula (stable where a
//! sum of squares would cancel).

use super::Aggregator;
use serde::{Deserialize, Serialize};

/// The count, mean and population standard deviation of a float field.
pub struct Moments<F> {
    field: F,
}

impl<F> Moments<F> {
    /// The moments of the value `field` extracts from each record.
    pub fn of(field: F) -> Self {
        Moments { field }
    }
}

/// A window's moments so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MomentsAcc {
    n: u64,
    mean: f64,
    /// The sum of squared deviations from the mean.
    m2: f64,
}

/// A window's moments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Values.
    pub count: u64,
    /// Their mean (`None` for none).
    pub mean: Option<f64>,
    /// Their population standard deviation (`None` for none).
    pub stddev: Option<f64>,
}

impl<E, F: Fn(&E) -> f64 + Send + Sync + 'static> Aggregator<E> for Moments<F> {
    type Acc = MomentsAcc;
    type Out = Stats;
    fn create(&self) -> MomentsAcc {
        MomentsAcc::default()
    }
    fn add(&self, acc: &mut MomentsAcc, event: &E) {
        let x = (self.field)(event);
        acc.n += 1;
        let delta = x - acc.mean;
        acc.mean += delta / acc.n as f64;
        acc.m2 += delta * (x - acc.mean);
    }
    fn merge(&self, acc: &mut MomentsAcc, other: &MomentsAcc) {
        if other.n == 0 {
            return;
        }
        let n = acc.n + other.n;
        let delta = other.mean - acc.mean;
        acc.mean += delta * other.n as f64 / n as f64;
        acc.m2 += other.m2 + delta * delta * (acc.n as f64 * other.n as f64) / n as f64;
        acc.n = n;
    }
    fn finish(&self, acc: &MomentsAcc) -> Stats {
        let some = |v: f64| (acc.n > 0).then_some(v);
        Stats {
            count: acc.n,
            mean: some(acc.mean),
            stddev: some((acc.m2 / acc.n.max(1) as f64).max(0.0).sqrt()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_halves_give_the_population_moments_of_the_whole() {
        let moments = Moments::of(|x: &f64| *x);
        let (mut a, mut b) = (moments.create(), moments.create());
        for x in [2.0, 4.0, 4.0, 4.0] {
            moments.add(&mut a, &x);
        }
        for x in [5.0, 5.0, 7.0, 9.0] {
            moments.add(&mut b, &x);
        }
        moments.merge(&mut a, &b);
        let stats = moments.finish(&a);
        assert_eq!((stats.count, stats.mean), (8, Some(5.0)));
        assert!((stats.stddev.unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(moments.finish(&moments.create()).mean, None);
    }
}
