//! # optionflow-schemas
//!
//! The event model of optionflow. The Avro schemas in `schemas/avro/*.avsc` are the source of
//! truth; this crate mirrors each one as a Rust struct, encodes and decodes them (plain Avro
//! datums, and Avro single-object encoding with the schema's Rabin fingerprint for the Kafka
//! wire), derives deterministic event ids, and checks schema compatibility.
//!
//! ## Layout
//! - [`event`]: the [`Event`] trait every event type implements (id, event time, underlying).
//! - [`types`]: the ten event structs, one per `.avsc`.
//! - [`registry`]: every schema parsed once, with its fingerprint, looked up by name or fingerprint.
//! - [`codec`]: datum and single-object encode/decode.
//! - [`datum`]: direct Avro encoders and decoders for the `quotes.raw` events (the input tape's
//!   hot path).
//! - [`id`]: deterministic event ids (a 128-bit hash of the inputs' ids).
//! - [`time`]: event-time helpers (microseconds since the epoch).
//! - [`topics`]: topic names, and enums for topics that carry several event types.

pub mod codec;
pub mod datum;
pub mod event;
pub mod id;
pub mod json_line;
pub mod registry;
pub mod time;
pub mod topics;
pub mod types;

pub use codec::{CodecError, SINGLE_OBJECT_MAGIC};
/// The string type of the short fields every quote carries (underlying, symbol, root, expiry,
/// right, sector, exercise style): up to 24 bytes inline, so a quote passing through the stages
/// allocates nothing for them; serialized exactly as a `String` is (Avro, JSON, postcard).
pub use compact_str::{format_compact, CompactString, ToCompactString};
/// The string type of every event id an event carries (its own `event_id` and the ids it
/// refers to: `source_event_id`, `input_event_id`, `signal_id`, `explanation_id`,
/// `decision_id`, `dedupe_key`, `signal_ids`): up to 32 bytes inline, which every id optionflow
/// derives is (32 hex digits, [`EventId::finish`]), so making, carrying and dropping the ids of
/// a quote's three events allocates nothing; a longer id from outside (another producer's) is
/// kept whole on the heap. Serialized exactly as a `String` is (Avro, JSON, postcard), so
/// events and checkpoints are the same bytes.
pub type IdString = smallstr::SmallString<[u8; 32]>;
pub use event::Event;
pub use id::EventId;
pub use registry::{SchemaEntry, SCHEMAS};
pub use topics::{GreeksEvent, NormalizedEvent, RawEvent, RAW_EVENT_SCHEMA};
pub use types::*;

#[cfg(test)]
mod tests;
