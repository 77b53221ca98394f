//! [`ResultLines`]: a partition's results of one epoch as JSON lines, one [`Lines`] per output,
//! written as they come and staged with the sink at the epoch's end, or in parts of
//! [`PART_BYTES`] as they pass that size when the sink takes them so (see [`StagingFile`]).

use super::exchange::StreamLines;
use crate::checkpoint::Epoch;
use crate::io::sink::{EpochSink, Lines, OutputStream, Staged, StagingFile};
use crate::pipeline::RouteFn;
use crate::{Error, Result};
use serde::Serialize;
use std::sync::Arc;

/// Bytes of an output's lines staged as one part: a few megabytes, written while they are
/// still in the cache, instead of an epoch's gigabyte held until its end.
pub(super) const PART_BYTES: usize = 4 << 20;

/// How a partition writes its results, as its sink needs them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) enum LineForm {
    /// JSON lines.
    #[default]
    Lines,
    /// JSON lines and each line's key (see
    /// [`EpochSink::keyed`](crate::io::sink::EpochSink::keyed)).
    Keyed,
    /// Counted, not written: the sink drops them (see
    /// [`EpochSink::drops_results`](crate::io::sink::EpochSink::drops_results)).
    Counted,
}

impl LineForm {
    /// The form `sink` takes; keyed when a Kafka changelog carries the lines too.
    pub(super) fn of(sink: &dyn EpochSink, changelog: bool) -> Self {
        match (sink.keyed() || changelog, sink.drops_results()) {
            (_, true) => LineForm::Counted,
            (true, false) => LineForm::Keyed,
            (false, false) => LineForm::Lines,
        }
    }
}

/// An epoch's results as JSON lines, one [`Lines`] per output.
#[derive(Default)]
pub(super) struct ResultLines {
    by_output: Vec<Lines>,
    /// Results written.
    pub(super) count: u64,
    form: LineForm,
    /// The first result that could not be written: the epoch fails at its seal.
    failed: Option<Error>,
    /// Where lines are staged in parts, if anywhere, and each output's staging so far.
    parts: Option<PartsTo>,
    staging: Vec<Staging>,
    /// The epoch the lines are of (what their parts are staged as).
    epoch: Epoch,
}

/// The sink and writer an epoch's lines are staged in parts with, and the size of a part.
#[derive(Clone)]
pub(super) struct PartsTo {
    sink: Arc<dyn EpochSink>,
    writer: String,
    part_bytes: usize,
}

impl PartsTo {
    /// Parts of `part_bytes` for `writer` with `sink`.
    pub(super) fn new(sink: Arc<dyn EpochSink>, writer: String, part_bytes: usize) -> Self {
        PartsTo {
            sink,
            writer,
            part_bytes: part_bytes.max(1),
        }
    }
}

/// How one output of the epoch is being staged.
#[derive(Default)]
enum Staging {
    /// Held; the sink was not asked yet.
    #[default]
    Held,
    /// Held whole: the sink stages this output at the epoch's end only.
    Whole,
    /// Its parts so far are in this file.
    InParts(StagingFile),
}

impl ResultLines {
    /// No lines yet, to be written in `form`.
    pub(super) fn new(form: LineForm) -> Self {
        ResultLines {
            form,
            ..ResultLines::default()
        }
    }

    /// The same lines, staged in parts with `to` once an output's pass its part size (in the
    /// [`LineForm::Lines`] form only: keyed lines also go to the changelog whole).
    pub(super) fn in_parts(self, to: PartsTo, epoch: Epoch) -> Self {
        let parts = (self.form == LineForm::Lines).then_some(to);
        ResultLines {
            parts,
            epoch,
            ..self
        }
    }

    /// No lines of `epoch` yet, in the same form and staged the same way.
    pub(super) fn emptied(&self, epoch: Epoch) -> Self {
        ResultLines {
            parts: self.parts.clone(),
            epoch,
            ..ResultLines::new(self.form)
        }
    }

    /// No lines of `epoch` yet, each output's buffers sized as this epoch's are: epochs are
    /// mostly alike, and growing a buffer of megabytes by doubling it copies it again and
    /// again.
    pub(super) fn sized_alike(&self, epoch: Epoch) -> Self {
        let sized = |lines: &Lines| Lines {
            bytes: Vec::with_capacity(lines.bytes.len()),
            keys: Vec::with_capacity(lines.keys.len()),
        };
        ResultLines {
            by_output: self.by_output.iter().map(sized).collect(),
            ..self.emptied(epoch)
        }
    }

