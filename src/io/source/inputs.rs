//! A source over a two-input pipeline's inputs (a join): reads both, in turns, into
//! [`Either`] records; its position is both inputs' positions, so an epoch replays exactly.
//!
//! The order in which the two inputs' records interleave does not decide any result: each
//! input keeps its own watermark in every key partition (see
//! [`PartitionCore`](crate::runtime::PartitionCore)). It decides how much a join holds in
//! state, though: inputs that are not partitioned are read side by side in event time
//! ([`SourceReader::align`]), the side behind first.

use super::{ReadStatus, SourceReader};
use crate::checkpoint::SourcePosition;
use crate::io::DeadLetter;
use crate::join::Either;
use crate::time::Millis;
use crate::{Error, Result};

/// A record's route when its input is not split into partitions but the job's other input is:
/// the source routes it by its key's hash, as a producer keying by the same key would.
pub const ROUTE_BY_KEY: u32 = u32::MAX;

/// One named input of a [`TwoInputs`] reader.
pub struct NamedReader<R> {
    /// The input's name (`--source NAME=URI`).
    pub name: String,
    /// Its reader.
    pub reader: Box<dyn SourceReader<R>>,
}

/// Reads two inputs in turns: each read takes up to half the chunk from each, or, when neither
/// is partitioned and the source thread told how far each got in event time
/// ([`align`](SourceReader::align)), the whole chunk from the side behind.
pub struct TwoInputs<A, B> {
    left: Side<A>,
    right: Side<B>,
    /// The partitions both inputs share, when one or both are partitioned (Kafka).
    partitions: Option<Vec<u32>>,
    ended: [bool; 2],
    /// The newest event time read from each side (the least over a side's own inputs).
    newest: [Option<Millis>; 2],
}

/// One input with the buffers its reads go through.
struct Side<R> {
    input: NamedReader<R>,
    records: Vec<R>,
    routes: Vec<u32>,
}

impl<R> Side<R> {
    fn new(input: NamedReader<R>) -> Self {
        Side {
            input,
            records: Vec::new(),
            routes: Vec::new(),
        }
    }

    /// Reads up to `max` records into `out`, tagged by `tag`, and their routes into `routes`
    /// (`ROUTE_BY_KEY` for an input that is not partitioned); dead letters name the input.
    fn read_into<T>(
        &mut self,
        (out, routes, dead): (&mut Vec<T>, &mut Vec<u32>, &mut Vec<DeadLetter>),
        max: usize,
        until: Option<&SourcePosition>,
        tag: impl Fn(R) -> T,
    ) -> Result<ReadStatus> {
        let dead_before = dead.len();
        let reader = &mut self.input.reader;
        let status = reader.read(&mut self.records, &mut self.routes, dead, max, until)?;
        for letter in &mut dead[dead_before..] {
            letter.input = Some(self.input.name.clone());
        }
        if self.routes.is_empty() {
            routes.extend(std::iter::repeat_n(ROUTE_BY_KEY, self.records.len()));
        } else {
            routes.append(&mut self.routes);
        }
        out.extend(self.records.drain(..).map(tag));
        Ok(status)
    }
}

impl<A, B> TwoInputs<A, B> {
    /// Both inputs. Partitioned inputs must have the same partitions (the job's key partition
    /// `N` reads partition `N` of each, as Kafka Streams requires of co-partitioned topics).
    pub fn new(left: NamedReader<A>, right: NamedReader<B>) -> Result<Self> {
        let partitions = match (left.reader.partitions(), right.reader.partitions()) {
            (Some(a), Some(b)) if a != b => {
                return Err(Error::config(
                    "--source",
                    format!("{}, {}", left.name, right.name),
                    format!(
                        "inputs `{}` ({} partitions) and `{}` ({} partitions) are not co-partitioned: give both topics the same number of partitions, keyed the same way",
                        left.name,
                        a.len(),
                        right.name,
                        b.len()
                    ),
                ))
            }
            (a, b) => a.or(b),
        };
        Ok(TwoInputs {
            left: Side::new(left),
            right: Side::new(right),
            partitions,
            ended: [false; 2],
            newest: [None; 2],
        })
    }

