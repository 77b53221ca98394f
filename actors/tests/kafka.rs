//! Kafka in and out against a real broker (tansu): a Kafka→Kafka job's output topic equals the
//! same pipeline run file→file; after SIGKILLs at random moments, and after a crash between an
//! epoch's sends and its commit mark, the output topic still holds every result exactly once;
//! malformed records reach the dead-letter topic with their origin in headers.

mod common;
#[path = "support/tansu.rs"]
mod tansu;

use common::*;
use spate::io::sink::RecordId;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tansu::Tansu;

const PARTITIONS: i32 = 4;

/// See [`KAFKA_EPOCHS`].
const EPOCHS: [&str; 8] = KAFKA_EPOCHS;

/// The broker with topic `tx` holding `events` transactions keyed by user (malformed lines
/// included), and the same input as a file.
fn setup(tmp: &Path, events: u64) -> (Tansu, String) {
    let broker = Tansu::start();
    broker.create_topic("tx", PARTITIONS);
    let input = tmp.join("tx.jsonl");
    write_transactions_on_time(&input, events, 300, 21, true);
    let sent = broker.produce_lines("tx", &input, "user_id");
    assert!(sent as u64 > events * 99 / 100, "{sent} records sent");
    (broker, file_arg(&input))
}

/// The pipeline's results and late records, run file→file.
fn reference(tmp: &Path, pipeline: &str, source: &str) -> [Vec<String>; 3] {
    let out = tmp.join(format!("reference-{pipeline}"));
    let sink = file_arg(&out);
    let mut args = vec!["run", pipeline, "--source", source, "--sink", &sink];
    args.extend(["--partitions", "4"]);
    args.extend(EPOCHS);
    run_ok(&args);
    all_outputs(&out)
}

/// `spate run PIPELINE` Kafka→Kafka with `--until-end`, epochs cut by record count.
fn kafka_job(broker: &Tansu, pipeline: &str, app: &str, state: &Path) -> Vec<String> {
    let mut args = live_job(broker, pipeline, app, state);
    args.push("--until-end".into());
    args.extend(EPOCHS.map(String::from));
    args
}

/// `spate run PIPELINE` Kafka→Kafka without an end: it runs until stopped.
fn live_job(broker: &Tansu, pipeline: &str, app: &str, state: &Path) -> Vec<String> {
    [
        "run",
        pipeline,
        "--source",
        &broker.url("tx"),
        "--sink",
        &broker.url(&format!("{app}-out")),
        "--app-id",
        app,
        "--state",
        &state.display().to_string(),
    ]
    .map(String::from)
    .to_vec()
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn kafka_to_kafka_equals_file_to_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (broker, file) = setup(tmp.path(), 30_000);
    for pipeline in ["fraud", "tx-windows"] {
        let expected = reference(tmp.path(), pipeline, &file);
        assert!(!expected[0].is_empty(), "{pipeline}: no results");
        let app = format!("e2e-{pipeline}");
        let args = kafka_job(&broker, pipeline, &app, &tmp.path().join(&app));
        run_ok(&as_strs(&args));
        let got = broker.sorted_payloads(&format!("{app}-out"));
        assert_same_lines(&got, &expected[0], &format!("{pipeline}: results"));
        // Every result says who wrote it, in which epoch, at which place.
        for r in broker.read_topic(&format!("{app}-out")).iter().take(50) {
            let id = r.header("spate.id").expect("a spate.id header");
            let id = RecordId::parse(id.as_bytes()).expect("APP/WRITER/EPOCH/SEQ");
            assert_eq!(id.app, app.as_bytes());
            assert_eq!(
                id.writer,
                format!("p{:03}", r.partition).as_bytes(),
                "writer N writes partition N"
            );
            assert!(id.epoch > 0);
            // Keyed by the key that produced it (the user, as the input is keyed).
            let result: serde_json::Value = serde_json::from_str(&r.payload).unwrap();
            let key = match &result["key"] {
                serde_json::Value::String(raw) => raw.clone(),
                number => number.to_string(),
            };
            assert_eq!(r.key, Some(key), "{}", r.payload);
        }
        assert_eq!(
            broker.sorted_payloads(&format!("{app}-late")),
            expected[1],
            "{pipeline}: late records"
        );
    }
    // Malformed records: the raw record in the dead-letter topic, its origin in headers.
    let dead = broker.read_topic("e2e-fraud-dead-letter");
    assert_eq!(dead.len(), 3, "one per 10,007 records: {dead:?}");
    for d in &dead {
        assert!(d.payload.contains("\"user_id\":[1]"), "{d:?}");
        assert_eq!(d.header("spate.source"), Some(broker.url("tx").as_str()));
        assert!(
            d.header("spate.error")
                .unwrap()
                .contains("a string or an integer"),
            "{d:?}"
        );
        let partition: i32 = d.header("spate.partition").unwrap().parse().unwrap();
        assert!((0..PARTITIONS).contains(&partition));
        assert!(d.header("spate.offset").unwrap().parse::<u64>().is_ok());
    }
}

