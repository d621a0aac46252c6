//! The suggested trade of a signal and what it does under moves: structure selection from the
//! signal's candidate contracts, cost at the ask, breakevens at expiry, position greeks, and
//! the scenario table repriced with the contract's own model at its IV.
//!
//! Structures (long premium only, one contract a leg, 100 shares a contract):
//! - bullish: a long call, |delta| nearest the 0.35–0.50 band (inside it, nearest 0.425);
//! - bearish: a long put, the same on the put side;
//! - volatility: a long straddle, the strike nearest spot quoted on both sides.
//!
//! The expiry is the nearest with at least [`MIN_TRADE_DAYS`] left, or the nearest of all
//! when none has.

use crate::pricing::{bs2002_price, bsm_price, ExerciseStyle, Right};
use crate::score::chain::MIN_TRADE_DAYS;
use optionflow_schemas::{direction, right, ChainContract};

/// Shares one contract controls.
pub const MULTIPLIER: f64 = 100.0;

/// The |delta| band a directional leg is chosen in.
pub const DELTA_BAND: (f64, f64) = (0.35, 0.50);

/// Spot moves of the scenario table, in % of spot.
pub const SPOT_MOVES_PCT: [f64; 7] = [-10.0, -5.0, -2.0, 0.0, 2.0, 5.0, 10.0];

/// Implied-volatility moves of the scenario table, in vol points.
pub const VOL_MOVES_PTS: [f64; 3] = [-5.0, 0.0, 5.0];

/// The lowest volatility a scenario reprices at (a −5 point shift of a 3% IV would be negative).
const MIN_VOL: f64 = 0.01;

/// Greeks of a whole position in trader units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositionGreeks {
    /// Share-equivalent delta (Δ × 100 per contract).
    pub delta: f64,
    /// Change of that delta per $1 of spot.
    pub gamma: f64,
    /// Dollars per 1 vol point of IV.
    pub vega: f64,
    /// Dollars per calendar day.
    pub theta: f64,
}

/// A suggested position: long one of each leg.
#[derive(Debug, Clone, PartialEq)]
pub struct Trade {
    /// `long call`, `long put` or `long straddle`.
    pub structure: &'static str,
    /// The legs, each bought once at its ask.
    pub legs: Vec<ChainContract>,
    /// Premium paid at the ask, dollars.
    pub cost: f64,
    /// Underlying prices at expiry where the position breaks even, ascending.
    pub breakevens: Vec<f64>,
    /// Greeks of the position.
    pub greeks: PositionGreeks,
}

impl Trade {
    /// The expiry of the legs.
    pub fn expiry(&self) -> &str {
        &self.legs[0].expiry
    }
}

/// The model a contract is repriced with: its exercise style, or its root's when unknown.
pub fn style_of(c: &ChainContract) -> ExerciseStyle {
    match c.exercise_style.as_str() {
        "european" => ExerciseStyle::European,
        "american" => ExerciseStyle::American,
        _ => ExerciseStyle::for_root(&c.root),
    }
}

fn is_call(c: &ChainContract) -> bool {
    c.right == right::CALL
}

/// The expiry a trade uses: the nearest with at least a week left, else the nearest.
fn pick_expiry(contracts: &[ChainContract]) -> Option<&str> {
    let by_years = |min_days: f64| {
        contracts
            .iter()
            .filter(|c| c.years_to_expiry * 365.0 >= min_days)
            .min_by(|a, b| {
                a.years_to_expiry
                    .total_cmp(&b.years_to_expiry)
                    .then(a.expiry.cmp(&b.expiry))
            })
            .map(|c| c.expiry.as_str())
    };
    by_years(MIN_TRADE_DAYS).or_else(|| by_years(f64::NEG_INFINITY))
}

/// Distance of |delta| from the band, then from its middle: smaller is better.
fn delta_key(c: &ChainContract) -> (f64, f64) {
    let d = c.delta.abs();
    let (lo, hi) = DELTA_BAND;
    let outside = if d < lo {
        lo - d
    } else if d > hi {
        d - hi
    } else {
        0.0
    };
    (outside, (d - 0.5 * (lo + hi)).abs())
}

fn first_min<'a>(
    it: impl Iterator<Item = &'a ChainContract>,
    key: impl Fn(&ChainContract) -> (f64, f64),
) -> Option<&'a ChainContract> {
    // Strictly smaller wins, so ties keep the first contract (the candidates are sorted).
    let mut best: Option<(&ChainContract, (f64, f64))> = None;
    for c in it {
        let k = key(c);
        if best.is_none_or(|(_, bk)| k.0 < bk.0 || (k.0 == bk.0 && k.1 < bk.1)) {
            best = Some((c, k));
        }
    }
    best.map(|(c, _)| c)
}

