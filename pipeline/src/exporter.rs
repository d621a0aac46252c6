//! `/metrics`: the process's `metrics` registry in Prometheus text format, served over HTTP.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::OnceLock;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once per process and returns its handle.
pub fn recorder() -> Option<&'static PrometheusHandle> {
    if let Some(h) = HANDLE.get() {
        return Some(h);
    }
    match PrometheusBuilder::new().install_recorder() {
        Ok(h) => Some(HANDLE.get_or_init(|| h)),
        Err(e) => {
            tracing::warn!("metrics recorder not installed: {e}");
            HANDLE.get()
        }
    }
}

/// Serves `/metrics` (and `extra`'s routes: the dashboard) on `listen` in the background;
/// returns the bound address (useful with port 0). A port already in use is reported and the
/// pipeline runs on without the endpoint.
pub async fn serve(listen: &str, extra: Option<axum::Router>) -> Option<SocketAddr> {
    let handle = recorder()?;
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(listen, "cannot serve /metrics: {e}");
            return None;
        }
    };
    let addr = listener.local_addr().ok()?;
    let mut app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || async move { handle.render() }),
    );
    if let Some(extra) = extra {
        app = app.merge(extra);
    }
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("/metrics server stopped: {e}");
        }
    });
    tracing::info!("metrics on http://{addr}/metrics, dashboard on http://{addr}/");
    Some(addr)
}
