//! The embedded runtime with its state in ScyllaDB (`[bus] kind = "embedded"`, `[state] kind =
//! "scylla"`): the real binary against a CQL server listening on a port (in-memory kassandra in
//! this test process, or a real cluster with `OPTIONFLOW_SCYLLA=host:port`).

use optionflow_pipeline::scylla::tables::day;
use optionflow_pipeline::scylla::{OutputTable, ScyllaConfig, ScyllaState};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{cql_server, read, BIN};

/// Long enough for the simulator's scheduled GME squeeze (+10m to +25m).
const SESSION: [&str; 6] = ["--duration", "30m", "--seed", "7", "--underlyings", "4"];

fn run(data_dir: &Path, config: Option<&Path>, speed: &str) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .args(SESSION)
        .args(["--speed", speed, "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "info");
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.output().expect("optionflow runs")
}

fn scylla_config(dir: &Path, addr: &str, keyspace: &str) -> PathBuf {
    let path = dir.join("scylla.toml");
    std::fs::write(
        &path,
        format!(
            "[state]\nkind = \"scylla\"\n[scylla]\nnodes = [\"{addr}\"]\nkeyspace = \"{keyspace}\"\nconsistency = \"one\"\nschema-metadata = {}\n",
            std::env::var("OPTIONFLOW_SCYLLA").is_ok()
        ),
    )
    .unwrap();
    path
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Every (underlying, day) the events of a file fall on.
fn partitions(events: &[Value]) -> BTreeSet<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["underlying"].as_str().unwrap().to_string(),
                day(e["event_time"].as_i64().unwrap()),
            )
        })
        .collect()
}

