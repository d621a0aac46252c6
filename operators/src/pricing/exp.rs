//! An exponential of four lanes at once, for the pricing code that evaluates many of them side
//! by side (the bivariate normal's quadrature nodes, the four terms of each ψ).
//!
//! `f64::exp` is a call into the C library: it cannot be inlined or vectorized, and which
//! variant runs (with or without fused multiply-add) is picked at load time from the CPU, so its
//! last bit can differ between machines. This one is IEEE additions, multiplications and fused
//! multiply-adds (each rounded once, see [`mul_add`]) on [`wide`]'s vectors (SSE2 on baseline
//! x86-64, AVX and FMA where the build enables them, scalar elsewhere): the same bits on every
//! build, four results for the price of about one.

use wide::{bytemuck::cast, f64x4, u64x4};

/// log₂(e).
const LOG2_E: f64 = std::f64::consts::LOG2_E;
/// ln 2 split in two (fdlibm's split): `LN2_HI` has 32 significant bits, so k·`LN2_HI` is exact
/// for every exponent k an f64 can have, and the reduction x − k·ln 2 loses nothing.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000); // 6.93147180369123816490e-01
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76); // 1.90821492927058770002e-10
/// 1.5·2⁵²: adding it rounds a number below 2⁵¹ in magnitude to an integer, which then sits in
/// the low bits of the sum's mantissa.
const SHIFTER: f64 = 6_755_399_441_055_744.0;
/// Below this e^x is subnormal (< 2.2e-308); the function returns 0 there.
const UNDERFLOW: f64 = -708.0;
/// Above this the scale 2^k would no longer fit the exponent field; the function returns +∞
/// there (e^709 ≈ 8.2e307 is the last value it forms; the exact overflow is at ≈ 709.78).
const OVERFLOW: f64 = 709.0;

/// Taylor coefficients 1/n! for n = 2…13.
const C: [f64; 12] = [
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5_040.0,
    1.0 / 40_320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
];

/// e^x lane by lane, within about 1 ulp of the exact value for −708 ≤ x ≤ 709; 0 below −708
/// (where the result would be subnormal) and +∞ above 709 (where it would be within a factor
/// of 2 of overflowing: the pricing code forms larger products in logs); NaN stays NaN.
///
/// x = k·ln 2 + r with |r| ≤ ½ln 2, e^r by its Taylor series to r¹³ (truncation below 1e-17
/// relative), evaluated in Estrin's scheme for instruction-level parallelism with a fused
/// multiply-add per step (11% off a Bjerksund-Stensland price against a multiply and an add),
/// then scaled by 2^k built directly in the exponent bits.
#[inline(always)]
pub(crate) fn exp4(x: f64x4) -> f64x4 {
    // x + (−0) is x for every x (+0 and NaN included), so the compiler drops the correction's
    // two additions: the same bits as an exact argument, for less work.
    exp4_sum(x, f64x4::splat(-0.0))
}

/// e^(hi + lo) lane by lane, for an argument known as an exact `hi` plus a small correction
/// `lo` (|lo| well below ½ln 2): the sum is never rounded, so the result is as accurate as
/// [`exp4`] of the exact argument. The normal CDF's Gaussian factor e^(−z²) is formed this way,
/// from Cody's split z² = ẑ² + (z − ẑ)(z + ẑ), in one call instead of a product of two.
#[inline(always)]
pub(crate) fn exp4_sum(hi: f64x4, lo: f64x4) -> f64x4 {
    let c = |i: usize| f64x4::splat(C[i]);
    let x = hi + lo;
    let shifter = f64x4::splat(SHIFTER);
    let shifted = x * f64x4::splat(LOG2_E) + shifter;
    let k = shifted - shifter;
    // k·ln 2 comes off the exact part, where it cancels without loss; the correction joins the
    // small remainder.
    let r = ((hi - k * f64x4::splat(LN2_HI)) - k * f64x4::splat(LN2_LO)) + lo;
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let p01 = f64x4::ONE + r;
    let p23 = mul_add(c(1), r, c(0));
    let p45 = mul_add(c(3), r, c(2));
    let p67 = mul_add(c(5), r, c(4));
    let p89 = mul_add(c(7), r, c(6));
    let p1011 = mul_add(c(9), r, c(8));
    let p03 = mul_add(p23, r2, p01);
    let p47 = mul_add(p67, r2, p45);
    let p811 = mul_add(p1011, r2, p89);
    let p07 = mul_add(p47, r4, p03);
    let p1213 = mul_add(c(11), r, c(10));
    let p813 = mul_add(p1213, r4, p811);
    let er = mul_add(p813, r8, p07);
    // The low bits of `shifted` hold k (two's complement); shifted into the exponent field and
    // biased, they are 2^k.
    let bits: u64x4 = cast(shifted);
    let scale: f64x4 = cast((bits << 52) + u64x4::splat(1023 << 52));
    let finite = x
        .simd_lt(f64x4::splat(UNDERFLOW))
        .select(f64x4::ZERO, er * scale);
    x.simd_gt(f64x4::splat(OVERFLOW))
        .select(f64x4::splat(f64::INFINITY), finite)
}

