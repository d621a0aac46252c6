//! How everything that talks to the outside world paces itself: vendor requests, stream
//! reconnects and alert deliveries share one rate-limit shape, one retry policy, one reading of
//! `Retry-After` and one way to read a secret.

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

/// A limiter that spaces requests evenly, one per 60 s / `requests_per_minute` with no burst, so
/// any 60-second window holds at most `requests_per_minute` + 1 requests: what a per-minute plan
/// counts, and never a burst that a plan's window would refuse.
pub fn even_limiter(requests_per_minute: u32) -> DefaultDirectRateLimiter {
    let rpm = NonZeroU32::new(requests_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    let period = Duration::from_secs(60) / rpm.get();
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_minute(rpm))
        .allow_burst(NonZeroU32::MIN);
    RateLimiter::direct(quota)
}

/// Exponential backoff from `initial_ms`, doubling up to `max_ms`, with ±50% jitter and no
/// overall deadline (the caller counts attempts).
pub fn backoff_policy(initial_ms: u64, max_ms: u64) -> backoff::ExponentialBackoff {
    backoff::ExponentialBackoff {
        initial_interval: Duration::from_millis(initial_ms),
        max_interval: Duration::from_millis(max_ms),
        randomization_factor: 0.5,
        multiplier: 2.0,
        max_elapsed_time: None,
        ..Default::default()
    }
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(Duration::from_millis(wait.max(0) as u64))
}

/// A secret from the environment (`env` is `std::env::var` in production), trimmed; `None` when
/// unset or blank. Secrets are never read from config files.
pub fn env_secret(var: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    env(var)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn blank_secrets_are_missing() {
        let env = |k: &str| match k {
            "SET" => Some(" s3cret \n".to_string()),
            "BLANK" => Some("  ".to_string()),
            _ => None,
        };
        assert_eq!(env_secret("SET", &env).as_deref(), Some("s3cret"));
        assert_eq!(env_secret("BLANK", &env), None);
        assert_eq!(env_secret("UNSET", &env), None);
    }
}
