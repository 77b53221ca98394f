//! Operating a running job: `GET /health`, `GET /api/progress` and `spate status` against a
//! healthy job, a stalled one and a stopped one; its traces at an OTLP collector.

mod common;
#[path = "support/otlp.rs"]
mod otlp;

use common::*;
use std::process::Child;
use std::time::Duration;

/// `spate status --addr addr --last last`: exit code and stdout.
fn status(addr: &str, last: &str) -> (Option<i32>, String, String) {
    let out = spate(&["status", "--addr", addr, "--last", last])
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code(), text(out.stdout), text(out.stderr))
}

/// The body of `GET path` at `addr`, once the server answers.
fn body(addr: &str, path: &str) -> Option<String> {
    let response = http_get(addr, path)?;
    Some(response.split_once("\r\n\r\n")?.1.to_string())
}

/// `/api/progress?last=N` decoded.
fn progress(addr: &str, last: usize) -> Option<serde_json::Value> {
    serde_json::from_str(&body(addr, &format!("/api/progress?last={last}"))?).ok()
}

/// Stops a job with SIGTERM and waits for it.
fn stop(mut child: Child) {
    sigterm(&child);
    child.wait().unwrap();
}

#[test]
fn a_healthy_job_reports_its_epochs_and_a_stopped_one_is_not_found() {
    let (child, addr) = metered_job("20000", &[], &[]);
    wait_until("five epochs committed", Duration::from_secs(60), || {
        progress(&addr, 100).is_some_and(|p| p["epochs"].as_array().unwrap().len() >= 5)
    });
    let health = http_get(&addr, "/health").unwrap();
    let reply = progress(&addr, 3).unwrap();
    let (code, out, err) = status(&addr, "4");
    let records_in = counter(&addr, "spate_records_in_total").unwrap();
    let all = progress(&addr, 1_000).unwrap();
    stop(child);

    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"),
        "{health}"
    );
    assert_eq!(reply["pipeline"], "tx-windows");
    assert_eq!(reply["health"], "healthy");
    assert!(reply["reason"].is_null(), "{reply}");
    let epochs = reply["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 3, "?last=3");
    let numbers: Vec<u64> = epochs
        .iter()
        .map(|e| e["epoch"].as_u64().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
    for e in epochs {
        for field in [
            "committed_at",
            "records_in",
            "outputs",
            "late",
            "dead_letters",
            "input_rows_per_second",
            "processed_rows_per_second",
            "watermark",
            "watermark_ms",
            "watermark_lag_ms",
            "state_keys",
            "state_bytes",
        ] {
            assert!(!e[field].is_null(), "{field} missing from {e}");
        }
        for phase in [
            "read",
            "process",
            "seal",
            "changelog_flush",
            "commit",
            "total",
        ] {
            assert!(
                e["duration_ms"][phase].as_f64().unwrap() >= 0.0,
                "{phase}: {e}"
            );
        }
    }
    // The epochs kept add up to no more than the job read (the oldest may have been dropped).
    let listed: u64 = (all["epochs"].as_array().unwrap().iter())
        .map(|e| e["records_in"].as_u64().unwrap())
        .sum();
    assert!(
        listed > 0 && listed as f64 <= records_in,
        "{listed} > {records_in}"
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pipeline tx-windows: healthy", "{out}");
    assert_eq!(lines.len(), 2 + 4, "the header and four epochs:\n{out}");

    let (code, out, err) = status(&addr, "4");
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains(&format!("no spate job answers at {addr}")),
        "{err}"
    );
}

#[test]
fn a_stalled_job_is_unhealthy_and_says_why() {
    // Key partition 0 sleeps a minute before its first batch: no epoch commits meanwhile.
    let (mut child, addr) = metered_job(
        "2000",
        &["--unhealthy-after", "1s"],
        &[("SPATE_SLOW_PARTITION", "0:60000")],
    );
    let mut health = String::new();
    wait_until("/health answers 503", Duration::from_secs(30), || {
        health = http_get(&addr, "/health").unwrap_or_default();
        health.starts_with("HTTP/1.1 503")
    });
    let (code, out, err) = status(&addr, "5");
    child.kill().unwrap();
    child.wait().unwrap();

    assert!(
        health.contains("unhealthy: stalled: no epoch committed for"),
        "{health}"
    );
    assert!(health.contains("(limit --unhealthy-after 1s)"), "{health}");
    assert_eq!(code, Some(1), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pipeline tx-windows: unhealthy", "{out}");
    assert_eq!(lines[2], "(no epoch committed yet)", "{out}");
    assert!(
        lines[3].starts_with("unhealthy: stalled: no epoch committed for"),
        "{out}"
    );
}

/// The Chromium binary: `SPATE_CHROMIUM` (scripts/test sets it) or `chromium` on the PATH.
fn chromium() -> String {
    std::env::var("SPATE_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// Headless Chromium on `url` after `budget_ms` of the page's virtual time, with `args`.
fn headless(url: &str, budget_ms: u32, args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    std::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .args(args)
        .arg(url)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}): scripts/test installs Debian's chromium",
                chromium()
            )
        })
}

