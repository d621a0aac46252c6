//! A natural logarithm of four lanes at once, for Bjerksund-Stensland's set-up (the logs of
//! spot, strike and the two exercise triggers, and of the triggers less the strike).
//!
//! Like [`super::exp::exp4`] it is plain IEEE arithmetic on [`wide`]'s vectors, so it gives the
//! same bits on every build and CPU (the C library's `log` picks an FMA or a non-FMA variant at
//! load time). The algorithm is fdlibm's `__ieee754_log` (Sun, 1993), lane by lane without its
//! branches: x = 2^k·(1 + f) with 1 + f in [√2/2, √2), s = f/(2 + f), and
//! ln(1 + f) = 2·atanh(s) = f − s·(f − R(s²)) with fdlibm's minimax R; near the ends of the
//! interval the half-square form f − (f²/2 − s·(f²/2 + R)) is used instead, which keeps the
//! error below 1 ulp throughout.

use wide::{bytemuck::cast, f64x4, u64x4};

/// fdlibm's minimax coefficients of R(z) = Lg1·z + Lg2·z² + … + Lg7·z⁷ (their exact bits).
const LG: [f64; 7] = [
    f64::from_bits(0x3fe5_5555_5555_5593),
    f64::from_bits(0x3fd9_9999_9997_fa04),
    f64::from_bits(0x3fd2_4924_9422_9359),
    f64::from_bits(0x3fcc_71c5_1d8e_78af),
    f64::from_bits(0x3fc7_4664_96cb_03de),
    f64::from_bits(0x3fc3_9a09_d078_c69f),
    f64::from_bits(0x3fc2_f112_df3e_5244),
];
/// ln 2 split so that k·`LN2_HI` is exact for every exponent k.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
/// 2⁵²: a small non-negative integer n ORed into its mantissa gives 2⁵² + n exactly.
const TWO_52: f64 = 4_503_599_627_370_496.0;

/// ln x lane by lane, within 1 ulp of the exact value for positive normal x. Lanes that are
/// zero, negative, subnormal, infinite or NaN take the library's `ln` (so −∞, NaN and +∞ come
/// out as it gives them).
#[inline]
pub(crate) fn log4(x: f64x4) -> f64x4 {
    let normal = x.simd_ge(f64x4::splat(f64::MIN_POSITIVE)) & x.simd_le(f64x4::splat(f64::MAX));
    if !normal.all() {
        return f64x4::new(x.to_array().map(f64::ln));
    }
    let bits: u64x4 = cast(x);
    let biased_exponent = bits >> 52;
    // The high 20 bits of the mantissa (fdlibm's `hx`). Adding 0x95f64 carries into bit 20
    // exactly when the mantissa is at least √2 − 1: that lane is halved (its exponent field set
    // to 0x3fe instead of 0x3ff) and k raised by one.
    let mantissa_high = (bits >> 32) & u64x4::splat(0x000f_ffff);
    let carry = (mantissa_high + u64x4::splat(0x95f64)) & u64x4::splat(0x0010_0000);
    let exponent_field = (carry ^ u64x4::splat(0x3ff0_0000)) << 32;
    let reduced: f64x4 = cast((bits & u64x4::splat(0x000f_ffff_ffff_ffff)) | exponent_field);
    let f = reduced - f64x4::ONE;
    // k = biased exponent − 1023 + carry, formed exactly in floating point.
    let as_f64 = |n: u64x4| cast::<u64x4, f64x4>(n | cast::<f64x4, u64x4>(f64x4::splat(TWO_52)));
    let k = (as_f64(biased_exponent + (carry >> 20)) - f64x4::splat(TWO_52)) - f64x4::splat(1023.0);

    let s = f / (f64x4::splat(2.0) + f);
    let z = s * s;
    let w = z * z;
    let lg = |i: usize| f64x4::splat(LG[i]);
    let t1 = w * (lg(1) + w * (lg(3) + w * lg(5)));
    let t2 = z * (lg(0) + w * (lg(2) + w * (lg(4) + w * lg(6))));
    let r = t2 + t1;
    // fdlibm takes the half-square form when hx lies in [0x6147a, 0x6b851]: the mantissa near
    // √2, where |f| is largest on either side of the reduction.
    let hx = as_f64(mantissa_high) - f64x4::splat(TWO_52);
    let near_ends = hx.simd_ge(f64x4::splat(f64::from(0x6147a_u32)))
        & hx.simd_le(f64x4::splat(f64::from(0x6b851_u32)));
    let hfsq = f64x4::splat(0.5) * f * f;
    let k_lo = k * f64x4::splat(LN2_LO);
    let half_square = (hfsq - (s * (hfsq + r) + k_lo)) - f;
    let plain = (s * (f - r) - k_lo) - f;
    k * f64x4::splat(LN2_HI) - near_ends.select(half_square, plain)
}

#[cfg(test)]
mod tests {
    use super::log4;
    use wide::f64x4;

    fn ulps(a: f64, b: f64) -> f64 {
        (a - b).abs() / (b.abs() * f64::EPSILON).max(f64::MIN_POSITIVE)
    }

    #[test]
    fn matches_the_library_logarithm_to_within_one_ulp() {
        let mut worst: f64 = 0.0;
        let mut same = 0usize;
        let n = 400_000;
        for i in 0..n {
            // Log-uniform over the whole normal range, and densely around 1 and √2.
            let u = i as f64 / n as f64;
            let xs = [
                (-708.0 + 1416.0 * u).exp(),
                1.0 + 1e-3 * (u - 0.5),
                std::f64::consts::SQRT_2 * (1.0 + 0.02 * (u - 0.5)),
                0.5 + 3.5 * u,
            ];
            let ours = log4(f64x4::new(xs)).to_array();
            for (x, y) in xs.iter().zip(ours) {
                let reference = x.ln();
                if reference == 0.0 {
                    assert_eq!(y, 0.0, "ln({x})");
                    continue;
                }
                same += usize::from(y == reference);
                // The library's ln is itself within about half an ulp.
                worst = worst.max(ulps(y, reference));
            }
        }
        assert!(worst <= 1.0, "worst {worst} ulp");
        // Both are nearly correctly rounded: they agree on most inputs.
        assert!(same >= 4 * n * 9 / 10, "{same} of {}", 4 * n);
    }

    #[test]
    fn powers_of_two_and_the_edges() {
        let r = log4(f64x4::new([1.0, 2.0, 0.5, 1024.0])).to_array();
        assert_eq!(r[0], 0.0);
        assert_eq!(r[1], std::f64::consts::LN_2);
        assert_eq!(r[2], -std::f64::consts::LN_2);
        assert_eq!(r[3], 10.0 * std::f64::consts::LN_2);
        let r = log4(f64x4::new([0.0, -1.0, f64::INFINITY, f64::NAN])).to_array();
        assert_eq!(r[0], f64::NEG_INFINITY);
        assert!(r[1].is_nan() && r[3].is_nan());
        assert_eq!(r[2], f64::INFINITY);
        let r = log4(f64x4::new([f64::MIN_POSITIVE, f64::MAX, 1e-310, 3.0])).to_array();
        assert!(ulps(r[0], f64::MIN_POSITIVE.ln()) <= 1.0);
        assert!(ulps(r[1], f64::MAX.ln()) <= 1.0);
        assert_eq!(r[2], 1e-310f64.ln());
    }
}
