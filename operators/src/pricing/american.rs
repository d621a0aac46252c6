//! American options by Bjerksund and Stensland, "Closed Form Valuation of American Options"
//! (2002), as presented in Haug, "The Complete Guide to Option Pricing Formulas" (2nd ed., §3.5).
//!
//! The 2002 model values the option as if it were exercised at a flat boundary `I2` until
//! `t1 = ½(√5 − 1)·T` and at a second flat boundary `I1` after it; the value is a lower bound of
//! the true American price, typically within 1e-2 relative of a fine binomial tree (less for
//! calls with small dividends, whose early-exercise premium is small). It costs a few dozen normal and bivariate-normal
//! evaluations, three orders of magnitude cheaper than a tree that accurate, which is what lets
//! the IV solver run per quote.
//!
//! Puts use the put-call transformation P(S, K, T, r, b, σ) = C(K, S, T, r − b, −b, σ), with
//! `b = r − q` the cost of carry. A call with b ≥ r (no dividend) is never exercised early and is
//! priced by Black-Scholes-Merton; likewise a put when r ≤ 0.
//!
//! Delta, gamma, vega, vomma and rho are the closed form's own derivatives
//! ([`Bs2002::price_sensitivities`]), formed in the pass that prices the contract: every input
//! of the formula is carried as a jet (its derivatives along ln S, σ and r), so the
//! triggers' own movement with the volatility and the rate (through β, B∞, B0 and h) is part of
//! vega and rho, and each φ and ψ term differentiates into normal and bivariate-normal
//! densities. The put's spot derivatives come from the transformed call's by the model's
//! homogeneity. Unlike bumps, they do not straddle the model's kinks (at its exercise trigger,
//! where a second difference is not a gamma at all, and where a floor takes over). Theta,
//! vanna and charm of the full greeks are finite differences on the price, a bump being exact
//! enough for trading greeks once it is sized against the formula's truncation and round-off
//! error (see [`bs2002_greeks`]).

use super::bsm::{BsmContract, FRAC_1_SQRT_2PI};
use super::exp::exp4;
use super::jet::{compose, Jet, LN_SPOT, RATE, VOL};
use super::log::log4;
use super::normal::{norm_cdf4, norm_cdf4_and_gaussian, scaled_cdf4, scaled_cdf4_and_density};
use super::{Greeks, Right};
use std::sync::OnceLock;
use wide::f64x4;

/// Bjerksund-Stensland 2002 American price. Inputs are not validated (see
/// [`super::price_and_greeks`]).
pub fn bs2002_price(
    right: Right,
    spot: f64,
    strike: f64,
    years: f64,
    rate: f64,
    dividend: f64,
    vol: f64,
) -> f64 {
    Bs2002::new(right, spot, strike, years, rate, dividend).price(vol)
}

/// One contract under Bjerksund-Stensland 2002 with its volatility-free terms computed once
/// (the square roots of the three times, the logarithms of spot and strike, the European
/// contract), for the IV solver, which prices the same contract at three or four volatilities.
/// Kept in the call's coordinates: a put is the call of the put-call transformation.
pub(crate) struct Bs2002 {
    /// Whether the contract is a put (priced as the call of the transformation).
    put: bool,
    /// The European call in these coordinates: its spot, strike, time, rate and √T are the
    /// model's S, K, T, r and √T.
    european: BsmContract,
    /// Cost of carry.
    b: f64,
    t1: f64,
    sqrt_t1: f64,
    /// √(T − t1).
    sqrt_rest: f64,
    ln_s: f64,
    ln_k: f64,
}

impl Bs2002 {
    /// The contract (inputs are not validated: see [`bs2002_price`]).
    pub(crate) fn new(
        right: Right,
        spot: f64,
        strike: f64,
        years: f64,
        rate: f64,
        dividend: f64,
    ) -> Bs2002 {
        let carry = rate - dividend;
        let (s, k, r, b) = match right {
            Right::Call => (spot, strike, rate, carry),
            // The put-call transformation: swap spot and strike, rate becomes r − b = q and the
            // carry becomes −b.
            Right::Put => (strike, spot, rate - carry, -carry),
        };
        let t = years;
        let t1 = 0.5 * (5f64.sqrt() - 1.0) * t;
        let [sqrt_t1, sqrt_rest] = [t1.sqrt(), (t - t1).sqrt()];
        let [ln_s, ln_k, _, _] = log4(f64x4::new([s, k, 1.0, 1.0])).to_array();
        Bs2002 {
            put: right == Right::Put,
            european: BsmContract::new(Right::Call, s, k, t, r, r - b),
            b,
            t1,
            sqrt_t1,
            sqrt_rest,
            ln_s,
            ln_k,
        }
    }

    /// The price at volatility `v`.
    pub(crate) fn price(&self, v: f64) -> f64 {
        #[cfg(test)]
        evaluations::count(false);
        bs_call::<false>(self, v).0
    }

    /// The price at volatility `v` (the same bits as [`Bs2002::price`]) and, from the closed
    /// form's analytic derivatives, the model's [`Sensitivities`] in the contract's own spot
    /// and rate. Those are `None` where the formula's terms are formed in logarithms
    /// (exponents past e^700), for the caller to difference prices instead.
    pub(crate) fn price_sensitivities(&self, v: f64) -> (f64, Option<Sensitivities>) {
        #[cfg(test)]
        evaluations::count(true);
        let (price, jet) = bs_call::<true>(self, v);
        let Some(j) = jet else {
            return (price, None);
        };
        // In the call's coordinates, along ln s: ds = s·C_s, dss = s²·C_ss + s·C_s.
        let (ds, dss) = (j.first(LN_SPOT), j.second(LN_SPOT));
        let BsmContract {
            spot: s, strike: k, ..
        } = self.european;
        let (delta, gamma) = if self.put {
            // The put's spot is the call's strike. The model is homogeneous of degree one in
            // (s, k) (its triggers are multiples of k), so by Euler C = s·C_s + k·C_k, and
            // C_k's own homogeneity (degree zero) gives C_kk = (s/k)²·C_ss.
            ((price - ds) / k, (dss - ds) / (k * k))
        } else {
            (ds / s, (dss - ds) / (s * s))
        };
        let sensitivities = Sensitivities {
            delta,
            gamma,
            // The volatility is the same in both coordinates; the rate direction was seeded
            // in the contract's own rate (see `Bs2002::rate_jets`).
            vega: j.first(VOL),
            vomma: j.second(VOL),
            rho: j.first(RATE),
        };
        (price, sensitivities.is_finite().then_some(sensitivities))
    }

