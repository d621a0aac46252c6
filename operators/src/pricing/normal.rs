//! The standard normal distribution four lanes at a time, for Bjerksund-Stensland's dozens of
//! normal CDFs per price.
//!
//! Φ(x) = ½·erfc(z) with z = −x/√2. Cody's rational approximations, as the `implied-vol` crate
//! evaluates them but four lanes at a time ([`cody_rational4`]), give erf(z) where
//! |z| ≤ 0.46875 (a polynomial ratio, no exponential), else the scaled
//! erfcx(|z|) = e^(z²)·erfc(|z|) (a rational function, no exponential either). What the scalar
//! function spends most of its time on, the Gaussian
//! factor e^(−z²) — two library exponentials, split so that z² is not rounded — runs here as
//! one [`exp4_sum`] call for all four lanes. The split is Cody's: with ẑ = ⌊16|z|⌋/16, ẑ² is exact and
//! e^(−z²) = e^(−ẑ²)·e^(−(|z| − ẑ)(|z| + ẑ)), so z² is never rounded and the lower tail keeps
//! the relative accuracy its condition number allows (about x² ulp: Φ's relative sensitivity
//! to x there is x², and z = x/√2 is itself rounded). The tests check a few ulp against the
//! crate's scalar erfc down to x = −37 and against 40-digit values.

use super::exp::{exp4, exp4_sum};
use std::f64::consts::FRAC_1_SQRT_2;
use wide::f64x4;

/// Where Cody's approximations switch from erf's polynomial ratio to erfc's rational functions.
const CODY_SPLIT: f64 = 0.46875;

/// Φ(x) lane by lane, to within a few ulp of [`super::bsm::norm_cdf`]. NaN stays NaN; below
/// x ≈ −37.5 the result underflows to 0.
#[inline]
pub(crate) fn norm_cdf4(x: f64x4) -> f64x4 {
    CdfParts::new(x).value()
}

/// [`norm_cdf4`] for two values (the same arithmetic, so the same bits), for callers that
/// have only two.
#[inline]
pub(crate) fn norm_cdf2(x: [f64; 2]) -> [f64; 2] {
    norm_cdf2_and_gaussian(x).0
}

/// [`norm_cdf2`], and with it the Gaussian factor e^(−x²/2) of each value that the CDF forms
/// anyway (as Cody's split, so as accurate as x allows): the density φ(x) = e^(−x²/2)/√(2π)
/// then costs one multiplication instead of another exponential.
#[inline]
pub(crate) fn norm_cdf2_and_gaussian(x: [f64; 2]) -> ([f64; 2], [f64; 2]) {
    // Four lanes with the two values twice: no region is evaluated for the padding alone.
    let (cdf, gaussian) = norm_cdf4_and_gaussian(f64x4::new([x[0], x[1], x[0], x[1]]));
    let ([c0, c1, _, _], [g0, g1, _, _]) = (cdf.to_array(), gaussian.to_array());
    ([c0, c1], [g0, g1])
}

/// [`norm_cdf4`] (the same bits), and with it the Gaussian factor e^(−x²/2) of each lane, as
/// [`norm_cdf2_and_gaussian`] has it for two.
#[inline]
pub(crate) fn norm_cdf4_and_gaussian(x: f64x4) -> (f64x4, f64x4) {
    let parts = CdfParts::new(x);
    let gaussian = parts.gaussian();
    (parts.cdf(gaussian), gaussian)
}

/// What Φ of four lanes is made of: z = −x/√2, |z|, which lanes are central (|z| ≤ 0.46875),
/// and Cody's rational part ([`cody_rational4`]).
struct CdfParts {
    z: f64x4,
    y: f64x4,
    central: f64x4,
    part: f64x4,
}

impl CdfParts {
    #[inline(always)]
    fn new(x: f64x4) -> CdfParts {
        let z = -x * f64x4::splat(FRAC_1_SQRT_2);
        let y = z.abs();
        CdfParts {
            z,
            y,
            central: y.simd_le(f64x4::splat(CODY_SPLIT)),
            part: cody_rational4(z, y),
        }
    }

    /// e^(−z²) = e^(−x²/2), by Cody's split ẑ = ⌊16|z|⌋/16 (see the module docs).
    #[inline(always)]
    fn gaussian(&self) -> f64x4 {
        let y = self.y;
        let y_hat = (y * f64x4::splat(16.0)).floor() * f64x4::splat(0.0625);
        exp4_sum(-(y_hat * y_hat), -((y - y_hat) * (y + y_hat)))
    }

