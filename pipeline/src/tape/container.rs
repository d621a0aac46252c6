//! The parts of Avro's object container file format the tape reads and writes itself: the
//! header (magic, metadata, sync marker) and the compression of a block.
//!
//! apache-avro writes a new tape's header; everything after it (blocks of datums, each
//! compressed whole, then the sync marker) is done here, and so is reading, since a replay reads
//! every event of its tape and apache-avro's reader decodes through serde field by field.

use super::TapeCodec;
use optionflow_schemas::datum;
use std::io::{BufRead, Read};

/// The four bytes every object container file starts with.
pub(crate) const MAGIC: [u8; 4] = *b"Obj\x01";

/// A block's datums may decompress to at most this many bytes (ours hold ~64 KiB): a corrupt
/// or hostile block cannot make the reader allocate without bound.
pub(crate) const MAX_BLOCK_BYTES: usize = 64 << 20;

/// Metadata values (the schema) larger than this are not a tape's.
const MAX_METADATA_BYTES: u64 = 16 << 20;

/// What a file's header says.
#[derive(Debug)]
pub(crate) struct Header {
    /// The writer's schema, as JSON (`avro.schema`).
    pub schema: String,
    /// The block codec (`avro.codec`; absent means `null`).
    pub codec: TapeCodec,
    /// The sync marker that ends the header and every block.
    pub marker: [u8; 16],
}

/// Reads an Avro `long` from a stream; `Ok(None)` when the stream ends before its first byte.
/// The bytes are gathered here and decoded by [`datum::get_long`], the datums' own decoder.
pub(crate) fn read_long(r: &mut impl BufRead) -> Result<Option<i64>, String> {
    // A long is at most ten base-128 groups; the last one has its high bit clear.
    let (mut bytes, mut len) = ([0u8; 10], 0);
    while len < bytes.len() {
        let Some(&byte) = r.fill_buf().map_err(|e| e.to_string())?.first() else {
            break;
        };
        r.consume(1);
        bytes[len] = byte;
        len += 1;
        if byte < 0x80 {
            break;
        }
    }
    if len == 0 {
        return Ok(None);
    }
    datum::get_long(&mut &bytes[..len])
        .map(Some)
        .map_err(|e| e.to_string())
}

fn expect_long(r: &mut impl BufRead, what: &str) -> Result<i64, String> {
    read_long(r)?.ok_or_else(|| format!("the file ends before {what}"))
}

/// Reads `len` bytes, failing (without allocating them first) if the stream has fewer.
pub(crate) fn read_exactly(r: &mut impl Read, len: u64, what: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    read_exactly_into(r, len, what, &mut out)?;
    Ok(out)
}

/// Reads `len` bytes into `out` (replacing what it held), failing if the stream has fewer.
/// `out`'s capacity is kept from one call to the next: a tape's blocks are read into one
/// buffer, where a fresh vector per block grew to each block's size by doubling.
pub(crate) fn read_exactly_into(
    r: &mut impl Read,
    len: u64,
    what: &str,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    out.clear();
    r.take(len)
        .read_to_end(out)
        .map_err(|e| format!("reading {what}: {e}"))?;
    if (out.len() as u64) < len {
        return Err(format!(
            "the file ends inside {what} ({} of {len} bytes)",
            out.len()
        ));
    }
    Ok(())
}

fn read_bytes(r: &mut impl BufRead, what: &str) -> Result<Vec<u8>, String> {
    let len = expect_long(r, what)?;
    if !(0..=MAX_METADATA_BYTES as i64).contains(&len) {
        return Err(format!("{what} has an impossible length {len}"));
    }
    read_exactly(r, len as u64, what)
}

