//! Small statistics shared by the factors: a bounded rolling history, robust (median/MAD) and
//! percentile-rank standard scores, the normal CDF and its inverse.

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

    /// Median of the observations (0 when empty).
    pub fn median(&self) -> f64 {
        let mut v: Vec<f64> = self.values.iter().copied().collect();
        median(&mut v).unwrap_or(0.0)
    }

    /// Scores `v` against the history, robustly, or `None` while the history is too short:
    /// - with at least `min_samples` observations, the median/MAD score ([`robust_z`]);
    /// - with at least `floor` (but fewer than `min_samples`), the percentile rank of `v` mapped
    ///   through the inverse normal ([`percentile_z`]) — a short history cannot support a scale
    ///   estimate, but it can still say where `v` ranks;
    /// - below `floor`, nothing.
    pub fn score(&self, v: f64, min_samples: usize, floor: usize, min_std: f64) -> Option<Scored> {
        let reference = self.reference(min_samples, floor)?;
        Some(self.score_against(reference, v, min_std))
    }

    /// What [`History::score`] measures any value from, `None` while the history is too short:
    /// for scoring many values against one history (each at the same bits as `score`).
    pub fn reference(&self, min_samples: usize, floor: usize) -> Option<Reference> {
        let n = self.values.len();
        let robust = n >= min_samples && n >= 2;
        if !robust && n < floor.max(1) {
            return None;
        }
        // One copy serves the median, then (rewritten in place) the absolute deviations.
        let mut buf: Vec<f64> = self.values.iter().copied().collect();
        if robust {
            let (center, mad) = center_and_mad(&mut buf)?;
            Some(Reference::Robust { center, mad })
        } else {
            Some(Reference::Ranked {
                center: median(&mut buf).unwrap_or(0.0),
            })
        }
    }

    /// Scores `v` from a [`History::reference`] of this history.
    pub fn score_against(&self, reference: Reference, v: f64, min_std: f64) -> Scored {
        match reference {
            Reference::Robust { center, mad } => Scored {
                z: (v - center) / (MAD_SCALE * mad).max(min_std),
                center,
                method: Method::MedianMad,
            },
            Reference::Ranked { center } => Scored {
                z: rank_z(self.values.iter(), v),
                center,
                method: Method::PercentileRank,
            },
        }
    }

    /// Standard score of `v` against the history, with the deviation floored at `min_std` so a
    /// nearly constant history does not turn rounding noise into huge scores.
    pub fn zscore(&self, v: f64, min_std: f64) -> f64 {
        (v - self.mean()) / self.std_dev().max(min_std)
    }
}

/// How a [`Scored`] value was scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Median and scaled median absolute deviation: a full history.
    MedianMad,
    /// Percentile rank through the inverse normal: a short history.
    PercentileRank,
}

/// A standard score and the centre it was measured from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// The standard score.
    pub z: f64,
    /// The history's median, the level the score is measured from.
    pub center: f64,
    /// How the score was obtained.
    pub method: Method,
}

/// A history's centre and spread, or its centre alone while it is short
/// ([`History::reference`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reference {
    /// Median and (unscaled) median absolute deviation: a full history.
    Robust {
        /// The median.
        center: f64,
        /// The median absolute deviation, unscaled.
        mad: f64,
    },
    /// A short history: values are ranked among its observations.
    Ranked {
        /// The median.
        center: f64,
    },
}

/// Scale factor that makes the median absolute deviation a consistent estimator of the standard
/// deviation under normality (1 / Φ⁻¹(3/4)); see Rousseeuw & Croux (1993), "Alternatives to the
/// Median Absolute Deviation", JASA 88(424).
pub const MAD_SCALE: f64 = 1.4826;

/// Median absolute deviation from the median (unscaled); 0 when empty.
pub fn mad(values: &[f64]) -> f64 {
    center_and_mad(&mut values.to_vec()).map_or(0.0, |(_, mad)| mad)
}

