//! The stdin source: JSON lines from standard input, read by a background thread so the job can
//! still cut epochs while no input arrives. Standard input cannot be read twice, so a job on
//! stdin cannot replay after a failure.

use super::{decode_json_line, trim_line, LineDecoder, ReadStatus, SourceReader};
use crate::checkpoint::SourcePosition;
use crate::io::DeadLetter;
use crate::Result;
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::io::BufRead;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

/// Lines are handed from the reading thread in batches of about this many bytes (or fewer,
/// when no more input is waiting), and at most [`QUEUED_BATCHES`] wait: memory stays bounded
/// however fast stdin is written.
const BATCH_BYTES: usize = 1 << 20;
/// Batches the reading thread may have waiting.
const QUEUED_BATCHES: usize = 16;
/// How much of an over-long line its dead letter keeps.
const HEAD: usize = 1 << 10;

/// One line of stdin, or the start and length of one too long to keep.
enum Piece {
    Line(Vec<u8>),
    TooLong { head: Vec<u8>, len: u64 },
}

impl Piece {
    fn bytes(&self) -> u64 {
        match self {
            Piece::Line(line) => line.len() as u64,
            Piece::TooLong { len, .. } => *len,
        }
    }
}

/// What [`StdinReader::next_piece`] found.
enum Next {
    Piece(Piece),
    /// Nothing is waiting (without waiting for it).
    NoneReady,
    /// Nothing came: the read ends with this status (idle, or the end of stdin).
    Stop(ReadStatus),
}

/// Reads JSON lines from standard input.
pub struct StdinReader<R> {
    batches: Receiver<std::io::Result<Vec<Piece>>>,
    pending: VecDeque<Piece>,
    offset: u64,
    max_record: usize,
    /// What turns a line into a record (serde_json unless the pipeline gives its own).
    decode: LineDecoder<R>,
}

/// Reads one line (newline included) from `input`, keeping at most `max` bytes of it.
fn read_piece(input: &mut impl BufRead, max: usize) -> std::io::Result<Option<Piece>> {
    let (mut line, mut len, mut too_long) = (Vec::new(), 0u64, false);
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let (n, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if !too_long {
            line.extend_from_slice(&buf[..n]);
            if line.len() > max.saturating_add(1) {
                too_long = true;
                line.truncate(HEAD);
            }
        }
        len += n as u64;
        input.consume(n);
        if done {
            break;
        }
    }
    Ok(match (len, too_long) {
        (0, _) => None,
        (_, true) => Some(Piece::TooLong { head: line, len }),
        (_, false) => Some(Piece::Line(line)),
    })
}

