//! The built-in generator source: a pipeline supplies an [`EventGenerator`] that makes event
//! number `i` from a seed alone, so any range of events can be generated again for a replay.
//! A large read is generated on every core, each a slice of the range, and kept in index order.

use super::{ReadStatus, SourceReader};
use crate::checkpoint::SourcePosition;
use crate::io::DeadLetter;
use crate::time::Millis;
use crate::Result;
use rayon::prelude::*;
use std::ops::Range;
use std::time::{Duration, Instant};

/// Reads of at least this many events are generated in parallel (smaller ones would spend
/// more on handing out the work than they save).
const PARALLEL_EVENTS: u64 = 1024;

/// Settings of the built-in generator, from the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct GenOptions {
    /// Seed: the same seed gives the same events.
    pub seed: u64,
    /// How many events to generate; `None` for an unbounded stream.
    pub events: Option<u64>,
    /// Events per second; `None` for as fast as possible.
    pub rate: Option<f64>,
    /// How many distinct keys (users, devices, ...) to spread events over.
    pub keys: u64,
    /// Event time of event 0, fixed at the job's first start and kept in its checkpoint.
    pub base_ms: Millis,
    /// Paces events against the wall clock from `base_ms` (event `i` is made once
    /// `(i + 1) / rate` has passed since `base_ms`), so each event's time is when it was made,
    /// however long the job took to start; otherwise pacing starts when the reader does (a
    /// restart, or a `--start` in the past, then replays the events at the rate instead of all
    /// at once).
    pub realtime: bool,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            seed: 1,
            events: Some(1_000_000),
            rate: None,
            keys: 100_000,
            base_ms: 1_767_225_600_000, // 2026-01-01T00:00:00Z
            realtime: false,
        }
    }
}

/// Makes event number `index` of a deterministic stream. Random access by index is what makes
/// the generator replayable: derive every random choice from `(seed, index)`.
pub trait EventGenerator<R>: Send + Sync {
    /// Event number `index`.
    fn generate(&self, index: u64) -> R;

    /// Events `range`, in index order, appended to `out`. By default each by
    /// [`generate`](Self::generate); a generator whose events are cheaper to make in sequence
    /// than one by one overrides it.
    fn generate_range(&self, range: Range<u64>, out: &mut Vec<R>) {
        out.extend(range.map(|i| self.generate(i)));
    }
}

/// Reads events `[position, limit)` from an [`EventGenerator`], paced by an optional rate.
pub struct GeneratorReader<R> {
    generator: Box<dyn EventGenerator<R>>,
    next: u64,
    limit: u64,
    rate: Option<f64>,
    /// Event `paced_from.1` was due at `paced_from.0`; the ones after it follow at the rate.
    paced_from: (Instant, u64),
    /// See [`GenOptions::realtime`]: `paced_from` is then `base_ms` and event 0, for good.
    realtime: bool,
}

impl<R> GeneratorReader<R> {
    /// A reader over `generator` with the limits of `options`.
    pub fn new(generator: Box<dyn EventGenerator<R>>, options: &GenOptions) -> Self {
        let realtime_base = options.realtime.then(|| {
            let since_base = (crate::time::now_ms() - options.base_ms).max(0) as u64;
            let now = Instant::now();
            now.checked_sub(Duration::from_millis(since_base))
                .unwrap_or(now)
        });
        GeneratorReader {
            generator,
            next: 0,
            limit: options.events.unwrap_or(u64::MAX),
            rate: options.rate.filter(|r| *r > 0.0),
            paced_from: (realtime_base.unwrap_or_else(Instant::now), 0),
            realtime: options.realtime,
        }
    }
}

impl<R: Send> GeneratorReader<R> {
    /// Appends events `range` to `out`: a large range as one slice per core, generated in
    /// parallel and appended in index order, so the events are the same either way.
    fn generate(&self, range: Range<u64>, out: &mut Vec<R>) {
        let len = range.end - range.start;
        if len < PARALLEL_EVENTS {
            return self.generator.generate_range(range, out);
        }
        let slices = rayon::current_num_threads().max(1) as u64;
        let step = len.div_ceil(slices);
        let parts: Vec<Vec<R>> = (0..slices)
            .into_par_iter()
            .map(|i| {
                let start = range.start + i * step;
                let slice = start..(start + step).min(range.end);
                let mut part = Vec::with_capacity(step as usize);
                self.generator.generate_range(slice, &mut part);
                part
            })
            .collect();
        out.reserve(len as usize);
        parts.into_iter().for_each(|mut part| out.append(&mut part));
    }
}

impl<R: Send> SourceReader<R> for GeneratorReader<R> {
    fn seek(&mut self, position: SourcePosition) -> Result<()> {
        self.next = position.parts().1;
        if !self.realtime {
            self.paced_from = (Instant::now(), self.next);
        }
        Ok(())
    }