    /// Φ(x), without the exponential when every lane is central.
    #[inline(always)]
    fn value(&self) -> f64x4 {
        if self.central.all() {
            return self.part;
        }
        self.cdf(self.gaussian())
    }

    /// Φ(x) given the Gaussian factor: the rational part itself in the centre, ½·erfc(z)
    /// outside, with erfc(z) = 2 − erfc(|z|) for negative z.
    #[inline(always)]
    fn cdf(&self, gaussian: f64x4) -> f64x4 {
        let tail = self.part * gaussian;
        let erfc = self
            .z
            .simd_lt(f64x4::ZERO)
            .select(f64x4::splat(2.0) - tail, tail);
        self.central.select(self.part, f64x4::splat(0.5) * erfc)
    }
}

/// The rational part of Cody's erfc for one lane: ½(1 − erf z) near the centre (the final
/// value), erfcx(|z|) elsewhere (still to be multiplied by e^(−z²)). The scalar reference
/// [`cody_rational4`] reproduces bit for bit.
#[cfg(test)]
fn rational_part(z: f64, y: f64) -> f64 {
    use implied_vol::{DefaultSpecialFn, SpecialFn};
    if y <= CODY_SPLIT {
        0.5 * (1.0 - DefaultSpecialFn::erf(z))
    } else {
        DefaultSpecialFn::erfcx(y)
    }
}

/// Cody's (1969) coefficients for erf on |z| ≤ 0.46875, in w = z²: numerator, then denominator.
#[allow(clippy::excessive_precision)] // the published digits
const CODY_ERF_P: [f64; 5] = [
    0.185_777_706_184_603_153,
    3.161_123_743_870_565_6,
    113.864_154_151_050_156,
    377.485_237_685_302_021,
    3_209.377_589_138_469_47,
];
#[allow(clippy::excessive_precision)] // the published digits
const CODY_ERF_Q: [f64; 4] = [
    23.601_290_952_344_120_9,
    244.024_637_934_444_173,
    1_282.616_526_077_372_28,
    2_844.236_833_439_170_62,
];
/// erfcx(y) on 0.46875 < y ≤ 4.
#[allow(clippy::excessive_precision)] // the published digits
const CODY_ERFC_P: [f64; 9] = [
    2.153_115_354_744_038_46e-8,
    0.564_188_496_988_670_089,
    8.883_149_794_388_375_94,
    66.119_190_637_141_629_5,
    298.635_138_197_400_131,
    881.952_221_241_769_09,
    1_712.047_612_634_070_58,
    2_051.078_377_826_071_47,
    1_230.339_354_797_997_25,
];
#[allow(clippy::excessive_precision)] // the published digits
const CODY_ERFC_Q: [f64; 8] = [
    15.744_926_110_709_834_7,
    117.693_950_891_312_499,
    537.181_101_862_009_858,
    1_621.389_574_566_690_19,
    3_290.799_235_733_459_63,
    4_362.619_090_143_247_16,
    3_439.367_674_143_721_64,
    1_230.339_354_803_749_42,
];
/// erfcx(y) for y > 4, in u = 1/y²: erfcx(y) = (1/√π − u·P(u)/Q(u))/y.
#[allow(clippy::excessive_precision)] // the published digits
const CODY_ASYMPTOTIC_P: [f64; 6] = [
    0.016_315_387_137_302_097_8,
    0.305_326_634_961_232_344,
    0.360_344_899_949_804_439,
    0.125_781_726_111_229_246,
    0.016_083_785_148_742_276_6,
    6.587_491_615_298_378_03e-4,
];
#[allow(clippy::excessive_precision)] // the published digits
const CODY_ASYMPTOTIC_Q: [f64; 5] = [
    2.568_520_192_289_822_42,
    1.872_952_849_923_460_47,
    0.527_905_102_951_428_412,
    0.060_518_341_312_441_319_1,
    0.002_335_204_976_268_691_85,
];
/// 1/√π.
const FRAC_1_SQRT_PI: f64 = 0.564_189_583_547_756_3;
/// Where Cody's erfcx switches to its asymptotic form.
const CODY_ASYMPTOTIC: f64 = 4.0;

/// Σ cᵢ·xⁿ⁻ⁱ by Horner's rule, highest coefficient first, as separate multiplications and
/// additions (no fused multiply-add: the scalar reference rounds each one).
#[inline(always)]
fn horner(x: f64x4, coefficients: &[f64]) -> f64x4 {
    let (first, rest) = coefficients
        .split_first()
        .expect("a polynomial has a coefficient");
    rest.iter()
        .fold(f64x4::splat(*first), |acc, c| acc * x + f64x4::splat(*c))
}