/// A partition the job reads slowly (its key partition takes 300 ms a batch, so the source
/// pauses it) while the others run to their ends is behind, not idle, even with an idle timeout
/// of zero: its records wait in the broker, so none of them turns late and the results equal
/// the file run's.
#[test]
fn a_partition_read_slowly_holds_the_watermark_whatever_the_idle_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let (broker, file) = setup(tmp.path(), 12_000);
    let expected = reference(tmp.path(), "tx-windows", &file);
    let state = tmp.path().join("state");
    let mut args = live_job(&broker, "tx-windows", "behind", &state);
    args.extend(["--until-end", "--trigger", "100ms", "--idle-timeout", "0s"].map(String::from));
    let log = tmp.path().join("job.log");
    let status = spate(&as_strs(&args))
        .env("SPATE_SLOW_PARTITION", "0:300")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "{}",
        plain(&std::fs::read_to_string(&log).unwrap())
    );
    assert_eq!(
        broker.sorted_payloads("behind-late"),
        expected[1],
        "late records"
    );
    assert_same_lines(
        &broker.sorted_payloads("behind-out"),
        &expected[0],
        "results with a slow partition and --idle-timeout 0s",
    );
}

#[test]
fn kafka_output_is_exact_after_random_kills() {
    let tmp = tempfile::tempdir().unwrap();
    let (broker, file) = setup(tmp.path(), 40_000);
    let expected = reference(tmp.path(), "tx-windows", &file);
    let mut rng = Rng::from_clock("kafka-kills");
    let args = kafka_job(&broker, "tx-windows", "kills", &tmp.path().join("state"));
    let args = as_strs(&args);

    // An uninterrupted Kafka run on another app id measures how long a run takes.
    let started = Instant::now();
    let timing = kafka_job(&broker, "tx-windows", "timing", &tmp.path().join("timing"));
    run_ok(&as_strs(&timing));
    let span = started.elapsed().as_millis() as u64;

    let hits = kill_randomly(&args, 5, (span / 5, span * 7 / 10), &mut rng);
    run_ok(&args);
    assert!(
        hits > 0,
        "no kill hit a running job: the test proved nothing"
    );
    let got = broker.sorted_payloads("kills-out");
    assert_same_lines(&got, &expected[0], "results after kills");
}

/// An epoch that has output in every run of `tx-windows` over the same input: the last, which
/// closes every window. An uninterrupted run on another app id finds its number; epochs are
/// cut by record count, so every run has as many. (Which of the earlier epochs have output
/// depends on how the topic's partitions interleave: windows close as each partition's own
/// records move its watermark.)
fn an_epoch_with_output(broker: &Tansu, tmp: &Path) -> String {
    let probe = kafka_job(broker, "tx-windows", "probe", &tmp.join("probe"));
    run_ok(&as_strs(&probe));
    let last = broker.read_topic("probe-out").iter().map(epoch_of).max();
    last.expect("the probe wrote results").to_string()
}

/// The epoch a result record belongs to, from its `spate.id` header.
fn epoch_of(record: &tansu::KafkaRecord) -> u64 {
    let id = record.header("spate.id").expect("a spate.id header");
    RecordId::parse(id.as_bytes())
        .expect("APP/WRITER/EPOCH/SEQ")
        .epoch
}

/// Crashes a job at `failpoint` in epoch `epoch`, then finishes it with a new state directory,
/// as another machine taking over would: the state comes from the changelog alone.
fn crash_and_take_over(broker: &Tansu, tmp: &Path, app: &str, failpoint: &str, epoch: &str) {
    let first = kafka_job(broker, "tx-windows", app, &tmp.join(format!("{app}-first")));
    let out = spate(&as_strs(&first))
        .env(failpoint, epoch)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "{failpoint}={epoch} was not reached: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let visible = broker
        .read_topic(&format!("{app}-out"))
        .iter()
        .any(|r| epoch_of(r).to_string() == epoch);
    assert_eq!(
        visible,
        failpoint == "SPATE_CRASH_AFTER_COMMIT",
        "epoch {epoch}'s output visible before the restart"
    );
    let second = kafka_job(
        broker,
        "tx-windows",
        app,
        &tmp.join(format!("{app}-second")),
    );
    finish_logged(&second, &tmp.join(format!("{app}-second.log")));
    // Results resent from the changelog keep their keys.
    let unkeyed = broker
        .read_topic(&format!("{app}-out"))
        .into_iter()
        .filter(|r| r.key.is_none())
        .count();
    assert_eq!(unkeyed, 0, "results without a key");
}

#[test]
fn state_follows_its_partition_through_the_changelog_across_crashes() {
    let tmp = tempfile::tempdir().unwrap();
    let (broker, file) = setup(tmp.path(), 20_000);
    let expected = reference(tmp.path(), "tx-windows", &file);
    let epoch = an_epoch_with_output(&broker, tmp.path());
    // Output sent but the epoch not marked committed: the new owner must not send it twice.
    crash_and_take_over(
        &broker,
        tmp.path(),
        "after",
        "SPATE_CRASH_AFTER_COMMIT",
        &epoch,
    );
    assert_same_lines(
        &broker.sorted_payloads("after-out"),
        &expected[0],
        "results after a crash past the sink commit",
    );
    // Checkpointed in the changelog but nothing sent: the new owner must send it.
    crash_and_take_over(
        &broker,
        tmp.path(),
        "before",
        "SPATE_CRASH_BEFORE_COMMIT",
        &epoch,
    );
    assert_same_lines(
        &broker.sorted_payloads("before-out"),
        &expected[0],
        "results after a crash before the sink commit",
    );
}

