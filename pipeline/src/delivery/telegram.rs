//! The Telegram channel: the Bot API's `sendMessage`. An alert carrying the explain stage's
//! Telegram narrative (Telegram's HTML subset, every value from data escaped) is sent with
//! `parse_mode: HTML`; one without it, or one too long to send whole (cutting markup could
//! leave a tag open, which Telegram refuses), goes as plain text with no `parse_mode`, so
//! nothing in it can break the formatting.

use super::{check_url, http_client, post_json, secret, Attempt, DeliveryError};
use optionflow_operators::config::Problems;
use optionflow_operators::ConfigErrors;
use optionflow_schemas::Alert;
use serde::{Deserialize, Serialize};

/// The environment variable holding the bot token.
pub const TOKEN_ENV: &str = "TELEGRAM_BOT_TOKEN";
/// Telegram's limit on a message's length, in characters.
const MAX_CHARS: usize = 4096;

/// The `[channels.telegram]` section. The bot token is read only from `TELEGRAM_BOT_TOKEN`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct TelegramConfig {
    /// The Bot API's base URL.
    pub base_url: String,
    /// The chat, group or channel to post to: a numeric id or `@channelname` (required when
    /// `[dispatch] channels` lists "telegram").
    pub chat_id: Option<String>,
    /// Messages per minute, spaced evenly (Telegram allows about 20 a minute into one group).
    pub requests_per_minute: u32,
    /// Retries after the first attempt, on timeouts, connection errors, 429 and 5xx.
    pub max_retries: u32,
    /// First retry delay, ms (doubles each retry, ±50% jitter).
    pub initial_backoff_ms: u64,
    /// Longest retry delay, ms (also caps a `Retry-After` or `retry_after`).
    pub max_backoff_ms: u64,
    /// Timeout of one request, ms.
    pub timeout_ms: u64,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.telegram.org".into(),
            chat_id: None,
            requests_per_minute: 20,
            max_retries: 5,
            initial_backoff_ms: 500,
            max_backoff_ms: 30_000,
            timeout_ms: 10_000,
        }
    }
}

impl TelegramConfig {
    /// Every problem; `enabled` when `[dispatch] channels` lists "telegram".
    pub fn validate(&self, enabled: bool) -> Result<(), ConfigErrors> {
        let mut p = Problems::default();
        check_url(&mut p, "base-url", Some(&self.base_url), true, "");
        match &self.chat_id {
            None => p.check(
                !enabled,
                "chat-id",
                "set chat-id: dispatch.channels lists \"telegram\"",
            ),
            Some(id) => p.check(
                !id.trim().is_empty(),
                "chat-id",
                "must not be empty (a numeric id or @channelname)",
            ),
        }
        self.limits().validate(&mut p);
        p.finish()
    }
}

/// The last line of every message: the alert's id. The Bot API has no idempotency key, so
/// this is what lets a reader or a bot on the chat drop the one repeat a crash between sending
/// and recording could cause.
pub fn reference_line(alert: &Alert) -> String {
    format!("alert {}", alert.event_id)
}

/// The message text: headline, a blank line, the narrative (cut to fit Telegram's limit), a
/// blank line and [`reference_line`].
pub fn message_text(alert: &Alert) -> String {
    let reference = format!("\n\n{}", reference_line(alert));
    let room = MAX_CHARS - reference.chars().count();
    let text = format!("{}\n\n{}", alert.headline, alert.text);
    let mut text = if text.chars().count() <= room {
        text
    } else {
        let mut cut: String = text.chars().take(room - 1).collect();
        cut.push('…');
        cut
    };
    text.push_str(&reference);
    text
}

/// The `sendMessage` body for `alert` (see the module docs for when it is HTML).
pub fn request_body(chat_id: &str, alert: &Alert) -> serde_json::Value {
    // Ids are hex, so the reference needs no escaping.
    let html = format!(
        "{}\n\n<code>{}</code>",
        alert.telegram,
        reference_line(alert)
    );
    let rich = !alert.telegram.is_empty() && html.chars().count() <= MAX_CHARS;
    if rich {
        serde_json::json!({
            "chat_id": chat_id,
            "text": html,
            "parse_mode": "HTML",
            "disable_web_page_preview": true,
        })
    } else {
        serde_json::json!({
            "chat_id": chat_id,
            "text": message_text(alert),
            "disable_web_page_preview": true,
        })
    }
}

/// The Telegram sender.
pub(super) struct Telegram {
    client: reqwest::Client,
    url: String,
    chat_id: String,
}

impl Telegram {
    pub(super) fn new(
        cfg: &TelegramConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, DeliveryError> {
        let chat_id = cfg.chat_id.clone().ok_or(DeliveryError::Config {
            channel: "telegram",
            message: "set [channels.telegram] chat-id".into(),
        })?;
        let token = secret("telegram", TOKEN_ENV, "bot token", env)?;
        Ok(Self {
            client: http_client("telegram", &cfg.limits())?,
            url: format!(
                "{}/bot{token}/sendMessage",
                cfg.base_url.trim_end_matches('/')
            ),
            chat_id,
        })
    }

    pub(super) async fn attempt(&self, alert: &Alert) -> Attempt {
        let body = request_body(&self.chat_id, alert);
        let body = serde_json::to_vec(&body).unwrap_or_default();
        // The URL holds the token: errors name the method only.
        post_json(
            self.client.post(&self.url),
            body,
            "telegram sendMessage",
            true,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_narrative_is_cut_to_the_limit_and_keeps_the_alert_id() {
        let alert = Alert {
            event_id: "0123abcd".into(),
            headline: "GME bullish".into(),
            text: "x".repeat(10_000),
            ..sample()
        };
        let text = message_text(&alert);
        assert_eq!(text.chars().count(), MAX_CHARS);
        assert!(text.starts_with("GME bullish\n\nxxx"));
        assert!(text.ends_with("x…\n\nalert 0123abcd"), "{}", &text[4000..]);
    }

    fn sample() -> Alert {
        serde_json::from_str(
            include_str!("../../../tests/golden/seed11-60m-6u/alerts.jsonl")
                .lines()
                .next()
                .unwrap_or("{}"),
        )
        .expect("a golden alert")
    }
}
