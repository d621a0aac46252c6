//! Black-Scholes-Merton with a continuous dividend yield: price and analytic greeks in raw units
//! (vega and rho per 1.00 of vol or rate, theta and charm per year). These functions do not
//! validate their inputs (they sit on the hot path after the IV solver already did); callers with
//! unchecked inputs use [`super::price_and_greeks`].

use super::exp::exp4;
use super::normal::{norm_cdf2, norm_cdf2_and_gaussian};
use super::{Greeks, Right};
use implied_vol::{DefaultSpecialFn, SpecialFn};
use wide::f64x4;

/// Standard normal cumulative distribution, from the `implied-vol` crate (accurate to ~1e-16
/// relative in both tails, unlike the textbook erf-based shortcuts).
pub(crate) fn norm_cdf(x: f64) -> f64 {
    DefaultSpecialFn::norm_cdf(x)
}

/// 1/√(2π).
pub(crate) const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Standard normal density.
pub(crate) fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() * FRAC_1_SQRT_2PI
}

/// Black-Scholes-Merton price (the greeks' shared terms are skipped: the American finite
/// differences and the IV solvers call this many times).
#[inline]
pub fn bsm_price(
    right: Right,
    spot: f64,
    strike: f64,
    years: f64,
    rate: f64,
    dividend: f64,
    vol: f64,
) -> f64 {
    BsmContract::new(right, spot, strike, years, rate, dividend).price(vol)
}

/// Analytic price and greeks (vega, rho per 1.00; theta, charm per year).
pub fn bsm_greeks(
    right: Right,
    spot: f64,
    strike: f64,
    years: f64,
    rate: f64,
    dividend: f64,
    vol: f64,
) -> Greeks {
    BsmContract::new(right, spot, strike, years, rate, dividend).greeks(vol)
}

/// One contract's terms that do not depend on the volatility — √T, the log-moneyness against
/// the forward and the two discount factors — computed once, for a solver that prices the
/// same contract at several volatilities or solves it and then needs its greeks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BsmContract {
    pub(crate) right: Right,
    pub(crate) spot: f64,
    pub(crate) strike: f64,
    pub(crate) years: f64,
    pub(crate) rate: f64,
    pub(crate) dividend: f64,
    pub(crate) sqrt_t: f64,
    /// ln(F/K) = ln(S/K) + (r − q)T.
    pub(crate) log_moneyness: f64,
    /// e^(−qT).
    pub(crate) dq: f64,
    /// e^(−rT).
    pub(crate) dr: f64,
}

impl BsmContract {
    /// The volatility-free terms (inputs are not validated: see the module docs).
    #[inline]
    pub(crate) fn new(
        right: Right,
        spot: f64,
        strike: f64,
        years: f64,
        rate: f64,
        dividend: f64,
    ) -> BsmContract {
        let (dq, dr) = discount_factors(rate, dividend, years);
        BsmContract {
            right,
            spot,
            strike,
            years,
            rate,
            dividend,
            sqrt_t: years.sqrt(),
            log_moneyness: (spot / strike).ln() + (rate - dividend) * years,
            dq,
            dr,
        }
    }

    /// S·e^(−qT) and K·e^(−rT).
    #[inline]
    pub(crate) fn discounted(&self) -> (f64, f64) {
        (self.spot * self.dq, self.strike * self.dr)
    }

    /// d1 and d2 at a total volatility σ√T.
    #[inline]
    fn d1_d2(&self, sd: f64) -> (f64, f64) {
        let d1 = self.log_moneyness / sd + 0.5 * sd;
        (d1, d1 - sd)
    }

    /// The price at `vol`.
    #[inline]
    pub(crate) fn price(&self, vol: f64) -> f64 {
        let (d1, d2) = self.d1_d2(vol * self.sqrt_t);
        let (fwd_s, pv_k) = self.discounted();
        let w = omega(self.right);
        let [n1, n2] = norm_cdf2([w * d1, w * d2]);
        w * (fwd_s * n1 - pv_k * n2)
    }

    /// Vega at `vol` (per 1.00 of vol).
    #[inline]
    pub(crate) fn vega(&self, vol: f64) -> f64 {
        self.vega_vomma(vol).0
    }

    /// Vega and vomma at `vol` (per 1.00 of vol, and squared).
    #[inline]
    pub(crate) fn vega_vomma(&self, vol: f64) -> (f64, f64) {
        let (d1, d2) = self.d1_d2(vol * self.sqrt_t);
        let vega = self.spot * self.dq * norm_pdf(d1) * self.sqrt_t;
        (vega, vega * d1 * d2 / vol)
    }

    /// Price and greeks at `vol`. The two normal CDFs and the density come out of one vector
    /// exponential: they are the expensive part.
    #[inline]
    pub(crate) fn greeks(&self, vol: f64) -> Greeks {
        let BsmContract {
            right,
            spot,
            years,
            rate,
            dividend,
            sqrt_t,
            dq,
            ..
        } = *self;
        let sd = vol * sqrt_t;
        let (d1, d2) = self.d1_d2(sd);
        let w = omega(right);
        let ([n1, n2], [gaussian, _]) = norm_cdf2_and_gaussian([w * d1, w * d2]);
        let pdf = gaussian * FRAC_1_SQRT_2PI;
        let vega = spot * dq * pdf * sqrt_t;
        // Four of the five divisions as one vector division (each lane is the IEEE quotient,
        // the same bits as alone); charm_common is the part of charm both rights share:
        // delta's drift from the moving d1.
        let [gamma, common_theta, vanna, charm_common] =
            (f64x4::new([
                dq * pdf,
                -spot * dq * pdf * vol,
                -dq * pdf * d2,
                -dq * pdf * (2.0 * (rate - dividend) * years - d2 * sd),
            ]) / f64x4::new([spot * sd, 2.0 * sqrt_t, vol, 2.0 * years * sd]))
            .to_array();
        let vomma = vega * d1 * d2 / vol;
        let (fwd_s, pv_k) = self.discounted();
        Greeks {
            price: w * (fwd_s * n1 - pv_k * n2),
            delta: w * dq * n1,
            gamma,
            vega,
            theta: common_theta - w * (rate * pv_k * n2 - dividend * fwd_s * n1),
            rho: w * years * pv_k * n2,
            vanna,
            charm: w * dividend * dq * n1 + charm_common,
            vomma,
        }
    }
}

/// e^(−qT) and e^(−rT), the dividend and rate discount factors, from one [`exp4`].
#[inline]
pub(crate) fn discount_factors(rate: f64, dividend: f64, years: f64) -> (f64, f64) {
    let [dq, dr, _, _] = exp4(f64x4::new([-dividend * years, -rate * years, 0.0, 0.0])).to_array();
    (dq, dr)
}

/// ω = +1 for a call, −1 for a put: folds the two rights into one set of formulas.
fn omega(right: Right) -> f64 {
    match right {
        Right::Call => 1.0,
        Right::Put => -1.0,
    }
}
