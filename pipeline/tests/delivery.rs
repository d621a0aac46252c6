//! Alert delivery against local servers that record the exact requests: the webhook (body,
//! signature, idempotency key), Telegram, Slack, retries, refusals, the ledger, and SMTP.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use hmac::{KeyInit, Mac};
use optionflow_pipeline::delivery::{ChannelsConfig, Delivery, DeliverySummary, Ledger};
use optionflow_schemas::Alert;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const LIMIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

#[derive(Default)]
struct Server {
    seen: Mutex<Vec<Seen>>,
    /// Statuses (and bodies) to answer with, in order; 200 once they run out.
    script: Mutex<VecDeque<(u16, &'static str)>>,
}

impl Server {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A local HTTP server recording every request; returns its base URL.
async fn serve(script: &[(u16, &'static str)]) -> (String, Arc<Server>) {
    let server = Arc::new(Server {
        script: Mutex::new(script.iter().copied().collect()),
        ..Default::default()
    });
    let state = server.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let state = state.clone();
        async move {
            state.seen.lock().unwrap().push(Seen {
                path: uri.path().to_string(),
                headers,
                body: body.to_vec(),
            });
            let (status, text) = state
                .script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or((200, "{\"ok\":true}"));
            let mut response = axum::response::Response::new(axum::body::Body::from(text));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            if status == 429 {
                response
                    .headers_mut()
                    .insert("retry-after", "0".parse().unwrap());
            }
            response
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), server)
}

fn alert(id: &str, channel: &str, headline: &str) -> Alert {
    Alert {
        event_id: id.into(),
        event_time: 1_704_207_600_000_000,
        underlying: "GME".into(),
        signal_id: format!("sig-{id}").into(),
        decision_id: format!("dec-{id}").into(),
        sector: "Consumer Discretionary".into(),
        direction: "bullish".into(),
        composite: 91.5,
        channel: channel.into(),
        dedupe_key: format!("dk-{id}").into(),
        headline: headline.into(),
        text: "Call IV is bid across the wing.\n\nThree factors agree & flow confirms.".into(),
        markdown: "**GME**".into(),
        route: "default".into(),
        group_key: "GME".into(),
        signal_ids: vec![format!("sig-{id}").into()],
        html: String::new(),
        telegram: String::new(),
    }
}

/// Fast settings: no waiting on the rate limit, millisecond backoffs.
fn fast(mut cfg: ChannelsConfig) -> ChannelsConfig {
    cfg.webhook.requests_per_minute = 60_000;
    cfg.webhook.initial_backoff_ms = 1;
    cfg.webhook.max_backoff_ms = 5;
    cfg.webhook.timeout_ms = 2_000;
    cfg.telegram.requests_per_minute = 60_000;
    cfg.slack.requests_per_minute = 60_000;
    cfg.email.requests_per_minute = 60_000;
    cfg.email.initial_backoff_ms = 1;
    cfg.email.max_backoff_ms = 5;
    cfg.email.timeout_ms = 5_000;
    cfg
}

const SECRET: &str = "s3cret-key";

fn env(k: &str) -> Option<String> {
    match k {
        "OPTIONFLOW_WEBHOOK_SECRET" => Some(SECRET.into()),
        "TELEGRAM_BOT_TOKEN" => Some("123456:ABC-def".into()),
        _ => None,
    }
}

/// Runs one delivery session over `alerts` and waits for every outcome.
async fn deliver(
    cfg: &ChannelsConfig,
    channels: &[&str],
    dir: &Path,
    alerts: &[Alert],
    env: &dyn Fn(&str) -> Option<String>,
) -> DeliverySummary {
    let channels: Vec<String> = channels.iter().map(|s| s.to_string()).collect();
    let delivery = Delivery::start(cfg, &channels, dir, Vec::new(), env)
        .unwrap()
        .expect("a channel to deliver to");
    let handle = delivery.handle();
    for a in alerts {
        assert!(handle.deliver(a).await);
    }
    drop(handle);
    tokio::time::timeout(LIMIT, delivery.finish())
        .await
        .expect("delivery finishes")
}

fn ledger(dir: &Path) -> Vec<optionflow_pipeline::delivery::LedgerEntry> {
    Ledger::read(&dir.join("deliveries.jsonl")).unwrap()
}

#[tokio::test]
async fn webhook_posts_the_alert_signed_with_its_id_and_a_second_run_sends_nothing() {
    let (base, server) = serve(&[]).await;
    let mut cfg = fast(ChannelsConfig::default());
    cfg.webhook.url = Some(format!("{base}/hook"));
    let dir = tempfile::tempdir().unwrap();
    let alerts = [
        alert("a1", "webhook", "GME bullish 91"),
        alert("a1-file", "file", "not sent: the file channel"),
    ];
    let done = deliver(&cfg, &["file", "webhook"], dir.path(), &alerts, &env).await;
    assert_eq!(done.delivered, 1);

    let seen = server.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let req = &seen[0];
    assert_eq!(req.path, "/hook");
    assert_eq!(req.body, serde_json::to_vec(&alerts[0]).unwrap());
    let back: Alert = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(back, alerts[0]);
    assert_eq!(req.headers["idempotency-key"], "a1");
    assert_eq!(req.headers["content-type"], "application/json");
    // Verified independently of the code under test.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&req.body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        req.headers["x-optionflow-signature"].to_str().unwrap(),
        format!("sha256={want}")
    );
    let entries = ledger(dir.path());
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].alert_id, "a1");
    assert_eq!(entries[0].channel, "webhook");
    assert_eq!(entries[0].status.as_str(), "delivered");
    assert_eq!(entries[0].attempts, 1);
    assert_eq!(entries[0].error, None);
    assert!(chrono::DateTime::parse_from_rfc3339(&entries[0].at).is_ok());

