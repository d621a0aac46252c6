//! Reading a tape back, block by block.

use super::container::{
    read_exactly, read_exactly_into, read_header, read_long, BlockCodec, MAX_BLOCK_BYTES,
};
use super::{TapeCodec, TapeError, RAW_TAPE_SCHEMA};
use optionflow_schemas::{datum, RawEvent};
use std::fs::File;
use std::io::{BufReader, Seek};
use std::path::Path;

/// Streams the events of a tape in order; memory does not grow with its length (one block's
/// datums are held at a time).
///
/// Blocks are decompressed and their datums decoded by [`optionflow_schemas::datum`], which
/// halves the time a whole `tape info` took with apache-avro's serde reader; any file
/// apache-avro reads with the tape's schema and codecs reads here too (the tests read files
/// apache-avro wrote). A malformed file is a [`TapeError::Corrupt`] naming the byte where its
/// block starts, after which the iterator ends.
pub struct TapeReader {
    file: BufReader<File>,
    codec: BlockCodec,
    marker: [u8; 16],
    /// The current block as stored (compressed), kept for the next block's bytes.
    block: Vec<u8>,
    /// The current block's datums, and how far they have been decoded.
    datums: Vec<u8>,
    at: usize,
    /// Decodes the datums, remembering the strings that repeat from one event to the next.
    decoder: datum::RawEventDecoder,
    /// Events of the current block not yet decoded.
    left: u64,
    /// Where the current block starts in the file.
    block_offset: u64,
    path: String,
    done: bool,
}

impl TapeReader {
    /// Opens a tape, checking its header names the tape's schema.
    pub fn open(path: &Path) -> Result<Self, TapeError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|source| TapeError::Io {
            path: name.clone(),
            source,
        })?;
        let mut file = BufReader::with_capacity(1 << 16, file);
        let header = read_header(&mut file).map_err(|reason| TapeError::Corrupt {
            path: name.clone(),
            offset: 0,
            reason,
        })?;
        let schema =
            apache_avro::Schema::parse_str(&header.schema).map_err(|e| TapeError::Avro {
                path: name.clone(),
                source: Box::new(e),
            })?;
        if schema != *RAW_TAPE_SCHEMA {
            return Err(TapeError::Foreign { path: name });
        }
        let block_offset = file.stream_position().map_err(|source| TapeError::Io {
            path: name.clone(),
            source,
        })?;
        Ok(Self {
            file,
            codec: BlockCodec::new(header.codec),
            marker: header.marker,
            block: Vec::new(),
            datums: Vec::new(),
            at: 0,
            decoder: datum::RawEventDecoder::default(),
            left: 0,
            block_offset,
            path: name,
            done: false,
        })
    }

    /// The codec of the tape's blocks.
    pub fn codec(&self) -> TapeCodec {
        self.codec.codec()
    }

    /// Loads the next block with events; `Ok(false)` at the end of the file.
    fn next_block(&mut self) -> Result<bool, String> {
        loop {
            if self.at != self.datums.len() {
                return Err(format!(
                    "{} bytes after the block's last event",
                    self.datums.len() - self.at
                ));
            }
            self.block_offset = self.file.stream_position().map_err(|e| e.to_string())?;
            let Some(count) = read_long(&mut self.file)? else {
                return Ok(false);
            };
            let size = read_long(&mut self.file)?.ok_or("the file ends inside a block head")?;
            if count < 0 || !(0..=MAX_BLOCK_BYTES as i64).contains(&size) {
                return Err(format!(
                    "a block head claims {count} events in {size} bytes"
                ));
            }
            read_exactly_into(&mut self.file, size as u64, "a block", &mut self.block)?;
            let marker = read_exactly(&mut self.file, 16, "a block's sync marker")?;
            if marker != self.marker {
                return Err("a block's sync marker is not the file's".into());
            }
            self.codec.decompress(&mut self.block, &mut self.datums)?;
            self.at = 0;
            self.left = count as u64;
            if count > 0 {
                return Ok(true);
            }
        }
    }

    fn read_event(&mut self) -> Result<Option<RawEvent>, String> {
        if self.left == 0 && !self.next_block()? {
            return Ok(None);
        }
        let mut rest = &self.datums[self.at..];
        let ev = self.decoder.read(&mut rest).map_err(|e| e.to_string())?;
        self.at = self.datums.len() - rest.len();
        self.left -= 1;
        Ok(Some(ev))
    }
}

impl Iterator for TapeReader {
    type Item = Result<RawEvent, TapeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.read_event() {
            Ok(Some(ev)) => Some(Ok(ev)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(reason) => {
                self.done = true;
                Some(Err(TapeError::Corrupt {
                    path: self.path.clone(),
                    offset: self.block_offset,
                    reason,
                }))
            }
        }
    }
}
