//! The `score` stage: per underlying and per event-time window, every factor reads the chain and
//! emits a [`FactorScore`] (raw value, z-score against its own history, 0-100 score, direction).
//!
//! Windows are aligned to multiples of `window-secs` of event time and close on the watermark,
//! so the output does not depend on how events were batched. One module per factor:
//! - [`iv_zscore`]: out-of-the-money wing IVs against each contract's own history;
//! - [`gamma_exposure`]: dealer gamma exposure (GEX), walls and flip;
//! - [`unusual_flow`]: call and put volume against their own averages.
//! - [`realized_vol`]: session and one-minute bars of the underlying, realized-vol estimators;
//! - [`iv_rv`]: 30-day constant-maturity ATM IV minus realized vol ([`term_structure`]);
//! - [`skew`]: 25-delta risk reversal and butterfly, put-wing slope, term-structure inversion.
//! - [`mispricing`]: no-arbitrage violations tradeable through the quotes.
//!
//! [`chain`] picks the candidate contracts (near ATM, |delta| 0.25 and 0.40 of the two nearest
//! usable expiries) that ride on the window's gamma_exposure score for explain's suggested trade.

pub mod chain;
pub mod gamma_exposure;
pub mod iv_rv;
pub mod iv_zscore;
pub mod mispricing;
pub mod realized_vol;
pub mod skew;
pub mod stats;
pub mod term_structure;
pub mod unusual_flow;

use crate::config::{ConfigErrors, Problems};
use crate::key::TextKey;
use crate::operator::{decode_state, encode_state_into, Ctx, Emit, OpError, Operator};
use optionflow_schemas::{
    time::MICROS_PER_SECOND, CompactString, ContractGreeks, EventId, FactorScore, GreeksEvent,
};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::collections::BTreeMap;

const STAGE: &str = "score";

/// Which side dealers are assumed to hold, for the sign of gamma exposure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum GexSign {
    /// The common convention: customers sell calls and buy puts, so dealers are long call gamma
    /// (+) and short put gamma (−).
    #[default]
    DealerLongCalls,
    /// The opposite: customers buy calls (as in a call-buying squeeze), dealers short call gamma.
    DealerShortCalls,
}

/// The `[score]` configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ScoreConfig {
    /// Length of a scoring window, in seconds of event time.
    pub window_secs: u64,
    /// How many past windows each history keeps.
    pub history: usize,
    /// Observations a history needs before its z-scores count (until then a factor reports
    /// "warming up" with a neutral score).
    pub min_samples: usize,
    /// |z| beyond which a factor takes a direction.
    pub direction_threshold: f64,
    /// Contracts within this absolute log-moneyness |ln(K/S)| feed the IV z-score.
    pub iv_moneyness_band: f64,
    /// Contracts closer to expiry than this many days are left out of the IV z-score
    /// (their mid-quote IVs are dominated by tick-size noise).
    pub iv_min_days: f64,
    /// Floor on an IV history's standard deviation (vol units, 0.01 = one vol point).
    pub iv_min_std: f64,
    /// Sign convention of dealer gamma exposure.
    pub gex_sign: GexSign,
    /// Observations a history needs before a percentile-rank score stands in for the median/MAD
    /// one (between this and `min-samples`); fewer means "warming up".
    pub iv_percentile_floor: usize,
    /// Floor on the robust spread of the realized-vol, IV−RV and skew histories, in vol units
    /// (the realized-vol ones are also floored at the RV's sampling error; the put-wing slope's
    /// is this divided by the strikes' spread, √Σ(ln K − mean)²).
    pub vol_min_std: f64,
    /// One-minute bars behind the intraday realized vol.
    pub rv_intraday_bars: usize,
    /// Completed sessions needed before the session-level baseline replaces the intraday
    /// history as the realized-vol z-score's reference.
    pub rv_min_sessions: usize,
    /// Tenor, in calendar days, of the constant-maturity ATM IV and of the skew's target expiry.
    pub cm_tenor_days: f64,
    /// |Delta| of the risk reversal's and butterfly's wings.
    pub skew_wing_delta: f64,
    /// Minimum calendar days between the front and the back expiry of the term-structure check.
    pub term_min_gap_days: f64,
    /// How far from spot (in %, each way) the gamma-flip sweep looks.
    pub gex_flip_range_pct: f64,
    /// Contracts this many days or fewer from expiry count as short-dated (squeeze call surge,
    /// unusual-flow concentration).
    pub short_dated_days: f64,
    /// Windows the squeeze severity measures spot momentum over.
    pub squeeze_momentum_windows: usize,
    /// Dollars per contract a no-arbitrage violation must clear after crossing the spreads to
    /// count (the strict limit is 0; a cent a share keeps float and sub-tick noise out).
    pub mispricing_min_edge_usd: f64,
    /// Quotes older than this (event-time seconds before the window's end) are left out of
    /// mispricing checks: a stale leg makes a phantom arbitrage.
    pub mispricing_max_quote_age_secs: u64,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        Self {
            window_secs: 60,
            history: 120,
            min_samples: 8,
            direction_threshold: 2.0,
            iv_moneyness_band: 0.25,
            iv_min_days: 1.0,
            iv_min_std: 0.01,
            gex_sign: GexSign::DealerLongCalls,
            iv_percentile_floor: 3,
            vol_min_std: 0.005,
            rv_intraday_bars: 30,
            rv_min_sessions: 10,
            cm_tenor_days: 30.0,
            skew_wing_delta: 0.25,
            term_min_gap_days: 20.0,
            gex_flip_range_pct: 30.0,
            short_dated_days: 7.0,
            squeeze_momentum_windows: 5,
            mispricing_min_edge_usd: 1.0,
            mispricing_max_quote_age_secs: 60,
        }
    }
}

