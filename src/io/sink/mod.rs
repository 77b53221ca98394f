//! Sinks: each epoch's results, late records and dead letters are first *staged* by the actor
//! that produced them, then *committed* by the supervisor once the epoch is recorded, so a
//! replayed epoch never makes the same output visible twice.

mod blackhole;
mod client_runtime;
mod delta;
mod file;
mod options;
mod outputs;
mod parquet;
mod postgres;
mod staging_file;
mod stdout;
mod sync_queue;
mod upsert;

pub use crate::io::kafka::sink::{headers as kafka_headers, KafkaSink, RecordId};
pub use blackhole::BlackholeSink;
pub use delta::{optimize as optimize_delta, DeltaSink, DeltaTarget};
pub use file::{FileFormat, FileSink};
pub use options::{apply_sink_options, parse_size};
pub use outputs::Outputs;
pub use postgres::{PostgresSink, PostgresTarget, SslMode, Tls};
pub use staging_file::StagingFile;
pub use stdout::StdoutSink;

use crate::checkpoint::Epoch;
use crate::io::kafka::{KafkaSettings, KafkaTopic};
use crate::{Error, Result};
use std::path::PathBuf;

/// The three outputs of a job.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum OutputStream {
    /// The pipeline's results.
    Results,
    /// Records that arrived behind the watermark.
    Late,
    /// Input that could not be decoded.
    DeadLetter,
    /// The results of a pipeline's named output `i ≥ 1` (output 0's are `Results`): the
    /// [`Outputs`] sink hands them to output `i`'s own sink as its results, so no other sink
    /// sees this stream (those that did would write it as results).
    Named(u8),
    /// A chained pipeline's exchange batches on their way through the repartition topic of a
    /// consumer group (see [`crate::io::kafka::repartition`]): only the
    /// [`Repartitioned`](crate::io::kafka::repartition::Repartitioned) sink takes them.
    Repartition,
}

impl OutputStream {
    /// All streams, in commit order.
    pub const ALL: [OutputStream; 3] = [
        OutputStream::Results,
        OutputStream::Late,
        OutputStream::DeadLetter,
    ];

    /// The folder name used for this stream (results live at the top of the sink directory).
    pub fn dir_name(self) -> &'static str {
        match self {
            OutputStream::Results | OutputStream::Named(_) => "results",
            OutputStream::Repartition => "repartition",
            OutputStream::Late => "late",
            OutputStream::DeadLetter => "dead-letter",
        }
    }
}

/// One writer's JSON lines for one epoch and stream, with each line's record key when the
/// stream is keyed (results are, by the key that produced them; the Kafka sink sends them as
/// record keys, other sinks ignore them).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lines {
    /// The JSON lines, each ending in a newline.
    pub bytes: Vec<u8>,
    /// One key per line, each as its length (u32, little-endian) and its bytes; empty when the
    /// lines have no keys.
    pub keys: Vec<u8>,
}

impl Lines {
    /// Lines without keys.
    pub fn unkeyed(bytes: Vec<u8>) -> Self {
        Lines {
            bytes,
            keys: Vec::new(),
        }
    }

    /// Appends the key of the next line, written by `write`.
    pub fn push_key(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let at = self.keys.len();
        self.keys.extend_from_slice(&[0; 4]);
        write(&mut self.keys);
        let len = (self.keys.len() - at - 4) as u32;
        self.keys[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }

    /// The keys, in line order (none when the lines have no keys).
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = &self.keys[..];
        std::iter::from_fn(move || {
            let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let key = rest.get(4..4 + len)?;
            rest = &rest[4 + len..];
            Some(key)
        })
    }
}

/// One writer's staged output for one epoch and stream.
#[derive(Debug)]
pub struct Staged {
    /// The epoch it belongs to.
    pub epoch: Epoch,
    /// Which output.
    pub stream: OutputStream,
    /// Where the bytes wait until commit.
    pub payload: StagedPayload,
}

impl Staged {
    /// Output held in memory until commit, or `None` when there is nothing to hold: what sinks
    /// that write at commit time (stdout, measuring probes) stage.
    pub fn in_memory(epoch: Epoch, stream: OutputStream, bytes: Vec<u8>) -> Option<Staged> {
        (!bytes.is_empty()).then_some(Staged {
            epoch,
            stream,
            payload: StagedPayload::Bytes(bytes),
        })
    }
}

