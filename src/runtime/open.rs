//! A job's input: which source feeds which of the pipeline's inputs (`--source URI`,
//! `--source NAME=URI`), how many key partitions the job has (a Kafka topic's partitions; the
//! inputs of a join must agree), where a bounded Kafka run ends, and what opening the readers
//! needs to know ([`OpenContext`]).

use super::group::Assignment;
use super::RunConfig;
use crate::checkpoint::JobInfo;
use crate::io::kafka::KafkaTopic;
use crate::io::sink::SinkSpec;
use crate::io::source::{FileOptions, GenOptions, OpenContext, SourceSpec};
use crate::pipeline::InputDecl;
use crate::state::StateStore;
use crate::{Error, Result};

/// Each of the pipeline's inputs' source, in input order. A pipeline with one input takes
/// `--source URI` or `--source NAME=URI`; one with several needs a named source for each.
pub(crate) fn input_sources(
    pipeline: &str,
    inputs: &[InputDecl],
    config: &RunConfig,
) -> Result<Vec<SourceSpec>> {
    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    let given = (&config.named_sources[..], &config.source);
    by_name(pipeline, ("--source", "input"), &names, given)
}

/// Each of the pipeline's outputs' sink, in output order: `--sink URI` or `--sink NAME=URI`
/// for one output, a named sink for each of several.
pub(crate) fn output_sinks(
    pipeline: &str,
    outputs: &[String],
    config: &RunConfig,
) -> Result<Vec<SinkSpec>> {
    let names: Vec<&str> = outputs.iter().map(String::as_str).collect();
    let given = (&config.named_sinks[..], &config.sink);
    by_name(pipeline, ("--sink", "output"), &names, given)
}

/// What `flag` gives each of `names`: the `named` value of its name, or the `unnamed` one when
/// there is only one name; an unknown or missing name is refused naming the pipeline's.
fn by_name<S: Clone>(
    pipeline: &str,
    (flag, what): (&str, &str),
    names: &[&str],
    (named, unnamed): (&[(String, S)], &S),
) -> Result<Vec<S>> {
    let listed = names.join(", ");
    if let Some((name, _)) = named.iter().find(|(n, _)| !names.contains(&n.as_str())) {
        return Err(Error::config(
            flag,
            format!("{name}=…"),
            format!("pipeline `{pipeline}` has no {what} `{name}`; its {what}s are: {listed}"),
        ));
    }
    let find = |name: &str| {
        named
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
    };
    if let [only] = names {
        return Ok(vec![find(only).unwrap_or_else(|| unnamed.clone())]);
    }
    (names.iter())
        .map(|name| {
            find(name).ok_or_else(|| {
                Error::config(
                    flag,
                    name,
                    format!(
                        "pipeline `{pipeline}` has the {what}s {listed}: give each its own {flag} NAME=URI (missing: {name})"
                    ),
                )
            })
        })
        .collect()
}

/// The identity of a job's input or output kept in its state directory: the one's, or each
/// named one's for several (`NAME=IDENTITY;…`).
pub(crate) fn joined_identity<'a>(
    names: impl Iterator<Item = &'a str>,
    identities: Vec<String>,
) -> String {
    match identities.as_slice() {
        [only] => only.clone(),
        _ => names
            .zip(identities)
            .map(|(name, id)| format!("{name}={id}"))
            .collect::<Vec<_>>()
            .join(";"),
    }
}

/// The number of key partitions: the Kafka inputs' partition count (which must agree), else
/// `--partitions`.
pub(crate) fn key_partitions(
    config: &RunConfig,
    inputs: &[InputDecl],
    sources: &[SourceSpec],
    app_id: &str,
) -> Result<u32> {
    let mut counted: Option<(&str, &KafkaTopic, u32)> = None;
    for (input, spec) in inputs.iter().zip(sources) {
        let SourceSpec::Kafka(topic) = spec else {
            continue;
        };
        let n = topic_partitions(config, topic, app_id)?;
        match counted {
            Some((name, other, m)) if m != n => {
                return Err(Error::config(
                    "--source",
                    format!("{name}={other}, {}={topic}", input.name),
                    format!(
                        "inputs `{name}` ({m} partitions) and `{}` ({n} partitions) are not co-partitioned: key partition N reads partition N of each, so give both topics the same number of partitions, keyed the same way",
                        input.name
                    ),
                ))
            }
            _ => counted = Some((&input.name, topic, n)),
        }
    }
    match counted {
        Some((.., n)) => Ok(n),
        None if config.partitions == 0 => Err(Error::config("--partitions", 0, "use at least 1")),
        None => Ok(config.partitions),
    }
}

fn topic_partitions(config: &RunConfig, topic: &KafkaTopic, app_id: &str) -> Result<u32> {
    let client = config
        .kafka
        .client_config(&topic.brokers, &[("group.id", app_id)]);
    crate::io::kafka::partition_count(&client, topic)?.ok_or_else(|| {
        Error::config(
            "--source",
            topic,
            "the topic does not exist; create it (or produce to it) first",
        )
    })
}

/// Where a bounded Kafka run stops: the end offsets recorded at the job's first start, so a
/// restart after a crash stops at the same place.
pub(crate) fn kafka_end_offsets(
    config: &RunConfig,
    store: &StateStore,
    topic: &KafkaTopic,
    partitions: u32,
) -> Result<Option<Vec<u64>>> {
    if !config.until_end {
        return Ok(None);
    }
    let key = format!("until-end:{}", topic.topic);
    if let Some(end) = store.meta_value::<Vec<u64>>(&key)? {
        return Ok(Some(end));
    }
    let end = crate::io::kafka::end_offsets(&config.kafka, topic, partitions)?;
    store.set_meta_value(&key, &end)?;
    tracing::info!(topic = %topic.topic, ?end, "reading up to these end offsets (--until-end)");
    Ok(Some(end))
}

/// Opens the job's readers with `open`, given what they need to know about the job.
pub(crate) fn with_open_context<T>(
    config: &RunConfig,
    (info, store, pipeline): (&JobInfo, &StateStore, &str),
    (app_id, assignment): (&str, Option<&Assignment>),
    open: impl FnOnce(&OpenContext) -> Result<T>,
) -> Result<T> {
    let end_offsets = |topic: &KafkaTopic| kafka_end_offsets(config, store, topic, info.partitions);
    open(&OpenContext {
        pipeline,
        files: FileOptions {
            follow: config.follow,
            follow_symlinks: config.follow_symlinks,
            max_record_bytes: config.max_record_bytes,
        },
        generator: GenOptions {
            base_ms: info.generator_base_ms,
            ..config.generator.clone()
        },
        kafka: &config.kafka,
        app_id,
        partitions: assignment.map_or_else(|| (0..info.partitions).collect(), |a| a.ids.clone()),
        group: assignment.map(|a| a.member.clone()),
        end_offsets: &end_offsets,
    })
}