/// Reads the header: magic, the metadata map, the sync marker.
pub(crate) fn read_header(r: &mut impl BufRead) -> Result<Header, String> {
    let magic = read_exactly(r, 4, "the magic bytes")?;
    if magic != MAGIC {
        return Err("not an Avro object container file (no `Obj\\x01` magic)".into());
    }
    let (mut schema, mut codec) = (None, TapeCodec::Null);
    loop {
        let mut count = expect_long(r, "the header's metadata")?;
        if count == 0 {
            break;
        }
        if count < 0 {
            // A negative count is followed by the block's size in bytes, which we do not need.
            count = count.checked_neg().ok_or("corrupt metadata count")?;
            expect_long(r, "the header's metadata")?;
        }
        for _ in 0..count {
            let key = read_bytes(r, "a metadata key")?;
            let value = read_bytes(r, "a metadata value")?;
            match key.as_slice() {
                b"avro.schema" => {
                    schema = Some(String::from_utf8(value).map_err(|_| "the schema is not UTF-8")?)
                }
                b"avro.codec" => {
                    let name = String::from_utf8_lossy(&value);
                    codec = TapeCodec::from_avro_name(&name)
                        .ok_or_else(|| format!("unsupported block codec `{name}`"))?;
                }
                _ => {}
            }
        }
    }
    let marker = read_exactly(r, 16, "the sync marker")?;
    Ok(Header {
        schema: schema.ok_or("the header has no avro.schema")?,
        codec,
        marker: marker.try_into().expect("16 bytes were read"),
    })
}

/// A block codec with its compression contexts, kept across blocks (a zstd context costs more
/// to set up than a 64 KiB block takes to compress).
pub(crate) struct BlockCodec {
    codec: TapeCodec,
    zstd_in: Option<zstd::bulk::Decompressor<'static>>,
    zstd_out: Option<zstd::bulk::Compressor<'static>>,
}

/// zstd's level 1: a simulated session's tape at 38% of its `null` size (the 32-digit hex
/// event ids and the prices are most of what is left), for ~1.5% of a replay's time and about
/// 0.26 µs of CPU per recorded event (BENCHMARKS.md). Level 3 saved only 2% more.
const ZSTD_LEVEL: i32 = 1;

impl BlockCodec {
    /// A codec for blocks of `codec`.
    pub(crate) fn new(codec: TapeCodec) -> BlockCodec {
        BlockCodec {
            codec,
            zstd_in: None,
            zstd_out: None,
        }
    }

    /// Which codec.
    pub(crate) fn codec(&self) -> TapeCodec {
        self.codec
    }

    /// Compresses `datums` into `out` (replacing its contents).
    pub(crate) fn compress(&mut self, datums: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        out.clear();
        match self.codec {
            TapeCodec::Null => out.extend_from_slice(datums),
            TapeCodec::Zstandard => {
                let zstd = match &mut self.zstd_out {
                    Some(z) => z,
                    None => self.zstd_out.insert(
                        zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| e.to_string())?,
                    ),
                };
                out.reserve(zstd::zstd_safe::compress_bound(datums.len()));
                zstd.compress_to_buffer(datums, out)
                    .map_err(|e| e.to_string())?;
            }
            other => {
                out.extend_from_slice(datums);
                other.avro().compress(out).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// Decompresses one block into `out` (replacing its contents).
    pub(crate) fn decompress(
        &mut self,
        block: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        match self.codec {
            // The block is the datums: the two buffers trade places, both kept for the next one.
            TapeCodec::Null => std::mem::swap(out, block),
            TapeCodec::Zstandard => {
                // The frame header carries the content size (ours always does); a frame
                // without one gets the whole budget.
                let size = zstd::zstd_safe::get_frame_content_size(block)
                    .ok()
                    .flatten()
                    .map_or(MAX_BLOCK_BYTES, |n| n as usize);
                if size > MAX_BLOCK_BYTES {
                    return Err(format!(
                        "a block claims {size} bytes of datums (limit {MAX_BLOCK_BYTES})"
                    ));
                }
                let zstd = match &mut self.zstd_in {
                    Some(z) => z,
                    None => self
                        .zstd_in
                        .insert(zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?),
                };
                out.clear();
                out.reserve(size);
                zstd.decompress_to_buffer(block, out)
                    .map_err(|e| format!("zstandard: {e}"))?;
            }
            other => {
                let mut data = std::mem::take(block);
                other
                    .avro()
                    .decompress(&mut data)
                    .map_err(|e| e.to_string())?;
                *out = data;
            }
        }
        Ok(())
    }
}
