//! Realized volatility of the underlying, from its ticks.
//!
//! Ticks inside the regular session (09:30–16:00 America/New_York, both ends included) build
//! two kinds of OHLC bars; ticks outside it are ignored here, so pre- and post-market prints do
//! not stretch a session's range:
//! - **session bars**, one per regular session; a session is complete when a tick arrives on a
//!   later New York date. The last [`MAX_SESSIONS`] are kept, enough for a 60-session estimator
//!   that also needs the previous close;
//! - **one-minute bars** of the session in progress (cleared when a new session starts, so the
//!   overnight gap never counts as a one-minute return), the last `rv-intraday-bars` + 1 kept.
//!
//! Session estimators over 10, 20 and 60 sessions, annualised with 252 sessions a year:
//! close-to-close, Parkinson, Garman–Klass and Yang–Zhang (formulas at each function).
//!
//! Simulated runs are often one session long, so the factor is driven by the **intraday RV**:
//! the root mean square of the last `rv-intraday-bars` one-minute close-to-close log returns,
//! annualised with 252 × 390 minutes. Its z-score is taken
//! - against its own history of window readings (median/MAD, `min-samples`) while fewer than
//!   `rv-min-sessions` sessions are complete;
//! - then against the held sessions' single-session Garman–Klass vols: both measure open-to-close
//!   variance only, so "today's pace" is compared with "a normal day" — a baseline that does not
//!   drift with the intraday level itself.
//!
//! A z at or beyond `direction-threshold` reads "volatility" (realized vol jumped); a collapse in
//! realized vol is not a directional signal and reads "neutral".

use super::{stats, Reading, ScoreConfig, UnderlyingBook};
use chrono::{Datelike, Timelike};
use optionflow_schemas::{direction, time::MICROS_PER_MINUTE};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Session bars kept: the longest estimator (60) plus the close before its first session.
pub const MAX_SESSIONS: usize = 61;
/// Sessions a year, to annualise session variances.
pub const SESSIONS_PER_YEAR: f64 = 252.0;
/// Minutes in a regular session, to annualise one-minute variances (with 252 sessions).
pub const MINUTES_PER_SESSION: f64 = 390.0;
/// Session lengths the estimators are reported over.
pub const SESSION_SPANS: [usize; 3] = [10, 20, 60];

/// An open-high-low-close bar.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    /// First price.
    pub open: f64,
    /// Highest price.
    pub high: f64,
    /// Lowest price.
    pub low: f64,
    /// Last price.
    pub close: f64,
}

impl Bar {
    fn new(p: f64) -> Self {
        Self {
            open: p,
            high: p,
            low: p,
            close: p,
        }
    }

    fn update(&mut self, p: f64) {
        self.high = self.high.max(p);
        self.low = self.low.min(p);
        self.close = p;
    }
}

/// Per-underlying state of the factor: bars and the history of intraday readings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RvState {
    /// Completed session bars, oldest first (at most [`MAX_SESSIONS`]).
    pub sessions: VecDeque<Bar>,
    /// The session in progress: its New York date (days since 0001-01-01) and bar.
    pub session: Option<(i32, Bar)>,
    /// Completed one-minute bars of the current session by minute index (minutes since the
    /// epoch), oldest first.
    pub minutes: VecDeque<(i64, Bar)>,
    /// The minute in progress.
    pub minute: Option<(i64, Bar)>,
    /// Intraday RV at past window closes.
    pub intraday_history: stats::History,
}

/// New York session date (days since CE) of a regular-hours instant, `None` outside 09:30–16:00.
fn regular_session_day(t_us: i64) -> Option<i32> {
    let utc = chrono::DateTime::from_timestamp_micros(t_us)?;
    let ny = utc.with_timezone(&chrono_tz::America::New_York);
    let secs = ny.num_seconds_from_midnight();
    let (open, close) = (9 * 3600 + 30 * 60, 16 * 3600);
    (open..=close)
        .contains(&secs)
        .then(|| ny.date_naive().num_days_from_ce())
}

