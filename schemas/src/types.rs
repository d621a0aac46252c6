//! The event types, one struct per `schemas/avro/*.avsc`, field for field.
//!
//! Field docs live in the `.avsc` files (the source of truth); the round-trip tests in
//! [`crate::codec`] prove each struct encodes against its schema and decodes back unchanged.

use crate::IdString;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Right of an option contract as carried in events (`"call"` / `"put"`).
pub mod right {
    /// A call.
    pub const CALL: &str = "call";
    /// A put.
    pub const PUT: &str = "put";
}

/// Directions a factor or signal can point (`FactorScore.direction`, `Signal.direction`).
pub mod direction {
    /// Expecting the underlying to rise.
    pub const BULLISH: &str = "bullish";
    /// Expecting the underlying to fall.
    pub const BEARISH: &str = "bearish";
    /// Expecting a large move, or a repricing of volatility, either way.
    pub const VOLATILITY: &str = "volatility";
    /// No view.
    pub const NEUTRAL: &str = "neutral";
}

/// An option quote as a vendor (or the simulator) sent it, before any validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RawQuote {
    pub event_id: IdString,
    pub event_time: i64,
    pub underlying: CompactString,
    pub source: CompactString,
    pub symbol: CompactString,
    pub bid: f64,
    pub ask: f64,
    pub bid_size: i64,
    pub ask_size: i64,
    pub last: Option<f64>,
    pub volume: i64,
    pub open_interest: i64,
    pub underlying_price: Option<f64>,
}

/// A trade or quote of the underlying itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct UnderlyingTick {
    pub event_id: IdString,
    pub event_time: i64,
    pub underlying: CompactString,
    pub source: CompactString,
    pub price: f64,
    pub volume: i64,
    pub sector: Option<CompactString>,
}

/// A validated option quote with its parsed contract and derived prices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct NormalizedQuote {
    pub event_id: IdString,
    pub event_time: i64,
    pub underlying: CompactString,
    pub source_event_id: IdString,
    pub symbol: CompactString,
    pub root: CompactString,
    pub expiry: CompactString,
    pub expiry_time: i64,
    pub right: CompactString,
    pub strike: f64,
    pub bid: f64,
    pub ask: f64,
    pub mid: f64,
    pub spread: f64,
    pub spread_pct: f64,
    pub bid_size: i64,
    pub ask_size: i64,
    pub volume: i64,
    pub open_interest: i64,
    pub underlying_price: f64,
    pub years_to_expiry: f64,
    pub sector: Option<CompactString>,
}

/// An input that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RejectedQuote {
    pub event_id: IdString,
    pub event_time: i64,
    pub underlying: CompactString,
    pub input_event_id: IdString,
    pub stage: CompactString,
    pub reason_code: CompactString,
    pub reason: String,
    pub symbol: CompactString,
}

/// Implied volatility and greeks of one contract at one quote, in raw units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ContractGreeks {
    pub event_id: IdString,
    pub event_time: i64,
    pub underlying: CompactString,
    pub source_event_id: IdString,
    pub symbol: CompactString,
    pub root: CompactString,
    pub expiry: CompactString,
    pub right: CompactString,
    pub strike: f64,
    pub spot: f64,
    pub years_to_expiry: f64,
    pub rate: f64,
    pub dividend_yield: f64,
    pub bid: f64,
    pub ask: f64,
    pub mid: f64,
    pub iv: f64,
    pub delta: f64,
    pub gamma: f64,
    pub vega: f64,
    pub theta: f64,
    pub rho: f64,
    pub volume: i64,
    pub open_interest: i64,
    pub sector: Option<CompactString>,
    pub exercise_style: CompactString,
    pub vanna: f64,
    pub charm: f64,
    pub vomma: f64,
}