/// Horner's rule for a monic polynomial: xⁿ + Σ cᵢ·xⁿ⁻¹⁻ⁱ.
#[inline(always)]
fn horner_monic(x: f64x4, coefficients: &[f64]) -> f64x4 {
    let (first, rest) = coefficients
        .split_first()
        .expect("a polynomial has a coefficient");
    rest.iter().fold(x + f64x4::splat(*first), |acc, c| {
        acc * x + f64x4::splat(*c)
    })
}

/// The rational part of Cody's erfc for four lanes, without a branch per lane: ½(1 − erf z)
/// where |z| ≤ 0.46875 (the final value), erfcx(|z|) elsewhere (still to be multiplied by
/// e^(−z²)). The same coefficients and the same order of operations as the `implied-vol`
/// crate's scalar erf and erfcx (built without its `fma` feature), so the same bits; each of
/// the three regions is evaluated only when a lane falls in it.
#[inline]
fn cody_rational4(z: f64x4, y: f64x4) -> f64x4 {
    let central = y.simd_le(f64x4::splat(CODY_SPLIT));
    let asymptotic = y.simd_gt(f64x4::splat(CODY_ASYMPTOTIC));
    let mut part = f64x4::ZERO;
    if central.any() {
        let w = z * z;
        let erf = z * (horner(w, &CODY_ERF_P) / horner_monic(w, &CODY_ERF_Q));
        part = central.select(f64x4::splat(0.5) * (f64x4::ONE - erf), part);
    }
    let middle = !(central | asymptotic);
    if middle.any() {
        let erfcx = horner(y, &CODY_ERFC_P) / horner_monic(y, &CODY_ERFC_Q);
        part = middle.select(erfcx, part);
    }
    if asymptotic.any() {
        let u = f64x4::ONE / (y * y);
        let tail = u * horner(u, &CODY_ASYMPTOTIC_P) / horner_monic(u, &CODY_ASYMPTOTIC_Q);
        part = asymptotic.select((f64x4::splat(FRAC_1_SQRT_PI) - tail) / y, part);
    }
    part
}

/// e^a·Φ(x) lane by lane, without overflow or 0·∞: where x ≤ −5, Φ(x) = ½·erfcx(−x/√2)·e^(−x²/2)
/// and the Gaussian factor joins the exponent. An exponent past 709 gives +∞, as `f64::exp`
/// would (see [`exp4`]).
#[inline]
pub(crate) fn scaled_cdf4(a: f64x4, x: f64x4) -> f64x4 {
    let parts = CdfParts::new(x);
    let near = exp4(a) * parts.value();
    let far_lanes = x.simd_le(f64x4::splat(-5.0));
    if !far_lanes.any() {
        return near;
    }
    // There z = −x/√2 > 3.5, so the rational part is erfcx(z) and Φ(x) = ½·erfcx(z)·e^(−x²/2).
    let far = exp4(a - f64x4::splat(0.5) * x * x) * (f64x4::splat(0.5) * parts.part);
    far_lanes.select(far, near)
}

/// [`scaled_cdf4`] (the same bits) and e^a·φ(x) lane by lane, from the same exponentials:
/// e^a times the Gaussian factor the CDF forms, or in the far lanes (x ≤ −5) the one
/// exponential of a − x²/2 that the CDF is formed from there, so a large `a` over a far tail
/// stays finite in both.
#[inline]
pub(crate) fn scaled_cdf4_and_density(a: f64x4, x: f64x4) -> (f64x4, f64x4) {
    let parts = CdfParts::new(x);
    let gaussian = parts.gaussian();
    let scale = exp4(a);
    let frac_1_sqrt_2pi = f64x4::splat(super::bsm::FRAC_1_SQRT_2PI);
    let (near, near_density) = (
        scale * parts.cdf(gaussian),
        scale * gaussian * frac_1_sqrt_2pi,
    );
    let far_lanes = x.simd_le(f64x4::splat(-5.0));
    if !far_lanes.any() {
        return (near, near_density);
    }
    let joint = exp4(a - f64x4::splat(0.5) * x * x);
    let far = joint * (f64x4::splat(0.5) * parts.part);
    (
        far_lanes.select(far, near),
        far_lanes.select(joint * frac_1_sqrt_2pi, near_density),
    )
}

