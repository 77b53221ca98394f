//! The PostgreSQL sink, `--sink postgres://USER@HOST:PORT/DB?table=T`: results go to table `T`
//! (created when missing, with a typed column per field of the first result), late records
//! and dead letters to `T_late` and `T_dead_letter` (one `jsonb` column, `line`).
//!
//! Exactly once: an epoch's rows of every writer (key partition) are written in one
//! transaction with a row per writer in `spate_commits(app_id, writer, epoch)`; a writer
//! whose row is already there committed that epoch before (a replay after a crash), and its
//! rows are skipped. Appended rows go in by `COPY … FROM STDIN (FORMAT csv)`, one per table
//! and epoch. Rows are staged in memory: a crash loses them, and the replay that the
//! runtime's checkpoints guarantee stages them again. A server that goes away is waited for
//! and the transaction retried (exponential backoff, up to `RETRY_FOR`); an error the server
//! gives for the rows themselves (a column of another type) stops the job, naming the table.
//!
//! Update mode (`--output-mode update`): with `&key=C1,C2` in the URL, result rows are upserted
//! on those fields (the table's primary key when spate creates it), `INSERT … ON CONFLICT (C1,
//! C2) DO UPDATE`, so the table holds one row per key with its last value; within an epoch only
//! each key's last row is sent.

mod tables;
mod target;
mod tls;

pub use target::PostgresTarget;
pub use tls::{SslMode, Tls};

use super::client_runtime::ClientRuntime;
use super::{EpochSink, EpochStats, Lines, OutputStream, Staged, StagedPayload};
use crate::checkpoint::Epoch;
use crate::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tables::Writing;
use target::redacted;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

/// How long a commit waits for a server that went away before the job stops.
const RETRY_FOR: Duration = Duration::from_secs(120);

/// Writes committed output to PostgreSQL tables, exactly once.
pub struct PostgresSink {
    target: PostgresTarget,
    app_id: String,
    /// Makes the connection's TLS, as `sslmode` says.
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    runtime: ClientRuntime,
    /// The open connection, when there is one.
    client: tokio::sync::Mutex<Option<Client>>,
    /// How each output's rows go into its table, once the table is known to exist with a
    /// column per field.
    writings: tokio::sync::Mutex<BTreeMap<OutputStream, Writing>>,
}

/// One writer's lines of one stream in an epoch.
struct Rows {
    writer: String,
    stream: OutputStream,
    lines: Vec<u8>,
}

/// What the sink asks of the server (retried as a whole while the server is away).
enum Work<'a> {
    /// Create `spate_commits` when missing.
    CreateCommits,
    /// Commit an epoch's rows.
    Commit { epoch: Epoch, rows: &'a [Rows] },
    /// The last epoch this app id committed.
    LastEpoch,
}

/// Why a transaction failed: the connection (retried) or the rows (not).
enum Failure {
    Connection(tokio_postgres::Error),
    Rows(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Rows(e)
    }
}

impl PostgresSink {
    /// A sink writing to `target` for the job `app_id`; connects (waiting for the server as a
    /// commit does) and creates `spate_commits` when missing.
    pub fn open(target: &PostgresTarget, app_id: &str) -> Result<Self> {
        let runtime = ClientRuntime::new("PostgreSQL client", 1)?;
        let sink = PostgresSink {
            target: target.clone(),
            app_id: app_id.to_string(),
            tls: target.tls.connector()?,
            runtime,
            client: tokio::sync::Mutex::new(None),
            writings: Default::default(),
        };
        sink.run(sink.with_retries("create spate_commits", Work::CreateCommits))?;
        Ok(sink)
    }

    /// Runs `work` on the sink's runtime.
    fn run<T: Send>(&self, work: impl std::future::Future<Output = Result<T>> + Send) -> Result<T> {
        self.runtime.run(work)
    }