    /// The call-coordinate rate and carry as jets along the contract's own rate: a call's
    /// rate is r and its carry r − q, both moving with r; a put's transformed rate is q (fixed)
    /// and its carry q − r, moving against r.
    fn rate_jets(&self) -> (Jet, Jet) {
        let (r, b) = (self.european.rate, self.b);
        let (seed_r, seed_b) = if self.put { (0.0, -1.0) } else { (1.0, 1.0) };
        let mut rj = Jet::constant(r);
        rj.set_first(RATE, seed_r);
        let mut bj = Jet::constant(b);
        bj.set_first(RATE, seed_b);
        (rj, bj)
    }
}

/// Counts this thread's evaluations of the model, for tests of what a solver costs.
#[cfg(test)]
pub(crate) mod evaluations {
    use std::cell::Cell;

    thread_local! {
        static COUNTS: Cell<(u32, u32)> = const { Cell::new((0, 0)) };
    }

    pub(super) fn count(with_derivatives: bool) {
        COUNTS.with(|c| {
            let (prices, passes) = c.get();
            c.set(if with_derivatives {
                (prices, passes + 1)
            } else {
                (prices + 1, passes)
            });
        });
    }

    /// The (price-only, with-derivatives) evaluations since the last call, and resets them.
    pub(crate) fn take() -> (u32, u32) {
        COUNTS.with(|c| c.replace((0, 0)))
    }
}

/// The formula's analytic first derivatives in spot, volatility and rate, and second in spot
/// and volatility, in the contract's own coordinates and raw units (per 1.00 of vol or rate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sensitivities {
    pub(crate) delta: f64,
    pub(crate) gamma: f64,
    pub(crate) vega: f64,
    pub(crate) vomma: f64,
    pub(crate) rho: f64,
}

impl Sensitivities {
    fn is_finite(&self) -> bool {
        [self.delta, self.gamma, self.vega, self.vomma, self.rho]
            .iter()
            .all(|x| x.is_finite())
    }
}

/// The jet of a value that is exactly the European call (in call coordinates), from its
/// analytic greeks; `rate` carries the seeds of the call-coordinate rate and carry.
fn european_jet(c: &BsmContract, v: f64, rate: (Jet, Jet)) -> Option<Jet> {
    let g = c.greeks(v);
    let s = c.spot;
    let mut j = Jet::constant(g.price);
    j.set_first(LN_SPOT, s * g.delta);
    j.set_second(LN_SPOT, s * s * g.gamma + s * g.delta);
    j.set_first(VOL, g.vega);
    j.set_second(VOL, g.vomma);
    // The call's dividend yield is r − b: ∂C/∂q = −T·S·e^(−qT)·N(d1) = −T·S·Δ.
    let (r, b) = rate;
    let seed_q = r.first(RATE) - b.first(RATE);
    j.set_first(RATE, g.rho * r.first(RATE) - c.years * s * g.delta * seed_q);
    Some(j)
}

/// The jet of immediate exercise, s − k: it moves with the spot only.
fn exercise_jet(s: f64, k: f64) -> Option<Jet> {
    let mut j = Jet::constant(s - k);
    j.set_first(LN_SPOT, s);
    j.set_second(LN_SPOT, s);
    Some(j)
}

/// Price and greeks of an American option: delta, gamma, vega, vomma and rho from the
/// formula's analytic derivatives ([`Bs2002::price_sensitivities`]), theta, vanna and charm by
/// central finite differences on [`bs2002_price`].
///
/// Bump sizes balance truncation error (O(h²) for central differences) against round-off: the
/// price is a sum of about a dozen terms of the order of the spot, so it carries ~1e-15·S of
/// noise, which a first difference divides by h and a second difference by h². Relative bumps of
/// 1e-3 in spot, volatility (at least 1e-4 absolute, so vomma is not noise at low vol) and time,
/// and one basis point in rate, keep both errors below ~1e-6 relative on the greeks. Small bumps
/// also keep the smear of the model's kinks (at the exercise boundary `I2`, where the value turns
/// into S − K) local.
pub fn bs2002_greeks(
    right: Right,
    spot: f64,
    strike: f64,
    years: f64,
    rate: f64,
    dividend: f64,
    vol: f64,
) -> Greeks {
    let p = |s: f64, t: f64, r: f64, v: f64| bs2002_price(right, s, strike, t, r, dividend, v);
    let (hs, hv, ht, _) = bumps(spot, years, vol);
    let (s, t, r, v) = (spot, years, rate, vol);
    // Analytic where the formula gives them (see the module docs): a spot bump must not
    // straddle the exercise trigger's kink.
    let (price, analytic) = Bs2002::new(right, s, strike, t, r, dividend).price_sensitivities(v);
    let d = analytic.unwrap_or_else(|| sensitivities_by_differences(&p, price, s, t, r, v));
    let (tu, td) = (p(s, t + ht, r, v), p(s, t - ht, r, v));
    let delta_at = |t: f64, v: f64| (p(s + hs, t, r, v) - p(s - hs, t, r, v)) / (2.0 * hs);
    Greeks {
        price,
        delta: d.delta,
        gamma: d.gamma,
        vega: d.vega,
        theta: -(tu - td) / (2.0 * ht),
        rho: d.rho,
        vanna: (delta_at(t, v + hv) - delta_at(t, v - hv)) / (2.0 * hv),
        charm: -(delta_at(t + ht, v) - delta_at(t - ht, v)) / (2.0 * ht),
        vomma: d.vomma,
    }
}

/// [`Sensitivities`] by central differences of `p(s, t, r, v)` around `price` = p at the
/// centre (six evaluations): for the rare contracts whose analytic terms cannot be formed.
pub(crate) fn sensitivities_by_differences(
    p: &dyn Fn(f64, f64, f64, f64) -> f64,
    price: f64,
    s: f64,
    t: f64,
    r: f64,
    v: f64,
) -> Sensitivities {
    let (hs, hv, _, hr) = bumps(s, t, v);
    let (su, sd) = (p(s + hs, t, r, v), p(s - hs, t, r, v));
    let (vu, vd) = (p(s, t, r, v + hv), p(s, t, r, v - hv));
    Sensitivities {
        delta: (su - sd) / (2.0 * hs),
        gamma: (su - 2.0 * price + sd) / (hs * hs),
        vega: (vu - vd) / (2.0 * hv),
        vomma: (vu - 2.0 * price + vd) / (hv * hv),
        rho: (p(s, t, r + hr, v) - p(s, t, r - hr, v)) / (2.0 * hr),
    }
}

