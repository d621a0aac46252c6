//! IV z-score: are the out-of-the-money wings' implied vols far from each contract's own history?
//!
//! Each near-the-money, out-of-the-money contract quoted in the window is scored against its own
//! IV history; the medians of the upper (call) wing and the lower (put) wing make the reading.
//! The upper wing bid alone reads bullish, the lower wing bearish, both volatility.

use super::{stats, Reading, ScoreConfig, UnderlyingBook};
use optionflow_schemas::direction;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Per-underlying state of the factor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IvState {
    /// Median near-the-money IV at the close of past windows.
    pub atm_iv: stats::History,
}

/// Reads the window and advances every quoted contract's IV history.
pub(super) fn close(cfg: &ScoreConfig, book: &mut UnderlyingBook) -> Reading {
    let spot = book.spot;
    let (mut z_up, mut z_low, mut d_up, mut d_low, mut ntm) =
        (vec![], vec![], vec![], vec![], vec![]);
    for c in book.contracts.values_mut().filter(|c| c.quoted_in_window) {
        let m = (c.strike / spot).ln();
        let eligible = spot > 0.0
            && m.abs() <= cfg.iv_moneyness_band
            && c.years * 365.0 >= cfg.iv_min_days
            && c.iv.is_finite();
        if eligible {
            ntm.push(c.iv);
            let otm = (c.is_call && c.strike >= spot) || (!c.is_call && c.strike <= spot);
            if otm && c.iv_history.len() >= cfg.min_samples {
                let z = c.iv_history.zscore(c.iv, cfg.iv_min_std);
                let d = c.iv - c.iv_history.mean();
                if c.strike >= spot {
                    z_up.push(z);
                    d_up.push(d);
                } else {
                    z_low.push(z);
                    d_low.push(d);
                }
            }
        }
        c.iv_history.push(c.iv, cfg.history);
    }
    let atm = stats::median(&mut ntm);
    let samples = (z_up.len() + z_low.len()) as i64;
    let (zu, zl) = (stats::median(&mut z_up), stats::median(&mut z_low));
    let (du, dl) = (stats::median(&mut d_up), stats::median(&mut d_low));
    let mut metadata = BTreeMap::new();
    if let Some(a) = atm {
        metadata.insert("atm_iv".to_string(), a);
        if book.iv.atm_iv.len() >= cfg.min_samples {
            metadata.insert("atm_iv_mean".to_string(), book.iv.atm_iv.mean());
        }
        book.iv.atm_iv.push(a, cfg.history);
    }
    let (Some(zu), Some(zl)) = (zu, zl) else {
        return Reading {
            raw_value: 0.0,
            zscore: 0.0,
            direction: direction::NEUTRAL,
            samples,
            detail: format!(
                "warming up: wing IV histories need {} windows",
                cfg.min_samples
            ),
            metadata,
        };
    };
    let (du, dl) = (du.unwrap_or(0.0), dl.unwrap_or(0.0));
    metadata.insert("z_call_wing".to_string(), zu);
    metadata.insert("z_put_wing".to_string(), zl);
    metadata.insert("iv_change_call_wing".to_string(), du);
    metadata.insert("iv_change_put_wing".to_string(), dl);
    let t = cfg.direction_threshold;
    let dir = match (zu >= t, zl >= t) {
        (true, true) => direction::VOLATILITY,
        (true, false) => direction::BULLISH,
        (false, true) => direction::BEARISH,
        (false, false) => direction::NEUTRAL,
    };
    let (z, d, wing) = if zu.abs() >= zl.abs() {
        (zu, du, "call")
    } else {
        (zl, dl, "put")
    };
    Reading {
        raw_value: d,
        zscore: z,
        direction: dir,
        samples,
        detail: format!(
            "{wing}-wing IV {:+.1} vol pts vs its history (z {z:+.1}); call wing z {zu:+.1}, put wing z {zl:+.1}",
            d * 100.0
        ),
        metadata,
    }
}
