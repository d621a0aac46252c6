//! Label matchers, in the spirit of Prometheus Alertmanager's: which decisions a route, a silence
//! or an inhibition rule applies to. A decision's labels are its underlying, sector, direction
//! and composite score.

use crate::config::Problems;
use optionflow_schemas::RiskDecision;
use serde::{Deserialize, Serialize};

/// Which decisions something applies to. Every list left empty matches anything; a decision
/// matches when it passes every non-empty condition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Matcher {
    /// Underlyings to match (`["GME", "AMC"]`).
    pub underlying: Vec<String>,
    /// Underlyings never matched (e.g. the index ETFs, to reach only single names).
    pub not_underlying: Vec<String>,
    /// Sectors to match.
    pub sector: Vec<String>,
    /// Sectors never matched.
    pub not_sector: Vec<String>,
    /// Directions to match: `bullish`, `bearish`, `volatility`.
    pub direction: Vec<String>,
    /// Lowest composite score matched (0–100).
    pub min_composite: Option<f64>,
}

/// The directions a signal can have.
const DIRECTIONS: [&str; 3] = ["bullish", "bearish", "volatility"];

impl Matcher {
    /// Whether `d` passes every condition.
    pub fn matches(&self, d: &RiskDecision) -> bool {
        let listed = |list: &[String], v: &str| list.iter().any(|x| x == v);
        (self.underlying.is_empty() || listed(&self.underlying, &d.underlying))
            && !listed(&self.not_underlying, &d.underlying)
            && (self.sector.is_empty() || listed(&self.sector, &d.sector))
            && !listed(&self.not_sector, &d.sector)
            && (self.direction.is_empty() || listed(&self.direction, &d.direction))
            && self.min_composite.is_none_or(|m| d.composite >= m)
    }

    /// Records every problem under `key`.
    pub fn validate(&self, p: &mut Problems, key: &str) {
        for d in &self.direction {
            p.check(
                DIRECTIONS.contains(&d.as_str()),
                &format!("{key}.direction"),
                format!("{d:?} is not one of {}", DIRECTIONS.join(", ")),
            );
        }
        if let Some(m) = self.min_composite {
            p.check(
                (0.0..=100.0).contains(&m),
                &format!("{key}.min-composite"),
                format!("{m} is outside 0–100"),
            );
        }
    }

    /// The conditions in one line, for reasons and listings (`underlying=GME direction=bullish`).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (name, list) in [
            ("underlying", &self.underlying),
            ("underlying!", &self.not_underlying),
            ("sector", &self.sector),
            ("sector!", &self.not_sector),
            ("direction", &self.direction),
        ] {
            if !list.is_empty() {
                parts.push(format!("{name}={}", list.join(",")));
            }
        }
        if let Some(m) = self.min_composite {
            parts.push(format!("composite>={m}"));
        }
        if parts.is_empty() {
            "everything".to_string()
        } else {
            parts.join(" ")
        }
    }
}

/// A label alerts are grouped and cooled down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Label {
    /// The underlying.
    Underlying,
    /// The sector.
    Sector,
    /// The direction.
    Direction,
}

impl Label {
    /// The decision's value of this label.
    pub fn value(self, d: &RiskDecision) -> &str {
        match self {
            Label::Underlying => &d.underlying,
            Label::Sector => &d.sector,
            Label::Direction => &d.direction,
        }
    }
}

/// The key a decision falls under for `labels`: their values joined (`GME/bullish`), or `*`
/// when there are none (one group for the whole route).
pub fn group_key(labels: &[Label], d: &RiskDecision) -> String {
    if labels.is_empty() {
        return "*".to_string();
    }
    labels
        .iter()
        .map(|l| l.value(d))
        .collect::<Vec<_>>()
        .join("/")
}
