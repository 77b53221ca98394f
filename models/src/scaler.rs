//! Feature scaling learned online: the running mean and variance of every feature, updated
//! once per epoch by merging the epoch's statistics (Chan, Golub and LeVeque's parallel form of
//! Welford's algorithm), so raw fields can be fed to a model as standard scores.

use crate::ModelError;
use serde::{Deserialize, Serialize};

/// The running mean and variance of each of `dims` features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnlineScaler {
    count: u64,
    mean: Vec<f64>,
    /// Sum of squared deviations from the mean, per feature.
    m2: Vec<f64>,
}

impl OnlineScaler {
    /// A scaler of `dims` features that has seen nothing.
    pub fn new(dims: usize) -> Self {
        OnlineScaler {
            count: 0,
            mean: vec![0.0; dims],
            m2: vec![0.0; dims],
        }
    }

    /// Rows seen so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Each feature's mean.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Each feature's (population) variance; 0 before two rows.
    pub fn variance(&self) -> Vec<f64> {
        let n = self.count.max(1) as f64;
        self.m2.iter().map(|m2| m2 / n).collect()
    }

    /// Learns one epoch's rows, in order.
    pub fn learn<R: AsRef<[f64]>>(&mut self, rows: &[R]) -> Result<(), ModelError> {
        let dims = self.mean.len();
        let rows: Vec<&[f64]> = rows.iter().map(AsRef::as_ref).collect();
        if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != dims) {
            return Err(ModelError::Dimensions {
                example: i,
                found: r.len(),
                expected: dims,
            });
        }
        if rows.is_empty() {
            return Ok(());
        }
        let nb = rows.len() as f64;
        for d in 0..dims {
            let mean_b = rows.iter().map(|r| r[d]).sum::<f64>() / nb;
            let m2_b: f64 = rows.iter().map(|r| (r[d] - mean_b).powi(2)).sum();
            let na = self.count as f64;
            let n = na + nb;
            let delta = mean_b - self.mean[d];
            self.mean[d] += delta * nb / n;
            self.m2[d] += m2_b + delta * delta * na * nb / n;
        }
        self.count += rows.len() as u64;
        Ok(())
    }

    /// `row` as standard scores: each feature minus its mean, over its standard deviation (a
    /// feature that never varied is only centred).
    pub fn transform(&self, row: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; row.len()];
        self.scale(row, &mut out);
        out
    }

    /// [`transform`](Self::transform) into `out` (as long as `row`), without allocating.
    pub fn scale(&self, row: &[f64], out: &mut [f64]) {
        let n = self.count.max(1) as f64;
        for (((o, x), mean), m2) in out.iter_mut().zip(row).zip(&self.mean).zip(&self.m2) {
            let sd = (m2 / n).sqrt();
            *o = if sd > 0.0 { (x - mean) / sd } else { x - mean };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_merge_to_the_statistics_of_all_rows() {
        let rows: Vec<Vec<f64>> = (0..100)
            .map(|i| vec![i as f64, (i * i % 17) as f64])
            .collect();
        let mut online = OnlineScaler::new(2);
        for epoch in rows.chunks(7) {
            online.learn(epoch).unwrap();
        }
        let n = rows.len() as f64;
        for d in 0..2 {
            let mean = rows.iter().map(|r| r[d]).sum::<f64>() / n;
            let var = rows.iter().map(|r| (r[d] - mean).powi(2)).sum::<f64>() / n;
            assert!((online.mean()[d] - mean).abs() < 1e-9);
            assert!((online.variance()[d] - var).abs() < 1e-9);
        }
        let z = online.transform(&[online.mean()[0], online.mean()[1]]);
        assert!(z.iter().all(|v| v.abs() < 1e-12));
    }

    #[test]
    fn a_row_of_the_wrong_width_is_refused_and_changes_nothing() {
        let mut s = OnlineScaler::new(2);
        let err = s.learn(&[vec![1.0, 2.0], vec![1.0]]).unwrap_err();
        assert_eq!(
            err,
            ModelError::Dimensions {
                example: 1,
                found: 1,
                expected: 2
            }
        );
        assert_eq!(s, OnlineScaler::new(2));
    }
}
