//! Implied volatility. European: Jäckel's "Let's Be Rational" (the `implied-vol` crate), exact to
//! ~1e-15 in two Householder steps. American: Bjerksund-Stensland 2002 has no closed-form inverse,
//! so a bracketed Brent solver (inverse quadratic interpolation, with bisection whenever a step
//! would leave the bracket or shrink it too slowly) finds the root, started from the European IV
//! of the price so that it usually needs five to seven model evaluations.

use super::american::bs2002_price;
use super::bsm::bsm_price;
use super::{check_inputs, IvError, Right};
use implied_vol::{DefaultSpecialFn, ImpliedBlackVolatility};

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
    check_inputs(spot, strike, years, rate, dividend, price)?;
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

/// Lowest volatility the American solver tries (0.1%): below it no listed option trades, and
/// the model's exponents (β ≈ 2r/σ²) grow past what is worth evaluating.
const AMERICAN_VOL_FLOOR: f64 = 1e-3;
/// Highest volatility the American solver tries (2000%).
const AMERICAN_VOL_CAP: f64 = 20.0;

/// Implied volatility of an American option price under Bjerksund-Stensland 2002.
///
/// A price below the exercise value max(S − K, 0) / max(K − S, 0) (undiscounted: it can be
/// had now) is [`IvError::BelowIntrinsic`]; one at or above the spot (call) or strike (put) is
/// [`IvError::AboveUpperBound`]. A price between the exercise value and the model's value at the
/// volatility floor (e.g. a call on a stock without dividends is worth at least S − K·e^(−rT))
/// is also `BelowIntrinsic`, naming that floor value. When the model is the European one (a call
/// without dividends, a put with r ≤ 0) this is [`implied_vol`].
pub fn implied_vol_american(
    right: Right,
    spot: f64,
    strike: f64,
    years: f64,
    rate: f64,
    dividend: f64,
    price: f64,
) -> Result<f64, IvError> {
    check_inputs(spot, strike, years, rate, dividend, price)?;
    let (intrinsic, bound) = match right {
        Right::Call => ((spot - strike).max(0.0), spot),
        Right::Put => ((strike - spot).max(0.0), strike),
    };
    if price < intrinsic {
        return Err(IvError::BelowIntrinsic { price, intrinsic });
    }
    if price >= bound {
        return Err(IvError::AboveUpperBound { price, bound });
    }
    let never_early = match right {
        Right::Call => dividend <= 0.0,
        Right::Put => rate <= 0.0,
    };
    if never_early {
        return implied_vol(right, spot, strike, years, rate, dividend, price);
    }
    let f = |v: f64| bs2002_price(right, spot, strike, years, rate, dividend, v) - price;

    // The American value exceeds the European one at every vol, so the European IV of the price
    // lies above the root; taking off the early-exercise premium at that vol lands close below
    // it (the premium moves slowly with vol). Both are cheap and make a tight bracket.
    let (mut lo, mut hi) = (f64::NAN, f64::NAN);
    let (mut f_lo, mut f_hi) = (f64::NAN, f64::NAN);
    if let Ok(v_eu) = implied_vol(right, spot, strike, years, rate, dividend, price) {
        let v_eu = v_eu.clamp(AMERICAN_VOL_FLOOR, AMERICAN_VOL_CAP);
        let f_eu = f(v_eu);
        if f_eu >= 0.0 {
            (hi, f_hi) = (v_eu, f_eu);
            if f_eu == 0.0 {
                return Ok(v_eu);
            }
            let premium =
                f_eu + price - bsm_price(right, spot, strike, years, rate, dividend, v_eu);
            if let Ok(v) = implied_vol(right, spot, strike, years, rate, dividend, price - premium)
            {
                // A hair lower, so the guess usually brackets rather than lands on one side.
                let v = (v * (1.0 - 1e-6)).clamp(AMERICAN_VOL_FLOOR, v_eu);
                let fv = f(v);
                if fv <= 0.0 {
                    (lo, f_lo) = (v, fv);
                } else {
                    (hi, f_hi) = (v, fv);
                }
            }
        } else {
            (lo, f_lo) = (v_eu, f_eu);
        }
    }
    if f_lo.is_nan() || f_lo > 0.0 {
        // Walk down from the best upper point by halving until the model is below the price.
        let mut v = if hi.is_nan() { 0.5 } else { hi };
        loop {
            v = (0.5 * v).max(AMERICAN_VOL_FLOOR);
            let fv = f(v);
            if fv <= 0.0 {
                (lo, f_lo) = (v, fv);
                break;
            }
            (hi, f_hi) = (v, fv);
            if v <= AMERICAN_VOL_FLOOR {
                return Err(IvError::BelowIntrinsic {
                    price,
                    intrinsic: fv + price,
                });
            }
        }
    }
    if f_hi.is_nan() || f_hi < 0.0 {
        let mut v = lo;
        loop {
            v = (2.0 * v).min(AMERICAN_VOL_CAP);
            let fv = f(v);
            if fv >= 0.0 {
                (hi, f_hi) = (v, fv);
                break;
            }
            (lo, f_lo) = (v, fv);
            if v >= AMERICAN_VOL_CAP {
                return Err(IvError::NoSolution);
            }
        }
    }
    if f_lo == 0.0 {
        return Ok(lo);
    }
    brent(f, lo, hi, f_lo, f_hi).ok_or(IvError::NoSolution)
}