/// The reading thread: batches of pieces until stdin ends or the job goes away.
fn read_stdin(tx: SyncSender<std::io::Result<Vec<Piece>>>, max_record: usize) {
    // Our own buffer, so the thread can see whether more input is already waiting.
    let mut input = std::io::BufReader::with_capacity(1 << 16, std::io::stdin().lock());
    let (mut batch, mut bytes) = (Vec::new(), 0u64);
    loop {
        match read_piece(&mut input, max_record) {
            Ok(Some(piece)) => {
                bytes += piece.bytes().min(BATCH_BYTES as u64);
                batch.push(piece);
                // Hand over when the batch is full, or when no more input is waiting.
                if bytes >= BATCH_BYTES as u64 || input.buffer().is_empty() {
                    if tx.send(Ok(std::mem::take(&mut batch))).is_err() {
                        return;
                    }
                    bytes = 0;
                }
            }
            Ok(None) => {
                if !batch.is_empty() {
                    let _ = tx.send(Ok(batch));
                }
                return;
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
    }
}

impl<R: DeserializeOwned> StdinReader<R> {
    /// Starts the thread that reads standard input; lines longer than `max_record` bytes
    /// become dead letters without being held whole.
    pub fn open(max_record: usize) -> Self {
        let (tx, rx) = sync_channel(QUEUED_BATCHES);
        let max = max_record.max(1);
        std::thread::Builder::new()
            .name("spate-stdin".into())
            .spawn(move || read_stdin(tx, max))
            .expect("spawn stdin reader");
        StdinReader {
            batches: rx,
            pending: VecDeque::new(),
            offset: 0,
            max_record: max,
            decode: decode_json_line::<R>,
        }
    }

    /// The next piece, waiting up to 5 ms for one when `wait`, else taking one only if it is
    /// ready.
    fn next_piece(&mut self, wait: bool) -> Result<Next> {
        if let Some(piece) = self.pending.pop_front() {
            return Ok(Next::Piece(piece));
        }
        let batch = if wait {
            match self.batches.recv_timeout(Duration::from_millis(5)) {
                Ok(batch) => batch,
                Err(RecvTimeoutError::Timeout) => return Ok(Next::Stop(ReadStatus::Idle)),
                Err(RecvTimeoutError::Disconnected) => return Ok(Next::Stop(ReadStatus::End)),
            }
        } else {
            match self.batches.try_recv() {
                Ok(batch) => batch,
                Err(_) => return Ok(Next::NoneReady),
            }
        };
        let batch = batch.map_err(|e| crate::Error::io("cannot read", "stdin", e))?;
        self.pending.extend(batch);
        Ok(self
            .pending
            .pop_front()
            .map_or(Next::NoneReady, Next::Piece))
    }

    /// Decodes each line with `decode` instead of serde_json.
    pub fn decoding_with(self, decode: LineDecoder<R>) -> Self {
        StdinReader { decode, ..self }
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
            let piece = match self.next_piece(n == 0)? {
                Next::Piece(piece) => piece,
                Next::NoneReady => break,
                Next::Stop(status) => return Ok(status),
            };
            let offset = self.offset;
            self.offset += piece.bytes();
            n += 1;
            let line = match piece {
                Piece::Line(line) => line,
                Piece::TooLong { head, len } => {
                    dead.push(self.dead_letter(
                        offset,
                        format!(
                            "a line of {len} bytes is longer than --max-record-bytes {} allows; its first {} bytes are kept here",
                            self.max_record,
                            head.len()
                        ),
                        &head,
                    ));
                    continue;
                }
            };
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let Some(text) = trim_line(text) else {
                continue;
            };
            match (self.decode)(text) {
                Ok(record) => out.push(record),
                Err(error) => dead.push(self.dead_letter(offset, error, text)),
            }
        }
        Ok(ReadStatus::Data)
    }

    fn replayable(&self) -> bool {
        false
    }
}

impl<R> StdinReader<R> {
    fn dead_letter(&self, offset: u64, error: String, raw: &[u8]) -> DeadLetter {
        DeadLetter {
            input: None,
            source: "stdin".into(),
            file: None,
            partition: None,
            offset,
            error,
            raw: String::from_utf8_lossy(raw).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_over_long_stdin_line_is_kept_short_and_counted() {
        let text = format!("{{\"a\":1}}\n{}\n{{\"a\":2}}", "x".repeat(5_000));
        let mut input = std::io::BufReader::with_capacity(64, text.as_bytes());
        let Some(Piece::Line(first)) = read_piece(&mut input, 100).unwrap() else {
            panic!("a short line is kept whole")
        };
        assert_eq!(first, b"{\"a\":1}\n");
        let Some(Piece::TooLong { head, len }) = read_piece(&mut input, 100).unwrap() else {
            panic!("a long line is cut")
        };
        assert_eq!(len, 5_001);
        assert!(
            head.len() > 100 && head.len() <= HEAD,
            "kept {}",
            head.len()
        );
        assert!(
            matches!(read_piece(&mut input, 100).unwrap(), Some(Piece::Line(l)) if l == b"{\"a\":2}")
        );
        assert!(read_piece(&mut input, 100).unwrap().is_none());
    }
}
