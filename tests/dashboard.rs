//! The dashboard in a real browser: `optionflow run` serves it, headless Chromium (Debian's
//! `chromium`, which `.ci/run` installs) loads it, and the test reads the page through the
//! DevTools protocol. The GME signal of the session must show up as a card within a second of
//! the API knowing it (it comes over the WebSocket feed, not a reload), expand into its
//! narrative, factors, risk decision and delivery status, obey the filters, and the chain view
//! must draw GME's greeks table and GEX chart; `/metrics` then carries the signal's outcome in
//! the hit-rate metrics.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

mod common;
use common::BIN;

/// A child process killed when the test ends, pass or fail.
struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chromium() -> &'static str {
    for path in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(path).exists() {
            return path;
        }
    }
    panic!("headless Chromium is needed: apt-get install chromium (.ci/run installs it)");
}

/// Starts Chromium on `url` and returns it with the DevTools WebSocket URL of its page.
async fn open_browser(url: &str, profile: &std::path::Path) -> (Killed, String) {
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    // It prints "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/<id>".
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("DevTools listening on ").nth(1) {
                let _ = tx.send(rest.trim().to_string());
            }
        }
    });
    let browser_ws = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("chromium announces its DevTools endpoint");
    let port = browser_ws
        .trim_start_matches("ws://127.0.0.1:")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let child = Killed(child);
    // The page target's own endpoint.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list: Vec<Value> = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(ws) = list
            .iter()
            .find(|t| t["type"] == "page" && t["url"].as_str().unwrap_or("").starts_with(url))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        {
            return (child, ws.to_string());
        }
        assert!(Instant::now() < deadline, "no page target: {list:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A DevTools session on one page: evaluates JavaScript and returns its value.
struct Page {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
}

impl Page {
    async fn connect(url: &str) -> Page {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Page { ws, next_id: 1 }
    }

    async fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression)
            .await
            .unwrap_or_else(|e| panic!("{expression}: {e}"))
    }

    /// Evaluates `expression`; a JavaScript exception is an `Err` with its details.
    async fn try_eval(&mut self, expression: &str) -> Result<Value, Value> {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"id": id, "method": "Runtime.evaluate",
            "params": {"expression": expression, "returnByValue": true, "awaitPromise": true}});
        self.ws
            .send(Message::Text(request.to_string().into()))
            .await
            .unwrap();
        while let Some(msg) = self.ws.next().await {
            let Message::Text(text) = msg.unwrap() else {
                continue;
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == id {
                if let Some(e) = v["result"].get("exceptionDetails") {
                    return Err(e.clone());
                }
                return Ok(v["result"]["result"]["value"].clone());
            }
        }
        panic!("DevTools connection closed");
    }

    /// Polls `expression` until it is truthy; returns how long that took.
    async fn wait_for(&mut self, expression: &str, timeout: Duration) -> Duration {
        let started = Instant::now();
        loop {
            // While the page is still loading its elements may not exist yet: try again.
            let v = self.try_eval(expression).await.unwrap_or(Value::Null);
            if v.as_bool() == Some(true) || v.as_u64().is_some_and(|n| n > 0) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < timeout,
                "timed out waiting for `{expression}`; page: {}",
                self.eval("document.body.innerText.slice(0, 2000)").await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn get_json(http: &reqwest::Client, url: String) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_live_signal_its_card_and_the_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // Seed 11, 6 underlyings: GME signals at 09:41, about 11 s in at 60× — after the page is up.
    let _run = Killed(
        Command::new(BIN)
            .args([
                "run",
                "--duration",
                "15m",
                "--seed",
                "11",
                "--underlyings",
                "6",
            ])
            .args(["--speed", "60", "--data-dir"])
            .arg(tmp.path().join("data"))
            .env("OPTIONFLOW__HTTP__LISTEN", format!("127.0.0.1:{port}"))
            // Label outcomes a minute after each signal, so the hit-rate metric fills in time.
            .env("OPTIONFLOW__TELEMETRY__HIT_RATE_HORIZON_SECS", "60")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let up = Instant::now();
    while http.get(format!("{base}/api/health")).send().await.is_err() {
        assert!(
            up.elapsed() < Duration::from_secs(30),
            "dashboard not served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (_browser, page_ws) = open_browser(&format!("{base}/"), &tmp.path().join("profile")).await;
    let mut page = Page::connect(&page_ws).await;
    page.wait_for(
        "document.getElementById('feed-state').textContent === 'feed: live'",
        Duration::from_secs(20),
    )
    .await;
    let cards = "document.querySelectorAll('.card[data-underlying=\"GME\"]').length";
    assert_eq!(
        page.eval(cards).await,
        0,
        "the signal is not there before it happens"
    );

    // When the API first lists the signal, the page must show it within a second.
    let signal = loop {
        let list = get_json(&http, format!("{base}/api/signals?underlying=GME")).await;
        if let Some(s) = list.as_array().and_then(|l| l.first()).cloned() {
            break s;
        }
        assert!(up.elapsed() < Duration::from_secs(60), "no GME signal");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let shown_after = page.wait_for(cards, Duration::from_secs(5)).await;
    assert!(
        shown_after < Duration::from_secs(1),
        "the card appeared {shown_after:?} after the API had the signal"
    );
    assert_eq!(signal["direction"], "bullish");

    // Expand the card: narrative, factors, the risk decision and where the alert went.
    page.wait_for(
        "document.querySelector('.card[data-underlying=\"GME\"] [data-status=\"alerted\"]') !== null",
        Duration::from_secs(10),
    )
    .await;
    page.eval("document.querySelector('.card[data-underlying=\"GME\"]').click(); true")
        .await;
    page.wait_for(
        "document.querySelector('.card .detail table.factors') !== null",
        Duration::from_secs(5),
    )
    .await;
    let detail = page
        .eval("document.querySelector('.card .detail').innerText")
        .await;
    let detail = detail.as_str().unwrap();
    for needle in [
        "GME — bullish signal, composite",
        "Factors",
        "gamma_exposure",
        "Risk decision",
        "approved",
        "file (route default)",
        "written",
    ] {
        assert!(detail.contains(needle), "{needle:?} missing from {detail}");
    }

    // Filters: a bearish-only view hides it; clearing the filter brings it back.
    let set_direction = |d: &str| {
        format!(
            "(() => {{ const s = document.getElementById('f-direction'); s.value = '{d}'; \
             s.dispatchEvent(new Event('input')); return true; }})()"
        )
    };
    page.eval(&set_direction("bearish")).await;
    assert_eq!(page.eval(cards).await, 0);
    page.eval(&set_direction("")).await;
    assert_eq!(page.eval(cards).await, 1);

    // The chain view of GME: greeks rows, GEX bars, walls.
    page.eval(
        "(() => { const s = document.getElementById('chain-underlying'); s.value = 'GME'; \
         s.dispatchEvent(new Event('change')); return true; })()",
    )
    .await;
    page.wait_for(
        "document.getElementById('chain-summary').innerText.startsWith('GME')",
        Duration::from_secs(10),
    )
    .await;
    page.wait_for(
        "document.querySelectorAll('#chain-table tr[data-strike]').length",
        Duration::from_secs(10),
    )
    .await;
    page.wait_for(
        "document.querySelectorAll('#gex-chart rect').length",
        Duration::from_secs(5),
    )
    .await;
    let summary = page
        .eval("document.getElementById('chain-summary').innerText")
        .await;
    let summary = summary.as_str().unwrap();
    assert!(
        summary.starts_with("GME") && summary.contains("call wall"),
        "{summary}"
    );
    let health = page
        .eval("document.getElementById('health').innerText")
        .await;
    assert!(health.as_str().unwrap().contains("quotes"), "{health}");

    // The API behind it: the chain's numbers and the card's delivery.
    let chain: Value = get_json(&http, format!("{base}/api/chain/GME")).await;
    assert!(chain["spot"].as_f64().unwrap() > 0.0);
    assert!(!chain["expiries"].as_array().unwrap().is_empty());
    assert!(!chain["gex"].as_array().unwrap().is_empty());
    let card: Value = get_json(
        &http,
        format!(
            "{base}/api/signals/{}",
            signal["signal_id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(card["card"]["decision"]["approved"], true);
    assert_eq!(card["card"]["alerts"][0]["channel"], "file");
    // A minute of event time after the signal (a second at 60×) it has an outcome on /metrics,
    // in its composite's bucket.
    let tens = (signal["composite"].as_f64().expect("a composite") / 10.0).floor() as u32 * 10;
    let bucket = format!("{}-{}", tens, tens + 10);
    let labelled = Instant::now();
    let metrics = loop {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains(&format!(
            "optionflow_signal_outcomes_total{{bucket=\"{bucket}\""
        )) && text.contains(&format!(
            "optionflow_signal_hit_rate{{bucket=\"{bucket}\"}}"
        )) {
            break text;
        }
        assert!(
            labelled.elapsed() < Duration::from_secs(20),
            "no hit-rate metric: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The alert written above was timed from its quotes leaving the source.
    assert!(
        metrics.contains("optionflow_quote_to_alert_seconds_count"),
        "no quote → alert latency on /metrics: {metrics}"
    );
    let missing = http
        .get(format!("{base}/api/chain/NOPE"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
