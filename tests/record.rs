//! `optionflow record`: a vendor feed (a local server speaking Polygon's format) onto a tape, with
//! the pipeline running live on it; the tape replays to the live run's outputs; `/metrics`
//! reports the vendor's requests and coverage while it runs.

mod common;

use axum::extract::State;
use axum::http::Uri;
use axum::Router;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_optionflow");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/polygon")
            .join(name),
    )
    .unwrap()
}

/// The fixtures' expiries moved to 17 and 45 days from today, so the filter's expiry window
/// (counted from today in New York) keeps them.
fn dated(body: String) -> String {
    let today = chrono::Utc::now().date_naive();
    let mut body = body;
    for (old_iso, old_occ, days) in [("2024-01-19", "240119", 17), ("2024-02-16", "240216", 45)] {
        let d = today + chrono::Days::new(days);
        body = body
            .replace(old_iso, &d.format("%Y-%m-%d").to_string())
            .replace(old_occ, &d.format("%y%m%d").to_string());
    }
    body
}

/// Serves the chain snapshot fixtures, page 2 through `next_url`.
fn polygon_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let hits = Arc::new(Mutex::new(Vec::new()));
    let state = hits.clone();
    let base = common::serve_on_thread(move |base| {
        let base = base.to_string();
        Router::new()
            .fallback(
                move |State(hits): State<Arc<Mutex<Vec<String>>>>, uri: Uri| {
                    let base = base.clone();
                    async move {
                        hits.lock().unwrap().push(uri.to_string());
                        match (uri.path(), uri.query().unwrap_or("")) {
                            ("/v3/snapshot/options/AAPL", "cursor=page2") => {
                                dated(fixture("snapshot_page2.json"))
                            }
                            ("/v3/snapshot/options/AAPL", _) => {
                                dated(fixture("snapshot_page1.json")).replace("{BASE}", &base)
                            }
                            _ => r#"{"status":"OK","results":[]}"#.to_string(),
                        }
                    }
                },
            )
            .with_state(state)
    });
    (base, hits)
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

#[test]
fn recording_a_vendor_feed_runs_the_pipeline_and_replays_to_the_same_outputs() {
    let (base, hits) = polygon_server();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("polygon.toml");
    std::fs::write(
        &cfg,
        format!(
            "[universe]\nunderlyings = [\"AAPL\"]\nsectors = {{ AAPL = \"Information Technology\" }}\n\n\
             [polygon]\nbase-url = \"{base}\"\nhistory-days = 0\nminute-history = false\n\n\
             [polygon.schedule]\ncycle-secs = 1\nhot-interval-secs = 1\n"
        ),
    )
    .unwrap();
    let tape = dir.path().join("aapl.avro");
    let run_dir = dir.path().join("live");
    let mut child = Command::new(BIN)
        .args([
            "record",
            "--source",
            "polygon",
            "--duration",
            "4s",
            "--config",
        ])
        .arg(&cfg)
        .arg("--out")
        .arg(&tape)
        .arg("--pipeline")
        .arg(&run_dir)
        .env("POLYGON_API_KEY", "k")
        .env("OPTIONFLOW__HTTP__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (line_tx, line_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = line_tx.send(line);
        }
    });
    let mut log = Vec::new();
    let mut metrics = None;
    while let Ok(line) = line_rx.recv_timeout(Duration::from_secs(30)) {
        if let Some(addr) = line
            .split("metrics on http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
        {
            // Let a polling cycle complete, then scrape.
            std::thread::sleep(Duration::from_millis(2_000));
            metrics = Some(http_get(addr, "/metrics"));
        }
        log.push(line);
    }
    let status = child.wait().unwrap();
    let log = log.join("\n");
    assert!(status.success(), "{log}");
    let metrics = metrics.expect("the metrics address is logged");
    assert!(metrics.contains("optionflow_vendor_requests_total{vendor=\"polygon\",endpoint=\"snapshot\",outcome=\"ok\"}"), "{metrics}");
    assert!(
        metrics.contains("optionflow_coverage_gap_rate{vendor=\"polygon\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("optionflow_vendor_bad_rows_total{vendor=\"polygon\"}"),
        "{metrics}"
    );
    // The stages running live on the feed report into the same registry.
    assert!(
        metrics.contains("optionflow_stage_events_in_total{stage=\"normalize\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("optionflow_stage_watermark_seconds{stage=\"greeks\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("optionflow_rejects_total{stage="),
        "{metrics}"
    );
    assert!(log.contains("recorded") && log.contains("AAPL:"), "{log}");
    // Polled about once a second for 4 s, two pages each.
    let snapshots = hits
        .lock()
        .unwrap()
        .iter()
        .filter(|h| h.starts_with("/v3/snapshot/options/AAPL"))
        .count();
    assert!(
        (2..=12).contains(&snapshots),
        "{snapshots} snapshot requests"
    );

    let cat = Command::new(BIN)
        .args(["tape", "cat", "--topic", "quote"])
        .arg(&tape)
        .output()
        .unwrap();
    assert!(
        cat.status.success(),
        "{}",
        String::from_utf8_lossy(&cat.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(cat.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 6, "three quotes per poll: {}", lines.len());
    let first = &lines[0];
    let expiry = (chrono::Utc::now().date_naive() + chrono::Days::new(17)).format("%y%m%d");
    assert_eq!(first["symbol"], format!("AAPL  {expiry}C00190000"));
    assert_eq!(first["source"], "polygon");
    assert_eq!(first["event_time"], 1_704_214_801_000_000i64);
    // Each poll is its own tick: the same vendor time is moved 1 µs on.
    assert_eq!(lines[3]["event_time"], 1_704_214_801_000_001i64);

    // The live run saw exactly what the tape holds: the normalize stage rejected the same rows.
    let replay_dir = dir.path().join("replay");
    let replay = Command::new(BIN)
        .args(["replay", "--out"])
        .arg(&replay_dir)
        .arg(&tape)
        .output()
        .unwrap();
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    for f in [
        "signals.jsonl",
        "alerts.jsonl",
        "rejected-normalize.jsonl",
        "rejected-greeks.jsonl",
    ] {
        assert_eq!(
            std::fs::read(run_dir.join(f)).unwrap(),
            std::fs::read(replay_dir.join(f)).unwrap(),
            "{f} differs between the live run and the replay"
        );
    }
}

#[test]
fn a_vendor_without_its_key_is_refused_with_the_variable_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[universe]\nunderlyings = [\"SPY\"]\n").unwrap();
    for (source, var) in [("polygon", "POLYGON_API_KEY"), ("tradier", "TRADIER_TOKEN")] {
        let out = Command::new(BIN)
            .args(["record", "--source", source, "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(dir.path().join(format!("{source}.avro")))
            .env_remove(var)
            .env("OPTIONFLOW__HTTP__LISTEN", "127.0.0.1:0")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(var), "{source}: {err}");
    }
}
