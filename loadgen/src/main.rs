//! `spate-loadgen`: writes generated events as JSON lines for spate's pipelines, at a set rate
//! and shape or as fast as possible, with realistic skew, disorder, lateness, malformed records
//! and bursts. The same seed gives byte-identical output.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use spate::io::kafka::{KafkaSettings, KafkaTopic};
use spate::time::{now_ms, parse_duration, parse_rfc3339, Millis};
use spate_actors::events::IdFormat;
use spate_loadgen::generate::Pace;
use spate_loadgen::knobs::Skew;
use spate_loadgen::{generate, scenario, KafkaOptions, Knobs, Limits, Output, RateShape};

/// The allocator of the `spate` binary (see its `main.rs` for why), so that `bench` runs a
/// pipeline as `spate run` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXAMPLES: &str = "Examples:
  spate-loadgen transactions --events 1000000 --users 10000 --to file:tx.jsonl --seed 7
  spate-loadgen transactions --rate 200000 --duration 60s --to kafka://127.0.0.1:9092/transactions
  spate-loadgen clicks --rate 50000 --duration 60s --burstiness 0.3 --to stdout
  spate-loadgen sensors --events 1000000 --keys 500 --skew zipf:1.1 --late 0.001 --to file:iot/
  spate-loadgen nexmark --events 10000000 --to file:nexmark/
  spate-loadgen bench tx-windows --rate 200000 --duration 90s --svg bench.svg";

