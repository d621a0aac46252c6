//! Skew deviation: the shape of the smile on the expiry nearest `cm-tenor-days` (30 by default)
//! and the slope of the ATM term structure, each against its own history.
//!
//! Measures (vol units):
//! - **25-delta risk reversal** RR = IV(25Δ call) − IV(25Δ put), the wing delta being
//!   `skew-wing-delta`. IV is interpolated linearly in delta between the two listed contracts
//!   that bracket the target delta (never extrapolated: a chain without a bracketing pair has no
//!   25-delta reading);
//! - **25-delta butterfly** BF = (IV25c + IV25p)/2 − IV_ATM, with IV_ATM read at the forward
//!   ([`term_structure::atm_by_expiry`]): the wings' premium over the body;
//! - **put-wing slope** dIV/d ln(K/F), the least-squares slope of IV on log-moneyness over the
//!   out-of-the-money puts (K < F, at least three): normally negative, more negative = steeper.
//!   Its z-score's spread is floored at the slope's standard error if each IV carried
//!   `vol-min-std` of noise (vol-min-std/√Σ(x − x̄)²), the vol floor translated to slope units;
//! - **term-structure spread** front-month ATM IV − back-month ATM IV, front being the nearest
//!   expiry at least `iv-min-days` out and back the first at least `term-min-gap-days` after it.
//!   Positive means inverted (near-term fear), flagged as `term_inverted` in the metadata.
//!
//! Direction rule, first match wins (t = `direction-threshold`):
//! 1. RR's z ≥ t while the put-wing slope's z ≤ −t: both wings bid at once — "volatility";
//! 2. RR's z ≥ t (the call wing bid relative to the puts): "bullish";
//! 3. RR's z ≤ −t or the put-wing slope's z ≤ −t (put skew steepening): "bearish";
//! 4. term structure inverted: "volatility" (with the term spread's z, so an inversion that has
//!    been there all along does not reach the vote threshold; a fresh one does);
//! 5. otherwise "neutral".
//!
//! The reading's z is that of the measure that set the direction (the larger |z| when two did),
//! or the largest |z| of all when neutral; its raw value is the risk reversal.

use super::term_structure::{self, usable_iv, AtmPoint};
use super::{stats, Reading, ScoreConfig, UnderlyingBook};
use optionflow_schemas::direction;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Per-underlying state of the factor: one history per measure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SkewState {
    /// 25-delta risk reversal at past window closes.
    pub rr: stats::History,
    /// 25-delta butterfly at past window closes.
    pub bf: stats::History,
    /// Put-wing slope at past window closes.
    pub slope: stats::History,
    /// Front − back ATM IV at past window closes.
    pub term: stats::History,
}

/// IV at `target` delta from `(delta, iv)` points, linear between the bracketing pair.
pub fn iv_at_delta(points: &[(f64, f64)], target: f64) -> Option<f64> {
    let mut pts = points.to_vec();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let i = pts.partition_point(|p| p.0 < target);
    if i < pts.len() && pts[i].0 == target {
        return Some(pts[i].1);
    }
    if i == 0 || i == pts.len() {
        return None;
    }
    let ((d0, v0), (d1, v1)) = (pts[i - 1], pts[i]);
    Some(v0 + (v1 - v0) * (target - d0) / (d1 - d0))
}

/// Least-squares slope of `y` on `x`; `None` with fewer than three points or no spread in `x`.
pub fn least_squares_slope(points: &[(f64, f64)]) -> Option<f64> {
    fit(points).map(|(slope, _)| slope)
}

/// Least-squares slope and Sxx = Σ(x − x̄)², the spread of `x` its standard error scales with.
fn fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 1e-12).then(|| (sxy / sxx, sxx))
}

/// The skew measures of one window; each is `None` when the chain cannot support it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measures {
    /// Calendar days to the expiry the smile was read on.
    pub expiry_days: Option<f64>,
    /// IV at the call wing delta.
    pub iv_call_wing: Option<f64>,
    /// IV at the put wing delta.
    pub iv_put_wing: Option<f64>,
    /// ATM IV of the smile's expiry.
    pub atm_iv: Option<f64>,
    /// Risk reversal.
    pub rr: Option<f64>,
    /// Butterfly.
    pub bf: Option<f64>,
    /// Put-wing slope dIV/d ln(K/F).
    pub slope: Option<f64>,
    /// Standard error of that slope if each IV carried `vol-min-std` of noise: vol-min-std/√Sxx.
    pub slope_floor: Option<f64>,
    /// Front and back ATM IVs.
    pub term: Option<(f64, f64)>,
}

