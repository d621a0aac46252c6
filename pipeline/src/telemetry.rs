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
