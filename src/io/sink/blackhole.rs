//! The blackhole sink: results are made and counted, then dropped without being written as
//! JSON, as Flink's `blackhole` connector drops rows in its Nexmark benchmark (so a result
//! that could not be written as JSON is not noticed). Late records and dead letters still
//! reach standard error (labelled, as the stdout sink writes them), so bad input is never lost
//! in silence.

use super::{EpochSink, EpochStats, OutputStream, Staged, StdoutSink};
use crate::checkpoint::Epoch;
use crate::Result;

/// Drops results; late records and dead letters go where [`StdoutSink`] writes them.
#[derive(Debug, Default)]
pub struct BlackholeSink;

/// Whether `stream` reaches stderr rather than the blackhole.
fn kept(stream: OutputStream) -> bool {
    matches!(stream, OutputStream::Late | OutputStream::DeadLetter)
}

impl EpochSink for BlackholeSink {
    fn location(&self, stream: OutputStream) -> String {
        if kept(stream) {
            StdoutSink.location(stream)
        } else {
            "blackhole (dropped)".into()
        }
    }

    fn stage(
        &self,
        epoch: Epoch,
        stream: OutputStream,
        writer: &str,
        bytes: Vec<u8>,
    ) -> Result<Option<Staged>> {
        if kept(stream) {
            StdoutSink.stage(epoch, stream, writer, bytes)
        } else {
            Ok(None)
        }
    }

    fn commit(&self, epoch: Epoch, staged: Vec<Staged>, stats: &EpochStats) -> Result<()> {
        StdoutSink.commit(epoch, staged, stats)
    }

    fn recover(&self, committed: Epoch, recorded: Epoch) -> Result<()> {
        StdoutSink.recover(committed, recorded)
    }

    fn exactly_once(&self) -> bool {
        StdoutSink.exactly_once()
    }

    fn drops_results(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_dropped_and_bad_input_is_kept_for_stderr() {
        let sink = BlackholeSink;
        let stage = |stream| sink.stage(3, stream, "p000", b"{}\n".to_vec()).unwrap();
        assert!(stage(OutputStream::Results).is_none());
        assert!(stage(OutputStream::Named(1)).is_none());
        for kept in [OutputStream::Late, OutputStream::DeadLetter] {
            let staged = stage(kept).expect("late records and dead letters are staged");
            assert_eq!((staged.epoch, staged.stream), (3, kept));
        }
        assert_eq!(
            sink.location(OutputStream::DeadLetter),
            "stderr (as dead-letter lines)"
        );
    }
}
