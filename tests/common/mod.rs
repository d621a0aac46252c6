//! What the end-to-end tests share: the binary, the session that signals, and file reading.
// Each test file compiles this module on its own and uses a different part of it.
#![allow(dead_code)]

use std::path::Path;

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_optionflow");

/// `run` arguments of a session that signals (6 underlyings, seed 11, 60 minutes, full speed):
/// several tests need alerts to replay, backtest or deliver. Its outputs are golden
/// (`tests/golden/seed11-60m-6u/`).
pub(crate) const SIGNALLING_SESSION: [&str; 8] = [
    "--duration",
    "60m",
    "--seed",
    "11",
    "--underlyings",
    "6",
    "--speed",
    "max",
];

/// A file of a data directory, as text.
pub(crate) fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// A CQL server for `[state] kind = "scylla"`: a real cluster from `OPTIONFLOW_SCYLLA`, or an
/// in-memory one (kassandra) served from a thread of this test process while it lives.
pub(crate) fn cql_server() -> String {
    if let Ok(addr) = std::env::var("OPTIONFLOW_SCYLLA") {
        return addr;
    }
    on_own_runtime("the CQL server starts", |tx| async move {
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
    })
}

/// Runs the server `serve` on a current-thread runtime of its own thread, for as long as the
/// test process lives; returns the address it sends once it listens.
fn on_own_runtime<F>(
    starts: &'static str,
    serve: impl FnOnce(std::sync::mpsc::Sender<String>) -> F + Send + 'static,
) -> String
where
    F: std::future::Future<Output = ()>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(serve(tx));
    });
    rx.recv().expect(starts)
}

/// Serves the router `make` builds (given the server's base URL, `http://127.0.0.1:PORT`) on a
/// free loopback port, from a thread of its own for as long as the test process lives; returns
/// the base URL. For the local vendor and channel servers the end-to-end tests talk to.
pub(crate) fn serve_on_thread(make: impl FnOnce(&str) -> axum::Router + Send + 'static) -> String {
    on_own_runtime("the server starts", |tx| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let app = make(&base);
        let _ = tx.send(base);
        let _ = axum::serve(listener, app).await;
    })
}
