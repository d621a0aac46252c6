//! The `[simulator]` configuration section and its validation.

use super::calendar;
use super::universe::UNIVERSE;
use crate::duration::parse_market_duration;
use serde::{Deserialize, Serialize};

/// The `[simulator]` config section.
///
/// Sessions run 09:30–16:00 America/New_York, Monday to Friday. There is no holiday calendar:
/// every weekday is a session, which keeps the simulated market's clock a pure function of the
/// start date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct SimulatorConfig {
    /// First session date, `YYYY-MM-DD`. A Saturday or Sunday starts on the following Monday.
    pub start_date: String,
    /// Simulated milliseconds between two chain snapshots (ticks).
    pub tick_interval_ms: u64,
    /// Chance that a given contract requotes on a tick in a calm market, in (0, 1].
    pub quote_probability: f64,
    /// Listed expiries: the nearest Friday weeklies (about half of them), then third-Friday
    /// monthlies beyond the last weekly.
    pub expiries: usize,
    /// Strikes per expiry, centred on the session's opening spot: the inner ones at the usual
    /// increment for the price (0.5 below $5, 1 below $50, 2.5 below $200, 5 above), the outer
    /// ones spaced wider so the chain covers the name's likely range.
    pub strikes_per_expiry: usize,
    /// Share of quotes deliberately corrupted (crossed, NaN bid, empty market, negative ask,
    /// unparsable symbol) so the rejection path downstream is exercised, in [0, 0.5].
    pub bad_quote_rate: f64,
    /// Scheduled regime events (what the factor scorers are meant to find).
    pub events: Vec<RegimeEventConfig>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            start_date: "2024-01-02".to_string(),
            tick_interval_ms: 1000,
            quote_probability: 0.1,
            expiries: 5,
            strikes_per_expiry: 25,
            bad_quote_rate: 0.0005,
            events: vec![
                RegimeEventConfig {
                    kind: RegimeKind::Squeeze,
                    underlying: "GME".to_string(),
                    start_after: "10m".to_string(),
                    duration: "15m".to_string(),
                },
                RegimeEventConfig {
                    kind: RegimeKind::Crash,
                    underlying: "SPY".to_string(),
                    start_after: "40m".to_string(),
                    duration: "15m".to_string(),
                },
            ],
        }
    }
}

/// One scheduled regime event, in `[[simulator.events]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RegimeEventConfig {
    /// What happens: `squeeze` or `crash`.
    pub kind: RegimeKind,
    /// Symbol from the built-in universe (ignored when the session does not include it).
    pub underlying: String,
    /// Market time from the first tick to the event's start, e.g. `10m` (`0m` = at the open).
    /// Nights and weekends do not count: `1d` is the next session's open.
    pub start_after: String,
    /// Market time the event lasts, e.g. `15m`.
    pub duration: String,
}

/// The kinds of regime event the simulator can stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegimeKind {
    /// A short squeeze / call frenzy: spot trends up hard (+35–55%) with momentum, realized vol
    /// rises, short-dated out-of-the-money call volume surges, call-wing IVs jump, and call open
    /// interest grows at the next session.
    Squeeze,
    /// A crash: spot gaps down 7–10%, then falls a further 3–6% with high realized vol; put
    /// volume surges, the IV level jumps and the put skew steepens.
    Crash,
}

impl std::fmt::Display for RegimeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RegimeKind::Squeeze => "squeeze",
            RegimeKind::Crash => "crash",
        })
    }
}

/// The longest tick interval: one hour of market time.
pub(super) const MAX_TICK_INTERVAL_MS: u64 = 3_600_000;
/// Most expiries a chain may list.
pub(super) const MAX_EXPIRIES: usize = 24;
/// Most strikes an expiry may list.
pub(super) const MAX_STRIKES: usize = 200;

impl SimulatorConfig {
    /// Reports every problem at once, each naming its key, e.g.
    /// `simulator.quote-probability: must be in (0, 1], got 1.5`.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, key: &str, message: String| {
            if !ok {
                problems.push(format!("simulator.{key}: {message}"));
            }
        };
        if let Err(e) = calendar::parse_date(&self.start_date) {
            check(false, "start-date", e);
        }
        check(
            (1..=MAX_TICK_INTERVAL_MS).contains(&self.tick_interval_ms),
            "tick-interval-ms",
            format!(
                "must be between 1 and {MAX_TICK_INTERVAL_MS}, got {}",
                self.tick_interval_ms
            ),
        );
        check(
            self.quote_probability > 0.0 && self.quote_probability <= 1.0,
            "quote-probability",
            format!("must be in (0, 1], got {}", self.quote_probability),
        );
        check(
            (1..=MAX_EXPIRIES).contains(&self.expiries),
            "expiries",
            format!(
                "must be between 1 and {MAX_EXPIRIES}, got {}",
                self.expiries
            ),
        );
        check(
            (1..=MAX_STRIKES).contains(&self.strikes_per_expiry),
            "strikes-per-expiry",
            format!(
                "must be between 1 and {MAX_STRIKES}, got {}",
                self.strikes_per_expiry
            ),
        );
        check(
            (0.0..=0.5).contains(&self.bad_quote_rate),
            "bad-quote-rate",
            format!("must be in [0, 0.5], got {}", self.bad_quote_rate),
        );
        for (i, ev) in self.events.iter().enumerate() {
            let key = |field: &str| format!("events[{i}].{field}");
            check(
                UNIVERSE.iter().any(|u| u.symbol == ev.underlying),
                &key("underlying"),
                format!(
                    "{:?} is not in the simulator's universe; use one of {}",
                    ev.underlying,
                    UNIVERSE
                        .iter()
                        .map(|u| u.symbol)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            if let Err(e) = parse_offset(&ev.start_after) {
                check(false, &key("start-after"), e);
            }
            if let Err(e) = parse_market_duration(&ev.duration) {
                check(false, &key("duration"), e);
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// Parses a market-time offset: a duration, or zero (`0m`), which is a fine offset but not a
/// duration.
pub(super) fn parse_offset(text: &str) -> Result<i64, String> {
    parse_market_duration(text).or_else(|e| {
        let t = text.trim();
        let split = t
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let zero = num.parse::<f64>().is_ok_and(|v| v == 0.0);
        if zero && parse_market_duration(&format!("1{unit}")).is_ok() {
            Ok(0)
        } else {
            Err(e)
        }
    })
}
