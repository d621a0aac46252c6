//! Calendar: at one strike, total implied variance σ²T must not fall from one expiry to the
//! next, and neither may the price it stands for.
//!
//! With forward `F_T = S e^{(r−q)T}`, the forward-normalised price `V e^{rT} / F_T` at a fixed
//! forward moneyness `K/F_T` is non-decreasing in T (the surface's total variance is). At one
//! fixed strike the moneyness drifts with the forward; when it drifts in the option's favour
//! (calls with r ≥ q, puts with r ≤ q) the inequality still holds and becomes, for T1 < T2,
//! `V(K, T2) ≥ e^{−q(T2−T1)} V(K, T1)`. An American option may do everything the shorter one
//! can, so for American contracts `V(K, T2) ≥ V(K, T1)` with no condition. European contracts
//! whose forward drifts the other way are not checked (no same-strike bound exists).
//!
//! A violation counts when the mid IVs say total variance falls *and* the bound is broken
//! through the quotes: sell `φ` near contracts at the bid and buy one far contract at the ask
//! (`φ = e^{−q(T2−T1)}`, or 1 for American), edge `φ·bid(T1) − ask(T2)` per far contract.

use super::{same_strike, ExpirySlice, Kind, Leg, Violation};

/// Appends calendar violations between consecutive expiries listing the same strike.
pub fn check(chain: &[ExpirySlice], min_edge_usd: f64, found: &mut Vec<Violation>) {
    for call in [true, false] {
        for (i, near_slice) in chain.iter().enumerate() {
            for near in side(near_slice, call) {
                // The next expiry that lists this strike is the one to compare with.
                let far = chain[i + 1..].iter().find_map(|s| {
                    side(s, call)
                        .iter()
                        .find(|l| same_strike(l.strike, near.strike))
                        .map(|l| (s, l))
                });
                let Some((far_slice, far)) = far else {
                    continue;
                };
                if let Some(edge) = edge(near, far, call) {
                    let edge_usd = 100.0 * edge;
                    if edge_usd > min_edge_usd {
                        found.push(Violation {
                            kind: Kind::Calendar,
                            edge_usd,
                            strikes: vec![near.strike],
                            expiry: near_slice.expiry.clone(),
                            far_expiry: Some(far_slice.expiry.clone()),
                            call: Some(call),
                        });
                    }
                }
            }
        }
    }
}

/// One right's quotes of an expiry.
fn side(slice: &ExpirySlice, call: bool) -> &[Leg] {
    if call {
        &slice.calls
    } else {
        &slice.puts
    }
}

/// Edge per share of the calendar trade when total variance falls and a bound applies.
fn edge(near: &Leg, far: &Leg, call: bool) -> Option<f64> {
    let dt = far.years - near.years;
    let variance_falls = near.iv.is_finite()
        && far.iv.is_finite()
        && near.iv > 0.0
        && far.iv > 0.0
        && far.iv * far.iv * far.years < near.iv * near.iv * near.years;
    if dt <= 0.0 || !variance_falls {
        return None;
    }
    let phi = if near.american || far.american {
        1.0
    } else {
        let (r, q) = (near.rate, near.dividend_yield);
        let drifts_our_way = if call { r >= q } else { r <= q };
        if !drifts_our_way {
            return None;
        }
        (-q * dt).exp()
    };
    Some(phi * near.bid - far.ask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg(years: f64, iv: f64, bid: f64, ask: f64) -> Leg {
        Leg {
            strike: 100.0,
            years,
            bid,
            ask,
            iv,
            rate: 0.04,
            dividend_yield: 0.01,
            american: false,
        }
    }

    fn two_expiries(near: Leg, far: Leg) -> Vec<ExpirySlice> {
        vec![
            ExpirySlice {
                expiry: "2024-02-16".into(),
                calls: vec![near],
                puts: vec![],
            },
            ExpirySlice {
                expiry: "2024-03-15".into(),
                calls: vec![far],
                puts: vec![],
            },
        ]
    }

    #[test]
    fn a_near_call_richer_than_the_far_one_is_a_calendar_violation() {
        // Total variance 0.40²·0.1 = 0.016 falls to 0.25²·0.2 = 0.0125, and the near call bids
        // 5.00 while the far one offers 4.60.
        let chain = two_expiries(leg(0.1, 0.40, 5.0, 5.1), leg(0.2, 0.25, 4.5, 4.6));
        let mut found = vec![];
        check(&chain, 1.0, &mut found);
        assert_eq!(found.len(), 1, "{found:?}");
        let want = 100.0 * ((-0.01f64 * 0.1).exp() * 5.0 - 4.6);
        assert!(
            (found[0].edge_usd - want).abs() < 1e-9,
            "{}",
            found[0].edge_usd
        );
        assert_eq!(found[0].expiry, "2024-02-16");
        assert_eq!(found[0].far_expiry.as_deref(), Some("2024-03-15"));
    }

    #[test]
    fn rising_variance_or_a_spread_too_wide_is_not_a_violation() {
        let mut found = vec![];
        check(
            &two_expiries(leg(0.1, 0.30, 3.9, 4.0), leg(0.2, 0.30, 5.5, 5.6)),
            0.0,
            &mut found,
        );
        // Variance falls at the mids but the far ask is above the near bid.
        check(
            &two_expiries(leg(0.1, 0.40, 4.4, 5.0), leg(0.2, 0.27, 4.6, 5.2)),
            0.0,
            &mut found,
        );
        assert!(found.is_empty(), "{found:?}");
    }
}
