//! The PostgreSQL sink against a real server (`support/postgres.rs`): the three transaction
//! pipelines into tables, killed with SIGKILL at random moments and restarted, give the file
//! sink's output row for row, each epoch committed once; a server restarted mid-run is waited
//! for, and nothing is lost or doubled; TLS is used and the server's certificate checked as
//! `sslmode` says.

mod common;
#[path = "support/postgres.rs"]
mod postgres;

use common::*;
use postgres::Postgres;
use std::path::Path;
use std::time::Duration;

/// The rows of `table` (as JSON text, each number written as a float so that `100` and
/// `100.0` compare equal), sorted.
fn rows(server: &Postgres, table: &str) -> Vec<String> {
    rows_at(&server.url("postgres"), table)
}

/// [`rows`] of the server at `url`.
fn rows_at(url: &str, table: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows: Vec<String> = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let sql = format!("SELECT row_to_json(t)::text FROM {table} t");
        let rows = client.query(&sql, &[]).await.unwrap();
        rows.iter()
            .map(|r| numbers_as_floats(&r.get::<_, String>(0)))
            .collect()
    });
    rows.sort();
    rows
}

/// `lines` normalized as [`numbers_as_floats`], sorted.
fn normalized(lines: &[String]) -> Vec<String> {
    let mut lines: Vec<String> = lines.iter().map(|l| numbers_as_floats(l)).collect();
    lines.sort();
    lines
}

/// The `line` column of `table` (a late or dead-letter table), as JSON text, sorted.
fn lines_of(server: &Postgres, table: &str) -> Vec<String> {
    let mut lines: Vec<String> = rows(server, table)
        .into_iter()
        .map(|row| {
            let value: serde_json::Value = serde_json::from_str(&row).unwrap();
            value["line"].to_string()
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn the_transaction_pipelines_land_in_tables_exactly_once_across_kills() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Postgres::start();
    let input = tmp.path().join("tx.jsonl");
    write_transactions(&input, 30_000, 300, 41, true);
    let (mut rng, mut kills_in_all) = (Rng(41), 0);
    for pipeline in ["tx-windows", "fraud", "sessions"] {
        let table = pipeline.replace('-', "_");
        let reference = tmp.path().join(format!("{table}-file"));
        let (source, sink) = (file_arg(&input), file_arg(&reference));
        let epochs = [
            "--max-records-per-epoch",
            "300",
            "--checkpoint-interval",
            "50ms",
        ];
        run_ok(
            &[
                &["run", pipeline, "--source", &source, "--sink", &sink],
                &epochs[..],
            ]
            .concat(),
        );
        let [results, late, dead] = all_outputs(&reference);
        assert!(!results.is_empty() && !dead.is_empty(), "{pipeline}");

        let url = format!("{}&table={table}", server.url("postgres"));
        let state = tmp.path().join(format!("{table}-state"));
        let extra = [&epochs[..], &["--metrics-addr", "off"]].concat();
        let job = (pipeline, source.as_str(), url.as_str());
        let kills = run_through_kills(job, &state, &extra, 5, &mut rng);
        kills_in_all += kills;
        let what = format!("{pipeline} in PostgreSQL after {kills} kills");
        assert_same_lines(&rows(&server, &table), &normalized(&results), &what);
        assert_same_lines(
            &lines_of(&server, &format!("{table}_late")),
            &normalized(&late),
            &what,
        );
        let dead_table = format!("{table}_dead_letter");
        assert_same_lines(&lines_of(&server, &dead_table), &normalized(&dead), &what);
    }
    assert!(kills_in_all > 0, "no run was killed while it ran");
}

#[test]
fn a_server_restarted_mid_run_is_waited_for_and_nothing_is_lost_or_doubled() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Postgres::start();
    // Generated input paced at 10,000 events/s (6 s), the same events in every run.
    let generated = [
        "--events",
        "60000",
        "--rate",
        "10000",
        "--keys",
        "300",
        "--start",
        "2026-01-01T00:00:00Z",
        "--metrics-addr",
        "off",
    ];
    let reference = tmp.path().join("file");
    let sink = file_arg(&reference);
    run_ok(&[&["run", "tx-windows", "--sink", &sink][..], &generated].concat());
    let [results, _, _] = all_outputs(&reference);

    let url = format!("{}&table=windows", server.url("postgres"));
    let state = tmp.path().join("state");
    let args = [
        &["run", "tx-windows", "--sink", &url][..],
        &["--state", state.to_str().unwrap()],
        &generated,
    ]
    .concat();
    let log = tmp.path().join("job.log");
    let mut job = spawn_logged(&args, &log);
    std::thread::sleep(Duration::from_millis(1500));
    server.stop();
    std::thread::sleep(Duration::from_secs(3));
    server.restart();
    let status = wait_for(&mut job, Duration::from_secs(120));
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("PostgreSQL unreachable"),
        "the job never waited: {log}"
    );
    assert_same_lines(
        &rows(&server, "windows"),
        &normalized(&results),
        "results across a server restart",
    );
}

