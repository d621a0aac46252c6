//! Outcome statistics of past signals like the one being explained, from the labelled outcomes
//! `optionflow calibrate --outcomes FILE` writes (one JSON object a line: a signal, a horizon,
//! the underlying's forward return and whether it was a hit). The runtime reads the file
//! (`[explain] outcomes-file`); this module only parses text, so the stage stays free of I/O.
//!
//! "Like it" means the same direction and the same 10-point composite bucket (90–100 holds
//! 100), narrowed to the same underlying when at least [`MIN_SAME_UNDERLYING`] of those exist.
//! Only signals strictly earlier in event time count, so a replay of the session the file was
//! labelled from never sees a signal's own future. Statistics use the first horizon in the file.

use crate::score::stats::median;
use optionflow_schemas::{direction, Signal};
use serde::{Deserialize, Serialize};

/// Past signals of the same underlying needed before the statistics narrow to it.
pub const MIN_SAME_UNDERLYING: usize = 5;

/// The forward outcome of one signal over one horizon: what `optionflow calibrate` labels and
/// writes, and what explain reads back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The signal.
    pub signal_id: String,
    /// Its underlying.
    pub underlying: String,
    /// Its direction.
    pub direction: String,
    /// Its composite score.
    pub composite: f64,
    /// Its event time, µs.
    pub event_time: i64,
    /// Horizon, seconds of event time.
    pub horizon_secs: i64,
    /// Spot at the signal.
    #[serde(default)]
    pub spot: Option<f64>,
    /// Spot at the horizon; `None` when the tape ends first.
    #[serde(default)]
    pub forward_spot: Option<f64>,
    /// Forward return of the underlying (`None`: the tape ended first).
    pub underlying_return: Option<f64>,
    /// Whether the move agreed with the direction by more than the threshold.
    pub hit: Option<bool>,
    /// The suggested trade the option labels are for (`long call`, `long put`, `long
    /// straddle`), `None` when the signal carried no fitting contract.
    #[serde(default)]
    pub structure: Option<String>,
    /// Dollar P&L of that trade bought at the ask at the signal and sold at the bid at the
    /// horizon (one contract per leg); `None` without a quote of every leg by then.
    #[serde(default)]
    pub option_pnl: Option<f64>,
    /// `option_pnl` over the premium paid.
    #[serde(default)]
    pub option_return: Option<f64>,
    /// Change of the first leg's implied volatility from the signal to the horizon (raw: 0.05
    /// is 5 vol points), from its mid at the horizon.
    #[serde(default)]
    pub iv_change: Option<f64>,
}

/// Whether a forward return `ret` is a hit for direction `dir` at `threshold` (bullish: up,
/// bearish: down, volatility: either way, each by more than the threshold). The one rule for
/// `calibrate`'s labels, the live hit-rate metrics and the outcome statistics.
pub fn is_hit(dir: &str, ret: f64, threshold: f64) -> bool {
    match dir {
        direction::BULLISH => ret > threshold,
        direction::BEARISH => ret < -threshold,
        _ => ret.abs() > threshold,
    }
}

/// The labelled outcomes at the file's first horizon.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutcomeHistory {
    /// The horizon the rows are at (`None`: no outcomes).
    pub horizon_secs: Option<i64>,
    /// Labelled rows (hit and return known) at that horizon, in file order.
    pub rows: Vec<Outcome>,
}

/// What past signals like one did.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeStats {
    /// How many.
    pub count: usize,
    /// How many were hits.
    pub hits: usize,
    /// Median forward return of the underlying, in %.
    pub median_move_pct: f64,
    /// The underlying when narrowed to it, `None` for every underlying.
    pub underlying: Option<String>,
    /// Lower end of the composite bucket.
    pub bucket: u32,
    /// The horizon, seconds.
    pub horizon_secs: i64,
}

/// The 10-point bucket of a composite (0, 10, …, 90; 100 belongs to 90).
pub fn bucket(composite: f64) -> u32 {
    ((composite.clamp(0.0, 100.0) / 10.0).floor() as u32).min(9) * 10
}

