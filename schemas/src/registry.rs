//! Every event schema, parsed once from the `.avsc` files compiled into the binary.

use apache_avro::{rabin::Rabin, reader::datum::GenericDatumReader, Schema};
use std::sync::LazyLock;

/// One event schema: its name, source text, parsed form and Rabin fingerprint.
pub struct SchemaEntry {
    /// Avro record name, e.g. `RawQuote`.
    pub name: &'static str,
    /// File name under `schemas/avro/`.
    pub file: &'static str,
    /// The `.avsc` text as written.
    pub source: &'static str,
    /// The parsed schema.
    pub schema: Schema,
    /// CRC-64-AVRO (Rabin) fingerprint of the canonical form, as the 8 bytes that follow the
    /// `C3 01` magic in single-object encoding (little-endian).
    pub fingerprint: [u8; 8],
}

impl SchemaEntry {
    /// The fingerprint as a number (little-endian reading of [`SchemaEntry::fingerprint`]).
    pub fn fingerprint_u64(&self) -> u64 {
        u64::from_le_bytes(self.fingerprint)
    }
}

macro_rules! schema_files {
    ($(($name:literal, $file:literal)),* $(,)?) => {
        &[$(($name, $file, include_str!(concat!("../avro/", $file)))),*]
    };
}

/// (record name, file, text) of every event schema, in pipeline order.
const FILES: &[(&str, &str, &str)] = schema_files![
    ("RawQuote", "raw_quote.avsc"),
    ("UnderlyingTick", "underlying_tick.avsc"),
    ("NormalizedQuote", "normalized_quote.avsc"),
    ("RejectedQuote", "rejected_quote.avsc"),
    ("ContractGreeks", "contract_greeks.avsc"),
    ("FactorScore", "factor_score.avsc"),
    ("Signal", "signal.avsc"),
    ("Explanation", "explanation.avsc"),
    ("RiskDecision", "risk_decision.avsc"),
    ("Alert", "alert.avsc"),
];

/// Every event schema, in pipeline order.
pub static SCHEMAS: LazyLock<Vec<SchemaEntry>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(name, file, source)| {
            // The files are compiled in and covered by tests: a parse failure is a build defect.
            let schema = Schema::parse_str(source)
                .unwrap_or_else(|e| panic!("schemas/avro/{file} does not parse: {e}"));
            let fp = schema.fingerprint::<Rabin>();
            let mut fingerprint = [0u8; 8];
            fingerprint.copy_from_slice(&fp.bytes[..8]);
            SchemaEntry {
                name,
                file,
                source,
                schema,
                fingerprint,
            }
        })
        .collect()
});

/// A datum reader per schema, built once (name resolution is not free).
pub(crate) static READERS: LazyLock<Vec<GenericDatumReader<'static>>> = LazyLock::new(|| {
    SCHEMAS
        .iter()
        .map(|e| {
            GenericDatumReader::builder(&e.schema)
                .build()
                .unwrap_or_else(|err| panic!("reader for {}: {err}", e.name))
        })
        .collect()
});

/// Index of the schema named `name` in [`SCHEMAS`].
pub fn index_of(name: &str) -> Option<usize> {
    SCHEMAS.iter().position(|e| e.name == name)
}

/// The schema named `name`.
pub fn by_name(name: &str) -> Option<&'static SchemaEntry> {
    index_of(name).map(|i| &SCHEMAS[i])
}

/// The schema whose fingerprint is `fp`.
pub fn by_fingerprint(fp: &[u8; 8]) -> Option<&'static SchemaEntry> {
    SCHEMAS.iter().find(|e| &e.fingerprint == fp)
}
