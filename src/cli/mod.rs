//! The command line shared by every spate application: `spate list`, `spate describe`,
//! `spate run PIPELINE`, `spate status`, `spate state` and `spate model export`.
//! An application's `main` is one call: `spate::cli::main(registry)`.

mod http;
mod params;
mod progress;
mod registry;
mod state;
mod status;

pub use params::{ParamDecl, Params};
pub use registry::{BuildFn, Registry, Runnable};

use crate::io::kafka::{Guarantee, KafkaSettings};
use crate::io::sink::{apply_sink_options, SinkSpec};
use crate::io::source::{GenOptions, SourceSpec};
use crate::runtime::{cores, JobReport, RunConfig, TriggerSpec};
use crate::time::{parse_duration, OutputMode};
use crate::Error;
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "spate",
    version,
    about = "An actor-based stateful stream processor",
    after_help = "Examples:\n  spate list\n  spate run fraud\n  spate run tx-windows --source file:tx.jsonl --sink file:out/ --state st/"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines on stderr as `text` (for a person) or `json` (one object per line, for a log
    /// pipeline). `RUST_LOG` sets the level (default `info`).
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the pipelines, one line each.
    List,
    /// Print a pipeline's inputs, keyed stage and outputs.
    Describe {
        /// The pipeline (see `spate list`).
        pipeline: String,
    },
    /// Run a pipeline until its input ends or SIGINT/SIGTERM (which finishes the current
    /// epoch, checkpoints and exits 0).
    Run(Box<RunArgs>),
    /// Models kept as keyed state (per-key models): export them.
    #[command(subcommand)]
    Model(ModelCommand),
    /// A stopped job's state directory: inspect it, print a key's state, erase a key.
    #[command(subcommand)]
    State(state::StateCommand),
    /// Delta Lake tables written by a `delta:` sink.
    #[command(subcommand)]
    Delta(DeltaCommand),
    /// Print a running job's last epochs and health (from its `--metrics-addr`); exit 0 when
    /// healthy, 1 when not (with the reason), 2 when no job answers.
    Status {
        /// The job's metrics address (`spate run --metrics-addr`).
        #[arg(long, default_value = "127.0.0.1:9464")]
        addr: String,
        /// How many of the last epochs to print.
        #[arg(long, default_value_t = 10)]
        last: usize,
    },
}

/// `spate delta …`.
#[derive(Subcommand, Debug)]
enum DeltaCommand {
    /// Compact a Delta table's small files (each epoch writes its own) into files of the
    /// target size, in one commit that changes no row; a job may keep writing meanwhile.
    /// Prints `{"files_added","files_removed","version"}`.
    Optimize {
        /// The table's directory (as in `--sink delta:PATH`).
        path: PathBuf,
        /// The size of the files written (e.g. `128MiB`; default 100 MiB).
        #[arg(long, value_name = "SIZE")]
        target_file_size: Option<String>,
    },
}