    // A restart over the same alerts with the same ledger sends nothing.
    let again = deliver(&cfg, &["file", "webhook"], dir.path(), &alerts, &env).await;
    assert_eq!(
        again,
        DeliverySummary {
            delivered: 0,
            failed: 0,
            skipped: 1
        }
    );
    assert_eq!(server.seen().len(), 1);
    assert_eq!(ledger(dir.path()).len(), 1);
}

#[tokio::test]
async fn a_500_then_a_429_are_retried_and_a_400_fails_at_once_with_its_error() {
    let (base, server) = serve(&[
        (500, "busy"),
        (429, "slow down"),
        (200, "ok"),
        (400, "bad payload: no such hook"),
    ])
    .await;
    let mut cfg = fast(ChannelsConfig::default());
    cfg.webhook.url = Some(format!("{base}/hook"));
    let dir = tempfile::tempdir().unwrap();
    let alerts = [
        alert("r1", "webhook", "retried"),
        alert("r2", "webhook", "refused"),
    ];
    let done = deliver(&cfg, &["webhook"], dir.path(), &alerts, &env).await;
    assert_eq!((done.delivered, done.failed), (1, 1));
    assert_eq!(server.seen().len(), 4);
    let entries = ledger(dir.path());
    assert_eq!(entries[0].alert_id, "r1");
    assert_eq!(entries[0].status.as_str(), "delivered");
    assert_eq!(entries[0].attempts, 3);
    assert_eq!(entries[1].alert_id, "r2");
    assert_eq!(entries[1].status.as_str(), "failed");
    assert_eq!(entries[1].attempts, 1);
    let error = entries[1].error.as_deref().unwrap();
    assert!(
        error.contains("HTTP 400") && error.contains("bad payload: no such hook"),
        "{error}"
    );
    // A failure is final too: a restart does not try it again.
    let again = deliver(&cfg, &["webhook"], dir.path(), &alerts, &env).await;
    assert_eq!(again.skipped, 2);
    assert_eq!(server.seen().len(), 4);
}

