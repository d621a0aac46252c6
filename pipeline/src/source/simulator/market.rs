//! The numbers: spot and variance dynamics, regime events, the implied-vol surface, quotes and
//! flow.

use super::config::RegimeKind;
use super::universe::UnderlyingSpec;
use implied_vol::{DefaultSpecialFn, PriceBlackScholes};
use optionflow_operators::pricing::{american::bs2002_price, Right};
use optionflow_schemas::time::MICROS_PER_SECOND;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Exp1, StandardNormal};

/// Risk-free rate, continuously compounded.
pub(super) const RATE: f64 = 0.04;
/// Implied over expected realized vol: option sellers want paying for variance risk.
pub(super) const VARIANCE_PREMIUM: f64 = 1.05;
/// Speed of variance mean reversion, per year.
pub(super) const KAPPA: f64 = 4.0;
/// Trading seconds per year: the diffusion runs on market time, so an annualised vol of 16%
/// gives about 1% a session, as on a real tape.
const TRADING_SECONDS_PER_YEAR: f64 = 252.0 * 23_400.0;
/// Overnight variance as a share of a session's.
const OVERNIGHT_SHARE: f64 = 0.25;
/// Jumps per year of market time, before scaling by the name's vol.
const JUMP_RATE: f64 = 12.0;
/// How long a regime ramps in and fades out after its window (market µs).
const SQUEEZE_RAMP: i64 = 60 * MICROS_PER_SECOND;
const FADE: f64 = 90.0 * MICROS_PER_SECOND as f64;

/// A regime event as staged for one run: the configured window plus its drawn magnitudes.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct EventPlan {
    pub(super) kind: RegimeKind,
    /// Market-time window, µs from the first tick.
    pub(super) start: i64,
    pub(super) end: i64,
    /// Log move spread over the window (after the gap, for a crash).
    pub(super) trend: f64,
    /// Log gap at the start (crash only).
    pub(super) gap: f64,
}

impl EventPlan {
    /// Draws the magnitudes, so each seed stages a slightly different event.
    pub(super) fn draw(kind: RegimeKind, start: i64, end: i64, rng: &mut ChaCha8Rng) -> Self {
        let (trend, gap) = match kind {
            RegimeKind::Squeeze => (rng.random_range(0.35..0.55f64).ln_1p(), 0.0),
            RegimeKind::Crash => (
                (-rng.random_range(0.03..0.06f64)).ln_1p(),
                (-rng.random_range(0.07..0.10f64)).ln_1p(),
            ),
        };
        Self {
            kind,
            start,
            end,
            trend,
            gap,
        }
    }

    /// 0 before the window, 1 inside it (after a ramp for a squeeze, which builds), fading out
    /// after it.
    fn intensity(&self, m: i64) -> f64 {
        if m < self.start {
            0.0
        } else if m < self.end {
            match self.kind {
                RegimeKind::Squeeze => {
                    ((m - self.start + MICROS_PER_SECOND) as f64 / SQUEEZE_RAMP as f64).min(1.0)
                }
                RegimeKind::Crash => 1.0,
            }
        } else {
            let f = (-((m - self.end) as f64) / FADE).exp();
            if f < 0.01 {
                0.0
            } else {
                f
            }
        }
    }

    /// Share of the window's trend done by market time `m`.
    fn progress(&self, m: i64) -> f64 {
        let p = ((m - self.start) as f64 / (self.end - self.start).max(1) as f64).clamp(0.0, 1.0);
        match self.kind {
            // Convex: the squeeze accelerates (momentum).
            RegimeKind::Squeeze => p.powf(1.6),
            RegimeKind::Crash => p,
        }
    }
}

/// The regime acting on one underlying at one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Regime {
    /// Squeeze intensity, 0–1.
    pub(super) squeeze: f64,
    /// Crash intensity, 0–1.
    pub(super) crash: f64,
    /// Log drift the events add over this tick.
    pub(super) drift: f64,
}

