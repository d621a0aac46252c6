//! A live feed as a [`TickSource`]: batches that a vendor adapter sends over a channel, handed
//! to the runtime one tick at a time.
//!
//! A live feed cannot be rewound: its snapshot is empty and a resumed session continues from the
//! present (the gap shows in the tape). What makes live data reproducible is the tape the runtime
//! writes from it.

use super::{SourceError, TickSource};
use crate::vendor::Batch;
use optionflow_schemas::RawEvent;
use std::time::Duration;
use tokio::sync::mpsc;

/// Ticks from a vendor adapter's channel.
pub struct LiveSource {
    name: &'static str,
    rx: mpsc::Receiver<Batch>,
}

impl LiveSource {
    /// Reads batches from `rx` (the adapter's `run` holds the sender).
    pub fn new(name: &'static str, rx: mpsc::Receiver<Batch>) -> Self {
        Self { name, rx }
    }
}

impl TickSource for LiveSource {
    fn name(&self) -> &'static str {
        self.name
    }

    fn next_tick(&mut self, out: &mut Vec<RawEvent>) -> Result<Option<i64>, SourceError> {
        // The source task is async but this trait is not: wait for the feed without stalling the
        // runtime's other tasks (needs the multi-threaded runtime, which the binary uses).
        let rx = &mut self.rx;
        let next = tokio::task::block_in_place(|| rx.blocking_recv());
        Ok(next.map(|(t, events)| {
            out.extend(events);
            t
        }))
    }

    fn market_step(&self, previous: Option<i64>, tick: i64) -> Duration {
        // A live feed arrives at its own pace; this is only used when pacing is asked for.
        Duration::from_micros(previous.map_or(0, |p| (tick - p).max(0) as u64))
    }

    fn snapshot(&self) -> Result<Vec<u8>, SourceError> {
        Ok(Vec::new())
    }

    fn restore(&mut self, _state: &[u8]) -> Result<(), SourceError> {
        Ok(())
    }
}