/// Finite-difference bumps (spot, vol, time, rate): relative 1e-3 in spot, vol and time
/// balances truncation against round-off for a price known to ~1e-13; one basis point in rate.
pub(crate) fn bumps(spot: f64, years: f64, vol: f64) -> (f64, f64, f64, f64) {
    (
        1e-3 * spot,
        (1e-3 * vol.max(0.1)).min(0.5 * vol),
        1e-3 * years,
        1e-4,
    )
}

/// The American call of the 2002 paper, with carry `b`; with `DERIVATIVES`, also the value's
/// [`Jet`] along ln s, σ and the contract's rate (the value itself is computed by the same
/// operations either way, so it is the same bits).
fn bs_call<const DERIVATIVES: bool>(c: &Bs2002, v: f64) -> (f64, Option<Jet>) {
    let BsmContract {
        spot: s,
        strike: k,
        years: t,
        rate: r,
        ..
    } = c.european;
    let (b, t1) = (c.b, c.t1);
    let european = c.european.price(v);
    let rate_jets = c.rate_jets();
    let eu_jet = || european_jet(&c.european, v, rate_jets);
    let ex_jet = || exercise_jet(s, k);
    if b >= r {
        // Holding the call earns more than the strike's interest: never exercise early.
        return (european, DERIVATIVES.then(eu_jet).flatten());
    }
    let v2 = v * v;
    let beta = (0.5 - b / v2) + ((b / v2 - 0.5).powi(2) + 2.0 * r / v2).sqrt();
    if beta.is_nan() || beta <= 1.0 {
        // Only when r < 0 < r − b (a negative rate with a positive yield, or the put of a
        // negative yield): the perpetual boundary the model builds on does not exist. Exercise
        // now or hold to expiry, whichever is worth more, is the honest lower bound left.
        let value = european.max(s - k);
        return (
            value,
            jet_of::<DERIVATIVES>(value, &[(european, &eu_jet), (s - k, &ex_jet)]),
        );
    }
    let b_inf = beta / (beta - 1.0) * k;
    let b_0_ratio = r / (r - b) * k;
    let b_0 = b_0_ratio.max(k);
    let h = |tt: f64, sqrt_tt: f64| -(b * tt + 2.0 * v * sqrt_tt) * k * k / ((b_inf - b_0) * b_0);
    // I2 is the trigger of the first period [0, t1] (φ and ψ hit it before t1) and I1 that of
    // the second, [t1, T], whose remaining life is at most T − t1: so I1 = X(T − t1). Haug's
    // book prints h(t1) here; our binomial-tree check puts the T − t1 form about 0.7% below the
    // true price of an at-the-money six-month put where h(t1) is 1.2% below.
    let [e1, e2, _, _] = exp4(f64x4::new([
        h(t - t1, c.sqrt_rest),
        h(t, c.european.sqrt_t),
        0.0,
        0.0,
    ]))
    .to_array();
    let i1 = b_0 + (b_inf - b_0) * (1.0 - e1);
    let i2 = b_0 + (b_inf - b_0) * (1.0 - e2);
    if s >= i2 {
        // Past the model's trigger: exercise now, unless (very high vol, short life) the flat
        // trigger sits below where holding to expiry is still worth more.
        let value = (s - k).max(european);
        return (
            value,
            jet_of::<DERIVATIVES>(value, &[(s - k, &ex_jet), (european, &eu_jet)]),
        );
    }
    // The logarithms the triggers add (spot's and strike's are the contract's).
    let (ln_s, ln_k) = (c.ln_s, c.ln_k);
    let [ln_i1, ln_i2, ln_i1_k, ln_i2_k] = log4(f64x4::new([i1, i2, i1 - k, i2 - k])).to_array();
    // α = (I − K)·I^−β, kept as a logarithm: at low volatility β is in the thousands and I^β
    // alone overflows, while α·S^β = (I − K)(S/I)^β stays below I − K.
    let ln_a1 = ln_i1_k - beta * ln_i1;
    let ln_a2 = ln_i2_k - beta * ln_i2;
    // The same quantities as jets, for the pass with derivatives: the triggers move with the
    // volatility and the rate (through β, B∞, B0 and h), not with the spot.
    let jets = DERIVATIVES.then(|| {
        let (rj, bj) = rate_jets;
        let vj = Jet::variable(v, VOL);
        let v2j = vj * vj;
        let b_v2 = bj.div(v2j);
        let half_minus = b_v2 * -1.0 + 0.5;
        let beta = half_minus + ((b_v2 + -0.5) * (b_v2 + -0.5) + (rj * 2.0).div(v2j)).sqrt();
        let b_inf = beta.div(beta + -1.0) * k;
        let b_0 = if b_0_ratio >= k {
            rj.div(rj - bj) * k
        } else {
            Jet::constant(k)
        };
        let spread = b_inf - b_0;
        let denominator = spread * b_0;
        let h = |tt: f64, sqrt_tt: f64, e: f64| {
            ((bj * tt + vj * (2.0 * sqrt_tt)) * (-k * k))
                .div(denominator)
                .exp_at(e)
        };
        let trigger = |e: Jet| b_0 + spread * (e * -1.0 + 1.0);
        let (i1, i2) = (
            trigger(h(t - t1, c.sqrt_rest, e1)),
            trigger(h(t, c.european.sqrt_t, e2)),
        );
        let (ln_i1j, ln_i2j) = (i1.ln_at(ln_i1), i2.ln_at(ln_i2));
        let ln_a1 = (i1 + -k).ln_at(ln_i1_k) - beta * ln_i1j;
        let ln_a2 = (i2 + -k).ln_at(ln_i2_k) - beta * ln_i2j;
        ModelJets {
            r: rj,
            b: bj,
            v2: v2j,
            // −1/(σ√T) and −1/(σ√t1): every argument of Φ and Φ₂ is a numerator over one of
            // them, negated, so each is one product rather than a quotient of jets.
            neg_inv_sd: (vj * -c.european.sqrt_t).recip(),
            neg_inv_sd1: (vj * -c.sqrt_t1).recip(),
            two_b_v2: (bj * 2.0).div(v2j),
            ln_s: Jet::variable(ln_s, LN_SPOT),
            ln_k: Jet::constant(ln_k),
            ln_i1: ln_i1j,
            ln_i2: ln_i2j,
            beta,
            ln_a1,
            ln_a2,
        }
    });
    let m = Model::new(c, [ln_s, ln_k, ln_i1, ln_i2], v, jets.as_ref());
    let (ln_k, ln_i1, ln_i2) = (m.ln_k, m.ln_i1, m.ln_i2);
    // The arguments of each φ and ψ: γ, ln H and the log-scale, as values and (in the pass
    // with derivatives) as jets.
    let arg = |gamma: f64, ln_h: f64, ln_c: f64, jets: fn(&ModelJets) -> [Jet; 3]| Arg {
        gamma,
        ln_h,
        ln_c,
        jets,
    };
    let b2 = arg(beta, ln_i2, ln_a2, |j| [j.beta, j.ln_i2, j.ln_a2]);
    let b1 = arg(beta, ln_i1, ln_a1, |j| [j.beta, j.ln_i1, j.ln_a1]);
    let one_2 = arg(1.0, ln_i2, 0.0, |j| {
        [Jet::constant(1.0), j.ln_i2, Jet::constant(0.0)]
    });
    let one_1 = arg(1.0, ln_i1, 0.0, |j| {
        [Jet::constant(1.0), j.ln_i1, Jet::constant(0.0)]
    });
    let one_k = arg(1.0, ln_k, 0.0, |j| {
        [Jet::constant(1.0), j.ln_k, Jet::constant(0.0)]
    });
    let zero_2 = arg(0.0, ln_i2, ln_k, |j| [Jet::constant(0.0), j.ln_i2, j.ln_k]);
    let zero_1 = arg(0.0, ln_i1, ln_k, |j| [Jet::constant(0.0), j.ln_i1, j.ln_k]);
    let zero_k = arg(0.0, ln_k, ln_k, |j| [Jet::constant(0.0), j.ln_k, j.ln_k]);
    // ψ's first-period terms depend on γ only: the two ψ of γ = 1 and of γ = 0 share them.
    let (e_one, e_zero) = (m.first_period(&one_1), m.first_period(&zero_1));
    // The six φ terms, two per call so that their four normal CDFs share one vector.
    let [phi_b2, phi_1_2] = m.phi_pair::<DERIVATIVES>([&b2, &one_2]);
    let [phi_1_1, phi_0_2] = m.phi_pair::<DERIVATIVES>([&one_1, &zero_2]);
    let [phi_0_1, phi_b1] = m.phi_pair::<DERIVATIVES>([&zero_1, &b1]);
    let psi_b1 = m.psi::<DERIVATIVES>(&m.first_period(&b1), &b1);
    let psi_1_1 = m.psi::<DERIVATIVES>(&e_one, &one_1);
    let psi_1_k = m.psi::<DERIVATIVES>(&e_one, &one_k);
    let psi_0_1 = m.psi::<DERIVATIVES>(&e_zero, &zero_1);
    let psi_0_k = m.psi::<DERIVATIVES>(&e_zero, &zero_k);
    let power = (ln_a2 + beta * m.ln_s).exp();
    let value = power - phi_b2.v + phi_1_2.v - phi_1_1.v - phi_0_2.v + phi_0_1.v + phi_b1.v
        - psi_b1.v
        + psi_1_1.v
        - psi_1_k.v
        - psi_0_1.v
        + psi_0_k.v;
    // The exercise rule the model assumes can be worse than never exercising (long lives at high
    // vol with r near 0) or, by a hair, than exercising now (deep in the money at low vol). The
    // holder can always do either, so both values are floors.
    let floored = value.max(european).max(s - k);
    let Some(j) = m.jets else {
        return (floored, None);
    };
    let formula = || {
        // α₂·s^β.
        let power = (j.ln_a2 + j.beta * j.ln_s).exp_at(power);
        let sum = power - phi_b2 + phi_1_2 - phi_1_1 - phi_0_2 + phi_0_1 + phi_b1 - psi_b1
            + psi_1_1
            - psi_1_k
            - psi_0_1
            + psi_0_k;
        // NaN marks a term that was formed in logarithms (see `Model::psi`).
        sum.is_finite().then_some(sum)
    };
    (
        floored,
        jet_of::<DERIVATIVES>(
            floored,
            &[(value, &formula), (european, &eu_jet), (s - k, &ex_jet)],
        ),
    )
}

