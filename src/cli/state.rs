//! `spate state inspect|get|erase --state DIR` on a stopped job's state directory: what it
//! holds, one key's state as JSON, and one key's erasure (a privacy request); `inspect` and
//! `get` also on a running job, read-only, with `--addr` (its metrics address). Plus `spate model
//! export`'s lookup of the job a directory belongs to.

use super::registry::{Registry, Runnable};
use crate::checkpoint::JobInfo;
use crate::state::{PartitionSummary, StateStore};
use crate::time::format_rfc3339;
use crate::{Error, Result};
use clap::Subcommand;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// `spate state …`.
#[derive(Subcommand, Debug)]
pub(super) enum StateCommand {
    /// What a job's state holds: its pipeline, epochs, erasures, and per key partition the
    /// checkpoint epoch, keys, bytes and timers (`--state DIR` of a stopped job, or `--addr` of a
    /// running one).
    Inspect {
        #[command(flatten)]
        job: JobArg,
    },
    /// Print one key's state as JSON `{"key","partition","state","timers"}` (`--state DIR` of a
    /// stopped job, or `--addr` of a running one); exit 1 when the key has none.
    Get {
        #[command(flatten)]
        job: JobArg,
        /// The key: JSON (`42`, `["retail","FR"]`) or the bare text of a string key.
        #[arg(long)]
        key: String,
    },
    /// Remove one key's state and record the erasure: from a stopped job's state directory
    /// (`--state DIR`; the job stopped with SIGTERM or ran to its end), or from a running job
    /// (`--addr`: its next epoch erases the key, also from its Kafka changelog, and no replay
    /// brings it back). Exit 1 when the key has none. Outputs already written are the sink's
    /// matter.
    Erase {
        #[command(flatten)]
        job: JobArg,
        /// The key: JSON (`42`, `["retail","FR"]`) or the bare text of a string key.
        #[arg(long)]
        key: String,
    },
}

/// Which job a command looks at: a stopped one's directory or a running one.
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub(super) struct JobArg {
    /// A stopped job's state directory.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// A running job's metrics address (`spate run --metrics-addr`).
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<String>,
}

