//! Dealer gamma exposure (GEX): Γ × OI × 100 × S² × 1% per contract, signed by the dealer
//! convention, summed per strike and in total; the call wall, the put wall, and the gamma flip
//! (the spot at which total GEX changes sign, found by re-pricing gamma across a spot sweep).
//!
//! A total far below its own history means dealers hedge with the move rather than against it:
//! moves get amplified. The reading takes the direction of the window's spot move.

use super::{stats, GexSign, Reading, ScoreConfig, UnderlyingBook};
use optionflow_schemas::direction;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Per-underlying state of the factor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GexState {
    /// Total GEX (millions of dollars per 1% move) at past window closes.
    pub history: stats::History,
}

/// Black-Scholes gamma with zero carry, used to re-price gamma at hypothetical spots.
fn gamma_at(spot: f64, strike: f64, years: f64, vol: f64) -> f64 {
    if spot <= 0.0 || strike <= 0.0 || years <= 0.0 || vol <= 0.0 {
        return 0.0;
    }
    let sd = vol * years.sqrt();
    let d1 = ((spot / strike).ln() + 0.5 * vol * vol * years) / sd;
    (-0.5 * d1 * d1).exp() / (std::f64::consts::TAU.sqrt() * spot * sd)
}

fn sign(cfg: &ScoreConfig, is_call: bool) -> f64 {
    match (cfg.gex_sign, is_call) {
        (GexSign::DealerLongCalls, true) | (GexSign::DealerShortCalls, false) => 1.0,
        _ => -1.0,
    }
}

/// Total GEX of the book if spot were `s`, in dollars per 1% move.
fn total_gex_at(cfg: &ScoreConfig, book: &UnderlyingBook, s: f64) -> f64 {
    book.contracts
        .values()
        .map(|c| {
            sign(cfg, c.is_call)
                * gamma_at(s, c.strike, c.years, c.iv)
                * c.open_interest as f64
                * 100.0
                * s
                * s
                * 0.01
        })
        .sum()
}

/// The spot level nearest to `spot` at which total GEX changes sign, within ±30%.
pub fn gamma_flip(cfg: &ScoreConfig, book: &UnderlyingBook, spot: f64) -> Option<f64> {
    const STEPS: usize = 60;
    let levels: Vec<f64> = (0..=STEPS)
        .map(|i| spot * (0.7 + 0.6 * i as f64 / STEPS as f64))
        .collect();
    let values: Vec<f64> = levels.iter().map(|&s| total_gex_at(cfg, book, s)).collect();
    let mut best: Option<f64> = None;
    for i in 1..levels.len() {
        let (a, b) = (values[i - 1], values[i]);
        if a == 0.0 || a.signum() == b.signum() {
            continue;
        }
        // Linear interpolation between the two sweep levels that bracket the sign change.
        let x = levels[i - 1] + (levels[i] - levels[i - 1]) * a / (a - b);
        if best.is_none_or(|y| (x - spot).abs() < (y - spot).abs()) {
            best = Some(x);
        }
    }
    best
}

/// Reads the window and advances the GEX history.
pub(super) fn close(cfg: &ScoreConfig, book: &mut UnderlyingBook) -> Reading {
    let spot = book.spot;
    let mut call_by_strike: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    let mut put_by_strike: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    let mut total = 0.0;
    for c in book.contracts.values() {
        let g =
            sign(cfg, c.is_call) * c.gamma * c.open_interest as f64 * 100.0 * spot * spot * 0.01;
        if !g.is_finite() {
            continue;
        }
        total += g;
        let key = (c.strike * 1000.0).round() as i64;
        let side = if c.is_call {
            &mut call_by_strike
        } else {
            &mut put_by_strike
        };
        side.entry(key).or_insert((c.strike, 0.0)).1 += g;
    }
    let wall = |m: &BTreeMap<i64, (f64, f64)>| {
        m.values()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .map(|&(k, _)| k)
    };
    let total_m = total / 1e6;
    let mut metadata = BTreeMap::from([("total_gex_musd".to_string(), total_m)]);
    if let Some(k) = wall(&call_by_strike) {
        metadata.insert("call_wall".to_string(), k);
    }
    if let Some(k) = wall(&put_by_strike) {
        metadata.insert("put_wall".to_string(), k);
    }
    let flip = gamma_flip(cfg, book, spot);
    if let Some(f) = flip {
        metadata.insert("gamma_flip".to_string(), f);
        metadata.insert("flip_distance_pct".to_string(), (f / spot - 1.0) * 100.0);
    }
    let enough = book.gex.history.len() >= cfg.min_samples;
    let z = if enough {
        // Floor the spread at 1% of the typical level so a flat history cannot explode scores.
        let floor = (book.gex.history.mean().abs() * 0.01).max(1e-6);
        book.gex.history.zscore(total_m, floor)
    } else {
        0.0
    };
    let samples = book.gex.history.len() as i64;
    book.gex.history.push(total_m, cfg.history);
    let move_pct = if book.window_open_spot > 0.0 {
        spot / book.window_open_spot - 1.0
    } else {
        0.0
    };
    metadata.insert("window_move_pct".to_string(), move_pct * 100.0);
    let dir = if z <= -cfg.direction_threshold {
        if move_pct > 0.0 {
            direction::BULLISH
        } else if move_pct < 0.0 {
            direction::BEARISH
        } else {
            direction::VOLATILITY
        }
    } else {
        direction::NEUTRAL
    };
    let posture = if total < 0.0 { "short" } else { "long" };
    let detail = if enough {
        format!(
            "dealers {posture} gamma: GEX {total_m:+.1}M$/1% (z {z:+.1}), flip {}",
            match flip {
                Some(f) => format!("at {f:.2}"),
                None => "not within ±30%".to_string(),
            }
        )
    } else {
        format!("warming up: GEX history needs {} windows", cfg.min_samples)
    };
    Reading {
        raw_value: total_m,
        zscore: z,
        direction: dir,
        samples,
        detail,
        metadata,
    }
}