impl Regime {
    /// The events of one underlying at the tick at market time `m`, `dt` after the previous.
    pub(super) fn at(plans: &[EventPlan], m: i64, dt: i64) -> Self {
        let mut r = Regime::default();
        for p in plans {
            let i = p.intensity(m);
            r.drift += p.trend * (p.progress(m) - p.progress(m - dt));
            match p.kind {
                RegimeKind::Squeeze => r.squeeze += i,
                RegimeKind::Crash => {
                    r.crash += i;
                    if m - dt < p.start && p.start <= m {
                        r.drift += p.gap;
                    }
                }
            }
        }
        r.squeeze = r.squeeze.min(1.0);
        r.crash = r.crash.min(1.0);
        r
    }

    /// Whether anything is going on.
    pub(super) fn active(&self) -> bool {
        self.squeeze + self.crash > 0.0
    }
}

/// Spot and variance of one underlying.
pub(super) struct Dynamics<'a> {
    pub(super) spec: &'a UnderlyingSpec,
    pub(super) spot: &'a mut f64,
    pub(super) var: &'a mut f64,
}

impl Dynamics<'_> {
    /// One log-Euler step of `dt_micros` of market time under Heston-like stochastic variance
    /// (full truncation) with rare Poisson jumps; the regime scales realized vol.
    pub(super) fn step(&mut self, dt_micros: i64, regime: &Regime, rng: &mut ChaCha8Rng) {
        let dt = dt_micros as f64 / MICROS_PER_SECOND as f64 / TRADING_SECONDS_PER_YEAR;
        self.diffuse(dt, regime, rng);
    }

    /// The move between the previous close and this open.
    pub(super) fn overnight(&mut self, rng: &mut ChaCha8Rng) {
        self.diffuse(OVERNIGHT_SHARE / 252.0, &Regime::default(), rng);
    }

    fn diffuse(&mut self, dt: f64, regime: &Regime, rng: &mut ChaCha8Rng) {
        let s = self.spec;
        let theta = s.vol * s.vol;
        let v = self.var.max(0.0);
        let realized = v.sqrt() * (1.0 + 1.5 * regime.squeeze + 4.0 * regime.crash);
        let z1: f64 = rng.sample(StandardNormal);
        let e: f64 = rng.sample(StandardNormal);
        let rho = s.spot_vol_corr;
        let z2 = rho * z1 + (1.0 - rho * rho).sqrt() * e;
        let sqrt_dt = dt.sqrt();
        let mut dlog = -0.5 * realized * realized * dt + realized * sqrt_dt * z1;
        if rng.random::<f64>() < JUMP_RATE * dt {
            let size: f64 = rng.sample(StandardNormal);
            dlog += (s.vol / 0.3) * (-0.004 + 0.012 * size);
        }
        *self.var = (v + KAPPA * (theta - v) * dt + s.vol_of_vol * v.sqrt() * sqrt_dt * z2)
            .max(0.05 * theta);
        *self.spot *= (dlog + regime.drift).exp();
    }
}

/// The implied-vol smile and pricing inputs of one expiry at one tick.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ExpiryNow {
    /// Whether the expiry is still alive (it always is inside a session; kept for safety).
    pub(super) live: bool,
    pub(super) years: f64,
    pub(super) days: f64,
    sqrt_t: f64,
    /// Spot the surface was built at (American puts are priced on it, not on the forward).
    spot: f64,
    fwd: f64,
    ln_fwd: f64,
    /// The forward the smile is centred on: partly anchored at the session's open.
    ln_smile_fwd: f64,
    discount: f64,
    level: f64,
    skew: f64,
    smile: f64,
    /// Extra vol on the upper strikes during a squeeze.
    call_add: f64,
    /// Volume scale by tenor: short-dated options trade most.
    pub(super) tenor_factor: f64,
}

