//! The exactly-once file sink. Each writer's output for an epoch is written to
//! `DIR/.staging/<stream>/part-<epoch>-<writer>.jsonl` (via a `.partial` file, written whole at
//! the epoch's end or, past a few megabytes, in parts as it is made (`staging_file.rs`), then
//! synced and renamed on the sink's own blocking pool, `sync_queue`, so the staging folder only
//! ever holds complete files and the writer does not wait for the disk) and renamed into
//! `DIR/part-<epoch>-<writer>.jsonl` (results), `DIR/late/…` or `DIR/dead-letter/…` when the
//! epoch commits. A committed file is never staged again, so replays cannot duplicate output,
//! and nothing but committed results matches `DIR/*.jsonl`. With `--sink parquet:DIR` results
//! are Parquet files, `part-<epoch>-<writer>.parquet` (see `parquet.rs`), staged the same way;
//! late records and dead letters stay JSON lines.

use super::sync_queue::SyncQueue;
use super::{EpochSink, EpochStats, OutputStream, Staged, StagedPayload, StagingFile};
use crate::checkpoint::Epoch;
use crate::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How the file sink writes results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// JSON lines (`--sink file:DIR`).
    JsonLines,
    /// Parquet (`--sink parquet:DIR`).
    Parquet,
}

/// Writes committed epochs as files under a directory.
#[derive(Debug)]
pub struct FileSink {
    dir: PathBuf,
    format: FileFormat,
    /// Complete staged files found at start whose epoch is replayed: committed with it.
    leftovers: Mutex<BTreeMap<Epoch, Vec<Staged>>>,
    /// Staged files on their way to the disk.
    syncs: Arc<SyncQueue>,
}

impl FileSink {
    /// A JSON-lines sink (see [`open_as`](Self::open_as)).
    pub fn open(dir: &Path, follow_symlinks: bool) -> Result<Self> {
        Self::open_as(dir, follow_symlinks, FileFormat::JsonLines)
    }

    /// Creates the directory layout under `dir` when missing, for results in `format`. A
    /// folder of it that is a symbolic link (output could land anywhere) is refused unless
    /// `follow_symlinks`.
    pub fn open_as(dir: &Path, follow_symlinks: bool, format: FileFormat) -> Result<Self> {
        for stream in OutputStream::ALL {
            for folder in [Self::final_dir(dir, stream), Self::staging_dir(dir, stream)] {
                let link = fs::symlink_metadata(&folder).is_ok_and(|m| m.file_type().is_symlink());
                if link && !follow_symlinks && folder != dir {
                    return Err(Error::config(
                        "--sink",
                        folder.display(),
                        "that folder of the sink is a symbolic link; remove it, or pass --follow-symlinks to write through it",
                    ));
                }
                fs::create_dir_all(&folder).map_err(|e| {
                    Error::io(
                        "cannot create sink directory (check --sink file:DIR)",
                        folder,
                        e,
                    )
                })?;
            }
        }
        Ok(FileSink {
            dir: dir.to_path_buf(),
            format,
            leftovers: Mutex::new(BTreeMap::new()),
            syncs: Arc::new(SyncQueue::start()?),
        })
    }

    fn final_dir(dir: &Path, stream: OutputStream) -> PathBuf {
        match stream {
            OutputStream::Results | OutputStream::Named(_) | OutputStream::Repartition => {
                dir.to_path_buf()
            }
            other => dir.join(other.dir_name()),
        }
    }

    fn staging_dir(dir: &Path, stream: OutputStream) -> PathBuf {
        dir.join(".staging").join(stream.dir_name())
    }

    /// The name of `writer`'s output file of `epoch` in `stream`.
    fn file_name(&self, epoch: Epoch, writer: &str, stream: OutputStream) -> String {
        format!("part-{epoch:012}-{writer}.{}", self.extension(stream))
    }

