//! The bookkeeping of one partition's input and one stage instance's outputs: sequence numbers,
//! per-origin watermarks and the end of stream. Pure state, checkpointed with the operator.

use super::wire::{Frame, Kind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where one origin writing to a partition has got to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginState {
    /// Highest sequence number taken.
    pub last_seq: u64,
    /// Its latest watermark.
    pub watermark: Option<i64>,
    /// Its end of stream arrived.
    pub ended: bool,
}

/// What one partition's reader has taken in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputState {
    /// Origins by number.
    pub origins: BTreeMap<u32, OriginState>,
    /// How many origins write to the partition (from the frames).
    pub expected: u32,
    /// The watermark last handed to the operator.
    pub delivered: Option<i64>,
    /// The end of stream was handed to the operator.
    pub ended: bool,
}

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Already taken (a rewritten message): drop it.
    Duplicate,
    /// Hand the event to the operator.
    Event,
    /// The combined watermark advanced to this value.
    Advance(i64),
    /// Every origin has ended: hand the end of stream to the operator.
    End,
    /// Nothing changes for the operator.
    Nothing,
}

impl InputState {
    /// Takes a message's frame in, in partition order.
    pub fn accept(&mut self, frame: &Frame) -> Step {
        self.expected = self.expected.max(frame.origins);
        let origin = self.origins.entry(frame.origin).or_default();
        if frame.seq <= origin.last_seq {
            return Step::Duplicate;
        }
        if frame.seq > origin.last_seq + 1 {
            // A partition is one ordered log and each writer numbers its records 1, 2, 3…, so
            // a jump means records were lost (or reordered) between the writer and here.
            metrics::counter!("optionflow_sequence_gaps_total").increment(1);
            tracing::error!(
                origin = frame.origin,
                expected = origin.last_seq + 1,
                got = frame.seq,
                "sequence gap: records from this writer are missing"
            );
        }
        origin.last_seq = frame.seq;
        match frame.kind {
            Kind::Event => Step::Event,
            Kind::Watermark(t) => {
                origin.watermark = Some(origin.watermark.map_or(t, |w| w.max(t)));
                match self.combined() {
                    Some(w) if self.delivered.is_none_or(|d| w > d) => {
                        self.delivered = Some(w);
                        Step::Advance(w)
                    }
                    _ => Step::Nothing,
                }
            }
            Kind::End => {
                origin.ended = true;
                let all = self.origins.len() as u32 >= self.expected
                    && self.origins.values().all(|o| o.ended);
                if all && !self.ended {
                    self.ended = true;
                    Step::End
                } else {
                    Step::Nothing
                }
            }
        }
    }

    /// The least watermark over every origin, once every origin has sent one.
    fn combined(&self) -> Option<i64> {
        if (self.origins.len() as u32) < self.expected {
            return None;
        }
        self.origins
            .values()
            .map(|o| o.watermark)
            .try_fold(i64::MAX, |m, w| w.map(|w| m.min(w)))
    }
}

/// One stage instance's stream into one topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputState {
    /// Next sequence number per output partition.
    pub next_seq: BTreeMap<i32, u64>,
}

impl OutputState {
    /// The frame of the next message to `partition` (unstamped: see [`Frame::emitted`]).
    pub fn frame(&mut self, partition: i32, kind: Kind, origin: u32, origins: u32) -> Frame {
        let seq = self.next_seq.entry(partition).or_insert(1);
        let frame = Frame {
            kind,
            origin,
            origins,
            seq: *seq,
            emitted_at: None,
        };
        *seq += 1;
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(kind: Kind, origin: u32, origins: u32, seq: u64) -> Frame {
        Frame {
            kind,
            origin,
            origins,
            seq,
            emitted_at: None,
        }
    }

    #[test]
    fn a_rewritten_message_is_dropped() {
        let mut s = InputState::default();
        assert_eq!(s.accept(&f(Kind::Event, 0, 1, 1)), Step::Event);
        assert_eq!(s.accept(&f(Kind::Event, 0, 1, 2)), Step::Event);
        assert_eq!(s.accept(&f(Kind::Event, 0, 1, 1)), Step::Duplicate);
        assert_eq!(s.accept(&f(Kind::Event, 0, 1, 2)), Step::Duplicate);
        assert_eq!(s.accept(&f(Kind::Event, 0, 1, 3)), Step::Event);
    }

    #[test]
    fn the_watermark_is_the_least_of_every_origin() {
        let mut s = InputState::default();
        assert_eq!(s.accept(&f(Kind::Watermark(10), 0, 2, 1)), Step::Nothing);
        assert_eq!(s.accept(&f(Kind::Watermark(20), 0, 2, 2)), Step::Nothing);
        assert_eq!(
            s.accept(&f(Kind::Watermark(15), 1, 2, 1)),
            Step::Advance(15)
        );
        assert_eq!(
            s.accept(&f(Kind::Watermark(18), 1, 2, 2)),
            Step::Advance(18)
        );
        assert_eq!(
            s.accept(&f(Kind::Watermark(25), 1, 2, 3)),
            Step::Advance(20)
        );
        assert_eq!(s.accept(&f(Kind::Watermark(20), 0, 2, 3)), Step::Nothing);
    }

    #[test]
    fn the_stream_ends_when_every_origin_has() {
        let mut s = InputState::default();
        assert_eq!(s.accept(&f(Kind::End, 1, 2, 1)), Step::Nothing);
        assert_eq!(s.accept(&f(Kind::End, 0, 2, 1)), Step::End);
        assert_eq!(s.accept(&f(Kind::End, 0, 2, 2)), Step::Nothing);
    }

    #[test]
    fn output_sequences_count_per_partition() {
        let mut o = OutputState::default();
        assert_eq!(o.frame(0, Kind::Event, 3, 4).seq, 1);
        assert_eq!(o.frame(0, Kind::Event, 3, 4).seq, 2);
        assert_eq!(o.frame(1, Kind::End, 3, 4).seq, 1);
    }
}
