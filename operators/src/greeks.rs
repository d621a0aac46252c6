//! The `greeks` stage: implied volatility from the mid and greeks for each normalized quote,
//! under the model the contract's exercise style calls for; quotes with no IV solution are
//! rejected with the reason.
//!
//! - American options (equities, ETFs): IV against Bjerksund-Stensland 2002, greeks from it.
//! - European options (cash-settled indexes, see [`ExerciseStyle::for_root`]): IV by Let's Be
//!   Rational on Black-Scholes-Merton, analytic greeks. With `implied-forward` on, the dividend
//!   yield of each expiry is read from the market by put-call parity instead of taken from the
//!   configuration: an index's dividends and financing are what its options price, and a wrong
//!   yield skews every IV of the chain (calls up, puts down).
//!
//! The implied forward: the stage keeps the latest call and put mids per (root, expiry, strike)
//! in its state. European parity gives F = K + e^(rT)(C − P) at any strike quoted on both sides;
//! the stage uses the (up to) [`PARITY_STRIKES`] strikes nearest the spot whose two sides were
//! quoted within [`PARITY_MAX_SKEW_SECS`] of each other — near the money both sides are liquid,
//! their relative spreads tightest, and a mid error moves F the least. Each pair gives an implied
//! yield q = r − ln(F/S)/T, with S the spot when the later side was quoted; the stage averages
//! them. A yield (carry) is kept rather than F itself because it holds still as the spot moves,
//! so a pair quoted a few seconds ago still serves the quote at hand. An expiry without a usable
//! pair, or whose implied yield is implausible (|q| ≥ [`MAX_IMPLIED_YIELD`]), uses the configured
//! yield.
//!
//! The warm start: the stage remembers, per American contract that can be exercised early, the
//! early-exercise premium its last quote was solved with and that premium's sensitivities, and
//! seeds the contract's next solve with them ([`crate::pricing::solve_quote`]). Quote to quote a
//! premium barely moves, so the solver usually needs one Bjerksund-Stensland evaluation (with
//! derivatives) where it made three or four, the way a vol desk seeds each contract's solve
//! with its last one. The memory is state like the parity quotes:
//! checkpointed, dropped at expiry, and a function of the contract's own quotes in order, so a
//! replay, a resumed run and every runtime give the same bits.
//!
//! Where the pricing runs ([`GreeksConfig::pricing_threads`]): on a machine of up to two cores
//! the stage prices on its own thread and on the threads its host lends it
//! ([`GreeksStage::lend_helpers`]: the embedded runtime's other worker, between the other
//! stages' messages); on more cores a batch's quotes are priced on every core. Either way the
//! outputs are the same bits: only the thread that computes each quote's pure function changes.

use crate::config::{ConfigErrors, Problems};
use crate::operator::{
    decode_state, decode_state_prefix, encode_state, encode_state_into, rejection, Ctx, Emit,
    OpError, Operator,
};
use crate::pricing::{
    never_exercised_early, solve_quote, ExerciseStyle, IvError, QuoteSolution, Right, WarmStart,
};
use crate::shared_work::{Helpers, Results, SharedRun};
use optionflow_schemas::{
    time::MICROS_PER_SECOND, CompactString, ContractGreeks, EventId, GreeksEvent, IdString,
    NormalizedEvent, NormalizedQuote,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::mem::take;
use std::sync::Arc;

const STAGE: &str = "greeks";

/// How many strikes nearest the spot feed an expiry's implied forward.
pub const PARITY_STRIKES: usize = 2;
/// A call and a put mid more than this many seconds apart do not form a parity pair: the spot
/// may have moved between them.
pub const PARITY_MAX_SKEW_SECS: i64 = 60;
/// Implied dividend yields at or beyond ±50% are taken for bad quotes, not for the market.
pub const MAX_IMPLIED_YIELD: f64 = 0.5;

/// The `[greeks]` configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct GreeksConfig {
    /// Continuously compounded risk-free rate.
    pub rate: f64,
    /// Continuous dividend yield for underlyings not listed in `dividend-yields`.
    pub dividend_yield: f64,
    /// Dividend yield per underlying.
    pub dividend_yields: BTreeMap<String, f64>,
    /// Read each expiry's dividend yield of European (index) options from put-call parity at the
    /// strikes nearest the spot, instead of the configured yield, once both sides are quoted.
    pub implied_forward: bool,
    /// Threads that price a batch's quotes: 0 chooses (on a machine of up to two cores the
    /// stage's own thread, with the threads its host lends it, a pool of every core otherwise),
    /// 1 is the stage's own thread, N ≥ 2 a pool of N threads of the stage's own. It matters to
    /// the embedded runtime, which hands the stage whole batches; a Kafka stage prices one
    /// record at a time, on its own thread. Where the work runs never changes an output, so the
    /// key is left out of the configuration's fingerprint (and out of its serialized form while
    /// it is 0, so configurations from before it keep their fingerprints).
    #[serde(skip_serializing_if = "is_automatic")]
    pub pricing_threads: usize,
}

/// Pricing threads at most: more than any machine this runs on has cores.
pub const MAX_PRICING_THREADS: usize = 1024;

/// `pricing-threads = 0`: chosen from the machine's cores.
fn is_automatic(threads: &usize) -> bool {
    *threads == 0
}

impl Default for GreeksConfig {
    fn default() -> Self {
        Self {
            rate: 0.04,
            dividend_yield: 0.0,
            dividend_yields: BTreeMap::new(),
            implied_forward: true,
            pricing_threads: 0,
        }
    }
}

