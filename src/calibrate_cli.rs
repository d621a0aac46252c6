//! `optionflow calibrate`: label a session's signals with their forward outcomes and fit the
//! calibration file the consensus stage loads (`[consensus] calibration-file`).

use anyhow::{bail, Context, Result};
use optionflow_pipeline::duration::parse_market_duration;
use optionflow_pipeline::runtime::embedded::files;
use optionflow_replay::outcomes;
use optionflow_schemas::Signal;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct CalibrateArgs {
    /// A data directory holding signals.jsonl: a `run`'s (its tape is used), or a `replay`'s or
    /// backtest's `replay/` with --tape.
    dir: PathBuf,
    /// The tape the signals came from (default: DIR/quotes.raw.avro).
    #[arg(long)]
    tape: Option<PathBuf>,
    /// Forward horizons in market time (30s, 20m, 2h, 1d); the first is the one fitted.
    #[arg(long = "horizon", default_values_t = ["30m".to_string(), "60m".to_string()])]
    horizons: Vec<String>,
    /// A move beyond this fraction agrees with the direction (0.005 = 0.5%).
    #[arg(long, default_value_t = 0.005)]
    threshold: f64,
    /// Where to write the calibration (JSON, for `[consensus] calibration-file`).
    #[arg(long)]
    out: PathBuf,
    /// Also write every labelled outcome here as JSON lines (what `[explain] outcomes-file`
    /// reads for the narratives' outcome statistics).
    #[arg(long)]
    outcomes: Option<PathBuf>,
    /// Configuration file: with `[state] kind = "scylla"` the outcomes are also upserted into
    /// the `signal_outcomes` table.
    #[arg(long)]
    config: Option<PathBuf>,
}

pub(crate) fn calibrate(args: CalibrateArgs) -> Result<()> {
    if !(args.threshold.is_finite() && args.threshold >= 0.0) {
        bail!(
            "--threshold {}: give a non-negative fraction such as 0.005",
            args.threshold
        );
    }
    let horizons: Vec<i64> = args
        .horizons
        .iter()
        .map(|h| {
            parse_market_duration(h)
                .map(|us| us / 1_000_000)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("--horizon {h}"))
        })
        .collect::<Result<_>>()?;
    let signals_path = args.dir.join(files::SIGNALS);
    let text = std::fs::read_to_string(&signals_path)
        .with_context(|| format!("reading {}", signals_path.display()))?;
    let signals: Vec<Signal> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{}:{}", signals_path.display(), i + 1))
        })
        .collect::<Result<_>>()?;
    let tape = args
        .tape
        .clone()
        .unwrap_or_else(|| args.dir.join(files::TAPE));
    let labelled = outcomes::label(&tape, &signals, &horizons, args.threshold)?;
    if let Some(path) = &args.outcomes {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        for o in &labelled {
            writeln!(f, "{}", serde_json::to_string(o)?)?;
        }
        f.flush()?;
    }
    let config =
        optionflow_pipeline::config::Config::load(args.config.as_deref(), std::env::vars())?;
    if config.state.kind == optionflow_pipeline::scylla::StateKind::Scylla {
        store_outcomes(&config.scylla, &labelled)?;
    }
    let calibration = outcomes::fit(&labelled, horizons[0]).map_err(anyhow::Error::msg)?;
    std::fs::write(&args.out, calibration.to_json())
        .with_context(|| format!("writing {}", args.out.display()))?;
    for &h in &horizons {
        let (n, hits) = labelled
            .iter()
            .filter(|o| o.horizon_secs == h)
            .filter_map(|o| o.hit)
            .fold((0, 0), |(n, k), hit| (n + 1, k + usize::from(hit)));
        eprintln!(
            "horizon {h} s: {n} of {} signals labelled, {hits} hits",
            signals.len()
        );
    }
    eprintln!(
        "calibration ({} s horizon) written to {}",
        horizons[0],
        args.out.display()
    );
    Ok(())
}

/// Upserts the labelled outcomes into `signal_outcomes`, by signal and horizon.
fn store_outcomes(
    cfg: &optionflow_pipeline::scylla::ScyllaConfig,
    labelled: &[outcomes::Outcome],
) -> Result<()> {
    use optionflow_pipeline::scylla::{Row, ScyllaState};
    let rows = labelled
        .iter()
        .map(|o| {
            Ok(Row::Outcome {
                underlying: o.underlying.clone(),
                signal_id: o.signal_id.clone(),
                horizon_secs: o.horizon_secs,
                event_time: o.event_time,
                body: serde_json::to_string(o)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let n = rows.len();
    crate::runtime()?.block_on(async {
        let db = ScyllaState::connect(cfg).await?;
        db.write_rows(rows).await
    })?;
    eprintln!(
        "{n} outcomes upserted into {}.signal_outcomes",
        cfg.keyspace
    );
    Ok(())
}