impl OutcomeHistory {
    /// Parses JSON lines (blank lines skipped); an error names the line.
    pub fn from_jsonl(text: &str) -> Result<OutcomeHistory, String> {
        let mut all = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let row: Outcome = serde_json::from_str(line).map_err(|e| {
                format!(
                    "line {}: {e} (expected the JSON lines `optionflow calibrate --outcomes` writes)",
                    i + 1
                )
            })?;
            all.push(row);
        }
        let horizon_secs = all.first().map(|r| r.horizon_secs);
        let rows = all
            .into_iter()
            .filter(|r| Some(r.horizon_secs) == horizon_secs)
            .filter(|r| r.hit.is_some() && r.underlying_return.is_some_and(f64::is_finite))
            .collect();
        Ok(OutcomeHistory { horizon_secs, rows })
    }

    /// Statistics of earlier signals like `sig`; `None` when there are none.
    pub fn like(&self, sig: &Signal) -> Option<OutcomeStats> {
        let b = bucket(sig.composite);
        let similar: Vec<&Outcome> = self
            .rows
            .iter()
            .filter(|r| {
                r.direction == sig.direction
                    && bucket(r.composite) == b
                    && r.event_time < sig.event_time
                    && r.signal_id != sig.event_id.as_str()
            })
            .collect();
        let same: Vec<&Outcome> = similar
            .iter()
            .copied()
            .filter(|r| r.underlying == sig.underlying)
            .collect();
        let (rows, underlying) = if same.len() >= MIN_SAME_UNDERLYING {
            (same, Some(sig.underlying.clone()))
        } else {
            (similar, None)
        };
        let mut moves: Vec<f64> = rows
            .iter()
            .filter_map(|r| r.underlying_return)
            .map(|r| r * 100.0)
            .collect();
        let median_move_pct = median(&mut moves)?;
        Some(OutcomeStats {
            count: rows.len(),
            hits: rows.iter().filter(|r| r.hit == Some(true)).count(),
            median_move_pct,
            underlying,
            bucket: b,
            horizon_secs: self.horizon_secs.unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, u: &str, dir: &str, c: f64, t: i64, h: i64, ret: f64) -> String {
        format!(
            r#"{{"signal_id":"{id}","underlying":"{u}","direction":"{dir}","composite":{c},"event_time":{t},"horizon_secs":{h},"spot":10.0,"forward_spot":10.1,"underlying_return":{ret},"hit":{}}}"#,
            ret > 0.005
        )
    }

    fn sig(u: &str, dir: &str, c: f64, t: i64) -> Signal {
        Signal {
            event_id: "now".into(),
            event_time: t,
            underlying: u.into(),
            window_end: t,
            sector: "x".into(),
            direction: dir.into(),
            composite: c,
            agreeing: 2,
            spot: 10.0,
            factors: vec![],
            probability: 0.5,
            calibrated: false,
            contracts: vec![],
            marks: Default::default(),
        }
    }

    #[test]
    fn buckets_are_ten_points_and_100_joins_90() {
        assert_eq!(
            [0.0, 9.99, 75.0, 90.0, 100.0].map(bucket),
            [0, 0, 70, 90, 90]
        );
    }

    #[test]
    fn like_counts_earlier_signals_of_the_bucket_and_narrows_to_the_underlying() {
        let mut text = String::new();
        for i in 0..4 {
            // Bullish 90s on other names, each with a 1800 s and a 3600 s row.
            text += &line(
                &format!("o{i}"),
                "AMC",
                "bullish",
                91.0,
                i,
                1800,
                0.01 * i as f64,
            );
            text += "\n";
            text += &line(&format!("o{i}"), "AMC", "bullish", 91.0, i, 3600, -0.5);
            text += "\n";
        }
        text += &line("b", "AMC", "bearish", 91.0, 1, 1800, 0.02);
        text += "\n";
        text += &line("late", "AMC", "bullish", 91.0, 100, 1800, 0.02);
        text += "\n";
        let h = OutcomeHistory::from_jsonl(&text).unwrap();
        assert_eq!(h.horizon_secs, Some(1800));
        let s = h.like(&sig("GME", "bullish", 95.0, 50)).unwrap();
        // The later signal, the bearish one and the 3600 s rows are left out.
        assert_eq!((s.count, s.hits, s.underlying.as_deref()), (4, 3, None));
        assert!(
            (s.median_move_pct - 1.5).abs() < 1e-9,
            "{}",
            s.median_move_pct
        );
        assert!(h.like(&sig("GME", "bullish", 75.0, 50)).is_none());
        // Five of GME's own: narrowed to GME.
        for i in 0..5 {
            text += &line(&format!("g{i}"), "GME", "bullish", 99.0, i, 1800, -0.01);
            text += "\n";
        }
        let h = OutcomeHistory::from_jsonl(&text).unwrap();
        let s = h.like(&sig("GME", "bullish", 95.0, 50)).unwrap();
        assert_eq!(
            (s.count, s.hits, s.underlying.as_deref()),
            (5, 0, Some("GME"))
        );
    }

    #[test]
    fn a_corrupt_line_is_named() {
        let err = OutcomeHistory::from_jsonl("\n{\"signal_id\": 3}\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert_eq!(
            OutcomeHistory::from_jsonl("").unwrap(),
            OutcomeHistory::default()
        );
    }
}
