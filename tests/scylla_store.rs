//! The ScyllaDB state store against a CQL server: `kassandra`, in memory, in this process (no
//! ScyllaDB can be installed here). With `OPTIONFLOW_SCYLLA=host:port` the same tests run
//! against a real cluster instead.

use optionflow_pipeline::kafka::checkpoint::{CheckpointStore, PartitionCheckpoint};
use optionflow_pipeline::scylla::tables::{FactorRow, IvRow, PositionRow, RvRow};
use optionflow_pipeline::scylla::{migrate, OutputTable, Row, ScyllaConfig, ScyllaState};
use std::sync::Arc;

mod common;
use common::cql_server;

fn config(addr: &str, keyspace: &str) -> ScyllaConfig {
    ScyllaConfig {
        nodes: vec![addr.to_string()],
        keyspace: keyspace.to_string(),
        consistency: optionflow_pipeline::scylla::config::ConsistencyLevel::One,
        connect_timeout_secs: 10,
        // kassandra serves no schema metadata; a real cluster does.
        schema_metadata: std::env::var("OPTIONFLOW_SCYLLA").is_ok(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_and_record_their_version() {
    let cfg = config(&cql_server(), "mig");
    let session = optionflow_pipeline::scylla::connect_session(&cfg)
        .await
        .unwrap();
    let first = migrate::apply(&session, &cfg).await.unwrap();
    assert_eq!(first.applied, vec![1, 2]);
    assert_eq!(first.version, 2);
    let again = migrate::apply(&session, &cfg).await.unwrap();
    assert!(again.applied.is_empty(), "a second run applies nothing");
    assert_eq!(again.version, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_checkpoint_round_trips_and_the_latest_wins() {
    let db = Arc::new(
        ScyllaState::connect(&config(&cql_server(), "ckpt"))
            .await
            .unwrap(),
    );
    let store = CheckpointStore::Scylla(db);
    assert_eq!(store.load("greeks", 0).await.unwrap(), None);
    let mut c = PartitionCheckpoint {
        next_offset: 41,
        state: vec![1, 2, 3],
        event_time: 7,
        ..Default::default()
    };
    store.save("greeks", 0, &c).await.unwrap();
    c.next_offset = 42;
    c.files.insert("alerts.jsonl".into(), 99);
    store.save("greeks", 0, &c).await.unwrap();
    store
        .save("greeks", 1, &PartitionCheckpoint::default())
        .await
        .unwrap();
    assert_eq!(store.load("greeks", 0).await.unwrap(), Some(c));
    assert_eq!(
        store.load("greeks", 1).await.unwrap(),
        Some(PartitionCheckpoint::default())
    );
    assert_eq!(store.load("score", 0).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_ledger_and_output_upserts_are_idempotent() {
    let db = ScyllaState::connect(&config(&cql_server(), "ledger"))
        .await
        .unwrap();
    for _ in 0..2 {
        db.write_rows(vec![Row::Output {
            table: OutputTable::Alerts,
            underlying: "GME".into(),
            event_time: 1_704_205_800_000_000,
            event_id: "alert-1".into(),
            body: "{}".into(),
        }])
        .await
        .unwrap();
    }
    let rows = db
        .outputs(OutputTable::Alerts, "GME", "2024-01-02")
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![("alert-1".to_string(), "{}".to_string())],
        "one row however often upserted"
    );
    assert!(db.delivered_channels("alert-1").await.unwrap().is_empty());
    let entry = optionflow_pipeline::delivery::ledger::LedgerEntry {
        alert_id: "alert-1".into(),
        channel: "webhook".into(),
        status: optionflow_pipeline::delivery::ledger::Status::Delivered,
        attempts: 1,
        error: None,
        at: "2024-01-02T14:30:00Z".into(),
    };
    db.record_delivery(&entry).await.unwrap();
    db.record_delivery(&entry).await.unwrap();
    assert_eq!(
        db.delivered_channels("alert-1").await.unwrap(),
        vec!["webhook".to_string()]
    );
}

/// 2024-01-02 14:30 UTC, µs.
const T0: i64 = 1_704_205_800_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_table_reads_back_what_was_upserted_once() {
    let db = ScyllaState::connect(&config(&cql_server(), "tables"))
        .await
        .unwrap();
    let iv = |contract: &str, minute: i64, iv: f64| IvRow {
        underlying: "GME".into(),
        contract: contract.into(),
        minute: T0 + minute * 60_000_000,
        event_time: T0 + minute * 60_000_000 + 59_000_000,
        event_id: format!("g-{contract}-{minute}"),
        iv,
        delta: 0.5,
        mid: 1.25,
        spot: 20.0,
    };
    let factor = FactorRow {
        underlying: "GME".into(),
        factor: "iv_zscore".into(),
        event_time: T0,
        event_id: "f-1".into(),
        raw_value: 1.2,
        zscore: 3.5,
        score: 91.0,
        direction: "bullish".into(),
        samples: 40,
        detail: "wing IV 3.5σ above its median".into(),
    };
    let rv = RvRow {
        underlying: "GME".into(),
        day: "2024-01-02".into(),
        event_time: T0,
        estimators: [("rv_yang_zhang_20".to_string(), 0.85)].into(),
    };
    let position = PositionRow {
        underlying: "GME".into(),
        signal_id: "s-1".into(),
        decision_id: "d-1".into(),
        event_time: T0,
        sector: "Consumer".into(),
        direction: "bullish".into(),
        composite: 93.0,
        open_signals: 1,
        equity: 100_000.0,
        drawdown: 0.0,
    };
    let rows = vec![
        Row::Iv(iv("GME240119C00020000", 0, 0.8)),
        Row::Iv(iv("GME240119C00020000", 1, 0.9)),
        Row::Factor(factor.clone()),
        Row::Rv(rv.clone()),
        Row::Position(position.clone()),
        Row::Output {
            table: OutputTable::Explanations,
            underlying: "GME".into(),
            event_time: T0,
            event_id: "e-1".into(),
            body: "{\"headline\":\"GME\"}".into(),
        },
        Row::Outcome {
            underlying: "GME".into(),
            signal_id: "s-1".into(),
            horizon_secs: 3600,
            event_time: T0,
            body: "{\"hit\":true}".into(),
        },
    ];
    // Twice, as a redelivery would: still one row each.
    db.write_rows(rows.clone()).await.unwrap();
    db.write_rows(rows).await.unwrap();
    let ivs = db.iv_history("GME", "2024-01-02").await.unwrap();
    assert_eq!(
        ivs,
        vec![
            iv("GME240119C00020000", 0, 0.8),
            iv("GME240119C00020000", 1, 0.9)
        ]
    );
    assert_eq!(
        db.factor_history("GME", "2024-01-02").await.unwrap(),
        vec![factor]
    );
    assert_eq!(db.rv_history("GME", 2024).await.unwrap(), vec![rv]);
    assert_eq!(
        db.risk_positions("2024-01-02").await.unwrap(),
        vec![position]
    );
    assert_eq!(
        db.outputs(OutputTable::Explanations, "GME", "2024-01-02")
            .await
            .unwrap(),
        vec![("e-1".to_string(), "{\"headline\":\"GME\"}".to_string())]
    );
    assert_eq!(
        db.signal_outcomes("GME", "2024-01-02").await.unwrap(),
        vec!["{\"hit\":true}".to_string()]
    );
    assert!(db.iv_history("AMC", "2024-01-02").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_returns_every_row_of_a_partition_larger_than_a_page() {
    let db = ScyllaState::connect(&config(&cql_server(), "paging"))
        .await
        .unwrap();
    let n = optionflow_pipeline::scylla::tables::PAGE_SIZE as i64 * 2 + 37;
    let rows: Vec<Row> = (0..n)
        .map(|i| Row::Output {
            table: OutputTable::Signals,
            underlying: "SPY".into(),
            event_time: T0 + i,
            event_id: format!("s-{i:05}"),
            body: i.to_string(),
        })
        .collect();
    db.write_rows(rows).await.unwrap();
    let read = db
        .outputs(OutputTable::Signals, "SPY", "2024-01-02")
        .await
        .unwrap();
    assert_eq!(read.len() as i64, n, "every page is read");
    let ids: Vec<&str> = read.iter().map(|(id, _)| id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "in clustering (event-time) order");
}
