//! The Tradier adapter against a local server that serves Tradier's documented payloads
//! (`tests/fixtures/tradier/`), records every request, and injects 429s, 5xx, bad tokens,
//! malformed pages and WebSocket drops.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::NaiveDate;
use optionflow_pipeline::vendor::filter::ContractFilter;
use optionflow_pipeline::vendor::schedule::ScheduleConfig;
use optionflow_pipeline::vendor::tradier::{TradierConfig, TradierSource};
use optionflow_pipeline::vendor::universe::Universe;
use optionflow_pipeline::vendor::{Batch, HttpConfig, VendorError};
use optionflow_schemas::{RawEvent, RawQuote, UnderlyingTick};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const TOKEN: &str = "test-token";

/// One request the server saw.
#[derive(Debug, Clone)]
struct Hit {
    at: Instant,
    path: String,
    query: BTreeMap<String, String>,
}

/// Per fixture, the status codes (and a `Retry-After`) to answer in turn before serving it.
type Faults = BTreeMap<String, VecDeque<(u16, Option<&'static str>)>>;

#[derive(Default)]
struct Server {
    hits: Mutex<Vec<Hit>>,
    faults: Mutex<Faults>,
    /// Bodies served instead of a fixture.
    overrides: Mutex<BTreeMap<String, String>>,
    sessions: AtomicU32,
    /// Subscribe messages received, one per WebSocket connection.
    subscribes: Mutex<Vec<Value>>,
}

impl Server {
    fn fault(&self, fixture: &str, status: u16, retry_after: Option<&'static str>) {
        self.faults
            .lock()
            .unwrap()
            .entry(fixture.to_string())
            .or_default()
            .push_back((status, retry_after));
    }

    fn hits(&self, path: &str) -> Vec<Hit> {
        let hits = self.hits.lock().unwrap();
        hits.iter().filter(|h| h.path == path).cloned().collect()
    }
}

async fn api(
    State(s): State<Arc<Server>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let path = uri.path().to_string();
    s.hits.lock().unwrap().push(Hit {
        at: Instant::now(),
        path: path.clone(),
        query: query.clone(),
    });
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    let accept = headers.get("accept").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {TOKEN}")) {
        return (StatusCode::UNAUTHORIZED, "Invalid Access Token").into_response();
    }
    if accept != Some("application/json") {
        return (StatusCode::NOT_ACCEPTABLE, "want Accept: application/json").into_response();
    }
    let q = |k: &str| query.get(k).cloned().unwrap_or_default();
    let fixture = match (method.as_str(), path.as_str()) {
        ("GET", "/v1/markets/quotes") => format!("quotes_{}.json", q("symbols")),
        ("GET", "/v1/markets/options/expirations") => {
            assert_eq!(q("includeAllRoots"), "true");
            format!("expirations_{}.json", q("symbol"))
        }
        ("GET", "/v1/markets/options/chains") => {
            assert_eq!(q("greeks"), "true");
            format!("chains_{}_{}.json", q("symbol"), q("expiration"))
        }
        ("GET", "/v1/markets/history") => {
            assert_eq!(q("interval"), "daily");
            format!("history_{}.json", q("symbol"))
        }
        ("POST", "/v1/markets/events/session") => "session".to_string(),
        _ => return (StatusCode::NOT_FOUND, "no such endpoint").into_response(),
    };
    let fault = s
        .faults
        .lock()
        .unwrap()
        .get_mut(&fixture)
        .and_then(VecDeque::pop_front);
    if let Some((status, retry_after)) = fault {
        let status = StatusCode::from_u16(status).unwrap();
        return match retry_after {
            Some(r) => (status, [("retry-after", r)], "slow down").into_response(),
            None => (status, "server trouble").into_response(),
        };
    }
    if fixture == "session" {
        let n = s.sessions.fetch_add(1, Ordering::SeqCst) + 1;
        let body = serde_json::json!({"stream": {
            "url": "https://stream.tradier.com/v1/markets/events",
            "sessionid": format!("session-{n}")}});
        return axum::Json(body).into_response();
    }
    let body = match s.overrides.lock().unwrap().get(&fixture) {
        Some(b) => b.clone(),
        None => {
            let file = format!(
                "{}/tests/fixtures/tradier/{fixture}",
                env!("CARGO_MANIFEST_DIR")
            );
            match std::fs::read_to_string(&file) {
                Ok(b) => b,
                Err(_) => return (StatusCode::NOT_FOUND, fixture).into_response(),
            }
        }
    };
    ([("content-type", "application/json")], body).into_response()
}

