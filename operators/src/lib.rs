//! # optionflow-operators
//!
//! The seven deterministic stages of the pipeline, each a synchronous state machine with no I/O,
//! no async, no clock and no randomness (the crate does not depend on tokio, rdkafka or scylla,
//! and `clippy.toml` bans wall-clock reads). The same code runs embedded, on Kafka and in replay.
//!
//! ## Layout
//! - [`operator`]: the [`Operator`] trait, [`Ctx`], [`Emit`], classified [`OpError`]s.
//! - [`config`]: validation that reports every problem at once.
//! - [`pricing`]: Black-Scholes-Merton, Black-76 and Bjerksund-Stensland 2002 prices, greeks
//!   and implied volatility (Let's Be Rational for European options); exercise style per root.
//! - [`normalize`]: OCC symbol parsing, mid/spread, rejection of unusable quotes.
//! - [`greeks`]: implied volatility and greeks per contract.
//! - [`score`]: one module per factor (IV z-score, dealer gamma exposure, unusual flow).
//! - [`consensus`]: significance voting (Benjamini-Hochberg across the window), weighted
//!   composite, minimum agreeing factors, calibrated probability.
//! - [`calibration`]: composite → probability mappings (isotonic, Platt) and the PAVA fit.
//! - [`explain`]: handlebars narratives (Markdown, HTML, text, Telegram) with the suggested
//!   trade, scenario table and outcome statistics.
//! - [`risk_gate`]: open-signal, sector and underlying caps, a drawdown throttle on the tracked
//!   signal P&L, blackout windows from a calendar file.
//! - [`dispatch`]: dedupe and cooldown, producing alerts.
//! - [`key`]: [`key::TextKey`], the map key for tickers and OCC symbols (the text's order, cheap
//!   comparisons).
//! - [`ordering`]: `(event_time, event_id)` ordering behind the watermark for merging stages.
//! - [`shared_work`]: a batch's pure work shared with threads the host lends.
//! - [`testing`]: drive any operator over a list of events.

pub mod calibration;
pub mod config;
pub mod consensus;
pub mod dispatch;
pub mod explain;
pub mod greeks;
pub mod key;
pub mod normalize;
pub mod operator;
pub mod ordering;
pub mod pricing;
pub mod risk_gate;
pub mod score;
pub mod shared_work;
pub mod testing;

pub use config::ConfigErrors;
pub use operator::{Ctx, Emit, ErrorKind, OpError, Operator};

#[cfg(test)]
mod pipeline_tests;