/// The `data-points` and `data-last` of the chart figure `id` in a dumped DOM.
fn chart(dom: &str, id: &str) -> (usize, f64) {
    let at = dom
        .find(&format!("<figure id=\"{id}\""))
        .unwrap_or_else(|| panic!("no chart {id} in the page"));
    let tag = &dom[at..at + dom[at..].find('>').unwrap()];
    let attr = |name: &str| {
        let start = tag.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        tag[start..start + tag[start..].find('"').unwrap()].to_string()
    };
    (
        attr("data-points").parse().unwrap(),
        attr("data-last").parse().unwrap(),
    )
}

#[test]
fn the_status_page_draws_live_charts_in_chromium() {
    let (child, addr) = metered_job("20000", &[], &[]);
    wait_until("three epochs committed", Duration::from_secs(60), || {
        progress(&addr, 100).is_some_and(|p| p["epochs"].as_array().unwrap().len() >= 3)
    });
    let url = format!("http://{addr}/");
    let dom = headless(&url, 5_000, &["--dump-dom"]);
    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/status-page.png");
    let screenshot = headless(
        &url,
        5_000,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,1250",
        ],
    );
    stop(child);

    let dom = String::from_utf8(dom.stdout).unwrap();
    assert!(
        dom.contains("<span id=\"pipeline\">tx-windows</span>"),
        "{dom}"
    );
    assert!(dom.contains("class=\"healthy\""), "{dom}");
    assert!(dom.contains("stage 1: keyed by"), "the topology: {dom}");
    for id in [
        "rates",
        "epochs",
        "watermark",
        "state",
        "partitions",
        "checkpoints",
    ] {
        let (points, last) = chart(&dom, id);
        assert!(
            points >= 2 && last > 0.0,
            "{id}: {points} points, last {last}"
        );
    }
    assert!(
        screenshot.status.success() && shot.metadata().unwrap().len() > 10_000,
        "no screenshot: {}",
        String::from_utf8_lossy(&screenshot.stderr)
    );
}

#[test]
fn log_format_json_writes_one_object_per_log_line() {
    let addr = format!("127.0.0.1:{}", free_port());
    let out = spate(&[
        "--log-format",
        "json",
        "run",
        "tx-windows",
        "--events",
        "1000",
        "--metrics-addr",
        &addr,
    ])
    .env("RUST_LOG", "info")
    .output()
    .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    let logs: Vec<serde_json::Value> = (err.lines())
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        logs.iter().any(|l| l["level"] == "INFO"
            && l["fields"]["message"] == format!("metrics at http://{addr}/metrics")),
        "{err}"
    );
    assert!(logs
        .iter()
        .all(|l| l["timestamp"].is_string() && l["target"].is_string()));
}

/// The integer attribute `key` of `span`.
fn attribute(span: &otlp::Span, key: &str) -> Option<i64> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    let value = span
        .attributes
        .iter()
        .find(|a| a.key == key)?
        .value
        .as_ref()?;
    match value.value.as_ref()? {
        Value::IntValue(n) => Some(*n),
        _ => None,
    }
}

#[test]
fn epochs_their_phases_and_checkpoints_are_traced_to_an_otlp_collector() {
    let collector = otlp::Collector::start();
    let extra = ["--otlp-endpoint", &collector.url, "--trigger", "200ms"];
    let (child, addr) = metered_job("20000", &extra, &[]);
    wait_until("five epochs", Duration::from_secs(60), || {
        counter(&addr, "spate_epoch_duration_seconds_count").is_some_and(|n| n >= 5.0)
    });
    stop(child); // the job sends its last spans before it exits
    let spans = collector.spans();
    let epochs: Vec<_> = spans.iter().filter(|s| s.name == "epoch").collect();
    assert!(epochs.len() >= 5, "{} epoch spans", epochs.len());
    let numbers: Vec<_> = epochs.iter().map(|s| attribute(s, "spate.epoch")).collect();
    assert!(numbers.iter().all(Option::is_some), "{numbers:?}");
    let records: i64 = epochs
        .iter()
        .filter_map(|s| attribute(s, "spate.records_in"))
        .sum();
    assert!(records > 0, "no records in the epoch spans");
    for epoch in &epochs {
        assert!(epoch.parent_span_id.is_empty(), "an epoch span is a root");
        let children: Vec<_> = (spans.iter())
            .filter(|s| s.parent_span_id == epoch.span_id && s.name != "checkpoint")
            .collect();
        let mut names: Vec<_> = children.iter().map(|s| s.name.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            ["commit", "process", "read", "seal"],
            "phases of an epoch"
        );
        for phase in children {
            assert_eq!(phase.trace_id, epoch.trace_id);
            assert!(
                epoch.start_time_unix_nano <= phase.start_time_unix_nano
                    && phase.start_time_unix_nano <= phase.end_time_unix_nano
                    && phase.end_time_unix_nano <= epoch.end_time_unix_nano,
                "{} outside its epoch",
                phase.name
            );
        }
    }
    let checkpoints: Vec<_> = spans.iter().filter(|s| s.name == "checkpoint").collect();
    assert!(!checkpoints.is_empty(), "the last epoch checkpoints");
    for checkpoint in checkpoints {
        assert!(attribute(checkpoint, "spate.partition").is_some());
        let parent = epochs
            .iter()
            .find(|e| e.span_id == checkpoint.parent_span_id);
        let parent = parent.expect("a checkpoint's span is a child of its epoch's");
        assert_eq!(
            attribute(parent, "spate.epoch"),
            attribute(checkpoint, "spate.epoch")
        );
    }
}