/// Measures the smile and the term structure of `book`.
pub fn measure(cfg: &ScoreConfig, book: &UnderlyingBook) -> Measures {
    let atm = term_structure::atm_by_expiry(book, cfg.iv_min_days);
    let mut m = Measures {
        term: term_spread(cfg, &atm),
        ..Measures::default()
    };
    let Some(smile) = atm.iter().min_by(|a, b| {
        (a.years * 365.0 - cfg.cm_tenor_days)
            .abs()
            .total_cmp(&(b.years * 365.0 - cfg.cm_tenor_days).abs())
    }) else {
        return m;
    };
    let (mut calls, mut puts, mut otm_puts) = (vec![], vec![], vec![]);
    for c in book
        .contracts
        .values()
        .filter(|c| c.expiry == smile.expiry && usable_iv(c.iv))
    {
        if c.is_call && c.delta > 0.0 && c.delta < 1.0 {
            calls.push((c.delta, c.iv));
        } else if !c.is_call && c.delta < 0.0 && c.delta > -1.0 {
            puts.push((c.delta, c.iv));
            if c.strike < smile.forward {
                otm_puts.push(((c.strike / smile.forward).ln(), c.iv));
            }
        }
    }
    let w = cfg.skew_wing_delta;
    m.expiry_days = Some(smile.years * 365.0);
    m.atm_iv = Some(smile.iv);
    m.iv_call_wing = iv_at_delta(&calls, w);
    m.iv_put_wing = iv_at_delta(&puts, -w);
    if let (Some(c), Some(p)) = (m.iv_call_wing, m.iv_put_wing) {
        m.rr = Some(c - p);
        m.bf = Some(0.5 * (c + p) - smile.iv);
    }
    if let Some((slope, sxx)) = fit(&otm_puts) {
        m.slope = Some(slope);
        m.slope_floor = Some(cfg.vol_min_std / sxx.sqrt());
    }
    m
}

/// Front and back ATM IVs: the nearest expiry and the first at least `term-min-gap-days` later.
fn term_spread(cfg: &ScoreConfig, atm: &[AtmPoint]) -> Option<(f64, f64)> {
    let front = atm.first()?;
    let back = atm
        .iter()
        .find(|p| (p.years - front.years) * 365.0 >= cfg.term_min_gap_days)?;
    Some((front.iv, back.iv))
}

/// Reads the window and advances the four histories.
pub(super) fn close(cfg: &ScoreConfig, book: &mut UnderlyingBook) -> Reading {
    let m = measure(cfg, book);
    let st = &mut book.skew;
    let mut metadata = BTreeMap::new();
    let mut put = |k: &str, v: Option<f64>| {
        if let Some(v) = v {
            metadata.insert(k.to_string(), v);
        }
    };
    put("expiry_days", m.expiry_days);
    put("iv_call_wing", m.iv_call_wing);
    put("iv_put_wing", m.iv_put_wing);
    put("atm_iv", m.atm_iv);
    put("rr", m.rr);
    put("bf", m.bf);
    put("put_slope", m.slope);
    let term = m.term.map(|(f, b)| f - b);
    if let Some((f, b)) = m.term {
        put("term_front_iv", Some(f));
        put("term_back_iv", Some(b));
        put("term_spread", term);
        put("term_inverted", Some(f64::from(u8::from(f > b))));
    }
    // Each measure scored against its own history, then pushed; a measure the chain cannot
    // support this window leaves its history untouched.
    let score = |h: &mut stats::History, v: Option<f64>, floor: f64| {
        let v = v?;
        let s = h.score(v, cfg.min_samples, cfg.min_samples, floor);
        h.push(v, cfg.history);
        s.map(|s| s.z)
    };
    let v = cfg.vol_min_std;
    let z_rr = score(&mut st.rr, m.rr, v);
    let z_bf = score(&mut st.bf, m.bf, v);
    // A slope's noise is the IVs' noise over the strikes' spread, not a vol-unit constant.
    let z_slope = score(&mut st.slope, m.slope, m.slope_floor.unwrap_or(v));
    let z_term = score(&mut st.term, term, v);
    for (k, z) in [
        ("z_rr", z_rr),
        ("z_bf", z_bf),
        ("z_slope", z_slope),
        ("z_term", z_term),
    ] {
        put(k, z);
    }
    let samples = st.rr.len().max(st.term.len()) as i64 - 1;
    if m.rr.is_none() && m.slope.is_none() && term.is_none() {
        return Reading {
            raw_value: 0.0,
            zscore: 0.0,
            direction: direction::NEUTRAL,
            samples: samples.max(0),
            detail: format!(
                "no smile to read: needs contracts bracketing ±{:.0} delta near {:.0} days, or two expiries",
                cfg.skew_wing_delta * 100.0,
                cfg.cm_tenor_days
            ),
            metadata,
        };
    }
    let t = cfg.direction_threshold;
    let (zr, zs, zt) = (
        z_rr.unwrap_or(0.0),
        z_slope.unwrap_or(0.0),
        z_term.unwrap_or(0.0),
    );
    let bull = zr >= t;
    let bear_rr = zr <= -t;
    let bear_slope = zs <= -t;
    let inverted = term.is_some_and(|s| s > 0.0);
    let larger = |a: f64, b: f64| if a.abs() >= b.abs() { a } else { b };
    let (dir, z, why) = if bull && bear_slope {
        (direction::VOLATILITY, larger(zr, zs), "both wings bid")
    } else if bull {
        (
            direction::BULLISH,
            zr,
            "call wing bid (risk reversal rising)",
        )
    } else if bear_rr || bear_slope {
        let z = match (bear_rr, bear_slope) {
            (true, true) => larger(zr, zs),
            (true, false) => zr,
            _ => zs,
        };
        (direction::BEARISH, z, "put skew steepening")
    } else if inverted {
        (direction::VOLATILITY, zt, "term structure inverted")
    } else {
        let z = [zr, z_bf.unwrap_or(0.0), zs, zt]
            .into_iter()
            .fold(0.0, larger);
        (direction::NEUTRAL, z, "no unusual skew")
    };
    let warming = z_rr.is_none() && z_slope.is_none() && z_term.is_none();
    let pts = |v: Option<f64>| match v {
        Some(v) => format!("{:+.1}", v * 100.0),
        None => "n/a".to_string(),
    };
    let detail = format!(
        "{why}: 25Δ RR {} pts (z {zr:+.1}), BF {} pts, put slope {} (z {zs:+.1}), front−back {} pts{}",
        pts(m.rr),
        pts(m.bf),
        m.slope.map_or("n/a".to_string(), |s| format!("{s:+.2}")),
        pts(term),
        if warming {
            format!("; warming up: histories need {} windows", cfg.min_samples)
        } else {
            String::new()
        }
    );
    Reading {
        raw_value: m.rr.unwrap_or(0.0),
        zscore: z,
        direction: dir,
        samples: samples.max(0),
        detail,
        metadata,
    }
}

