//! The `risk-gate` stage: every explained signal gets a [`RiskDecision`] naming the rule that
//! decided it. Inputs are decided in `(event_time, event_id)` order behind the watermark.
//!
//! Rules, first match decides:
//! 1. `duplicate_signal`: the signal was already decided and is still open.
//! 2. `blackout`: the signal falls in a window of the calendar file (see [`calendar`]).
//! 3. `drawdown_stop` / `drawdown_raise_bar`: the tracked book is `drawdown-limit` or more below
//!    its trailing peak; `stop` refuses every signal, `raise-bar` those whose composite is under
//!    `drawdown-min-composite`.
//! 4. `already_open`: a signal on the same underlying and direction is open.
//! 5. `underlying_cap`: `max-per-underlying` signals are open on the underlying.
//! 6. `underlying_exposure`: the underlying's composite-weighted exposure would pass
//!    `max-underlying-exposure`.
//! 7. `max_open_signals`, 8. `sector_cap`, otherwise `approved`.
//!
//! An approved signal stays open `hold-secs` of event time and is tracked as a position of one
//! unit of notional entered at the explanation's spot: bullish P&L is `spot/entry - 1`, bearish
//! `1 - spot/entry`, volatility `|spot/entry - 1| - volatility-expected-move`. Every decision
//! first realizes the positions whose hold ended (at their last mark: no look-ahead), then marks
//! the rest with the explanation's `marks` (the latest spot of every underlying the consensus
//! stage had seen). Equity is `drawdown-capital` plus realized and unrealized P&L; the drawdown
//! is its distance below the highest equity of the last `drawdown-window-secs`, as a fraction of
//! that peak. Once the losses age out of the window, or marks recover, the throttle lifts.

pub mod calendar;

use crate::config::{ConfigErrors, Problems};
use crate::operator::{decode_state, encode_state, Ctx, Emit, OpError, Operator};
use crate::ordering::WatermarkBuffer;
use calendar::{Blackout, Calendar};
use optionflow_schemas::{direction, time::MICROS_PER_SECOND, EventId, Explanation, RiskDecision};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

const STAGE: &str = "risk-gate";

/// What the drawdown throttle does once the drawdown reaches `drawdown-limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrawdownAction {
    /// Approve only signals whose composite reaches `drawdown-min-composite`.
    RaiseBar,
    /// Approve nothing until the drawdown is back under the limit.
    Stop,
}

/// The `[risk-gate]` configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RiskGateConfig {
    /// Maximum signals open at once across the portfolio.
    pub max_open_signals: usize,
    /// Maximum signals open at once in one sector.
    pub max_per_sector: usize,
    /// Maximum signals open at once on one underlying, across directions.
    pub max_per_underlying: usize,
    /// Maximum composite-weighted exposure on one underlying: the sum of `composite / 100` over
    /// its open signals, this one included (each signal is one unit of notional, scaled by its
    /// conviction).
    pub max_underlying_exposure: f64,
    /// How long an approved signal stays open, in seconds of event time.
    pub hold_secs: u64,
    /// Capital of the tracked book, in units of one signal's notional (each approved signal is
    /// one unit): equity = capital + realized + unrealized P&L.
    pub drawdown_capital: f64,
    /// Drawdown, as a fraction of peak equity, at which the throttle acts (in (0, 1]).
    pub drawdown_limit: f64,
    /// What the throttle does: `raise-bar` or `stop`.
    pub drawdown_action: DrawdownAction,
    /// The raised bar: the composite (0-100) a signal needs while the throttle acts.
    pub drawdown_min_composite: f64,
    /// The peak is the highest equity over this many trailing seconds of event time.
    pub drawdown_window_secs: u64,
    /// The move a volatility signal expects: its P&L is `|spot/entry - 1|` minus this.
    pub volatility_expected_move: f64,
    /// Blackout calendar (CSV, see [`calendar`]); the runtime reads it. Unset: no blackouts.
    pub calendar_file: Option<String>,
    /// Weekdays before an earnings date (given as a date) that are blacked out too.
    pub earnings_days_before: u32,
    /// Weekdays after an earnings date (given as a date) that are blacked out too.
    pub earnings_days_after: u32,
}

impl Default for RiskGateConfig {
    fn default() -> Self {
        Self {
            max_open_signals: 10,
            max_per_sector: 3,
            max_per_underlying: 3,
            max_underlying_exposure: 3.0,
            hold_secs: 30 * 60,
            drawdown_capital: 10.0,
            drawdown_limit: 0.05,
            drawdown_action: DrawdownAction::RaiseBar,
            drawdown_min_composite: 90.0,
            drawdown_window_secs: 24 * 60 * 60,
            volatility_expected_move: 0.01,
            calendar_file: None,
            earnings_days_before: 1,
            earnings_days_after: 0,
        }
    }
}

