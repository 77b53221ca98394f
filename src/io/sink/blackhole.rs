//! The blackhole sink: results are made and counted, then dropped, as Flink's `blackhole`
//! connector drops them in its Nexmark benchmark. Late records and dead letters still reach
//! standard error (labelled, as the stdout sink writes them), so bad input is never lost in
//! silence.

use super::stdout::write_committed;
use super::{EpochSink, EpochStats, OutputStream, Staged};
use crate::checkpoint::Epoch;
use crate::Result;

/// Drops results; writes late records and dead letters to stderr when their epoch commits.
#[derive(Debug, Default)]
pub struct BlackholeSink;

impl EpochSink for BlackholeSink {
    fn location(&self, stream: OutputStream) -> String {
        match stream {
            OutputStream::Late | OutputStream::DeadLetter => {
                format!("stderr (as {} lines)", stream.dir_name())
            }
            _ => "blackhole (dropped)".into(),
        }
    }

    fn stage(
        &self,
        epoch: Epoch,
        stream: OutputStream,
        _writer: &str,
        bytes: Vec<u8>,
    ) -> Result<Option<Staged>> {
        Ok(match stream {
            OutputStream::Late | OutputStream::DeadLetter => {
                Staged::in_memory(epoch, stream, bytes)
            }
            _ => None,
        })
    }

    fn commit(&self, _epoch: Epoch, staged: Vec<Staged>, _stats: &EpochStats) -> Result<()> {
        write_committed(staged)
    }

    fn recover(&self, _committed: Epoch, _recorded: Epoch) -> Result<()> {
        Ok(())
    }

    fn exactly_once(&self) -> bool {
        false
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
