//! Option pricing for the greeks stage, one model per file:
//!
//! - [`bsm`]: Black-Scholes-Merton with a continuous dividend yield (European options on stocks
//!   and indexes): price and analytic greeks.
//! - [`black76`]: Black-76 on a forward (European options on futures, or on an index whose
//!   forward is read from put-call parity): price and analytic greeks.
//! - [`american`]: Bjerksund-Stensland (2002) for American calls and puts; delta, gamma, vega,
//!   vomma and rho from the formula's analytic derivatives (the `jet` module), the cross and time
//!   greeks by central finite differences on that price.
//! - [`iv`]: implied volatility — European by Jäckel's "Let's Be Rational" (the `implied-vol`
//!   crate), American by a bracketed, safeguarded root finder on Bjerksund-Stensland.
//! - [`style`]: which roots are European (cash-settled indexes) and which are AM-settled.
//!
//! Units are raw everywhere: vega and rho per 1.00 of volatility or rate (not per point), theta
//! and charm per year (ACT/365), vomma per 1.00 of volatility squared. Callers that do not care
//! which model applies use [`price_and_greeks`] and [`implied_vol_for`], which dispatch on an
//! [`ExerciseStyle`] and validate every input (a bad input is an [`IvError`], never a NaN or a
//! panic).

pub mod american;
pub mod black76;
pub mod bsm;
pub(crate) mod exp;
pub mod iv;
mod jet;
mod log;
mod normal;
pub mod style;

#[cfg(test)]
mod tests;