/// The median of `values` and the median of `|x − median|` (unscaled MAD), or `None` when
/// empty. `values` is overwritten with the deviations (their order does not matter to a median).
fn center_and_mad(values: &mut [f64]) -> Option<(f64, f64)> {
    let center = median(values)?;
    for x in values.iter_mut() {
        *x = (*x - center).abs();
    }
    Some((center, median(values).unwrap_or(0.0)))
}

/// Robust standard score: `(v − median) / max(1.4826·MAD, min_std)`. One outlier in the history
/// moves neither the median nor the MAD much, so yesterday's spike does not mute today's.
pub fn robust_z(values: &[f64], v: f64, min_std: f64) -> f64 {
    let (m, mad) = center_and_mad(&mut values.to_vec()).unwrap_or((v, 0.0));
    (v - m) / (MAD_SCALE * mad).max(min_std)
}

/// Percentile rank of `v` among `values`, as a standard score: the mid-rank
/// `p = (below + ½·equal + ½) / (n + 1)` mapped through [`inv_norm_cdf`]. The `+½ … n+1`
/// continuity correction keeps `p` strictly inside (0, 1), so the score stays finite, and bounds
/// it by the history's length: with n observations |z| ≤ Φ⁻¹((n + ½)/(n + 1)), e.g. 1.53 for
/// n = 7 — a short history can rank a value but never make an extreme claim about it.
pub fn percentile_z(values: &[f64], v: f64) -> f64 {
    rank_z(values.iter(), v)
}

/// [`percentile_z`] over any run of observations (a history's ring as well as a slice).
fn rank_z<'a>(values: impl ExactSizeIterator<Item = &'a f64> + Clone, v: f64) -> f64 {
    let n = values.len();
    let below = values.clone().filter(|&&x| x < v).count();
    let equal = values.filter(|&&x| x == v).count();
    let p = (below as f64 + 0.5 * equal as f64 + 0.5) / (n as f64 + 1.0);
    inv_norm_cdf(p)
}

