//! Black-Scholes-Merton with a continuous dividend yield: prices, analytic greeks in raw units
//! (vega and rho per 1.00 of vol or rate, theta per year), and implied volatility by Jäckel's
//! "Let's Be Rational" (the `implied-vol` crate) on the forward.

use implied_vol::{DefaultSpecialFn, ImpliedBlackVolatility, SpecialFn};

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// A call.
    Call,
    /// A put.
    Put,
}

impl Right {
    /// Parses `"call"` / `"put"`.
    pub fn parse(s: &str) -> Option<Right> {
        match s {
            "call" => Some(Right::Call),
            "put" => Some(Right::Put),
            _ => None,
        }
    }
    /// `"call"` / `"put"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Right::Call => "call",
            Right::Put => "put",
        }
    }
}

/// Price and first-order greeks of one option.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Greeks {
    /// Price.
    pub price: f64,
    /// dV/dS.
    pub delta: f64,
    /// d²V/dS².
    pub gamma: f64,
    /// dV/dσ per 1.00 of vol.
    pub vega: f64,
    /// dV/dt per year (calendar, ACT/365).
    pub theta: f64,
    /// dV/dr per 1.00 of rate.
    pub rho: f64,
    /// d²V/dS dσ (per 1.00 of vol).
    pub vanna: f64,
    /// Change of delta as time passes, per year (−∂Δ/∂T).
    pub charm: f64,
    /// d²V/dσ² (per 1.00 of vol, squared).
    pub vomma: f64,
}

/// Why no implied volatility exists.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IvError {
    /// An input is NaN or infinite.
    #[error("an input is not a finite number")]
    NotFinite,
    /// Spot, strike or time is not positive.
    #[error(
        "spot, strike and years must be positive (spot {spot}, strike {strike}, years {years})"
    )]
    NonPositiveInput {
        /// Spot.
        spot: f64,
        /// Strike.
        strike: f64,
        /// Years.
        years: f64,
    },
    /// Price below the discounted intrinsic value.
    #[error("price {price:.4} is below intrinsic value {intrinsic:.4}")]
    BelowIntrinsic {
        /// Price.
        price: f64,
        /// Intrinsic.
        intrinsic: f64,
    },
    /// Price above the no-arbitrage upper bound.
    #[error("price {price:.4} is above the upper bound {bound:.4}")]
    AboveUpperBound {
        /// Price.
        price: f64,
        /// Bound.
        bound: f64,
    },
    /// The solver found no volatility.
    #[error("no volatility reproduces the price")]
    NoSolution,
}

fn norm_cdf(x: f64) -> f64 {
    DefaultSpecialFn::norm_cdf(x)
}

fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Black-Scholes-Merton price.
pub fn bsm_price(
    right: Right,
    spot: f64,
    strike: f64,
    years: f64,
    rate: f64,
    dividend: f64,
    vol: f64,
) -> f64 {
    bsm_greeks(right, spot, strike, years, rate, dividend, vol).price
}

/// Analytic price and greeks.
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
    let (dq, dr) = ((-dividend * years).exp(), (-rate * years).exp());
    let pdf = norm_pdf(d1);
    let gamma = dq * pdf / (spot * sd);
    let vega = spot * dq * pdf * sqrt_t;
    let common_theta = -spot * dq * pdf * vol / (2.0 * sqrt_t);
    let vanna = -dq * pdf * d2 / vol;
    let vomma = vega * d1 * d2 / vol;
    // The part of charm both rights share: delta's drift from the moving d1.
    let charm_common = -dq * pdf * (2.0 * (rate - dividend) * years - d2 * sd) / (2.0 * years * sd);
    match right {
        Right::Call => Greeks {
            price: spot * dq * norm_cdf(d1) - strike * dr * norm_cdf(d2),
            delta: dq * norm_cdf(d1),
            gamma,
            vega,
            theta: common_theta - rate * strike * dr * norm_cdf(d2)
                + dividend * spot * dq * norm_cdf(d1),
            rho: strike * years * dr * norm_cdf(d2),
            vanna,
            charm: dividend * dq * norm_cdf(d1) + charm_common,
            vomma,
        },
        Right::Put => Greeks {
            price: strike * dr * norm_cdf(-d2) - spot * dq * norm_cdf(-d1),
            delta: -dq * norm_cdf(-d1),
            gamma,
            vega,
            theta: common_theta + rate * strike * dr * norm_cdf(-d2)
                - dividend * spot * dq * norm_cdf(-d1),
            rho: -strike * years * dr * norm_cdf(-d2),
            vanna,
            charm: -dividend * dq * norm_cdf(-d1) + charm_common,
            vomma,
        },
    }
}

