//! Streaming k-means: linfa's incremental (mini-batch) k-means, one update per epoch, with a
//! half-life like Spark's `StreamingKMeans`: before each update the weight of what the
//! centroids learned so far is multiplied by `0.5^(1/half_life)`, so after `half_life` epochs
//! old points count half as much as new ones and the centroids follow a drifting stream.

use crate::inline::inline;
use crate::versioned::Versioned;
use crate::{matrix, Example, ModelError, OnlineModel};
use linfa::traits::FitWith;
use linfa::{DatasetBase, ParamGuard};
use linfa_clustering::{IncrKMeansError, KMeans, KMeansValidParams};
use linfa_nn::distance::L2Dist;
use ndarray::Array2;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;
use serde::{Deserialize, Serialize};

/// `k` centroids over `dims` features, learned one epoch at a time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamingKMeans {
    k: usize,
    dims: usize,
    /// Epochs after which what was learned counts half; `None`: never forget.
    half_life: Option<f64>,
    seed: u64,
    model: Versioned<KMeans<f64, L2Dist>>,
    /// Points seen before there were `k` of them to place the first centroids.
    waiting: Vec<Vec<f64>>,
}

impl StreamingKMeans {
    /// `k` clusters of `dims` features; `half_life` in epochs (`None`: all epochs weigh the
    /// same); `seed` fixes the first centroids' k-means++ placement.
    pub fn new(k: usize, dims: usize, half_life: Option<f64>, seed: u64) -> Self {
        StreamingKMeans {
            k: k.max(1),
            dims,
            half_life,
            seed,
            model: Versioned::default(),
            waiting: Vec::new(),
        }
    }

    /// The centroids, one per row, once there are any.
    pub fn centroids(&self) -> Option<&Array2<f64>> {
        self.model.get().map(|m| m.centroids())
    }

    /// The linfa parameters of every update (the rng only places the first centroids).
    pub fn params(&self) -> KMeansValidParams<f64, Xoshiro256Plus, L2Dist> {
        KMeans::params_with_rng(self.k, Xoshiro256Plus::seed_from_u64(self.seed))
            .tolerance(1e-9)
            .check()
            .expect("k >= 1 and a positive tolerance are valid")
    }

    /// The model with the weight of what it learned multiplied by `factor`.
    fn decayed(model: KMeans<f64, L2Dist>, factor: f64) -> Result<KMeans<f64, L2Dist>, String> {
        let fail = |e: serde_json::Error| format!("cannot decay the cluster weights: {e}");
        let mut value = serde_json::to_value(&model).map_err(fail)?;
        if let Some(counts) = value["cluster_count"]["data"].as_array_mut() {
            for c in counts {
                *c = serde_json::json!(c.as_f64().unwrap_or(0.0) * factor);
            }
        }
        serde_json::from_value(value).map_err(fail)
    }
}

impl OnlineModel for StreamingKMeans {
    type Label = ();

    /// The Euclidean distance to the nearest centroid.
    fn score(&self, features: &[f64]) -> Option<f64> {
        let centroids = self.centroids()?;
        centroids
            .rows()
            .into_iter()
            .map(|c| {
                c.iter()
                    .zip(features)
                    .map(|(c, x)| (x - c).powi(2))
                    .sum::<f64>()
            })
            .min_by(f64::total_cmp)
            .map(f64::sqrt)
    }

    fn learn(&mut self, examples: &[Example<()>]) -> Result<(), ModelError> {
        let points = matrix(examples, self.dims)?;
        if examples.is_empty() {
            return Ok(());
        }
        let points = match self.model.get() {
            Some(_) => points,
            None => {
                self.waiting
                    .extend(examples.iter().map(|e| e.features.clone()));
                if self.waiting.len() < self.k {
                    return Ok(());
                }
                let first: Vec<Example<()>> =
                    self.waiting.drain(..).map(Example::unlabelled).collect();
                matrix(&first, self.dims)?
            }
        };
        let factor = self.half_life.map_or(1.0, |h| 0.5f64.powf(1.0 / h));
        let (params, data) = (self.params(), DatasetBase::from(points));
        self.model.update("k-means", |model| {
            let model = model.map(|m| Self::decayed(m, factor)).transpose()?;
            inline(|| match params.fit_with(model, &data) {
                Ok(model) | Err(IncrKMeansError::NotConverged(model)) => Ok(model),
                Err(e) => Err(e.to_string()),
            })
        })
    }

