//! Mispricing: static no-arbitrage relations broken by the latest quotes, counted only when a
//! trade through the bid/ask (buy at the ask, sell at the bid) still makes money.
//!
//! Four kinds, each in its own module:
//! - [`parity`]: put-call parity for European contracts, the early-exercise bounds for American;
//! - [`strikes`]: butterfly convexity and vertical monotonicity / spread bounds across strikes;
//! - [`calendar`]: total variance (and price) non-decreasing in expiry at the same strike.
//!
//! Every violation carries its edge in dollars per contract (× 100 shares) after crossing the
//! spreads. The raw value is the window's total edge (violations overlap, so it measures how
//! dislocated the chain is, not a capacity one could trade at once), z-scored on a log scale
//! against its own history. The direction is `volatility` when that z reaches the threshold:
//! a chain that breaks arbitrage bounds is one whose quotes lag a repricing of volatility (or
//! a fast move), which says "large move or vol shock" but not which way; otherwise `neutral`.
//! The stock leg of parity trades is taken at the last spot, with no spread of its own.

pub mod calendar;
pub mod parity;
pub mod strikes;

use super::{stats, ContractBook, Reading, ScoreConfig, UnderlyingBook};
use optionflow_schemas::{direction, time::MICROS_PER_SECOND};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Floor on the standard deviation of ln(1 + total edge): with a history of zeros an edge must
/// reach about e^{2} − 1 ≈ $6.4 in total to take a direction at z = 2.
const MIN_LOG_STD: f64 = 1.0;

/// Per-underlying state of the factor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MispricingState {
    /// ln(1 + total tradeable edge in dollars) of past windows.
    pub history: stats::History,
}

/// Which relation a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Put-call parity (European) or its early-exercise bounds (American).
    Parity,
    /// Butterfly convexity.
    Butterfly,
    /// Vertical monotonicity or the vertical spread bound.
    Vertical,
    /// Total variance falling with expiry.
    Calendar,
}

impl Kind {
    /// Name used in metadata keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Parity => "parity",
            Kind::Butterfly => "butterfly",
            Kind::Vertical => "vertical",
            Kind::Calendar => "calendar",
        }
    }

    /// Number used to encode the kind in metadata (1 parity, 2 butterfly, 3 vertical,
    /// 4 calendar).
    pub fn code(self) -> f64 {
        match self {
            Kind::Parity => 1.0,
            Kind::Butterfly => 2.0,
            Kind::Vertical => 3.0,
            Kind::Calendar => 4.0,
        }
    }

    const ALL: [Kind; 4] = [
        Kind::Parity,
        Kind::Butterfly,
        Kind::Vertical,
        Kind::Calendar,
    ];
}

/// One usable quote.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Leg {
    /// Strike.
    pub strike: f64,
    /// Years to expiry.
    pub years: f64,
    /// Best bid.
    pub bid: f64,
    /// Best ask.
    pub ask: f64,
    /// Implied volatility at the mid (NaN when unknown).
    pub iv: f64,
    /// Continuously compounded rate.
    pub rate: f64,
    /// Continuous dividend yield.
    pub dividend_yield: f64,
    /// Whether it may be exercised early.
    pub american: bool,
}

/// The usable quotes of one expiry, each side sorted by strike.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpirySlice {
    /// `YYYY-MM-DD`.
    pub expiry: String,
    /// Calls by ascending strike.
    pub calls: Vec<Leg>,
    /// Puts by ascending strike.
    pub puts: Vec<Leg>,
}

/// A violation tradeable through the quotes.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// Which relation.
    pub kind: Kind,
    /// Dollars per contract (one unit of the trade, × 100 shares) after crossing the spreads.
    pub edge_usd: f64,
    /// Strikes involved, ascending (one for parity and calendar, two for verticals, three for
    /// butterflies).
    pub strikes: Vec<f64>,
    /// Expiry (the nearer one for calendars).
    pub expiry: String,
    /// The farther expiry of a calendar.
    pub far_expiry: Option<String>,
    /// `Some(true)` for calls, `Some(false)` for puts, `None` when both rights are involved.
    pub call: Option<bool>,
}