    /// The side to read first: the one behind in event time, when both sides told how far
    /// they got, neither is partitioned (a Kafka consumer must keep polling) and it is not
    /// read to its end.
    fn behind(&self) -> Option<usize> {
        let ([Some(left), Some(right)], None) = (self.newest, &self.partitions) else {
            return None;
        };
        let side = match left.cmp(&right) {
            std::cmp::Ordering::Less => 0,
            std::cmp::Ordering::Greater => 1,
            std::cmp::Ordering::Equal => return None,
        };
        (!self.ended[side]).then_some(side)
    }

    /// Reads one side: up to `max` records into `out`.
    fn read_side(
        &mut self,
        side: usize,
        (out, routes, dead): (&mut Vec<Either<A, B>>, &mut Vec<u32>, &mut Vec<DeadLetter>),
        max: usize,
        until: &[Option<SourcePosition>; 2],
    ) -> Result<ReadStatus> {
        let sink = (out, routes, dead);
        let status = match side {
            0 => (self.left).read_into(sink, max, until[0].as_ref(), Either::Left)?,
            _ => (self.right).read_into(sink, max, until[1].as_ref(), Either::Right)?,
        };
        self.ended[side] = status == ReadStatus::End;
        Ok(status)
    }

    /// Each side's part of `position` (`Start` before anything was read). A position lists
    /// every input flat (see [`position`](SourceReader::position)), so a side that reads
    /// several inputs takes as many parts, as one position of its own.
    fn parts(&self, position: &SourcePosition) -> [SourcePosition; 2] {
        let SourcePosition::Inputs(all) = position else {
            return Default::default();
        };
        let side = |from: usize, n: usize| match all.get(from..from + n) {
            Some([one]) => one.clone(),
            Some(several) if n > 1 => SourcePosition::Inputs(several.to_vec()),
            _ => SourcePosition::default(),
        };
        let left = self.left.input.reader.inputs();
        [side(0, left), side(left, self.right.input.reader.inputs())]
    }
}

/// Per input of one side of a [`TwoInputs`] that was (`ended`) or was not read to its end: the
/// side's own account when it reads several inputs.
fn each_ended<R>(reader: &dyn SourceReader<R>, ended: bool) -> Vec<bool> {
    match reader.inputs_ended() {
        own if reader.inputs() > 1 && own.len() == reader.inputs() => own,
        _ => vec![ended; reader.inputs()],
    }
}

/// How far a side got in event time: the least newest time of its inputs not read to their
/// end (`ended`, in step with `newest`), or `None` while one of them has brought nothing yet.
fn progress(newest: &[Option<Millis>], ended: &[bool]) -> Option<Millis> {
    let mut open = (newest.iter().zip(ended)).filter(|(_, ended)| !**ended);
    open.try_fold(Millis::MAX, |least, (time, _)| Some(least.min((*time)?)))
}

impl<A: Send, B: Send> SourceReader<Either<A, B>> for TwoInputs<A, B> {
    fn seek(&mut self, position: SourcePosition) -> Result<()> {
        let [a, b] = self.parts(&position);
        self.ended = [false; 2];
        self.left.input.reader.seek(a)?;
        self.right.input.reader.seek(b)
    }

    /// Every input's position, flat (a side that reads several inputs gives each of theirs):
    /// part `i` is input `i`'s, whatever the nesting, as checkpoints and the changelog's next
    /// offsets of each input expect.
    fn position(&self) -> SourcePosition {
        let mut inputs = self.left.input.reader.position().inputs();
        inputs.extend(self.right.input.reader.position().inputs());
        SourcePosition::Inputs(inputs)
    }

