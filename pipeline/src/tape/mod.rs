//! Tapes: the input of a session as an Avro object container file, so any Avro tool can read
//! it. The file's schema is the union `[RawQuote, UnderlyingTick]` (one file per topic: this is
//! the `quotes.raw` tape). Blocks are compressed ([`TapeCodec`], zstandard by default) and cut
//! at every checkpoint, so a checkpoint's tape length is always a block boundary and recovery
//! truncates the file there and appends.
//!
//! - [`TapeWriter`]: appends events, block by block.
//! - [`TapeReader`]: streams them back; memory does not grow with the tape's length.

mod container;
mod reader;
mod writer;

pub use reader::TapeReader;
pub use writer::TapeWriter;

use serde::{Deserialize, Serialize};

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
    /// A file whose schema is not the tape's.
    #[error("tape {path}: its schema is not the [RawQuote, UnderlyingTick] union of a tape")]
    Foreign {
        /// The tape.
        path: String,
    },
    /// The file's bytes are not a well-formed tape.
    #[error("tape {path}: corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// The tape.
        path: String,
        /// Where the block (or header) that failed starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// How a tape's blocks are compressed: the codecs of the Avro specification that the Avro
/// tools of most languages read (`deflate` is the one every reader must support; `zstandard` is
/// read by Java Avro ≥ 1.9, fastavro and apache-avro).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TapeCodec {
    /// Uncompressed.
    Null,
    /// zlib's deflate (RFC 1951), at its default level.
    Deflate,
    /// Snappy, each block followed by the CRC-32 of its datums.
    Snappy,
    /// Zstandard, level 1.
    #[default]
    Zstandard,
}

impl TapeCodec {
    /// The name in a file's `avro.codec` metadata.
    pub fn avro_name(self) -> &'static str {
        match self {
            TapeCodec::Null => "null",
            TapeCodec::Deflate => "deflate",
            TapeCodec::Snappy => "snappy",
            TapeCodec::Zstandard => "zstandard",
        }
    }

    /// The codec an `avro.codec` name stands for.
    pub fn from_avro_name(name: &str) -> Option<TapeCodec> {
        [
            TapeCodec::Null,
            TapeCodec::Deflate,
            TapeCodec::Snappy,
            TapeCodec::Zstandard,
        ]
        .into_iter()
        .find(|c| c.avro_name() == name)
    }

    /// apache-avro's codec of the same name (apache-avro writes a new tape's header).
    fn avro(self) -> apache_avro::Codec {
        match self {
            TapeCodec::Null => apache_avro::Codec::Null,
            TapeCodec::Deflate => apache_avro::Codec::Deflate(Default::default()),
            TapeCodec::Snappy => apache_avro::Codec::Snappy,
            TapeCodec::Zstandard => apache_avro::Codec::Zstandard(Default::default()),
        }
    }
}

#[cfg(test)]
mod tests;