/// Whether a contract's last quote can be traded on: fresh, two-sided and not crossed.
fn usable(c: &ContractBook, fresh_after: i64) -> bool {
    c.last_seen >= fresh_after
        && c.strike > 0.0
        && c.years > 0.0
        && [c.bid, c.ask, c.strike, c.years, c.rate, c.dividend_yield]
            .iter()
            .all(|v| v.is_finite())
        && c.bid >= 0.0
        && c.ask > 0.0
        && c.ask >= c.bid
}

/// Groups the usable quotes last seen at or after `fresh_after` by expiry (ascending).
pub fn chain<'a>(
    contracts: impl IntoIterator<Item = &'a ContractBook>,
    fresh_after: i64,
) -> Vec<ExpirySlice> {
    let mut by_expiry: BTreeMap<&str, ExpirySlice> = BTreeMap::new();
    for c in contracts.into_iter().filter(|c| usable(c, fresh_after)) {
        let slice = by_expiry
            .entry(c.expiry.as_str())
            .or_insert_with(|| ExpirySlice {
                expiry: c.expiry.to_string(),
                ..Default::default()
            });
        let leg = Leg {
            strike: c.strike,
            years: c.years,
            bid: c.bid,
            ask: c.ask,
            iv: c.iv,
            rate: c.rate,
            dividend_yield: c.dividend_yield,
            american: c.exercise_style == "american",
        };
        if c.is_call {
            slice.calls.push(leg);
        } else {
            slice.puts.push(leg);
        }
    }
    let mut out: Vec<ExpirySlice> = by_expiry.into_values().collect();
    for s in &mut out {
        s.calls.sort_by(|a, b| a.strike.total_cmp(&b.strike));
        s.puts.sort_by(|a, b| a.strike.total_cmp(&b.strike));
    }
    out
}

/// Every violation whose edge exceeds `min_edge_usd` dollars per contract.
pub fn scan(chain: &[ExpirySlice], spot: f64, min_edge_usd: f64) -> Vec<Violation> {
    let mut found = Vec::new();
    if !(spot > 0.0 && spot.is_finite()) {
        return found;
    }
    for slice in chain {
        parity::check(slice, spot, min_edge_usd, &mut found);
        strikes::check(slice, min_edge_usd, &mut found);
    }
    calendar::check(chain, min_edge_usd, &mut found);
    found
}

/// Same strike, to a thousandth (strikes are parsed from OCC symbols in thousandths).
fn same_strike(a: f64, b: f64) -> bool {
    (a - b).abs() < 5e-4
}

/// `YYYY-MM-DD` as the number YYYYMMDD, so metadata can carry an expiry.
fn expiry_number(expiry: &str) -> Option<f64> {
    let digits: String = expiry.chars().filter(char::is_ascii_digit).collect();
    (digits.len() == 8)
        .then(|| digits.parse::<f64>().ok())
        .flatten()
}