#[test]
fn the_job_rides_out_a_broker_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut broker, file) = setup(tmp.path(), 60_000);
    let expected = reference(tmp.path(), "tx-windows", &file);
    let args = kafka_job(&broker, "tx-windows", "restart", &tmp.path().join("state"));
    let mut child = spawn_logged(&as_strs(&args), &tmp.path().join("job.log"));
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the job finished before the broker went down"
    );
    // sqlite storage survives the restart; the job keeps its state and retries meanwhile.
    broker.restart(Duration::from_secs(2));
    let status = wait_for(&mut child, Duration::from_secs(180));
    let log = std::fs::read_to_string(tmp.path().join("job.log")).unwrap();
    assert!(status.success(), "the job failed: {log}");
    let got = broker.sorted_payloads("restart-out");
    assert_same_lines(&got, &expected[0], "results across a broker restart");
}

#[test]
fn a_broker_gone_longer_than_the_broker_timeout_stops_the_job_saying_so() {
    let tmp = tempfile::tempdir().unwrap();
    let mut broker = Tansu::start();
    // An endless generator keeps the sink sending once alerts start (about 50 s in: the
    // generator's event time follows the clock), so output waits for the broker when it goes.
    let sink = broker.url("gone-out");
    let args = [
        "run",
        "fraud",
        "--source",
        "gen",
        "--events",
        "0",
        "--rate",
        "20000",
        "--sink",
        &sink,
        "--app-id",
        "gone",
        "--broker-timeout",
        "2s",
    ];
    let mut child = spawn_logged(&args, &tmp.path().join("job.log"));
    let deadline = Instant::now() + Duration::from_secs(180);
    while broker.record_count("gone-out") == 0 {
        assert!(Instant::now() < deadline, "no output reached the broker");
        assert!(child.try_wait().unwrap().is_none(), "the job ended");
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "output seen {:?} before the deadline",
        deadline - Instant::now()
    );
    broker.stop();
    let stopped = Instant::now();
    let status = wait_for(&mut child, Duration::from_secs(120));
    let log = std::fs::read_to_string(tmp.path().join("job.log")).unwrap();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains("acknowledged none of") && log.contains("(--broker-timeout)"),
        "{log}"
    );
    // librdkafka's own 5-minute deadline is not what ended it.
    assert!(stopped.elapsed() < Duration::from_secs(100), "{log}");
}

/// The response to `GET /metrics` at `addr`, once it is up.
fn scrape(addr: &str) -> Option<String> {
    http_get(addr, "/metrics")
}

