//! FTRL-Proximal logistic regression (`linfa-ftrl`), one update per epoch over that epoch's
//! examples. A constant feature is appended to every vector so the model has an intercept
//! (linfa's FTRL has none).

use crate::versioned::Versioned;
use crate::{matrix, row, Example, ModelError, OnlineModel};
use linfa::traits::{FitWith, Predict};
use linfa::DatasetBase;
use linfa_ftrl::{Ftrl, FtrlParams};
use ndarray::Array1;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;
use serde::{Deserialize, Serialize};

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

    /// The probability that the label is `true`.
    fn score(&self, features: &[f64]) -> Option<f64> {
        let model = self.model.get()?;
        let probabilities = model.predict(&row(&Self::with_intercept(features)));
        Some(f64::from(*probabilities[0]))
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
        self.model
            .update("FTRL", |model| params.fit_with(model, &data))
    }

    fn version(&self) -> u64 {
        self.model.version()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
