//! Alert delivery: the `[channels]` section and the task that sends alerts to webhooks,
//! Telegram, Slack and email.
//!
//! The dispatch stage emits one [`Alert`] per configured channel; the alert sink writes each to
//! `alerts.jsonl` (the `file` channel) and then hands it to a [`DeliveryHandle`]. Delivery runs
//! behind a bounded queue in its own tasks, one worker per channel, so it never reorders or
//! alters the pipeline's outputs: `alerts.jsonl` is the same whether a channel is up or down.
//!
//! Each worker waits for its channel's `governor` quota, sends, and retries timeouts, connection
//! errors, 429 (honouring `Retry-After`) and 5xx with exponential backoff and ±50% jitter
//! (`backoff`); any other refusal fails at once. The final outcome of every (alert, channel)
//! goes to the [`ledger`] (`<data-dir>/deliveries.jsonl`, fsync'd); an alert already there is
//! never sent again, so a resumed session, which re-emits the alerts after its last checkpoint
//! with the same ids, does not resend them.
//!
//! ## Layout
//! - [`webhook`]: JSON body, HMAC-SHA256 signature, idempotency key.
//! - [`telegram`]: the Bot API's `sendMessage`, plain text.
//! - [`slack`]: an incoming webhook.
//! - [`email`]: SMTP through `lettre`, text and HTML parts.
//! - [`ledger`]: the record of final outcomes.

pub mod email;
pub mod ledger;
pub mod slack;
pub mod telegram;
pub mod webhook;

use crate::pacing::{backoff_policy, env_secret, even_limiter, parse_retry_after};
pub use email::{EmailConfig, SmtpTls};
pub use ledger::{Ledger, LedgerEntry};
pub use slack::SlackConfig;
pub use telegram::TelegramConfig;
pub use webhook::WebhookConfig;

use governor::DefaultDirectRateLimiter;
use optionflow_operators::config::Problems;
use optionflow_operators::ConfigErrors;
use optionflow_schemas::Alert;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// The name of the ledger file in the data directory.
pub const LEDGER_FILE: &str = "deliveries.jsonl";

/// The `[channels]` section: how alerts reach each channel `[dispatch] channels` names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ChannelsConfig {
    /// Alerts waiting for delivery, across channels, before the alert sink waits for the
    /// delivery task (the outputs never change; only the pipeline slows while it is full).
    pub queue_capacity: usize,
    /// `[channels.webhook]`.
    pub webhook: WebhookConfig,
    /// `[channels.telegram]`.
    pub telegram: TelegramConfig,
    /// `[channels.slack]`.
    pub slack: SlackConfig,
    /// `[channels.email]`.
    pub email: EmailConfig,
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 1024,
            webhook: WebhookConfig::default(),
            telegram: TelegramConfig::default(),
            slack: SlackConfig::default(),
            email: EmailConfig::default(),
        }
    }
}

impl ChannelsConfig {
    /// Every problem, keys relative to `[channels]`; a channel listed in `enabled`
    /// (`[dispatch] channels`) must also have its required keys.
    pub fn validate(&self, enabled: &[String]) -> Result<(), ConfigErrors> {
        let on = |name: &str| enabled.iter().any(|c| c == name);
        let mut p = Problems::default();
        p.check(
            self.queue_capacity >= 1,
            "queue-capacity",
            "must be at least 1",
        );
        p.extend_section("webhook", self.webhook.validate(on("webhook")));
        p.extend_section("telegram", self.telegram.validate(on("telegram")));
        p.extend_section("slack", self.slack.validate(on("slack")));
        p.extend_section("email", self.email.validate(on("email")));
        p.finish()
    }
}

/// Rate limit, retries and timeout of one channel (the keys every channel section has).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Messages per minute, spaced evenly.
    pub requests_per_minute: u32,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First retry delay, ms.
    pub initial_backoff_ms: u64,
    /// Longest retry delay, ms (also caps a `Retry-After`).
    pub max_backoff_ms: u64,
    /// Timeout of one attempt, ms.
    pub timeout_ms: u64,
}

