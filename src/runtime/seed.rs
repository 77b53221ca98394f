//! Keyed state in and out as JSON lines `{"key":…,"state":…}`: `spate model export` writes every
//! key's state of a stopped job (its per-key models, for a pipeline that keeps them as keyed
//! state), and `spate run P --model FILE` starts a new job from such a file (a model trained
//! offline, or exported from another run): each key's state is placed in the key partition its
//! records will reach and written as that partition's starting checkpoint.

use super::PartitionCore;
use crate::io::source::SourceSpec;
use crate::key::{kafka_partition_of, partition_of};
use crate::operator::KeyedOperator;
use crate::state::{PartitionStore, StateStore, StoppedPartition};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::Path;

/// One key's state, as a line of the file.
#[derive(Serialize, Deserialize)]
struct KeyState<K, S> {
    key: K,
    state: S,
}

/// Writes the state of every key of partitions `0..partitions` in `store` (the first keyed
/// stage), sorted by key within each partition; returns how many keys.
pub fn export_keyed<Op: KeyedOperator>(
    store: &StateStore,
    partitions: u32,
    out: &mut dyn Write,
) -> Result<u64> {
    let mut written = 0;
    for p in 0..partitions {
        let entries = StoppedPartition::open(store, p)?.buckets::<Op::Key, Op::State>()?;
        let mut keys: Vec<_> = entries.into_iter().flat_map(|(_, b, _)| b).collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, entry) in keys {
            let line = KeyState {
                key,
                state: entry.state,
            };
            serde_json::to_writer(&mut *out, &line).map_err(Error::to_json("a key's state"))?;
            out.write_all(b"\n")
                .map_err(|e| Error::io("cannot write the state to", "standard output", e))?;
            written += 1;
        }
    }
    Ok(written)
}

/// Writes the keys' states of `file` as the starting checkpoint of a new job's `partitions`
/// partitions, each key where `source` routes its records. Refuses a store that already holds
/// checkpoints, and a line that is not a key and a state of this pipeline (naming its number).
pub fn seed_keyed<Op: KeyedOperator>(
    file: &Path,
    new_core: impl Fn() -> PartitionCore<Op>,
    (store, partitions, source): (&StateStore, u32, &SourceSpec),
) -> Result<u64> {
    let stores: Vec<PartitionStore> = (0..partitions)
        .map(|p| store.partition(p))
        .collect::<Result<_>>()?;
    if let Some(epoch) = stores
        .iter()
        .map(|s| s.checkpoint().map(|c| c.epoch))
        .find(|e| !matches!(e, Ok(0)))
    {
        return Err(Error::config(
            "--model",
            file.display(),
            format!(
                "--model starts a new job, and {} already holds checkpoints (epoch {}): use a new --state directory",
                store.describe(),
                epoch?
            ),
        ));
    }
    let reader = std::fs::File::open(file)
        .map_err(|e| Error::io("cannot read the --model file", file, e))?;
    let mut cores: Vec<PartitionCore<Op>> = (0..partitions).map(|_| new_core()).collect();
    let mut seeded = 0;
    for (n, line) in std::io::BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|e| Error::io("cannot read the --model file", file, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let KeyState { key, state } = serde_json::from_str::<KeyState<Op::Key, Op::State>>(&line)
            .map_err(|e| {
            Error::config(
                "--model",
                file.display(),
                format!(
                    "line {} is not a {{\"key\",\"state\"}} of this pipeline: {e}",
                    n + 1
                ),
            )
        })?;
        let p = match source {
            SourceSpec::Kafka(_) => kafka_partition_of(&key, partitions),
            _ => partition_of(&key, partitions),
        };
        cores[p as usize].seed(&key, state);
        seeded += 1;
    }
    for (core, store) in cores.iter_mut().zip(&stores) {
        let meta = core.checkpoint_meta(0);
        store.write_checkpoint(core.drain_changes(), &meta)?;
    }
    Ok(seeded)
}
