//! The shared model as a JSON document `{"version","closed_until","model"}`: `spate model
//! export` writes a stopped job's newest version, and `spate run P --model FILE` starts a new
//! job from one (a model trained offline, or exported from another run), as version 0.

use super::ModelSpec;
use crate::state::StateStore;
use crate::time::Millis;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The file's document.
#[derive(Serialize, Deserialize)]
struct ModelFile {
    /// The version written (informational when read back).
    #[serde(default)]
    version: u64,
    /// Every micro-batch ending by this time was learned (informational when read back).
    #[serde(default)]
    closed_until: Option<Millis>,
    /// The model, as its type writes itself in JSON.
    model: serde_json::Value,
}

/// Writes the newest version of the model `store` holds as JSON to `out`; returns its
/// version.
pub fn export_model(
    spec: &ModelSpec,
    store: &StateStore,
    out: &mut dyn std::io::Write,
) -> Result<u64> {
    let stored = store.load_model()?.ok_or_else(|| {
        Error::config(
            "--state",
            store.path().display(),
            "the job there has not learned a model yet: run it first",
        )
    })?;
    let (version, _, bytes) = (stored.versions.iter().max_by_key(|v| v.0))
        .expect("a stored model has its initial version");
    let model = spec.to_json(bytes).map_err(|reason| Error::Model {
        model: spec.type_name,
        reason,
    })?;
    let file = ModelFile {
        version: *version,
        closed_until: Some(stored.closed_until),
        model,
    };
    serde_json::to_writer(&mut *out, &file).map_err(Error::to_json("the model"))?;
    writeln!(out).map_err(|e| Error::io("cannot write the model to", "standard output", e))?;
    Ok(*version)
}

/// The model of a `--model` file, encoded, for a job whose `store` holds no model yet.
pub fn read_model_file(spec: &ModelSpec, file: &Path, store: &StateStore) -> Result<Vec<u8>> {
    let refuse = |why: String| Error::config("--model", file.display(), why);
    if store.load_model()?.is_some() {
        return Err(refuse(format!(
            "--model starts a new job, and {} already holds a model: use a new --state directory",
            store.describe()
        )));
    }
    let text =
        std::fs::read(file).map_err(|e| Error::io("cannot read the --model file", file, e))?;
    let document: ModelFile = serde_json::from_slice(&text).map_err(|e| {
        refuse(format!(
            "it is not a model file ({{\"model\": …}}, as `spate model export` writes): {e}"
        ))
    })?;
    spec.from_json(document.model)
        .map_err(|e| refuse(format!("its model is not a {}: {e}", spec.type_name)))
}
