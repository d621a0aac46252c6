//! # optionflow-pipeline
//!
//! The runtime around the operators: sources, the stage runner, the on-disk tape, checkpoints,
//! output files and configuration. Operators stay pure; everything that touches a clock, a file
//! or a socket is here.
//!
//! ## Layout
//! - [`config`]: the layered TOML configuration (defaults ← file ← environment).
//! - [`dashboard`]: the live dashboard and its JSON API, served beside `/metrics`.
//! - [`delivery`]: alerts to webhooks, Telegram, Slack and email, with rate limits, retries and
//!   a ledger so a restart never resends.
//! - [`duration`]: market-time durations (`30s`, `2h`, `5d`).
//! - [`hit_rates`]: signal hit rates by score bucket, labelled live, on `/metrics`.
//! - [`exporter`]: `/metrics` in Prometheus format.
//! - [`source`]: event sources (the seeded market simulator, and its chain synthesis along real
//!   daily bars for the scenario tapes: `source::simulator::scenario`).
//! - [`import`]: historical option chain files and daily bars into a `quotes.raw` tape.
//! - [`tape`]: Avro object container tapes of `quotes.raw`.
//! - [`store`]: the embedded checkpoint store.
//! - [`pacing`]: the rate limit, retry policy, `Retry-After` and secret reading shared by
//!   vendors and alert delivery.
//! - [`silences`]: the silences file `optionflow silence` edits and a session watches.
//! - [`jsonl`]: append-only JSON-lines outputs with checkpointed lengths.
//! - [`runtime`]: messages, the stage loop, the embedded pipeline.
//! - [`telemetry`]: counters and status.
//! - [`vendor`]: live vendor adapters (Polygon, Tradier) with rate limits, retries and adaptive polling.

pub mod config;
pub mod dashboard;
pub mod delivery;
pub mod duration;
pub mod exporter;
pub mod hit_rates;
pub mod import;
pub mod jsonl;
pub mod kafka;
pub mod pacing;
pub mod runtime;
pub mod scylla;
pub mod silences;
pub mod source;
pub mod store;
pub mod tape;
pub mod telemetry;
pub mod vendor;
