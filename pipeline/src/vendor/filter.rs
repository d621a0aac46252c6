//! Which contracts are in scope, decided before a request is spent: the expiry window and the
//! strike band become query parameters of the chain requests, and only expirations inside the
//! window are fetched at all; open interest and roots are checked on each row.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// `[polygon.filter]` / `[tradier.filter]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ContractFilter {
    /// Earliest expiry, in calendar days from today (0 keeps 0DTE).
    pub min_days_to_expiry: u32,
    /// Latest expiry, in calendar days from today.
    pub max_days_to_expiry: u32,
    /// Strikes within this fraction of spot: 0.25 keeps strikes from 75% to 125% of spot.
    pub moneyness_band: f64,
    /// Contracts with less open interest are skipped.
    pub min_open_interest: i64,
    /// Only these OCC roots (empty: every root). `SPXW` and `SPX` are distinct roots.
    pub include_roots: Vec<String>,
    /// Never these OCC roots (adjusted roots such as `GME1` are a common choice).
    pub exclude_roots: Vec<String>,
}

impl Default for ContractFilter {
    fn default() -> Self {
        Self {
            min_days_to_expiry: 0,
            max_days_to_expiry: 60,
            moneyness_band: 0.25,
            min_open_interest: 0,
            include_roots: Vec::new(),
            exclude_roots: Vec::new(),
        }
    }
}

/// Why a contract was left out (counted, never an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Excluded {
    /// Expiry outside the window.
    Expiry,
    /// Strike outside the band around spot.
    Moneyness,
    /// Open interest below the minimum.
    OpenInterest,
    /// Root not included, or excluded.
    Root,
}

impl ContractFilter {
    /// Every problem, keys relative to the section.
    pub fn validate(&self) -> Result<(), optionflow_operators::ConfigErrors> {
        let mut p = optionflow_operators::config::Problems::default();
        p.check(
            self.min_days_to_expiry <= self.max_days_to_expiry,
            "min-days-to-expiry",
            "must not exceed max-days-to-expiry",
        );
        p.check(
            self.moneyness_band > 0.0 && self.moneyness_band.is_finite(),
            "moneyness-band",
            "must be a positive fraction of spot",
        );
        p.check(
            self.min_open_interest >= 0,
            "min-open-interest",
            "must not be negative",
        );
        p.finish()
    }

    /// First and last expiry in scope, as seen on `today`.
    pub fn expiry_window(&self, today: NaiveDate) -> (NaiveDate, NaiveDate) {
        let days = |d: u32| today + chrono::Days::new(u64::from(d));
        (days(self.min_days_to_expiry), days(self.max_days_to_expiry))
    }

    /// Lowest and highest strike in scope around `spot`.
    pub fn strike_range(&self, spot: f64) -> (f64, f64) {
        (
            spot * (1.0 - self.moneyness_band).max(0.0),
            spot * (1.0 + self.moneyness_band),
        )
    }

    /// Whether a root is wanted.
    pub fn root_in_scope(&self, root: &str) -> bool {
        (self.include_roots.is_empty() || self.include_roots.iter().any(|r| r == root))
            && !self.exclude_roots.iter().any(|r| r == root)
    }

    /// Checks one contract; `spot` may be unknown (then the band is not applied).
    pub fn check(
        &self,
        today: NaiveDate,
        root: &str,
        expiry: NaiveDate,
        strike: f64,
        open_interest: i64,
        spot: Option<f64>,
    ) -> Result<(), Excluded> {
        let (first, last) = self.expiry_window(today);
        if expiry < first || expiry > last {
            return Err(Excluded::Expiry);
        }
        if let Some(spot) = spot.filter(|s| *s > 0.0) {
            let (lo, hi) = self.strike_range(spot);
            if strike < lo || strike > hi {
                return Err(Excluded::Moneyness);
            }
        }
        if open_interest < self.min_open_interest {
            return Err(Excluded::OpenInterest);
        }
        if !self.root_in_scope(root) {
            return Err(Excluded::Root);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn each_rule_excludes_for_its_reason() {
        let f = ContractFilter {
            min_days_to_expiry: 1,
            max_days_to_expiry: 30,
            moneyness_band: 0.1,
            min_open_interest: 10,
            include_roots: vec![],
            exclude_roots: vec!["GME1".into()],
        };
        let today = d("2024-01-02");
        let ok = |root, exp, k, oi| f.check(today, root, d(exp), k, oi, Some(100.0));
        assert_eq!(ok("GME", "2024-01-19", 100.0, 10), Ok(()));
        assert_eq!(ok("GME", "2024-01-02", 100.0, 10), Err(Excluded::Expiry));
        assert_eq!(ok("GME", "2024-02-02", 100.0, 10), Err(Excluded::Expiry));
        assert_eq!(ok("GME", "2024-01-19", 111.0, 10), Err(Excluded::Moneyness));
        assert_eq!(
            ok("GME", "2024-01-19", 100.0, 9),
            Err(Excluded::OpenInterest)
        );
        assert_eq!(ok("GME1", "2024-01-19", 100.0, 10), Err(Excluded::Root));
        assert_eq!(f.expiry_window(today), (d("2024-01-03"), d("2024-02-01")));
        let (lo, hi) = f.strike_range(100.0);
        assert!((lo - 90.0).abs() < 1e-9 && (hi - 110.0).abs() < 1e-9);
    }

    #[test]
    fn include_list_narrows_roots() {
        let f = ContractFilter {
            include_roots: vec!["SPXW".into()],
            ..Default::default()
        };
        assert!(f.root_in_scope("SPXW"));
        assert!(!f.root_in_scope("SPX"));
    }
}