impl Limits {
    fn validate(&self, p: &mut Problems) {
        p.check(
            self.requests_per_minute >= 1,
            "requests-per-minute",
            "must be at least 1",
        );
        p.check(self.timeout_ms >= 1, "timeout-ms", "must be at least 1");
        p.check(
            self.initial_backoff_ms >= 1 && self.initial_backoff_ms <= self.max_backoff_ms,
            "initial-backoff-ms",
            "must be at least 1 and at most max-backoff-ms",
        );
    }
}

/// Checks an `http(s)` URL option: present when `required`, parseable when present.
fn check_url(p: &mut Problems, key: &str, value: Option<&str>, required: bool, why: &str) {
    match value {
        None => p.check(!required, key, why),
        Some(u) => match url::Url::parse(u) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => p.push(key, format!("{u:?} is not an http(s) URL")),
        },
    }
}

/// Delivery could not start.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// A channel is misconfigured or its secret is missing.
    #[error("channel {channel}: {message}")]
    Config {
        /// The channel.
        channel: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
    /// The ledger could not be read or written.
    #[error("delivery ledger {path}: {source}")]
    Ledger {
        /// The ledger file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// Reads a secret from the environment; a missing or empty one is an error naming the variable.
fn secret(
    channel: &'static str,
    var: &str,
    what: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, DeliveryError> {
    match env_secret(var, env) {
        Some(v) => Ok(v),
        None => Err(DeliveryError::Config {
            channel,
            message: format!(
                "set {var} in the environment to the {what} (secrets are never read from config files)"
            ),
        }),
    }
}

/// What one attempt came to.
#[derive(Debug)]
enum Attempt {
    /// Accepted by the channel.
    Delivered,
    /// Worth another try (timeout, connection error, 429, 5xx, a transient SMTP reply).
    Retry {
        cause: String,
        /// The channel's own wait (`Retry-After`), replacing the computed backoff.
        after: Option<Duration>,
    },
    /// Refused for good.
    Fail(String),
}

/// One channel's sender.
enum Sender {
    Webhook(webhook::Webhook),
    Telegram(telegram::Telegram),
    Slack(slack::Slack),
    Email(Box<email::Email>),
}

impl Sender {
    async fn attempt(&self, alert: &Alert) -> Attempt {
        match self {
            Sender::Webhook(s) => s.attempt(alert).await,
            Sender::Telegram(s) => s.attempt(alert).await,
            Sender::Slack(s) => s.attempt(alert).await,
            Sender::Email(s) => s.attempt(alert).await,
        }
    }
}

/// Sends a JSON body and classifies the response (shared by the HTTP channels). `shown` is what
/// error messages name instead of the URL, which may hold a secret (Telegram's token, Slack's
/// webhook URL).
async fn post_json(
    request: reqwest::RequestBuilder,
    body: Vec<u8>,
    shown: &str,
    retry_after_in_body: bool,
) -> Attempt {
    let response = match request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            let kind = if e.is_timeout() {
                "timeout"
            } else {
                "connection error"
            };
            return Attempt::Retry {
                cause: format!("{kind} on {shown}: {}", e.without_url()),
                after: None,
            };
        }
    };
    let status = response.status().as_u16();
    let header_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = response.bytes().await.unwrap_or_default();
    let excerpt = String::from_utf8_lossy(&body[..body.len().min(300)])
        .trim()
        .to_string();
    match status {
        200..=299 => Attempt::Delivered,
        429 => {
            // Telegram puts its wait in the body: {"parameters": {"retry_after": 5}}.
            let body_after = retry_after_in_body
                .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
                .flatten()
                .and_then(|v| v["parameters"]["retry_after"].as_u64())
                .map(Duration::from_secs);
            Attempt::Retry {
                cause: format!("HTTP 429 from {shown}: {excerpt}"),
                after: header_after.or(body_after),
            }
        }
        500..=599 => Attempt::Retry {
            cause: format!("HTTP {status} from {shown}: {excerpt}"),
            after: None,
        },
        _ => Attempt::Fail(format!("HTTP {status} from {shown}: {excerpt}")),
    }
}

/// Every channel config carries the five limit keys flat in its own section; this reads them as
/// one [`Limits`].
macro_rules! channel_limits {
    ($($config:ty),+ $(,)?) => {$(
        impl $config {
            /// The rate limit, retries and timeout.
            pub fn limits(&self) -> Limits {
                Limits {
                    requests_per_minute: self.requests_per_minute,
                    max_retries: self.max_retries,
                    initial_backoff_ms: self.initial_backoff_ms,
                    max_backoff_ms: self.max_backoff_ms,
                    timeout_ms: self.timeout_ms,
                }
            }
        }
    )+};
}

channel_limits!(
    webhook::WebhookConfig,
    telegram::TelegramConfig,
    slack::SlackConfig,
    email::EmailConfig,
);

/// An HTTP client with the channel's timeout.
fn http_client(channel: &'static str, limits: &Limits) -> Result<reqwest::Client, DeliveryError> {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(limits.timeout_ms))
        .user_agent(concat!("optionflow/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| DeliveryError::Config {
            channel,
            message: format!("HTTP client: {e}"),
        })
}

/// The final outcome of one alert on one channel: logs (failures at warn) and counts
/// `optionflow_alerts_delivered_total{channel,status}`, so the log and the metric agree.
struct DeliveryOutcome<'a> {
    entry: &'a LedgerEntry,
}

