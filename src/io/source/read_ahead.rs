//! Reading ahead: while the source thread routes a chunk, the next chunk of a replayable input
//! is read (decoded, or generated) on a thread of its own.
//!
//! A file or generator read decodes on every core, but then the source thread routes the chunk
//! alone while the decoding threads wait for its next read: on `nexmark-q0` from a file a third
//! of two cores sat idle. [`ReadAhead`] wraps such a reader and, once it has handed out a chunk,
//! starts the same read again (the same `max`, the same `until`) on its thread:
//!
//! ```text
//! source thread:  read 1 ─ route 1 ─ take 2 ─ route 2 ─ take 3 ─ route 3 …
//! read-ahead:              read 2 ──┘         read 3 ──┘
//! ```
//!
//! The next read with those arguments takes that chunk. A read with others (the last read
//! under an epoch's record cap, the first of the next replayed epoch) moves the reader back to
//! where the last chunk handed out ended and reads anew. So every read returns exactly what the
//! wrapped reader would have returned at that point without reading ahead: reading ahead
//! changes when input is read, never what, and results stay a function of the input.
//!
//! A reader of several inputs (a join) learns which input to read next from
//! [`align`](SourceReader::align), called after each chunk is routed, so it reads ahead from
//! there. Partitioned readers (Kafka, whose partitions are paused between reads) and readers
//! that cannot go back (stdin) are left as they are ([`read_ahead`]).

use super::{ReadStatus, SourceReader};
use crate::checkpoint::SourcePosition;
use crate::io::kafka::repartition::ExchangeRecord;
use crate::io::DeadLetter;
use crate::time::Millis;
use crate::{Error, Result};
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// `reader`, reading ahead when it can go back to a position and routes by key (see the
/// module doc); as it is otherwise.
pub fn read_ahead<R: Send + 'static>(reader: Box<dyn SourceReader<R>>) -> Box<dyn SourceReader<R>> {
    if reader.replayable() && reader.partitions().is_none() {
        Box::new(ReadAhead::new(reader))
    } else {
        reader
    }
}

/// The arguments of a read: the next read takes a chunk read ahead only with equal ones.
#[derive(Debug, Clone, PartialEq)]
struct Args {
    max: usize,
    until: Option<SourcePosition>,
}

/// What one read of the wrapped reader gave, and what the reader said right after it.
struct Chunk<R> {
    out: Vec<R>,
    routes: Vec<u32>,
    dead: Vec<DeadLetter>,
    exchanged: Vec<(u32, ExchangeRecord)>,
    status: Result<ReadStatus>,
    after: After,
}

/// What the wrapped reader says of itself, taken right after a read: what a caller is told
/// whatever was read ahead since.
#[derive(Debug, Clone)]
struct After {
    position: SourcePosition,
    waiting: Option<Vec<bool>>,
    inputs_ended: Vec<bool>,
    lag: Option<Vec<(u32, u64)>>,
}

impl After {
    fn of<R>(reader: &dyn SourceReader<R>) -> Self {
        After {
            position: reader.position(),
            waiting: reader.waiting(),
            inputs_ended: reader.inputs_ended(),
            lag: reader.lag(),
        }
    }
}

impl<R> Chunk<R> {
    /// Empty buffers, to read into.
    fn new(after: After) -> Self {
        Chunk {
            out: Vec::new(),
            routes: Vec::new(),
            dead: Vec::new(),
            exchanged: Vec::new(),
            status: Ok(ReadStatus::Data),
            after,
        }
    }

    /// Reads `args` from `reader` into these (empty) buffers.
    fn read(mut self, reader: &mut dyn SourceReader<R>, args: &Args) -> Self {
        let (out, routes, dead) = (&mut self.out, &mut self.routes, &mut self.dead);
        self.status = reader.read(out, routes, dead, args.max, args.until.as_ref());
        reader.take_exchanged(&mut self.exchanged);
        self.after = After::of(reader);
        self
    }
}

/// The wrapped reader, shared with the read-ahead thread, which holds the lock while it reads.
type Shared<R> = Arc<Mutex<Box<dyn SourceReader<R>>>>;

/// The read-ahead thread: reads each chunk it is sent and sends it back.
struct Thread<R> {
    jobs: Sender<(Args, Chunk<R>)>,
    done: Receiver<(Args, Chunk<R>)>,
    handle: JoinHandle<()>,
}

impl<R: Send + 'static> Thread<R> {
    fn spawn(reader: Shared<R>) -> Result<Self> {
        let (jobs, todo) = channel::<(Args, Chunk<R>)>();
        let (finished, done) = channel();
        let handle = std::thread::Builder::new()
            .name("spate-read-ahead".into())
            .spawn(move || {
                for (args, chunk) in todo {
                    let chunk = read_caught(&reader, chunk, &args);
                    if finished.send((args, chunk)).is_err() {
                        return;
                    }
                }
            })
            .map_err(Error::thread("read-ahead"))?;
        Ok(Thread { jobs, done, handle })
    }
}