/// The suggested trade for a signal of direction `dir` at `spot`, or `None` when the
/// candidates hold no fitting contract.
pub fn select(dir: &str, spot: f64, contracts: &[ChainContract]) -> Option<Trade> {
    let expiry = pick_expiry(contracts)?;
    let in_expiry = || contracts.iter().filter(move |c| c.expiry == expiry);
    let (structure, legs) = match dir {
        direction::BULLISH => (
            "long call",
            vec![first_min(in_expiry().filter(|c| is_call(c)), delta_key)?.clone()],
        ),
        direction::BEARISH => (
            "long put",
            vec![first_min(in_expiry().filter(|c| !is_call(c)), delta_key)?.clone()],
        ),
        _ => {
            let call = first_min(
                in_expiry().filter(|c| {
                    is_call(c) && in_expiry().any(|p| !is_call(p) && p.strike == c.strike)
                }),
                |c| ((c.strike / spot).ln().abs(), 0.0),
            )?;
            let put = in_expiry().find(|p| !is_call(p) && p.strike == call.strike)?;
            ("long straddle", vec![call.clone(), put.clone()])
        }
    };
    Some(build(structure, legs))
}

fn build(structure: &'static str, legs: Vec<ChainContract>) -> Trade {
    let cost = legs.iter().map(|c| c.ask * MULTIPLIER).sum();
    let greeks = PositionGreeks {
        delta: legs.iter().map(|c| c.delta * MULTIPLIER).sum(),
        gamma: legs.iter().map(|c| c.gamma * MULTIPLIER).sum(),
        // Raw vega is per 1.00 of vol: a point is 1/100 of it, times 100 shares.
        vega: legs.iter().map(|c| c.vega / 100.0 * MULTIPLIER).sum(),
        // Raw theta is per year (ACT/365).
        theta: legs.iter().map(|c| c.theta / 365.0 * MULTIPLIER).sum(),
    };
    Trade {
        structure,
        breakevens: breakevens(&legs),
        legs,
        cost,
        greeks,
    }
}

/// Breakevens at expiry of long one of each leg bought at the ask: a call's strike plus the
/// premium, a put's strike minus it; a straddle or strangle's put strike minus, and call strike
/// plus, the total premium.
pub fn breakevens(legs: &[ChainContract]) -> Vec<f64> {
    let premium: f64 = legs.iter().map(|c| c.ask).sum();
    let mut out = Vec::new();
    if let Some(c) = legs
        .iter()
        .filter(|c| is_call(c))
        .map(|c| c.strike)
        .reduce(f64::max)
    {
        out.push(c + premium);
    }
    if let Some(p) = legs
        .iter()
        .filter(|c| !is_call(c))
        .map(|c| c.strike)
        .reduce(f64::min)
    {
        out.push(p - premium);
    }
    out.sort_by(f64::total_cmp);
    out
}

/// Value of one contract (per share) at `spot` and `vol`, same time to expiry, with its own
/// model: Black-Scholes-Merton for European contracts, Bjerksund-Stensland 2002 for American.
pub fn reprice(c: &ChainContract, spot: f64, vol: f64) -> f64 {
    let r = if is_call(c) { Right::Call } else { Right::Put };
    let intrinsic = match r {
        Right::Call => (spot - c.strike).max(0.0),
        Right::Put => (c.strike - spot).max(0.0),
    };
    let (t, vol) = (c.years_to_expiry, vol.max(MIN_VOL));
    let priceable = spot > 0.0
        && c.strike > 0.0
        && t > 0.0
        && [c.rate, c.dividend_yield].iter().all(|v| v.is_finite());
    if !priceable {
        return intrinsic;
    }
    let v = match style_of(c) {
        ExerciseStyle::European => bsm_price(r, spot, c.strike, t, c.rate, c.dividend_yield, vol),
        ExerciseStyle::American => {
            bs2002_price(r, spot, c.strike, t, c.rate, c.dividend_yield, vol)
        }
    };
    if v.is_finite() {
        v
    } else {
        intrinsic
    }
}