#[derive(Parser)]
#[command(name = "spate-loadgen", version, about = "Generate events for spate pipelines", after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Payments {tx_id, user_id, amount, merchant_id, event_time, event_ms}: tx-windows, fraud, sessions.
    #[command(
        after_help = "Example:\n  spate-loadgen transactions --events 1000000 --users 10000 --to file:tx.jsonl --seed 7"
    )]
    Transactions(GenArgs),
    /// Page views and purchases {user_id, page, action, price_cents, event_ms}.
    #[command(
        after_help = "Example:\n  spate-loadgen clicks --rate 50000 --duration 60s --burstiness 0.3 --to stdout"
    )]
    Clicks(GenArgs),
    /// IoT readings {device_id, temperature, vibration, pressure, event_ms} with drift and anomalies.
    #[command(
        after_help = "Example:\n  spate-loadgen sensors --events 1000000 --keys 500 --to file:sensors.jsonl"
    )]
    Sensors(GenArgs),
    /// The outcome of each payment `transactions` writes with the same arguments,
    /// {tx_id, fraud, event_ms}, in the order outcomes become known (fraud 5 min–2 h after the
    /// payment, legitimate 30 min–6 h): the delayed labels of fraud scoring.
    #[command(
        after_help = "Example:\n  spate-loadgen transactions --events 100000 --fraud 0.002 --seed 7 --to file:tx.jsonl\n  spate-loadgen labels --events 100000 --fraud 0.002 --seed 7 --to file:labels.jsonl"
    )]
    Labels(GenArgs),
    /// Vehicle GPS pings {segment_id, vehicle_id, lat, lon, speed_kmh, event_ms} with rush hours.
    #[command(
        after_help = "Example:\n  spate-loadgen traffic --rate 20000 --shape sine:0.5:60s --duration 5m --to stdout"
    )]
    Traffic(GenArgs),
    /// Login attempts {account_id, ip, success, event_ms} with credential-stuffing bursts.
    #[command(
        after_help = "Example:\n  spate-loadgen logins --events 500000 --to file:logins.jsonl"
    )]
    Logins(GenArgs),
    /// The user table {user_id, segment, country, updated_ms} that tx-enriched and enrich join with: a row
    /// per user, then a fraction of users changing segment or country at random later times.
    #[command(
        after_help = "Example:\n  spate-loadgen users --users 10000 --updates 0.2 --span 10m --to file:users.jsonl"
    )]
    Users(UsersArgs),
    /// Nexmark Person, Auction and Bid events (the nexmark crate's shapes and hot keys).
    #[command(
        after_help = "Example:\n  spate-loadgen nexmark --events 10000000 --to file:nexmark/"
    )]
    Nexmark(GenArgs),
    /// Run a spate pipeline at a set rate, in process or as an external job through Kafka, and
    /// measure end-to-end latency.
    #[command(
        after_help = "Latency of a result = when it became visible - when it became possible (window end +\nwatermark delay, with event time = creation time). Windows must close during the run:\nfor tx-windows run longer than 70 s.\n\nWith --to and --from, bench writes the pipeline's input to --to and times each result as it\narrives in --from, where an external `spate run PIPELINE --source TO --sink FROM` writes it\n(--trigger and --partitions are then the job's own flags).\n\nExamples:\n  spate-loadgen bench tx-windows --rate 200000 --duration 90s --trigger continuous --json b.json --svg b.svg\n  spate run tx-windows --source kafka://127.0.0.1:9092/tx --sink kafka://127.0.0.1:9092/out &\n  spate-loadgen bench tx-windows --rate 2000 --duration 90s --to kafka://127.0.0.1:9092/tx --from kafka://127.0.0.1:9092/out"
    )]
    Bench(BenchArgs),
    /// Copy a Kafka topic into another (partition N to N, same keys, spate's producer
    /// settings) up to its end offsets: the broker ceiling a Kafka→Kafka job can reach.
    #[command(
        after_help = "Example:\n  spate-loadgen pipe --from kafka://127.0.0.1:9092/tx --to kafka://127.0.0.1:9092/tx-copy"
    )]
    Pipe {
        /// The topic to read.
        #[arg(long)]
        from: String,
        /// The topic to write (created when missing).
        #[arg(long)]
        to: String,
    },
    /// End-to-end latency of the results an external `spate run … --sink kafka://…` wrote:
    /// Kafka timestamp − (window end + watermark delay), for input from a paced run.
    #[command(
        after_help = "Example:\n  spate-loadgen transactions --rate 50000 --duration 90s --to kafka://127.0.0.1:9092/tx &\n  spate run tx-windows --source kafka://127.0.0.1:9092/tx --sink kafka://127.0.0.1:9092/out &\n  spate-loadgen latency --from kafka://127.0.0.1:9092/out --delay 10s"
    )]
    Latency {
        /// The result topic.
        #[arg(long)]
        from: String,
        /// The pipeline's watermark delay.
        #[arg(long, default_value = "10s")]
        delay: String,
        /// Leave out results sent before this (RFC 3339), e.g. a warm-up.
        #[arg(long)]
        after: Option<String>,
    },
    /// Chart p99 latency against input rate from several `bench --json` reports (SVG).
    #[command(after_help = "Example:\n  spate-loadgen chart --out curve.svg runs/*.json")]
    Chart {
        /// Where to write the SVG.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Bench reports (JSON).
        #[arg(required = true)]
        reports: Vec<std::path::PathBuf>,
    },
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// The pipeline (see `spate list`).
    pipeline: String,
    /// Events per second fed to the pipeline.
    #[arg(long)]
    rate: f64,
    /// How long to feed it.
    #[arg(long, default_value = "90s")]
    duration: String,
    /// Distinct keys (users).
    #[arg(long, alias = "users", default_value_t = 10_000)]
    keys: u64,
    /// The engine's trigger: an interval such as 100ms, or continuous.
    #[arg(long, default_value = "100ms")]
    trigger: String,
    /// Key partitions (default: 2 x cores).
    #[arg(long)]
    partitions: Option<u32>,
    /// Results in the first part of the run are left out of the summary.
    #[arg(long, default_value = "5s")]
    warmup: String,
    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the report as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Also write a chart of throughput and p99 latency over time here (SVG).
    #[arg(long)]
    svg: Option<std::path::PathBuf>,
    /// Drive an external `spate run` through Kafka instead: write its input to this topic
    /// (kafka://HOST:PORT/TOPIC, created with 4 partitions when missing)...
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// ...and measure the results it writes to this topic (its --sink), as they arrive.
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// With --to/--from: how long to keep reading results after the input is written.
    #[arg(long, default_value = "15s")]
    drain: String,
    /// In process: a state directory for the job, as `spate run --state` (it must not hold
    /// another job's state). Without it the job keeps state in a temporary store, which skips
    /// the fsync of every epoch's record.
    #[arg(long, conflicts_with = "to")]
    state: Option<std::path::PathBuf>,
}