impl ScoreConfig {
    /// Reports every problem at once.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut p = Problems::default();
        p.check(
            self.window_secs >= 1,
            "window-secs",
            "must be at least 1 second",
        );
        p.check(self.history >= 2, "history", "must keep at least 2 windows");
        p.check(
            self.min_samples >= 2 && self.min_samples <= self.history,
            "min-samples",
            format!(
                "must be between 2 and history ({}), got {}",
                self.history, self.min_samples
            ),
        );
        p.check(
            self.direction_threshold > 0.0 && self.direction_threshold.is_finite(),
            "direction-threshold",
            "must be a positive number",
        );
        p.check(
            self.iv_moneyness_band > 0.0 && self.iv_moneyness_band <= 2.0,
            "iv-moneyness-band",
            "must be in (0, 2]",
        );
        p.check(
            self.iv_min_days >= 0.0,
            "iv-min-days",
            "must not be negative",
        );
        p.check(self.iv_min_std > 0.0, "iv-min-std", "must be positive");
        p.check(
            self.iv_percentile_floor >= 2 && self.iv_percentile_floor <= self.min_samples,
            "iv-percentile-floor",
            format!(
                "must be between 2 and min-samples ({}), got {}",
                self.min_samples, self.iv_percentile_floor
            ),
        );
        p.check(
            self.vol_min_std > 0.0 && self.vol_min_std.is_finite(),
            "vol-min-std",
            "must be a positive number",
        );
        p.check(
            (2..=1000).contains(&self.rv_intraday_bars),
            "rv-intraday-bars",
            "must be between 2 and 1000",
        );
        p.check(
            (2..=realized_vol::MAX_SESSIONS).contains(&self.rv_min_sessions),
            "rv-min-sessions",
            format!("must be between 2 and {}", realized_vol::MAX_SESSIONS),
        );
        p.check(
            self.cm_tenor_days > 0.0 && self.cm_tenor_days <= 3650.0,
            "cm-tenor-days",
            "must be in (0, 3650]",
        );
        p.check(
            self.skew_wing_delta > 0.0 && self.skew_wing_delta < 0.5,
            "skew-wing-delta",
            "must be in (0, 0.5)",
        );
        p.check(
            self.term_min_gap_days > 0.0 && self.term_min_gap_days.is_finite(),
            "term-min-gap-days",
            "must be a positive number of days",
        );
        p.check(
            self.gex_flip_range_pct > 0.0 && self.gex_flip_range_pct < 90.0,
            "gex-flip-range-pct",
            "must be in (0, 90)",
        );
        p.check(
            self.short_dated_days > 0.0 && self.short_dated_days.is_finite(),
            "short-dated-days",
            "must be a positive number of days",
        );
        p.check(
            self.squeeze_momentum_windows >= 1 && self.squeeze_momentum_windows <= self.history,
            "squeeze-momentum-windows",
            format!(
                "must be between 1 and history ({}), got {}",
                self.history, self.squeeze_momentum_windows
            ),
        );
        p.check(
            self.mispricing_min_edge_usd >= 0.0 && self.mispricing_min_edge_usd.is_finite(),
            "mispricing-min-edge-usd",
            "must be a non-negative number of dollars",
        );
        p.check(
            self.mispricing_max_quote_age_secs >= 1,
            "mispricing-max-quote-age-secs",
            "must be at least 1 second",
        );
        p.finish()
    }

    /// Builds the operator.
    pub fn build(&self) -> Result<Score, ConfigErrors> {
        self.validate()?;
        Ok(Score {
            cfg: self.clone(),
            state: State::default(),
            snapshot_len: Cell::new(0),
        })
    }

    fn window_micros(&self) -> i64 {
        self.window_secs as i64 * MICROS_PER_SECOND
    }
}

