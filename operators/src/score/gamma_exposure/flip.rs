//! The gamma flip: the spot level at which the book's total GEX changes sign.
//!
//! Each contract's gamma is re-priced at hypothetical spots with its own IV, rate and dividend
//! yield (Black-Scholes-Merton). Because only the spot moves, everything else is folded into
//! three constants per contract when the curve is built: with x = ln s,
//!
//! ```text
//! GEX_i(s) = sign_i · OI_i · 100 · s² · 1% · e^{−qT} φ(d1) / (s σ √T)
//!          = s · w_i · exp(−½ (a_i x + b_i)²)
//! a_i = 1 / (σ√T),   b_i = (−ln K + (r − q + σ²/2) T) / (σ√T),
//! w_i = sign_i · OI_i · 100 · 1% · e^{−qT} / (√(2π) σ√T)
//! ```
//!
//! so one evaluation costs a multiply-add and one exponential per contract, four contracts at a
//! time (the pricing code's `exp4`). The common factor `s > 0`
//! never changes the sign, so the sweep works on `Σ w_i exp(−½ d_i²)` alone. The sweep is a
//! coarse grid in log-spot (catches every sign change wider than one step), then Illinois
//! regula falsi on the bracket nearest the spot (superlinear, keeps the bracket).

use super::super::{ContractBook, GexSign};
use crate::pricing::exp::exp4;
use wide::f64x4;

/// A contract whose |d1| exceeds this contributes less than e^{-40.5} (≈ 2.6e-18) of its peak
/// gamma: leaving it out changes no sign a float could resolve.
const MAX_ABS_D1: f64 = 9.0;

/// Grid cells across the sweep range (1.25% apart over ±30%).
const GRID_STEPS: usize = 48;

/// Relative width at which the refinement stops (a hundredth of a basis point of spot).
const REL_TOLERANCE: f64 = 1e-6;

/// Upper bound on refinement steps; Illinois usually needs under ten.
const MAX_REFINE: usize = 60;

/// Per-contract constants of the spot-dependent GEX (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Term {
    a: f64,
    b: f64,
    w: f64,
}

/// Four [`Term`]s side by side (a short last group is padded with zero weights).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Terms4 {
    a: f64x4,
    b: f64x4,
    w: f64x4,
}

/// Total GEX as a function of spot, precomputed for fast sweeps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GexCurve {
    /// Contracts on the curve.
    len: usize,
    terms: Vec<Terms4>,
}

/// The sign dealers' gamma takes for a call or a put under `convention`.
pub fn dealer_sign(convention: GexSign, is_call: bool) -> f64 {
    match (convention, is_call) {
        (GexSign::DealerLongCalls, true) | (GexSign::DealerShortCalls, false) => 1.0,
        _ => -1.0,
    }
}

