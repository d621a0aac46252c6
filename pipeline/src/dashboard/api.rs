//! The JSON API under `/api/`: the same data the page shows.
//!
//! - `GET /api/signals?underlying=&sector=&direction=&min-score=&factor=&limit=`: signal
//!   summaries, newest first.
//! - `GET /api/signals/{id}`: one signal's card: signal, explanation, decision, alerts,
//!   suppressions and the delivery ledger's outcomes for its alerts.
//! - `GET /api/underlyings`: every underlying with sector, spot, contracts and signals.
//! - `GET /api/chain/{underlying}`: the chain view ([`super::chain::ChainView`]).
//! - `GET /api/health`: counters, rates, delivery failures.

use super::hub::{Card, Hub};
use super::{chain, DashboardSettings};
use crate::delivery::ledger::{Ledger, LedgerEntry, Status as LedgerStatus};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// The handlers' shared state.
pub(super) type AppState = (Arc<Hub>, DashboardSettings);

/// What the list and the live feed show of a signal.
pub fn summary(c: &Card) -> Value {
    let s = &c.signal;
    let voted: Vec<&str> = s
        .factors
        .iter()
        .filter(|f| f.voted)
        .map(|f| f.factor.as_str())
        .collect();
    let status = match (&c.decision, c.alerts.is_empty(), c.suppressed.is_empty()) {
        (None, _, _) => "pending",
        (Some(d), _, _) if !d.approved => "rejected",
        (Some(_), false, _) => "alerted",
        (Some(_), true, false) => "suppressed",
        (Some(_), true, true) => "approved",
    };
    json!({
        "signal_id": s.event_id,
        "event_time": s.event_time,
        "underlying": s.underlying,
        "sector": s.sector,
        "direction": s.direction,
        "composite": s.composite,
        "probability": s.probability,
        "calibrated": s.calibrated,
        "agreeing": s.agreeing,
        "spot": s.spot,
        "voted": voted,
        "headline": c.explanation.as_ref().map(|e| e.headline.as_str()),
        "status": status,
        "rule": c.decision.as_ref().map(|d| d.rule.as_str()),
        "reason": c.decision.as_ref().map(|d| d.reason.as_str()),
        "channels": c.alerts.iter().map(|a| a.channel.as_str()).collect::<Vec<_>>(),
        "suppressed": c.suppressed.iter().map(|r| r.reason_code.as_str()).collect::<Vec<_>>(),
    })
}

/// Filters of `GET /api/signals`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub(super) struct SignalQuery {
    underlying: Option<String>,
    sector: Option<String>,
    direction: Option<String>,
    min_score: Option<f64>,
    factor: Option<String>,
    limit: Option<usize>,
}

impl SignalQuery {
    fn keeps(&self, c: &Card) -> bool {
        let s = &c.signal;
        let is = |want: &Option<String>, v: &str| {
            want.as_deref()
                .is_none_or(|w| w.is_empty() || w.eq_ignore_ascii_case(v))
        };
        is(&self.underlying, &s.underlying)
            && is(&self.sector, &s.sector)
            && is(&self.direction, &s.direction)
            && self.min_score.is_none_or(|m| s.composite >= m)
            && self
                .factor
                .as_deref()
                .is_none_or(|f| f.is_empty() || s.factors.iter().any(|v| v.voted && v.factor == f))
    }
}

pub(super) async fn signals(
    State((hub, _)): State<AppState>,
    Query(q): Query<SignalQuery>,
) -> Json<Value> {
    let limit = q.limit.unwrap_or(200).min(2000);
    let cards = hub.cards(|c| q.keeps(c), limit);
    Json(Value::Array(cards.iter().map(summary).collect()))
}

fn not_found(what: String) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": what }))).into_response()
}

/// Every outcome in the session's delivery ledger (read from the data directory: the file is
/// small and written by the delivery task, which the dashboard does not share a lock with);
/// none before a session is attached or before anything was delivered.
fn ledger(hub: &Hub) -> Vec<LedgerEntry> {
    hub.data_dir()
        .and_then(|dir| Ledger::read(&dir.join(crate::delivery::LEDGER_FILE)).ok())
        .unwrap_or_default()
}

pub(super) async fn signal(State((hub, _)): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(card) = hub.card(&id) else {
        return not_found(format!(
            "no signal {id} (the dashboard keeps the latest ones)"
        ));
    };
    let ids: Vec<&str> = card.alerts.iter().map(|a| a.event_id.as_str()).collect();
    let ledger: Vec<LedgerEntry> = ledger(&hub)
        .into_iter()
        .filter(|e| ids.contains(&e.alert_id.as_str()))
        .collect();
    Json(json!({
        "summary": summary(&card),
        "card": card,
        "deliveries": ledger,
    }))
    .into_response()
}

pub(super) async fn underlyings(State((hub, _)): State<AppState>) -> Json<Value> {
    Json(Value::Array(
        hub.underlyings()
            .into_iter()
            .map(|(u, sector, spot, contracts, signals)| {
                json!({"underlying": u, "sector": sector, "spot": spot,
                       "contracts": contracts, "signals": signals})
            })
            .collect(),
    ))
}

pub(super) async fn chain_view(
    State((hub, settings)): State<AppState>,
    Path(underlying): Path<String>,
) -> Response {
    match hub.chain(&underlying) {
        Some(c) => Json(chain::view(
            &underlying,
            &c,
            settings.gex_sign,
            settings.flip_range_pct,
        ))
        .into_response(),
        None => not_found(format!("no chain for {underlying} yet")),
    }
}

pub(super) async fn health(State((hub, _)): State<AppState>) -> Json<Value> {
    let status = hub.metrics().map(|m| m.status());
    let (mut delivered, mut failed, mut recent_failures) = (0, 0, Vec::new());
    for e in ledger(&hub) {
        match e.status {
            LedgerStatus::Delivered => delivered += 1,
            LedgerStatus::Failed => {
                failed += 1;
                recent_failures.push(e);
            }
        }
    }
    let keep_from = recent_failures.len().saturating_sub(10);
    Json(json!({
        "running": status.is_some(),
        "status": status,
        "deliveries": {"delivered": delivered, "failed": failed,
                       "recent_failures": &recent_failures[keep_from..]},
        "underlyings": hub.underlyings().len(),
    }))
}
