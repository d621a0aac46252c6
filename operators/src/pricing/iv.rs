//! Implied volatility. European: the `implied-vol` crate's fastest inverse of the Black formula
//! (`solver::Experimental`, its author's successor to Jäckel's "Let's Be Rational", about 30%
//! cheaper here and held to the same precision target), with the crate's default Let's Be
//! Rational solver behind it for any input the first does not solve. American: Bjerksund-Stensland 2002 has no closed-form inverse,
//! so a safeguarded root finder solves it: a bracket from the European IV (the model is never
//! below the European price), a first guess from the European IV of the price less the
//! early-exercise premium, one Newton step with the European vega, then secant steps — each kept
//! inside the bracket, with bisection whenever a step would leave it or the bracket stops
//! halving. It usually needs three or four model evaluations.

use super::american::{Bs2002, Sensitivities};
use super::bsm::BsmContract;
use super::{check_inputs, IvError, Right, WarmStart};
use implied_vol::solver::{BlackSolver, Experimental, Hybrid};
use implied_vol::DefaultSpecialFn;

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
    european_iv(
        &BsmContract::new(right, spot, strike, years, rate, dividend),
        price,
    )
}

/// [`implied_vol`] on a contract whose inputs were checked and whose volatility-free terms are
/// at hand (the log-moneyness, √T and the discount factors are not computed again).
pub(crate) fn european_iv(c: &BsmContract, price: f64) -> Result<f64, IvError> {
    let (fwd_s, pv_k) = c.discounted();
    let (intrinsic, bound) = match c.right {
        Right::Call => ((fwd_s - pv_k).max(0.0), fwd_s),
        Right::Put => ((pv_k - fwd_s).max(0.0), pv_k),
    };
    if price < intrinsic {
        return Err(IvError::BelowIntrinsic { price, intrinsic });
    }
    if price >= bound {
        return Err(IvError::AboveUpperBound { price, bound });
    }
    // The solvers' normalised problem: the undiscounted out-of-the-money price (the in-the-money
    // one less its forward intrinsic value, by put-call parity the same time value) over
    // √(F·K), with F = S·e^((r − q)T) from the discount factors at hand.
    let (forward, strike) = (fwd_s / c.dr, c.strike);
    let undiscounted = price / c.dr;
    let forward_intrinsic = match c.right {
        Right::Call => (forward - strike).max(0.0),
        Right::Put => (strike - forward).max(0.0),
    };
    let normalised = (undiscounted - forward_intrinsic) / (forward.sqrt() * strike.sqrt());
    let x = c.log_moneyness;
    let solved = |v: Option<f64>| v.filter(|v| v.is_finite() && *v > 0.0);
    // The crate calls this solver experimental: it passes our round-trip grids and its
    // author's 114,961 reference cases, but where it finds nothing, Let's Be Rational gets
    // the last word. A normalised price at or below the smallest normal number carries no
    // volatility either solver could recover (Let's Be Rational's own floor).
    if normalised.is_nan() || normalised <= f64::MIN_POSITIVE {
        return Err(IvError::NoSolution);
    }
    solved(Experimental::implied_total_volatility(x, normalised))
        .or_else(|| {
            solved(Hybrid::<DefaultSpecialFn>::implied_total_volatility(
                x, normalised,
            ))
        })
        .map(|total| total / c.sqrt_t)
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
/// without dividends, a put with r ≤ 0) this is [`implied_vol()`].
pub fn implied_vol_american(
    right: Right,
    spot: f64,
    strike: f64,
    years: f64,
    rate: f64,
    dividend: f64,
    price: f64,
) -> Result<f64, IvError> {
    let contract = (right, spot, strike, years, rate, dividend);
    solve_american(contract, price, false, None).map(|solved| solved.vol)
}

/// The contract the American solver works on: right, spot, strike, years, rate, dividend.
pub(crate) type Contract = (Right, f64, f64, f64, f64, f64);

/// A point where the American solver evaluated the model with its analytic derivatives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ModelPoint {
    /// The volatility evaluated at.
    pub(crate) vol: f64,
    /// The model's price there.
    pub(crate) price: f64,
    /// Its sensitivities there.
    pub(crate) sensitivities: Sensitivities,
}

