//! The webhook channel: a POST of the alert as JSON, signed with HMAC-SHA256 over the exact
//! body (`X-Optionflow-Signature: sha256=<hex>`) and carrying the alert id as
//! `Idempotency-Key`, so a receiver can both authenticate it and drop a repeat (a delivery
//! interrupted between send and ledger is sent again on restart).

use super::{check_url, http_client, post_json, secret, Attempt, DeliveryError};
use hmac::{KeyInit, Mac};
use optionflow_operators::config::Problems;
use optionflow_operators::ConfigErrors;
use optionflow_schemas::Alert;
use serde::{Deserialize, Serialize};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Optionflow-Signature";
/// The idempotency header (the alert's `event_id`).
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// The `[channels.webhook]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Where alerts are POSTed (required when `[dispatch] channels` lists "webhook").
    pub url: Option<String>,
    /// Name of the environment variable holding the HMAC-SHA256 key.
    pub secret_env: String,
    /// Requests per minute, spaced evenly.
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

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            url: None,
            secret_env: "OPTIONFLOW_WEBHOOK_SECRET".into(),
            requests_per_minute: 60,
            max_retries: 5,
            initial_backoff_ms: 500,
            max_backoff_ms: 30_000,
            timeout_ms: 10_000,
        }
    }
}

impl WebhookConfig {
    /// Every problem; `enabled` when `[dispatch] channels` lists "webhook".
    pub fn validate(&self, enabled: bool) -> Result<(), ConfigErrors> {
        let mut p = Problems::default();
        check_url(
            &mut p,
            "url",
            self.url.as_deref(),
            enabled,
            "set url: dispatch.channels lists \"webhook\"",
        );
        p.check(
            !self.secret_env.trim().is_empty(),
            "secret-env",
            "name the environment variable that holds the signing key",
        );
        self.limits().validate(&mut p);
        p.finish()
    }
}

/// `sha256=<lower-case hex of HMAC-SHA256(key, body)>`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The webhook sender.
pub(super) struct Webhook {
    client: reqwest::Client,
    url: String,
    key: Vec<u8>,
}

impl Webhook {
    pub(super) fn new(
        cfg: &WebhookConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, DeliveryError> {
        let url = cfg.url.clone().ok_or(DeliveryError::Config {
            channel: "webhook",
            message: "set [channels.webhook] url".into(),
        })?;
        let key = secret("webhook", &cfg.secret_env, "webhook signing key", env)?;
        Ok(Self {
            client: http_client("webhook", &cfg.limits())?,
            url,
            key: key.into_bytes(),
        })
    }

    pub(super) async fn attempt(&self, alert: &Alert) -> Attempt {
        let body = match serde_json::to_vec(alert) {
            Ok(b) => b,
            Err(e) => return Attempt::Fail(format!("encoding the alert: {e}")),
        };
        let request = self
            .client
            .post(&self.url)
            .header(SIGNATURE_HEADER, signature(&self.key, &body))
            .header(IDEMPOTENCY_HEADER, alert.event_id.as_str());
        post_json(request, body, &self.url, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
    #[test]
    fn signature_matches_rfc_4231_test_case_2() {
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// RFC 4231, test case 1: a 20-byte 0x0b key over "Hi There".
    #[test]
    fn signature_matches_rfc_4231_test_case_1() {
        assert_eq!(
            signature(&[0x0b; 20], b"Hi There"),
            "sha256=b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }
}