/// The latest known state of one contract.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContractBook {
    /// Whether it is a call.
    pub is_call: bool,
    /// Strike.
    pub strike: f64,
    /// Years to expiry at the last quote.
    pub years: f64,
    /// Last implied volatility.
    pub iv: f64,
    /// Last gamma.
    pub gamma: f64,
    /// Last delta.
    pub delta: f64,
    /// Last vega (per 1.00 of vol).
    pub vega: f64,
    /// Last theta (per year).
    #[serde(default)]
    pub theta: f64,
    /// Expiry date, `YYYY-MM-DD`.
    pub expiry: CompactString,
    /// `european` or `american`.
    pub exercise_style: CompactString,
    /// Best bid at the last quote.
    pub bid: f64,
    /// Best ask at the last quote.
    pub ask: f64,
    /// Mid at the last quote.
    pub mid: f64,
    /// Rate the greeks were computed with.
    pub rate: f64,
    /// Dividend yield the greeks were computed with.
    pub dividend_yield: f64,
    /// Open interest.
    pub open_interest: i64,
    /// Cumulative day volume at the last quote.
    pub cum_volume: i64,
    /// Volume traded in the current window.
    pub window_volume: i64,
    /// Whether it quoted in the current window.
    pub quoted_in_window: bool,
    /// Event time of the last quote.
    pub last_seen: i64,
    /// Its IV at the close of past windows it quoted in.
    pub iv_history: stats::History,
}

/// Everything the score stage knows about one underlying.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnderlyingBook {
    /// Sector, when known.
    pub sector: Option<CompactString>,
    /// Last underlying price.
    pub spot: f64,
    /// Underlying price when the current window opened.
    pub window_open_spot: f64,
    /// Start of the open window, if any event arrived in it.
    pub open_window: Option<i64>,
    /// Contracts by OCC symbol.
    pub contracts: BTreeMap<TextKey, ContractBook>,
    /// State of the IV z-score factor.
    pub iv: iv_zscore::IvState,
    /// State of the gamma exposure factor.
    pub gex: gamma_exposure::GexState,
    /// State of the unusual flow factor.
    pub flow: unusual_flow::FlowState,
    /// State of the realized volatility factor (bars of the underlying).
    #[serde(default)]
    pub rv: realized_vol::RvState,
    /// State of the IV−RV spread factor.
    #[serde(default)]
    pub iv_rv: iv_rv::IvRvState,
    /// State of the skew factor.
    #[serde(default)]
    pub skew: skew::SkewState,
    /// State of the mispricing factor.
    #[serde(default)]
    pub mispricing: mispricing::MispricingState,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    books: BTreeMap<TextKey, UnderlyingBook>,
}

/// What one factor read for one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Raw measurement.
    pub raw_value: f64,
    /// Standard score against history (0 while warming up).
    pub zscore: f64,
    /// Direction.
    pub direction: &'static str,
    /// Observations behind the reading.
    pub samples: i64,
    /// One readable line.
    pub detail: String,
    /// Structured values for narratives and UIs.
    pub metadata: BTreeMap<String, f64>,
}

/// The score operator.
#[derive(Debug)]
pub struct Score {
    cfg: ScoreConfig,
    state: State,
    /// Bytes of the last snapshot: the next one's buffer starts that large. The books of a
    /// 20-underlying session come to megabytes, and growing a vector to that by doubling
    /// copied them about twice over and faulted in fresh pages on every checkpoint.
    snapshot_len: Cell<usize>,
}