impl Staged {
    /// `writer`'s `lines` held in memory until commit, or `None` when there are none: what
    /// sinks that write at commit time per writer (Kafka, PostgreSQL) stage.
    pub fn lines(epoch: Epoch, stream: OutputStream, writer: &str, lines: Lines) -> Option<Staged> {
        (!lines.bytes.is_empty()).then(|| Staged {
            epoch,
            stream,
            payload: StagedPayload::Lines {
                writer: writer.to_string(),
                lines,
            },
        })
    }
}

/// Where staged bytes wait.
#[derive(Debug)]
pub enum StagedPayload {
    /// A complete file in the staging folder, renamed to `target` on commit.
    File {
        /// The staged file.
        staged: PathBuf,
        /// Its committed name.
        target: PathBuf,
    },
    /// Bytes held in memory (stdout sink).
    Bytes(Vec<u8>),
    /// JSON lines (and their keys) held in memory with the writer that produced them (Kafka
    /// sink).
    Lines {
        /// The writer (`p003`, `src`).
        writer: String,
        /// The lines.
        lines: Lines,
    },
}

/// A sink that makes each epoch's output visible once.
pub trait EpochSink: Send + Sync {
    /// Stages `bytes` (JSON lines) written by `writer` (e.g. `p003`, `src`) for `epoch`.
    /// Returns `None` when there is nothing to stage or that output was committed before.
    fn stage(
        &self,
        epoch: Epoch,
        stream: OutputStream,
        writer: &str,
        bytes: Vec<u8>,
    ) -> Result<Option<Staged>>;
    /// Whether [`stage_keyed`](Self::stage_keyed) uses the lines' keys (Kafka's record keys):
    /// for a sink that does not, results are written without them. False by default.
    fn keyed(&self) -> bool {
        false
    }
    /// Whether the sink drops every result (the blackhole): partitions then count their
    /// results without writing them as JSON lines, as Flink's `blackhole` connector takes rows
    /// without serializing them. False by default.
    fn drops_results(&self) -> bool {
        false
    }
    /// Stages `lines` with their keys; sinks without record keys (all but Kafka) stage the
    /// bytes alone.
    fn stage_keyed(
        &self,
        epoch: Epoch,
        stream: OutputStream,
        writer: &str,
        lines: Lines,
    ) -> Result<Option<Staged>> {
        self.stage(epoch, stream, writer, lines.bytes)
    }
    /// Starts staging `writer`'s output of `epoch` in `stream` in parts, as it is written (see
    /// [`StagingFile`]), for output too large to hold whole; `None` when this sink takes each
    /// output whole (the default; only the JSON-lines file sink writes in parts).
    fn stage_in_parts(
        &self,
        epoch: Epoch,
        stream: OutputStream,
        writer: &str,
    ) -> Result<Option<StagingFile>> {
        let _ = (epoch, stream, writer);
        Ok(None)
    }
    /// Where committed output of `stream` can be found, for messages (`out/dead-letter/`,
    /// a topic name, `stderr`).
    fn location(&self, stream: OutputStream) -> String;
    /// Makes an epoch's staged output visible. Called once per epoch, in epoch order, after the
    /// epoch's record is durable; `stats` describes the epoch (for sinks that measure).
    fn commit(&self, epoch: Epoch, staged: Vec<Staged>, stats: &EpochStats) -> Result<()>;
    /// Called once at start: output staged for epochs up to `committed` is complete and is made
    /// visible now; staged output of later recorded epochs (up to `recorded`) waits for their
    /// replay; anything else left over is discarded.
    fn recover(&self, committed: Epoch, recorded: Epoch) -> Result<()>;
    /// Called at start by a job whose state (`state`, described for messages) accounts for the
    /// output of epochs up to `recorded`: committed output of later epochs in the sink is another job's, or that of
    /// state that was lost, and would hide this job's results. It is refused, naming both, or
    /// deleted when `overwrite`. Sinks that cannot tell (stdout, Kafka) accept.
    fn claim_output(&self, _recorded: Epoch, _state: &str, _overwrite: bool) -> Result<()> {
        Ok(())
    }
    /// Whether a committed output survives a restart (decides if recovery can skip it).
    fn exactly_once(&self) -> bool;
    /// Called at start before output that another run may have made visible in part is
    /// committed again: each `(writer, epoch)` in `resent` is about to be recommitted, and the
    /// sink must skip what of it is already visible. Sinks whose `stage` already refuses
    /// committed output (files) need do nothing.
    fn recover_resent(&self, resent: &[(String, Epoch)]) -> Result<()> {
        let _ = resent;
        Ok(())
    }
}

