//! The Delta Lake sink, `--sink delta:PATH[?key=F1,F2]`: results go to the Delta table at
//! `PATH` (created by the first epoch with results, a typed column per field), late records and
//! dead letters to `PATH_late` and `PATH_dead_letter` (one string column, `line`).
//!
//! Exactly once, the way Spark's Delta sink does it: each epoch's rows of a table, from every
//! writer, are one Delta commit carrying a `txn` action per writer (application id = the job's
//! app id and the writer, `spate-fraud/p003`; version = the epoch). Before committing an epoch
//! the sink reads each writer's last `txn` version; a writer's rows of an epoch at or below it
//! were committed before (a replay after a crash) and are skipped. A transaction id per writer
//! rather than one per job keeps this true with `--group`, where each process commits its own
//! partitions' epochs, numbered by its own job. Rows are staged in memory: a crash loses them,
//! and the replay the runtime's checkpoints guarantee stages them again.
//!
//! With `key=`, result rows are merged on those fields (Delta `MERGE`: matched rows updated,
//! others inserted), so the table holds one row per key with its last value, as update mode
//! (`--output-mode update`) wants. `spate delta optimize PATH` compacts the small files that
//! short epochs leave ([`optimize`]).

mod optimize;
mod rows;
mod target;

pub use optimize::optimize;
pub use target::DeltaTarget;

use super::client_runtime::ClientRuntime;
use super::{
    upsert, writer_name, EpochSink, EpochStats, Lines, OutputStream, Staged, StagedPayload,
};
use crate::checkpoint::Epoch;
use crate::{Error, Result};
use deltalake::arrow::array::RecordBatch;
use deltalake::datafusion::prelude::{col, Expr, SessionContext};
use deltalake::kernel::transaction::{CommitProperties, TransactionError};
use deltalake::kernel::Transaction;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Writes committed output to Delta tables, exactly once.
pub struct DeltaSink {
    target: DeltaTarget,
    app_id: String,
    /// Every writer of the job: its key partitions and its source (`src`, dead letters).
    writers: Vec<String>,
    runtime: ClientRuntime,
    /// Each stream's table as this sink last committed or loaded it.
    tables: tokio::sync::Mutex<BTreeMap<OutputStream, DeltaTable>>,
    /// The streams whose output this run checked against its table's schema (once per run:
    /// the pipeline's output type does not change while it runs).
    checked: std::sync::Mutex<BTreeSet<OutputStream>>,
}

impl DeltaSink {
    /// A sink writing to `target` for the job `app_id` of `partitions` key partitions.
    pub fn open(target: &DeltaTarget, app_id: &str, partitions: u32) -> Result<Self> {
        let writers = (0..partitions).map(writer_name);
        Ok(DeltaSink {
            target: target.clone(),
            app_id: app_id.to_string(),
            writers: writers.chain(["src".to_string()]).collect(),
            runtime: ClientRuntime::new("Delta Lake client", 2)?,
            tables: Default::default(),
            checked: Default::default(),
        })
    }

    /// The error of `action` failing with `detail`, naming the sink.
    fn error(&self, action: &str, detail: impl std::fmt::Display) -> Error {
        Error::Sink {
            sink: format!("Delta Lake sink {}", self.target),
            action: action.to_string(),
            detail: detail.to_string(),
        }
    }

    /// `stream`'s table as last seen (brought up to date), or loaded from its directory
    /// (created when missing; a directory without a Delta log is a table still to be created).
    async fn table(&self, stream: OutputStream) -> Result<DeltaTable> {
        let failed = |e| self.error("open the table", e);
        match self.tables.lock().await.remove(&stream) {
            Some(mut table) if table.version().is_some() => {
                table.update_state().await.map_err(failed)?;
                Ok(table)
            }
            _ => load(&self.target.table_path(stream)).await.map_err(failed),
        }
    }

    /// The transaction id of `writer`'s commits: the job's app id and the writer.
    fn txn_id(&self, writer: &str) -> String {
        format!("{}/{writer}", self.app_id)
    }