fn run_bench(args: &BenchArgs) -> Result<()> {
    let config = spate_loadgen::bench::BenchConfig {
        pipeline: args.pipeline.clone(),
        rate: args.rate,
        duration: parse_duration(&args.duration).map_err(|e| anyhow!("invalid --duration: {e}"))?,
        keys: args.keys,
        trigger: spate::runtime::TriggerSpec::parse(&args.trigger)?,
        partitions: args.partitions,
        warmup: parse_duration(&args.warmup).map_err(|e| anyhow!("invalid --warmup: {e}"))?,
        seed: args.seed,
        state_dir: args.state.clone(),
        kafka: match (&args.to, &args.from) {
            (Some(to), Some(from)) => Some(spate_loadgen::bench::KafkaBench {
                to: kafka_topic("--to", to)?,
                from: kafka_topic("--from", from)?,
                drain: parse_duration(&args.drain).map_err(|e| anyhow!("invalid --drain: {e}"))?,
            }),
            _ => None,
        },
    };
    let report = spate_loadgen::bench::bench(&config)?;
    print!("{}", report.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .map_err(|e| anyhow!("cannot write {} (--json): {e}", path.display()))?;
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, report.svg())
            .map_err(|e| anyhow!("cannot write {} (--svg): {e}", path.display()))?;
    }
    Ok(())
}

#[derive(Args, Debug)]
struct UsersArgs {
    /// Users (as many as the transactions' --keys).
    #[arg(long, default_value_t = 10_000)]
    users: u64,
    /// Fraction of users whose row changes once, at a random time within --span.
    #[arg(long, default_value_t = 0.1)]
    updates: f64,
    /// Time of the first rows: RFC 3339 (default 2026-01-01T00:00:00Z, as transactions).
    #[arg(long)]
    start: Option<String>,
    /// Updates fall within this much time after --start.
    #[arg(long, default_value = "10m")]
    span: String,
    /// Ids as JSON strings shaped like `u00042` (`string`) or as integers (`int`).
    #[arg(long, default_value = "string", value_name = "string|int")]
    id_format: String,
    /// Seed: the same seed gives the same table.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    out: OutputArgs,
}

fn run_users(args: &UsersArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&args.updates) {
        bail!(
            "invalid --updates {}: use a fraction from 0 to 1",
            args.updates
        );
    }
    let options = spate_loadgen::users::UsersOptions {
        users: args.users,
        updates: args.updates,
        start_ms: match args.start.as_deref() {
            Some(text) => parse_rfc3339(text).map_err(|e| anyhow!("invalid --start: {e}"))?,
            None => DEFAULT_START_MS,
        },
        span_ms: millis("--span", &args.span)?,
        seed: args.seed,
        ids: IdFormat::parse(&args.id_format).map_err(|e| anyhow!("invalid --id-format: {e}"))?,
    };
    let mut out = args.out.open("users")?;
    let rows = spate_loadgen::users::write_users(&options, &mut out)?;
    eprintln!("spate-loadgen: wrote {rows} users rows");
    Ok(())
}

/// Event time of the first record when `--start` is not given: 2026-01-01T00:00:00Z.
const DEFAULT_START_MS: Millis = 1_767_225_600_000;

/// Where generated records go, and how a Kafka topic is written.
#[derive(Args, Debug)]
struct OutputArgs {
    /// Where to write: file:PATH (a path ending in / is a directory), stdout,
    /// kafka://HOST:PORT/TOPIC (records keyed by the pipeline key) or null.
    #[arg(long, default_value = "stdout")]
    to: String,
    /// Kafka: partitions of the topic when it has to be created.
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// Kafka: compression (none, lz4, zstd, snappy, gzip).
    #[arg(long, default_value = "lz4")]
    compression: String,
    /// Kafka: how long the producer waits to fill a batch, in milliseconds.
    #[arg(long, default_value_t = 10)]
    linger_ms: u64,
    /// Kafka: largest batch in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    batch_bytes: u64,
    /// Kafka: a librdkafka producer property as KEY=VALUE (repeatable).
    #[arg(long = "kafka-opt", value_name = "KEY=VALUE")]
    kafka_opts: Vec<String>,
}