impl DeliveryOutcome<'_> {
    fn emit(&self) {
        let e = self.entry;
        metrics::counter!(
            "optionflow_alerts_delivered_total",
            "channel" => e.channel.clone(),
            "status" => e.status.as_str()
        )
        .increment(1);
        match &e.error {
            None => tracing::info!(
                alert_id = %e.alert_id,
                channel = %e.channel,
                attempts = e.attempts,
                "alert delivered"
            ),
            Some(error) => tracing::warn!(
                alert_id = %e.alert_id,
                channel = %e.channel,
                attempts = e.attempts,
                error = %error,
                "alert delivery failed"
            ),
        }
    }
}

/// One channel's worker: rate limit, retries, ledger.
struct Worker {
    channel: &'static str,
    sender: Sender,
    limits: Limits,
    limiter: DefaultDirectRateLimiter,
    ledger: Arc<Mutex<Ledger>>,
    counts: Arc<Mutex<DeliverySummary>>,
    pending: Arc<AtomicU64>,
}

impl Worker {
    fn new(
        channel: &'static str,
        sender: Sender,
        limits: Limits,
        ledger: Arc<Mutex<Ledger>>,
        counts: Arc<Mutex<DeliverySummary>>,
        pending: Arc<AtomicU64>,
    ) -> Self {
        Self {
            channel,
            sender,
            limits,
            limiter: even_limiter(limits.requests_per_minute),
            ledger,
            counts,
            pending,
        }
    }

    async fn run(self, mut rx: mpsc::Receiver<Alert>) {
        while let Some(alert) = rx.recv().await {
            let (attempts, error) = self.deliver(&alert).await;
            let entry = LedgerEntry {
                alert_id: alert.event_id.to_string(),
                channel: self.channel.to_string(),
                status: if error.is_none() {
                    ledger::Status::Delivered
                } else {
                    ledger::Status::Failed
                },
                attempts,
                error,
                at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            };
            DeliveryOutcome { entry: &entry }.emit();
            let recorded = self
                .ledger
                .lock()
                .map_err(|_| std::io::Error::other("ledger lock poisoned"))
                .and_then(|mut l| l.record(&entry));
            if let Err(e) = recorded {
                // The alert went out (or failed) but a restart may try it again.
                tracing::error!(alert_id = %entry.alert_id, channel = self.channel, error = %e,
                    "could not record the delivery in the ledger");
            }
            if let Ok(mut c) = self.counts.lock() {
                match entry.status {
                    ledger::Status::Delivered => c.delivered += 1,
                    ledger::Status::Failed => c.failed += 1,
                }
            }
            settle(&self.pending);
        }
    }

