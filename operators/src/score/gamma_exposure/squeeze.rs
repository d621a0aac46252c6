//! Squeeze severity: how primed the book is for dealer hedging to amplify a rally.
//!
//! Four components, each mapped to [0, 1]:
//! - **short gamma** `n = max(0, −total GEX) / gross GEX`: the share of the book's gamma that
//!   leaves dealers net short (they buy as spot rises);
//! - **flip proximity** `p = exp(−|flip distance %| / 5)`: a flip close to spot means a small
//!   move tips dealers into (or deeper into) short gamma; with no flip in range, `p` is 1 when the
//!   book is short gamma throughout and 0 when long throughout;
//! - **short-dated call surge** `c = clamp((m − 1) / (m + 1), 0, 1)` where `m` is the window's
//!   short-dated call volume/OI over its normal level (its own history's mean, floored): 0 at or
//!   below normal, ½ at three times normal, → 1 in a frenzy;
//! - **momentum** `u = tanh(max(0, spot change %) / 2)` over the last windows: squeezes need
//!   spot moving up.
//!
//! `severity = 100 · √(F · P)` with fragility `F = (n + p) / 2` and pressure `P = (c + u) / 2`:
//! the geometric mean makes a squeeze need both a fragile dealer book and buying pressure, and
//! keeps the score in [0, 100].

/// Distance (in %) at which flip proximity falls to 1/e.
const FLIP_SCALE_PCT: f64 = 5.0;

/// Spot change (in %) at which the momentum component reaches tanh(1) ≈ 0.76.
const MOMENTUM_SCALE_PCT: f64 = 2.0;

/// Floor on the normal short-dated call volume/OI (per window), so a quiet or new history does
/// not turn a handful of contracts into a surge.
pub const NORMAL_VOL_OI_FLOOR: f64 = 0.002;

/// What the severity is computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SqueezeInputs {
    /// Total GEX (dollars per 1% move).
    pub total_gex: f64,
    /// Sum of every contract's |GEX|.
    pub gross_gex: f64,
    /// (flip / spot − 1) in %, when a flip is in range.
    pub flip_distance_pct: Option<f64>,
    /// Short-dated call volume in the window over those contracts' open interest.
    pub short_call_vol_oi: f64,
    /// Its normal level (history mean), when known.
    pub normal_vol_oi: Option<f64>,
    /// Spot change over the momentum windows, in %.
    pub momentum_pct: f64,
}

/// The components and the severity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Squeeze {
    /// Net short share of gross gamma, [0, 1].
    pub short_gamma: f64,
    /// Closeness of the flip, [0, 1].
    pub flip_proximity: f64,
    /// Short-dated call volume/OI surge, [0, 1].
    pub call_surge: f64,
    /// Upward momentum, [0, 1].
    pub momentum: f64,
    /// 0-100.
    pub severity: f64,
}

/// Computes the severity (see the module docs for the formula).
pub fn severity(i: &SqueezeInputs) -> Squeeze {
    let unit = |v: f64| {
        if v.is_finite() {
            v.clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    let short_gamma = if i.gross_gex > 0.0 {
        unit(-i.total_gex / i.gross_gex)
    } else {
        0.0
    };
    let flip_proximity = match i.flip_distance_pct {
        Some(d) => unit((-d.abs() / FLIP_SCALE_PCT).exp()),
        None if i.total_gex < 0.0 => 1.0,
        None => 0.0,
    };
    let normal = i.normal_vol_oi.unwrap_or(0.0).max(NORMAL_VOL_OI_FLOOR);
    let m = i.short_call_vol_oi / normal;
    let call_surge = unit((m - 1.0) / (m + 1.0));
    let momentum = unit((i.momentum_pct.max(0.0) / MOMENTUM_SCALE_PCT).tanh());
    let fragility = 0.5 * (short_gamma + flip_proximity);
    let pressure = 0.5 * (call_surge + momentum);
    Squeeze {
        short_gamma,
        flip_proximity,
        call_surge,
        momentum,
        severity: 100.0 * (fragility * pressure).sqrt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_follow_the_documented_formula() {
        let s = severity(&SqueezeInputs {
            total_gex: -30.0,
            gross_gex: 100.0,
            flip_distance_pct: Some(5.0),
            short_call_vol_oi: 0.03,
            normal_vol_oi: Some(0.01),
            momentum_pct: 2.0,
        });
        assert!((s.short_gamma - 0.3).abs() < 1e-12);
        assert!((s.flip_proximity - (-1.0f64).exp()).abs() < 1e-12);
        assert!((s.call_surge - 0.5).abs() < 1e-12);
        assert!((s.momentum - 1.0f64.tanh()).abs() < 1e-12);
        let want = 100.0 * (0.5 * (0.3 + (-1.0f64).exp()) * 0.5 * (0.5 + 1.0f64.tanh())).sqrt();
        assert!((s.severity - want).abs() < 1e-9);
    }

    #[test]
    fn no_pressure_or_no_fragility_means_no_squeeze() {
        let calm_flow = severity(&SqueezeInputs {
            total_gex: -50.0,
            gross_gex: 50.0,
            flip_distance_pct: None,
            short_call_vol_oi: 0.001,
            normal_vol_oi: Some(0.01),
            momentum_pct: -1.0,
        });
        assert_eq!(calm_flow.severity, 0.0);
        let long_gamma = severity(&SqueezeInputs {
            total_gex: 50.0,
            gross_gex: 50.0,
            flip_distance_pct: None,
            short_call_vol_oi: 1.0,
            normal_vol_oi: None,
            momentum_pct: 5.0,
        });
        assert_eq!(long_gamma.severity, 0.0);
    }
}