/// The writer name of key partition `partition` (`p003`): how its output is staged and named.
pub fn writer_name(partition: u32) -> String {
    format!("p{partition:03}")
}

/// What a committed epoch held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EpochStats {
    /// Records read from the source.
    pub records_in: u64,
    /// Results.
    pub outputs: u64,
    /// Late records.
    pub late: u64,
    /// Dead letters.
    pub dead_letters: u64,
    /// The epoch's watermark.
    pub watermark: crate::time::Millis,
    /// The epoch ended a bounded input (its watermark is the end of time).
    pub final_epoch: bool,
}

/// A sink as named on the command line, or one supplied by an embedding program.
#[derive(Debug, Clone)]
pub enum SinkSpec {
    /// JSON lines on standard output; late records and dead letters on standard error.
    Stdout,
    /// Results made and dropped (to measure a pipeline as Flink's Nexmark does); late records
    /// and dead letters on standard error.
    Blackhole,
    /// Exactly-once epoch files under a directory.
    File(PathBuf),
    /// Exactly-once epoch files under a directory, results as Parquet (`parquet:DIR`).
    Parquet(PathBuf),
    /// Records in a Kafka topic (`kafka://BROKERS/TOPIC`), exactly once by default.
    Kafka(KafkaTopic),
    /// Rows in a PostgreSQL table (`postgres://USER@HOST:PORT/DB?table=T`), exactly once.
    Postgres(PostgresTarget),
    /// Rows in a Delta Lake table (`delta:PATH`), exactly once.
    Delta(DeltaTarget),
    /// A sink object of the embedding program (e.g. the load generator's latency probe).
    Custom(CustomSink),
}

/// A program-supplied sink (see [`SinkSpec::Custom`]).
#[derive(Clone)]
pub struct CustomSink(pub std::sync::Arc<dyn EpochSink>);

impl std::fmt::Debug for CustomSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomSink")
    }
}

/// What opening a sink may need to know about its job.
#[derive(Debug, Clone, Copy)]
pub struct SinkContext<'a> {
    /// The number of key partitions (and of partitions for Kafka topics the sink creates).
    pub partitions: u32,
    /// The job's application id (prefix of its Kafka topics).
    pub app_id: &'a str,
    /// Kafka client settings.
    pub kafka: &'a KafkaSettings,
    /// File sink: write through folders that are symbolic links.
    pub follow_symlinks: bool,
}

impl SinkSpec {
    /// Parses `stdout`, `blackhole`, `file:DIR`, `parquet:DIR`, `kafka://BROKERS/TOPIC`,
    /// `postgres://USER@HOST:PORT/DB?table=T` or `delta:PATH`.
    pub fn parse(text: &str) -> Result<Self> {
        if let Some(topic) = KafkaTopic::parse("--sink", text)? {
            return Ok(SinkSpec::Kafka(topic));
        }
        if let Some(target) = PostgresTarget::parse(text)? {
            return Ok(SinkSpec::Postgres(target));
        }
        if let Some(target) = DeltaTarget::parse(text)? {
            return Ok(SinkSpec::Delta(target));
        }
        let path = |prefix| text.strip_prefix(prefix).filter(|p| !p.is_empty());
        if text == "stdout" || text == "-" {
            Ok(SinkSpec::Stdout)
        } else if text == "blackhole" {
            Ok(SinkSpec::Blackhole)
        } else if let Some(dir) = path("file:") {
            Ok(SinkSpec::File(PathBuf::from(dir)))
        } else if let Some(dir) = path("parquet:") {
            Ok(SinkSpec::Parquet(PathBuf::from(dir)))
        } else {
            Err(Error::config(
                "--sink",
                text,
                "use stdout, blackhole (results dropped, to measure a pipeline), file:DIR (a directory for exactly-once epoch files), parquet:DIR (the same, results as Parquet), kafka://HOST:PORT/TOPIC, postgres://USER@HOST:PORT/DB?table=NAME or delta:PATH (a Delta Lake table)",
            ))
        }
    }