    /// Does `work` on a connection, reconnecting and retrying while the server is away (for
    /// up to [`RETRY_FOR`]); `what` names the work in the error. Answers
    /// [`Work::LastEpoch`]'s epoch.
    async fn with_retries(&self, what: &str, work: Work<'_>) -> Result<Option<i64>> {
        let mut backoff = backoff::ExponentialBackoff {
            max_elapsed_time: Some(RETRY_FOR),
            ..Default::default()
        };
        let mut slot = self.client.lock().await;
        loop {
            let failure = match self.connected(&mut slot).await {
                Ok(client) => match self.attempt(client, &work).await {
                    Ok(value) => return Ok(value),
                    Err(Failure::Rows(e)) => return Err(e),
                    Err(Failure::Connection(e)) => e,
                },
                Err(e) => e,
            };
            if lasting(&failure) {
                return Err(self.error(what, &explained(&failure)));
            }
            *slot = None;
            match backoff::backoff::Backoff::next_backoff(&mut backoff) {
                Some(pause) => {
                    tracing::warn!(error = %explained(&failure), "PostgreSQL unreachable at {what}; retrying in {pause:?}");
                    tokio::time::sleep(pause).await;
                }
                None => {
                    return Err(self.error(
                        what,
                        &format!(
                            "{}; the server did not come back within {} s, so the job stops at its last checkpoint and a restart commits the epoch exactly once",
                            explained(&failure),
                            RETRY_FOR.as_secs()
                        ),
                    ))
                }
            }
        }
    }

    /// One attempt at `work`.
    async fn attempt(
        &self,
        client: &mut Client,
        work: &Work<'_>,
    ) -> std::result::Result<Option<i64>, Failure> {
        match work {
            Work::CreateCommits => {
                client
                    .batch_execute(
                        "CREATE TABLE IF NOT EXISTS spate_commits (app_id text NOT NULL, writer text NOT NULL, epoch bigint NOT NULL, committed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (app_id, writer, epoch))",
                    )
                    .await
                    .map_err(Failure::Connection)?;
                Ok(None)
            }
            Work::Commit { epoch, rows } => {
                self.commit_rows(client, *epoch, rows).await?;
                Ok(None)
            }
            Work::LastEpoch => {
                let row = client
                    .query_one(
                        "SELECT max(epoch) FROM spate_commits WHERE app_id = $1",
                        &[&self.app_id],
                    )
                    .await
                    .map_err(Failure::Connection)?;
                Ok(row.get(0))
            }
        }
    }

    /// The open connection, opened when there is none.
    async fn connected<'s>(
        &self,
        slot: &'s mut Option<Client>,
    ) -> std::result::Result<&'s mut Client, tokio_postgres::Error> {
        if slot.as_ref().is_none_or(Client::is_closed) {
            let url = self.target.client_url();
            let (client, connection) = tokio_postgres::connect(&url, self.tls.clone()).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!("PostgreSQL connection closed: {e}");
                }
            });
            *slot = Some(client);
        }
        Ok(slot.as_mut().expect("connected above"))
    }

    /// The error of `what` failing with `detail`, naming the server and table.
    fn error(&self, what: &str, detail: &dyn std::fmt::Display) -> Error {
        Error::Sink {
            sink: format!("PostgreSQL sink {}", self.target),
            action: what.to_string(),
            detail: detail.to_string(),
        }
    }

    /// The table of `stream`'s rows.
    fn table_of(&self, stream: OutputStream) -> String {
        match stream {
            OutputStream::Results | OutputStream::Named(_) | OutputStream::Repartition => {
                self.target.table.clone()
            }
            other => format!(
                "{}_{}",
                self.target.table,
                other.dir_name().replace('-', "_")
            ),
        }
    }
}

