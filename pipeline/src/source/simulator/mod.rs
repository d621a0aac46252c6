//! The seeded, deterministic market simulator: the default source of `quotes.raw`.
//!
//! Twenty names (see [`UNIVERSE`]) trade 09:30–16:00 New York, Monday to Friday; the clock only
//! runs while the market is open, jumping from 16:00 to the next weekday's 09:30. Every tick
//! each underlying moves under stochastic volatility with rare jumps and emits one
//! [`UnderlyingTick`]; a random share of its listed contracts requote, priced by Black-Scholes
//! on a skewed smile. Scheduled regime events (a squeeze, a crash) stage what the factor
//! scorers are meant to find, and a small share of quotes is deliberately corrupted so the
//! rejection path has work.
//!
//! Same (config, seed, underlyings, duration) ⇒ the same events, byte for byte: all randomness
//! comes from ChaCha8 streams keyed by the seed and each symbol (so adding names leaves the
//! others' markets unchanged), nothing reads a clock, and iteration is over vectors.
//! [`Simulator::snapshot`] captures the whole state; a restored simulator continues exactly as
//! the uninterrupted one would.
//!
//! ## Layout
//! - `config`: [`SimulatorConfig`] and its validation;
//! - `universe`: [`UnderlyingSpec`] and the built-in names;
//! - `calendar`: sessions and expiry dates;
//! - `chain`: strikes, OCC symbols and open interest of each session's listing;
//! - `market`: spot/variance dynamics, regime events, the vol surface, quotes and flow;
//! - [`scenario`]: the chain synthesis driven along real daily bars (scenario tapes).

mod calendar;
mod chain;
mod config;
mod market;
pub mod scenario;
mod universe;

#[cfg(test)]
mod tests;

pub use config::{RegimeEventConfig, RegimeKind, SimulatorConfig};
pub use universe::{UnderlyingSpec, UNIVERSE};

use crate::duration::SESSION_MICROS;
use chain::{Chain, Listing};
use chrono::NaiveDate;
use market::{Dynamics, EventPlan, ExpiryNow, Regime};
use optionflow_operators::pricing::ExerciseStyle;
use optionflow_schemas::{CompactString, EventId, RawEvent, RawQuote, UnderlyingTick};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::Exp1;
use serde::{Deserialize, Serialize};

/// The `source` field of everything the simulator emits.
pub const SOURCE: &str = "simulator";

/// Bumped whenever [`Simulator::snapshot`]'s layout changes.
const STATE_VERSION: u32 = 1;

/// A regime event placed on the event-time axis of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledEvent {
    /// Squeeze or crash.
    pub kind: RegimeKind,
    /// The underlying it hits.
    pub underlying: String,
    /// Event time (UTC µs) of its start.
    pub start: i64,
    /// Event time (UTC µs) of its end.
    pub end: i64,
}

/// What can go wrong building or restoring a simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    /// The `[simulator]` section is invalid.
    #[error(
        "invalid [simulator] configuration:\n  - {}\nfix these keys in the config file (or their \
         OPTIONFLOW__SIMULATOR__* environment overrides)",
        .0.join("\n  - ")
    )]
    Config(Vec<String>),
    /// More underlyings than the universe holds, or none.
    #[error(
        "{requested} underlyings requested, but the simulator's universe has {available} names: \
         choose 1 to {available}"
    )]
    Underlyings {
        /// What was asked for.
        requested: usize,
        /// The universe's size.
        available: usize,
    },
    /// A duration that is not positive.
    #[error(
        "a duration of {0} µs cannot be simulated: give a positive market time, e.g. 20m or 1d"
    )]
    Duration(i64),
    /// The run would leave the calendar the simulator can represent.
    #[error(
        "the simulated calendar runs out of range ({0}); choose an earlier start-date or a \
         shorter duration"
    )]
    Calendar(String),
    /// The state could not be encoded.
    #[error("cannot encode the simulator state: {0}")]
    Encode(String),
    /// The state could not be decoded.
    #[error(
        "cannot decode the simulator state ({0}): the checkpoint is corrupt or was written by \
         another version; start again in a fresh data directory"
    )]
    Decode(String),
    /// The state belongs to a run with other parameters.
    #[error(
        "the simulator state was saved by a run with other parameters (seed, underlyings, \
         duration or [simulator] settings); resume with the same ones, or start again in a \
         fresh data directory"
    )]
    Mismatch,
}