impl ExpiryNow {
    /// The surface for expiry at `expiry_time` seen at `now`, with spot at `spot` after opening
    /// at `open_spot`.
    pub(super) fn new(
        spec: &UnderlyingSpec,
        spot: f64,
        open_spot: f64,
        var: f64,
        now: i64,
        expiry_time: i64,
        regime: &Regime,
    ) -> Self {
        let years = (expiry_time - now) as f64 / optionflow_schemas::time::MICROS_PER_YEAR;
        if years <= 0.0 {
            return Self::default();
        }
        let theta = spec.vol * spec.vol;
        // Expected average variance to expiry under mean reversion: the term structure.
        let kt = KAPPA * years;
        let avg = if kt < 1e-9 { 1.0 } else { -(-kt).exp_m1() / kt };
        let term_var = (theta + (var.max(0.0) - theta) * avg).max(0.0);
        let (s, c) = (regime.squeeze, regime.crash);
        let level = term_var.sqrt() * VARIANCE_PREMIUM * (1.0 + 1.0 * c) + 0.06 * s;
        let days = years * 365.0;
        let short = if days <= 10.0 { 1.3 } else { 1.0 };
        Self {
            live: true,
            years,
            days,
            sqrt_t: years.sqrt(),
            spot,
            fwd: spot * (RATE * years).exp(),
            ln_fwd: spot.ln() + RATE * years,
            ln_smile_fwd: spot.ln() + RATE * years - spec.sticky_strike * (spot / open_spot).ln(),
            discount: (-RATE * years).exp(),
            level,
            skew: spec.skew * (1.0 + 1.5 * c) - 0.03 * c,
            smile: spec.smile * (1.0 + 0.5 * c),
            call_add: 0.4 * s * short,
            tenor_factor: (1.0 + days / 10.0).powf(-0.7),
        }
    }

    /// Standardised moneyness of a strike: log-moneyness over the expiry's ATM standard
    /// deviation, capped where the wings stop mattering. Drives liquidity and flow.
    pub(super) fn moneyness(&self, ln_strike: f64) -> f64 {
        ((ln_strike - self.ln_fwd) / (self.level * self.sqrt_t)).clamp(-4.0, 4.0)
    }

    /// Where a strike sits on the smile: like [`moneyness`](Self::moneyness), but measured from
    /// the partly open-anchored forward.
    pub(super) fn smile_moneyness(&self, ln_strike: f64) -> f64 {
        ((ln_strike - self.ln_smile_fwd) / (self.level * self.sqrt_t)).clamp(-4.0, 4.0)
    }

    /// Implied vol at standardised moneyness `z`: level × (1 + skew z + smile z²), plus the
    /// squeeze's bid for upside strikes.
    pub(super) fn implied_vol(&self, z: f64) -> f64 {
        let mut iv = self.level * (1.0 + self.skew * z + self.smile * z * z).max(0.4);
        if z > 0.0 && self.call_add > 0.0 {
            let u = z.min(1.0);
            iv += self.call_add * u * u * (3.0 - 2.0 * u);
        }
        iv.max(0.03)
    }

    /// The least value the contract's model gives at spot `spot` (dividend 0), whatever the
    /// volatility: S − K·e^(−rT) for a call (an American call without dividends is the European
    /// one), K − S for an American put (it can be exercised now), K·e^(−rT) − S for a European
    /// put; zero when that is negative. A mid under it has no implied vol.
    pub(super) fn floor(&self, strike: f64, spot: f64, is_call: bool, american: bool) -> f64 {
        let value = match (is_call, american) {
            (true, _) => spot - strike * self.discount,
            (false, true) => strike - spot,
            (false, false) => strike * self.discount - spot,
        };
        value.max(0.0)
    }

    /// Model price (dividend 0) of a contract with the given exercise style: discounted
    /// Black-Scholes for European exercise, Bjerksund-Stensland 2002 for American — the model
    /// the greeks stage inverts. An American put is worth at least its exercise value K − S
    /// (Black-Scholes puts deep in the money are not), so quoting it as European would put a
    /// sixth of a chain's mids under intrinsic, where no implied vol exists. An American call
    /// without dividends is the European one (the model says so itself).
    pub(super) fn price(&self, strike: f64, iv: f64, is_call: bool, american: bool) -> Option<f64> {
        let p = if american {
            let right = if is_call { Right::Call } else { Right::Put };
            bs2002_price(right, self.spot, strike, self.years, RATE, 0.0, iv)
        } else {
            PriceBlackScholes::builder()
                .forward(self.fwd)
                .strike(strike)
                .volatility(iv)
                .expiry(self.years)
                .is_call(is_call)
                .build()?
                .calculate::<DefaultSpecialFn>()
                * self.discount
        };
        p.is_finite().then_some(p.max(0.0))
    }
}

