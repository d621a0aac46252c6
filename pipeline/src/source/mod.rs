//! Event sources: everything that produces `quotes.raw`.
//!
//! A source hands the runtime one batch per tick of market time (every event of the batch has
//! the tick's event time), so the runtime can follow each batch with a watermark. Sources are
//! deterministic and snapshot their position, so a checkpoint can resume them.

pub mod live;
pub mod simulator;
pub mod tape;

use optionflow_schemas::RawEvent;
use std::time::Duration;

/// Why a source could not go on.
#[derive(Debug, thiserror::Error)]
#[error("source {source_name}: {message}")]
pub struct SourceError {
    /// Which source.
    pub source_name: &'static str,
    /// What went wrong.
    pub message: String,
}

/// A deterministic producer of raw events, one tick at a time.
pub trait TickSource: Send {
    /// Short name for logs and errors.
    fn name(&self) -> &'static str;
    /// Appends the next tick's events to `out` and returns its event time; `None` at the end.
    fn next_tick(&mut self, out: &mut Vec<RawEvent>) -> Result<Option<i64>, SourceError>;
    /// Market time between the previous tick and this one, for pacing at `--speed`: what a
    /// live market would make a watcher wait (nights and weekends do not count).
    fn market_step(&self, previous: Option<i64>, tick: i64) -> Duration;
    /// The position, for a checkpoint.
    fn snapshot(&self) -> Result<Vec<u8>, SourceError>;
    /// Continues from a snapshot.
    fn restore(&mut self, state: &[u8]) -> Result<(), SourceError>;
}

impl TickSource for simulator::Simulator {
    fn name(&self) -> &'static str {
        "simulator"
    }

    fn next_tick(&mut self, out: &mut Vec<RawEvent>) -> Result<Option<i64>, SourceError> {
        Ok(simulator::Simulator::next_tick(self, out))
    }

    fn market_step(&self, _previous: Option<i64>, _tick: i64) -> Duration {
        // The simulator's clock advances one tick interval of open market per tick.
        Duration::from_millis(self.tick_interval_ms())
    }

    fn snapshot(&self) -> Result<Vec<u8>, SourceError> {
        simulator::Simulator::snapshot(self).map_err(|e| SourceError {
            source_name: "simulator",
            message: e.to_string(),
        })
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), SourceError> {
        simulator::Simulator::restore(self, state).map_err(|e| SourceError {
            source_name: "simulator",
            message: e.to_string(),
        })
    }
}
