//! The `[bus]`, `[kafka]` sections: which transport joins the stages, and how to reach Kafka.

use optionflow_operators::config::Problems;
use optionflow_operators::ConfigErrors;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What joins the stages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BusKind {
    /// Bounded channels inside one process (the default).
    #[default]
    Embedded,
    /// Kafka topics: stages are consumer-group members and may run in separate processes.
    Kafka,
}

/// The `[bus]` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct BusConfig {
    /// `embedded` or `kafka`.
    pub kind: BusKind,
}

/// The `[kafka]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port[,host:port…]`.
    pub brokers: String,
    /// Partitions of the per-underlying topics (`quotes.raw`, `quotes.normalized`, `greeks`,
    /// `signals`, `quotes.rejected`): the most copies of normalize, greeks, score or explain
    /// that can share the work. The portfolio-wide topics (`factors`, `explanations`,
    /// `decisions`, `alerts`) have one partition, read by one consensus, risk-gate and dispatch.
    pub partitions: i32,
    /// Replication factor of every topic.
    pub replication: i32,
    /// Retention of every topic, hours (`retention.ms`); a stage further behind than this loses
    /// input, so keep it well above the longest outage you plan for.
    pub retention_hours: u64,
    /// Put in front of every topic name (e.g. `prod.`), so several deployments share a cluster.
    pub topic_prefix: String,
    /// Consumer groups are `<group-prefix>-<stage>`.
    pub group_prefix: String,
    /// `session.timeout.ms` of the consumers: how long a dead member keeps its partitions.
    pub session_timeout_ms: u64,
    /// Extra librdkafka properties for every client (e.g. `security.protocol`), applied last.
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            partitions: 4,
            replication: 1,
            retention_hours: 7 * 24,
            topic_prefix: String::new(),
            group_prefix: "optionflow".into(),
            session_timeout_ms: 10_000,
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// Reports every problem at once, keys relative to `[kafka]`.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut p = Problems::default();
        p.check(
            !self.brokers.trim().is_empty()
                && self.brokers.split(',').all(|b| {
                    b.trim()
                        .rsplit_once(':')
                        .is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok())
                }),
            "brokers",
            format!("{:?} is not a list of host:port", self.brokers),
        );
        p.check(
            (1..=1024).contains(&self.partitions),
            "partitions",
            "must be between 1 and 1024",
        );
        p.check(
            (1..=16).contains(&self.replication),
            "replication",
            "must be between 1 and 16",
        );
        p.check(
            self.retention_hours >= 1,
            "retention-hours",
            "must be at least 1",
        );
        p.check(
            self.session_timeout_ms >= 1000,
            "session-timeout-ms",
            "must be at least 1000",
        );
        p.check(
            self.topic_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
            "topic-prefix",
            "may hold only letters, digits, '.', '_' and '-'",
        );
        p.check(
            !self.group_prefix.is_empty(),
            "group-prefix",
            "must not be empty",
        );
        p.finish()
    }

    /// The client settings every producer, consumer and admin client starts from.
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    /// A topic's full name.
    pub fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.topic_prefix)
    }
}