/// What [`solve_american`] found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AmericanIv {
    /// The implied volatility.
    pub(crate) vol: f64,
    /// Where the model was last evaluated with its derivatives, within 1e-6 relative of
    /// `vol` (the final step, taken from there with the model's own vega and vomma, is
    /// accepted only that small), or within [`SEEDED_STEP`] of it on the seeded path.
    pub(crate) near: Option<ModelPoint>,
    /// Whether the model is the American one (not the European one it reduces to).
    pub(crate) american: bool,
    /// The European contract of the same terms, for the caller's European greeks.
    pub(crate) european: BsmContract,
}

/// The largest last step, relative to the vol, that the seeded path takes from an evaluation
/// with derivatives. The second-order step's error is of the order of the step cubed times
/// the model's third derivative in vol over its vega (below 1e-13 relative at this size even
/// far out of the money), and the greeks carried over it (`streaming_greeks_near`) are within
/// about the step times their own log-sensitivity to vol (gamma and vomma are not carried):
/// 1e-5 keeps them within 1e-4 relative of those at the IV (9e-5 at worst in the tests, for
/// vomma), far below what a cent on the quote moves them.
pub(crate) const SEEDED_STEP: f64 = 1e-5;

/// The American solver behind [`implied_vol_american`]. With `sensitivities`, an evaluation
/// that is expected to be the solver's last (the secant's predicted error is below 1e-7) is
/// made with the model's analytic derivatives instead of its price alone, and the root is
/// finished from there by a second-order step in the model's own vega and vomma: the greeks
/// stage then has the sensitivities close to the IV without another evaluation. Only when the
/// early-exercise premium is worth the derivatives (see [`super::NEGLIGIBLE_EARLY_EXERCISE`]).
///
/// `seed` is what the contract's previous quote was solved with ([`WarmStart`]): its
/// early-exercise premium, carried to this quote's spot and time by the premium's own delta,
/// gamma and theta and to any vol by its vega and vomma, moves little from one quote to the
/// next, so the vol where the European price plus that premium makes the price
/// ([`seeded_vol`]) is close to the root. With derivatives wanted, the model is
/// evaluated there with its derivatives and finished by [`finish_from`]: usually one
/// evaluation where the unseeded path makes three or four, and the same root within 1e-10
/// relative (the bound the tests hold it to). A premium too small for the derivatives is
/// seeded too, without them: one or two price evaluations and no European IV
/// ([`small_premium_root`]).
/// Otherwise (no seed, a step that does not converge) the unseeded path runs.
pub(crate) fn solve_american(
    contract: Contract,
    price: f64,
    sensitivities: bool,
    seed: Option<&WarmStart>,
) -> Result<AmericanIv, IvError> {
    let (right, spot, strike, years, rate, dividend) = contract;
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
    let european = BsmContract::new(right, spot, strike, years, rate, dividend);
    if super::never_exercised_early(right, rate, dividend) {
        // `implied_vol` on inputs already checked.
        return european_iv(&european, price).map(|vol| AmericanIv {
            vol,
            near: None,
            american: false,
            european,
        });
    }
    let solved = |vol: f64, near: Option<ModelPoint>| {
        Ok(AmericanIv {
            vol,
            near,
            american: true,
            european,
        })
    };
    let done = |vol: f64| solved(vol, None);
    let model = Bs2002::new(right, spot, strike, years, rate, dividend);
    let f = |v: f64| model.price(v) - price;
    // The model's price is a sum of terms of the order of S and K, so it is known to a few ulps
    // of S + K: once the residual is that small, further steps only chase rounding.
    let f_tol = 4.0 * f64::EPSILON * (spot + strike);

    // Seeded: from the vol the last quote's premium gives (carried to this spot and time by
    // its delta, gamma and theta, and in vol by its vega and vomma), found by Newton steps
    // from the last quote's own vol: no European IV is solved for on this path. For a
    // premium worth the derivatives, one evaluation with them; below it the greeks are the
    // European ones and one or two price evaluations are the cheaper way. The whole range of vols
    // is the bracket here: the model's root is checked by its own evaluations.
    if let (Some(seed), true) = (seed, sensitivities) {
        let ds = spot - seed.spot;
        let premium = seed.premium + seed.premium_delta * ds + 0.5 * seed.premium_gamma * ds * ds
            - seed.premium_theta * (years - seed.years);
        let worth_it = premium > 0.5 * super::NEGLIGIBLE_EARLY_EXERCISE * price;
        let range = (AMERICAN_VOL_FLOOR, AMERICAN_VOL_CAP);
        let start = seed.vol.clamp(range.0, range.1);
        if worth_it && premium < price {
            let x = seeded_vol(&european, seed, premium, price, start, range);
            if let Some((vol, point)) = finish_from(&model, price, x, range, f_tol) {
                return solved(vol, Some(point));
            }
        } else if !worth_it {
            let root = small_premium_root(&model, &european, seed, premium, price, start, f_tol);
            if let Some(vol) = root {
                return done(vol);
            }
        }
    }

    // Bracket. The model is never below the European price at the same vol, so the European IV
    // of the price is an upper end without evaluating anything (when it exists; otherwise the
    // cap). The floor is the lower end; whether the model is below the price there is only
    // checked if the search ends up there.
    let v_eu = european_iv(&european, price).ok();
    let mut hi = v_eu.map_or(AMERICAN_VOL_CAP, |v| {
        v.clamp(AMERICAN_VOL_FLOOR, AMERICAN_VOL_CAP)
    });
    let mut lo = AMERICAN_VOL_FLOOR;
    let mut lo_checked = false;
    let mut with_derivatives = sensitivities;
    // The European IV of the price less an early-exercise premium: for a premium small against
    // the time value, from the European IV `v` by the European price's expansion to second
    // order in vol (the third-order error, ~1e-6 relative at a 1% correction, is far below the
    // premium's own uncertainty); otherwise solved for.
    let less_premium = |v: f64, premium: f64, lo: f64, hi: f64| {
        let (vega, vomma) = european.vega_vomma(v);
        let (newton, correction) = second_order_step(premium, vega, vomma);
        if newton.abs() <= 0.05 * v && correction.is_finite() {
            (v + correction).clamp(lo, hi)
        } else {
            european_iv(&european, price - premium).map_or(0.5 * (lo + hi), |g| g.clamp(lo, hi))
        }
    };

    // First guess: the European IV of the price less the early-exercise premium at the upper
    // end (the premium moves slowly with vol), else the middle of the bracket in log terms.
    let mut prev: Option<(f64, f64)> = None;
    let mut x = match v_eu {
        Some(v) => {
            let f_eu = f(v);
            if f_eu.abs() <= f_tol {
                return done(v);
            }
            if f_eu < 0.0 {
                // Only by rounding (the model is floored at the European price): the European
                // IV is then a lower end, not an upper one.
                (lo, hi, lo_checked) = (v, AMERICAN_VOL_CAP, true);
            }
            // Kept as the secant's other point: it carries the model's own vega.
            prev = Some((v, f_eu));
            let premium = f_eu + price - european.price(v);
            // A premium this small leaves the greeks European (see `streaming_greeks_at_quote`):
            // no derivatives are formed for it.
            with_derivatives &= premium > 0.5 * super::NEGLIGIBLE_EARLY_EXERCISE * price;
            // The premium at v, not at the root: it moves slowly with vol.
            less_premium(v, premium, lo, hi)
        }
        None => (lo * hi).sqrt(),
    };
    let mut fx = f(x);
    // Then secant steps on the last two points (superlinear), or, with no second point yet, a
    // Newton step with the European vega (which differs from the model's only by the premium's
    // vol sensitivity); each kept inside the bracket, with bisection whenever a step falls
    // outside it or stalls. `dx`, `dx_old`: the last two step sizes; a step not under half the
    // one before the last means the interpolation has stalled (Numerical Recipes' rtsafe rule).
    let (mut dx, mut dx_old) = (hi - lo, hi - lo);
    for _ in 0..100 {
        if !fx.is_finite() {
            return Err(IvError::NoSolution);
        }
        if fx.abs() <= f_tol {
            return done(x);
        }
        if fx < 0.0 {
            lo = x;
            lo_checked = true;
        } else {
            hi = x;
        }
        if hi - lo <= 4.0 * f64::EPSILON * hi {
            break;
        }
        let step = match prev {
            None => fx / european.vega(x),
            Some((xp, fp)) if fp != fx => fx * (x - xp) / (fx - fp),
            Some(_) => f64::NAN,
        };
        let mut next = x - step;
        // The distance between the two points the secant runs through: the last step, or on
        // the first one the distance from the European IV to the premium-corrected guess.
        let spread = prev.map_or(f64::INFINITY, |(xp, _)| (x - xp).abs());
        if step.abs() <= 1e-7 * x && spread <= 1e-3 * x && next > lo && next < hi {
            // Secant convergence: the error after a step is about c·e(n)·e(n−1), with e(n) the
            // size of this correction and e(n−1) the distance between the two points it
            // interpolates (c = f''/2f', of order one in relative terms). Below 1e-7 with the
            // points within 1e-3 that leaves ~1e-10 relative, so the point is returned without
            // the evaluation that would only confirm it. That holds from the first step: a
            // small early-exercise premium puts the guess within 1e-3 of the European IV.
            // (Quotes carry four or five digits; the tests check 1e-9.)
            return done(next);
        }
        if !(next > lo && next < hi) || step.abs() > 0.5 * dx_old.abs() {
            next = if lo_checked || lo > AMERICAN_VOL_FLOOR {
                0.5 * (lo + hi)
            } else {
                // Nothing known below: halve in log terms towards the floor, so a tiny vol is
                // reached in a few steps rather than dozens.
                (lo * hi).sqrt()
            };
        }
        dx_old = dx;
        dx = next - x;
        prev = Some((x, fx));
        // The secant's error after this step is about c·|step|·spread (above): below 1e-7 this
        // is expected to be the last evaluation.
        let last = dx.abs() * spread <= 1e-7 * x * x;
        x = next;
        if !(with_derivatives && last) {
            fx = f(x);
            continue;
        }
        let (model_price, sensitivities) = model.price_sensitivities(x);
        fx = model_price - price;
        let Some(sensitivities) = sensitivities else {
            with_derivatives = false;
            continue;
        };
        let point = ModelPoint {
            vol: x,
            price: model_price,
            sensitivities,
        };
        if fx.abs() <= f_tol {
            return solved(x, Some(point));
        }
        // The root of the model's second-order expansion around x: the error left is of the
        // order of the step cubed (the step is ~1e-7 relative, so ~1e-20).
        let (vega, vomma) = (sensitivities.vega, sensitivities.vomma);
        let (_, step) = second_order_step(fx, vega, vomma);
        let (below, above) = if fx < 0.0 { (x, hi) } else { (lo, x) };
        let root = x + step;
        if step.abs() <= 1e-6 * x && root > below && root < above {
            return solved(root, Some(point));
        }
        // Not converging as predicted: the loop carries on from x, on prices alone.
        with_derivatives = false;
    }
    if !lo_checked {
        // Converged onto the floor from above: the price is below the model's least value.
        let floor_value = f(AMERICAN_VOL_FLOOR) + price;
        if floor_value > price {
            return Err(IvError::BelowIntrinsic {
                price,
                intrinsic: floor_value,
            });
        }
    }
    if hi >= AMERICAN_VOL_CAP && fx < 0.0 {
        return Err(IvError::NoSolution);
    }
    done(x)
}