#[cfg(test)]
mod tests {
    use super::super::ContractBook;
    use super::*;

    /// A 30-day smile with strikes and deltas: puts 80–95, ATM 100 (call and put), calls
    /// 105–120. `put` and `call` give the wing IVs at |Δ| 0.05, 0.10, 0.20, 0.30.
    fn chain(
        book: &mut UnderlyingBook,
        expiry: &str,
        days: f64,
        atm: f64,
        put: [f64; 4],
        call: [f64; 4],
    ) {
        let deltas = [0.05, 0.10, 0.20, 0.30];
        let mut add = |sym: String, is_call: bool, strike: f64, delta: f64, iv: f64| {
            book.contracts.insert(
                sym.into(),
                ContractBook {
                    is_call,
                    strike,
                    delta,
                    iv,
                    years: days / 365.0,
                    expiry: expiry.into(),
                    ..Default::default()
                },
            );
        };
        for (i, d) in deltas.into_iter().enumerate() {
            let k = 80.0 + 5.0 * i as f64;
            add(format!("{expiry}P{k}"), false, k, -d, put[i]);
            let k = 120.0 - 5.0 * i as f64;
            add(format!("{expiry}C{k}"), true, k, d, call[i]);
        }
        add(format!("{expiry}P100"), false, 100.0, -0.5, atm);
        add(format!("{expiry}C100"), true, 100.0, 0.5, atm);
    }

    const CALM_PUT: [f64; 4] = [0.34, 0.30, 0.26, 0.24];
    const CALM_CALL: [f64; 4] = [0.22, 0.20, 0.19, 0.20];

    fn book(put: [f64; 4], call: [f64; 4], front_atm: f64) -> UnderlyingBook {
        let mut b = UnderlyingBook {
            spot: 100.0,
            ..Default::default()
        };
        chain(&mut b, "2024-02-01", 30.0, front_atm, put, call);
        chain(&mut b, "2024-03-01", 60.0, 0.25, CALM_PUT, CALM_CALL);
        b
    }

    /// Closes `min-samples` calm windows on `b`, then one window on `last`'s chain.
    fn run(last: UnderlyingBook) -> (Reading, Reading) {
        let cfg = ScoreConfig::default();
        let mut b = book(CALM_PUT, CALM_CALL, 0.22);
        let mut calm = close(&cfg, &mut b);
        for _ in 1..cfg.min_samples {
            calm = close(&cfg, &mut b);
        }
        let UnderlyingBook { contracts, .. } = last;
        b.contracts = contracts;
        (calm, close(&cfg, &mut b))
    }