/// Reads `args` into `chunk`; a panic of the reader becomes the chunk's error (and poisons the
/// lock, so the reader is not used again).
fn read_caught<R>(reader: &Shared<R>, chunk: Chunk<R>, args: &Args) -> Chunk<R> {
    let after = chunk.after.clone();
    let read = std::panic::catch_unwind(AssertUnwindSafe(|| match reader.lock() {
        Ok(mut reader) => chunk.read(reader.as_mut(), args),
        Err(_) => Chunk {
            status: Err(panicked()),
            ..Chunk::new(after.clone())
        },
    }));
    read.unwrap_or_else(|_| Chunk {
        status: Err(panicked()),
        ..Chunk::new(after)
    })
}

fn panicked() -> Error {
    Error::Panicked {
        what: "the source's reader".into(),
    }
}

/// A [`SourceReader`] that reads the next chunk of the reader it wraps while the caller routes
/// the last one (see the module doc).
///
/// Invariant: `after` describes the wrapped reader right after the last chunk handed out (or
/// the last seek), which is what the caller is told, whatever was read ahead since; a chunk
/// read ahead is in `ahead` (on its way, its arguments) or `ready` (back, with the arguments it
/// is good for: `None` once a call changed what the reader would read).
pub struct ReadAhead<R> {
    reader: Shared<R>,
    after: After,
    ahead: Option<Args>,
    ready: Option<(Option<Args>, Chunk<R>)>,
    /// Buffers for the next chunk (the caller's, from the last exchange).
    spare: Option<Chunk<R>>,
    /// The exchange batches of the chunks handed out, until the caller takes them.
    exchanged: Vec<(u32, ExchangeRecord)>,
    /// The arguments of the last read, read ahead after [`align`](SourceReader::align) by a
    /// reader of several inputs.
    last: Option<Args>,
    inputs: usize,
    thread: Option<Thread<R>>,
}

impl<R: Send + 'static> ReadAhead<R> {
    /// Wraps `reader`, which must be [replayable](SourceReader::replayable).
    pub fn new(reader: Box<dyn SourceReader<R>>) -> Self {
        ReadAhead {
            after: After::of(reader.as_ref()),
            inputs: reader.inputs(),
            reader: Arc::new(Mutex::new(reader)),
            ahead: None,
            ready: None,
            spare: None,
            exchanged: Vec::new(),
            last: None,
            thread: None,
        }
    }

    /// The wrapped reader, once no read ahead holds it (what that read brings is kept in
    /// `ready`). An error once the reader panicked.
    fn reader(&mut self) -> Result<MutexGuard<'_, Box<dyn SourceReader<R>>>> {
        self.settle()?;
        self.reader.lock().map_err(|_| panicked())
    }

    /// Waits for the read ahead, if one runs, and keeps its chunk in `ready`.
    fn settle(&mut self) -> Result<()> {
        if self.ahead.take().is_some() {
            let thread = self
                .thread
                .as_ref()
                .expect("a read ahead runs on the thread");
            let (args, chunk) = thread.done.recv().map_err(|_| panicked())?;
            self.ready = Some((Some(args), chunk));
        }
        Ok(())
    }

    /// Starts reading `args` ahead (the thread starts on first use).
    fn start(&mut self, args: Args) -> Result<()> {
        if self.thread.is_none() {
            self.thread = Some(Thread::spawn(self.reader.clone())?);
        }
        let spare = self.buffers();
        let thread = self.thread.as_ref().expect("started above");
        thread
            .jobs
            .send((args.clone(), spare))
            .map_err(|_| panicked())?;
        self.ahead = Some(args);
        Ok(())
    }

    /// Empty buffers to read into.
    fn buffers(&mut self) -> Chunk<R> {
        (self.spare.take()).unwrap_or_else(|| Chunk::new(self.after.clone()))
    }

    /// The chunk `args` read from where the last one ended: the one read ahead when it was
    /// read with `args`, else read now (after moving back, if a read ahead moved on).
    fn chunk(&mut self, args: &Args) -> Result<Chunk<R>> {
        self.settle()?;
        let stale = match self.ready.take() {
            Some((Some(read), chunk)) if read == *args => return Ok(chunk),
            Some((_, chunk)) => Some(chunk),
            None => None,
        };
        let buffers = self.buffers();
        let position = self.after.position.clone();
        let mut reader = self.reader()?;
        if let Some(stale) = stale {
            if stale.after.position != position {
                reader.seek(position)?;
            }
        }
        Ok(buffers.read(reader.as_mut(), args))
    }

    /// Forgets that the chunk read ahead is good for its arguments: a call changed what the
    /// reader reads next.
    fn invalidate(&mut self) {
        if let Some((args, _)) = &mut self.ready {
            *args = None;
        }
    }
}

