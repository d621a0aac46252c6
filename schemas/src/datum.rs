//! Direct Avro binary encoding of the `quotes.raw` events, for the one place where encoding speed
//! is the pipeline's: the input tape, which takes every event the source produces.
//!
//! apache-avro's schema-aware serde path costs about a microsecond per quote (a map lookup of
//! each field by its name and a serializer built per field), ~12% of a whole embedded run's CPU. These
//! encoders write the same bytes straight from the struct, field by field in the schema's order:
//! the tests in this module's parent compare them byte for byte with apache-avro's encoding of
//! the same values (any schema change that these functions do not follow fails there).
//!
//! The decoders read them back the same way, for the same reason: a replay reads every event
//! of its tape. They take bytes from outside (a tape may be truncated, corrupt or not ours), so
//! every length and index is checked and a bad datum is a [`DatumError`], never a panic; the
//! tests decode apache-avro's bytes for random values and every truncation of them.

use crate::topics::RawEvent;
use crate::types::{RawQuote, UnderlyingTick};
use crate::IdString;
use compact_str::CompactString;

/// Why a datum could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatumError {
    /// The bytes ended inside a value.
    #[error("datum truncated: {0} needs more bytes than are left")]
    Truncated(&'static str),
    /// A `long` of more than ten base-128 groups.
    #[error("datum corrupt: a long runs past 64 bits")]
    LongOverflow,
    /// A string or bytes length below zero.
    #[error("datum corrupt: negative length {0}")]
    NegativeLength(i64),
    /// A string that is not UTF-8.
    #[error("datum corrupt: {0} is not UTF-8")]
    NotUtf8(&'static str),
    /// A union branch the schema does not have.
    #[error("datum corrupt: {what} has no union branch {index}")]
    UnionIndex {
        /// Which union.
        what: &'static str,
        /// The index read.
        index: i64,
    },
}

/// Appends Avro's `long`: zig-zag, then little-endian base-128 groups (also the object
/// container file's block counts and sizes).
pub fn put_long(buf: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

/// Appends Avro's `double`: the IEEE 754 bits, little-endian (NaN payloads included).
fn put_double(buf: &mut Vec<u8>, x: f64) {
    buf.extend_from_slice(&x.to_le_bytes());
}

/// Appends Avro's `string`: the byte length as a `long`, then the UTF-8 bytes.
fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_long(buf, s.len() as i64);
    buf.extend_from_slice(s.as_bytes());
}

/// Appends a `["null", "double"]` union.
fn put_opt_double(buf: &mut Vec<u8>, x: Option<f64>) {
    match x {
        None => put_long(buf, 0),
        Some(x) => {
            put_long(buf, 1);
            put_double(buf, x);
        }
    }
}

/// Appends a `["null", "string"]` union.
fn put_opt_str(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => put_long(buf, 0),
        Some(s) => {
            put_long(buf, 1);
            put_str(buf, s);
        }
    }
}

/// Appends the Avro datum of a [`RawQuote`] (schema `raw_quote.avsc`).
pub fn write_raw_quote(q: &RawQuote, buf: &mut Vec<u8>) {
    put_str(buf, &q.event_id);
    put_long(buf, q.event_time);
    put_str(buf, &q.underlying);
    put_str(buf, &q.source);
    put_str(buf, &q.symbol);
    put_double(buf, q.bid);
    put_double(buf, q.ask);
    put_long(buf, q.bid_size);
    put_long(buf, q.ask_size);
    put_opt_double(buf, q.last);
    put_long(buf, q.volume);
    put_long(buf, q.open_interest);
    put_opt_double(buf, q.underlying_price);
}

/// Appends the Avro datum of an [`UnderlyingTick`] (schema `underlying_tick.avsc`).
pub fn write_underlying_tick(t: &UnderlyingTick, buf: &mut Vec<u8>) {
    put_str(buf, &t.event_id);
    put_long(buf, t.event_time);
    put_str(buf, &t.underlying);
    put_str(buf, &t.source);
    put_double(buf, t.price);
    put_long(buf, t.volume);
    put_opt_str(buf, t.sector.as_deref());
}

