//! Unusual flow: what traded in the window, per side (calls, puts), against its own history.
//!
//! Components, all in the metadata:
//! - volume and volume/OI per side (volume against the open positions it could be closing);
//! - volume against its own rolling average (`*_volume_multiple`, z on ln(1 + volume): volume
//!   is heavy-tailed, so its logarithm is the quantity with a stable spread);
//! - premium traded, volume × mid × 100, per side, with its multiple and z likewise (on
//!   ln(1 + premium / $100), the same offset as volume's);
//! - concentration: the share of the window's volume in short-dated (≤ `short-dated-days`)
//!   out-of-the-money strikes (calls above spot, puts below), the signature of speculation;
//! - the call/put split of volume and of premium.
//!
//! Composite z of a side = ½·z(volume) + ½·z(premium): contracts traded and dollars paid
//! must both stand out (cheap lottery tickets raise the first, a few large blocks the second).
//! The reading reports the side with the larger |composite z|. Direction: bullish when calls
//! take most of the premium and their composite z reaches the threshold a full standard
//! deviation above the puts'; bearish mirrored; volatility when both sides surge; otherwise
//! neutral. The raw value is the reported side's premium multiple (while warming up, the
//! window's total premium in dollars).

use super::{stats, Reading, ScoreConfig, UnderlyingBook};
use optionflow_schemas::direction;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Per-underlying state of the factor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlowState {
    /// ln(1 + call volume) per past window.
    pub calls: stats::History,
    /// ln(1 + put volume) per past window.
    pub puts: stats::History,
    /// ln(1 + call premium / $100) per past window.
    #[serde(default)]
    pub call_premium: stats::History,
    /// ln(1 + put premium / $100) per past window.
    #[serde(default)]
    pub put_premium: stats::History,
}

/// Volume below this many standard deviations of log volume is not news.
const MIN_LOG_STD: f64 = 0.25;

/// Premium enters its log history in units of $100 (one contract at a $1.00 mid), so that
/// ln(1 + premium) has the same offset as ln(1 + volume): otherwise a quiet (zero) window would
/// sit several times farther from a normal one in premium than in volume and swamp its spread.
const PREMIUM_UNIT_USD: f64 = 100.0;

/// What traded on one side in the window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SideFlow {
    /// Contracts traded.
    pub volume: i64,
    /// Open interest of the side's contracts.
    pub open_interest: i64,
    /// Dollars paid: Σ volume × mid × 100.
    pub premium: f64,
    /// Volume in short-dated out-of-the-money strikes.
    pub short_dated_otm_volume: i64,
}

/// The window's flow, calls and puts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowFlow {
    /// Calls.
    pub calls: SideFlow,
    /// Puts.
    pub puts: SideFlow,
}

impl WindowFlow {
    /// Share of all volume in short-dated out-of-the-money strikes (0 when nothing traded).
    pub fn short_dated_otm_share(&self) -> f64 {
        let total = self.calls.volume + self.puts.volume;
        (self.calls.short_dated_otm_volume + self.puts.short_dated_otm_volume) as f64
            / total.max(1) as f64
    }

    /// Calls' share of premium (½ when nothing traded).
    pub fn call_premium_share(&self) -> f64 {
        let total = self.calls.premium + self.puts.premium;
        if total > 0.0 {
            self.calls.premium / total
        } else {
            0.5
        }
    }
}

/// Sums the window's flow; `short_dated_days` bounds "short-dated".
pub fn window_flow(book: &UnderlyingBook, short_dated_days: f64) -> WindowFlow {
    let spot = book.spot;
    let mut f = WindowFlow::default();
    for c in book.contracts.values() {
        let side = if c.is_call { &mut f.calls } else { &mut f.puts };
        side.volume += c.window_volume;
        side.open_interest += c.open_interest.max(0);
        if c.window_volume > 0 && c.mid.is_finite() && c.mid > 0.0 {
            side.premium += c.window_volume as f64 * c.mid * 100.0;
        }
        let otm = if c.is_call {
            c.strike > spot
        } else {
            c.strike < spot
        };
        if otm && c.years * 365.0 <= short_dated_days {
            side.short_dated_otm_volume += c.window_volume;
        }
    }
    f
}