impl PostgresSink {
    /// Creates `stream`'s table when missing, from `sample` (its first line), checks that
    /// every field of the sample has a column there (a field without one would be dropped),
    /// and returns how the stream's rows go in.
    async fn ensure_table(
        &self,
        client: &Client,
        stream: OutputStream,
        sample: &[u8],
    ) -> std::result::Result<Writing, Failure> {
        let table = self.table_of(stream);
        let key = &self.target.key;
        let (create, fields, writing) = match stream {
            OutputStream::Late | OutputStream::DeadLetter => {
                let writing = tables::write_lines(&table);
                (tables::create_lines(&table), vec!["line".into()], writing)
            }
            OutputStream::Results | OutputStream::Named(_) | OutputStream::Repartition => {
                let first = super::upsert::fields_of(sample)?;
                let fields: Vec<String> = first.keys().cloned().collect();
                if let Some(k) = key.iter().find(|k| !fields.contains(k)) {
                    let why = format!("key column {k} is not a field of the results {fields:?}");
                    return Err(Failure::Rows(self.error("write the results", &why)));
                }
                let writing = tables::write_results(&table, &fields, key);
                (tables::create_results(&table, &first, key), fields, writing)
            }
        };
        client
            .batch_execute(&create)
            .await
            .map_err(Failure::Connection)?;
        let columns = table_columns(client, &table).await?;
        let missing: Vec<&String> = fields.iter().filter(|f| !columns.contains(f)).collect();
        if !missing.is_empty() {
            return Err(Failure::Rows(self.error(
                "write the results",
                &format!(
                    "table {table} has columns {columns:?} but the output has fields {fields:?} ({missing:?} have no column); give another table, or add the columns"
                ),
            )));
        }
        Ok(writing)
    }

    /// How each stream of `rows` goes into its table, making the tables first when this sink
    /// has not yet.
    async fn writings(
        &self,
        client: &Client,
        rows: &[Rows],
    ) -> std::result::Result<BTreeMap<OutputStream, Writing>, Failure> {
        let mut known = self.writings.lock().await;
        for r in rows {
            if let std::collections::btree_map::Entry::Vacant(slot) = known.entry(r.stream) {
                let first = r.lines.split(|b| *b == b'\n').next().unwrap_or_default();
                slot.insert(self.ensure_table(client, r.stream, first).await?);
            }
        }
        Ok(known.clone())
    }

    /// One attempt at committing `epoch`'s `rows`: records each writer's commit row, skips the
    /// writers that committed the epoch before, and writes the others' rows, one statement per
    /// table, all in one transaction.
    async fn commit_rows(
        &self,
        client: &mut Client,
        epoch: Epoch,
        rows: &[Rows],
    ) -> std::result::Result<(), Failure> {
        let writings = self.writings(client, rows).await?;
        let transaction = client.transaction().await.map_err(Failure::Connection)?;
        let writers: BTreeSet<&str> = rows.iter().map(|r| r.writer.as_str()).collect();
        let mut fresh = BTreeSet::new();
        for writer in writers {
            let recorded = transaction
                .execute(
                    "INSERT INTO spate_commits (app_id, writer, epoch) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&self.app_id, &writer, &(epoch as i64)],
                )
                .await
                .map_err(Failure::Connection)?;
            if recorded == 1 {
                fresh.insert(writer); // else committed before this replay
            }
        }
        let mut streams: BTreeMap<OutputStream, Vec<u8>> = BTreeMap::new();
        for r in rows.iter().filter(|r| fresh.contains(r.writer.as_str())) {
            streams
                .entry(r.stream)
                .or_default()
                .extend_from_slice(&r.lines);
        }
        for (stream, lines) in streams {
            self.write_rows(&transaction, &writings[&stream], &lines)
                .await?;
        }
        transaction.commit().await.map_err(Failure::Connection)
    }

    /// Writes `lines` of one stream in `transaction`, as `writing` says.
    async fn write_rows(
        &self,
        transaction: &tokio_postgres::Transaction<'_>,
        writing: &Writing,
        lines: &[u8],
    ) -> std::result::Result<(), Failure> {
        match writing {
            Writing::Upsert(sql) => {
                let array = tables::json_array(lines, &self.target.key)?;
                let upserted = transaction.execute(sql, &[&array]).await;
                upserted.map_err(Failure::Connection)?;
            }
            Writing::Copy { sql, fields } => {
                let csv = match fields {
                    Some(fields) => tables::csv_of_results(lines, fields)?,
                    None => tables::csv_of_lines(lines),
                };
                let sink = transaction.copy_in(sql.as_str()).await;
                let sink = std::pin::pin!(sink.map_err(Failure::Connection)?);
                copy_all(sink, bytes::Bytes::from(csv))
                    .await
                    .map_err(Failure::Connection)?;
            }
        }
        Ok(())
    }
}

