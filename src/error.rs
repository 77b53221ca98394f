//! The engine's error type: every variant names the input or place that failed and what to do.

use std::path::PathBuf;

/// Errors raised by the engine. Messages are written for the person running the job.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag the job cannot honour (it takes no value, so there is none to blame).
    #[error("{flag} cannot be used here: {reason}")]
    Refused {
        /// The flag, e.g. `--group`.
        flag: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// A command-line or configuration value is wrong.
    #[error("invalid {what} `{value}`: {hint}")]
    Config {
        /// The flag or setting, e.g. `--trigger`.
        what: String,
        /// The value that was given.
        value: String,
        /// What is accepted instead.
        hint: String,
    },
    /// A file or directory could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What spate was doing, e.g. "cannot open source file".
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The sled state store failed.
    #[error("state store {path}: {source}{hint}")]
    State {
        /// The state directory.
        path: PathBuf,
        /// The sled error.
        source: sled::Error,
        /// What to do about it, when the error says ("" otherwise).
        hint: &'static str,
    },
    /// The state directory is damaged: a stored value fails its checksum or cannot be decoded,
    /// a partition's state does not match its checkpoint, or sled cannot read its files.
    #[error("the --state directory {path} is damaged ({place}: {detail}), so the job stops rather than resume from state it cannot trust; restore the directory from a copy, or start over with a new --state directory and a new sink (or --overwrite); a Kafka-source job whose directory is deleted restores its state from its changelog topic")]
    DamagedState {
        /// The state directory.
        path: PathBuf,
        /// Which tree or record.
        place: String,
        /// What is wrong.
        detail: String,
    },
    /// A changelog record could not be decoded or is incomplete.
    #[error("the changelog record {place} is damaged: {detail}; the job cannot restore its state from it: start over with a new --app-id (a new changelog topic), a new --state directory and a new sink")]
    DamagedChangelog {
        /// Which tree or record.
        place: String,
        /// What failed to decode.
        detail: String,
    },
    /// The state directory belongs to a different job configuration.
    #[error("the --state directory {path} was created by {stored}, not {requested}; use a new --state directory or the original settings")]
    StateMismatch {
        /// The state directory.
        path: PathBuf,
        /// What the directory holds.
        stored: String,
        /// What this run asked for.
        requested: String,
    },
    /// A replayed epoch did not end where it was recorded to end: the input was truncated,
    /// replaced or edited since (Spark's `failOnDataLoss`).
    #[error("the input changed since epoch {epoch} was recorded: its replay should end at {recorded} but {found}; restore the original input, or start over with a new --state directory and a new sink")]
    InputChanged {
        /// The epoch being replayed.
        epoch: u64,
        /// Where it was recorded to end.
        recorded: String,
        /// What the replay found instead.
        found: String,
    },
    /// A file source's files no longer match what the job read: a file it read was removed,
    /// replaced or shortened, or a new file sorts before one it already read.
    #[error("the source {input} changed under the job: {detail}; spate reads a directory's files once each in name order, following only the last one, so new files must sort after those already there and files already read must stay as they are; restore the input, or start over with a new --state directory and a new sink")]
    SourceChanged {
        /// The source (`file:PATH`).
        input: String,
        /// What changed.
        detail: String,
    },
    /// A Kafka broker acknowledged nothing for `--broker-timeout` while records waited: it is
    /// down, unreachable or stuck.
    #[error("Kafka at {brokers} acknowledged none of {what} for {} (--broker-timeout), with {in_flight} records waiting: the broker is down, unreachable or stuck; the job stops at its last checkpoint, and a restart resends what was not acknowledged, exactly once", humantime::format_duration(*waited))]
    BrokerGone {
        /// The bootstrap servers.
        brokers: String,
        /// What was being sent.
        what: String,
        /// How long nothing was acknowledged.
        waited: std::time::Duration,
        /// Records queued or unacknowledged.
        in_flight: u64,
    },
    /// A stop was requested (SIGINT, SIGTERM) while recorded epochs were being replayed: the
    /// job stopped at its last checkpoint, with nothing new committed.
    #[error("stopped while replaying epoch {epoch}; the --state directory still holds its last checkpoint, and a restart replays from there")]
    StoppedInReplay {
        /// The epoch being replayed.
        epoch: u64,
    },
    /// The first lines of the input were all malformed: it is evidently not what the pipeline
    /// reads (another format, another event type, the wrong file).
    #[error("the input does not look like this pipeline's: its first {dead} lines were all malformed, the first with: {first_error}; they are in {location}; check --source and the pipeline")]
    UnreadableInput {
        /// Dead letters so far.
        dead: u64,
        /// Why the first one was rejected.
        first_error: String,
        /// Where the dead letters went.
        location: String,
    },
    /// More of the input was malformed than `--max-dead-letter-ratio` allows.
    #[error("{dead} of {lines} lines were malformed, more than --max-dead-letter-ratio {max_ratio} allows; they are in {location}")]
    TooManyDeadLetters {
        /// Dead letters so far.
        dead: u64,
        /// Lines read so far.
        lines: u64,
        /// The limit.
        max_ratio: f64,
        /// Where the dead letters went.
        location: String,
    },
    /// A file sink already holds committed output that the job's state does not account for.
    #[error("the sink directory {sink} already holds {files} committed output files (epochs {first} to {last}) that {state} does not account for: another job's output, or that of state that was lost or temporary; use a new sink directory, or pass --overwrite to delete them")]
    ForeignOutput {
        /// The sink directory.
        sink: PathBuf,
        /// The job's state, described.
        state: String,
        /// How many committed files are not accounted for.
        files: usize,
        /// The oldest epoch among them.
        first: u64,
        /// The newest.
        last: u64,
    },
    /// A pipeline's operator panicked more often than the restart budget allows.
    #[error("partition {partition} failed {attempts} times, last: {message}; the job stopped at its last checkpoint and resumes from there when restarted")]
    PartitionFailed {
        /// The key partition.
        partition: u32,
        /// How many restarts were tried.
        attempts: u32,
        /// The panic message.
        message: String,
    },
    /// The reader of an output went away (e.g. `spate run … | head` exited): the job stops, and
    /// the command line treats it as a normal end.
    #[error("the reader of {what} went away")]
    OutputClosed {
        /// The output, e.g. "stdout".
        what: &'static str,
    },
    /// The pipeline's shared model could not be decoded, updated or read from a file.
    #[error("the pipeline's model ({model}): {reason}")]
    Model {
        /// The model's type.
        model: &'static str,
        /// What failed.
        reason: String,
    },
    /// A sink that writes to a server or table (PostgreSQL, Delta Lake) failed.
    #[error("{sink}: cannot {action}: {detail}")]
    Sink {
        /// The sink as `--sink` names it (passwords hidden).
        sink: String,
        /// What it was doing, e.g. "commit epoch 7".
        action: String,
        /// What went wrong, and what to do.
        detail: String,
    },
    /// A Kafka client call failed: the broker did not answer in time, refused the request, or
    /// the client's settings are wrong.
    #[error("{action}: {source}")]
    Kafka {
        /// What spate was doing, naming the topic or group, e.g. "cannot read the group's
        /// offsets".
        action: String,
        /// The client's error.
        source: rdkafka::error::KafkaError,
    },
    /// A topic spate keeps for the job (its changelog, its repartition topic) has another
    /// partition count than the job has key partitions.
    #[error("the {role} topic `{topic}` has {found} partitions but the job has {partitions} key partitions; {advice}")]
    TopicPartitions {
        /// What the topic is for, e.g. "changelog".
        role: &'static str,
        /// The topic's name.
        topic: String,
        /// Its partition count.
        found: u32,
        /// The job's key partitions.
        partitions: u32,
        /// What to do.
        advice: &'static str,
    },
    /// A Kafka source cannot resume where its checkpoint says: the broker no longer holds the
    /// recorded offset.
    #[error("{place}: {what} is not in the topic any more ({why}); the records from there on were deleted (retention) or the topic was recreated, so the job cannot resume exactly; start it with a new --state directory to read from the earliest offset")]
    OffsetGone {
        /// The source and partition, e.g. "partition 2 of kafka://…/tx".
        place: String,
        /// The offset, e.g. "the recorded offset 1200".
        what: String,
        /// What the broker says.
        why: String,
    },
    /// A thread of the runtime could not be started (the system is out of threads or memory).
    #[error("cannot start the {name} thread: {source}")]
    Thread {
        /// The thread's role, e.g. "source".
        name: &'static str,
        /// The system's error.
        source: std::io::Error,
    },
    /// A Kafka topic spate needs cannot be used: the broker refuses it, cannot create it, or
    /// does not show it after creating it.
    #[error("Kafka topic `{topic}` at {brokers}: {problem}; {hint}")]
    KafkaTopic {
        /// The topic.
        topic: String,
        /// The bootstrap brokers asked.
        brokers: String,
        /// What is wrong, e.g. "cannot be created: …" or "the broker answers …".
        problem: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// A value could not be written as JSON: a type whose `Serialize` fails (a map with keys
    /// that are not strings, a custom impl returning an error).
    #[error("cannot write {what} as JSON: {source}")]
    ToJson {
        /// What was written, e.g. "a result".
        what: &'static str,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// A thread of spate's own panicked: a bug, reported rather than hidden.
    #[error("{what} panicked, which is a bug in spate: please report it with the log above; the job stops and, restarted, resumes from its last checkpoint")]
    Panicked {
        /// The thread or task, e.g. "a changelog reader".
        what: String,
    },
    /// A result a table sink writes as a row is not a JSON object.
    #[error("a result is not a JSON object, which a row of a table needs ({source}): give the pipeline results that are objects, or write them to a file or Kafka sink")]
    NotAnObject {
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// A partition's output in Kafka goes on past the changelog checkpoint a process resumes
    /// that partition from (the resume reads the changelog again for a while first): resending
    /// from there would make results twice.
    #[error("Kafka topic {topic} partition {partition} holds output of epoch {found} from {writer}, after the newest checkpoint of that key partition the changelog gave this process (epoch {restored}), and still did after reading the changelog again for 30 s; resuming from it would write results twice, so the job stops. Another process most likely still writes this partition's output (one that hung past its session timeout: kill it, then restart this one)")]
    OutputAhead {
        /// The output topic.
        topic: String,
        /// Its partition holding the newer output.
        partition: i32,
        /// The writer (key partition) whose output it is.
        writer: String,
        /// The newer output's epoch.
        found: u64,
        /// The epoch of the checkpoint resumed from.
        restored: u64,
    },
    /// The state directory holds a checkpoint of a partition that the job's changelog topic
    /// does not.
    #[error("the state directory {state} holds a checkpoint of partition {partition} (epoch {epoch}) that the changelog topic {topic} does not: the topic was deleted or belongs to another job; restore the topic, or start over with a new --state directory and --app-id")]
    ChangelogLost {
        /// The state directory.
        state: PathBuf,
        /// The key partition.
        partition: u32,
        /// The epoch of its local checkpoint.
        epoch: u64,
        /// The changelog topic.
        topic: String,
    },
    /// A record of a repartition topic is not an exchange batch spate wrote for this job.
    #[error("{place} holds a record that is not an exchange batch of this job ({detail}); the topic belongs to spate: use another --app-id, or delete the topic only together with the job's state")]
    ForeignExchange {
        /// Where the record is: topic, partition and offset, or the partitions between which
        /// it was exchanged.
        place: String,
        /// Why it is not one.
        detail: String,
    },
    /// The job must read input again that its source cannot give twice (stdin).
    #[error("a partition must replay its input, but {source_name} cannot be read again; rerun with a file or generator source (the state directory keeps the last checkpoint)")]
    NotReplayable {
        /// The source.
        source_name: &'static str,
    },
    /// A Kafka partition gave nothing for a while although records were expected there.
    #[error("timed out reading {what} at offset {offset}: the broker answered nothing for {}", humantime::format_duration(*waited))]
    KafkaReadTimeout {
        /// The partition read, and why.
        what: String,
        /// The offset the read waited at.
        offset: i64,
        /// How long it waited.
        waited: std::time::Duration,
    },
    /// Kafka refused records a producer sent (a delivery report with an error).
    #[error(
        "Kafka did not accept {what}: {error}; the job stops and a restart resends it exactly once"
    )]
    KafkaRejected {
        /// What was sent, e.g. "the output of epoch 7".
        what: String,
        /// The first delivery error.
        error: String,
    },
    /// A key partition met an error it cannot go on from (its state store failed, it panicked
    /// too often): the job stops with it.
    #[error("partition {partition}: {source}")]
    InPartition {
        /// The partition.
        partition: u32,
        /// What went wrong there.
        source: Box<Error>,
    },
    /// A part of the running job stopped answering the rest: an actor's mailbox closed, which
    /// only a crash of that part (a bug) does.
    #[error("{part} stopped answering ({detail}), which is a bug in spate: please report it with the log above; the job stops and, restarted, resumes from its last checkpoint")]
    PartGone {
        /// The part, e.g. "partition 3" or "the job supervisor".
        part: String,
        /// What the actor system said.
        detail: String,
    },
}

/// Whether sled could not open its database because another open one holds the directory's
/// lock: another process, or one this process closed whose files sled has not let go yet.
pub(crate) fn is_locked(source: &sled::Error) -> bool {
    matches!(source, sled::Error::Io(e)
        if e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("acquire lock"))
}

/// Advice for a state store failure: a lock held by another process, a full disk, a read-only
/// file system or damaged data each want something else.
fn state_hint(source: &sled::Error) -> &'static str {
    use std::io::ErrorKind;
    match source {
        e if is_locked(e) => {
            " (is another spate using this --state directory? stop it, or use another directory)"
        }
        sled::Error::Io(e) if e.kind() == ErrorKind::StorageFull => {
            " (the disk is full: free space, then restart; the state keeps its last checkpoint)"
        }
        sled::Error::Io(e) if e.kind() == ErrorKind::ReadOnlyFilesystem => {
            " (the file system is read-only: put --state on a writable one)"
        }
        sled::Error::Corruption { .. } => {
            " (the state is damaged: restore the directory from a copy, or start over with a new --state directory and a new sink)"
        }
        _ => "",
    }
}

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// [`Error::State`] with the advice that fits what actually failed.
    pub fn state(path: impl Into<PathBuf>, source: sled::Error) -> Self {
        let hint = state_hint(&source);
        Error::State {
            path: path.into(),
            source,
            hint,
        }
    }

    /// Shorthand for [`Error::Kafka`].
    pub fn kafka(action: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        Error::Kafka {
            action: action.into(),
            source,
        }
    }

    /// Shorthand for [`Error::ToJson`].
    pub fn to_json(what: &'static str) -> impl FnOnce(serde_json::Error) -> Self {
        move |source| Error::ToJson { what, source }
    }

    /// Shorthand for [`Error::Thread`].
    pub fn thread(name: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Error::Thread { name, source }
    }

    /// Shorthand for [`Error::Config`].
    pub fn config(what: &str, value: impl ToString, hint: impl ToString) -> Self {
        Error::Config {
            what: what.to_string(),
            value: value.to_string(),
            hint: hint.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_errors_advise_what_fits_the_failure() {
        let io = |kind, text: &str| sled::Error::Io(std::io::Error::new(kind, text.to_string()));
        let text = |e| Error::state("st", e).to_string();
        let locked = text(io(
            std::io::ErrorKind::Other,
            "could not acquire lock on st/db",
        ));
        assert!(locked.contains("another spate"), "{locked}");
        let full = text(io(
            std::io::ErrorKind::StorageFull,
            "no space left on device",
        ));
        assert!(
            full.contains("disk is full") && !full.contains("another spate"),
            "{full}"
        );
        let other = text(io(
            std::io::ErrorKind::PermissionDenied,
            "permission denied",
        ));
        assert!(other.ends_with("permission denied"), "{other}");
    }
}
