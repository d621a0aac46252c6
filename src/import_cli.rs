//! `optionflow import`: historical option files into a tape.

use anyhow::{bail, Result};
use optionflow_pipeline::import::{self, Format, ImportError, ImportOptions, ImportReport};
use std::path::PathBuf;

/// Bad rows printed one per line before the rest are only counted.
const SHOWN_BAD_ROWS: usize = 20;

#[derive(clap::Args)]
pub(crate) struct ImportArgs {
    /// Input layout: generic, cboe-eod, deltaneutral or daily-bars (see README, "Importing
    /// history").
    #[arg(long)]
    format: String,
    /// Input CSV files, all in that layout; rows from all of them are merged in event time.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The tape to write (must not exist); replay it with `optionflow replay --out DIR TAPE`.
    #[arg(long)]
    out: PathBuf,
    /// daily-bars only: whose bars these are (default: each file's name without extension).
    #[arg(long)]
    underlying: Option<String>,
}

pub(crate) fn import(args: ImportArgs) -> Result<()> {
    let format: Format = args.format.parse()?;
    let opts = ImportOptions {
        format,
        files: args.files,
        out: args.out,
        underlying: args.underlying,
    };
    match import::import(&opts) {
        Ok(report) => {
            print_summary(&report);
            Ok(())
        }
        Err(ImportError::NothingUsable { rows_read, report }) => {
            print_bad_rows(&report);
            bail!("nothing imported: none of the {rows_read} rows read was usable; no tape written")
        }
        Err(e) => Err(e.into()),
    }
}

fn print_summary(r: &ImportReport) {
    println!(
        "imported {} of {} rows ({} format) into {}: {} events",
        r.rows_used,
        r.rows_read,
        r.format,
        r.out.display(),
        r.events_written
    );
    if let (Some(from), Some(to)) = (r.first_event_time, r.last_event_time) {
        println!("event time {} to {} (UTC)", utc(from), utc(to));
    }
    for (underlying, c) in &r.underlyings {
        println!(
            "  {underlying:<8} {:>8} quotes {:>6} ticks",
            c.quotes, c.ticks
        );
    }
    print_bad_rows(r);
}

fn print_bad_rows(r: &ImportReport) {
    if r.bad_rows.is_empty() {
        return;
    }
    println!("{} bad rows skipped:", r.bad_rows.len());
    for row in r.bad_rows.iter().take(SHOWN_BAD_ROWS) {
        println!("  {row}");
    }
    if r.bad_rows.len() > SHOWN_BAD_ROWS {
        println!("  ... and {} more", r.bad_rows.len() - SHOWN_BAD_ROWS);
    }
}

fn utc(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros).map_or_else(
        || micros.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}
