//! Appending to a tape.

use super::container::{read_header, BlockCodec};
use super::{TapeCodec, TapeError, RAW_TAPE_SCHEMA};
use apache_avro::Writer;
use optionflow_schemas::{datum, RawEvent};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Seek, SeekFrom, Write};
use std::path::Path;

/// Blocks are cut once their datums hold this many bytes (and at every checkpoint).
const BLOCK_BYTES: usize = 64 * 1024;

/// Appends `quotes.raw` events to a tape.
///
/// apache-avro writes the file's header; the blocks are written here, with the events encoded
/// by [`optionflow_schemas::datum`] (the same bytes as apache-avro's serde path, several times
/// faster: the tape takes every event of a run). The format is the object container file's:
/// per block the event count and the compressed byte length as Avro longs, the compressed
/// datums, the sync marker.
pub struct TapeWriter {
    file: File,
    marker: [u8; 16],
    codec: BlockCodec,
    /// Datums of the block being filled.
    block: Vec<u8>,
    /// The block compressed (kept to reuse its allocation).
    compressed: Vec<u8>,
    /// Events in `block`.
    block_events: u64,
    path: String,
    events: u64,
}

impl TapeWriter {
    /// Opens `path` for writing, keeping its first `keep_bytes` bytes (a checkpoint's length;
    /// 0 starts a new tape, with blocks of `codec`). `keep_events` is how many events those
    /// bytes hold. A tape that is kept goes on in the codec its header names, whatever `codec`
    /// says: one file has one codec.
    pub fn open(
        path: &Path,
        keep_bytes: u64,
        keep_events: u64,
        codec: TapeCodec,
    ) -> Result<Self, TapeError> {
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
        let codec = if keep_bytes == 0 {
            // A writer with no events writes only the header (schema, codec, sync marker).
            let mut writer = Writer::builder()
                .schema(&RAW_TAPE_SCHEMA)
                .writer(file)
                .codec(codec.avro())
                .build()
                .map_err(avro)?;
            writer.flush().map_err(avro)?;
            file = writer.into_inner().map_err(avro)?;
            codec
        } else {
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            read_header(&mut BufReader::new(&mut file))
                .map_err(|reason| TapeError::Corrupt {
                    path: name.clone(),
                    offset: 0,
                    reason,
                })?
                .codec
        };
        // The header, like every block, ends with the file's sync marker.
        let end = file.seek(SeekFrom::End(0)).map_err(io)?;
        let mut marker = [0u8; 16];
        file.seek(SeekFrom::Start(end.saturating_sub(16)))
            .map_err(io)?;
        std::io::Read::read_exact(&mut file, &mut marker).map_err(io)?;
        file.seek(SeekFrom::End(0)).map_err(io)?;
        Ok(Self {
            file,
            marker,
            codec: BlockCodec::new(codec),
            block: Vec::with_capacity(BLOCK_BYTES + 1024),
            compressed: Vec::new(),
            block_events: 0,
            path: name,
            events: keep_events,
        })
    }

    /// The codec of this tape's blocks.
    pub fn codec(&self) -> TapeCodec {
        self.codec.codec()
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
        self.codec
            .compress(&self.block, &mut self.compressed)
            .map_err(|reason| TapeError::Io {
                path: self.path.clone(),
                source: std::io::Error::other(format!("compressing a block: {reason}")),
            })?;
        let mut head = Vec::with_capacity(20);
        datum::put_long(&mut head, self.block_events as i64);
        datum::put_long(&mut head, self.compressed.len() as i64);
        let io = |source| TapeError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&head).map_err(io)?;
        self.file.write_all(&self.compressed).map_err(io)?;
        self.file.write_all(&self.marker).map_err(io)?;
        self.block.clear();
        self.block_events = 0;
        Ok(())
    }

    /// Cuts the current block, makes the file durable, and returns (bytes, events) on disk.
    pub fn commit(&mut self) -> Result<(u64, u64), TapeError> {
        let (bytes, events, _) = self.cut()?;
        self.file.sync_data().map_err(|source| TapeError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok((bytes, events))
    }

    /// Cuts the current block and returns (bytes, events) written with a second handle on the
    /// file, *not* synced: they are durable once the handle's `sync_data` returns (the checkpoint
    /// coordinator's job, so the tape task does not wait on the disk).
    pub fn cut(&mut self) -> Result<(u64, u64, File), TapeError> {
        self.write_block()?;
        let io = |source| TapeError::Io {
            path: self.path.clone(),
            source,
        };
        let len = self.file.stream_position().map_err(io)?;
        Ok((len, self.events, self.file.try_clone().map_err(io)?))
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