/// One underlying's evolving market.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Book {
    rng: ChaCha8Rng,
    spot: f64,
    /// Spot at the session's open, where the listing was centred.
    open_spot: f64,
    var: f64,
    /// Shares traded today.
    day_volume: i64,
    /// Good quotes left before the next corrupted one.
    bad_countdown: u64,
    chain: Chain,
}

/// Everything that changes as the simulator runs: exactly what a snapshot holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct State {
    version: u32,
    /// Fingerprint of (config, seed, underlyings, duration).
    params: u64,
    /// Market time of the next tick, µs from the first.
    offset: i64,
    /// Index of the session whose chains are listed (-1 before the first).
    session: i64,
    /// Event time of that session's open.
    session_open: i64,
    books: Vec<Book>,
}

/// The seeded market simulator. See the [module docs](self).
#[derive(Debug)]
pub struct Simulator {
    cfg: SimulatorConfig,
    first_session: NaiveDate,
    /// Market µs between ticks.
    dt: i64,
    duration: i64,
    start_time: i64,
    end_time: i64,
    universe: &'static [UnderlyingSpec],
    /// Regime events by book.
    plans: Vec<Vec<EventPlan>>,
    scheduled: Vec<ScheduledEvent>,
    state: State,
    /// Per-expiry surface of the book being quoted, reused across ticks.
    scratch: Vec<ExpiryNow>,
}

/// FNV-1a: a hash fixed by its definition, unlike std's, so seeds and fingerprints stay stable
/// across Rust versions.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// An independent ChaCha8 stream for `(seed, label)`.
fn stream(seed: u64, label: &str) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(fnv1a(&[label.as_bytes()]));
    rng
}

/// Good quotes before the next corrupted one: geometric, so corruption hits each quote
/// independently with probability `rate`.
fn bad_gap(rate: f64, rng: &mut ChaCha8Rng) -> u64 {
    if rate <= 0.0 {
        return u64::MAX;
    }
    if rate >= 1.0 {
        return 0;
    }
    let u = 1.0 - rng.random::<f64>();
    let gap = u.ln() / (-rate).ln_1p();
    if gap >= u64::MAX as f64 {
        u64::MAX
    } else {
        gap as u64
    }
}