/// Feeds one underlying tick into the bars.
pub(super) fn on_tick(cfg: &ScoreConfig, st: &mut RvState, t_us: i64, price: f64) {
    if !(price.is_finite() && price > 0.0) {
        return;
    }
    let Some(day) = regular_session_day(t_us) else {
        return;
    };
    let minute = t_us.div_euclid(MICROS_PER_MINUTE);
    match st.session {
        Some((d, _)) if day < d => return, // a late tick of a finished session
        Some((d, bar)) if day > d => {
            push_capped(&mut st.sessions, bar, MAX_SESSIONS);
            st.minutes.clear();
            st.minute = None;
            st.session = Some((day, Bar::new(price)));
        }
        Some((_, ref mut bar)) => bar.update(price),
        None => st.session = Some((day, Bar::new(price))),
    }
    roll_minutes(cfg, st, minute * MICROS_PER_MINUTE);
    let stale = st.minutes.back().is_some_and(|&(m, _)| m >= minute);
    match st.minute {
        _ if stale => {}
        Some((m, ref mut bar)) if m == minute => bar.update(price),
        Some((m, _)) if m > minute => {}
        _ => st.minute = Some((minute, Bar::new(price))),
    }
}

/// Completes the minute in progress if it ended at or before `until` (µs).
fn roll_minutes(cfg: &ScoreConfig, st: &mut RvState, until: i64) {
    if let Some((m, bar)) = st.minute {
        if (m + 1) * MICROS_PER_MINUTE <= until {
            push_capped(&mut st.minutes, (m, bar), cfg.rv_intraday_bars + 1);
            st.minute = None;
        }
    }
}

fn push_capped<T>(q: &mut VecDeque<T>, v: T, cap: usize) {
    while q.len() >= cap {
        q.pop_front();
    }
    q.push_back(v);
}

/// Annualised RV of one-minute close-to-close log returns: √(252·390 · Σr² / Σ minutes).
///
/// Returns are not de-meaned (a one-minute drift is noise next to its variance), and the sum is
/// divided by the minutes the returns span rather than their count, so a minute without ticks
/// makes one two-minute return instead of inflating the rate. Returns the vol and the number of
/// returns behind it; `None` with fewer than half of `rv-intraday-bars` returns (at least 2).
pub fn intraday_rv(cfg: &ScoreConfig, st: &RvState) -> Option<(f64, usize)> {
    let bars: Vec<&(i64, Bar)> = st.minutes.iter().collect();
    let returns = bars.len().saturating_sub(1);
    if returns < cfg.rv_intraday_bars.div_ceil(2).max(2) {
        return None;
    }
    let (mut ss, mut minutes) = (0.0, 0.0);
    for w in bars.windows(2) {
        let r = (w[1].1.close / w[0].1.close).ln();
        ss += r * r;
        minutes += (w[1].0 - w[0].0) as f64;
    }
    Some((
        (SESSIONS_PER_YEAR * MINUTES_PER_SESSION * ss / minutes).sqrt(),
        returns,
    ))
}

/// Standard error of a realized vol `vol` estimated from `n` returns: σ/√(2n), the delta-method
/// error of a sample standard deviation under normal returns (exact for close-to-close; the
/// range-based estimators do better, so it is a conservative bound for them).
///
/// It floors the spread a realized-vol z-score is divided by. Window readings of a rolling
/// estimator overlap (two consecutive 30-bar RVs share 29 returns), so their own history
/// understates how noisy one reading is; without this floor an ordinary jump scores in the
/// hundreds.
pub fn sampling_error(vol: f64, n: usize) -> f64 {
    vol / (2.0 * n.max(1) as f64).sqrt()
}

fn sample_variance(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0)
}

fn annualised(var_per_session: f64) -> f64 {
    (SESSIONS_PER_YEAR * var_per_session.max(0.0)).sqrt()
}

/// Close-to-close: the sample standard deviation of the last `n` session log returns
/// ln(Cᵢ/Cᵢ₋₁). Needs `n + 1` sessions.
pub fn close_to_close(bars: &[Bar], n: usize) -> Option<f64> {
    if n < 2 || bars.len() < n + 1 {
        return None;
    }
    let b = &bars[bars.len() - n - 1..];
    let r: Vec<f64> = b
        .windows(2)
        .map(|w| (w[1].close / w[0].close).ln())
        .collect();
    Some(annualised(sample_variance(&r)))
}

/// Parkinson (1980), "The Extreme Value Method for Estimating the Variance of the Rate of
/// Return", J. Business 53(1): σ² = Σ ln(Hᵢ/Lᵢ)² / (4 n ln 2) over the last `n` sessions.
pub fn parkinson(bars: &[Bar], n: usize) -> Option<f64> {
    if n == 0 || bars.len() < n {
        return None;
    }
    let s: f64 = bars[bars.len() - n..]
        .iter()
        .map(|b| (b.high / b.low).ln().powi(2))
        .sum();
    Some(annualised(s / (4.0 * n as f64 * std::f64::consts::LN_2)))
}