async fn ws(State(s): State<Arc<Server>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| events(socket, s))
}

/// Tradier's market-events socket: the first message subscribes; the first connection sends a
/// quote and trades (numbers as strings, several per frame) and drops; later ones send a new
/// quote and stay open.
async fn events(mut socket: WebSocket, s: Arc<Server>) {
    let Some(Ok(Message::Text(text))) = socket.recv().await else {
        return;
    };
    let sub: Value = serde_json::from_str(text.as_str()).unwrap();
    let connection = {
        let mut subs = s.subscribes.lock().unwrap();
        subs.push(sub.clone());
        subs.len()
    };
    let latest = format!("session-{}", s.sessions.load(Ordering::SeqCst));
    if sub["sessionid"] != Value::String(latest) {
        let _ = socket
            .send(Message::Text(r#"{"error":"session not found"}"#.into()))
            .await;
        return;
    }
    let frames: &[&str] = if connection == 1 {
        &[
            concat!(
                r#"{"type":"trade","symbol":"SPY","exch":"P","price":"472.80","size":"100","cvol":"123700000","date":"1704229261500","last":"472.80"}"#,
                "\n",
                r#"{"type":"quote","symbol":"SPY240105C00470000","bid":"3.12","bidsz":"40","bidexch":"Q","biddate":"1704229260000","ask":"3.16","asksz":"35","askexch":"Z","askdate":"1704229260500"}"#,
                "\n",
                r#"{"type":"trade","symbol":"SPY240105C00470000","exch":"J","price":"3.13","size":"5","cvol":"15235","date":"1704229261000","last":"3.13"}"#,
                "\n",
            ),
            r#"{"type":"summary","symbol":"SPY","open":"472.16","high":"473.67","low":"470.49","prevClose":"475.31"}"#,
        ]
    } else {
        &[
            r#"{"type":"timesale","symbol":"SPY","exch":"P","bid":"472.79","ask":"472.81","last":"472.80","size":"100","date":"1704229299000"}"#,
            r#"{"type":"quote","symbol":"SPY240105C00470000","bid":"3.20","bidsz":"12","bidexch":"Q","biddate":"1704229300000","ask":"3.24","asksz":"9","askexch":"Z","askdate":"1704229300000"}"#,
        ]
    };
    for f in frames {
        if socket.send(Message::Text((*f).into())).await.is_err() {
            return;
        }
    }
    if connection == 1 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = socket.send(Message::Close(None)).await;
        return;
    }
    // Stay open until the client goes.
    while let Some(Ok(_)) = socket.recv().await {}
}

/// Starts the server; returns its base URL.
async fn start(s: Arc<Server>) -> String {
    let app = Router::new()
        .route("/v1/markets/events", get(ws))
        .fallback(api)
        .with_state(s);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn config(base: &str) -> TradierConfig {
    TradierConfig {
        base_url: base.to_string(),
        ws_url: format!("{}/v1/markets/events", base.replace("http://", "ws://")),
        stream: false,
        history_days: 0,
        stream_flush_ms: 50,
        poll_step_secs: 1,
        max_stream_contracts: 100,
        greeks: true,
        http: HttpConfig {
            requests_per_minute: 60_000,
            max_concurrency: 4,
            timeout_ms: 2_000,
            max_retries: 3,
            initial_backoff_ms: 50,
            max_backoff_ms: 200,
        },
        filter: ContractFilter {
            max_days_to_expiry: 30,
            ..Default::default()
        },
        schedule: ScheduleConfig {
            cycle_secs: 60,
            ..Default::default()
        },
    }
}

fn universe() -> Universe {
    Universe {
        underlyings: vec!["SPY".into(), "GME".into()],
        sectors: [("GME".to_string(), "Consumer Discretionary".to_string())].into(),
    }
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, 2).unwrap()
}

fn source(cfg: TradierConfig, token: &str) -> TradierSource {
    let token = token.to_string();
    TradierSource::new(cfg, universe(), &move |k: &str| {
        (k == "TRADIER_TOKEN").then(|| token.clone())
    })
    .unwrap()
    .with_today(today())
}

/// Runs `src` until `done` says the batches so far are enough (or 10 s pass), then closes the
/// channel and waits for the source to stop.
async fn run_until(
    src: TradierSource,
    done: impl Fn(&[Batch]) -> bool,
) -> (Vec<Batch>, Result<(), VendorError>) {
    let (tx, mut rx) = mpsc::channel(64);
    let handle = tokio::spawn(src.run(tx));
    let mut batches = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while !done(&batches) {
            match rx.recv().await {
                Some(b) => batches.push(b),
                None => break,
            }
        }
    })
    .await;
    drop(rx);
    let result = tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("the source stops once the channel closes")
        .unwrap();
    (batches, result)
}

