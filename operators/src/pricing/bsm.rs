//! Black-Scholes-Merton with a continuous dividend yield: price and analytic greeks in raw units
//! (vega and rho per 1.00 of vol or rate, theta and charm per year). These functions do not
//! validate their inputs (they sit on the hot path after the IV solver already did); callers with
//! unchecked inputs use [`super::price_and_greeks`].

use super::exp::exp4;
use super::normal::norm_cdf2;
use super::{Greeks, Right};
use implied_vol::{DefaultSpecialFn, SpecialFn};
use wide::f64x4;

/// Standard normal cumulative distribution, from the `implied-vol` crate (accurate to ~1e-16
/// relative in both tails, unlike the textbook erf-based shortcuts).
pub(crate) fn norm_cdf(x: f64) -> f64 {
    DefaultSpecialFn::norm_cdf(x)
}

/// 1/√(2π).
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

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
    let sd = vol * years.sqrt();
    let d1 = ((spot / strike).ln() + (rate - dividend) * years) / sd + 0.5 * sd;
    let d2 = d1 - sd;
    let (dq, dr) = discount_factors(rate, dividend, years);
    let (fwd_s, pv_k) = (spot * dq, strike * dr);
    let w = omega(right);
    let [n1, n2] = norm_cdf2([w * d1, w * d2]);
    w * (fwd_s * n1 - pv_k * n2)
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
    let sqrt_t = years.sqrt();
    let sd = vol * sqrt_t;
    let d1 = ((spot / strike).ln() + (rate - dividend + 0.5 * vol * vol) * years) / sd;
    let d2 = d1 - sd;
    // The three exponentials in one vector, the two normal CDFs in another: they are the
    // expensive part, and each is evaluated once.
    let w = omega(right);
    let [dq, dr, gaussian, _] = exp4(f64x4::new([
        -dividend * years,
        -rate * years,
        -0.5 * d1 * d1,
        0.0,
    ]))
    .to_array();
    let pdf = gaussian * FRAC_1_SQRT_2PI;
    let gamma = dq * pdf / (spot * sd);
    let vega = spot * dq * pdf * sqrt_t;
    let common_theta = -spot * dq * pdf * vol / (2.0 * sqrt_t);
    let vanna = -dq * pdf * d2 / vol;
    let vomma = vega * d1 * d2 / vol;
    // The part of charm both rights share: delta's drift from the moving d1.
    let charm_common = -dq * pdf * (2.0 * (rate - dividend) * years - d2 * sd) / (2.0 * years * sd);
    let [n1, n2] = norm_cdf2([w * d1, w * d2]);
    let (fwd_s, pv_k) = (spot * dq, strike * dr);
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