/// Newton steps [`seeded_vol`] takes at most. It starts from the contract's last IV; Newton's
/// error squares with each step (times a curvature ratio of order one), so a third step
/// matters only when the start was more than ~1e-4 off, and a step of 1e-8 or less ends it
/// early. With three, 84 of ~1M seeded solves on the 2h replay tape still fell back to the
/// unseeded path (the finish's step over [`SEEDED_STEP`]).
const SEEDED_NEWTON_STEPS: usize = 3;

/// Newton steps from `guess` on the price the seed predicts, E(x) + P(x) − price, where E is
/// the European price and P the seed's premium (already carried to this spot and time)
/// carried to vol x by its vega and vomma: the point the seeded path evaluates the model at.
///
/// Why not the fixed point x ← E⁻¹(price − P(x)) (one European IV per step): it converges
/// only by the ratio of the premium's vega to the European vega per step, which in-the-money
/// puts bring near one half. Two steps of it left 28% of the seeded solves needing a second
/// evaluation with derivatives (the step from the first one over [`SEEDED_STEP`]); two Newton
/// steps left 11% (5m replay of a 20-underlying `record`ed tape, when they started from the
/// European IV less the premium). The steps cost a European
/// price and vega each, a few percent of one evaluation of the model; `guess` is the last
/// quote's IV, so no European IV of this price is solved for on the seeded path.
fn seeded_vol(
    european: &BsmContract,
    seed: &WarmStart,
    premium: f64,
    price: f64,
    guess: f64,
    (lo, hi): (f64, f64),
) -> f64 {
    let mut x = guess;
    for _ in 0..SEEDED_NEWTON_STEPS {
        let d = x - seed.vol;
        let predicted =
            european.price(x) + premium + seed.premium_vega * d + 0.5 * seed.premium_vomma * d * d;
        let slope = european.vega(x) + seed.premium_vega + seed.premium_vomma * d;
        let next = x - (predicted - price) / slope;
        if !next.is_finite() {
            break;
        }
        let step = next - x;
        x = next.clamp(lo, hi);
        // Converged: Newton's next step would be of the order of this one squared.
        if step.abs() <= 1e-8 * x {
            break;
        }
    }
    x
}