    /// Adds `out` to the output `route` picks, keyed by what `write_key` writes (see
    /// [`add`](Self::add)).
    fn push<Out: Serialize>(
        &mut self,
        route: Option<&RouteFn<Out>>,
        write_key: &dyn Fn(&mut Vec<u8>),
        out: &Out,
    ) -> Result<()> {
        if self.form != LineForm::Counted {
            self.write(route.map_or(0, |route| route(out)), write_key, out)?;
        }
        self.count += 1;
        Ok(())
    }

    /// Writes `out` as a line of output `i`.
    fn write<Out: Serialize>(
        &mut self,
        i: usize,
        write_key: &dyn Fn(&mut Vec<u8>),
        out: &Out,
    ) -> Result<()> {
        if self.by_output.len() <= i {
            self.by_output.resize_with(i + 1, Lines::default);
        }
        let lines = &mut self.by_output[i];
        let before = lines.bytes.len();
        if let Err(e) = serde_json::to_writer(&mut lines.bytes, out) {
            lines.bytes.truncate(before); // no half-written line
            return Err(Error::to_json("a result")(e));
        }
        lines.bytes.push(b'\n');
        if self.form == LineForm::Keyed {
            lines.push_key(write_key);
        }
        match &self.parts {
            Some(to) if lines.bytes.len() >= to.part_bytes => self.stage_part(i),
            _ => Ok(()),
        }
    }

    /// Stages output `i`'s lines so far as a part, when its sink takes parts (the first part
    /// asks it).
    fn stage_part(&mut self, i: usize) -> Result<()> {
        let Some(to) = &self.parts else {
            return Ok(());
        };
        if self.staging.len() <= i {
            self.staging.resize_with(i + 1, Staging::default);
        }
        if let Staging::Held = self.staging[i] {
            let parts = to.sink.stage_in_parts(self.epoch, stream(i), &to.writer)?;
            self.staging[i] = parts.map_or(Staging::Whole, Staging::InParts);
        }
        if let Staging::InParts(file) = &mut self.staging[i] {
            let bytes = &mut self.by_output[i].bytes;
            file.write(bytes)?;
            bytes.clear();
        }
        Ok(())
    }

    /// [`push`](Self::push), keeping the first error for [`finish`](Self::finish).
    pub(super) fn add<Out: Serialize>(
        &mut self,
        route: Option<&RouteFn<Out>>,
        write_key: &dyn Fn(&mut Vec<u8>),
        out: &Out,
    ) {
        if let Err(e) = self.push(route, write_key, out) {
            self.failed.get_or_insert(e);
        }
    }

    /// The lines, or the first error of a result that could not be written.
    pub(super) fn finish(mut self) -> Result<Self> {
        self.failed.take().map_or(Ok(self), Err)
    }

    /// Finishes the outputs staged in parts with their last lines: staged, as the sink stages
    /// an output whole; [`into_streams`](Self::into_streams) leaves them out.
    pub(super) fn finish_parts(&mut self) -> Result<Vec<Staged>> {
        let mut staged = Vec::new();
        for (i, staging) in self.staging.iter_mut().enumerate() {
            if let Staging::InParts(file) = std::mem::take(staging) {
                let bytes = &mut self.by_output[i].bytes;
                staged.extend(file.finish(bytes)?);
                bytes.clear();
            }
        }
        Ok(staged)
    }

    /// The non-empty outputs as streams.
    pub(super) fn into_streams(self) -> Vec<StreamLines> {
        (self.by_output.into_iter().enumerate())
            .filter(|(_, lines)| !lines.bytes.is_empty())
            .map(|(i, lines)| (stream(i), lines))
            .collect()
    }
}