    fn position(&self) -> SourcePosition {
        SourcePosition::at(0, self.next)
    }

    fn read(
        &mut self,
        out: &mut Vec<R>,
        _routes: &mut Vec<u32>,
        _dead: &mut Vec<DeadLetter>,
        max: usize,
        until: Option<&SourcePosition>,
    ) -> Result<ReadStatus> {
        if self.next >= self.limit {
            return Ok(ReadStatus::End);
        }
        let mut end = self.limit.min(self.next.saturating_add(max as u64));
        if let Some(until) = until {
            // A replayed epoch is regenerated at full speed up to where it ended.
            end = end.min(until.parts().1);
        } else if let Some(rate) = self.rate {
            let (since, first) = self.paced_from;
            let due = first + (since.elapsed().as_secs_f64() * rate) as u64;
            end = end.min(due);
            if end <= self.next {
                let wait = (self.next + 1 - first) as f64 / rate - since.elapsed().as_secs_f64();
                std::thread::sleep(Duration::from_secs_f64(wait.clamp(0.0, 0.005)));
                return Ok(ReadStatus::Idle);
            }
        }
        self.generate(self.next..end, out);
        self.next = end;
        Ok(ReadStatus::Data)
    }

    fn replayable(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Squares;
    impl EventGenerator<u64> for Squares {
        fn generate(&self, i: u64) -> u64 {
            i * i
        }
    }

    #[test]
    fn bounded_replayable_and_paced() {
        let opts = GenOptions {
            events: Some(5),
            ..GenOptions::default()
        };
        let mut r = GeneratorReader::new(Box::new(Squares), &opts);
        let (mut out, mut dead) = (Vec::new(), Vec::new());
        assert_eq!(
            r.read(&mut out, &mut Vec::new(), &mut dead, 3, None)
                .unwrap(),
            ReadStatus::Data
        );
        assert_eq!(
            r.read(&mut out, &mut Vec::new(), &mut dead, 3, None)
                .unwrap(),
            ReadStatus::Data
        );
        assert_eq!(
            r.read(&mut out, &mut Vec::new(), &mut dead, 3, None)
                .unwrap(),
            ReadStatus::End
        );
        assert_eq!(out, vec![0, 1, 4, 9, 16]);
        r.seek(SourcePosition::at(0, 2)).unwrap();
        out.clear();
        r.read(
            &mut out,
            &mut Vec::new(),
            &mut dead,
            10,
            Some(&SourcePosition::at(0, 4)),
        )
        .unwrap();
        assert_eq!(out, vec![4, 9]);

        let paced = GenOptions {
            events: None,
            rate: Some(1.0),
            ..GenOptions::default()
        };
        let mut r = GeneratorReader::new(Box::new(Squares), &paced);
        out.clear();
        // At one event per second nothing is due at first: the reader is idle, not busy.
        assert_eq!(
            r.read(&mut out, &mut Vec::new(), &mut dead, 10, None)
                .unwrap(),
            ReadStatus::Idle
        );
        assert!(out.is_empty());
    }

    #[test]
    fn realtime_pacing_follows_the_wall_clock_from_the_first_event_time() {
        // Pacing started 2.5 s ago at one event a second: events 0 and 1 are due now.
        let options = |realtime| GenOptions {
            events: None,
            rate: Some(1.0),
            base_ms: crate::time::now_ms() - 2_500,
            realtime,
            ..GenOptions::default()
        };
        let read = |r: &mut GeneratorReader<u64>| {
            let mut out = Vec::new();
            let status = r.read(&mut out, &mut Vec::new(), &mut Vec::new(), 10, None);
            (status.unwrap(), out)
        };
        let mut late = GeneratorReader::new(Box::new(Squares), &options(true));
        assert_eq!(read(&mut late), (ReadStatus::Data, vec![0, 1]));
        // A seek (a restart) does not move what is due when.
        late.seek(SourcePosition::at(0, 1)).unwrap();
        assert_eq!(read(&mut late), (ReadStatus::Data, vec![1]));
        let mut from_start = GeneratorReader::new(Box::new(Squares), &options(false));
        assert_eq!(read(&mut from_start), (ReadStatus::Idle, vec![]));
    }

    #[test]
    fn a_large_read_is_generated_in_parallel_in_index_order() {
        let opts = GenOptions {
            events: Some(10_000),
            ..GenOptions::default()
        };
        let mut r = GeneratorReader::new(Box::new(Squares), &opts);
        let (mut out, mut dead) = (Vec::new(), Vec::new());
        r.read(&mut out, &mut Vec::new(), &mut dead, 2_500, None)
            .unwrap();
        r.read(&mut out, &mut Vec::new(), &mut dead, 7_500, None)
            .unwrap();
        let expected: Vec<u64> = (0..10_000).map(|i| i * i).collect();
        assert_eq!(out, expected);
    }
}