/// Sends `csv` through a `COPY … FROM STDIN` and ends it.
async fn copy_all(
    mut sink: std::pin::Pin<&mut tokio_postgres::CopyInSink<bytes::Bytes>>,
    csv: bytes::Bytes,
) -> std::result::Result<u64, tokio_postgres::Error> {
    use futures::SinkExt;
    sink.send(csv).await?;
    sink.finish().await
}

/// `error` with what the server said (tokio-postgres shows a server's error as `db error`
/// alone) or its causes.
fn explained(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// Whether `error` is one a retry cannot mend: the server refused the statement or the login
/// (an SQLSTATE, but for a server going away or coming back: see [`transient`]), or the TLS
/// handshake failed (a certificate that is not trusted, a server without TLS under
/// `sslmode=require`).
fn lasting(error: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let tls = cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref());
        if cause.is::<rustls::Error>() || tls.is_some_and(|inner| inner.is::<rustls::Error>()) {
            return true;
        }
        source = cause.source();
    }
    error.code().is_some_and(|code| !transient(code))
        || error.to_string().contains("server does not support TLS")
}

/// Whether an SQLSTATE says the server is going away or coming back, so that a retry mends
/// it: a connection exception (class 08), or a server shutting down or still starting up
/// (57P01–57P03: a restarted server accepts connections before it accepts logins).
fn transient(code: &SqlState) -> bool {
    let away = [
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
    ];
    code.code().starts_with("08") || away.contains(code)
}

/// The columns of `table` (`name` or `schema.name`), empty when it does not exist.
async fn table_columns(client: &Client, table: &str) -> std::result::Result<Vec<String>, Failure> {
    let (schema, name) = match table.split_once('.') {
        Some((schema, name)) => (Some(schema), name),
        None => (None, table),
    };
    let rows = client
        .query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = $1 AND table_schema = coalesce($2, current_schema())",
            &[&name, &schema],
        )
        .await
        .map_err(Failure::Connection)?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

impl EpochSink for PostgresSink {
    /// Holds `writer`'s lines in memory until the commit (the default `stage_keyed` drops the
    /// record keys: a row carries its key in its columns).
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
            "table {} of {}",
            self.table_of(stream),
            redacted(&self.target.url)
        )
    }

    fn commit(&self, epoch: Epoch, staged: Vec<Staged>, _stats: &EpochStats) -> Result<()> {
        let rows: Vec<Rows> = (staged.into_iter())
            .filter_map(|s| match s.payload {
                StagedPayload::Lines { writer, lines } => Some(Rows {
                    writer,
                    stream: s.stream,
                    lines: lines.bytes,
                }),
                _ => None,
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let what = format!("commit epoch {epoch}");
        let work = Work::Commit { epoch, rows: &rows };
        self.run(self.with_retries(&what, work)).map(|_| ())
    }

    fn recover(&self, _committed: Epoch, _recorded: Epoch) -> Result<()> {
        Ok(()) // nothing is staged outside memory
    }

    /// Refuses a table holding commits of epochs after `recorded` by this app id: another
    /// job's, or that of state that was lost, whose commit rows would make this job's epochs
    /// of the same numbers look committed.
    fn claim_output(&self, recorded: Epoch, state: &str, _overwrite: bool) -> Result<()> {
        let last = self.run(self.with_retries("read spate_commits", Work::LastEpoch))?;
        match last {
            Some(last) if last as Epoch > recorded => Err(self.error(
                "start",
                &format!(
                    "spate_commits holds epochs up to {last} of app id {} but {state} accounts for epochs up to {recorded}: another job's output, or that of state that was lost; use another --app-id or table, or delete that output and `DELETE FROM spate_commits WHERE app_id = '{}'`",
                    self.app_id, self.app_id
                ),
            )),
            _ => Ok(()),
        }
    }

    fn exactly_once(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_going_away_or_starting_up_is_retried_and_a_refusal_is_not() {
        for code in ["57P03", "57P01", "08006", "08001"] {
            assert!(transient(&SqlState::from_code(code)), "{code}");
        }
        for code in ["42P01", "28P01", "23505", "57014"] {
            assert!(!transient(&SqlState::from_code(code)), "{code}");
        }
    }
}
