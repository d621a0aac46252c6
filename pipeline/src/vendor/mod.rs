//! Vendor adapters: live market data from Polygon and Tradier, turned into `quotes.raw`.
//!
//! A vendor adapter is an async producer: it polls REST snapshots (and, where configured, reads
//! a WebSocket stream) and sends [`Batch`]es of [`RawEvent`]s, each batch stamped with one event
//! time taken from the vendor's own timestamps. Live data is not deterministic; a recording of it
//! is: every batch goes onto a tape, and a tape replays through the same stages byte for byte.
//!
//! - [`http`]: the one HTTP client every adapter uses: `governor` rate limit per vendor plan, a
//!   concurrency cap, `backoff` retries with jitter on timeouts, 429 (honouring `Retry-After`) and
//!   5xx; 401/403 stop the source with a clear message.
//! - [`filter`]: which contracts are in scope, decided before any request is spent.
//! - [`schedule`]: adaptive polling (hot underlyings more often, the rest round-robin within a
//!   cycle) and the coverage it achieves.
//! - [`batch`]: monotonic event-time stamping and conflation of a stream into batches.
//! - [`history`]: daily bars as warm-up ticks.
//! - [`polygon`], [`tradier`]: the adapters.
//! - [`telemetry`]: the metrics every adapter reports (exported on `/metrics`).

pub mod batch;
pub mod filter;
pub mod history;
pub mod http;
pub mod polygon;
pub mod schedule;
pub mod telemetry;
pub mod tradier;
pub mod universe;

pub use batch::Batch;

use serde::{Deserialize, Serialize};

/// Why a vendor request or stream failed, classified for the retry policy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VendorError {
    /// 401/403: the key is missing, wrong or lacks the plan; retrying cannot help.
    #[error("{vendor}: HTTP {status} at {url}: {message}. Check {hint}")]
    Auth {
        /// Vendor name.
        vendor: &'static str,
        /// HTTP status.
        status: u16,
        /// Request path (never with the key).
        url: String,
        /// What the vendor said.
        message: String,
        /// What to check (the environment variable holding the key).
        hint: &'static str,
    },
    /// 429 after every retry.
    #[error("{vendor}: rate limited at {url} after {attempts} attempts")]
    RateLimited {
        /// Vendor name.
        vendor: &'static str,
        /// Request path.
        url: String,
        /// Attempts made.
        attempts: u32,
    },
    /// Another HTTP error status (5xx after every retry, or a 4xx other than 401/403/429).
    #[error("{vendor}: HTTP {status} at {url} after {attempts} attempts: {message}")]
    Status {
        /// Vendor name.
        vendor: &'static str,
        /// HTTP status.
        status: u16,
        /// Request path.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// Body excerpt.
        message: String,
    },
    /// Timeouts or connection failures after every retry.
    #[error("{vendor}: {url}: {message} (after {attempts} attempts)")]
    Transport {
        /// Vendor name.
        vendor: &'static str,
        /// Request path.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// Cause.
        message: String,
    },
    /// A payload that is not what the vendor documents (the whole page; bad rows are counted, not errors).
    #[error("{vendor}: malformed payload from {url}: {message}")]
    Malformed {
        /// Vendor name.
        vendor: &'static str,
        /// Request path.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// Misconfiguration found at start (missing key, bad base URL).
    #[error("{vendor}: {message}")]
    Config {
        /// Vendor name.
        vendor: &'static str,
        /// What to fix.
        message: String,
    },
}

impl VendorError {
    /// Errors that stop the source: retrying or waiting cannot fix them.
    pub fn is_fatal(&self) -> bool {
        matches!(self, VendorError::Auth { .. } | VendorError::Config { .. })
    }

    /// A short label for metrics (`errors by kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            VendorError::Auth { .. } => "auth",
            VendorError::RateLimited { .. } => "rate_limited",
            VendorError::Status { .. } => "status",
            VendorError::Transport { .. } => "transport",
            VendorError::Malformed { .. } => "malformed",
            VendorError::Config { .. } => "config",
        }
    }
}

/// HTTP settings shared by the vendors (`[polygon.http]`, `[tradier.http]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Requests per minute the plan allows; the client never sends faster.
    pub requests_per_minute: u32,
    /// Requests in flight at once.
    pub max_concurrency: usize,
    /// Timeout of one request, ms.
    pub timeout_ms: u64,
    /// Retries after the first attempt on timeouts, 429 and 5xx.
    pub max_retries: u32,
    /// First retry delay, ms (doubles each retry, with ±50% jitter).
    pub initial_backoff_ms: u64,
    /// Longest retry delay, ms (also caps a `Retry-After`).
    pub max_backoff_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            requests_per_minute: 300,
            max_concurrency: 4,
            timeout_ms: 10_000,
            max_retries: 5,
            initial_backoff_ms: 500,
            max_backoff_ms: 30_000,
        }
    }
}

impl HttpConfig {
    /// Every problem, keys relative to the section.
    pub fn validate(&self) -> Result<(), optionflow_operators::ConfigErrors> {
        let mut p = optionflow_operators::config::Problems::default();
        p.check(
            self.requests_per_minute >= 1,
            "requests-per-minute",
            "must be at least 1",
        );
        p.check(
            self.max_concurrency >= 1,
            "max-concurrency",
            "must be at least 1",
        );
        p.check(self.timeout_ms >= 1, "timeout-ms", "must be at least 1");
        p.check(
            self.initial_backoff_ms >= 1 && self.initial_backoff_ms <= self.max_backoff_ms,
            "initial-backoff-ms",
            "must be at least 1 and at most max-backoff-ms",
        );
        p.finish()
    }
}

/// Reads a secret from the environment; a missing or empty one is a configuration error naming
/// the variable.
pub fn secret_from_env(
    vendor: &'static str,
    var: &'static str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, VendorError> {
    match crate::pacing::env_secret(var, env) {
        Some(v) => Ok(v),
        None => Err(VendorError::Config {
            vendor,
            message: format!(
                "set {var} in the environment (keys are never read from config files)"
            ),
        }),
    }
}
