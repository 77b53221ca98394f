//! Helpers the engine's in-process integration tests share: one-shot panic switches and
//! reading a file sink's committed lines.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

/// Takes one from `counter` unless it is 0: whether an injected panic is still due.
pub fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// All committed lines under `dir` (not recursing), sorted.
pub fn lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            let text = std::fs::read_to_string(path).unwrap();
            lines.extend(text.lines().map(String::from));
        }
    }
    lines.sort();
    lines
}
