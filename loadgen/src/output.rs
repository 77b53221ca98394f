//! Where generated lines go: a JSON-lines file (a path ending in `/` means a directory, holding
//! `<scenario>.jsonl`), standard output, or nowhere (`null`, to measure the generator itself).

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// A destination for JSON lines.
pub enum Output {
    /// Buffered writes to a file or stdout.
    Writer(BufWriter<Box<dyn Write + Send>>),
    /// Discards everything (to measure the generator itself).
    Null,
}

impl Output {
    /// Opens `file:PATH`, `stdout` or `null`; `scenario` names the file inside a directory.
    pub fn open(to: &str, scenario: &str) -> Result<Self> {
        let writer: Box<dyn Write + Send> = match to {
            "null" => return Ok(Output::Null),
            "stdout" | "-" => Box::new(std::io::stdout()),
            _ => {
                let Some(path) = to.strip_prefix("file:").filter(|p| !p.is_empty()) else {
                    if to.starts_with("kafka://") {
                        bail!("invalid --to `{to}`: Kafka output is not built yet; write to file:PATH and produce it with kcat, or use stdout");
                    }
                    bail!("invalid --to `{to}`: use file:PATH (a path ending in / is a directory), stdout or null");
                };
                let mut path = PathBuf::from(path);
                if to.ends_with('/') || path.is_dir() {
                    std::fs::create_dir_all(&path).with_context(|| {
                        format!("cannot create directory {} (--to)", path.display())
                    })?;
                    path = path.join(format!("{scenario}.jsonl"));
                }
                Box::new(
                    File::create(&path)
                        .with_context(|| format!("cannot create {} (--to)", path.display()))?,
                )
            }
        };
        Ok(Output::Writer(BufWriter::with_capacity(1 << 20, writer)))
    }

    /// Writes one line (the newline included).
    #[inline]
    pub fn write(&mut self, line: &[u8]) -> Result<()> {
        match self {
            Output::Writer(w) => w.write_all(line).context("cannot write the output (--to)"),
            Output::Null => Ok(()),
        }
    }

    /// Flushes buffered lines.
    pub fn flush(&mut self) -> Result<()> {
        match self {
            Output::Writer(w) => w.flush().context("cannot write the output (--to)"),
            Output::Null => Ok(()),
        }
    }
}
