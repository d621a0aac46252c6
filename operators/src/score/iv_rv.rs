//! IV−RV spread: the constant-maturity ATM implied vol (`cm-tenor-days`, 30 by default) minus
//! the realized vol, z-scored against its own history.
//!
//! The implied side is [`constant_maturity_iv`] over the ATM term structure
//! ([`term_structure::atm_by_expiry`]). The realized side is
//! [`realized_vol::reference_rv`]: the 20-session Yang–Zhang vol once 21 sessions exist (about
//! the same 30 calendar days the IV looks ahead), the intraday one-minute RV before that.
//!
//! The spread's robust spread is floored at `vol-min-std` and at the RV's sampling error
//! ([`realized_vol::sampling_error`]).
//!
//! The spread's level is the variance risk premium (usually positive: options are priced above
//! the vol that follows). A spread far from its own history either way reads "volatility": IV
//! bid far above realized means the market prices a move the tape has not shown yet; IV far
//! below realized means realized vol is running ahead of option prices. Neither says which way.

pub use super::term_structure::constant_maturity_iv;
use super::{realized_vol, stats, term_structure, Reading, ScoreConfig, UnderlyingBook};
use optionflow_schemas::direction;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Per-underlying state of the factor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IvRvState {
    /// IV−RV spread at past window closes.
    pub history: stats::History,
    /// Which realized vol the history's spreads were measured against.
    #[serde(default)]
    pub rv_basis: String,
}

