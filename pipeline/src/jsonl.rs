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

    /// Flushes to the OS and returns the length so far with a second handle on the file, *not*
    /// synced: the length becomes durable once the handle's `sync_data` returns. A checkpoint barrier
    /// cuts each stage's files this way and the checkpoint coordinator syncs them before it
    /// saves the checkpoint that records the lengths, so the stage's own thread never waits on
    /// the disk (normalize's rejections are ~1 MB per minute of market time in a replay).
    pub fn cut(&mut self) -> std::io::Result<(u64, File)> {
        self.out.flush()?;
        Ok((self.len, self.out.get_ref().try_clone()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A barrier's cut hands the lines so far to the OS (another reader sees exactly the
    /// length it reports) and a handle that syncs that same file.
    #[test]
    fn cut_flushes_what_was_written_and_reports_its_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signals.jsonl");
        let mut f = JsonlFile::open(&path, 0).unwrap();
        f.write(&serde_json::json!({"a": 1})).unwrap();
        f.write_with(|line| line.extend_from_slice(b"{\"b\":2}"))
            .unwrap();
        let (len, handle) = f.cut().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}\n{\"b\":2}\n");
        assert_eq!(len, 16);
        handle.sync_data().unwrap();
        assert_eq!(handle.metadata().unwrap().len(), len);
        // Written after the cut: not part of its length, and the file goes on from there.
        f.write(&serde_json::json!({"c": 3})).unwrap();
        assert_eq!(f.commit().unwrap(), 24);
    }
}
