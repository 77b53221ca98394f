//! [`ResultLines`]: a partition's results of one epoch as JSON lines, one [`Lines`] per output,
//! written as they come and staged with the sink at the epoch's end.

use super::exchange::StreamLines;
use crate::io::sink::{EpochSink, Lines, OutputStream};
use crate::pipeline::RouteFn;
use crate::{Error, Result};
use serde::Serialize;

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
}

impl ResultLines {
    /// No lines yet, to be written in `form`.
    pub(super) fn new(form: LineForm) -> Self {
        ResultLines {
            form,
            ..ResultLines::default()
        }
    }

    /// No lines yet, in the same form.
    pub(super) fn emptied(&self) -> Self {
        ResultLines::new(self.form)
    }

    /// No lines yet, each output's buffers sized as this epoch's are: epochs are mostly alike,
    /// and growing a buffer of megabytes by doubling it copies it again and again.
    pub(super) fn sized_alike(&self) -> Self {
        let sized = |lines: &Lines| Lines {
            bytes: Vec::with_capacity(lines.bytes.len()),
            keys: Vec::with_capacity(lines.keys.len()),
        };
        ResultLines {
            by_output: self.by_output.iter().map(sized).collect(),
            ..ResultLines::new(self.form)
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

    /// The non-empty outputs as streams.
    pub(super) fn into_streams(self) -> Vec<StreamLines> {
        let stream = |i: usize| match i {
            0 => OutputStream::Results,
            i => OutputStream::Named(i as u8),
        };
        (self.by_output.into_iter().enumerate())
            .filter(|(_, lines)| !lines.bytes.is_empty())
            .map(|(i, lines)| (stream(i), lines))
            .collect()
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
            let next = lines.sized_alike();
            let (bytes, keys) = (&next.by_output[0].bytes, &next.by_output[0].keys);
            assert!(bytes.is_empty() && bytes.capacity() >= b"[1,2,3]\n".len());
            assert!(keys.is_empty() && keys.capacity() >= lines.by_output[0].keys.len());
            assert_eq!((next.form, next.count), (form, 0));
        }
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