/// Appends the Avro datum of a [`RawEvent`] under the tape's union schema
/// `[RawQuote, UnderlyingTick]`: the member's index, then the member.
pub fn write_raw_event(ev: &RawEvent, buf: &mut Vec<u8>) {
    match ev {
        RawEvent::Quote(q) => {
            put_long(buf, 0);
            write_raw_quote(q, buf);
        }
        RawEvent::Tick(t) => {
            put_long(buf, 1);
            write_underlying_tick(t, buf);
        }
    }
}

/// Reads an Avro `long` from the front of `buf`, advancing it.
///
/// Most longs of a tape are one byte (union branches, string lengths, small sizes): those
/// are read at once, the rest by [`get_long_groups`]; a quote reads about a dozen.
#[inline]
pub fn get_long(buf: &mut &[u8]) -> Result<i64, DatumError> {
    match buf.split_first() {
        Some((&byte, rest)) if byte < 0x80 => {
            *buf = rest;
            Ok(unzigzag(u64::from(byte)))
        }
        _ => get_long_groups(buf),
    }
}

/// The signed value of a zig-zag encoded `z`.
fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// [`get_long`] of a long of any length: seven bits a byte, least significant first, up to
/// ten bytes.
fn get_long_groups(buf: &mut &[u8]) -> Result<i64, DatumError> {
    let mut z: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(10) {
        // The tenth group holds the top bit only; anything more is not a 64-bit long.
        if i == 9 && byte > 1 {
            return Err(DatumError::LongOverflow);
        }
        z |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            *buf = &buf[i + 1..];
            return Ok(unzigzag(z));
        }
    }
    // Fewer than ten bytes, all with the continuation bit set.
    Err(DatumError::Truncated("a long"))
}