/// `spate model …`.
#[derive(Subcommand, Debug)]
enum ModelCommand {
    /// Write every key's state of a stopped job as JSON lines `{"key","state"}` to stdout (what
    /// `spate run P --model FILE` starts from).
    Export {
        /// The job's state directory.
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// The pipeline the directory must belong to (default: the one it does).
        #[arg(long)]
        pipeline: Option<String>,
    },
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  spate run fraud\n  spate run tx-windows --source file:tx.jsonl --sink file:out/ --state st/\n  spate run sessions --source gen --events 0 --rate 10000 --trigger continuous\n  spate run fraud --source kafka://127.0.0.1:9092/transactions --sink kafka://127.0.0.1:9092/alerts --app-id fraud-prod --state st/"
)]
struct RunArgs {
    /// The pipeline to run (see `spate list`).
    pipeline: String,
    /// A pipeline parameter, `NAME=VALUE` (repeatable; `spate describe PIPELINE` lists them
    /// with their defaults).
    #[arg(long, value_name = "NAME=VALUE")]
    param: Vec<String>,
    /// Input: `gen` (the pipeline's built-in generator), `file:PATH` (JSON lines; a directory
    /// means its files in name order), `stdin` (JSON lines; cannot be replayed, so recovery
    /// after a crash is not exactly-once) or `kafka://HOST:PORT/TOPIC` (every partition of the
    /// topic, each one key partition; records keyed by the pipeline key). A pipeline with
    /// several inputs (a join) takes one `--source NAME=URI` per input; `spate list` names
    /// them. Default: gen.
    #[arg(long, value_name = "[NAME=]URI")]
    source: Vec<String>,
    /// Output: `stdout` (JSON lines; late records and dead letters on stderr), `blackhole`
    /// (results made and dropped, to measure a pipeline; late records and dead letters on
    /// stderr), `file:DIR`
    /// (exactly-once epoch files `DIR/*.jsonl`, plus `DIR/late/` and `DIR/dead-letter/`),
    /// `parquet:DIR` (the same, results as Parquet), `kafka://HOST:PORT/TOPIC` (exactly once;
    /// late records and dead letters go to `<app-id>-late` and `<app-id>-dead-letter`),
    /// `postgres://USER@HOST:PORT/DB?table=T[&key=F1,F2]` (exactly once; `T_late`,
    /// `T_dead_letter`) or `delta:PATH[?key=F1,F2]` (a Delta Lake table, exactly once;
    /// `PATH_late`, `PATH_dead_letter`); `key=` upserts rows on those fields. A pipeline with
    /// several outputs takes one `--sink NAME=URI` per output (`spate describe` names them);
    /// the first also gets the late records and dead letters. Default: stdout.
    #[arg(long, value_name = "[NAME=]URI")]
    sink: Vec<String>,
    /// A sink setting, repeatable: `target_file_size=SIZE` (Delta Lake sinks: the size
    /// Parquet files are cut at, e.g. `128MiB`; default 100 MiB).
    #[arg(long = "sink-opt", value_name = "NAME=VALUE")]
    sink_opts: Vec<String>,
    /// State directory (sled). A restarted job resumes from its last checkpoint. Without it,
    /// state is temporary and a restart begins again.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Start a new job from this keyed state (JSON lines `{"key","state"}`, as `spate model
    /// export` writes them): per-key models trained offline or exported from another run. The
    /// --state directory must hold no checkpoints yet.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Number of key partitions (default: 8, on every machine: results depend on it). Fixed
    /// for the life of a state directory. A Kafka source has one per topic partition instead.
    #[arg(long)]
    partitions: Option<u32>,
    /// Worker threads hosting the partition actors (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// When epochs end: an interval (`100ms`, `1s`) or `continuous` (as soon as input has
    /// arrived and every earlier epoch has committed).
    #[arg(long, default_value = "100ms")]
    trigger: String,
    /// A partition without input this long (wall-clock time) is moved to the job's watermark,
    /// so a quiet partition still closes its windows; a Kafka partition with records still
    /// waiting in the broker is never idle. The only setting through which timing can change
    /// results.
    #[arg(long, default_value = "5s")]
    idle_timeout: String,
    /// Windowed pipelines: `append` writes each window once, when no record can change it any
    /// more; `update` writes it when the watermark passes its end and again, with
    /// `"update":true` and its emission number, for each record within the allowed lateness.
    #[arg(long, value_name = "append|update")]
    output_mode: Option<String>,
    /// Windowed pipelines: keep each window this long (of watermark time) after it closes, so
    /// records that late still count (default: the pipeline's, 0 for the built-in ones).
    #[arg(long, value_name = "DURATION")]
    allowed_lateness: Option<String>,
    /// Keep at most about this much keyed state in memory (`512MiB`, `2GB`), like Flink's
    /// RocksDB state backend: buckets of keys not used lately are dropped from memory and read
    /// back from the state store when needed; state changed since the last checkpoint stays in
    /// memory, and a checkpoint is taken early when it outgrows half the limit. Results are
    /// the same with or without it. Applies to the first keyed stage.
    #[arg(long, value_name = "SIZE")]
    state_memory: Option<String>,
    /// Largest number of records in one epoch, or 0 for no limit: bounds the memory an epoch
    /// takes when input arrives faster than the trigger.
    #[arg(long, default_value_t = 0)]
    max_records_per_epoch: u64,
    /// File sources: do not end at the end of the input, but read lines appended to the (last)
    /// file and, for `file:DIR`, new files as they appear, until stopped (SIGINT, SIGTERM). New
    /// files must sort after those already there; hidden files (`.name`) are ignored, so write
    /// a file as `.name` and rename it when it is complete.
    #[arg(long)]
    follow: bool,
    /// Read symbolic links found in a `file:DIR` source, and write through sink folders that
    /// are symbolic links (both are refused by default: a link can point anywhere).
    #[arg(long)]
    follow_symlinks: bool,
    /// File sources and stdin: a line longer than this many bytes goes to the dead-letter output
    /// (its first KiB and its length) without being held in memory whole.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    max_record_bytes: usize,
    /// File sink: delete committed output in the sink directory that the state does not
    /// account for (another job's, or that of lost state) instead of refusing to start.
    #[arg(long)]
    overwrite: bool,
    /// Stop the job (exit 1) once more than this share (0 to 1) of its lines were malformed.
    /// Without it, a job stops only when its first 1,000 lines are all malformed.
    #[arg(long, value_name = "R")]
    max_dead_letter_ratio: Option<f64>,
    /// Minimum time between state checkpoints; recovery replays the epochs since the last one.
    /// Expensive checkpoints wait longer, so they take at most a tenth of the workers' time.
    #[arg(long, default_value = "1s")]
    checkpoint_interval: String,
    /// Generator: seed (same seed, same events).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Generator: number of events, or 0 for an unbounded stream.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Generator: events per second (default: as fast as possible).
    #[arg(long)]
    rate: Option<f64>,
    /// Generator: number of distinct keys (users, devices).
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// Generator: event time of the first event, RFC 3339 (default: now). Kept in the state
    /// directory, so a resumed job generates the same events.
    #[arg(long)]
    start: Option<String>,
    /// Serve Prometheus metrics (`GET /metrics`), the job's health (`GET /health`) and its
    /// last epochs (`GET /api/progress`, what `spate status` prints) at this address, or `off`.
    #[arg(long, default_value = "127.0.0.1:9464")]
    metrics_addr: String,
    /// `/health` and `spate status` report the job unhealthy once no epoch committed for this
    /// long (an idle job commits an empty epoch at every trigger interval).
    #[arg(long, default_value = "30s")]
    unhealthy_after: String,
    /// Export OpenTelemetry traces over OTLP/HTTP (protobuf) to the collector at this base URL,
    /// such as `http://127.0.0.1:4318`: a span per epoch with a child per phase (read,
    /// process, seal, changelog flush, commit) and a span per partition checkpoint.
    #[arg(long, value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// Print a machine-readable summary (records, results, throughput, peak memory) to stderr
    /// at the end.
    #[arg(long)]
    report: bool,
    /// No progress line on a terminal and no summary at the end.
    #[arg(long)]
    quiet: bool,
    /// Kafka: the application id, which names the consumer group and the job's own topics
    /// (`<app-id>-late`, `<app-id>-dead-letter`). Default: `spate-<pipeline>`.
    #[arg(long)]
    app_id: Option<String>,
    /// Kafka: a librdkafka property for every client, as KEY=VALUE (repeatable), e.g.
    /// `security.protocol=SSL`. Overrides the config file's `[kafka]` table.
    #[arg(long = "kafka-opt", value_name = "KEY=VALUE")]
    kafka_opts: Vec<String>,
    /// A TOML file whose `[kafka]` table holds librdkafka properties (flags override it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Kafka sink: `exactly-once` (skips records a replay would send twice) or
    /// `at-least-once` (no tail scan at start).
    #[arg(long, default_value = "exactly-once")]
    guarantee: String,
    /// Kafka sink and changelog: how long the broker may acknowledge nothing of what the job
    /// sends before the job stops (a slow broker that makes progress is waited for).
    #[arg(long, default_value = "5m")]
    broker_timeout: String,
    /// Kafka source: read up to the end offsets seen when the job first started, emit every
    /// window, commit and exit 0; a restart after a crash stops at the same offsets.
    #[arg(long)]
    until_end: bool,
    /// Kafka source: join the consumer group `--app-id` and process only the partitions it
    /// assigns, so several processes share a topic and take over each other's partitions.
    /// Every process of the application must pass it. Without it the process reads every
    /// partition itself.
    #[arg(long)]
    group: bool,
}