/// The jet of the candidate `f64::max` chose for `value` (the first one equal to it).
fn jet_of<const DERIVATIVES: bool>(
    value: f64,
    candidates: &[(f64, &dyn Fn() -> Option<Jet>)],
) -> Option<Jet> {
    if !DERIVATIVES {
        return None;
    }
    let (_, jet) = candidates.iter().find(|(v, _)| *v == value)?;
    jet()
}

/// The arguments of one φ or ψ: γ, ln H and the log-scale ln c, and where their jets are in
/// the model's, for the pass with derivatives.
struct Arg {
    gamma: f64,
    ln_h: f64,
    ln_c: f64,
    /// [γ, ln H, ln c] as jets, picked where they are used: formed with the argument and moved
    /// along with it, they were ten copies of ~300 bytes per price with derivatives.
    jets: fn(&ModelJets) -> [Jet; 3],
}

/// The model's inputs as jets (see [`bs_call`]).
struct ModelJets {
    r: Jet,
    b: Jet,
    v2: Jet,
    neg_inv_sd: Jet,
    neg_inv_sd1: Jet,
    two_b_v2: Jet,
    ln_s: Jet,
    ln_k: Jet,
    ln_i1: Jet,
    ln_i2: Jet,
    beta: Jet,
    ln_a1: Jet,
    ln_a2: Jet,
}

