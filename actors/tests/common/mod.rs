//! Helpers shared by the binary's end-to-end tests: input files, running `spate`, reading
//! committed output.

#![allow(dead_code)]

use spate::io::source::{EventGenerator, GenOptions};
use spate_actors::events::user::{COUNTRIES, SEGMENTS};
use spate_actors::events::{TransactionGenerator, UserRow};
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

/// An unbounded `tx-windows` job on the generator at `rate` events/s serving metrics at a free
/// address, with `extra` flags and `env`; output discarded.
pub fn metered_job(
    rate: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut args = vec![
        "run",
        "tx-windows",
        "--events",
        "0",
        "--rate",
        rate,
        "--metrics-addr",
        &addr,
    ];
    args.extend(extra);
    let child = spate(&args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    (child, addr)
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
    finish_ok(&mut spate(args))
}

/// Runs `command` (a [`spate`] command given more, such as a test hook's environment) to
/// completion and asserts it succeeded.
pub fn finish_ok(command: &mut Command) -> Output {
    let out = command.output().expect("spawn spate");
    assert!(
        out.status.success(),
        "{command:?} failed: {}\n{}",
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
    // Lines more often in `a` than in `b` (both sorted), the first three.
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        let count = |v: &[String], l: &String| v.iter().filter(|x| *x == l).count();
        a.iter()
            .filter(|l| count(a, l) > count(b, l))
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

/// Group members whose killed partner's partitions move once its session expires: 6 s instead
/// of librdkafka's 45.
pub const FAST_GROUP: [&str; 7] = [
    "--group",
    "--kafka-opt",
    "session.timeout.ms=6000",
    "--kafka-opt",
    "heartbeat.interval.ms=500",
    "--kafka-opt",
    "max.poll.interval.ms=10000",
];

/// Starts group members `a` and `b` (`member(name)`: a member's arguments), kills `b` at a
/// random moment `kill_ms` after its start (`seed` names the test's random stream) and waits
/// for `a`, which takes `b`'s partitions over and leaves once every partition is read to its
/// end.
pub fn kill_one_of_two(
    tmp: &Path,
    member: impl Fn(&str) -> Vec<String>,
    (seed, kill_ms): (&str, (u64, u64)),
) {
    let (a_log, b_log) = (tmp.join("a.log"), tmp.join("b.log"));
    let mut a = spawn_logged(&strs(&member("a")), &a_log);
    let mut b = spawn_logged(&strs(&member("b")), &b_log);
    let mut rng = Rng::from_clock(seed);
    assert!(
        kill_after(&mut b, rng.range(kill_ms.0, kill_ms.1)),
        "member b ended before it was killed: {}",
        std::fs::read_to_string(&b_log).unwrap()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while a.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = a.try_wait().unwrap();
    let _ = a.kill();
    assert!(
        status.is_some_and(|s| s.success()),
        "member a: {status:?} (None: still running after 600 s); its log's last lines:\n{}\n\
         member b's (killed) last lines:\n{}",
        log_tail(&a_log, 40),
        log_tail(&b_log, 20)
    );
}

/// The lines of a group member's log (at `path`) that tell how partitions moved to it and
/// where it resumed them: what to read first when a takeover made output twice or lost it.
pub fn takeover_lines(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let told = [
        "assigned",
        "revoked",
        "restored",
        "resuming",
        "found output",
        "repair",
    ];
    let lines: Vec<&str> = (log.lines())
        .filter(|l| told.iter().any(|t| l.contains(t)))
        .collect();
    lines.join("\n")
}

/// The last `n` lines of the log at `path`, without librdkafka's configuration warnings.
fn log_tail(path: &Path, n: usize) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().filter(|l| !l.contains("CONFWARN")).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Lets `child` run for `ms` milliseconds, then SIGKILLs it; true when it was still running.
pub fn kill_after(child: &mut std::process::Child, ms: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(ms);
    while std::time::Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    child.wait().unwrap();
    running
}

/// `args` as the `&str`s [`spate`] takes.
pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
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

/// The user rows of a test's users table, in file order: a row per user at the start of the
/// transactions' time, then `updates` rows of random users at random times within `span_ms`,
/// written up to 5 s out of order (within the pipelines' 10 s watermark delay, so none is late).
pub fn user_rows(users: u64, updates: u64, span_ms: i64, seed: u64) -> Vec<UserRow> {
    let base = 1_767_225_600_000;
    let mut rng = Rng(seed | 1);
    let row = |user: u64, rng: &mut Rng, at: i64| UserRow {
        user_id: spate_actors::events::IdFormat::String.id(spate_actors::events::ids::USER, user),
        segment: SEGMENTS[rng.range(0, SEGMENTS.len() as u64) as usize].to_string(),
        country: COUNTRIES[rng.range(0, COUNTRIES.len() as u64) as usize].to_string(),
        updated_ms: at,
    };
    let mut rows: Vec<UserRow> = (0..users).map(|u| row(u, &mut rng, base)).collect();
    let mut later: Vec<(i64, UserRow)> = (0..updates)
        .map(|_| {
            let at = base + rng.range(1, span_ms as u64) as i64;
            let shown = at + rng.range(0, 5_000) as i64; // its place in the file
            (shown, row(rng.range(0, users), &mut rng, at))
        })
        .collect();
    later.sort_by_key(|(shown, _)| *shown);
    rows.extend(later.into_iter().map(|(_, r)| r));
    rows
}

/// Writes rows as JSON lines.
pub fn write_users(path: &Path, rows: &[UserRow]) {
    let text: String = rows
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    std::fs::write(path, text).unwrap();
}

/// What `tx-enriched` must give each well-formed transaction of the file `tx`: (tx id, segment,
/// country) of the user row valid at its time (the newest row at or before it, the later in
/// the file on a tie), sorted. Computed naively, row by row.
pub fn naive_enrichment(tx: &Path, rows: &[UserRow]) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(tx).unwrap();
    let mut out: Vec<_> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<spate_actors::events::Transaction>(l).ok())
        .map(|t| {
            let valid = rows
                .iter()
                .enumerate()
                .filter(|(_, r)| r.user_id == t.user_id && r.updated_ms <= t.event_ms)
                .max_by_key(|(i, r)| (r.updated_ms, *i));
            let (segment, country) = valid
                .map_or(("unknown".into(), "unknown".into()), |(_, r)| {
                    (r.segment.clone(), r.country.clone())
                });
            (t.tx_id.to_string(), segment, country)
        })
        .collect();
    out.sort();
    out
}

/// (tx id, segment, country) of each `tx-enriched` result line, sorted.
pub fn enrichment_of(lines: &[String]) -> Vec<(String, String, String)> {
    let field = |v: &serde_json::Value, f: &str| match &v[f] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out: Vec<_> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                field(&v, "tx_id"),
                field(&v, "segment"),
                field(&v, "country"),
            )
        })
        .collect();
    out.sort();
    out
}

