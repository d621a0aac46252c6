//! The option chain listed at each session's open: expiries, strikes, OCC symbols and open
//! interest.

use super::calendar;
use super::market;
use super::universe::UnderlyingSpec;
use chrono::NaiveDate;
use optionflow_schemas::time::MICROS_PER_YEAR;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Largest strike an OCC symbol can carry (8 digits of thousandths).
const MAX_STRIKE_MILLI: i64 = 99_999_999;

/// One listed contract and its state for the session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Contract {
    /// OCC symbol, 21 characters.
    pub(super) symbol: String,
    /// Index into the session's expiries.
    pub(super) expiry: usize,
    pub(super) strike: f64,
    /// ln(strike), kept so a quote costs no logarithm.
    pub(super) ln_strike: f64,
    pub(super) is_call: bool,
    /// Fixed for the session.
    pub(super) open_interest: i64,
    /// Cumulative volume today.
    pub(super) volume: i64,
    /// Last trade price today.
    pub(super) last: Option<f64>,
    /// Volume traded today while a regime event was under way: part of it stays open overnight.
    pub(super) event_volume: i64,
}

/// The session's listing for one underlying.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Chain {
    /// Expiry times (16:00 New York on the expiry date) as UTC µs, nearest first.
    pub(super) expiries: Vec<i64>,
    /// Contracts by expiry, then strike, call before put.
    pub(super) contracts: Vec<Contract>,
}

/// The usual listing increment for a price, in thousandths.
pub(super) fn increment_milli(spot: f64) -> i64 {
    if spot < 5.0 {
        500
    } else if spot < 50.0 {
        1000
    } else if spot < 200.0 {
        2500
    } else {
        5000
    }
}

/// Offsets (in thousandths) of `count` strikes on one side of the centre: the first ~60% at the
/// listing increment, the rest spaced wider so the side reaches `reach`, the distance the name
/// can plausibly travel while this listing stands (a squeeze or crash must not run off the
/// chain).
fn side_offsets(count: usize, inc: i64, reach: f64) -> (Vec<i64>, i64) {
    let inner = (count * 3).div_ceil(5) as i64;
    let outer = count as i64 - inner;
    let wide = [1, 2, 4, 5, 10, 20]
        .into_iter()
        .find(|m| ((inner + outer * m) * inc) as f64 >= reach)
        .unwrap_or(20);
    let offsets = (1..=count as i64)
        .map(|k| {
            if k <= inner {
                k * inc
            } else {
                (inner + (k - inner) * wide) * inc
            }
        })
        .collect();
    (offsets, if outer > 0 { wide * inc } else { inc })
}

/// `n` strikes (thousandths, ascending) centred on `spot`.
pub(super) fn strike_grid(spot: f64, vol: f64, n: usize) -> Vec<i64> {
    let inc = increment_milli(spot);
    let centre = ((spot * 1000.0 / inc as f64).round() as i64).max(1) * inc;
    let reach = (3.5 * vol / 12f64.sqrt()).clamp(0.15, 1.0) * spot * 1000.0;
    let below = n.saturating_sub(1) / 2;
    let above = n.saturating_sub(1) - below;
    let (down, _) = side_offsets(below, inc, reach);
    let (up, top_step) = side_offsets(above, inc, reach);
    let mut strikes: Vec<i64> = down.iter().rev().map(|o| centre - o).collect();
    strikes.push(centre);
    strikes.extend(up.iter().map(|o| centre + o));
    // A name priced near zero cannot list strikes below it: list the missing ones on top.
    strikes.retain(|&k| k > 0);
    while strikes.len() < n {
        let top = strikes.last().copied().unwrap_or(0);
        strikes.push(top + top_step);
    }
    strikes.retain(|&k| k <= MAX_STRIKE_MILLI);
    strikes
}

