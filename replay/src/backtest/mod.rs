//! What `optionflow backtest TAPE --out DIR` runs after the replay of TAPE into `DIR/replay`:
//! the approved risk decisions of that replay become entry candidates, and one streaming pass
//! over the tape simulates their positions.
//!
//! - [`config`]: the `[backtest]` section.
//! - [`sim`]: the position simulator (choice of contracts, fills, marks, exits, sizing).
//! - [`summary`]: `summary.json`'s metrics and `trades.csv`.
//! - [`report`]: `report.html`, the charts.

pub mod config;
pub mod report;
pub mod sim;
pub mod summary;
#[cfg(test)]
mod tests;

use optionflow_pipeline::runtime::embedded::files;
use optionflow_pipeline::tape::{TapeError, TapeReader};
use optionflow_schemas::{IdString, RiskDecision, Signal};
use sim::{Candidate, Simulator};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

pub use config::BacktestConfig;
pub use summary::Summary;

/// Output file names.
pub mod outputs {
    /// One row per closed position.
    pub const TRADES: &str = "trades.csv";
    /// The metrics.
    pub const SUMMARY: &str = "summary.json";
    /// The charts.
    pub const REPORT: &str = "report.html";
    /// The replay's outputs, under the backtest's directory.
    pub const REPLAY: &str = "replay";
}

/// Why a backtest failed.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// File system.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A replay output line does not parse.
    #[error("{file}:{line}: {message}; run the backtest into a new --out directory")]
    Parse {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// What serde said.
        message: String,
    },
    /// The tape.
    #[error(transparent)]
    Tape(#[from] TapeError),
    /// Writing the CSV.
    #[error("writing trades.csv: {0}")]
    Csv(#[from] csv::Error),
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> BacktestError {
    move |source| BacktestError::Io { what, source }
}

fn read_jsonl<T: serde::de::DeserializeOwned>(
    path: &Path,
    mut each: impl FnMut(T),
) -> Result<(), BacktestError> {
    let file = std::fs::File::open(path).map_err(io(format!("reading {}", path.display())))?;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io(format!("reading {}", path.display())))?;
        if line.trim().is_empty() {
            continue;
        }
        let v = serde_json::from_str(&line).map_err(|e| BacktestError::Parse {
            file: path.display().to_string(),
            line: i + 1,
            message: e.to_string(),
        })?;
        each(v);
    }
    Ok(())
}

/// The entry candidates of a replay's outputs: its approved risk decisions, with their
/// signals' probability and voting factors.
pub fn candidates(replay_dir: &Path) -> Result<Vec<Candidate>, BacktestError> {
    let mut signals: BTreeMap<IdString, Signal> = BTreeMap::new();
    read_jsonl(&replay_dir.join(files::SIGNALS), |s: Signal| {
        signals.insert(s.event_id.clone(), s);
    })?;
    let mut out = Vec::new();
    read_jsonl(&replay_dir.join(files::DECISIONS), |d: RiskDecision| {
        if !d.approved {
            return;
        }
        let signal = signals.get(&d.signal_id);
        out.push(Candidate {
            decision_id: d.event_id.to_string(),
            signal_id: d.signal_id.to_string(),
            time: d.event_time,
            underlying: d.underlying,
            direction: d.direction,
            score: d.composite,
            probability: signal.map_or(d.composite / 100.0, |s| s.probability),
            factors: signal.map_or_else(Vec::new, |s| {
                s.factors
                    .iter()
                    .filter(|v| v.voted)
                    .map(|v| v.factor.clone())
                    .collect()
            }),
        });
    })?;
    Ok(out)
}

/// Simulates `candidates` over `tape` (one streaming pass).
pub fn simulate(
    tape: &Path,
    cfg: &BacktestConfig,
    rate: f64,
    candidates: Vec<Candidate>,
) -> Result<sim::Outcome, BacktestError> {
    let mut sim = Simulator::new(cfg.clone(), rate, candidates);
    for ev in TapeReader::open(tape)? {
        sim.on_event(&ev?);
    }
    Ok(sim.finish())
}

/// Writes `trades.csv`, `summary.json` and `report.html` of `outcome` into `out`.
pub fn write_outputs(out: &Path, outcome: &sim::Outcome) -> Result<Summary, BacktestError> {
    let summary = summary::summarize(outcome);
    let path = out.join(outputs::TRADES);
    let file = std::fs::File::create(&path).map_err(io(format!("writing {}", path.display())))?;
    summary::write_trades(&outcome.trades, std::io::BufWriter::new(file))?;
    let path = out.join(outputs::SUMMARY);
    let mut json = serde_json::to_string_pretty(&summary).expect("the summary serializes");
    json.push('\n');
    std::fs::write(&path, json).map_err(io(format!("writing {}", path.display())))?;
    let path = out.join(outputs::REPORT);
    std::fs::write(&path, report::render(outcome, &summary))
        .map_err(io(format!("writing {}", path.display())))?;
    Ok(summary)
}

/// The backtest after its replay: candidates from `replay_dir`, one pass over `tape`, the three
/// outputs into `out`. `rate` is the greeks stage's risk-free rate.
pub fn run(
    tape: &Path,
    replay_dir: &Path,
    cfg: &BacktestConfig,
    rate: f64,
    out: &Path,
) -> Result<Summary, BacktestError> {
    let outcome = simulate(tape, cfg, rate, candidates(replay_dir)?)?;
    write_outputs(out, &outcome)
}