impl GreeksConfig {
    /// Reports every problem at once.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut p = Problems::default();
        p.check(
            self.rate.is_finite() && self.rate.abs() < 1.0,
            "rate",
            "must be a finite rate between -1 and 1",
        );
        p.check(
            self.dividend_yield.is_finite() && (0.0..1.0).contains(&self.dividend_yield),
            "dividend-yield",
            "must be in [0, 1)",
        );
        for (u, q) in &self.dividend_yields {
            p.check(
                q.is_finite() && (0.0..1.0).contains(q),
                &format!("dividend-yields.{u}"),
                "must be in [0, 1)",
            );
        }
        p.check(
            self.pricing_threads <= MAX_PRICING_THREADS,
            "pricing-threads",
            format!("must be at most {MAX_PRICING_THREADS} (0 chooses from the machine's cores)"),
        );
        // `implied-forward` is a bool: serde already refuses anything else, naming the key.
        p.finish()
    }

    /// Builds the operator (and its pricing pool, when it has one of its own).
    pub fn build(&self) -> Result<GreeksStage, ConfigErrors> {
        self.validate()?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pricer = Pricer::for_threads(self.pricing_threads, cores).map_err(|e| {
            ConfigErrors(vec![format!(
                "pricing-threads: cannot start the threads: {e}"
            )])
        })?;
        Ok(GreeksStage {
            cfg: self.clone(),
            pricer,
            state: State::default(),
            seeds: BTreeMap::new(),
            batch: 0,
            earliest_seed_expiry: i64::MAX,
        })
    }
}

/// One side's latest mid at a strike.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct SideQuote {
    mid: f64,
    spot: f64,
    years: f64,
    at: i64,
}

/// The latest call and put of one strike.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct StrikeQuotes {
    call: Option<SideQuote>,
    put: Option<SideQuote>,
}

/// One expiry of one root: its settlement instant (to drop it once expired) and its strikes,
/// keyed by the strike in thousandths (OCC's precision) so the keys are exact and ordered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Expiry {
    expiry_time: i64,
    strikes: BTreeMap<i64, StrikeQuotes>,
}

/// The stage's state: quotes of European roots, by (root, expiry). Root rather than underlying:
/// SPX and SPXW share expiry dates but settle at different instants.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    chains: BTreeMap<(CompactString, CompactString), Expiry>,
}

/// What an American contract's last solve leaves for its next quote.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Seed {
    /// What the contract's last quote was solved with, if it was.
    start: Option<WarmStart>,
    /// The contract's settlement instant, to drop it once expired.
    expiry_time: i64,
    /// The batch that last priced the contract (not saved): a second quote of the contract in
    /// one batch must wait for the first's premium, as it would one event at a time.
    #[serde(skip)]
    batch: u64,
}

/// Where a batch's quotes are priced.
#[derive(Debug)]
enum Pricer {
    /// On the stage's own thread.
    Inline,
    /// On rayon's global pool (one thread per core).
    SharedPool,
    /// On a pool of the stage's own.
    OwnPool(Arc<rayon::ThreadPool>),
    /// On the stage's own thread and the threads its host lends
    /// ([`GreeksStage::lend_helpers`]).
    Lent(Arc<dyn Helpers>),
}

impl Pricer {
    /// The pricer `[greeks] pricing-threads` asks for. Automatic (0): the stage's own thread
    /// on up to two cores (joined by the host's threads when it lends them,
    /// [`GreeksStage::lend_helpers`]). There a pool's threads only competed with the pipeline's
    /// other stages for the cores: a replay of the 2h tape took 5–7% less CPU and ran 6% faster
    /// inline, the live benchmark 13% faster (BENCHMARKS.md). On more cores the pool has
    /// cores to itself.
    fn for_threads(threads: usize, cores: usize) -> Result<Self, rayon::ThreadPoolBuildError> {
        Ok(match threads {
            0 if cores <= 2 => Pricer::Inline,
            0 => Pricer::SharedPool,
            1 => Pricer::Inline,
            n => Pricer::OwnPool(Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("greeks-pricing-{i}"))
                    .build()?,
            )),
        })
    }
}

/// The greeks operator.
#[derive(Debug)]
pub struct GreeksStage {
    cfg: GreeksConfig,
    /// Where the pricing runs.
    pricer: Pricer,
    state: State,
    /// The warm start of each American contract that can be exercised early, by a 64-bit hash
    /// of its OCC symbol ([`seed_key`]): an integer search where a string one cost more than a
    /// tenth of what the warm start saves. Two symbols sharing a hash would only hand each other
    /// a poor seed, which costs the solver evaluations, never accuracy. Saved after `state` in
    /// a snapshot, so checkpoints from before it restore (to no seeds), and their premiums'
    /// vommas after them ([`seed_vommas`]).
    seeds: BTreeMap<u64, Seed>,
    /// Counts batches, for [`Seed::batch`].
    batch: u64,
    /// The earliest settlement among `seeds` (`i64::MAX` when there are none): a watermark
    /// before it has no seed to drop, so it skips the walk over all of them.
    earliest_seed_expiry: i64,
}

impl GreeksStage {
    /// Lends the stage threads of its host (the embedded runtime's workers) to price its
    /// batches on, alongside its own, when `pricing-threads` left the choice to the machine and
    /// that chose the stage's own thread: on up to two cores a pool of the stage's own competed
    /// with the host's threads, while a lent worker adds a core without adding a thread (the
    /// 2h replay: 1.76 → 1.92 cores busy, +14%; BENCHMARKS.md). `pricing-threads = 1`
    /// (one thread, asked for) and pools are kept.
    pub fn lend_helpers(&mut self, helpers: Arc<dyn Helpers>) {
        if self.cfg.pricing_threads == 0 && matches!(self.pricer, Pricer::Inline) {
            self.pricer = Pricer::Lent(helpers);
        }
    }
}

/// The warm-start key of a contract: its OCC symbol hashed.
fn seed_key(symbol: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(symbol.as_bytes())
}

/// The earliest settlement among `seeds`, or `i64::MAX` when there are none.
fn earliest_expiry(seeds: &BTreeMap<u64, Seed>) -> i64 {
    seeds
        .values()
        .map(|s| s.expiry_time)
        .min()
        .unwrap_or(i64::MAX)
}

/// The premiums' vommas of the seeds that hold a warm start, in the map's order: a section of
/// the checkpoint after the seeds themselves ([`WarmStart::premium_vomma`] is not serialized
/// with them, so that checkpoints from before it was kept still restore).
fn seed_vommas(seeds: &BTreeMap<u64, Seed>) -> Vec<f64> {
    seeds
        .values()
        .filter_map(|seed| seed.start.map(|start| start.premium_vomma))
        .collect()
}