/// Garman & Klass (1980), "On the Estimation of Security Price Volatilities from Historical
/// Data", J. Business 53(1): σ² = mean of ½ ln(H/L)² − (2 ln 2 − 1) ln(C/O)² over the last `n`
/// sessions.
pub fn garman_klass(bars: &[Bar], n: usize) -> Option<f64> {
    if n == 0 || bars.len() < n {
        return None;
    }
    let s: f64 = bars[bars.len() - n..].iter().map(gk_variance).sum();
    Some(annualised(s / n as f64))
}

/// One session's Garman–Klass variance.
fn gk_variance(b: &Bar) -> f64 {
    0.5 * (b.high / b.low).ln().powi(2)
        - (2.0 * std::f64::consts::LN_2 - 1.0) * (b.close / b.open).ln().powi(2)
}

/// Yang & Zhang (2000), "Drift-Independent Volatility Estimation Based on High, Low, Open, and
/// Close Prices", J. Business 73(3): σ² = σₒ² + k σ꜀² + (1 − k) σᵣₛ², with σₒ² the sample variance
/// of overnight returns ln(Oᵢ/Cᵢ₋₁), σ꜀² that of open-to-close returns ln(Cᵢ/Oᵢ), σᵣₛ² the
/// Rogers–Satchell mean of ln(H/C)·ln(H/O) + ln(L/C)·ln(L/O), and k = 0.34 / (1.34 + (n+1)/(n−1))
/// the weight minimising the estimator's variance. Needs `n + 1` sessions.
pub fn yang_zhang(bars: &[Bar], n: usize) -> Option<f64> {
    if n < 2 || bars.len() < n + 1 {
        return None;
    }
    let b = &bars[bars.len() - n - 1..];
    let overnight: Vec<f64> = b
        .windows(2)
        .map(|w| (w[1].open / w[0].close).ln())
        .collect();
    let days = &b[1..];
    let open_close: Vec<f64> = days.iter().map(|d| (d.close / d.open).ln()).collect();
    let rs = days
        .iter()
        .map(|d| {
            (d.high / d.close).ln() * (d.high / d.open).ln()
                + (d.low / d.close).ln() * (d.low / d.open).ln()
        })
        .sum::<f64>()
        / n as f64;
    let nf = n as f64;
    let k = 0.34 / (1.34 + (nf + 1.0) / (nf - 1.0));
    Some(annualised(
        sample_variance(&overnight) + k * sample_variance(&open_close) + (1.0 - k) * rs,
    ))
}

/// The realized vol the IV−RV spread compares against, its name and the observations behind
/// it: the 20-session Yang–Zhang once 21 sessions exist (≈ 30 calendar days, the IV's
/// horizon), else the intraday RV.
pub fn reference_rv(cfg: &ScoreConfig, st: &RvState) -> Option<(f64, &'static str, usize)> {
    let bars: Vec<Bar> = st.sessions.iter().copied().collect();
    yang_zhang(&bars, 20)
        .map(|v| (v, "20-session Yang-Zhang", 20))
        .or_else(|| intraday_rv(cfg, st).map(|(v, n)| (v, "intraday", n)))
}