/// The seeded path for a premium too small for the model's derivatives (its greeks are the
/// European ones): one or two price evaluations and no European IV, where the unseeded path
/// solves a European IV and then evaluates the model once or twice.
///
/// The first point is where the European price plus the seed's `premium` (carried to this
/// quote, and in vol by its vega and vomma) makes the price, found by second-order steps from
/// the contract's last IV (`start`): off the model's root by about the premium's change since
/// the seed's quote over the vega. Where the premium is zero to rounding, the model's price
/// there confirms it. Otherwise one Newton step from the model's price there, with the
/// European vega (the premium's own vega is ~1e-3 of it), leaves about that error times 1e-3,
/// and the secant through the two evaluations is then accepted by the unseeded path's own
/// test: a step under 1e-7 of the vol between points within 1e-3 of it leaves ~1e-10
/// relative. `None` (to the unseeded path) where that does not hold within
/// [`SMALL_PREMIUM_SECANTS`] evaluations, or where the premium turns out worth the
/// derivatives after all.
fn small_premium_root(
    model: &Bs2002,
    european: &BsmContract,
    seed: &WarmStart,
    premium: f64,
    price: f64,
    start: f64,
    f_tol: f64,
) -> Option<f64> {
    let inside = |v: f64| v > AMERICAN_VOL_FLOOR && v < AMERICAN_VOL_CAP;
    // The root of the seed's prediction, E(x) + P(x) = price, by second-order steps (their
    // error is cubed each time: ~1e-6 of the vol after a 1.5% move, then machine precision).
    // Followed to the end: for most of these contracts the premium is zero to rounding, and
    // the model's price then confirms the root from one evaluation.
    let (mut x, mut vega) = (start, 0.0);
    for _ in 0..SMALL_PREMIUM_STEPS {
        let d = x - seed.vol;
        let (v, vomma) = european.vega_vomma(x);
        vega = v;
        let predicted =
            european.price(x) + premium + seed.premium_vega * d + 0.5 * seed.premium_vomma * d * d;
        let (_, step) = second_order_step(
            predicted - price,
            vega + seed.premium_vega + seed.premium_vomma * d,
            vomma + seed.premium_vomma,
        );
        if !step.is_finite() {
            return None;
        }
        x += step;
        if step.abs() <= 1e-13 * x {
            break;
        }
    }
    // Where the price's own rounding (`f_tol`) spans more than 1e-10 of the vol (deep in the
    // money, close to expiry), any vol near the root reproduces it, and the one returned
    // would depend on the seed: the unseeded path decides there.
    if !(inside(x) && vega * 1e-10 * x > f_tol) {
        return None;
    }
    let f0 = model.price(x) - price;
    // The premium at x (not the seed's, carried): the model's price less the European one.
    let premium_here = f0 + price - european.price(x);
    let small = premium_here <= 0.5 * super::NEGLIGIBLE_EARLY_EXERCISE * price;
    if !(premium_here.is_finite() && small) {
        return None;
    }
    if f0.abs() <= f_tol {
        return Some(x);
    }
    // The vega of the last step's point, within ~1e-6 of x: a Newton step's slope.
    let slope = vega + seed.premium_vega + seed.premium_vomma * (x - seed.vol);
    let x1 = x - f0 / slope;
    if !inside(x1) {
        return None;
    }
    // Secant steps on the last two points until one passes the test, each from one more
    // evaluation.
    let (mut a, mut fa, mut b) = (x, f0, x1);
    for _ in 0..SMALL_PREMIUM_SECANTS {
        let fb = model.price(b) - price;
        if fb.abs() <= f_tol {
            return Some(b);
        }
        let step = fb * (b - a) / (fb - fa);
        let root = b - step;
        if !(inside(root) && (b - a).abs() <= 1e-3 * b) {
            return None;
        }
        if step.abs() <= 1e-7 * b {
            return Some(root);
        }
        (a, fa, b) = (b, fb, root);
    }
    None
}

