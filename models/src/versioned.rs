//! A fitted linfa model and how many updates made it.

use crate::ModelError;
use serde::{Deserialize, Serialize};

/// `None` until the first update; each update bumps the version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Versioned<M> {
    model: Option<M>,
    version: u64,
}

impl<M> Default for Versioned<M> {
    fn default() -> Self {
        Versioned {
            model: None,
            version: 0,
        }
    }
}

impl<M> Versioned<M> {
    /// The fitted model, after the first update.
    pub(crate) fn get(&self) -> Option<&M> {
        self.model.as_ref()
    }

    /// Updates made.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// Replaces the model with `fit(current)`; on linfa's error the model is dropped (the
    /// caller's epoch failed) and the error names `name`.
    pub(crate) fn update<E: std::fmt::Display>(
        &mut self,
        name: &'static str,
        fit: impl FnOnce(Option<M>) -> Result<M, E>,
    ) -> Result<(), ModelError> {
        let model = fit(self.model.take()).map_err(|e| ModelError::Fit {
            model: name,
            reason: e.to_string(),
        })?;
        self.model = Some(model);
        self.version += 1;
        Ok(())
    }
}
