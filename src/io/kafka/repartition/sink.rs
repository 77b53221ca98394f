//! The job's sink with the repartition topic beside it: the exchange batches
//! ([`OutputStream::Repartition`]) go to the topic, everything else to the job's own sink.

use crate::checkpoint::Epoch;
use crate::io::kafka::KafkaSink;
use crate::io::sink::{EpochSink, EpochStats, Lines, OutputStream, Staged};
use crate::Result;
use std::sync::Arc;

/// The job's sink and its repartition topic's, behind one [`EpochSink`]. An epoch commits its
/// exchange batches first, then its outputs; each skips what it made visible before, so a
/// crash between the two sends the rest again.
pub struct Repartitioned {
    outputs: Arc<dyn EpochSink>,
    topic: KafkaSink,
}

impl Repartitioned {
    /// `outputs` for the pipeline's outputs, `topic` for the exchange batches.
    pub fn new(outputs: Arc<dyn EpochSink>, topic: KafkaSink) -> Self {
        Repartitioned { outputs, topic }
    }

    fn sink_of(&self, stream: OutputStream) -> &dyn EpochSink {
        match stream {
            OutputStream::Repartition => &self.topic,
            _ => &*self.outputs,
        }
    }
}

impl EpochSink for Repartitioned {
    fn stage(
        &self,
        epoch: Epoch,
        stream: OutputStream,
        writer: &str,
        bytes: Vec<u8>,
    ) -> Result<Option<Staged>> {
        self.sink_of(stream).stage(epoch, stream, writer, bytes)
    }

    /// The exchange lines have no keys: the results', if their sink uses them.
    fn keyed(&self) -> bool {
        self.outputs.keyed()
    }

    fn stage_keyed(
        &self,
        epoch: Epoch,
        stream: OutputStream,
        writer: &str,
        lines: Lines,
    ) -> Result<Option<Staged>> {
        self.sink_of(stream)
            .stage_keyed(epoch, stream, writer, lines)
    }

    fn location(&self, stream: OutputStream) -> String {
        self.sink_of(stream).location(stream)
    }

    fn commit(&self, epoch: Epoch, staged: Vec<Staged>, stats: &EpochStats) -> Result<()> {
        let (batches, outputs): (Vec<_>, Vec<_>) = staged
            .into_iter()
            .partition(|s| s.stream == OutputStream::Repartition);
        self.topic.commit(epoch, batches, stats)?;
        self.outputs.commit(epoch, outputs, stats)
    }

    fn recover(&self, committed: Epoch, recorded: Epoch) -> Result<()> {
        self.outputs.recover(committed, recorded)
    }

    fn claim_output(&self, recorded: Epoch, state: &str, overwrite: bool) -> Result<()> {
        self.outputs.claim_output(recorded, state, overwrite)
    }

    fn exactly_once(&self) -> bool {
        self.outputs.exactly_once() && self.topic.exactly_once()
    }

    fn recover_resent(&self, resent: &[(String, Epoch)]) -> Result<()> {
        self.topic.recover_resent(resent)?;
        self.outputs.recover_resent(resent)
    }
}