/// Runs `command`; returns the exit code.
pub(super) fn run(registry: &Registry, command: &StateCommand) -> ExitCode {
    let result = match command {
        StateCommand::Inspect { job } => match (&job.state, &job.addr) {
            (Some(state), _) => inspect(registry, state),
            (None, Some(addr)) => inspect_running(addr),
            (None, None) => unreachable!("clap requires one"),
        }
        .map(|text| {
            print!("{text}");
            true
        }),
        StateCommand::Get { job, key } => match (&job.state, &job.addr) {
            (Some(state), _) => get(registry, state, key),
            (None, Some(addr)) => get_running(addr, key),
            (None, None) => unreachable!("clap requires one"),
        },
        StateCommand::Erase { job, key } => match (&job.state, &job.addr) {
            (Some(state), _) => erase(registry, state, key),
            (None, Some(addr)) => erase_running(addr, key),
            (None, None) => unreachable!("clap requires one"),
        },
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The job whose state is in `dir`: its store, identity and pipeline. `pipeline`, when given,
/// must be the job's.
pub(super) fn open_job(
    registry: &Registry,
    dir: &Path,
    pipeline: Option<&str>,
) -> Result<(StateStore, JobInfo, Arc<dyn Runnable>)> {
    let store = StateStore::open_existing(dir)?;
    let info: JobInfo = store.meta_value("job")?.ok_or_else(|| {
        Error::config(
            "--state",
            dir.display(),
            "no job has claimed this directory",
        )
    })?;
    if let Some(asked) = pipeline.filter(|p| *p != info.pipeline) {
        return Err(Error::config(
            "--pipeline",
            asked,
            format!("{} holds pipeline `{}`", store.describe(), info.pipeline),
        ));
    }
    let runnable = registry.get(&info.pipeline).ok_or_else(|| {
        Error::config(
            "--state",
            dir.display(),
            format!(
                "its pipeline `{}` is not one of this binary's",
                info.pipeline
            ),
        )
    })?;
    Ok((store, info, runnable))
}

/// The `spate state inspect` text.
fn inspect(registry: &Registry, dir: &Path) -> Result<String> {
    let (store, info, runnable) = open_job(registry, dir, None)?;
    let partitions = runnable.inspect_state(&store, info.partitions)?;
    let epochs = store.epochs_from(0)?;
    let mut text = format!(
        "{}: pipeline {}, {} key partitions\nsource {}\nsink {}\n",
        store.describe(),
        info.pipeline,
        info.partitions,
        info.source,
        info.sink
    );
    let _ = writeln!(
        text,
        "epochs: committed {}, recorded {}",
        store.committed()?,
        match (epochs.first(), epochs.last()) {
            (Some(first), Some(last)) => format!("{}..={}", first.epoch, last.epoch),
            _ => "none".into(),
        }
    );
    for e in crate::state::erasures(&store)? {
        let _ = writeln!(
            text,
            "erased: key {} from partition {} at epoch {}, {}",
            e.key, e.partition, e.epoch, e.at
        );
    }
    text.push_str(&partition_table(&partitions));
    Ok(text)
}

/// The `spate state inspect --addr` text: `GET /api/state` of the running job.
fn inspect_running(addr: &str) -> Result<String> {
    let (code, body) =
        super::http::get(addr, "/api/state").map_err(|why| unreachable_job(addr, why))?;
    if code != 200 {
        return Err(unreachable_job(
            addr,
            format!(
                "GET /api/state answered {code}: {}",
                String::from_utf8_lossy(&body).trim()
            ),
        ));
    }
    let reply: crate::metrics::StateReply = serde_json::from_slice(&body)
        .map_err(|e| unreachable_job(addr, format!("its /api/state is not spate's ({e})")))?;
    Ok(format!(
        "the running job at {addr}: pipeline {}, {} key partitions (keys and timers now, bytes as of each partition's last checkpoint)\n{}",
        reply.pipeline,
        reply.partitions.len(),
        partition_table(&reply.partitions)
    ))
}

/// `spate state get --addr`: prints the key's state in the running job (`GET /state/{key}`);
/// false when it has none.
fn get_running(addr: &str, key: &str) -> Result<bool> {
    let Some((_, body)) = ask_about_key(addr, key, Method::Get)? else {
        return Ok(false);
    };
    println!("{}", String::from_utf8_lossy(&body).trim());
    Ok(true)
}

/// `spate state erase --addr`: erases the key in the running job (`POST /state/erase`) and
/// says so once the erasure's epoch is committed; false when the key has no state.
fn erase_running(addr: &str, key: &str) -> Result<bool> {
    let Some((code, body)) = ask_about_key(addr, key, Method::Post)? else {
        return Ok(false);
    };
    if code == 202 {
        // Not confirmed: the erasure is queued, but its epoch was not committed in time.
        let text = String::from_utf8_lossy(&body);
        return Err(Error::config("--addr", addr, text.trim()));
    }
    let erasure: crate::state::Erasure = serde_json::from_slice(&body)
        .map_err(|e| unreachable_job(addr, format!("its erasure answer is not spate's ({e})")))?;
    eprintln!(
        "spate: erased the state of key {} from partition {} at the end of epoch {} in the running job at {addr} (its checkpoints, and a Kafka job's changelog, no longer hold it); outputs already written are the sink's to delete",
        erasure.key, erasure.partition, erasure.epoch
    );
    Ok(true)
}

/// How a command asks a running job about a key.
#[derive(Clone, Copy)]
enum Method {
    /// `GET /state/{key}`.
    Get,
    /// `POST /state/erase?key={key}`.
    Post,
}

/// Asks the running job at `addr` about `key`: a 2xx answer's code and body, or `None` (said
/// on stderr) when the key has no state there.
fn ask_about_key(
    addr: &str,
    key: &str,
    method: Method,
) -> Result<Option<(u16, hyper::body::Bytes)>> {
    let encoded = percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC);
    let (path, answer) = match method {
        Method::Get => {
            let path = format!("/state/{encoded}");
            (path.clone(), super::http::get(addr, &path))
        }
        Method::Post => {
            let path = format!("/state/erase?key={encoded}");
            (path.clone(), super::http::post(addr, &path))
        }
    };
    let (code, body) = answer.map_err(|why| unreachable_job(addr, why))?;
    let text = String::from_utf8_lossy(&body);
    match code {
        200..=299 => Ok(Some((code, body))),
        404 => {
            eprintln!("spate: key {key} has no state in the running job at {addr}");
            Ok(None)
        }
        400 => Err(Error::config("--key", key, text.trim())),
        _ => Err(unreachable_job(
            addr,
            format!("{path} answered {code}: {}", text.trim()),
        )),
    }
}

/// The error of a running job that does not answer as asked.
fn unreachable_job(addr: &str, why: String) -> Error {
    Error::config(
        "--addr",
        addr,
        format!("no running spate job answers there ({why}); give the job's --metrics-addr, or --state DIR for a stopped one"),
    )
}

/// One row per partition and a total.
fn partition_table(partitions: &[PartitionSummary]) -> String {
    let time = |t: Option<i64>| t.map_or("-".into(), format_rfc3339);
    let mut text = format!(
        "{:>9}  {:>10}  {:>10}  {:>12}  {:>8}  {:24}  {:24}\n",
        "partition", "checkpoint", "keys", "bytes", "timers", "oldest timer", "newest timer"
    );
    for p in partitions {
        let _ = writeln!(
            text,
            "{:>9}  {:>10}  {:>10}  {:>12}  {:>8}  {:24}  {:24}",
            p.partition,
            p.checkpoint_epoch,
            p.keys,
            p.bytes,
            p.timers,
            time(p.oldest_timer),
            time(p.newest_timer)
        );
    }
    let sum = |f: fn(&PartitionSummary) -> u64| partitions.iter().map(f).sum::<u64>();
    let _ = writeln!(
        text,
        "{:>9}  {:>10}  {:>10}  {:>12}  {:>8}  {:24}  {:24}",
        "total",
        "",
        sum(|p| p.keys),
        sum(|p| p.bytes),
        sum(|p| p.timers),
        time(partitions.iter().filter_map(|p| p.oldest_timer).min()),
        time(partitions.iter().filter_map(|p| p.newest_timer).max())
    );
    text
}

/// `spate state get`: prints the key's state; false when it has none.
fn get(registry: &Registry, dir: &Path, key: &str) -> Result<bool> {
    let (store, info, runnable) = open_job(registry, dir, None)?;
    match runnable.key_state(&store, info.partitions, key)? {
        Some(report) => {
            let json = serde_json::to_string(&report).map_err(Error::to_json("a key's state"))?;
            println!("{json}");
            Ok(true)
        }
        None => {
            eprintln!("spate: key {key} has no state in {}", store.describe());
            Ok(false)
        }
    }
}

/// `spate state erase`: removes the key's state; false when it has none.
fn erase(registry: &Registry, dir: &Path, key: &str) -> Result<bool> {
    let (store, info, runnable) = open_job(registry, dir, None)?;
    refuse_unsafe_erase(&store, &info)?;
    match runnable.erase_key(&store, info.partitions, key)? {
        Some(erasure) => {
            eprintln!(
                "spate: erased the state of key {} from partition {} (checkpoint of epoch {}) in {}; outputs already written are the sink's to delete",
                erasure.key,
                erasure.partition,
                erasure.epoch,
                store.describe()
            );
            Ok(true)
        }
        None => {
            eprintln!("spate: key {key} has no state in {}", store.describe());
            Ok(false)
        }
    }
}

/// Refuses to erase from a directory whose job would bring the key back: one that keeps its
/// state in a Kafka changelog (the changelog still holds it), or one that replays epochs at its
/// next start (their records of the key would be processed again).
fn refuse_unsafe_erase(store: &StateStore, info: &JobInfo) -> Result<()> {
    if info.source.contains("kafka:") {
        return Err(Error::config(
            "--state",
            store.path().display(),
            "this job reads Kafka and keeps its state in the Kafka changelog too, which would bring the key back at the next restore; erase the key while the job runs, with --addr HOST:PORT (its --metrics-addr) instead of --state: the erasure then reaches the changelog",
        ));
    }
    let last = store.epochs_from(0)?.last().map_or(0, |r| r.epoch);
    for p in 0..info.partitions {
        let checkpoint = store.partition(p)?.checkpoint()?.epoch;
        if checkpoint < last {
            return Err(Error::config(
                "--state",
                store.path().display(),
                format!("key partition {p} last checkpointed epoch {checkpoint}, but the job recorded epochs up to {last} (it was killed), so its next start replays them and would process the key's records again; run the job again and erase the key while it runs (--addr HOST:PORT, its --metrics-addr), or stop it with SIGTERM (or let it finish) and erase then"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(source: &str) -> JobInfo {
        JobInfo {
            pipeline: "tx-windows".into(),
            partitions: 2,
            source: source.into(),
            sink: "stdout".into(),
            generator_base_ms: 0,
            state_format: crate::checkpoint::STATE_FORMAT,
        }
    }

    #[test]
    fn a_kafka_jobs_directory_is_refused_because_its_changelog_would_restore_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(Some(dir.path())).unwrap();
        let refused = refuse_unsafe_erase(&store, &job("kafka:transactions")).unwrap_err();
        assert!(refused.to_string().contains("Kafka changelog"), "{refused}");
        assert!(refuse_unsafe_erase(&store, &job("gen")).is_ok());
    }
}