/// The value at `key`, made by `make` the first time: one search of the map, and no
/// allocation for a key the length of an OCC symbol (`CompactString` holds up to 24 bytes
/// inline). With `String` keys this took a lookup and then a second search, so as not to copy
/// the key for every quote of a book that already exists.
fn get_or_insert_with<'a, V>(
    map: &'a mut BTreeMap<TextKey, V>,
    key: &CompactString,
    make: impl FnOnce() -> V,
) -> &'a mut V {
    map.entry(TextKey::from(key)).or_insert_with(make)
}

impl Score {
    /// The books, for inspection in tests and tools.
    pub fn books(&self) -> &BTreeMap<TextKey, UnderlyingBook> {
        &self.state.books
    }
}

/// The book of `ev`'s underlying in `books`, made the first time.
fn book_of<'a>(
    books: &'a mut BTreeMap<TextKey, UnderlyingBook>,
    ev: &GreeksEvent,
) -> &'a mut UnderlyingBook {
    let underlying = match ev {
        GreeksEvent::Greeks(g) => &g.underlying,
        GreeksEvent::Tick(t) => &t.underlying,
    };
    get_or_insert_with(books, underlying, Default::default)
}

/// Applies one event to its underlying's `book`.
fn apply(
    cfg: &ScoreConfig,
    book: &mut UnderlyingBook,
    ev: &GreeksEvent,
    out: &mut Emit<FactorScore>,
) {
    match ev {
        GreeksEvent::Greeks(g) => on_greeks(cfg, book, g, out),
        GreeksEvent::Tick(t) => {
            // A tick of a later window closes the open one first, as a quote does: the
            // window's readings must not see a spot from after its end (a tick batch is
            // delivered before the watermark that would otherwise close the window).
            if let Some(open) = book.open_window {
                if open + cfg.window_micros() <= t.event_time {
                    close_window(cfg, &t.underlying, book, open, out);
                }
            }
            book.spot = t.price;
            realized_vol::on_tick(cfg, &mut book.rv, t.event_time, t.price);
            if t.sector.is_some() {
                book.sector.clone_from(&t.sector);
            }
        }
    }
}

/// Applies a contract's greeks to its underlying's `book`.
fn on_greeks(
    cfg: &ScoreConfig,
    book: &mut UnderlyingBook,
    g: &ContractGreeks,
    out: &mut Emit<FactorScore>,
) {
    let w = cfg.window_micros();
    let window = g.event_time - g.event_time.rem_euclid(w);
    // A watermark normally closes windows; this covers a stream that arrives without them.
    if let Some(open) = book.open_window {
        if open < window {
            close_window(cfg, &g.underlying, book, open, out);
        }
    }
    if book.open_window.is_none() {
        book.open_window = Some(window);
        book.window_open_spot = if book.spot > 0.0 { book.spot } else { g.spot };
    }
    book.spot = g.spot;
    if g.sector.is_some() {
        book.sector.clone_from(&g.sector);
    }
    let c = get_or_insert_with(&mut book.contracts, &g.symbol, || ContractBook {
        is_call: g.right == optionflow_schemas::right::CALL,
        strike: g.strike,
        years: g.years_to_expiry,
        iv: g.iv,
        gamma: g.gamma,
        delta: g.delta,
        vega: g.vega,
        theta: g.theta,
        expiry: g.expiry.clone(),
        exercise_style: g.exercise_style.clone(),
        bid: g.bid,
        ask: g.ask,
        mid: g.mid,
        rate: g.rate,
        dividend_yield: g.dividend_yield,
        open_interest: g.open_interest,
        // The first sighting sets the baseline: its volume traded before we were watching.
        cum_volume: g.volume,
        window_volume: 0,
        quoted_in_window: false,
        last_seen: g.event_time,
        iv_history: stats::History::default(),
    });
    // Cumulative volume restarts each session; a drop means a new day.
    let traded = if g.volume >= c.cum_volume {
        g.volume - c.cum_volume
    } else {
        g.volume
    };
    c.window_volume += traded;
    c.cum_volume = g.volume;
    c.years = g.years_to_expiry;
    c.iv = g.iv;
    c.gamma = g.gamma;
    c.delta = g.delta;
    c.vega = g.vega;
    c.theta = g.theta;
    c.bid = g.bid;
    c.ask = g.ask;
    c.mid = g.mid;
    c.rate = g.rate;
    c.dividend_yield = g.dividend_yield;
    c.open_interest = g.open_interest;
    c.quoted_in_window = true;
    c.last_seen = g.event_time;
}

