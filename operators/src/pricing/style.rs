//! Exercise and settlement style of a listed option, from its OCC root.
//!
//! US equity and ETF options are American and physically settled. The broad cash-settled index
//! options are European; [`EUROPEAN_ROOTS`] lists them. (OEX, the S&P 100 American index
//! option, is the exception that shows why a list beats a rule.)
//!
//! AM settlement: the standard monthly SPX, NDX, RUT and DJX options stop trading the day before
//! expiry and settle on the special opening quotation of the expiry date, and so do VIX options,
//! whose expiry is a Wednesday. Their weekly and PM-settled siblings (SPXW, NDXP, RUTW, VIXW,
//! XSP, …) settle on the close. The rule implemented: [`is_am_settled`] is true for the roots
//! SPX, NDX, RUT and DJX when the expiry is the third Friday of its month, and for VIX on any
//! Wednesday — VIX expires on the Wednesday 30 days before the following month's SPX expiry,
//! a date the symbol already carries, so the weekday alone tells the AM monthly from anything
//! else. A Thursday expiry (the exchange moves an expiry forward when that Friday is a holiday)
//! is also treated as AM-settled for the four index roots when the following day is the third
//! Friday.

use chrono::{Datelike, Duration, NaiveDate, Weekday};

/// The cash-settled index roots that are European (from the Cboe and Nasdaq product
/// specifications): S&P 500 (SPX, SPXW, SPXPM, and the mini XSP), Nasdaq-100 (NDX, NDXP, and
/// the mini XND), Russell 2000 (RUT, RUTW, and the mini MRUT), the Cboe Volatility Index (VIX,
/// VIXW), Dow Jones (DJX), S&P 100 European-style (XEO), and MSCI EAFE and Emerging Markets
/// (MXEA, MXEF).
pub const EUROPEAN_ROOTS: &[&str] = &[
    "SPX", "SPXW", "SPXPM", "XSP", "NDX", "NDXP", "XND", "RUT", "RUTW", "MRUT", "VIX", "VIXW",
    "DJX", "XEO", "MXEA", "MXEF",
];

/// Whether an option may be exercised before expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExerciseStyle {
    /// Exercise at expiry only (the cash-settled indexes).
    European,
    /// Exercise any day up to expiry (equities and ETFs).
    American,
}

impl ExerciseStyle {
    /// The style of an OCC root: European for [`EUROPEAN_ROOTS`], American otherwise. An
    /// adjusted root (`SPX1`) keeps its base root's style.
    pub fn for_root(root: &str) -> ExerciseStyle {
        if EUROPEAN_ROOTS.contains(&base_root(root)) {
            ExerciseStyle::European
        } else {
            ExerciseStyle::American
        }
    }

    /// `"european"` / `"american"`, as the greeks events spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ExerciseStyle::European => "european",
            ExerciseStyle::American => "american",
        }
    }
}

/// An OCC root without the digit an adjustment appends.
fn base_root(root: &str) -> &str {
    root.trim_end_matches(|c: char| c.is_ascii_digit())
}

/// Whether the third Friday of the month falls on `date`.
fn is_third_friday(date: NaiveDate) -> bool {
    date.weekday() == Weekday::Fri && (15..=21).contains(&date.day())
}

/// Whether the option settles on the opening print of its expiry date (AM settlement) rather
/// than on the close; see the module docs for the rule.
pub fn is_am_settled(root: &str, expiry: NaiveDate) -> bool {
    match base_root(root) {
        "SPX" | "NDX" | "RUT" | "DJX" => {
            is_third_friday(expiry)
                || (expiry.weekday() == Weekday::Thu && is_third_friday(expiry + Duration::days(1)))
        }
        "VIX" => expiry.weekday() == Weekday::Wed,
        _ => false,
    }
}
