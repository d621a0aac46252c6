//! The ScyllaDB state store against a CQL server: `kassandra`, in memory, in this process (no
//! ScyllaDB can be installed here). With `OPTIONFLOW_SCYLLA=host:port` the same tests run
//! against a real cluster instead.

use optionflow_pipeline::kafka::checkpoint::{CheckpointStore, PartitionCheckpoint};
use optionflow_pipeline::scylla::{migrate, OutputTable, ScyllaConfig, ScyllaState};
use std::sync::Arc;

/// A CQL server's address: a real one from `OPTIONFLOW_SCYLLA`, or an in-memory one served
/// from a thread of this test process for as long as the process lives.
fn cql_server() -> String {
    if let Ok(addr) = std::env::var("OPTIONFLOW_SCYLLA") {
        return addr;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async move {
            let tester = kassandra_tester::KassandraTester::new(
                kassandra_tester::kassandra::session::KassandraSession::new(),
            );
            let _ = tester
                .in_scope(|addr| {
                    let tx = tx.clone();
                    async move {
                        let _ = tx.send(addr.to_string());
                        std::future::pending::<Result<(), ()>>().await
                    }
                })
                .await;
        });
    });
    rx.recv().expect("the CQL server starts")
}

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
    assert_eq!(first.applied, vec![1]);
    assert_eq!(first.version, 1);
    let again = migrate::apply(&session, &cfg).await.unwrap();
    assert!(again.applied.is_empty(), "a second run applies nothing");
    assert_eq!(again.version, 1);
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
        db.upsert_output(
            OutputTable::Alerts,
            "GME",
            1_704_205_800_000_000,
            "alert-1",
            "{}",
        )
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
