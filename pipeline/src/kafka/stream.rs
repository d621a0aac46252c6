//! The bookkeeping of one partition's input and one stage instance's outputs: sequence numbers,
//! per-origin watermarks and the end of stream (pure state, checkpointed with the operator), and
//! a reader's [`Position`]: the re-reading that makes sure no record of the log is skipped.

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
    /// Records of this origin before this one have not been taken: this one is not taken
    /// either (nothing changed), and the reader must find the missing ones (see [`Position`]).
    Gap {
        /// The sequence number the origin needs next.
        expected: u64,
    },
}

impl InputState {
    /// Takes a message's frame in, in partition order.
    pub fn accept(&mut self, frame: &Frame) -> Step {
        self.expected = self.expected.max(frame.origins);
        let last_seq = self.origins.get(&frame.origin).map_or(0, |o| o.last_seq);
        if frame.seq <= last_seq {
            return Step::Duplicate;
        }
        if frame.seq > last_seq + 1 {
            // A partition is one ordered log and each writer numbers its records 1, 2, 3…, so
            // a jump means the reader was not given every record: it must not go on as if it
            // had been.
            return Step::Gap {
                expected: last_seq + 1,
            };
        }
        let origin = self.origins.entry(frame.origin).or_default();
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

/// A reader's place in one partition's log, beyond what its checkpoint holds (not saved).
///
/// A reader positioned at an offset (on assignment, from its checkpoint; or by a seek) must be
/// given every record from there on. Real Kafka answers a fetch from inside a record batch with
/// that whole batch (the client drops the records before the offset); Tansu 0.6 answers it with
/// the *next* batch, silently skipping the rest of the batch the offset is in. So when the
/// first record delivered after a positioning is past where the reader asked to start, or a
/// writer's sequence numbers jump ([`Step::Gap`]), the record is not taken: the reader seeks
/// back and reads again. Each further attempt seeks eight times as far back (`from`,
/// `from - 7`, `from - 63`, `from - 511`, …, the beginning: a librdkafka batch holds at most
/// 10,000 records by default, so five attempts), until the broker starts at or before `from`.
/// Offsets below the position the reader started at are in the checkpoint and are skipped;
/// the rest is re-read and what was already taken is dropped by sequence number.
///
/// Once the broker has delivered contiguously from at or before the point after a writer's
/// last taken record and the writer's next record is still not there, the records are not in
/// the log (lost upstream, or deleted by retention): [`Position::gap`] says so, and the stage
/// stops rather than turn the gap into a silent loss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Offsets below this are reflected in the checkpoint the reader started from.
    floor: i64,
    /// Per origin, the offset after its last taken record: its missing records lie at or after.
    after: BTreeMap<u32, i64>,
    /// A re-read under way (also the check of the first record after a positioning).
    reread: Option<Reread>,
}

/// A re-read under way.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reread {
    /// Every record at or after this offset must be delivered.
    from: i64,
    /// The offset sought on the latest attempt (0: the beginning of the partition).
    target: i64,
    /// Attempts so far; attempt `n` seeks `from - (8^n - 1)`.
    attempt: u32,
    /// The first offset the broker delivered since the latest positioning.
    first: Option<i64>,
    /// Origins with records not yet taken: the sequence number each needs next.
    missing: BTreeMap<u32, u64>,
}

/// What the reader does with a delivered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Reflected in the checkpoint: skip it.
    Skip,
    /// Read it.
    Read,
    /// Do not read it: seek to this offset (0: the beginning) and read from there.
    Seek(i64),
}

/// Records of a writer that are not in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missing {
    /// The writer.
    pub origin: u32,
    /// The sequence number it needed next.
    pub expected: u64,
    /// The sequence number of its next record in the log.
    pub got: u64,
    /// The offset of that record.
    pub offset: i64,
    /// The broker delivered every record from this offset on.
    pub delivered_from: i64,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "records {} to {} of writer {} are not in the log (read from offset {} on; the \
             writer's next record, at offset {}, is number {}): lost before the broker stored \
             them, or deleted by retention",
            self.expected,
            self.got - 1,
            self.origin,
            self.delivered_from,
            self.offset,
            self.got
        )
    }
}

impl Position {
    /// A reader positioned at `offset` (its checkpoint's): every record from there on must be
    /// delivered, and the first one delivered is checked.
    pub fn at(offset: i64) -> Position {
        Position {
            floor: offset,
            after: BTreeMap::new(),
            reread: Some(Reread {
                from: offset,
                target: offset,
                attempt: 0,
                first: None,
                missing: BTreeMap::new(),
            }),
        }
    }