/// Puts [`seed_vommas`]'s section back into the seeds it was taken from.
fn restore_seed_vommas(seeds: &mut BTreeMap<u64, Seed>, vommas: &[f64]) -> Result<(), OpError> {
    let mut starts = seeds.values_mut().filter_map(|seed| seed.start.as_mut());
    let mut vommas = vommas.iter();
    for (start, vomma) in starts.by_ref().zip(vommas.by_ref()) {
        start.premium_vomma = *vomma;
    }
    if starts.next().is_some() || vommas.next().is_some() {
        return Err(OpError::fatal(
            STAGE,
            "checkpoint state does not decode (the warm starts and their vommas differ in number); start with a fresh data directory",
        ));
    }
    Ok(())
}

/// The id of the greeks event of the quote whose id is `source_id`.
fn output_id(source_id: &str) -> IdString {
    EventId::derived(STAGE, source_id)
}

/// Strike in thousandths, the OCC symbol's own resolution.
fn strike_key(strike: f64) -> i64 {
    (strike * 1000.0).round() as i64
}

impl GreeksStage {
    /// Records a European quote's mid and returns the expiry's implied dividend yield, if parity
    /// gives a plausible one.
    fn implied_yield(&mut self, q: &NormalizedQuote, right: Right, rate: f64) -> Option<f64> {
        let chain = self
            .state
            .chains
            .entry((q.root.clone(), q.expiry.clone()))
            .or_default();
        chain.expiry_time = q.expiry_time;
        let side = SideQuote {
            mid: q.mid,
            spot: q.underlying_price,
            years: q.years_to_expiry,
            at: q.event_time,
        };
        let entry = chain.strikes.entry(strike_key(q.strike)).or_default();
        match right {
            Right::Call => entry.call = Some(side),
            Right::Put => entry.put = Some(side),
        }
        let spot_key = strike_key(q.underlying_price);
        // Walk outwards from the spot on both sides, taking the nearest usable pairs first.
        let mut below = chain.strikes.range(..=spot_key).rev().peekable();
        let mut above = chain.strikes.range(spot_key + 1..).peekable();
        let (mut sum, mut n) = (0.0, 0usize);
        while n < PARITY_STRIKES {
            let next = match (below.peek(), above.peek()) {
                (Some((&kb, _)), Some((&ka, _))) => {
                    if spot_key - kb <= ka - spot_key {
                        below.next()
                    } else {
                        above.next()
                    }
                }
                (Some(_), None) => below.next(),
                (None, Some(_)) => above.next(),
                (None, None) => break,
            };
            let Some((
                &k,
                StrikeQuotes {
                    call: Some(c),
                    put: Some(p),
                },
            )) = next
            else {
                continue;
            };
            if (c.at - p.at).abs() > PARITY_MAX_SKEW_SECS * MICROS_PER_SECOND {
                continue;
            }
            // Spot and time as of the later side: the moment the pair was last consistent (it
            // matters for 0DTE, where a minute is a large part of the life left).
            let later = if c.at >= p.at { c } else { p };
            let (pair_spot, pair_t) = (later.spot, later.years);
            let forward = k as f64 / 1000.0 + (rate * pair_t).exp() * (c.mid - p.mid);
            if !(forward > 0.0 && pair_spot > 0.0 && pair_t > 0.0) {
                continue;
            }
            sum += rate - (forward / pair_spot).ln() / pair_t;
            n += 1;
        }
        let q_implied = sum / n as f64;
        (n > 0 && q_implied.is_finite() && q_implied.abs() < MAX_IMPLIED_YIELD).then_some(q_implied)
    }

    /// The quote's pricing inputs, or `None` when `q` is a contract with a warm start that the
    /// current batch already prices: it must then wait for that quote's premium (the caller
    /// prices what it has and starts a new batch). Sequential: an American contract's warm
    /// start is looked up and claimed for the current batch, and a European quote's mid goes
    /// into the parity state, which the next quote of its chain reads.
    fn prepare(&mut self, q: &NormalizedQuote) -> Option<Pricing> {
        let right = if q.right == "call" {
            Right::Call
        } else {
            Right::Put
        };
        let style = ExerciseStyle::for_root(&q.root);
        let rate = self.cfg.rate;
        let configured = self
            .cfg
            .dividend_yields
            .get(q.underlying.as_str())
            .copied()
            .unwrap_or(self.cfg.dividend_yield);
        let (dividend, seed_key, seed) = if style == ExerciseStyle::American {
            // Contracts the American solver prices with the model (not as European) get a
            // warm start.
            if never_exercised_early(right, rate, configured) {
                (configured, None, None)
            } else {
                let key = seed_key(&q.symbol);
                (configured, Some(key), self.claim_seed(key, q.expiry_time)?)
            }
        } else if self.cfg.implied_forward {
            let implied = self.implied_yield(q, right, rate).unwrap_or(configured);
            (implied, None, None)
        } else {
            (configured, None, None)
        };
        Some(Pricing {
            style,
            right,
            spot: q.underlying_price,
            strike: q.strike,
            years: q.years_to_expiry,
            rate,
            dividend,
            mid: q.mid,
            seed,
            seed_key,
        })
    }

    /// Claims contract `key`'s warm start for the current batch, in one search of the seeds:
    /// `Some(start)` (none yet for a contract first seen), or `None` when the batch already
    /// prices the contract.
    fn claim_seed(&mut self, key: u64, expiry_time: i64) -> Option<Option<WarmStart>> {
        let batch = self.batch;
        match self.seeds.entry(key) {
            Entry::Occupied(mut held) => {
                let seed = held.get_mut();
                if seed.batch == batch {
                    return None;
                }
                seed.batch = batch;
                Some(seed.start)
            }
            Entry::Vacant(slot) => {
                slot.insert(Seed {
                    start: None,
                    expiry_time,
                    batch,
                });
                self.earliest_seed_expiry = self.earliest_seed_expiry.min(expiry_time);
                Some(None)
            }
        }
    }