fn at_least(n: usize) -> impl Fn(&[Batch]) -> bool {
    move |b| b.len() >= n
}

fn quote(
    underlying: &str,
    symbol: &str,
    (bid, ask): (f64, f64),
    (bid_size, ask_size): (i64, i64),
    last: Option<f64>,
    (volume, open_interest): (i64, i64),
    spot: f64,
) -> RawQuote {
    RawQuote {
        event_id: Default::default(),
        event_time: 0,
        underlying: underlying.into(),
        source: "tradier".into(),
        symbol: symbol.into(),
        bid,
        ask,
        bid_size,
        ask_size,
        last,
        volume,
        open_interest,
        underlying_price: Some(spot),
    }
}

fn tick(underlying: &str, price: f64, volume: i64, sector: Option<&str>) -> UnderlyingTick {
    UnderlyingTick {
        event_id: Default::default(),
        event_time: 0,
        underlying: underlying.into(),
        source: "tradier".into(),
        price,
        volume,
        sector: sector.map(Into::into),
    }
}

/// Events without their ids and times, to compare with the expected ones.
fn bare(events: &[RawEvent]) -> Vec<RawEvent> {
    events
        .iter()
        .cloned()
        .map(|mut e| {
            match &mut e {
                RawEvent::Quote(q) => (q.event_id, q.event_time) = (Default::default(), 0),
                RawEvent::Tick(t) => (t.event_id, t.event_time) = (Default::default(), 0),
            }
            e
        })
        .collect()
}

fn gme_batch() -> Vec<RawEvent> {
    vec![
        RawEvent::Tick(tick(
            "GME",
            17.22,
            2_789_000,
            Some("Consumer Discretionary"),
        )),
        RawEvent::Quote(quote(
            "GME",
            "GME   240119C00017500",
            (0.95, 1.00),
            (31, 44),
            Some(0.97),
            (3400, 15400),
            17.22,
        )),
        RawEvent::Quote(quote(
            "GME",
            "GME   240119P00015000",
            (0.20, 0.22),
            (210, 180),
            Some(0.21),
            (1200, 22000),
            17.22,
        )),
    ]
}

fn spy_weekly() -> Vec<RawEvent> {
    vec![
        RawEvent::Quote(quote(
            "SPY",
            "SPY   240105C00470000",
            (3.10, 3.15),
            (120, 95),
            Some(3.12),
            (15230, 8821),
            472.65,
        )),
        RawEvent::Quote(quote(
            "SPY",
            "SPY   240105P00470000",
            (0.45, 0.47),
            (300, 250),
            Some(0.46),
            (20110, 12003),
            472.65,
        )),
    ]
}