/// The jet of e^E·Φ(x) from its value P and Q = e^E·φ(x): ∂/∂E = P, ∂/∂x = Q, ∂²/∂E² = P,
/// ∂²/∂E∂x = Q and ∂²/∂x² = −x·Q, since φ′(x) = −x·φ(x).
fn scaled_cdf_jet(p: f64, q: f64, e: Jet, x: Jet) -> Jet {
    compose(p, [p, q], [[p, q], [q, -x.v * q]], [e, x])
}

/// What the φ and ψ functions of the paper share for one price: rates, times, and the
/// logarithms of spot, strike and triggers (every log-ratio the formulas need is a difference of
/// these, which saves some sixty logarithms per price).
struct Model<'a> {
    r: f64,
    b: f64,
    v2: f64,
    t: f64,
    t1: f64,
    sd: f64,
    sd1: f64,
    /// 2b/σ², the part of every κ = 2b/σ² + 2γ − 1 that does not depend on γ.
    two_b_v2: f64,
    ln_s: f64,
    ln_k: f64,
    ln_i1: f64,
    ln_i2: f64,
    /// The same as jets, in the pass with derivatives: borrowed, since moving the thirteen jets
    /// (~1.2 kB) into the model was a copy per evaluation that showed in profiles.
    jets: Option<&'a ModelJets>,
}

