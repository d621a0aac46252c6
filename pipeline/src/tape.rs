//! Tapes: the input of a session as an Avro object container file, so any Avro tool can read
//! it. The file's schema is the union `[RawQuote, UnderlyingTick]` (one file per topic: this is
//! the `quotes.raw` tape). Blocks are cut at every checkpoint, so a checkpoint's tape length is
//! always a block boundary and recovery truncates the file there and appends.

use apache_avro::{Reader, Writer};
use optionflow_schemas::{datum, RawEvent};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The tape schema: the union of the `quotes.raw` event types.
pub use optionflow_schemas::RAW_EVENT_SCHEMA as RAW_TAPE_SCHEMA;

/// A tape problem.
#[derive(Debug, thiserror::Error)]
pub enum TapeError {
    /// File system error.
    #[error("tape {path}: {source}")]
    Io {
        /// The tape.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Avro error.
    #[error("tape {path}: {source}")]
    Avro {
        /// The tape.
        path: String,
        /// Cause.
        source: Box<apache_avro::Error>,
    },
    /// A record that is neither union member.
    #[error("tape {path}: record {index} is not a RawQuote or UnderlyingTick")]
    Foreign {
        /// The tape.
        path: String,
        /// Position.
        index: u64,
    },
}

/// Blocks are cut once they hold this many bytes (and at every checkpoint).
const BLOCK_BYTES: usize = 64 * 1024;

/// Appends `quotes.raw` events to a tape.
///
/// apache-avro writes the file's header; the blocks are written here, with the events encoded
/// by [`optionflow_schemas::datum`] (the same bytes as apache-avro's serde path, several times
/// faster: the tape takes every event of a run). The format is the object container file's:
/// per block the event count and byte length as Avro longs, the datums, the sync marker.
pub struct TapeWriter {
    file: File,
    marker: [u8; 16],
    /// Datums of the block being filled.
    block: Vec<u8>,
    /// Events in `block`.
    block_events: u64,
    path: String,
    events: u64,
}

impl TapeWriter {
    /// Opens `path` for writing, keeping its first `keep_bytes` bytes (a checkpoint's length;
    /// 0 starts a new tape). `keep_events` is how many events those bytes hold.
    pub fn open(path: &Path, keep_bytes: u64, keep_events: u64) -> Result<Self, TapeError> {
        let name = path.display().to_string();
        let io = |source| TapeError::Io {
            path: name.clone(),
            source,
        };
        let avro = |e| TapeError::Avro {
            path: name.clone(),
            source: Box::new(e),
        };
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(io)?;
        file.set_len(keep_bytes).map_err(io)?;
        if keep_bytes == 0 {
            // A writer with no events writes only the header (schema, codec, sync marker).
            let mut writer = Writer::new(&RAW_TAPE_SCHEMA, file).map_err(avro)?;
            writer.flush().map_err(avro)?;
            file = writer.into_inner().map_err(avro)?;
        }
        // The header, like every block, ends with the file's sync marker.
        let end = file.seek(SeekFrom::End(0)).map_err(io)?;
        let mut marker = [0u8; 16];
        file.seek(SeekFrom::Start(end.saturating_sub(16)))
            .map_err(io)?;
        file.read_exact(&mut marker).map_err(io)?;
        file.seek(SeekFrom::End(0)).map_err(io)?;
        Ok(Self {
            file,
            marker,
            block: Vec::with_capacity(BLOCK_BYTES + 1024),
            block_events: 0,
            path: name,
            events: keep_events,
        })
    }

    /// Appends one event (buffered into the current block).
    pub fn append(&mut self, ev: &RawEvent) -> Result<(), TapeError> {
        datum::write_raw_event(ev, &mut self.block);
        self.block_events += 1;
        self.events += 1;
        if self.block.len() >= BLOCK_BYTES {
            self.write_block()?;
        }
        Ok(())
    }

