//! The `consensus` stage: the factor scores of one underlying and window become a [`Signal`]
//! when enough factors agree.
//!
//! Significance voting: a factor votes when its |z| reaches its threshold (`vote-threshold`, or
//! its own entry in `thresholds`), it points somewhere, and it survives a Benjamini-Hochberg
//! correction at level `fdr` across every factor of every underlying scored in the same window:
//! with 20 underlyings and several factors, dozens of tests run per window, and some |z| ≥ 2
//! would appear by chance alone. p-values are two-sided under a standard normal, an
//! approximation for factors whose histories have heavier tails (documented, conservative in
//! the count: every scored factor is a test).
//!
//! A factor agrees when it votes for the signal's direction (or for volatility, which fits
//! either). The composite is the weighted mean of the factor scores, where a factor that does
//! not agree counts as 50 (unremarkable): a signal needs both breadth and strength. Its
//! probability comes from the loaded [`Calibration`] (identity prior until one is fitted).
//!
//! Each signal also carries `marks`: the latest spot of every underlying scored in its window
//! or an earlier one. Windows close in order, so the marks are a function of the input alone;
//! the risk gate, which only sees explanations, marks its tracked positions with them.

use crate::calibration::Calibration;
use crate::config::{ConfigErrors, Problems};
use crate::operator::{decode_state, encode_state, Ctx, Emit, OpError, Operator};
use crate::score::stats::norm_cdf;
use optionflow_schemas::{direction, EventId, FactorScore, FactorVote, Signal};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const STAGE: &str = "consensus";

/// The `[consensus]` configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ConsensusConfig {
    /// Weight of each factor in the composite (factors not listed weigh 1.0).
    pub weights: BTreeMap<String, f64>,
    /// |z| a factor needs to vote.
    pub vote_threshold: f64,
    /// |z| thresholds for particular factors, overriding `vote-threshold`.
    pub thresholds: BTreeMap<String, f64>,
    /// Minimum number of agreeing factors for a signal.
    pub min_agreeing: usize,
    /// Minimum composite score (0-100) for a signal.
    pub min_composite: f64,
    /// False discovery rate of the Benjamini-Hochberg correction across all underlyings of a
    /// window, in (0, 1]; 1 turns the correction off.
    pub fdr: f64,
    /// JSON calibration file mapping composite → probability (see `calibration`); the runtime
    /// loads it. Unset: the identity prior `composite / 100`.
    pub calibration_file: Option<String>,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        Self {
            weights: BTreeMap::new(),
            vote_threshold: 2.0,
            thresholds: BTreeMap::new(),
            min_agreeing: 2,
            min_composite: 75.0,
            fdr: 0.05,
            calibration_file: None,
        }
    }
}

impl ConsensusConfig {
    /// Reports every problem at once.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut p = Problems::default();
        for (f, w) in &self.weights {
            p.check(
                w.is_finite() && *w >= 0.0,
                &format!("weights.{f}"),
                "must be a non-negative number",
            );
        }
        p.check(
            self.vote_threshold > 0.0,
            "vote-threshold",
            "must be positive",
        );
        for (f, t) in &self.thresholds {
            p.check(
                t.is_finite() && *t > 0.0,
                &format!("thresholds.{f}"),
                "must be a positive number",
            );
        }
        p.check(
            self.fdr > 0.0 && self.fdr <= 1.0,
            "fdr",
            "must be in (0, 1] (1 turns the correction off)",
        );
        p.check(self.min_agreeing >= 1, "min-agreeing", "must be at least 1");
        p.check(
            (0.0..=100.0).contains(&self.min_composite),
            "min-composite",
            "must be between 0 and 100",
        );
        p.finish()
    }

    /// Builds the operator.
    pub fn build(&self) -> Result<Consensus, ConfigErrors> {
        self.validate()?;
        Ok(Consensus {
            cfg: self.clone(),
            calibration: Calibration::Identity,
            pending: BTreeMap::new(),
            marks: BTreeMap::new(),
        })
    }

    fn weight(&self, factor: &str) -> f64 {
        self.weights.get(factor).copied().unwrap_or(1.0)
    }

    fn threshold(&self, factor: &str) -> f64 {
        self.thresholds
            .get(factor)
            .copied()
            .unwrap_or(self.vote_threshold)
    }
}

/// Two-sided p-value of a standard score.
pub fn p_value(z: f64) -> f64 {
    if z.is_finite() {
        (2.0 * norm_cdf(-z.abs())).min(1.0)
    } else {
        1.0
    }
}

/// Benjamini-Hochberg: which of `p_values` are discoveries at false discovery rate `q`.
/// The largest k with p₍ₖ₎ ≤ k·q/m sets the cut; every p at or below p₍ₖ₎ is in. Ties are
/// decided by value alone, so the answer does not depend on the order of the input.
pub fn benjamini_hochberg(p_values: &[f64], q: f64) -> Vec<bool> {
    let m = p_values.len();
    let mut sorted: Vec<f64> = p_values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let cut = (1..=m)
        .rev()
        .find(|&k| sorted[k - 1] <= k as f64 * q / m as f64)
        .map(|k| sorted[k - 1]);
    p_values
        .iter()
        .map(|p| cut.is_some_and(|c| *p <= c))
        .collect()
}

/// The consensus operator.
#[derive(Debug)]
pub struct Consensus {
    cfg: ConsensusConfig,
    calibration: Calibration,
    /// Factor scores waiting for their window to close, by (window end, underlying).
    pending: BTreeMap<(i64, String), Vec<FactorScore>>,
    /// Latest spot of every underlying of every closed window.
    marks: BTreeMap<String, f64>,
}

