//! Helpers the engine's in-process integration tests share: a file-to-file job's settings,
//! one-shot panic switches and reading a file sink's committed lines.

#![allow(dead_code)]

use spate::io::sink::SinkSpec;
use spate::io::source::SourceSpec;
use spate::runtime::{RunConfig, TriggerSpec};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A job from the file `input` to the file sink `out`: 4 partitions on 2 workers, short epochs
/// (2 ms trigger, chunks of 500) and a checkpoint at every epoch, with `state` when given.
pub fn file_job(input: &Path, out: &Path, state: Option<PathBuf>) -> RunConfig {
    RunConfig {
        source: SourceSpec::File(input.to_path_buf()),
        sink: SinkSpec::File(out.to_path_buf()),
        state_dir: state,
        partitions: 4,
        workers: 2,
        trigger: TriggerSpec::Interval(Duration::from_millis(2)),
        checkpoint_interval: Duration::ZERO,
        chunk_size: 500,
        ..RunConfig::default()
    }
}

/// Takes one from `counter` unless it is 0: whether an injected panic is still due.
pub fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// All committed lines under `dir` (not recursing), sorted; none when `dir` does not exist.
pub fn lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return lines;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            let text = std::fs::read_to_string(path).unwrap();
            lines.extend(text.lines().map(String::from));
        }
    }
    lines.sort();
    lines
}
