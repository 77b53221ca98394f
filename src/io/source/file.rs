//! The file source: JSON lines from a file or from every file of a directory in name order,
//! read in large blocks and split without copying; positions are (file index and name, byte
//! offset). With `follow` it waits at the end for lines appended to the last file and for new
//! files, like `tail -F` over a log directory.

use super::{decode_json_line, trim_line, LineDecoder, ReadStatus, SourceReader};
use crate::checkpoint::SourcePosition;
use crate::io::DeadLetter;
use crate::{Error, Result};
use rayon::prelude::*;
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const BLOCK: usize = 1 << 20;
/// Pending lines from which decoding is spread over every core.
const PARALLEL_LINES: usize = 512;
/// A read call stops after about this many bytes, so a chunk of long lines stays small.
const CHUNK_BYTES: usize = 16 << 20;
/// How much of an over-long line its dead letter keeps.
const OVERSIZED_HEAD: usize = 1 << 10;
/// How long a following reader with nothing new sleeps before it reports
/// [`ReadStatus::Idle`].
const IDLE_WAIT: Duration = Duration::from_millis(20);
/// How often a following reader lists its directory and checks its file was not replaced.
const LIST_INTERVAL: Duration = Duration::from_millis(200);

/// Reading options of a file source.
#[derive(Debug, Clone, Copy)]
pub struct FileOptions {
    /// Keep reading at the end: lines appended to the last file, and new files of a directory
    /// (which must sort after those already there). Without it the input ends there.
    pub follow: bool,
    /// Read symbolic links found in a directory source.
    pub follow_symlinks: bool,
    /// Longer lines are dead-lettered (with their length and first KiB) without being held in
    /// memory whole.
    pub max_record_bytes: usize,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            follow: false,
            follow_symlinks: false,
            max_record_bytes: 1 << 20,
        }
    }
}

/// A line longer than the limit, being skipped.
#[derive(Debug)]
struct Oversized {
    offset: u64,
    head: Vec<u8>,
    len: u64,
}

/// Reads JSON lines from one file or a directory of files.
///
/// Invariant: when there are files, `segment` is a valid index: at the end of the last file the
/// reader stays there (so a following reader's position names the file it waits on).
pub struct FileReader<R> {
    label: String,
    /// The directory of a directory source.
    dir: Option<PathBuf>,
    files: Vec<PathBuf>,
    /// Symbolic links and other entries of the directory already reported as skipped.
    skipped: BTreeSet<PathBuf>,
    options: FileOptions,
    /// When a following reader last listed its directory.
    listed: Instant,
    segment: usize,
    file: Option<File>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    eof: bool,
    /// The over-long line being skipped, if any.
    oversized: Option<Oversized>,
    /// Whole lines in `buf` not decoded yet: start, end and file offset. They are decoded
    /// together, in parallel, before `buf` changes or a read returns.
    pending: Vec<(usize, usize, u64)>,
    /// Records decoded, in file order, not yet handed out.
    decoded: Vec<R>,
    /// Dead letters, in file order, not yet handed out.
    rejected: Vec<DeadLetter>,
    /// What turns a line into a record (serde_json unless the pipeline gives its own).
    decode: LineDecoder<R>,
}

