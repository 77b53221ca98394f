//! `--sink delta:PATH`: the three transaction pipelines killed with SIGKILL at random moments
//! and restarted leave Delta tables that, read back with delta-rs and with the Python
//! `deltalake` package, hold the file sink's output row for row, one commit per epoch with
//! output and none twice; update mode merges on the key; `spate delta optimize` compacts
//! without changing a row; `--sink-opt target_file_size` cuts smaller files; a table of
//! another shape is refused.

mod common;
#[path = "support/postgres.rs"]
mod support;

use common::*;
use std::path::Path;

/// The runs' epoch settings: many small epochs, so kills land between and inside commits.
const EPOCHS: [&str; 6] = [
    "--max-records-per-epoch",
    "300",
    "--checkpoint-interval",
    "50ms",
    "--metrics-addr",
    "off",
];

/// The rows of the Delta table at `path` as delta-rs sees it (the Parquet files of its
/// current snapshot), as JSON with each number written as a float, sorted.
fn delta_rows(path: &Path) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let files: Vec<String> = runtime.block_on(async {
        let url = deltalake::ensure_table_uri(path.to_string_lossy()).unwrap();
        let table = deltalake::open_table(url).await.unwrap();
        table.get_file_uris().unwrap().collect()
    });
    let mut rows: Vec<String> = (files.iter())
        .flat_map(|uri| parquet_file_rows(Path::new(uri.strip_prefix("file://").unwrap_or(uri))))
        .collect();
    rows.sort();
    rows
}

/// The `line` column of a late-record or dead-letter table, sorted (empty when the table was
/// never created).
fn delta_lines(path: &Path) -> Vec<String> {
    if !path.join("_delta_log").exists() {
        return Vec::new();
    }
    let mut lines: Vec<String> = (delta_rows(path).iter())
        .map(|row| {
            let row: serde_json::Value = serde_json::from_str(row).unwrap();
            row["line"].as_str().unwrap().to_string()
        })
        .collect();
    lines.sort();
    lines
}

/// `lines` normalized as [`numbers_as_floats`], sorted.
fn normalized(lines: &[String]) -> Vec<String> {
    let mut lines: Vec<String> = lines.iter().map(|l| numbers_as_floats(l)).collect();
    lines.sort();
    lines
}

