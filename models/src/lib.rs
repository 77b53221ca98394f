//! Online machine-learning models for spate pipelines, on [linfa]: each learns from one
//! epoch's examples at a time and scores single feature vectors in between, and each is plain
//! serde data, so a pipeline checkpoints it like any state.
//!
//! - [`OnlineScaler`]: running mean and variance per feature (learned online), to feed raw
//!   fields to the models below;
//! - [`StreamingKMeans`]: linfa's incremental (mini-batch) k-means with a half-life, like
//!   Spark's `StreamingKMeans`; scores a point by its distance to the nearest centroid;
//! - [`FtrlClassifier`]: FTRL-Proximal logistic regression (`linfa-ftrl`); scores the
//!   probability of the positive class;
//! - [`OnlineGaussianNb`]: Gaussian naive Bayes (`linfa-bayes`, incremental); scores the
//!   probability of the positive class.
//!
//! # Determinism
//!
//! [`OnlineModel::learn`] takes an epoch's examples as one slice, in the order the engine
//! merges them (partition, then input order), and every model here is a deterministic function
//! of the examples it learned, in order: the same input gives the same model and the same
//! scores on any machine, with any number of workers.
//!
//! ```
//! use spate_models::{Example, OnlineModel, StreamingKMeans};
//!
//! let mut model = StreamingKMeans::new(2, 1, Some(10.0), 7);
//! assert_eq!(model.score(&[0.0]), None, "nothing learned yet");
//! let epoch: Vec<Example<()>> = [0.0, 0.1, 10.0, 10.2]
//!     .iter()
//!     .map(|&x| Example::unlabelled(vec![x]))
//!     .collect();
//! model.learn(&epoch).unwrap();
//! assert!(model.score(&[0.05]).unwrap() < 1.0);
//! assert!(model.score(&[5.0]).unwrap() > 4.0);
//! assert_eq!(model.version(), 1);
//! ```

mod bayes;
mod error;
mod ftrl;
mod inline;
mod kmeans;
mod scaler;
mod versioned;

pub use bayes::OnlineGaussianNb;
pub use error::ModelError;
pub use ftrl::FtrlClassifier;
pub use kmeans::StreamingKMeans;
pub use scaler::OnlineScaler;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One training example: a feature vector and its label (`()` for unsupervised models).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example<L> {
    /// The features, in the model's order.
    pub features: Vec<f64>,
    /// What the model should learn to predict.
    pub label: L,
}

impl Example<()> {
    /// An example without a label (clustering, scaling).
    pub fn unlabelled(features: Vec<f64>) -> Self {
        Example {
            features,
            label: (),
        }
    }
}

/// A model that learns once per epoch and scores in between.
pub trait OnlineModel: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// What an example's label is: `()`, `bool`, ...
    type Label: Clone + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// The score of one feature vector (what it means is the model's: a distance, a
    /// probability); `None` until the model has learned something.
    fn score(&self, features: &[f64]) -> Option<f64>;

    /// Learns from one epoch's examples, in order; an empty epoch changes nothing. Examples
    /// with the wrong number of features are refused, and the model is left as it was.
    fn learn(&mut self, examples: &[Example<Self::Label>]) -> Result<(), ModelError>;

    /// How many updates made this model (0: untrained).
    fn version(&self) -> u64;
}

/// The examples' features as a matrix, each checked to have `dims` features.
fn matrix<L>(examples: &[Example<L>], dims: usize) -> Result<ndarray::Array2<f64>, ModelError> {
    let mut data = Vec::with_capacity(examples.len() * dims);
    for (i, e) in examples.iter().enumerate() {
        if e.features.len() != dims {
            return Err(ModelError::Dimensions {
                example: i,
                found: e.features.len(),
                expected: dims,
            });
        }
        data.extend_from_slice(&e.features);
    }
    Ok(
        ndarray::Array2::from_shape_vec((examples.len(), dims), data)
            .expect("the length was checked"),
    )
}

/// One feature vector as a one-row matrix.
fn row(features: &[f64]) -> ndarray::Array2<f64> {
    ndarray::Array2::from_shape_vec((1, features.len()), features.to_vec())
        .expect("a row has its own length")
}
