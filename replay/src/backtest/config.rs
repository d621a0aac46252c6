//! `[backtest]`: entry rules, instruments, fills, exits and capital.

use optionflow_operators::config::Problems;
use optionflow_operators::ConfigErrors;
use optionflow_schemas::direction;
use serde::{Deserialize, Serialize};

/// Instrument for a directional (bullish or bearish) signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Structure {
    /// A long call (bullish) or long put (bearish) at `target-delta`.
    Single,
    /// The same long leg, plus a short leg of the same right and expiry further out of the
    /// money at `vertical-short-delta`: a debit vertical.
    Vertical,
}

/// Which side of the quote an order fills at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FillAt {
    /// Buy at the ask, sell at the bid: pay the spread (the default).
    BidAsk,
    /// Buy and sell at the mid: optimistic, for comparison only.
    Mid,
}

/// The `[backtest]` section of the configuration file. Every key has a default; see
/// `deploy/optionflow.example.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct BacktestConfig {
    /// Minimum composite score (0-100) of an approved signal for it to be traded.
    pub min_score: f64,
    /// Signal directions that are traded: any of bullish, bearish, volatility.
    pub directions: Vec<String>,
    /// Factors that must all have voted for a signal to be traded (empty: no requirement).
    pub require_factors: Vec<String>,
    /// A signal any of these factors voted for is not traded.
    pub exclude_factors: Vec<String>,
    /// Instrument for directional signals: single (a long call or put) or vertical (a debit
    /// spread). Volatility signals always buy the at-the-money straddle.
    pub structure: Structure,
    /// |delta| of the long call (bullish) or long put (bearish) leg.
    pub target_delta: f64,
    /// |delta| of the short leg of a vertical (further out of the money than the long leg).
    pub vertical_short_delta: f64,
    /// The nearest expiry at least this many calendar days after the signal is traded.
    pub min_days_to_expiry: f64,
    /// Fill side: bid-ask (buy at the ask, sell at the bid) or mid.
    pub fill_at: FillAt,
    /// Slippage in $ per contract on every fill of every leg, against the trade (a buy pays
    /// `ask + slippage / 100` per share). The quoted spread is already paid at bid-ask.
    pub slippage_per_contract: f64,
    /// Commission in $ per contract per leg on every fill (none at expiry settlement).
    pub commission_per_contract: f64,
    /// Close when the position's value (bid of long legs, ask of short legs) reaches the entry
    /// price × (1 + this). 0 disables.
    pub take_profit: f64,
    /// Close when the position's value falls to the entry price × (1 − this). 0 disables.
    pub stop_loss: f64,
    /// Close this many seconds of event time after the entry fill. 0 disables.
    pub max_hold_secs: u64,
    /// Equity at the start, in $.
    pub starting_equity: f64,
    /// Fraction of equity committed to each new position (its premium plus commissions).
    pub position_fraction: f64,
    /// Positions open (or waiting for their entry fill) at once; further signals are skipped.
    pub max_positions: usize,
}

impl Default for BacktestConfig {
    fn default() -> Self {
        Self {
            min_score: 75.0,
            directions: vec![
                direction::BULLISH.to_string(),
                direction::BEARISH.to_string(),
                direction::VOLATILITY.to_string(),
            ],
            require_factors: Vec::new(),
            exclude_factors: Vec::new(),
            structure: Structure::Single,
            target_delta: 0.40,
            vertical_short_delta: 0.20,
            min_days_to_expiry: 7.0,
            fill_at: FillAt::BidAsk,
            slippage_per_contract: 0.0,
            commission_per_contract: 0.65,
            take_profit: 0.5,
            stop_loss: 0.5,
            max_hold_secs: 5 * 86_400,
            starting_equity: 100_000.0,
            position_fraction: 0.02,
            max_positions: 5,
        }
    }
}

impl BacktestConfig {
    /// The `[backtest]` table of a configuration file (as split off by
    /// `optionflow_pipeline::config::Config::load_split`); absent means the defaults.
    pub fn from_table(table: Option<&toml::Value>) -> Result<Self, ConfigErrors> {
        let cfg: BacktestConfig = match table {
            None => BacktestConfig::default(),
            Some(v) => v
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| ConfigErrors(vec![format!("backtest: {e}")]))?,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reports every out-of-range value, each prefixed by `backtest.`.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut p = Problems::default();
        let fraction = |x: f64| x.is_finite() && x > 0.0 && x < 1.0;
        p.check(
            (0.0..=100.0).contains(&self.min_score),
            "backtest.min-score",
            "must be between 0 and 100",
        );
        for d in &self.directions {
            p.check(
                [
                    direction::BULLISH,
                    direction::BEARISH,
                    direction::VOLATILITY,
                ]
                .contains(&&**d),
                "backtest.directions",
                format!("{d:?} is not one of bullish, bearish, volatility"),
            );
        }
        p.check(
            fraction(self.target_delta),
            "backtest.target-delta",
            "must be between 0 and 1, exclusive",
        );
        p.check(
            fraction(self.vertical_short_delta) && self.vertical_short_delta < self.target_delta,
            "backtest.vertical-short-delta",
            "must be between 0 and target-delta, exclusive",
        );
        p.check(
            self.min_days_to_expiry.is_finite() && self.min_days_to_expiry >= 0.0,
            "backtest.min-days-to-expiry",
            "must be zero or more",
        );
        for (key, v) in [
            ("slippage-per-contract", self.slippage_per_contract),
            ("commission-per-contract", self.commission_per_contract),
            ("take-profit", self.take_profit),
        ] {
            p.check(
                v.is_finite() && v >= 0.0,
                &format!("backtest.{key}"),
                "must be zero or more",
            );
        }
        p.check(
            self.stop_loss.is_finite() && (0.0..=1.0).contains(&self.stop_loss),
            "backtest.stop-loss",
            "must be between 0 (disabled) and 1",
        );
        p.check(
            self.starting_equity.is_finite() && self.starting_equity > 0.0,
            "backtest.starting-equity",
            "must be positive",
        );
        p.check(
            self.position_fraction.is_finite()
                && self.position_fraction > 0.0
                && self.position_fraction <= 1.0,
            "backtest.position-fraction",
            "must be above 0 and at most 1",
        );
        p.check(
            self.max_positions >= 1,
            "backtest.max-positions",
            "must be at least 1",
        );
        p.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn defaults_validate_and_every_problem_is_reported() {
        BacktestConfig::default().validate().unwrap();
        let bad: toml::Value =
            toml::from_str("target-delta = 1.5\nmax-positions = 0\ndirections = [\"sideways\"]\n")
                .unwrap();
        let err = BacktestConfig::from_table(Some(&bad)).unwrap_err().0;
        assert_eq!(err.len(), 3, "{err:?}");
        let typo: toml::Value = toml::from_str("take-proft = 1.0\n").unwrap();
        let err = BacktestConfig::from_table(Some(&typo)).unwrap_err().0;
        assert!(err[0].contains("take-proft"), "{err:?}");
    }

    /// The example file documents every `[backtest]` key with its default.
    #[test]
    fn the_example_config_documents_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/optionflow.example.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        let cfg = BacktestConfig::from_table(table.get("backtest")).unwrap();
        assert_eq!(cfg, BacktestConfig::default());
        let section = &text[text.find("[backtest]").expect("[backtest] documented")..];
        for key in toml::Table::try_from(BacktestConfig::default())
            .unwrap()
            .keys()
        {
            assert!(
                section.contains(&format!("\n{key} =")) || section.contains(&format!("# {key} =")),
                "backtest.{key} undocumented"
            );
        }
    }
}