    /// Prices a run of quotes in which no warm-started contract appears twice (on a pool or
    /// lent threads, when the stage has them and there are enough quotes), and emits their
    /// outputs in input order; the contracts' premiums are kept for their next quotes. Only
    /// the pricing is shared: building the output events on a pool too measured ~10% slower on
    /// the 2h replay (0.6% fewer instructions, but each output copied twice more, and
    /// allocated on the pool's threads).
    /// The run is a slice of the batch, worked in place: its quotes' strings move into the
    /// outputs, and the batch is dropped afterwards (moving each 350-byte event into a vector
    /// of its run was one more copy per quote on the stage's sequential path).
    /// `inputs` is handed back empty, with its room when no lent thread still holds it.
    fn price_run(
        &mut self,
        events: &mut [NormalizedEvent],
        inputs: &mut Vec<Pricing>,
        out: &mut Emit<GreeksEvent>,
    ) {
        // Shared with the lent threads rather than copied for them.
        let put_back = inputs;
        let shared = Arc::new(std::mem::take(put_back));
        let inputs = shared.as_slice();
        // The output ids are hashed with the pricing, off the stage's own thread: the rest of
        // the run is sequential.
        let source_ids: Vec<&str> = events
            .iter()
            .filter_map(|ev| match ev {
                NormalizedEvent::Quote(q) => Some(q.event_id.as_str()),
                NormalizedEvent::Tick(_) => None,
            })
            .collect();
        let work =
            |(pricing, source_id): (&Pricing, &&str)| (pricing.solve(), output_id(source_id));
        let in_parallel = || -> Vec<_> {
            inputs
                .par_iter()
                .zip(&source_ids)
                .with_min_len(QUOTES_PER_TASK)
                .map(work)
                .collect()
        };
        let pooled = inputs.len() >= PARALLEL_MIN_QUOTES;
        // The lent run's results are read where they lie (per chunk): collecting them first
        // was one more copy of every solution, into a buffer of fresh pages per batch.
        let solved = match &self.pricer {
            Pricer::SharedPool if pooled => SolvedRun::Collected(in_parallel().into_iter()),
            Pricer::OwnPool(pool) if pooled => {
                SolvedRun::Collected(pool.install(in_parallel).into_iter())
            }
            Pricer::Lent(helpers) if pooled => {
                // The ids are hashed here while a helper may still be pricing its last chunk.
                let ids = || {
                    source_ids
                        .iter()
                        .map(|id| output_id(id))
                        .collect::<Vec<_>>()
                };
                let (solutions, ids) = SharedRun::map(
                    Arc::clone(&shared),
                    QUOTES_PER_TASK,
                    Pricing::solve,
                    helpers.as_ref(),
                    ids,
                );
                SolvedRun::Lent(solutions.zip(ids))
            }
            _ => SolvedRun::Collected(
                inputs
                    .iter()
                    .zip(&source_ids)
                    .map(work)
                    .collect::<Vec<_>>()
                    .into_iter(),
            ),
        };
        drop(source_ids);
        let mut priced = inputs.iter().zip(solved);
        for ev in events {
            match ev {
                NormalizedEvent::Quote(q) => {
                    if let Some((pricing, (result, id))) = priced.next() {
                        if let Some(seed) = pricing.seed_key.and_then(|k| self.seeds.get_mut(&k)) {
                            seed.start = result.as_ref().ok().and_then(|s| s.warm_start);
                        }
                        pricing.emit(q, result, id, out);
                    }
                }
                NormalizedEvent::Tick(t) => out.emit(GreeksEvent::Tick(t.clone())),
            }
        }
        drop(priced);
        if let Ok(mut room) = Arc::try_unwrap(shared) {
            room.clear();
            *put_back = room;
        }
    }
}

/// A quote's pricing and the id of its greeks event.
type Solved = (Result<QuoteSolution, IvError>, IdString);

/// A run's [`Solved`] quotes in input order, read where they lie: the lent run's per chunk (with
/// the ids hashed meanwhile), or a collected vector's. An enum rather than a boxed iterator, so
/// that reading a solution is not a call that cannot be inlined.
enum SolvedRun {
    Lent(std::iter::Zip<Results<Result<QuoteSolution, IvError>>, std::vec::IntoIter<IdString>>),
    Collected(std::vec::IntoIter<Solved>),
}

impl Iterator for SolvedRun {
    type Item = Solved;

    fn next(&mut self) -> Option<Solved> {
        match self {
            SolvedRun::Lent(run) => run.next(),
            SolvedRun::Collected(run) => run.next(),
        }
    }
}

/// One quote's inputs to the pricing: everything the implied vol and the greeks depend on.
#[derive(Debug, Clone, Copy)]
struct Pricing {
    style: ExerciseStyle,
    right: Right,
    spot: f64,
    strike: f64,
    years: f64,
    rate: f64,
    dividend: f64,
    mid: f64,
    /// What the contract's last quote was solved with.
    seed: Option<WarmStart>,
    /// The contract's key in the warm starts, if it keeps one.
    seed_key: Option<u64>,
}

impl Pricing {
    /// The implied vol of the mid and the greeks there ([`solve_quote`]): a pure function of
    /// the inputs (the seed among them), so it may run on any thread.
    fn solve(&self) -> Result<QuoteSolution, IvError> {
        let p = *self;
        let contract = (p.right, p.spot, p.strike, p.years, p.rate, p.dividend);
        solve_quote(p.style, contract, p.mid, p.seed.as_ref())
    }