impl RiskGateConfig {
    /// Reports every problem at once. (The calendar file itself is read and checked by the
    /// runtime's configuration, which does the I/O.)
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
            self.max_per_underlying >= 1,
            "max-per-underlying",
            "must be at least 1",
        );
        p.check(
            self.max_underlying_exposure.is_finite() && self.max_underlying_exposure > 0.0,
            "max-underlying-exposure",
            "must be a positive number (1.0 = one full-conviction signal)",
        );
        p.check(
            self.hold_secs >= 1,
            "hold-secs",
            "must be at least 1 second",
        );
        p.check(
            self.drawdown_capital.is_finite() && self.drawdown_capital > 0.0,
            "drawdown-capital",
            "must be a positive number of signal notionals",
        );
        p.check(
            self.drawdown_limit > 0.0 && self.drawdown_limit <= 1.0,
            "drawdown-limit",
            "must be a fraction in (0, 1], e.g. 0.05 for 5%",
        );
        p.check(
            (0.0..=100.0).contains(&self.drawdown_min_composite),
            "drawdown-min-composite",
            "must be between 0 and 100",
        );
        p.check(
            self.drawdown_window_secs >= 1,
            "drawdown-window-secs",
            "must be at least 1 second",
        );
        p.check(
            (0.0..1.0).contains(&self.volatility_expected_move),
            "volatility-expected-move",
            "must be a fraction in [0, 1), e.g. 0.01 for 1%",
        );
        p.check(
            self.calendar_file
                .as_ref()
                .is_none_or(|f| !f.trim().is_empty()),
            "calendar-file",
            "is empty: name a CSV file or leave the key out",
        );
        for (key, days) in [
            ("earnings-days-before", self.earnings_days_before),
            ("earnings-days-after", self.earnings_days_after),
        ] {
            p.check(days <= 30, key, "must be at most 30 weekdays");
        }
        p.finish()
    }

    /// Builds the operator, with no blackouts until [`RiskGate::with_calendar`].
    pub fn build(&self) -> Result<RiskGate, ConfigErrors> {
        self.validate()?;
        Ok(RiskGate {
            cfg: self.clone(),
            blackouts: Vec::new(),
            state: State::default(),
        })
    }
}

/// An approved signal still inside its holding period: a tracked position of one unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OpenSignal {
    underlying: String,
    sector: String,
    direction: String,
    composite: f64,
    entry: f64,
    closes_at: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// Open signals by signal id.
    open: BTreeMap<String, OpenSignal>,
    pending: WatermarkBuffer<Explanation>,
    /// Latest spot of every underlying, from the explanations' marks.
    marks: BTreeMap<String, f64>,
    /// P&L of positions whose hold has ended, in units of notional.
    realized: f64,
    /// `(event time, equity)` samples that may still be the trailing peak: equity strictly
    /// decreasing from front to back, so the front is the peak of the window.
    peaks: VecDeque<(i64, f64)>,
}

/// The risk-gate operator.
#[derive(Debug)]
pub struct RiskGate {
    cfg: RiskGateConfig,
    blackouts: Vec<Blackout>,
    state: State,
}

