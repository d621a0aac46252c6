//! Dealer gamma exposure (GEX): Γ × OI × 100 × S² × 1% per contract (dollars of delta dealers
//! must trade per 1% move), signed by the dealer convention, summed per strike and in total;
//! the call wall and the put wall; the gamma flip ([`flip`]); and a squeeze severity
//! ([`squeeze`]).
//!
//! The profile uses the gamma the greeks stage reported with each contract's last quote, so the
//! total is exactly what the chain said; the flip re-prices gamma across hypothetical spots.
//! A total far below its own history means dealers hedge with the move rather than against it:
//! moves get amplified. The reading takes the direction of the window's spot move.

pub mod flip;
pub mod squeeze;

use super::{stats, ContractBook, GexSign, Reading, ScoreConfig, UnderlyingBook};
use flip::{dealer_sign, GexCurve};
use optionflow_schemas::direction;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Per-underlying state of the factor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GexState {
    /// Total GEX (millions of dollars per 1% move) at past window closes.
    pub history: stats::History,
    /// Short-dated call volume/OI of past windows (the squeeze's "normal" level).
    #[serde(default)]
    pub short_call_vol_oi: stats::History,
    /// Spot at the last `squeeze-momentum-windows` window closes, oldest first.
    #[serde(default)]
    pub closes: VecDeque<f64>,
}

/// GEX at one strike, split by right (dollars per 1% move, signed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StrikeGex {
    /// Strike.
    pub strike: f64,
    /// Sum over the strike's calls.
    pub call: f64,
    /// Sum over the strike's puts.
    pub put: f64,
}

/// The chain's GEX at the current spot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GexProfile {
    /// Per strike, ascending (calls and puts of every expiry at that strike together).
    pub strikes: Vec<StrikeGex>,
    /// Net total.
    pub total: f64,
    /// Sum of every contract's |GEX|: the scale the net total is read against.
    pub gross: f64,
    /// Strike with the largest call GEX in magnitude (under the default convention the largest
    /// positive one: dealers long gamma there pin spot from above), and that GEX.
    pub call_wall: Option<(f64, f64)>,
    /// Strike with the largest put GEX in magnitude (the most negative one under the default
    /// convention), and that GEX.
    pub put_wall: Option<(f64, f64)>,
}

/// GEX per contract `Γ · OI · 100 · S² · 1%`, signed by `convention`, summed per strike; walls.
/// Contracts whose GEX is not finite (no gamma yet) are skipped.
pub fn gex_profile<'a>(
    convention: GexSign,
    spot: f64,
    contracts: impl IntoIterator<Item = &'a ContractBook>,
) -> GexProfile {
    // Strikes keyed in thousandths so float noise in a parsed strike cannot split one strike.
    let mut by_strike: BTreeMap<i64, StrikeGex> = BTreeMap::new();
    let (mut total, mut gross) = (0.0, 0.0);
    let scale = 100.0 * spot * spot * 0.01;
    for c in contracts {
        let g = dealer_sign(convention, c.is_call) * c.gamma * c.open_interest as f64 * scale;
        if !g.is_finite() {
            continue;
        }
        total += g;
        gross += g.abs();
        let e = by_strike
            .entry((c.strike * 1000.0).round() as i64)
            .or_insert(StrikeGex {
                strike: c.strike,
                call: 0.0,
                put: 0.0,
            });
        if c.is_call {
            e.call += g;
        } else {
            e.put += g;
        }
    }
    let strikes: Vec<StrikeGex> = by_strike.into_values().collect();
    // Strict comparison keeps the lowest strike on a tie, so the wall is deterministic.
    let wall = |side: fn(&StrikeGex) -> f64| {
        strikes.iter().fold(None, |best: Option<(f64, f64)>, s| {
            let g = side(s);
            match best {
                Some((_, b)) if g.abs() <= b.abs() => best,
                _ if g == 0.0 => best,
                _ => Some((s.strike, g)),
            }
        })
    };
    let (call_wall, put_wall) = (wall(|s| s.call), wall(|s| s.put));
    GexProfile {
        strikes,
        total,
        gross,
        call_wall,
        put_wall,
    }
}

/// The spot level nearest to `spot` at which total GEX changes sign, within
/// ± `gex-flip-range-pct`, re-pricing each contract's gamma with its own IV.
pub fn gamma_flip(cfg: &ScoreConfig, book: &UnderlyingBook, spot: f64) -> Option<f64> {
    GexCurve::new(cfg.gex_sign, book.contracts.values())
        .flip_near(spot, cfg.gex_flip_range_pct / 100.0)
}

