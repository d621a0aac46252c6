//! The scenario file: which bars, which dates, how the chain is synthesised.

use super::ScenarioError;
use serde::{Deserialize, Serialize};

/// A scenario tape's recipe (`replay/scenarios/*.toml`). Paths are relative to the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Short name, written into the tape's metadata.
    pub name: String,
    /// One line on what the tape reproduces.
    pub description: String,
    /// First session on the tape, `YYYY-MM-DD`. Bars before it only seed the volatility and
    /// volume baselines.
    pub from: String,
    /// Last session on the tape, `YYYY-MM-DD` (inclusive).
    pub to: String,
    /// Seed of the chain synthesis (intraday path, open interest, trade sizes).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Minutes between two underlying ticks (a divisor of 390).
    #[serde(default = "default_tick_minutes")]
    pub tick_minutes: u32,
    /// Minutes after 09:30 at which the whole chain is quoted, ascending, each a multiple of
    /// `tick-minutes` and inside the session.
    #[serde(default = "default_chain_minutes")]
    pub chain_minutes: Vec<u32>,
    /// Listed expiries per session (the simulator's weeklies-then-monthlies rule).
    #[serde(default = "default_expiries")]
    pub expiries: usize,
    /// Strikes per expiry, centred on the session's open.
    #[serde(default = "default_strikes")]
    pub strikes_per_expiry: usize,
    /// Only strikes within this absolute log-moneyness |ln(K/S)| of spot are quoted (the
    /// rest of the chain still trades and accrues volume): the far wings a high-vol listing
    /// reaches carry no factor's reading and would be most of the tape.
    #[serde(default = "default_quote_band")]
    pub quote_band: f64,
    /// The underlyings, in emission order.
    pub underlyings: Vec<UnderlyingScenario>,
}

/// One underlying of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct UnderlyingScenario {
    /// Ticker; also picks the simulator's smile, activity and sector for it (must be in the
    /// simulator's universe).
    pub symbol: String,
    /// Daily bars, Yahoo layout (`Date,Open,High,Low,Close[,Adj Close],Volume`).
    pub bars: String,
    /// Multiplies the file's prices to the prints of the day (e.g. 4 for GME's split-adjusted
    /// bars).
    #[serde(default = "one")]
    pub price_factor: f64,
    /// Divides the file's volumes to the prints of the day.
    #[serde(default = "one")]
    pub volume_divisor: f64,
    /// Where the ATM implied-vol level comes from.
    pub iv: IvSource,
    /// A volatility index's daily bars (Yahoo layout, in vol points) for `iv = "index"`.
    #[serde(default)]
    pub iv_index: Option<String>,
    /// Which of the simulator's regimes the day's data can switch on.
    pub regime: RegimeDriver,
}

/// The source of an underlying's ATM implied-vol level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IvSource {
    /// RiskMetrics EWMA (λ 0.94) of the bars' squared close-to-close log returns, updated
    /// intraday with the return since the previous close: a realised-vol proxy, not a quote.
    Realized,
    /// A 30-day implied-vol index (the VIX for SPY), interpolated intraday along its own
    /// open/high/low/close, mirrored to the underlying's path.
    Index,
}

/// The regime the day's data drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegimeDriver {
    /// Call squeeze, from relative volume on an up move.
    Squeeze,
    /// Crash, from the vol index above its trailing median.
    Crash,
    /// Neither.
    None,
}

fn default_seed() -> u64 {
    1
}
fn default_tick_minutes() -> u32 {
    5
}
fn default_chain_minutes() -> Vec<u32> {
    vec![55, 110, 165, 220, 275, 330, 385]
}
fn default_expiries() -> usize {
    5
}
fn default_strikes() -> usize {
    11
}
fn default_quote_band() -> f64 {
    0.4
}
fn one() -> f64 {
    1.0
}

impl ScenarioSpec {
    /// Parses a scenario file's text, reporting every problem at once.
    pub fn parse(text: &str) -> Result<Self, ScenarioError> {
        let spec: ScenarioSpec =
            toml::from_str(text).map_err(|e| ScenarioError::Spec(vec![e.to_string()]))?;
        spec.validate().map_err(ScenarioError::Spec)?;
        Ok(spec)
    }

