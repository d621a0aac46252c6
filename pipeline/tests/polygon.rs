//! The Polygon adapter against a local server that speaks Polygon's documented formats
//! (fixtures in `tests/fixtures/polygon/`): pagination, retries, rate limits, malformed pages,
//! auth failures, and the WebSocket with a drop and reconnect.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::NaiveDate;
use optionflow_pipeline::vendor::polygon::{PolygonConfig, PolygonSource};
use optionflow_pipeline::vendor::universe::Universe;
use optionflow_pipeline::vendor::{Batch, HttpConfig, VendorError};
use optionflow_schemas::RawEvent;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const KEY: &str = "test-key-123";

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/../tests/fixtures/polygon/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[derive(Clone, Debug)]
struct Reply {
    status: u16,
    retry_after: Option<&'static str>,
    body: String,
    /// Answer only after this long (a hung gateway).
    delay_ms: u64,
}

fn ok(body: String) -> Reply {
    Reply {
        status: 200,
        retry_after: None,
        body,
        delay_ms: 0,
    }
}

fn status(code: u16) -> Reply {
    Reply {
        status: code,
        retry_after: None,
        body: format!("{{\"status\":\"ERROR\",\"error\":\"{code}\"}}"),
        delay_ms: 0,
    }
}

#[derive(Clone, Debug)]
struct Hit {
    at: Instant,
    path: String,
    query: String,
    auth: Option<String>,
}

/// What the WebSocket endpoint sends on each connection after the subscription.
#[derive(Default)]
struct WsScript {
    connections: Vec<Vec<String>>,
    subscriptions: Vec<String>,
    auths: Vec<String>,
}

#[derive(Clone, Default)]
struct Vendor {
    base: Arc<Mutex<String>>,
    replies: Arc<Mutex<BTreeMap<String, VecDeque<Reply>>>>,
    hits: Arc<Mutex<Vec<Hit>>>,
    ws: Arc<Mutex<WsScript>>,
}

impl Vendor {
    /// Replies for a path (with its query, or just the path), served in order; the last repeats.
    fn script(&self, path: &str, replies: Vec<Reply>) {
        self.replies
            .lock()
            .unwrap()
            .insert(path.to_string(), replies.into());
    }

    fn hits(&self, path: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }
}

async fn rest(State(v): State<Vendor>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let auth = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    v.hits.lock().unwrap().push(Hit {
        at: Instant::now(),
        path: path.clone(),
        query: query.clone(),
        auth,
    });
    let reply = {
        let mut replies = v.replies.lock().unwrap();
        let key = if replies.contains_key(&format!("{path}?{query}")) {
            format!("{path}?{query}")
        } else {
            path
        };
        match replies.get_mut(&key) {
            Some(q) if q.len() > 1 => q.pop_front(),
            Some(q) => q.front().cloned(),
            None => None,
        }
    };
    let Some(reply) = reply else {
        return (StatusCode::NOT_FOUND, "{\"status\":\"NOT_FOUND\"}").into_response();
    };
    tokio::time::sleep(Duration::from_millis(reply.delay_ms)).await;
    let base = v.base.lock().unwrap().clone();
    let mut resp = (
        StatusCode::from_u16(reply.status).unwrap(),
        reply.body.replace("{BASE}", &base),
    )
        .into_response();
    if let Some(ra) = reply.retry_after {
        resp.headers_mut()
            .insert("retry-after", ra.parse().unwrap());
    }
    resp
}

async fn options_ws(State(v): State<Vendor>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| serve_ws(v, socket))
}

