//! [`StagingFile`]: one writer's output of one epoch on its way into the file sink's staging
//! folder, written whole at the epoch's end or in parts as it is made.
//!
//! A watermark that fires ten million windows makes a gigabyte of result lines in one epoch;
//! held until the seal, they were a gigabyte of memory the process touched once and gave back
//! (`tx-windows` over ten million keys peaked a gigabyte above the same run whose results were
//! dropped). A partition instead hands its lines to the file sink in parts of a few megabytes
//! ([`EpochSink::stage_in_parts`](super::EpochSink::stage_in_parts)), each appended to the
//! epoch's `.partial` file in the staging folder, and finishes the file at the epoch's end,
//! when it is synced and named like a file staged whole. Nothing changes for the commit or
//! recovery: a `.partial` file is never committed, and a replayed epoch writes it again from
//! its start.

use super::sync_queue::SyncQueue;
use super::{OutputStream, Staged, StagedPayload};
use crate::checkpoint::Epoch;
use crate::io::chunked;
use crate::{Error, Result};
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

/// One writer's output of one epoch and stream, being staged (see the module doc).
#[derive(Debug)]
pub struct StagingFile {
    epoch: Epoch,
    stream: OutputStream,
    /// Where the parts go; `None` when the output was committed before (a replayed epoch):
    /// its parts are dropped, as [`EpochSink::stage`](super::EpochSink::stage) drops it whole.
    open: Option<OpenFile>,
}

/// The `.partial` file parts are appended to, and where it goes next.
#[derive(Debug)]
struct OpenFile {
    file: File,
    partial: PathBuf,
    /// Its staged name, once synced.
    staged: PathBuf,
    /// Its committed name.
    target: PathBuf,
    syncs: Arc<SyncQueue>,
}

impl StagingFile {
    /// Stages into `partial` (created, or emptied when a replay left it), to be synced by
    /// `syncs` and named `staged`, then `target` at the commit.
    pub(super) fn create(
        (epoch, stream): (Epoch, OutputStream),
        partial: PathBuf,
        (staged, target): (PathBuf, PathBuf),
        syncs: Arc<SyncQueue>,
    ) -> Result<Self> {
        let file =
            File::create(&partial).map_err(|e| Error::io("cannot stage output", &partial, e))?;
        let open = OpenFile {
            file,
            partial,
            staged,
            target,
            syncs,
        };
        Ok(StagingFile {
            epoch,
            stream,
            open: Some(open),
        })
    }

    /// An output committed before: its parts are dropped.
    pub(super) fn committed(epoch: Epoch, stream: OutputStream) -> Self {
        StagingFile {
            epoch,
            stream,
            open: None,
        }
    }

    /// The same file, staged as `stream` (what a sink routing streams to other sinks calls
    /// its output).
    pub(super) fn staged_as(self, stream: OutputStream) -> Self {
        StagingFile { stream, ..self }
    }

    /// Appends `bytes`, whole lines.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let Some(open) = &self.open else {
            return Ok(());
        };
        (chunked::write_all(&open.file, bytes))
            .map_err(|e| Error::io("cannot stage output", &open.partial, e))
    }

    /// Appends the last `bytes` and hands the file over to be synced: the output, staged as
    /// [`EpochSink::stage`](super::EpochSink::stage) stages it whole (`None` when it was
    /// committed before).
    pub fn finish(mut self, bytes: &[u8]) -> Result<Option<Staged>> {
        self.write(bytes)?;
        let Some(open) = self.open else {
            return Ok(None);
        };
        (open.syncs).submit(open.file, open.partial, open.staged.clone());
        Ok(Some(Staged {
            epoch: self.epoch,
            stream: self.stream,
            payload: StagedPayload::File {
                staged: open.staged,
                target: open.target,
            },
        }))
    }
}