/// Takes `n` bytes from the front of `buf`.
fn take<'a>(buf: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8], DatumError> {
    if buf.len() < n {
        return Err(DatumError::Truncated(what));
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

fn get_double(buf: &mut &[u8], what: &'static str) -> Result<f64, DatumError> {
    let bytes = take(buf, 8, what)?;
    let mut le = [0u8; 8];
    le.copy_from_slice(bytes);
    Ok(f64::from_le_bytes(le))
}

/// The bytes of a `string` (or `bytes`): its length as a `long`, then that many bytes.
fn get_bytes<'a>(buf: &mut &'a [u8], what: &'static str) -> Result<&'a [u8], DatumError> {
    let len = get_long(buf)?;
    let len = usize::try_from(len).map_err(|_| DatumError::NegativeLength(len))?;
    take(buf, len, what)
}

/// A string as `String` or, for the short fields, `CompactString` (no allocation up to 24 bytes).
fn get_str<S: for<'a> From<&'a str>>(buf: &mut &[u8], what: &'static str) -> Result<S, DatumError> {
    std::str::from_utf8(get_bytes(buf, what)?)
        .map(S::from)
        .map_err(|_| DatumError::NotUtf8(what))
}

/// An event id: as [`get_str`], but an id of 32 bytes (the hex digits every id here has) is
/// taken as an array, a move of known length where a string of any length is a call to
/// `memcpy`.
fn get_id(buf: &mut &[u8], what: &'static str) -> Result<IdString, DatumError> {
    let mut peek = *buf;
    if get_long(&mut peek)? == 32 {
        if let Some((digits, rest)) = peek.split_first_chunk::<32>() {
            let id = IdString::from_buf(*digits).map_err(|_| DatumError::NotUtf8(what))?;
            *buf = rest;
            return Ok(id);
        }
    }
    get_str(buf, what)
}

/// Which branch of a two-branch union (`0` or `1`) comes next.
fn get_branch(buf: &mut &[u8], what: &'static str) -> Result<bool, DatumError> {
    match get_long(buf)? {
        0 => Ok(false),
        1 => Ok(true),
        index => Err(DatumError::UnionIndex { what, index }),
    }
}

/// A `["null", T]` union, T read by `get`.
fn get_opt<T>(
    buf: &mut &[u8],
    what: &'static str,
    get: fn(&mut &[u8], &'static str) -> Result<T, DatumError>,
) -> Result<Option<T>, DatumError> {
    if get_branch(buf, what)? {
        get(buf, what).map(Some)
    } else {
        Ok(None)
    }
}

/// A string the event before may have had already (an event's underlying, its source): a copy
/// of `last` when the bytes are the same (for the usual short string, 24 bytes moved, no
/// allocation); otherwise read as [`get_str`] reads it, with the same errors, and remembered.
fn get_repeated(
    buf: &mut &[u8],
    what: &'static str,
    last: &mut CompactString,
) -> Result<CompactString, DatumError> {
    let bytes = get_bytes(buf, what)?;
    if bytes != last.as_bytes() {
        let text = std::str::from_utf8(bytes).map_err(|_| DatumError::NotUtf8(what))?;
        *last = CompactString::from(text);
    }
    Ok(last.clone())
}

/// Reads a tape's events one after another. Quotes come in runs of one underlying from one
/// source, so the decoder keeps the last underlying and source it read and hands out copies of
/// them while the bytes repeat, instead of validating and copying the same text for every
/// quote. What it returns is exactly what [`read_raw_event`] returns.
#[derive(Debug, Default)]
pub struct RawEventDecoder {
    underlying: CompactString,
    source: CompactString,
}

impl RawEventDecoder {
    /// Reads a [`RawEvent`] datum of the tape's union schema from the front of `buf`.
    pub fn read(&mut self, buf: &mut &[u8]) -> Result<RawEvent, DatumError> {
        if get_branch(buf, "the tape's [RawQuote, UnderlyingTick] union")? {
            self.read_tick(buf).map(RawEvent::Tick)
        } else {
            self.read_quote(buf).map(RawEvent::Quote)
        }
    }

    /// Reads a [`RawQuote`] datum (schema `raw_quote.avsc`) from the front of `buf`.
    pub fn read_quote(&mut self, buf: &mut &[u8]) -> Result<RawQuote, DatumError> {
        Ok(RawQuote {
            event_id: get_id(buf, "RawQuote.event_id")?,
            event_time: get_long(buf)?,
            underlying: get_repeated(buf, "RawQuote.underlying", &mut self.underlying)?,
            source: get_repeated(buf, "RawQuote.source", &mut self.source)?,
            symbol: get_str(buf, "RawQuote.symbol")?,
            bid: get_double(buf, "RawQuote.bid")?,
            ask: get_double(buf, "RawQuote.ask")?,
            bid_size: get_long(buf)?,
            ask_size: get_long(buf)?,
            last: get_opt(buf, "RawQuote.last", get_double)?,
            volume: get_long(buf)?,
            open_interest: get_long(buf)?,
            underlying_price: get_opt(buf, "RawQuote.underlying_price", get_double)?,
        })
    }

    /// Reads an [`UnderlyingTick`] datum (schema `underlying_tick.avsc`) from the front of
    /// `buf`.
    pub fn read_tick(&mut self, buf: &mut &[u8]) -> Result<UnderlyingTick, DatumError> {
        Ok(UnderlyingTick {
            event_id: get_id(buf, "UnderlyingTick.event_id")?,
            event_time: get_long(buf)?,
            underlying: get_repeated(buf, "UnderlyingTick.underlying", &mut self.underlying)?,
            source: get_repeated(buf, "UnderlyingTick.source", &mut self.source)?,
            price: get_double(buf, "UnderlyingTick.price")?,
            volume: get_long(buf)?,
            sector: get_opt(buf, "UnderlyingTick.sector", get_str)?,
        })
    }
}

/// Reads a [`RawQuote`] datum (schema `raw_quote.avsc`) from the front of `buf`, advancing it.
pub fn read_raw_quote(buf: &mut &[u8]) -> Result<RawQuote, DatumError> {
    RawEventDecoder::default().read_quote(buf)
}

/// Reads an [`UnderlyingTick`] datum (schema `underlying_tick.avsc`) from the front of `buf`.
pub fn read_underlying_tick(buf: &mut &[u8]) -> Result<UnderlyingTick, DatumError> {
    RawEventDecoder::default().read_tick(buf)
}

/// Reads a [`RawEvent`] datum of the tape's union schema from the front of `buf`.
pub fn read_raw_event(buf: &mut &[u8]) -> Result<RawEvent, DatumError> {
    RawEventDecoder::default().read(buf)
}