/// Implied volatility of a European option price; bounds are checked first so the error says
/// which one was broken, and NaN is never returned.
pub fn implied_vol(
    right: Right,
    spot: f64,
    strike: f64,
    years: f64,
    rate: f64,
    dividend: f64,
    price: f64,
) -> Result<f64, IvError> {
    if ![spot, strike, years, rate, dividend, price]
        .iter()
        .all(|v| v.is_finite())
    {
        return Err(IvError::NotFinite);
    }
    if spot <= 0.0 || strike <= 0.0 || years <= 0.0 {
        return Err(IvError::NonPositiveInput {
            spot,
            strike,
            years,
        });
    }
    let (dq, dr) = ((-dividend * years).exp(), (-rate * years).exp());
    let (fwd_s, pv_k) = (spot * dq, strike * dr);
    let (intrinsic, bound) = match right {
        Right::Call => ((fwd_s - pv_k).max(0.0), fwd_s),
        Right::Put => ((pv_k - fwd_s).max(0.0), pv_k),
    };
    if price < intrinsic {
        return Err(IvError::BelowIntrinsic { price, intrinsic });
    }
    if price >= bound {
        return Err(IvError::AboveUpperBound { price, bound });
    }
    let forward = spot * ((rate - dividend) * years).exp();
    ImpliedBlackVolatility::builder()
        .forward(forward)
        .strike(strike)
        .expiry(years)
        .is_call(right == Right::Call)
        .option_price(price / dr)
        .build()
        .and_then(|iv| iv.calculate::<DefaultSpecialFn>())
        .filter(|v| v.is_finite() && *v > 0.0)
        .ok_or(IvError::NoSolution)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hull_reference_values() {
        // Hull, Options, Futures and Other Derivatives, example 15.6: S=42, K=40, r=10%, σ=20%, T=0.5.
        let c = bsm_price(Right::Call, 42.0, 40.0, 0.5, 0.10, 0.0, 0.2);
        let p = bsm_price(Right::Put, 42.0, 40.0, 0.5, 0.10, 0.0, 0.2);
        assert!(
            (c - 4.76).abs() < 0.005 && (p - 0.81).abs() < 0.005,
            "{c} {p}"
        );
    }

    #[test]
    fn put_call_parity_holds() {
        let (s, k, t, r, q, v) = (100.0, 95.0, 0.5, 0.05, 0.02, 0.25);
        let c = bsm_price(Right::Call, s, k, t, r, q, v);
        let p = bsm_price(Right::Put, s, k, t, r, q, v);
        assert!((c - p - (s * (-q * t).exp() - k * (-r * t).exp())).abs() < 1e-12);
    }

    #[test]
    fn greeks_match_finite_differences() {
        let (s, k, t, r, q, v) = (100.0, 105.0, 0.75, 0.03, 0.01, 0.3);
        for right in [Right::Call, Right::Put] {
            let g = bsm_greeks(right, s, k, t, r, q, v);
            let f = |s: f64, t: f64, r: f64, v: f64| bsm_price(right, s, k, t, r, q, v);
            let delta = |s: f64, t: f64, v: f64| bsm_greeks(right, s, k, t, r, q, v).delta;
            let vega = |v: f64| bsm_greeks(right, s, k, t, r, q, v).vega;
            let h = 1e-4;
            let fd = [
                (g.delta, (f(s + h, t, r, v) - f(s - h, t, r, v)) / (2.0 * h)),
                (
                    g.gamma,
                    (f(s + h, t, r, v) - 2.0 * f(s, t, r, v) + f(s - h, t, r, v)) / (h * h),
                ),
                (g.vega, (f(s, t, r, v + h) - f(s, t, r, v - h)) / (2.0 * h)),
                (
                    g.theta,
                    -(f(s, t + h, r, v) - f(s, t - h, r, v)) / (2.0 * h),
                ),
                (g.rho, (f(s, t, r + h, v) - f(s, t, r - h, v)) / (2.0 * h)),
                (
                    g.vanna,
                    (delta(s, t, v + h) - delta(s, t, v - h)) / (2.0 * h),
                ),
                (
                    g.charm,
                    -(delta(s, t + h, v) - delta(s, t - h, v)) / (2.0 * h),
                ),
                (g.vomma, (vega(v + h) - vega(v - h)) / (2.0 * h)),
            ];
            for (i, (a, n)) in fd.iter().enumerate() {
                assert!(
                    (a - n).abs() <= 1e-5 * a.abs().max(1.0),
                    "{right:?} greek {i}: {a} vs {n}"
                );
            }
        }
    }

    #[test]
    fn impossible_prices_are_rejected_with_the_reason() {
        assert!(matches!(
            implied_vol(Right::Call, 100.0, 80.0, 0.5, 0.0, 0.0, 10.0),
            Err(IvError::BelowIntrinsic { .. })
        ));
        assert!(matches!(
            implied_vol(Right::Call, 100.0, 80.0, 0.5, 0.0, 0.0, 120.0),
            Err(IvError::AboveUpperBound { .. })
        ));
        assert_eq!(
            implied_vol(Right::Put, 100.0, 80.0, 0.5, 0.0, 0.0, f64::NAN),
            Err(IvError::NotFinite)
        );
        assert!(matches!(
            implied_vol(Right::Put, 100.0, 80.0, 0.0, 0.0, 0.0, 1.0),
            Err(IvError::NonPositiveInput { .. })
        ));
    }

    #[test]
    fn iv_round_trips_over_a_grid() {
        for m in [-0.6, -0.3, 0.0, 0.3, 0.6] {
            for vol in [0.01, 0.2, 1.0, 5.0] {
                for years in [1.0 / (365.0 * 24.0), 0.1, 1.0, 3.0] {
                    let k = 100.0 * f64::exp(m);
                    for right in [Right::Call, Right::Put] {
                        let g = bsm_greeks(right, 100.0, k, years, 0.03, 0.01, vol);
                        // Skip points where the price carries no vol information (vega·σ tiny
                        // against the price's own rounding).
                        if g.vega * vol < 1e-6 * g.price.max(1e-12) || g.price < 1e-10 {
                            continue;
                        }
                        let iv = implied_vol(right, 100.0, k, years, 0.03, 0.01, g.price).unwrap();
                        assert!(
                            (iv - vol).abs() / vol < 1e-8,
                            "{right:?} m {m} vol {vol} t {years}: {iv}"
                        );
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn prop_iv_round_trip(m in -0.5f64..0.5, vol in 0.05f64..2.0, years in 0.02f64..2.0) {
            let k = 100.0 * m.exp();
            let g = bsm_greeks(Right::Call, 100.0, k, years, 0.02, 0.0, vol);
            prop_assume!(g.vega * vol > 1e-6 * g.price && g.price > 1e-8);
            let iv = implied_vol(Right::Call, 100.0, k, years, 0.02, 0.0, g.price).unwrap();
            prop_assert!((iv - vol).abs() / vol < 1e-8);
        }
    }
}
