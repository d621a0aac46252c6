//! Small statistics shared by the factors: a bounded rolling history and the normal CDF.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The last `cap` observations of a quantity, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    values: VecDeque<f64>,
}

impl History {
    /// Appends `v`, dropping the oldest observation beyond `cap`.
    pub fn push(&mut self, v: f64, cap: usize) {
        if !v.is_finite() {
            return;
        }
        if self.values.len() == cap {
            self.values.pop_front();
        }
        self.values.push_back(v);
    }

    /// Number of observations held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no observation is held.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Mean of the observations (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.values.is_empty() {
            return 0.0;
        }
        self.values.iter().sum::<f64>() / self.values.len() as f64
    }

    /// Sample standard deviation (0 with fewer than two observations).
    pub fn std_dev(&self) -> f64 {
        let n = self.values.len();
        if n < 2 {
            return 0.0;
        }
        let m = self.mean();
        let ss: f64 = self.values.iter().map(|v| (v - m) * (v - m)).sum();
        (ss / (n - 1) as f64).sqrt()
    }

    /// Standard score of `v` against the history, with the deviation floored at `min_std` so a
    /// nearly constant history does not turn rounding noise into huge scores.
    pub fn zscore(&self, v: f64, min_std: f64) -> f64 {
        (v - self.mean()) / self.std_dev().max(min_std)
    }
}

/// Standard normal cumulative distribution, via the complementary error function
/// (W. J. Cody's rational approximations are overkill for scoring; this one is accurate to
/// about 1.2e-7, far below what a 0-100 score can show).
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes' Chebyshev fit, |error| < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Maps a standard score to a 0-100 score: the percentile of `|z|` under the normal law, so
/// 0 → 50 (unremarkable), 1 → 84, 2 → 97.7, 3 → 99.9.
pub fn score_from_z(z: f64) -> f64 {
    if !z.is_finite() {
        return 50.0;
    }
    100.0 * norm_cdf(z.abs())
}

/// Median of a slice (sorted in place); `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_cdf_matches_tables() {
        for (x, want) in [
            (0.0, 0.5),
            (1.0, 0.841_344_746),
            (-1.96, 0.024_997_895),
            (3.0, 0.998_650_102),
        ] {
            assert!((norm_cdf(x) - want).abs() < 2e-7, "{x}");
        }
    }

    #[test]
    fn history_is_bounded_and_scores() {
        let mut h = History::default();
        for i in 0..10 {
            h.push(i as f64, 5);
        }
        assert_eq!(h.len(), 5);
        assert_eq!(h.mean(), 7.0);
        assert!((h.std_dev() - 1.581_138_83).abs() < 1e-8);
        assert!((h.zscore(10.0, 0.0) - 3.0 / 1.581_138_83).abs() < 1e-8);
        h.push(f64::NAN, 5);
        assert_eq!(h.len(), 5, "non-finite values never enter a history");
    }

    #[test]
    fn score_is_a_percentile_of_the_magnitude() {
        assert!((score_from_z(0.0) - 50.0).abs() < 1e-5);
        assert!((score_from_z(-2.0) - 97.72).abs() < 0.01);
        assert_eq!(score_from_z(f64::NAN), 50.0);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut []), None);
    }
}
