//! Encoding and decoding of events: plain Avro datums (tapes, checkpoints) and Avro
//! single-object encoding (`C3 01` + 8-byte Rabin fingerprint + datum), the Kafka wire format,
//! decodable without a registry.
//!
//! Both directions go through apache-avro's schema-aware serde paths, which write the same
//! bytes as its `Value` path without building an intermediate tree.

use crate::event::Event;
use crate::registry::{self, SchemaEntry, READERS, SCHEMAS};
use apache_avro::schema::ResolvedSchema;
use std::sync::LazyLock;

/// The two magic bytes that open every single-object-encoded message.
pub const SINGLE_OBJECT_MAGIC: [u8; 2] = [0xC3, 0x01];

/// What can go wrong encoding or decoding an event.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The event does not fit its schema (a bug in the Rust mirror of a `.avsc`).
    #[error("encoding {event} failed: {source}")]
    Encode {
        /// Event type.
        event: &'static str,
        /// The Avro error.
        source: Box<apache_avro::Error>,
    },
    /// The bytes are not a valid datum of the schema.
    #[error("decoding {event} failed: {source} (corrupt payload or written with another schema)")]
    Decode {
        /// Event type.
        event: &'static str,
        /// The Avro error.
        source: Box<apache_avro::Error>,
    },
    /// A single-object message does not start with `C3 01`.
    #[error("not an Avro single-object message: it does not start with C3 01")]
    BadMagic,
    /// A single-object message is shorter than its 10-byte header.
    #[error("message of {0} bytes is shorter than the 10-byte single-object header")]
    Truncated(usize),
    /// The fingerprint names no schema this build knows.
    #[error("unknown schema fingerprint {0:016x}: written by a newer or foreign producer")]
    UnknownFingerprint(u64),
    /// The fingerprint names a different event type than the one asked for.
    #[error("expected a {expected} but the message holds a {found}")]
    WrongType {
        /// Asked for.
        expected: &'static str,
        /// Found.
        found: &'static str,
    },
    /// Bytes were left over after the datum.
    #[error("{0} bytes left over after decoding the datum")]
    TrailingBytes(usize),
}

/// Names resolved once per schema, for the serializer.
static RESOLVED: LazyLock<Vec<ResolvedSchema<'static>>> = LazyLock::new(|| {
    SCHEMAS
        .iter()
        .map(|e| {
            ResolvedSchema::try_from(&e.schema)
                .unwrap_or_else(|err| panic!("resolving {}: {err}", e.name))
        })
        .collect()
});

fn index<E: Event>() -> usize {
    // Every Event type has a schema: the registry tests cover the full list.
    registry::index_of(E::NAME).unwrap_or_else(|| panic!("no schema registered for {}", E::NAME))
}

/// The schema entry of event type `E`.
pub fn entry<E: Event>() -> &'static SchemaEntry {
    &SCHEMAS[index::<E>()]
}

/// Appends the plain Avro datum of `ev` to `buf`.
pub fn encode_datum<E: Event>(ev: &E, buf: &mut Vec<u8>) -> Result<(), CodecError> {
    let i = index::<E>();
    apache_avro::write_avro_datum_ref(&SCHEMAS[i].schema, RESOLVED[i].get_names(), ev, buf)
        .map(|_| ())
        .map_err(|e| CodecError::Encode {
            event: E::NAME,
            source: Box::new(e),
        })
}

/// Decodes one datum of `E` from the front of `bytes`, returning it and the bytes consumed.
pub fn decode_datum_prefix<E: Event>(bytes: &[u8]) -> Result<(E, usize), CodecError> {
    let mut cursor = std::io::Cursor::new(bytes);
    let ev = READERS[index::<E>()]
        .read_deser::<E>(&mut cursor)
        .map_err(|e| CodecError::Decode {
            event: E::NAME,
            source: Box::new(e),
        })?;
    Ok((ev, cursor.position() as usize))
}

/// Decodes exactly one datum of `E`; trailing bytes are an error.
pub fn decode_datum<E: Event>(bytes: &[u8]) -> Result<E, CodecError> {
    let (ev, used) = decode_datum_prefix::<E>(bytes)?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - used));
    }
    Ok(ev)
}

/// Appends the single-object encoding of `ev` (magic, fingerprint, datum) to `buf`.
pub fn encode_single<E: Event>(ev: &E, buf: &mut Vec<u8>) -> Result<(), CodecError> {
    buf.extend_from_slice(&SINGLE_OBJECT_MAGIC);
    buf.extend_from_slice(&entry::<E>().fingerprint);
    encode_datum(ev, buf)
}

/// Reads the header of a single-object message: which schema it holds, and the datum bytes.
pub fn peek_single(bytes: &[u8]) -> Result<(&'static SchemaEntry, &[u8]), CodecError> {
    if bytes.len() < 10 {
        return Err(CodecError::Truncated(bytes.len()));
    }
    if bytes[..2] != SINGLE_OBJECT_MAGIC {
        return Err(CodecError::BadMagic);
    }
    let mut fp = [0u8; 8];
    fp.copy_from_slice(&bytes[2..10]);
    let entry = registry::by_fingerprint(&fp)
        .ok_or(CodecError::UnknownFingerprint(u64::from_le_bytes(fp)))?;
    Ok((entry, &bytes[10..]))
}

/// Decodes a single-object message that must hold an `E`.
pub fn decode_single<E: Event>(bytes: &[u8]) -> Result<E, CodecError> {
    let (found, datum) = peek_single(bytes)?;
    if found.name != E::NAME {
        return Err(CodecError::WrongType {
            expected: E::NAME,
            found: found.name,
        });
    }
    decode_datum(datum)
}