    fn read(
        &mut self,
        out: &mut Vec<Either<A, B>>,
        routes: &mut Vec<u32>,
        dead: &mut Vec<DeadLetter>,
        max: usize,
        until: Option<&SourcePosition>,
    ) -> Result<ReadStatus> {
        let until = until
            .map(|until| self.parts(until))
            .map_or([None, None], |[a, b]| [Some(a), Some(b)]);
        let before = out.len();
        let behind = self.behind();
        let (first, share) = match behind {
            Some(side) => (side, max),
            None => (0, max.div_ceil(2).max(1)),
        };
        let a = self.read_side(first, (out, routes, dead), share, &until)?;
        // The side behind alone, while it brings records; else both.
        if behind.is_some() && a == ReadStatus::Data && out.len() > before {
            return Ok(ReadStatus::Data);
        }
        let room = max.saturating_sub(out.len() - before).max(1);
        let b = self.read_side(1 - first, (out, routes, dead), room, &until)?;
        Ok(match (a, b) {
            (ReadStatus::End, ReadStatus::End) => ReadStatus::End,
            (ReadStatus::Data, _) | (_, ReadStatus::Data) => ReadStatus::Data,
            _ => ReadStatus::Idle,
        })
    }

    fn align(&mut self, newest: &[Option<Millis>]) {
        let split = self.left.input.reader.inputs().min(newest.len());
        let (left, right) = newest.split_at(split);
        self.newest = [
            progress(left, &each_ended(&*self.left.input.reader, self.ended[0])),
            progress(right, &each_ended(&*self.right.input.reader, self.ended[1])),
        ];
        self.left.input.reader.align(left);
        self.right.input.reader.align(right);
    }

    fn partitions(&self) -> Option<Vec<u32>> {
        self.partitions.clone()
    }

    fn inputs(&self) -> usize {
        self.left.input.reader.inputs() + self.right.input.reader.inputs()
    }

    fn lag(&self) -> Option<Vec<(u32, u64)>> {
        let mut lag = self.left.input.reader.lag().unwrap_or_default();
        for (p, records) in self.right.input.reader.lag().unwrap_or_default() {
            match lag.iter_mut().find(|(q, _)| *q == p) {
                Some((_, sum)) => *sum += records,
                None => lag.push((p, records)),
            }
        }
        (!lag.is_empty()).then_some(lag)
    }

    /// Per input, the left side's then the right side's (a side that reads several inputs
    /// tells each of them).
    fn inputs_ended(&self) -> Vec<bool> {
        let mut ended = each_ended(&*self.left.input.reader, self.ended[0]);
        ended.extend(each_ended(&*self.right.input.reader, self.ended[1]));
        ended
    }

    /// Per input and route (input-major): an input read to its end waits for nothing. A side
    /// that reads several inputs tells each of them (a join's two topics beside the
    /// repartition topic): taking its answer for one input's would leave every partition of
    /// the join's topics "not waiting", and idle, while its records were still in the broker.
    fn waiting(&self) -> Option<Vec<bool>> {
        let routes = self.partitions.as_ref().map_or(0, Vec::len);
        let (left, right) = (&*self.left.input.reader, &*self.right.input.reader);
        let (a, b) = (left.waiting(), right.waiting());
        if routes == 0 || (a.is_none() && b.is_none()) {
            return None;
        }
        let side = |w: Option<Vec<bool>>, inputs: usize, ended: bool| {
            let len = routes * inputs;
            w.filter(|w| w.len() == len && !ended)
                .unwrap_or_else(|| vec![false; len])
        };
        let mut waiting = side(a, left.inputs(), self.ended[0]);
        waiting.extend(side(b, right.inputs(), self.ended[1]));
        Some(waiting)
    }

    fn pause(&mut self, paused: &[bool]) {
        self.left.input.reader.pause(paused);
        self.right.input.reader.pause(paused);
    }

