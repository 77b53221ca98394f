//! A job's input together with its repartition topic: the records go to the first stage, the
//! exchange batches aside to the later one ([`SourceReader::take_exchanged`]).

use super::ExchangeRecord;
use crate::checkpoint::SourcePosition;
use crate::io::source::{NamedReader, ReadStatus, SourceReader, TwoInputs};
use crate::io::DeadLetter;
use crate::join::Either;
use crate::{Error, Result};

/// Whether every input of the first stage was read to its end, given a [`WithExchange`]'s
/// [`inputs_ended`](SourceReader::inputs_ended) (the repartition topic is the last, and never
/// ends).
pub fn first_stage_ended(inputs_ended: &[bool]) -> bool {
    match inputs_ended.split_last() {
        Some((_, inputs)) => !inputs.is_empty() && inputs.iter().all(|&ended| ended),
        None => false,
    }
}

/// Reads a pipeline's input and the repartition topic's partitions of the same key partitions,
/// in turns. Its position is both positions ([`SourcePosition::Inputs`]), so an epoch replays
/// the same batches; the repartition topic never ends (the job decides when the later stage
/// has every upstream partition's last batch), and never dead-letters: a record that is not
/// an exchange batch is an error.
pub struct WithExchange<R> {
    inner: TwoInputs<R, ExchangeRecord>,
    exchange: String,
    read: Vec<Either<R, ExchangeRecord>>,
    routes: Vec<u32>,
    /// Batches read and not yet taken, with their routes.
    exchanged: Vec<(u32, ExchangeRecord)>,
}

impl<R> WithExchange<R> {
    /// `input` and `exchange` (the repartition topic's reader over the same partitions).
    pub fn new(input: NamedReader<R>, exchange: NamedReader<ExchangeRecord>) -> Result<Self> {
        let name = exchange.name.clone();
        Ok(WithExchange {
            inner: TwoInputs::new(input, exchange)?,
            exchange: name,
            read: Vec::new(),
            routes: Vec::new(),
            exchanged: Vec::new(),
        })
    }
}

impl<R: Send> SourceReader<R> for WithExchange<R> {
    fn seek(&mut self, position: SourcePosition) -> Result<()> {
        self.exchanged.clear();
        self.inner.seek(position)
    }

    fn position(&self) -> SourcePosition {
        self.inner.position()
    }

    fn read(
        &mut self,
        out: &mut Vec<R>,
        routes: &mut Vec<u32>,
        dead: &mut Vec<DeadLetter>,
        max: usize,
        until: Option<&SourcePosition>,
    ) -> Result<ReadStatus> {
        let before = dead.len();
        let status = (self.inner).read(&mut self.read, &mut self.routes, dead, max, until)?;
        if let Some(bad) = dead[before..]
            .iter()
            .find(|d| d.input.as_deref() == Some(&self.exchange))
        {
            return Err(Error::ForeignExchange {
                place: format!(
                    "{} (partition {:?}, offset {})",
                    self.exchange, bad.partition, bad.offset
                ),
                detail: bad.error.clone(),
            });
        }
        for (record, route) in self.read.drain(..).zip(self.routes.drain(..)) {
            match record {
                Either::Left(record) => {
                    out.push(record);
                    routes.push(route);
                }
                Either::Right(batch) => self.exchanged.push((route, batch)),
            }
        }
        Ok(status)
    }

    fn take_exchanged(&mut self, out: &mut Vec<(u32, ExchangeRecord)>) {
        out.append(&mut self.exchanged);
    }

    fn partitions(&self) -> Option<Vec<u32>> {
        self.inner.partitions()
    }

    fn lag(&self) -> Option<Vec<(u32, u64)>> {
        self.inner.lag()
    }

    fn inputs(&self) -> usize {
        self.inner.inputs()
    }

    fn waiting(&self) -> Option<Vec<bool>> {
        self.inner.waiting()
    }

    fn inputs_ended(&self) -> Vec<bool> {
        self.inner.inputs_ended()
    }

    fn pause(&mut self, paused: &[bool]) {
        self.inner.pause(paused)
    }

    fn committed(&mut self, position: &SourcePosition) {
        self.inner.committed(position)
    }

    fn describe(&self, position: &SourcePosition) -> String {
        self.inner.describe(position)
    }

    fn replayable(&self) -> bool {
        self.inner.replayable()
    }
}