/// Model evaluations [`small_premium_root`] makes after its first at most: a Newton step and
/// then the secant. On the 2h replay tape, with one 15,958 of its 539,684 seeded
/// small-premium quotes went on to the unseeded path; with three 3,370 (1,090 of them
/// because the premium turned out worth the derivatives), and the replay made 768k price
/// evaluations where the unseeded path had made 780k and a European IV per quote.
const SMALL_PREMIUM_SECANTS: usize = 3;

/// Second-order steps [`small_premium_root`] takes at most towards the seed's predicted root:
/// two reach machine precision after a move of a few percent in the vol.
const SMALL_PREMIUM_STEPS: usize = 4;

/// The root of a price's second-order expansion in vol, for a `residual` (the price less its
/// target) with slope `vega` and curvature `vomma`: the Newton step, and that step corrected
/// by the curvature (error of the order of the step cubed).
fn second_order_step(residual: f64, vega: f64, vomma: f64) -> (f64, f64) {
    let newton = -residual / vega;
    (newton, newton - 0.5 * vomma * newton * newton / vega)
}

/// The seeded path's end: the model evaluated with its derivatives at `x`, and the root of its
/// second-order expansion there when that step is under [`SEEDED_STEP`]; otherwise once more
/// from that root, whose error is then about the step cubed. `None` where that does not
/// converge (a step past 1% of the vol, out of the bracket, or no derivatives), for the
/// unseeded path to take over.
fn finish_from(
    model: &Bs2002,
    price: f64,
    mut x: f64,
    (lo, hi): (f64, f64),
    f_tol: f64,
) -> Option<(f64, ModelPoint)> {
    for _ in 0..2 {
        let (model_price, Some(sensitivities)) = model.price_sensitivities(x) else {
            return None;
        };
        let fx = model_price - price;
        let point = ModelPoint {
            vol: x,
            price: model_price,
            sensitivities,
        };
        if fx.abs() <= f_tol {
            return Some((x, point));
        }
        let (vega, vomma) = (sensitivities.vega, sensitivities.vomma);
        let (_, step) = second_order_step(fx, vega, vomma);
        let root = x + step;
        if !(vega > 0.0 && root > lo && root < hi) || step.abs() > 1e-2 * x {
            return None;
        }
        if step.abs() <= SEEDED_STEP * x {
            return Some((root, point));
        }
        x = root;
    }
    None
}