impl Consensus {
    /// Uses `calibration` for signal probabilities (the runtime loads it from
    /// `calibration-file`).
    pub fn with_calibration(mut self, calibration: Calibration) -> Consensus {
        self.calibration = calibration;
        self
    }

    /// Decides one underlying's window; `significant[i]` says whether `scores[i]` survived the
    /// window's false-discovery correction.
    fn decide(
        &self,
        underlying: &str,
        window_end: i64,
        scores: &[FactorScore],
        significant: &[bool],
    ) -> Option<Signal> {
        let votes_at = |i: usize| {
            let s = &scores[i];
            significant[i]
                && s.zscore.abs() >= self.cfg.threshold(&s.factor)
                && s.direction != direction::NEUTRAL
        };
        let (mut bull, mut bear) = (0, 0);
        for s in (0..scores.len())
            .filter(|&i| votes_at(i))
            .map(|i| &scores[i])
        {
            match s.direction.as_str() {
                direction::BULLISH => bull += 1,
                direction::BEARISH => bear += 1,
                _ => {}
            }
        }
        let dir = match bull.cmp(&bear) {
            std::cmp::Ordering::Greater => direction::BULLISH,
            std::cmp::Ordering::Less => direction::BEARISH,
            std::cmp::Ordering::Equal => direction::VOLATILITY,
        };
        let agrees = |i: usize| {
            votes_at(i)
                && (scores[i].direction == dir || scores[i].direction == direction::VOLATILITY)
        };
        let (mut num, mut den, mut agreeing) = (0.0, 0.0, 0usize);
        let factors: Vec<FactorVote> = scores
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let w = self.cfg.weight(&s.factor);
                let a = agrees(i);
                agreeing += usize::from(a);
                num += w * if a { s.score } else { 50.0 };
                den += w;
                FactorVote {
                    factor: s.factor.clone(),
                    score: s.score,
                    zscore: s.zscore,
                    raw_value: s.raw_value,
                    direction: s.direction.clone(),
                    voted: a,
                    detail: s.detail.clone(),
                    p_value: p_value(s.zscore),
                    metadata: s.metadata.clone(),
                }
            })
            .collect();
        // Rounded once, here: the probability is a function of the composite the signal shows.
        let composite = if den > 0.0 {
            (num / den * 100.0).round() / 100.0
        } else {
            0.0
        };
        if agreeing < self.cfg.min_agreeing || composite < self.cfg.min_composite {
            return None;
        }
        let first = &scores[0];
        let mut id = EventId::new("signal").part(underlying).part_i64(window_end);
        for s in scores {
            id = id.part(&s.event_id);
        }
        Some(Signal {
            event_id: id.finish(),
            event_time: window_end,
            underlying: underlying.to_string(),
            window_end,
            sector: first
                .sector
                .clone()
                .unwrap_or_else(|| "Unknown".to_string()),
            direction: dir.to_string(),
            composite,
            agreeing: agreeing as i32,
            spot: first.spot,
            factors,
            probability: self.calibration.probability(composite),
            calibrated: self.calibration.is_fitted(),
            marks: self.marks.clone(),
            // The chain candidates ride on one factor of the window (score::chain::CARRIER).
            contracts: scores
                .iter()
                .find(|s| !s.contracts.is_empty())
                .map(|s| s.contracts.clone())
                .unwrap_or_default(),
        })
    }
}

impl Operator for Consensus {
    type In = FactorScore;
    type Out = Signal;

    fn name(&self) -> &'static str {
        STAGE
    }

    fn on_event(
        &mut self,
        ev: &FactorScore,
        _ctx: &Ctx,
        _out: &mut Emit<Signal>,
    ) -> Result<(), OpError> {
        self.pending
            .entry((ev.window_end, ev.underlying.clone()))
            .or_default()
            .push(ev.clone());
        Ok(())
    }

    fn on_watermark(
        &mut self,
        event_time: i64,
        _ctx: &Ctx,
        out: &mut Emit<Signal>,
    ) -> Result<(), OpError> {
        // Windows close whole: the correction needs every underlying scored in the window.
        while let Some(end) = self.pending.first_key_value().map(|(k, _)| k.0) {
            if end - 1 > event_time {
                break;
            }
            let mut window: Vec<(String, Vec<FactorScore>)> = Vec::new();
            while let Some(entry) = self.pending.first_entry() {
                if entry.key().0 != end {
                    break;
                }
                let ((_, underlying), mut scores) = entry.remove_entry();
                // Factor order inside a window must not depend on arrival order.
                scores.sort_by(|a, b| a.factor.cmp(&b.factor));
                // The same spot the signal shows (`spot` of its first factor).
                if let Some(spot) = scores.first().map(|s| s.spot) {
                    if spot.is_finite() && spot > 0.0 {
                        self.marks.insert(underlying.clone(), spot);
                    }
                }
                window.push((underlying, scores));
            }
            let p: Vec<f64> = window
                .iter()
                .flat_map(|(_, scores)| scores.iter().map(|s| p_value(s.zscore)))
                .collect();
            let significant = benjamini_hochberg(&p, self.cfg.fdr);
            let mut offset = 0;
            for (underlying, scores) in &window {
                let flags = &significant[offset..offset + scores.len()];
                offset += scores.len();
                if let Some(sig) = self.decide(underlying, end, scores, flags) {
                    out.emit(sig);
                }
            }
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>, OpError> {
        encode_state(STAGE, &(&self.pending, &self.marks))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), OpError> {
        (self.pending, self.marks) = decode_state(STAGE, state)?;
        Ok(())
    }
}
