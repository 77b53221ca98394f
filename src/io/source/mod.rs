//! Sources: readers that decode input into a pipeline's typed records, report malformed input as
//! [dead letters](crate::io::DeadLetter), and resume from a [`SourcePosition`] so an epoch can be
//! replayed exactly.

mod file;
mod generator;
mod inputs;
mod open;
mod read_ahead;
mod stdin;

pub use crate::io::kafka::KafkaReader;
pub use file::{FileOptions, FileReader};
pub use generator::{EventGenerator, GenOptions, GeneratorReader};
pub use inputs::{NamedReader, TwoInputs, ROUTE_BY_KEY};
pub use open::{open_source, OpenContext};
pub use read_ahead::{read_ahead, ReadAhead};
pub use stdin::StdinReader;

use crate::checkpoint::SourcePosition;
use crate::io::kafka::KafkaTopic;
use crate::io::DeadLetter;
use crate::time::Millis;
use crate::{Error, Result};
use std::path::PathBuf;

/// What a call to [`SourceReader::read`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStatus {
    /// Records were read, or the limit or the `until` position was reached: call again.
    Data,
    /// Nothing is available right now (rate limit, or waiting for stdin).
    Idle,
    /// The input is exhausted: a bounded source ends here.
    End,
}

/// A reader of one source, driven by the job's source thread.
pub trait SourceReader<R>: Send {
    /// Moves to `position`; the next read starts there.
    fn seek(&mut self, position: SourcePosition) -> Result<()>;
    /// Where the next read starts.
    fn position(&self) -> SourcePosition;
    /// Reads up to `max` records into `out` (malformed ones into `dead`), stopping early at
    /// `until` when given: replayed epochs end exactly where they ended the first time. A
    /// source whose input is already partitioned ([`partitions`](Self::partitions)) pushes
    /// each record's partition to `routes`, in step with `out`; others leave it alone.
    fn read(
        &mut self,
        out: &mut Vec<R>,
        routes: &mut Vec<u32>,
        dead: &mut Vec<DeadLetter>,
        max: usize,
        until: Option<&SourcePosition>,
    ) -> Result<ReadStatus>;
    /// The partitions the input is already split into (the Kafka topic partitions this job
    /// reads), in route order: route `i` is source partition `partitions()[i]`, and each is one
    /// key partition. `None` when records are routed by key hash.
    fn partitions(&self) -> Option<Vec<u32>> {
        None
    }
    /// Records not yet read in each partition (Kafka's consumer lag) as (source partition,
    /// records), when the source knows.
    fn lag(&self) -> Option<Vec<(u32, u64)>> {
        None
    }
    /// How many pipeline inputs the reader reads (a join's reader reads two).
    fn inputs(&self) -> usize {
        1
    }
    /// Per route (of [`partitions`](Self::partitions)), and per input for a reader of several
    /// (input-major): whether records may be waiting that this reader has not read yet (Kafka: below the partition's end offset or high-water
    /// mark, or nothing heard from the broker yet). Such a partition is slow, never idle, so
    /// the speed of a fetch cannot change which records are late. `None`: the source cannot
    /// tell, and idleness is by wall-clock time alone.
    fn waiting(&self) -> Option<Vec<bool>> {
        None
    }
    /// Per input of a reader of several: whether it was read to its end, so it can bring
    /// nothing more (a bounded input, not followed). Empty when the reader cannot tell or reads
    /// one input (whose end ends the job).
    fn inputs_ended(&self) -> Vec<bool> {
        Vec::new()
    }
    /// Which routes (of [`partitions`](Self::partitions)) not to read from until further
    /// notice, because their key partition has as many batches queued as it may: a
    /// partitioned source leaves their records in its consumer (whose prefetch is bounded), so
    /// a slow partition holds back only itself. Others ignore it: the source thread then waits
    /// for the partition instead.
    fn pause(&mut self, _paused: &[bool]) {}
    /// The newest event time the source thread has read from each input, flat as
    /// [`inputs`](Self::inputs) counts them (`None` before an input's first record). A reader
    /// of several inputs that are not partitioned reads the one furthest behind first
    /// (*watermark alignment*, as Flink's), so a join over files covering the same hours does
    /// not hold hours of one input in state while the other catches up. Only what is read
    /// when changes, never a result; others ignore it.
    fn align(&mut self, _newest: &[Option<Millis>]) {}
    /// Everything up to `position` is committed: a source may tell its upstream (a Kafka
    /// source commits the offsets to its consumer group, for monitoring tools; spate's own
    /// checkpoint stays the truth).
    fn committed(&mut self, _position: &SourcePosition) {}
    /// A position as a person reads it, naming the file or partition (for errors).
    fn describe(&self, position: &SourcePosition) -> String {
        format!("{position:?}")
    }
    /// Whether input can be read again from an earlier position (needed for recovery).
    fn replayable(&self) -> bool;
    /// Moves the exchange batches read since the last call, with their routes, to `out`: a
    /// consumer-group job of a chained pipeline reads its repartition topic with its input
    /// ([`WithExchange`](crate::io::kafka::repartition::WithExchange)); other readers have
    /// none.
    fn take_exchanged(
        &mut self,
        _out: &mut Vec<(u32, crate::io::kafka::repartition::ExchangeRecord)>,
    ) {
    }
}

