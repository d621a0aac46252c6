//! Scenario tapes: the simulator's chain synthesis driven along a real daily record.
//!
//! A scenario file ([`ScenarioSpec`], `replay/scenarios/*.toml`) names daily bars of real
//! sessions. For each session and underlying the builder
//! - lists the simulator's chain (its expiries, strike grid and open interest rules, open
//!   interest carried over from the previous session plus part of the event flow) around the
//!   real open;
//! - walks the underlying along the real bar ([`path`]: open → extremes → close, a Brownian
//!   bridge between them) with one [`UnderlyingTick`] every `tick-minutes`, its volume the real
//!   day's volume spread over a U-shaped intraday profile;
//! - at each `chain-minutes` quotes every contract of the chain on the simulator's smile, the
//!   ATM level set by the day's data ([`IvSource`]: a vol index such as the VIX, or a
//!   realised-vol EWMA of the bars), its option flow scaled by the day's relative share volume,
//!   and the simulator's squeeze or crash regime switched on by the data ([`RegimeDriver`]).
//!
//! The result is an ordinary `quotes.raw` tape that `optionflow replay` runs unchanged; option
//! quotes carry `source: "synthetic"` and the header metadata says how they were made.
//! Same scenario file and bars ⇒ the same tape, byte for byte ([`tape`] fixes the bits
//! apache-avro would randomise).
//!
//! ## Layout
//! - `spec`: the scenario file and its validation;
//! - `bars`: the daily bars it reads;
//! - `path`: the intraday path and volume profile;
//! - `quote`: one chain snapshot;
//! - `tape`: the reproducible container file.

mod bars;
mod path;
mod quote;
mod spec;
mod tape;

pub use spec::{IvSource, RegimeDriver, ScenarioSpec, UnderlyingScenario};

use super::chain::{self, Chain, Listing};
use super::market::{Regime, KAPPA, VARIANCE_PREMIUM};
use super::universe::{UnderlyingSpec, UNIVERSE};
use bars::DailyBar;
use chrono::NaiveDate;
use optionflow_operators::pricing::ExerciseStyle;
use optionflow_schemas::{EventId, RawEvent, UnderlyingTick};
use quote::Quoting;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

/// `source` of the synthesised option quotes.
pub const QUOTE_SOURCE: &str = "synthetic";
/// `source` of the underlying ticks (real bars, interpolated intraday).
pub const TICK_SOURCE: &str = "scenario";

/// Sessions of bars before `from` the baselines need (trailing medians, the EWMA's start).
pub const WARMUP_SESSIONS: usize = 20;
/// RiskMetrics' daily decay of the realised-variance EWMA.
const EWMA_LAMBDA: f64 = 0.94;
/// Relative volume at which a squeeze starts, and the multiple of it at which it is full.
const SQUEEZE_RVOL: f64 = 3.0;
const SQUEEZE_RVOL_SPAN: f64 = 5.0;
/// Return since the previous close at which a squeeze is at full strength.
const SQUEEZE_MOVE: f64 = 0.05;
/// Vol index over its trailing median at which a crash is at full strength.
const CRASH_INDEX_RATIO: f64 = 2.5;
/// The simulator's calm requote probability per second: option flow between two chain
/// snapshots is what the simulator's quotes would have reported over that time.
const REQUOTE_RATE: f64 = 0.1;
/// Bounds on the day's option activity as a multiple of the name's usual.
const ACTIVITY_RANGE: (f64, f64) = (0.25, 25.0);

/// What can go wrong building a scenario tape.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The scenario file is invalid.
    #[error("invalid scenario file:\n  - {}", .0.join("\n  - "))]
    Spec(Vec<String>),
    /// A bars file cannot be read.
    #[error("{path}:{line}: {reason}")]
    Bars {
        /// The file.
        path: String,
        /// 1-based line (0: the file as a whole).
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The bars do not cover what the scenario asks for.
    #[error("{0}")]
    Data(String),
    /// Reading the scenario file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Writing the tape.
    #[error("cannot write the tape {0}")]
    Tape(String),
}

