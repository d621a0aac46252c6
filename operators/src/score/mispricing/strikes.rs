//! Relations across strikes of one expiry and right, on neighbouring listed strikes.
//!
//! - **Butterfly** (convexity): for equally spaced K1 < K2 < K3, `V(K1) − 2V(K2) + V(K3) ≥ 0`
//!   for calls and for puts. Tradeable when buying the wings at the ask and selling two bodies
//!   at the bid collects money: edge `2·bid(K2) − ask(K1) − ask(K3)` per butterfly. Only
//!   neighbouring strikes are checked: unequal spacing would need fractional wings.
//! - **Vertical** for K1 < K2, with `D = e^{−rT}` (European) or 1 (American: the spread can be
//!   exercised at once, so its payoff is not discounted):
//!   - calls are non-increasing in K: edge `bid(K2) − ask(K1)` (buy the lower strike, sell the
//!     higher); a call spread is worth at most `(K2 − K1)·D`: edge `bid(K1) − ask(K2) − (K2 − K1)·D`;
//!   - puts are non-decreasing in K: edge `bid(K1) − ask(K2)`; a put spread is worth at most
//!     `(K2 − K1)·D`: edge `bid(K2) − ask(K1) − (K2 − K1)·D`.

use super::{ExpirySlice, Kind, Leg, Violation};

/// Appends the slice's butterfly and vertical violations.
pub fn check(slice: &ExpirySlice, min_edge_usd: f64, found: &mut Vec<Violation>) {
    for (legs, call) in [(&slice.calls, true), (&slice.puts, false)] {
        let mut push = |kind, edge: f64, strikes: Vec<f64>| {
            let edge_usd = 100.0 * edge;
            if edge_usd > min_edge_usd {
                found.push(Violation {
                    kind,
                    edge_usd,
                    strikes,
                    expiry: slice.expiry.clone(),
                    far_expiry: None,
                    call: Some(call),
                });
            }
        };
        for w in legs.windows(3) {
            let (a, b, c) = (&w[0], &w[1], &w[2]);
            let (lo, hi) = (b.strike - a.strike, c.strike - b.strike);
            if lo > 0.0 && (lo - hi).abs() <= 1e-6 * b.strike {
                push(
                    Kind::Butterfly,
                    2.0 * b.bid - a.ask - c.ask,
                    vec![a.strike, b.strike, c.strike],
                );
            }
        }
        for w in legs.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            if b.strike <= a.strike {
                continue;
            }
            let bound = (b.strike - a.strike) * discount(a, b);
            let (monotone, spread) = if call {
                (b.bid - a.ask, a.bid - b.ask - bound)
            } else {
                (a.bid - b.ask, b.bid - a.ask - bound)
            };
            push(
                Kind::Vertical,
                monotone.max(spread),
                vec![a.strike, b.strike],
            );
        }
    }
}

/// Discount factor of a vertical's maximum payoff (see the module docs).
fn discount(a: &Leg, b: &Leg) -> f64 {
    if a.american || b.american {
        1.0
    } else {
        (-a.rate * a.years).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg(strike: f64, bid: f64, ask: f64) -> Leg {
        Leg {
            strike,
            years: 0.25,
            bid,
            ask,
            iv: 0.3,
            rate: 0.04,
            dividend_yield: 0.0,
            american: false,
        }
    }

    fn calls(legs: Vec<Leg>) -> ExpirySlice {
        ExpirySlice {
            expiry: "2024-03-15".into(),
            calls: legs,
            puts: vec![],
        }
    }

    #[test]
    fn a_concave_call_butterfly_is_found_with_its_edge() {
        // Body bid 6.00 twice against wings 10.00 + 1.50: collect 0.50 per butterfly.
        let chain = calls(vec![
            leg(95.0, 9.9, 10.0),
            leg(100.0, 6.0, 6.1),
            leg(105.0, 1.4, 1.5),
        ]);
        let mut found = vec![];
        check(&chain, 1.0, &mut found);
        let fly: Vec<_> = found.iter().filter(|v| v.kind == Kind::Butterfly).collect();
        assert_eq!(fly.len(), 1, "{found:?}");
        assert!((fly[0].edge_usd - 50.0).abs() < 1e-9);
        assert_eq!(fly[0].strikes, vec![95.0, 100.0, 105.0]);
        assert_eq!(fly[0].call, Some(true));
    }

    #[test]
    fn a_convex_chain_or_unequal_spacing_has_no_butterfly() {
        let convex = calls(vec![
            leg(95.0, 7.9, 8.0),
            leg(100.0, 4.5, 4.6),
            leg(105.0, 2.0, 2.1),
        ]);
        let mut found = vec![];
        check(&convex, 0.0, &mut found);
        assert!(found.is_empty(), "{found:?}");
        let uneven = calls(vec![
            leg(95.0, 9.9, 10.0),
            leg(100.0, 6.0, 6.1),
            leg(110.0, 1.4, 1.5),
        ]);
        check(&uneven, 1.0, &mut found);
        assert!(found.iter().all(|v| v.kind != Kind::Butterfly), "{found:?}");
    }

    #[test]
    fn verticals_break_monotonicity_and_the_discounted_spread_bound() {
        // The 105 call bids 3.20 while the 100 call offers at 3.00: buy low, sell high, +0.20.
        let mut found = vec![];
        check(
            &calls(vec![leg(100.0, 2.9, 3.0), leg(105.0, 3.2, 3.3)]),
            1.0,
            &mut found,
        );
        assert_eq!(found.len(), 1);
        assert!((found[0].edge_usd - 20.0).abs() < 1e-9);
        // A 5-wide call spread sold at 5.50 − 0.40: worth at most 5·e^{−0.01}.
        let mut found = vec![];
        check(
            &calls(vec![leg(100.0, 5.5, 5.6), leg(105.0, 0.3, 0.4)]),
            1.0,
            &mut found,
        );
        assert_eq!(found.len(), 1);
        let want = 100.0 * (5.5 - 0.4 - 5.0 * (-0.04f64 * 0.25).exp());
        assert!((found[0].edge_usd - want).abs() < 1e-9);
        // Puts: the 95 put bids above the 100 put's ask.
        let puts = ExpirySlice {
            expiry: "2024-03-15".into(),
            calls: vec![],
            puts: vec![leg(95.0, 4.1, 4.2), leg(100.0, 3.8, 4.0)],
        };
        let mut found = vec![];
        check(&puts, 1.0, &mut found);
        assert_eq!(found.len(), 1);
        assert!((found[0].edge_usd - 10.0).abs() < 1e-9);
        assert_eq!(found[0].call, Some(false));
    }
}