/// Brent's root finder on a bracket [a, b] with f(a)·f(b) < 0 (Brent, "Algorithms for
/// Minimization without Derivatives", 1973, ch. 4). It stops when the bracket is narrower than
/// 4e-16 relative, so the volatility is as exact as the model's price lets it be.
fn brent(f: impl Fn(f64) -> f64, a: f64, b: f64, fa: f64, fb: f64) -> Option<f64> {
    let (mut a, mut b, mut fa, mut fb) = (a, b, fa, fb);
    let (mut c, mut fc) = (a, fa);
    let (mut d, mut e) = (b - a, b - a);
    for _ in 0..100 {
        if (fb > 0.0) == (fc > 0.0) {
            // Keep the root between b and c.
            (c, fc) = (a, fa);
            d = b - a;
            e = d;
        }
        if fc.abs() < fb.abs() {
            (a, b, c) = (b, c, b);
            (fa, fb, fc) = (fb, fc, fb);
        }
        let tol = 2.0 * f64::EPSILON * b.abs();
        let m = 0.5 * (c - b);
        if m.abs() <= tol || fb == 0.0 {
            return b.is_finite().then_some(b);
        }
        if e.abs() >= tol && fa.abs() > fb.abs() {
            // Interpolate: secant with two points, inverse quadratic with three.
            let s = fb / fa;
            let (mut p, mut q);
            if a == c {
                p = 2.0 * m * s;
                q = 1.0 - s;
            } else {
                let (qq, r) = (fa / fc, fb / fc);
                p = s * (2.0 * m * qq * (qq - r) - (b - a) * (r - 1.0));
                q = (qq - 1.0) * (r - 1.0) * (s - 1.0);
            }
            if p > 0.0 {
                q = -q;
            } else {
                p = -p;
            }
            // Accept the step only if it stays well inside the bracket and shrinks faster than
            // bisection would; otherwise bisect.
            if 2.0 * p < (3.0 * m * q - (tol * q).abs()).min((e * q).abs()) {
                e = d;
                d = p / q;
            } else {
                d = m;
                e = m;
            }
        } else {
            d = m;
            e = m;
        }
        (a, fa) = (b, fb);
        b += if d.abs() > tol { d } else { tol.copysign(m) };
        fb = f(b);
        if !fb.is_finite() {
            return None;
        }
    }
    None
}