    /// What to do with the message the broker delivered at `offset`; called for every one,
    /// before anything else.
    pub fn delivered(&mut self, offset: i64) -> Delivery {
        if let Some(r) = &mut self.reread {
            if r.first.is_none() {
                if offset > r.from && r.target > 0 {
                    // The broker started past `from`: ask from further back.
                    r.attempt += 1;
                    let back = 1i64
                        .checked_shl(3 * r.attempt)
                        .filter(|b| *b > 0)
                        .map_or(i64::MAX, |b| b - 1);
                    r.target = r.from.saturating_sub(back).max(0);
                    return Delivery::Seek(r.target);
                }
                r.first = Some(offset);
                if r.missing.is_empty() {
                    self.reread = None;
                }
            }
        }
        if offset < self.floor {
            Delivery::Skip
        } else {
            Delivery::Read
        }
    }

    /// The message at `offset`, number `got` of `origin`, was not taken because the origin
    /// needs `expected` first ([`Step::Gap`]): the offset to seek to and re-read from, or the
    /// records are not in the log.
    pub fn gap(
        &mut self,
        origin: u32,
        expected: u64,
        got: u64,
        offset: i64,
    ) -> Result<i64, Missing> {
        let from = self.after.get(&origin).copied().unwrap_or(self.floor);
        if let Some(r) = &self.reread {
            if let Some(first) = r.first {
                // Delivered contiguously since `first`: if that is at or before where this
                // origin's missing records start, or nothing earlier exists, they are not there.
                if first <= from || r.target == 0 {
                    return Err(Missing {
                        origin,
                        expected,
                        got,
                        offset,
                        delivered_from: first,
                    });
                }
            }
        }
        let (from, mut missing) = match self.reread.take() {
            Some(r) => (r.from.min(from), r.missing),
            None => (from, BTreeMap::new()),
        };
        let need = missing.entry(origin).or_insert(expected);
        *need = (*need).min(expected);
        self.reread = Some(Reread {
            from,
            target: from,
            attempt: 0,
            first: None,
            missing,
        });
        Ok(from)
    }

    /// The message at `offset`, number `seq` of `origin`, was taken; `true` when that ends a
    /// re-read (every missing record has now been taken).
    pub fn taken(&mut self, origin: u32, seq: u64, offset: i64) -> bool {
        self.after.insert(origin, offset + 1);
        let Some(r) = &mut self.reread else {
            return false;
        };
        if r.missing.get(&origin).is_some_and(|&need| seq >= need) {
            r.missing.remove(&origin);
        }
        if r.missing.is_empty() && r.first.is_some() {
            self.reread = None;
            return true;
        }
        false
    }

