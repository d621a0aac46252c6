//! The [`Event`] trait: what every event carries and how it names its schema.

use serde::{de::DeserializeOwned, Serialize};

/// An immutable event of the pipeline, mirrored from one `.avsc` file.
///
/// Every event carries a deterministic `event_id`, an `event_time` taken from the market data
/// (microseconds since the epoch, UTC) and the `underlying` it concerns, which is also its Kafka key.
pub trait Event: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The Avro record name (`RawQuote`, ...), which is also the key into [`crate::SCHEMAS`].
    const NAME: &'static str;
    /// The deterministic event id.
    fn event_id(&self) -> &str;
    /// Event time in microseconds since the Unix epoch.
    fn event_time(&self) -> i64;
    /// The underlying ticker.
    fn underlying(&self) -> &str;
}

/// Implements [`Event`] for a struct with `event_id`, `event_time` and `underlying` fields.
macro_rules! impl_event {
    ($($ty:ident),* $(,)?) => {$(
        impl $crate::event::Event for $crate::types::$ty {
            const NAME: &'static str = stringify!($ty);
            fn event_id(&self) -> &str { &self.event_id }
            fn event_time(&self) -> i64 { self.event_time }
            fn underlying(&self) -> &str { &self.underlying }
        }
    )*};
}

impl_event!(
    RawQuote,
    UnderlyingTick,
    NormalizedQuote,
    RejectedQuote,
    ContractGreeks,
    FactorScore,
    Signal,
    Explanation,
    RiskDecision,
    Alert,
);