/// P&L of one unit of notional entered at `entry`, marked at `spot`.
pub fn signal_pnl(direction: &str, entry: f64, spot: f64, expected_move: f64) -> f64 {
    if !(entry > 0.0 && spot > 0.0 && entry.is_finite() && spot.is_finite()) {
        return 0.0;
    }
    let r = spot / entry - 1.0;
    match direction {
        direction::BULLISH => r,
        direction::BEARISH => -r,
        direction::VOLATILITY => r.abs() - expected_move,
        _ => 0.0,
    }
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

impl RiskGate {
    /// Blacks out the windows of `calendar` (the runtime parses `calendar-file` into it).
    pub fn with_calendar(mut self, calendar: &Calendar) -> RiskGate {
        self.blackouts = calendar::resolve(
            calendar,
            self.cfg.earnings_days_before,
            self.cfg.earnings_days_after,
        );
        self
    }

    fn pnl(&self, s: &OpenSignal, spot: f64) -> f64 {
        signal_pnl(
            &s.direction,
            s.entry,
            spot,
            self.cfg.volatility_expected_move,
        )
    }

    /// P&L of `s` at its underlying's latest mark (its entry when none came since).
    fn marked_pnl(&self, s: &OpenSignal) -> f64 {
        let spot = self
            .state
            .marks
            .get(&s.underlying)
            .copied()
            .unwrap_or(s.entry);
        self.pnl(s, spot)
    }

    /// Realizes ended holds, takes `ex`'s marks, and returns (equity, peak, drawdown).
    fn mark(&mut self, ex: &Explanation) -> (f64, f64, f64) {
        let now = ex.event_time;
        let ended: Vec<String> = self
            .state
            .open
            .iter()
            .filter(|(_, s)| s.closes_at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ended {
            if let Some(s) = self.state.open.remove(&id) {
                self.state.realized += self.marked_pnl(&s);
            }
        }
        let fresh = ex.marks.iter().chain([(&ex.underlying, &ex.spot)]);
        for (u, spot) in fresh {
            if spot.is_finite() && *spot > 0.0 {
                self.state.marks.insert(u.clone(), *spot);
            }
        }
        let unrealized: f64 = self.state.open.values().map(|s| self.marked_pnl(s)).sum();
        let equity = self.cfg.drawdown_capital + self.state.realized + unrealized;
        let peaks = &mut self.state.peaks;
        while peaks.back().is_some_and(|&(_, e)| e <= equity) {
            peaks.pop_back();
        }
        peaks.push_back((now, equity));
        let window = self.cfg.drawdown_window_secs as i64 * MICROS_PER_SECOND;
        while peaks.front().is_some_and(|&(t, _)| t <= now - window) {
            peaks.pop_front();
        }
        let peak = peaks.front().map_or(equity, |&(_, e)| e);
        let drawdown = if peak > 0.0 {
            ((peak - equity) / peak).max(0.0)
        } else {
            0.0
        };
        (equity, peak, drawdown)
    }

    fn decide(&mut self, ex: &Explanation) -> RiskDecision {
        let now = ex.event_time;
        let (equity, peak, drawdown) = self.mark(ex);
        let cfg = &self.cfg;
        let open = &self.state.open;
        let throttled = drawdown >= cfg.drawdown_limit;
        let dd_text = format!(
            "drawdown {} of peak equity {peak:.4} (now {equity:.4}), limit {}",
            pct(drawdown),
            pct(cfg.drawdown_limit)
        );
        let on_underlying: Vec<&OpenSignal> = open
            .values()
            .filter(|s| s.underlying == ex.underlying)
            .collect();
        let exposure_open: f64 = on_underlying.iter().map(|s| s.composite / 100.0).sum();
        let exposure = exposure_open + ex.composite / 100.0;
        let in_sector = open.values().filter(|s| s.sector == ex.sector).count();
        let blackout = self
            .blackouts
            .iter()
            .find(|b| b.covers(now, &ex.underlying, &ex.sector));
        let (rule, reason) = if open.contains_key(ex.signal_id.as_str()) {
            (
                "duplicate_signal",
                "this signal was already decided".to_string(),
            )
        } else if let Some(b) = blackout {
            ("blackout", format!("blackout: {}", b.label))
        } else if throttled && cfg.drawdown_action == DrawdownAction::Stop {
            (
                "drawdown_stop",
                format!("{dd_text}: no new signals until it recovers"),
            )
        } else if throttled && ex.composite < cfg.drawdown_min_composite {
            (
                "drawdown_raise_bar",
                format!(
                    "{dd_text}: composite {:.2} is under the raised bar {:.2}",
                    ex.composite, cfg.drawdown_min_composite
                ),
            )
        } else if on_underlying.iter().any(|s| s.direction == ex.direction) {
            (
                "already_open",
                format!(
                    "a {} signal on {} is still open",
                    ex.direction, ex.underlying
                ),
            )
        } else if on_underlying.len() >= cfg.max_per_underlying {
            (
                "underlying_cap",
                format!(
                    "{} signals open on {}, limit {}",
                    on_underlying.len(),
                    ex.underlying,
                    cfg.max_per_underlying
                ),
            )
        } else if exposure > cfg.max_underlying_exposure + 1e-9 {
            (
                "underlying_exposure",
                format!(
                    "exposure on {} would be {exposure:.2} (open {exposure_open:.2} + this {:.2}, composite/100 per signal), limit {:.2}",
                    ex.underlying,
                    ex.composite / 100.0,
                    cfg.max_underlying_exposure
                ),
            )
        } else if open.len() >= cfg.max_open_signals {
            (
                "max_open_signals",
                format!(
                    "{} signals open, limit {}",
                    open.len(),
                    cfg.max_open_signals
                ),
            )
        } else if in_sector >= cfg.max_per_sector {
            (
                "sector_cap",
                format!(
                    "{in_sector} signals open in {}, limit {}",
                    ex.sector, cfg.max_per_sector
                ),
            )
        } else if throttled {
            (
                "approved",
                format!(
                    "within every limit; {dd_text}, and composite {:.2} clears the raised bar {:.2}",
                    ex.composite, cfg.drawdown_min_composite
                ),
            )
        } else {
            ("approved", "within every limit".to_string())
        };
        let approved = rule == "approved";
        if approved {
            let closes_at = now + self.cfg.hold_secs as i64 * MICROS_PER_SECOND;
            self.state.open.insert(
                ex.signal_id.to_string(),
                OpenSignal {
                    underlying: ex.underlying.clone(),
                    sector: ex.sector.clone(),
                    direction: ex.direction.clone(),
                    composite: ex.composite,
                    entry: ex.spot,
                    closes_at,
                },
            );
        }
        RiskDecision {
            event_id: EventId::derived("decision", &ex.event_id),
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
            drawdown,
            equity,
            html: ex.html.clone(),
            telegram: ex.telegram.clone(),
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

#[cfg(test)]
mod tests;
