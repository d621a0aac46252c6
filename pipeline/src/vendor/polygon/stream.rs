//! The Polygon options WebSocket: authenticate, subscribe to quotes (`Q.`) and trades (`T.`) of
//! the contracts in scope, conflate events into one batch per `stream-flush-ms`, and after a
//! drop reconnect with backoff, authenticate again and resubscribe to the same contracts.

use super::parse::{self, StreamMessage};
use super::{PolygonSource, VENDOR};
use crate::vendor::batch::BatchSink;
use crate::vendor::VendorError;
use chrono::NaiveDate;
use futures_util::{SinkExt, StreamExt};
use optionflow_schemas::{RawEvent, RawQuote};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// Contracts per subscribe message (each contract is two channels).
const SUBSCRIBE_CHUNK: usize = 200;

#[derive(Debug, Clone, Default)]
struct Contract {
    underlying: String,
    symbol: String,
    bid: f64,
    ask: f64,
    bid_size: i64,
    ask_size: i64,
    last: Option<f64>,
    volume: i64,
    quoted: bool,
}

enum End {
    /// The receiver of the batches has gone: stop.
    SinkClosed,
    /// The connection dropped or failed: reconnect.
    Dropped(String),
}

/// Runs the stream until the sink closes or authentication fails.
pub(super) async fn run(
    src: &PolygonSource,
    sink: &BatchSink,
    today: NaiveDate,
) -> Result<(), VendorError> {
    let scope = src.stream_contracts(today).await?;
    if scope.is_empty() {
        tracing::warn!(
            vendor = VENDOR,
            "no contracts in scope to stream; polling only"
        );
        return Ok(());
    }
    tracing::info!(
        vendor = VENDOR,
        contracts = scope.len(),
        "streaming quotes and trades"
    );
    let mut contracts: BTreeMap<String, Contract> = BTreeMap::new();
    for (underlying, ticker) in &scope {
        let Ok((symbol, ..)) = parse::occ_from_ticker(ticker) else {
            continue;
        };
        contracts.insert(
            ticker.clone(),
            Contract {
                underlying: underlying.clone(),
                symbol,
                ..Default::default()
            },
        );
    }
    let mut policy =
        crate::pacing::backoff_policy(src.cfg.http.initial_backoff_ms, src.cfg.http.max_backoff_ms);
    loop {
        let started = std::time::Instant::now();
        match session(src, sink, &mut contracts).await? {
            End::SinkClosed => return Ok(()),
            End::Dropped(why) => {
                // A connection that lived a while starts the backoff over.
                if started.elapsed() > Duration::from_secs(60) {
                    backoff::backoff::Backoff::reset(&mut policy);
                }
                let wait = backoff::backoff::Backoff::next_backoff(&mut policy)
                    .unwrap_or(policy.max_interval);
                src.stats.error(
                    "stream",
                    &format!(
                        "stream dropped ({why}); reconnecting in {} ms",
                        wait.as_millis()
                    ),
                );
                tokio::time::sleep(wait).await;
                src.stats.reconnected();
            }
        }
    }
}

