//! # optionflow-replay
//!
//! Recorded tapes, replayed through the identical operator code.
//!
//! - [`tapes`]: `tape info`, `tape cat` and `tape slice`, streaming (memory does not grow with
//!   the tape's length).
//! - [`outcomes`]: forward outcomes of signals over horizons, and the isotonic calibration
//!   fitted from them (`optionflow calibrate`).
//! - [`replayer`]: resolves what `optionflow replay` was pointed at (a tape, or the data
//!   directory of an earlier `run`) into a session of the embedded runtime whose source is the
//!   tape. The stages, their order, batches and watermarks are the live ones, so a replay of a
//!   run's tape writes byte-identical signals, explanations, decisions and alerts.
//! - [`backtest`]: what `optionflow backtest` runs after replaying the tape: the approved risk
//!   decisions become orders, a streaming pass over the tape's quotes fills, marks and closes
//!   their positions (no look-ahead: contracts are chosen from the chain as of the signal, fills
//!   are at the next quote after it), and `trades.csv`, `summary.json` and `report.html` are
//!   written.
//!
//! The tape format itself lives in `optionflow_pipeline::tape`: one Avro object container file
//! per data directory, its schema the union `[RawQuote, UnderlyingTick]`, compressed blocks
//! (zstandard unless `[tape] codec` says otherwise; the scenario tapes are deflate), events in
//! event-time order.

pub mod backtest;
pub mod outcomes;
pub mod replayer;
pub mod tapes;