#[test]
fn consumer_lag_and_group_offsets_follow_a_running_job() {
    let tmp = tempfile::tempdir().unwrap();
    let (broker, _) = setup(tmp.path(), 5_000);
    let addr = format!("127.0.0.1:{}", free_port());
    let mut args = live_job(&broker, "tx-windows", "lag", &tmp.path().join("state"));
    args.extend(["--metrics-addr".into(), addr.clone()]);
    let mut in_group = args.clone();
    in_group.push("--group".into());
    let mut child = spawn_logged(&as_strs(&in_group), &tmp.path().join("job.log"));
    // Every partition read to its end: the lag of each is 0.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut body = String::new();
    while Instant::now() < deadline {
        body = scrape(&addr).unwrap_or_default();
        let zero_lag = (0..PARTITIONS)
            .filter(|p| {
                body.lines().any(|l| {
                    l.starts_with("spate_consumer_lag")
                        && l.contains(&format!("partition=\"{p}\""))
                        && l.ends_with(" 0")
                })
            })
            .count();
        if zero_lag == PARTITIONS as usize {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = wait_for(&mut child, Duration::from_secs(60));
    assert!(status.success());
    assert!(
        body.contains("spate_consumer_lag{") && !body.contains("partition=\"0\"} 5"),
        "no zero lag in:\n{body}"
    );
    let count = |body: &str, prefix: &str, label: &str| {
        body.lines()
            .filter(|l| l.starts_with(prefix) && l.contains(label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    assert!(
        count(&body, "spate_rebalances_total", "kind=\"assigned\"") >= 1.0,
        "no rebalance counted in:\n{body}"
    );
    // Started again on the same state directory (reading every partition itself): each
    // partition's local copy is the changelog's newest checkpoint, so none is rebuilt.
    let mut child = spawn_logged(&as_strs(&args), &tmp.path().join("again.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline
        && count(&body, "spate_restores_total", "source=\"local\"") < PARTITIONS as f64
    {
        body = scrape(&addr).unwrap_or_default();
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(wait_for(&mut child, Duration::from_secs(60)).success());
    assert_eq!(
        count(&body, "spate_restores_total", "source=\"local\""),
        PARTITIONS as f64,
        "{body}"
    );
    assert_eq!(
        count(&body, "spate_restores_total", "source=\"changelog\""),
        0.0,
        "{body}"
    );
    assert!(
        body.contains("spate_restore_duration_seconds_bucket"),
        "{body}"
    );
    // The committed epochs' offsets reached the consumer group (for monitoring tools).
    let committed = broker.committed_offsets("lag", "tx", PARTITIONS);
    let ends = broker.end_offsets("tx", PARTITIONS);
    assert_eq!(
        committed, ends,
        "group offsets after the job read everything"
    );
}

#[test]
fn a_cluster_that_lost_the_jobs_changelog_and_offsets_stops_the_job_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (broker, _) = setup(tmp.path(), 3_000);
    let state = tmp.path().join("state");
    run_ok(&as_strs(&kafka_job(&broker, "tx-windows", "gone", &state)));
    // The same topic name on a new, nearly empty cluster: the recorded offsets are past its end
    // and the changelog holding the job's state is gone. Going on would lose that state.
    drop(broker);
    let broker = Tansu::start();
    broker.create_topic("tx", PARTITIONS);
    let few = tmp.path().join("few.jsonl");
    write_transactions_on_time(&few, 40, 300, 21, false);
    broker.produce_lines("tx", &few, "user_id");
    let args = live_job(&broker, "tx-windows", "gone", &state);
    let mut child = spawn_logged(&as_strs(&args), &tmp.path().join("job.log"));
    let status = wait_for(&mut child, Duration::from_secs(60));
    let log = std::fs::read_to_string(tmp.path().join("job.log")).unwrap();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("changelog topic gone-tx-windows-changelog does not")
            && log.contains("--state"),
        "{log}"
    );
}

/// The exit status of `child` if it exits within `limit` (a hang is left to `Running`'s drop).
fn exit_within(child: &mut Running, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.0.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Runs `spate` with `args` to a successful end within 3 minutes, its log in `log`; a failure
/// or a hang shows the log.
fn finish_logged(args: &[String], log: &Path) {
    let mut child = Running(spawn_logged(&as_strs(args), log));
    let status = exit_within(&mut child, Duration::from_secs(180));
    assert!(
        status.is_some_and(|s| s.success()),
        "spate {} did not finish ({status:?}): {}",
        args.join(" "),
        plain(&std::fs::read_to_string(log).unwrap_or_default())
    );
}

/// A child process killed when the test ends, passed or not.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines of `path` split into files of `shares` (fractions of the lines, in order).
fn split_lines(path: &Path, shares: &[f64]) -> Vec<std::path::PathBuf> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0;
    let mut parts = Vec::new();
    let mut cumulative = 0.0;
    for (i, share) in shares.iter().enumerate() {
        cumulative += share;
        let to = if i + 1 == shares.len() {
            lines.len()
        } else {
            (lines.len() as f64 * cumulative) as usize
        };
        let part = path.with_extension(format!("part{i}"));
        let mut body = lines[from..to].join("\n");
        body.push('\n');
        std::fs::write(&part, body).unwrap();
        parts.push(part);
        from = to;
    }
    parts
}

/// `text` without its terminal colour codes.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Waits until `log` has `count` lines containing `text`; returns the last such line.
fn wait_for_log(log: &Path, text: &str, count: usize, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let body = plain(&std::fs::read_to_string(log).unwrap_or_default());
        let hits: Vec<&str> = body.lines().filter(|l| l.contains(text)).collect();
        if hits.len() >= count {
            return hits[count - 1].to_string();
        }
        assert!(
            Instant::now() < deadline,
            "`{text}` did not appear {count} times in {}: {body}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A broker with an empty topic `tx`; `events` transactions in order of event time written to
/// a file, yet to be produced; and `tx-windows`' output for that file.
fn unsent_input(
    tmp: &Path,
    events: u64,
    seed: u64,
) -> (Tansu, std::path::PathBuf, [Vec<String>; 3]) {
    let broker = Tansu::start();
    broker.create_topic("tx", PARTITIONS);
    let input = tmp.join("tx.jsonl");
    write_transactions_on_time(&input, events, 300, seed, true);
    let expected = reference(tmp, "tx-windows", &file_arg(&input));
    (broker, input, expected)
}

/// The values of `metric` per `partition` label in a Prometheus text `body`.
fn per_partition(body: &str, metric: &str) -> std::collections::BTreeMap<u32, f64> {
    body.lines()
        .filter(|l| l.starts_with(metric))
        .filter_map(|l| {
            let partition = l.split("partition=\"").nth(1)?.split('"').next()?;
            Some((partition.parse().ok()?, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}

/// Backpressure: a key partition slower than the others has its topic partition paused at the
/// source (its records wait in the consumer) while the others are read on, and the output
/// stays exact.
#[test]
fn a_slow_partition_is_paused_at_the_source_and_the_output_stays_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let (broker, input, expected) = unsent_input(tmp.path(), 12_000, 29);
    let addr = format!("127.0.0.1:{}", free_port());
    let state = tmp.path().join("state");
    let mut base = live_job(&broker, "tx-windows", "slow", &state);
    // Long epochs, so the source reads many chunks in each.
    base.extend(["--idle-timeout", "1h", "--trigger", "2s"].map(String::from));
    let mut args = base.clone();
    args.extend(["--metrics-addr".into(), addr.clone()]);
    let log = tmp.path().join("job.log");
    let mut job = Running(
        spate(&as_strs(&args))
            .env("RUST_LOG", "info")
            // Key partition 0 takes 400 ms for each batch, the others next to nothing.
            .env("SPATE_SLOW_PARTITION", "0:400")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    // The input arrives as a steady stream once the job reads (it reported a lag at an epoch
    // cut), so the source reads many chunks.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !scrape(&addr).is_some_and(|body| body.contains("spate_consumer_lag{")) {
        assert!(Instant::now() < deadline, "the job did not start reading");
        std::thread::sleep(Duration::from_millis(100));
    }
    broker.produce_lines_at("tx", &input, "user_id", Some(4_000));
    // Processed to the end everywhere (the group's offsets, committed with each epoch, reach
    // the topic's ends), partition 0 paused on the way.
    let ends = broker.end_offsets("tx", PARTITIONS);
    let deadline = Instant::now() + Duration::from_secs(120);
    while broker.committed_offsets("slow", "tx", PARTITIONS) != ends {
        assert!(
            Instant::now() < deadline,
            "the job did not catch up: {}",
            plain(&std::fs::read_to_string(&log).unwrap_or_default())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pauses = per_partition(
        &scrape(&addr).unwrap_or_default(),
        "spate_source_pauses_total{",
    );
    assert!(
        pauses.get(&0).is_some_and(|&n| n >= 1.0),
        "the slow partition was never paused: pauses {pauses:?}"
    );
    assert!(Command::new("kill")
        .args(["-TERM", &job.0.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert!(exit_within(&mut job, Duration::from_secs(60)).is_some_and(|s| s.success()));
    // The same job, resumed to the end, closes every window.
    let mut finish = base;
    finish.extend(["--until-end", "--metrics-addr", "off"].map(String::from));
    finish_logged(&finish, &tmp.path().join("finish.log"));
    let got = broker.sorted_payloads("slow-out");
    assert_same_lines(&got, &expected[0], "results with a slow partition");
}

#[test]
fn instances_sharing_an_app_id_split_the_partitions_and_take_over_a_killed_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (broker, input, expected) = unsent_input(tmp.path(), 40_000, 23);
    let parts = split_lines(&input, &[0.4, 0.3, 0.3]);
    let instance = |name: &str, until_end: bool| {
        let mut args = live_job(&broker, "tx-windows", "scale", &tmp.path().join(name));
        if until_end {
            args.push("--until-end".into());
        }
        args.extend(
            [
                "--trigger",
                "100ms",
                "--max-records-per-epoch",
                "500",
                "--idle-timeout",
                "1h",
                "--metrics-addr",
                "off",
            ]
            .map(String::from),
        );
        args.extend(FAST_GROUP.map(String::from));
        let log = tmp.path().join(format!("{name}.log"));
        (Running(spawn_logged(&as_strs(&args), &log)), log)
    };
    const ASSIGNED: &str = "partitions assigned: starting";

    broker.produce_lines("tx", &parts[0], "user_id");
    let (mut a, a_log) = instance("a", false);
    wait_for_log(&a_log, ASSIGNED, 1, Duration::from_secs(60));
    // A second instance joins: the partitions are split between the two.
    let (mut b, b_log) = instance("b", false);
    let b_got = wait_for_log(&b_log, ASSIGNED, 1, Duration::from_secs(60));
    let a_kept = wait_for_log(&a_log, ASSIGNED, 2, Duration::from_secs(60));
    assert!(
        !b_got.contains("partitions=[0, 1, 2, 3]") && !a_kept.contains("partitions=[0, 1, 2, 3]"),
        "the partitions were not split: a {a_kept}; b {b_got}"
    );
    broker.produce_lines("tx", &parts[1], "user_id");
    std::thread::sleep(Duration::from_millis(1500));
    // B dies mid-stream: after the session timeout A owns every partition again.
    b.0.kill().unwrap();
    b.0.wait().unwrap();
    broker.produce_lines("tx", &parts[2], "user_id");
    wait_for_log(
        &a_log,
        "partitions assigned: starting partitions=[0, 1, 2, 3]",
        2,
        Duration::from_secs(60),
    );
    // A third instance joins and takes partitions, with their state, from A.
    let (mut c, c_log) = instance("c", false);
    let c_got = wait_for_log(&c_log, ASSIGNED, 1, Duration::from_secs(60));
    assert!(!c_got.contains("partitions=[]"), "{c_got}");
    // Let the rebalance settle (A may rejoin once, see io::kafka::group::repair) and both work a while.
    std::thread::sleep(Duration::from_secs(4));
    // Both stop gracefully; a last instance reads to the end and closes every window.
    for child in [&a, &c] {
        let pid = child.0.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
    }
    for (child, log) in [(&mut a, &a_log), (&mut c, &c_log)] {
        let status = wait_for(&mut child.0, Duration::from_secs(60));
        assert!(
            status.success(),
            "{}",
            std::fs::read_to_string(log).unwrap()
        );
    }
    let (mut d, d_log) = instance("d", true);
    let status = exit_within(&mut d, Duration::from_secs(180));
    assert!(
        status.is_some_and(|s| s.success()),
        "the last instance did not finish: {}\nbroker: {}",
        plain(&std::fs::read_to_string(&d_log).unwrap()),
        broker.log()
    );
    let got = broker.sorted_payloads("scale-out");
    assert_same_lines(&got, &expected[0], "results of the scaled-out run");
}

/// The group's leader is killed while it hands partitions over to a member that just joined
/// (its revoke callback waits for its job's last epoch), so it dies between the rebalance's
/// JoinGroup and SyncGroup. The survivor takes every partition, whatever the broker made of the
/// group (tansu 0.6 forms it with nothing assigned; `io::kafka::group::repair` rejoins), and
/// reads them to the end: the output is the file run's, each result once.
#[test]
fn a_group_whose_leader_dies_while_handing_partitions_over_still_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    // The PostgreSQL engine: the sqlite one cannot describe a group (tansu 0.6 fails to read
    // back what it stored), which the repair asks the broker to do.
    let broker = Tansu::start_postgres();
    broker.create_topic("tx", PARTITIONS);
    let input = tmp.path().join("tx.jsonl");
    write_transactions_on_time(&input, 40_000, 300, 29, true);
    broker.produce_lines("tx", &input, "user_id");
    let expected = reference(tmp.path(), "tx-windows", &file_arg(&input));
    let instance = |name: &str| {
        let mut args = live_job(&broker, "tx-windows", "handover", &tmp.path().join(name));
        let pace = [
            "--until-end",
            "--trigger",
            "100ms",
            "--max-records-per-epoch",
            "200",
        ];
        args.extend(pace.map(String::from));
        args.extend(["--metrics-addr", "off"].map(String::from));
        args.extend(FAST_GROUP.map(String::from));
        let log = tmp.path().join(format!("{name}.log"));
        (Running(spawn_logged(&as_strs(&args), &log)), log)
    };
    const ASSIGNED: &str = "partitions assigned: starting";
    let (mut leader, leader_log) = instance("leader");
    wait_for_log(&leader_log, ASSIGNED, 1, Duration::from_secs(60));
    let (mut member, member_log) = instance("member");
    kill_at_log(
        &mut leader,
        &leader_log,
        "partitions revoked: stopping the job",
    );
    let leader_said = plain(&std::fs::read_to_string(&leader_log).unwrap());
    assert_eq!(
        leader_said.matches(ASSIGNED).count(),
        1,
        "the leader was to die before it rejoined: {leader_said}"
    );
    let status = exit_within(&mut member, Duration::from_secs(180));
    assert!(
        status.is_some_and(|s| s.success()),
        "the survivor did not finish: {status:?}\n{}",
        plain(&std::fs::read_to_string(&member_log).unwrap())
    );
    let got = broker.sorted_payloads("handover-out");
    assert_same_lines(&got, &expected[0], "results of the survivor");
}

/// SIGKILLs `child` as soon as `log` has a line containing `text` (within a minute).
fn kill_at_log(child: &mut Running, log: &Path, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains(text)
    {
        assert!(
            Instant::now() < deadline,
            "`{text}` not in {}",
            log.display()
        );
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "ended before `{text}`"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();
}

/// Writes a checkpoint of `epoch` changing `entries` to partition 0 of `changelog` (next
/// offset `epoch * 10`, no outputs, the state then holding `held` entries) and waits until it
/// is acknowledged, with the copies of its entries; returns the pieces its record took.
fn write_checkpoint(
    changelog: &spate::io::kafka::Changelog,
    (epoch, held): (u64, u64),
    entries: &[(Vec<u8>, Option<Vec<u8>>)],
) -> u32 {
    let meta = spate::checkpoint::PartitionCheckpoint {
        epoch,
        ..Default::default()
    };
    let record = spate::io::kafka::CheckpointRecord {
        meta: &meta,
        next_offsets: &[epoch * 10],
        entries,
        outputs: &[],
        later: None,
        held,
    };
    let pieces = changelog.send_checkpoint(0, &record).unwrap();
    changelog.flush(epoch).unwrap();
    pieces
}

#[test]
fn a_restore_completes_the_entry_copies_the_last_owner_left_unfinished() {
    use spate::io::kafka::Changelog;
    use spate::io::kafka::KafkaSettings;

    let broker = Tansu::start();
    let changelog = Changelog::open(
        &KafkaSettings::default(),
        &broker.brokers(),
        "copies",
        "p",
        1,
    )
    .unwrap();
    // Both checkpoints leave two entries.
    let record = |epoch, entries: &[(Vec<u8>, Option<Vec<u8>>)]| {
        write_checkpoint(&changelog, (epoch, 2), entries);
    };
    record(1, &[(vec![7], Some(vec![70])), (vec![8], Some(vec![80]))]);
    // The owner died before its copy of entry 7 was written: take that copy away.
    broker.produce_tombstone(changelog.topic(), 0, &[b's', 7]);
    let state = |changelog: &Changelog| changelog.restore(0).unwrap().unwrap().state;
    assert_eq!(
        state(&changelog),
        vec![(vec![7], vec![70]), (vec![8], vec![80])]
    );
    // The next owner's checkpoint changes entry 8 only: entry 7 must still be restored.
    record(2, &[(vec![8], Some(vec![81]))]);
    assert_eq!(
        state(&changelog),
        vec![(vec![7], vec![70]), (vec![8], vec![81])]
    );
    // Read back from the end, past the copies a restore rewrote after it: epoch 2's record.
    let newest = changelog.newest_checkpoint(0).unwrap().unwrap();
    assert_eq!((newest.meta.epoch, newest.next_offsets), (2, vec![20]));
}

/// A checkpoint larger than Kafka takes in one record (1 MB by default) goes to the changelog
/// in pieces, restores whole from the broker, and its pieces are dropped once a newer
/// checkpoint is in.
#[test]
fn a_large_checkpoint_goes_to_the_changelog_in_pieces_and_restores_whole() {
    use spate::io::kafka::KafkaSettings;
    use spate::io::kafka::{Changelog, PIECE_BYTES};

    let broker = Tansu::start();
    let changelog =
        Changelog::open(&KafkaSettings::default(), &broker.brokers(), "big", "p", 1).unwrap();
    // 3,000 entries of 1 KB: about 3 MB of changed state in one epoch.
    let entries = |epoch: u8| -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        (0..3_000u32)
            .map(|i| (i.to_be_bytes().to_vec(), Some(vec![epoch; 1_000])))
            .collect()
    };
    let write = |epoch, entries: &[(Vec<u8>, Option<Vec<u8>>)]| {
        write_checkpoint(&changelog, (epoch, 3_000), entries)
    };
    let first = entries(1);
    let pieces = write(1, &first);
    assert!(
        pieces as usize >= 3_000_000 / PIECE_BYTES,
        "{pieces} pieces"
    );
    let restored = changelog.restore(0).unwrap().unwrap();
    assert_eq!(restored.checkpoint.meta.epoch, 1);
    assert_eq!(
        restored.state,
        first
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().unwrap()))
            .collect::<Vec<_>>()
    );
    // A newer checkpoint, then the first one's pieces go (as when epoch 2 commits).
    let second = entries(2);
    write(2, &second);
    changelog.drop_pieces(0, 1, pieces).unwrap();
    changelog.flush(2).unwrap();
    let restored = changelog.restore(0).unwrap().unwrap();
    assert_eq!(restored.checkpoint.meta.epoch, 2);
    assert!(restored.state.iter().all(|(_, v)| v[0] == 2));
    assert_eq!(restored.state.len(), 3_000);
    // Epoch 1's pieces got one tombstone each (from drop_pieces; the restore after it found
    // nothing stale to drop).
    let tombstones = broker
        .read_topic(changelog.topic())
        .into_iter()
        .filter(|r| r.key.as_deref().is_some_and(|k| k.starts_with('p')) && r.payload.is_empty())
        .count();
    assert_eq!(tombstones, pieces as usize);
}

/// The keys holding state in the running job at `addr`, over its partitions.
fn live_keys(addr: &str) -> Option<u64> {
    let response = http_get(addr, "/api/state")?;
    let body = response.split_once("\r\n\r\n")?.1;
    let reply: serde_json::Value = serde_json::from_str(body).ok()?;
    let partitions = reply["partitions"].as_array()?;
    Some(partitions.iter().filter_map(|p| p["keys"].as_u64()).sum())
}

/// An erasure on a running Kafka job reaches its changelog: an instance that takes the
/// partitions over after a kill -9, with a state directory of its own, restores every key but
/// the erased one.
#[test]
fn an_erased_key_stays_erased_after_a_kafka_takeover() {
    let tmp = tempfile::tempdir().unwrap();
    let (broker, _) = setup(tmp.path(), 8_000);
    let instance = |name: &str| {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut args = live_job(&broker, "tx-windows", "erase", &tmp.path().join(name));
        args.extend(["--trigger", "200ms", "--idle-timeout", "1h"].map(String::from));
        args.extend(["--metrics-addr".to_string(), addr.clone()]);
        let log = tmp.path().join(format!("{name}.log"));
        (Running(spawn_logged(&as_strs(&args), &log)), addr)
    };
    let (mut a, a_addr) = instance("a");
    wait_until("a reads the topic", Duration::from_secs(60), || {
        counter(&a_addr, "spate_records_in_total").is_some_and(|n| n >= 7_900.0)
            && live_keys(&a_addr).is_some_and(|k| k > 0)
    });
    std::thread::sleep(Duration::from_secs(1)); // the last records' epoch commits
    let states = |addr: &str| -> Vec<(String, String)> {
        (0..40)
            .map(|u| format!("u{u:05}"))
            .filter_map(|key| {
                let response = http_get(addr, &format!("/state/{key}"))?;
                let body = response.split_once("\r\n\r\n")?.1.to_string();
                response.starts_with("HTTP/1.1 200").then_some((key, body))
            })
            .collect()
    };
    let (before, keys) = (states(&a_addr), live_keys(&a_addr).unwrap());
    assert!(before.len() > 3, "few users hold state: {before:?}");
    let erased = &before[0].0;
    let erase = spate(&["state", "erase", "--addr", &a_addr, "--key", erased])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&erase.stderr);
    assert!(erase.status.success(), "{err}");
    assert!(err.contains("at the end of epoch"), "{err}");
    a.0.kill().unwrap();
    a.0.wait().unwrap();

    let (_b, b_addr) = instance("b");
    wait_until("b restores the changelog", Duration::from_secs(60), || {
        live_keys(&b_addr) == Some(keys - 1)
    });
    assert_eq!(states(&b_addr)[..], before[1..], "every other key");
    let gone = http_get(&b_addr, &format!("/state/{erased}")).unwrap();
    assert!(gone.starts_with("HTTP/1.1 404"), "{gone}");
}

/// A new owner that resumes a key partition from a checkpoint older than output already in the
/// output topic (the changelog read short, or its last owner still writing) stops, naming the
/// epochs, instead of making those results again.
#[test]
fn output_newer_than_the_restored_checkpoint_stops_the_new_owner() {
    use spate::io::kafka::{KafkaSettings, KafkaSink, KafkaTopic};
    use spate::io::sink::{EpochSink, EpochStats, Lines, OutputStream};
    use spate::Error;

    let broker = Tansu::start();
    let topic = KafkaTopic {
        brokers: broker.brokers(),
        topic: "ahead-out".into(),
    };
    let open = || KafkaSink::open(&topic, &KafkaSettings::default(), "ahead", 2).unwrap();
    let sink = open();
    for epoch in [5, 6] {
        let lines = Lines::unkeyed(format!("{{\"epoch\":{epoch}}}\n").into_bytes());
        let staged = sink
            .stage_keyed(epoch, OutputStream::Results, "p001", lines)
            .unwrap();
        sink.commit(epoch, staged.into_iter().collect(), &EpochStats::default())
            .unwrap();
    }
    match open().recover_resent(&[("p001".into(), 5)]) {
        Err(Error::OutputAhead {
            partition,
            writer,
            found,
            restored,
            ..
        }) => assert_eq!(
            (partition, writer.as_str(), found, restored),
            (1, "p001", 6, 5)
        ),
        other => panic!("expected OutputAhead, got {other:?}"),
    }
    // Resuming from the newest checkpoint, or another writer's, is what a takeover does.
    open().recover_resent(&[("p001".into(), 6)]).unwrap();
    open().recover_resent(&[("p000".into(), 3)]).unwrap();
}

/// The repartition topic of a chained pipeline in a consumer group: each writer's exchange
/// batch for key partition q lands in partition q once, even when its epoch is sent again
/// after a takeover, and reads back beside the job's input with its sender.
#[test]
fn exchange_batches_cross_the_repartition_topic_once_each() {
    use spate::io::kafka::repartition::{self, ExchangeRecord, WithExchange};
    use spate::io::kafka::{KafkaReader, KafkaSettings, KafkaSink};
    use spate::io::sink::{EpochSink, EpochStats, Lines, OutputStream};
    use spate::io::source::{NamedReader, ReadStatus, SourceReader};

    let broker = Tansu::start();
    let settings = KafkaSettings::default();
    let topic = repartition::topic(&broker.brokers(), "rekeyed");
    assert_eq!(topic.topic, "rekeyed-stage2-repartition");
    let batches =
        |writer: u8| -> Vec<Vec<u8>> { (0..3u8).map(|q| vec![writer; q as usize * 2]).collect() };
    let send = |writer: &str, epoch, resent: bool| {
        let sink = KafkaSink::repartition(&topic, &settings, "rekeyed", 3).unwrap();
        if resent {
            sink.recover_resent(&[(writer.to_string(), epoch)]).unwrap();
        }
        let mut lines = Vec::new();
        for batch in batches(writer.as_bytes()[3]) {
            repartition::encode_line(&batch, &mut lines);
        }
        let staged = sink
            .stage_keyed(
                epoch,
                OutputStream::Repartition,
                writer,
                Lines::unkeyed(lines),
            )
            .unwrap();
        sink.commit(epoch, staged.into_iter().collect(), &EpochStats::default())
            .unwrap();
    };
    send("p001", 5, false);
    send("p002", 9, false);
    // p001's new owner sends its checkpoint's epoch again: nothing of it is written twice.
    send("p001", 5, true);
    let records = broker.read_topic(&topic.topic);
    assert_eq!(records.len(), 6, "two writers, three batches each");
    for q in 0..3 {
        let ids: Vec<&str> = (records.iter())
            .filter(|r| r.partition == q)
            .filter_map(|r| r.header("spate.id"))
            .collect();
        assert_eq!(
            ids,
            [format!("rekeyed/p001/5/{q}"), format!("rekeyed/p002/9/{q}")],
            "partition {q}"
        );
    }

    // Key partitions 0..3 read the repartition topic beside their (empty) input.
    broker.create_topic("rekeyed-in", 3);
    let in_topic = spate::io::kafka::KafkaTopic {
        brokers: broker.brokers(),
        topic: "rekeyed-in".into(),
    };
    let ids = vec![0, 1, 2];
    let input: KafkaReader<serde_json::Value> =
        KafkaReader::open(&in_topic, &settings, "rekeyed", ids.clone(), None, None).unwrap();
    let exchange = KafkaReader::open_with(
        &topic,
        &settings,
        "rekeyed",
        (ids, None),
        repartition::decode_record,
    )
    .unwrap();
    let mut reader = WithExchange::new(
        NamedReader {
            name: "in".into(),
            reader: Box::new(input),
        },
        NamedReader {
            name: topic.topic.clone(),
            reader: Box::new(exchange),
        },
    )
    .unwrap();
    let (mut out, mut routes, mut dead, mut got) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < 6 && Instant::now() < deadline {
        let status = reader
            .read(&mut out, &mut routes, &mut dead, 100, None)
            .unwrap();
        assert_ne!(status, ReadStatus::End, "the repartition topic never ends");
        reader.take_exchanged(&mut got);
    }
    assert!(out.is_empty() && dead.is_empty());
    got.sort_by_key(|(route, record)| (*route, record.from));
    let expected: Vec<(u32, ExchangeRecord)> = (0..3u32)
        .flat_map(|q| {
            [(1u32, b'1'), (2, b'2')].map(|(from, writer)| {
                let batch = batches(writer)[q as usize].clone();
                (q, ExchangeRecord { from, batch })
            })
        })
        .collect();
    assert_eq!(got, expected);
}