/// Inverse of the standard normal CDF, by P. J. Acklam's rational approximation (2003, "An
/// algorithm for computing the inverse normal cumulative distribution function"): a central
/// rational function in (p − ½)² and tail rational functions in √(−2 ln p), relative error
/// below 1.15e-9. Returns ±∞ at 0 and 1 and NaN outside [0, 1].
pub fn inv_norm_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.024_25;
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    // Tail: rational in q = √(−2 ln p); the upper tail by symmetry.
    let tail = |p: f64| {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail(p)
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail(1.0 - p)
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

/// Median of a slice (reordered in place); `None` when empty. A selection, not a sort: the
/// middle element by `f64::total_cmp`, and for an even length the largest element below it, so
/// the value is exactly the one a sort would give, in linear time (score closes a window with a
/// few of these per contract; sorting was 3.4% of a replay's `perf` samples before).
pub fn median(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let (below, &mut upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        return Some(upper);
    }
    let lower = below
        .iter()
        .copied()
        .max_by(f64::total_cmp)
        .unwrap_or(upper);
    Some(0.5 * (lower + upper))
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
    fn inverse_normal_matches_tables_and_inverts_the_cdf() {
        for (p, want) in [
            (0.5, 0.0),
            (0.975, 1.959_963_985),
            (0.841_344_746, 1.0),
            (0.01, -2.326_347_874),
            (1e-6, -4.753_424_309),
        ] {
            assert!(
                (inv_norm_cdf(p) - want).abs() < 1e-8,
                "{p}: {}",
                inv_norm_cdf(p)
            );
        }
        for i in 1..100 {
            let p = i as f64 / 100.0;
            assert!((norm_cdf(inv_norm_cdf(p)) - p).abs() < 3e-7, "{p}");
        }
        assert_eq!(inv_norm_cdf(0.0), f64::NEG_INFINITY);
        assert!(inv_norm_cdf(1.5).is_nan());
    }

    #[test]
    fn median_mad_score_matches_hand_computation() {
        // Sorted: 1 2 3 4 100 → median 3; |x − 3| = 2 1 0 1 97 → MAD 1; scale 1.4826.
        let values = [4.0, 1.0, 100.0, 3.0, 2.0];
        assert_eq!(mad(&values), 1.0);
        let z = robust_z(&values, 6.0, 0.0);
        assert!((z - 3.0 / 1.4826).abs() < 1e-12, "{z}");
        // The floor takes over when the MAD is tiny.
        assert!((robust_z(&values, 6.0, 2.0) - 1.5).abs() < 1e-12);
        let mut h = History::default();
        for v in values {
            h.push(v, 10);
        }
        let s = h.score(6.0, 5, 3, 0.0).unwrap();
        assert_eq!(s.method, Method::MedianMad);
        assert_eq!(s.center, 3.0);
        assert!((s.z - 3.0 / 1.4826).abs() < 1e-12);
    }

    #[test]
    fn short_histories_fall_back_to_percentile_rank() {
        let mut h = History::default();
        h.push(1.0, 10);
        h.push(2.0, 10);
        assert!(h.score(9.0, 5, 3, 0.01).is_none(), "below the floor");
        h.push(3.0, 10);
        // 3 observations, v above all: p = (3 + ½)/4 = 0.875 → z = Φ⁻¹(0.875) ≈ 1.1503.
        let s = h.score(9.0, 5, 3, 0.01).unwrap();
        assert_eq!(s.method, Method::PercentileRank);
        assert!((s.z - 1.150_349_380).abs() < 1e-8, "{}", s.z);
        // v equal to the middle value: p = (1 + ½ + ½)/4 = ½ → z = 0.
        assert!(h.score(2.0, 5, 3, 0.01).unwrap().z.abs() < 1e-12);
        // The rank is bounded by the history's length.
        assert!(percentile_z(&[0.0; 7], 1e9) < 1.54);
    }

    #[test]
    fn one_reference_scores_every_value_as_score_does() {
        let mut h = History::default();
        for (i, v) in [0.31, 0.29, 0.35, 0.30, 0.33, 0.28, 0.30, 0.36, 0.27]
            .into_iter()
            .enumerate()
        {
            h.push(v, 10);
            for (min_samples, floor) in [(5, 3), (20, 3), (20, 20)] {
                let reference = h.reference(min_samples, floor);
                assert_eq!(
                    reference.is_some(),
                    h.score(0.3, min_samples, floor, 0.01).is_some()
                );
                for v in [0.2, 0.3, 0.31, 0.5] {
                    let once = reference.map(|r| h.score_against(r, v, 0.01));
                    let each = h.score(v, min_samples, floor, 0.01);
                    let bits = |s: Option<Scored>| {
                        s.map(|s| (s.z.to_bits(), s.center.to_bits(), s.method))
                    };
                    assert_eq!(
                        bits(once),
                        bits(each),
                        "{i} values, {min_samples}/{floor}, v {v}"
                    );
                }
            }
        }
    }

    #[test]
    fn score_is_a_percentile_of_the_magnitude() {
        assert!((score_from_z(0.0) - 50.0).abs() < 1e-5);
        assert!((score_from_z(-2.0) - 97.72).abs() < 0.01);
        assert_eq!(score_from_z(f64::NAN), 50.0);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut []), None);
    }

    /// The median by sorting, as it was computed before it became a selection.
    fn median_by_sort(values: &[f64]) -> Option<f64> {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        (n > 0).then(|| {
            if n % 2 == 1 {
                v[n / 2]
            } else {
                0.5 * (v[n / 2 - 1] + v[n / 2])
            }
        })
    }

    proptest::proptest! {
        /// The selection gives the sort's median to the bit, at odd and even lengths, with
        /// ties and signed zeros (a score's centre and MAD must not move by a rounding).
        #[test]
        fn prop_median_is_the_sorted_median(
            values in proptest::collection::vec(
                proptest::prop_oneof![
                    -1e3f64..1e3,
                    proptest::sample::select(vec![0.0, -0.0, 1.0, 2.5]),
                ],
                0..40,
            )
        ) {
            let want = median_by_sort(&values).map(f64::to_bits);
            proptest::prop_assert_eq!(median(&mut values.clone()).map(f64::to_bits), want);
        }
    }
}