/// The regular, non-hidden files of `dir` in name order. Symbolic links are skipped unless
/// `follow_symlinks`, with a warning the first time (`skipped` remembers them).
fn list_dir(
    dir: &Path,
    follow_symlinks: bool,
    skipped: &mut BTreeSet<PathBuf>,
) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(dir).map_err(|e| Error::io("cannot list source directory", dir, e))?
    {
        let path = entry
            .map_err(|e| Error::io("cannot list source directory", dir, e))?
            .path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        let link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        if link && !follow_symlinks {
            if skipped.insert(path.clone()) {
                tracing::warn!(
                    "skipping {}: a symbolic link (pass --follow-symlinks to read it)",
                    path.display()
                );
            }
        } else if !hidden && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The name of `path` as positions record it.
fn name_of(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

impl<R: DeserializeOwned + Send> FileReader<R> {
    /// Opens `path`: a file, or a directory whose regular, non-hidden files are read in name
    /// order. Symbolic links inside the directory are skipped (a link can point anywhere, such
    /// as `/etc/passwd`) unless `follow_symlinks`.
    pub fn open(path: &Path, options: &FileOptions) -> Result<Self> {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::io("cannot open source (check --source file:PATH)", path, e))?;
        let mut skipped = BTreeSet::new();
        let (dir, files) = if meta.is_dir() {
            let files = list_dir(path, options.follow_symlinks, &mut skipped)?;
            (Some(path.to_path_buf()), files)
        } else {
            (None, vec![path.to_path_buf()])
        };
        let mut reader = FileReader {
            label: format!("file:{}", path.display()),
            dir,
            files,
            skipped,
            options: FileOptions {
                max_record_bytes: options.max_record_bytes.max(1),
                ..*options
            },
            listed: Instant::now(),
            segment: 0,
            file: None,
            buf: vec![0; BLOCK],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
            oversized: None,
            pending: Vec::new(),
            decoded: Vec::new(),
            rejected: Vec::new(),
            decode: decode_json_line::<R>,
        };
        reader.seek(SourcePosition::Start)?;
        Ok(reader)
    }

    /// Decodes each line with `decode` instead of serde_json.
    pub fn decoding_with(self, decode: LineDecoder<R>) -> Self {
        FileReader { decode, ..self }
    }

    fn changed(&self, detail: String) -> Error {
        Error::SourceChanged {
            input: self.label.clone(),
            detail,
        }
    }

    /// Checks that a recorded position still names the same file, at least `offset` long.
    fn check(&self, index: u32, name: &str, offset: u64) -> Result<()> {
        if name.is_empty() {
            return Ok(()); // nothing was read
        }
        let Some(path) = self
            .files
            .get(index as usize)
            .filter(|p| name_of(p) == name)
        else {
            let now = match self.files.iter().position(|p| name_of(p) == name) {
                Some(i) => format!(
                    "it is file {} now: files were added before it or removed",
                    i + 1
                ),
                None => "it is gone".to_string(),
            };
            return Err(self.changed(format!(
                "the job had read {offset} bytes of {name}, file {} in name order, but {now}",
                index + 1
            )));
        };
        let len = std::fs::metadata(path)
            .map_err(|e| Error::io("cannot open source file", path, e))?
            .len();
        if len < offset {
            return Err(self.changed(format!(
                "the job had read {offset} bytes of {}, but it has {len} now",
                path.display()
            )));
        }
        Ok(())
    }

    fn open_segment(&mut self, offset: u64) -> Result<()> {
        self.decode_pending();
        self.start = 0;
        self.end = 0;
        self.eof = false;
        self.offset = offset;
        self.oversized = None;
        self.file = None;
        if let Some(path) = self.files.get(self.segment) {
            let mut file =
                File::open(path).map_err(|e| Error::io("cannot open source file", path, e))?;
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| Error::io("cannot seek in source file", path, e))?;
            self.file = Some(file);
        }
        Ok(())
    }

    /// Reads more bytes after the unconsumed tail; grows the buffer for very long lines.
    fn refill(&mut self) -> Result<()> {
        self.decode_pending();
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let file = self.file.as_mut().expect("open segment");
        let n = file
            .read(&mut self.buf[self.end..])
            .map_err(|e| Error::io("cannot read source file", &self.files[self.segment], e))?;
        self.eof = n == 0;
        self.end += n;
        Ok(())
    }

    /// At the end of the last file, a following reader looks for more: bytes appended to the
    /// file, or (at most every [`LIST_INTERVAL`]) new files in the directory. Returns whether
    /// there is more to read. Fails when the file was shortened or replaced, or when a new file
    /// sorts before the last one (it would never be read).
    fn poll(&mut self) -> Result<bool> {
        self.refill()?;
        if !self.eof {
            return Ok(true);
        }
        if self.listed.elapsed() < LIST_INTERVAL {
            return Ok(false);
        }
        self.listed = Instant::now();
        let path = &self.files[self.segment];
        let open = self.file.as_ref().expect("open segment").metadata();
        let now = std::fs::metadata(path);
        let read = self.offset + (self.end - self.start) as u64;
        match (open, now) {
            (Ok(open), Ok(now)) if open.ino() == now.ino() && open.dev() == now.dev() => {
                if now.len() < read {
                    return Err(self.changed(format!(
                        "{} was shortened to {} bytes after the job had read {read}",
                        path.display(),
                        now.len()
                    )));
                }
            }
            _ => {
                return Err(self.changed(format!(
                    "{} was replaced or removed while the job was reading it",
                    path.display()
                )))
            }
        }
        let Some(dir) = &self.dir else {
            return Ok(false);
        };
        let listed = list_dir(dir, self.options.follow_symlinks, &mut self.skipped)?;
        let last = self.files.last().cloned();
        let mut added = false;
        for file in listed {
            if last.as_ref().is_some_and(|last| file <= *last) {
                if self.files.binary_search(&file).is_err() {
                    return Err(self.changed(format!(
                        "the new file {} sorts before {}, which was already being read",
                        file.display(),
                        self.files[self.segment].display()
                    )));
                }
            } else {
                self.files.push(file);
                added = true;
            }
        }
        Ok(added)
    }

    /// A following reader of an empty directory lists it (at most every [`LIST_INTERVAL`]) and
    /// opens its first file once there is one.
    fn poll_empty(&mut self) -> Result<bool> {
        let Some(dir) = self
            .dir
            .as_ref()
            .filter(|_| self.listed.elapsed() >= LIST_INTERVAL)
        else {
            return Ok(false);
        };
        self.listed = Instant::now();
        self.files = list_dir(dir, self.options.follow_symlinks, &mut self.skipped)?;
        if self.files.is_empty() {
            return Ok(false);
        }
        self.segment = 0;
        self.open_segment(0)?;
        Ok(true)
    }

    /// Nothing new: waits a moment before saying so, so the caller does not spin.
    fn idle(&self) -> ReadStatus {
        std::thread::sleep(IDLE_WAIT);
        ReadStatus::Idle
    }

    /// Takes up to `max` lines (or up to `until`) for decoding; see [`SourceReader::read`].
    fn scan(&mut self, max: usize, until: Option<&SourcePosition>) -> Result<ReadStatus> {
        let until = until.map(|u| u.parts());
        // A replay reads only what was there when it was recorded: it never waits.
        let following = self.options.follow && until.is_none();
        let (mut lines, mut bytes) = (0, 0);
        loop {
            if self.segment >= self.files.len() && !(following && self.poll_empty()?) {
                return Ok(if following {
                    self.idle()
                } else {
                    ReadStatus::End
                });
            }
            // Never between the pieces of an over-long line: positions are line starts.
            let full = lines >= max || bytes >= CHUNK_BYTES;
            if self.oversized.is_none()
                && (full || until.is_some_and(|u| (self.segment as u32, self.offset) >= u))
            {
                return Ok(ReadStatus::Data);
            }
            match memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                Some(i) => {
                    self.take_line(self.start + i);
                    self.start += 1; // the newline
                    self.offset += 1;
                    (lines, bytes) = (lines + 1, bytes + i + 1);
                }
                None if self.eof => {
                    let last = self.segment + 1 == self.files.len();
                    if last && following {
                        // The last line may still be being written: wait for its newline.
                        if !self.poll()? {
                            return Ok(if lines > 0 {
                                ReadStatus::Data
                            } else {
                                self.idle()
                            });
                        }
                    } else if self.start < self.end || self.oversized.is_some() {
                        // A line without a trailing newline ends its file.
                        bytes += self.end - self.start;
                        self.take_line(self.end);
                        lines += 1;
                    } else if last {
                        return Ok(ReadStatus::End);
                    } else {
                        self.segment += 1;
                        self.open_segment(0)?;
                    }
                }
                None if self.oversized.is_some()
                    || self.end - self.start > self.options.max_record_bytes =>
                {
                    // A line too long to keep: remember its start and length, drop its bytes.
                    let (s, e) = (self.start, self.end);
                    let o = self.oversized.get_or_insert_with(|| Oversized {
                        offset: self.offset,
                        head: self.buf[s..e.min(s + OVERSIZED_HEAD)].to_vec(),
                        len: 0,
                    });
                    o.len += (e - s) as u64;
                    self.offset += (e - s) as u64;
                    self.start = e;
                    self.refill()?;
                }
                None => self.refill()?,
            }
        }
    }

    /// Takes the line from `start` to `end` (exclusive, the newline left alone): to be decoded
    /// (see [`decode_pending`](Self::decode_pending)), or a dead letter when longer than
    /// `--max-record-bytes`.
    fn take_line(&mut self, end: usize) {
        let (s, offset) = (self.start, self.offset);
        self.start = end;
        self.offset += (end - s) as u64;
        let oversized = match self.oversized.take() {
            Some(mut o) => {
                o.len += (end - s) as u64;
                o
            }
            None if end - s > self.options.max_record_bytes => Oversized {
                offset,
                head: self.buf[s..s + OVERSIZED_HEAD.min(end - s)].to_vec(),
                len: (end - s) as u64,
            },
            None => return self.pending.push((s, end, offset)),
        };
        self.decode_pending(); // dead letters stay in file order
        let error = format!(
            "a line of {} bytes is longer than --max-record-bytes {} allows; its first {} bytes are kept here",
            oversized.len,
            self.options.max_record_bytes,
            oversized.head.len()
        );
        let raw = String::from_utf8_lossy(&oversized.head).into_owned();
        self.rejected
            .push(self.dead_letter(oversized.offset, error, raw));
    }

    /// Decodes the pending lines, on every core when there are many (in file order either
    /// way), into the records and dead letters the next read hands out.
    fn decode_pending(&mut self) {
        let (buf, decode_line) = (&self.buf, self.decode);
        let decode = |&(s, e, _): &(usize, usize, u64)| {
            let line = trim_line(&buf[s..e])?;
            Some(decode_line(line).map_err(|error| (error, line)))
        };
        let decoded: Vec<_> = match self.pending.len() {
            n if n >= PARALLEL_LINES => self.pending.par_iter().map(decode).collect(),
            _ => self.pending.iter().map(decode).collect(),
        };
        let mut rejected = Vec::new();
        for (&(_, _, offset), result) in self.pending.iter().zip(decoded) {
            match result {
                Some(Ok(record)) => self.decoded.push(record),
                Some(Err((error, line))) => {
                    rejected.push((offset, error, String::from_utf8_lossy(line).into_owned()));
                }
                None => {}
            }
        }
        self.pending.clear();
        for (offset, error, raw) in rejected {
            self.rejected.push(self.dead_letter(offset, error, raw));
        }
    }

    /// A dead letter of the current file, at `offset`.
    fn dead_letter(&self, offset: u64, error: String, raw: String) -> DeadLetter {
        DeadLetter {
            input: None,
            source: self.label.clone(),
            file: Some(self.files[self.segment].display().to_string()),
            partition: None,
            offset,
            error,
            raw,
        }
    }
}

