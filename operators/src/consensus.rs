//! The `consensus` stage: the factor scores of one underlying and window become a [`Signal`]
//! when enough factors agree.
//!
//! A factor votes when its |z| reaches `vote-threshold` and it points somewhere; a factor agrees
//! when it votes for the signal's direction (or for volatility, which fits either). The composite
//! is the weighted mean of the factor scores, where a factor that does not agree counts as 50
//! (unremarkable): a signal needs both breadth and strength.

use crate::config::{ConfigErrors, Problems};
use crate::operator::{decode_state, encode_state, Ctx, Emit, OpError, Operator};
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
    /// Minimum number of agreeing factors for a signal.
    pub min_agreeing: usize,
    /// Minimum composite score (0-100) for a signal.
    pub min_composite: f64,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        Self {
            weights: BTreeMap::new(),
            vote_threshold: 2.0,
            min_agreeing: 2,
            min_composite: 75.0,
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
            pending: BTreeMap::new(),
        })
    }

    fn weight(&self, factor: &str) -> f64 {
        self.weights.get(factor).copied().unwrap_or(1.0)
    }
}

/// The consensus operator.
#[derive(Debug)]
pub struct Consensus {
    cfg: ConsensusConfig,
    /// Factor scores waiting for their window to close, by (window end, underlying).
    pending: BTreeMap<(i64, String), Vec<FactorScore>>,
}

impl Consensus {
    fn decide(&self, underlying: &str, window_end: i64, scores: &[FactorScore]) -> Option<Signal> {
        let t = self.cfg.vote_threshold;
        let votes = |s: &FactorScore| s.zscore.abs() >= t && s.direction != direction::NEUTRAL;
        let (mut bull, mut bear) = (0, 0);
        for s in scores.iter().filter(|s| votes(s)) {
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
        let agrees = |s: &FactorScore| {
            votes(s) && (s.direction == dir || s.direction == direction::VOLATILITY)
        };
        let (mut num, mut den, mut agreeing) = (0.0, 0.0, 0usize);
        let factors: Vec<FactorVote> = scores
            .iter()
            .map(|s| {
                let w = self.cfg.weight(&s.factor);
                let a = agrees(s);
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
                }
            })
            .collect();
        let composite = if den > 0.0 { num / den } else { 0.0 };
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
            composite: (composite * 100.0).round() / 100.0,
            agreeing: agreeing as i32,
            spot: first.spot,
            factors,
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
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().0 - 1 > event_time {
                break;
            }
            let ((end, underlying), mut scores) = entry.remove_entry();
            // Factor order inside a window must not depend on arrival order.
            scores.sort_by(|a, b| a.factor.cmp(&b.factor));
            if let Some(sig) = self.decide(&underlying, end, &scores) {
                out.emit(sig);
            }
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>, OpError> {
        encode_state(STAGE, &self.pending)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), OpError> {
        self.pending = decode_state(STAGE, state)?;
        Ok(())
    }
}
