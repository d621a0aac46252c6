//! The HTTP client every vendor adapter shares.
//!
//! Each request waits for the vendor's `governor` rate limit and a concurrency permit, then is
//! sent with a timeout. Timeouts, connection errors, 429 and 5xx are retried with exponential
//! backoff and jitter (`backoff`); a 429's `Retry-After` replaces the computed delay (capped at
//! `max-backoff-ms`). 401/403 are fatal: the source stops with a message naming the variable
//! that holds the key. Other 4xx are returned at once.

use super::telemetry::VendorStats;
use super::{HttpConfig, VendorError};
use crate::pacing::{backoff_policy, even_limiter, parse_retry_after};
use governor::DefaultDirectRateLimiter;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How requests authenticate.
#[derive(Clone)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// No credentials (tests of public endpoints).
    None,
}

impl std::fmt::Debug for Auth {
    // Never print a key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(…)"),
            Auth::None => f.write_str("None"),
        }
    }
}

/// A rate-limited, retrying JSON client for one vendor.
pub struct VendorHttp {
    vendor: &'static str,
    key_hint: &'static str,
    base: url::Url,
    client: reqwest::Client,
    auth: Auth,
    limiter: DefaultDirectRateLimiter,
    permits: Semaphore,
    cfg: HttpConfig,
    stats: Arc<VendorStats>,
}

/// One GET or POST to send.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// Endpoint label for metrics (`snapshot`, `chains`, …).
    pub endpoint: &'static str,
    /// A path below the base URL, or a full URL on the same origin (a `next_url`).
    pub target: &'a str,
    /// Query parameters.
    pub query: Vec<(&'static str, String)>,
    /// POST instead of GET.
    pub post: bool,
}

impl<'a> Request<'a> {
    /// A GET of `target` with no parameters.
    pub fn get(endpoint: &'static str, target: &'a str) -> Self {
        Self {
            endpoint,
            target,
            query: Vec::new(),
            post: false,
        }
    }

    /// Adds a query parameter.
    pub fn param(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }
}

enum Attempt {
    Ok(serde_json::Value),
    Retry {
        cause: String,
        after: Option<Duration>,
        status: Option<u16>,
    },
    Fail(VendorError),
}