async fn serve_ws(v: Vendor, mut socket: WebSocket) {
    let text = |s: &str| Message::Text(s.to_string().into());
    let _ = socket
        .send(text(
            r#"[{"ev":"status","status":"connected","message":"Connected Successfully"}]"#,
        ))
        .await;
    let Some(Ok(Message::Text(auth))) = socket.recv().await else {
        return;
    };
    let auth: serde_json::Value = serde_json::from_str(&auth).unwrap();
    let key = auth["params"].as_str().unwrap_or("").to_string();
    v.ws.lock().unwrap().auths.push(key.clone());
    if key != KEY {
        let _ = socket
            .send(text(
                r#"[{"ev":"status","status":"auth_failed","message":"authentication failed"}]"#,
            ))
            .await;
        return;
    }
    let _ = socket
        .send(text(
            r#"[{"ev":"status","status":"auth_success","message":"authenticated"}]"#,
        ))
        .await;
    let Some(Ok(Message::Text(sub))) = socket.recv().await else {
        return;
    };
    let sub: serde_json::Value = serde_json::from_str(&sub).unwrap();
    let frames = {
        let mut ws = v.ws.lock().unwrap();
        ws.subscriptions
            .push(sub["params"].as_str().unwrap_or("").to_string());
        if ws.connections.is_empty() {
            Vec::new()
        } else {
            ws.connections.remove(0)
        }
    };
    let last = v.ws.lock().unwrap().connections.is_empty();
    for f in frames {
        let _ = socket.send(text(&f)).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if last {
        // The final connection stays open until the client goes.
        while let Some(Ok(_)) = socket.recv().await {}
    }
    // Earlier connections drop here, mid-session.
}

async fn start() -> (Vendor, String) {
    let v = Vendor::default();
    let app = Router::new()
        .route("/options", get(options_ws))
        .fallback(rest)
        .with_state(v.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    *v.base.lock().unwrap() = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (v, base)
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, 2).unwrap()
}

fn config(base: &str) -> PolygonConfig {
    PolygonConfig {
        base_url: base.to_string(),
        ws_url: format!("{}/options", base.replace("http://", "ws://")),
        history_days: 0,
        minute_history: false,
        stream_flush_ms: 50,
        http: HttpConfig {
            requests_per_minute: 60_000,
            initial_backoff_ms: 50,
            max_backoff_ms: 2_000,
            max_retries: 3,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn universe() -> Universe {
    Universe {
        underlyings: vec!["AAPL".into()],
        sectors: [("AAPL".to_string(), "Information Technology".to_string())].into(),
    }
}

fn source(cfg: PolygonConfig) -> PolygonSource {
    PolygonSource::new(cfg, universe(), &|k| {
        (k == "POLYGON_API_KEY").then(|| KEY.to_string())
    })
    .unwrap()
    .with_today(today())
}

fn script_chain(v: &Vendor) {
    v.script(
        "/v3/snapshot/options/AAPL?cursor=page2",
        vec![ok(fixture("snapshot_page2.json"))],
    );
    v.script(
        "/v3/snapshot/options/AAPL",
        vec![ok(fixture("snapshot_page1.json"))],
    );
}

fn quotes(events: &[RawEvent]) -> Vec<(String, f64, f64, i64)> {
    events
        .iter()
        .filter_map(|e| match e {
            RawEvent::Quote(q) => Some((q.symbol.to_string(), q.bid, q.ask, q.open_interest)),
            RawEvent::Tick(_) => None,
        })
        .collect()
}

#[tokio::test]
async fn a_snapshot_follows_pagination_and_keeps_the_good_rows() {
    let (v, base) = start().await;
    script_chain(&v);
    let src = source(config(&base));
    let snap = src.snapshot("AAPL", today()).await.unwrap();
    assert_eq!(
        quotes(&snap.events),
        [
            ("AAPL  240119C00190000".to_string(), 3.1, 3.25, 5000),
            ("AAPL  240119P00185000".to_string(), 1.95, 2.05, 4100),
            ("AAPL  240216C00195000".to_string(), 2.45, 2.6, 2100),
        ]
    );
    let RawEvent::Tick(t) = &snap.events[0] else {
        panic!("the underlying's tick comes first")
    };
    assert_eq!(
        (t.price, t.sector.as_deref()),
        (187.5, Some("Information Technology"))
    );
    assert_eq!(
        snap.vendor_time,
        Some(1_704_214_801_000_000),
        "the latest quote time on any page"
    );
    assert_eq!(snap.total_volume, 1200 + 800 + 150);
    // Two rows could not be used (no quote; a ticker that is not OCC): counted, not fatal.
    assert_eq!(
        src.stats()
            .bad_rows
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    let hits = v.hits("/v3/snapshot/options/AAPL");
    assert_eq!(hits.len(), 2);
    assert!(
        hits[0].query.contains("expiration_date.gte=2024-01-02"),
        "{}",
        hits[0].query
    );
    assert!(
        hits[0].query.contains("expiration_date.lte=2024-03-02"),
        "{}",
        hits[0].query
    );
    assert_eq!(hits[1].query, "cursor=page2");
    assert!(hits
        .iter()
        .all(|h| h.auth.as_deref() == Some("Bearer test-key-123")));
}

#[tokio::test]
async fn the_second_poll_narrows_strikes_to_the_band_around_spot() {
    let (v, base) = start().await;
    script_chain(&v);
    let src = source(config(&base));
    src.snapshot("AAPL", today()).await.unwrap();
    src.snapshot("AAPL", today()).await.unwrap();
    let first_pages: Vec<Hit> = v
        .hits("/v3/snapshot/options/AAPL")
        .into_iter()
        .filter(|h| h.query != "cursor=page2")
        .collect();
    assert!(!first_pages[0].query.contains("strike_price"));
    assert!(
        first_pages[1].query.contains("strike_price.gte=140.62"),
        "{}",
        first_pages[1].query
    );
    assert!(
        first_pages[1].query.contains("strike_price.lte=234.38"),
        "{}",
        first_pages[1].query
    );
}

#[tokio::test]
async fn a_429_waits_for_retry_after_and_5xx_are_retried() {
    let (v, base) = start().await;
    v.script(
        "/v3/snapshot/options/AAPL?cursor=page2",
        vec![status(500), status(503), ok(fixture("snapshot_page2.json"))],
    );
    let mut limited = status(429);
    limited.retry_after = Some("1");
    v.script(
        "/v3/snapshot/options/AAPL",
        vec![limited, ok(fixture("snapshot_page1.json"))],
    );
    let src = source(config(&base));
    let started = Instant::now();
    let snap = src.snapshot("AAPL", today()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(quotes(&snap.events).len(), 3);
    assert_eq!(
        src.stats()
            .retries
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    assert_eq!(v.hits("/v3/snapshot/options/AAPL").len(), 5);
}

#[tokio::test]
async fn retries_give_up_and_a_malformed_page_keeps_the_pages_before_it() {
    let (v, base) = start().await;
    v.script(
        "/v3/snapshot/options/AAPL?cursor=page2",
        vec![ok("<html>gateway hiccup</html>".into())],
    );
    v.script(
        "/v3/snapshot/options/AAPL",
        vec![ok(fixture("snapshot_page1.json"))],
    );
    let src = source(config(&base));
    let snap = src.snapshot("AAPL", today()).await.unwrap();
    assert_eq!(quotes(&snap.events).len(), 2, "page 1's rows still flow");
    assert_eq!(src.stats().errors().get("malformed"), Some(&1));

    v.script("/v3/snapshot/options/AAPL", vec![status(502)]);
    let err = src.snapshot("AAPL", today()).await.unwrap_err();
    assert!(
        matches!(
            err,
            VendorError::Status {
                status: 502,
                attempts: 4,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_request_that_times_out_is_retried() {
    let (v, base) = start().await;
    let mut hung = ok(fixture("snapshot_page1.json"));
    hung.delay_ms = 3_000;
    v.script(
        "/v3/snapshot/options/AAPL?cursor=page2",
        vec![ok(fixture("snapshot_page2.json"))],
    );
    v.script(
        "/v3/snapshot/options/AAPL",
        vec![hung, ok(fixture("snapshot_page1.json"))],
    );
    let mut cfg = config(&base);
    cfg.http.timeout_ms = 300;
    let src = source(cfg);
    let snap = src.snapshot("AAPL", today()).await.unwrap();
    assert_eq!(quotes(&snap.events).len(), 3);
    assert_eq!(
        src.stats()
            .retries
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn a_401_stops_the_source_with_a_message_naming_the_key_variable() {
    let (v, base) = start().await;
    v.script(
        "/v3/snapshot/options/AAPL",
        vec![Reply {
            status: 401,
            retry_after: None,
            body: r#"{"status":"ERROR","error":"Unknown API Key"}"#.into(),
            delay_ms: 0,
        }],
    );
    let src = source(config(&base));
    let (tx, _rx) = mpsc::channel(16);
    let err = tokio::time::timeout(Duration::from_secs(10), src.run(tx))
        .await
        .expect("stops at once")
        .unwrap_err();
    assert!(err.is_fatal());
    let text = err.to_string();
    assert!(
        text.contains("401")
            && text.contains("POLYGON_API_KEY")
            && text.contains("Unknown API Key"),
        "{text}"
    );
    assert_eq!(
        v.hits("/v3/snapshot/options/AAPL").len(),
        1,
        "no retries on auth failures"
    );
}

#[tokio::test]
async fn a_missing_key_is_a_configuration_error() {
    let err = PolygonSource::new(PolygonConfig::default(), universe(), &|_| None)
        .err()
        .unwrap();
    assert!(err.to_string().contains("POLYGON_API_KEY"), "{err}");
}

#[tokio::test]
async fn the_rate_limit_is_respected() {
    let (v, base) = start().await;
    v.script(
        "/v3/snapshot/options/AAPL",
        vec![ok(r#"{"status":"OK","results":[]}"#.into())],
    );
    let mut cfg = config(&base);
    cfg.http.requests_per_minute = 600; // one request per 100 ms
    let src = source(cfg);
    for _ in 0..12 {
        src.snapshot("AAPL", today()).await.unwrap();
    }
    let hits = v.hits("/v3/snapshot/options/AAPL");
    assert_eq!(hits.len(), 12);
    let span = hits[11].at - hits[0].at;
    assert!(
        span >= Duration::from_millis(1_050),
        "12 requests at 10/s take at least 1.1 s, took {span:?}"
    );
    // No window of n × 100 ms holds more than n + 1 requests.
    for (i, a) in hits.iter().enumerate() {
        for (j, b) in hits.iter().enumerate().skip(i + 1) {
            let n = (b.at - a.at).as_millis() / 100;
            assert!(
                (j - i) as u128 <= n + 1,
                "{} requests within {:?}",
                j - i + 1,
                b.at - a.at
            );
        }
    }
}

async fn collect(rx: &mut mpsc::Receiver<Batch>, until: impl Fn(&[Batch]) -> bool) -> Vec<Batch> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !until(&got) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(b)) => got.push(b),
            Ok(None) | Err(_) => panic!("gave up waiting; got {} batches: {got:?}", got.len()),
        }
    }
    got
}

#[tokio::test]
async fn a_run_sends_history_first_then_polls_in_rising_event_time() {
    let (v, base) = start().await;
    script_chain(&v);
    v.script(
        "/v2/aggs/ticker/AAPL/range/1/day/2023-12-24/2024-01-01",
        vec![ok(fixture("aggs_daily.json"))],
    );
    v.script(
        "/v2/aggs/ticker/AAPL/range/1/minute/2024-01-02/2024-01-02",
        vec![ok(fixture("aggs_minute.json"))],
    );
    let mut cfg = config(&base);
    cfg.history_days = 2;
    cfg.minute_history = true;
    let src = source(cfg);
    let stats = src.stats();
    let (tx, mut rx) = mpsc::channel(64);
    let task = tokio::spawn(src.run(tx));
    let got = collect(&mut rx, |b| {
        b.iter()
            .any(|(_, ev)| ev.iter().any(|e| matches!(e, RawEvent::Quote(_))))
    })
    .await;
    drop(rx);
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    // 2 daily bars × 4 ticks, 2 good minute bars (the third has no close), then the snapshot.
    assert_eq!(got.len(), 8 + 2 + 1, "{got:?}");
    assert!(
        got.windows(2).all(|w| w[0].0 < w[1].0),
        "batch times rise strictly"
    );
    for (t, events) in &got {
        assert!(
            events.iter().all(|e| e.event_time() == *t),
            "every event carries its batch's time"
        );
    }
    let RawEvent::Tick(close) = &got[7].1[0] else {
        panic!()
    };
    assert_eq!((close.price, close.volume), (185.64, 82_488_674));
    let RawEvent::Tick(minute) = &got[9].1[0] else {
        panic!()
    };
    assert_eq!(
        (minute.price, minute.volume, minute.event_time),
        (187.5, 200_000, 1_704_205_920_000_000)
    );
    assert_eq!(got[10].0, 1_704_214_801_000_000);
    assert_eq!(quotes(&got[10].1).len(), 3);
    assert_eq!(stats.bad_rows.load(std::sync::atomic::Ordering::Relaxed), 3);
    // Ids are deterministic: the same content and time give the same id.
    let ids: Vec<&str> = got[10].1.iter().map(|e| e.event_id()).collect();
    assert!(ids.iter().all(|id| id.len() == 32));
    let again =
        optionflow_pipeline::vendor::batch::stamp_batch("polygon", got[10].0, got[10].1.clone());
    assert_eq!(again.1, got[10].1);
}

#[tokio::test]
async fn the_stream_authenticates_subscribes_and_resubscribes_after_a_drop() {
    let (v, base) = start().await;
    script_chain(&v);
    v.script(
        "/v3/reference/options/contracts",
        vec![ok(fixture("contracts.json"))],
    );
    {
        let mut ws = v.ws.lock().unwrap();
        ws.connections = vec![
            vec![
                r#"[{"ev":"Q","sym":"O:AAPL240119C00190000","bx":302,"ax":302,"bp":3.3,"ap":3.4,"bs":17,"as":24,"t":1704214900000,"q":1}]"#.into(),
                r#"[{"ev":"T","sym":"O:AAPL240119C00190000","x":65,"p":3.35,"s":5,"c":[233],"t":1704214901000,"q":2}]"#.into(),
            ],
            vec![r#"[{"ev":"Q","sym":"O:AAPL240119P00185000","bp":1.5,"ap":1.6,"bs":3,"as":4,"t":1704215000000}]"#.into()],
        ];
    }
    let mut cfg = config(&base);
    cfg.stream = true;
    cfg.schedule.cycle_secs = 3600;
    cfg.schedule.hot_interval_secs = 3600;
    let src = source(cfg);
    let stats = src.stats();
    let (tx, mut rx) = mpsc::channel(64);
    let task = tokio::spawn(src.run(tx));
    let has = |b: &[Batch], sym: &str, bid: f64| {
        b.iter().any(|(_, ev)| {
            ev.iter()
                .any(|e| matches!(e, RawEvent::Quote(q) if q.symbol == sym && q.bid == bid))
        })
    };
    let got = collect(&mut rx, |b| {
        has(b, "AAPL  240119C00190000", 3.3) && has(b, "AAPL  240119P00185000", 1.5)
    })
    .await;
    drop(rx);
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    let ws = v.ws.lock().unwrap();
    assert_eq!(ws.auths, [KEY, KEY], "authenticated on both connections");
    assert_eq!(ws.subscriptions.len(), 2, "resubscribed after the drop");
    assert_eq!(ws.subscriptions[0], ws.subscriptions[1]);
    assert_eq!(ws.subscriptions[0], "Q.O:AAPL240119C00190000,T.O:AAPL240119C00190000,Q.O:AAPL240119P00185000,T.O:AAPL240119P00185000");
    assert!(stats.reconnects.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    let streamed = got
        .iter()
        .flat_map(|(_, ev)| ev)
        .find_map(|e| match e {
            RawEvent::Quote(q) if q.bid == 3.3 => Some(q.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (
            streamed.ask,
            streamed.open_interest,
            streamed.underlying_price
        ),
        (3.4, 5000, Some(187.5))
    );
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
}

#[tokio::test]
async fn a_rejected_stream_key_stops_the_source() {
    let (v, base) = start().await;
    script_chain(&v);
    v.script(
        "/v3/reference/options/contracts",
        vec![ok(fixture("contracts.json"))],
    );
    let mut cfg = config(&base);
    cfg.stream = true;
    cfg.schedule.cycle_secs = 3600;
    cfg.schedule.hot_interval_secs = 3600;
    let src = PolygonSource::new(cfg, universe(), &|_| Some("wrong".into()))
        .unwrap()
        .with_today(today());
    // REST accepts any key in this server; the WebSocket refuses it.
    let (tx, _rx) = mpsc::channel(64);
    let err = tokio::time::timeout(Duration::from_secs(10), src.run(tx))
        .await
        .expect("stops")
        .unwrap_err();
    assert!(matches!(err, VendorError::Auth { .. }), "{err}");
}

#[tokio::test]
async fn five_hundred_underlyings_are_all_refreshed_within_one_cycle() {
    let (v, base) = start().await;
    let names: Vec<String> = (0..500).map(|i| format!("U{i:03}")).collect();
    for u in &names {
        let body = format!(
            r#"{{"status":"OK","results":[{{"details":{{"ticker":"O:{u}240119C00100000"}},"open_interest":10,
               "last_quote":{{"bid":1.0,"ask":1.1,"last_updated":1704214800000000000}},
               "underlying_asset":{{"price":100.0,"last_updated":1704214800000000000}}}}]}}"#
        );
        v.script(&format!("/v3/snapshot/options/{u}"), vec![ok(body)]);
    }
    let mut cfg = config(&base);
    cfg.http.requests_per_minute = 60_000;
    cfg.http.max_concurrency = 8;
    cfg.schedule.cycle_secs = 30;
    let universe = Universe {
        underlyings: names.clone(),
        sectors: BTreeMap::new(),
    };
    let src = PolygonSource::new(cfg, universe, &|_| Some(KEY.into()))
        .unwrap()
        .with_today(today());
    let (tx, mut rx) = mpsc::channel(1024);
    let task = tokio::spawn(src.run(tx));
    let started = Instant::now();
    let got = collect(&mut rx, |b| b.len() == 500).await;
    let took = started.elapsed();
    drop(rx);
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    let mut seen: Vec<String> = got
        .iter()
        .map(|(_, ev)| ev[0].underlying().to_string())
        .collect();
    seen.sort();
    assert_eq!(
        seen, names,
        "each underlying exactly once in the first cycle"
    );
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
    // 500 requests at 60,000 a minute (one per millisecond): well inside the 30 s cycle.
    assert!(took < Duration::from_secs(30), "took {took:?}");
}