impl<'a> Model<'a> {
    /// The model at volatility `v`, for the logarithms of spot, strike and the two triggers.
    fn new(c: &Bs2002, logs: [f64; 4], v: f64, jets: Option<&'a ModelJets>) -> Model<'a> {
        let [ln_s, ln_k, ln_i1, ln_i2] = logs;
        Model {
            r: c.european.rate,
            b: c.b,
            v2: v * v,
            t: c.european.years,
            t1: c.t1,
            sd: v * c.european.sqrt_t,
            sd1: v * c.sqrt_t1,
            two_b_v2: 2.0 * c.b / (v * v),
            ln_s,
            ln_k,
            ln_i1,
            ln_i2,
            jets,
        }
    }

    /// e^c·φ(S, t1, γ, H, I2) for two (γ, ln H, ln c): the value of a claim paying S^γ at t1 if
    /// the trigger I2 was not hit and S ends below H. `ln_c` is a log-scale folded into the
    /// exponent so that products such as α·S^β never overflow. Each φ is a difference of two
    /// scaled normal CDFs; the two φ's four are evaluated as one vector.
    fn phi_pair<const DERIVATIVES: bool>(&self, args: [&Arg; 2]) -> [Jet; 2] {
        let (r, b, v2, t, sd) = (self.r, self.b, self.v2, self.t1, self.sd1);
        let ln_is = self.ln_i2 - self.ln_s;
        let [a0, a1] = args;
        let (g0, h0, c0) = (a0.gamma, a0.ln_h, a0.ln_c);
        let (g1, h1, c1) = (a1.gamma, a1.ln_h, a1.ln_c);
        // d = −(ln(S/H) + (b + (γ − ½)σ²)t1)/(σ√t1) of both φ, and the shift 2·ln(I2/S)/(σ√t1)
        // of their reflected terms: four divisions as one.
        let numerator =
            |gamma: f64, ln_h: f64| -((self.ln_s - ln_h) + (b + (gamma - 0.5) * v2) * t);
        let [d0, shift, d1, _] = (f64x4::new([
            numerator(g0, h0),
            2.0 * ln_is,
            numerator(g1, h1),
            2.0 * ln_is,
        ]) / f64x4::splat(sd))
        .to_array();
        let base = |gamma: f64, ln_c: f64| {
            (-r + gamma * b + 0.5 * gamma * (gamma - 1.0) * v2) * t + gamma * self.ln_s + ln_c
        };
        let kappa = |gamma: f64| self.two_b_v2 + 2.0 * gamma - 1.0;
        let (base0, base1) = (base(g0, c0), base(g1, c1));
        let scale = [
            base0,
            base0 + kappa(g0) * ln_is,
            base1,
            base1 + kappa(g1) * ln_is,
        ];
        let x = [d0, d0 - shift, d1, d1 - shift];
        let (scale, x4) = (f64x4::new(scale), f64x4::new(x));
        let (true, Some(j)) = (DERIVATIVES, self.jets) else {
            let [p0, p1, q0, q1] = scaled_cdf4(scale, x4).to_array();
            return [p0 - p1, q0 - q1].map(Jet::constant);
        };
        // P = e^scale·Φ(x) and Q = e^scale·φ(x), from the same exponentials.
        let (p, q) = scaled_cdf4_and_density(scale, x4);
        let (p, q) = (p.to_array(), q.to_array());
        let values = [p[0] - p[1], p[2] - p[3]];
        let ln_is = j.ln_i2 - j.ln_s;
        let shift = ln_is * j.neg_inv_sd1 * -2.0;
        let mut out = values.map(Jet::constant);
        for (n, arg) in args.iter().enumerate() {
            let [gamma, ln_h, ln_c] = (arg.jets)(j);
            let drift = (j.b + j.v2 * (gamma + -0.5)) * t;
            let d = (j.ln_s - ln_h + drift) * j.neg_inv_sd1;
            let base = (j.r * -1.0 + gamma * j.b + j.v2 * gamma * (gamma + -1.0) * 0.5) * t
                + gamma * j.ln_s
                + ln_c;
            let kappa = j.two_b_v2 + gamma * 2.0 + -1.0;
            let (i, reflected) = (2 * n, 2 * n + 1);
            out[n] = scaled_cdf_jet(p[i], q[i], base, d)
                - scaled_cdf_jet(p[reflected], q[reflected], base + kappa * ln_is, d - shift);
            out[n].v = values[n];
        }
        out
    }

    /// The first-period arguments of ψ for one γ: −e1…−e4 and their normal CDFs.
    fn first_period(&self, arg: &Arg) -> FirstPeriod {
        let gamma = arg.gamma;
        let (ls, li1, li2, t1, sd1) = (self.ln_s, self.ln_i1, self.ln_i2, self.t1, self.sd1);
        let mu_t1 = (self.b + (gamma - 0.5) * self.v2) * t1;
        let (ls_i1, li2_si1) = (ls - li1, 2.0 * li2 - ls - li1);
        let neg_e = (f64x4::new([
            -(ls_i1 + mu_t1),
            -(li2_si1 + mu_t1),
            -(ls_i1 - mu_t1),
            -(li2_si1 - mu_t1),
        ]) / f64x4::splat(sd1))
        .to_array();
        let jets = self.jets.map(|j| {
            let gamma = (arg.jets)(j)[0];
            let mu_t1 = (j.b + j.v2 * (gamma + -0.5)) * t1;
            let (ls_i1, li2_si1) = (j.ln_s - j.ln_i1, j.ln_i2 * 2.0 - j.ln_s - j.ln_i1);
            [
                ls_i1 + mu_t1,
                li2_si1 + mu_t1,
                ls_i1 - mu_t1,
                li2_si1 - mu_t1,
            ]
            .map(|e| e * j.neg_inv_sd1)
        });
        let (cdf, jets) = match jets {
            Some(neg_e_jets) => {
                let (cdf, gaussian) = norm_cdf4_and_gaussian(f64x4::new(neg_e));
                let jets = PeriodJets {
                    neg_e: neg_e_jets,
                    gaussian: gaussian.to_array(),
                };
                (cdf, Some(jets))
            }
            None => (norm_cdf4(f64x4::new(neg_e)), None),
        };
        FirstPeriod {
            gamma,
            neg_e,
            cdf: cdf.to_array(),
            jets,
        }
    }

    /// e^c·ψ(S, T, γ, H, I2, I1, t1): the two-period analogue of [`Model::phi_pair`]'s φ, with trigger
    /// I2 before t1 and I1 after, built on the bivariate normal with correlation √(t1/T).
    fn psi<const DERIVATIVES: bool>(&self, fp: &FirstPeriod, arg: &Arg) -> Jet {
        let (ln_h, ln_c) = (arg.ln_h, arg.ln_c);
        let (r, b, v2, t, sd) = (self.r, self.b, self.v2, self.t, self.sd);
        let (ls, li1, li2, gamma) = (self.ln_s, self.ln_i1, self.ln_i2, fp.gamma);
        let mu_t = (b + (gamma - 0.5) * v2) * t;
        let neg_f = (f64x4::new([
            -(ls - ln_h + mu_t),
            -(2.0 * li2 - ls - ln_h + mu_t),
            -(2.0 * li1 - ls - ln_h + mu_t),
            -(ls + 2.0 * li1 - ln_h - 2.0 * li2 + mu_t),
        ]) / f64x4::splat(sd))
        .to_array();
        let lambda = -r + gamma * b + 0.5 * gamma * (gamma - 1.0) * v2;
        let kappa = self.two_b_v2 + 2.0 * gamma - 1.0;
        let base = lambda * t + gamma * ls + ln_c;
        let bvn = Bvn::get();
        // The model carries jets exactly in the pass with derivatives, where the terms'
        // Gaussian factors and their integrals' slopes in (a, b) come from the same work.
        let (cdf_f, gaussian_f) = if DERIVATIVES {
            let (cdf, gaussian) = norm_cdf4_and_gaussian(f64x4::new(neg_f));
            (cdf.to_array(), gaussian.to_array())
        } else {
            (norm_cdf4(f64x4::new(neg_f)).to_array(), [0.0; 4])
        };
        // Terms 0 and 1 at +ρ, 2 and 3 at −ρ.
        let m = |i: usize, negative: bool| {
            bvn.cdf_with::<DERIVATIVES>(fp.neg_e[i], fp.cdf[i], neg_f[i], cdf_f[i], negative)
        };
        let terms = [m(0, false), m(1, false), m(2, true), m(3, true)];
        let (probability, slopes) = (terms.map(|t| t.0), terms.map(|t| t.1));
        let exponent = [
            base,
            base + kappa * (li2 - ls),
            base + kappa * (li1 - ls),
            base + kappa * (li1 - li2),
        ];
        // e^exponent·m, four at a time; past e^700 the product is formed in logs so a huge
        // scale times a tiny probability does not overflow to ∞ (and 0·∞ is not formed).
        let moderate = exponent.iter().all(|e| *e < 700.0);
        let scale = exp4(f64x4::new(exponent));
        let terms = if moderate {
            (scale * f64x4::new(probability)).to_array()
        } else {
            std::array::from_fn(|i| match (exponent[i], probability[i]) {
                (_, 0.0) => 0.0,
                (e, m) if e < 700.0 => e.exp() * m,
                (e, m) => (e + m.ln()).exp(),
            })
        };
        let v = terms[0] - terms[1] - terms[2] + terms[3];
        let (true, Some(j), Some(period)) = (DERIVATIVES, self.jets, &fp.jets) else {
            return Jet::constant(v);
        };
        if !moderate {
            // Rare (extreme vol or rates); the caller differences prices instead.
            let mut nan = Jet::constant(v);
            nan.d = f64x4::splat(f64::NAN);
            return nan;
        }
        let [gamma, ln_h, ln_c] = (arg.jets)(j);
        let mu_t = (j.b + j.v2 * (gamma + -0.5)) * t;
        let (ls, li1, li2) = (j.ln_s, j.ln_i1, j.ln_i2);
        let neg_f_jets = [
            ls - ln_h + mu_t,
            li2 * 2.0 - ls - ln_h + mu_t,
            li1 * 2.0 - ls - ln_h + mu_t,
            ls + li1 * 2.0 - ln_h - li2 * 2.0 + mu_t,
        ]
        .map(|f| f * j.neg_inv_sd);
        let lambda = j.r * -1.0 + gamma * j.b + j.v2 * gamma * (gamma + -1.0) * 0.5;
        let kappa = j.two_b_v2 + gamma * 2.0 + -1.0;
        let base = lambda * t + gamma * ls + ln_c;
        let exponent_jets = [
            base,
            base + kappa * (li2 - ls),
            base + kappa * (li1 - ls),
            base + kappa * (li1 - li2),
        ];
        let neg_e = &period.neg_e;
        let partials = bvn.partials(
            [neg_e.map(|e| e.v), neg_f],
            [fp.cdf, cdf_f],
            [period.gaussian, gaussian_f],
            slopes,
            (exponent, scale),
            terms,
        );
        let term = |i: usize| {
            let BvnPartials {
                value,
                da,
                db,
                daa,
                dab,
                dbb,
            } = partials[i];
            compose(
                value,
                [value, da, db],
                [[value, da, db], [da, daa, dab], [db, dab, dbb]],
                [exponent_jets[i], neg_e[i], neg_f_jets[i]],
            )
        };
        let mut psi = term(0) - term(1) - term(2) + term(3);
        psi.v = v;
        psi
    }
}

/// ψ's arguments that depend on γ but not on H.
struct FirstPeriod {
    gamma: f64,
    neg_e: [f64; 4],
    cdf: [f64; 4],
    /// In the pass with derivatives only.
    jets: Option<PeriodJets>,
}

/// What the pass with derivatives adds to a [`FirstPeriod`].
struct PeriodJets {
    /// −e1…−e4 as jets.
    neg_e: [Jet; 4],
    /// e^(−e²/2) of each, which their normal CDFs formed anyway (see [`Bvn::partials`]).
    gaussian: [f64; 4],
}

/// Gauss-Legendre nodes on [−1, 1] for the bivariate normal. The integrand below is analytic on
/// θ ∈ [0, asin ρ] with its nearest singularity at θ = π/2, which for the model's correlation
/// √(½(√5 − 1)) ≈ 0.786 (asin ρ ≈ 0.905) puts the Bernstein ellipse parameter near 4.7: the
/// error falls like 4.7^(−2n): about 2e-11 at n = 8, and 2.7e-11 at worst measured against
/// direct integration over the test's grid (1e-15 with twelve nodes, which cost 15% more per
/// price). In a price that is an error of ~1e-11 of the spot: nine orders of magnitude below
/// the model's own distance from the true American price (~1e-2) and far below any tick, and
/// smooth in the inputs, so the finite-difference greeks do not see it. So eight nodes: two
/// vectors of four, the integrand's exponentials (most of the model's cost) evaluated four at a
/// time ([`exp4`]).
const NODES: usize = 8;
/// The nodes in vectors of four.
const VECTORS: usize = NODES / 4;

/// The bivariate normal distribution at the one correlation the model uses, ±√(t1/T).
///
/// Drezner and Wesolowsky's identity: Φ₂(a, b; ρ) = Φ(a)Φ(b) + (1/2π)∫₀^asin ρ exp(−(a² + b²
/// − 2ab·sin θ)/(2cos²θ)) dθ, integrated by Gauss-Legendre. With ρ fixed, the nodes' sines and
/// cosines are computed once.
pub(crate) struct Bvn {
    /// The correlation (the model's terms 0 and 1 use +ρ, 2 and 3 use −ρ).
    rho: f64,
    sin: [f64x4; VECTORS],
    half_sec2: [f64x4; VECTORS],
    weight: [f64x4; VECTORS],
    /// The weights times 1/cos²θ, for the integral's partial derivatives
    /// ([`Bvn::cdf_with`]).
    weight_sec2: [f64x4; VECTORS],
}

impl Bvn {
    /// The table for ρ = √(½(√5 − 1)), built on first use.
    pub(crate) fn get() -> &'static Bvn {
        static TABLE: OnceLock<Bvn> = OnceLock::new();
        TABLE.get_or_init(|| Bvn::new((0.5 * (5f64.sqrt() - 1.0)).sqrt()))
    }