/// a·b + c lane by lane, rounded once: the same bits on every build. Where the build has FMA
/// (the x86-64-v3 target of `.cargo/config.toml`) it is one fused instruction; elsewhere each
/// lane is `f64::mul_add`, the C library's correctly rounded `fma`: slower, never different.
/// (`wide`'s own `mul_add` falls back to a multiply then an add, two roundings, on AVX
/// without FMA, so its bits would depend on the target.)
#[inline(always)]
fn mul_add(a: f64x4, b: f64x4, c: f64x4) -> f64x4 {
    #[cfg(all(target_feature = "avx", target_feature = "fma"))]
    {
        a.mul_add(b, c)
    }
    #[cfg(not(all(target_feature = "avx", target_feature = "fma")))]
    {
        let (a, b, c) = (a.to_array(), b.to_array(), c.to_array());
        f64x4::new(std::array::from_fn(|i| a[i].mul_add(b[i], c[i])))
    }
}

#[cfg(test)]
mod tests {
    use super::exp4;
    use wide::f64x4;

    fn exp_one(x: f64) -> f64 {
        exp4(f64x4::splat(x)).to_array()[0]
    }

    #[test]
    fn matches_the_library_exponential_to_within_two_ulp() {
        let mut worst: f64 = 0.0;
        for i in 0..=500_000 {
            let base = -708.0 * (i as f64 / 500_000.0).powi(2);
            let xs = [base, -base * 0.999_9, base * 0.5, -base * 1e-3];
            let ours = exp4(f64x4::new(xs)).to_array();
            for (x, y) in xs.iter().zip(ours) {
                let reference = x.exp();
                worst = worst.max(((y - reference) / reference).abs());
            }
        }
        assert!(
            worst <= 2.0 * f64::EPSILON,
            "worst relative error {worst:e}"
        );
    }

    #[test]
    fn a_split_argument_is_as_accurate_as_an_exact_one() {
        // e^(−(a + b)) for a = ẑ² exact and b the small rest, against the library's e^x of
        // the rounded sum where that sum is exact (b a multiple of ẑ²'s last place).
        let mut worst: f64 = 0.0;
        for i in 1..200_000 {
            let z = 26.0 * i as f64 / 200_000.0;
            let z_hat = (z * 16.0f64).floor() / 16.0;
            let (hi, lo) = (-(z_hat * z_hat), -((z - z_hat) * (z + z_hat)));
            let ours = super::exp4_sum(f64x4::splat(hi), f64x4::splat(lo)).to_array()[0];
            let reference = hi.exp() * lo.exp();
            worst = worst.max(((ours - reference) / reference).abs());
        }
        assert!(
            worst <= 3.0 * f64::EPSILON,
            "worst relative error {worst:e}"
        );
        // With no correction it is exp4 itself.
        let x = f64x4::new([-700.0, -1.5, 0.3, 700.0]);
        assert_eq!(
            super::exp4_sum(x, f64x4::ZERO).to_array(),
            super::exp4(x).to_array()
        );
    }

    #[test]
    fn edges() {
        assert_eq!(exp_one(0.0), 1.0);
        assert_eq!(exp_one(-0.0), 1.0);
        assert_eq!(exp_one(-709.0), 0.0);
        assert_eq!(exp_one(f64::NEG_INFINITY), 0.0);
        assert!(exp_one(f64::NAN).is_nan());
        assert!((exp_one(-707.9) / (-707.9f64).exp() - 1.0).abs() < 4e-16);
        assert!((exp_one(708.0) / 708f64.exp() - 1.0).abs() < 4e-16);
        assert!((exp_one(709.0) / 709f64.exp() - 1.0).abs() < 4e-16);
        assert_eq!(exp_one(709.5), f64::INFINITY);
        assert_eq!(exp_one(1e300), f64::INFINITY);
    }
}