impl OutputArgs {
    /// Opens the output; `scenario` names the file inside a directory.
    fn open(&self, scenario: &str) -> Result<Output> {
        if self.partitions == 0 {
            bail!("invalid --partitions 0: use at least 1");
        }
        let kafka = KafkaOptions {
            partitions: self.partitions,
            compression: self.compression.clone(),
            linger_ms: self.linger_ms,
            batch_bytes: self.batch_bytes,
            options: self
                .kafka_opts
                .iter()
                .map(|o| KafkaSettings::parse_option(o).map_err(|e| anyhow!(e)))
                .collect::<Result<_>>()?,
        };
        Output::open_with(&self.to, scenario, &kafka)
    }
}

#[derive(Args, Debug)]
struct GenArgs {
    /// Stop after this many records (default 1,000,000 when neither --events nor --duration is
    /// given and no --rate; with --rate, run until interrupted).
    #[arg(long)]
    events: Option<u64>,
    /// Stop after this much time of schedule, e.g. 60s or 5m.
    #[arg(long)]
    duration: Option<String>,
    /// Records per second, paced in wall-clock time (the shape's mean or base rate).
    #[arg(long)]
    rate: Option<f64>,
    /// Rate shape: constant, ramp:TO:OVER, sine:AMPLITUDE:PERIOD or burst:PEAK:PERIOD:DUTY.
    #[arg(long, default_value = "constant")]
    shape: String,
    /// Without --rate: how fast event time advances, in records per second.
    #[arg(long, default_value_t = 1_000.0)]
    event_rate: f64,
    /// Event time of the first record: RFC 3339 or `now` (default: 2026-01-01T00:00:00Z, or
    /// now with --rate).
    #[arg(long)]
    start: Option<String>,
    /// Distinct keys (users, devices, segments, accounts).
    #[arg(long, alias = "users", default_value_t = 10_000)]
    keys: u64,
    /// Ids as JSON strings shaped like `u00042` (`string`) or as integers (`int`).
    #[arg(long, default_value = "string", value_name = "string|int")]
    id_format: String,
    /// Key distribution: uniform or zipf:EXPONENT.
    #[arg(long, default_value = "uniform")]
    skew: String,
    /// Fraction of records up to --max-delay out of order.
    #[arg(long, default_value_t = 0.1)]
    out_of_order: f64,
    /// Largest displacement of an out-of-order record.
    #[arg(long, default_value = "5s")]
    max_delay: String,
    /// Fraction of records very late (--late-delay to twice that behind).
    #[arg(long, default_value_t = 0.0)]
    late: f64,
    /// How late a very late record is, at least.
    #[arg(long, default_value = "60s")]
    late_delay: String,
    /// Fraction of records written malformed.
    #[arg(long, default_value_t = 0.0)]
    malformed: f64,
    /// Fraction of 16-record blocks that are a burst from one key.
    #[arg(long, default_value_t = 0.0)]
    burstiness: f64,
    /// Seed: the same seed gives byte-identical output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// transactions and labels: the share of payments that start a fraud burst (2–5 payments of
    /// one user at merchants m5000–m5049, $800–$5,000 each); `labels` with the same arguments
    /// writes every payment's outcome.
    #[arg(long, default_value_t = 0.0)]
    fraud: f64,
    /// sensors: also write each planted anomaly to this file as
    /// `{"device_id","event_ms","kind"}` (what a detector is scored against).
    #[arg(long, value_name = "FILE")]
    truth: Option<std::path::PathBuf>,
    #[command(flatten)]
    out: OutputArgs,
}

fn kafka_topic(flag: &str, text: &str) -> Result<KafkaTopic> {
    KafkaTopic::parse(flag, text)
        .map_err(|e| anyhow!(e))?
        .ok_or_else(|| anyhow!("invalid {flag} `{text}`: use kafka://HOST:PORT/TOPIC"))
}

fn millis(flag: &str, text: &str) -> Result<Millis> {
    parse_duration(text)
        .map(|d| d.as_millis() as Millis)
        .map_err(|e| anyhow!("invalid {flag}: {e}"))
}