impl RunArgs {
    /// The unnamed `--source` (default `gen`) and the named ones.
    fn sources(&self) -> Result<(SourceSpec, Vec<(String, SourceSpec)>), Error> {
        let (unnamed, named) = named(&self.source, "--source", SourceSpec::parse_named)?;
        Ok((unnamed.unwrap_or(SourceSpec::Generator), named))
    }

    /// The unnamed sink (default stdout) and the named ones, with `--sink-opt` applied.
    fn sinks(&self) -> Result<(SinkSpec, Vec<(String, SinkSpec)>), Error> {
        let (unnamed, mut named) = named(&self.sink, "--sink", SinkSpec::parse_named)?;
        let mut unnamed = unnamed.unwrap_or(SinkSpec::Stdout);
        let mut sinks: Vec<&mut SinkSpec> = std::iter::once(&mut unnamed)
            .chain(named.iter_mut().map(|(_, sink)| sink))
            .collect();
        apply_sink_options(&self.sink_opts, &mut sinks)?;
        Ok((unnamed, named))
    }

    /// The address of the metrics endpoint (`None`: off).
    fn metrics_addr(&self) -> Result<Option<std::net::SocketAddr>, Error> {
        match self.metrics_addr.as_str() {
            "off" | "none" => Ok(None),
            addr => resolve(addr).map(Some).map_err(|why| {
                Error::config(
                    "--metrics-addr",
                    addr,
                    format!(
                        "{why}; use HOST:PORT such as 127.0.0.1:9464 or localhost:9464, or off"
                    ),
                )
            }),
        }
    }