    #[test]
    fn measures_match_hand_computation() {
        let m = measure(&ScoreConfig::default(), &book(CALM_PUT, CALM_CALL, 0.22));
        // 25Δ: halfway between the 20Δ and 30Δ contracts on each side.
        assert!((m.iv_call_wing.unwrap() - 0.195).abs() < 1e-12);
        assert!((m.iv_put_wing.unwrap() - 0.25).abs() < 1e-12);
        assert!((m.rr.unwrap() - (0.195 - 0.25)).abs() < 1e-12);
        assert!((m.bf.unwrap() - (0.5 * (0.195 + 0.25) - 0.22)).abs() < 1e-12);
        assert_eq!(m.expiry_days, Some(30.0));
        // Put slope over K = 80, 85, 90, 95 (F = 100: zero carry).
        let pts: Vec<(f64, f64)> = (0..4)
            .map(|i| (((80.0 + 5.0 * i as f64) / 100.0f64).ln(), CALM_PUT[i]))
            .collect();
        let slope = m.slope.unwrap();
        assert!((slope - least_squares_slope(&pts).unwrap()).abs() < 1e-12);
        assert!(slope < -0.5, "IV rises as the strike falls: {slope}");
        assert_eq!(m.term, Some((0.22, 0.25)));
    }

    #[test]
    fn least_squares_slope_of_a_line_is_exact() {
        let pts = [(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)];
        assert!((least_squares_slope(&pts).unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(least_squares_slope(&pts[..2]), None);
        assert_eq!(
            iv_at_delta(&[(0.2, 0.3), (0.3, 0.2)], 0.35),
            None,
            "no extrapolation"
        );
    }

    #[test]
    fn put_skew_steepening_reads_bearish_with_the_expected_rr_change() {
        // Far puts bid most (+6, +5, +4, +2 points from 5Δ to 30Δ): the slope steepens, and the
        // 25Δ put, halfway between 20Δ (+4) and 30Δ (+2), rises 3 points: RR falls 3 points.
        let (calm, steep) = run(book([0.40, 0.35, 0.30, 0.26], CALM_CALL, 0.22));
        assert_eq!(calm.direction, "neutral", "{calm:?}");
        let d_rr = steep.metadata["rr"] - calm.metadata["rr"];
        assert!((d_rr + 0.03).abs() < 1e-12, "{d_rr}");
        assert_eq!(steep.direction, "bearish", "{steep:?}");
        // Flat history (MAD 0) → the 0.005 floor: z = −0.03 / 0.005 = −6 on the RR; the slope
        // steepens even more in z terms, and the reading takes the larger of the two.
        assert!((steep.metadata["z_rr"] + 6.0).abs() < 1e-9);
        assert!(steep.metadata["z_slope"] < -2.0);
        assert!(steep.zscore <= -6.0 + 1e-9);
        assert!((steep.raw_value - steep.metadata["rr"]).abs() < 1e-15);
    }

    #[test]
    fn a_call_wing_bid_reads_bullish() {
        let (_, bid) = run(book(CALM_PUT, [0.24, 0.22, 0.21, 0.22], 0.22));
        // 25Δ call +2 points → RR +2 points → z = +4.
        assert!((bid.metadata["z_rr"] - 4.0).abs() < 1e-9, "{bid:?}");
        assert_eq!(bid.direction, "bullish");
        assert!((bid.zscore - 4.0).abs() < 1e-9);
    }

    #[test]
    fn a_term_structure_inversion_reads_volatility() {
        // Front ATM 22 → 30 against a 25 back month: front − back goes from −3 to +5 points.
        let (calm, inv) = run(book(CALM_PUT, CALM_CALL, 0.30));
        assert_eq!(calm.metadata["term_inverted"], 0.0);
        assert_eq!(inv.metadata["term_inverted"], 1.0);
        assert!((inv.metadata["term_spread"] - 0.05).abs() < 1e-12);
        assert_eq!(inv.direction, "volatility", "{inv:?}");
        assert!((inv.zscore - 0.08 / 0.005).abs() < 1e-9);
    }

    #[test]
    fn its_keys_are_validated() {
        let cfg = ScoreConfig {
            skew_wing_delta: 0.5,
            term_min_gap_days: 0.0,
            cm_tenor_days: -1.0,
            ..ScoreConfig::default()
        };
        let err = cfg.validate().unwrap_err().0;
        assert_eq!(err.len(), 3, "{err:?}");
        assert!(err.iter().any(|e| e.starts_with("skew-wing-delta")));
        assert!(err.iter().any(|e| e.starts_with("term-min-gap-days")));
        assert!(err.iter().any(|e| e.starts_with("cm-tenor-days")));
    }

    #[test]
    fn an_empty_chain_says_so() {
        let mut b = UnderlyingBook {
            spot: 100.0,
            ..Default::default()
        };
        let r = close(&ScoreConfig::default(), &mut b);
        assert_eq!(r.direction, "neutral");
        assert!(r.detail.contains("no smile"));
    }
}
