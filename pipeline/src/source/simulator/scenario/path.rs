//! A session's intraday path through its daily bar, and the intraday volume profile.
//!
//! The path runs open → first extreme (at a third of the session) → second extreme (at two
//! thirds) → close, the low first on an up day (close ≥ open) and the high first otherwise, the
//! usual convention when only OHLC is known. Between the knots it is a Brownian bridge in log
//! price, its step scaled to the day's Parkinson vol, clipped to [low, high]: the session's
//! open, high, low and close are exactly the bar's.

use super::bars::DailyBar;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Minutes in a regular session.
pub(super) const SESSION_MINUTES: u32 = 390;

/// Share of the bridge's noise in the day's Parkinson variance: the rest of the range is the
/// trend between knots.
const NOISE_SHARE: f64 = 0.5;

/// The knot minutes of a session on a grid of `tick` minutes: 0, ≈130, ≈260, 390.
fn knots(tick: u32) -> [u32; 4] {
    let third = |k: u32| (SESSION_MINUTES * k / 3 / tick) * tick;
    [0, third(1), third(2), SESSION_MINUTES]
}

/// Whether the day's low comes before its high.
pub(super) fn low_first(bar: &DailyBar) -> bool {
    bar.close >= bar.open
}

/// Prices at minutes 0, `tick`, 2·`tick`, …, 390 of the session.
pub(super) fn intraday(bar: &DailyBar, tick: u32, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let (lo, hi) = (bar.low.ln(), bar.high.ln());
    let (x1, x2) = if low_first(bar) { (lo, hi) } else { (hi, lo) };
    let levels = [bar.open.ln(), x1, x2, bar.close.ln()];
    let k = knots(tick);
    let steps_per_session = f64::from(SESSION_MINUTES / tick);
    let parkinson = (hi - lo) / (4.0 * std::f64::consts::LN_2).sqrt();
    let step_sd = NOISE_SHARE.sqrt() * parkinson / steps_per_session.sqrt();
    let mut out = vec![bar.open];
    for seg in 0..3 {
        let n = ((k[seg + 1] - k[seg]) / tick) as usize;
        let (a, b) = (levels[seg], levels[seg + 1]);
        let mut walk = Vec::with_capacity(n);
        let mut w = 0.0;
        for _ in 0..n {
            let z: f64 = rng.sample(StandardNormal);
            w += step_sd * z;
            walk.push(w);
        }
        let end = walk.last().copied().unwrap_or(0.0);
        for (i, w) in walk.iter().enumerate() {
            let f = (i + 1) as f64 / n as f64;
            let x = if i + 1 == n {
                b
            } else {
                (a + (b - a) * f + w - f * end).clamp(lo, hi)
            };
            out.push(x.exp());
        }
    }
    out
}

/// A vol index's level at minute `m`: linear through its open, extremes and close, its high
/// placed where the underlying makes its low (and the other way round) — the index rises as
/// the market falls.
pub(super) fn index_level(index: &DailyBar, underlying_low_first: bool, m: u32) -> f64 {
    let k = knots(1);
    let (x1, x2) = if underlying_low_first {
        (index.high, index.low)
    } else {
        (index.low, index.high)
    };
    let levels = [index.open, x1, x2, index.close];
    let seg = (0..3).find(|&s| m <= k[s + 1]).unwrap_or(2);
    let f = f64::from(m.saturating_sub(k[seg])) / f64::from(k[seg + 1] - k[seg]).max(1.0);
    levels[seg] + (levels[seg + 1] - levels[seg]) * f.clamp(0.0, 1.0)
}

/// Share of the day's volume traded by session fraction `f` ∈ [0, 1]: a U-shaped intensity
/// (heavy at the open and the close), 0.5 + 3 (f − ½)², integrated and normalised.
pub(super) fn volume_share(f: f64) -> f64 {
    let f = f.clamp(0.0, 1.0);
    (0.5 * f + (f - 0.5).powi(3) + 0.125) / 0.75
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn bar(open: f64, high: f64, low: f64, close: f64) -> DailyBar {
        DailyBar {
            date: chrono::NaiveDate::from_ymd_opt(2021, 1, 13).unwrap(),
            open,
            high,
            low,
            close,
            volume: 1e6,
        }
    }

    #[test]
    fn the_path_keeps_the_bars_open_high_low_and_close() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for b in [
            bar(20.4, 38.65, 20.03, 31.4),
            bar(322.0, 323.0, 310.0, 311.5),
        ] {
            let p = intraday(&b, 5, &mut rng);
            assert_eq!(p.len(), 79);
            let close = |x: f64, y: f64| (x - y).abs() < 1e-9 * y;
            assert!(close(p[0], b.open) && close(p[78], b.close));
            let hi = p.iter().copied().fold(f64::MIN, f64::max);
            let lo = p.iter().copied().fold(f64::MAX, f64::min);
            assert!(close(hi, b.high) && close(lo, b.low), "{lo} {hi}");
            let first_extreme = p[26];
            assert!(close(
                first_extreme,
                if low_first(&b) { b.low } else { b.high }
            ));
        }
    }

    #[test]
    fn the_index_peaks_where_the_market_bottoms_and_volume_is_u_shaped() {
        let vix = bar(17.0, 27.0, 16.5, 25.0);
        assert_eq!(index_level(&vix, false, 0), 17.0);
        assert!((index_level(&vix, false, 260) - 27.0).abs() < 1e-12);
        assert!((index_level(&vix, false, 390) - 25.0).abs() < 1e-12);
        assert_eq!(volume_share(0.0), 0.0);
        assert!((volume_share(1.0) - 1.0).abs() < 1e-12);
        let first_hour = volume_share(60.0 / 390.0);
        let midday_hour = volume_share(225.0 / 390.0) - volume_share(165.0 / 390.0);
        assert!(first_hour > 1.5 * midday_hour, "{first_hour} {midday_hour}");
    }
}