    /// Writes the block being filled, if it holds any event.
    fn write_block(&mut self) -> Result<(), TapeError> {
        if self.block_events == 0 {
            return Ok(());
        }
        let mut head = Vec::with_capacity(20);
        datum::put_long(&mut head, self.block_events as i64);
        datum::put_long(&mut head, self.block.len() as i64);
        let io = |source| TapeError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&head).map_err(io)?;
        self.file.write_all(&self.block).map_err(io)?;
        self.file.write_all(&self.marker).map_err(io)?;
        self.block.clear();
        self.block_events = 0;
        Ok(())
    }

    /// Cuts the current block, makes the file durable, and returns (bytes, events) on disk.
    pub fn commit(&mut self) -> Result<(u64, u64), TapeError> {
        self.write_block()?;
        let io = |source| TapeError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.sync_data().map_err(io)?;
        let len = self.file.stream_position().map_err(io)?;
        Ok((len, self.events))
    }
}

impl Drop for TapeWriter {
    /// Writes what is buffered, as apache-avro's writer does on drop; durability is
    /// [`TapeWriter::commit`]'s job, and recovery truncates to the last commit anyway.
    fn drop(&mut self) {
        if let Err(e) = self.write_block() {
            tracing::warn!(error = %e, "tape: writing the last block on close failed");
        }
    }
}

/// Streams the events of a tape in order; memory does not grow with its length.
pub struct TapeReader {
    // Serde straight from the datum bytes: about twice as fast as building an Avro `Value` per
    // event and converting it.
    reader: apache_avro::reader::ReaderDeser<'static, BufReader<File>, RawEvent>,
    path: String,
    index: u64,
}

impl TapeReader {
    /// Opens a tape.
    pub fn open(path: &Path) -> Result<Self, TapeError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|source| TapeError::Io {
            path: name.clone(),
            source,
        })?;
        let reader = Reader::new(BufReader::new(file)).map_err(|e| TapeError::Avro {
            path: name.clone(),
            source: Box::new(e),
        })?;
        if reader.writer_schema() != &*RAW_TAPE_SCHEMA {
            return Err(TapeError::Foreign {
                path: name,
                index: 0,
            });
        }
        Ok(Self {
            reader: reader.into_deser_iter(),
            path: name,
            index: 0,
        })
    }
}

impl Iterator for TapeReader {
    type Item = Result<RawEvent, TapeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.reader.next()?;
        self.index += 1;
        Some(next.map_err(|e| TapeError::Avro {
            path: self.path.clone(),
            source: Box::new(e),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use optionflow_schemas::{RawQuote, UnderlyingTick};

    fn tick(i: i64) -> RawEvent {
        RawEvent::Tick(UnderlyingTick {
            event_id: format!("id{i}"),
            event_time: i,
            underlying: "SPY".into(),
            source: "test".into(),
            price: 100.0 + i as f64,
            volume: i,
            sector: None,
        })
    }

    fn quote(i: i64) -> RawEvent {
        RawEvent::Quote(RawQuote {
            event_id: format!("q{i}"),
            event_time: i,
            underlying: "SPY".into(),
            source: "test".into(),
            symbol: "SPY   240119C00400000".into(),
            bid: 1.0,
            ask: 1.1,
            bid_size: 1,
            ask_size: 1,
            last: None,
            volume: i,
            open_interest: 10,
            underlying_price: Some(400.0),
        })
    }

    #[test]
    fn truncate_to_a_commit_and_append_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.avro");
        let mut w = TapeWriter::open(&path, 0, 0).unwrap();
        for i in 0..10 {
            w.append(&tick(i)).unwrap();
            w.append(&quote(i)).unwrap();
        }
        let (bytes, events) = w.commit().unwrap();
        assert_eq!(events, 20);
        // Written after the commit, then lost in a crash.
        for i in 100..105 {
            w.append(&tick(i)).unwrap();
        }
        w.commit().unwrap();
        drop(w);
        let mut w = TapeWriter::open(&path, bytes, events).unwrap();
        for i in 10..12 {
            w.append(&quote(i)).unwrap();
        }
        assert_eq!(w.commit().unwrap().1, 22);
        drop(w);
        let read: Vec<RawEvent> = TapeReader::open(&path)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut want: Vec<RawEvent> = (0..10).flat_map(|i| [tick(i), quote(i)]).collect();
        want.extend((10..12).map(quote));
        assert_eq!(read, want);
    }
}