impl<R: DeserializeOwned + Send> SourceReader<R> for FileReader<R> {
    fn seek(&mut self, position: SourcePosition) -> Result<()> {
        if let SourcePosition::File {
            index,
            name,
            offset,
        } = &position
        {
            self.check(*index, name, *offset)?;
        }
        let (segment, offset) = position.parts();
        self.segment = segment as usize;
        self.open_segment(offset)
    }

    fn position(&self) -> SourcePosition {
        SourcePosition::File {
            index: self.segment as u32,
            name: self
                .files
                .get(self.segment)
                .map_or_else(String::new, |p| name_of(p)),
            offset: self.offset,
        }
    }

    fn describe(&self, position: &SourcePosition) -> String {
        let (segment, offset) = position.parts();
        match self.files.get(segment as usize) {
            Some(file) => format!("byte {offset} of {}", file.display()),
            None => "the end of the input".to_string(),
        }
    }

    fn read(
        &mut self,
        out: &mut Vec<R>,
        _routes: &mut Vec<u32>,
        dead: &mut Vec<DeadLetter>,
        max: usize,
        until: Option<&SourcePosition>,
    ) -> Result<ReadStatus> {
        let status = self.scan(max, until)?;
        self.decode_pending();
        out.append(&mut self.decoded);
        dead.append(&mut self.rejected);
        Ok(status)
    }

