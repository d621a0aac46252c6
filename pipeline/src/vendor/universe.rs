//! The underlyings a vendor source covers, with their sectors (for the risk gate's sector cap).

use optionflow_schemas::UnderlyingTick;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `[universe]` section: what the vendor sources watch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Universe {
    /// Underlying tickers, e.g. `["SPY", "QQQ", "AAPL"]`.
    pub underlyings: Vec<String>,
    /// Sector of each underlying (GICS-style names), e.g. `{ AAPL = "Information Technology" }`.
    pub sectors: BTreeMap<String, String>,
}

impl Universe {
    /// Every problem, keys relative to `[universe]`.
    pub fn validate(&self) -> Result<(), optionflow_operators::ConfigErrors> {
        let mut p = optionflow_operators::config::Problems::default();
        let mut seen = std::collections::BTreeSet::new();
        for u in &self.underlyings {
            let ok = !u.is_empty()
                && u.len() <= 10
                && u.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '.');
            p.check(
                ok,
                "underlyings",
                format!("{u:?} is not a ticker (A-Z, 0-9, '.')"),
            );
            p.check(
                seen.insert(u),
                "underlyings",
                format!("{u} is listed twice"),
            );
        }
        for k in self.sectors.keys() {
            p.check(
                self.underlyings.contains(k),
                "sectors",
                format!("{k} is not in underlyings"),
            );
        }
        p.finish()
    }

    /// Whether nothing is watched.
    pub fn is_empty(&self) -> bool {
        self.underlyings.is_empty()
    }

    /// The tickers, in configured order.
    pub fn names(&self) -> Vec<String> {
        self.underlyings.clone()
    }

    /// The sector of `underlying`, if configured.
    pub fn sector(&self, underlying: &str) -> Option<&str> {
        self.sectors.get(underlying).map(String::as_str)
    }

    /// An underlying tick (id and time are stamped with its batch).
    pub fn tick(&self, underlying: &str, vendor: &str, price: f64, volume: i64) -> UnderlyingTick {
        UnderlyingTick {
            event_id: Default::default(),
            event_time: 0,
            underlying: underlying.into(),
            source: vendor.into(),
            price,
            volume,
            sector: self.sector(underlying).map(Into::into),
        }
    }
}
