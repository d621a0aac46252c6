//! Silences: "send nothing matching this between these two instants", added from the CLI
//! (`optionflow silence add`) while a session runs. A silence is bounded in event time, so a
//! replay that loads the same silences mutes exactly the same alerts as the live run did.
//!
//! The file format ([`SilenceFile`]) is JSON with RFC 3339 times; reading and writing the file is
//! the pipeline's job, deciding with it is the dispatch operator's.

use super::matcher::Matcher;
use crate::config::Problems;
use chrono::{DateTime, SecondsFormat, Utc};
use optionflow_schemas::RiskDecision;
use serde::{Deserialize, Serialize};

/// One silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Silence {
    /// Short id, unique within the file (`s1`, `s2`, …).
    pub id: String,
    /// What it mutes.
    #[serde(rename = "match")]
    pub matcher: Matcher,
    /// First instant muted (event time, µs since the epoch).
    #[serde(with = "rfc3339")]
    pub starts_at: i64,
    /// First instant no longer muted.
    #[serde(with = "rfc3339")]
    pub ends_at: i64,
    /// Why, and who asked.
    #[serde(default)]
    pub comment: String,
}

impl Silence {
    /// Whether the silence mutes `d`.
    pub fn mutes(&self, d: &RiskDecision) -> bool {
        (self.starts_at..self.ends_at).contains(&d.event_time) && self.matcher.matches(d)
    }

    /// Whether the silence still mutes anything at or after `t`.
    pub fn active_after(&self, t: i64) -> bool {
        self.ends_at > t
    }
}

/// The silences file: `{"silences": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceFile {
    /// Every silence, expired ones included (they document what was muted).
    pub silences: Vec<Silence>,
}

impl SilenceFile {
    /// Parses and validates a file's text, naming every problem.
    pub fn parse(text: &str) -> Result<SilenceFile, String> {
        let file: SilenceFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut p = Problems::default();
        let mut ids = std::collections::BTreeSet::new();
        for s in &file.silences {
            let key = format!("silence {}", s.id);
            p.check(ids.insert(&s.id), &key, "the id is used twice");
            p.check(
                s.ends_at > s.starts_at,
                &key,
                "ends-at must be after starts-at",
            );
            s.matcher.validate(&mut p, &key);
        }
        p.finish().map_err(|e| e.0.join("; "))?;
        Ok(file)
    }

    /// The file's text (pretty JSON, one trailing newline).
    pub fn to_text(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("silences serialize");
        s.push('\n');
        s
    }

    /// An id not used yet: `s` followed by one more than the highest number in use.
    pub fn next_id(&self) -> String {
        let highest = self
            .silences
            .iter()
            .filter_map(|s| s.id.strip_prefix('s')?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        format!("s{}", highest + 1)
    }
}

/// Event times as RFC 3339 strings in the file (`2024-01-02T15:30:00Z`).
mod rfc3339 {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(micros: &i64, s: S) -> Result<S::Ok, S::Error> {
        match DateTime::<Utc>::from_timestamp_micros(*micros) {
            Some(t) => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            None => Err(serde::ser::Error::custom("time out of range")),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.timestamp_micros())
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not an RFC 3339 time: {e}")))
    }
}