    /// The last epoch of `writer` that `table` holds.
    async fn committed(&self, table: &DeltaTable, writer: &str) -> Result<Option<Epoch>> {
        if table.version().is_none() {
            return Ok(None);
        }
        let failed = |e: DeltaTableError| self.error("read the table's transactions", e);
        let state = table.snapshot().map_err(failed)?;
        let version = (state.transaction_version(table.log_store().as_ref(), self.txn_id(writer)))
            .await
            .map_err(failed)?;
        Ok(version.map(|v| v as Epoch))
    }

    /// The writers of `writers` whose `epoch` `table` does not hold yet.
    async fn fresh<'w>(
        &self,
        table: &DeltaTable,
        epoch: Epoch,
        writers: &'w BTreeMap<String, Vec<u8>>,
    ) -> Result<Vec<&'w str>> {
        let mut fresh = Vec::new();
        for writer in writers.keys() {
            if self
                .committed(table, writer)
                .await?
                .is_none_or(|last| last < epoch)
            {
                fresh.push(writer.as_str());
            }
        }
        Ok(fresh)
    }

    /// Commits `epoch`'s lines of `stream` of each writer in `writers` that the table does not
    /// hold yet (a replay skips the others). A commit that conflicts with another writer's (an
    /// OPTIMIZE that removed files a MERGE read) is tried once more on the table as it is now.
    async fn commit_stream(
        &self,
        epoch: Epoch,
        stream: OutputStream,
        writers: &BTreeMap<String, Vec<u8>>,
    ) -> Result<()> {
        for attempt in 0.. {
            let table = self.table(stream).await?;
            let fresh = self.fresh(&table, epoch, writers).await?;
            if fresh.is_empty() {
                self.tables.lock().await.insert(stream, table);
                return Ok(()); // committed before this replay
            }
            let lines: Vec<u8> = fresh.iter().flat_map(|w| &writers[*w]).copied().collect();
            let batches = self.batches(&table, stream, &lines)?;
            let txns = (fresh.iter())
                .map(|w| Transaction::new(self.txn_id(w), epoch as i64))
                .collect();
            match self.write(table, stream, batches, txns).await {
                Ok(table) => {
                    self.tables.lock().await.insert(stream, table);
                    return Ok(());
                }
                Err(e) if attempt == 0 && conflicts(&e) => {
                    tracing::warn!(error = %e, "Delta commit of epoch {epoch} conflicted; retrying");
                }
                Err(e) => return Err(self.error(&format!("commit epoch {epoch}"), e)),
            }
        }
        unreachable!("the loop returns")
    }

    /// `lines` of `stream` as record batches for `table`: results checked against the table's
    /// columns (on the first epoch of this run) and, with a key, only each key's last row.
    fn batches(
        &self,
        table: &DeltaTable,
        stream: OutputStream,
        lines: &[u8],
    ) -> Result<Vec<RecordBatch>> {
        if stream != OutputStream::Results {
            return Ok(vec![rows::line_batch(lines)]);
        }
        let refused = |detail| self.error("write the results", detail);
        let mut checked = self.checked.lock().expect("no panic holds it");
        let output = match checked.contains(&stream) && table.version().is_some() {
            true => None,
            false => Some(rows::infer_schema(lines).map_err(refused)?),
        };
        let schema = match table.snapshot() {
            Ok(state) => state.snapshot().arrow_schema(),
            Err(_) => output.clone().expect("inferred for a new table"),
        };
        if let Some(output) = output {
            if !rows::fits(&schema, &output) {
                return Err(refused(format!(
                    "the table at {} has columns ({}) but the results have fields ({}); give another path, or move that table away",
                    self.target.path.display(),
                    rows::describe(&schema),
                    rows::describe(&output)
                )));
            }
            checked.insert(stream);
        }
        let kept = upsert::last_per_key(lines, &self.target.key)?;
        rows::decode(&kept, schema).map_err(refused)
    }

    /// Appends `batches` to `table` (creating it when new), or merges them on the key, in one
    /// commit carrying `txns` (each writer's epoch).
    async fn write(
        &self,
        table: DeltaTable,
        stream: OutputStream,
        batches: Vec<RecordBatch>,
        txns: Vec<Transaction>,
    ) -> std::result::Result<DeltaTable, DeltaTableError> {
        let commit = CommitProperties::default().with_application_transactions(txns);
        let key = &self.target.key;
        if stream == OutputStream::Results && !key.is_empty() && table.version().is_some() {
            return merge(table, batches, key, commit).await;
        }
        (table.write(batches))
            .with_save_mode(SaveMode::Append)
            .with_target_file_size(self.target.target_file_size)
            .with_commit_properties(commit)
            .await
    }
}