/// The stream output `i` is staged as.
fn stream(i: usize) -> OutputStream {
    match i {
        0 => OutputStream::Results,
        i => OutputStream::Named(i as u8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_result_that_is_not_json_is_an_error_naming_it_and_adds_no_line() {
        let mut lines = ResultLines::new(LineForm::Lines);
        let no_key = |_: &mut Vec<u8>| {};
        lines
            .push(None, &no_key, &BTreeMap::from([("a", 1)]))
            .unwrap();
        // JSON object keys are strings: a map keyed by pairs cannot be written.
        let bad = BTreeMap::from([((1, 2), 3)]);
        let error = lines.push(None, &no_key, &bad).unwrap_err();
        assert!(
            matches!(
                error,
                Error::ToJson {
                    what: "a result",
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(lines.count, 1);
        assert_eq!(lines.by_output[0].bytes, b"{\"a\":1}\n");
    }

    #[test]
    fn results_carry_their_keys_only_for_a_keyed_sink_and_the_next_epoch_is_sized_alike() {
        for form in [LineForm::Lines, LineForm::Keyed] {
            let mut lines = ResultLines::new(form);
            let key = |k: &mut Vec<u8>| k.extend_from_slice(b"u1");
            lines.push(None, &key, &[1, 2, 3]).unwrap();
            let keys: Vec<&[u8]> = lines.by_output[0].keys().collect();
            let keyed = form == LineForm::Keyed;
            assert_eq!(keys, if keyed { vec![&b"u1"[..]] } else { vec![] });
            let next = lines.sized_alike(2);
            let (bytes, keys) = (&next.by_output[0].bytes, &next.by_output[0].keys);
            assert!(bytes.is_empty() && bytes.capacity() >= b"[1,2,3]\n".len());
            assert!(keys.is_empty() && keys.capacity() >= lines.by_output[0].keys.len());
            assert_eq!((next.form, next.count), (form, 0));
        }
    }

    #[test]
    fn lines_past_the_part_size_are_staged_as_they_come_and_commit_as_one_file() {
        use crate::io::sink::{EpochStats, FileSink, StdoutSink};
        let tmp = tempfile::tempdir().unwrap();
        let file_sink: Arc<dyn EpochSink> = Arc::new(FileSink::open(tmp.path(), false).unwrap());
        let no_key = |_: &mut Vec<u8>| {};
        let write = |sink: &Arc<dyn EpochSink>| {
            let to = PartsTo::new(sink.clone(), "p000".into(), 20);
            let mut lines = ResultLines::new(LineForm::Lines).in_parts(to, 3);
            for n in 0..10 {
                lines.push(None, &no_key, &[n, n]).unwrap();
            }
            lines
        };
        let mut lines = write(&file_sink);
        // Two parts of four lines (24 bytes, past 20) went to the staging folder; two lines are
        // held.
        let partial = tmp
            .path()
            .join(".staging/results/part-000000000003-p000.partial");
        assert_eq!(std::fs::read(&partial).unwrap().len(), 24 + 24);
        assert_eq!(lines.by_output[0].bytes, b"[8,8]\n[9,9]\n");
        let staged = lines.finish_parts().unwrap();
        assert!(lines.into_streams().is_empty(), "staged already");
        file_sink.commit(3, staged, &EpochStats::default()).unwrap();
        let all: String = (0..10).map(|n| format!("[{n},{n}]\n")).collect();
        let committed = tmp.path().join("part-000000000003-p000.jsonl");
        assert_eq!(std::fs::read_to_string(committed).unwrap(), all);
        // Replayed, the committed epoch stages nothing.
        let mut again = write(&file_sink);
        assert!(again.finish_parts().unwrap().is_empty());
        assert!(!partial.exists());
        // A sink that takes an output whole gets it whole.
        let stdout: Arc<dyn EpochSink> = Arc::new(StdoutSink);
        let mut whole = write(&stdout);
        assert!(whole.finish_parts().unwrap().is_empty());
        let streams = whole.into_streams();
        assert_eq!(streams[0].1.bytes, all.as_bytes());
    }

    #[test]
    fn results_a_sink_drops_are_counted_and_not_written() {
        use crate::io::sink::{BlackholeSink, StdoutSink};
        assert_eq!(LineForm::of(&StdoutSink, false), LineForm::Lines);
        assert_eq!(LineForm::of(&StdoutSink, true), LineForm::Keyed);
        let form = LineForm::of(&BlackholeSink, true);
        assert_eq!(form, LineForm::Counted);
        let mut lines = ResultLines::new(form);
        for n in 0..3 {
            lines.add(None, &|_: &mut Vec<u8>| {}, &n);
        }
        let lines = lines.finish().unwrap();
        assert_eq!(lines.count, 3);
        assert!(lines.into_streams().is_empty(), "nothing to stage");
    }
}