impl VendorHttp {
    /// A client for `vendor` at `base_url`; `key_hint` names where the key comes from, for the
    /// message a 401/403 prints.
    pub fn new(
        vendor: &'static str,
        key_hint: &'static str,
        base_url: &str,
        auth: Auth,
        cfg: HttpConfig,
        stats: Arc<VendorStats>,
    ) -> Result<Self, VendorError> {
        let config = |message: String| VendorError::Config { vendor, message };
        let base =
            url::Url::parse(base_url).map_err(|e| config(format!("base-url {base_url:?}: {e}")))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .user_agent(concat!("optionflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| config(format!("HTTP client: {e}")))?;
        Ok(Self {
            vendor,
            key_hint,
            base,
            client,
            auth,
            limiter: even_limiter(cfg.requests_per_minute),
            permits: Semaphore::new(cfg.max_concurrency.max(1)),
            cfg,
            stats,
        })
    }

    /// The adapter's counters.
    pub fn stats(&self) -> &Arc<VendorStats> {
        &self.stats
    }

    /// Resolves `target` against the base URL. A full URL must share the base URL's origin, so a
    /// `next_url` can never send the key to another host.
    fn resolve(&self, target: &str) -> Result<url::Url, VendorError> {
        let url = self.base.join(target).map_err(|e| VendorError::Malformed {
            vendor: self.vendor,
            url: target.to_string(),
            message: format!("not a URL: {e}"),
        })?;
        if url.origin() != self.base.origin() {
            return Err(VendorError::Malformed {
                vendor: self.vendor,
                url: url.path().to_string(),
                message: format!(
                    "points to {}, not the configured {}",
                    url.origin().ascii_serialization(),
                    self.base.origin().ascii_serialization()
                ),
            });
        }
        Ok(url)
    }

    /// Sends `req` under the rate limit and retry policy; returns the parsed JSON body.
    pub async fn json(&self, req: Request<'_>) -> Result<serde_json::Value, VendorError> {
        let url = self.resolve(req.target)?;
        let shown = url.path().to_string();
        let mut policy = backoff_policy(self.cfg.initial_backoff_ms, self.cfg.max_backoff_ms);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match self.attempt(&req, &url, &shown).await {
                Attempt::Ok(v) => return Ok(v),
                Attempt::Fail(e) => {
                    self.stats.error(e.kind(), &e.to_string());
                    return Err(e);
                }
                Attempt::Retry {
                    cause,
                    after,
                    status,
                } => {
                    if attempts > self.cfg.max_retries {
                        let e = match status {
                            Some(429) => VendorError::RateLimited {
                                vendor: self.vendor,
                                url: shown,
                                attempts,
                            },
                            Some(s) => VendorError::Status {
                                vendor: self.vendor,
                                status: s,
                                url: shown,
                                attempts,
                                message: cause,
                            },
                            None => VendorError::Transport {
                                vendor: self.vendor,
                                url: shown,
                                attempts,
                                message: cause,
                            },
                        };
                        self.stats.error(e.kind(), &e.to_string());
                        return Err(e);
                    }
                    let cap = Duration::from_millis(self.cfg.max_backoff_ms);
                    let computed =
                        backoff::backoff::Backoff::next_backoff(&mut policy).unwrap_or(cap);
                    let wait = after.map_or(computed, |a| a.min(cap));
                    self.stats.retry(req.endpoint, &cause, wait);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn attempt(&self, req: &Request<'_>, url: &url::Url, shown: &str) -> Attempt {
        self.limiter.until_ready().await;
        let Ok(_permit) = self.permits.acquire().await else {
            return Attempt::Fail(VendorError::Config {
                vendor: self.vendor,
                message: "client closed".into(),
            });
        };
        let mut builder = if req.post {
            self.client.post(url.clone())
        } else {
            self.client.get(url.clone())
        };
        builder = builder.header(reqwest::header::ACCEPT, "application/json");
        if !req.query.is_empty() {
            builder = if req.post {
                builder.form(&req.query)
            } else {
                builder.query(&req.query)
            };
        }
        if let Auth::Bearer(token) = &self.auth {
            builder = builder.bearer_auth(token);
        }
        let started = Instant::now();
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => {
                let outcome = if e.is_timeout() {
                    "timeout"
                } else {
                    "transport"
                };
                self.stats.request(req.endpoint, outcome, started.elapsed());
                return Attempt::Retry {
                    cause: format!("{outcome}: {e}"),
                    after: None,
                    status: None,
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                self.stats
                    .request(req.endpoint, "transport", started.elapsed());
                return Attempt::Retry {
                    cause: format!("reading the body: {e}"),
                    after: None,
                    status: None,
                };
            }
        };
        let outcome = match status {
            200..=299 => "ok",
            401 | 403 => "auth",
            429 => "429",
            500..=599 => "5xx",
            _ => "4xx",
        };
        self.stats.request(req.endpoint, outcome, started.elapsed());
        let excerpt = || {
            String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_string()
        };
        match status {
            200..=299 => match serde_json::from_slice(&body) {
                Ok(v) => Attempt::Ok(v),
                Err(e) => Attempt::Fail(VendorError::Malformed {
                    vendor: self.vendor,
                    url: shown.to_string(),
                    message: format!("not JSON ({e}): {}", excerpt()),
                }),
            },
            401 | 403 => Attempt::Fail(VendorError::Auth {
                vendor: self.vendor,
                status,
                url: shown.to_string(),
                message: excerpt(),
                hint: self.key_hint,
            }),
            429 => Attempt::Retry {
                cause: "HTTP 429".into(),
                after: retry_after,
                status: Some(429),
            },
            500..=599 => Attempt::Retry {
                cause: format!("HTTP {status}: {}", excerpt()),
                after: None,
                status: Some(status),
            },
            _ => Attempt::Fail(VendorError::Status {
                vendor: self.vendor,
                status,
                url: shown.to_string(),
                attempts: 1,
                message: excerpt(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_urls_stay_on_the_configured_origin() {
        let http = VendorHttp::new(
            "polygon",
            "POLYGON_API_KEY",
            "http://127.0.0.1:9/",
            Auth::None,
            HttpConfig::default(),
            Arc::new(VendorStats::new("polygon")),
        )
        .unwrap();
        assert!(http.resolve("/v3/x?cursor=1").is_ok());
        assert!(http.resolve("http://127.0.0.1:9/v3/x").is_ok());
        assert!(http.resolve("https://evil.example/v3/x").is_err());
    }
}