/// Scenario `name` as `args` shape it: sensors writing their planted anomalies to `--truth`,
/// transactions with `--fraud`.
fn open_scenario(
    name: &str,
    args: &GenArgs,
    base_ms: Millis,
    ids: IdFormat,
) -> Result<Box<dyn scenario::Scenario>> {
    if args.fraud > 0.0 && name != "transactions" {
        bail!("--fraud is for transactions and labels; leave it out");
    }
    Ok(match (args.truth.as_deref(), name) {
        (None, "transactions") => Box::new(scenario::Transactions::new(ids).with_fraud(args.fraud)),
        (None, _) => scenario::by_name(name, base_ms, ids).expect("subcommands name scenarios"),
        (Some(path), "sensors") => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create the --truth file {}", path.display()))?;
            Box::new(scenario::Sensors {
                base_ms,
                ids,
                truth: Some(Box::new(std::io::BufWriter::new(file))),
            })
        }
        (Some(_), _) => {
            bail!("--truth is for sensors (it lists the planted anomalies); leave it out")
        }
    })
}

/// What a generator run is asked: its knobs, pacing, limits and id format.
struct RunPlan {
    knobs: Knobs,
    pace: Pace,
    limits: Limits,
    ids: IdFormat,
}

/// The run `args` ask for, checked.
fn run_plan(args: &GenArgs) -> Result<RunPlan> {
    let knobs = Knobs {
        seed: args.seed,
        keys: args.keys,
        skew: Skew::parse(&args.skew).map_err(|e| anyhow!(e))?,
        out_of_order: args.out_of_order,
        max_delay_ms: millis("--max-delay", &args.max_delay)?,
        late: args.late,
        late_delay_ms: millis("--late-delay", &args.late_delay)?,
        malformed: args.malformed,
        burstiness: args.burstiness,
    };
    knobs.validate().map_err(|e| anyhow!(e))?;
    let rate = match args.rate {
        Some(r) if !(r.is_finite() && r > 0.0) => {
            bail!("invalid --rate {r}: use a positive number of records per second")
        }
        Some(r) => r,
        None if args.shape != "constant" => {
            bail!("--shape needs --rate (the shape's mean or base rate)")
        }
        None if !(args.event_rate.is_finite() && args.event_rate > 0.0) => {
            bail!(
                "invalid --event-rate {}: use a positive number",
                args.event_rate
            )
        }
        None => args.event_rate,
    };
    if !(0.0..=1.0).contains(&args.fraud) {
        bail!("invalid --fraud {}: use a share from 0 to 1", args.fraud);
    }
    let base_ms = match args.start.as_deref() {
        Some("now") => now_ms(),
        Some(text) => parse_rfc3339(text).map_err(|e| anyhow!("invalid --start: {e}"))?,
        None if args.rate.is_some() => now_ms(),
        None => DEFAULT_START_MS,
    };
    let duration = args
        .duration
        .as_deref()
        .map(|d| parse_duration(d).map_err(|e| anyhow!("invalid --duration: {e}")))
        .transpose()?;
    Ok(RunPlan {
        knobs,
        pace: Pace {
            shape: RateShape::parse(&args.shape, rate).map_err(|e| anyhow!(e))?,
            paced: args.rate.is_some(),
            base_ms,
        },
        limits: Limits {
            events: args
                .events
                .or((duration.is_none() && args.rate.is_none()).then_some(1_000_000)),
            duration,
        },
        ids: IdFormat::parse(&args.id_format).map_err(|e| anyhow!("invalid --id-format: {e}"))?,
    })
}

fn run(name: &str, args: &GenArgs) -> Result<()> {
    let plan = run_plan(args)?;
    let mut scenario = open_scenario(name, args, plan.pace.base_ms, plan.ids)?;
    let mut out = args.out.open(name)?;
    let report = generate(
        scenario.as_mut(),
        &plan.knobs,
        &plan.pace,
        plan.limits,
        &mut out,
    )?;
    scenario.finish().context("cannot write the --truth file")?;
    let mut summary = format!(
        "spate-loadgen: wrote {} {name} records ({} malformed) in {:.2} s: {:.0}/s",
        report.events,
        report.malformed,
        report.elapsed.as_secs_f64(),
        report.rate()
    );
    if let Some(asked) = report.asked_rate {
        summary += &if report.kept_up() {
            format!(", keeping the asked {asked:.0}/s")
        } else {
            format!(
                ", BELOW the asked {asked:.0}/s (up to {:.1} s behind schedule: the generator or the output is too slow)",
                report.max_lag.as_secs_f64()
            )
        };
    }
    eprintln!("{summary}");
    Ok(())
}

