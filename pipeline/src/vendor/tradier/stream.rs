//! The Tradier market-events WebSocket: create a session over REST, subscribe to quotes and
//! trades of the underlyings and the contracts in scope with its id, conflate events into one
//! batch per `stream-flush-ms`, and after a drop reconnect with backoff. A session id is
//! short-lived, so every connection starts with a new session; the symbols stay the same.

use super::parse::{self, StreamMessage};
use super::{TradierSource, VENDOR};
use crate::vendor::batch::BatchSink;
use crate::vendor::http::Request;
use crate::vendor::VendorError;
use futures_util::{SinkExt, StreamExt};
use optionflow_schemas::{RawEvent, RawQuote};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

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

/// What the stream follows, by Tradier symbol.
#[derive(Debug, Default)]
struct State {
    contracts: BTreeMap<String, Contract>,
    /// Underlyings: last trade price and cumulative volume, when one arrived since the flush.
    underlyings: BTreeMap<String, Option<(f64, i64)>>,
    dirty: BTreeSet<String>,
    latest: Option<i64>,
}

enum End {
    /// The receiver of the batches has gone: stop.
    SinkClosed,
    /// The connection dropped, failed, or the session was refused: reconnect.
    Dropped(String),
}

/// Runs the stream until the sink closes or authentication fails.
pub(super) async fn run(src: &TradierSource, sink: &BatchSink) -> Result<(), VendorError> {
    let scope = src.stream_scope();
    let mut state = State::default();
    for (vendor_symbol, symbol) in &scope {
        match symbol {
            None => {
                state.underlyings.insert(vendor_symbol.clone(), None);
            }
            Some(symbol) => {
                let underlying = src
                    .books
                    .lock()
                    .ok()
                    .and_then(|b| b.get(symbol).map(|b| b.underlying.clone()))
                    .unwrap_or_default();
                state.contracts.insert(
                    vendor_symbol.clone(),
                    Contract {
                        underlying,
                        symbol: symbol.clone(),
                        ..Default::default()
                    },
                );
            }
        }
    }
    let symbols: Vec<String> = scope.into_iter().map(|(v, _)| v).collect();
    tracing::info!(
        vendor = VENDOR,
        contracts = state.contracts.len(),
        underlyings = state.underlyings.len(),
        "streaming quotes and trades"
    );
    let mut policy =
        crate::pacing::backoff_policy(src.cfg.http.initial_backoff_ms, src.cfg.http.max_backoff_ms);
    loop {
        let started = std::time::Instant::now();
        match connection(src, sink, &symbols, &mut state).await? {
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
                        "stream dropped ({why}); reconnecting in {} ms with a new session",
                        wait.as_millis()
                    ),
                );
                tokio::time::sleep(wait).await;
                if sink.is_closed().await {
                    return Ok(());
                }
                src.stats.reconnected();
            }
        }
    }
}

/// A new session id (`POST /v1/markets/events/session`); auth failures are fatal.
async fn new_session(src: &TradierSource) -> Result<Result<String, String>, VendorError> {
    let path = "/v1/markets/events/session";
    let req = Request {
        post: true,
        ..Request::get("session", path)
    };
    match src.http.json(req).await {
        Ok(body) => Ok(parse::session_id(&body).inspect_err(|m| {
            src.malformed(path, m.clone());
        })),
        Err(e) if e.is_fatal() => Err(e),
        Err(e) => Ok(Err(format!("session: {e}"))),
    }
}

async fn connection(
    src: &TradierSource,
    sink: &BatchSink,
    symbols: &[String],
    state: &mut State,
) -> Result<End, VendorError> {
    let session = match new_session(src).await? {
        Ok(s) => s,
        Err(why) => return Ok(End::Dropped(why)),
    };
    let (mut ws, _) = match tokio_tungstenite::connect_async(src.cfg.ws_url.as_str()).await {
        Ok(c) => c,
        Err(e) => return Ok(End::Dropped(format!("connect: {e}"))),
    };
    let subscribe = serde_json::json!({
        "symbols": symbols,
        "sessionid": session,
        "filter": ["quote", "trade"],
        "linebreak": true,
    })
    .to_string();
    if let Err(e) = ws.send(Message::text(subscribe)).await {
        return Ok(End::Dropped(format!("send subscribe: {e}")));
    }
    let mut flush = tokio::time::interval(Duration::from_millis(src.cfg.stream_flush_ms));
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Close(_))) | None => {
                        flush_batch(src, sink, state).await;
                        return Ok(End::Dropped("closed by the server".into()));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        flush_batch(src, sink, state).await;
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
                    if let StreamMessage::Error(e) = m {
                        flush_batch(src, sink, state).await;
                        return Ok(End::Dropped(format!("session refused: {e}")));
                    }
                    apply(m, state);
                }
            }
            _ = flush.tick() => {
                if !flush_batch(src, sink, state).await {
                    return Ok(End::SinkClosed);
                }
            }
        }
    }
}

fn apply(m: StreamMessage, state: &mut State) {
    let (symbol, at) = match &m {
        StreamMessage::Quote { symbol, at, .. } | StreamMessage::Trade { symbol, at, .. } => {
            (symbol.clone(), *at)
        }
        StreamMessage::Error(_) => return,
    };
    if let Some(u) = state.underlyings.get_mut(&symbol) {
        // The underlying's trades move the spot; its quotes are not used.
        if let StreamMessage::Trade {
            price,
            cumulative_volume,
            ..
        } = m
        {
            let volume = cumulative_volume.unwrap_or_else(|| u.map_or(0, |(_, v)| v));
            *u = Some((price, volume));
            state.dirty.insert(symbol);
            state.latest = Some(state.latest.map_or(at, |l| l.max(at)));
        }
        return;
    }
    let Some(c) = state.contracts.get_mut(&symbol) else {
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
        StreamMessage::Trade {
            price,
            size,
            cumulative_volume,
            ..
        } => {
            c.last = Some(price);
            c.volume = cumulative_volume.unwrap_or(c.volume + size);
        }
        StreamMessage::Error(_) => {}
    }
    // Trades alone do not make a quote: the pipeline needs a bid and an ask.
    if c.quoted {
        state.dirty.insert(symbol);
    }
    state.latest = Some(state.latest.map_or(at, |l| l.max(at)));
}

/// Sends what changed since the last flush as one batch (underlying ticks first); false once the
/// sink closed.
async fn flush_batch(src: &TradierSource, sink: &BatchSink, state: &mut State) -> bool {
    let Some(at) = state.latest.take() else {
        return !sink.is_closed().await;
    };
    let books = src.books.lock().map(|b| b.clone()).unwrap_or_default();
    let dirty = std::mem::take(&mut state.dirty);
    let mut events = Vec::with_capacity(dirty.len());
    for sym in &dirty {
        if let Some(Some((price, volume))) = state.underlyings.get(sym) {
            src.set_spot(sym, *price);
            events.push(RawEvent::Tick(
                src.universe.tick(sym, VENDOR, *price, *volume),
            ));
        }
    }
    for sym in &dirty {
        let Some(c) = state.contracts.get_mut(sym) else {
            continue;
        };
        let (open_interest, snapshot_volume) = books
            .get(&c.symbol)
            .map_or((0, 0), |b| (b.open_interest, b.volume));
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
