//! A recorded tape as a source: the events of `quotes.raw`, replayed in their recorded order.
//!
//! Consecutive events with the same event time form one tick (the simulator and the recorders
//! write a tick's events together), so replay hands the stages the same batches and watermarks
//! a live run did. The position is the number of events delivered, which is all a checkpoint
//! needs to resume a replay.

use super::{SourceError, TickSource};
use crate::tape::TapeReader;
use optionflow_schemas::RawEvent;
use std::path::Path;
use std::time::Duration;

/// Longest pause replay makes between two ticks when paced: longer gaps in event time are
/// nights, weekends or feed outages, which a replay skips.
const MAX_PACED_GAP: Duration = Duration::from_secs(60);

/// Replays a tape file tick by tick.
pub struct TapeSource {
    reader: TapeReader,
    /// The first event of the next tick, read ahead to find where this one ends.
    pending: Option<RawEvent>,
    /// Events handed out so far.
    delivered: u64,
}

impl TapeSource {
    /// Opens the tape at `path`.
    pub fn open(path: &Path) -> Result<TapeSource, SourceError> {
        let reader = TapeReader::open(path).map_err(tape_error)?;
        Ok(TapeSource {
            reader,
            pending: None,
            delivered: 0,
        })
    }

    fn read(&mut self) -> Result<Option<RawEvent>, SourceError> {
        self.reader.next().transpose().map_err(tape_error)
    }
}

fn tape_error(e: impl std::fmt::Display) -> SourceError {
    SourceError {
        source_name: "tape",
        message: e.to_string(),
    }
}

impl TickSource for TapeSource {
    fn name(&self) -> &'static str {
        "tape"
    }

    fn next_tick(&mut self, out: &mut Vec<RawEvent>) -> Result<Option<i64>, SourceError> {
        let first = match self.pending.take() {
            Some(ev) => ev,
            None => match self.read()? {
                Some(ev) => ev,
                None => return Ok(None),
            },
        };
        let t = first.event_time();
        out.push(first);
        self.delivered += 1;
        while let Some(ev) = self.read()? {
            if ev.event_time() != t {
                self.pending = Some(ev);
                break;
            }
            out.push(ev);
            self.delivered += 1;
        }
        Ok(Some(t))
    }

    fn market_step(&self, previous: Option<i64>, tick: i64) -> Duration {
        let gap = previous.map_or(0, |p| (tick - p).max(0)) as u64;
        Duration::from_micros(gap).min(MAX_PACED_GAP)
    }

    fn snapshot(&self) -> Result<Vec<u8>, SourceError> {
        Ok(self.delivered.to_le_bytes().to_vec())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), SourceError> {
        let bytes: [u8; 8] = state
            .try_into()
            .map_err(|_| tape_error("checkpoint position is not 8 bytes"))?;
        let skip = u64::from_le_bytes(bytes);
        for i in 0..skip {
            if self.read()?.is_none() {
                return Err(tape_error(format!(
                    "the tape ends after {i} events but the checkpoint is at {skip}: it changed since"
                )));
            }
        }
        self.delivered = skip;
        self.pending = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tape::TapeWriter;
    use optionflow_schemas::UnderlyingTick;

    fn tick(t: i64, u: &str) -> RawEvent {
        RawEvent::Tick(UnderlyingTick {
            event_id: format!("{u}{t}").into(),
            event_time: t,
            underlying: u.into(),
            source: "test".into(),
            price: 100.0,
            volume: 1,
            sector: None,
        })
    }

    #[test]
    fn events_of_one_time_form_one_tick_and_restore_skips_delivered_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.avro");
        let mut w = TapeWriter::open(&path, 0, 0, Default::default()).unwrap();
        for ev in [
            tick(1, "A"),
            tick(1, "B"),
            tick(2, "A"),
            tick(5, "A"),
            tick(5, "B"),
        ] {
            w.append(&ev).unwrap();
        }
        w.commit().unwrap();
        let mut src = TapeSource::open(&path).unwrap();
        let mut batch = Vec::new();
        assert_eq!(src.next_tick(&mut batch).unwrap(), Some(1));
        assert_eq!(batch.len(), 2);
        let position = src.snapshot().unwrap();
        let mut rest = Vec::new();
        assert_eq!(src.next_tick(&mut rest).unwrap(), Some(2));
        assert_eq!(src.next_tick(&mut rest).unwrap(), Some(5));
        assert_eq!(src.next_tick(&mut rest).unwrap(), None);
        assert_eq!(rest.len(), 3);

        let mut resumed = TapeSource::open(&path).unwrap();
        resumed.restore(&position).unwrap();
        let mut again = Vec::new();
        while resumed.next_tick(&mut again).unwrap().is_some() {}
        assert_eq!(again, rest);
        assert!(TapeSource::open(&path)
            .unwrap()
            .restore(&99u64.to_le_bytes())
            .is_err());
        assert_eq!(src.market_step(Some(1), 3_600_000_000), MAX_PACED_GAP);
    }
}
