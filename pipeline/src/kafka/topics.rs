//! The topics of a deployment, and creating and listing them with the admin API.

use super::config::KafkaConfig;
use optionflow_schemas::topics::names;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// One topic of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicSpec {
    /// Name without the prefix.
    pub name: &'static str,
    /// Partitioned by underlying (`[kafka] partitions`), or a single partition read whole by a
    /// portfolio-wide stage.
    pub keyed: bool,
}

impl TopicSpec {
    /// Partitions this topic has under `cfg`.
    pub fn partitions(&self, cfg: &KafkaConfig) -> i32 {
        if self.keyed {
            cfg.partitions
        } else {
            1
        }
    }
}

const fn keyed(name: &'static str) -> TopicSpec {
    TopicSpec { name, keyed: true }
}
const fn single(name: &'static str) -> TopicSpec {
    TopicSpec { name, keyed: false }
}

/// `quotes.raw`: what sources write.
pub const RAW: TopicSpec = keyed(names::QUOTES_RAW);
/// `quotes.normalized`.
pub const NORMALIZED: TopicSpec = keyed(names::QUOTES_NORMALIZED);
/// `greeks`.
pub const GREEKS: TopicSpec = keyed(names::GREEKS);
/// `factors`: consensus corrects for every underlying at once, so it reads them all.
pub const FACTORS: TopicSpec = single(names::FACTORS);
/// `signals`: explain works per signal, so it scales by underlying again.
pub const SIGNALS: TopicSpec = keyed(names::SIGNALS);
/// `explanations`: the risk gate sees the whole portfolio.
pub const EXPLANATIONS: TopicSpec = single(names::EXPLANATIONS);
/// `decisions`: dispatch groups, dedupes and inhibits across underlyings.
pub const DECISIONS: TopicSpec = single(names::DECISIONS);
/// `alerts`: what dispatch sends, in order.
pub const ALERTS: TopicSpec = single(names::ALERTS);
/// `quotes.rejected`: every input a stage could not use, with the reason.
pub const REJECTED: TopicSpec = keyed(names::QUOTES_REJECTED);

/// Every data topic, in pipeline order.
pub const ALL: [TopicSpec; 9] = [
    RAW,
    NORMALIZED,
    GREEKS,
    FACTORS,
    SIGNALS,
    EXPLANATIONS,
    DECISIONS,
    ALERTS,
    REJECTED,
];

/// The topics consumed by a stage, whose dead letters go to `<topic>.dlq`.
pub const CONSUMED: [TopicSpec; 7] = [
    RAW,
    NORMALIZED,
    GREEKS,
    FACTORS,
    SIGNALS,
    EXPLANATIONS,
    DECISIONS,
];

/// The dead-letter topic of `topic`.
pub fn dlq(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// What `topics create` did with one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// Full name.
    pub name: String,
    /// Partitions asked for.
    pub partitions: i32,
    /// `false` when it already existed.
    pub new: bool,
}

/// A topic as the cluster reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Full name.
    pub name: String,
    /// Partitions.
    pub partitions: usize,
}

/// Admin failures.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The client could not be made (bad properties).
    #[error("kafka admin client: {0}")]
    Client(rdkafka::error::KafkaError),
    /// The request failed.
    #[error("creating topic {topic}: {error}")]
    Create {
        /// Topic.
        topic: String,
        /// Broker's answer.
        error: String,
    },
    /// Metadata could not be read.
    #[error("listing topics from {brokers}: {error}")]
    List {
        /// Brokers asked.
        brokers: String,
        /// Cause.
        error: rdkafka::error::KafkaError,
    },
}

/// Every topic with its partitions, replication and retention, plus the dead-letter topics;
/// existing ones are left as they are (idempotent).
pub async fn create_all(cfg: &KafkaConfig) -> Result<Vec<Created>, AdminError> {
    let admin: AdminClient<DefaultClientContext> =
        cfg.client_config().create().map_err(AdminError::Client)?;
    let retention = (cfg.retention_hours * 3_600_000).to_string();
    let mut wanted: Vec<(String, i32)> = ALL
        .iter()
        .map(|t| (cfg.topic(t.name), t.partitions(cfg)))
        .collect();
    wanted.extend(CONSUMED.iter().map(|t| (dlq(&cfg.topic(t.name)), 1)));
    let new: Vec<NewTopic<'_>> = wanted
        .iter()
        .map(|(name, partitions)| {
            NewTopic::new(name, *partitions, TopicReplication::Fixed(cfg.replication))
                .set("retention.ms", &retention)
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&new, &opts)
        .await
        .map_err(AdminError::Client)?;
    let mut out = Vec::new();
    for (res, (name, partitions)) in results.into_iter().zip(&wanted) {
        let new = match res {
            Ok(_) => true,
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => false,
            Err((topic, code)) => {
                return Err(AdminError::Create {
                    topic,
                    error: code.to_string(),
                })
            }
        };
        out.push(Created {
            name: name.clone(),
            partitions: *partitions,
            new,
        });
    }
    Ok(out)
}

/// [`create_all`], retried with backoff (1 s doubling to 30 s) while the cluster cannot be
/// reached, so a pipeline started before its brokers waits for them; a refusal from a broker
/// that answered (bad replication, authorization) is returned at once.
pub async fn create_all_retrying(cfg: &KafkaConfig) -> Result<Vec<Created>, AdminError> {
    let mut delay = Duration::from_secs(1);
    loop {
        match create_all(cfg).await {
            Err(AdminError::Client(e)) if is_unreachable(&e) => {
                metrics::counter!("optionflow_kafka_client_errors_total", "client" => "admin")
                    .increment(1);
                tracing::warn!(brokers = %cfg.brokers, error = %e, retry_in_secs = delay.as_secs(),
                    "kafka unreachable; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            other => return other,
        }
    }
}

fn is_unreachable(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::KafkaError;
    matches!(
        e,
        KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut)
            | KafkaError::AdminOp(RDKafkaErrorCode::BrokerTransportFailure)
            | KafkaError::AdminOp(RDKafkaErrorCode::AllBrokersDown)
            | KafkaError::AdminOp(RDKafkaErrorCode::RequestTimedOut)
    )
}

/// The topics of this deployment (its prefix) that exist, with their partition counts.
pub async fn list(cfg: &KafkaConfig) -> Result<Vec<Listed>, AdminError> {
    let admin: AdminClient<DefaultClientContext> =
        cfg.client_config().create().map_err(AdminError::Client)?;
    let brokers = cfg.brokers.clone();
    let prefix = cfg.topic_prefix.clone();
    let topics = tokio::task::spawn_blocking(move || {
        admin
            .inner()
            .fetch_metadata(None, Duration::from_secs(10))
            .map(|md| {
                md.topics()
                    .iter()
                    .filter(|t| t.name().starts_with(&prefix) && !t.name().starts_with("__"))
                    .map(|t| Listed {
                        name: t.name().to_string(),
                        partitions: t.partitions().len(),
                    })
                    .collect::<Vec<_>>()
            })
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "the metadata request task failed");
        AdminError::List {
            brokers: brokers.clone(),
            error: rdkafka::error::KafkaError::Canceled,
        }
    })?
    .map_err(|error| AdminError::List { brokers, error })?;
    let mut topics = topics;
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(topics)
}