/// The Delta table at `path` (its directory created when missing), loaded when it has a log.
async fn load(path: &Path) -> std::result::Result<DeltaTable, DeltaTableError> {
    let url = deltalake::ensure_table_uri(path.to_string_lossy())?;
    let mut table = deltalake::DeltaTableBuilder::from_url(url)?.build()?;
    if has_log(path) {
        table.load().await?;
    }
    Ok(table)
}

/// Whether `path` holds a Delta table: a log with at least one commit or checkpoint in it. A
/// log directory without one is what a process killed while creating the table leaves (the
/// directory made and the first commit written to a temporary file, not yet renamed into
/// place): that table is still to be created, and opening it would fail with "No files in log
/// segment".
fn has_log(path: &Path) -> bool {
    let Ok(files) = std::fs::read_dir(path.join("_delta_log")) else {
        return false;
    };
    files
        .flatten()
        .any(|file| file.file_name().to_str().is_some_and(is_log_version))
}

/// Whether `name` is a file of a Delta log's versions (`00000000000000000003.json`, a
/// checkpoint `00000000000000000010.checkpoint.parquet`): a 20-digit version, then its kind.
fn is_log_version(name: &str) -> bool {
    let (version, kind) = name.split_at(name.find('.').unwrap_or(name.len()));
    version.len() == 20
        && version.bytes().all(|b| b.is_ascii_digit())
        && (kind.ends_with(".json") || kind.ends_with(".parquet"))
}

/// Merges `batches` into `table` on `key`: a row whose key the table holds replaces that row's
/// other fields, any other is inserted.
async fn merge(
    table: DeltaTable,
    batches: Vec<RecordBatch>,
    key: &[String],
    commit: CommitProperties,
) -> std::result::Result<DeltaTable, DeltaTableError> {
    let Some(first) = batches.first() else {
        return Ok(table);
    };
    let fields: Vec<String> = (first.schema().fields().iter())
        .map(|f| f.name().clone())
        .collect();
    let source = SessionContext::new().read_batches(batches)?;
    let side = |alias: &str, field: &str| col(format!("{alias}.{field}"));
    let on = (key.iter())
        .map(|k| side("target", k).eq(side("source", k)))
        .reduce(Expr::and)
        .expect("a merge has a key");
    let (table, _metrics) = (table.merge(source, on))
        .with_source_alias("source")
        .with_target_alias("target")
        .with_commit_properties(commit)
        .when_matched_update(|update| {
            (fields.iter())
                .filter(|f| !key.contains(f))
                .fold(update, |u, f| u.update(f.as_str(), side("source", f)))
        })?
        .when_not_matched_insert(|insert| {
            (fields.iter()).fold(insert, |i, f| i.set(f.as_str(), side("source", f)))
        })?
        .await?;
    Ok(table)
}

/// Whether `error` is a conflict with another writer's commit, which a retry on the table as
/// it is now resolves.
fn conflicts(error: &DeltaTableError) -> bool {
    matches!(
        error,
        DeltaTableError::Transaction {
            source: TransactionError::CommitConflict(_)
        }
    )
}

