//! The ScyllaDB state store (`[state] kind = "scylla"`): migrations, checkpoints, the delivery
//! ledger, and the query tables the outputs project into ([`tables`]).
//!
//! Every statement is prepared once and bound (never literals), with the configured
//! consistency; the driver's default policy is token-aware, so each request goes to a replica
//! of its partition.

pub mod config;
pub mod migrate;
pub mod tables;
pub mod writer;

pub use config::{ScyllaConfig, StateKind};
pub use tables::{OutputTable, Projector, Row};
pub use writer::TableWriter;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::prepared::PreparedStatement;
use std::time::Duration;

/// What can go wrong talking to ScyllaDB.
#[derive(Debug, thiserror::Error)]
pub enum ScyllaError {
    /// No node could be reached.
    #[error("connecting to ScyllaDB at {nodes}: {message}")]
    Connect {
        /// Nodes tried.
        nodes: String,
        /// Driver's message.
        message: String,
    },
    /// A statement failed.
    #[error("ScyllaDB {what}: {message}")]
    Query {
        /// What was being done.
        what: String,
        /// Driver's message.
        message: String,
    },
    /// A migration file is malformed.
    #[error("migration {0}")]
    Migration(String),
}

impl ScyllaError {
    fn query(what: impl Into<String>) -> impl FnOnce(String) -> Self {
        let what = what.into();
        move |message| Self::Query { what, message }
    }
}

/// A connected session with the statements optionflow uses, prepared.
pub struct ScyllaState {
    session: Session,
    load_partition: PreparedStatement,
    save_partition: PreparedStatement,
    load_session: PreparedStatement,
    save_session: PreparedStatement,
    delivered: PreparedStatement,
    record_delivery: PreparedStatement,
    tables: tables::TableStatements,
}

/// Prepares statements on a session with the configured consistency and page size.
struct Preparer<'a> {
    session: &'a Session,
    keyspace: &'a str,
    consistency: scylla::statement::Consistency,
}

impl Preparer<'_> {
    async fn prepare(&self, cql: String) -> Result<PreparedStatement, ScyllaError> {
        let mut p = self
            .session
            .prepare(cql.clone())
            .await
            .map_err(|e| ScyllaError::query(format!("preparing {cql}"))(e.to_string()))?;
        p.set_consistency(self.consistency);
        p.set_page_size(tables::PAGE_SIZE);
        Ok(p)
    }
}

impl ScyllaState {
    /// Connects, applies the migrations, and prepares the statements.
    pub async fn connect(cfg: &ScyllaConfig) -> Result<ScyllaState, ScyllaError> {
        let session = connect_session(cfg).await?;
        migrate::apply(&session, cfg).await?;
        let ks = &cfg.keyspace;
        let db = Preparer {
            session: &session,
            keyspace: ks,
            consistency: cfg.consistency.driver(),
        };
        Ok(ScyllaState {
            load_partition: db
                .prepare(format!(
                    "SELECT state FROM {ks}.partition_checkpoints WHERE owner = ? AND partition = ?"
                ))
                .await?,
            save_partition: db.prepare(format!(
                "INSERT INTO {ks}.partition_checkpoints (owner, partition, next_offset, state) VALUES (?, ?, ?, ?)"
            ))
            .await?,
            load_session: db
                .prepare(format!(
                    "SELECT state FROM {ks}.session_checkpoints WHERE session = ?"
                ))
                .await?,
            save_session: db
                .prepare(format!(
                    "INSERT INTO {ks}.session_checkpoints (session, id, state) VALUES (?, ?, ?)"
                ))
                .await?,
            delivered: db
                .prepare(format!(
                    "SELECT channel FROM {ks}.deliveries WHERE alert_id = ?"
                ))
                .await?,
            record_delivery: db.prepare(format!(
                "INSERT INTO {ks}.deliveries (alert_id, channel, status, attempts, error, at) VALUES (?, ?, ?, ?, ?, ?)"
            ))
            .await?,
            tables: tables::TableStatements::prepare(&db).await?,
            session,
        })
    }

    /// The stored checkpoint of `owner`/`partition`.
    pub async fn load_partition_checkpoint(
        &self,
        owner: &str,
        partition: i32,
    ) -> Result<Option<Vec<u8>>, ScyllaError> {
        self.first_blob(
            &self.load_partition,
            (owner, partition),
            "loading a checkpoint",
        )
        .await
    }