impl<R: Send + 'static> SourceReader<R> for ReadAhead<R> {
    fn seek(&mut self, position: SourcePosition) -> Result<()> {
        let mut reader = self.reader()?;
        reader.seek(position)?;
        let after = After::of(reader.as_ref());
        drop(reader);
        self.after = after;
        self.ready = None;
        Ok(())
    }

    fn position(&self) -> SourcePosition {
        self.after.position.clone()
    }

    fn read(
        &mut self,
        out: &mut Vec<R>,
        routes: &mut Vec<u32>,
        dead: &mut Vec<DeadLetter>,
        max: usize,
        until: Option<&SourcePosition>,
    ) -> Result<ReadStatus> {
        let args = Args {
            max,
            until: until.cloned(),
        };
        let mut chunk = self.chunk(&args)?;
        hand_over(&mut chunk.out, out);
        hand_over(&mut chunk.routes, routes);
        hand_over(&mut chunk.dead, dead);
        self.after = chunk.after.clone();
        self.exchanged.append(&mut chunk.exchanged);
        let status = std::mem::replace(&mut chunk.status, Ok(ReadStatus::Data));
        self.spare = Some(chunk);
        if status.as_ref().is_ok_and(|s| *s == ReadStatus::Data) {
            match self.inputs {
                1 => self.start(args)?,
                _ => self.last = Some(args),
            }
        }
        status
    }

    fn partitions(&self) -> Option<Vec<u32>> {
        None // only readers routing by key are wrapped
    }

    fn lag(&self) -> Option<Vec<(u32, u64)>> {
        self.after.lag.clone()
    }

    fn inputs(&self) -> usize {
        self.inputs
    }

    fn waiting(&self) -> Option<Vec<bool>> {
        self.after.waiting.clone()
    }

    fn inputs_ended(&self) -> Vec<bool> {
        self.after.inputs_ended.clone()
    }

    fn pause(&mut self, paused: &[bool]) {
        let Ok(mut reader) = self.reader() else {
            return; // the next read reports the panic
        };
        reader.pause(paused);
        drop(reader);
        self.invalidate();
    }

    /// Only a reader of several inputs aligns them (others ignore it, and are not waited for):
    /// it reads ahead from here, knowing which input to read next.
    fn align(&mut self, newest: &[Option<Millis>]) {
        if self.inputs < 2 {
            return;
        }
        let Ok(mut reader) = self.reader() else {
            return; // the next read reports the panic
        };
        reader.align(newest);
        drop(reader);
        self.invalidate();
        if let Some(args) = self.last.take() {
            // A failure to start reads now instead.
            let _ = self.start(args);
        }
    }

    fn committed(&mut self, position: &SourcePosition) {
        if let Ok(mut reader) = self.reader() {
            reader.committed(position);
        }
    }

    fn describe(&self, position: &SourcePosition) -> String {
        match self.reader.lock() {
            Ok(reader) => reader.describe(position),
            Err(_) => format!("{position:?}"),
        }
    }

    fn replayable(&self) -> bool {
        true
    }

    fn take_exchanged(&mut self, out: &mut Vec<(u32, ExchangeRecord)>) {
        out.append(&mut self.exchanged);
    }
}

/// Moves what `chunk` holds to the caller's `out`: by swapping the vectors when `out` is empty
/// (the caller's buffer then reads the next chunk), else appended.
fn hand_over<T>(chunk: &mut Vec<T>, out: &mut Vec<T>) {
    if out.is_empty() {
        std::mem::swap(chunk, out);
    } else {
        out.append(chunk);
    }
}