impl GexCurve {
    /// Builds the curve from contracts; those without a usable IV, expiry, strike or open
    /// interest are left out (they carry no re-priceable gamma).
    pub fn new<'a>(
        convention: GexSign,
        contracts: impl IntoIterator<Item = &'a ContractBook>,
    ) -> Self {
        let terms: Vec<Term> = contracts
            .into_iter()
            .filter_map(|c| {
                let usable = c.strike > 0.0
                    && c.years > 0.0
                    && c.iv > 0.0
                    && c.open_interest > 0
                    && [c.strike, c.years, c.iv, c.rate, c.dividend_yield]
                        .iter()
                        .all(|v| v.is_finite());
                if !usable {
                    return None;
                }
                let sd = c.iv * c.years.sqrt();
                let carry = (c.rate - c.dividend_yield + 0.5 * c.iv * c.iv) * c.years;
                let w = dealer_sign(convention, c.is_call)
                    * c.open_interest as f64
                    * (-c.dividend_yield * c.years).exp()
                    / (std::f64::consts::TAU.sqrt() * sd);
                Some(Term {
                    a: 1.0 / sd,
                    b: (carry - c.strike.ln()) / sd,
                    // 100 shares per contract times a 1% move.
                    w: w * 100.0 * 0.01,
                })
            })
            .collect();
        let lanes = terms
            .chunks(4)
            .map(|group| {
                let lane = |f: fn(&Term) -> f64| {
                    f64x4::new(std::array::from_fn(|i| group.get(i).map_or(0.0, f)))
                };
                Terms4 {
                    a: lane(|t| t.a),
                    b: lane(|t| t.b),
                    w: lane(|t| t.w),
                }
            })
            .collect();
        Self {
            len: terms.len(),
            terms: lanes,
        }
    }

    /// Number of contracts on the curve.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no contract is on the curve.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Total GEX divided by spot at log-spot `x` (same sign as the total GEX there).
    fn reduced(&self, x: f64) -> f64 {
        let (x, half, cut) = (
            f64x4::splat(x),
            f64x4::splat(-0.5),
            f64x4::splat(MAX_ABS_D1),
        );
        let mut sum = f64x4::ZERO;
        for t in &self.terms {
            let d = t.a * x + t.b;
            let term = t.w * exp4(half * d * d);
            sum += d.abs().simd_lt(cut).select(term, f64x4::ZERO);
        }
        // Lane sums in a fixed order: the same bits on every build.
        let [s0, s1, s2, s3] = sum.to_array();
        (s0 + s1) + (s2 + s3)
    }

    /// Total GEX (dollars per 1% move) if spot were `s`.
    pub fn total_at(&self, s: f64) -> f64 {
        if s <= 0.0 || !s.is_finite() {
            return 0.0;
        }
        s * self.reduced(s.ln())
    }

    /// The spot nearest to `spot` within `spot · (1 ± range)` at which total GEX changes sign,
    /// or `None` when it keeps one sign across the range (or `spot`/`range` are unusable).
    pub fn flip_near(&self, spot: f64, range: f64) -> Option<f64> {
        if self.terms.is_empty()
            || !(spot > 0.0 && spot.is_finite())
            || !(range > 0.0 && range < 1.0)
        {
            return None;
        }
        let (lo, hi) = ((spot * (1.0 - range)).ln(), (spot * (1.0 + range)).ln());
        let h = (hi - lo) / GRID_STEPS as f64;
        let x_spot = spot.ln();
        let mut best: Option<(f64, f64, f64, f64)> = None;
        let mut prev = (lo, self.reduced(lo));
        for i in 1..=GRID_STEPS {
            let x = if i == GRID_STEPS {
                hi
            } else {
                lo + h * i as f64
            };
            let cur = (x, self.reduced(x));
            if let Some(b) = bracket(prev, cur) {
                // Rank brackets by their linear-interpolation root: exact enough to pick the
                // nearest one, and only that one is refined.
                let guess = b.0 - b.1 * (b.2 - b.0) / (b.3 - b.1);
                let nearer = best.is_none_or(|o| {
                    let og = o.0 - o.1 * (o.2 - o.0) / (o.3 - o.1);
                    (guess - x_spot).abs() < (og - x_spot).abs()
                });
                if nearer {
                    best = Some(b);
                }
            }
            prev = cur;
        }
        best.map(|b| self.refine(b).exp())
    }

    /// Illinois regula falsi on a bracket `(x0, f0, x1, f1)` with f0·f1 ≤ 0.
    fn refine(&self, (mut x0, mut f0, mut x1, mut f1): (f64, f64, f64, f64)) -> f64 {
        if f0 == 0.0 {
            return x0;
        }
        if f1 == 0.0 {
            return x1;
        }
        let mut side = 0i8;
        for _ in 0..MAX_REFINE {
            if (x1 - x0).abs() <= REL_TOLERANCE {
                break;
            }
            let x = (x0 * f1 - x1 * f0) / (f1 - f0);
            let f = self.reduced(x);
            if f == 0.0 {
                return x;
            }
            if f.signum() == f1.signum() {
                (x1, f1) = (x, f);
                // Halving the stale end's value is Illinois' fix for one-sided convergence.
                if side == -1 {
                    f0 *= 0.5;
                }
                side = -1;
            } else {
                (x0, f0) = (x, f);
                if side == 1 {
                    f1 *= 0.5;
                }
                side = 1;
            }
        }
        (x0 * f1 - x1 * f0) / (f1 - f0)
    }
}