    /// Refuses numbers out of their range: `--rate`, `--max-dead-letter-ratio`, `--workers`,
    /// `--keys`.
    fn check_numbers(&self) -> Result<(), Error> {
        if let Some(rate) = self.rate.filter(|r| r.is_nan() || *r <= 0.0) {
            return Err(Error::config(
                "--rate",
                rate,
                "use a positive number of events per second",
            ));
        }
        if let Some(r) = self
            .max_dead_letter_ratio
            .filter(|r| !(0.0..=1.0).contains(r))
        {
            return Err(Error::config(
                "--max-dead-letter-ratio",
                r,
                "use a share from 0 to 1, e.g. 0.01 for 1%",
            ));
        }
        if self.workers == Some(0) {
            return Err(Error::config(
                "--workers",
                0,
                "use at least 1 (the default is one per core)",
            ));
        }
        if self.keys == 0 {
            return Err(Error::config("--keys", 0, "use at least 1"));
        }
        Ok(())
    }

    /// The librdkafka options of `--config` and `--kafka-opt`, after checking `--app-id`.
    fn kafka_options(&self) -> Result<Vec<(String, String)>, Error> {
        let mut kafka_options = match &self.config {
            Some(path) => kafka_table(path)?,
            None => Vec::new(),
        };
        for text in &self.kafka_opts {
            kafka_options.push(KafkaSettings::parse_option(text)?);
        }
        if let Some(id) = self.app_id.as_deref().filter(|id| {
            id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        }) {
            return Err(Error::config(
                "--app-id",
                id,
                "use letters, digits, '.', '_' and '-' (it names Kafka topics)",
            ));
        }
        Ok(kafka_options)
    }

    /// `--state-memory` in bytes: it keeps the state that does not fit in the `--state`
    /// directory, so it needs one.
    fn state_memory(&self) -> Result<Option<u64>, Error> {
        let Some(text) = self.state_memory.as_deref() else {
            return Ok(None);
        };
        let limit = crate::io::sink::parse_size("--state-memory", text)?;
        if self.state.is_none() {
            return Err(Error::config(
                "--state-memory",
                text,
                "it keeps the state that does not fit in memory in the --state directory: give one",
            ));
        }
        Ok(Some(limit.get()))
    }