/// Reads the window and advances the GEX histories.
pub(super) fn close(cfg: &ScoreConfig, book: &mut UnderlyingBook) -> Reading {
    let spot = book.spot;
    let profile = gex_profile(cfg.gex_sign, spot, book.contracts.values());
    let flip = gamma_flip(cfg, book, spot);
    let flip_distance_pct = flip.map(|f| (f / spot - 1.0) * 100.0);
    let (short_vol, short_oi) = book
        .contracts
        .values()
        .filter(|c| c.is_call && c.years * 365.0 <= cfg.short_dated_days)
        .fold((0i64, 0i64), |(v, oi), c| {
            (v + c.window_volume, oi + c.open_interest.max(0))
        });
    let vol_oi = short_vol as f64 / short_oi.max(1) as f64;
    let normal_vol_oi = (book.gex.short_call_vol_oi.len() >= cfg.min_samples)
        .then(|| book.gex.short_call_vol_oi.mean());
    let reference = book
        .gex
        .closes
        .front()
        .copied()
        .unwrap_or(book.window_open_spot);
    let momentum_pct = if reference > 0.0 {
        (spot / reference - 1.0) * 100.0
    } else {
        0.0
    };
    let sq = squeeze::severity(&squeeze::SqueezeInputs {
        total_gex: profile.total,
        gross_gex: profile.gross,
        flip_distance_pct,
        short_call_vol_oi: vol_oi,
        normal_vol_oi,
        momentum_pct,
    });

    let total_m = profile.total / 1e6;
    let mut metadata = BTreeMap::from([
        ("total_gex".to_string(), profile.total),
        ("total_gex_musd".to_string(), total_m),
        ("gross_gex".to_string(), profile.gross),
        ("short_dated_call_vol_oi".to_string(), vol_oi),
        ("momentum_pct".to_string(), momentum_pct),
        ("squeeze_short_gamma".to_string(), sq.short_gamma),
        ("squeeze_flip_proximity".to_string(), sq.flip_proximity),
        ("squeeze_call_surge".to_string(), sq.call_surge),
        ("squeeze_momentum".to_string(), sq.momentum),
        ("squeeze_severity".to_string(), sq.severity),
    ]);
    if let Some(n) = normal_vol_oi {
        metadata.insert("short_dated_call_vol_oi_normal".to_string(), n);
    }
    if let Some((k, g)) = profile.call_wall {
        metadata.insert("call_wall".to_string(), k);
        metadata.insert("call_wall_gex".to_string(), g);
    }
    if let Some((k, g)) = profile.put_wall {
        metadata.insert("put_wall".to_string(), k);
        metadata.insert("put_wall_gex".to_string(), g);
    }
    if let (Some(f), Some(d)) = (flip, flip_distance_pct) {
        metadata.insert("gamma_flip".to_string(), f);
        metadata.insert("flip_distance_pct".to_string(), d);
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
    book.gex.short_call_vol_oi.push(vol_oi, cfg.history);
    if spot > 0.0 {
        // A loop, not one pop: the bound holds even if state ever outlived a longer span.
        while book.gex.closes.len() >= cfg.squeeze_momentum_windows {
            book.gex.closes.pop_front();
        }
        book.gex.closes.push_back(spot);
    }
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
    let posture = if profile.total < 0.0 { "short" } else { "long" };
    let level = |w: Option<(f64, f64)>| w.map_or("none".to_string(), |(k, _)| format!("{k}"));
    let detail = if enough {
        format!(
            "dealers {posture} gamma: GEX {total_m:+.1}M$/1% (z {z:+.1}), flip {}, call wall {}, put wall {}, squeeze severity {:.0}/100",
            match flip {
                Some(f) => format!("at {f:.2}"),
                None => format!("not within ±{}%", cfg.gex_flip_range_pct),
            },
            level(profile.call_wall),
            level(profile.put_wall),
            sq.severity,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(is_call: bool, strike: f64, gamma: f64, oi: i64) -> ContractBook {
        ContractBook {
            is_call,
            strike,
            years: 30.0 / 365.0,
            iv: 0.25,
            gamma,
            open_interest: oi,
            ..Default::default()
        }
    }

    fn book(spot: f64, contracts: Vec<(&str, ContractBook)>) -> UnderlyingBook {
        UnderlyingBook {
            spot,
            window_open_spot: spot,
            contracts: contracts.into_iter().map(|(s, c)| (s.into(), c)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn walls_sit_at_the_planted_strikes_and_totals_add_up() {
        let b = book(
            100.0,
            vec![
                ("C105", contract(true, 105.0, 0.04, 5000)),
                ("C110", contract(true, 110.0, 0.03, 1000)),
                ("C95", contract(true, 95.0, 0.03, 200)),
                ("P95", contract(false, 95.0, 0.035, 4000)),
                ("P90", contract(false, 90.0, 0.02, 500)),
            ],
        );
        let p = gex_profile(GexSign::DealerLongCalls, 100.0, b.contracts.values());
        let unit = 100.0 * 100.0 * 100.0 * 0.01;
        let want =
            (0.04 * 5000.0 + 0.03 * 1000.0 + 0.03 * 200.0 - 0.035 * 4000.0 - 0.02 * 500.0) * unit;
        assert!((p.total - want).abs() < 1e-6, "{} vs {want}", p.total);
        assert_eq!(p.call_wall.map(|w| w.0), Some(105.0));
        assert_eq!(p.put_wall.map(|w| w.0), Some(95.0));
        assert!(
            p.put_wall.unwrap().1 < 0.0,
            "put GEX is negative for dealers long calls"
        );
        let at95 = p.strikes.iter().find(|s| s.strike == 95.0).unwrap();
        assert!((at95.call - 0.03 * 200.0 * unit).abs() < 1e-6);
        assert!((at95.put + 0.035 * 4000.0 * unit).abs() < 1e-6);
        let r = close(&ScoreConfig::default(), &mut b.clone());
        assert_eq!(r.metadata["call_wall"], 105.0);
        assert_eq!(r.metadata["put_wall"], 95.0);
        assert!((r.metadata["total_gex"] - want).abs() < 1e-6);
    }

    #[test]
    fn the_reading_reports_the_flip_between_symmetric_walls() {
        let mut b = book(
            100.0,
            vec![
                ("C", contract(true, 110.0, 0.0, 1000)),
                ("P", contract(false, 90.0, 0.0, 1000)),
            ],
        );
        let r = close(&ScoreConfig::default(), &mut b);
        let t: f64 = 30.0 / 365.0;
        let exact = (110.0f64 * 90.0).sqrt() * (-0.5 * 0.25 * 0.25 * t).exp();
        assert!(
            (r.metadata["gamma_flip"] - exact).abs() < 1e-3,
            "{:?}",
            r.metadata
        );
        assert!((r.metadata["flip_distance_pct"] - (exact / 100.0 - 1.0) * 100.0).abs() < 1e-3);
    }

    #[test]
    fn a_planted_squeeze_reads_more_severe_than_a_calm_book() {
        let cfg = ScoreConfig::default();
        // Calm: dealers long gamma (call OI dominates), no short-dated trading, flat spot.
        let mut calm = book(
            100.0,
            vec![
                ("C100", contract(true, 100.0, 0.05, 8000)),
                ("P95", contract(false, 95.0, 0.03, 2000)),
            ],
        );
        calm.gex.closes = VecDeque::from([100.0]);
        // Squeeze: heavy put gamma near spot (dealers short), the flip just above spot, 3-day
        // calls trading 30% of their open interest in the window, spot up 3% over the windows.
        let mut short_call = contract(true, 105.0, 0.06, 2000);
        short_call.years = 3.0 / 365.0;
        short_call.window_volume = 600;
        let mut squeeze = book(
            103.0,
            vec![
                ("C105", short_call),
                ("P100", contract(false, 100.0, 0.06, 9000)),
            ],
        );
        squeeze.gex.closes = VecDeque::from([100.0]);
        let calm_r = close(&cfg, &mut calm);
        let sq_r = close(&cfg, &mut squeeze);
        let (c, s) = (
            calm_r.metadata["squeeze_severity"],
            sq_r.metadata["squeeze_severity"],
        );
        assert!(c < 5.0, "calm severity {c}");
        assert!(
            s > 50.0 && s > c,
            "squeeze {s} vs calm {c}: {:?}",
            sq_r.metadata
        );
        assert!(sq_r.metadata["squeeze_short_gamma"] > 0.5);
        assert!((sq_r.metadata["momentum_pct"] - 3.0).abs() < 1e-9);
        assert!((sq_r.metadata["short_dated_call_vol_oi"] - 0.3).abs() < 1e-12);
        assert_eq!(squeeze.gex.closes.back(), Some(&103.0), "closes advance");
    }
}