async fn session(
    src: &PolygonSource,
    sink: &BatchSink,
    contracts: &mut BTreeMap<String, Contract>,
) -> Result<End, VendorError> {
    let (mut ws, _) = match tokio_tungstenite::connect_async(src.cfg.ws_url.as_str()).await {
        Ok(c) => c,
        Err(e) => return Ok(End::Dropped(format!("connect: {e}"))),
    };
    let auth = serde_json::json!({"action": "auth", "params": src.key}).to_string();
    if let Err(e) = ws.send(Message::text(auth)).await {
        return Ok(End::Dropped(format!("send auth: {e}")));
    }
    // Wait for the verdict on the key; `connected` may come first.
    loop {
        let text = match ws.next().await {
            Some(Ok(Message::Text(t))) => t.to_string(),
            Some(Ok(
                Message::Ping(_) | Message::Pong(_) | Message::Binary(_) | Message::Frame(_),
            )) => continue,
            Some(Ok(Message::Close(_))) | None => {
                return Ok(End::Dropped("closed before authentication".into()))
            }
            Some(Err(e)) => return Ok(End::Dropped(format!("read: {e}"))),
        };
        let Ok((msgs, _)) = parse::stream_frame(&text) else {
            continue;
        };
        let verdict = msgs.iter().find_map(|m| match m {
            StreamMessage::Status { status, message } if status == "auth_success" => Some(Ok(())),
            StreamMessage::Status { status, message: m } if status == "auth_failed" => {
                Some(Err(m.clone()))
            }
            _ => None,
        });
        match verdict {
            Some(Ok(())) => break,
            Some(Err(message)) => {
                let e = VendorError::Auth {
                    vendor: VENDOR,
                    status: 401,
                    url: "websocket auth".into(),
                    message,
                    hint: super::KEY_VAR,
                };
                src.stats.error(e.kind(), &e.to_string());
                return Err(e);
            }
            None => continue,
        }
    }
    let tickers: Vec<&String> = contracts.keys().collect();
    for chunk in tickers.chunks(SUBSCRIBE_CHUNK) {
        let params: Vec<String> = chunk
            .iter()
            .flat_map(|t| [format!("Q.{t}"), format!("T.{t}")])
            .collect();
        let msg =
            serde_json::json!({"action": "subscribe", "params": params.join(",")}).to_string();
        if let Err(e) = ws.send(Message::text(msg)).await {
            return Ok(End::Dropped(format!("send subscribe: {e}")));
        }
    }
    let mut flush = tokio::time::interval(Duration::from_millis(src.cfg.stream_flush_ms));
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dirty: BTreeSet<String> = BTreeSet::new();
    let mut latest: Option<i64> = None;
    loop {
        tokio::select! {
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Close(_))) | None => {
                        flush_batch(src, sink, contracts, &mut dirty, &mut latest).await;
                        return Ok(End::Dropped("closed by the server".into()));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        flush_batch(src, sink, contracts, &mut dirty, &mut latest).await;
                        return Ok(End::Dropped(format!("read: {e}")));
                    }
                };
                let (msgs, bad) = match parse::stream_frame(&text) {
                    Ok(x) => x,
                    Err(e) => { src.stats.bad_row("bad_frame", &e); continue; }
                };
                for b in bad {
                    src.stats.bad_row("bad_stream_event", &b);
                }
                for m in msgs {
                    apply(m, contracts, &mut dirty, &mut latest);
                }
            }
            _ = flush.tick() => {
                if !flush_batch(src, sink, contracts, &mut dirty, &mut latest).await {
                    return Ok(End::SinkClosed);
                }
            }
        }
    }
}

fn apply(
    m: StreamMessage,
    contracts: &mut BTreeMap<String, Contract>,
    dirty: &mut BTreeSet<String>,
    latest: &mut Option<i64>,
) {
    let (sym, at) = match &m {
        StreamMessage::Quote { sym, at, .. } | StreamMessage::Trade { sym, at, .. } => {
            (sym.clone(), *at)
        }
        StreamMessage::Status { .. } => return,
    };
    let Some(c) = contracts.get_mut(&sym) else {
        return;
    };
    match m {
        StreamMessage::Quote {
            bid,
            ask,
            bid_size,
            ask_size,
            ..
        } => {
            (c.bid, c.ask, c.bid_size, c.ask_size, c.quoted) = (bid, ask, bid_size, ask_size, true);
        }
        StreamMessage::Trade { price, size, .. } => {
            c.last = Some(price);
            c.volume += size;
        }
        StreamMessage::Status { .. } => {}
    }
    // Trades alone do not make a quote: the pipeline needs a bid and an ask.
    if c.quoted {
        dirty.insert(sym);
    }
    *latest = Some(latest.map_or(at, |l| l.max(at)));
}

/// Sends the contracts updated since the last flush as one batch; false once the sink closed.
async fn flush_batch(
    src: &PolygonSource,
    sink: &BatchSink,
    contracts: &mut BTreeMap<String, Contract>,
    dirty: &mut BTreeSet<String>,
    latest: &mut Option<i64>,
) -> bool {
    let Some(at) = latest.take() else {
        return !sink.is_closed().await;
    };
    let books = src.books.lock().map(|b| b.clone()).unwrap_or_default();
    let mut events = Vec::with_capacity(dirty.len());
    for sym in std::mem::take(dirty) {
        let Some(c) = contracts.get_mut(&sym) else {
            continue;
        };
        let (open_interest, snapshot_volume) = books.get(&c.symbol).copied().unwrap_or((0, 0));
        c.volume = c.volume.max(snapshot_volume);
        events.push(RawEvent::Quote(RawQuote {
            event_id: Default::default(),
            event_time: at,
            underlying: c.underlying.as_str().into(),
            source: VENDOR.into(),
            symbol: c.symbol.as_str().into(),
            bid: c.bid,
            ask: c.ask,
            bid_size: c.bid_size,
            ask_size: c.ask_size,
            last: c.last,
            volume: c.volume,
            open_interest,
            underlying_price: src.spot(&c.underlying),
        }));
    }
    match sink.send(at, events).await {
        Some(n) => {
            src.stats.produced(n as u64);
            true
        }
        None => false,
    }
}