/// Reads the window's quotes and advances the edge history; `end` is the window's end.
pub(super) fn close(cfg: &ScoreConfig, book: &mut UnderlyingBook, end: i64) -> Reading {
    let fresh_after = end - cfg.mispricing_max_quote_age_secs as i64 * MICROS_PER_SECOND;
    let slices = chain(book.contracts.values(), fresh_after);
    let found = scan(&slices, book.spot, cfg.mispricing_min_edge_usd);
    let total: f64 = found.iter().map(|v| v.edge_usd).sum();
    let mut metadata = BTreeMap::from([
        ("count".to_string(), found.len() as f64),
        ("total_edge_usd".to_string(), total),
        (
            "quotes_checked".to_string(),
            slices
                .iter()
                .map(|s| (s.calls.len() + s.puts.len()) as f64)
                .sum::<f64>(),
        ),
    ]);
    for kind in Kind::ALL {
        let of_kind = found.iter().filter(|v| v.kind == kind);
        let (n, edge) = of_kind.fold((0usize, 0.0), |(n, e), v| (n + 1, e + v.edge_usd));
        metadata.insert(format!("{}_count", kind.as_str()), n as f64);
        metadata.insert(format!("{}_edge_usd", kind.as_str()), edge);
    }
    // The first of equal edges wins, so the choice follows the scan's fixed order.
    let worst = found.iter().fold(None::<&Violation>, |best, v| match best {
        Some(b) if b.edge_usd >= v.edge_usd => best,
        _ => Some(v),
    });
    metadata.insert(
        "max_edge_usd".to_string(),
        worst.map_or(0.0, |v| v.edge_usd),
    );
    if let Some(w) = worst {
        metadata.insert("worst_kind".to_string(), w.kind.code());
        for (i, k) in w.strikes.iter().enumerate() {
            metadata.insert(format!("worst_strike_{}", i + 1), *k);
        }
        if let Some(e) = expiry_number(&w.expiry) {
            metadata.insert("worst_expiry".to_string(), e);
        }
        if let Some(e) = w.far_expiry.as_deref().and_then(expiry_number) {
            metadata.insert("worst_far_expiry".to_string(), e);
        }
        if let Some(call) = w.call {
            metadata.insert("worst_is_call".to_string(), if call { 1.0 } else { 0.0 });
        }
    }
    let level = total.ln_1p();
    let enough = book.mispricing.history.len() >= cfg.min_samples;
    let z = if enough {
        book.mispricing.history.zscore(level, MIN_LOG_STD)
    } else {
        0.0
    };
    let samples = book.mispricing.history.len() as i64;
    book.mispricing.history.push(level, cfg.history);
    let dir = if !found.is_empty() && z >= cfg.direction_threshold {
        direction::VOLATILITY
    } else {
        direction::NEUTRAL
    };
    let detail = match (enough, worst) {
        (false, _) => format!(
            "warming up: edge history needs {} windows ({} tradeable violations now)",
            cfg.min_samples,
            found.len()
        ),
        (true, None) => "no arbitrage bound broken through the quotes".to_string(),
        (true, Some(w)) => format!(
            "{} tradeable violations, ${total:.0}/contract in total (z {z:+.1}); worst: {} {} at {} ({}) ${:.0}",
            found.len(),
            w.kind.as_str(),
            match w.call {
                Some(true) => "calls",
                Some(false) => "puts",
                None => "call/put",
            },
            w.strikes
                .iter()
                .map(|k| format!("{k}"))
                .collect::<Vec<_>>()
                .join("/"),
            match &w.far_expiry {
                Some(far) => format!("{} vs {far}", w.expiry),
                None => w.expiry.clone(),
            },
            w.edge_usd
        ),
    };
    Reading {
        raw_value: total,
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

    const END: i64 = 1_704_205_860_000_000;

    fn quote(is_call: bool, strike: f64, bid: f64, ask: f64) -> ContractBook {
        ContractBook {
            is_call,
            strike,
            years: 0.5,
            iv: 0.3,
            expiry: "2024-06-21".into(),
            exercise_style: "european".into(),
            bid,
            ask,
            mid: 0.5 * (bid + ask),
            rate: 0.05,
            dividend_yield: 0.02,
            last_seen: END - 1,
            ..Default::default()
        }
    }

    fn book(contracts: Vec<(&str, ContractBook)>) -> UnderlyingBook {
        UnderlyingBook {
            spot: 100.0,
            contracts: contracts.into_iter().map(|(s, c)| (s.into(), c)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_tradeable_parity_violation_is_reported_with_its_dollar_edge() {
        let fair = 100.0 * (-0.02f64 * 0.5).exp() - 100.0 * (-0.05f64 * 0.5).exp();
        let mut b = book(vec![
            ("C100", quote(true, 100.0, 8.0, 8.2)),
            ("P100", quote(false, 100.0, 3.8, 4.0)),
        ]);
        let r = close(&ScoreConfig::default(), &mut b, END);
        let want = 100.0 * (8.0 - 4.0 - fair);
        assert_eq!(r.metadata["parity_count"], 1.0, "{:?}", r.metadata);
        assert_eq!(r.metadata["count"], 1.0);
        assert!(
            (r.raw_value - want).abs() < 1e-9,
            "{} vs {want}",
            r.raw_value
        );
        assert!((r.metadata["max_edge_usd"] - want).abs() < 1e-9);
        assert_eq!(r.metadata["worst_kind"], 1.0);
        assert_eq!(r.metadata["worst_strike_1"], 100.0);
        assert_eq!(r.metadata["worst_expiry"], 20_240_621.0);
        assert_eq!(b.mispricing.history.len(), 1, "the edge history advances");
    }

    #[test]
    fn a_violation_only_at_the_mids_or_on_stale_quotes_is_ignored() {
        let fair = 100.0 * (-0.02f64 * 0.5).exp() - 100.0 * (-0.05f64 * 0.5).exp();
        // C − P at the mids is fair + 0.50, but each leg's spread is a dollar wide.
        let c_mid = 5.0 + fair + 0.5;
        let mut b = book(vec![
            ("C100", quote(true, 100.0, c_mid - 0.5, c_mid + 0.5)),
            ("P100", quote(false, 100.0, 4.5, 5.5)),
        ]);
        let cfg = ScoreConfig::default();
        let r = close(&cfg, &mut b, END);
        assert_eq!(r.metadata["count"], 0.0, "{:?}", r.metadata);
        assert_eq!(r.raw_value, 0.0);
        // A tradeable violation whose put quote is older than the age limit is not counted.
        let mut stale_put = quote(false, 100.0, 3.8, 4.0);
        stale_put.last_seen =
            END - cfg.mispricing_max_quote_age_secs as i64 * MICROS_PER_SECOND - 1;
        let mut b = book(vec![
            ("C100", quote(true, 100.0, 8.0, 8.2)),
            ("P100", stale_put),
        ]);
        assert_eq!(close(&cfg, &mut b, END).metadata["count"], 0.0);
    }

    #[test]
    fn butterfly_and_calendar_violations_are_counted_by_kind() {
        let mut near = quote(true, 100.0, 5.0, 5.1);
        near.expiry = "2024-03-15".into();
        near.years = 0.2;
        near.iv = 0.45;
        let mut far = quote(true, 100.0, 4.5, 4.6);
        far.iv = 0.25;
        let mut b = book(vec![
            ("C095", quote(true, 95.0, 6.9, 7.0)),
            ("C100", far),
            ("C105", quote(true, 105.0, 1.4, 1.5)),
            ("N100", near),
        ]);
        let r = close(&ScoreConfig::default(), &mut b, END);
        assert_eq!(r.metadata["butterfly_count"], 1.0, "{:?}", r.metadata);
        assert_eq!(r.metadata["calendar_count"], 1.0, "{:?}", r.metadata);
        assert_eq!(r.metadata["parity_count"], 0.0);
        // Butterfly 2·4.50 − 7.00 − 1.50 = 0.50; calendar e^{−0.02·0.3}·5.00 − 4.60 ≈ 0.37.
        assert!((r.metadata["butterfly_edge_usd"] - 50.0).abs() < 1e-9);
        let cal = 100.0 * ((-0.02f64 * 0.3).exp() * 5.0 - 4.6);
        assert!((r.metadata["calendar_edge_usd"] - cal).abs() < 1e-9);
        assert_eq!(r.metadata["worst_kind"], 2.0);
        assert_eq!(
            [1, 2, 3].map(|i| r.metadata[&format!("worst_strike_{i}")]),
            [95.0, 100.0, 105.0]
        );
        assert_eq!(r.direction, "neutral", "no history yet");
    }

    #[test]
    fn a_sudden_edge_against_a_clean_history_reads_volatility() {
        let cfg = ScoreConfig::default();
        let clean = || {
            book(vec![
                ("C100", quote(true, 100.0, 3.0, 3.1)),
                ("P100", quote(false, 100.0, 1.5, 1.6)),
            ])
        };
        let mut state = MispricingState::default();
        for _ in 0..cfg.min_samples {
            let mut b = clean();
            b.mispricing = state;
            assert_eq!(close(&cfg, &mut b, END).metadata["count"], 0.0);
            state = b.mispricing;
        }
        let mut b = book(vec![
            ("C100", quote(true, 100.0, 8.0, 8.2)),
            ("P100", quote(false, 100.0, 3.8, 4.0)),
        ]);
        b.mispricing = state;
        let r = close(&cfg, &mut b, END);
        assert_eq!(r.direction, "volatility", "{r:?}");
        assert!(r.detail.contains("parity"), "{}", r.detail);
    }
}
