//! The `greeks` stage: implied volatility from the mid and Black-Scholes-Merton greeks for each
//! normalized quote; quotes with no IV solution are rejected with the reason.

use crate::config::{ConfigErrors, Problems};
use crate::operator::{rejection, Ctx, Emit, OpError, Operator};
use crate::pricing::{bsm_greeks, implied_vol, Right};
use optionflow_schemas::{ContractGreeks, EventId, GreeksEvent, NormalizedEvent, NormalizedQuote};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const STAGE: &str = "greeks";

/// The `[greeks]` configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct GreeksConfig {
    /// Continuously compounded risk-free rate.
    pub rate: f64,
    /// Continuous dividend yield for underlyings not listed in `dividend-yields`.
    pub dividend_yield: f64,
    /// Dividend yield per underlying.
    pub dividend_yields: BTreeMap<String, f64>,
}

impl Default for GreeksConfig {
    fn default() -> Self {
        Self {
            rate: 0.04,
            dividend_yield: 0.0,
            dividend_yields: BTreeMap::new(),
        }
    }
}

impl GreeksConfig {
    /// Reports every problem at once.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut p = Problems::default();
        p.check(
            self.rate.is_finite() && self.rate.abs() < 1.0,
            "rate",
            "must be a finite rate between -1 and 1",
        );
        p.check(
            self.dividend_yield.is_finite() && (0.0..1.0).contains(&self.dividend_yield),
            "dividend-yield",
            "must be in [0, 1)",
        );
        for (u, q) in &self.dividend_yields {
            p.check(
                q.is_finite() && (0.0..1.0).contains(q),
                &format!("dividend-yields.{u}"),
                "must be in [0, 1)",
            );
        }
        p.finish()
    }

    /// Builds the operator.
    pub fn build(&self) -> Result<GreeksStage, ConfigErrors> {
        self.validate()?;
        Ok(GreeksStage { cfg: self.clone() })
    }
}

/// The greeks operator (stateless apart from its configuration).
#[derive(Debug)]
pub struct GreeksStage {
    cfg: GreeksConfig,
}

impl GreeksStage {
    fn on_quote(&self, q: &NormalizedQuote, out: &mut Emit<GreeksEvent>) {
        let right = if q.right == "call" {
            Right::Call
        } else {
            Right::Put
        };
        let r = self.cfg.rate;
        let d = self
            .cfg
            .dividend_yields
            .get(&q.underlying)
            .copied()
            .unwrap_or(self.cfg.dividend_yield);
        let (s, k, t) = (q.underlying_price, q.strike, q.years_to_expiry);
        let iv = match implied_vol(right, s, k, t, r, d, q.mid) {
            Ok(iv) => iv,
            Err(e) => {
                let reason = format!("mid {:.4}: {e}", q.mid);
                out.reject(rejection(
                    STAGE,
                    &q.event_id,
                    q.event_time,
                    &q.underlying,
                    &q.symbol,
                    "no_iv_solution",
                    reason,
                ));
                return;
            }
        };
        let g = bsm_greeks(right, s, k, t, r, d, iv);
        out.emit(GreeksEvent::Greeks(ContractGreeks {
            event_id: EventId::new(STAGE).part(&q.event_id).finish(),
            event_time: q.event_time,
            underlying: q.underlying.clone(),
            source_event_id: q.event_id.clone(),
            symbol: q.symbol.clone(),
            root: q.root.clone(),
            expiry: q.expiry.clone(),
            right: q.right.clone(),
            strike: k,
            spot: s,
            years_to_expiry: t,
            rate: r,
            dividend_yield: d,
            bid: q.bid,
            ask: q.ask,
            mid: q.mid,
            iv,
            delta: g.delta,
            gamma: g.gamma,
            vega: g.vega,
            theta: g.theta,
            rho: g.rho,
            volume: q.volume,
            open_interest: q.open_interest,
            sector: q.sector.clone(),
            exercise_style: "european".to_string(),
            vanna: g.vanna,
            charm: g.charm,
            vomma: g.vomma,
        }));
    }
}

impl Operator for GreeksStage {
    type In = NormalizedEvent;
    type Out = GreeksEvent;

    fn name(&self) -> &'static str {
        STAGE
    }

    fn on_event(
        &mut self,
        ev: &NormalizedEvent,
        _ctx: &Ctx,
        out: &mut Emit<GreeksEvent>,
    ) -> Result<(), OpError> {
        match ev {
            NormalizedEvent::Quote(q) => self.on_quote(q, out),
            NormalizedEvent::Tick(t) => out.emit(GreeksEvent::Tick(t.clone())),
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>, OpError> {
        Ok(Vec::new())
    }

    fn restore(&mut self, _state: &[u8]) -> Result<(), OpError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::bsm_price;
    use crate::testing::run_events;

    fn nq(mid: f64) -> NormalizedEvent {
        NormalizedEvent::Quote(NormalizedQuote {
            event_id: format!("q{mid}"),
            event_time: 0,
            underlying: "XYZ".into(),
            source_event_id: "r".into(),
            symbol: "XYZ   240119C00100000".into(),
            root: "XYZ".into(),
            expiry: "2024-01-19".into(),
            expiry_time: 1,
            right: "call".into(),
            strike: 100.0,
            bid: mid - 0.05,
            ask: mid + 0.05,
            mid,
            spread: 0.1,
            spread_pct: 0.1 / mid,
            bid_size: 1,
            ask_size: 1,
            volume: 1,
            open_interest: 1,
            underlying_price: 100.0,
            years_to_expiry: 0.25,
            sector: None,
        })
    }

    #[test]
    fn solves_iv_and_rejects_impossible_mids() {
        let mut op = GreeksConfig::default().build().unwrap();
        let price = bsm_price(Right::Call, 100.0, 100.0, 0.25, 0.04, 0.0, 0.3);
        let out = run_events(&mut op, vec![nq(price), nq(150.0)]).unwrap();
        let GreeksEvent::Greeks(g) = &out.events[0] else {
            panic!()
        };
        assert!((g.iv - 0.3).abs() < 1e-10, "{}", g.iv);
        assert!(g.delta > 0.5 && g.gamma > 0.0 && g.vega > 0.0 && g.theta < 0.0);
        assert_eq!(out.rejected.len(), 1);
        assert_eq!(out.rejected[0].reason_code, "no_iv_solution");
        assert!(out.rejected[0].reason.contains("above the upper bound"));
    }
}
