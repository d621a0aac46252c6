//! Turning vendor data into tick batches the runtime can follow with watermarks.
//!
//! The runtime needs every event of a batch to carry the batch's event time, and event times to
//! rise from batch to batch (a watermark never goes back). Vendor timestamps do neither on their
//! own: rows of one snapshot were last updated at different instants, and two polls can report
//! the same instant. [`EventClock`] stamps each batch with the latest vendor timestamp it holds,
//! moved 1 µs past the previous batch when needed; the tape records the stamped time, so a
//! replay sees exactly what the live run saw.

use optionflow_schemas::RawEvent;

/// One tick: its event time (µs) and its events, all stamped with that time.
pub type Batch = (i64, Vec<RawEvent>);

/// Strictly increasing batch times.
#[derive(Debug, Default, Clone)]
pub struct EventClock {
    last: Option<i64>,
}

impl EventClock {
    /// The time to stamp a batch whose latest vendor timestamp is `vendor_time`.
    pub fn stamp(&mut self, vendor_time: i64) -> i64 {
        let t = match self.last {
            Some(last) if vendor_time <= last => last + 1,
            _ => vendor_time,
        };
        self.last = Some(t);
        t
    }

    /// The last stamped time.
    pub fn last(&self) -> Option<i64> {
        self.last
    }
}

/// Stamps every event with time `t` and its deterministic id (vendor, kind, symbol, time), and
/// conflates the batch: of several rows for one contract (or ticks for one underlying) only the
/// last survives, as a consolidated feed would show it. Order is otherwise kept.
pub fn stamp_batch(vendor: &str, t: i64, events: Vec<RawEvent>) -> Batch {
    use optionflow_schemas::EventId;
    use std::collections::HashMap;
    let key = |ev: &RawEvent| match ev {
        RawEvent::Quote(q) => (0u8, q.symbol.clone()),
        RawEvent::Tick(u) => (1u8, u.underlying.clone()),
    };
    // Position of the last row of each key; only used to filter, never iterated into output.
    let mut last: HashMap<(u8, optionflow_schemas::CompactString), usize> =
        HashMap::with_capacity(events.len());
    for (i, ev) in events.iter().enumerate() {
        last.insert(key(ev), i);
    }
    let mut out = Vec::with_capacity(last.len());
    for (i, mut ev) in events.into_iter().enumerate() {
        if last.get(&key(&ev)) != Some(&i) {
            continue;
        }
        match &mut ev {
            RawEvent::Quote(q) => {
                q.event_time = t;
                q.event_id = EventId::new(vendor)
                    .part("quote")
                    .part(&q.symbol)
                    .part_i64(t)
                    .finish();
            }
            RawEvent::Tick(u) => {
                u.event_time = t;
                u.event_id = EventId::new(vendor)
                    .part("tick")
                    .part(&u.underlying)
                    .part_i64(t)
                    .finish();
            }
        }
        out.push(ev);
    }
    (t, out)
}

/// Vendor nanoseconds to event-time microseconds.
pub fn nanos_to_micros(ns: i64) -> i64 {
    ns.div_euclid(1000)
}

/// Vendor milliseconds to event-time microseconds.
pub fn millis_to_micros(ms: i64) -> i64 {
    ms.saturating_mul(1000)
}

/// Where an adapter's producers (its poller and its stream) send batches: one clock and one
/// channel behind a lock, so stamping and sending happen together and times rise in channel
/// order however many producers there are.
pub struct BatchSink {
    vendor: &'static str,
    inner: tokio::sync::Mutex<(EventClock, tokio::sync::mpsc::Sender<Batch>)>,
}

impl BatchSink {
    /// A sink for `vendor` sending into `tx`.
    pub fn new(vendor: &'static str, tx: tokio::sync::mpsc::Sender<Batch>) -> Self {
        Self {
            vendor,
            inner: tokio::sync::Mutex::new((EventClock::default(), tx)),
        }
    }

    /// Stamps `events` (latest vendor timestamp `vendor_time`, µs) and sends them as one batch;
    /// returns the number of events sent, or `None` once the receiver has gone (stop producing).
    pub async fn send(&self, vendor_time: i64, events: Vec<RawEvent>) -> Option<usize> {
        if events.is_empty() {
            return Some(0);
        }
        let mut guard = self.inner.lock().await;
        let t = guard.0.stamp(vendor_time);
        let batch = stamp_batch(self.vendor, t, events);
        let n = batch.1.len();
        guard.1.send(batch).await.ok().map(|_| n)
    }

    /// Whether the receiver has gone.
    pub async fn is_closed(&self) -> bool {
        self.inner.lock().await.1.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_rise_strictly() {
        let mut c = EventClock::default();
        assert_eq!(c.stamp(10), 10);
        assert_eq!(c.stamp(10), 11);
        assert_eq!(c.stamp(5), 12);
        assert_eq!(c.stamp(100), 100);
    }
}