/// `AAPL  240119C00190000`: root padded to 6, YYMMDD, C/P, strike × 1000 in 8 digits.
pub(super) fn occ_symbol(root: &str, expiry: &str, is_call: bool, strike_milli: i64) -> String {
    format!(
        "{root:<6}{expiry}{}{strike_milli:08}",
        if is_call { 'C' } else { 'P' }
    )
}

/// Everything the listing needs about the session.
pub(super) struct Listing<'a> {
    pub(super) spec: &'a UnderlyingSpec,
    pub(super) date: NaiveDate,
    pub(super) open: i64,
    pub(super) spot: f64,
    pub(super) var: f64,
    pub(super) expiries: usize,
    pub(super) strikes: usize,
}

/// Lists the session's chain. Contracts that were listed yesterday keep most of their open
/// interest, plus part of the volume an event drove into them.
pub(super) fn list(l: &Listing<'_>, prev: &Chain, rng: &mut ChaCha8Rng) -> Option<Chain> {
    let prev_by_symbol: BTreeMap<&str, &Contract> = prev
        .contracts
        .iter()
        .map(|c| (c.symbol.as_str(), c))
        .collect();
    let dates = calendar::expiries(l.date, l.expiries)?;
    let strikes = strike_grid(l.spot, l.spec.vol, l.strikes);
    let level = market::VARIANCE_PREMIUM * l.var.max(0.0).sqrt();
    let mut chain = Chain::default();
    chain.contracts.reserve(dates.len() * strikes.len() * 2);
    for (e, date) in dates.iter().enumerate() {
        let expiry_time = calendar::ny_micros(*date, 16, 0)?;
        chain.expiries.push(expiry_time);
        let years = ((expiry_time - l.open) as f64 / MICROS_PER_YEAR).max(1e-6);
        let code = calendar::yymmdd(*date);
        for &k in &strikes {
            let strike = k as f64 / 1000.0;
            let z = ((strike / l.spot).ln() / (level * years.sqrt())).clamp(-4.0, 4.0);
            for is_call in [true, false] {
                let symbol = occ_symbol(l.spec.symbol, &code, is_call, k);
                let base = market::base_open_interest(l.spec, z, years, rng.random());
                let open_interest = match prev_by_symbol.get(symbol.as_str()) {
                    Some(p) => {
                        (0.8 * p.open_interest as f64 + 0.2 * base as f64).round() as i64
                            + (0.4 * p.event_volume as f64).round() as i64
                    }
                    None => base,
                };
                chain.contracts.push(Contract {
                    symbol,
                    expiry: e,
                    strike,
                    ln_strike: strike.ln(),
                    is_call,
                    open_interest,
                    volume: 0,
                    last: None,
                    event_volume: 0,
                });
            }
        }
    }
    Some(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_are_centred_increasing_and_positive() {
        let spy = strike_grid(475.31, 0.14, 25);
        assert_eq!(spy.len(), 25);
        assert_eq!(spy[12], 475_000);
        assert_eq!(spy[11], 470_000);
        assert!(spy[0] <= 400_000 && spy[24] >= 550_000, "{spy:?}");
        let gme = strike_grid(17.53, 0.75, 25);
        assert_eq!(gme[12], 18_000);
        assert!(
            *gme.last().unwrap() >= 30_000,
            "a squeeze must stay on the chain: {gme:?}"
        );
        let amc = strike_grid(1.2, 0.8, 25);
        assert_eq!(amc.len(), 25);
        assert!(amc.windows(2).all(|w| w[0] < w[1]) && amc[0] > 0, "{amc:?}");
        for n in [1, 2, 3, 10, 200] {
            let g = strike_grid(100.0, 0.3, n);
            assert_eq!(g.len(), n);
            assert!(g.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn occ_symbols() {
        assert_eq!(
            occ_symbol("AAPL", "240119", true, 190_000),
            "AAPL  240119C00190000"
        );
        assert_eq!(
            occ_symbol("GOOGL", "240119", false, 137_500),
            "GOOGL 240119P00137500"
        );
    }
}
