//! The stdin source: JSON lines from standard input, read by a background thread so the job can
//! still cut epochs while no input arrives. Standard input cannot be read twice, so a job on
//! stdin cannot replay after a failure.

use super::{decode_json_line, trim_line, ReadStatus, SourceReader};
use crate::checkpoint::SourcePosition;
use crate::io::DeadLetter;
use crate::Result;
use serde::de::DeserializeOwned;
use std::io::BufRead;
use std::marker::PhantomData;
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};
use std::time::Duration;

/// Reads JSON lines from standard input.
pub struct StdinReader<R> {
    lines: Receiver<std::io::Result<Vec<u8>>>,
    offset: u64,
    _record: PhantomData<fn() -> R>,
}

impl<R: DeserializeOwned> StdinReader<R> {
    /// Starts the thread that reads standard input.
    pub fn open() -> Self {
        let (tx, rx) = sync_channel(64 * 1024);
        std::thread::Builder::new()
            .name("spate-stdin".into())
            .spawn(move || {
                let stdin = std::io::stdin();
                let mut lock = stdin.lock();
                loop {
                    let mut line = Vec::new();
                    match lock.read_until(b'\n', &mut line) {
                        Ok(0) => return,
                        Ok(_) => {
                            if tx.send(Ok(line)).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
            })
            .expect("spawn stdin reader");
        StdinReader {
            lines: rx,
            offset: 0,
            _record: PhantomData,
        }
    }
}

impl<R: DeserializeOwned> SourceReader<R> for StdinReader<R> {
    fn seek(&mut self, position: SourcePosition) -> Result<()> {
        if position != SourcePosition::Start && position.parts().1 != self.offset {
            tracing::warn!(
                "stdin cannot be replayed: continuing with new input after a restart; use a file source for exactly-once recovery"
            );
        }
        Ok(())
    }

    fn position(&self) -> SourcePosition {
        SourcePosition::at(0, self.offset)
    }

    fn read(
        &mut self,
        out: &mut Vec<R>,
        _routes: &mut Vec<u32>,
        dead: &mut Vec<DeadLetter>,
        max: usize,
        _until: Option<&SourcePosition>,
    ) -> Result<ReadStatus> {
        let mut n = 0;
        while n < max {
            let line = match n {
                0 => match self.lines.recv_timeout(Duration::from_millis(5)) {
                    Ok(line) => line.map_err(|e| crate::Error::io("cannot read", "stdin", e))?,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return Ok(ReadStatus::Idle),
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        return Ok(ReadStatus::End)
                    }
                },
                _ => match self.lines.try_recv() {
                    Ok(line) => line.map_err(|e| crate::Error::io("cannot read", "stdin", e))?,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => break,
                },
            };
            let offset = self.offset;
            self.offset += line.len() as u64;
            n += 1;
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let Some(text) = trim_line(text) else {
                continue;
            };
            match decode_json_line(text) {
                Ok(record) => out.push(record),
                Err(error) => dead.push(DeadLetter {
                    source: "stdin".into(),
                    file: None,
                    partition: None,
                    offset,
                    error,
                    raw: String::from_utf8_lossy(text).into_owned(),
                }),
            }
        }
        Ok(ReadStatus::Data)
    }

    fn replayable(&self) -> bool {
        false
    }
}
