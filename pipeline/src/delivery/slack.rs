//! The Slack channel: an incoming webhook. Its URL is the credential, so it comes only from the
//! environment and never appears in a log or an error.

use super::{http_client, post_json, secret, Attempt, DeliveryError};
use optionflow_operators::config::Problems;
use optionflow_operators::ConfigErrors;
use optionflow_schemas::Alert;
use serde::{Deserialize, Serialize};

/// The `[channels.slack]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct SlackConfig {
    /// Name of the environment variable holding the incoming-webhook URL (a secret).
    pub webhook_url_env: String,
    /// Messages per minute, spaced evenly (Slack allows about one a second per webhook).
    pub requests_per_minute: u32,
    /// Retries after the first attempt, on timeouts, connection errors, 429 and 5xx.
    pub max_retries: u32,
    /// First retry delay, ms (doubles each retry, ±50% jitter).
    pub initial_backoff_ms: u64,
    /// Longest retry delay, ms (also caps a `Retry-After`).
    pub max_backoff_ms: u64,
    /// Timeout of one request, ms.
    pub timeout_ms: u64,
}

impl Default for SlackConfig {
    fn default() -> Self {
        Self {
            webhook_url_env: "SLACK_WEBHOOK_URL".into(),
            requests_per_minute: 60,
            max_retries: 5,
            initial_backoff_ms: 500,
            max_backoff_ms: 30_000,
            timeout_ms: 10_000,
        }
    }
}

impl SlackConfig {
    /// Every problem (the URL itself is checked at start, when it is read from the
    /// environment).
    pub fn validate(&self, _enabled: bool) -> Result<(), ConfigErrors> {
        let mut p = Problems::default();
        p.check(
            !self.webhook_url_env.trim().is_empty(),
            "webhook-url-env",
            "name the environment variable that holds the webhook URL",
        );
        self.limits().validate(&mut p);
        p.finish()
    }
}

/// Slack's escaping of `&`, `<` and `>` in message text, so data cannot form a link or mention.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The JSON body: `{"text": headline + "\n" + text}`, escaped, then a last line with the
/// alert's id (Slack's incoming webhooks take no idempotency key; this lets a reader or a bot
/// drop the one repeat a crash between sending and recording could cause).
pub fn body(alert: &Alert) -> serde_json::Value {
    let text = escape(&format!("{}\n{}", alert.headline, alert.text));
    serde_json::json!({ "text": format!("{text}\n\nalert `{}`", alert.event_id) })
}

/// The Slack sender.
pub(super) struct Slack {
    client: reqwest::Client,
    url: String,
}

impl Slack {
    pub(super) fn new(
        cfg: &SlackConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, DeliveryError> {
        let url = secret("slack", &cfg.webhook_url_env, "incoming-webhook URL", env)?;
        match url::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            // Never print the value: it is the credential.
            _ => {
                return Err(DeliveryError::Config {
                    channel: "slack",
                    message: format!("{} does not hold an http(s) URL", cfg.webhook_url_env),
                })
            }
        }
        Ok(Self {
            client: http_client("slack", &cfg.limits())?,
            url,
        })
    }

    pub(super) async fn attempt(&self, alert: &Alert) -> Attempt {
        let body = serde_json::to_vec(&body(alert)).unwrap_or_default();
        post_json(
            self.client.post(&self.url),
            body,
            "the slack webhook",
            false,
        )
        .await
    }
}