/// Bid and ask in whole cents around a model price: spread a few percent (more for cheap
/// options, more in a fast market), on a 0.01 tick below $3 and 0.05 above. A worthless wing
/// shows a zero bid.
pub(super) fn bid_ask(model: f64, widen: f64) -> (f64, f64) {
    let tick: i64 = if model < 3.0 { 1 } else { 5 };
    let frac = 0.08 / (1.0 + model).sqrt() + 0.01;
    let half = (model * frac * widen).max(tick as f64 / 100.0) * 50.0;
    let cents = model * 100.0;
    let bid = (((cents - half) / tick as f64).floor() as i64 * tick).max(0);
    let ask = (((cents + half) / tick as f64).ceil() as i64 * tick).max(bid + tick);
    (bid as f64 / 100.0, ask as f64 / 100.0)
}

/// Lifts the ask of a quote until its mid is at least half a cent above `floor`, the least
/// value the contract's model gives (see [`ExpiryNow::floor`]). Deep in the money the model
/// price is that floor or next to it, and rounding the bid down and the ask up to the tick can
/// leave the mid a few cents under it, where no implied vol exists; a market maker quoting such
/// a contract widens the offer instead (selling under it would be an arbitrage). Quotes whose
/// mid already clears the floor are returned unchanged.
pub(super) fn lift_above_floor(model: f64, bid: f64, ask: f64, floor: f64) -> f64 {
    if 0.5 * (bid + ask) >= floor + 0.005 {
        return ask;
    }
    let tick: i64 = if model < 3.0 { 1 } else { 5 };
    // Whole cents: the bid is on the tick grid already; the ask needed is 2·(floor + ½¢) − bid.
    let needed = 2.0 * floor * 100.0 + 1.0 - (bid * 100.0).round();
    let cents = ((needed - 1e-6) / tick as f64).ceil() as i64 * tick;
    cents as f64 / 100.0
}

/// Liquidity by standardised moneyness: options near the money trade most.
pub(super) fn liquidity(z: f64) -> f64 {
    (-0.25 * z * z).exp()
}

/// How much of a regime's extra flow a contract draws: short-dated out-of-the-money calls in a
/// squeeze, out-of-the-money puts in a crash.
pub(super) fn flow_weight(regime: &Regime, is_call: bool, otm: bool, short: bool) -> f64 {
    let squeeze = match (is_call, otm, short) {
        (true, true, true) => 1.0,
        (true, true, false) => 0.5,
        (true, false, _) => 0.3,
        (false, _, _) => 0.05,
    };
    let crash = match (is_call, otm, short) {
        (false, true, true) => 1.0,
        (false, true, false) => 0.8,
        (false, false, _) => 0.4,
        (true, _, _) => 0.1,
    };
    regime.squeeze * squeeze + regime.crash * crash
}

/// Contracts traded since the last tick, reported by one requote: near-the-money, short-dated
/// and event-driven flow trades more often and in larger size. `seconds` is the tick interval,
/// so volume per unit of market time does not depend on it.
pub(super) fn trade_size(
    spec: &UnderlyingSpec,
    liq: f64,
    tenor: f64,
    flow: f64,
    seconds: f64,
    rng: &mut ChaCha8Rng,
) -> i64 {
    let chance = ((0.25 + 0.45 * liq) * (1.0 + flow)).min(1.0);
    if rng.random::<f64>() >= chance {
        return 0;
    }
    let mean = 6.0 * spec.option_activity * liq * tenor * (1.0 + 7.0 * flow) * seconds;
    let draw: f64 = rng.sample(Exp1);
    1 + (draw * mean) as i64
}

