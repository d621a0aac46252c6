//! The candidate contracts a signal's suggested trade is chosen from: for the two nearest
//! usable expiries (those with at least [`MIN_TRADE_DAYS`] left first, shorter ones only when
//! fewer than two have), the call and the put nearest the money and nearest |delta| 0.25 and
//! 0.40 — at most twelve contracts, ordered by OCC symbol. A contract is usable when it has a
//! positive ask not below its bid, a positive mid, a finite positive IV and time left.

use super::{ContractBook, UnderlyingBook};
use crate::key::TextKey;
use optionflow_schemas::{right, ChainContract};
use std::collections::BTreeMap;

/// The factor whose [`optionflow_schemas::FactorScore`] carries the candidates.
pub const CARRIER: &str = "gamma_exposure";

/// Days to expiry a suggested trade prefers at least (shorter-dated contracts are mostly theta).
pub const MIN_TRADE_DAYS: f64 = 7.0;

/// |Delta| targets besides the at-the-money contract.
const DELTA_TARGETS: [f64; 2] = [0.25, 0.40];

fn usable(c: &ContractBook) -> bool {
    c.ask > 0.0
        && c.ask >= c.bid
        && c.mid > 0.0
        && c.iv.is_finite()
        && c.iv > 0.0
        && c.years > 0.0
        && c.delta.is_finite()
}

/// The root of an OCC symbol (its first six characters, padded with spaces).
fn root_of<'a>(symbol: &'a str, underlying: &'a str) -> &'a str {
    match symbol.get(..6) {
        Some(r) if symbol.len() > 6 => r.trim_end(),
        _ => underlying,
    }
}

/// The candidate set of `book`'s chain at its last quotes.
pub fn candidates(underlying: &str, book: &UnderlyingBook) -> Vec<ChainContract> {
    let spot = book.spot;
    if spot.is_nan() || spot <= 0.0 {
        return Vec::new();
    }
    // Expiry → its years to expiry (the longest seen, quotes of one expiry differ by seconds).
    let mut expiries: BTreeMap<&str, f64> = BTreeMap::new();
    for c in book.contracts.values().filter(|c| usable(c)) {
        let y = expiries.entry(c.expiry.as_str()).or_insert(0.0);
        *y = y.max(c.years);
    }
    let mut order: Vec<(&str, f64)> = expiries.into_iter().collect();
    let short = |y: f64| y * 365.0 < MIN_TRADE_DAYS;
    order.sort_by(|a, b| {
        short(a.1)
            .cmp(&short(b.1))
            .then(a.1.total_cmp(&b.1))
            .then(a.0.cmp(b.0))
    });
    let mut picked: BTreeMap<&str, ChainContract> = BTreeMap::new();
    for (expiry, _) in order.into_iter().take(2) {
        for is_call in [true, false] {
            let side: Vec<(&TextKey, &ContractBook)> = book
                .contracts
                .iter()
                .filter(|(_, c)| c.expiry == expiry && c.is_call == is_call && usable(c))
                .collect();
            let mut nearest = |key: &dyn Fn(&ContractBook) -> f64| {
                // Strictly smaller wins: ties go to the first symbol, so the pick is stable.
                let mut best: Option<(&TextKey, &ContractBook, f64)> = None;
                for &(sym, c) in &side {
                    let d = key(c);
                    if best.is_none_or(|(_, _, bd)| d < bd) {
                        best = Some((sym, c, d));
                    }
                }
                if let Some((sym, c, _)) = best {
                    picked
                        .entry(sym.as_str())
                        .or_insert_with(|| to_contract(underlying, sym, c));
                }
            };
            nearest(&|c| (c.strike / spot).ln().abs());
            for target in DELTA_TARGETS {
                nearest(&|c| (c.delta.abs() - target).abs());
            }
        }
    }
    picked.into_values().collect()
}

fn to_contract(underlying: &str, symbol: &str, c: &ContractBook) -> ChainContract {
    ChainContract {
        symbol: symbol.to_string(),
        root: root_of(symbol, underlying).to_string(),
        expiry: c.expiry.to_string(),
        right: if c.is_call { right::CALL } else { right::PUT }.to_string(),
        strike: c.strike,
        years_to_expiry: c.years,
        bid: c.bid,
        ask: c.ask,
        mid: c.mid,
        iv: c.iv,
        delta: c.delta,
        gamma: c.gamma,
        vega: c.vega,
        theta: c.theta,
        volume: c.cum_volume,
        open_interest: c.open_interest,
        exercise_style: c.exercise_style.to_string(),
        rate: c.rate,
        dividend_yield: c.dividend_yield,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(spot: f64) -> UnderlyingBook {
        let mut b = UnderlyingBook {
            spot,
            ..UnderlyingBook::default()
        };
        // Three expiries: 2 days (too short while longer ones exist), 9 and 30 days.
        for (expiry, code, days) in [
            ("2024-01-04", "240104", 2.0),
            ("2024-01-11", "240111", 9.0),
            ("2024-02-01", "240201", 30.0),
        ] {
            for k in [80.0, 90.0, 95.0, 100.0, 105.0, 110.0, 120.0] {
                for is_call in [true, false] {
                    let m: f64 = (100.0f64 / k).ln() / 0.1;
                    let call_delta = crate::score::stats::norm_cdf(m);
                    let delta = if is_call {
                        call_delta
                    } else {
                        call_delta - 1.0
                    };
                    let sym = format!(
                        "XYZ   {code}{}{:08}",
                        if is_call { 'C' } else { 'P' },
                        (k * 1000.0) as i64
                    );
                    b.contracts.insert(
                        sym.into(),
                        ContractBook {
                            is_call,
                            strike: k,
                            years: days / 365.0,
                            iv: 0.3,
                            delta,
                            expiry: expiry.into(),
                            exercise_style: "american".into(),
                            bid: 1.0,
                            ask: 1.1,
                            mid: 1.05,
                            ..ContractBook::default()
                        },
                    );
                }
            }
        }
        b
    }

    #[test]
    fn picks_atm_and_delta_wings_of_the_two_nearest_expiries_with_a_week_left() {
        let c = candidates("XYZ", &book(100.0));
        let expiries: std::collections::BTreeSet<&str> =
            c.iter().map(|c| c.expiry.as_str()).collect();
        assert_eq!(
            expiries.into_iter().collect::<Vec<_>>(),
            ["2024-01-11", "2024-02-01"]
        );
        assert!((8..=12).contains(&c.len()), "{}", c.len());
        assert!(c.iter().all(|c| c.root == "XYZ"));
        // The ATM call and put of each expiry are at 100.
        for e in ["2024-01-11", "2024-02-01"] {
            for r in ["call", "put"] {
                assert!(c
                    .iter()
                    .any(|c| c.expiry == e && c.right == r && c.strike == 100.0));
            }
        }
        let mut sorted = c.clone();
        sorted.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        assert_eq!(sorted, c, "ordered by symbol");
    }

    #[test]
    fn an_unquoted_chain_has_no_candidates() {
        let mut b = book(100.0);
        for c in b.contracts.values_mut() {
            c.ask = 0.0;
        }
        assert!(candidates("XYZ", &b).is_empty());
        assert!(candidates("XYZ", &UnderlyingBook::default()).is_empty());
    }
}
