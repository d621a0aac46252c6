//! Unusual flow: call and put volume traded in the window against their own averages
//! (on a log scale, since volume is heavy-tailed), with the share of short-dated
//! out-of-the-money calls, the signature of a speculative call frenzy.

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
}

/// Volume below this many standard deviations of log volume is not news.
const MIN_LOG_STD: f64 = 0.25;

/// Reads the window and advances the volume histories.
pub(super) fn close(cfg: &ScoreConfig, book: &mut UnderlyingBook) -> Reading {
    let spot = book.spot;
    let (mut calls, mut puts, mut short_otm_calls) = (0i64, 0i64, 0i64);
    for c in book.contracts.values() {
        if c.is_call {
            calls += c.window_volume;
            if c.strike > spot && c.years * 365.0 <= 10.0 {
                short_otm_calls += c.window_volume;
            }
        } else {
            puts += c.window_volume;
        }
    }
    let (lc, lp) = ((calls as f64).ln_1p(), (puts as f64).ln_1p());
    let enough = book.flow.calls.len() >= cfg.min_samples;
    let (zc, zp) = if enough {
        (
            book.flow.calls.zscore(lc, MIN_LOG_STD),
            book.flow.puts.zscore(lp, MIN_LOG_STD),
        )
    } else {
        (0.0, 0.0)
    };
    let call_multiple = calls as f64 / book.flow.calls.mean().exp_m1().max(1.0);
    let put_multiple = puts as f64 / book.flow.puts.mean().exp_m1().max(1.0);
    let samples = book.flow.calls.len() as i64;
    book.flow.calls.push(lc, cfg.history);
    book.flow.puts.push(lp, cfg.history);
    let metadata = BTreeMap::from([
        ("call_volume".to_string(), calls as f64),
        ("put_volume".to_string(), puts as f64),
        ("call_volume_multiple".to_string(), call_multiple),
        ("put_volume_multiple".to_string(), put_multiple),
        (
            "short_dated_otm_call_share".to_string(),
            short_otm_calls as f64 / calls.max(1) as f64,
        ),
        ("z_calls".to_string(), zc),
        ("z_puts".to_string(), zp),
    ]);
    if !enough {
        return Reading {
            raw_value: (calls + puts) as f64,
            zscore: 0.0,
            direction: direction::NEUTRAL,
            samples,
            detail: format!(
                "warming up: volume history needs {} windows",
                cfg.min_samples
            ),
            metadata,
        };
    }
    let t = cfg.direction_threshold;
    // One side must stand out from the other by a full standard deviation to take a direction.
    let dir = if zc >= t && zc >= zp + 1.0 {
        direction::BULLISH
    } else if zp >= t && zp >= zc + 1.0 {
        direction::BEARISH
    } else if zc >= t && zp >= t {
        direction::VOLATILITY
    } else {
        direction::NEUTRAL
    };
    let (z, raw) = if zc.abs() >= zp.abs() {
        (zc, call_multiple)
    } else {
        (zp, put_multiple)
    };
    Reading {
        raw_value: raw,
        zscore: z,
        direction: dir,
        samples,
        detail: format!(
            "calls {calls} ({call_multiple:.1}x normal, z {zc:+.1}), puts {puts} ({put_multiple:.1}x, z {zp:+.1})"
        ),
        metadata,
    }
}