    fn replayable(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Rec {
        a: u32,
    }

    fn at(index: u32, name: &str, offset: u64) -> SourcePosition {
        SourcePosition::File {
            index,
            name: name.into(),
            offset,
        }
    }

    fn read_all(
        r: &mut FileReader<Rec>,
        until: Option<&SourcePosition>,
    ) -> (Vec<u32>, Vec<DeadLetter>) {
        let (mut out, mut dead) = (Vec::new(), Vec::new());
        while r
            .read(&mut out, &mut Vec::new(), &mut dead, 2, until)
            .unwrap()
            == ReadStatus::Data
        {
            if until.is_some_and(|u| r.position() == *u) {
                break;
            }
        }
        (out.into_iter().map(|r| r.a).collect(), dead)
    }

    #[test]
    fn an_over_long_line_is_a_dead_letter_never_held_whole() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!("{{\"a\":\"{}\"}}", "x".repeat(3 << 20));
        let text = format!("{{\"a\":1}}\n{long}\n{{\"a\":2}}\n{long}");
        std::fs::write(dir.path().join("f.jsonl"), &text).unwrap();
        let options = FileOptions {
            max_record_bytes: 1 << 20,
            ..FileOptions::default()
        };
        let mut r = FileReader::<Rec>::open(dir.path(), &options).unwrap();
        let (vals, dead) = read_all(&mut r, None);
        assert_eq!(vals, vec![1, 2]);
        assert_eq!(
            dead.len(),
            2,
            "the long lines, the last one without a newline"
        );
        assert_eq!(dead[0].offset, 8);
        assert_eq!(dead[1].offset as usize, 8 + long.len() + 1 + 8);
        assert!(dead[0]
            .error
            .contains(&format!("a line of {} bytes", long.len())));
        assert_eq!(dead[0].raw.len(), OVERSIZED_HEAD);
        assert!(r.buf.len() <= 4 << 20, "buffer grew to {}", r.buf.len());
        // A replay stops exactly after the long line.
        let mut r = FileReader::<Rec>::open(dir.path(), &options).unwrap();
        let stop = at(0, "f.jsonl", 8 + long.len() as u64 + 1);
        let (vals, dead) = read_all(&mut r, Some(&stop));
        assert_eq!((vals, dead.len()), (vec![1], 1));
        assert_eq!(r.position(), stop);
    }