impl EpochSink for DeltaSink {
    /// Holds `writer`'s lines in memory until the commit (a row carries its key in its
    /// columns).
    fn stage(
        &self,
        epoch: Epoch,
        stream: OutputStream,
        writer: &str,
        bytes: Vec<u8>,
    ) -> Result<Option<Staged>> {
        Ok(Staged::lines(epoch, stream, writer, Lines::unkeyed(bytes)))
    }

    fn location(&self, stream: OutputStream) -> String {
        format!(
            "the Delta table {}",
            self.target.table_path(stream).display()
        )
    }

    /// Commits each stream's rows of `epoch`, every writer's together, one Delta commit per
    /// table (late records and dead letters first, results last).
    fn commit(&self, epoch: Epoch, staged: Vec<Staged>, _stats: &EpochStats) -> Result<()> {
        let mut streams: BTreeMap<OutputStream, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
        for s in staged {
            if let StagedPayload::Lines { writer, lines } = s.payload {
                let stream = match s.stream {
                    OutputStream::Named(_) => OutputStream::Results,
                    other => other,
                };
                let writers = streams.entry(stream).or_default();
                writers.entry(writer).or_default().extend(lines.bytes);
            }
        }
        let order = [
            OutputStream::Late,
            OutputStream::DeadLetter,
            OutputStream::Results,
        ];
        self.runtime.run(async {
            for stream in order {
                if let Some(writers) = streams.get(&stream) {
                    self.commit_stream(epoch, stream, writers).await?;
                }
            }
            Ok(())
        })
    }

    fn recover(&self, _committed: Epoch, _recorded: Epoch) -> Result<()> {
        Ok(()) // nothing is staged outside memory
    }

    /// Refuses tables holding commits of epochs after `recorded` by this app id: another
    /// job's, or that of state that was lost, whose transaction versions would make this
    /// job's epochs of the same numbers look committed.
    fn claim_output(&self, recorded: Epoch, state: &str, _overwrite: bool) -> Result<()> {
        for stream in OutputStream::ALL {
            if !has_log(&self.target.table_path(stream)) {
                continue;
            }
            let last = self.runtime.run(async {
                let table = self.table(stream).await?;
                let mut last = None;
                for writer in &self.writers {
                    last = last.max(self.committed(&table, writer).await?);
                }
                self.tables.lock().await.insert(stream, table);
                Ok(last)
            })?;
            if let Some(last) = last.filter(|last| *last > recorded) {
                let path = self.target.table_path(stream);
                return Err(self.error(
                    "start",
                    format!(
                        "the Delta table {} holds epochs up to {last} of app id {} but {state} accounts for epochs up to {recorded}: another job's output, or that of state that was lost; use another --app-id or path, or move that table away",
                        path.display(),
                        self.app_id
                    ),
                ));
            }
        }
        Ok(())
    }

    fn exactly_once(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_without_a_version_is_a_table_still_to_be_created() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = dir.path().join("_delta_log");
        assert!(!has_log(dir.path()), "no log");
        std::fs::create_dir(&log).expect("the log directory");
        // What a kill while the table was being created leaves: the first commit not yet
        // renamed into place.
        std::fs::write(log.join("_commit_5f0c6f1e.json.tmp"), b"{}").expect("a temporary commit");
        assert!(!has_log(dir.path()), "a log without a version");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let table = (runtime.expect("a runtime").block_on(load(dir.path())))
            .expect("a table still to be created loads");
        assert_eq!(table.version(), None);
        std::fs::write(log.join("00000000000000000000.json"), b"{}").expect("a commit");
        assert!(has_log(dir.path()));
    }

    #[test]
    fn log_versions_are_commits_and_checkpoints() {
        for name in [
            "00000000000000000000.json",
            "00000000000000000010.checkpoint.parquet",
            "00000000000000000010.checkpoint.0000000001.0000000002.parquet",
        ] {
            assert!(is_log_version(name), "{name}");
        }
        for name in [
            "_last_checkpoint",
            "_commit_1.json.tmp",
            "0001.json",
            "00000000000000000000.crc",
        ] {
            assert!(!is_log_version(name), "{name}");
        }
    }
}
