//! What the load generator's tests share: running the `spate-loadgen` binary.

use std::process::{Command, Output};

/// Runs `spate-loadgen ARGS` to completion.
pub fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spate-loadgen"))
        .args(args)
        .output()
        .unwrap()
}