/// Position P&L (dollars) at each spot move (rows, [`SPOT_MOVES_PCT`]) and vol move (columns,
/// [`VOL_MOVES_PTS`]): every leg repriced at its IV plus the move, minus the premium paid.
pub fn scenarios(trade: &Trade, spot: f64) -> Vec<[f64; 3]> {
    SPOT_MOVES_PCT
        .iter()
        .map(|m| {
            let s = spot * (1.0 + m / 100.0);
            let mut row = [0.0; 3];
            for (cell, dv) in row.iter_mut().zip(VOL_MOVES_PTS) {
                let value: f64 = trade
                    .legs
                    .iter()
                    .map(|c| reprice(c, s, c.iv + dv / 100.0) * MULTIPLIER)
                    .sum();
                *cell = value - trade.cost;
            }
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::price_and_greeks;

    /// A contract priced by the model itself, so its mid is its model value.
    pub(crate) fn contract(r: &str, strike: f64, days: f64, spot: f64, iv: f64) -> ChainContract {
        let right = Right::parse(r).unwrap();
        let years = days / 365.0;
        let g = price_and_greeks(
            ExerciseStyle::American,
            right,
            spot,
            strike,
            years,
            0.04,
            0.0,
            iv,
        )
        .unwrap();
        let code = if r == "call" { 'C' } else { 'P' };
        ChainContract {
            symbol: format!(
                "XYZ   2401{:02}{code}{:08}",
                days as i64,
                (strike * 1000.0) as i64
            ),
            root: "XYZ".into(),
            expiry: format!("2024-01-{:02}", days as i64),
            right: r.into(),
            strike,
            years_to_expiry: years,
            bid: g.price - 0.05,
            ask: g.price + 0.05,
            mid: g.price,
            iv,
            delta: g.delta,
            gamma: g.gamma,
            vega: g.vega,
            theta: g.theta,
            volume: 100,
            open_interest: 1000,
            exercise_style: "american".into(),
            rate: 0.04,
            dividend_yield: 0.0,
        }
    }

    fn chain(spot: f64) -> Vec<ChainContract> {
        let mut v = Vec::new();
        for days in [3.0, 10.0, 24.0] {
            for k in [90.0, 95.0, 97.5, 100.0, 102.5, 105.0, 110.0] {
                v.push(contract("call", k, days, spot, 0.4));
                v.push(contract("put", k, days, spot, 0.4));
            }
        }
        v.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        v
    }

    #[test]
    fn bullish_buys_a_call_in_the_delta_band_of_the_nearest_expiry_with_a_week() {
        let t = select("bullish", 100.0, &chain(100.0)).unwrap();
        assert_eq!(t.structure, "long call");
        assert_eq!(t.expiry(), "2024-01-10");
        let d = t.legs[0].delta;
        assert!((0.35..=0.50).contains(&d), "delta {d}");
        assert!(t.legs[0].strike > 100.0);
        assert!((t.cost - t.legs[0].ask * 100.0).abs() < 1e-9);
        assert!((t.greeks.delta - d * 100.0).abs() < 1e-9);
        assert!(
            (t.greeks.vega - t.legs[0].vega).abs() < 1e-9,
            "vega per point × 100 shares"
        );
        assert!(t.greeks.theta < 0.0);
    }

    #[test]
    fn bearish_buys_a_put_and_volatility_an_atm_straddle() {
        let p = select("bearish", 100.0, &chain(100.0)).unwrap();
        assert_eq!((p.structure, p.legs[0].right.as_str()), ("long put", "put"));
        assert!(
            (-0.50..=-0.35).contains(&p.legs[0].delta),
            "{}",
            p.legs[0].delta
        );
        let s = select("volatility", 101.0, &chain(101.0)).unwrap();
        assert_eq!(s.structure, "long straddle");
        assert_eq!((s.legs[0].strike, s.legs[1].strike), (100.0, 100.0));
        assert_eq!(
            (s.legs[0].right.as_str(), s.legs[1].right.as_str()),
            ("call", "put")
        );
        assert!(select("bullish", 100.0, &[]).is_none());
    }

    #[test]
    fn only_short_dated_contracts_still_give_a_trade() {
        let short: Vec<_> = chain(100.0)
            .into_iter()
            .filter(|c| c.expiry == "2024-01-03")
            .collect();
        assert_eq!(
            select("bullish", 100.0, &short).unwrap().expiry(),
            "2024-01-03"
        );
    }

    #[test]
    fn breakevens_add_and_subtract_the_premium_at_the_ask() {
        let c = contract("call", 105.0, 10.0, 100.0, 0.4);
        let p = contract("put", 95.0, 10.0, 100.0, 0.4);
        assert_eq!(breakevens(std::slice::from_ref(&c)), vec![105.0 + c.ask]);
        assert_eq!(breakevens(std::slice::from_ref(&p)), vec![95.0 - p.ask]);
        let both = breakevens(&[c.clone(), p.clone()]);
        assert_eq!(both, vec![95.0 - (c.ask + p.ask), 105.0 + (c.ask + p.ask)]);
    }

    #[test]
    fn the_scenario_table_reprices_the_position() {
        let t = select("bullish", 100.0, &chain(100.0)).unwrap();
        let rows = scenarios(&t, 100.0);
        assert_eq!(rows.len(), SPOT_MOVES_PCT.len());
        // Unchanged spot and vol: the model value (the mid) minus the cost at the ask.
        let flat = rows[3][1];
        let want = (t.legs[0].mid - t.legs[0].ask) * 100.0;
        assert!((flat - want).abs() < 1e-6, "{flat} vs {want}");
        // A long call gains as spot rises and as vol rises.
        for w in rows.windows(2) {
            assert!(w[1][1] > w[0][1], "{rows:?}");
        }
        for r in &rows {
            assert!(r[0] < r[1] && r[1] < r[2], "{r:?}");
        }
        // Its loss is bounded by the premium.
        assert!(rows.iter().flatten().all(|v| *v >= -t.cost - 1e-9));
        // A long put gains when spot falls.
        let p = select("bearish", 100.0, &chain(100.0)).unwrap();
        let pr = scenarios(&p, 100.0);
        assert!(pr[0][1] > pr[3][1] && pr[3][1] > pr[6][1], "{pr:?}");
        // A straddle gains on a large move either way, relative to standing still.
        let s = select("volatility", 100.0, &chain(100.0)).unwrap();
        let sr = scenarios(&s, 100.0);
        assert!(sr[0][1] > sr[3][1] && sr[6][1] > sr[3][1], "{sr:?}");
    }
}
