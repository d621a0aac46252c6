//! Direct Avro binary encoding of the `quotes.raw` events, for the one place where encoding speed
//! is the pipeline's: the input tape, which takes every event the source produces.
//!
//! apache-avro's schema-aware serde path costs about a microsecond per quote (a map lookup of
//! each field by its name and a serializer built per field), ~12% of a whole embedded run's CPU. These
//! encoders write the same bytes straight from the struct, field by field in the schema's order:
//! the tests in this module's parent compare them byte for byte with apache-avro's encoding of
//! the same values (any schema change that these functions do not follow fails there). Decoding
//! stays with apache-avro.

use crate::topics::RawEvent;
use crate::types::{RawQuote, UnderlyingTick};

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
