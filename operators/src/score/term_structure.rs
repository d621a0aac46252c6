//! The ATM implied-vol term structure of one underlying: ATM IV per expiry, read at the forward,
//! and the constant-maturity ATM IV interpolated in total variance between expiries.
//!
//! Shared by [`super::iv_rv`] (the 30-day IV) and [`super::skew`] (the expiry nearest 30 days,
//! its ATM level, and front/back inversion).

use super::UnderlyingBook;
use std::collections::BTreeMap;

/// ATM implied vol of one expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct AtmPoint {
    /// Expiry date, `YYYY-MM-DD`.
    pub expiry: String,
    /// Years to expiry (mean over the expiry's contracts, which differ only by quote time).
    pub years: f64,
    /// Forward price `S·e^((r−q)T)` with the rate and dividend the greeks used.
    pub forward: f64,
    /// ATM implied vol at the forward.
    pub iv: f64,
}

/// Whether a contract's IV can be used: finite, positive, not absurd.
pub(super) fn usable_iv(iv: f64) -> bool {
    iv.is_finite() && iv > 0.0 && iv < 10.0
}

/// ATM IV of every expiry at least `min_days` out, sorted by tenor.
///
/// ATM is at the forward, not the spot, so carry does not tilt the level. At each strike the IV
/// is the mean of the call's and the put's (put–call parity makes them equal up to quote noise;
/// averaging halves that noise). The ATM IV is interpolated linearly in ln K between the two
/// strikes bracketing the forward; with the forward outside the listed strikes, the nearest
/// strike's IV is taken.
pub fn atm_by_expiry(book: &UnderlyingBook, min_days: f64) -> Vec<AtmPoint> {
    struct Acc {
        years: f64,
        carry: f64,
        n: f64,
        // strike (in thousandths, an exact key) → (strike, IV sum, count)
        strikes: BTreeMap<i64, (f64, f64, f64)>,
    }
    let spot = book.spot;
    if spot.is_nan() || spot <= 0.0 {
        return vec![];
    }
    let mut by_expiry: BTreeMap<&str, Acc> = BTreeMap::new();
    for c in book.contracts.values() {
        if !usable_iv(c.iv) || c.years <= 0.0 || c.years * 365.0 < min_days || c.strike <= 0.0 {
            continue;
        }
        let acc = by_expiry.entry(c.expiry.as_str()).or_insert(Acc {
            years: 0.0,
            carry: 0.0,
            n: 0.0,
            strikes: BTreeMap::new(),
        });
        acc.years += c.years;
        acc.carry += c.rate - c.dividend_yield;
        acc.n += 1.0;
        let e = acc
            .strikes
            .entry((c.strike * 1000.0).round() as i64)
            .or_insert((c.strike, 0.0, 0.0));
        e.1 += c.iv;
        e.2 += 1.0;
    }
    let mut points: Vec<AtmPoint> = by_expiry
        .into_iter()
        .filter_map(|(expiry, acc)| {
            let years = acc.years / acc.n;
            let forward = spot * (acc.carry / acc.n * years).exp();
            let smile: Vec<(f64, f64)> = acc
                .strikes
                .values()
                .map(|&(k, sum, n)| (k, sum / n))
                .collect();
            let iv = iv_at_strike(&smile, forward)?;
            Some(AtmPoint {
                expiry: expiry.to_string(),
                years,
                forward,
                iv,
            })
        })
        .collect();
    points.sort_by(|a, b| a.years.total_cmp(&b.years).then(a.expiry.cmp(&b.expiry)));
    points
}

/// IV at strike `k` from a smile sorted by strike: linear in ln K between the bracketing
/// strikes, flat beyond the ends.
fn iv_at_strike(smile: &[(f64, f64)], k: f64) -> Option<f64> {
    let (first, last) = (smile.first()?, smile.last()?);
    if k <= first.0 {
        return Some(first.1);
    }
    if k >= last.0 {
        return Some(last.1);
    }
    let i = smile.partition_point(|p| p.0 <= k);
    let ((k0, v0), (k1, v1)) = (smile[i - 1], smile[i]);
    let w = (k / k0).ln() / (k1 / k0).ln();
    Some(v0 + w * (v1 - v0))
}

