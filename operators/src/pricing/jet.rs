//! Forward-mode derivatives for the American formula's sensitivities: a value with its first
//! derivatives along three directions and its second derivatives along the first two.
//!
//! The directions are the ones the streaming greeks need from one pass of the formula: the
//! logarithm of the (call-coordinate) spot, whose first and second derivatives give delta and
//! gamma; the volatility (vega, vomma); and the rate (rho). Only pure second derivatives are
//! carried: the second derivative of a product or of a composition along one direction needs the
//! first and second derivatives of its parts along that same direction only, so cross terms
//! never have to be formed.

use std::ops::{Add, Mul, Neg, Sub};
use wide::f64x4;

/// Directions carried to first order.
pub(crate) const DIRECTIONS: usize = 3;
/// Directions carried to second order (the first two).
pub(crate) const SECOND_ORDER: usize = 2;
/// The direction of ln S (call coordinates).
pub(crate) const LN_SPOT: usize = 0;
/// The direction of the volatility.
pub(crate) const VOL: usize = 1;
/// The direction of the contract's own rate.
pub(crate) const RATE: usize = 2;

/// A value, its derivative along each direction and its second derivative along the first
/// [`SECOND_ORDER`] of them.
///
/// The derivatives are four-lane vectors, one lane per direction: each operation is then one
/// vector instruction where it was three (or two) scalar ones, and every lane computes exactly
/// what the scalar formula did, in the same order (no fused multiply-adds), so the results are
/// the same bits. `d`'s fourth lane stays zero; `dd`'s last two lanes hold whatever the same
/// formulas give along the rate and that zero lane, and are never read.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Jet {
    pub(crate) v: f64,
    pub(crate) d: f64x4,
    pub(crate) dd: f64x4,
}

impl PartialEq for Jet {
    fn eq(&self, o: &Jet) -> bool {
        self.v == o.v
            && self.d.as_array() == o.d.as_array()
            && self.dd.as_array()[..SECOND_ORDER] == o.dd.as_array()[..SECOND_ORDER]
    }
}

impl Jet {
    /// A constant: every derivative zero.
    pub(crate) fn constant(v: f64) -> Jet {
        Jet {
            v,
            ..Jet::default()
        }
    }

    /// An input that moves one-for-one along `direction`.
    pub(crate) fn variable(v: f64, direction: usize) -> Jet {
        let mut j = Jet::constant(v);
        j.set_first(direction, 1.0);
        j
    }

    /// The first derivative along `direction`.
    pub(crate) fn first(&self, direction: usize) -> f64 {
        self.d.as_array()[direction]
    }

    /// The second derivative along `direction` (one of the first [`SECOND_ORDER`]).
    pub(crate) fn second(&self, direction: usize) -> f64 {
        self.dd.as_array()[direction]
    }

    /// Sets the first derivative along `direction`.
    pub(crate) fn set_first(&mut self, direction: usize, value: f64) {
        self.d.as_mut_array()[direction] = value;
    }

    /// Sets the second derivative along `direction`.
    pub(crate) fn set_second(&mut self, direction: usize, value: f64) {
        self.dd.as_mut_array()[direction] = value;
    }

    /// `f(self)` given f's value and its first two derivatives at `self.v` (the chain rule:
    /// (f∘g)' = f'·g', (f∘g)'' = f''·g'² + f'·g'').
    pub(crate) fn chain(self, f: f64, f1: f64, f2: f64) -> Jet {
        Jet {
            v: f,
            d: f64x4::splat(f1) * self.d,
            dd: f64x4::splat(f2) * self.d * self.d + f64x4::splat(f1) * self.dd,
        }
    }

    /// e^self, its value already known (`e` = e^self.v, e.g. from a vector exponential).
    pub(crate) fn exp_at(self, e: f64) -> Jet {
        self.chain(e, e, e)
    }

    /// ln self, its value already known (`ln` = ln self.v).
    pub(crate) fn ln_at(self, ln: f64) -> Jet {
        let inv = 1.0 / self.v;
        self.chain(ln, inv, -inv * inv)
    }

    /// √self.
    pub(crate) fn sqrt(self) -> Jet {
        let root = self.v.sqrt();
        self.chain(root, 0.5 / root, -0.25 / (root * self.v))
    }

    /// 1/self.
    pub(crate) fn recip(self) -> Jet {
        let inv = 1.0 / self.v;
        self.chain(inv, -inv * inv, 2.0 * inv * inv * inv)
    }

    /// self / other.
    pub(crate) fn div(self, other: Jet) -> Jet {
        self * other.recip()
    }

    /// Whether every derivative is finite.
    pub(crate) fn is_finite(&self) -> bool {
        self.v.is_finite()
            && self.d.as_array()[..DIRECTIONS]
                .iter()
                .all(|d| d.is_finite())
            && self.dd.as_array()[..SECOND_ORDER]
                .iter()
                .all(|d| d.is_finite())
    }
}