    fn committed(&mut self, position: &SourcePosition) {
        let [a, b] = self.parts(position);
        self.left.input.reader.committed(&a);
        self.right.input.reader.committed(&b);
    }

    fn describe(&self, position: &SourcePosition) -> String {
        let [a, b] = self.parts(position);
        format!(
            "{}: {}, {}: {}",
            self.left.input.name,
            self.left.input.reader.describe(&a),
            self.right.input.name,
            self.right.input.reader.describe(&b)
        )
    }

    fn replayable(&self) -> bool {
        self.left.input.reader.replayable() && self.right.input.reader.replayable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::source::{FileOptions, FileReader};

    type Nested = TwoInputs<Either<u64, u64>, u64>;

    /// Three files of numbers, read as ((a, b), c).
    fn nested(dir: &std::path::Path) -> Nested {
        let file = |name: &str, from: u64| {
            let path = dir.join(name);
            let lines: String = (from..from + 50).map(|n| format!("{n}\n")).collect();
            std::fs::write(&path, lines).unwrap();
            let reader = FileReader::<u64>::open(&path, &FileOptions::default()).unwrap();
            NamedReader {
                name: name.into(),
                reader: Box::new(reader),
            }
        };
        let (a, b, c) = (file("a", 0), file("b", 100), file("c", 200));
        let ab = NamedReader {
            name: "ab".into(),
            reader: Box::new(TwoInputs::new(a, b).unwrap()),
        };
        TwoInputs::new(ab, c).unwrap()
    }

    fn numbers(records: Vec<Either<Either<u64, u64>, u64>>) -> Vec<u64> {
        let number = |r| match r {
            Either::Left(Either::Left(n) | Either::Right(n)) | Either::Right(n) => n,
        };
        records.into_iter().map(number).collect()
    }

    /// Reads `reader` in chunks of 7 until it ends, or once when `once`.
    fn read(reader: &mut Nested, once: bool) -> Vec<u64> {
        let (mut out, mut routes, mut dead) = (Vec::new(), Vec::new(), Vec::new());
        while reader
            .read(&mut out, &mut routes, &mut dead, 7, None)
            .unwrap()
            != ReadStatus::End
        {
            if once {
                break;
            }
        }
        assert!(dead.is_empty(), "{dead:?}");
        numbers(out)
    }

    /// Reads one chunk of `max` from `reader` after telling it how far each input got.
    fn read_aligned(reader: &mut Nested, newest: [Millis; 3], max: usize) -> Vec<u64> {
        reader.align(&newest.map(Some));
        let (mut out, mut routes, mut dead) = (Vec::new(), Vec::new(), Vec::new());
        reader
            .read(&mut out, &mut routes, &mut dead, max, None)
            .unwrap();
        numbers(out)
    }

    #[test]
    fn inputs_that_are_not_partitioned_are_read_the_one_behind_in_event_time_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut reader = nested(dir.path());
        assert_eq!(
            read_aligned(&mut reader, [0, 0, 0], 8),
            [0, 1, 100, 101, 200, 201, 202, 203]
        );
        // (a, b) is behind c: the whole chunk from it, half from each of a and b.
        assert_eq!(read_aligned(&mut reader, [9, 9, 50], 4), [2, 3, 102, 103]);
        // Within (a, b), b is behind a.
        assert_eq!(read_aligned(&mut reader, [9, 5, 50], 3), [104, 105, 106]);
        // c is behind.
        assert_eq!(read_aligned(&mut reader, [60, 60, 50], 3), [204, 205, 206]);
        // Until `align` is called again, the side behind goes on.
        let (mut out, mut routes, mut dead) = (Vec::new(), Vec::new(), Vec::new());
        let status = reader
            .read(&mut out, &mut routes, &mut dead, 3, None)
            .unwrap();
        assert_eq!(
            (status, numbers(out)),
            (ReadStatus::Data, vec![207, 208, 209])
        );
        // Unknown progress (an input with no record yet): both sides, as without alignment,
        // even for a chunk of one.
        reader.align(&[Some(0), None, Some(99)]);
        let (mut out, mut routes, mut dead) = (Vec::new(), Vec::new(), Vec::new());
        reader
            .read(&mut out, &mut routes, &mut dead, 4, None)
            .unwrap();
        assert_eq!(numbers(out), [4, 107, 210, 211]);
        assert_eq!(read_aligned(&mut reader, [3, 3, 3], 1), [5, 108, 212]);
    }