fn round_cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Simulator {
    /// A simulator over the first `underlyings` names of [`UNIVERSE`] for `duration` µs of
    /// market time (only open-market time counts: the clock jumps from 16:00 to the next
    /// weekday's 09:30).
    pub fn new(
        cfg: &SimulatorConfig,
        seed: u64,
        underlyings: usize,
        duration: i64,
    ) -> Result<Self, SimulatorError> {
        cfg.validate().map_err(SimulatorError::Config)?;
        if !(1..=UNIVERSE.len()).contains(&underlyings) {
            return Err(SimulatorError::Underlyings {
                requested: underlyings,
                available: UNIVERSE.len(),
            });
        }
        if duration <= 0 {
            return Err(SimulatorError::Duration(duration));
        }
        let date = calendar::parse_date(&cfg.start_date)
            .map_err(|e| SimulatorError::Config(vec![format!("simulator.start-date: {e}")]))?;
        let first_session = calendar::weekday_on_or_after(date)
            .ok_or_else(|| SimulatorError::Calendar(cfg.start_date.clone()))?;
        let universe = &UNIVERSE[..underlyings];
        let cfg_bytes =
            postcard::to_allocvec(cfg).map_err(|e| SimulatorError::Encode(e.to_string()))?;
        let params = fnv1a(&[
            &cfg_bytes,
            &seed.to_le_bytes(),
            &(underlyings as u64).to_le_bytes(),
            &duration.to_le_bytes(),
        ]);
        let mut sim = Simulator {
            cfg: cfg.clone(),
            first_session,
            dt: cfg.tick_interval_ms as i64 * 1000,
            duration,
            start_time: 0,
            end_time: 0,
            universe,
            plans: vec![Vec::new(); underlyings],
            scheduled: Vec::new(),
            state: State {
                version: STATE_VERSION,
                params,
                offset: 0,
                session: -1,
                session_open: 0,
                books: Vec::with_capacity(underlyings),
            },
            scratch: Vec::with_capacity(cfg.expiries),
        };
        sim.start_time = sim.event_time(0, false)?;
        sim.end_time = sim.event_time(duration, true)?;
        for (i, ev) in cfg.events.iter().enumerate() {
            let Some(book) = universe.iter().position(|u| u.symbol == ev.underlying) else {
                continue;
            };
            let (start, length) = match (
                config::parse_offset(&ev.start_after),
                crate::duration::parse_market_duration(&ev.duration),
            ) {
                (Ok(s), Ok(d)) => (s, d),
                // validate() has already refused both.
                _ => continue,
            };
            let end = start.saturating_add(length);
            let mut rng = stream(seed, &format!("event/{i}/{}", ev.underlying));
            sim.plans[book].push(EventPlan::draw(ev.kind, start, end, &mut rng));
            sim.scheduled.push(ScheduledEvent {
                kind: ev.kind,
                underlying: ev.underlying.clone(),
                start: sim.event_time(start, false)?,
                end: sim.event_time(end, true)?,
            });
        }
        for spec in universe {
            let mut rng = stream(seed, &format!("underlying/{}", spec.symbol));
            let bad_countdown = bad_gap(cfg.bad_quote_rate, &mut rng);
            sim.state.books.push(Book {
                rng,
                spot: spec.spot,
                open_spot: spec.spot,
                var: spec.vol * spec.vol,
                day_volume: 0,
                bad_countdown,
                chain: Chain::default(),
            });
        }
        Ok(sim)
    }

    /// Simulated milliseconds between two ticks.
    pub fn tick_interval_ms(&self) -> u64 {
        self.cfg.tick_interval_ms
    }

    /// Event time of the first tick: 09:30 New York on the first session date, as UTC µs.
    pub fn start_time(&self) -> i64 {
        self.start_time
    }

    /// Event time at which the market-time budget is used up (a whole number of sessions ends
    /// at 16:00 of the last one).
    pub fn end_time(&self) -> i64 {
        self.end_time
    }

    /// The simulated names, in emission order.
    pub fn universe(&self) -> &[UnderlyingSpec] {
        self.universe
    }

    /// The configured regime events whose underlying is simulated, on the event-time axis.
    pub fn scheduled_events(&self) -> &[ScheduledEvent] {
        &self.scheduled
    }

    /// Event time of market offset `m`. An offset on a session boundary is the next open, or
    /// with `closing` the previous session's 16:00.
    fn event_time(&self, m: i64, closing: bool) -> Result<i64, SimulatorError> {
        let mut session = m / SESSION_MICROS;
        if closing && session > 0 && m % SESSION_MICROS == 0 {
            session -= 1;
        }
        let open = self
            .session_open(session)
            .ok_or_else(|| SimulatorError::Calendar(format!("session {session}")))?;
        Ok(open + (m - session * SESSION_MICROS))
    }

    fn session_date(&self, session: i64) -> Option<NaiveDate> {
        calendar::add_weekdays(self.first_session, u64::try_from(session).ok()?)
    }

    fn session_open(&self, session: i64) -> Option<i64> {
        calendar::ny_micros(self.session_date(session)?, 9, 30)
    }

    /// Opens session `session`: the night's move, then fresh listings and day counters.
    fn open_session(&mut self, session: i64) -> Option<()> {
        let date = self.session_date(session)?;
        let open = calendar::ny_micros(date, 9, 30)?;
        let overnight = self.state.session >= 0;
        for (book, spec) in self.state.books.iter_mut().zip(self.universe) {
            if overnight {
                Dynamics {
                    spec,
                    spot: &mut book.spot,
                    var: &mut book.var,
                }
                .overnight(&mut book.rng);
            }
            let listing = Listing {
                spec,
                date,
                open,
                spot: book.spot,
                var: book.var,
                expiries: self.cfg.expiries,
                strikes: self.cfg.strikes_per_expiry,
            };
            book.chain = chain::list(&listing, &book.chain, &mut book.rng)?;
            book.open_spot = book.spot;
            book.day_volume = 0;
        }
        self.state.session = session;
        self.state.session_open = open;
        Some(())
    }

    /// Appends every event of the next tick to `out` (per underlying in universe order: one
    /// [`UnderlyingTick`], then that underlying's [`RawQuote`]s in chain order) and returns
    /// the tick's event time; `None` once [`end_time`](Self::end_time) is reached.
    pub fn next_tick(&mut self, out: &mut Vec<RawEvent>) -> Option<i64> {
        let m = self.state.offset;
        if m >= self.duration {
            return None;
        }
        let session = m / SESSION_MICROS;
        let opening = session != self.state.session;
        if opening {
            self.open_session(session)?;
        }
        let t = self.state.session_open + (m - session * SESSION_MICROS);
        let ticks_per_session = (SESSION_MICROS / self.dt).max(1) as f64;
        for i in 0..self.state.books.len() {
            let spec = &self.universe[i];
            let regime = Regime::at(&self.plans[i], m, self.dt);
            let book = &mut self.state.books[i];
            let mut dynamics = Dynamics {
                spec,
                spot: &mut book.spot,
                var: &mut book.var,
            };
            if opening {
                // The open prints where the night left it; only the events' drift applies.
                *dynamics.spot *= regime.drift.exp();
            } else {
                dynamics.step(self.dt, &regime, &mut book.rng);
            }
            let shares: f64 = book.rng.sample(Exp1);
            let busy = 1.0 + 4.0 * (regime.squeeze + regime.crash);
            book.day_volume +=
                (shares * busy * spec.daily_volume as f64 / ticks_per_session) as i64;
            let price = round_cents(book.spot);
            out.push(RawEvent::Tick(UnderlyingTick {
                event_id: EventId::new("sim").part(spec.symbol).part_i64(t).finish(),
                event_time: t,
                underlying: spec.symbol.into(),
                source: SOURCE.into(),
                price,
                volume: book.day_volume,
                sector: Some(spec.sector.into()),
            }));
            self.scratch.clear();
            self.scratch.extend(book.chain.expiries.iter().map(|&e| {
                ExpiryNow::new(spec, book.spot, book.open_spot, book.var, t, e, &regime)
            }));
            let ctx = QuoteCtx {
                spec,
                t,
                spot: book.spot,
                price,
                regime,
                american: ExerciseStyle::for_root(spec.symbol) == ExerciseStyle::American,
                quote_probability: self.cfg.quote_probability,
                bad_rate: self.cfg.bad_quote_rate,
                seconds: self.dt as f64 / 1e6,
                surfaces: &self.scratch,
            };
            ctx.quote_chain(book, out);
        }
        self.state.offset = m + self.dt;
        Some(t)
    }

    /// The complete state, postcard-encoded.
    pub fn snapshot(&self) -> Result<Vec<u8>, SimulatorError> {
        postcard::to_allocvec(&self.state).map_err(|e| SimulatorError::Encode(e.to_string()))
    }

    /// Replaces the state with a [`snapshot`](Self::snapshot) of a simulator built with the same
    /// parameters; `next_tick` then continues exactly as that simulator would have.
    pub fn restore(&mut self, state: &[u8]) -> Result<(), SimulatorError> {
        let decoded: State =
            postcard::from_bytes(state).map_err(|e| SimulatorError::Decode(e.to_string()))?;
        if decoded.version != STATE_VERSION {
            return Err(SimulatorError::Decode(format!(
                "state version {}, this build reads {STATE_VERSION}",
                decoded.version
            )));
        }
        if decoded.params != self.state.params || decoded.books.len() != self.universe.len() {
            return Err(SimulatorError::Mismatch);
        }
        self.state = decoded;
        Ok(())
    }
}

