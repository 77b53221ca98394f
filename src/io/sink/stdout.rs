//! The stdout sink: results as JSON lines on standard output, late records and dead letters on
//! standard error (each line labelled `late: ` or `dead letter: `), written when their epoch
//! commits. A terminal cannot take output back, so
//! after a crash a replayed epoch may print again: use the file sink for exactly-once output.

use super::{EpochSink, EpochStats, OutputStream, Staged, StagedPayload};
use crate::checkpoint::Epoch;
use crate::{Error, Result};
use std::io::Write;

/// Writes committed output to stdout and stderr.
#[derive(Debug, Default)]
pub struct StdoutSink;

/// A closed pipe means the reader is done (`| head`); anything else is a real write failure.
fn stdout_error(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Error::OutputClosed { what: "stdout" }
    } else {
        Error::io("cannot write results to", "stdout", e)
    }
}

/// Writes each line of `lines` after `label`, so late records and dead letters read apart from
/// log lines on stderr.
fn labelled(out: &mut impl Write, label: &str, lines: &[u8]) -> std::io::Result<()> {
    for line in lines.split_inclusive(|b| *b == b'\n') {
        out.write_all(label.as_bytes())?;
        out.write_all(line)?;
    }
    Ok(())
}

impl EpochSink for StdoutSink {
    fn location(&self, stream: OutputStream) -> String {
        match stream {
            OutputStream::Results | OutputStream::Named(_) | OutputStream::Repartition => {
                "stdout".into()
            }
            other => format!("stderr (as {} lines)", other.dir_name()),
        }
    }

    fn stage(
        &self,
        epoch: Epoch,
        stream: OutputStream,
        _writer: &str,
        bytes: Vec<u8>,
    ) -> Result<Option<Staged>> {
        Ok(Staged::in_memory(epoch, stream, bytes))
    }

    fn commit(&self, _epoch: Epoch, mut staged: Vec<Staged>, _stats: &EpochStats) -> Result<()> {
        staged.sort_by_key(|s| s.stream);
        let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
        let (mut out, mut err) = (stdout.lock(), stderr.lock());
        for s in staged {
            let StagedPayload::Bytes(bytes) = s.payload else {
                continue;
            };
            let written = match s.stream {
                OutputStream::Results | OutputStream::Named(_) | OutputStream::Repartition => {
                    out.write_all(&bytes)
                }
                OutputStream::Late => labelled(&mut err, "late: ", &bytes),
                OutputStream::DeadLetter => labelled(&mut err, "dead letter: ", &bytes),
            };
            written.map_err(stdout_error)?;
        }
        out.flush().map_err(stdout_error)
    }

    fn recover(&self, _committed: Epoch, _recorded: Epoch) -> Result<()> {
        Ok(())
    }

    fn exactly_once(&self) -> bool {
        false
    }
}