/// `spate-loadgen labels`: generates the transactions `args` describe (as `transactions` with
/// the same arguments writes them), and writes each one's outcome instead, in the order the
/// outcomes become known.
fn run_labels(args: &GenArgs) -> Result<()> {
    let plan = run_plan(args)?;
    let mut transactions = scenario::Transactions::new(plan.ids)
        .with_fraud(args.fraud)
        .collecting_labels();
    let mut discard = Output::Null;
    generate(
        &mut transactions,
        &plan.knobs,
        &plan.pace,
        plan.limits,
        &mut discard,
    )?;
    let mut labels = transactions.take_labels();
    labels.sort_by_key(|l| l.event_ms); // stable: payments in order on a tie
    let mut out = args.out.open("labels")?;
    let (mut line, mut key) = (Vec::with_capacity(96), Vec::with_capacity(16));
    for label in &labels {
        line.clear();
        key.clear();
        serde_json::to_writer(&mut line, label)?;
        line.push(b'\n');
        spate::Key::write_record_key(&label.tx_id, &mut key);
        out.write(Some(&key), &line)?;
    }
    out.flush()?;
    let frauds = labels.iter().filter(|l| l.fraud).count();
    eprintln!(
        "spate-loadgen: wrote {} labels ({frauds} fraud)",
        labels.len()
    );
    Ok(())
}

/// Whether `error` comes from the reader of our stdout going away (`spate-loadgen … | head`):
/// that ends the run quietly, as for any Unix tool.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> Result<()> {
    // The engine's log lines only when `RUST_LOG` asks for them: the reports are the output.
    spate::cli::init_log_lines(false, None);
    match run_cli() {
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

fn run_cli() -> Result<()> {
    let (name, args) = match Cli::parse().scenario {
        Scenario::Transactions(a) => ("transactions", a),
        Scenario::Clicks(a) => ("clicks", a),
        Scenario::Sensors(a) => ("sensors", a),
        Scenario::Labels(a) => return run_labels(&a),
        Scenario::Traffic(a) => ("traffic", a),
        Scenario::Logins(a) => ("logins", a),
        Scenario::Nexmark(a) => ("nexmark", a),
        Scenario::Bench(b) => return run_bench(&b),
        Scenario::Users(a) => return run_users(&a),
        Scenario::Latency { from, delay, after } => {
            let after = match after {
                Some(text) => parse_rfc3339(&text).map_err(|e| anyhow!("invalid --after: {e}"))?,
                None => 0,
            };
            let p = spate_loadgen::bench::kafka_latency(
                &kafka_topic("--from", &from)?,
                millis("--delay", &delay)?,
                after,
            )?;
            println!(
                "results {} latency ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
                p.count, p.p50, p.p90, p.p99, p.p999, p.max
            );
            return Ok(());
        }
        Scenario::Pipe { from, to } => {
            let topic = kafka_topic;
            let report = spate_loadgen::pipe::pipe(&topic("--from", &from)?, &topic("--to", &to)?)?;
            let secs = report.elapsed.as_secs_f64().max(1e-9);
            eprintln!(
                "spate-loadgen: copied {} records in {secs:.2} s: {:.0}/s",
                report.records,
                report.records as f64 / secs
            );
            return Ok(());
        }
        Scenario::Chart { out, reports } => {
            let reports = reports
                .iter()
                .map(|p| {
                    let bytes = std::fs::read(p)
                        .map_err(|e| anyhow!("cannot read {}: {e}", p.display()))?;
                    serde_json::from_slice(&bytes)
                        .map_err(|e| anyhow!("{} is not a bench report: {e}", p.display()))
                })
                .collect::<Result<Vec<spate_loadgen::bench::BenchReport>>>()?;
            return std::fs::write(&out, spate_loadgen::bench::curve_svg(&reports))
                .map_err(|e| anyhow!("cannot write {} (--out): {e}", out.display()));
        }
    };
    run(name, &args)
}
