//! Helpers shared by the binary's end-to-end tests: input files, running `spate`, reading
//! committed output.

#![allow(dead_code)]

use spate::io::source::{EventGenerator, GenOptions};
use spate_actors::events::TransactionGenerator;
use std::path::Path;
use std::process::{Command, Output};

/// A `spate` command with metrics off (tests run in parallel).
pub fn spate(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spate"));
    cmd.args(args).env("RUST_LOG", "warn");
    if args.first() == Some(&"run") && !args.contains(&"--metrics-addr") {
        cmd.args(["--metrics-addr", "off"]);
    }
    cmd
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The whole response (status line, headers, body) to `GET path` at `addr`, once it answers.
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).ok()?;
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .ok()?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: spate\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    conn.read_to_string(&mut response).ok()?;
    Some(response)
}

/// The value of the counter `name` (summed over its label sets) served at `addr`, once the
/// job serves metrics.
pub fn counter(addr: &str, name: &str) -> Option<f64> {
    let body = http_get(addr, "/metrics")?;
    let values: Vec<f64> = body
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// Waits up to `limit` until `ready` holds, polling every 50 ms; panics naming `what` if not.
pub fn wait_until(what: &str, limit: std::time::Duration, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Sends SIGTERM to `child` (a graceful stop: finish the epoch, checkpoint, exit 0); false
/// when it could not be delivered (the process had already exited).
pub fn sigterm(child: &std::process::Child) -> bool {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// `file:PATH`, as `--source` and `--sink` take a path.
pub fn file_arg(path: &Path) -> String {
    format!("file:{}", path.display())
}

/// Runs `spate` to completion and asserts it succeeded.
pub fn run_ok(args: &[&str]) -> Output {
    let out = spate(args).output().expect("spawn spate");
    assert!(
        out.status.success(),
        "spate {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Writes `n` generated transactions over `users` users as JSON lines, with a malformed line
/// every 10,007 records when `malformed`.
pub fn write_transactions(path: &Path, n: u64, users: u64, seed: u64, malformed: bool) {
    write_transactions_where(path, n, (users, seed), malformed, |_, _| true);
}

/// Like [`write_transactions`], but without the generator's very late records (30–120 s behind),
/// so no record is late however the run is cut into epochs: out-of-order records stay within
/// the pipelines' 10 s watermark delay.
pub fn write_transactions_on_time(path: &Path, n: u64, users: u64, seed: u64, malformed: bool) {
    let base = 1_767_225_600_000;
    write_transactions_where(path, n, (users, seed), malformed, |t, i| {
        t.event_ms >= base + i as i64 - 6_000
    });
}

/// `n` generated transactions over `users` users, one JSON line each (with its newline).
pub fn transaction_lines(n: u64, users: u64, seed: u64) -> Vec<String> {
    let generator = transaction_generator(users, seed);
    (0..n)
        .map(|i| generator.generate(i).to_json_line() + "\n")
        .collect()
}

/// The generator of the test transactions: 1,000 a second of event time from 2026-01-01.
fn transaction_generator(users: u64, seed: u64) -> TransactionGenerator {
    TransactionGenerator::new(&GenOptions {
        seed,
        keys: users,
        rate: Some(1_000.0),
        base_ms: 1_767_225_600_000,
        ..GenOptions::default()
    })
}

fn write_transactions_where(
    path: &Path,
    n: u64,
    (users, seed): (u64, u64),
    malformed: bool,
    keep: impl Fn(&spate_actors::events::Transaction, u64) -> bool,
) {
    let generator = transaction_generator(users, seed);
    let mut text = String::with_capacity(n as usize * 130);
    for i in 0..n {
        let tx = generator.generate(i);
        if keep(&tx, i) {
            text.push_str(&tx.to_json_line());
            text.push('\n');
        }
        if malformed && i % 10_007 == 3 {
            text.push_str(
                "{\"tx_id\":1,\"user_id\":[1],\"amount\":1,\"merchant_id\":1,\"event_ms\":1}\n",
            );
        }
    }
    std::fs::write(path, text).unwrap();
}

/// The committed lines of one output folder (`*.jsonl` directly in `dir`), sorted.
pub fn committed(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return lines;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            lines.extend(
                std::fs::read_to_string(path)
                    .unwrap()
                    .lines()
                    .map(String::from),
            );
        }
    }
    lines.sort();
    lines
}

/// Results, late records and dead letters of a file sink directory.
pub fn all_outputs(dir: &Path) -> [Vec<String>; 3] {
    [
        committed(dir),
        committed(&dir.join("late")),
        committed(&dir.join("dead-letter")),
    ]
}

/// A small deterministic random number generator (xorshift), seeded per test run.
pub struct Rng(pub u64);

impl Rng {
    /// Seeds from the clock; the seed is printed so a failure can be reproduced.
    pub fn from_clock(name: &str) -> Self {
        let seed = std::env::var("SPATE_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("{name}: SPATE_TEST_SEED={seed}");
        Rng(seed)
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + self.0 % (hi - lo)
    }
}

/// Asserts two sorted line sets are equal, showing counts and the first lines only in each.
pub fn assert_same_lines(got: &[String], expected: &[String], what: &str) {
    if got == expected {
        return;
    }
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter()
            .filter(|l| b.binary_search(l).is_err())
            .take(3)
            .cloned()
            .collect()
    };
    panic!(
        "{what} differ: {} lines vs {} expected\nonly in output: {:#?}\nonly in expected: {:#?}",
        got.len(),
        expected.len(),
        only(got, expected),
        only(expected, got)
    );
}

/// Starts `spate ARGS` with `RUST_LOG=info`, its stderr in `log`.
pub fn spawn_logged(args: &[&str], log: &Path) -> std::process::Child {
    let log = std::fs::File::create(log).unwrap();
    spate(args)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(log))
        .spawn()
        .unwrap()
}

/// Waits for `child` to exit; kills it and fails the test after `limit`.
pub fn wait_for(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the job did not finish within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
