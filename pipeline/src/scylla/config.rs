//! The `[state]` and `[scylla]` sections.

use optionflow_operators::config::Problems;
use optionflow_operators::ConfigErrors;
use serde::{Deserialize, Serialize};

/// Where operator state is checkpointed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StateKind {
    /// Files under the data directory (the default).
    #[default]
    Embedded,
    /// ScyllaDB (or Cassandra), `[scylla]`.
    Scylla,
}

/// The `[state]` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct StateConfig {
    /// `embedded` or `scylla`.
    pub kind: StateKind,
}

/// Consistency of every statement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsistencyLevel {
    /// One replica.
    One,
    /// A quorum of all replicas.
    Quorum,
    /// A quorum in the local datacenter (the default).
    #[default]
    LocalQuorum,
    /// Every replica.
    All,
}

impl ConsistencyLevel {
    /// The driver's value.
    pub fn driver(self) -> scylla::statement::Consistency {
        use scylla::statement::Consistency;
        match self {
            Self::One => Consistency::One,
            Self::Quorum => Consistency::Quorum,
            Self::LocalQuorum => Consistency::LocalQuorum,
            Self::All => Consistency::All,
        }
    }
}

/// The `[scylla]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ScyllaConfig {
    /// Contact points, `host:port`.
    pub nodes: Vec<String>,
    /// Keyspace holding every table (created by the migrations).
    pub keyspace: String,
    /// Replication factor of the keyspace when the migrations create it.
    pub replication_factor: u32,
    /// Consistency of every read and write.
    pub consistency: ConsistencyLevel,
    /// How long to keep retrying an unreachable cluster at start-up.
    pub connect_timeout_secs: u64,
    /// Read the cluster's schema and token metadata, which token-aware routing needs. Only
    /// for CQL servers that do not serve it (the in-memory one in the tests) set it to false.
    pub schema_metadata: bool,
}

impl Default for ScyllaConfig {
    fn default() -> Self {
        Self {
            nodes: vec!["127.0.0.1:9042".into()],
            keyspace: "optionflow".into(),
            replication_factor: 1,
            consistency: ConsistencyLevel::LocalQuorum,
            connect_timeout_secs: 60,
            schema_metadata: true,
        }
    }
}

impl ScyllaConfig {
    /// Reports every problem at once, keys relative to `[scylla]`.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut p = Problems::default();
        p.check(
            !self.nodes.is_empty(),
            "nodes",
            "must name at least one node",
        );
        for n in &self.nodes {
            p.check(
                n.rsplit_once(':')
                    .is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok()),
                "nodes",
                format!("{n:?} is not host:port"),
            );
        }
        p.check(
            !self.keyspace.is_empty()
                && self.keyspace.len() <= 48
                && self
                    .keyspace
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !self.keyspace.starts_with(|c: char| c.is_ascii_digit()),
            "keyspace",
            "must be 1–48 letters, digits or '_', not starting with a digit",
        );
        p.check(
            (1..=16).contains(&self.replication_factor),
            "replication-factor",
            "must be between 1 and 16",
        );
        p.check(
            self.connect_timeout_secs >= 1,
            "connect-timeout-secs",
            "must be at least 1",
        );
        p.finish()
    }
}