/// A function of `N` jets given its value, gradient and Hessian at their values: the
/// multivariate chain rule, F' = Σ Fᵢ·aᵢ' and F'' = Σ Fᵢ·aᵢ'' + Σ Fᵢⱼ·aᵢ'·aⱼ' along each
/// direction (the sums in the order a sum over an iterator makes them, from −0).
pub(crate) fn compose<const N: usize>(
    value: f64,
    gradient: [f64; N],
    hessian: [[f64; N]; N],
    args: [Jet; N],
) -> Jet {
    let mut d = f64x4::splat(-0.0);
    for i in 0..N {
        d += f64x4::splat(gradient[i]) * args[i].d;
    }
    let mut dd = f64x4::ZERO;
    for i in 0..N {
        dd += f64x4::splat(gradient[i]) * args[i].dd;
        for j in 0..N {
            dd += f64x4::splat(hessian[i][j]) * args[i].d * args[j].d;
        }
    }
    Jet { v: value, d, dd }
}

impl Add for Jet {
    type Output = Jet;
    fn add(self, o: Jet) -> Jet {
        Jet {
            v: self.v + o.v,
            d: self.d + o.d,
            dd: self.dd + o.dd,
        }
    }
}

impl Sub for Jet {
    type Output = Jet;
    fn sub(self, o: Jet) -> Jet {
        self + -o
    }
}

impl Neg for Jet {
    type Output = Jet;
    fn neg(self) -> Jet {
        self * -1.0
    }
}

impl Mul for Jet {
    type Output = Jet;
    // The product rule adds: (fg)' = f'g + fg'.
    #[allow(clippy::suspicious_arithmetic_impl)]
    fn mul(self, o: Jet) -> Jet {
        let (v, ov) = (f64x4::splat(self.v), f64x4::splat(o.v));
        Jet {
            v: self.v * o.v,
            d: self.d * ov + v * o.d,
            dd: self.dd * ov + f64x4::splat(2.0) * self.d * o.d + v * o.dd,
        }
    }
}

impl Mul<f64> for Jet {
    type Output = Jet;
    fn mul(self, c: f64) -> Jet {
        let c4 = f64x4::splat(c);
        Jet {
            v: self.v * c,
            d: self.d * c4,
            dd: self.dd * c4,
        }
    }
}

impl Add<f64> for Jet {
    type Output = Jet;
    fn add(self, c: f64) -> Jet {
        Jet {
            v: self.v + c,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{compose, Jet, LN_SPOT, RATE, VOL};

    /// Derivatives along one direction of `f`, by central differences.
    fn differences(f: &dyn Fn(f64) -> f64, x: f64) -> (f64, f64) {
        let h = 1e-4 * x.abs().max(1.0);
        let (up, mid, dn) = (f(x + h), f(x), f(x - h));
        ((up - dn) / (2.0 * h), (up - 2.0 * mid + dn) / (h * h))
    }

    #[test]
    fn arithmetic_and_functions_follow_the_chain_rule() {
        // g(x, σ, r) = √(x·σ + e^r)/(1 + σ²) + ln(3 + x·r), at (0.7, 0.3, 0.05).
        let g = |x: Jet, s: Jet, r: Jet| {
            let num = (x * s + r.exp_at(r.v.exp())).sqrt();
            let den = s * s + 1.0;
            let inner = x * r + 3.0;
            num.div(den) + inner.ln_at(inner.v.ln())
        };
        let at = [0.7, 0.3, 0.05];
        let jet = g(
            Jet::variable(at[0], LN_SPOT),
            Jet::variable(at[1], VOL),
            Jet::variable(at[2], RATE),
        );
        let plain = |p: [f64; 3]| {
            g(
                Jet::constant(p[0]),
                Jet::constant(p[1]),
                Jet::constant(p[2]),
            )
            .v
        };
        for direction in [LN_SPOT, VOL, RATE] {
            let along = |x: f64| {
                let mut p = at;
                p[direction] = x;
                plain(p)
            };
            let (d, dd) = differences(&along, at[direction]);
            assert!(
                (jet.first(direction) - d).abs() < 1e-7,
                "{direction}: {jet:?} vs {d}"
            );
            if direction < super::SECOND_ORDER {
                assert!(
                    (jet.second(direction) - dd).abs() < 1e-5,
                    "{direction}: {jet:?} vs {dd}"
                );
            }
        }
    }

    #[test]
    fn compose_is_the_multivariate_chain_rule() {
        // F(a, b) = a²·b with a = x², b = 1 + x, along x: F = x⁴ + x⁵.
        let x = Jet::variable(1.3, LN_SPOT);
        let (a, b) = (x * x, x + 1.0);
        let f = compose(
            a.v * a.v * b.v,
            [2.0 * a.v * b.v, a.v * a.v],
            [[2.0 * b.v, 2.0 * a.v], [2.0 * a.v, 0.0]],
            [a, b],
        );
        let v: f64 = 1.3;
        assert!((f.first(LN_SPOT) - (4.0 * v.powi(3) + 5.0 * v.powi(4))).abs() < 1e-12);
        assert!((f.second(LN_SPOT) - (12.0 * v.powi(2) + 20.0 * v.powi(3))).abs() < 1e-11);
    }
}