/// What a build wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioReport {
    /// The tape.
    pub out: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Sessions on it.
    pub sessions: usize,
    /// First and last event time (UTC µs).
    pub span: (i64, i64),
    /// Per underlying: (symbol, ticks, quotes).
    pub counts: Vec<(String, u64, u64)>,
}

/// Builds the tape of the scenario file `spec_path` into `out` (replacing it).
pub fn build(spec_path: &Path, out: &Path) -> Result<ScenarioReport, ScenarioError> {
    let text = std::fs::read_to_string(spec_path).map_err(|source| ScenarioError::Io {
        path: spec_path.display().to_string(),
        source,
    })?;
    let spec = ScenarioSpec::parse(&text)?;
    let base = spec_path.parent().unwrap_or(Path::new("."));
    let (events, sessions) = synthesise(&spec, base)?;
    let mut metadata = BTreeMap::new();
    metadata.insert("optionflow.scenario".to_string(), spec.name.clone());
    metadata.insert(
        "optionflow.scenario.synthetic".to_string(),
        format!(
            "Option quotes (source \"{QUOTE_SOURCE}\") are SYNTHESISED by optionflow's simulator \
             chain model around real daily bars; underlying ticks (source \"{TICK_SOURCE}\") \
             follow a Brownian bridge through each real day's open/high/low/close. {}",
            spec.description
        ),
    );
    metadata.insert("optionflow.scenario.spec".to_string(), text);
    let marker = {
        let a = super::fnv1a(&[spec.name.as_bytes(), b"marker", &spec.seed.to_le_bytes()]);
        let b = super::fnv1a(&[&a.to_le_bytes(), b"marker"]);
        let mut m = [0u8; 16];
        m[..8].copy_from_slice(&a.to_le_bytes());
        m[8..].copy_from_slice(&b.to_le_bytes());
        m
    };
    let bytes = tape::write(out, &events, &metadata, marker)?;
    let mut counts: Vec<(String, u64, u64)> = spec
        .underlyings
        .iter()
        .map(|u| (u.symbol.clone(), 0, 0))
        .collect();
    for ev in &events {
        let (u, tick) = match ev {
            RawEvent::Tick(t) => (&t.underlying, true),
            RawEvent::Quote(q) => (&q.underlying, false),
        };
        if let Some(c) = counts.iter_mut().find(|c| c.0 == u.as_str()) {
            if tick {
                c.1 += 1;
            } else {
                c.2 += 1;
            }
        }
    }
    let time = |ev: &RawEvent| match ev {
        RawEvent::Tick(t) => t.event_time,
        RawEvent::Quote(q) => q.event_time,
    };
    let span = (
        events.first().map_or(0, time),
        events.last().map_or(0, time),
    );
    Ok(ScenarioReport {
        out: out.to_path_buf(),
        bytes,
        sessions,
        span,
        counts,
    })
}

/// Every event of the scenario in tape order (event time, then the spec's underlying order,
/// each underlying's tick before its quotes), and the number of sessions.
pub fn synthesise(
    spec: &ScenarioSpec,
    base: &Path,
) -> Result<(Vec<RawEvent>, usize), ScenarioError> {
    let date = |s: &str| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| ScenarioError::Spec(vec![format!("{s:?} is not a date")]))
    };
    let (from, to) = (date(&spec.from)?, date(&spec.to)?);
    let mut keyed: Vec<(i64, usize, RawEvent)> = Vec::new();
    let mut sessions = 0;
    for (i, u) in spec.underlyings.iter().enumerate() {
        let mut events = Vec::new();
        sessions = sessions.max(Synth::new(spec, u, base, from, to)?.run(&mut events)?);
        keyed.extend(events.into_iter().map(|ev| {
            let t = match &ev {
                RawEvent::Tick(t) => t.event_time,
                RawEvent::Quote(q) => q.event_time,
            };
            (t, i, ev)
        }));
    }
    // Stable: each underlying's own order (tick, then its chain) survives.
    keyed.sort_by_key(|(t, i, _)| (*t, *i));
    Ok((keyed.into_iter().map(|(_, _, ev)| ev).collect(), sessions))
}

fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.collect();
    sort_floats(&mut v);
    let n = v.len();
    (n > 0).then(|| {
        if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        }
    })
}

fn sort_floats(v: &mut [f64]) {
    v.sort_by(f64::total_cmp);
}

fn push_capped(q: &mut VecDeque<f64>, v: f64) {
    if q.len() == WARMUP_SESSIONS {
        q.pop_front();
    }
    q.push_back(v);
}

/// Average of the expected variance over `years` under the simulator's mean reversion: the
/// weight of today's variance in an expiry's term variance.
fn term_weight(years: f64) -> f64 {
    let kt = KAPPA * years;
    if kt < 1e-9 {
        1.0
    } else {
        -(-kt).exp_m1() / kt
    }
}

/// One underlying's synthesis.
struct Synth<'a> {
    spec: &'a ScenarioSpec,
    u: &'a UnderlyingScenario,
    name: &'static UnderlyingSpec,
    /// The sessions to emit.
    days: Vec<DailyBar>,
    /// The vol index's bars by date (for `iv = "index"`).
    index: BTreeMap<NaiveDate, DailyBar>,
    /// Daily variance EWMA through the previous close.
    ewma: f64,
    /// Long-run annual variance: the simulator's mean-reversion level.
    theta: f64,
    prev_close: f64,
    volumes: VecDeque<f64>,
    index_closes: VecDeque<f64>,
    /// Where the strike grid is centred: kept from session to session while the open stays
    /// inside its inner strikes, so a contract keeps its history (and a gap does not list a
    /// fresh wing of strikes nobody has seen).
    centre: Option<f64>,
    rng: ChaCha8Rng,
}

