//! The chain view of one underlying: greeks by expiry and strike, dealer gamma exposure by strike
//! with the call wall, put wall and gamma flip (computed by the same functions as the score
//! stage's factor), and the smile of each expiry.

use super::hub::{Chain, ChainRow};
use optionflow_operators::score::gamma_exposure::flip::GexCurve;
use optionflow_operators::score::gamma_exposure::gex_profile;
use optionflow_operators::score::{ContractBook, GexSign};
use optionflow_schemas::CompactString;
use serde::Serialize;
use std::collections::BTreeMap;

/// One strike of one expiry.
#[derive(Debug, Clone, Serialize)]
pub struct StrikeRow {
    /// Strike.
    pub strike: f64,
    /// The call, if quoted (its latest quote and greeks; vega per 1.00 of vol and theta per
    /// year, which the page shows per point and per day).
    pub call: Option<ChainRow>,
    /// The put, if quoted.
    pub put: Option<ChainRow>,
}

/// One expiry.
#[derive(Debug, Clone, Serialize)]
pub struct ExpiryRows {
    /// Expiry date.
    pub expiry: String,
    /// Days to expiry.
    pub days: f64,
    /// Strikes, ascending.
    pub strikes: Vec<StrikeRow>,
    /// The smile: out-of-the-money IV by strike (puts below spot, calls at and above).
    pub smile: Vec<(f64, f64)>,
}

/// GEX at one strike, dollars per 1% move.
#[derive(Debug, Clone, Serialize)]
pub struct GexBar {
    /// Strike.
    pub strike: f64,
    /// Calls' GEX.
    pub call: f64,
    /// Puts' GEX.
    pub put: f64,
}

/// The chain view.
#[derive(Debug, Clone, Serialize)]
pub struct ChainView {
    /// Underlying.
    pub underlying: String,
    /// Sector.
    pub sector: Option<String>,
    /// Spot.
    pub spot: f64,
    /// Event time of the last update.
    pub updated: i64,
    /// Expiries, nearest first.
    pub expiries: Vec<ExpiryRows>,
    /// GEX by strike, ascending.
    pub gex: Vec<GexBar>,
    /// Net GEX.
    pub gex_total: f64,
    /// Strike and GEX of the call wall.
    pub call_wall: Option<(f64, f64)>,
    /// Strike and GEX of the put wall.
    pub put_wall: Option<(f64, f64)>,
    /// Spot at which total GEX changes sign, nearest to spot.
    pub gamma_flip: Option<f64>,
}

fn book(r: &ChainRow) -> ContractBook {
    ContractBook {
        is_call: r.is_call,
        strike: r.strike,
        years: r.years,
        iv: r.iv,
        gamma: r.gamma,
        delta: r.delta,
        vega: r.vega,
        expiry: r.expiry.clone(),
        bid: r.bid,
        ask: r.ask,
        rate: r.rate,
        dividend_yield: r.dividend_yield,
        open_interest: r.open_interest,
        ..Default::default()
    }
}

/// Builds the view of `chain` as of its last update; expired contracts are left out.
pub fn view(
    underlying: &str,
    chain: &Chain,
    convention: GexSign,
    flip_range_pct: f64,
) -> ChainView {
    // In symbol order, so the view (and every sum over it) does not depend on the hash map's.
    let mut live: Vec<(&CompactString, &ChainRow)> = chain
        .contracts
        .iter()
        .filter(|(_, r)| !r.expired_at(chain.updated))
        .collect();
    live.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let live: Vec<&ChainRow> = live.into_iter().map(|(_, r)| r).collect();
    let mut by_expiry: BTreeMap<&str, BTreeMap<i64, StrikeRow>> = BTreeMap::new();
    let mut days: BTreeMap<&str, f64> = BTreeMap::new();
    for r in &live {
        let key = (r.strike * 1000.0).round() as i64;
        let row = by_expiry
            .entry(&r.expiry)
            .or_default()
            .entry(key)
            .or_insert(StrikeRow {
                strike: r.strike,
                call: None,
                put: None,
            });
        if r.is_call {
            row.call = Some((*r).clone());
        } else {
            row.put = Some((*r).clone());
        }
        // Years at the last quote less the time since it, in days.
        let left = r.years * 365.0 - (chain.updated - r.at) as f64 / 86_400e6;
        days.insert(&r.expiry, left.max(0.0));
    }
    let expiries = by_expiry
        .into_iter()
        .map(|(expiry, strikes)| {
            let strikes: Vec<StrikeRow> = strikes.into_values().collect();
            let smile = strikes
                .iter()
                .filter_map(|s| {
                    let otm = if s.strike < chain.spot {
                        s.put.as_ref()
                    } else {
                        s.call.as_ref()
                    };
                    otm.filter(|o| o.iv > 0.0).map(|o| (s.strike, o.iv))
                })
                .collect();
            ExpiryRows {
                expiry: expiry.to_string(),
                days: days.get(expiry).copied().unwrap_or(0.0),
                strikes,
                smile,
            }
        })
        .collect();
    let books: Vec<ContractBook> = live.iter().map(|r| book(r)).collect();
    let profile = gex_profile(convention, chain.spot, books.iter());
    let flip =
        GexCurve::new(convention, books.iter()).flip_near(chain.spot, flip_range_pct / 100.0);
    ChainView {
        underlying: underlying.to_string(),
        sector: chain.sector.as_ref().map(ToString::to_string),
        spot: chain.spot,
        updated: chain.updated,
        expiries,
        gex: profile
            .strikes
            .iter()
            .map(|s| GexBar {
                strike: s.strike,
                call: s.call,
                put: s.put,
            })
            .collect(),
        gex_total: profile.total,
        call_wall: profile.call_wall,
        put_wall: profile.put_wall,
        gamma_flip: flip,
    }
}