    /// The run's configuration from the flags, each checked (an error names the flag).
    fn config(&self) -> Result<RunConfig, Error> {
        let duration = |flag: &str, text: &str| {
            parse_duration(text).map_err(|hint| Error::config(flag, text, hint))
        };
        self.check_numbers()?;
        let metrics_addr = self.metrics_addr()?;
        let kafka_options = self.kafka_options()?;
        let (source, named_sources) = self.sources()?;
        let (sink, named_sinks) = self.sinks()?;
        let any_file = std::iter::once(&source)
            .chain(named_sources.iter().map(|(_, s)| s))
            .any(|s| matches!(s, SourceSpec::File(_)));
        if self.follow && !any_file {
            return Err(Error::config(
                "--follow",
                self.source.join(" "),
                "--follow applies to file:PATH sources; stdin and Kafka topics are read until stopped already (Kafka: unless --until-end)",
            ));
        }
        let defaults = RunConfig::default();
        Ok(RunConfig {
            source,
            named_sources,
            sink,
            named_sinks,
            state_dir: self.state.clone(),
            model: self.model.clone(),
            partitions: self.partitions.unwrap_or(defaults.partitions),
            workers: self.workers.unwrap_or_else(cores),
            trigger: TriggerSpec::parse(&self.trigger)?,
            idle_timeout: duration("--idle-timeout", &self.idle_timeout)?,
            output_mode: self
                .output_mode
                .as_deref()
                .map(|m| {
                    OutputMode::parse(m).map_err(|hint| Error::config("--output-mode", m, hint))
                })
                .transpose()?,
            allowed_lateness: self
                .allowed_lateness
                .as_deref()
                .map(|d| duration("--allowed-lateness", d).map(crate::time::duration_ms))
                .transpose()?,
            checkpoint_interval: duration("--checkpoint-interval", &self.checkpoint_interval)?,
            generator: GenOptions {
                seed: self.seed,
                events: (self.events > 0).then_some(self.events),
                rate: self.rate,
                keys: self.keys,
                base_ms: match &self.start {
                    Some(text) => crate::time::parse_rfc3339(text)
                        .map_err(|hint| Error::config("--start", text, hint))?,
                    None => crate::time::now_ms(),
                },
                realtime: false,
            },
            metrics_addr,
            unhealthy_after: duration("--unhealthy-after", &self.unhealthy_after)?,
            otlp_endpoint: self.otlp_endpoint.clone(),
            max_records_per_epoch: (self.max_records_per_epoch > 0)
                .then_some(self.max_records_per_epoch),
            state_memory: self.state_memory()?,
            handle_signals: true,
            kafka: KafkaSettings {
                app_id: self.app_id.clone(),
                options: kafka_options,
                guarantee: Guarantee::parse(&self.guarantee)?,
                broker_timeout: duration("--broker-timeout", &self.broker_timeout)?,
            },
            until_end: self.until_end,
            group: self.group,
            max_dead_letter_ratio: self.max_dead_letter_ratio,
            overwrite: self.overwrite,
            follow: self.follow,
            follow_symlinks: self.follow_symlinks,
            max_record_bytes: self.max_record_bytes,
            ..defaults
        })
    }
}

/// The first address `HOST:PORT` resolves to (a literal address or a host name).
fn resolve(addr: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| "it resolves to no address".to_string())
}

/// The librdkafka properties of the `[kafka]` table of a TOML config file.
fn kafka_table(path: &std::path::Path) -> Result<Vec<(String, String)>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io("cannot read the config file (--config)", path, e))?;
    let bad = |detail: String| Error::config("--config", path.display(), detail);
    let doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| bad(e.to_string()))?;
    let Some(table) = doc.get("kafka") else {
        return Ok(Vec::new());
    };
    let table = table
        .as_table()
        .ok_or_else(|| bad("`kafka` must be a table: [kafka]".into()))?;
    table
        .iter()
        .map(|(key, value)| {
            let value = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(bad(format!(
                        "[kafka] {key} = {other}: use a string, number or boolean"
                    )))
                }
            };
            Ok((key.clone(), value))
        })
        .collect()
}

