//! `--sink parquet:DIR`: `tx-windows` and `fraud` killed with SIGKILL at random moments and
//! restarted write Parquet files that, read back with the `parquet` crate, hold the file sink's
//! JSON-lines results row for row, each epoch's file once.

mod common;

use common::*;
use std::path::Path;

/// Every row of the committed Parquet files directly in `dir`, as JSON with each number written
/// as a float (so `100` and `100.0` compare equal), sorted; and the files' names.
fn parquet_rows(dir: &Path) -> (Vec<String>, Vec<String>) {
    let (mut rows, mut names) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".parquet") {
            continue;
        }
        names.push(name);
        rows.extend(parquet_file_rows(&path));
    }
    rows.sort();
    (rows, names)
}

#[test]
fn parquet_results_equal_the_json_lines_across_kills() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tx.jsonl");
    write_transactions(&input, 40_000, 500, 17, true);
    let source = file_arg(&input);
    let epochs = [
        "--max-records-per-epoch",
        "1000",
        "--checkpoint-interval",
        "50ms",
        "--metrics-addr",
        "off",
    ];
    let (mut rng, mut kills) = (Rng(17), 0);
    for pipeline in ["tx-windows", "fraud"] {
        let reference = tmp.path().join(format!("{pipeline}-jsonl"));
        let sink = file_arg(&reference);
        run_ok(
            &[
                &["run", pipeline, "--source", &source, "--sink", &sink][..],
                &epochs,
            ]
            .concat(),
        );
        let [results, late, dead] = all_outputs(&reference);

        let out = tmp.path().join(format!("{pipeline}-parquet"));
        let sink = format!("parquet:{}", out.display());
        let state = tmp.path().join(format!("{pipeline}-state"));
        let job = (pipeline, source.as_str(), sink.as_str());
        kills += run_through_kills(job, &state, &epochs, 4, &mut rng);
        let (rows, files) = parquet_rows(&out);
        let expected: Vec<String> = results.iter().map(|l| numbers_as_floats(l)).collect();
        let mut expected = expected;
        expected.sort();
        assert_same_lines(&rows, &expected, &format!("{pipeline}: Parquet rows"));
        assert!(
            files.len() > 1,
            "{pipeline}: one file per epoch and partition"
        );
        let [_, got_late, got_dead] = all_outputs(&out);
        assert_same_lines(&got_late, &late, &format!("{pipeline}: late records"));
        assert_same_lines(&got_dead, &dead, &format!("{pipeline}: dead letters"));
    }
    assert!(kills > 0, "no run was killed while it ran");
}