    fn version(&self) -> u64 {
        self.model.version()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epochs() -> Vec<Vec<Example<()>>> {
        let mut x = 17u64;
        let mut next = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as f64 / (1u64 << 31) as f64
        };
        (0..6)
            .map(|_| {
                (0..40)
                    .map(|i| {
                        let center = [0.0, 10.0, 20.0][i % 3];
                        Example::unlabelled(vec![center + next(), center - next()])
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn each_epoch_is_one_of_linfas_incremental_updates() {
        let mut ours = StreamingKMeans::new(3, 2, None, 5);
        let params = ours.params();
        let mut theirs: Option<KMeans<f64, L2Dist>> = None;
        for epoch in epochs() {
            ours.learn(&epoch).unwrap();
            let data = DatasetBase::from(matrix(&epoch, 2).unwrap());
            theirs = Some(match params.fit_with(theirs, &data) {
                Ok(m) | Err(IncrKMeansError::NotConverged(m)) => m,
                Err(e) => panic!("{e}"),
            });
        }
        assert_eq!(ours.centroids(), theirs.as_ref().map(|m| m.centroids()));
        assert_eq!(ours.version(), 6);
    }

    #[test]
    fn a_round_trip_keeps_every_score_and_later_update() {
        let mut model = StreamingKMeans::new(3, 2, Some(2.0), 9);
        let epochs = epochs();
        for epoch in &epochs[..3] {
            model.learn(epoch).unwrap();
        }
        let mut copy: StreamingKMeans =
            bincode::deserialize(&bincode::serialize(&model).unwrap()).unwrap();
        for epoch in &epochs[3..] {
            model.learn(epoch).unwrap();
            copy.learn(epoch).unwrap();
        }
        for e in epochs.concat() {
            assert_eq!(model.score(&e.features), copy.score(&e.features));
        }
        let centroid_near = |c: f64| {
            model
                .centroids()
                .unwrap()
                .rows()
                .into_iter()
                .any(|r| (r[0] - c - 0.5).abs() < 1.0)
        };
        assert!(centroid_near(0.0) && centroid_near(10.0) && centroid_near(20.0));
    }

    #[test]
    fn a_half_life_follows_a_moving_cluster() {
        let shifted = |at: f64| -> Vec<Example<()>> {
            (0..30)
                .map(|i| Example::unlabelled(vec![at + (i % 3) as f64 * 0.1]))
                .collect()
        };
        let mut forgetting = StreamingKMeans::new(1, 1, Some(1.0), 1);
        let mut remembering = StreamingKMeans::new(1, 1, None, 1);
        for m in [&mut forgetting, &mut remembering] {
            for _ in 0..10 {
                m.learn(&shifted(0.0)).unwrap();
            }
            for _ in 0..3 {
                m.learn(&shifted(100.0)).unwrap();
            }
        }
        let at = |m: &StreamingKMeans| m.centroids().unwrap()[[0, 0]];
        assert!(at(&forgetting) > 80.0, "{}", at(&forgetting));
        assert!(at(&remembering) < 30.0, "{}", at(&remembering));
    }

    #[test]
    fn fewer_points_than_clusters_wait_for_more() {
        let mut model = StreamingKMeans::new(3, 1, None, 1);
        model.learn(&[Example::unlabelled(vec![1.0])]).unwrap();
        assert_eq!(model.score(&[1.0]), None);
        let more: Vec<_> = [5.0, 9.0].map(|x| Example::unlabelled(vec![x])).to_vec();
        model.learn(&more).unwrap();
        assert_eq!(model.version(), 1);
        assert_eq!(model.score(&[9.0]), Some(0.0));
    }
}