/// What quoting one underlying's chain at one tick needs.
struct QuoteCtx<'a> {
    spec: &'a UnderlyingSpec,
    t: i64,
    spot: f64,
    /// Spot as printed.
    price: f64,
    regime: Regime,
    /// Whether the underlying's options are American (equities, ETFs) or European (indexes).
    american: bool,
    quote_probability: f64,
    bad_rate: f64,
    /// Market seconds per tick.
    seconds: f64,
    surfaces: &'a [ExpiryNow],
}

impl QuoteCtx<'_> {
    fn quote_chain(&self, book: &mut Book, out: &mut Vec<RawEvent>) {
        let active = self.regime.active();
        let widen = 1.0 + 0.8 * (self.regime.squeeze + self.regime.crash);
        let Book {
            rng,
            chain,
            bad_countdown,
            ..
        } = book;
        for c in chain.contracts.iter_mut() {
            let Some(e) = self.surfaces.get(c.expiry).filter(|e| e.live) else {
                continue;
            };
            let short = e.days <= 10.0;
            let otm = if c.is_call {
                c.strike > self.spot
            } else {
                c.strike < self.spot
            };
            let flow = if active {
                market::flow_weight(&self.regime, c.is_call, otm, short)
            } else {
                0.0
            };
            if rng.random::<f64>() >= self.quote_probability * (1.0 + 3.0 * flow) {
                continue;
            }
            let iv = e.implied_vol(e.smile_moneyness(c.ln_strike));
            let Some(model) = e.price(c.strike, iv, c.is_call, self.american) else {
                continue;
            };
            let (mut bid, mut ask) = market::bid_ask(model, widen);
            let floor = e.floor(c.strike, self.price, c.is_call, self.american);
            ask = market::lift_above_floor(model, bid, ask, floor);
            let liq = market::liquidity(e.moneyness(c.ln_strike));
            let traded =
                market::trade_size(self.spec, liq, e.tenor_factor, flow, self.seconds, rng);
            if traded > 0 {
                c.volume += traded;
                if active {
                    c.event_volume += traded;
                }
                // Event flow lifts offers; calm flow splits between the sides.
                let at_ask = rng.random::<f64>() < 0.5 + 0.4 * flow.min(1.0);
                c.last = Some(if at_ask || bid <= 0.0 { ask } else { bid });
            }
            let depth = 50.0 * self.spec.option_activity * (0.2 + liq);
            let bid_size = if bid > 0.0 {
                1 + (rng.random::<f64>() * depth) as i64
            } else {
                0
            };
            let ask_size = 1 + (rng.random::<f64>() * depth) as i64;
            let event_id = EventId::new("sim")
                .part(&c.symbol)
                .part_i64(self.t)
                .finish();
            let mut symbol = CompactString::from(c.symbol.as_str());
            if *bad_countdown == 0 {
                *bad_countdown = bad_gap(self.bad_rate, rng);
                match rng.random_range(0..5u8) {
                    0 => bid = ask + 0.05,
                    1 => bid = f64::NAN,
                    2 => (bid, ask) = (0.0, 0.0),
                    3 => ask = -ask,
                    _ => {
                        if rng.random::<bool>() {
                            symbol = "GARBAGE".into();
                        } else {
                            symbol.truncate(12);
                        }
                    }
                }
            } else {
                *bad_countdown -= 1;
            }
            out.push(RawEvent::Quote(RawQuote {
                event_id,
                event_time: self.t,
                underlying: self.spec.symbol.into(),
                source: SOURCE.into(),
                symbol,
                bid,
                ask,
                bid_size,
                ask_size,
                last: if c.volume > 0 { c.last } else { None },
                volume: c.volume,
                open_interest: c.open_interest,
                underlying_price: Some(self.price),
            }));
        }
    }
}
