//! OTLP trace export: with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a local collector, a run
//! posts its stage spans there as OTLP/HTTP protobuf before it exits.

use axum::body::Bytes;
use axum::http::HeaderMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

mod common;
use common::BIN;

type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_exports_its_stage_spans_to_the_collector() {
    let received: Received = Default::default();
    let seen = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                let kind = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                seen.lock().unwrap().push((kind, body.to_vec()));
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let data = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args([
                "run",
                "--duration",
                "2m",
                "--speed",
                "max",
                "--underlyings",
                "2",
            ])
            .arg("--data-dir")
            .arg(data.path())
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}"))
            .env("OTEL_SERVICE_NAME", "optionflow-test")
            .env("OPTIONFLOW__HTTP__LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = received.lock().unwrap().clone();
    assert!(!got.is_empty(), "no export request reached the collector");
    assert!(got.iter().all(|(kind, _)| kind == "application/x-protobuf"));
    // Protobuf keeps strings as they are: the span name, a stage's name, the service.
    let all: Vec<u8> = got.into_iter().flat_map(|(_, body)| body).collect();
    let has = |s: &str| all.windows(s.len()).any(|w| w == s.as_bytes());
    for needle in ["stage.batch", "greeks", "consensus", "optionflow-test"] {
        assert!(has(needle), "{needle} not in the exported spans");
    }
}