/// The two grid points as a bracket when the sign changes between them (a zero on the left
/// point counts once, on the cell where it is the left end).
fn bracket((x0, f0): (f64, f64), (x1, f1): (f64, f64)) -> Option<(f64, f64, f64, f64)> {
    let changes =
        (f0 == 0.0 && f1 != 0.0) || (f0 != 0.0 && f1 != 0.0 && f0.signum() != f1.signum());
    changes.then_some((x0, f0, x1, f1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(is_call: bool, strike: f64, oi: i64) -> ContractBook {
        ContractBook {
            is_call,
            strike,
            years: 30.0 / 365.0,
            iv: 0.25,
            open_interest: oi,
            ..Default::default()
        }
    }

    #[test]
    fn total_matches_bsm_gamma_from_the_pricer() {
        let mut c = contract(true, 105.0, 700);
        c.rate = 0.04;
        c.dividend_yield = 0.02;
        let curve = GexCurve::new(GexSign::DealerLongCalls, [&c]);
        let s = 98.0;
        let g = crate::pricing::bsm_greeks(
            crate::pricing::Right::Call,
            s,
            105.0,
            c.years,
            0.04,
            0.02,
            0.25,
        )
        .gamma;
        let want = g * 700.0 * 100.0 * s * s * 0.01;
        assert!(
            (curve.total_at(s) - want).abs() < 1e-9 * want.abs(),
            "{} vs {want}",
            curve.total_at(s)
        );
    }

    #[test]
    fn symmetric_call_and_put_gamma_flips_at_the_geometric_middle() {
        // With zero carry, d1 at spot s for strike K is (ln(s/K) + σ²T/2)/(σ√T): the two equal
        // and opposite humps cross where ln(s/K1) = −ln(s/K2) − σ²T, i.e. s = √(K1K2)·e^{−σ²T/2}.
        let book = [contract(true, 110.0, 1000), contract(false, 90.0, 1000)];
        let curve = GexCurve::new(GexSign::DealerLongCalls, &book);
        let flip = curve.flip_near(100.0, 0.3).expect("a flip");
        let t: f64 = 30.0 / 365.0;
        let exact = (110.0f64 * 90.0).sqrt() * (-0.5 * 0.25 * 0.25 * t).exp();
        assert!((flip - exact).abs() < 1e-3, "flip {flip} vs {exact}");
        assert!(curve.total_at(flip).abs() < 1e-3 * curve.total_at(110.0).abs());
    }

    #[test]
    fn the_nearest_of_several_flips_is_chosen_and_one_sign_means_none() {
        // Short put gamma at 80 and 120, long call gamma at 100: flips on both sides of 100;
        // from a spot of 93 the lower one is nearer.
        let book = [
            contract(false, 80.0, 1000),
            contract(true, 100.0, 1000),
            contract(false, 120.0, 1000),
        ];
        let curve = GexCurve::new(GexSign::DealerLongCalls, &book);
        let low = curve.flip_near(93.0, 0.3).expect("lower flip");
        let high = curve.flip_near(107.0, 0.3).expect("upper flip");
        assert!(low > 80.0 && low < 100.0, "{low}");
        assert!(high > 100.0 && high < 120.0, "{high}");
        let calls_only = GexCurve::new(GexSign::DealerLongCalls, &book[1..2]);
        assert_eq!(calls_only.flip_near(100.0, 0.3), None);
        assert_eq!(GexCurve::default().flip_near(100.0, 0.3), None);
    }
}