#[cfg(test)]
mod tests {
    use super::{
        norm_cdf2, norm_cdf2_and_gaussian, norm_cdf4, norm_cdf4_and_gaussian, scaled_cdf4,
        scaled_cdf4_and_density,
    };
    use crate::pricing::bsm::norm_cdf;
    use implied_vol::{DefaultSpecialFn, SpecialFn};
    use std::f64::consts::FRAC_1_SQRT_2;
    use wide::f64x4;

    /// The same algorithm as the crate's scalar erfc (Cody, with the split Gaussian), so the
    /// lanes agree with it to the exponentials' last bits everywhere.
    #[test]
    fn matches_the_scalar_complementary_error_function_to_a_few_ulp() {
        let mut worst: f64 = 0.0;
        let n = 400_000;
        for i in 0..n {
            // −37 … 9 in steps that hit both sides of every branch point.
            let x0 = -37.0 + 46.0 * i as f64 / n as f64;
            let xs = [x0, x0 + 1e-3, -x0 * 0.013, x0 * 0.5];
            let ours = norm_cdf4(f64x4::new(xs)).to_array();
            for (x, y) in xs.iter().zip(ours) {
                let reference = 0.5 * DefaultSpecialFn::erfc(-x * FRAC_1_SQRT_2);
                worst = worst.max((y - reference).abs() / reference);
                if *x > -10.0 {
                    // Above −10 the crate's norm_cdf is that same erfc.
                    assert_eq!(reference, norm_cdf(*x), "{x}");
                }
            }
        }
        assert!(
            worst <= 4.0 * f64::EPSILON,
            "worst relative error {worst:e}"
        );
    }

    /// Deep in the tail, against 40-digit values (mpmath's `ncdf`): within Φ's condition number
    /// there, x²·ε (a half-ulp change of x moves Φ by x²/2 ulp).
    #[test]
    fn keeps_full_relative_accuracy_in_the_far_tail() {
        let cases = [
            (-12.5, 3.732_564_298_877_713e-36),
            (-20.0, 2.753_624_118_606_233_7e-89),
            (-30.0, 4.906_713_927_148_187e-198),
            (-37.0, 5.725_571_222_524_577e-300),
        ];
        let ours = norm_cdf4(f64x4::new(cases.map(|c| c.0))).to_array();
        for ((x, exact), y) in cases.into_iter().zip(ours) {
            let err = (y - exact).abs() / exact;
            let bound = (1.0 + x * x) * f64::EPSILON;
            assert!(err <= bound, "Φ({x}) = {y:e}, exact {exact:e}: {err:e}");
        }
    }

    /// The four-lane rationals are the crate's scalar erf and erfcx, bit for bit, on both sides
    /// of every region boundary, and at 0, ±∞ and NaN.
    #[test]
    fn four_lane_rationals_are_the_scalar_ones_bit_for_bit() {
        let check = |zs: [f64; 4]| {
            let z = f64x4::new(zs);
            let ours = super::cody_rational4(z, z.abs()).to_array();
            for (z, p) in zs.iter().zip(ours) {
                let reference = super::rational_part(*z, z.abs());
                assert!(
                    p.to_bits() == reference.to_bits() || (p.is_nan() && reference.is_nan()),
                    "{z}: {p:e} vs {reference:e}"
                );
            }
        };
        for i in 0..200_000 {
            let z = -30.0 + 60.0 * i as f64 / 200_000.0;
            // Mixed regions in one vector, and one region alone.
            check([z, -0.01 * z, 0.2 * z, z + 4.0]);
            check([z, z, z, z]);
        }
        for edge in [0.468_75, 4.0] {
            let (below, above) = (edge - f64::EPSILON * 4.0, edge + f64::EPSILON * 4.0);
            check([edge, -edge, below, above]);
            check([-below, -above, edge, 1.0]);
        }
        check([0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY]);
        check([f64::NAN, 1.0, 0.1, 10.0]);
    }

    #[test]
    fn two_lanes_give_the_bits_of_four() {
        for i in 0..20_000 {
            let x = -38.0 + 47.0 * i as f64 / 20_000.0;
            let four = norm_cdf4(f64x4::new([x, -0.3 * x, 0.0, 0.0])).to_array();
            let two = norm_cdf2([x, -0.3 * x]);
            assert_eq!(
                [four[0].to_bits(), four[1].to_bits()],
                two.map(f64::to_bits),
                "{x}"
            );
        }
    }

