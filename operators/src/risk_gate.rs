//! The `risk-gate` stage: every explained signal gets a [`RiskDecision`] naming the rule that
//! decided it. Rules, in order: one open signal per underlying and direction, a cap on open
//! signals, a cap per sector. A signal stays open for `hold-secs` of event time.

use crate::config::{ConfigErrors, Problems};
use crate::operator::{decode_state, encode_state, Ctx, Emit, OpError, Operator};
use crate::ordering::WatermarkBuffer;
use optionflow_schemas::{time::MICROS_PER_SECOND, EventId, Explanation, RiskDecision};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const STAGE: &str = "risk-gate";

/// The `[risk-gate]` configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RiskGateConfig {
    /// Maximum signals open at once across the portfolio.
    pub max_open_signals: usize,
    /// Maximum signals open at once in one sector.
    pub max_per_sector: usize,
    /// How long an approved signal stays open, in seconds of event time.
    pub hold_secs: u64,
}

impl Default for RiskGateConfig {
    fn default() -> Self {
        Self {
            max_open_signals: 10,
            max_per_sector: 3,
            hold_secs: 30 * 60,
        }
    }
}

impl RiskGateConfig {
    /// Reports every problem at once.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut p = Problems::default();
        p.check(
            self.max_open_signals >= 1,
            "max-open-signals",
            "must be at least 1",
        );
        p.check(
            self.max_per_sector >= 1,
            "max-per-sector",
            "must be at least 1",
        );
        p.check(
            self.hold_secs >= 1,
            "hold-secs",
            "must be at least 1 second",
        );
        p.finish()
    }

    /// Builds the operator.
    pub fn build(&self) -> Result<RiskGate, ConfigErrors> {
        self.validate()?;
        Ok(RiskGate {
            cfg: self.clone(),
            state: State::default(),
        })
    }
}

/// An approved signal still inside its holding period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OpenSignal {
    underlying: String,
    sector: String,
    direction: String,
    closes_at: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    open: BTreeMap<String, OpenSignal>,
    pending: WatermarkBuffer<Explanation>,
}

/// The risk-gate operator.
#[derive(Debug)]
pub struct RiskGate {
    cfg: RiskGateConfig,
    state: State,
}

impl RiskGate {
    fn decide(&mut self, ex: &Explanation) -> RiskDecision {
        let now = ex.event_time;
        self.state.open.retain(|_, s| s.closes_at > now);
        let open = &self.state.open;
        let in_sector = open.values().filter(|s| s.sector == ex.sector).count();
        let (rule, reason) = if open.contains_key(&ex.signal_id) {
            (
                "duplicate_signal",
                "this signal was already decided".to_string(),
            )
        } else if open
            .values()
            .any(|s| s.underlying == ex.underlying && s.direction == ex.direction)
        {
            (
                "already_open",
                format!(
                    "a {} signal on {} is still open",
                    ex.direction, ex.underlying
                ),
            )
        } else if open.len() >= self.cfg.max_open_signals {
            (
                "max_open_signals",
                format!(
                    "{} signals open, limit {}",
                    open.len(),
                    self.cfg.max_open_signals
                ),
            )
        } else if in_sector >= self.cfg.max_per_sector {
            (
                "sector_cap",
                format!(
                    "{in_sector} signals open in {}, limit {}",
                    ex.sector, self.cfg.max_per_sector
                ),
            )
        } else {
            ("approved", "within every limit".to_string())
        };
        let approved = rule == "approved";
        if approved {
            self.state.open.insert(
                ex.signal_id.clone(),
                OpenSignal {
                    underlying: ex.underlying.clone(),
                    sector: ex.sector.clone(),
                    direction: ex.direction.clone(),
                    closes_at: now + self.cfg.hold_secs as i64 * MICROS_PER_SECOND,
                },
            );
        }
        RiskDecision {
            event_id: EventId::new("decision").part(&ex.event_id).finish(),
            event_time: ex.event_time,
            underlying: ex.underlying.clone(),
            signal_id: ex.signal_id.clone(),
            explanation_id: ex.event_id.clone(),
            sector: ex.sector.clone(),
            direction: ex.direction.clone(),
            composite: ex.composite,
            approved,
            rule: rule.to_string(),
            reason,
            open_signals: self.state.open.len() as i32,
            headline: ex.headline.clone(),
            text: ex.text.clone(),
            markdown: ex.markdown.clone(),
        }
    }
}

impl Operator for RiskGate {
    type In = Explanation;
    type Out = RiskDecision;

    fn name(&self) -> &'static str {
        STAGE
    }

    fn on_event(
        &mut self,
        ev: &Explanation,
        _ctx: &Ctx,
        _out: &mut Emit<RiskDecision>,
    ) -> Result<(), OpError> {
        self.state
            .pending
            .push(ev.event_time, &ev.event_id, ev.clone());
        Ok(())
    }

    fn on_watermark(
        &mut self,
        event_time: i64,
        _ctx: &Ctx,
        out: &mut Emit<RiskDecision>,
    ) -> Result<(), OpError> {
        for ex in self.state.pending.release(event_time) {
            let d = self.decide(&ex);
            out.emit(d);
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>, OpError> {
        encode_state(STAGE, &self.state)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), OpError> {
        self.state = decode_state(STAGE, state)?;
        Ok(())
    }
}