    /// The table for correlation `rho` (accurate to ~3e-11 for |ρ| up to about 0.8).
    pub(crate) fn new(rho: f64) -> Bvn {
        let (x, w) = gauss_legendre();
        let half = 0.5 * rho.asin();
        let theta = x.map(|x| half * (x + 1.0));
        let vectors = |node: &dyn Fn(usize) -> f64| {
            std::array::from_fn(|v| f64x4::new(std::array::from_fn(|i| node(4 * v + i))))
        };
        Bvn {
            rho,
            sin: vectors(&|j| theta[j].sin()),
            half_sec2: vectors(&|j| 0.5 / (theta[j].cos() * theta[j].cos())),
            weight: vectors(&|j| w[j] * half / (2.0 * std::f64::consts::PI)),
            weight_sec2: vectors(&|j| {
                w[j] * half / (2.0 * std::f64::consts::PI) / (theta[j].cos() * theta[j].cos())
            }),
        }
    }

    /// Φ₂(a, b; ρ), or Φ₂(a, b; −ρ) when `negative`: θ ↦ −θ flips the sines and the direction
    /// of the integral. (The model itself calls [`Bvn::cdf_with`]; this is the tests' entry.)
    #[cfg(test)]
    pub(crate) fn cdf(&self, a: f64, b: f64, negative: bool) -> f64 {
        use super::bsm::norm_cdf;
        self.cdf_with::<false>(a, norm_cdf(a), b, norm_cdf(b), negative)
            .0
    }

    /// [`Bvn::cdf`] and its integral's slopes (see [`Bvn::cdf_with`]); the tests' entry.
    #[cfg(test)]
    pub(crate) fn cdf_and_slopes(&self, a: f64, b: f64, negative: bool) -> (f64, [f64; 2]) {
        use super::bsm::norm_cdf;
        self.cdf_with::<true>(a, norm_cdf(a), b, norm_cdf(b), negative)
    }