fn spy_monthly() -> RawEvent {
    RawEvent::Quote(quote(
        "SPY",
        "SPY   240119C00480000",
        (1.02, 1.04),
        (50, 60),
        Some(1.03),
        (9000, 45000),
        472.65,
    ))
}

fn spy_tick() -> RawEvent {
    RawEvent::Tick(tick("SPY", 472.65, 123_623_700, None))
}

#[tokio::test]
async fn a_poll_yields_the_tick_then_the_quotes_in_scope_deterministically() {
    let server = Arc::new(Server::default());
    let base = start(server.clone()).await;
    let src = source(config(&base), TOKEN);
    let stats = src.stats();
    let (batches, result) = run_until(src, at_least(2)).await;
    result.unwrap();
    assert_eq!(batches.len(), 2);
    // Underlyings are first polled in name order; each batch is one poll.
    let (t_gme, gme) = &batches[0];
    let (t_spy, spy) = &batches[1];
    assert_eq!(bare(gme), gme_batch());
    let mut expected = vec![spy_tick()];
    expected.extend(spy_weekly());
    expected.push(spy_monthly());
    assert_eq!(bare(spy), expected);
    // Event time: the latest vendor timestamp of the poll (ms → µs), on every event.
    assert_eq!(*t_gme, 1_704_229_180_000_000, "GME's quote trade_date");
    assert_eq!(*t_spy, 1_704_229_199_900_000, "the monthly's bid_date");
    for (t, events) in &batches {
        for e in events {
            let (time, id) = match e {
                RawEvent::Quote(q) => (q.event_time, &q.event_id),
                RawEvent::Tick(u) => (u.event_time, &u.event_id),
            };
            assert_eq!(time, *t);
            assert!(!id.is_empty());
        }
    }
    // The null-bid row and the garbled symbol are counted; the far strike is filtered out.
    assert_eq!(stats.bad_rows.load(Ordering::Relaxed), 2);

    // Running again gives the same batches, ids included.
    let (again, result) = run_until(source(config(&base), TOKEN), at_least(2)).await;
    result.unwrap();
    assert_eq!(again, batches);
}

