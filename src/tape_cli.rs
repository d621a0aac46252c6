//! `optionflow replay` and `optionflow tape …`.

use anyhow::{Context, Result};
use optionflow_pipeline::config::Config;
use optionflow_pipeline::runtime::embedded::SessionParams;
use optionflow_replay::replayer::{replay_input, resolve_tape};
use optionflow_replay::tapes::{self, EventKind, Filter};
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct ReplayArgs {
    /// A tape (`.avro`), or the data directory of an earlier `run` (its quotes.raw.avro).
    tape: PathBuf,
    /// Directory for the outputs (signals, explanations, decisions, alerts as JSON lines).
    #[arg(long)]
    out: PathBuf,
    /// Event-time pace: max (default) or a multiple of real time, e.g. 10.
    #[arg(long, default_value = "max")]
    speed: String,
    /// TOML configuration (use the run's own to reproduce it).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
pub(crate) enum TapeCommand {
    /// Time range, underlyings, event counts and schema fingerprints.
    Info {
        /// The tape, or a run's data directory.
        tape: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Events as JSON lines.
    Cat {
        /// The tape, or a run's data directory.
        tape: PathBuf,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Copy the events that pass the filters to a new tape.
    Slice {
        /// The tape, or a run's data directory.
        tape: PathBuf,
        #[command(flatten)]
        filter: FilterArgs,
        /// The new tape.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
pub(crate) struct FilterArgs {
    /// Event type: quote (RawQuote) or tick (UnderlyingTick). The tape holds topic quotes.raw.
    #[arg(long)]
    topic: Option<String>,
    /// Only this underlying.
    #[arg(long)]
    underlying: Option<String>,
    /// From this time, inclusive: RFC 3339, New York time ("2024-01-02 10:00") or µs.
    #[arg(long)]
    from: Option<String>,
    /// Up to this time, exclusive (same forms as --from).
    #[arg(long)]
    to: Option<String>,
}

impl FilterArgs {
    fn filter(&self) -> Result<Filter> {
        let time = |t: &Option<String>, flag: &str| -> Result<Option<i64>> {
            t.as_deref()
                .map(tapes::parse_time)
                .transpose()
                .map_err(anyhow::Error::msg)
                .with_context(|| flag.to_string())
        };
        Ok(Filter {
            kind: self
                .topic
                .as_deref()
                .map(EventKind::parse)
                .transpose()
                .map_err(anyhow::Error::msg)
                .context("--topic")?,
            underlying: self.underlying.clone(),
            from: time(&self.from, "--from")?,
            to: time(&self.to, "--to")?,
        })
    }
}

/// `optionflow replay`.
pub(crate) fn replay(args: ReplayArgs) -> Result<()> {
    let config = Config::load(args.config.as_deref(), std::env::vars())?;
    let speed = crate::parse_speed(&args.speed)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let params = SessionParams {
        input: replay_input(&args.tape, &args.out)?,
        config_fingerprint: config.fingerprint(),
    };
    crate::run_session(config, params, &args.out, speed)
}

/// `optionflow tape …`.
pub(crate) fn tape(cmd: TapeCommand) -> Result<()> {
    match cmd {
        TapeCommand::Info { tape, json } => {
            let info = tapes::info(&resolve_tape(&tape)?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print_info(&info);
            }
        }
        TapeCommand::Cat { tape, filter } => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            tapes::cat(&resolve_tape(&tape)?, &filter.filter()?, &mut out)?;
        }
        TapeCommand::Slice { tape, filter, out } => {
            let n = tapes::slice(&resolve_tape(&tape)?, &filter.filter()?, &out)?;
            eprintln!("{n} events written to {}", out.display());
        }
    }
    Ok(())
}

fn print_info(info: &tapes::TapeInfo) {
    let time = |t: Option<i64>| t.map_or("-".to_string(), crate::et);
    println!("bytes        {}", info.bytes);
    println!("codec        {}", info.codec);
    println!(
        "events       {} ({} quotes, {} ticks)",
        info.events, info.quotes, info.ticks
    );
    println!(
        "time range   {} .. {}",
        time(info.first_event_time),
        time(info.last_event_time)
    );
    println!(
        "in order     {}",
        if info.in_event_time_order {
            "yes"
        } else {
            "NO: events go back in time"
        }
    );
    for (name, fp) in &info.schemas {
        println!("schema       {name} {fp}");
    }
    println!("underlyings  {}", info.underlyings.len());
    for (u, c) in &info.underlyings {
        println!("  {u:<6} {:>10} quotes {:>8} ticks", c.quotes, c.ticks);
    }
}