/// Runs `spate ARGS` `kills` times, each killed with SIGKILL after a random delay in `window`
/// (ms) unless it finished first; returns how many kills hit a running job.
pub fn kill_randomly(args: &[&str], kills: u32, window: (u64, u64), rng: &mut Rng) -> u32 {
    kill_randomly_hooked(args, &[], kills, window, rng)
}

/// [`kill_randomly`], each run with the test hooks `hooks` (environment variables) set.
pub fn kill_randomly_hooked(
    args: &[&str],
    hooks: &[(&str, &str)],
    kills: u32,
    window: (u64, u64),
    rng: &mut Rng,
) -> u32 {
    let mut hits = 0;
    for _ in 0..kills {
        let mut child = spate(args)
            .envs(hooks.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let ms = rng.range(window.0, window.1.max(window.0 + 1));
        hits += u32::from(kill_after(&mut child, ms));
    }
    hits
}

/// Runs `pipeline` from `source` into `sink` with `--state state` and `extra` flags: killed
/// with SIGKILL `kills` times at random moments in its first 50–600 ms, then run to its end.
/// Returns how many kills hit a running job.
pub fn run_through_kills(
    (pipeline, source, sink): (&str, &str, &str),
    state: &Path,
    extra: &[&str],
    kills: u32,
    rng: &mut Rng,
) -> u32 {
    let run = [
        &["run", pipeline, "--source", source, "--sink", sink][..],
        &["--state", state.to_str().unwrap()],
        extra,
    ]
    .concat();
    let hits = kill_randomly(&run, kills, (50, 600), rng);
    run_ok(&run);
    hits
}

/// The last emission of each window (`key`, `window_start`) among update-mode `results` (what
/// a table upserted on that key holds), and how many windows were emitted more than once.
pub fn last_emissions(results: &[String]) -> (Vec<String>, usize) {
    let mut last = std::collections::BTreeMap::new();
    for line in results {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = (row["key"].to_string(), row["window_start"].to_string());
        let emission = row["emission"].as_u64().unwrap();
        if last.get(&id).is_none_or(|(e, _)| *e < emission) {
            last.insert(id, (emission, line.clone()));
        }
    }
    let updated = last.values().filter(|(e, _)| *e > 1).count();
    (last.into_values().map(|(_, line)| line).collect(), updated)
}

/// Epochs cut by record count (see crash.rs), with frequent checkpoints. No partition ever
/// counts as idle, in the file reference runs either (a file cannot say records are waiting);
/// a Kafka partition with records waiting never does anyway, see
/// `a_partition_read_slowly_holds_the_watermark_whatever_the_idle_timeout`.
pub const KAFKA_EPOCHS: [&str; 8] = [
    "--trigger",
    "1h",
    "--max-records-per-epoch",
    "1500",
    "--checkpoint-interval",
    "100ms",
    "--idle-timeout",
    "1h",
];

/// What `enrich` must write for the transactions file `tx` and the users table `rows`: per
/// (segment, country) and 1-minute window, `segment,country,window_start,count,sum_cents`,
/// sorted; each well-formed transaction under the user row valid at its time (as in
/// [`naive_enrichment`]). Computed naively.
pub fn naive_segment_windows(tx: &Path, rows: &[UserRow]) -> Vec<String> {
    let text = std::fs::read_to_string(tx).unwrap();
    let mut windows: std::collections::BTreeMap<(String, String, i64), (u64, i64)> =
        Default::default();
    for t in text
        .lines()
        .filter_map(|l| serde_json::from_str::<spate_actors::events::Transaction>(l).ok())
    {
        let valid = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.user_id == t.user_id && r.updated_ms <= t.event_ms)
            .max_by_key(|(i, r)| (r.updated_ms, *i));
        let (segment, country) = valid.map_or(("unknown".into(), "unknown".into()), |(_, r)| {
            (r.segment.clone(), r.country.clone())
        });
        let start = t.event_ms - t.event_ms.rem_euclid(60_000);
        let w = windows.entry((segment, country, start)).or_default();
        w.0 += 1;
        w.1 += t.amount_cents;
    }
    windows
        .into_iter()
        .map(|((s, c, start), (n, sum))| format!("{s},{c},{start},{n},{sum}"))
        .collect()
}