impl<R> Drop for ReadAhead<R> {
    fn drop(&mut self) {
        if let Some(Thread { jobs, done, handle }) = self.thread.take() {
            drop(jobs);
            drop(done);
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::source::{FileOptions, FileReader};

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Rec {
        a: u32,
    }

    /// What a read gave: records, dead letters' offsets, status and the position after it.
    type Step = (Vec<u32>, Vec<u64>, ReadStatus, SourcePosition);

    fn step(
        reader: &mut dyn SourceReader<Rec>,
        max: usize,
        until: Option<&SourcePosition>,
    ) -> Step {
        let (mut out, mut dead) = (Vec::new(), Vec::new());
        let status = reader.read(&mut out, &mut Vec::new(), &mut dead, max, until);
        let offsets = dead.iter().map(|d| d.offset).collect();
        let records = out.iter().map(|r| r.a).collect();
        (records, offsets, status.unwrap(), reader.position())
    }

    #[test]
    fn reading_ahead_gives_what_the_reader_gives_whatever_the_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let lines: Vec<String> = (0..3_000)
            .map(|i| match i % 97 {
                13 => "{\"a\":".to_string(),
                50 => String::new(),
                _ => format!("{{\"a\":{i}}}"),
            })
            .collect();
        for (name, part) in [("1.jsonl", &lines[..1_200]), ("2.jsonl", &lines[1_200..])] {
            std::fs::write(dir.path().join(name), part.join("\n") + "\n").unwrap();
        }
        let open = || FileReader::<Rec>::open(dir.path(), &FileOptions::default()).unwrap();
        // The positions a plain reader passes, to replay up to and to seek to.
        let mut plain = open();
        let mut marks = Vec::new();
        while step(&mut plain, 61, None).2 == ReadStatus::Data {
            marks.push(plain.position());
        }
        let (mut plain, mut ahead) = (open(), ReadAhead::new(Box::new(open())));
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below as u64) as usize
        };
        let mut steps = 0;
        loop {
            // Mostly the same arguments again, as a live job reads; sometimes others.
            let max = [70, 70, 70, 1 + next(90)][next(4)];
            let until = (next(5) == 0).then(|| marks[next(marks.len())].clone());
            if next(40) == 0 {
                let to = marks[next(marks.len())].clone();
                plain.seek(to.clone()).unwrap();
                ahead.seek(to).unwrap();
            }
            let want = step(&mut plain, max, until.as_ref());
            assert_eq!(step(&mut ahead, max, until.as_ref()), want, "step {steps}");
            steps += 1;
            if want.2 == ReadStatus::End {
                break;
            }
        }
        assert!(steps > 20, "{steps} steps");
    }

    /// Numbers `next..end`, one per record, noting the thread of each read and each seek.
    struct Numbers {
        next: u64,
        end: u64,
        log: Arc<Mutex<Vec<String>>>,
        panic_at: Option<u64>,
    }

    impl SourceReader<u64> for Numbers {
        fn seek(&mut self, position: SourcePosition) -> Result<()> {
            self.next = position.parts().1;
            self.log.lock().unwrap().push(format!("seek {}", self.next));
            Ok(())
        }

        fn position(&self) -> SourcePosition {
            SourcePosition::At {
                segment: 0,
                offset: self.next,
            }
        }

        fn read(
            &mut self,
            out: &mut Vec<u64>,
            _: &mut Vec<u32>,
            _: &mut Vec<DeadLetter>,
            max: usize,
            _: Option<&SourcePosition>,
        ) -> Result<ReadStatus> {
            let thread = std::thread::current().name().unwrap_or("").to_string();
            self.log.lock().unwrap().push(thread);
            assert!(self.panic_at != Some(self.next), "the reader broke");
            let to = (self.next + max as u64).min(self.end);
            out.extend(self.next..to);
            self.next = to;
            Ok(if to == self.end {
                ReadStatus::End
            } else {
                ReadStatus::Data
            })
        }

        fn replayable(&self) -> bool {
            true
        }
    }

    fn numbers(end: u64, panic_at: Option<u64>) -> (ReadAhead<u64>, Arc<Mutex<Vec<String>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let reader = Numbers {
            next: 0,
            end,
            log: log.clone(),
            panic_at,
        };
        (ReadAhead::new(Box::new(reader)), log)
    }

    fn read(reader: &mut ReadAhead<u64>, max: usize) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        reader.read(&mut out, &mut Vec::new(), &mut Vec::new(), max, None)?;
        Ok(out)
    }

    #[test]
    fn the_next_chunk_is_read_on_the_read_ahead_thread_and_read_again_for_other_arguments() {
        let (mut reader, log) = numbers(100, None);
        let caller = std::thread::current().name().unwrap_or("").to_string();
        assert_eq!(read(&mut reader, 10).unwrap(), (0..10).collect::<Vec<_>>());
        assert_eq!(read(&mut reader, 10).unwrap(), (10..20).collect::<Vec<_>>());
        // Read ahead: 20..30; these arguments differ, so back to 20 and read here.
        assert_eq!(read(&mut reader, 5).unwrap(), (20..25).collect::<Vec<_>>());
        assert_eq!(reader.position().parts(), (0, 25));
        let log = log.lock().unwrap().clone();
        let ahead = "spate-read-ahead".to_string();
        assert_eq!(
            log[..5],
            [
                caller.clone(),
                ahead.clone(),
                ahead,
                "seek 20".into(),
                caller
            ]
        );
    }

    #[test]
    fn a_panic_of_the_reader_ahead_is_an_error_of_the_next_read() {
        let (mut reader, _) = numbers(100, Some(10));
        assert_eq!(read(&mut reader, 10).unwrap().len(), 10);
        for _ in 0..2 {
            let error = read(&mut reader, 10).unwrap_err();
            assert!(matches!(error, Error::Panicked { .. }), "{error}");
        }
    }
}
