//! Counters shared by the runtime's tasks, and the status they add up to.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Live counters of a running pipeline.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Option quotes emitted by the source.
    pub quotes: AtomicU64,
    /// Underlying ticks emitted by the source.
    pub ticks: AtomicU64,
    /// Inputs rejected by any stage.
    pub rejected: AtomicU64,
    /// Inputs an operator asked to skip (dead-lettered).
    pub dead_lettered: AtomicU64,
    /// Signals formed.
    pub signals: AtomicU64,
    /// Risk decisions made.
    pub decisions: AtomicU64,
    /// Alerts written.
    pub alerts: AtomicU64,
    /// Checkpoints completed.
    pub checkpoints: AtomicU64,
    /// Event time of the latest source tick (µs).
    pub event_time: AtomicI64,
    /// Source → alert latency of the Kafka mode's dispatch (the embedded alert sink keeps its
    /// own histogram).
    pub alert_latency: Latency,
}

/// A latency histogram (µs, three significant digits) that several tasks record into.
#[derive(Default)]
pub struct Latency(std::sync::Mutex<Option<hdrhistogram::Histogram<u64>>>);

impl std::fmt::Debug for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Latency")
    }
}

impl Latency {
    /// Records `n` observations of `micros` (at least 1 µs), here and in the Prometheus
    /// histogram `optionflow_quote_to_alert_seconds`.
    pub fn record(&self, micros: u64, n: u64) {
        record_quote_to_alert(micros, n);
        let mut h = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if h.is_none() {
            *h = hdrhistogram::Histogram::new(3).ok();
        }
        if let Some(h) = h.as_mut() {
            // Auto-resizing: recording fails only for values beyond u64 range.
            let _ = h.record_n(micros.max(1), n);
        }
    }

    /// The 50th and 99th percentiles in µs, once anything was recorded.
    pub fn p50_p99(&self) -> Option<(u64, u64)> {
        let h = self.0.lock().unwrap_or_else(|e| e.into_inner());
        h.as_ref()
            .filter(|h| !h.is_empty())
            .map(|h| (h.value_at_quantile(0.5), h.value_at_quantile(0.99)))
    }
}

/// Adds `n` quote → alert latencies of `micros` to `/metrics` (both runtimes call this where an
/// alert is written).
pub fn record_quote_to_alert(micros: u64, n: u64) {
    let histogram = metrics::histogram!("optionflow_quote_to_alert_seconds");
    for _ in 0..n {
        histogram.record(micros as f64 / 1e6);
    }
}

/// A point-in-time copy of [`Metrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Status {
    /// Option quotes emitted.
    pub quotes: u64,
    /// Rejected inputs.
    pub rejected: u64,
    /// Signals formed.
    pub signals: u64,
    /// Alerts written.
    pub alerts: u64,
    /// Checkpoints completed.
    pub checkpoints: u64,
    /// Event time of the latest tick.
    pub event_time: i64,
}

impl Metrics {
    /// Counts one source tick's batch (quotes and underlying ticks) and its event time.
    pub fn count_source_batch(&self, batch: &[optionflow_schemas::RawEvent], t: i64) {
        let quotes = batch
            .iter()
            .filter(|e| matches!(e, optionflow_schemas::RawEvent::Quote(_)))
            .count() as u64;
        Self::add(&self.quotes, quotes);
        Self::add(&self.ticks, batch.len() as u64 - quotes);
        self.event_time
            .store(t, std::sync::atomic::Ordering::Relaxed);
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Reads every counter.
    pub fn status(&self) -> Status {
        Status {
            quotes: self.quotes.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            signals: self.signals.load(Relaxed),
            alerts: self.alerts.load(Relaxed),
            checkpoints: self.checkpoints.load(Relaxed),
            event_time: self.event_time.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles_appear_once_recorded() {
        let l = Latency::default();
        assert_eq!(l.p50_p99(), None);
        l.record(0, 1);
        l.record(1_000, 98);
        l.record(90_000, 1);
        let (p50, p99) = l.p50_p99().unwrap();
        assert_eq!(p50, 1_000);
        assert!((1_000..=90_100).contains(&p99), "{p99}");
    }
}
