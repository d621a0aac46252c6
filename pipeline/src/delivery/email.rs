//! The email channel: SMTP through `lettre` (tokio, rustls with ring), one
//! `multipart/alternative` message per alert with a plain-text part and an HTML part in which
//! every value from the data is HTML-escaped.

use super::{html_escape, secret, Attempt, DeliveryError};
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use optionflow_operators::config::Problems;
use optionflow_operators::ConfigErrors;
use optionflow_schemas::Alert;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (a trusted local relay only).
    None,
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// The `[channels.email]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct EmailConfig {
    /// The SMTP server (required when `[dispatch] channels` lists "email").
    pub smtp_host: Option<String>,
    /// The SMTP port.
    pub smtp_port: u16,
    /// "none", "starttls" or "tls".
    pub tls: SmtpTls,
    /// The sender, `Name <addr@example.com>` or `addr@example.com` (required when enabled).
    pub from: Option<String>,
    /// Recipients (at least one when enabled).
    pub to: Vec<String>,
    /// Name of the environment variable holding the SMTP user name; unset means no login.
    pub username_env: String,
    /// Name of the environment variable holding the SMTP password.
    pub password_env: String,
    /// Messages per minute, spaced evenly.
    pub requests_per_minute: u32,
    /// Retries after the first attempt, on timeouts, connection errors and transient (4xx)
    /// SMTP replies; permanent (5xx) replies fail at once.
    pub max_retries: u32,
    /// First retry delay, ms (doubles each retry, ±50% jitter).
    pub initial_backoff_ms: u64,
    /// Longest retry delay, ms.
    pub max_backoff_ms: u64,
    /// Timeout of one SMTP command, ms.
    pub timeout_ms: u64,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            smtp_host: None,
            smtp_port: 587,
            tls: SmtpTls::Starttls,
            from: None,
            to: Vec::new(),
            username_env: "SMTP_USERNAME".into(),
            password_env: "SMTP_PASSWORD".into(),
            requests_per_minute: 30,
            max_retries: 5,
            initial_backoff_ms: 500,
            max_backoff_ms: 30_000,
            timeout_ms: 10_000,
        }
    }
}

impl EmailConfig {
    /// Every problem; `enabled` when `[dispatch] channels` lists "email".
    pub fn validate(&self, enabled: bool) -> Result<(), ConfigErrors> {
        let mut p = Problems::default();
        let listed = "dispatch.channels lists \"email\"";
        match &self.smtp_host {
            None => p.check(!enabled, "smtp-host", format!("set smtp-host: {listed}")),
            Some(h) => p.check(!h.trim().is_empty(), "smtp-host", "must not be empty"),
        }
        p.check(self.smtp_port >= 1, "smtp-port", "must be at least 1");
        match &self.from {
            None => p.check(!enabled, "from", format!("set from: {listed}")),
            Some(f) => p.check(
                f.parse::<Mailbox>().is_ok(),
                "from",
                format!("{f:?} is not an address (addr@example.com or Name <addr@example.com>)"),
            ),
        }
        p.check(
            !enabled || !self.to.is_empty(),
            "to",
            format!("name at least one recipient: {listed}"),
        );
        for to in &self.to {
            p.check(
                to.parse::<Mailbox>().is_ok(),
                "to",
                format!("{to:?} is not an address"),
            );
        }
        p.check(
            !self.username_env.trim().is_empty() && !self.password_env.trim().is_empty(),
            "username-env",
            "name the environment variables of the SMTP login (set neither to log in as nobody)",
        );
        self.limits().validate(&mut p);
        p.finish()
    }
}

/// The message for `alert`: subject = headline, a text part and an escaped HTML part.
pub fn message(alert: &Alert, from: &Mailbox, to: &[Mailbox]) -> Result<Message, String> {
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(alert.headline.clone())
        .message_id(Some(format!("<{}@optionflow>", alert.event_id)));
    for t in to {
        builder = builder.to(t.clone());
    }
    let details = [
        ("Underlying", alert.underlying.clone()),
        ("Direction", alert.direction.clone()),
        ("Composite", format!("{:.1}", alert.composite)),
        ("Sector", alert.sector.clone()),
        ("Signal", alert.signal_id.to_string()),
        ("Alert", alert.event_id.to_string()),
    ];
    let mut text = format!("{}\n\n{}\n\n", alert.headline, alert.text);
    for (k, v) in &details {
        text.push_str(&format!("{k}: {v}\n"));
    }
    let html = html_body(alert, &details);
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html),
                ),
        )
        .map_err(|e| format!("building the message: {e}"))
}

