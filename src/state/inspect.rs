//! A stopped job's keyed state, looked at and edited by key: what each key partition holds
//! (`spate state inspect`), one key's state as JSON (`spate state get`), and one key's erasure
//! (`spate state erase`). Covers the first keyed stage's state: a chained pipeline's later
//! stages, a join's buffered rows and a shared model are not looked at.

use super::keyed::{bucket_of, Bucket, Entry, BUCKET_BITS};
use super::stopped::StoppedPartition;
use super::store::StateStore;
use crate::checkpoint::Epoch;
use crate::operator::TimeDomain;
use crate::time::{format_rfc3339, Millis};
use crate::{Error, Key, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What one key partition holds as of its last checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSummary {
    /// The key partition.
    pub partition: u32,
    /// The epoch of its last checkpoint.
    pub checkpoint_epoch: Epoch,
    /// Keys holding state.
    pub keys: u64,
    /// Bytes of state stored.
    pub bytes: u64,
    /// Pending timers.
    pub timers: u64,
    /// The earliest pending timer's time.
    pub oldest_timer: Option<Millis>,
    /// The latest pending timer's time.
    pub newest_timer: Option<Millis>,
}

/// One pending timer of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimerReport {
    /// Its clock.
    pub domain: TimeDomain,
    /// When it fires, epoch milliseconds.
    pub time_ms: Millis,
    /// The same, RFC 3339.
    pub time: String,
}

/// One key's state, as `spate state get` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyReport {
    /// The key, as JSON.
    pub key: serde_json::Value,
    /// The key partition holding it.
    pub partition: u32,
    /// The operator's state for the key, as JSON.
    pub state: serde_json::Value,
    /// Its pending timers.
    pub timers: Vec<TimerReport>,
}

/// An erasure done by `spate state erase` (or `POST /state/erase`), kept in the store (meta `erasures`) as its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erasure {
    /// The key, as JSON text.
    pub key: String,
    /// The key partition that held it.
    pub partition: u32,
    /// The partition's checkpoint epoch the key was removed from (a stopped job's), or the
    /// epoch whose end removed it (a running job's).
    pub epoch: Epoch,
    /// When, RFC 3339.
    pub at: String,
}

/// The store's meta key of the erasure records.
const ERASURES: &str = "erasures";

/// Summarizes each of the `partitions` key partitions of `store`.
pub fn summarize<K, S>(store: &StateStore, partitions: u32) -> Result<Vec<PartitionSummary>>
where
    K: Key + DeserializeOwned,
    S: DeserializeOwned,
{
    (0..partitions)
        .map(|p| {
            let stopped = StoppedPartition::open(store, p)?;
            let mut summary = PartitionSummary {
                partition: p,
                checkpoint_epoch: stopped.tree().checkpoint()?.epoch,
                keys: 0,
                bytes: 0,
                timers: 0,
                oldest_timer: None,
                newest_timer: None,
            };
            for (_, bucket, bytes) in stopped.buckets::<K, S>()? {
                summary.bytes += bytes;
                summary.keys += bucket.len() as u64;
                for (_, time) in bucket.values().flat_map(|e| &e.timers) {
                    summary.timers += 1;
                    summary.oldest_timer =
                        Some(summary.oldest_timer.map_or(*time, |t| t.min(*time)));
                    summary.newest_timer =
                        Some(summary.newest_timer.map_or(*time, |t| t.max(*time)));
                }
            }
            Ok(summary)
        })
        .collect()
}

/// `text` as a key of the pipeline: JSON (`42`, `"u1"`, `["retail","FR"]`) or the bare text
/// of a string key (`u00033`); with the key as JSON. An error names `--key`.
pub fn parse_key<K: DeserializeOwned + Serialize>(text: &str) -> Result<(K, serde_json::Value)> {
    let json = serde_json::from_str::<serde_json::Value>(text).ok();
    let mut why = String::new();
    for candidate in json
        .into_iter()
        .chain([serde_json::Value::String(text.into())])
    {
        match serde_json::from_value::<K>(candidate) {
            Ok(key) => {
                let json = serde_json::to_value(&key).map_err(Error::to_json("a key"))?;
                return Ok((key, json));
            }
            Err(e) => why = e.to_string(),
        }
    }
    Err(Error::config(
        "--key",
        text,
        format!("it is not a key of this pipeline ({why}); give it as JSON, or as the bare text of a string key"),
    ))
}

/// Where a key was found: its partition, its bucket's number and the bucket.
struct Located<K, S> {
    stopped: StoppedPartition,
    bucket: u32,
    entries: Bucket<K, S>,
}