/// Value over the history's typical level (the exponential of its mean log, less one).
fn multiple(value: f64, history: &stats::History) -> f64 {
    value / history.mean().exp_m1().max(1.0)
}

/// Reads the window and advances the histories.
pub(super) fn close(cfg: &ScoreConfig, book: &mut UnderlyingBook) -> Reading {
    let f = window_flow(book, cfg.short_dated_days);
    let (calls, puts) = (f.calls.volume, f.puts.volume);
    let lv = [(calls as f64).ln_1p(), (puts as f64).ln_1p()];
    let (pc, pp) = (
        f.calls.premium / PREMIUM_UNIT_USD,
        f.puts.premium / PREMIUM_UNIT_USD,
    );
    let lp = [pc.ln_1p(), pp.ln_1p()];
    let s = &book.flow;
    // Volume and premium histories advance together; requiring both keeps that an invariant
    // of the reading rather than an assumption.
    let enough = s.calls.len() >= cfg.min_samples && s.call_premium.len() >= cfg.min_samples;
    let z = |h: &stats::History, v: f64| {
        if enough {
            h.zscore(v, MIN_LOG_STD)
        } else {
            0.0
        }
    };
    let (zvc, zvp) = (z(&s.calls, lv[0]), z(&s.puts, lv[1]));
    let (zpc, zpp) = (z(&s.call_premium, lp[0]), z(&s.put_premium, lp[1]));
    let (zc, zp) = (0.5 * (zvc + zpc), 0.5 * (zvp + zpp));
    let call_multiple = multiple(calls as f64, &s.calls);
    let put_multiple = multiple(puts as f64, &s.puts);
    let call_prem_multiple = multiple(pc, &s.call_premium);
    let put_prem_multiple = multiple(pp, &s.put_premium);
    let samples = s.calls.len() as i64;
    let call_share = f.call_premium_share();
    let vol_oi = |side: &SideFlow| side.volume as f64 / side.open_interest.max(1) as f64;
    let short_otm_calls = f.calls.short_dated_otm_volume as f64 / calls.max(1) as f64;
    let metadata = BTreeMap::from([
        ("call_volume".to_string(), calls as f64),
        ("put_volume".to_string(), puts as f64),
        ("call_volume_oi".to_string(), vol_oi(&f.calls)),
        ("put_volume_oi".to_string(), vol_oi(&f.puts)),
        ("call_volume_multiple".to_string(), call_multiple),
        ("put_volume_multiple".to_string(), put_multiple),
        ("call_premium".to_string(), f.calls.premium),
        ("put_premium".to_string(), f.puts.premium),
        ("call_premium_multiple".to_string(), call_prem_multiple),
        ("put_premium_multiple".to_string(), put_prem_multiple),
        ("call_premium_share".to_string(), call_share),
        (
            "call_volume_share".to_string(),
            calls as f64 / (calls + puts).max(1) as f64,
        ),
        (
            "short_dated_otm_share".to_string(),
            f.short_dated_otm_share(),
        ),
        ("short_dated_otm_call_share".to_string(), short_otm_calls),
        ("z_call_volume".to_string(), zvc),
        ("z_put_volume".to_string(), zvp),
        ("z_call_premium".to_string(), zpc),
        ("z_put_premium".to_string(), zpp),
        ("z_calls".to_string(), zc),
        ("z_puts".to_string(), zp),
    ]);
    let h = &mut book.flow;
    h.calls.push(lv[0], cfg.history);
    h.puts.push(lv[1], cfg.history);
    h.call_premium.push(lp[0], cfg.history);
    h.put_premium.push(lp[1], cfg.history);
    if !enough {
        return Reading {
            raw_value: f.calls.premium + f.puts.premium,
            zscore: 0.0,
            direction: direction::NEUTRAL,
            samples,
            detail: format!(
                "warming up: volume and premium histories need {} windows",
                cfg.min_samples
            ),
            metadata,
        };
    }
    let t = cfg.direction_threshold;
    // One side must stand out from the other by a full standard deviation, and be paid the
    // larger share of premium, to take a direction.
    let dir = if zc >= t && zc >= zp + 1.0 && call_share > 0.5 {
        direction::BULLISH
    } else if zp >= t && zp >= zc + 1.0 && call_share < 0.5 {
        direction::BEARISH
    } else if zc >= t && zp >= t {
        direction::VOLATILITY
    } else {
        direction::NEUTRAL
    };
    let (z, raw) = if zc.abs() >= zp.abs() {
        (zc, call_prem_multiple)
    } else {
        (zp, put_prem_multiple)
    };
    Reading {
        raw_value: raw,
        zscore: z,
        direction: dir,
        samples,
        detail: format!(
            "calls {calls} (${:.0}k, {call_prem_multiple:.1}x normal premium, z {zc:+.1}), puts {puts} (${:.0}k, {put_prem_multiple:.1}x, z {zp:+.1}); {:.0}% of premium in calls, {:.0}% of volume short-dated OTM",
            f.calls.premium / 1e3,
            f.puts.premium / 1e3,
            call_share * 100.0,
            f.short_dated_otm_share() * 100.0
        ),
        metadata,
    }
}