/// The HTML part: the headline, the narrative (the explain stage's HTML when the alert carries
/// it, else the text's paragraphs escaped) and the details table.
fn html_body(alert: &Alert, details: &[(&str, String)]) -> String {
    let mut html = format!(
        "<!DOCTYPE html>\n<html><body>\n<h2>{}</h2>\n",
        html_escape(&alert.headline)
    );
    if alert.html.is_empty() {
        for para in alert.text.split("\n\n") {
            html.push_str(&format!(
                "<p>{}</p>\n",
                html_escape(para).replace('\n', "<br>\n")
            ));
        }
    } else {
        // The explain stage's HTML narrative: every value from data in it is escaped already.
        html.push_str(&alert.html);
        html.push('\n');
    }
    html.push_str("<table>\n");
    for (k, v) in details {
        html.push_str(&format!(
            "<tr><th align=\"left\">{k}</th><td>{}</td></tr>\n",
            html_escape(v)
        ));
    }
    html.push_str("</table>\n</body></html>\n");
    html
}

/// The SMTP sender.
pub(super) struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl Email {
    pub(super) fn new(
        cfg: &EmailConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, DeliveryError> {
        let config = |message: String| DeliveryError::Config {
            channel: "email",
            message,
        };
        let host = cfg
            .smtp_host
            .clone()
            .ok_or_else(|| config("set [channels.email] smtp-host".into()))?;
        let from = cfg
            .from
            .as_deref()
            .unwrap_or_default()
            .parse::<Mailbox>()
            .map_err(|e| config(format!("from: {e}")))?;
        let to = cfg
            .to
            .iter()
            .map(|t| t.parse::<Mailbox>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| config(format!("to: {e}")))?;
        let tls = |h: &str| {
            TlsParameters::new(h.to_string()).map_err(|e| config(format!("TLS for {h}: {e}")))
        };
        let tls = match cfg.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(tls(&host)?),
            SmtpTls::Tls => Tls::Wrapper(tls(&host)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(cfg.smtp_port)
            .tls(tls)
            .timeout(Some(Duration::from_millis(cfg.timeout_ms)));
        // A login needs both variables; with neither set the server is used without one.
        match (env(&cfg.username_env), env(&cfg.password_env)) {
            (Some(user), Some(_)) if !user.trim().is_empty() => {
                let password = secret("email", &cfg.password_env, "SMTP password", env)?;
                builder = builder.credentials(Credentials::new(user.trim().to_string(), password));
            }
            (None, None) => {}
            _ => {
                return Err(config(format!(
                    "set both {} and {} for an SMTP login, or neither",
                    cfg.username_env, cfg.password_env
                )))
            }
        }
        Ok(Self {
            transport: builder.build(),
            from,
            to,
        })
    }

    pub(super) async fn attempt(&self, alert: &Alert) -> Attempt {
        let msg = match message(alert, &self.from, &self.to) {
            Ok(m) => m,
            Err(e) => return Attempt::Fail(e),
        };
        match self.transport.send(msg).await {
            Ok(_) => Attempt::Delivered,
            Err(e) if e.is_permanent() || e.is_client() => Attempt::Fail(format!("SMTP: {e}")),
            Err(e) => Attempt::Retry {
                cause: format!("SMTP: {e}"),
                after: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_html_part_uses_the_narratives_html_when_the_alert_has_it() {
        let mut alert: Alert = serde_json::from_value(serde_json::json!({
            "event_id": "a", "event_time": 1, "underlying": "GME", "signal_id": "s",
            "decision_id": "d", "sector": "Retail", "direction": "bullish", "composite": 90.0,
            "channel": "email", "dedupe_key": "k", "headline": "GME <b>", "text": "a & b",
            "markdown": "m"
        }))
        .unwrap();
        let details = [("Underlying", "GME".to_string())];
        let plain = html_body(&alert, &details);
        assert!(plain.contains("<h2>GME &lt;b&gt;</h2>") && plain.contains("<p>a &amp; b</p>"));
        alert.html = "<section><h2>GME — bullish</h2><table>…</table></section>".into();
        let rich = html_body(&alert, &details);
        assert!(rich.contains(&alert.html), "{rich}");
        assert!(!rich.contains("<p>a &amp; b</p>"));
        assert!(rich.contains("<th align=\"left\">Underlying</th>"));
    }
}
