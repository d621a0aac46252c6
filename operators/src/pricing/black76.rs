//! Black-76: European options on a forward (futures options, or index options once the forward
//! is read from put-call parity). Greeks are with respect to the forward and hold the forward
//! fixed as time and rate move, the convention for futures options: rho is therefore −T·V (only
//! the discounting moves) and theta carries r·V.

use super::bsm::{norm_cdf, norm_pdf};
use super::{Greeks, Right};

/// Black-76 price of a European option on `forward`, discounted at `rate`.
pub fn black76_price(
    right: Right,
    forward: f64,
    strike: f64,
    years: f64,
    rate: f64,
    vol: f64,
) -> f64 {
    let sd = vol * years.sqrt();
    let d1 = (forward / strike).ln() / sd + 0.5 * sd;
    let d2 = d1 - sd;
    let df = (-rate * years).exp();
    match right {
        Right::Call => df * (forward * norm_cdf(d1) - strike * norm_cdf(d2)),
        Right::Put => df * (strike * norm_cdf(-d2) - forward * norm_cdf(-d1)),
    }
}

/// Black-76 price and analytic greeks: delta and gamma per unit of the forward, vega and rho per
/// 1.00, theta and charm per year.
pub fn black76_greeks(
    right: Right,
    forward: f64,
    strike: f64,
    years: f64,
    rate: f64,
    vol: f64,
) -> Greeks {
    let sqrt_t = years.sqrt();
    let sd = vol * sqrt_t;
    let d1 = (forward / strike).ln() / sd + 0.5 * sd;
    let d2 = d1 - sd;
    let df = (-rate * years).exp();
    let pdf = norm_pdf(d1);
    let price = black76_price(right, forward, strike, years, rate, vol);
    let delta = match right {
        Right::Call => df * norm_cdf(d1),
        Right::Put => -df * norm_cdf(-d1),
    };
    let vega = df * forward * pdf * sqrt_t;
    Greeks {
        price,
        delta,
        gamma: df * pdf / (forward * sd),
        vega,
        // −∂V/∂T at a fixed forward: the time value decays and the discount factor shrinks.
        theta: -df * forward * pdf * vol / (2.0 * sqrt_t) + rate * price,
        rho: -years * price,
        vanna: -df * pdf * d2 / vol,
        // −∂Δ/∂T: ∂d1/∂T = −d2/(2T) for both rights, and the discount factor adds r·Δ.
        charm: rate * delta + df * pdf * d2 / (2.0 * years),
        vomma: vega * d1 * d2 / vol,
    }
}
