//! Topics whose messages are one of several event types, and the list of topic names.
//!
//! Each message of a mixed topic is single-object encoded on Kafka, so its fingerprint says
//! which type it holds; in memory the topic's enum carries it.

use crate::codec::{self, CodecError};
use crate::event::Event;
use crate::types::*;
use serde::{Deserialize, Serialize};

/// Topic names, as on Kafka and as file names in replay output.
pub mod names {
    /// Vendor quotes and underlying ticks, as received.
    pub const QUOTES_RAW: &str = "quotes.raw";
    /// Validated quotes and underlying ticks.
    pub const QUOTES_NORMALIZED: &str = "quotes.normalized";
    /// Inputs that could not be used, with the reason.
    pub const QUOTES_REJECTED: &str = "quotes.rejected";
    /// Contract greeks and underlying ticks.
    pub const GREEKS: &str = "greeks";
    /// Factor scores.
    pub const FACTORS: &str = "factors";
    /// Consensus signals.
    pub const SIGNALS: &str = "signals";
    /// Explained signals.
    pub const EXPLANATIONS: &str = "explanations";
    /// Risk decisions.
    pub const DECISIONS: &str = "decisions";
    /// Alerts.
    pub const ALERTS: &str = "alerts";
}

macro_rules! mixed_topic {
    ($(#[$doc:meta])* $name:ident { $($var:ident($ty:ty)),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        // Quotes are nearly every event on these topics; boxing the big variant would cost an
        // allocation per quote to save bytes on the rare small one.
        #[allow(clippy::large_enum_variant)]
        pub enum $name {
            $(
                #[allow(missing_docs)]
                $var($ty),
            )+
        }

        impl $name {
            /// The event id of whichever event this is.
            pub fn event_id(&self) -> &str {
                match self { $(Self::$var(e) => e.event_id(),)+ }
            }
            /// The event time of whichever event this is.
            pub fn event_time(&self) -> i64 {
                match self { $(Self::$var(e) => e.event_time(),)+ }
            }
            /// The underlying of whichever event this is.
            pub fn underlying(&self) -> &str {
                match self { $(Self::$var(e) => e.underlying(),)+ }
            }
            /// Appends the single-object encoding of the event.
            pub fn encode_single(&self, buf: &mut Vec<u8>) -> Result<(), CodecError> {
                match self { $(Self::$var(e) => codec::encode_single(e, buf),)+ }
            }
            /// Decodes a single-object message holding any of this topic's types.
            pub fn decode_single(bytes: &[u8]) -> Result<Self, CodecError> {
                let (entry, datum) = codec::peek_single(bytes)?;
                $(
                    if entry.name == <$ty as Event>::NAME {
                        return codec::decode_datum::<$ty>(datum).map(Self::$var);
                    }
                )+
                Err(CodecError::WrongType { expected: stringify!($name), found: entry.name })
            }
        }

        $(
            impl From<$ty> for $name {
                fn from(e: $ty) -> Self { Self::$var(e) }
            }
        )+
    };
}

mixed_topic!(
    /// A message of `quotes.raw`.
    RawEvent { Quote(RawQuote), Tick(UnderlyingTick) }
);

/// The schema of a [`RawEvent`]: the union `[RawQuote, UnderlyingTick]`, as the input tape
/// declares it and [`crate::datum::write_raw_event`] encodes it.
pub static RAW_EVENT_SCHEMA: std::sync::LazyLock<apache_avro::Schema> =
    std::sync::LazyLock::new(|| {
        let source = |name| {
            crate::registry::by_name(name)
                .map(|e| e.source)
                .unwrap_or("null")
        };
        let text = format!("[{}, {}]", source("RawQuote"), source("UnderlyingTick"));
        // Both members are compiled-in schemas covered by tests.
        apache_avro::Schema::parse_str(&text).unwrap_or_else(|e| panic!("RawEvent schema: {e}"))
    });
mixed_topic!(
    /// A message of `quotes.normalized`.
    NormalizedEvent { Quote(NormalizedQuote), Tick(UnderlyingTick) }
);
mixed_topic!(
    /// A message of `greeks`.
    GreeksEvent { Greeks(ContractGreeks), Tick(UnderlyingTick) }
);