/// Each commit of the table at `path`, in version order: its operation and the transactions
/// (writer, epoch) it carries for `app_id` (whose writers' ids are `APP_ID/WRITER`).
fn commits(path: &Path, app_id: &str) -> Vec<(String, Vec<(String, u64)>)> {
    let mut files: Vec<_> = std::fs::read_dir(path.join("_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let prefix = format!("{app_id}/");
    let commit = |file: &Path| {
        let (mut operation, mut txns) = (String::new(), Vec::new());
        for line in std::fs::read_to_string(file).unwrap().lines() {
            let action: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(op) = action["commitInfo"]["operation"].as_str() {
                operation = op.to_string();
            }
            let txn = &action["txn"];
            if let Some(writer) = txn["appId"]
                .as_str()
                .and_then(|id| id.strip_prefix(&prefix))
            {
                txns.push((writer.to_string(), txn["version"].as_u64().unwrap()));
            }
        }
        (operation, txns)
    };
    files.iter().map(|f| commit(f)).collect()
}

/// Asserts every data commit of the table at `path` carries epochs of `app_id`'s writers, each
/// writer's later than its one before: no writer's epoch was committed twice.
fn assert_one_commit_per_epoch(path: &Path, app_id: &str, what: &str) {
    let commits = commits(path, app_id);
    let mut last = std::collections::HashMap::new();
    for (operation, txns) in &commits {
        if operation == "OPTIMIZE" {
            assert!(txns.is_empty(), "{what}: {commits:?}");
            continue;
        }
        assert!(
            !txns.is_empty(),
            "{what}: a {operation} commit: {commits:?}"
        );
        for (writer, epoch) in txns {
            let before = last.insert(writer.clone(), *epoch);
            assert!(
                before < Some(*epoch),
                "{what}: {writer}'s epoch {epoch} committed after {before:?}"
            );
        }
    }
}

/// Runs `pipeline` on `source` into a file sink under `dir`, once without interruption.
fn reference(pipeline: &str, source: &str, dir: &Path, extra: &[&str]) -> [Vec<String>; 3] {
    let sink = file_arg(dir);
    let args = ["run", pipeline, "--source", source, "--sink", &sink];
    run_ok(&[&args[..], &EPOCHS, extra].concat());
    all_outputs(dir)
}

#[test]
fn the_transaction_pipelines_land_in_delta_tables_exactly_once_across_kills() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tx.jsonl");
    write_transactions(&input, 30_000, 300, 47, true);
    let source = file_arg(&input);
    let (mut rng, mut kills_in_all) = (Rng(47), 0);
    for pipeline in ["tx-windows", "fraud", "sessions"] {
        let [results, late, dead] = reference(pipeline, &source, &tmp.path().join(pipeline), &[]);
        assert!(!results.is_empty() && !dead.is_empty(), "{pipeline}");

        let table = tmp.path().join(format!("{pipeline}-delta"));
        let sink = format!("delta:{}", table.display());
        let state = tmp.path().join(format!("{pipeline}-state"));
        let job = (pipeline, source.as_str(), sink.as_str());
        let kills = run_through_kills(job, &state, &EPOCHS, 5, &mut rng);
        kills_in_all += kills;
        let what = format!("{pipeline} in Delta after {kills} kills");
        assert_same_lines(&delta_rows(&table), &normalized(&results), &what);
        let sibling = |stream: &str| tmp.path().join(format!("{pipeline}-delta_{stream}"));
        assert_same_lines(&delta_lines(&sibling("late")), &late, &what);
        assert_same_lines(&delta_lines(&sibling("dead_letter")), &dead, &what);
        let app_id = format!("spate-{pipeline}");
        assert_one_commit_per_epoch(&table, &app_id, &what);
    }
    assert!(kills_in_all > 0, "no run was killed while it ran");
}

/// The rows of the Delta table at `path` as the Python `deltalake` package reads them, as JSON
/// with each number written as a float, sorted.
fn python_rows(path: &Path) -> Vec<String> {
    let python = support::tool("SPATE_DELTALAKE_PYTHON", "deltalake-venv/bin/python");
    let script = "import json, os, sys\n\
        from deltalake import DeltaTable\n\
        for row in DeltaTable(sys.argv[1]).to_pyarrow_table().to_pylist():\n\
        \x20   print(json.dumps(row))\n\
        sys.stdout.flush()\n\
        os._exit(0)  # pyarrow's threads can abort a normal interpreter exit\n";
    let out = std::process::Command::new(python)
        .args(["-c", script, path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows: Vec<String> = (String::from_utf8(out.stdout).unwrap().lines())
        .map(numbers_as_floats)
        .collect();
    rows.sort();
    rows
}

#[test]
fn update_mode_merges_on_the_key_and_python_deltalake_reads_what_optimize_left() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tx.jsonl");
    write_transactions(&input, 30_000, 300, 43, false);
    let source = file_arg(&input);
    let update = ["--output-mode", "update", "--allowed-lateness", "3m"];
    let [results, _, _] = reference("tx-windows", &source, &tmp.path().join("file"), &update);
    let (expected, updated) = last_emissions(&results);
    assert!(updated > 0, "no window was updated: the test shows nothing");

    let table = tmp.path().join("windows");
    let sink = format!("delta:{}?key=key,window_start", table.display());
    let args = ["run", "tx-windows", "--source", &source, "--sink", &sink];
    run_ok(&[&args[..], &EPOCHS, &update].concat());
    let what = format!("one row per window ({updated} updated)");
    assert_same_lines(&delta_rows(&table), &normalized(&expected), &what);
    let merges = (commits(&table, "spate-tx-windows").iter())
        .filter(|(operation, _)| operation == "MERGE")
        .count();
    assert!(merges > 0, "no epoch was merged");

    let files = |table: &Path| (std::fs::read_dir(table).unwrap().count()) - 1; // _delta_log
    let before = files(&table);
    let out = run_ok(&["delta", "optimize", table.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["files_removed"].as_u64().unwrap() > 1, "{report}");
    assert_eq!(report["files_added"], 1, "{report}");
    assert_same_lines(
        &python_rows(&table),
        &normalized(&expected),
        &format!("{what}, read by Python deltalake after OPTIMIZE of {before} files"),
    );
    assert_one_commit_per_epoch(&table, "spate-tx-windows", "after OPTIMIZE");
}

#[test]
fn a_table_of_another_shape_is_refused_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tx.jsonl");
    write_transactions(&input, 2_000, 20, 5, false);
    let source = file_arg(&input);
    let sink = format!("delta:{}", tmp.path().join("t").display());
    run_ok(&["run", "tx-windows", "--source", &source, "--sink", &sink]);
    let out = spate(&["run", "fraud", "--source", &source, "--sink", &sink])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    // tx-windows' table has no `avg`; fraud's results do.
    let named = [
        "has columns (count: Int64, key: Utf8",
        "fields (avg: Float64, count",
    ];
    for named in named {
        assert!(stderr.contains(named), "{named}: {stderr}");
    }
}

#[test]
fn target_file_size_cuts_an_epochs_rows_into_more_files() {
    let tmp = tempfile::tempdir().unwrap();
    let generated = [
        "--source",
        "gen",
        "--events",
        "100000",
        "--keys",
        "20000",
        "--seed",
        "3",
        "--start",
        "2026-01-01T00:00:00Z",
    ];
    let files_and_rows = |name: &str, options: &[&str]| {
        let table = tmp.path().join(name);
        let sink = format!("delta:{}", table.display());
        let args = [
            "run",
            "tx-windows",
            "--sink",
            &sink,
            "--metrics-addr",
            "off",
        ];
        run_ok(&[&args[..], &generated, options].concat());
        let files = (std::fs::read_dir(&table).unwrap())
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "parquet")
            })
            .count();
        (files, delta_rows(&table))
    };
    let (default_files, rows) = files_and_rows("default", &[]);
    let (small_files, same_rows) =
        files_and_rows("small", &["--sink-opt", "target_file_size=16KiB"]);
    assert!(rows.len() > 10_000, "{} rows: too few to cut", rows.len());
    assert_eq!(rows, same_rows);
    assert!(
        small_files > default_files,
        "{small_files} files of at most 16 KiB, {default_files} of the default size"
    );
}