#[tokio::test]
async fn retries_run_out_and_the_last_cause_is_recorded() {
    let (base, server) = serve(&[(503, "down"), (503, "down"), (503, "still down")]).await;
    let mut cfg = fast(ChannelsConfig::default());
    cfg.webhook.url = Some(format!("{base}/hook"));
    cfg.webhook.max_retries = 2;
    let dir = tempfile::tempdir().unwrap();
    let done = deliver(
        &cfg,
        &["webhook"],
        dir.path(),
        &[alert("x", "webhook", "h")],
        &env,
    )
    .await;
    assert_eq!(done.failed, 1);
    assert_eq!(server.seen().len(), 3);
    let e = &ledger(dir.path())[0];
    assert_eq!(e.attempts, 3);
    let error = e.error.as_deref().unwrap();
    assert!(
        error.contains("HTTP 503") && error.contains("still down") && error.contains("3 attempts"),
        "{error}"
    );
}

#[tokio::test]
async fn an_unreachable_webhook_is_retried_then_failed() {
    // A port nothing listens on: bind, take the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = fast(ChannelsConfig::default());
    cfg.webhook.url = Some(format!("http://127.0.0.1:{port}/hook"));
    cfg.webhook.max_retries = 1;
    let dir = tempfile::tempdir().unwrap();
    let done = deliver(
        &cfg,
        &["webhook"],
        dir.path(),
        &[alert("u", "webhook", "h")],
        &env,
    )
    .await;
    assert_eq!(done.failed, 1);
    let e = &ledger(dir.path())[0];
    assert_eq!(e.attempts, 2);
    assert!(
        e.error.as_deref().unwrap().contains("connection error"),
        "{e:?}"
    );
}

#[tokio::test]
async fn telegram_sends_plain_text_to_the_bot_path() {
    let (base, server) = serve(&[]).await;
    let mut cfg = fast(ChannelsConfig::default());
    cfg.telegram.base_url = format!("{base}/");
    cfg.telegram.chat_id = Some("-100200300".into());
    let dir = tempfile::tempdir().unwrap();
    let a = alert("t1", "telegram", "GME *bullish* <b>91</b>");
    let done = deliver(
        &cfg,
        &["telegram"],
        dir.path(),
        std::slice::from_ref(&a),
        &env,
    )
    .await;
    assert_eq!(done.delivered, 1);
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/bot123456:ABC-def/sendMessage");
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "chat_id": "-100200300",
            "text": format!("GME *bullish* <b>91</b>\n\n{}\n\nalert {}", a.text, a.event_id),
            "disable_web_page_preview": true,
        })
    );
}

#[tokio::test]
async fn telegram_sends_the_narratives_telegram_html_with_its_parse_mode() {
    let (base, server) = serve(&[]).await;
    let mut cfg = fast(ChannelsConfig::default());
    cfg.telegram.base_url = format!("{base}/");
    cfg.telegram.chat_id = Some("7".into());
    let dir = tempfile::tempdir().unwrap();
    let mut rich = alert("t3", "telegram", "GME bullish");
    rich.telegram = "<b>GME</b> bullish &amp; <i>91</i>".into();
    // Too long to send whole: cutting HTML could leave a tag open, so it goes as plain text.
    let mut long = alert("t4", "telegram", "AMC bullish");
    long.telegram = format!("<b>AMC</b> {}", "x".repeat(5000));
    let done = deliver(&cfg, &["telegram"], dir.path(), &[rich, long], &env).await;
    assert_eq!(done.delivered, 2);
    let seen = server.seen();
    let bodies: Vec<serde_json::Value> = seen
        .iter()
        .map(|s| serde_json::from_slice(&s.body).unwrap())
        .collect();
    assert_eq!(
        bodies[0],
        serde_json::json!({
            "chat_id": "7",
            "text": format!("<b>GME</b> bullish &amp; <i>91</i>\n\n<code>alert {}</code>", "t3"),
            "parse_mode": "HTML",
            "disable_web_page_preview": true,
        })
    );
    assert!(bodies[1].get("parse_mode").is_none());
    let plain = bodies[1]["text"].as_str().unwrap();
    assert!(plain.starts_with("AMC bullish\n\n"));
    assert!(plain.ends_with("\n\nalert t4"), "{plain}");
}

