//! Pipeline parameters: the values a pipeline lets `spate run P --param NAME=VALUE` set
//! (thresholds, k, learning rates), each declared with a default and a line of help, which
//! `spate describe P` lists.
//!
//! ```
//! use spate::cli::{ParamDecl, Params};
//!
//! let decls = [ParamDecl::new("threshold", "6.0", "score above which a reading is an anomaly")];
//! let params = Params::parse("iot", &decls, &["threshold=8.5".to_string()]).unwrap();
//! assert_eq!(params.get::<f64>("threshold").unwrap(), 8.5);
//! assert!(Params::parse("iot", &decls, &["k=3".to_string()]).is_err());
//! ```

use crate::{Error, Result};
use std::collections::BTreeMap;
use std::str::FromStr;

/// A parameter a pipeline takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamDecl {
    /// Its name, as `--param NAME=VALUE` gives it.
    pub name: String,
    /// Its value when `--param` does not set it.
    pub default: String,
    /// What it changes.
    pub help: String,
}

impl ParamDecl {
    /// A parameter `name` with `default` and `help`.
    pub fn new(name: &str, default: &str, help: &str) -> Self {
        ParamDecl {
            name: name.into(),
            default: default.into(),
            help: help.into(),
        }
    }
}

/// The parameters of one run: every declared one, set or defaulted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    /// Every declared parameter at its default.
    pub fn defaults(decls: &[ParamDecl]) -> Self {
        Params {
            values: (decls.iter())
                .map(|d| (d.name.clone(), d.default.clone()))
                .collect(),
        }
    }

    /// The defaults with `NAME=VALUE` texts applied; a name the pipeline does not declare, or
    /// a text without `=`, is an error naming the parameters there are.
    pub fn parse(pipeline: &str, decls: &[ParamDecl], texts: &[String]) -> Result<Self> {
        let mut params = Self::defaults(decls);
        let known = || match decls.len() {
            0 => format!("pipeline `{pipeline}` takes no parameters; leave --param out"),
            _ => format!(
                "pipeline `{pipeline}` takes {} (see `spate describe {pipeline}`)",
                decls
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        for text in texts {
            let Some((name, value)) = text.split_once('=') else {
                return Err(Error::config("--param", text, "write NAME=VALUE"));
            };
            match params.values.get_mut(name) {
                Some(slot) => *slot = value.to_string(),
                None => return Err(Error::config("--param", text, known())),
            }
        }
        Ok(params)
    }

    /// Parameter `name` as a `T`; an error names the parameter and its value.
    ///
    /// # Panics
    /// When the pipeline did not declare `name` (a pipeline definition error).
    pub fn get<T: FromStr>(&self, name: &str) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        let value = self.values.get(name).unwrap_or_else(|| {
            panic!(
                "a pipeline reads the parameter `{name}` it did not declare (register_with_params)"
            )
        });
        value.parse().map_err(|e: T::Err| {
            Error::config(
                "--param",
                format!("{name}={value}"),
                format!("{e} (a {})", std::any::type_name::<T>()),
            )
        })
    }
}