/// Peak resident memory of this process in bytes (Linux), if known.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn print_report(pipeline: &str, report: &JobReport) {
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    let peak = peak_memory_bytes().map_or("unknown".into(), |b| format!("{} MB", b / 1_000_000));
    eprintln!(
        "spate report: pipeline={pipeline} records_in={} results={} late={} dead_letters={} epochs={} restarts={} seconds={:.3} records_per_second={:.0} peak_memory={peak}",
        report.records_in,
        report.outputs,
        report.late,
        report.dead_letters,
        report.epochs,
        report.restarts,
        secs,
        report.records_in as f64 / secs,
    );
    let values = report.operator_values();
    if !values.is_empty() {
        let text: Vec<String> = values.iter().map(|(n, v)| format!("{n}={v}")).collect();
        eprintln!("spate report operator: {}", text.join(" "));
    }
    if let Some(m) = &report.model {
        eprintln!(
            "spate report model: version={} updates={} examples={} examples_per_update={:.1} dropped={}",
            m.version,
            m.updates,
            m.examples,
            m.examples as f64 / m.updates.max(1) as f64,
            m.dropped
        );
    }
}

/// Parses the command line, runs it against `registry`, and returns the process exit code.
pub fn main(registry: Registry) -> ExitCode {
    let cli = Cli::parse();
    init_log_lines(cli.log_format == "json", Some(DEFAULT_LOGS));
    if !matches!(cli.command, Command::Run(_)) {
        // Like any Unix tool, a command whose reader went away (`spate describe P | head`)
        // ends quietly instead of panicking in `print!`. Not `run`: its stdout sink notices a
        // closed pipe itself and finishes the epoch it is in.
        // SAFETY: called before any thread starts; SIG_DFL is a valid disposition for SIGPIPE.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match cli.command {
        Command::List => list(&registry),
        Command::Describe { pipeline } => match find(&registry, &pipeline) {
            Ok(found) => {
                print!("{}", found.describe());
                print!("{}", describe_params(registry.params(&pipeline)));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Model(ModelCommand::Export { state, pipeline }) => {
            match export_model(&registry, &state, pipeline.as_deref()) {
                Ok(keys) => {
                    eprintln!("spate: exported the state of {keys} keys");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Delta(DeltaCommand::Optimize {
            path,
            target_file_size,
        }) => report(optimize_delta(&path, target_file_size.as_deref())),
        Command::Run(args) => run(&registry, &args),
        Command::Status { addr, last } => status::status(&addr, last),
        Command::State(command) => state::run(&registry, &command),
    }
}

/// The log levels without `RUST_LOG`: spate's progress, and only the warnings of the Delta
/// Lake libraries (which log every table read at info).
const DEFAULT_LOGS: &str = "info,buoyant_kernel=warn,deltalake_core=warn,datafusion=warn";

/// Sends the engine's log lines to stderr at `RUST_LOG`'s level, as JSON or text (coloured
/// only for a person at a terminal). Without `RUST_LOG` the filter is `default`, and with no
/// default nothing is logged: a tool whose report is its output (`spate-loadgen bench`) stays
/// readable unless asked (`RUST_LOG=spate=debug` shows every epoch's phases).
pub fn init_log_lines(json: bool, default: Option<&str>) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let Some(filter) = EnvFilter::try_from_default_env()
        .ok()
        .or_else(|| default.map(EnvFilter::new))
    else {
        return;
    };
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    if json {
        logs.json().init();
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// `spate list`: a line per pipeline.
/// `spate delta optimize`: compacts the table at `path`, its result on stdout as JSON.
fn optimize_delta(path: &Path, target_file_size: Option<&str>) -> crate::Result<String> {
    let size = (target_file_size)
        .map(|size| crate::io::sink::parse_size("--target-file-size", size))
        .transpose()?;
    let compaction = crate::io::sink::optimize_delta(path, size)?;
    Ok(serde_json::to_string(&compaction).expect("plain numbers"))
}

/// A command's outcome: its output on stdout and exit 0, or its error on stderr and exit 1.
fn report(outcome: crate::Result<String>) -> ExitCode {
    match outcome {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn list(registry: &Registry) -> ExitCode {
    let width = registry.iter().map(|p| p.name().len()).max().unwrap_or(0);
    for p in registry.iter() {
        let inputs = match p.inputs().as_slice() {
            [_] => String::new(),
            all => format!(" (inputs: {})", all.join(", ")),
        };
        println!("{:width$}  {}{inputs}", p.name(), p.description());
    }
    ExitCode::SUCCESS
}

/// `spate run`: builds the pipeline with its parameters, runs it, and says how it went.
fn run(registry: &Registry, args: &RunArgs) -> ExitCode {
    use std::io::IsTerminal;
    if let Err(code) = find(registry, &args.pipeline) {
        return code;
    }
    let pipeline = match registry.build(&args.pipeline, &args.param) {
        Some(Ok(pipeline)) => pipeline,
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        None => unreachable!("found above"),
    };
    let result = args.config().and_then(|config| {
        let line = (!args.quiet && std::io::stderr().is_terminal())
            .then(|| progress::ProgressLine::start(config.progress.clone()));
        let result = pipeline.run(&config);
        drop(line);
        result
    });
    match result {
        Ok(report) => {
            if !args.quiet {
                eprintln!("{}", progress::summary(pipeline.name(), &report));
            }
            if args.report {
                print_report(pipeline.name(), &report);
            }
            ExitCode::SUCCESS
        }
        Err(Error::OutputClosed { .. }) => ExitCode::SUCCESS,
        Err(e @ Error::StoppedInReplay { .. }) => {
            eprintln!("spate: {e}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes every key's state of the job in `state` to stdout; `pipeline`, when given, must be
/// the job's.
fn export_model(registry: &Registry, state: &Path, pipeline: Option<&str>) -> crate::Result<u64> {
    let (store, info, runnable) = state::open_job(registry, state, pipeline)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let keys = runnable.export_state(&store, info.partitions, &mut out)?;
    std::io::Write::flush(&mut out)
        .map_err(|e| Error::io("cannot write the state to", "standard output", e))?;
    Ok(keys)
}

/// The `spate describe` lines of a pipeline's parameters (none when it takes none).
fn describe_params(params: &[ParamDecl]) -> String {
    let mut text = String::new();
    if !params.is_empty() {
        text += "parameters (--param NAME=VALUE):\n";
    }
    for p in params {
        text += &format!("  {} (default {}): {}\n", p.name, p.default, p.help);
    }
    text
}

/// The pipeline called `name`, or the exit code after saying which exist.
fn find(registry: &Registry, name: &str) -> Result<std::sync::Arc<dyn Runnable>, ExitCode> {
    registry.get(name).ok_or_else(|| {
        let names: Vec<&str> = registry.iter().map(|p| p.name()).collect();
        eprintln!(
            "error: no pipeline named `{name}`; available: {} (see `spate list`)",
            names.join(", ")
        );
        ExitCode::from(2)
    })
}

/// The unnamed value of a repeatable `flag` (at most one) and its `NAME=URI` ones, parsed.
type Named<S> = (Option<S>, Vec<(String, S)>);

/// Splits the values of a repeatable `NAME=URI` flag into the unnamed one and the named ones.
fn named<S>(
    texts: &[String],
    flag: &str,
    parse: impl Fn(&str) -> crate::Result<(Option<String>, S)>,
) -> Result<Named<S>, Error> {
    let (mut unnamed, mut named) = (None, Vec::new());
    for text in texts {
        match parse(text)? {
            (Some(name), spec) => named.push((name, spec)),
            (None, _) if unnamed.is_some() => {
                return Err(Error::config(
                    flag,
                    text,
                    format!("a second unnamed {flag}: name each one, {flag} NAME=URI"),
                ))
            }
            (None, spec) => unnamed = Some(spec),
        }
    }
    Ok((unnamed, named))
}
