//! Gaussian naive Bayes (`linfa-bayes`), updated incrementally once per epoch: per class, the
//! running mean and variance of each feature.

use crate::versioned::Versioned;
use crate::{matrix, row, Example, ModelError, OnlineModel};
use linfa::traits::FitWith;
use linfa::{DatasetBase, ParamGuard};
use linfa_bayes::{GaussianNb, GaussianNbParams, GaussianNbValidParams, NaiveBayes};
use ndarray::Array1;
use serde::{Deserialize, Serialize};

/// A binary classifier over `dims` features.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OnlineGaussianNb {
    dims: usize,
    model: Versioned<GaussianNb<f64, bool>>,
}

impl OnlineGaussianNb {
    /// A classifier of `dims` features.
    pub fn new(dims: usize) -> Self {
        OnlineGaussianNb {
            dims,
            model: Versioned::default(),
        }
    }

    /// The linfa parameters of every update.
    pub fn params() -> GaussianNbValidParams<f64, bool> {
        GaussianNbParams::new()
            .check()
            .expect("the default smoothing is valid")
    }
}

impl OnlineModel for OnlineGaussianNb {
    type Label = bool;

    /// The probability that the label is `true` (0 or 1 while only one class was seen).
    fn score(&self, features: &[f64]) -> Option<f64> {
        let model = self.model.get()?;
        let (probabilities, classes) = model.predict_proba(row(features).view());
        let p = classes
            .iter()
            .position(|c| **c)
            .map_or(0.0, |i| probabilities[[0, i]]);
        Some(p)
    }

    fn learn(&mut self, examples: &[Example<bool>]) -> Result<(), ModelError> {
        let x = matrix(examples, self.dims)?;
        if examples.is_empty() {
            return Ok(());
        }
        let y: Array1<bool> = examples.iter().map(|e| e.label).collect();
        let data = DatasetBase::new(x, y);
        self.model.update("Gaussian naive Bayes", |model| {
            Self::params().fit_with(model, &data)
        })
    }

    fn version(&self) -> u64 {
        self.model.version()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epochs() -> Vec<Vec<Example<bool>>> {
        (0..10)
            .map(|e| {
                (0..40)
                    .map(|i| {
                        let fraud = (e + i) % 4 == 0;
                        let jitter = ((e * 40 + i) % 9) as f64 / 9.0;
                        Example {
                            features: vec![if fraud { 8.0 } else { 1.0 } + jitter, jitter],
                            label: fraud,
                        }
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn each_epoch_is_one_of_linfas_updates_and_a_round_trip_keeps_scores() {
        let mut ours = OnlineGaussianNb::new(2);
        let mut theirs = None;
        for epoch in epochs() {
            ours.learn(&epoch).unwrap();
            let x = matrix(&epoch, 2).unwrap();
            let y: Array1<bool> = epoch.iter().map(|e| e.label).collect();
            theirs = Some(
                OnlineGaussianNb::params()
                    .fit_with(theirs, &DatasetBase::new(x, y))
                    .unwrap(),
            );
        }
        let theirs = theirs.unwrap();
        let copy: OnlineGaussianNb =
            bincode::deserialize(&bincode::serialize(&ours).unwrap()).unwrap();
        for e in epochs().concat() {
            let (p, classes) = theirs.predict_proba(row(&e.features).view());
            let i = classes.iter().position(|c| **c).unwrap();
            assert_eq!(ours.score(&e.features), Some(p[[0, i]]));
            assert_eq!(copy.score(&e.features), ours.score(&e.features));
        }
        assert!(ours.score(&[8.5, 0.5]).unwrap() > 0.9);
        assert!(ours.score(&[1.5, 0.5]).unwrap() < 0.1);
    }
}