    /// Parses `--sink`'s value: `NAME=URI` gives the sink of the pipeline's output `NAME`, a
    /// plain `URI` the sink of its first output.
    pub fn parse_named(text: &str) -> Result<(Option<String>, Self)> {
        let (name, uri) = crate::io::split_name(text);
        Ok((name.map(String::from), Self::parse(uri)?))
    }

    /// Opens the sink.
    pub fn open(&self, context: SinkContext<'_>) -> Result<std::sync::Arc<dyn EpochSink>> {
        Ok(match self {
            SinkSpec::Stdout => std::sync::Arc::new(StdoutSink),
            SinkSpec::Blackhole => std::sync::Arc::new(BlackholeSink),
            SinkSpec::File(dir) => {
                std::sync::Arc::new(FileSink::open(dir, context.follow_symlinks)?)
            }
            SinkSpec::Parquet(dir) => std::sync::Arc::new(FileSink::open_as(
                dir,
                context.follow_symlinks,
                FileFormat::Parquet,
            )?),
            SinkSpec::Kafka(topic) => std::sync::Arc::new(KafkaSink::open(
                topic,
                context.kafka,
                context.app_id,
                context.partitions,
            )?),
            SinkSpec::Postgres(target) => {
                std::sync::Arc::new(PostgresSink::open(target, context.app_id)?)
            }
            SinkSpec::Delta(target) => {
                std::sync::Arc::new(DeltaSink::open(target, context.app_id, context.partitions)?)
            }
            SinkSpec::Custom(sink) => sink.0.clone(),
        })
    }
}

impl SinkSpec {
    /// What identifies this output across restarts (kept in the state directory): a
    /// directory by its canonical path (created when missing, as the sink would), a Kafka topic
    /// without its brokers, else the spec itself.
    pub fn identity(&self) -> Result<String> {
        let canonical = |dir: &PathBuf| {
            std::fs::create_dir_all(dir)
                .and_then(|_| std::fs::canonicalize(dir))
                .map_err(|e| Error::io("cannot create the sink directory (--sink)", dir, e))
        };
        Ok(match self {
            SinkSpec::File(dir) => format!("file:{}", canonical(dir)?.display()),
            SinkSpec::Parquet(dir) => format!("parquet:{}", canonical(dir)?.display()),
            SinkSpec::Delta(target) => DeltaTarget {
                path: canonical(&target.path)?,
                ..target.clone()
            }
            .to_string(),
            SinkSpec::Kafka(topic) => format!("kafka:{}", topic.topic),
            other => other.to_string(),
        })
    }
}

impl std::fmt::Display for SinkSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkSpec::Stdout => f.write_str("stdout"),
            SinkSpec::Blackhole => f.write_str("blackhole"),
            SinkSpec::File(p) => write!(f, "file:{}", p.display()),
            SinkSpec::Parquet(p) => write!(f, "parquet:{}", p.display()),
            SinkSpec::Kafka(topic) => topic.fmt(f),
            SinkSpec::Postgres(target) => target.fmt(f),
            SinkSpec::Delta(target) => target.fmt(f),
            SinkSpec::Custom(_) => f.write_str("custom"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_one_key_per_line_in_order() {
        let mut lines = Lines::unkeyed(b"{}\n{}\n{}\n".to_vec());
        assert_eq!(lines.keys().count(), 0);
        for key in [&b"42"[..], b"", b"user-7"] {
            lines.push_key(|out| out.extend_from_slice(key));
        }
        let keys: Vec<&[u8]> = lines.keys().collect();
        assert_eq!(keys, vec![&b"42"[..], b"", b"user-7"]);
    }
}