    #[test]
    fn a_side_behind_that_ends_hands_the_read_to_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let mut reader = nested(dir.path());
        // c stays behind: it is read to its end, then (a, b) in the same call.
        let all = read_aligned(&mut reader, [100, 100, 0], 60);
        assert_eq!(all[..50], (200..250).collect::<Vec<_>>());
        assert_eq!(all[50..], [0, 1, 2, 3, 4, 100, 101, 102, 103, 104]);
        assert_eq!(reader.inputs_ended(), [false, false, true]);
        // An input read to its end is never behind: (a, b) is read, a being behind b.
        assert_eq!(read_aligned(&mut reader, [5, 7, 0], 2), [5, 6]);
        let mut seen = all;
        seen.extend([5, 6]);
        seen.extend(read(&mut reader, false));
        seen.sort();
        let every: Vec<u64> = (0..50).chain(100..150).chain(200..250).collect();
        assert_eq!(seen, every, "every record once");
    }

    /// A reader of two partitions that reads nothing and has `waiting` records.
    struct Waiting(Vec<bool>);

    impl SourceReader<u64> for Waiting {
        fn seek(&mut self, _: SourcePosition) -> Result<()> {
            Ok(())
        }
        fn position(&self) -> SourcePosition {
            SourcePosition::Start
        }
        fn read(
            &mut self,
            _: &mut Vec<u64>,
            _: &mut Vec<u32>,
            _: &mut Vec<DeadLetter>,
            _: usize,
            _: Option<&SourcePosition>,
        ) -> Result<ReadStatus> {
            Ok(ReadStatus::Idle)
        }
        fn partitions(&self) -> Option<Vec<u32>> {
            Some(vec![0, 1])
        }
        fn waiting(&self) -> Option<Vec<bool>> {
            Some(self.0.clone())
        }
        fn replayable(&self) -> bool {
            true
        }
    }

    #[test]
    fn a_side_of_several_inputs_tells_which_of_their_partitions_wait() {
        let named = |name: &str, waiting: [bool; 2]| NamedReader {
            name: name.into(),
            reader: Box::new(Waiting(waiting.to_vec())) as Box<dyn SourceReader<u64>>,
        };
        let join = TwoInputs::new(named("tx", [true, false]), named("users", [false, true]));
        let join = NamedReader {
            name: "join".into(),
            reader: Box::new(join.unwrap()),
        };
        let with_exchange = TwoInputs::new(join, named("exchange", [false, false])).unwrap();
        // Input-major: tx's two partitions, users', the exchange's.
        assert_eq!(
            with_exchange.waiting(),
            Some(vec![true, false, false, true, false, false])
        );
    }

    #[test]
    fn nested_inputs_have_one_flat_position_that_a_new_reader_resumes_from() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = nested(dir.path());
        assert_eq!(first.inputs(), 3);
        let mut seen = read(&mut first, true);
        let position = first.position();
        assert_eq!(position.inputs().len(), 3, "{position:?}");
        assert_eq!(first.inputs_ended(), vec![false; 3]);

        let mut second = nested(dir.path());
        second.seek(position.clone()).unwrap();
        assert_eq!(second.position(), position);
        seen.extend(read(&mut second, false));
        assert_eq!(second.inputs_ended(), vec![true; 3]);
        seen.sort();
        let all: Vec<u64> = (0..50).chain(100..150).chain(200..250).collect();
        assert_eq!(seen, all, "every record once, across the resume");
    }
}
