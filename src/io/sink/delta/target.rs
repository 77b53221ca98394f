//! Where a Delta Lake sink writes, as `--sink delta:PATH[?key=F1,F2]` names it: the results
//! table, the key its rows are merged on, and the size of the files it writes.

use crate::io::sink::upsert::key_fields;
use crate::io::sink::OutputStream;
use crate::{Error, Result};
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

/// Where a Delta Lake sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaTarget {
    /// The results table's directory (a local path); late records and dead letters go to the
    /// tables beside it, `PATH_late` and `PATH_dead_letter`.
    pub path: PathBuf,
    /// The fields result rows are merged on (`key=a,b`): Delta `MERGE`, the last row of each
    /// key wins. Empty: rows are appended.
    pub key: Vec<String>,
    /// The size Parquet files are cut at (`--sink-opt target_file_size=…`); Delta's default
    /// (100 MiB) when `None`.
    pub target_file_size: Option<NonZeroU64>,
}

impl DeltaTarget {
    /// Parses `delta:PATH[?key=F1,F2]`; `None` when `text` is not a Delta sink.
    pub fn parse(text: &str) -> Result<Option<Self>> {
        let Some(rest) = text.strip_prefix("delta:") else {
            return Ok(None);
        };
        let refused = |why: &str| Error::config("--sink", text, why);
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            return Err(refused("name the table's directory: delta:PATH"));
        }
        if path.contains("://") {
            return Err(refused(
                "spate writes Delta tables on local paths: give a directory, delta:PATH",
            ));
        }
        let mut key = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let columns = pair.strip_prefix("key=").ok_or_else(|| {
                refused(
                    "the only option of a delta: sink is key=F1,F2 (the fields rows are merged on)",
                )
            })?;
            key = key_fields(columns).ok_or_else(|| {
                refused("key= takes the result fields rows are merged on, as NAME,NAME of letters, digits and _")
            })?;
        }
        let path = PathBuf::from(path.trim_end_matches('/'));
        Ok(Some(DeltaTarget {
            path,
            key,
            target_file_size: None,
        }))
    }

    /// The directory of `stream`'s table.
    pub fn table_path(&self, stream: OutputStream) -> PathBuf {
        match stream {
            OutputStream::Results | OutputStream::Named(_) | OutputStream::Repartition => {
                self.path.clone()
            }
            other => sibling(&self.path, other.dir_name()),
        }
    }
}

/// `path` with `_` and `stream` (`late`, `dead-letter` as `dead_letter`) appended to its name.
fn sibling(path: &Path, stream: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!("_{}", stream.replace('-', "_")));
    path.with_file_name(name)
}

impl std::fmt::Display for DeltaTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "delta:{}", self.path.display())?;
        if !self.key.is_empty() {
            write!(f, "?key={}", self.key.join(","))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_names_its_tables_and_key() {
        let target = DeltaTarget::parse("delta:out/tx/?key=user_id,window_start")
            .unwrap()
            .unwrap();
        assert_eq!(target.path, Path::new("out/tx"));
        assert_eq!(target.key, ["user_id", "window_start"]);
        assert_eq!(target.to_string(), "delta:out/tx?key=user_id,window_start");
        let late = target.table_path(OutputStream::Late);
        assert_eq!(late, Path::new("out/tx_late"));
        let dead = target.table_path(OutputStream::DeadLetter);
        assert_eq!(dead, Path::new("out/tx_dead_letter"));
        assert!(DeltaTarget::parse("file:out").unwrap().is_none());
    }

    #[test]
    fn a_target_spate_cannot_write_is_refused() {
        for (text, why) in [
            ("delta:", "name the table's directory"),
            ("delta:s3://bucket/t", "local paths"),
            ("delta:t?mode=x", "the only option"),
            ("delta:t?key=a b", "key="),
        ] {
            let refused = DeltaTarget::parse(text).unwrap_err().to_string();
            assert!(refused.contains(why), "{refused}");
        }
    }
}