    #[test]
    fn links_in_a_source_directory_are_read_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1.jsonl"), "{\"a\":1}\n").unwrap();
        std::fs::write(outside.path().join("secret"), "{\"a\":2}\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("2.jsonl"))
            .unwrap();
        let mut r = FileReader::<Rec>::open(dir.path(), &FileOptions::default()).unwrap();
        assert_eq!(read_all(&mut r, None).0, vec![1]);
        let mut r = FileReader::<Rec>::open(
            dir.path(),
            &FileOptions {
                follow_symlinks: true,
                ..FileOptions::default()
            },
        )
        .unwrap();
        assert_eq!(read_all(&mut r, None).0, vec![1, 2]);
    }

    /// Reads what a following reader has until it goes idle, waiting up to 5 s for `want`
    /// values (directory listings are rate-limited).
    fn follow_read(r: &mut FileReader<Rec>, want: usize) -> Result<Vec<u32>> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut out = Vec::new();
        loop {
            let status = r.read(&mut out, &mut Vec::new(), &mut Vec::new(), 100, None)?;
            assert_ne!(status, ReadStatus::End, "a following reader never ends");
            if status == ReadStatus::Idle && (out.len() >= want || Instant::now() > deadline) {
                return Ok(out.into_iter().map(|r| r.a).collect());
            }
        }
    }

    fn append(path: &Path, text: &str) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    const FOLLOW: FileOptions = FileOptions {
        follow: true,
        follow_symlinks: false,
        max_record_bytes: 1 << 20,
    };

    #[test]
    fn following_reads_appended_lines_and_new_files_waiting_for_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("1.jsonl");
        append(&first, "{\"a\":1}\n{\"a\":2");
        let mut r = FileReader::<Rec>::open(dir.path(), &FOLLOW).unwrap();
        assert_eq!(
            follow_read(&mut r, 1).unwrap(),
            vec![1],
            "a line being written waits"
        );
        append(&first, "}\n{\"a\":3}\n");
        assert_eq!(follow_read(&mut r, 2).unwrap(), vec![2, 3]);
        // A new file finishes the one before it; its own last line waits for its newline.
        append(&first, "{\"a\":4}");
        append(&dir.path().join("2.jsonl"), "{\"a\":5}\n{\"a\":6}");
        assert_eq!(follow_read(&mut r, 2).unwrap(), vec![4, 5]);
        append(&dir.path().join("2.jsonl"), "\n");
        assert_eq!(follow_read(&mut r, 1).unwrap(), vec![6]);
        assert_eq!(r.position(), at(1, "2.jsonl", 16));
        // A replay does not wait: it reads what is there.
        let mut again = FileReader::<Rec>::open(dir.path(), &FOLLOW).unwrap();
        let (vals, _) = read_all(&mut again, Some(&at(1, "2.jsonl", 8)));
        assert_eq!(vals, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn following_an_empty_directory_reads_its_first_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = FileReader::<Rec>::open(dir.path(), &FOLLOW).unwrap();
        assert_eq!(follow_read(&mut r, 0).unwrap(), Vec::<u32>::new());
        append(&dir.path().join("a.jsonl"), "{\"a\":1}\n");
        assert_eq!(follow_read(&mut r, 1).unwrap(), vec![1]);
    }

    #[test]
    fn following_refuses_a_new_file_that_sorts_first_and_a_shortened_file() {
        let dir = tempfile::tempdir().unwrap();
        append(&dir.path().join("b.jsonl"), "{\"a\":1}\n");
        let mut r = FileReader::<Rec>::open(dir.path(), &FOLLOW).unwrap();
        assert_eq!(follow_read(&mut r, 1).unwrap(), vec![1]);
        append(&dir.path().join("a.jsonl"), "{\"a\":2}\n");
        let err = follow_read(&mut r, 1).unwrap_err().to_string();
        assert!(
            err.contains("a.jsonl sorts before") && err.contains("b.jsonl"),
            "{err}"
        );

        let file = dir.path().join("b.jsonl");
        let mut r = FileReader::<Rec>::open(&file, &FOLLOW).unwrap();
        assert_eq!(follow_read(&mut r, 1).unwrap(), vec![1]);
        std::fs::File::create(&file).unwrap();
        let err = follow_read(&mut r, 1).unwrap_err().to_string();
        assert!(err.contains("was shortened to 0 bytes"), "{err}");
    }

    #[test]
    fn a_position_in_a_file_that_moved_or_shrank_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        append(&dir.path().join("b.jsonl"), "{\"a\":1}\n{\"a\":2}\n");
        let mut r = FileReader::<Rec>::open(dir.path(), &FileOptions::default()).unwrap();
        r.seek(at(0, "b.jsonl", 8)).unwrap();
        append(&dir.path().join("a.jsonl"), "{\"a\":0}\n");
        let mut r = FileReader::<Rec>::open(dir.path(), &FileOptions::default()).unwrap();
        let err = r.seek(at(0, "b.jsonl", 8)).unwrap_err().to_string();
        assert!(err.contains("it is file 2 now"), "{err}");
        let err = r.seek(at(1, "b.jsonl", 100)).unwrap_err().to_string();
        assert!(err.contains("it has 16 now"), "{err}");
        std::fs::remove_file(dir.path().join("b.jsonl")).unwrap();
        let mut r = FileReader::<Rec>::open(dir.path(), &FileOptions::default()).unwrap();
        let err = r.seek(at(1, "b.jsonl", 8)).unwrap_err().to_string();
        assert!(err.contains("it is gone"), "{err}");
    }

    #[test]
    fn reads_lines_dead_letters_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("1.jsonl"),
            "{\"a\":1}\n\nnot json\n{\"a\":2}\r\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("2.jsonl"),
            "{\"a\":3}\n{\"b\":4}\n{\"a\":5}",
        )
        .unwrap();
        std::fs::write(dir.path().join(".hidden"), "ignored").unwrap();
        let mut r = FileReader::<Rec>::open(dir.path(), &FileOptions::default()).unwrap();
        let (vals, dead) = read_all(&mut r, None);
        assert_eq!(vals, vec![1, 2, 3, 5]);
        assert_eq!(dead.len(), 2);
        assert_eq!(dead[0].offset, 9);
        assert_eq!(dead[0].raw, "not json");
        assert!(
            dead[1].error.contains("missing field `a`"),
            "{}",
            dead[1].error
        );
        assert_eq!(dead[1].offset, 8);

        // Resume from a recorded position and stop exactly at another.
        let mut r = FileReader::<Rec>::open(dir.path(), &FileOptions::default()).unwrap();
        let stop = at(1, "2.jsonl", 8);
        let (vals, _) = read_all(&mut r, Some(&stop));
        assert_eq!(vals, vec![1, 2, 3]);
        assert_eq!(r.position(), stop);
        let mut again = FileReader::<Rec>::open(dir.path(), &FileOptions::default()).unwrap();
        again.seek(stop).unwrap();
        assert_eq!(read_all(&mut again, None).0, vec![5]);
    }

    #[test]
    fn lines_decoded_on_every_core_come_out_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        // 2.4 MB: decoded in parallel, buffer by buffer.
        let (mut text, mut offsets) = (String::new(), Vec::new());
        for i in 0..20_000 {
            if i % 97 == 0 {
                offsets.push(text.len() as u64);
                text += &format!("{{\"a\":{i},\"pad\":\"{}\"\n", "y".repeat(80));
            } else {
                text += &format!("{{\"a\":{i},\"pad\":\"{}\"}}\n", "x".repeat(80));
            }
        }
        std::fs::write(dir.path().join("f.jsonl"), &text).unwrap();
        let mut r = FileReader::<Rec>::open(dir.path(), &FileOptions::default()).unwrap();
        let (vals, dead) = read_all(&mut r, None);
        let expected: Vec<u32> = (0..20_000).filter(|i| i % 97 != 0).collect();
        assert_eq!(vals, expected);
        assert_eq!(dead.iter().map(|d| d.offset).collect::<Vec<_>>(), offsets);
        assert!(dead[1].raw.starts_with("{\"a\":97,"), "{}", dead[1].raw);
    }

    #[test]
    fn missing_file_names_the_path_and_flag() {
        let err =
            FileReader::<Rec>::open(Path::new("/no/such/file.jsonl"), &FileOptions::default())
                .err()
                .unwrap()
                .to_string();
        assert!(
            err.contains("/no/such/file.jsonl") && err.contains("--source"),
            "{err}"
        );
    }
}