#[tokio::test]
async fn expirations_outside_the_window_are_never_requested_and_are_cached() {
    let server = Arc::new(Server::default());
    let base = start(server.clone()).await;
    let mut cfg = config(&base);
    cfg.schedule = ScheduleConfig {
        cycle_secs: 1,
        hot_interval_secs: 1,
        ..Default::default()
    };
    let (batches, result) = run_until(source(cfg, TOKEN), at_least(4)).await;
    result.unwrap();
    assert!(batches.len() >= 4, "two rounds of polls");
    let chains = server.hits("/v1/markets/options/chains");
    let asked: std::collections::BTreeSet<(String, String)> = chains
        .iter()
        .map(|h| (h.query["symbol"].clone(), h.query["expiration"].clone()))
        .collect();
    let expected: std::collections::BTreeSet<(String, String)> = [
        ("GME", "2024-01-19"),
        ("SPY", "2024-01-05"),
        ("SPY", "2024-01-19"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(asked, expected, "2024-03-15 is past the 30-day window");
    assert!(server.hits("/v1/markets/quotes").len() >= 4);
    assert_eq!(
        server.hits("/v1/markets/options/expirations").len(),
        2,
        "once per underlying and trading day"
    );
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after() {
    let server = Arc::new(Server::default());
    server.fault("quotes_GME.json", 429, Some("1"));
    let base = start(server.clone()).await;
    let mut cfg = config(&base);
    cfg.http.max_backoff_ms = 2_000;
    let src = source(cfg, TOKEN);
    let stats = src.stats();
    let started = Instant::now();
    let (batches, result) = run_until(src, at_least(1)).await;
    let elapsed = started.elapsed();
    result.unwrap();
    assert_eq!(bare(&batches[0].1), gme_batch());
    let quotes = server.hits("/v1/markets/quotes");
    let gme: Vec<&Hit> = quotes
        .iter()
        .filter(|h| h.query["symbols"] == "GME")
        .collect();
    assert_eq!(gme.len(), 2, "one 429, one success");
    let gap = gme[1].at - gme[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "Retry-After honoured: {gap:?}"
    );
    assert!(elapsed >= Duration::from_millis(950));
    assert_eq!(stats.retries.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_5xx_is_retried_until_it_succeeds() {
    let server = Arc::new(Server::default());
    server.fault("chains_SPY_2024-01-19.json", 500, None);
    server.fault("chains_SPY_2024-01-19.json", 502, None);
    let base = start(server.clone()).await;
    let src = source(config(&base), TOKEN);
    let stats = src.stats();
    let (batches, result) = run_until(src, at_least(2)).await;
    result.unwrap();
    assert_eq!(bare(&batches[1].1).last(), Some(&spy_monthly()));
    let monthly = server
        .hits("/v1/markets/options/chains")
        .into_iter()
        .filter(|h| h.query["expiration"] == "2024-01-19" && h.query["symbol"] == "SPY")
        .count();
    assert_eq!(monthly, 3);
    assert_eq!(stats.retries.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn a_401_stops_the_source_naming_the_variable() {
    let server = Arc::new(Server::default());
    let base = start(server.clone()).await;
    let mut cfg = config(&base);
    cfg.history_days = 90;
    let (batches, result) = run_until(source(cfg, "expired-token"), |_| false).await;
    assert!(batches.is_empty());
    let err = result.unwrap_err();
    assert!(
        matches!(
            &err,
            VendorError::Auth {
                status: 401,
                hint: "TRADIER_TOKEN",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("TRADIER_TOKEN"), "{err}");
    assert!(err.is_fatal());
    assert_eq!(
        server.hits.lock().unwrap().len(),
        1,
        "no retry can fix a bad token"
    );
}

#[tokio::test]
async fn a_malformed_chain_page_is_counted_and_the_rest_flows() {
    let server = Arc::new(Server::default());
    server.overrides.lock().unwrap().insert(
        "chains_SPY_2024-01-05.json".into(),
        r#"{"options": "oops"}"#.into(),
    );
    let base = start(server.clone()).await;
    let src = source(config(&base), TOKEN);
    let stats = src.stats();
    let (batches, result) = run_until(src, at_least(2)).await;
    result.unwrap();
    assert_eq!(bare(&batches[0].1), gme_batch());
    assert_eq!(bare(&batches[1].1), vec![spy_tick(), spy_monthly()]);
    assert_eq!(stats.errors().get("malformed"), Some(&1));
}

#[tokio::test]
async fn the_rate_limit_is_respected() {
    let server = Arc::new(Server::default());
    let base = start(server.clone()).await;
    let mut cfg = config(&base);
    cfg.http.requests_per_minute = 600;
    let (_, result) = run_until(source(cfg, TOKEN), at_least(2)).await;
    result.unwrap();
    let mut times: Vec<Instant> = server.hits.lock().unwrap().iter().map(|h| h.at).collect();
    times.sort();
    assert!(times.len() >= 7, "quote, expirations and chains of both");
    // No more than 1 + n requests in any n × 100 ms window (20 ms allowed for scheduling).
    for i in 0..times.len() {
        for j in i + 1..times.len() {
            let span = (times[j] - times[i]).as_secs_f64() + 0.020;
            let windows = (span / 0.100).floor() as usize;
            assert!(
                j - i <= windows,
                "{} requests within {:?}",
                j - i + 1,
                times[j] - times[i]
            );
        }
    }
}

#[tokio::test]
async fn history_comes_first_as_daily_ticks() {
    let server = Arc::new(Server::default());
    let base = start(server.clone()).await;
    let mut cfg = config(&base);
    cfg.history_days = 2;
    let (batches, result) = run_until(source(cfg, TOKEN), at_least(10)).await;
    result.unwrap();
    // 2023-12-28: SPY's 4 ticks; 2023-12-29: SPY's and GME's (a single-object history) together.
    let history = &batches[..8];
    assert!(history.windows(2).all(|w| w[0].0 < w[1].0));
    let sizes: Vec<usize> = history.iter().map(|b| b.1.len()).collect();
    assert_eq!(sizes, [1, 1, 1, 1, 2, 2, 2, 2]);
    let RawEvent::Tick(close) = &history[7].1[0] else {
        panic!("ticks only")
    };
    assert_eq!(close.event_time, 1_703_883_600_000_000, "16:00 New York");
    let closes: Vec<(String, f64)> = history[7]
        .1
        .iter()
        .map(|e| match e {
            RawEvent::Tick(t) => (t.underlying.to_string(), t.price),
            RawEvent::Quote(_) => panic!("ticks only"),
        })
        .collect();
    assert_eq!(closes, [("SPY".into(), 475.31), ("GME".into(), 17.53)]);
    let req = &server.hits("/v1/markets/history")[0];
    assert_eq!(
        (req.query["start"].as_str(), req.query["end"].as_str()),
        ("2023-12-24", "2024-01-01")
    );
    // Then the polls.
    assert_eq!(bare(&batches[8].1), gme_batch());
}

#[tokio::test]
async fn the_stream_resubscribes_with_a_new_session_after_a_drop() {
    let server = Arc::new(Server::default());
    let base = start(server.clone()).await;
    let mut cfg = config(&base);
    cfg.stream = true;
    let src = source(cfg, TOKEN);
    let stats = src.stats();
    let second_quote = |b: &[Batch]| {
        b.iter().flat_map(|b| &b.1).any(|e| {
            matches!(e, RawEvent::Quote(q) if q.bid == 3.20 && q.symbol == "SPY   240105C00470000")
        })
    };
    let (batches, result) = run_until(src, second_quote).await;
    result.unwrap();
    assert!(
        second_quote(&batches),
        "events of the second connection arrive"
    );

    let subs = server.subscribes.lock().unwrap().clone();
    assert!(subs.len() >= 2, "reconnected: {subs:?}");
    assert_eq!(subs[0]["sessionid"], "session-1");
    assert_eq!(
        subs[1]["sessionid"], "session-2",
        "a new session per connection"
    );
    assert_eq!(subs[0]["symbols"], subs[1]["symbols"], "the same symbols");
    assert_eq!(
        subs[0]["symbols"],
        serde_json::json!([
            "GME",
            "GME240119C00017500",
            "GME240119P00015000",
            "SPY",
            "SPY240105C00470000",
            "SPY240105P00470000",
            "SPY240119C00480000"
        ])
    );
    assert_eq!(subs[0]["filter"], serde_json::json!(["quote", "trade"]));
    assert!(stats.reconnects.load(Ordering::Relaxed) >= 1);

    // The polls come first (in name order, as the schedule has them), then the stream.
    assert_eq!(bare(&batches[0].1), gme_batch());
    let streamed: Vec<RawEvent> = batches[2..].iter().flat_map(|b| bare(&b.1)).collect();
    // The first connection's quote, trade (cumulative volume) and underlying trade.
    let mut first = quote(
        "SPY",
        "SPY   240105C00470000",
        (3.12, 3.16),
        (40, 35),
        Some(3.13),
        (15235, 8821),
        472.80,
    );
    assert!(
        streamed.contains(&RawEvent::Quote(first.clone())),
        "{streamed:#?}"
    );
    assert!(streamed.contains(&RawEvent::Tick(tick("SPY", 472.80, 123_700_000, None))));
    // The second connection's quote keeps the trade's last and volume.
    (first.bid, first.ask, first.bid_size, first.ask_size) = (3.20, 3.24, 12, 9);
    assert_eq!(streamed.last(), Some(&RawEvent::Quote(first)));
    let last = batches.last().unwrap();
    assert_eq!(last.0, 1_704_229_300_000_000, "the quote's biddate/askdate");
}