/// `enrich` result lines as [`naive_segment_windows`] writes them, sorted; checks each
/// window's end.
pub fn segment_windows_of(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let start = v["window_start"].as_i64().unwrap();
            assert_eq!(v["window_end"].as_i64().unwrap(), start + 60_000, "{l}");
            let sum = (v["sum"].as_f64().unwrap() * 100.0).round() as i64;
            format!(
                "{},{},{start},{},{sum}",
                v["segment"].as_str().unwrap(),
                v["country"].as_str().unwrap(),
                v["count"].as_u64().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

/// Readings of `devices` devices, 1 ms apart, 10% displaced up to 3 s (within the watermark
/// delay); returns the planted anomalies as (device, event time).
pub fn write_readings(
    path: &Path,
    n: u64,
    devices: u64,
    seed: u64,
) -> std::collections::BTreeSet<(String, i64)> {
    let mut rng = Rng(seed | 1);
    let mut planted = std::collections::BTreeSet::new();
    let mut text = String::new();
    for i in 0..n {
        let d = rng.range(0, devices);
        let mut t = 1_767_225_600_000 + i as i64;
        if rng.range(0, 10) == 0 {
            t -= rng.range(0, 3_000) as i64;
        }
        let noise = |rng: &mut Rng, scale: f64| (rng.range(0, 2001) as f64 / 1000.0 - 1.0) * scale;
        let drift = 2.0 * ((i as f64 / n as f64) * 6.0 + d as f64).sin();
        let mut temperature = 20.0 + (d % 20) as f64 + drift + noise(&mut rng, 0.5);
        let mut vibration = 1.0 + (d % 4) as f64 + noise(&mut rng, 0.3);
        let mut pressure = 100.0 + (d % 7) as f64 + noise(&mut rng, 0.8);
        if rng.range(0, 1_000) == 0 {
            match rng.range(0, 3) {
                0 => {
                    temperature += 18.0;
                    vibration *= 5.0;
                }
                1 => pressure *= 0.4,
                _ => vibration *= 5.0,
            }
            planted.insert((format!("d{d:05}"), t));
        }
        text += &format!(
            "{{\"device_id\":\"d{d:05}\",\"temperature\":{temperature:.2},\"vibration\":{vibration:.2},\"pressure\":{pressure:.2},\"event_ms\":{t}}}\n"
        );
    }
    std::fs::write(path, text).unwrap();
    planted
}

/// `fraud-score`'s `--source` values for the payments file `tx` and the outcomes file `labels`.
pub fn fraud_sources(tx: &Path, labels: &Path) -> [String; 2] {
    [
        format!("transactions={}", file_arg(tx)),
        format!("labels={}", file_arg(labels)),
    ]
}

/// `spate run fraud-score` over the `sources` [`fraud_sources`] gives.
pub fn fraud_run(sources: &[String; 2]) -> [&str; 6] {
    let [tx, labels] = sources;
    ["run", "fraud-score", "--source", tx, "--source", labels]
}

/// Payments of `users` users, 10 a second of event time from 2026-01-01, 10% displaced up to
/// 3 s (within the watermark delay), and their outcomes: 1% of payments start a fraud burst of
/// 2–4 payments of the same user at one of 50 fraud-only merchants, $900–$4,000 each (a
/// legitimate payment is $1–$500 at one of 3,000 merchants, one in 500 up to $20,000); an
/// outcome is known 5 min–2 h after a fraud, 30 min–6 h after a legitimate payment. Writes the
/// payments to `tx`, the outcomes in time order to `labels`; returns each payment's time and
/// whether it was fraud, by id.
pub fn write_payments(
    (tx, labels): (&Path, &Path),
    n: u64,
    users: u64,
    seed: u64,
) -> std::collections::HashMap<String, (i64, bool)> {
    let mut rng = Rng(seed | 1);
    let mut compromised: std::collections::HashMap<u64, u64> = Default::default();
    let (mut text, mut outcomes, mut truth) = (String::new(), Vec::new(), Default::default());
    let truth_map: &mut std::collections::HashMap<String, (i64, bool)> = &mut truth;
    for i in 0..n {
        let user = rng.range(0, users);
        let mut t = 1_767_225_600_000 + i as i64 * 100;
        if rng.range(0, 10) == 0 {
            t -= rng.range(0, 3_000) as i64;
        }
        let fraud = match compromised.get_mut(&user) {
            Some(left) => {
                *left -= 1;
                if *left == 0 {
                    compromised.remove(&user);
                }
                true
            }
            None if rng.range(0, 100) == 0 => {
                compromised.insert(user, rng.range(1, 4));
                true
            }
            None => false,
        };
        let (cents, merchant) = match fraud {
            true => (rng.range(90_000, 400_000), format!("f{}", rng.range(0, 50))),
            false if rng.range(0, 500) == 0 => (
                rng.range(100, 2_000_000),
                format!("m{}", rng.range(0, 3_000)),
            ),
            false => (rng.range(100, 50_000), format!("m{}", rng.range(0, 3_000))),
        };
        let id = format!("t{i:07}");
        text += &format!(
            "{{\"tx_id\":\"{id}\",\"user_id\":\"u{user:04}\",\"amount\":{}.{:02},\"merchant_id\":\"{merchant}\",\"event_ms\":{t}}}\n",
            cents / 100,
            cents % 100
        );
        let delay = match fraud {
            true => rng.range(5 * 60_000, 120 * 60_000),
            false => rng.range(30 * 60_000, 360 * 60_000),
        };
        outcomes.push((t + delay as i64, id.clone(), fraud));
        truth_map.insert(id, (t, fraud));
    }
    outcomes.sort();
    let labels_text: String = outcomes
        .iter()
        .map(|(at, id, fraud)| {
            format!("{{\"tx_id\":\"{id}\",\"fraud\":{fraud},\"event_ms\":{at}}}\n")
        })
        .collect();
    std::fs::write(tx, text).unwrap();
    std::fs::write(labels, labels_text).unwrap();
    truth
}

/// Runs `spate run PIPELINE` from the file `input` into the folder `out` on 2 workers and
/// returns its committed results and dead letters, checking no record was late (the tests'
/// inputs keep their disorder within the watermark delay).
pub fn run_on_time(pipeline: &str, input: &Path, out: &Path) -> (Vec<String>, Vec<String>) {
    let (source, sink) = (file_arg(input), file_arg(out));
    let args = ["run", pipeline, "--source", &source, "--sink", &sink];
    run_ok(&[&args[..], &["--workers", "2"]].concat());
    let [results, late, dead] = all_outputs(out);
    assert!(
        late.is_empty(),
        "{pipeline}: the input is on time: {late:?}"
    );
    (results, dead)
}

/// `line` as a JSON object, checked to hold exactly `fields` (in sorted order).
pub fn object_with(line: &str, fields: &[&str]) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, fields, "{line}");
    v
}

/// The rows of the Parquet file at `path`, each as JSON with every number written as a float
/// ([`numbers_as_floats`]), in file order.
pub fn parquet_file_rows(path: &Path) -> Vec<String> {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file);
    let mut rows = Vec::new();
    for batch in reader.unwrap().build().unwrap() {
        let mut writer = arrow_json::LineDelimitedWriter::new(Vec::new());
        writer.write(&batch.unwrap()).unwrap();
        writer.finish().unwrap();
        let text = String::from_utf8(writer.into_inner()).unwrap();
        rows.extend(text.lines().map(numbers_as_floats));
    }
    rows
}

/// `line` (a JSON object) with every number written as a float, so that a table's or a Parquet
/// file's `100` equals the JSON lines' `100.0`.
pub fn numbers_as_floats(line: &str) -> String {
    fn floats(value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::Number(n) => serde_json::json!(n.as_f64().unwrap()),
            Value::Object(map) => map.into_iter().map(|(k, v)| (k, floats(v))).collect(),
            Value::Array(items) => items.into_iter().map(floats).collect(),
            other => other,
        }
    }
    floats(serde_json::from_str(line).unwrap()).to_string()
}