/// The partition whose tree holds `key`, and its bucket there (a key lives in one partition;
/// which one depends on the source, so each partition's bucket is looked at).
fn locate<K, S>(store: &StateStore, partitions: u32, key: &K) -> Result<Option<Located<K, S>>>
where
    K: Key + DeserializeOwned,
    S: DeserializeOwned,
{
    for p in 0..partitions {
        let stopped = StoppedPartition::open(store, p)?;
        let bits = match stopped.tree().checkpoint()?.bucket_bits {
            0 => BUCKET_BITS,
            bits => bits,
        };
        let bucket = bucket_of(key, bits) as u32;
        if let Some(entries) = stopped.bucket::<K, S>(bucket)? {
            if entries.contains_key(key, key.partition_hash()) {
                return Ok(Some(Located {
                    stopped,
                    bucket,
                    entries,
                }));
            }
        }
    }
    Ok(None)
}

/// The state of `key` (see `parse_key`) in `store`, if it has any.
pub fn find_key<K, S>(store: &StateStore, partitions: u32, key: &str) -> Result<Option<KeyReport>>
where
    K: Key + DeserializeOwned + Serialize,
    S: DeserializeOwned + Serialize,
{
    let (typed, key) = parse_key::<K>(key)?;
    let Some(Located {
        stopped,
        mut entries,
        ..
    }) = locate::<K, S>(store, partitions, &typed)?
    else {
        return Ok(None);
    };
    let entry = (entries.remove(&typed, typed.partition_hash())).expect("located");
    key_report(key, stopped.tree().partition_id(), &entry).map(Some)
}

/// The report of `key` (as JSON), whose `entry` lives in `partition`.
pub fn key_report<S: Serialize>(
    key: serde_json::Value,
    partition: u32,
    entry: &Entry<S>,
) -> Result<KeyReport> {
    let state = serde_json::to_value(&entry.state).map_err(Error::to_json("a key's state"))?;
    Ok(KeyReport {
        key,
        partition,
        state,
        timers: (entry.timers.iter())
            .map(|&(domain, time_ms)| TimerReport {
                domain,
                time_ms,
                time: format_rfc3339(time_ms),
            })
            .collect(),
    })
}

/// Removes `key`'s state (see `parse_key`) from its partition's checkpoint in `store`, and
/// records the erasure there; returns it, or `None` when the key has no state. The caller makes
/// sure no replay follows (which would process the key's records of the replayed epochs again).
pub fn erase_key<K, S>(store: &StateStore, partitions: u32, key: &str) -> Result<Option<Erasure>>
where
    K: Key + DeserializeOwned + Serialize,
    S: DeserializeOwned + Serialize,
{
    let (typed, key) = parse_key::<K>(key)?;
    let Some(Located {
        mut stopped,
        bucket,
        mut entries,
    }) = locate::<K, S>(store, partitions, &typed)?
    else {
        return Ok(None);
    };
    entries.remove(&typed, typed.partition_hash());
    let checkpoint = stopped.tree().checkpoint()?;
    let change = (!entries.is_empty()).then_some(entries);
    stopped.rewrite(bucket, change, &checkpoint)?;
    let erasure = Erasure {
        key: key.to_string(),
        partition: stopped.tree().partition_id(),
        epoch: checkpoint.epoch,
        at: format_rfc3339(crate::time::now_ms()),
    };
    record_erasure(store, erasure.clone())?;
    Ok(Some(erasure))
}

/// Adds `erasure` to the erasures recorded in `store` (what `spate state inspect` lists),
/// durably, unless it is there already (a replayed epoch erases its keys again).
pub fn record_erasure(store: &StateStore, erasure: Erasure) -> Result<()> {
    let mut erasures = erasures(store)?;
    let same = |e: &Erasure| {
        (&e.key, e.partition, e.epoch) == (&erasure.key, erasure.partition, erasure.epoch)
    };
    if erasures.iter().any(same) {
        return Ok(());
    }
    erasures.push(erasure);
    store.set_meta_value(ERASURES, &erasures)
}

/// The erasures done on `store`, oldest first.
pub fn erasures(store: &StateStore) -> Result<Vec<Erasure>> {
    Ok(store.meta_value(ERASURES)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_json_or_the_bare_text_of_a_string_key() {
        let (key, json) = parse_key::<u64>("42").unwrap();
        assert_eq!((key, json), (42, serde_json::json!(42)));
        let (key, json) = parse_key::<String>("u00033").unwrap();
        assert_eq!(
            (key.as_str(), json),
            ("u00033", serde_json::json!("u00033"))
        );
        assert_eq!(parse_key::<String>("\"u1\"").unwrap().0, "u1");
        let (key, _) = parse_key::<(String, String)>(r#"["retail","FR"]"#).unwrap();
        assert_eq!(key, ("retail".to_string(), "FR".to_string()));
    }

    #[test]
    fn a_text_that_cannot_be_a_key_is_refused_naming_the_flag() {
        let refused = parse_key::<u64>("u00033").unwrap_err().to_string();
        assert!(refused.contains("--key"), "{refused}");
        assert!(refused.contains("not a key of this pipeline"), "{refused}");
    }
}