    /// The offset a checkpoint taken now resumes from, given that everything before
    /// `next_offset` was read: while records are missing, from where they may lie (what was
    /// already taken from there on is dropped by sequence number when re-read).
    pub fn resume_offset(&self, next_offset: i64) -> i64 {
        match &self.reread {
            Some(r) if !r.missing.is_empty() => next_offset.min(r.from),
            _ => next_offset,
        }
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
    fn a_record_after_a_gap_is_not_taken() {
        let mut s = InputState::default();
        assert_eq!(s.accept(&f(Kind::Event, 0, 1, 1)), Step::Event);
        let before = s.clone();
        assert_eq!(
            s.accept(&f(Kind::Event, 0, 1, 4)),
            Step::Gap { expected: 2 }
        );
        assert_eq!(
            s.accept(&f(Kind::Watermark(5), 1, 2, 3)),
            Step::Gap { expected: 1 }
        );
        assert_eq!(
            s,
            InputState {
                expected: 2,
                ..before
            }
        );
        // Re-read in order, the missing records are taken and the rest dropped.
        for seq in 2..=4 {
            assert_eq!(s.accept(&f(Kind::Event, 0, 1, seq)), Step::Event);
        }
        assert_eq!(s.accept(&f(Kind::Event, 0, 1, 4)), Step::Duplicate);
    }

    /// Offsets `0..n` of origin 0, numbers `1..=n`, taken in order.
    fn read_in_order(p: &mut Position, n: i64) {
        for offset in 0..n {
            assert_eq!(p.delivered(offset), Delivery::Read);
            p.taken(0, offset as u64 + 1, offset);
        }
    }

    #[test]
    fn a_reader_asks_from_further_back_until_the_broker_starts_at_its_position() {
        // Positioned at 1000, inside the batch 900..1300; Tansu answers with the batch at 1300.
        let mut p = Position::at(1000);
        assert_eq!(p.delivered(1300), Delivery::Seek(993));
        assert_eq!(p.delivered(1300), Delivery::Seek(937));
        assert_eq!(p.delivered(1300), Delivery::Seek(489));
        // The batch at 500 holds offset 1000: what the checkpoint holds is skipped.
        assert_eq!(p.delivered(500), Delivery::Skip);
        assert_eq!(p.delivered(999), Delivery::Skip);
        assert_eq!(p.delivered(1000), Delivery::Read);
        assert_eq!(p.delivered(1300), Delivery::Read);
        assert_eq!(p.resume_offset(1301), 1301);
        // Close to the start, the next attempt asks from the beginning, and that is the last.
        let mut p = Position::at(30);
        assert_eq!(p.delivered(40), Delivery::Seek(23));
        assert_eq!(p.delivered(40), Delivery::Seek(0));
        assert_eq!(p.delivered(40), Delivery::Read);
    }

    #[test]
    fn a_reader_at_its_position_reads_on() {
        let mut p = Position::at(100);
        assert_eq!(p.delivered(100), Delivery::Read);
        assert_eq!(p.delivered(101), Delivery::Read);
        // A committed offset behind the checkpoint: the start is re-delivered, then skipped.
        let mut p = Position::at(100);
        assert_eq!(p.delivered(40), Delivery::Skip);
        assert_eq!(p.delivered(100), Delivery::Read);
        // From the beginning there is nowhere further back to ask from.
        let mut p = Position::at(0);
        assert_eq!(p.delivered(7), Delivery::Read);
    }

    #[test]
    fn a_sequence_gap_is_re_read_from_after_the_writers_last_record() {
        let mut p = Position::at(0);
        read_in_order(&mut p, 5);
        // Offsets 5..10 were not delivered: the record at 10 is number 11.
        assert_eq!(p.delivered(10), Delivery::Read);
        assert_eq!(p.gap(0, 6, 11, 10), Ok(5));
        assert_eq!(
            p.resume_offset(10),
            5,
            "a checkpoint now resumes at the gap"
        );
        // The broker skips again (5 is inside a batch starting at 3), then starts before.
        assert_eq!(p.delivered(10), Delivery::Seek(0));
        // 3 and 4 are duplicates by number (not taken), 5 is the first missing record.
        assert_eq!(p.delivered(3), Delivery::Read);
        assert_eq!(p.delivered(4), Delivery::Read);
        assert_eq!(p.delivered(5), Delivery::Read);
        assert!(p.taken(0, 6, 5), "the gap is closed");
        assert_eq!(p.resume_offset(10), 10);
        assert_eq!(p.delivered(6), Delivery::Read);
    }

    #[test]
    fn records_missing_from_the_log_stop_the_reader() {
        // Offset 5 holds number 11: 6..10 were never stored.
        let mut p = Position::at(0);
        read_in_order(&mut p, 5);
        assert_eq!(p.delivered(5), Delivery::Read);
        assert_eq!(p.gap(0, 6, 11, 5), Ok(5));
        assert_eq!(p.delivered(5), Delivery::Read);
        let missing = p.gap(0, 6, 11, 5).unwrap_err();
        assert_eq!(
            missing,
            Missing {
                origin: 0,
                expected: 6,
                got: 11,
                offset: 5,
                delivered_from: 5
            }
        );
        assert!(missing
            .to_string()
            .contains("records 6 to 10 of writer 0 are not in the log"));
    }

    #[test]
    fn records_deleted_before_the_partitions_start_stop_the_reader() {
        // A fresh reader; retention deleted offsets 0..50 (numbers 1..50).
        let mut p = Position::at(0);
        assert_eq!(p.delivered(50), Delivery::Read);
        assert_eq!(p.gap(0, 1, 51, 50), Ok(0));
        assert_eq!(p.delivered(50), Delivery::Read);
        assert_eq!(p.gap(0, 1, 51, 50).map_err(|m| m.delivered_from), Err(50));
    }

    #[test]
    fn a_gap_of_another_writer_re_reads_from_where_its_records_may_lie() {
        // Two writers; offset 5 is the last record of writer 1 taken, then writer 0 until 20.
        let mut p = Position::at(0);
        read_in_order(&mut p, 5);
        assert_eq!(p.delivered(5), Delivery::Read);
        p.taken(1, 1, 5);
        for offset in 6..20 {
            assert_eq!(p.delivered(offset), Delivery::Read);
            p.taken(0, offset as u64, offset);
        }
        // Writer 1's next record is number 4 at offset 20: 2 and 3 lie after offset 5.
        assert_eq!(p.delivered(20), Delivery::Read);
        assert_eq!(p.gap(1, 2, 4, 20), Ok(6));
        assert_eq!(p.delivered(6), Delivery::Read);
        assert_eq!(p.resume_offset(21), 6);
        assert!(p.taken(1, 2, 8), "the gap is closed");
        assert_eq!(p.resume_offset(21), 21);
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