    /// Every problem, each naming its key.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut p = Vec::new();
        for (key, v) in [("from", &self.from), ("to", &self.to)] {
            if chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_err() {
                p.push(format!("{key}: {v:?} is not a date; write YYYY-MM-DD"));
            }
        }
        if self.from > self.to {
            p.push(format!("from ({}) is after to ({})", self.from, self.to));
        }
        if self.tick_minutes == 0 || 390 % self.tick_minutes != 0 {
            p.push(format!(
                "tick-minutes: must divide the 390-minute session, got {}",
                self.tick_minutes
            ));
        }
        let tick = self.tick_minutes.max(1);
        if self.chain_minutes.is_empty()
            || self.chain_minutes.windows(2).any(|w| w[0] >= w[1])
            || self
                .chain_minutes
                .iter()
                .any(|m| *m == 0 || *m >= 390 || m % tick != 0)
        {
            p.push(format!(
                "chain-minutes: must be ascending minutes after 09:30 in (0, 390), multiples of \
                 tick-minutes, got {:?}",
                self.chain_minutes
            ));
        }
        if !(1..=super::super::config::MAX_EXPIRIES).contains(&self.expiries) {
            p.push(format!("expiries: must be 1 to 24, got {}", self.expiries));
        }
        if !(3..=super::super::config::MAX_STRIKES).contains(&self.strikes_per_expiry) {
            p.push(format!(
                "strikes-per-expiry: must be 3 to 200, got {}",
                self.strikes_per_expiry
            ));
        }
        if !(self.quote_band.is_finite() && self.quote_band > 0.0) {
            p.push(format!(
                "quote-band: must be a positive log-moneyness, got {}",
                self.quote_band
            ));
        }
        if self.underlyings.is_empty() {
            p.push("underlyings: name at least one".to_string());
        }
        for (i, u) in self.underlyings.iter().enumerate() {
            let key = format!("underlyings[{i}]");
            if !super::super::UNIVERSE.iter().any(|s| s.symbol == u.symbol) {
                p.push(format!(
                    "{key}.symbol: {:?} is not in the simulator's universe",
                    u.symbol
                ));
            }
            for (name, v) in [
                ("price-factor", u.price_factor),
                ("volume-divisor", u.volume_divisor),
            ] {
                if !(v.is_finite() && v > 0.0) {
                    p.push(format!("{key}.{name}: must be a positive number, got {v}"));
                }
            }
            if (u.iv == IvSource::Index) != u.iv_index.is_some() {
                p.push(format!(
                    "{key}.iv-index: give it exactly when iv = \"index\""
                ));
            }
            if u.regime == RegimeDriver::Crash && u.iv != IvSource::Index {
                p.push(format!(
                    "{key}.regime: \"crash\" is driven by the vol index; set iv = \"index\""
                ));
            }
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        name = "t"
        description = "test"
        from = "2021-01-04"
        to = "2021-01-29"
        [[underlyings]]
        symbol = "SPY"
        bars = "SPY.csv"
        iv = "index"
        iv-index = "VIX.csv"
        regime = "crash"
    "#;

    #[test]
    fn a_good_file_parses_with_defaults_and_a_bad_one_names_every_problem() {
        let spec = ScenarioSpec::parse(GOOD).unwrap();
        assert_eq!(spec.chain_minutes, default_chain_minutes());
        assert_eq!(spec.underlyings[0].price_factor, 1.0);
        let bad = GOOD
            .replace("2021-01-29", "2020-12-01")
            .replace("\"SPY\"", "\"XXX\"")
            .replace("iv = \"index\"", "iv = \"realized\"");
        let Err(ScenarioError::Spec(problems)) = ScenarioSpec::parse(&bad) else {
            panic!("must fail");
        };
        let all = problems.join("\n");
        for key in ["from", "underlyings[0].symbol", "iv-index", "regime"] {
            assert!(all.contains(key), "{key} missing from {all}");
        }
        assert!(matches!(
            ScenarioSpec::parse(&format!("{GOOD}\ntypo = 1")),
            Err(ScenarioError::Spec(_))
        ));
    }
}
