//! What a Kafka message of optionflow holds, and how it is framed.
//!
//! - The value of an event message is the event in Avro single-object encoding (`C3 01`, the
//!   8-byte schema fingerprint, the datum), so any consumer decodes it without a registry; the
//!   fingerprint is also in the `optionflow-fingerprint` header (hex) for tools that only read
//!   headers. The key is the underlying.
//! - Control messages carry no event: a watermark (every event of that origin with event time
//!   ≤ the value has been written) or the end of the stream. They travel in-band, in the same
//!   partition as the events they follow, which is what lets each partition be replayed alone.
//! - Every message names its origin (the upstream partition that wrote it), how many origins
//!   write to this partition, and its sequence number in that origin's stream to this
//!   partition. A writer restored from a checkpoint writes the same messages with the same
//!   numbers again (the operators are deterministic), and the reader drops every number it has
//!   already seen: at-least-once delivery, exactly-once effect.
//! - The source also stamps every message with the wall-clock time it produced it
//!   (`optionflow-emitted-at`), and each stage passes the stamp of the input that caused an
//!   output on to that output, so dispatch can measure source → alert latency. The stamp is
//!   only a header: it never enters an event, an id, a checkpoint or an output file, and a
//!   rewritten message carries a new one without changing anything else.

use optionflow_schemas::codec::CodecError;
use optionflow_schemas::{
    Alert, Event, Explanation, FactorScore, GreeksEvent, NormalizedEvent, RawEvent, RejectedQuote,
    RiskDecision, Signal,
};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::Message as _;

/// Header: `event`, `watermark` or `end`.
pub const H_KIND: &str = "optionflow-kind";
/// Header: the writing origin (upstream partition), decimal.
pub const H_ORIGIN: &str = "optionflow-origin";
/// Header: how many origins write to this partition, decimal.
pub const H_ORIGINS: &str = "optionflow-origins";
/// Header: sequence number in the origin's stream to this partition, decimal from 1.
pub const H_SEQ: &str = "optionflow-seq";
/// Header: the schema fingerprint of an event message, 16 hex digits.
pub const H_FINGERPRINT: &str = "optionflow-fingerprint";
/// Header: when the source produced the input this message follows from, µs since the UNIX
/// epoch (wall clock), decimal. Diagnostic only: missing or malformed, it is ignored.
pub const H_EMITTED_AT: &str = "optionflow-emitted-at";
/// Header of a dead letter: why the message could not be used.
pub const H_ERROR: &str = "optionflow-error";
/// Header of a dead letter: `topic/partition/offset` it came from.
pub const H_FROM: &str = "optionflow-from";

/// An event type that travels on a topic.
pub trait WireEvent: Sized + Send + Sync + 'static {
    /// The underlying: the message key.
    fn key(&self) -> &str;
    /// The deterministic event id (what downstream upserts are keyed by).
    fn id(&self) -> &str;
    /// Event time, µs.
    fn time(&self) -> i64;
    /// Appends the single-object encoding.
    fn encode(&self, buf: &mut Vec<u8>) -> Result<(), CodecError>;
    /// Decodes a single-object message.
    fn decode(bytes: &[u8]) -> Result<Self, CodecError>;
}

macro_rules! wire_mixed {
    ($($t:ty),+) => {$(
        impl WireEvent for $t {
            fn key(&self) -> &str { self.underlying() }
            fn id(&self) -> &str { self.event_id() }
            fn time(&self) -> i64 { self.event_time() }
            fn encode(&self, buf: &mut Vec<u8>) -> Result<(), CodecError> { self.encode_single(buf) }
            fn decode(bytes: &[u8]) -> Result<Self, CodecError> { Self::decode_single(bytes) }
        }
    )+};
}
wire_mixed!(RawEvent, NormalizedEvent, GreeksEvent);

macro_rules! wire_single {
    ($($t:ty),+) => {$(
        impl WireEvent for $t {
            fn key(&self) -> &str { Event::underlying(self) }
            fn id(&self) -> &str { Event::event_id(self) }
            fn time(&self) -> i64 { Event::event_time(self) }
            fn encode(&self, buf: &mut Vec<u8>) -> Result<(), CodecError> {
                optionflow_schemas::codec::encode_single(self, buf)
            }
            fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
                optionflow_schemas::codec::decode_single(bytes)
            }
        }
    )+};
}
wire_single!(
    FactorScore,
    Signal,
    Explanation,
    RiskDecision,
    Alert,
    RejectedQuote
);

/// What a message is, apart from its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An event.
    Event,
    /// The origin's event time has reached the value.
    Watermark(i64),
    /// The origin has nothing more to write.
    End,
}

