//! Put-call parity and its American bounds, on the call and the put of one strike and expiry.
//!
//! European (continuous dividend yield q): `C − P = S e^{−qT} − K e^{−rT}` exactly.
//! - `C − P` too rich: sell the call at the bid, buy the put at the ask, buy `e^{−qT}` shares
//!   (dividends reinvested) and borrow `K e^{−rT}`; edge `bid_C − ask_P − (S e^{−qT} − K e^{−rT})`.
//! - too cheap: the reverse trade; edge `(S e^{−qT} − K e^{−rT}) − (ask_C − bid_P)`.
//!
//! American: early exercise turns the equality into bounds,
//! `S e^{−qT} − K ≤ C − P ≤ S − K e^{−rT}` (with q = 0 the textbook `S − K ≤ C − P ≤ S − K e^{−rT}`).
//! The upper one holds because the short put may be exercised against us at any time (we then
//! owe K, which the borrowed `K e^{−rT}` plus the held share cover); the lower one because a
//! dividend-paying share is worth at least its `e^{−qT}` fraction at expiry, and a short call
//! exercised early costs at most `S − K`. Each side is checked through the quotes like the
//! European one. A pair with either leg American uses the bounds.

use super::{same_strike, ExpirySlice, Kind, Violation};

/// Appends the slice's parity violations.
pub fn check(slice: &ExpirySlice, spot: f64, min_edge_usd: f64, found: &mut Vec<Violation>) {
    let mut puts = slice.puts.iter().peekable();
    for c in &slice.calls {
        // Both sides are sorted by strike: walk them together.
        while puts
            .next_if(|p| p.strike < c.strike && !same_strike(p.strike, c.strike))
            .is_some()
        {}
        let Some(p) = puts.peek().filter(|p| same_strike(p.strike, c.strike)) else {
            continue;
        };
        let (k, t, r, q) = (c.strike, c.years, c.rate, c.dividend_yield);
        let (upper, lower) = if c.american || p.american {
            (spot - k * (-r * t).exp(), spot * (-q * t).exp() - k)
        } else {
            let fair = spot * (-q * t).exp() - k * (-r * t).exp();
            (fair, fair)
        };
        let rich = c.bid - p.ask - upper;
        let cheap = lower - (c.ask - p.bid);
        let edge = 100.0 * rich.max(cheap);
        if edge > min_edge_usd {
            found.push(Violation {
                kind: Kind::Parity,
                edge_usd: edge,
                strikes: vec![k],
                expiry: slice.expiry.clone(),
                far_expiry: None,
                call: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Leg;
    use super::*;

    fn leg(strike: f64, bid: f64, ask: f64, american: bool) -> Leg {
        Leg {
            strike,
            years: 0.5,
            bid,
            ask,
            iv: 0.3,
            rate: 0.05,
            dividend_yield: 0.02,
            american,
        }
    }

    fn slice(call: Leg, put: Leg) -> ExpirySlice {
        ExpirySlice {
            expiry: "2024-06-21".into(),
            calls: vec![call],
            puts: vec![put],
        }
    }

    #[test]
    fn a_rich_european_call_is_found_with_its_exact_edge() {
        let (s, k) = (100.0, 100.0);
        let fair = s * (-0.02f64 * 0.5).exp() - k * (-0.05f64 * 0.5).exp();
        // Call bid 8.00, put ask 4.00: C − P sells for 4.00 against a fair ≈ 1.49.
        let mut found = vec![];
        check(
            &slice(leg(k, 8.0, 8.2, false), leg(k, 3.8, 4.0, false)),
            s,
            1.0,
            &mut found,
        );
        assert_eq!(found.len(), 1);
        let want = 100.0 * (8.0 - 4.0 - fair);
        assert!(
            (found[0].edge_usd - want).abs() < 1e-9,
            "{} vs {want}",
            found[0].edge_usd
        );
        assert_eq!(found[0].strikes, vec![100.0]);
    }

    #[test]
    fn a_mid_violation_inside_the_spread_is_ignored() {
        let (s, k) = (100.0, 100.0);
        let fair = s * (-0.02f64 * 0.5).exp() - k * (-0.05f64 * 0.5).exp();
        // Mids say C − P = fair + 0.50, but the spreads (1.00 wide each) eat it.
        let c_mid = 5.0 + fair + 0.5;
        let mut found = vec![];
        check(
            &slice(
                leg(k, c_mid - 0.5, c_mid + 0.5, false),
                leg(k, 4.5, 5.5, false),
            ),
            s,
            0.0,
            &mut found,
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn american_pairs_use_the_early_exercise_bounds() {
        let (s, k) = (100.0, 100.0);
        let upper = s - k * (-0.05f64 * 0.5).exp();
        let lower = s * (-0.02f64 * 0.5).exp() - k;
        // C − P tradeable at 2.0..2.1: between the bounds (−1.0 .. 2.47) — no violation for
        // American contracts, though it breaks European parity (fair ≈ 1.49) through the quotes.
        let (c, p) = (leg(k, 6.0, 6.05, true), leg(k, 3.95, 4.0, true));
        let mut found = vec![];
        check(&slice(c, p), s, 1.0, &mut found);
        assert!(found.is_empty(), "{found:?}");
        let european = |l: Leg| Leg {
            american: false,
            ..l
        };
        check(&slice(european(c), european(p)), s, 1.0, &mut found);
        assert_eq!(found.len(), 1);
        // Above the upper bound: call bid 7.00, put ask 4.00 → 3.00 > 2.47.
        let mut found = vec![];
        check(&slice(leg(k, 7.0, 7.1, true), p), s, 1.0, &mut found);
        assert_eq!(found.len(), 1);
        assert!((found[0].edge_usd - 100.0 * (3.0 - upper)).abs() < 1e-9);
        // Below the lower bound: buy the call at 1.00, sell the put at 3.95 → −2.95 < −1.0.
        let mut found = vec![];
        check(&slice(leg(k, 0.9, 1.0, true), p), s, 1.0, &mut found);
        assert_eq!(found.len(), 1);
        assert!((found[0].edge_usd - 100.0 * (lower + 2.95)).abs() < 1e-9);
    }
}
