//! Append-only JSON-lines output files whose committed length is part of every checkpoint.

use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

/// A JSON-lines file written through a buffer, truncated on recovery to a checkpoint's length.
pub struct JsonlFile {
    out: BufWriter<File>,
    len: u64,
    name: String,
    /// The line being written, kept from one to the next: a fresh vector per line grew from
    /// nothing through two or three reallocations (a replay writes a line per rejected quote).
    line: Vec<u8>,
}

impl JsonlFile {
    /// Opens `path`, keeping its first `keep` bytes (0 for a new session).
    pub fn open(path: &Path, keep: u64) -> std::io::Result<Self> {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        f.set_len(keep)?;
        f.seek(SeekFrom::End(0))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        Ok(Self {
            out: BufWriter::with_capacity(1 << 16, f),
            len: keep,
            name,
            line: Vec::with_capacity(1024),
        })
    }

    /// File name, the key of its length in a checkpoint.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Appends one value as a line.
    pub fn write<T: Serialize>(&mut self, value: &T) -> std::io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, value).map_err(std::io::Error::other)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.len += self.line.len() as u64;
        Ok(())
    }

    /// Appends one line that `write_line` writes (without its newline) into the buffer it is
    /// given: for records with a writer of their own (e.g. [`RejectedQuote::write_json`]).
    ///
    /// [`RejectedQuote::write_json`]: optionflow_schemas::RejectedQuote::write_json
    pub fn write_with(&mut self, write_line: impl FnOnce(&mut Vec<u8>)) -> std::io::Result<()> {
        self.line.clear();
        write_line(&mut self.line);
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.len += self.line.len() as u64;
        Ok(())
    }

    /// Flushes and syncs; returns the durable length.
    pub fn commit(&mut self) -> std::io::Result<u64> {
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        Ok(self.len)
    }
}
