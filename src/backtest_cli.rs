//! `optionflow backtest`.

use anyhow::{Context, Result};
use optionflow_pipeline::config::Config;
use optionflow_pipeline::runtime::embedded::{self, RunOptions, SessionParams};
use optionflow_replay::backtest::{self, outputs, BacktestConfig};
use optionflow_replay::replayer::{replay_input, resolve_tape};
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct BacktestArgs {
    /// A tape (`.avro`), or the data directory of an earlier `run` (its quotes.raw.avro).
    tape: PathBuf,
    /// Directory for trades.csv, summary.json, report.html and the replay's outputs (replay/).
    #[arg(long)]
    out: PathBuf,
    /// TOML configuration: the pipeline's sections for the replay, [backtest] for the backtest.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// `optionflow backtest`.
pub(crate) fn backtest(args: BacktestArgs) -> Result<()> {
    let (config, foreign) = Config::load_split(args.config.as_deref(), std::env::vars())?;
    let bt = BacktestConfig::from_table(foreign.get("backtest")).context("config [backtest]")?;
    let replay_dir = args.out.join(outputs::REPLAY);
    std::fs::create_dir_all(&replay_dir)
        .with_context(|| format!("creating {}", replay_dir.display()))?;
    let tape = resolve_tape(&args.tape)?;
    let rate = config.greeks.rate;
    let params = SessionParams {
        input: replay_input(&args.tape, &replay_dir)?,
        config_fingerprint: config.fingerprint(),
    };
    // The replay is the live pipeline on the tape (risk gate included); an earlier, finished
    // replay in the same directory is reused, an interrupted one resumes.
    let opts = RunOptions {
        config,
        data_dir: replay_dir.clone(),
        params,
        speed: None,
        on_alert: None,
        on_status: None,
        live: None,
        dashboard: None,
    };
    let replay = crate::runtime()?.block_on(embedded::run(opts))?;
    eprintln!(
        "replay into {}: {} signals, {} alerts{}",
        replay_dir.display(),
        replay.signals,
        replay.alerts,
        if replay.already_finished {
            " (already finished, reused)"
        } else {
            ""
        }
    );
    let s = backtest::run(&tape, &replay_dir, &bt, rate, &args.out)?;
    let pct = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{:.2}%", v * 100.0));
    println!(
        "{} trades · total return {} · max drawdown {} · hit rate {} · sharpe {} · equity {:.2} → {:.2}",
        s.trades,
        pct(Some(s.total_return)),
        pct(Some(s.max_drawdown)),
        pct(s.hit_rate),
        s.sharpe.map_or("-".to_string(), |v| format!("{v:.2}")),
        s.start_equity,
        s.end_equity,
    );
    println!(
        "wrote {}, {}, {} in {}",
        outputs::TRADES,
        outputs::SUMMARY,
        outputs::REPORT,
        args.out.display()
    );
    Ok(())
}