    /// Upserts the checkpoint of `owner`/`partition`.
    pub async fn save_partition_checkpoint(
        &self,
        owner: &str,
        partition: i32,
        next_offset: i64,
        state: &[u8],
    ) -> Result<(), ScyllaError> {
        self.session
            .execute_unpaged(&self.save_partition, (owner, partition, next_offset, state))
            .await
            .map(|_| ())
            .map_err(|e| ScyllaError::query("saving a checkpoint")(e.to_string()))
    }

    /// The latest embedded-runtime checkpoint of `session`.
    pub async fn load_session_checkpoint(
        &self,
        session: &str,
    ) -> Result<Option<Vec<u8>>, ScyllaError> {
        self.first_blob(&self.load_session, (session,), "loading a checkpoint")
            .await
    }

    /// Upserts the embedded-runtime checkpoint of `session`.
    pub async fn save_session_checkpoint(
        &self,
        session: &str,
        id: u64,
        state: &[u8],
    ) -> Result<(), ScyllaError> {
        self.session
            .execute_unpaged(&self.save_session, (session, id as i64, state))
            .await
            .map(|_| ())
            .map_err(|e| ScyllaError::query("saving a checkpoint")(e.to_string()))
    }

    /// Channels `alert_id` has been delivered to.
    pub async fn delivered_channels(&self, alert_id: &str) -> Result<Vec<String>, ScyllaError> {
        let what = "reading the delivery ledger";
        let rows = self
            .session
            .execute_unpaged(&self.delivered, (alert_id,))
            .await
            .map_err(|e| ScyllaError::query(what)(e.to_string()))?
            .into_rows_result()
            .map_err(|e| ScyllaError::query(what)(e.to_string()))?;
        rows.rows::<(String,)>()
            .map_err(|e| ScyllaError::query(what)(e.to_string()))?
            .map(|r| {
                r.map(|(c,)| c)
                    .map_err(|e| ScyllaError::query(what)(e.to_string()))
            })
            .collect()
    }

    /// Records one delivery outcome in the ledger.
    pub async fn record_delivery(
        &self,
        entry: &crate::delivery::ledger::LedgerEntry,
    ) -> Result<(), ScyllaError> {
        self.session
            .execute_unpaged(
                &self.record_delivery,
                (
                    entry.alert_id.as_str(),
                    entry.channel.as_str(),
                    entry.status.as_str(),
                    entry.attempts as i32,
                    entry.error.as_deref().unwrap_or(""),
                    entry.at.as_str(),
                ),
            )
            .await
            .map(|_| ())
            .map_err(|e| ScyllaError::query("recording a delivery")(e.to_string()))
    }

    async fn first_blob(
        &self,
        stmt: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
        what: &str,
    ) -> Result<Option<Vec<u8>>, ScyllaError> {
        let rows = self
            .session
            .execute_unpaged(stmt, values)
            .await
            .map_err(|e| ScyllaError::query(what)(e.to_string()))?
            .into_rows_result()
            .map_err(|e| ScyllaError::query(what)(e.to_string()))?;
        rows.maybe_first_row::<(Vec<u8>,)>()
            .map(|r| r.map(|(b,)| b))
            .map_err(|e| ScyllaError::query(what)(e.to_string()))
    }
}

/// Opens a session on `[scylla] nodes`, retrying with backoff for `connect-timeout-secs`.
pub async fn connect_session(cfg: &ScyllaConfig) -> Result<Session, ScyllaError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(cfg.connect_timeout_secs);
    let mut delay = Duration::from_millis(200);
    loop {
        let built = SessionBuilder::new()
            .known_nodes(&cfg.nodes)
            // Token-aware routing needs the schema metadata; in-memory CQL servers used in
            // tests serve neither it nor schema agreement.
            .fetch_schema_metadata(cfg.schema_metadata)
            .auto_await_schema_agreement(cfg.schema_metadata)
            .connection_timeout(Duration::from_secs(5))
            .build()
            .await;
        match built {
            Ok(s) => return Ok(s),
            Err(e) if tokio::time::Instant::now() + delay < deadline => {
                tracing::warn!(nodes = %cfg.nodes.join(","), error = %e, retry_in_ms = delay.as_millis() as u64, "ScyllaDB unreachable; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                return Err(ScyllaError::Connect {
                    nodes: cfg.nodes.join(","),
                    message: e.to_string(),
                })
            }
        }
    }
}