/// Reads the window ending at `end` (µs) and advances the intraday history.
pub(super) fn close(cfg: &ScoreConfig, book: &mut UnderlyingBook, end: i64) -> Reading {
    let st = &mut book.rv;
    roll_minutes(cfg, st, end);
    let bars: Vec<Bar> = st.sessions.iter().copied().collect();
    let mut metadata = BTreeMap::new();
    for n in SESSION_SPANS {
        for (name, v) in [
            ("cc", close_to_close(&bars, n)),
            ("parkinson", parkinson(&bars, n)),
            ("gk", garman_klass(&bars, n)),
            ("yz", yang_zhang(&bars, n)),
        ] {
            if let Some(v) = v {
                metadata.insert(format!("rv_{name}_{n}"), v);
            }
        }
    }
    metadata.insert("sessions".to_string(), bars.len() as f64);
    metadata.insert("minute_bars".to_string(), st.minutes.len() as f64);
    let Some((rv, returns)) = intraday_rv(cfg, st) else {
        return Reading {
            raw_value: 0.0,
            zscore: 0.0,
            direction: direction::NEUTRAL,
            samples: st.minutes.len() as i64,
            detail: format!(
                "warming up: intraday RV needs {} one-minute bars",
                cfg.rv_intraday_bars.div_ceil(2).max(2) + 1
            ),
            metadata,
        };
    };
    metadata.insert("rv_intraday".to_string(), rv);
    let by_session = bars.len() >= cfg.rv_min_sessions;
    // Under the null hypothesis that vol is at its baseline, one reading is off by about the
    // baseline's sampling error from `returns` returns: the spread is floored there.
    let floor = |center: f64| cfg.vol_min_std.max(sampling_error(center, returns));
    let (scored, baseline, samples) = if by_session {
        let gk: Vec<f64> = bars.iter().map(|b| annualised(gk_variance(b))).collect();
        let mut sorted = gk.clone();
        let center = stats::median(&mut sorted).unwrap_or(rv);
        let z = stats::robust_z(&gk, rv, floor(center));
        (Some((z, center)), "sessions' Garman-Klass vol", gk.len())
    } else {
        let h = &st.intraday_history;
        let s = h
            .score(rv, cfg.min_samples, cfg.min_samples, floor(h.median()))
            .map(|s| (s.z, s.center));
        (s, "its own history", h.len())
    };
    st.intraday_history.push(rv, cfg.history);
    metadata.insert(
        "session_baseline".to_string(),
        f64::from(u8::from(by_session)),
    );
    let Some((z, center)) = scored else {
        return Reading {
            raw_value: rv,
            zscore: 0.0,
            direction: direction::NEUTRAL,
            samples: samples as i64,
            detail: format!(
                "intraday RV {:.1}%; warming up: its history needs {} windows",
                rv * 100.0,
                cfg.min_samples
            ),
            metadata,
        };
    };
    metadata.insert("rv_baseline".to_string(), center);
    let dir = if z >= cfg.direction_threshold {
        direction::VOLATILITY
    } else {
        direction::NEUTRAL
    };
    Reading {
        raw_value: rv,
        zscore: z,
        direction: dir,
        samples: samples as i64,
        detail: format!(
            "intraday RV {:.1}% vs {:.1}% typical of {baseline} (z {z:+.1})",
            rv * 100.0,
            center * 100.0
        ),
        metadata,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::{GreeksEvent, Operator};
    use crate::testing::{run, Step};
    use optionflow_schemas::{FactorScore, UnderlyingTick};

    /// 2024-01-02 09:30 New York (14:30 UTC).
    const OPEN: i64 = 1_704_205_800_000_000;
    const DAY: i64 = 86_400_000_000;
    const SECOND: i64 = 1_000_000;

    /// A deterministic stand-in for Gaussian noise: Irwin–Hall sums of 12 uniforms from a small
    /// linear congruential generator (Knuth's MMIX constants), mean 0, variance 1.
    struct Lcg(u64);
    impl Lcg {
        fn uniform(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
        fn normal(&mut self) -> f64 {
            (0..12).map(|_| self.uniform()).sum::<f64>() - 6.0
        }
    }

    /// A zero-drift geometric Brownian path with annual vol `sigma`, one tick a second over
    /// the regular session of each of `days` consecutive days (weekends included: the
    /// estimators count sessions, not calendar days, and the path has no overnight gap).
    fn gbm_ticks(sigma: f64, days: i64, seed: u64) -> Vec<(i64, f64)> {
        let mut rng = Lcg(seed);
        let dt = 1.0 / (SESSIONS_PER_YEAR * MINUTES_PER_SESSION * 60.0);
        let mut p = 100.0f64;
        let mut out = vec![];
        for d in 0..days {
            for s in 0..=(390 * 60) {
                if s > 0 {
                    p *= (-0.5 * sigma * sigma * dt + sigma * dt.sqrt() * rng.normal()).exp();
                }
                out.push((OPEN + d * DAY + s * SECOND, p));
            }
        }
        out
    }

    fn feed(cfg: &ScoreConfig, ticks: &[(i64, f64)]) -> RvState {
        let mut st = RvState::default();
        for &(t, p) in ticks {
            on_tick(cfg, &mut st, t, p);
        }
        st
    }

    #[test]
    fn estimators_recover_the_vol_of_a_constant_vol_path() {
        let cfg = ScoreConfig::default();
        let mut ticks = gbm_ticks(0.30, 61, 7);
        // One tick on the next day completes the 61st session.
        ticks.push((OPEN + 61 * DAY, ticks.last().unwrap().1));
        let st = feed(&cfg, &ticks);
        assert_eq!(st.sessions.len(), MAX_SESSIONS);
        let bars: Vec<Bar> = st.sessions.iter().copied().collect();
        // Range estimators sampled each second slightly understate the true range; all four
        // land within a few vol points of 30% over 60 sessions.
        for (name, v) in [
            ("cc", close_to_close(&bars, 60)),
            ("parkinson", parkinson(&bars, 60)),
            ("gk", garman_klass(&bars, 60)),
            ("yz", yang_zhang(&bars, 60)),
        ] {
            let v = v.unwrap();
            assert!((v - 0.30).abs() < 0.06, "{name}: {v}");
        }
        // The efficient estimators are tighter than close-to-close's ±9% standard error.
        let gk = garman_klass(&bars, 60).unwrap();
        assert!((gk - 0.30).abs() < 0.03, "gk {gk}");
        assert!(close_to_close(&bars, 61).is_none(), "needs n + 1 sessions");
    }

    #[test]
    fn intraday_rv_recovers_the_vol_within_a_day() {
        let cfg = ScoreConfig {
            rv_intraday_bars: 300,
            ..ScoreConfig::default()
        };
        let ticks = gbm_ticks(0.20, 1, 3);
        let mut st = feed(&cfg, &ticks);
        roll_minutes(&cfg, &mut st, OPEN + DAY);
        let (rv, n) = intraday_rv(&cfg, &st).unwrap();
        assert_eq!(n, 300);
        // 300 one-minute returns: standard error ≈ 20%/√600 ≈ 0.8 vol points.
        assert!((sampling_error(0.20, n) - 0.2 / 600f64.sqrt()).abs() < 1e-15);
        assert!((rv - 0.20).abs() < 0.03, "{rv}");
    }

    #[test]
    fn estimators_match_hand_computation_on_two_bars() {
        let b = |o: f64, h: f64, l: f64, c: f64| Bar {
            open: o,
            high: h,
            low: l,
            close: c,
        };
        let bars = [b(100.0, 102.0, 99.0, 101.0), b(101.0, 104.0, 100.0, 103.0)];
        let hl = (104.0f64 / 100.0).ln();
        let want_p = (252.0 * hl * hl / (4.0 * std::f64::consts::LN_2)).sqrt();
        assert!((parkinson(&bars, 1).unwrap() - want_p).abs() < 1e-12);
        let co = (103.0f64 / 101.0).ln();
        let want_gk =
            (252.0 * (0.5 * hl * hl - (2.0 * std::f64::consts::LN_2 - 1.0) * co * co)).sqrt();
        assert!((garman_klass(&bars, 1).unwrap() - want_gk).abs() < 1e-12);
    }

    #[test]
    fn its_keys_are_validated() {
        let cfg = ScoreConfig {
            rv_intraday_bars: 1,
            rv_min_sessions: 62,
            vol_min_std: 0.0,
            ..ScoreConfig::default()
        };
        let err = cfg.validate().unwrap_err().0;
        assert_eq!(err.len(), 3, "{err:?}");
        assert!(err.iter().any(|e| e.starts_with("rv-intraday-bars")));
        assert!(err.iter().any(|e| e.starts_with("rv-min-sessions")));
        assert!(err.iter().any(|e| e.starts_with("vol-min-std")));
    }

    #[test]
    fn sessions_end_on_a_later_new_york_date_and_ignore_off_hours() {
        let cfg = ScoreConfig::default();
        let st = feed(
            &cfg,
            &[
                (OPEN, 100.0),
                (OPEN + 3600 * SECOND, 105.0),
                (OPEN + 7 * 3600 * SECOND, 50.0), // 16:30 New York: after the close
                (OPEN + DAY - 3600 * SECOND, 1.0), // 08:30 next day: before the open
                (OPEN + DAY, 102.0),
            ],
        );
        assert_eq!(st.sessions.len(), 1);
        assert_eq!(
            st.sessions[0],
            Bar {
                open: 100.0,
                high: 105.0,
                low: 100.0,
                close: 105.0
            }
        );
        assert!(
            st.minutes.is_empty(),
            "a new session starts minute bars anew"
        );
        assert_eq!(st.session.unwrap().1.open, 102.0);
    }

    fn tick(t: i64, price: f64) -> Step<GreeksEvent> {
        Step::Event(GreeksEvent::Tick(UnderlyingTick {
            event_id: format!("tick@{t}").into(),
            event_time: t,
            underlying: "XYZ".into(),
            source: "test".into(),
            price,
            volume: 1,
            sector: None,
        }))
    }

    /// A quote each minute opens the scoring window; ticks each second move the price by a
    /// fixed ±`step` log-return pattern, so each one-minute return is known exactly.
    fn minutes(from: i64, to: i64, step: f64) -> Vec<Step<GreeksEvent>> {
        let mut v = vec![];
        let mut p = 100.0f64;
        for m in from..to {
            let t0 = OPEN + m * 60 * SECOND;
            v.push(Step::Event(GreeksEvent::Greeks(quote(t0))));
            for s in 0..60 {
                // Up on even minutes, down on odd ones: each minute returns ±60·step.
                let sign = if m % 2 == 0 { 1.0 } else { -1.0 };
                p *= (sign * step).exp();
                v.push(tick(t0 + s * SECOND, p));
            }
            v.push(Step::Watermark(t0 + 60 * SECOND - 1));
        }
        v
    }

    fn quote(t: i64) -> optionflow_schemas::ContractGreeks {
        optionflow_schemas::ContractGreeks {
            event_id: format!("q@{t}").into(),
            event_time: t,
            underlying: "XYZ".into(),
            source_event_id: Default::default(),
            symbol: "XYZ   240216C00100000".into(),
            root: "XYZ".into(),
            expiry: "2024-02-16".into(),
            right: "call".into(),
            strike: 100.0,
            spot: 100.0,
            years_to_expiry: 45.0 / 365.0,
            rate: 0.04,
            dividend_yield: 0.0,
            bid: 1.0,
            ask: 1.1,
            mid: 1.05,
            iv: 0.3,
            delta: 0.5,
            gamma: 0.03,
            vega: 10.0,
            theta: -5.0,
            rho: 1.0,
            volume: 0,
            open_interest: 100,
            sector: None,
            exercise_style: "european".into(),
            vanna: 0.0,
            charm: 0.0,
            vomma: 0.0,
        }
    }

    fn rv_scores(out: &[FactorScore]) -> Vec<FactorScore> {
        out.iter()
            .filter(|f| f.factor == "realized_vol")
            .cloned()
            .collect()
    }

    #[test]
    fn a_jump_in_intraday_vol_reads_volatility() {
        let cfg = ScoreConfig {
            rv_intraday_bars: 4,
            ..ScoreConfig::default()
        };
        let mut steps = minutes(0, 20, 0.0001);
        steps.extend(minutes(20, 24, 0.0005));
        let out = rv_scores(&run(&mut cfg.build().unwrap(), steps).unwrap().events);
        assert!(out[0].detail.contains("warming up"));
        // Calm: every one-minute return is ±0.006 (the last tick of a minute closes it):
        // RV = √(252·390)·0.006 ≈ 1.88 (188%, the pattern is extreme but exact).
        let calm = &out[15];
        let want = (252.0f64 * 390.0).sqrt() * 0.006;
        assert!((calm.raw_value - want).abs() < 1e-9, "{calm:?}");
        assert_eq!(calm.direction, "neutral");
        let last = out.last().unwrap();
        // Every return is now ±0.03: RV 5× the calm one, over a flat history whose spread is
        // floored by the calm RV's sampling error from 4 returns (√8): z = 4·want/(want/√8).
        assert!((last.raw_value - 5.0 * want).abs() < 1e-9, "{last:?}");
        assert_eq!(last.direction, "volatility", "{last:?}");
        assert!((last.zscore - 4.0 * 8f64.sqrt()).abs() < 1e-6, "{last:?}");
    }

    #[test]
    fn bars_and_history_survive_snapshot_and_restore() {
        let cfg = ScoreConfig {
            rv_intraday_bars: 4,
            ..ScoreConfig::default()
        };
        let mut steps = minutes(0, 14, 0.0001);
        steps.extend(minutes(14, 18, 0.0004));
        let all = rv_scores(
            &run(&mut cfg.build().unwrap(), steps.clone())
                .unwrap()
                .events,
        );
        // Cut in the middle of a minute, with a minute bar in progress.
        let (head, tail) = steps.split_at(9 * 62 + 30);
        let mut first = cfg.build().unwrap();
        let mut out = run(&mut first, head.to_vec()).unwrap().events;
        let mut second = cfg.build().unwrap();
        second.restore(&first.snapshot().unwrap()).unwrap();
        out.extend(run(&mut second, tail.to_vec()).unwrap().events);
        assert_eq!(rv_scores(&out), all);
        assert_eq!(all.last().unwrap().direction, "volatility");
    }
}