use american::Sensitivities;
pub use american::{bs2002_greeks, bs2002_price};
pub use black76::{black76_greeks, black76_price};
pub use bsm::{bsm_greeks, bsm_price};
pub use iv::{implied_vol, implied_vol_american};
pub use style::{is_am_settled, ExerciseStyle};

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
    /// What exercising now pays per unit, signed: S − K for a call, K − S for a put.
    pub fn exercise_value(self, spot: f64, strike: f64) -> f64 {
        match self {
            Right::Call => spot - strike,
            Right::Put => strike - spot,
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

/// Price and greeks of one option, in raw units (see the module docs).
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
    /// dV/dt per year (calendar, ACT/365): the value's change as time passes, −∂V/∂T.
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

/// Why no price or implied volatility exists for the inputs.
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
    /// A volatility given to a pricing function is not positive.
    #[error("volatility {vol} must be positive")]
    NonPositiveVol {
        /// The volatility given.
        vol: f64,
    },
    /// Price below the intrinsic value (discounted for European options, the immediate
    /// exercise value max(S−K, 0) / max(K−S, 0) for American ones).
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

/// Checks the inputs every model shares; `last` is the volatility when pricing, the price when
/// solving for the volatility.
pub(crate) fn check_inputs(
    spot: f64,
    strike: f64,
    years: f64,
    rate: f64,
    dividend: f64,
    last: f64,
) -> Result<(), IvError> {
    if ![spot, strike, years, rate, dividend, last]
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
    Ok(())
}

/// Price and greeks under the model the exercise style calls for: Black-Scholes-Merton for
/// European options, Bjerksund-Stensland 2002 (greeks by finite differences) for American ones.
/// Inputs are validated: NaN or infinite inputs, non-positive spot, strike, years or volatility
/// are errors.
#[allow(clippy::too_many_arguments)] // the textbook argument list, in the textbook order
pub fn price_and_greeks(
    style: ExerciseStyle,
    right: Right,
    spot: f64,
    strike: f64,
    years: f64,
    rate: f64,
    dividend: f64,
    vol: f64,
) -> Result<Greeks, IvError> {
    check_inputs(spot, strike, years, rate, dividend, vol)?;
    if vol <= 0.0 {
        return Err(IvError::NonPositiveVol { vol });
    }
    let g = match style {
        ExerciseStyle::European => bsm_greeks(right, spot, strike, years, rate, dividend, vol),
        ExerciseStyle::American => american_greeks(right, spot, strike, years, rate, dividend, vol),
    };
    // The formulas are finite for finite positive inputs; this guards the contract "never NaN"
    // against extreme parameters (e.g. a volatility of 1e300) rather than trusting it.
    if [g.price, g.delta, g.gamma, g.vega, g.theta, g.rho]
        .iter()
        .all(|v| v.is_finite())
    {
        Ok(g)
    } else {
        Err(IvError::NotFinite)
    }
}

/// Early-exercise premium, relative to the American price, below which the streaming greeks
/// of an American contract are the analytic Black-Scholes-Merton ones. The American and
/// European greeks then differ by about that fraction, far less than the bid/ask already
/// leaves uncertain in the implied volatility they are computed at, and the analytic ones are
/// 30 to 100 times cheaper.
pub const NEGLIGIBLE_EARLY_EXERCISE: f64 = 1e-3;

/// American greeks: exactly the European ones when early exercise never pays (a call without
/// dividends, a put at a non-positive rate), the full finite differences on Bjerksund-Stensland
/// 2002 otherwise.
#[allow(clippy::too_many_arguments)] // the textbook argument list, in the textbook order
fn american_greeks(
    right: Right,
    spot: f64,
    strike: f64,
    years: f64,
    rate: f64,
    dividend: f64,
    vol: f64,
) -> Greeks {
    if never_exercised_early(right, rate, dividend) {
        return bsm_greeks(right, spot, strike, years, rate, dividend, vol);
    }
    bs2002_greeks(right, spot, strike, years, rate, dividend, vol)
}

pub(crate) fn never_exercised_early(right: Right, rate: f64, dividend: f64) -> bool {
    match right {
        Right::Call => dividend <= 0.0,
        Right::Put => rate <= 0.0,
    }
}

/// Greeks for the streaming greeks stage, where every quote of the chain is repriced: the same
/// model as [`price_and_greeks`], at a cost a live feed can carry. For American contracts:
/// - early exercise never pays: the European greeks, exactly;
/// - its premium is below [`NEGLIGIBLE_EARLY_EXERCISE`] of the price: the analytic European
///   greeks at this volatility (with the American price);
/// - otherwise delta, gamma, vega, vomma and rho from the closed form's analytic derivatives,
///   formed in the same pass as the price (about 2.4 evaluations' work, against 17
///   evaluations for differences of all of them); theta from the Black-Scholes
///   equation, which the American value satisfies wherever holding is optimal
///   (Θ = rV − (r−q)SΔ − ½σ²S²Γ) and which gives 0 where immediate exercise is
///   (V = intrinsic); vanna and charm, the cross second-order terms that need four bumps
///   each, from Black-Scholes-Merton at the same volatility.
///
/// Inputs must already be valid (the stage solved the volatility from them).
#[allow(clippy::too_many_arguments)] // the textbook argument list, in the textbook order
pub fn streaming_greeks(
    style: ExerciseStyle,
    right: Right,
    spot: f64,
    strike: f64,
    years: f64,
    rate: f64,
    dividend: f64,
    vol: f64,
) -> Greeks {
    streaming_greeks_at_quote(style, right, spot, strike, years, rate, dividend, vol, None)
}

/// [`streaming_greeks`] at the volatility implied from `quote_price`, when there is one (the
/// price the model gives at `vol`, to the solver's precision): the greeks stage's entry. Where
/// the early-exercise premium turns out negligible, the quote's price stands in for the
/// model's, which saves one Bjerksund-Stensland evaluation; the finite differences still
/// difference exact model prices.
#[allow(clippy::too_many_arguments)] // the textbook argument list, and the quote's price
pub fn streaming_greeks_at_quote(
    style: ExerciseStyle,
    right: Right,
    spot: f64,
    strike: f64,
    years: f64,
    rate: f64,
    dividend: f64,
    vol: f64,
    quote_price: Option<f64>,
) -> Greeks {
    let european = bsm_greeks(right, spot, strike, years, rate, dividend, vol);
    if style == ExerciseStyle::European || never_exercised_early(right, rate, dividend) {
        return european;
    }
    // The contract at this spot, time and rate: the central value and the vol bumps share it.
    let here = american::Bs2002::new(right, spot, strike, years, rate, dividend);
    let model = || here.price(vol);
    let near = quote_price.unwrap_or_else(model);
    if let Some(greeks) = european_when_negligible(near, &european) {
        return greeks;
    }
    let contract = (right, spot, strike, years, rate, dividend);
    american_greeks_at(&here, contract, vol, &european)
}

/// The streaming greeks of an American contract whose early exercise is worth something, at
/// `vol`, from the model (`here`, the contract's) and the European greeks there.
fn american_greeks_at(
    here: &american::Bs2002,
    contract: iv::Contract,
    vol: f64,
    european: &Greeks,
) -> Greeks {
    let (right, spot, strike, years, rate, dividend) = contract;
    let (s, t, r, v) = (spot, years, rate, vol);
    // Delta, gamma, vega, vomma and rho from the closed form's own derivatives, with the
    // central value (the model's own at `vol`) from the same pass; by differences of prices
    // only where those cannot be formed.
    let (american, analytic) = here.price_sensitivities(v);
    let d = analytic.unwrap_or_else(|| {
        let p = |s: f64, t: f64, r: f64, v: f64| bs2002_price(right, s, strike, t, r, dividend, v);
        american::sensitivities_by_differences(&p, american, s, t, r, v)
    });
    american_streaming_greeks(contract, vol, american, d, european)
}

/// The European greeks with the American `price`, when the early-exercise premium in that
/// price is below [`NEGLIGIBLE_EARLY_EXERCISE`] of it.
fn european_when_negligible(price: f64, european: &Greeks) -> Option<Greeks> {
    (price - european.price <= NEGLIGIBLE_EARLY_EXERCISE * price)
        .then_some(Greeks { price, ..*european })
}

/// The streaming greeks of an American contract whose early exercise is worth something, from
/// the model's price and [`Sensitivities`] at `vol` (see [`streaming_greeks_at_quote`] for
/// theta, vanna and charm).
fn american_streaming_greeks(
    contract: iv::Contract,
    vol: f64,
    american: f64,
    d: Sensitivities,
    european: &Greeks,
) -> Greeks {
    let (right, s, strike, _, r, dividend) = contract;
    let intrinsic = right.exercise_value(s, strike);
    let theta = if american <= intrinsic + 1e-12 * strike {
        0.0
    } else {
        r * american - (r - dividend) * s * d.delta - 0.5 * vol * vol * s * s * d.gamma
    };
    Greeks {
        price: american,
        delta: d.delta,
        gamma: d.gamma,
        vega: d.vega,
        theta,
        rho: d.rho,
        vanna: european.vanna,
        charm: european.charm,
        vomma: d.vomma,
    }
}

/// [`streaming_greeks_at_quote`] at the implied volatility `iv`, from the model's
/// sensitivities at `near`, the solver's last evaluation (within 1e-6 relative of `iv`),
/// carried to `iv` along the volatility: the price by its vega and vomma, vega by vomma, delta
/// by vanna. What is left out (the other greeks' own change with vol over that distance) is of
/// the order of that distance relative to each greek, far inside what the quote's bid/ask
/// leaves uncertain. Only for a premium worth something: the caller has already returned the
/// European greeks for a negligible one.
/// `None` where the carry could cross the model's exercise trigger: the caller evaluates at
/// the IV itself.
fn streaming_greeks_near(
    contract: iv::Contract,
    iv: f64,
    near: iv::ModelPoint,
    quote_price: f64,
    european: &Greeks,
) -> Option<Greeks> {
    let (right, spot, strike, ..) = contract;
    let dv = iv - near.vol;
    let d = near.sensitivities;
    let american = near.price + dv * (d.vega + 0.5 * d.vomma * dv);
    let intrinsic = right.exercise_value(spot, strike).max(0.0);
    let margin = 1e3 * (american - near.price).abs() + 1e-9 * strike;
    if near.price - intrinsic <= margin || quote_price - intrinsic <= margin {
        // At or so close to the exercise value that the model's exercise trigger may lie
        // between the two volatilities, where its greeks jump (delta to ±1, vega to 0; and
        // on the floor itself the IV is not unique): for the caller to evaluate at the IV.
        return None;
    }
    let carried = Sensitivities {
        delta: d.delta + european.vanna * dv,
        vega: d.vega + d.vomma * dv,
        ..d
    };
    Some(american_streaming_greeks(
        contract, iv, american, carried, european,
    ))
}

/// The greeks stage's whole pricing step for one quote: the implied volatility of `price` under
/// the model the exercise style calls for ([`implied_vol_for`]), and the greeks there
/// ([`streaming_greeks_at_quote`]). For a European contract the same bits as those two calls,
/// with the terms both share (√T, the log-moneyness, the discount factors) computed once. For
/// an American one whose early exercise is worth something, the solver's last evaluation is
/// made with the model's derivatives and the greeks are carried from there to the IV (within
/// 1e-6 relative of it): one Bjerksund-Stensland evaluation fewer than the two calls, the
/// IV within 1e-10 and the greeks within 1e-6 of theirs.
#[allow(clippy::too_many_arguments)] // the textbook argument list, in the textbook order
pub fn implied_vol_and_greeks(
    style: ExerciseStyle,
    right: Right,
    spot: f64,
    strike: f64,
    years: f64,
    rate: f64,
    dividend: f64,
    price: f64,
) -> Result<(f64, Greeks), IvError> {
    let contract = (right, spot, strike, years, rate, dividend);
    solve_quote(style, contract, price, None).map(|solved| (solved.iv, solved.greeks))
}

/// What [`solve_quote`] found for one quote.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuoteSolution {
    /// The implied volatility.
    pub iv: f64,
    /// The greeks at it.
    pub greeks: Greeks,
    /// Where the model is the American one: what the contract's next quote starts from.
    pub warm_start: Option<WarmStart>,
}

/// An American contract's solved quote, as the seed of its next one ([`solve_quote`]): the
/// early-exercise premium (the price less the European price at the IV) and its delta, gamma,
/// theta, vega and vomma, with the spot, time and IV they were taken at.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WarmStart {
    /// The premium.
    pub premium: f64,
    /// Its delta: the American delta less the European one.
    pub premium_delta: f64,
    /// Its vega: the American vega less the European one.
    pub premium_vega: f64,
    /// Its gamma.
    pub premium_gamma: f64,
    /// Its theta (per year of calendar time passing).
    pub premium_theta: f64,
    /// Its vomma. Not serialized with the rest: the greeks stage's checkpoints keep it in a
    /// section of their own after the seeds, so that checkpoints from before it was kept still
    /// restore (to a vomma of zero).
    #[serde(skip)]
    pub premium_vomma: f64,
    /// The years to expiry at the quote.
    pub years: f64,
    /// The spot of the quote.
    pub spot: f64,
    /// Its implied volatility.
    pub vol: f64,
}

