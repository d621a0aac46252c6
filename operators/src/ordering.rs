//! Orders a stage's input by `(event_time, event_id)` behind the watermark, so stages that merge
//! partitions (risk-gate, dispatch) produce the same output whatever order inputs arrived in.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A buffer that releases events in `(event_time, event_id)` order once the watermark passes them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WatermarkBuffer<T> {
    pending: BTreeMap<(i64, String), T>,
}

impl<T> Default for WatermarkBuffer<T> {
    fn default() -> Self {
        Self {
            pending: BTreeMap::new(),
        }
    }
}

impl<T> WatermarkBuffer<T> {
    /// Holds `ev` until the watermark reaches `event_time`. A redelivered id replaces itself.
    pub fn push(&mut self, event_time: i64, event_id: &str, ev: T) {
        self.pending.insert((event_time, event_id.to_string()), ev);
    }

    /// Removes and returns, in order, every event at or before `watermark`.
    pub fn release(&mut self, watermark: i64) -> Vec<T> {
        let mut out = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().0 > watermark {
                break;
            }
            out.push(entry.remove());
        }
        out
    }

    /// Events still held.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}