#[tokio::test]
async fn telegram_errors_never_show_the_token() {
    let (base, _server) = serve(&[(401, "{\"ok\":false,\"description\":\"Unauthorized\"}")]).await;
    let mut cfg = fast(ChannelsConfig::default());
    cfg.telegram.base_url = base;
    cfg.telegram.chat_id = Some("1".into());
    let dir = tempfile::tempdir().unwrap();
    deliver(
        &cfg,
        &["telegram"],
        dir.path(),
        &[alert("t2", "telegram", "h")],
        &env,
    )
    .await;
    let e = &ledger(dir.path())[0];
    let error = e.error.as_deref().unwrap();
    assert!(
        error.contains("HTTP 401") && error.contains("Unauthorized"),
        "{error}"
    );
    assert!(!error.contains("ABC-def"), "{error}");
}

#[tokio::test]
async fn slack_posts_the_headline_and_text_escaped() {
    let (base, server) = serve(&[]).await;
    let cfg = fast(ChannelsConfig::default());
    let url = format!("{base}/services/T000/B000/XXXX");
    let slack_env = move |k: &str| (k == "SLACK_WEBHOOK_URL").then(|| url.clone());
    let dir = tempfile::tempdir().unwrap();
    let a = alert("s1", "slack", "GME <!channel> bullish");
    let done = deliver(&cfg, &["slack"], dir.path(), &[a], &slack_env).await;
    assert_eq!(done.delivered, 1);
    let seen = server.seen();
    assert_eq!(seen[0].path, "/services/T000/B000/XXXX");
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "text": "GME &lt;!channel&gt; bullish\nCall IV is bid across the wing.\n\nThree factors agree &amp; flow confirms.\n\nalert `s1`"
        })
    );
}

#[test]
fn a_missing_secret_names_its_variable() {
    let mut cfg = ChannelsConfig::default();
    cfg.webhook.url = Some("http://127.0.0.1:9/hook".into());
    let dir = tempfile::tempdir().unwrap();
    let none = |_: &str| None;
    for (channel, var) in [
        ("webhook", "OPTIONFLOW_WEBHOOK_SECRET"),
        ("slack", "SLACK_WEBHOOK_URL"),
    ] {
        let err = Delivery::start(&cfg, &[channel.to_string()], dir.path(), Vec::new(), &none)
            .unwrap_err()
            .to_string();
        assert!(err.contains(var), "{err}");
    }
    cfg.telegram.chat_id = Some("1".into());
    let err = Delivery::start(&cfg, &["telegram".into()], dir.path(), Vec::new(), &none)
        .unwrap_err()
        .to_string();
    assert!(err.contains("TELEGRAM_BOT_TOKEN"), "{err}");
    // Only the file channel: nothing to start.
    assert!(
        Delivery::start(&cfg, &["file".into()], dir.path(), Vec::new(), &none)
            .unwrap()
            .is_none()
    );
}

/// A minimal SMTP server: one session, the DATA captured.
async fn smtp_server() -> (u16, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        write
            .write_all(b"220 localhost ESMTP test\r\n")
            .await
            .unwrap();
        let mut data = String::new();
        let mut in_data = false;
        while let Ok(Some(line)) = lines.next_line().await {
            if in_data {
                if line == "." {
                    in_data = false;
                    write.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                } else {
                    data.push_str(&line);
                    data.push('\n');
                }
                continue;
            }
            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" | "HELO" => b"250 localhost\r\n",
                "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 2.1.0 OK\r\n",
                "DATA" => {
                    in_data = true;
                    b"354 end with .\r\n"
                }
                "QUIT" => {
                    write.write_all(b"221 2.0.0 bye\r\n").await.unwrap();
                    break;
                }
                _ => b"502 5.5.2 not implemented\r\n",
            };
            write.write_all(reply).await.unwrap();
        }
        data
    });
    (port, task)
}