    /// The extension of `stream`'s files: `parquet` for Parquet results, else `jsonl`.
    fn extension(&self, stream: OutputStream) -> &'static str {
        match (self.format, stream) {
            (
                FileFormat::Parquet,
                OutputStream::Results | OutputStream::Named(_) | OutputStream::Repartition,
            ) => "parquet",
            _ => "jsonl",
        }
    }

    /// The files in `dir`, each with its epoch when it is an output file
    /// (`part-<epoch>-<writer>.jsonl` or `.parquet`).
    fn part_files(dir: &Path) -> Result<Vec<(Option<Epoch>, PathBuf)>> {
        let list_error = |e| Error::io("cannot list sink directory", dir, e);
        let mut files = Vec::new();
        for entry in fs::read_dir(dir).map_err(list_error)? {
            let path = entry.map_err(list_error)?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let output = name.ends_with(".jsonl") || name.ends_with(".parquet");
            let epoch = Self::parse_epoch(name).filter(|_| output);
            files.push((epoch, path));
        }
        Ok(files)
    }

    fn parse_epoch(name: &str) -> Option<Epoch> {
        name.strip_prefix("part-")?.get(..12)?.parse().ok()
    }

    fn rename(staged: &Path, target: &Path) -> Result<()> {
        match fs::rename(staged, target) {
            Ok(()) => Ok(()),
            // Renamed by an earlier attempt: the committed file is already in place.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && target.exists() => Ok(()),
            Err(e) => Err(Error::io("cannot commit output file", staged, e)),
        }
    }

    /// Where `writer`'s output of `epoch` in `stream` is staged: a new `.partial` file in the
    /// staging folder, or nowhere when that output was committed before (a replay).
    fn staging_file(
        &self,
        epoch: Epoch,
        stream: OutputStream,
        writer: &str,
    ) -> Result<StagingFile> {
        let name = self.file_name(epoch, writer, stream);
        let target = Self::final_dir(&self.dir, stream).join(&name);
        if target.exists() {
            return Ok(StagingFile::committed(epoch, stream));
        }
        let staged = Self::staging_dir(&self.dir, stream).join(&name);
        let partial = staged.with_extension("partial");
        let (at, names) = ((epoch, stream), (staged, target));
        StagingFile::create(at, partial, names, self.syncs.clone())
    }

    fn sync_dirs(&self) -> Result<()> {
        let dirs = OutputStream::ALL.map(|stream| Self::final_dir(&self.dir, stream));
        Self::sync_each(dirs.iter().map(PathBuf::as_path))
    }

    /// Makes the renames into each of `dirs` durable.
    fn sync_each<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> Result<()> {
        for dir in dirs {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::io("cannot sync sink directory", dir, e))?;
        }
        Ok(())
    }
}

impl EpochSink for FileSink {
    fn location(&self, stream: OutputStream) -> String {
        format!("{}/", Self::final_dir(&self.dir, stream).display())
    }

    fn stage(
        &self,
        epoch: Epoch,
        stream: OutputStream,
        writer: &str,
        bytes: Vec<u8>,
    ) -> Result<Option<Staged>> {
        if bytes.is_empty() {
            return Ok(None);
        }
        let file = self.staging_file(epoch, stream, writer)?;
        let bytes = match self.extension(stream) {
            "parquet" => super::parquet::encode(&bytes)?,
            _ => bytes,
        };
        file.finish(&bytes)
    }

    /// JSON lines only: a Parquet file is encoded whole.
    fn stage_in_parts(
        &self,
        epoch: Epoch,
        stream: OutputStream,
        writer: &str,
    ) -> Result<Option<StagingFile>> {
        match self.extension(stream) {
            "jsonl" => self.staging_file(epoch, stream, writer).map(Some),
            _ => Ok(None),
        }
    }

    fn commit(&self, epoch: Epoch, mut staged: Vec<Staged>, _stats: &EpochStats) -> Result<()> {
        if let Some(left) = self.leftovers.lock().expect("sink lock").remove(&epoch) {
            staged.extend(left);
        }
        let files: Vec<(&Path, &Path)> = (staged.iter())
            .filter_map(|s| match &s.payload {
                StagedPayload::File { staged, target } => {
                    Some((staged.as_path(), target.as_path()))
                }
                _ => None,
            })
            .collect();
        self.syncs.wait(files.iter().map(|(staged, _)| *staged))?;
        let mut dirs = BTreeSet::new();
        for (staged, target) in files {
            Self::rename(staged, target)?;
            dirs.insert(target.parent().unwrap_or(&self.dir));
        }
        Self::sync_each(dirs)
    }

