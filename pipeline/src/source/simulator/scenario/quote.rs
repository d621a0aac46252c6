//! One chain snapshot: every contract priced on the simulator's surface, with its flow.

use super::super::chain::Chain;
use super::super::market::{self, ExpiryNow, Regime, RATE};
use super::super::universe::UnderlyingSpec;
use super::QUOTE_SOURCE;
use optionflow_schemas::{EventId, RawEvent, RawQuote};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// One chain snapshot.
pub(super) struct Quoting<'a> {
    pub(super) spec: &'a UnderlyingSpec,
    pub(super) symbol: &'a str,
    /// Priced as American (Bjerksund-Stensland 2002, as the greeks stage reads it) rather than
    /// European: a deep in-the-money American put is never worth less than its intrinsic value.
    pub(super) american: bool,
    pub(super) t: i64,
    pub(super) spot: f64,
    /// Where the smile's sticky-strike share is anchored: the previous close, so an overnight
    /// gap moves the smile as an intraday move would (the simulator anchors at its own open,
    /// having no gaps).
    pub(super) anchor: f64,
    /// Spot as printed.
    pub(super) price: f64,
    pub(super) var: f64,
    pub(super) regime: Regime,
    /// Market seconds of simulator flow the snapshot reports.
    pub(super) seconds: f64,
    /// Largest |ln(K/S)| quoted.
    pub(super) band: f64,
}

impl Quoting<'_> {
    /// Quotes every contract of the chain, accumulating the flow since the last snapshot into
    /// its volume; strikes outside the quote band, zero-bid wings and deep in-the-money quotes
    /// without an implied vol are left out.
    pub(super) fn quote(&self, chain: &mut Chain, rng: &mut ChaCha8Rng, out: &mut Vec<RawEvent>) {
        let surfaces: Vec<ExpiryNow> = chain
            .expiries
            .iter()
            .map(|&e| {
                ExpiryNow::new(
                    self.spec,
                    self.spot,
                    self.anchor,
                    self.var,
                    self.t,
                    e,
                    &self.regime,
                )
            })
            .collect();
        let active = self.regime.active();
        let widen = 1.0 + 0.8 * (self.regime.squeeze + self.regime.crash);
        for c in chain.contracts.iter_mut() {
            let Some(e) = surfaces.get(c.expiry).filter(|e| e.live) else {
                continue;
            };
            let otm = if c.is_call {
                c.strike > self.spot
            } else {
                c.strike < self.spot
            };
            let flow = if active {
                market::flow_weight(&self.regime, c.is_call, otm, e.days <= 10.0)
            } else {
                0.0
            };
            let iv = e.implied_vol(e.smile_moneyness(c.ln_strike));
            let model = e.price(c.strike, iv, c.is_call, self.american);
            let Some(model) = model else {
                continue;
            };
            let (bid, ask) = market::bid_ask(model, widen);
            let liq = market::liquidity(e.moneyness(c.ln_strike));
            let traded =
                market::trade_size(self.spec, liq, e.tenor_factor, flow, self.seconds, rng);
            if traded > 0 {
                c.volume += traded;
                if active {
                    c.event_volume += traded;
                }
                let at_ask = rng.random::<f64>() < 0.5 + 0.4 * flow.min(1.0);
                c.last = Some(if at_ask || bid <= 0.0 { ask } else { bid });
            }
            let depth = 50.0 * self.spec.option_activity.min(5.0) * (0.2 + liq);
            let bid_size = 1 + (rng.random::<f64>() * depth) as i64;
            let ask_size = 1 + (rng.random::<f64>() * depth) as i64;
            // A zero bid is rejected by normalize, and a deep in-the-money mid that tick
            // rounding put under the no-arbitrage floor has no implied vol: both would only
            // fill the tape. The floor of a call without dividends is S − K e^{−rT}.
            let intrinsic = if c.is_call {
                self.price - c.strike * (-RATE * e.years).exp()
            } else {
                c.strike - self.price
            };
            let far = (c.ln_strike - self.spot.ln()).abs() > self.band;
            if far || bid <= 0.0 || 0.5 * (bid + ask) < intrinsic + 0.005 {
                continue;
            }
            out.push(RawEvent::Quote(RawQuote {
                event_id: EventId::new(QUOTE_SOURCE)
                    .part(&c.symbol)
                    .part_i64(self.t)
                    .finish(),
                event_time: self.t,
                underlying: self.symbol.into(),
                source: QUOTE_SOURCE.into(),
                symbol: c.symbol.as_str().into(),
                bid,
                ask,
                bid_size,
                ask_size,
                last: if c.volume > 0 { c.last } else { None },
                volume: c.volume,
                open_interest: c.open_interest,
                underlying_price: Some(self.price),
            }));
        }
    }
}