/// Undoes quoted-printable (soft line breaks and =XX), leaving 7bit text as it is.
fn unqp(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 3 <= bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn email_is_multipart_alternative_with_escaped_html() {
    let (port, server) = smtp_server().await;
    let mut cfg = fast(ChannelsConfig::default());
    cfg.email.smtp_host = Some("127.0.0.1".into());
    cfg.email.smtp_port = port;
    cfg.email.tls = optionflow_pipeline::delivery::SmtpTls::None;
    cfg.email.from = Some("optionflow <alerts@example.com>".into());
    cfg.email.to = vec!["desk@example.com".into()];
    let dir = tempfile::tempdir().unwrap();
    let a = alert("e1", "email", "GME <script>alert(1)</script> bullish");
    let done = deliver(&cfg, &["email"], dir.path(), &[a], &env).await;
    assert_eq!(done.delivered, 1, "{:?}", ledger(dir.path()));
    let data = tokio::time::timeout(LIMIT, server)
        .await
        .unwrap()
        .unwrap()
        .replace('\r', "");
    assert!(data.contains("To: desk@example.com"), "{data}");
    assert!(data.contains("alerts@example.com"), "{data}");
    assert!(
        data.contains("Content-Type: multipart/alternative"),
        "{data}"
    );
    let plain = data
        .find("Content-Type: text/plain")
        .expect("a text/plain part");
    let html = data
        .find("Content-Type: text/html")
        .expect("a text/html part");
    assert!(plain < html, "text first, HTML last (the preferred part)");
    let text_part = unqp(&data[plain..html]);
    let html_part = unqp(&data[html..]);
    assert!(
        text_part.contains("GME <script>alert(1)</script> bullish"),
        "{text_part}"
    );
    assert!(
        html_part.contains("<h2>GME &lt;script&gt;alert(1)&lt;/script&gt; bullish</h2>"),
        "{html_part}"
    );
    assert!(html_part.contains("agree &amp; flow"), "{html_part}");
    assert!(!html_part.contains("<script>"), "{html_part}");
    let entry = &ledger(dir.path())[0];
    assert_eq!((entry.channel.as_str(), entry.attempts), ("email", 1));
}

#[tokio::test]
async fn an_smtp_server_that_is_down_is_a_recorded_failure() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = fast(ChannelsConfig::default());
    cfg.email.smtp_host = Some("127.0.0.1".into());
    cfg.email.smtp_port = port;
    cfg.email.tls = optionflow_pipeline::delivery::SmtpTls::None;
    cfg.email.from = Some("alerts@example.com".into());
    cfg.email.to = vec!["desk@example.com".into()];
    cfg.email.max_retries = 1;
    let dir = tempfile::tempdir().unwrap();
    let done = deliver(
        &cfg,
        &["email"],
        dir.path(),
        &[alert("e2", "email", "h")],
        &env,
    )
    .await;
    assert_eq!(done.failed, 1);
    let e = &ledger(dir.path())[0];
    assert_eq!(e.attempts, 2);
    assert!(e.error.as_deref().unwrap().starts_with("SMTP"), "{e:?}");
}

#[tokio::test]
async fn the_backlog_is_sent_first_minus_what_the_ledger_has() {
    let (base, server) = serve(&[]).await;
    let mut cfg = fast(ChannelsConfig::default());
    cfg.webhook.url = Some(format!("{base}/hook"));
    let dir = tempfile::tempdir().unwrap();
    deliver(
        &cfg,
        &["webhook"],
        dir.path(),
        &[alert("b1", "webhook", "h")],
        &env,
    )
    .await;
    // Restarted: b1 and b2 were covered by the checkpoint (the backlog), b3 is new.
    let delivery = Delivery::start(
        &cfg,
        &["file".into(), "webhook".into()],
        dir.path(),
        vec![alert("b1", "webhook", "h"), alert("b2", "webhook", "h")],
        &env,
    )
    .unwrap()
    .unwrap();
    assert!(
        delivery
            .handle()
            .deliver(&alert("b3", "webhook", "h"))
            .await
    );
    let done = tokio::time::timeout(LIMIT, delivery.finish())
        .await
        .unwrap();
    assert_eq!((done.delivered, done.skipped), (2, 1));
    let keys: Vec<String> = server
        .seen()
        .iter()
        .map(|s| s.headers["idempotency-key"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, ["b1", "b2", "b3"]);
}
