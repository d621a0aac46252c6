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
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Jet {
    pub(crate) v: f64,
    pub(crate) d: [f64; DIRECTIONS],
    pub(crate) dd: [f64; SECOND_ORDER],
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
        j.d[direction] = 1.0;
        j
    }

    /// `f(self)` given f's value and its first two derivatives at `self.v` (the chain rule:
    /// (f∘g)' = f'·g', (f∘g)'' = f''·g'² + f'·g'').
    pub(crate) fn chain(self, f: f64, f1: f64, f2: f64) -> Jet {
        Jet {
            v: f,
            d: self.d.map(|d| f1 * d),
            dd: std::array::from_fn(|k| f2 * self.d[k] * self.d[k] + f1 * self.dd[k]),
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
            && self.d.iter().all(|d| d.is_finite())
            && self.dd.iter().all(|d| d.is_finite())
    }
}

/// A function of `N` jets given its value, gradient and Hessian at their values: the
/// multivariate chain rule, F' = Σ Fᵢ·aᵢ' and F'' = Σ Fᵢ·aᵢ'' + Σ Fᵢⱼ·aᵢ'·aⱼ' along each
/// direction.
pub(crate) fn compose<const N: usize>(
    value: f64,
    gradient: [f64; N],
    hessian: [[f64; N]; N],
    args: [Jet; N],
) -> Jet {
    let d = std::array::from_fn(|k| (0..N).map(|i| gradient[i] * args[i].d[k]).sum());
    let dd = std::array::from_fn(|k| {
        let mut sum = 0.0;
        for i in 0..N {
            sum += gradient[i] * args[i].dd[k];
            for j in 0..N {
                sum += hessian[i][j] * args[i].d[k] * args[j].d[k];
            }
        }
        sum
    });
    Jet { v: value, d, dd }
}

impl Add for Jet {
    type Output = Jet;
    fn add(self, o: Jet) -> Jet {
        Jet {
            v: self.v + o.v,
            d: std::array::from_fn(|k| self.d[k] + o.d[k]),
            dd: std::array::from_fn(|k| self.dd[k] + o.dd[k]),
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
        Jet {
            v: self.v * o.v,
            d: std::array::from_fn(|k| self.d[k] * o.v + self.v * o.d[k]),
            dd: std::array::from_fn(|k| {
                self.dd[k] * o.v + 2.0 * self.d[k] * o.d[k] + self.v * o.dd[k]
            }),
        }
    }
}

impl Mul<f64> for Jet {
    type Output = Jet;
    fn mul(self, c: f64) -> Jet {
        Jet {
            v: self.v * c,
            d: self.d.map(|d| d * c),
            dd: self.dd.map(|d| d * c),
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
                (jet.d[direction] - d).abs() < 1e-7,
                "{direction}: {jet:?} vs {d}"
            );
            if direction < super::SECOND_ORDER {
                assert!(
                    (jet.dd[direction] - dd).abs() < 1e-5,
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
        assert!((f.d[LN_SPOT] - (4.0 * v.powi(3) + 5.0 * v.powi(4))).abs() < 1e-12);
        assert!((f.dd[LN_SPOT] - (12.0 * v.powi(2) + 20.0 * v.powi(3))).abs() < 1e-11);
    }
}