    /// Attempts until delivered, refused, or out of retries: (attempts, error).
    async fn deliver(&self, alert: &Alert) -> (u32, Option<String>) {
        let cap = Duration::from_millis(self.limits.max_backoff_ms);
        let mut policy = backoff_policy(self.limits.initial_backoff_ms, self.limits.max_backoff_ms);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            self.limiter.until_ready().await;
            match self.sender.attempt(alert).await {
                Attempt::Delivered => return (attempts, None),
                Attempt::Fail(e) => return (attempts, Some(e)),
                Attempt::Retry { cause, after } => {
                    if attempts > self.limits.max_retries {
                        return (
                            attempts,
                            Some(format!("{cause} (gave up after {attempts} attempts)")),
                        );
                    }
                    let computed =
                        backoff::backoff::Backoff::next_backoff(&mut policy).unwrap_or(cap);
                    let wait = after.map_or(computed, |a| a.min(cap));
                    tracing::debug!(
                        alert_id = %alert.event_id,
                        channel = self.channel,
                        cause = %cause,
                        wait_ms = wait.as_millis() as u64,
                        "delivery attempt failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// What a delivery task did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliverySummary {
    /// Alerts delivered.
    pub delivered: u64,
    /// Alerts that failed after their retries.
    pub failed: u64,
    /// Alerts skipped because the ledger already had them.
    pub skipped: u64,
}

/// Hands alerts to the delivery task; cheap to clone.
#[derive(Debug, Clone)]
pub struct DeliveryHandle {
    tx: mpsc::Sender<Alert>,
    /// Alerts handed over and not yet at their final outcome.
    pending: Arc<AtomicU64>,
}

impl DeliveryHandle {
    /// Queues `alert` for its channel. `file` alerts are not delivered further (the sink wrote
    /// them). Waits only while the queue is full; `false` once the delivery task has stopped.
    pub async fn deliver(&self, alert: &Alert) -> bool {
        if alert.channel == "file" {
            return true;
        }
        self.pending.fetch_add(1, Ordering::SeqCst);
        let sent = self.tx.send(alert.clone()).await.is_ok();
        if !sent {
            self.pending.fetch_sub(1, Ordering::SeqCst);
        }
        sent
    }

    /// Waits until every alert handed over so far has its final outcome in the ledger
    /// (delivered, failed after its retries, or skipped): a Kafka-mode dispatch checkpoints
    /// only then, so a checkpoint never covers an alert that might not have gone out.
    pub async fn settled(&self) {
        while self.pending.load(Ordering::SeqCst) > 0 {
            if self.tx.is_closed() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The running delivery task.
#[derive(Debug)]
pub struct Delivery {
    handle: DeliveryHandle,
    task: tokio::task::JoinHandle<()>,
    counts: Arc<Mutex<DeliverySummary>>,
}

impl Delivery {
    /// Starts delivery to the channels in `enabled` (`[dispatch] channels`) other than `file`,
    /// with the ledger in `data_dir`; `None` when there is none. Secrets are read through
    /// `env` (pass `|k| std::env::var(k).ok()`); a missing one is an error naming the variable.
    /// `backlog` is sent first (minus what the ledger holds): the alerts a checkpoint covers,
    /// which a resumed session does not emit again.
    pub fn start(
        cfg: &ChannelsConfig,
        enabled: &[String],
        data_dir: &Path,
        backlog: Vec<Alert>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Delivery>, DeliveryError> {
        Self::start_shared(cfg, enabled, data_dir, backlog, env, None)
    }

    /// As [`Delivery::start`], with the ledger also kept in ScyllaDB when `shared` is given, so
    /// whichever process runs dispatch next knows what went out.
    pub fn start_shared(
        cfg: &ChannelsConfig,
        enabled: &[String],
        data_dir: &Path,
        backlog: Vec<Alert>,
        env: &dyn Fn(&str) -> Option<String>,
        shared: Option<Arc<crate::scylla::ScyllaState>>,
    ) -> Result<Option<Delivery>, DeliveryError> {
        let names: BTreeSet<&str> = enabled
            .iter()
            .map(String::as_str)
            .filter(|c| *c != "file")
            .collect();
        if names.is_empty() {
            return Ok(None);
        }
        let path = data_dir.join(LEDGER_FILE);
        let ledger = Ledger::open(&path).map_err(|source| DeliveryError::Ledger {
            path: path.clone(),
            source,
        })?;
        let ledger = match shared {
            Some(db) => ledger.with_shared(db),
            None => ledger,
        };
        let ledger = Arc::new(Mutex::new(ledger));
        let counts = Arc::new(Mutex::new(DeliverySummary::default()));
        let pending = Arc::new(AtomicU64::new(0));
        let mut workers = BTreeMap::new();
        for name in names {
            let (channel, sender, limits) = match name {
                "webhook" => (
                    "webhook",
                    Sender::Webhook(webhook::Webhook::new(&cfg.webhook, env)?),
                    cfg.webhook.limits(),
                ),
                "telegram" => (
                    "telegram",
                    Sender::Telegram(telegram::Telegram::new(&cfg.telegram, env)?),
                    cfg.telegram.limits(),
                ),
                "slack" => (
                    "slack",
                    Sender::Slack(slack::Slack::new(&cfg.slack, env)?),
                    cfg.slack.limits(),
                ),
                "email" => (
                    "email",
                    Sender::Email(Box::new(email::Email::new(&cfg.email, env)?)),
                    cfg.email.limits(),
                ),
                other => {
                    return Err(DeliveryError::Config {
                        channel: "dispatch",
                        message: format!("{other:?} is not a channel this version delivers to"),
                    })
                }
            };
            workers.insert(
                channel.to_string(),
                Worker::new(
                    channel,
                    sender,
                    limits,
                    ledger.clone(),
                    counts.clone(),
                    pending.clone(),
                ),
            );
        }
        let capacity = cfg.queue_capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let task = tokio::spawn(route(
            rx,
            backlog,
            workers,
            ledger,
            counts.clone(),
            capacity,
            pending.clone(),
        ));
        Ok(Some(Delivery {
            handle: DeliveryHandle { tx, pending },
            task,
            counts,
        }))
    }

    /// A handle for the alert sink.
    pub fn handle(&self) -> DeliveryHandle {
        self.handle.clone()
    }

    /// Waits until every queued alert has its final outcome (call after every handle is
    /// dropped), logs the counts and returns them.
    pub async fn finish(self) -> DeliverySummary {
        drop(self.handle);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the delivery task panicked");
        }
        let done = self.counts.lock().map(|c| *c).unwrap_or_default();
        tracing::info!(
            delivered = done.delivered,
            failed = done.failed,
            skipped = done.skipped,
            "alert delivery finished"
        );
        done
    }
}

/// Routes each alert to its channel's worker, skipping what the ledger (or this run) already
/// has; when the queue closes, lets the workers drain and waits for them.
async fn route(
    mut rx: mpsc::Receiver<Alert>,
    backlog: Vec<Alert>,
    workers: BTreeMap<String, Worker>,
    ledger: Arc<Mutex<Ledger>>,
    counts: Arc<Mutex<DeliverySummary>>,
    capacity: usize,
    pending: Arc<AtomicU64>,
) {
    let mut queues = BTreeMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    for (name, worker) in workers {
        let (tx, wrx) = mpsc::channel(capacity);
        queues.insert(name, tx);
        tasks.spawn(worker.run(wrx));
    }
    let mut seen = BTreeSet::new();
    let mut unrouted = BTreeSet::new();
    let mut backlog = backlog.into_iter();
    loop {
        // The backlog was never counted as pending; what comes from the handle was.
        let (alert, counted) = match backlog.next() {
            Some(a) => (a, false),
            None => match rx.recv().await {
                Some(a) => (a, true),
                None => break,
            },
        };
        let done_here = || {
            if counted {
                settle(&pending);
            }
        };
        let Some(queue) = queues.get(&alert.channel) else {
            done_here();
            if alert.channel != "file" && unrouted.insert(alert.channel.clone()) {
                tracing::warn!(channel = %alert.channel, "alerts for a channel without delivery are not sent");
            }
            continue;
        };
        let key = (alert.event_id.clone(), alert.channel.clone());
        let done = ledger
            .lock()
            .map(|mut l| l.contains(&key.0, &key.1))
            .unwrap_or(false);
        if done || !seen.insert(key) {
            if let Ok(mut c) = counts.lock() {
                c.skipped += 1;
            }
            done_here();
            continue;
        }
        if !counted {
            // A worker settles every alert it finishes, backlog or not.
            pending.fetch_add(1, Ordering::SeqCst);
        }
        if queue.send(alert).await.is_err() {
            tracing::error!("a delivery worker stopped early");
            settle(&pending);
        }
    }
    drop(queues);
    while tasks.join_next().await.is_some() {}
}

/// One alert reached its final outcome.
fn settle(pending: &AtomicU64) {
    let _ = pending.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            html_escape(r#"<script>alert("x&y")</script> it's"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt; it&#39;s"
        );
        assert_eq!(html_escape("GME ↑ 92"), "GME ↑ 92");
    }

    fn channels(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_validate_when_no_channel_is_listed() {
        ChannelsConfig::default()
            .validate(&channels(&["file"]))
            .unwrap();
    }

    #[test]
    fn a_listed_channel_needs_its_required_keys_and_every_problem_is_reported() {
        let mut cfg = ChannelsConfig::default();
        cfg.webhook.requests_per_minute = 0;
        cfg.slack.initial_backoff_ms = 0;
        cfg.telegram.base_url = "ftp://x".into();
        let err = cfg
            .validate(&channels(&[
                "file", "webhook", "telegram", "slack", "email",
            ]))
            .unwrap_err()
            .0
            .join("\n");
        for want in [
            "webhook.url: set url",
            "webhook.requests-per-minute: must be at least 1",
            "telegram.chat-id: set chat-id",
            "telegram.base-url: \"ftp://x\" is not an http(s) URL",
            "slack.initial-backoff-ms",
            "email.smtp-host: set smtp-host",
            "email.from: set from",
            "email.to: name at least one recipient",
        ] {
            assert!(err.contains(want), "{want:?} missing from\n{err}");
        }
        // Unlisted channels only need values that make sense.
        cfg.webhook.requests_per_minute = 1;
        cfg.slack.initial_backoff_ms = 1;
        cfg.telegram.base_url = "https://api.telegram.org".into();
        cfg.validate(&channels(&["file"])).unwrap();
    }

    #[test]
    fn bad_addresses_and_urls_are_named() {
        let mut cfg = ChannelsConfig::default();
        cfg.webhook.url = Some("not a url".into());
        cfg.email.smtp_host = Some("smtp.example.com".into());
        cfg.email.from = Some("optionflow".into());
        cfg.email.to = vec!["desk@example.com".into(), "@".into()];
        let err = cfg
            .validate(&channels(&["webhook", "email"]))
            .unwrap_err()
            .0
            .join("\n");
        assert!(
            err.contains("webhook.url: \"not a url\" is not an http(s) URL"),
            "{err}"
        );
        assert!(
            err.contains("email.from: \"optionflow\" is not an address"),
            "{err}"
        );
        assert!(err.contains("email.to: \"@\" is not an address"), "{err}");
        assert!(!err.contains("desk@example.com"), "{err}");
    }
}