/// Open interest of a newly listed contract.
pub(super) fn base_open_interest(spec: &UnderlyingSpec, z: f64, years: f64, u: f64) -> i64 {
    let days = (years * 365.0).min(120.0);
    let oi = spec.option_activity
        * 1500.0
        * (-z * z / 6.0).exp()
        * (0.4 + days / 60.0)
        * (0.6 + 0.8 * u);
    oi.round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::simulator::universe::UNIVERSE;

    #[test]
    fn quotes_are_whole_ticks_and_never_crossed() {
        for model in [0.0, 0.001, 0.004, 0.05, 0.5, 2.99, 3.0, 17.3, 250.0] {
            for widen in [1.0, 2.0] {
                let (b, a) = bid_ask(model, widen);
                assert!(b >= 0.0 && a > b, "{model}: {b} {a}");
                assert!(a >= model && b <= model, "{model}: {b} {a}");
                assert_eq!((b * 100.0).round() / 100.0, b);
                assert!(
                    a - b <= (0.2 * model).max(0.1) * widen + 1e-9,
                    "{model}: {b} {a}"
                );
            }
        }
        assert_eq!(bid_ask(0.001, 1.0).0, 0.0);
    }

    #[test]
    fn smile_has_put_skew_and_squeeze_lifts_the_call_wing() {
        let spy = &UNIVERSE[0];
        let t0 = 0;
        let expiry = 30 * optionflow_schemas::time::MICROS_PER_DAY;
        let var = spy.vol * spy.vol;
        let calm = ExpiryNow::new(spy, 475.0, 475.0, var, t0, expiry, &Regime::default());
        assert!(calm.implied_vol(-2.0) > calm.implied_vol(0.0) + 0.03);
        assert!(
            (calm.implied_vol(0.0) - 0.147).abs() < 0.01,
            "{}",
            calm.implied_vol(0.0)
        );
        let crash = Regime {
            crash: 1.0,
            ..Regime::default()
        };
        let hit = ExpiryNow::new(spy, 475.0, 475.0, var, t0, expiry, &crash);
        assert!(hit.implied_vol(0.0) > 1.8 * calm.implied_vol(0.0));
        let steep = |e: &ExpiryNow| e.implied_vol(-1.5) / e.implied_vol(0.0);
        assert!(steep(&hit) > steep(&calm));
        let gme = &UNIVERSE[1];
        let calm = ExpiryNow::new(gme, 17.5, 17.5, 0.5625, t0, expiry, &Regime::default());
        let sq = ExpiryNow::new(
            gme,
            17.5,
            17.5,
            0.5625,
            t0,
            expiry,
            &Regime {
                squeeze: 1.0,
                ..Regime::default()
            },
        );
        assert!(sq.implied_vol(2.0) - calm.implied_vol(2.0) > 0.3);
        assert!(sq.implied_vol(-2.0) - calm.implied_vol(-2.0) < 0.1);
    }

    #[test]
    fn deep_in_the_money_mids_clear_the_model_floor() {
        // A deep in-the-money SPY put at its exercise value: bid_ask's rounding leaves the mid
        // (39.675) under the exercise value (39.69); the lifted ask puts it half a cent over.
        let exercise = 515.0 - 475.31;
        let (bid, ask) = bid_ask(exercise, 1.0);
        assert!(0.5 * (bid + ask) < exercise);
        let lifted = lift_above_floor(exercise, bid, ask, exercise);
        assert!(0.5 * (bid + lifted) >= exercise + 0.005 - 1e-9);
        assert!(lifted > ask && ((lifted * 100.0).round() as i64) % 5 == 0);
        // One tick more would be more than needed.
        assert!(0.5 * (bid + lifted - 0.05) < exercise + 0.005);
        // A quote that already clears it is left alone.
        let (b, a) = bid_ask(5.0, 1.0);
        assert_eq!(lift_above_floor(5.0, b, a, 4.0), a);
    }

    #[test]
    fn prices_match_intrinsic_bounds() {
        let spy = &UNIVERSE[0];
        let e = ExpiryNow::new(
            spy,
            475.0,
            475.0,
            0.02,
            0,
            7 * optionflow_schemas::time::MICROS_PER_DAY,
            &Regime::default(),
        );
        let call = e.price(470.0, 0.15, true, false).unwrap();
        let put = e.price(470.0, 0.15, false, false).unwrap();
        // Put-call parity: C - P = D (F - K).
        assert!((call - put - e.discount * (e.fwd - 470.0)).abs() < 1e-9);
        assert!(call > 5.0 && put > 0.0);
    }
}
