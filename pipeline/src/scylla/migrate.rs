//! Versioned CQL migrations from `pipeline/migrations/`, applied in order and recorded in
//! `schema_version`, so running them again changes nothing.

use super::{ScyllaConfig, ScyllaError};
use scylla::client::session::Session;

/// Every migration, by version: `(version, name, CQL)`.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "0001_state",
        include_str!("../../migrations/0001_state.cql"),
    ),
    (
        2,
        "0002_history",
        include_str!("../../migrations/0002_history.cql"),
    ),
];

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Versions applied now.
    pub applied: Vec<i32>,
    /// The schema version afterwards.
    pub version: i32,
}

/// The statements of a migration file: `;`-separated, `--` comments dropped, `{keyspace}`
/// replaced.
pub fn statements(cql: &str, keyspace: &str) -> Vec<String> {
    let text: String = cql
        .lines()
        .map(|l| l.split_once("--").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .map(|s| s.replace("{keyspace}", keyspace))
        .collect()
}

/// Creates the keyspace and the version table if missing, then applies every migration newer
/// than the recorded version.
pub async fn apply(session: &Session, cfg: &ScyllaConfig) -> Result<Applied, ScyllaError> {
    let ks = &cfg.keyspace;
    let run = |cql: String| async move {
        session
            .query_unpaged(cql.clone(), ())
            .await
            .map(|_| ())
            .map_err(|e| ScyllaError::Query {
                what: format!("migrating ({cql})"),
                message: e.to_string(),
            })
    };
    run(format!(
        "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {}}}",
        cfg.replication_factor
    ))
    .await?;
    run(format!(
        "CREATE TABLE IF NOT EXISTS {ks}.schema_version (version int PRIMARY KEY, name text, applied_at bigint)"
    ))
    .await?;
    let what = "reading schema_version";
    let rows = session
        .query_unpaged(format!("SELECT version FROM {ks}.schema_version"), ())
        .await
        .map_err(|e| ScyllaError::query(what)(e.to_string()))?
        .into_rows_result()
        .map_err(|e| ScyllaError::query(what)(e.to_string()))?;
    let mut current = 0;
    for row in rows
        .rows::<(i32,)>()
        .map_err(|e| ScyllaError::query(what)(e.to_string()))?
    {
        let (v,) = row.map_err(|e| ScyllaError::query(what)(e.to_string()))?;
        current = current.max(v);
    }
    let mut applied = Vec::new();
    for (version, name, cql) in MIGRATIONS {
        if *version <= current {
            continue;
        }
        for stmt in statements(cql, ks) {
            run(stmt).await?;
        }
        let now = chrono::Utc::now().timestamp_micros();
        session
            .query_unpaged(
                format!(
                    "INSERT INTO {ks}.schema_version (version, name, applied_at) VALUES (?, ?, ?)"
                ),
                (*version, *name, now),
            )
            .await
            .map_err(|e| ScyllaError::query("recording a migration")(e.to_string()))?;
        tracing::info!(version, name, keyspace = %ks, "applied migration");
        applied.push(*version);
        current = *version;
    }
    Ok(Applied {
        applied,
        version: current,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_split_and_the_keyspace_filled_in() {
        let s = statements(
            "-- a comment\nCREATE TABLE {keyspace}.t (a int PRIMARY KEY); -- x\n\n",
            "ks",
        );
        assert_eq!(s, vec!["CREATE TABLE ks.t (a int PRIMARY KEY)".to_string()]);
        for (_, _, cql) in MIGRATIONS {
            assert!(statements(cql, "k").iter().all(|s| s.contains("k.")));
        }
    }
}
