//! A job's input: which source feeds which of the pipeline's inputs (`--source URI`,
//! `--source NAME=URI`), how many key partitions the job has (a Kafka topic's partitions; the
//! inputs of a join must agree), where a bounded Kafka run ends, and what opening the readers
//! needs to know ([`OpenContext`]).

use super::group::Assignment;
use super::RunConfig;
use crate::checkpoint::JobInfo;
use crate::io::kafka::KafkaTopic;
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
    let listed = names.join(", ");
    for (name, _) in &config.named_sources {
        if !names.contains(&name.as_str()) {
            return Err(Error::config(
                "--source",
                format!("{name}=…"),
                format!("pipeline `{pipeline}` has no input `{name}`; its inputs are: {listed}"),
            ));
        }
    }
    let named = |name: &str| {
        config
            .named_sources
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, spec)| spec.clone())
    };
    if let [only] = names.as_slice() {
        return Ok(vec![named(only).unwrap_or_else(|| config.source.clone())]);
    }
    names
        .iter()
        .map(|name| {
            named(name).ok_or_else(|| {
                Error::config(
                    "--source",
                    name,
                    format!(
                        "pipeline `{pipeline}` reads the inputs {listed}: give each its source with --source NAME=URI (missing: {name})"
                    ),
                )
            })
        })
        .collect()
}

/// The identity of the job's input kept in its state directory: the source's, or each named
/// input's for several.
pub(crate) fn sources_identity(inputs: &[InputDecl], sources: &[SourceSpec]) -> Result<String> {
    if let [only] = sources {
        return only.identity();
    }
    let parts = inputs
        .iter()
        .zip(sources)
        .map(|(input, spec)| Ok(format!("{}={}", input.name, spec.identity()?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(parts.join(";"))
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
