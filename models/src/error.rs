//! What can go wrong when a model learns.

/// A model refused an epoch's examples.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    /// An example has another number of features than the model.
    #[error("example {example} of the epoch has {found} features, the model takes {expected}: compute the same features for every record")]
    Dimensions {
        /// Its place in the epoch's examples.
        example: usize,
        /// How many it has.
        found: usize,
        /// How many the model takes.
        expected: usize,
    },
    /// linfa refused the update.
    #[error("the {model} update failed: {reason}")]
    Fit {
        /// The model.
        model: &'static str,
        /// linfa's error.
        reason: String,
    },
}
