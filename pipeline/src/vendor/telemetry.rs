//! What the adapters report: one small struct per internal event, which both logs and counts
//! (Vector's pattern), so `/metrics`, the logs and the run summary never disagree.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Counters of one vendor adapter, readable in-process (the CLI summary, tests) and mirrored to
/// the `metrics` registry that `/metrics` renders.
#[derive(Debug)]
pub struct VendorStats {
    vendor: &'static str,
    /// HTTP requests sent (every attempt).
    pub requests: AtomicU64,
    /// Attempts that were retried.
    pub retries: AtomicU64,
    /// Rows received that could not be used.
    pub bad_rows: AtomicU64,
    /// Events produced.
    pub events: AtomicU64,
    /// Stream (WebSocket) reconnects.
    pub reconnects: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    logged_causes: Mutex<std::collections::BTreeSet<String>>,
}

impl VendorStats {
    /// Fresh counters for `vendor`.
    pub fn new(vendor: &'static str) -> Self {
        Self {
            vendor,
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            bad_rows: AtomicU64::new(0),
            events: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            logged_causes: Mutex::new(Default::default()),
        }
    }

    /// The vendor these counters belong to.
    pub fn vendor(&self) -> &'static str {
        self.vendor
    }

    /// Errors so far, by kind.
    pub fn errors(&self) -> BTreeMap<&'static str, u64> {
        self.errors.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// One HTTP attempt finished with `outcome` (`ok`, `429`, `5xx`, …) after `latency`.
    pub fn request(&self, endpoint: &'static str, outcome: &'static str, latency: Duration) {
        self.requests.fetch_add(1, Relaxed);
        metrics::counter!("optionflow_vendor_requests_total", "vendor" => self.vendor, "endpoint" => endpoint, "outcome" => outcome).increment(1);
        metrics::histogram!("optionflow_vendor_latency_seconds", "vendor" => self.vendor, "endpoint" => endpoint).record(latency.as_secs_f64());
    }

    /// An attempt is retried after `wait`.
    pub fn retry(&self, endpoint: &'static str, cause: &str, wait: Duration) {
        self.retries.fetch_add(1, Relaxed);
        metrics::counter!("optionflow_vendor_retries_total", "vendor" => self.vendor, "endpoint" => endpoint).increment(1);
        let wait_ms = wait.as_millis() as u64;
        if self.first(&format!("retry {endpoint} {cause}")) {
            tracing::warn!(
                vendor = self.vendor,
                endpoint,
                cause,
                wait_ms,
                "vendor request failed; retrying (repeats are logged at debug)"
            );
        } else {
            tracing::debug!(
                vendor = self.vendor,
                endpoint,
                cause,
                wait_ms,
                "vendor request failed; retrying"
            );
        }
    }

    /// Whether `cause` is seen for the first time (it is then logged at warn, later at debug).
    fn first(&self, cause: &str) -> bool {
        self.logged_causes
            .lock()
            .map(|mut s| s.insert(cause.to_string()))
            .unwrap_or(false)
    }

    /// A request or stream failed for good (after retries).
    pub fn error(&self, kind: &'static str, message: &str) {
        if let Ok(mut m) = self.errors.lock() {
            *m.entry(kind).or_default() += 1;
        }
        metrics::counter!("optionflow_vendor_errors_total", "vendor" => self.vendor, "kind" => kind).increment(1);
        if self.first(&format!("error {kind}")) {
            tracing::warn!(
                vendor = self.vendor,
                kind,
                "{message} (further errors of this kind are counted, and logged at debug)"
            );
        } else {
            tracing::debug!(vendor = self.vendor, kind, "{message}");
        }
    }

    /// A row that cannot be used: counted always, logged once per cause.
    pub fn bad_row(&self, cause: &str, detail: &str) {
        self.bad_rows.fetch_add(1, Relaxed);
        metrics::counter!("optionflow_vendor_bad_rows_total", "vendor" => self.vendor).increment(1);
        if self.first(cause) {
            tracing::warn!(
                vendor = self.vendor,
                cause,
                detail,
                "vendor row skipped (further rows with this cause are counted, not logged)"
            );
        }
    }

    /// `n` events were produced.
    pub fn produced(&self, n: u64) {
        self.events.fetch_add(n, Relaxed);
        metrics::counter!("optionflow_vendor_events_total", "vendor" => self.vendor).increment(n);
    }

    /// The stream reconnected.
    pub fn reconnected(&self) {
        self.reconnects.fetch_add(1, Relaxed);
        metrics::counter!("optionflow_vendor_reconnects_total", "vendor" => self.vendor)
            .increment(1);
    }

    /// A polling cycle ended: `refreshed` of `total` underlyings were refreshed within it.
    pub fn cycle(&self, refreshed: usize, total: usize) {
        let gap = if total == 0 {
            0.0
        } else {
            1.0 - refreshed as f64 / total as f64
        };
        metrics::gauge!("optionflow_coverage_refreshed_underlyings", "vendor" => self.vendor)
            .set(refreshed as f64);
        metrics::gauge!("optionflow_coverage_underlyings", "vendor" => self.vendor)
            .set(total as f64);
        metrics::gauge!("optionflow_coverage_gap_rate", "vendor" => self.vendor).set(gap);
        tracing::info!(
            vendor = self.vendor,
            refreshed,
            total,
            gap_rate = gap,
            "polling cycle"
        );
    }
}