    fn recover(&self, committed: Epoch, recorded: Epoch) -> Result<()> {
        let mut leftovers = self.leftovers.lock().expect("sink lock");
        for stream in OutputStream::ALL {
            let staging = Self::staging_dir(&self.dir, stream);
            for (epoch, path) in Self::part_files(&staging)? {
                match epoch {
                    Some(epoch) if epoch <= recorded => {
                        let name = path.file_name().expect("a listed file has a name");
                        let target = Self::final_dir(&self.dir, stream).join(name);
                        let payload = StagedPayload::File {
                            staged: path.clone(),
                            target: target.clone(),
                        };
                        if epoch <= committed {
                            Self::rename(&path, &target)?;
                        } else {
                            leftovers.entry(epoch).or_default().push(Staged {
                                epoch,
                                stream,
                                payload,
                            });
                        }
                    }
                    // Unrecorded epochs and interrupted writes: their epoch runs again.
                    _ => fs::remove_file(&path)
                        .map_err(|e| Error::io("cannot remove stale staged file", &path, e))?,
                }
            }
        }
        drop(leftovers);
        self.sync_dirs()
    }

    fn claim_output(&self, recorded: Epoch, state: &str, overwrite: bool) -> Result<()> {
        let mut foreign = Vec::new();
        for stream in OutputStream::ALL {
            for (epoch, path) in Self::part_files(&Self::final_dir(&self.dir, stream))? {
                if let Some(epoch) = epoch.filter(|e| *e > recorded) {
                    foreign.push((epoch, path));
                }
            }
        }
        let (Some(first), Some(last)) = (
            foreign.iter().map(|(e, _)| *e).min(),
            foreign.iter().map(|(e, _)| *e).max(),
        ) else {
            return Ok(());
        };
        if !overwrite {
            return Err(Error::ForeignOutput {
                sink: self.dir.clone(),
                state: state.to_string(),
                files: foreign.len(),
                first,
                last,
            });
        }
        tracing::warn!(
            files = foreign.len(),
            "--overwrite: deleting earlier output in {}",
            self.dir.display()
        );
        for (_, path) in foreign {
            fs::remove_file(&path)
                .map_err(|e| Error::io("cannot delete earlier output", &path, e))?;
        }
        self.sync_dirs()
    }

    fn exactly_once(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".jsonl"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_sink_folder_that_is_a_link_is_refused_unless_asked() {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), tmp.path().join("dead-letter")).unwrap();
        let err = FileSink::open(tmp.path(), false).err().unwrap().to_string();
        assert!(
            err.contains("dead-letter") && err.contains("--follow-symlinks"),
            "{err}"
        );
        assert!(FileSink::open(tmp.path(), true).is_ok());
    }

    #[test]
    fn stage_commit_and_recover() {
        let tmp = tempfile::tempdir().unwrap();
        let sink = FileSink::open(tmp.path(), false).unwrap();
        let a = sink
            .stage(1, OutputStream::Results, "p000", b"{\"x\":1}\n".to_vec())
            .unwrap();
        assert!(sink
            .stage(1, OutputStream::Results, "p001", vec![])
            .unwrap()
            .is_none());
        assert!(
            committed(tmp.path()).is_empty(),
            "nothing visible before commit"
        );
        sink.commit(1, a.into_iter().collect(), &EpochStats::default())
            .unwrap();
        assert_eq!(committed(tmp.path()), vec!["part-000000000001-p000.jsonl"]);
        // A committed epoch is never staged again.
        assert!(sink
            .stage(1, OutputStream::Results, "p000", b"x\n".to_vec())
            .unwrap()
            .is_none());

        // Leftovers: epoch 2 staged (committed at recovery), epoch 3 staged (waits for its
        // replay), epoch 4 unrecorded (dropped), plus an interrupted write.
        for e in 2..=4 {
            sink.stage(e, OutputStream::Late, "p000", b"{}\n".to_vec())
                .unwrap();
        }
        let partial = FileSink::staging_dir(tmp.path(), OutputStream::Late)
            .join("part-000000000005-p000.partial");
        fs::write(&partial, "half").unwrap();
        drop(sink); // a restart: dropping the first sink finishes the syncs it was handed
        let sink = FileSink::open(tmp.path(), false).unwrap();
        sink.recover(2, 3).unwrap();
        let late = tmp.path().join("late");
        assert_eq!(committed(&late), vec!["part-000000000002-p000.jsonl"]);
        assert!(!partial.exists());
        sink.commit(3, Vec::new(), &EpochStats::default()).unwrap();
        assert_eq!(committed(&late).len(), 2);
        assert!(committed(&FileSink::staging_dir(tmp.path(), OutputStream::Late)).is_empty());
    }
}