#[cfg(test)]
mod tests {
    use super::super::ContractBook;
    use super::*;

    fn contract(is_call: bool, strike: f64, days: f64, volume: i64, mid: f64) -> ContractBook {
        ContractBook {
            is_call,
            strike,
            years: days / 365.0,
            mid,
            open_interest: 1000,
            window_volume: volume,
            ..Default::default()
        }
    }

    fn book(call_volume: i64, put_volume: i64) -> UnderlyingBook {
        let contracts = [
            ("C105", contract(true, 105.0, 3.0, call_volume, 1.5)),
            ("C120", contract(true, 120.0, 60.0, call_volume / 2, 0.5)),
            ("P95", contract(false, 95.0, 3.0, put_volume, 2.0)),
            ("P105", contract(false, 105.0, 3.0, put_volume, 6.0)),
        ];
        UnderlyingBook {
            spot: 100.0,
            contracts: contracts.into_iter().map(|(s, c)| (s.into(), c)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn premium_and_concentration_are_exact_on_a_hand_built_window() {
        let b = book(200, 50);
        let f = window_flow(&b, 7.0);
        assert_eq!(f.calls.premium, 200.0 * 1.5 * 100.0 + 100.0 * 0.5 * 100.0);
        assert_eq!(f.puts.premium, 50.0 * 2.0 * 100.0 + 50.0 * 6.0 * 100.0);
        // Short-dated OTM: the 105 call (200) and the 95 put (50); the 105 put is in the money
        // and the 120 call is two months out. 250 of 400 contracts.
        assert_eq!(f.short_dated_otm_share(), 250.0 / 400.0);
        assert_eq!(f.call_premium_share(), 35_000.0 / 75_000.0);
        let r = close(&ScoreConfig::default(), &mut b.clone());
        assert_eq!(r.metadata["call_premium"], 35_000.0);
        assert_eq!(r.metadata["put_premium"], 40_000.0);
        assert_eq!(r.metadata["short_dated_otm_share"], 0.625);
        assert_eq!(r.metadata["call_volume_oi"], 300.0 / 2000.0);
        assert_eq!(r.raw_value, 75_000.0, "total premium while warming up");
        assert_eq!(r.direction, "neutral");
    }

    #[test]
    fn a_call_premium_surge_reads_bullish_and_a_put_one_bearish() {
        let cfg = ScoreConfig::default();
        let mut b = book(100, 100);
        for i in 0..10 {
            let mut w = book(100 + (i % 3) * 10, 100 + (i % 2) * 10);
            w.flow = b.flow.clone();
            close(&cfg, &mut w);
            b.flow = w.flow;
        }
        let mut surge = book(3000, 100);
        surge.flow = b.flow.clone();
        let r = close(&cfg, &mut surge);
        assert_eq!(r.direction, "bullish", "{r:?}");
        assert!(r.zscore >= cfg.direction_threshold);
        let composite = 0.5 * (r.metadata["z_call_volume"] + r.metadata["z_call_premium"]);
        assert!(
            (r.zscore - composite).abs() < 1e-12,
            "composite z is the mean of the two"
        );
        let mut puts = book(100, 3000);
        puts.flow = b.flow.clone();
        assert_eq!(close(&cfg, &mut puts).direction, "bearish");
    }
}