    /// [`Bvn::cdf`] with Φ(a) and Φ(b) already known, and with `SLOPES` the partial derivatives
    /// of its integral term in a and in b, `[∂I/∂a, ∂I/∂b]` (zero without), so that ∂Φ₂/∂a =
    /// φ(a)Φ(b) + ∂I/∂a and ∂Φ₂/∂b = φ(b)Φ(a) + ∂I/∂b. The value is the same bits either way.
    ///
    /// The integrand's derivative is the integrand times −(a ∓ b·sin θ)/cos²θ, so both come
    /// from the exponentials the value already took, as two more weighted sums: Σ w·f/cos²θ
    /// and Σ w·f·sin θ/cos²θ. They are the exact derivatives of the quadrature, where the
    /// closed forms (φ(a)Φ((b − ρa)/√(1 − ρ²)) and its mirror) are those of the exact
    /// integral and cost two more normal CDFs of four lanes per ψ (the largest part of a
    /// price with derivatives). The two differ by the quadrature's error in the derivative,
    /// 2e-10 at worst over a, b ∈ [−9, 9] (against ~3e-11 in the value); a price's
    /// derivatives are then those of the very function the solver finds the root of.
    #[inline(always)]
    fn cdf_with<const SLOPES: bool>(
        &self,
        a: f64,
        cdf_a: f64,
        b: f64,
        cdf_b: f64,
        negative: bool,
    ) -> (f64, [f64; 2]) {
        let (sign, ab) = if negative {
            (-1.0, -a * b)
        } else {
            (1.0, a * b)
        };
        let (sq, two_ab) = (f64x4::splat(a * a + b * b), f64x4::splat(2.0 * ab));
        let (mut sum, mut sec2, mut sin_sec2) = (f64x4::ZERO, f64x4::ZERO, f64x4::ZERO);
        for v in 0..VECTORS {
            let exponent = -(sq - two_ab * self.sin[v]) * self.half_sec2[v];
            let f = exp4(exponent);
            sum += self.weight[v] * f;
            if SLOPES {
                let g = self.weight_sec2[v] * f;
                sec2 += g;
                sin_sec2 += g * self.sin[v];
            }
        }
        // Summed in a fixed order (the library's own reduction depends on the vector width the
        // build targets), so the result is the same bits on every build.
        let total = |x: f64x4| {
            let [x0, x1, x2, x3] = x.to_array();
            (x0 + x1) + (x2 + x3)
        };
        let value = (cdf_a * cdf_b + sign * total(sum)).clamp(0.0, 1.0);
        if !SLOPES {
            return (value, [0.0; 2]);
        }
        let (sec2, sin_sec2) = (total(sec2), total(sin_sec2));
        // With s = ±1 the integral's sign (−1 for −ρ), the integrand's exponent is
        // −(a² + b² − 2s·ab·sin θ)/(2cos²θ), whose derivative in a is −(a − s·b·sin θ)/cos²θ:
        // s times that, integrated, is −s·a·Σw·f/cos²θ + b·Σw·f·sin θ/cos²θ (s² = 1), and the
        // same with a and b exchanged.
        (
            value,
            [
                -sign * a * sec2 + b * sin_sec2,
                -sign * b * sec2 + a * sin_sec2,
            ],
        )
    }
}

/// One term e^E·Φ₂(a, b; ±ρ) of a ψ and its partial derivatives in (a, b), each times e^E
/// (those in E are the term itself).
#[derive(Debug, Clone, Copy)]
struct BvnPartials {
    value: f64,
    da: f64,
    db: f64,
    daa: f64,
    dab: f64,
    dbb: f64,
}

impl Bvn {
    /// The partials of the four terms e^E·Φ₂(a, b; ±ρ) of one ψ, the first two at +ρ and the
    /// last two at −ρ, given their values, Φ(a) and Φ(b), the Gaussian factors e^(−a²/2) and
    /// e^(−b²/2), and their integrals' slopes from [`Bvn::cdf_with`]: ∂Φ₂/∂a =
    /// φ(a)Φ(b) + ∂I/∂a, ∂Φ₂/∂b = φ(b)Φ(a) + ∂I/∂b; with the density φ₂(a, b; ρ),
    /// ∂²Φ₂/∂a∂b = φ₂, ∂²Φ₂/∂a² = −a·∂Φ₂/∂a − ρφ₂ and ∂²Φ₂/∂b² = −b·∂Φ₂/∂b − ρφ₂.
    ///
    /// `scale` is e^E, finite (the caller has checked E < 700), so e^E·φ(a) is formed as a
    /// product rather than as one exponential of E − a²/2: the same to rounding except where
    /// the Gaussian factor is subnormal or zero (a² > 1416), and there its absolute error is
    /// at most e^700 times the smallest subnormal, 5e-20. The bivariate density is formed
    /// together with the term's e^E in one exponent.
    fn partials(
        &self,
        [a, b]: [[f64; 4]; 2],
        [cdf_a, cdf_b]: [[f64; 4]; 2],
        [gaussian_a, gaussian_b]: [[f64; 4]; 2],
        slopes: [[f64; 2]; 4],
        (exponent, scale): ([f64; 4], f64x4),
        value: [f64; 4],
    ) -> [BvnPartials; 4] {
        let rho = [self.rho, self.rho, -self.rho, -self.rho];
        let one_minus = 1.0 - self.rho * self.rho;
        let root = one_minus.sqrt();
        let v4 = f64x4::new;
        let (av, bv, e, r) = (v4(a), v4(b), v4(exponent), v4(rho));
        // e^E·φ(x) for x = a and x = b.
        let scaled_phi =
            |gaussian: [f64; 4]| (scale * v4(gaussian) * f64x4::splat(FRAC_1_SQRT_2PI)).to_array();
        let (phi_a, phi_b) = (scaled_phi(gaussian_a), scaled_phi(gaussian_b));
        let scale = scale.to_array();
        let quad =
            (av * av - f64x4::splat(2.0) * r * av * bv + bv * bv) / f64x4::splat(2.0 * one_minus);
        let density =
            (exp4(e - quad) * f64x4::splat(1.0 / (2.0 * std::f64::consts::PI * root))).to_array();
        std::array::from_fn(|i| {
            let [slope_a, slope_b] = slopes[i];
            let ma = phi_a[i] * cdf_b[i] + scale[i] * slope_a;
            let mb = phi_b[i] * cdf_a[i] + scale[i] * slope_b;
            let f = density[i];
            BvnPartials {
                value: value[i],
                da: ma,
                db: mb,
                daa: -a[i] * ma - rho[i] * f,
                dab: f,
                dbb: -b[i] * mb - rho[i] * f,
            }
        })
    }
}

/// Gauss-Legendre nodes and weights on [−1, 1], by Newton's method on the Legendre polynomial
/// from the Chebyshev-like initial guesses (converges to machine precision in a few steps).
fn gauss_legendre() -> ([f64; NODES], [f64; NODES]) {
    let n = NODES;
    let (mut xs, mut ws) = ([0.0; NODES], [0.0; NODES]);
    for i in 0..n {
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 0.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0, x);
            for j in 2..=n {
                let jf = j as f64;
                let p2 = ((2.0 * jf - 1.0) * x * p1 - (jf - 1.0) * p0) / jf;
                p0 = p1;
                p1 = p2;
            }
            dp = n as f64 * (x * p1 - p0) / (x * x - 1.0);
            let dx = p1 / dp;
            x -= dx;
            if dx.abs() < 1e-16 {
                break;
            }
        }
        xs[i] = x;
        ws[i] = 2.0 / ((1.0 - x * x) * dp * dp);
    }
    (xs, ws)
}
