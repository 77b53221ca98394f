//! `spate-loadgen`: writes generated events as JSON lines, the input format of spate's
//! pipelines. This first version generates `transactions` (the input of `tx-windows`, `fraud`
//! and `sessions`); the same seed gives byte-identical output.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use spate::io::source::{EventGenerator, GenOptions};
use spate_actors::events::TransactionGenerator;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "spate-loadgen",
    version,
    about = "Generate events for spate pipelines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Payment transactions for tx-windows, fraud and sessions.
    #[command(
        after_help = "Example:\n  spate-loadgen transactions --events 1000000 --users 10000 --to file:tx.jsonl --seed 7"
    )]
    Transactions(TransactionArgs),
}

#[derive(Args)]
struct TransactionArgs {
    /// How many transactions to write.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// How many distinct users to spread them over.
    #[arg(long, default_value_t = 10_000)]
    users: u64,
    /// Seed: the same seed gives byte-identical output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Transactions per second of event time (event_ms advances at this pace from
    /// 2026-01-01T00:00:00Z).
    #[arg(long, default_value_t = 1_000.0)]
    event_rate: f64,
    /// Where to write: `file:PATH` or `stdout`.
    #[arg(long, default_value = "stdout")]
    to: String,
}

fn output(to: &str) -> Result<Box<dyn Write>> {
    if to == "stdout" || to == "-" {
        return Ok(Box::new(std::io::stdout().lock()));
    }
    let Some(path) = to.strip_prefix("file:").filter(|p| !p.is_empty()) else {
        bail!("invalid --to `{to}`: use file:PATH or stdout");
    };
    let path = PathBuf::from(path);
    let file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {} (--to)", path.display()))?;
    Ok(Box::new(file))
}

fn transactions(args: &TransactionArgs) -> Result<()> {
    if args.users == 0 {
        bail!("invalid --users 0: use at least 1");
    }
    if args.event_rate.is_nan() || args.event_rate <= 0.0 {
        bail!(
            "invalid --event-rate {}: use a positive number",
            args.event_rate
        );
    }
    let generator = TransactionGenerator::new(&GenOptions {
        seed: args.seed,
        keys: args.users,
        rate: Some(args.event_rate),
        events: Some(args.events),
        ..GenOptions::default()
    });
    let mut out = BufWriter::with_capacity(1 << 20, output(&args.to)?);
    let started = Instant::now();
    for i in 0..args.events {
        let line = generator.generate(i).to_json_line();
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush().context("cannot write the output (--to)")?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "spate-loadgen: wrote {} transactions in {secs:.2} s ({:.0}/s)",
        args.events,
        args.events as f64 / secs.max(1e-9)
    );
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Transactions(args) => transactions(&args),
    }
}