    /// The quote's greeks event, or its rejection when no vol reproduces the mid.
    /// The quote gives up its strings: they move into the event (in a batch, that saves
    /// seven allocations and copies per quote).
    fn emit(
        &self,
        q: &mut NormalizedQuote,
        solved: Result<QuoteSolution, IvError>,
        event_id: IdString,
        out: &mut Emit<GreeksEvent>,
    ) {
        let style = self.style;
        let (iv, g) = match solved {
            Ok(v) => (v.iv, v.greeks),
            Err(e) => {
                let reason = format!("{} mid {:.4}: {e}", style.as_str(), q.mid);
                out.reject(rejection(
                    STAGE,
                    &q.event_id,
                    q.event_time,
                    &q.underlying,
                    &q.symbol,
                    "no_iv_solution",
                    reason,
                ));
                return;
            }
        };
        out.emit(GreeksEvent::Greeks(ContractGreeks {
            event_id,
            event_time: q.event_time,
            underlying: take(&mut q.underlying),
            source_event_id: take(&mut q.event_id),
            symbol: take(&mut q.symbol),
            root: take(&mut q.root),
            expiry: take(&mut q.expiry),
            right: take(&mut q.right),
            strike: self.strike,
            spot: self.spot,
            years_to_expiry: self.years,
            rate: self.rate,
            dividend_yield: self.dividend,
            bid: q.bid,
            ask: q.ask,
            mid: q.mid,
            iv,
            delta: g.delta,
            gamma: g.gamma,
            vega: g.vega,
            theta: g.theta,
            rho: g.rho,
            volume: q.volume,
            open_interest: q.open_interest,
            sector: q.sector.take(),
            exercise_style: CompactString::const_new(style.as_str()),
            vanna: g.vanna,
            charm: g.charm,
            vomma: g.vomma,
        }));
    }
}

/// Batches with fewer quotes than this are priced on the stage's own thread. A judgement, not
/// a measurement of the threshold: 64 American quotes are 0.16–0.3 ms of pricing (criterion:
/// 2.53 µs a quote warm-started, 4.68 µs cold), well above what waking the pool costs, while a
/// replay's batches (one event time, ~500 quotes for 20 underlyings) are above it.
const PARALLEL_MIN_QUOTES: usize = 64;
/// Quotes per unit of work handed to the pool (an American IV and greeks are ~2.5–4.7 µs; 64
/// a task measured no different on the 2h replay).
const QUOTES_PER_TASK: usize = 16;

impl Operator for GreeksStage {
    type In = NormalizedEvent;
    type Out = GreeksEvent;