/// A source as named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// The pipeline's built-in generator (`gen`).
    Generator,
    /// JSON lines from a file, or from every file of a directory in name order (`file:PATH`).
    File(PathBuf),
    /// JSON lines from standard input (`stdin`); cannot be replayed.
    Stdin,
    /// JSON records from every partition of a Kafka topic (`kafka://BROKERS/TOPIC`).
    Kafka(KafkaTopic),
}

impl SourceSpec {
    /// Parses `gen`, `file:PATH` or `stdin`.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "gen" => Ok(SourceSpec::Generator),
            "stdin" | "-" => Ok(SourceSpec::Stdin),
            _ => {
                if let Some(topic) = KafkaTopic::parse("--source", text)? {
                    return Ok(SourceSpec::Kafka(topic));
                }
                match text.strip_prefix("file:") {
                    Some(path) if !path.is_empty() => Ok(SourceSpec::File(PathBuf::from(path))),
                    _ => Err(Error::config(
                        "--source",
                        text,
                        "use gen, file:PATH (a JSON-lines file or a directory of them), stdin or kafka://HOST:PORT/TOPIC",
                    )),
                }
            }
        }
    }

    /// Parses `--source`'s value: `NAME=URI` gives the source of the pipeline's input `NAME`,
    /// a plain `URI` the source of its only input.
    pub fn parse_named(text: &str) -> Result<(Option<String>, Self)> {
        let (name, uri) = crate::io::split_name(text);
        Ok((name.map(String::from), Self::parse(uri)?))
    }

    /// What identifies this input across restarts (kept in the state directory): a file or
    /// directory by its canonical path (so `tx.jsonl`, `./tx.jsonl` and its absolute path are
    /// one source), a Kafka topic without its brokers (which may change), else the spec itself.
    /// Fails, naming the path, when a file source does not exist.
    pub fn identity(&self) -> Result<String> {
        Ok(match self {
            SourceSpec::Kafka(topic) => format!("kafka:{}", topic.topic),
            SourceSpec::File(path) => {
                let canonical = std::fs::canonicalize(path)
                    .map_err(|e| Error::io("cannot open the source (--source)", path, e))?;
                format!("file:{}", canonical.display())
            }
            other => other.to_string(),
        })
    }
}

impl std::fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSpec::Generator => f.write_str("gen"),
            SourceSpec::File(p) => write!(f, "file:{}", p.display()),
            SourceSpec::Stdin => f.write_str("stdin"),
            SourceSpec::Kafka(topic) => topic.fmt(f),
        }
    }
}

/// Decodes one line of a file or of standard input into a record, or describes why it is
/// malformed: [`decode_json_line`] unless the pipeline gives a faster one
/// ([`Pipeline::decode_lines_with`](crate::pipeline::Pipeline::decode_lines_with)).
pub type LineDecoder<R> = fn(&[u8]) -> std::result::Result<R, String>;

/// Decodes one JSON line into `R`, or describes why it is malformed.
///
/// The line is checked to be UTF-8 once, as a whole (std's check runs through ASCII a word at
/// a time), and then parsed as text: parsing bytes would check each string on its own, which
/// took a twentieth of a Nexmark query's time. A line that is not UTF-8 is parsed as bytes, so
/// its error names where the bad byte is, as before.
pub fn decode_json_line<R: serde::de::DeserializeOwned>(
    line: &[u8],
) -> std::result::Result<R, String> {
    match std::str::from_utf8(line) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(line),
    }
    .map_err(|e| e.to_string())
}

/// Strips a trailing `\r` and reports whether the line holds anything but white space.
pub(crate) fn trim_line(line: &[u8]) -> Option<&[u8]> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(SourceSpec::parse("gen").unwrap(), SourceSpec::Generator);
        assert_eq!(
            SourceSpec::parse("file:tx.jsonl").unwrap(),
            SourceSpec::File("tx.jsonl".into())
        );
        assert_eq!(
            SourceSpec::parse_named("users=file:u=1.jsonl").unwrap(),
            (Some("users".into()), SourceSpec::File("u=1.jsonl".into()))
        );
        assert_eq!(
            SourceSpec::parse_named("file:a=b.jsonl").unwrap(),
            (None, SourceSpec::File("a=b.jsonl".into()))
        );
        let err = SourceSpec::parse("kafkaa://x").unwrap_err().to_string();
        assert!(
            err.contains("--source") && err.contains("file:PATH"),
            "{err}"
        );
    }
}