/// One factor's reading for one underlying over one scoring window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct FactorScore {
    pub event_id: IdString,
    pub event_time: i64,
    pub underlying: String,
    pub factor: String,
    pub window_start: i64,
    pub window_end: i64,
    pub raw_value: f64,
    pub zscore: f64,
    pub score: f64,
    pub direction: String,
    pub samples: i64,
    pub detail: String,
    pub spot: f64,
    pub sector: Option<String>,
    pub metadata: BTreeMap<String, f64>,
    #[serde(default)]
    pub contracts: Vec<ChainContract>,
}

/// One contract of an underlying's chain at a window's close, quote and greeks in raw units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ChainContract {
    pub symbol: String,
    pub root: String,
    pub expiry: String,
    pub right: String,
    pub strike: f64,
    pub years_to_expiry: f64,
    pub bid: f64,
    pub ask: f64,
    pub mid: f64,
    pub iv: f64,
    pub delta: f64,
    pub gamma: f64,
    pub vega: f64,
    pub theta: f64,
    pub volume: i64,
    pub open_interest: i64,
    pub exercise_style: String,
    pub rate: f64,
    pub dividend_yield: f64,
}

/// One factor's contribution to a signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct FactorVote {
    pub factor: String,
    pub score: f64,
    pub zscore: f64,
    pub raw_value: f64,
    pub direction: String,
    pub voted: bool,
    pub detail: String,
    pub p_value: f64,
    #[serde(default)]
    pub metadata: BTreeMap<String, f64>,
}

/// A consensus of factors agreeing on one underlying.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Signal {
    pub event_id: IdString,
    pub event_time: i64,
    pub underlying: String,
    pub window_end: i64,
    pub sector: String,
    pub direction: String,
    pub composite: f64,
    pub agreeing: i32,
    pub spot: f64,
    pub factors: Vec<FactorVote>,
    pub probability: f64,
    pub calibrated: bool,
    #[serde(default)]
    pub marks: BTreeMap<String, f64>,
    #[serde(default)]
    pub contracts: Vec<ChainContract>,
}

/// A signal explained in words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Explanation {
    pub event_id: IdString,
    pub event_time: i64,
    pub underlying: String,
    pub signal_id: IdString,
    pub sector: String,
    pub direction: String,
    pub composite: f64,
    pub spot: f64,
    pub headline: String,
    pub markdown: String,
    pub text: String,
    pub factors: Vec<FactorVote>,
    #[serde(default)]
    pub marks: BTreeMap<String, f64>,
    #[serde(default)]
    pub html: String,
    #[serde(default)]
    pub telegram: String,
}

/// The risk gate's verdict on one explained signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RiskDecision {
    pub event_id: IdString,
    pub event_time: i64,
    pub underlying: String,
    pub signal_id: IdString,
    pub explanation_id: IdString,
    pub sector: String,
    pub direction: String,
    pub composite: f64,
    pub approved: bool,
    pub rule: String,
    pub reason: String,
    pub open_signals: i32,
    pub headline: String,
    pub text: String,
    pub markdown: String,
    #[serde(default)]
    pub drawdown: f64,
    #[serde(default)]
    pub equity: f64,
    #[serde(default)]
    pub html: String,
    #[serde(default)]
    pub telegram: String,
}

/// An alert routed to a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Alert {
    pub event_id: IdString,
    pub event_time: i64,
    pub underlying: String,
    pub signal_id: IdString,
    pub decision_id: IdString,
    pub sector: String,
    pub direction: String,
    pub composite: f64,
    pub channel: String,
    pub dedupe_key: IdString,
    pub headline: String,
    pub text: String,
    pub markdown: String,
    /// The dispatch route that sent it; absent in alerts written before routes existed.
    #[serde(default = "default_route")]
    pub route: String,
    #[serde(default)]
    pub group_key: String,
    #[serde(default)]
    pub signal_ids: Vec<IdString>,
    #[serde(default)]
    pub html: String,
    #[serde(default)]
    pub telegram: String,
}

fn default_route() -> String {
    "default".to_string()
}
