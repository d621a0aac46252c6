//! `optionflow scenario build`: a scenario file and its daily bars into a reproducible tape.

use anyhow::{bail, Result};
use optionflow_pipeline::source::simulator::scenario;
use std::path::PathBuf;

/// `optionflow scenario …`.
#[derive(clap::Subcommand)]
pub(crate) enum ScenarioCommand {
    /// Build a scenario tape: real daily bars, synthesised option chains around them.
    ///
    /// SPEC is a scenario file (replay/scenarios/*.toml; its bars paths are relative to it).
    /// The same file and bars always give the same tape, byte for byte.
    Build {
        /// The scenario file.
        spec: PathBuf,
        /// The tape to write.
        #[arg(long)]
        out: PathBuf,
        /// Replace --out if it exists.
        #[arg(long)]
        force: bool,
    },
}

pub(crate) fn run(command: ScenarioCommand) -> Result<()> {
    let ScenarioCommand::Build { spec, out, force } = command;
    if out.exists() && !force {
        bail!(
            "{} exists; choose another --out, or pass --force to replace it",
            out.display()
        );
    }
    let r = scenario::build(&spec, &out)?;
    println!(
        "built {} from {}: {} sessions, {} bytes",
        r.out.display(),
        spec.display(),
        r.sessions,
        r.bytes
    );
    println!("event time {} to {} (UTC)", utc(r.span.0), utc(r.span.1));
    for (underlying, ticks, quotes) in &r.counts {
        println!("  {underlying:<8} {quotes:>8} quotes {ticks:>6} ticks");
    }
    Ok(())
}

fn utc(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros).map_or_else(
        || micros.to_string(),
        |t| t.format("%Y-%m-%d %H:%M").to_string(),
    )
}