/// A table's rows over `parts`, by event id, as JSON.
async fn table(
    db: &ScyllaState,
    t: OutputTable,
    parts: &BTreeSet<(String, String)>,
) -> Vec<(String, Value)> {
    let mut rows = Vec::new();
    for (u, d) in parts {
        for (id, body) in db.outputs(t, u, d).await.unwrap() {
            rows.push((id, serde_json::from_str(&body).unwrap()));
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

fn by_id(events: &[Value]) -> Vec<(String, Value)> {
    let mut v: Vec<(String, Value)> = events
        .iter()
        .map(|e| (e["event_id"].as_str().unwrap().to_string(), e.clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_in_scylla_survives_kill_9_and_the_query_tables_hold_every_output_once() {
    let addr = cql_server();
    let reference = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("data");
    let config = scylla_config(work.path(), &addr, "embedded_state");
    let reference_out = {
        let r = reference.path().to_path_buf();
        tokio::task::spawn_blocking(move || run(&r, None, "max"))
            .await
            .unwrap()
    };
    assert!(
        reference_out.status.success(),
        "{}",
        String::from_utf8_lossy(&reference_out.stderr)
    );

    // Paced (30 minutes of market time at 150x is 12 s) so the kill lands mid-session, after
    // a checkpoint is in ScyllaDB.
    let mut child = Command::new(BIN)
        .arg("run")
        .args(SESSION)
        .args(["--speed", "150", "--data-dir"])
        .arg(&dir)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let cfg = ScyllaConfig {
        nodes: vec![addr.clone()],
        keyspace: "embedded_state".into(),
        consistency: optionflow_pipeline::scylla::config::ConsistencyLevel::One,
        connect_timeout_secs: 10,
        schema_metadata: std::env::var("OPTIONFLOW_SCYLLA").is_ok(),
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let session = loop {
        assert!(Instant::now() < deadline, "no session id was written");
        if let Ok(id) = std::fs::read_to_string(dir.join("session-id")) {
            break id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let db = loop {
        // The binary applies the migrations; connect once they are in.
        if let Ok(db) = ScyllaState::connect(&cfg).await {
            break db;
        }
        assert!(Instant::now() < deadline, "the keyspace never appeared");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    while db
        .load_session_checkpoint(&session)
        .await
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < deadline, "no checkpoint reached ScyllaDB");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !dir.join("checkpoints/CURRENT").exists(),
        "checkpoints go to ScyllaDB, not files"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !dir.join("finished.json").exists(),
        "the run finished before it was killed"
    );
    let resumed = {
        let (d, c) = (dir.clone(), config.clone());
        tokio::task::spawn_blocking(move || run(&d, Some(&c), "max"))
            .await
            .unwrap()
    };
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert!(stderr.contains("resumed from checkpoint"), "{stderr}");
    for file in ["alerts.jsonl", "signals.jsonl", "decisions.jsonl"] {
        assert!(
            read(reference.path(), file) == read(&dir, file),
            "{file}: the run with its state in ScyllaDB differs from the embedded one"
        );
    }

    // Every output is in its table exactly once, as the files hold it.
    let alerts = lines(&read(&dir, "alerts.jsonl"));
    assert!(!alerts.is_empty(), "the session alerts");
    for (t, file) in [
        (OutputTable::Signals, "signals.jsonl"),
        (OutputTable::Explanations, "explanations.jsonl"),
        (OutputTable::Decisions, "decisions.jsonl"),
        (OutputTable::Alerts, "alerts.jsonl"),
    ] {
        let events = lines(&read(&dir, file));
        assert_eq!(
            table(&db, t, &partitions(&events)).await,
            by_id(&events),
            "table {}",
            t.name()
        );
    }
    let decisions = lines(&read(&dir, "decisions.jsonl"));
    let mut approved: Vec<String> = decisions
        .iter()
        .filter(|d| d["approved"].as_bool() == Some(true))
        .map(|d| d["signal_id"].as_str().unwrap().to_string())
        .collect();
    approved.sort();
    let mut positions = Vec::new();
    for d in decisions
        .iter()
        .map(|d| day(d["event_time"].as_i64().unwrap()))
        .collect::<BTreeSet<_>>()
    {
        positions.extend(
            db.risk_positions(&d)
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.signal_id),
        );
    }
    positions.sort();
    assert_eq!(positions, approved, "a position per approved decision");

    // Histories: every underlying has IV rows, one per contract and minute of the session,
    // and every factor left its scores.
    let signals = lines(&read(&dir, "signals.jsonl"));
    let session_day = day(signals[0]["event_time"].as_i64().unwrap());
    let underlyings: BTreeSet<String> = alerts
        .iter()
        .chain(&signals)
        .map(|e| e["underlying"].as_str().unwrap().to_string())
        .collect();
    let mut factors = BTreeSet::new();
    for u in &underlyings {
        let ivs = db.iv_history(u, &session_day).await.unwrap();
        assert!(!ivs.is_empty(), "{u} has IV history");
        for r in &ivs {
            assert!(
                r.iv.is_finite() && r.iv > 0.0,
                "{u} {} iv {}",
                r.contract,
                r.iv
            );
            assert!(r.event_time >= r.minute && r.event_time < r.minute + 60_000_000);
        }
        let minutes: BTreeSet<i64> = ivs.iter().map(|r| r.minute).collect();
        assert!(minutes.len() >= 25, "{u}: {} minutes of IV", minutes.len());
        factors.extend(
            db.factor_history(u, &session_day)
                .await
                .unwrap()
                .into_iter()
                .map(|f| f.factor),
        );
    }
    for f in ["iv_zscore", "gamma_exposure", "realized_vol"] {
        assert!(factors.contains(f), "factor history has {f}: {factors:?}");
    }
    let year: i32 = session_day[..4].parse().unwrap();
    let rv = db
        .rv_history(underlyings.iter().next().unwrap(), year)
        .await
        .unwrap();
    assert!(
        rv.iter()
            .any(|r| r.day == session_day && !r.estimators.is_empty()),
        "realized-vol history of the session day: {rv:?}"
    );
}