#[test]
fn update_mode_leaves_one_row_per_key_with_its_last_value() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Postgres::start();
    let input = tmp.path().join("tx.jsonl");
    write_transactions(&input, 30_000, 300, 43, false);
    let source = file_arg(&input);
    let update = [
        "--output-mode",
        "update",
        "--allowed-lateness",
        "3m",
        "--max-records-per-epoch",
        "500",
    ];
    let reference = tmp.path().join("file");
    let sink = file_arg(&reference);
    let args = ["run", "tx-windows", "--source", &source, "--sink", &sink];
    run_ok(&[&args[..], &update].concat());
    let [results, _, _] = all_outputs(&reference);
    let (expected, updated) = last_emissions(&results);
    assert!(updated > 0, "no window was updated: the test shows nothing");

    let url = format!(
        "{}&table=windows&key=key,window_start",
        server.url("postgres")
    );
    let args = ["run", "tx-windows", "--source", &source, "--sink", &url];
    run_ok(&[&args[..], &update, &["--metrics-addr", "off"]].concat());
    assert_same_lines(
        &rows(&server, "windows"),
        &normalized(&expected),
        &format!("one row per window ({updated} updated)"),
    );
}

/// Writes a CA and a server certificate it signed for `127.0.0.1` into `dir` with openssl:
/// `ca.pem`, `server.pem`, `server.key`; and `other-ca.pem`, a CA that signed nothing.
fn certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (Debian's openssl package) makes the test certificates");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for ca in ["ca", "other-ca"] {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=spate test {ca}"),
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
        ]);
    }
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName = IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
}

#[test]
fn tls_connections_are_made_and_checked_as_sslmode_says() {
    let tmp = tempfile::tempdir().unwrap();
    certificates(tmp.path());
    let mut server = Postgres::start();
    server.require_tls(
        &tmp.path().join("server.pem"),
        &tmp.path().join("server.key"),
    );
    let input = tmp.path().join("tx.jsonl");
    write_transactions(&input, 3_000, 30, 11, false);
    let source = file_arg(&input);
    let base = format!("postgres://tansu@127.0.0.1:{}/postgres", server.port());
    let ca = tmp.path().join("ca.pem");
    let other = tmp.path().join("other-ca.pem");
    let run = |table: &str, options: &str| {
        let url = format!("{base}?table={table}&{options}");
        let args = ["run", "tx-windows", "--source", &source, "--sink", &url];
        spate(&[&args[..], &["--metrics-addr", "off", "--app-id", table]].concat())
            .output()
            .unwrap()
    };
    for (table, options) in [
        ("required", "sslmode=require".to_string()),
        (
            "verified",
            format!("sslmode=verify-full&sslrootcert={}", ca.display()),
        ),
    ] {
        let out = run(table, &options);
        assert!(
            out.status.success(),
            "{options}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let socket = server.socket_url("postgres");
        assert!(!rows_at(&socket, table).is_empty(), "{options}");
    }
    for (options, why) in [
        ("sslmode=disable".to_string(), "pg_hba.conf"),
        (
            format!("sslmode=verify-ca&sslrootcert={}", other.display()),
            "certificate",
        ),
    ] {
        let started = std::time::Instant::now();
        let out = run("refused", &options);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(why),
            "{options}: {stderr}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{options}: retried {stderr}"
        );
    }
}