/// Reads the window and advances the spread history.
pub(super) fn close(cfg: &ScoreConfig, book: &mut UnderlyingBook) -> Reading {
    let atm = term_structure::atm_by_expiry(book, cfg.iv_min_days);
    let points: Vec<(f64, f64)> = atm.iter().map(|p| (p.years, p.iv)).collect();
    let iv = constant_maturity_iv(&points, cfg.cm_tenor_days / 365.0);
    let rv = realized_vol::reference_rv(cfg, &book.rv);
    let mut metadata = BTreeMap::new();
    metadata.insert("expiries".to_string(), atm.len() as f64);
    if let Some(iv) = iv {
        metadata.insert("iv_cm".to_string(), iv);
    }
    if let Some((rv, _, _)) = rv {
        metadata.insert("rv".to_string(), rv);
    }
    let (Some(iv), Some((rv, rv_name, rv_n))) = (iv, rv) else {
        return Reading {
            raw_value: 0.0,
            zscore: 0.0,
            direction: direction::NEUTRAL,
            samples: book.iv_rv.history.len() as i64,
            detail: format!(
                "warming up: needs {}",
                match (iv, rv) {
                    (None, None) => "an ATM term structure and realized-vol bars",
                    (None, _) => "an ATM term structure",
                    _ => "realized-vol bars",
                }
            ),
            metadata,
        };
    };
    let spread = iv - rv;
    metadata.insert("spread".to_string(), spread);
    // Spreads against the intraday RV and against the session RV are different quantities: when
    // the basis changes (the 21st session completes) the history starts over rather than
    // scoring the switch itself as an event.
    if book.iv_rv.rv_basis != rv_name {
        book.iv_rv.history = stats::History::default();
        book.iv_rv.rv_basis = rv_name.to_string();
    }
    let h = &mut book.iv_rv.history;
    let samples = h.len() as i64;
    // The spread is no less noisy than its realized leg: floor its spread at the RV's sampling
    // error (see realized_vol::sampling_error), or a jump in a 30-bar RV scores in the hundreds.
    let floor = cfg.vol_min_std.max(realized_vol::sampling_error(rv, rv_n));
    metadata.insert("rv_sampling_error".to_string(), floor);
    let scored = h.score(spread, cfg.min_samples, cfg.min_samples, floor);
    h.push(spread, cfg.history);
    let days = cfg.cm_tenor_days;
    let Some(s) = scored else {
        return Reading {
            raw_value: spread,
            zscore: 0.0,
            direction: direction::NEUTRAL,
            samples,
            detail: format!(
                "{days:.0}d IV {:.1}% − {rv_name} RV {:.1}% = {:+.1} pts; warming up: history needs {} windows",
                iv * 100.0,
                rv * 100.0,
                spread * 100.0,
                cfg.min_samples
            ),
            metadata,
        };
    };
    metadata.insert("spread_median".to_string(), s.center);
    let dir = if s.z.abs() >= cfg.direction_threshold {
        direction::VOLATILITY
    } else {
        direction::NEUTRAL
    };
    let rich = if spread >= s.center { "rich" } else { "cheap" };
    Reading {
        raw_value: spread,
        zscore: s.z,
        direction: dir,
        samples,
        detail: format!(
            "{days:.0}d IV {:.1}% − {rv_name} RV {:.1}% = {:+.1} pts, {rich} vs its median {:+.1} (z {:+.1})",
            iv * 100.0,
            rv * 100.0,
            spread * 100.0,
            s.center * 100.0,
            s.z
        ),
        metadata,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{realized_vol::Bar, ContractBook};
    use super::*;

    const DAY: f64 = 1.0 / 365.0;

    /// A book with ATM calls and puts at the forward of two expiries and 21 identical sessions
    /// whose 20-session Yang–Zhang vol is known.
    fn book(iv_20d: f64, iv_40d: f64) -> UnderlyingBook {
        let mut b = UnderlyingBook {
            spot: 100.0,
            ..Default::default()
        };
        for (exp, days, iv) in [("A", 20.0, iv_20d), ("B", 40.0, iv_40d)] {
            for call in [true, false] {
                b.contracts.insert(
                    format!("{exp}{call}").into(),
                    ContractBook {
                        is_call: call,
                        strike: 100.0,
                        years: days * DAY,
                        iv,
                        expiry: exp.into(),
                        ..Default::default()
                    },
                );
            }
        }
        // Flat opens, every session 100 → 101 → 100: no overnight or open-to-close variance, so
        // Yang–Zhang reduces to (1 − k)·σ²_RS with σ²_RS = ln(H/C)·ln(H/O) = ln(1.01)².
        for _ in 0..21 {
            b.rv.sessions.push_back(Bar {
                open: 100.0,
                high: 101.0,
                low: 100.0,
                close: 100.0,
            });
        }
        b
    }

    #[test]
    fn spread_is_constant_maturity_iv_minus_session_rv() {
        let cfg = ScoreConfig::default();
        let mut b = book(0.20, 0.30);
        let r = close(&cfg, &mut b);
        let iv = (2.2f64 / 30.0).sqrt(); // total-variance interpolation, see term_structure
        let k = 0.34 / (1.34 + 21.0 / 19.0);
        let rs = (1.01f64).ln().powi(2); // ln(H/C)·ln(H/O); the low terms vanish (L = C = O)
        let rv = (252.0 * (1.0 - k) * rs).sqrt();
        assert!((r.metadata["iv_cm"] - iv).abs() < 1e-12);
        assert!((r.metadata["rv"] - rv).abs() < 1e-12, "{:?}", r.metadata);
        assert!((r.raw_value - (iv - rv)).abs() < 1e-12);
        assert!(r.detail.contains("Yang-Zhang") && r.detail.contains("warming up"));
    }

    #[test]
    fn a_spread_far_from_its_history_reads_volatility() {
        let cfg = ScoreConfig::default();
        let mut b = book(0.20, 0.30);
        for _ in 0..cfg.min_samples {
            let r = close(&cfg, &mut b);
            assert_eq!(r.zscore, 0.0);
        }
        // Steady spread: z 0.
        let steady = close(&cfg, &mut b);
        assert!(steady.zscore.abs() < 1e-9 && steady.direction == "neutral");
        // Both expiries' IV up 10 points: the spread widens by the change in the 30-day IV over
        // a flat history, scored against the 20-session RV's sampling error rv/√40.
        for c in b.contracts.values_mut() {
            c.iv += 0.10;
        }
        let r = close(&cfg, &mut b);
        let se = r.metadata["rv"] / 40f64.sqrt();
        assert!((r.metadata["rv_sampling_error"] - se).abs() < 1e-15);
        let want = (close_iv(0.30, 0.40) - close_iv(0.20, 0.30)) / se;
        assert!(want > 2.0);
        assert!((r.zscore - want).abs() < 1e-6, "{} vs {want}", r.zscore);
        assert_eq!(r.direction, "volatility");
        assert!(r.detail.contains("rich"));
    }

    fn close_iv(a: f64, b: f64) -> f64 {
        constant_maturity_iv(&[(20.0 * DAY, a), (40.0 * DAY, b)], 30.0 * DAY).unwrap()
    }

    #[test]
    fn a_change_of_realized_vol_basis_restarts_the_history() {
        let cfg = ScoreConfig::default();
        let mut b = book(0.20, 0.30);
        for _ in 0..=cfg.min_samples {
            close(&cfg, &mut b);
        }
        assert_eq!(b.iv_rv.history.len(), cfg.min_samples + 1);
        // Drop to 20 sessions with a one-minute series instead: the intraday RV takes over.
        b.rv.sessions.pop_front();
        for (i, p) in [100.0, 100.1, 100.0, 100.1].into_iter().enumerate() {
            let bar = Bar {
                open: p,
                high: p,
                low: p,
                close: p,
            };
            b.rv.minutes.push_back((i as i64, bar));
        }
        let cfg = ScoreConfig {
            rv_intraday_bars: 3,
            ..cfg
        };
        let r = close(&cfg, &mut b);
        assert!(r.detail.contains("intraday") && r.detail.contains("warming up"));
        assert_eq!(b.iv_rv.history.len(), 1);
        assert_eq!(b.iv_rv.rv_basis, "intraday");
    }

    #[test]
    fn without_bars_it_waits() {
        let cfg = ScoreConfig::default();
        let mut b = book(0.2, 0.3);
        b.rv.sessions.clear();
        let r = close(&cfg, &mut b);
        assert_eq!(r.direction, "neutral");
        assert!(r.detail.contains("realized-vol bars"), "{}", r.detail);
    }
}
