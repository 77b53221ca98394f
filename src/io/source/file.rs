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
    pub fn open(path: &Path, follow_symlinks: bool) -> Result<Self> {
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
        let mut lines = 0;
        loop {
            if self.segment >= self.files.len() {
                return Ok(ReadStatus::End);
            }
            if lines >= max || until.is_some_and(|u| (self.segment as u32, self.offset) >= u) {
                return Ok(ReadStatus::Data);
            }
            match memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                Some(i) => {
                    let (s, offset) = (self.start, self.offset);
                    self.start += i + 1;
                    self.offset += i as u64 + 1;
                    self.handle_line(&self.buf[s..s + i], offset, out, dead);
                    lines += 1;
                }
                None if self.eof => {
                    if self.start < self.end {
                        // A last line without a trailing newline.
                        let (s, e, offset) = (self.start, self.end, self.offset);
                        self.offset += (e - s) as u64;
                        self.start = e;
                        self.handle_line(&self.buf[s..e], offset, out, dead);
                        lines += 1;
                    } else {
                        self.segment += 1;
                        self.open_segment(0)?;
                    }
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
    fn links_in_a_source_directory_are_read_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1.jsonl"), "{\"a\":1}\n").unwrap();
        std::fs::write(outside.path().join("secret"), "{\"a\":2}\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("2.jsonl"))
            .unwrap();
        let mut r = FileReader::<Rec>::open(dir.path(), false).unwrap();
        assert_eq!(read_all(&mut r, None).0, vec![1]);
        let mut r = FileReader::<Rec>::open(dir.path(), true).unwrap();
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
        let mut r = FileReader::<Rec>::open(dir.path(), false).unwrap();
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
        let mut r = FileReader::<Rec>::open(dir.path(), false).unwrap();
        let stop = SourcePosition::at(1, 8);
        let (vals, _) = read_all(&mut r, Some(&stop));
        assert_eq!(vals, vec![1, 2, 3]);
        assert_eq!(r.position(), stop);
        let mut again = FileReader::<Rec>::open(dir.path(), false).unwrap();
        again.seek(stop).unwrap();
        assert_eq!(read_all(&mut again, None).0, vec![5]);
    }

    #[test]
    fn missing_file_names_the_path_and_flag() {
        let err = FileReader::<Rec>::open(Path::new("/no/such/file.jsonl"), false)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("/no/such/file.jsonl") && err.contains("--source"),
            "{err}"
        );
    }
}