    #[test]
    fn the_gaussian_factor_is_the_density_to_within_the_rounding_of_x() {
        // |x| ≤ 37: beyond ≈ 37.6 the factor is subnormal, which exp4 flushes to 0.
        for i in 0..=20_000 {
            let x = -37.0 + 74.0 * i as f64 / 20_000.0;
            let (_, [g, _]) = norm_cdf2_and_gaussian([x, 0.0]);
            let exact = (-0.5 * x * x).exp();
            // e^(−x²/2) moves by x² ulp when x moves by half an ulp.
            let bound = (2.0 + x * x) * f64::EPSILON;
            assert!(
                (g - exact).abs() <= bound * exact,
                "{x}: {g:e} vs {exact:e}"
            );
        }
    }

    #[test]
    fn edges() {
        let r = norm_cdf4(f64x4::new([0.0, f64::NAN, -40.0, 40.0])).to_array();
        assert_eq!(r[0], 0.5);
        assert!(r[1].is_nan());
        assert_eq!(r[2], 0.0);
        assert_eq!(r[3], 1.0);
    }

    #[test]
    fn scaled_cdf_is_exp_times_cdf_and_survives_the_far_tail() {
        let a = f64x4::new([1.5, -3.0, 600.0, 650.0]);
        let x = f64x4::new([0.3, -4.9, -30.0, -36.0]);
        let r = scaled_cdf4(a, x).to_array();
        assert!((r[0] / (1.5f64.exp() * norm_cdf(0.3)) - 1.0).abs() < 1e-15);
        assert!((r[1] / ((-3.0f64).exp() * norm_cdf(-4.9)) - 1.0).abs() < 1e-15);
        // e^600·Φ(−30): Φ(−30) ≈ 4.9e-198, so the product is finite, ≈ 1.9e63.
        let expected = (600.0 - 450.0 - (30.0f64 * (2.0 * std::f64::consts::PI).sqrt()).ln()).exp();
        assert!(
            (r[2] / expected - 1.0).abs() < 2e-3,
            "{} vs {expected}",
            r[2]
        );
        assert!(r[3].is_finite() && r[3] > 0.0);
    }

    /// The CDFs that also give a Gaussian factor or a density give the plain CDF's bits, and the
    /// factor is e^(−x²/2) (the density e^a·φ(x)) to a few ulp, finite where e^a alone is not
    /// small but the tail is far.
    #[test]
    fn cdfs_with_their_densities_are_the_plain_cdfs_bit_for_bit() {
        let frac_1_sqrt_2pi = 1.0 / (2.0 * std::f64::consts::PI).sqrt();
        for i in 0..4_000 {
            let x0 = -37.0 + 46.0 * i as f64 / 4_000.0;
            let xs = [x0, -0.2 * x0, 0.05 * x0, x0 + 0.5];
            let x = f64x4::new(xs);
            let (cdf, gaussian) = norm_cdf4_and_gaussian(x);
            assert_eq!(
                cdf.to_array().map(f64::to_bits),
                norm_cdf4(x).to_array().map(f64::to_bits)
            );
            for (x, g) in xs.iter().zip(gaussian.to_array()) {
                let want = (-0.5 * x * x).exp();
                assert!(
                    (g - want).abs() <= (2.0 + x * x) * f64::EPSILON * want,
                    "{x}: {g} {want}"
                );
            }
            let a = f64x4::new([0.4, -2.0, 30.0, 3.0 - x0]);
            let (value, density) = scaled_cdf4_and_density(a, x);
            let plain = scaled_cdf4(a, x).to_array().map(f64::to_bits);
            assert_eq!(value.to_array().map(f64::to_bits), plain);
            for ((a, x), q) in a.to_array().iter().zip(xs).zip(density.to_array()) {
                let want = (a - 0.5 * x * x).exp() * frac_1_sqrt_2pi;
                let tolerance = (8.0 + x * x + a.abs()) * f64::EPSILON * want;
                assert!((q - want).abs() <= tolerance, "e^{a}·φ({x}): {q} {want}");
            }
        }
        // e^650·φ(−36): e^650 alone is ~1e282 and φ(−36) ~1e-282; their product is ~2.9.
        let (_, far) = scaled_cdf4_and_density(f64x4::splat(650.0), f64x4::splat(-36.0));
        let want = (650.0f64 - 648.0).exp() * frac_1_sqrt_2pi;
        assert!((far.to_array()[0] / want - 1.0).abs() < 1e-12, "{far:?}");
    }
}
