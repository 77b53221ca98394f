//! A source over a two-input pipeline's inputs (a join): reads both, in turns, into
//! [`Either`] records; its position is both inputs' positions, so an epoch replays exactly.
//!
//! The order in which the two inputs' records interleave does not decide any result: each
//! input keeps its own watermark in every key partition (see
//! [`PartitionCore`](crate::runtime::PartitionCore)).

use super::{ReadStatus, SourceReader};
use crate::checkpoint::SourcePosition;
use crate::io::DeadLetter;
use crate::join::Either;
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

/// Reads two inputs in turns: each read takes up to half the chunk from each.
pub struct TwoInputs<A, B> {
    left: NamedReader<A>,
    right: NamedReader<B>,
    /// The partitions both inputs share, when one or both are partitioned (Kafka).
    partitions: Option<Vec<u32>>,
    ended: [bool; 2],
    scratch_a: Vec<A>,
    scratch_b: Vec<B>,
    routes: Vec<u32>,
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
            left,
            right,
            partitions,
            ended: [false; 2],
            scratch_a: Vec::new(),
            scratch_b: Vec::new(),
            routes: Vec::new(),
        })
    }

    /// Each input's part of `position` (`Start` before anything was read).
    fn parts(position: &SourcePosition) -> [SourcePosition; 2] {
        match position {
            SourcePosition::Inputs(parts) => {
                [0, 1].map(|i| parts.get(i).cloned().unwrap_or_default())
            }
            _ => Default::default(),
        }
    }
}

/// Reads up to `max` records of one input into `out`, tagged by `tag`, with their routes
/// (`ROUTE_BY_KEY` for an input that is not partitioned); dead letters name the input.
#[allow(clippy::too_many_arguments)]
fn read_one<R, T>(
    input: &mut NamedReader<R>,
    scratch: &mut Vec<R>,
    routes: &mut Vec<u32>,
    out: &mut Vec<T>,
    all_routes: &mut Vec<u32>,
    dead: &mut Vec<DeadLetter>,
    max: usize,
    until: Option<&SourcePosition>,
    tag: impl Fn(R) -> T,
) -> Result<ReadStatus> {
    let dead_before = dead.len();
    let status = input.reader.read(scratch, routes, dead, max, until)?;
    for letter in &mut dead[dead_before..] {
        letter.input = Some(input.name.clone());
    }
    if routes.is_empty() {
        all_routes.extend(std::iter::repeat_n(ROUTE_BY_KEY, scratch.len()));
    } else {
        all_routes.append(routes);
    }
    out.extend(scratch.drain(..).map(tag));
    Ok(status)
}

impl<A: Send, B: Send> SourceReader<Either<A, B>> for TwoInputs<A, B> {
    fn seek(&mut self, position: SourcePosition) -> Result<()> {
        let [a, b] = Self::parts(&position);
        self.ended = [false; 2];
        self.left.reader.seek(a)?;
        self.right.reader.seek(b)
    }

    fn position(&self) -> SourcePosition {
        SourcePosition::Inputs(vec![
            self.left.reader.position(),
            self.right.reader.position(),
        ])
    }

    fn read(
        &mut self,
        out: &mut Vec<Either<A, B>>,
        routes: &mut Vec<u32>,
        dead: &mut Vec<DeadLetter>,
        max: usize,
        until: Option<&SourcePosition>,
    ) -> Result<ReadStatus> {
        let [until_a, until_b] = until
            .map(Self::parts)
            .map_or([None, None], |[a, b]| [Some(a), Some(b)]);
        let half = max.div_ceil(2).max(1);
        let a = read_one(
            &mut self.left,
            &mut self.scratch_a,
            &mut self.routes,
            out,
            routes,
            dead,
            half,
            until_a.as_ref(),
            Either::Left,
        )?;
        let room = max.saturating_sub(out.len()).max(1);
        let b = read_one(
            &mut self.right,
            &mut self.scratch_b,
            &mut self.routes,
            out,
            routes,
            dead,
            room,
            until_b.as_ref(),
            Either::Right,
        )?;
        self.ended = [a == ReadStatus::End, b == ReadStatus::End];
        Ok(match (a, b) {
            (ReadStatus::End, ReadStatus::End) => ReadStatus::End,
            (ReadStatus::Data, _) | (_, ReadStatus::Data) => ReadStatus::Data,
            _ => ReadStatus::Idle,
        })
    }

    fn partitions(&self) -> Option<Vec<u32>> {
        self.partitions.clone()
    }

    fn inputs(&self) -> usize {
        2
    }

    fn lag(&self) -> Option<Vec<(u32, u64)>> {
        let mut lag = self.left.reader.lag().unwrap_or_default();
        for (p, records) in self.right.reader.lag().unwrap_or_default() {
            match lag.iter_mut().find(|(q, _)| *q == p) {
                Some((_, sum)) => *sum += records,
                None => lag.push((p, records)),
            }
        }
        (!lag.is_empty()).then_some(lag)
    }

    /// Per input and route (input-major): an input read to its end waits for nothing.
    fn waiting(&self) -> Option<Vec<bool>> {
        let routes = self.partitions.as_ref().map_or(0, Vec::len);
        let (a, b) = (self.left.reader.waiting(), self.right.reader.waiting());
        if routes == 0 || (a.is_none() && b.is_none()) {
            return None;
        }
        let side = |w: Option<Vec<bool>>, ended: bool| {
            w.filter(|w| w.len() == routes && !ended)
                .unwrap_or_else(|| vec![false; routes])
        };
        let mut waiting = side(a, self.ended[0]);
        waiting.extend(side(b, self.ended[1]));
        Some(waiting)
    }

    fn pause(&mut self, paused: &[bool]) {
        self.left.reader.pause(paused);
        self.right.reader.pause(paused);
    }

    fn committed(&mut self, position: &SourcePosition) {
        let [a, b] = Self::parts(position);
        self.left.reader.committed(&a);
        self.right.reader.committed(&b);
    }

    fn describe(&self, position: &SourcePosition) -> String {
        let [a, b] = Self::parts(position);
        format!(
            "{}: {}, {}: {}",
            self.left.name,
            self.left.reader.describe(&a),
            self.right.name,
            self.right.reader.describe(&b)
        )
    }

    fn replayable(&self) -> bool {
        self.left.reader.replayable() && self.right.reader.replayable()
    }
}
