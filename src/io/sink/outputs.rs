//! The sinks of a pipeline with several named outputs (`.output("alerts")`, `.split(..)`),
//! each given by `--sink NAME=URI`, behind one [`EpochSink`]. Partitions stage output `i ≥ 1` as
//! [`OutputStream::Named`]`(i)`; this routes it to sink `i` as that sink's results. The first
//! output's sink also takes the late records and dead letters. An epoch commits at every sink
//! in output order; each sink skips what it made visible before, so a crash between two sinks'
//! commits replays the epoch into the ones that did not.

use super::{EpochSink, EpochStats, Lines, OutputStream, Staged, StagingFile};
use crate::checkpoint::Epoch;
use crate::Result;
use std::sync::Arc;

/// Several sinks, one per named output, in the pipeline's output order.
pub struct Outputs {
    sinks: Vec<Arc<dyn EpochSink>>,
}

impl Outputs {
    /// The sinks of outputs `0..sinks.len()`.
    pub fn new(sinks: Vec<Arc<dyn EpochSink>>) -> Self {
        Outputs { sinks }
    }

    /// The sink a stream goes to, and the stream as that sink knows it.
    fn route(&self, stream: OutputStream) -> (&dyn EpochSink, OutputStream) {
        match stream {
            OutputStream::Named(i) => (&*self.sinks[i as usize], OutputStream::Results),
            other => (&*self.sinks[0], other),
        }
    }

    /// The sink's staged output, tagged again with the stream the partition staged.
    fn tagged(staged: Option<Staged>, stream: OutputStream) -> Option<Staged> {
        staged.map(|s| Staged { stream, ..s })
    }
}

impl EpochSink for Outputs {
    fn stage(
        &self,
        epoch: Epoch,
        stream: OutputStream,
        writer: &str,
        bytes: Vec<u8>,
    ) -> Result<Option<Staged>> {
        let (sink, inner) = self.route(stream);
        Ok(Self::tagged(
            sink.stage(epoch, inner, writer, bytes)?,
            stream,
        ))
    }

    fn keyed(&self) -> bool {
        self.sinks.iter().any(|sink| sink.keyed())
    }

    fn drops_results(&self) -> bool {
        self.sinks.iter().all(|sink| sink.drops_results())
    }

    fn stage_keyed(
        &self,
        epoch: Epoch,
        stream: OutputStream,
        writer: &str,
        lines: Lines,
    ) -> Result<Option<Staged>> {
        let (sink, inner) = self.route(stream);
        Ok(Self::tagged(
            sink.stage_keyed(epoch, inner, writer, lines)?,
            stream,
        ))
    }

    fn stage_in_parts(
        &self,
        epoch: Epoch,
        stream: OutputStream,
        writer: &str,
    ) -> Result<Option<StagingFile>> {
        let (sink, inner) = self.route(stream);
        let parts = sink.stage_in_parts(epoch, inner, writer)?;
        Ok(parts.map(|file| file.staged_as(stream)))
    }

    fn location(&self, stream: OutputStream) -> String {
        let (sink, inner) = self.route(stream);
        sink.location(inner)
    }

    fn commit(&self, epoch: Epoch, staged: Vec<Staged>, stats: &EpochStats) -> Result<()> {
        let mut each: Vec<Vec<Staged>> = self.sinks.iter().map(|_| Vec::new()).collect();
        for s in staged {
            let (i, stream) = match s.stream {
                OutputStream::Named(i) => (i as usize, OutputStream::Results),
                other => (0, other),
            };
            each[i].push(Staged { stream, ..s });
        }
        for (sink, staged) in self.sinks.iter().zip(each) {
            sink.commit(epoch, staged, stats)?;
        }
        Ok(())
    }

    fn recover(&self, committed: Epoch, recorded: Epoch) -> Result<()> {
        self.sinks
            .iter()
            .try_for_each(|s| s.recover(committed, recorded))
    }

    fn claim_output(&self, recorded: Epoch, state: &str, overwrite: bool) -> Result<()> {
        self.sinks
            .iter()
            .try_for_each(|s| s.claim_output(recorded, state, overwrite))
    }

    fn exactly_once(&self) -> bool {
        self.sinks.iter().all(|s| s.exactly_once())
    }

    fn recover_resent(&self, resent: &[(String, Epoch)]) -> Result<()> {
        self.sinks.iter().try_for_each(|s| s.recover_resent(resent))
    }
}