/// [`implied_vol_and_greeks`], seeded with what the contract's previous quote was solved with
/// ([`QuoteSolution::warm_start`]), which the American solver starts from: usually one
/// Bjerksund-Stensland evaluation (with derivatives) where an unseeded solve makes three or
/// four, and the same IV within 1e-10 relative (the bound the tests hold it to). The contract is (right, spot, strike, years,
/// rate, dividend yield).
pub fn solve_quote(
    style: ExerciseStyle,
    contract: (Right, f64, f64, f64, f64, f64),
    price: f64,
    seed: Option<&WarmStart>,
) -> Result<QuoteSolution, IvError> {
    let (right, spot, strike, years, rate, dividend) = contract;
    if style == ExerciseStyle::European {
        check_inputs(spot, strike, years, rate, dividend, price)?;
        let contract = bsm::BsmContract::new(right, spot, strike, years, rate, dividend);
        let iv = iv::european_iv(&contract, price)?;
        return Ok(QuoteSolution {
            iv,
            greeks: contract.greeks(iv),
            warm_start: None,
        });
    }
    // The solver's last evaluation, where it is worth it, is made with the model's
    // derivatives (`iv::solve_american`), and the greeks come from there.
    let solved = iv::solve_american(contract, price, true, seed)?;
    let iv = solved.vol;
    // The European greeks at the IV (of the contract the solver already formed): all of them
    // when early exercise never pays; otherwise the ones a negligible premium leaves, the vanna
    // and charm of the American ones, and what the premium's seed is measured against.
    let european = solved.european.greeks(iv);
    if !solved.american {
        // Early exercise never pays: the European model, its greeks, and nothing to seed.
        return Ok(QuoteSolution {
            iv,
            greeks: european,
            warm_start: None,
        });
    }
    // What `streaming_greeks_at_quote` gives, without forming the European greeks again: the
    // European ones for a negligible premium, else the model's carried from the solver's last
    // evaluation, else the model's evaluated at the IV.
    let greeks = european_when_negligible(price, &european)
        .or_else(|| {
            let near = solved.near?;
            streaming_greeks_near(contract, iv, near, price, &european)
        })
        .unwrap_or_else(|| {
            let here = american::Bs2002::new(right, spot, strike, years, rate, dividend);
            american_greeks_at(&here, contract, iv, &european)
        });
    let warm_start = Some(WarmStart {
        premium: price - european.price,
        premium_delta: greeks.delta - european.delta,
        premium_vega: greeks.vega - european.vega,
        premium_gamma: greeks.gamma - european.gamma,
        premium_theta: greeks.theta - european.theta,
        premium_vomma: greeks.vomma - european.vomma,
        years,
        spot,
        vol: iv,
    });
    Ok(QuoteSolution {
        iv,
        greeks,
        warm_start,
    })
}

/// Implied volatility under the model the exercise style calls for: Let's Be Rational on
/// Black-Scholes-Merton for European options, Bjerksund-Stensland 2002 for American ones. A price
/// with no solution is an error naming the bound it breaks; NaN is never returned.
#[allow(clippy::too_many_arguments)] // the textbook argument list, in the textbook order
pub fn implied_vol_for(
    style: ExerciseStyle,
    right: Right,
    spot: f64,
    strike: f64,
    years: f64,
    rate: f64,
    dividend: f64,
    price: f64,
) -> Result<f64, IvError> {
    match style {
        ExerciseStyle::European => implied_vol(right, spot, strike, years, rate, dividend, price),
        ExerciseStyle::American => {
            implied_vol_american(right, spot, strike, years, rate, dividend, price)
        }
    }
}
