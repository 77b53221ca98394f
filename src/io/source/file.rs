//! The file source: JSON lines from a file or from every file of a directory in name order,
//! read in large blocks and split without copying; positions are (file index, byte offset).

use super::{decode_json_line, trim_line, ReadStatus, SourceReader};
use crate::checkpoint::SourcePosition;
use crate::io::DeadLetter;
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

const BLOCK: usize = 1 << 20;
/// A read call stops after about this many bytes, so a chunk of long lines stays small.
const CHUNK_BYTES: usize = 16 << 20;
/// How much of an over-long line its dead letter keeps.
const OVERSIZED_HEAD: usize = 1 << 10;

/// Reading options of a file source.
#[derive(Debug, Clone, Copy)]
pub struct FileOptions {
    /// Read symbolic links found in a directory source.
    pub follow_symlinks: bool,
    /// Longer lines are dead-lettered (with their length and first KiB) without being held in
    /// memory whole.
    pub max_record_bytes: usize,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
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
pub struct FileReader<R> {
    label: String,
    files: Vec<PathBuf>,
    segment: usize,
    file: Option<File>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    eof: bool,
    max_record: usize,
    /// The over-long line being skipped, if any.
    oversized: Option<Oversized>,
    _record: PhantomData<fn() -> R>,
}

/// Whether `path` is a symbolic link (it is skipped, with a warning saying how to read it).
fn is_symlink(path: &Path) -> bool {
    let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if link {
        tracing::warn!(
            "skipping {}: a symbolic link (pass --follow-symlinks to read it)",
            path.display()
        );
    }
    link
}

impl<R: DeserializeOwned> FileReader<R> {
    /// Opens `path`: a file, or a directory whose regular, non-hidden files are read in name
    /// order. Symbolic links inside the directory are skipped (a link can point anywhere, such
    /// as `/etc/passwd`) unless `follow_symlinks`.
    pub fn open(path: &Path, options: &FileOptions) -> Result<Self> {
        let follow_symlinks = options.follow_symlinks;
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::io("cannot open source (check --source file:PATH)", path, e))?;
        let files = if meta.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| Error::io("cannot list source directory", path, e))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| follow_symlinks || !is_symlink(p))
                .filter(|p| {
                    p.is_file()
                        && !p
                            .file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with('.'))
                })
                .collect();
            files.sort();
            files
        } else {
            vec![path.to_path_buf()]
        };
        let mut reader = FileReader {
            label: format!("file:{}", path.display()),
            files,
            segment: 0,
            file: None,
            buf: vec![0; BLOCK],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
            max_record: options.max_record_bytes.max(1),
            oversized: None,
            _record: PhantomData,
        };
        reader.seek(SourcePosition::Start)?;
        Ok(reader)
    }

    fn open_segment(&mut self, offset: u64) -> Result<()> {
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
        if n == 0 {
            self.eof = true;
        }
        self.end += n;
        Ok(())
    }

    /// Takes the line from `start` to `end` (exclusive, the newline left alone): decoded, or
    /// a dead letter when malformed or longer than `--max-record-bytes`.
    fn take_line(&mut self, end: usize, out: &mut Vec<R>, dead: &mut Vec<DeadLetter>) {
        let (s, offset) = (self.start, self.offset);
        self.start = end;
        self.offset += (end - s) as u64;
        let oversized = match self.oversized.take() {
            Some(mut o) => {
                o.len += (end - s) as u64;
                Some(o)
            }
            None if end - s > self.max_record => Some(Oversized {
                offset,
                head: self.buf[s..s + OVERSIZED_HEAD.min(end - s)].to_vec(),
                len: (end - s) as u64,
            }),
            None => None,
        };
        match oversized {
            Some(o) => dead.push(DeadLetter {
                source: self.label.clone(),
                file: Some(self.files[self.segment].display().to_string()),
                partition: None,
                offset: o.offset,
                error: format!(
                    "a line of {} bytes is longer than --max-record-bytes {} allows; its first {} bytes are kept here",
                    o.len,
                    self.max_record,
                    o.head.len()
                ),
                raw: String::from_utf8_lossy(&o.head).into_owned(),
            }),
            None => self.handle_line(&self.buf[s..end], offset, out, dead),
        }
    }

    fn handle_line(&self, line: &[u8], offset: u64, out: &mut Vec<R>, dead: &mut Vec<DeadLetter>) {
        let Some(line) = trim_line(line) else { return };
        match decode_json_line(line) {
            Ok(record) => out.push(record),
            Err(error) => dead.push(DeadLetter {
                source: self.label.clone(),
                file: Some(self.files[self.segment].display().to_string()),
                partition: None,
                offset,
                error,
                raw: String::from_utf8_lossy(line).into_owned(),
            }),
        }
    }
}

impl<R: DeserializeOwned> SourceReader<R> for FileReader<R> {
    fn seek(&mut self, position: SourcePosition) -> Result<()> {
        let (segment, offset) = position.parts();
        self.segment = segment as usize;
        self.open_segment(offset)
    }

    fn position(&self) -> SourcePosition {
        SourcePosition::at(self.segment as u32, self.offset)
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
        let until = until.map(|u| u.parts());
        let (mut lines, mut bytes) = (0, 0);
        loop {
            if self.segment >= self.files.len() {
                return Ok(ReadStatus::End);
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
                    self.take_line(self.start + i, out, dead);
                    self.start += 1; // the newline
                    self.offset += 1;
                    (lines, bytes) = (lines + 1, bytes + i + 1);
                }
                None if self.eof => {
                    if self.start < self.end || self.oversized.is_some() {
                        // A last line without a trailing newline.
                        bytes += self.end - self.start;
                        self.take_line(self.end, out, dead);
                        lines += 1;
                    } else {
                        self.segment += 1;
                        self.open_segment(0)?;
                    }
                }
                None if self.oversized.is_some() || self.end - self.start > self.max_record => {
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
        let stop = SourcePosition::at(0, 8 + long.len() as u64 + 1);
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
        let stop = SourcePosition::at(1, 8);
        let (vals, _) = read_all(&mut r, Some(&stop));
        assert_eq!(vals, vec![1, 2, 3]);
        assert_eq!(r.position(), stop);
        let mut again = FileReader::<Rec>::open(dir.path(), &FileOptions::default()).unwrap();
        again.seek(stop).unwrap();
        assert_eq!(read_all(&mut again, None).0, vec![5]);
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