/// Constant-maturity implied vol at `target_years` from `(years, iv)` points.
///
/// Between the two expiries bracketing the target, total implied variance w = σ²T is
/// interpolated linearly in T and converted back, σ = √(w/T): variance, not vol, is what adds
/// up over time, and linear total variance is the standard calendar interpolation (the one VIX
/// uses between its two expiries). Outside the listed expiries the nearest expiry's vol is
/// held flat — extrapolating a slope from two short expiries would invent a term structure.
/// Points that are not finite or not positive are ignored; `None` when none is left.
pub fn constant_maturity_iv(points: &[(f64, f64)], target_years: f64) -> Option<f64> {
    let mut pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|&(t, v)| t.is_finite() && t > 0.0 && v.is_finite() && v > 0.0)
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (first, last) = (*pts.first()?, *pts.last()?);
    if target_years <= first.0 {
        return Some(first.1);
    }
    if target_years >= last.0 {
        return Some(last.1);
    }
    let i = pts.partition_point(|p| p.0 <= target_years);
    let ((t1, v1), (t2, v2)) = (pts[i - 1], pts[i]);
    let (w1, w2) = (v1 * v1 * t1, v2 * v2 * t2);
    let w = w1 + (w2 - w1) * (target_years - t1) / (t2 - t1);
    (w > 0.0).then(|| (w / target_years).sqrt())
}

#[cfg(test)]
mod tests {
    use super::super::ContractBook;
    use super::*;

    #[test]
    fn total_variance_interpolation_gives_the_textbook_value() {
        // 20% at 20 days, 30% at 40 days, target 30 days, total variance in vol²·days:
        // w₁ = 0.04·20 = 0.8, w₂ = 0.09·40 = 3.6, halfway w = 2.2 → σ = √(2.2/30) = 0.270801.
        let d = |x: f64| x / 365.0;
        let iv = constant_maturity_iv(&[(d(40.0), 0.30), (d(20.0), 0.20)], d(30.0)).unwrap();
        assert!((iv - (2.2f64 / 30.0).sqrt()).abs() < 1e-12, "{iv}");
        assert!((iv - 0.270_801).abs() < 1e-6);
        // On an expiry: that expiry's vol.
        let on = constant_maturity_iv(&[(d(20.0), 0.20), (d(40.0), 0.30)], d(20.0)).unwrap();
        assert!((on - 0.20).abs() < 1e-12);
        // Outside: flat.
        assert_eq!(
            constant_maturity_iv(&[(d(45.0), 0.25), (d(60.0), 0.3)], d(30.0)),
            Some(0.25)
        );
        assert_eq!(constant_maturity_iv(&[(d(7.0), 0.4)], d(30.0)), Some(0.4));
        assert_eq!(constant_maturity_iv(&[], d(30.0)), None);
        assert_eq!(constant_maturity_iv(&[(d(7.0), f64::NAN)], d(30.0)), None);
    }

    #[test]
    fn atm_is_read_at_the_forward_between_strikes() {
        let mut book = UnderlyingBook {
            spot: 100.0,
            ..Default::default()
        };
        let years = 0.25;
        for (sym, call, k, iv) in [
            ("C95", true, 95.0, 0.26),
            ("P95", false, 95.0, 0.28),
            ("C105", true, 105.0, 0.22),
            ("P105", false, 105.0, 0.22),
        ] {
            book.contracts.insert(
                sym.into(),
                ContractBook {
                    is_call: call,
                    strike: k,
                    years,
                    iv,
                    rate: 0.04,
                    expiry: "2024-04-19".into(),
                    ..Default::default()
                },
            );
        }
        let pts = atm_by_expiry(&book, 1.0);
        assert_eq!(pts.len(), 1);
        let f = 100.0 * (0.04f64 * 0.25).exp();
        assert!((pts[0].forward - f).abs() < 1e-12);
        // Strike IVs 0.27 at 95 and 0.22 at 105, linear in ln K at the forward.
        let w = (f / 95.0).ln() / (105.0f64 / 95.0).ln();
        assert!((pts[0].iv - (0.27 + w * (0.22 - 0.27))).abs() < 1e-12);
        assert!(atm_by_expiry(&book, 100.0).is_empty(), "too short");
    }
}
