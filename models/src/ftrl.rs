//! FTRL-Proximal logistic regression (`linfa-ftrl`), one update per epoch over that epoch's
//! examples. A constant feature is appended to every vector so the model has an intercept
//! (linfa's FTRL has none).
//!
//! linfa derives FTRL's weights from its state at each prediction, over a matrix allocated for
//! the one row; a model is scored far more often than it learns (every record, against once an
//! epoch), so the classifier keeps the weights of its current version and scores a row as
//! linfa would, to the bit (`a_score_is_linfas_prediction_to_the_bit` checks it).

use crate::versioned::Versioned;
use crate::{matrix, Example, ModelError, OnlineModel};
use linfa::traits::FitWith;
use linfa::DatasetBase;
use linfa_ftrl::{Ftrl, FtrlParams};
use ndarray::{Array1, ArrayView1};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::sync::OnceLock;

/// A binary classifier over `dims` features.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FtrlClassifier {
    dims: usize,
    /// FTRL's α (learning rate) and β, and its L1 and L2 ratios.
    alpha: f64,
    beta: f64,
    l1_ratio: f64,
    l2_ratio: f64,
    seed: u64,
    model: Versioned<Ftrl<f64>>,
    /// The current version's weights (the intercept's last), derived by linfa from the model
    /// when first needed after an update or a restore.
    #[serde(skip)]
    weights: OnceLock<Array1<f64>>,
}

impl FtrlClassifier {
    /// A classifier of `dims` features with learning rate `alpha` (linfa's other defaults: β 1,
    /// L1 ratio 0.5, L2 ratio 0.5); `seed` fixes the initial weights.
    pub fn new(dims: usize, alpha: f64, seed: u64) -> Self {
        FtrlClassifier {
            dims,
            alpha,
            beta: 1.0,
            l1_ratio: 0.5,
            l2_ratio: 0.5,
            seed,
            model: Versioned::default(),
            weights: OnceLock::new(),
        }
    }

    /// The linfa parameters of every update.
    pub fn params(&self) -> FtrlParams<f64, Xoshiro256Plus> {
        Ftrl::params_with_rng(Xoshiro256Plus::seed_from_u64(self.seed))
            .alpha(self.alpha)
            .beta(self.beta)
            .l1_ratio(self.l1_ratio)
            .l2_ratio(self.l2_ratio)
    }

    /// The features with the intercept's constant appended.
    fn with_intercept(features: &[f64]) -> Vec<f64> {
        let mut x = Vec::with_capacity(features.len() + 1);
        x.extend_from_slice(features);
        x.push(1.0);
        x
    }
}

impl OnlineModel for FtrlClassifier {
    type Label = bool;

    /// The probability that the label is `true`: linfa's prediction for the row (the
    /// weights' dot product, its stable sigmoid, as an `f32` probability), without a matrix.
    fn score(&self, features: &[f64]) -> Option<f64> {
        let model = self.model.get()?;
        let weights = self.weights.get_or_init(|| model.get_weights());
        let mut row: SmallVec<[f64; 16]> = SmallVec::from_slice(features);
        row.push(1.0);
        let dot = ArrayView1::from(&row[..]).dot(weights);
        Some(f64::from(stable_sigmoid(dot) as f32))
    }

    fn learn(&mut self, examples: &[Example<bool>]) -> Result<(), ModelError> {
        matrix(examples, self.dims)?;
        if examples.is_empty() {
            return Ok(());
        }
        let with_intercept: Vec<Example<()>> = examples
            .iter()
            .map(|e| Example::unlabelled(Self::with_intercept(&e.features)))
            .collect();
        let x = matrix(&with_intercept, self.dims + 1)?;
        let y: Array1<bool> = examples.iter().map(|e| e.label).collect();
        let (params, data) = (self.params(), DatasetBase::new(x, y));
        self.weights = OnceLock::new();
        self.model
            .update("FTRL", |model| params.fit_with(model, &data))
    }

    fn version(&self) -> u64 {
        self.model.version()
    }
}

/// linfa-ftrl's logistic function (private there): clamped to ±35, and computed on the side
/// of 0 where `exp` cannot overflow.
fn stable_sigmoid(x: f64) -> f64 {
    // As linfa: `min` then `max`, so that a NaN becomes 35 (`clamp` would keep it).
    #[allow(clippy::manual_clamp)]
    let x = x.min(35.0).max(-35.0);
    if x < 0.0 {
        let e = x.exp();
        e / (e + 1.0)
    } else {
        1.0 / (1.0 + (-x).exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row;
    use linfa::traits::Predict;

    /// Label true when x0 + x1 > 1, over a grid.
    fn epochs() -> Vec<Vec<Example<bool>>> {
        (0..30)
            .map(|e| {
                (0..50)
                    .map(|i| {
                        let (a, b) = (((e * 50 + i) % 13) as f64 / 13.0, (i % 7) as f64 / 7.0);
                        Example {
                            features: vec![a, b],
                            label: a + b > 1.0,
                        }
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn each_epoch_is_one_of_linfas_updates_and_the_model_separates_the_classes() {
        let mut ours = FtrlClassifier::new(2, 0.5, 3);
        let params = ours.params();
        let mut theirs = None;
        for epoch in epochs() {
            ours.learn(&epoch).unwrap();
            let x = matrix(
                &epoch
                    .iter()
                    .map(|e| Example::unlabelled(FtrlClassifier::with_intercept(&e.features)))
                    .collect::<Vec<_>>(),
                3,
            )
            .unwrap();
            let y: Array1<bool> = epoch.iter().map(|e| e.label).collect();
            theirs = Some(params.fit_with(theirs, &DatasetBase::new(x, y)).unwrap());
        }
        let theirs = theirs.unwrap();
        assert_eq!(ours.model.get().unwrap().z(), theirs.z());
        assert!(ours.score(&[0.95, 0.9]).unwrap() > 0.7);
        assert!(ours.score(&[0.05, 0.1]).unwrap() < 0.3);
    }

    #[test]
    fn a_score_is_linfas_prediction_to_the_bit() {
        let mut model = FtrlClassifier::new(2, 0.5, 3);
        for epoch in epochs() {
            // Scored before and after each update: the kept weights follow the version.
            for features in [[0.3, 0.9], [2.5, -40.0], [f64::NAN, 0.0], [1e300, 1e300]] {
                let Some(linfa) = model.model.get() else {
                    assert_eq!(model.score(&features), None);
                    continue;
                };
                let theirs = linfa.predict(&row(&FtrlClassifier::with_intercept(&features)));
                let ours = model.score(&features).unwrap();
                assert_eq!(
                    ours.to_bits(),
                    f64::from(*theirs[0]).to_bits(),
                    "{features:?}"
                );
            }
            model.learn(&epoch).unwrap();
        }
        for e in epochs().concat() {
            let linfa = model.model.get().unwrap();
            let theirs = linfa.predict(&row(&FtrlClassifier::with_intercept(&e.features)));
            assert_eq!(model.score(&e.features), Some(f64::from(*theirs[0])));
        }
    }

    #[test]
    fn a_round_trip_keeps_every_score() {
        let mut model = FtrlClassifier::new(2, 0.5, 3);
        for epoch in &epochs()[..5] {
            model.learn(epoch).unwrap();
        }
        let copy: FtrlClassifier =
            bincode::deserialize(&bincode::serialize(&model).unwrap()).unwrap();
        for e in epochs().concat() {
            assert_eq!(model.score(&e.features), copy.score(&e.features));
        }
    }
}
