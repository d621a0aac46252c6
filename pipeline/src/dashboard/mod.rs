//! The live dashboard, served by the pipeline itself on `[http] listen` (next to `/metrics`):
//! a page whose assets are compiled into the binary (no Node toolchain anywhere), a WebSocket
//! feed at `/ws` that pushes every new signal and every change to one (decision, alert,
//! suppression) the moment a stage emits it, and the JSON API under `/api/` ([`api`]).
//!
//! - [`hub`]: the state, fed by the stages.
//! - [`chain`]: the chain view (greeks table, GEX by strike, walls, flip, smile).
//! - [`api`]: the JSON handlers.

pub mod api;
pub mod chain;
pub mod hub;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hub::Hub;
use optionflow_operators::score::GexSign;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// What the chain view needs from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct DashboardSettings {
    /// `[score] gex-sign`.
    pub gex_sign: GexSign,
    /// `[score] gex-flip-range-pct`.
    pub flip_range_pct: f64,
}

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The dashboard's routes, to merge into the pipeline's HTTP server.
pub fn router(hub: Arc<Hub>, settings: DashboardSettings) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route("/ws", get(ws))
        .route("/api/signals", get(api::signals))
        .route("/api/signals/{id}", get(api::signal))
        .route("/api/underlyings", get(api::underlyings))
        .route("/api/chain/{underlying}", get(api::chain_view))
        .route("/api/health", get(api::health))
        .with_state((hub, settings))
}

async fn ws(State((hub, _)): State<api::AppState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| feed(socket, hub))
}

/// Forwards the hub's announcements to one client until it goes away. A client too slow to
/// keep up is told to reload (it lost messages) rather than holding memory for it.
async fn feed(mut socket: WebSocket, hub: Arc<Hub>) {
    let mut rx = hub.subscribe();
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Ok(text) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    let _ = socket
                        .send(Message::Text(r#"{"type":"resync"}"#.into()))
                        .await;
                }
                Err(RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                // The page sends nothing but pings; a close or an error ends the feed.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