impl<'a> Synth<'a> {
    fn new(
        spec: &'a ScenarioSpec,
        u: &'a UnderlyingScenario,
        base: &Path,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Self, ScenarioError> {
        let name = UNIVERSE
            .iter()
            .find(|s| s.symbol == u.symbol)
            .ok_or_else(|| ScenarioError::Spec(vec![format!("{} is unknown", u.symbol)]))?;
        let all = bars::read(&base.join(&u.bars), u.price_factor, u.volume_divisor)?;
        let warm: Vec<DailyBar> = all.iter().filter(|b| b.date < from).copied().collect();
        let days: Vec<DailyBar> = all
            .iter()
            .filter(|b| (from..=to).contains(&b.date))
            .copied()
            .collect();
        if warm.len() < WARMUP_SESSIONS || days.is_empty() {
            return Err(ScenarioError::Data(format!(
                "{}: needs {WARMUP_SESSIONS} sessions before {from} (has {}) and at least one \
                 from {from} to {to} (has {})",
                u.bars,
                warm.len(),
                days.len()
            )));
        }
        let mut index = BTreeMap::new();
        if let Some(file) = &u.iv_index {
            for b in bars::read(&base.join(file), 1.0, 1.0)? {
                index.insert(b.date, b);
            }
            if let Some(b) = all.iter().find(|b| !index.contains_key(&b.date)) {
                return Err(ScenarioError::Data(format!(
                    "{file} has no bar for {}, a session of {}",
                    b.date, u.bars
                )));
            }
        }
        // The EWMA starts from the warm-up's sample variance and runs through it.
        let returns: Vec<f64> = warm
            .windows(2)
            .map(|w| (w[1].close / w[0].close).ln())
            .collect();
        let mut ewma = returns.iter().map(|r| r * r).sum::<f64>() / returns.len().max(1) as f64;
        let mut path = Vec::with_capacity(returns.len());
        for r in &returns {
            ewma = EWMA_LAMBDA * ewma + (1.0 - EWMA_LAMBDA) * r * r;
            path.push(252.0 * ewma);
        }
        let theta = match u.iv {
            IvSource::Realized => median(path.iter().copied()),
            IvSource::Index => median(
                warm.iter()
                    .filter_map(|b| index.get(&b.date))
                    .map(|b| (b.close / 100.0 / VARIANCE_PREMIUM).powi(2)),
            ),
        }
        .filter(|v| v.is_finite() && *v > 0.0)
        .ok_or_else(|| ScenarioError::Data(format!("{}: no usable warm-up bars", u.bars)))?;
        let tail = warm.len().saturating_sub(WARMUP_SESSIONS);
        let volumes = warm[tail..].iter().map(|b| b.volume).collect();
        let index_closes = warm[tail..]
            .iter()
            .filter_map(|b| index.get(&b.date).map(|x| x.close))
            .collect();
        let prev_close = warm.last().map_or(days[0].open, |b| b.close);
        Ok(Self {
            spec,
            u,
            name,
            days,
            index,
            ewma,
            theta,
            prev_close,
            volumes,
            index_closes,
            centre: None,
            rng: super::stream(spec.seed, &format!("scenario/{}", u.symbol)),
        })
    }

    /// Appends the underlying's events, in time order; returns the sessions emitted.
    fn run(mut self, out: &mut Vec<RawEvent>) -> Result<usize, ScenarioError> {
        let mut chain = Chain::default();
        let days = std::mem::take(&mut self.days);
        for bar in &days {
            chain = self.session(bar, &chain, out)?;
            let r = (bar.close / self.prev_close).ln();
            self.ewma = EWMA_LAMBDA * self.ewma + (1.0 - EWMA_LAMBDA) * r * r;
            self.prev_close = bar.close;
            push_capped(&mut self.volumes, bar.volume);
            if let Some(x) = self.index.get(&bar.date) {
                push_capped(&mut self.index_closes, x.close);
            }
        }
        Ok(days.len())
    }

    /// Annual variance the simulator's surface is fed at spot `spot` and index level `index`
    /// (vol points), under `regime`.
    fn variance(&self, spot: f64, index: Option<f64>, regime: &Regime) -> f64 {
        match (self.u.iv, index) {
            (IvSource::Index, Some(level)) => {
                // The surface's 30-day ATM level is √(term variance)·premium·(1 + crash): solve
                // for the variance that puts it at the index.
                let target = level / 100.0 / (VARIANCE_PREMIUM * (1.0 + regime.crash));
                let w = term_weight(30.0 / 365.0);
                (self.theta + (target * target - self.theta) / w).max(0.2 * self.theta)
            }
            _ => {
                let r = (spot / self.prev_close).ln();
                252.0 * (EWMA_LAMBDA * self.ewma + (1.0 - EWMA_LAMBDA) * r * r)
            }
        }
    }

    fn regime(&self, spot: f64, rvol: f64, index: Option<f64>) -> Regime {
        let clamp01 = |x: f64| {
            if x.is_finite() {
                x.clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        let mut r = Regime::default();
        match self.u.regime {
            RegimeDriver::Squeeze => {
                let volume = clamp01((rvol / SQUEEZE_RVOL).ln() / SQUEEZE_RVOL_SPAN.ln());
                let up = clamp01((spot / self.prev_close).ln() / SQUEEZE_MOVE);
                r.squeeze = volume * up;
            }
            RegimeDriver::Crash => {
                let reference = median(self.index_closes.iter().copied());
                if let (Some(level), Some(reference)) = (index, reference) {
                    r.crash = clamp01((level / reference).ln() / CRASH_INDEX_RATIO.ln());
                }
            }
            RegimeDriver::None => {}
        }
        r
    }

    /// The strike grid's centre for a session opening at `open`: yesterday's while the open
    /// is within the grid's inner strikes (and the listing increment is unchanged), else the
    /// open.
    fn grid_centre(&self, open: f64) -> f64 {
        let inc = chain::increment_milli(open);
        let half = self.spec.strikes_per_expiry.saturating_sub(1) / 2;
        let inner = (half * 3).div_ceil(5) as f64 * inc as f64 / 1000.0;
        self.centre
            .filter(|c| chain::increment_milli(*c) == inc && (open - c).abs() <= inner)
            .unwrap_or(open)
    }

    /// Emits one session; returns its chain (tomorrow's open interest starts from it).
    fn session(
        &mut self,
        bar: &DailyBar,
        prev: &Chain,
        out: &mut Vec<RawEvent>,
    ) -> Result<Chain, ScenarioError> {
        let missing = |what: &str| ScenarioError::Data(format!("{}: {what}", bar.date));
        let open_time = super::calendar::ny_micros(bar.date, 9, 30)
            .ok_or_else(|| missing("no 09:30 New York"))?;
        let reference = median(self.volumes.iter().copied()).unwrap_or(bar.volume);
        let rvol = if reference > 0.0 {
            bar.volume / reference
        } else {
            1.0
        };
        let index_bar = self.index.get(&bar.date).copied();
        let low_first = path::low_first(bar);
        let index_at = |m: u32| index_bar.map(|x| path::index_level(&x, low_first, m));
        let open_regime = self.regime(bar.open, rvol, index_at(0));
        let open_var = self.variance(bar.open, index_at(0), &open_regime);
        let day = UnderlyingSpec {
            spot: bar.open,
            vol: self.theta.sqrt(),
            option_activity: self.name.option_activity
                * rvol.clamp(ACTIVITY_RANGE.0, ACTIVITY_RANGE.1),
            ..*self.name
        };
        // The strike grid reaches as far as today's vol says the name can go.
        // Open interest is listed at the name's usual activity, not today's.
        let listing_spec = UnderlyingSpec {
            vol: open_var.sqrt().max(day.vol),
            option_activity: self.name.option_activity,
            ..day
        };
        let centre = self.grid_centre(bar.open);
        self.centre = Some(centre);
        let chain = chain::list(
            &Listing {
                spec: &listing_spec,
                date: bar.date,
                open: open_time,
                spot: centre,
                var: open_var,
                expiries: self.spec.expiries,
                strikes: self.spec.strikes_per_expiry,
            },
            prev,
            &mut self.rng,
        )
        .ok_or_else(|| missing("the expiry calendar runs out"))?;
        let mut chain = chain;
        let tick = self.spec.tick_minutes;
        let prices = path::intraday(bar, tick, &mut self.rng);
        let mut last_chain_minute = 0;
        for (k, spot) in prices.iter().enumerate() {
            let m = k as u32 * tick;
            let t = open_time + i64::from(m) * 60_000_000;
            let price = super::round_cents(*spot);
            let share = path::volume_share(f64::from(m) / f64::from(path::SESSION_MINUTES));
            out.push(RawEvent::Tick(UnderlyingTick {
                event_id: EventId::new(TICK_SOURCE)
                    .part(&self.u.symbol)
                    .part_i64(t)
                    .finish(),
                event_time: t,
                underlying: self.u.symbol.as_str().into(),
                source: TICK_SOURCE.into(),
                price,
                volume: (bar.volume * share).round() as i64,
                sector: Some(self.name.sector.into()),
            }));
            if !self.spec.chain_minutes.contains(&m) {
                continue;
            }
            let regime = self.regime(*spot, rvol, index_at(m));
            let var = self.variance(*spot, index_at(m), &regime);
            let quotes = Quoting {
                spec: &day,
                symbol: &self.u.symbol,
                american: ExerciseStyle::for_root(&self.u.symbol) == ExerciseStyle::American,
                t,
                spot: *spot,
                anchor: self.prev_close,
                price,
                var,
                regime,
                seconds: f64::from(m - last_chain_minute) * 60.0 * REQUOTE_RATE,
                band: self.spec.quote_band,
            };
            quotes.quote(&mut chain, &mut self.rng, out);
            last_chain_minute = m;
        }
        Ok(chain)
    }
}
