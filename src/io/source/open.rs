//! Opening a reader for a source named on the command line, given what the job it feeds
//! decided ([`OpenContext`]): a pipeline's single input, or each input of a join.

use super::{
    decode_json_line, FileOptions, FileReader, GenOptions, GeneratorReader, KafkaReader,
    LineDecoder, SourceReader, SourceSpec, StdinReader,
};
use crate::io::kafka::group::GroupMember;
use crate::io::kafka::{KafkaSettings, KafkaTopic};
use crate::pipeline::GeneratorFn;
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// What opening a source needs to know about the job it feeds.
pub struct OpenContext<'a> {
    /// The pipeline's name, for errors.
    pub pipeline: &'a str,
    /// How file sources (and stdin) read.
    pub files: FileOptions,
    /// The built-in generator's settings, its base time fixed for the job's life.
    pub generator: GenOptions,
    /// Kafka client settings.
    pub kafka: &'a KafkaSettings,
    /// The job's application id (its Kafka consumer group).
    pub app_id: &'a str,
    /// The topic partitions the job reads, ascending.
    pub partitions: Vec<u32>,
    /// The consumer group membership offsets are committed through (`--group`).
    pub group: Option<Arc<GroupMember>>,
    /// Where each partition of a topic ends for a bounded run (`--until-end`), by partition.
    pub end_offsets: &'a dyn Fn(&KafkaTopic) -> Result<Option<Vec<u64>>>,
}

/// Opens a reader of `spec` decoding records of type `R`; `generator` is what `gen` runs, and
/// `decode` what decodes a line of a file or of stdin (serde_json when `None`; a Kafka message
/// is always decoded by serde_json).
pub fn open_source<R: DeserializeOwned + Send + 'static>(
    spec: &SourceSpec,
    ctx: &OpenContext,
    generator: Option<&GeneratorFn<R>>,
    decode: Option<LineDecoder<R>>,
) -> Result<Box<dyn SourceReader<R>>> {
    let decode = decode.unwrap_or(decode_json_line::<R>);
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
            Box::new(GeneratorReader::new(make(&ctx.generator), &ctx.generator))
        }
        SourceSpec::File(path) => {
            Box::new(FileReader::open(path, &ctx.files)?.decoding_with(decode))
        }
        SourceSpec::Stdin => {
            Box::new(StdinReader::open(ctx.files.max_record_bytes).decoding_with(decode))
        }
        SourceSpec::Kafka(topic) => {
            let ids = ctx.partitions.clone();
            let end =
                (ctx.end_offsets)(topic)?.map(|end| ids.iter().map(|&p| end[p as usize]).collect());
            Box::new(KafkaReader::open(
                topic,
                ctx.kafka,
                ctx.app_id,
                ids,
                end,
                ctx.group.clone(),
            )?)
        }
    })
}