/// The framing headers of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Event or control.
    pub kind: Kind,
    /// The writing origin.
    pub origin: u32,
    /// Origins writing to the partition.
    pub origins: u32,
    /// Sequence number in the origin's stream to this partition.
    pub seq: u64,
    /// Wall-clock µs since the UNIX epoch at which the source produced the input this message
    /// follows from ([`H_EMITTED_AT`]); not part of the deterministic stream.
    pub emitted_at: Option<u64>,
}

impl Frame {
    /// This frame stamped with the source's production time (see [`Frame::emitted_at`]).
    pub fn emitted(self, emitted_at: Option<u64>) -> Frame {
        Frame { emitted_at, ..self }
    }

    /// The headers of this frame (plus the fingerprint of an event's payload).
    pub fn headers(&self, payload: &[u8]) -> OwnedHeaders {
        let kind = match self.kind {
            Kind::Event => "event".to_string(),
            Kind::Watermark(t) => format!("watermark:{t}"),
            Kind::End => "end".to_string(),
        };
        let origin = self.origin.to_string();
        let origins = self.origins.to_string();
        let seq = self.seq.to_string();
        let mut h = OwnedHeaders::new_with_capacity(6)
            .insert(Header {
                key: H_KIND,
                value: Some(kind.as_bytes()),
            })
            .insert(Header {
                key: H_ORIGIN,
                value: Some(origin.as_bytes()),
            })
            .insert(Header {
                key: H_ORIGINS,
                value: Some(origins.as_bytes()),
            })
            .insert(Header {
                key: H_SEQ,
                value: Some(seq.as_bytes()),
            });
        if let Some(at) = self.emitted_at {
            let mut digits = [0u8; 20];
            h = h.insert(Header {
                key: H_EMITTED_AT,
                value: Some(decimal(at, &mut digits)),
            });
        }
        if self.kind == Kind::Event && payload.len() >= 10 {
            let fp = u64::from_le_bytes(payload[2..10].try_into().unwrap_or([0; 8]));
            let hex = format!("{fp:016x}");
            h = h.insert(Header {
                key: H_FINGERPRINT,
                value: Some(hex.as_bytes()),
            });
        }
        h
    }

    /// Reads the framing headers of a message; an error names what is missing or malformed.
    pub fn read(msg: &BorrowedMessage<'_>) -> Result<Frame, String> {
        let headers = msg.headers().ok_or("no optionflow headers")?;
        let get = |name: &str| -> Result<&str, String> {
            headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .ok_or_else(|| format!("header {name} missing"))
                .and_then(|v| {
                    std::str::from_utf8(v).map_err(|_| format!("header {name} is not UTF-8"))
                })
        };
        let num = |name: &str| -> Result<u64, String> {
            get(name)?
                .parse::<u64>()
                .map_err(|_| format!("header {name} is not a number"))
        };
        let kind = match get(H_KIND)? {
            "event" => Kind::Event,
            "end" => Kind::End,
            other => match other.strip_prefix("watermark:").map(str::parse::<i64>) {
                Some(Ok(t)) => Kind::Watermark(t),
                _ => return Err(format!("header {H_KIND} has unknown value {other:?}")),
            },
        };
        let origins = num(H_ORIGINS)?;
        let origin = num(H_ORIGIN)?;
        if origins == 0 || origin >= origins || origins > u32::MAX as u64 {
            return Err(format!("origin {origin} of {origins} is out of range"));
        }
        let emitted_at = headers
            .iter()
            .find(|h| h.key == H_EMITTED_AT)
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok());
        Ok(Frame {
            kind,
            origin: origin as u32,
            origins: origins as u32,
            seq: num(H_SEQ)?,
            emitted_at,
        })
    }
}

/// The wall clock in µs since the UNIX epoch, for [`Frame::emitted_at`] (0 before 1970).
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// `v` in decimal, written into the end of `buf`: a header value without an allocation.
fn decimal(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

/// The partition of `key` in a topic of `partitions`: the same function on every topic, so
/// an underlying sits in the same partition number everywhere and a stage reading partition
/// `p` writes only to partition `p` of a topic with as many partitions (co-partitioning).
pub fn partition_of(key: &str, partitions: i32) -> i32 {
    if partitions <= 1 {
        return 0;
    }
    (xxhash_rust::xxh3::xxh3_64(key.as_bytes()) % partitions as u64) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_underlying_has_one_partition_whatever_the_topic() {
        for key in ["GME", "SPY", "BRKB", ""] {
            let p = partition_of(key, 4);
            assert!((0..4).contains(&p));
            assert_eq!(p, partition_of(key, 4));
            assert_eq!(partition_of(key, 1), 0);
        }
    }

    #[test]
    fn header_decimals_need_no_allocation() {
        let mut buf = [0u8; 20];
        for v in [0, 7, 10, 1_733_000_000_123_456, u64::MAX] {
            assert_eq!(decimal(v, &mut buf), v.to_string().as_bytes());
        }
    }
}