    fn name(&self) -> &'static str {
        STAGE
    }

    fn on_event(
        &mut self,
        ev: &NormalizedEvent,
        ctx: &Ctx,
        out: &mut Emit<GreeksEvent>,
    ) -> Result<(), OpError> {
        // A batch of one: the batch path is the one definition of the stage.
        let mut errors = Vec::new();
        self.on_batch(vec![ev.clone()], ctx, out, &mut errors);
        Ok(())
    }

    /// Three passes, so the pricing (nearly all of the stage's work) can run on every core: the
    /// inputs of each quote in order (the parity state sees the quotes as `on_event` would),
    /// the pricing of all of them (and their output ids), in parallel when the stage has a
    /// pool or lent threads, then the outputs in input order. A contract quoted twice in the
    /// batch splits it there: its second quote starts from the first's premium. The events,
    /// rejections and state are those of `on_event` on each in turn.
    fn on_batch(
        &mut self,
        mut events: Vec<NormalizedEvent>,
        _ctx: &Ctx,
        out: &mut Emit<GreeksEvent>,
        _errors: &mut Vec<OpError>,
    ) {
        // One output per input but the rejected: room for all of them at once, where growing
        // the vector of 376-byte events copied it on every doubling.
        out.reserve(events.len());
        self.batch += 1;
        let mut inputs = Vec::with_capacity(events.len());
        // The run so far is `events[start..i]`.
        let mut start = 0;
        for i in 0..events.len() {
            let (before, rest) = events.split_at_mut(i);
            let Some(NormalizedEvent::Quote(q)) = rest.first() else {
                continue;
            };
            let pricing = loop {
                if let Some(pricing) = self.prepare(q) {
                    break pricing;
                }
                // Quoted earlier in this run: that quote's premium seeds this one.
                self.price_run(&mut before[start..], &mut inputs, out);
                start = i;
                self.batch += 1;
            };
            inputs.push(pricing);
        }
        self.price_run(&mut events[start..], &mut inputs, out);
    }

    fn on_watermark(
        &mut self,
        event_time: i64,
        _ctx: &Ctx,
        _out: &mut Emit<GreeksEvent>,
    ) -> Result<(), OpError> {
        // Expired chains can no longer be quoted: drop them so the state stays the size of the
        // live chains.
        self.state
            .chains
            .retain(|_, chain| chain.expiry_time > event_time);
        if event_time >= self.earliest_seed_expiry {
            self.seeds.retain(|_, seed| seed.expiry_time > event_time);
            self.earliest_seed_expiry = earliest_expiry(&self.seeds);
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>, OpError> {
        let state = encode_state(STAGE, &self.state)?;
        let state = encode_state_into(STAGE, &self.seeds, state)?;
        encode_state_into(STAGE, &seed_vommas(&self.seeds), state)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), OpError> {
        // Checkpoints from before the stage kept state are empty, and those from before the
        // warm start end after the parity state: they restore to no state, or no seeds.
        if state.is_empty() {
            self.state = State::default();
            self.seeds = BTreeMap::new();
            self.earliest_seed_expiry = i64::MAX;
            return Ok(());
        }
        let (parity, rest) = decode_state_prefix(STAGE, state)?;
        self.state = parity;
        self.seeds = BTreeMap::new();
        if !rest.is_empty() {
            let (seeds, rest) = decode_state_prefix(STAGE, rest)?;
            self.seeds = seeds;
            // Checkpoints from before the premiums' vommas were kept end here: zero.
            if !rest.is_empty() {
                let vommas: Vec<f64> = decode_state(STAGE, rest)?;
                restore_seed_vommas(&mut self.seeds, &vommas)?;
            }
        }
        self.earliest_seed_expiry = earliest_expiry(&self.seeds);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::{bs2002_price, bsm_price};
    use crate::shared_work::SpawnedThreads;
    use crate::testing::{run_batch, run_events};

    #[allow(clippy::too_many_arguments)] // one quote's fields
    fn quote(
        root: &str,
        right: &str,
        strike: f64,
        mid: f64,
        spot: f64,
        years: f64,
        at: i64,
    ) -> NormalizedEvent {
        NormalizedEvent::Quote(NormalizedQuote {
            event_id: format!("{root}{right}{strike}{mid}{at}").into(),
            event_time: at,
            underlying: root.trim_end_matches('W').into(),
            source_event_id: "r".into(),
            symbol: format!(
                "{root:<6}240119{}{:08}",
                &right[..1].to_uppercase(),
                strike * 1000.0
            )
            .into(),
            root: root.into(),
            expiry: "2024-01-19".into(),
            expiry_time: 1_000_000_000,
            right: right.into(),
            strike,
            bid: mid - 0.05,
            ask: mid + 0.05,
            mid,
            spread: 0.1,
            spread_pct: 0.1 / mid,
            bid_size: 1,
            ask_size: 1,
            volume: 1,
            open_interest: 1,
            underlying_price: spot,
            years_to_expiry: years,
            sector: None,
        })
    }

    fn nq(mid: f64) -> NormalizedEvent {
        quote("XYZ", "call", 100.0, mid, 100.0, 0.25, 0)
    }

    fn greeks(out: &crate::testing::Collected<GreeksEvent>) -> Vec<&ContractGreeks> {
        out.events
            .iter()
            .filter_map(|e| match e {
                GreeksEvent::Greeks(g) => Some(g),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn solves_iv_and_rejects_impossible_mids() {
        let mut op = GreeksConfig::default().build().unwrap();
        let price = bsm_price(Right::Call, 100.0, 100.0, 0.25, 0.04, 0.0, 0.3);
        let out = run_events(&mut op, vec![nq(price), nq(150.0)]).unwrap();
        let g = greeks(&out)[0];
        assert!((g.iv - 0.3).abs() < 1e-10, "{}", g.iv);
        assert!(g.delta > 0.5 && g.gamma > 0.0 && g.vega > 0.0 && g.theta < 0.0);
        assert_eq!(out.rejected.len(), 1);
        assert_eq!(out.rejected[0].reason_code, "no_iv_solution");
        assert!(out.rejected[0].reason.contains("above the upper bound"));
    }

    #[test]
    fn american_roots_are_solved_against_bjerksund_stensland() {
        let cfg = GreeksConfig {
            dividend_yield: 0.02,
            ..GreeksConfig::default()
        };
        let mut op = cfg.build().unwrap();
        let mid = bs2002_price(Right::Put, 100.0, 110.0, 0.5, 0.04, 0.02, 0.35);
        let out = run_events(
            &mut op,
            vec![quote("XYZ", "put", 110.0, mid, 100.0, 0.5, 0)],
        );
        let out = out.unwrap();
        let g = greeks(&out)[0];
        assert_eq!(g.exercise_style, "american");
        assert!((g.iv - 0.35).abs() < 1e-9, "{}", g.iv);
        // The European model would read a higher vol from the same (early-exercise) price.
        let eu = crate::pricing::implied_vol(Right::Put, 100.0, 110.0, 0.5, 0.04, 0.02, mid);
        assert!(eu.unwrap() > g.iv + 1e-3);
        assert!(g.delta < -0.5 && g.gamma > 0.0 && g.vanna.is_finite() && g.vomma.is_finite());
        assert!(g.charm.is_finite() && g.charm != 0.0);
    }

    #[test]
    fn european_roots_read_the_dividend_yield_from_put_call_parity() {
        // An index whose options price a 1.5% yield, with the configuration saying 0.
        let (s, t, r, q, v) = (5000.0, 0.1, 0.04, 0.015, 0.2);
        let c = bsm_price(Right::Call, s, 5000.0, t, r, q, v);
        let p = bsm_price(Right::Put, s, 5000.0, t, r, q, v);
        let far = bsm_price(Right::Put, s, 4500.0, t, r, q, 0.25);
        let events = vec![
            quote("SPX", "call", 5000.0, c, s, t, 0),
            quote("SPX", "put", 5000.0, p, s, t, MICROS_PER_SECOND),
            quote("SPX", "put", 4500.0, far, s, t, 2 * MICROS_PER_SECOND),
        ];
        let mut op = GreeksConfig::default().build().unwrap();
        let out = run_events(&mut op, events.clone()).unwrap();
        let g = greeks(&out);
        assert!(g.iter().all(|g| g.exercise_style == "european"));
        // The first quote has no pair yet: the configured yield, and a vol off the true one.
        assert_eq!(g[0].dividend_yield, 0.0);
        assert!((g[0].iv - v).abs() > 1e-3);
        // Once both sides are in, the chain's yield and vols are the true ones.
        for g in &g[1..] {
            assert!((g.dividend_yield - q).abs() < 1e-10, "{}", g.dividend_yield);
        }
        assert!((g[1].iv - v).abs() < 1e-9 && (g[2].iv - 0.25).abs() < 1e-9);

        // Switched off, the configured yield stays.
        let cfg = GreeksConfig {
            implied_forward: false,
            ..GreeksConfig::default()
        };
        let out = run_events(&mut cfg.build().unwrap(), events).unwrap();
        assert!(greeks(&out).iter().all(|g| g.dividend_yield == 0.0));
    }

    #[test]
    fn parity_pairs_too_far_apart_in_time_are_not_used() {
        let (s, t, r, v) = (5000.0, 0.1, 0.04, 0.2);
        let c = bsm_price(Right::Call, s, 5000.0, t, r, 0.015, v);
        let p = bsm_price(Right::Put, s, 5000.0, t, r, 0.015, v);
        let later = (PARITY_MAX_SKEW_SECS + 1) * MICROS_PER_SECOND;
        let events = vec![
            quote("SPX", "call", 5000.0, c, s, t, 0),
            quote("SPX", "put", 5000.0, p, s, t, later),
        ];
        let out = run_events(&mut GreeksConfig::default().build().unwrap(), events).unwrap();
        assert!(greeks(&out).iter().all(|g| g.dividend_yield == 0.0));
    }

    #[test]
    fn state_restores_and_expired_chains_are_dropped() {
        let (s, t, r, v) = (5000.0, 0.1, 0.04, 0.2);
        let c = bsm_price(Right::Call, s, 5000.0, t, r, 0.015, v);
        let p = bsm_price(Right::Put, s, 5000.0, t, r, 0.015, v);
        let mut op = GreeksConfig::default().build().unwrap();
        run_events(&mut op, vec![quote("SPX", "call", 5000.0, c, s, t, 0)]).unwrap();
        let mut restored = GreeksConfig::default().build().unwrap();
        restored.restore(&op.snapshot().unwrap()).unwrap();
        let put = quote("SPX", "put", 5000.0, p, s, t, 1);
        let a = run_events(&mut op, vec![put.clone()]).unwrap();
        let b = run_events(&mut restored, vec![put.clone()]).unwrap();
        assert_eq!(greeks(&a), greeks(&b));
        assert!((greeks(&b)[0].dividend_yield - 0.015).abs() < 1e-10);
        // Past the expiry the chain is gone: a fresh quote has no pair.
        let mut emit = Emit::default();
        restored
            .on_watermark(1_000_000_000, &Ctx::default(), &mut emit)
            .unwrap();
        assert!(restored.state.chains.is_empty());
        // A checkpoint from before the stage had state (empty) restores to none.
        restored.restore(&op.snapshot().unwrap()).unwrap();
        assert!(!restored.state.chains.is_empty());
        restored.restore(&[]).unwrap();
        assert!(restored.state.chains.is_empty());
    }

    #[test]
    fn warm_starts_are_state_restored_with_the_rest_and_dropped_at_expiry() {
        // One in-the-money American put quoted as the spot and its vol drift: from the second
        // quote on, each solve starts from the one before.
        let quotes: Vec<_> = (0..6)
            .map(|i| {
                let (spot, vol) = (100.0 - 0.1 * i as f64, 0.3 + 0.001 * i as f64);
                let mid = bs2002_price(Right::Put, spot, 110.0, 0.5, 0.04, 0.0, vol);
                quote("XYZ", "put", 110.0, mid, spot, 0.5, i * MICROS_PER_SECOND)
            })
            .collect();
        let mut whole = GreeksConfig::default().build().unwrap();
        let all = run_events(&mut whole, quotes.clone()).unwrap();
        assert_eq!(whole.seeds.len(), 1);
        for (i, g) in greeks(&all).iter().enumerate() {
            let vol = 0.3 + 0.001 * i as f64;
            assert!((g.iv - vol).abs() < 1e-9, "{i}: {}", g.iv);
        }

        // Interrupted after three quotes and restored: the rest comes out the same, bit for bit.
        let mut first = GreeksConfig::default().build().unwrap();
        run_events(&mut first, quotes[..3].to_vec()).unwrap();
        let mut restored = GreeksConfig::default().build().unwrap();
        restored.restore(&first.snapshot().unwrap()).unwrap();
        assert_eq!(restored.snapshot().unwrap(), first.snapshot().unwrap());
        let rest = run_events(&mut restored, quotes[3..].to_vec()).unwrap();
        assert_eq!(greeks(&rest), greeks(&all)[3..]);

        // The premiums' vommas are part of what a checkpoint restores.
        assert!(first
            .seeds
            .values()
            .all(|seed| seed.start.is_some_and(|start| start.premium_vomma != 0.0)));
        let mut back = GreeksConfig::default().build().unwrap();
        back.restore(&first.snapshot().unwrap()).unwrap();
        let starts = |stage: &GreeksStage| -> Vec<_> {
            stage.seeds.values().map(|seed| seed.start).collect()
        };
        assert_eq!(starts(&back), starts(&first));

        // A checkpoint from before the vommas were kept (parity state and seeds) restores the
        // seeds with a vomma of zero, and the rest still solves to the same vols.
        let old = encode_state(STAGE, &first.state).unwrap();
        let old = encode_state_into(STAGE, &first.seeds, old).unwrap();
        restored.restore(&old).unwrap();
        assert_eq!(restored.seeds.len(), 1);
        assert!(restored
            .seeds
            .values()
            .all(|seed| seed.start.is_some_and(|start| start.premium_vomma == 0.0)));
        let rest = run_events(&mut restored, quotes[3..].to_vec()).unwrap();
        for (g, all) in greeks(&rest).iter().zip(&greeks(&all)[3..]) {
            assert!(
                (g.iv - all.iv).abs() < 1e-10 * all.iv,
                "{} vs {}",
                g.iv,
                all.iv
            );
        }

        // A checkpoint from before the warm start (the parity state alone) restores to no seeds.
        let old = encode_state(STAGE, &first.state).unwrap();
        restored.restore(&old).unwrap();
        assert!(restored.seeds.is_empty());

        // A vomma section that does not match the seeds is an error, not a silent mismatch.
        let mut bad = encode_state(STAGE, &first.state).unwrap();
        bad = encode_state_into(STAGE, &first.seeds, bad).unwrap();
        bad = encode_state_into(STAGE, &vec![0.5f64, 0.25], bad).unwrap();
        assert!(restored.restore(&bad).is_err());

        // At its expiry a contract's seed goes.
        restored.restore(&first.snapshot().unwrap()).unwrap();
        let mut emit = Emit::default();
        restored
            .on_watermark(1_000_000_000, &Ctx::default(), &mut emit)
            .unwrap();
        assert!(restored.seeds.is_empty());
    }

    /// A session-like batch: American puts and calls on two underlyings (early exercise worth
    /// something, and not), an index chain whose parity pairs form inside the batch, mids no
    /// vol reproduces, and ticks in between.
    fn mixed_batch() -> Vec<NormalizedEvent> {
        let (r, q_index) = (0.04, 0.015);
        let mut events = Vec::new();
        for i in 0..60i64 {
            let at = i * MICROS_PER_SECOND;
            let spot = 100.0 + 0.05 * i as f64;
            if i % 10 == 0 {
                events.push(NormalizedEvent::Tick(optionflow_schemas::UnderlyingTick {
                    event_id: format!("tick{i}").into(),
                    event_time: at,
                    underlying: "XYZ".into(),
                    source: "test".into(),
                    price: spot,
                    volume: 1,
                    sector: None,
                }));
            }
            let k = 80.0 + (i % 9) as f64 * 5.0;
            let put = bs2002_price(Right::Put, spot, k, 0.4, r, 0.0, 0.3 + 0.002 * i as f64);
            events.push(quote("XYZ", "put", k, put, spot, 0.4, at));
            let call = bs2002_price(Right::Call, spot, k, 0.4, r, 0.0, 0.25);
            events.push(quote("ABC", "call", k, call, spot, 0.4, at));
            let index_k = 4900.0 + (i % 5) as f64 * 50.0;
            let (side, right) = if i % 2 == 0 {
                ("call", Right::Call)
            } else {
                ("put", Right::Put)
            };
            let mid = bsm_price(right, 5000.0, index_k, 0.1, r, q_index, 0.2);
            events.push(quote("SPX", side, index_k, mid, 5000.0, 0.1, at));
            if i % 7 == 0 {
                // Above the spot: no call is worth that much.
                events.push(quote("XYZ", "call", k, spot + 5.0, spot, 0.4, at));
            }
        }
        events
    }

    #[test]
    fn a_batch_gives_what_its_events_give_one_by_one() {
        let events = mixed_batch();
        let quotes = events
            .iter()
            .filter(|e| matches!(e, NormalizedEvent::Quote(_)))
            .count();
        assert!(
            quotes >= PARALLEL_MIN_QUOTES,
            "the batch is large enough for a pool"
        );

        let mut one_by_one = GreeksConfig::default().build().unwrap();
        let expected = run_events(&mut one_by_one, events.clone()).unwrap();
        // On the stage's own thread, on a pool of its own, as the machine chooses, and with
        // threads lent by the host (plain threads here; tokio's workers in the runtime).
        for (threads, lent) in [(1, false), (3, false), (0, false), (0, true)] {
            let cfg = GreeksConfig {
                pricing_threads: threads,
                ..GreeksConfig::default()
            };
            let mut batched = cfg.build().unwrap();
            if lent {
                batched.pricer = Pricer::Lent(Arc::new(SpawnedThreads));
            }
            let (got, rejected, errors) = run_batch(&mut batched, events.clone());

            let how = format!("{threads} threads, lent {lent}");
            assert!(errors.is_empty());
            assert_eq!(got, expected.events, "{how}: same events, order, bits");
            assert_eq!(rejected, expected.rejected, "{how}");
            assert_eq!(batched.snapshot().unwrap(), one_by_one.snapshot().unwrap());
        }
        // The batch had every kind of output: greeks, ticks, rejections, and parity yields
        // read from pairs that formed inside it.
        assert!(expected
            .events
            .iter()
            .any(|e| matches!(e, GreeksEvent::Tick(_))));
        assert!(!expected.rejected.is_empty());
        assert!(greeks(&expected)
            .iter()
            .any(|g| (g.dividend_yield - 0.015).abs() < 1e-9));
    }

    #[test]
    fn pricing_threads_choose_where_the_pricing_runs() {
        let build = |threads| {
            GreeksConfig {
                pricing_threads: threads,
                ..GreeksConfig::default()
            }
            .build()
        };
        assert!(matches!(build(1).unwrap().pricer, Pricer::Inline));
        match build(3).unwrap().pricer {
            Pricer::OwnPool(pool) => assert_eq!(pool.current_num_threads(), 3),
            other => panic!("3 threads gave {other:?}"),
        }
        // Automatic: the stage's own thread on up to two cores, the shared pool above.
        for (cores, inline) in [(1, true), (2, true), (3, false), (64, false)] {
            let automatic = Pricer::for_threads(0, cores).unwrap();
            let got = matches!(automatic, Pricer::Inline);
            assert_eq!(got, inline, "{cores} cores gave {automatic:?}");
            assert_eq!(matches!(automatic, Pricer::SharedPool), !inline);
        }
        // Threads the host lends replace the stage's own thread only where the machine chose
        // it: one thread asked for stays one, and a pool stays the pool.
        let lend = |threads| {
            let mut stage = build(threads).unwrap();
            stage.lend_helpers(Arc::new(SpawnedThreads));
            stage.pricer
        };
        assert!(matches!(lend(1), Pricer::Inline));
        assert!(matches!(lend(3), Pricer::OwnPool(_)));
        // Automatic, as chosen on 2 and on 64 cores (whatever this machine has).
        for (cores, lent) in [(2, true), (64, false)] {
            let mut stage = build(0).unwrap();
            stage.pricer = Pricer::for_threads(0, cores).unwrap();
            stage.lend_helpers(Arc::new(SpawnedThreads));
            let got = &stage.pricer;
            assert_eq!(
                matches!(got, Pricer::Lent(_)),
                lent,
                "{cores} cores: {got:?}"
            );
        }
        let err = build(MAX_PRICING_THREADS + 1).unwrap_err().to_string();
        assert!(err.contains("pricing-threads"), "{err}");

        let cfg: GreeksConfig = serde_json::from_str(r#"{"pricing-threads": 2}"#).unwrap();
        assert_eq!(cfg.pricing_threads, 2);
        assert!(serde_json::from_str::<GreeksConfig>(r#"{"pricing-threads": -1}"#).is_err());
        // Left out of the serialized form while automatic: configurations from before the
        // key serialize (and fingerprint) as they did.
        let text = serde_json::to_string(&GreeksConfig::default()).unwrap();
        assert!(!text.contains("pricing"), "{text}");
        assert!(serde_json::to_string(&cfg)
            .unwrap()
            .contains("\"pricing-threads\":2"));
    }

    #[test]
    fn implied_forward_is_a_kebab_case_key() {
        let cfg: GreeksConfig = serde_json::from_str(r#"{"implied-forward": false}"#).unwrap();
        assert!(!cfg.implied_forward && cfg.validate().is_ok());
        assert!(serde_json::from_str::<GreeksConfig>(r#"{"implied_forward": false}"#).is_err());
        assert!(serde_json::from_str::<GreeksConfig>(r#"{"implied-forward": 1}"#).is_err());
        assert!(GreeksConfig::default().implied_forward);
    }
}