/// Closes `book`'s window starting at `start`: every factor reads, then histories advance.
fn close_window(
    cfg: &ScoreConfig,
    underlying: &str,
    book: &mut UnderlyingBook,
    start: i64,
    out: &mut Emit<FactorScore>,
) {
    let end = start + cfg.window_micros();
    let readings = [
        ("iv_zscore", iv_zscore::close(cfg, book)),
        ("gamma_exposure", gamma_exposure::close(cfg, book)),
        ("unusual_flow", unusual_flow::close(cfg, book)),
        // realized_vol first: it finalises the minute bars iv_rv reads.
        ("realized_vol", realized_vol::close(cfg, book, end)),
        ("iv_rv", iv_rv::close(cfg, book)),
        ("skew", skew::close(cfg, book)),
        ("mispricing", mispricing::close(cfg, book, end)),
    ];
    // One factor carries the chain, so a signal holds it once.
    let mut candidates = Some(chain::candidates(underlying, book));
    for (factor, r) in readings {
        let contracts = if factor == chain::CARRIER {
            candidates.take().unwrap_or_default()
        } else {
            Vec::new()
        };
        out.emit(FactorScore {
            event_id: EventId::new("factor")
                .part(factor)
                .part(underlying)
                .part_i64(end)
                .finish(),
            event_time: end,
            underlying: underlying.to_string(),
            factor: factor.to_string(),
            window_start: start,
            window_end: end,
            raw_value: r.raw_value,
            zscore: r.zscore,
            score: stats::score_from_z(r.zscore),
            direction: r.direction.to_string(),
            samples: r.samples,
            detail: r.detail,
            spot: book.spot,
            sector: book.sector.as_ref().map(ToString::to_string),
            metadata: r.metadata,
            contracts,
        });
    }
    // Contracts unseen for a day have expired or been delisted: forget them so state stays
    // bounded over long runs.
    let horizon = end - optionflow_schemas::time::MICROS_PER_DAY;
    book.contracts.retain(|_, c| c.last_seen >= horizon);
    for c in book.contracts.values_mut() {
        c.window_volume = 0;
        c.quoted_in_window = false;
    }
    book.open_window = None;
}

impl Operator for Score {
    type In = GreeksEvent;
    type Out = FactorScore;

    fn name(&self) -> &'static str {
        STAGE
    }

    /// As [`Operator::on_event`] for each event, with each underlying's book looked up once
    /// per run of its events rather than once per event: a batch holds each underlying's
    /// tick and then its chain's greeks, so nearly every event finds its book in hand.
    fn on_batch(
        &mut self,
        events: Vec<GreeksEvent>,
        _ctx: &Ctx,
        out: &mut Emit<FactorScore>,
        _errors: &mut Vec<OpError>,
    ) {
        let mut events = events.iter().peekable();
        while let Some(first) = events.next() {
            let underlying = first.underlying();
            let book = book_of(&mut self.state.books, first);
            apply(&self.cfg, book, first, out);
            while let Some(ev) = events.next_if(|ev| ev.underlying() == underlying) {
                apply(&self.cfg, book, ev, out);
            }
        }
    }

    fn on_event(
        &mut self,
        ev: &GreeksEvent,
        _ctx: &Ctx,
        out: &mut Emit<FactorScore>,
    ) -> Result<(), OpError> {
        let book = book_of(&mut self.state.books, ev);
        apply(&self.cfg, book, ev, out);
        Ok(())
    }

    fn on_watermark(
        &mut self,
        event_time: i64,
        _ctx: &Ctx,
        out: &mut Emit<FactorScore>,
    ) -> Result<(), OpError> {
        let w = self.cfg.window_micros();
        for (underlying, book) in self.state.books.iter_mut() {
            if let Some(open) = book.open_window {
                // Every event before the window's end has arrived once the watermark reaches
                // the window's last microsecond.
                if open + w - 1 <= event_time {
                    close_window(&self.cfg, underlying, book, open, out);
                }
            }
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>, OpError> {
        // With an eighth to spare: the histories grow between checkpoints until they are
        // full, and a buffer of exactly the last length was reallocated (copied) every time.
        let last = self.snapshot_len.get();
        let buffer = Vec::with_capacity(last + last / 8);
        let bytes = encode_state_into(STAGE, &self.state, buffer)?;
        self.snapshot_len.set(bytes.len());
        Ok(bytes)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), OpError> {
        self.state = decode_state(STAGE, state)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
