//! Opening a job's input: which source feeds which of the pipeline's inputs (`--source URI`,
//! `--source NAME=URI`), how many key partitions the job has (a Kafka topic's partitions; the
//! inputs of a join must agree), and the readers themselves.

use super::group::Assignment;
use super::RunConfig;
use crate::checkpoint::JobInfo;
use crate::io::kafka::KafkaTopic;
use crate::io::source::{
    FileOptions, FileReader, GenOptions, GeneratorReader, KafkaReader, SourceReader, SourceSpec,
    StdinReader,
};
use crate::pipeline::{GeneratorFn, InputDecl};
use crate::state::StateStore;
use crate::{Error, Result};
use serde::de::DeserializeOwned;

/// What opening a source needs to know about the job.
pub struct OpenContext<'a> {
    pub(super) config: &'a RunConfig,
    pub(super) info: &'a JobInfo,
    pub(super) store: &'a StateStore,
    pub(super) app_id: &'a str,
    pub(super) assignment: Option<&'a Assignment>,
    /// The pipeline's name, for errors.
    pub(super) pipeline: &'a str,
}

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

/// Opens a reader of `spec` decoding records of type `R`; `generator` is what `gen` runs.
pub fn open_source<R: DeserializeOwned + Send + 'static>(
    spec: &SourceSpec,
    ctx: &OpenContext,
    generator: Option<&GeneratorFn<R>>,
) -> Result<Box<dyn SourceReader<R>>> {
    let config = ctx.config;
    Ok(match spec {
        SourceSpec::Generator => {
            let make = generator.ok_or_else(|| {
                Error::config(
                    "--source",
                    "gen",
                    format!(
                        "pipeline `{}` has no built-in generator for this input; use --source file:PATH or stdin",
                        ctx.pipeline
                    ),
                )
            })?;
            let options = GenOptions {
                base_ms: ctx.info.generator_base_ms,
                ..config.generator.clone()
            };
            Box::new(GeneratorReader::new(make(&options), &options))
        }
        SourceSpec::File(path) => Box::new(FileReader::open(
            path,
            &FileOptions {
                follow: config.follow,
                follow_symlinks: config.follow_symlinks,
                max_record_bytes: config.max_record_bytes,
            },
        )?),
        SourceSpec::Stdin => Box::new(StdinReader::open(config.max_record_bytes)),
        SourceSpec::Kafka(topic) => {
            let ids: Vec<u32> = ctx
                .assignment
                .map_or_else(|| (0..ctx.info.partitions).collect(), |a| a.ids.clone());
            let end = kafka_end_offsets(config, ctx.store, topic, ctx.info.partitions)?
                .map(|end| ids.iter().map(|&p| end[p as usize]).collect());
            Box::new(KafkaReader::open(
                topic,
                &config.kafka,
                ctx.app_id,
                ids,
                end,
                ctx.assignment.map(|a| a.member.clone()),
            )?)
        }
    })
}
