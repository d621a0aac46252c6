//! The position simulator: one streaming pass over the tape's events, in event-time order, with
//! the entry candidates (approved risk decisions) merged in at their event time.
//!
//! No look-ahead, by construction:
//! - a candidate at time `t` is handled before the first event with a time after `t` is
//!   applied, so the contracts are chosen from the chain as it was at `t` (the latest quote of
//!   each contract with a time ≤ `t`) and the spot is the last one at or before `t`;
//! - every order (entry or exit) fills at the first quote of its contract with a time strictly
//!   after the order's time, at the quoted bid or ask.

use super::config::{BacktestConfig, FillAt, Structure};
use optionflow_operators::normalize::{expiry_instant, parse_occ};
use optionflow_operators::pricing::{implied_vol_for, streaming_greeks, ExerciseStyle, Right};
use optionflow_schemas::{direction, RawEvent, RawQuote};
use std::collections::{BTreeMap, VecDeque};

/// Shares per contract: prices are per share, cash per contract is 100 times that.
pub const MULTIPLIER: f64 = 100.0;

const MICROS_PER_DAY: f64 = 86_400e6;
const MICROS_PER_YEAR: f64 = 365.0 * MICROS_PER_DAY;
const MINUTE: i64 = 60_000_000;

/// An approved signal, as the simulator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The risk decision's event id.
    pub decision_id: String,
    /// The signal's event id.
    pub signal_id: String,
    /// Event time of the decision (that of its signal).
    pub time: i64,
    /// Underlying.
    pub underlying: String,
    /// bullish, bearish or volatility.
    pub direction: String,
    /// Composite score, 0-100.
    pub score: f64,
    /// The signal's (calibrated) probability.
    pub probability: f64,
    /// Factors that voted.
    pub factors: Vec<String>,
}

/// One leg of a position.
#[derive(Debug, Clone, PartialEq)]
struct Leg {
    symbol: String,
    /// +1 bought, -1 sold, per contract of the position.
    qty: i32,
    right: Right,
    strike: f64,
    /// The fill of the order in flight (entry or exit), per share.
    fill: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Entry order in flight since `order_time`.
    Entering,
    /// Open.
    Open,
    /// Exit order in flight since `order_time`.
    Exiting,
}

#[derive(Debug, Clone)]
struct Position {
    id: u64,
    candidate: Candidate,
    structure: &'static str,
    legs: Vec<Leg>,
    contracts: i64,
    phase: Phase,
    order_time: i64,
    /// Cash set aside for an entry in flight.
    reserved: f64,
    expiry_time: i64,
    entry_time: i64,
    /// Net premium per share paid at entry (slippage included, commissions not).
    entry_price: f64,
    exit_reason: &'static str,
}

/// A closed position: one row of `trades.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Trade {
    /// Sequence number, from 1, in the order positions were opened.
    pub id: u64,
    /// The signal's event id.
    pub signal_id: String,
    /// Underlying.
    pub underlying: String,
    /// The signal's direction.
    pub direction: String,
    /// long-call, long-put, straddle, call-vertical or put-vertical.
    pub structure: String,
    /// `+1 SYMBOL` / `-1 SYMBOL` per leg, `;`-separated.
    pub legs: String,
    /// Event time of the entry fill (the last leg's), µs.
    pub entry_time: i64,
    /// Net premium per share paid, slippage included.
    pub entry_price: f64,
    /// Contracts (of each leg).
    pub contracts: i64,
    /// Event time of the exit fill or settlement, µs.
    pub exit_time: i64,
    /// Net value per share received at exit, slippage included.
    pub exit_price: f64,
    /// take-profit, stop-loss, time-stop, expiry or end-of-tape.
    pub exit_reason: String,
    /// Profit in $, commissions included.
    pub pnl: f64,
    /// `pnl` over the entry's cost (premium plus entry commissions).
    pub ret: f64,
    /// The signal's composite score.
    pub score: f64,
    /// The signal's probability.
    pub probability: f64,
    /// Days held (event time).
    pub hold_days: f64,
}

/// Everything one pass produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Closed positions in the order they closed.
    pub trades: Vec<Trade>,
    /// Equity marks `(event time, equity)`: once per minute of event time, and at every exit.
    pub equity: Vec<(i64, f64)>,
    /// Starting equity.
    pub start_equity: f64,
    /// Equity at the end (every position closed).
    pub end_equity: f64,
    /// First and last event time of the tape, µs.
    pub span: Option<(i64, i64)>,
    /// Event time with at least one position open, µs.
    pub exposed_micros: i64,
    /// Candidates not traded, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Quotes not usable for fills or marks (no ask, crossed, unparsable symbol).
    pub unusable_quotes: u64,
}

#[derive(Debug, Clone, Copy)]
struct Quote {
    bid: f64,
    ask: f64,
}

#[derive(Debug, Clone)]
struct Contract {
    right: Right,
    strike: f64,
    expiry_time: i64,
    style: ExerciseStyle,
    quote: Quote,
}

/// The streaming simulator. Feed it the tape's events with [`Simulator::on_event`], in order,
/// then call [`Simulator::finish`].
pub struct Simulator {
    cfg: BacktestConfig,
    rate: f64,
    candidates: VecDeque<Candidate>,
    /// underlying → OCC symbol → its latest usable quote.
    chains: BTreeMap<String, BTreeMap<String, Contract>>,
    /// underlying → its last price: ticks, or a quote's underlying price for
    /// an underlying without ticks.
    spots: BTreeMap<String, f64>,
    ticked: BTreeMap<String, bool>,
    positions: Vec<Position>,
    next_id: u64,
    cash: f64,
    last_time: Option<i64>,
    first_time: Option<i64>,
    out: Outcome,
}

impl Simulator {
    /// A simulator for `candidates` (any order; they are sorted by time, then id). `rate` is the
    /// risk-free rate the greeks stage uses, for the deltas that choose strikes.
    pub fn new(cfg: BacktestConfig, rate: f64, mut candidates: Vec<Candidate>) -> Self {
        candidates.sort_by(|a, b| (a.time, &a.decision_id).cmp(&(b.time, &b.decision_id)));
        let cash = cfg.starting_equity;
        Self {
            cfg,
            rate,
            candidates: candidates.into(),
            chains: BTreeMap::new(),
            spots: BTreeMap::new(),
            ticked: BTreeMap::new(),
            positions: Vec::new(),
            next_id: 1,
            cash,
            last_time: None,
            first_time: None,
            out: Outcome {
                trades: Vec::new(),
                equity: Vec::new(),
                start_equity: cash,
                end_equity: cash,
                span: None,
                exposed_micros: 0,
                skipped: BTreeMap::new(),
                unusable_quotes: 0,
            },
        }
    }

    /// Applies the next event of the tape.
    pub fn on_event(&mut self, ev: &RawEvent) {
        let t = match ev {
            RawEvent::Quote(q) => q.event_time,
            RawEvent::Tick(k) => k.event_time,
        };
        self.advance_to(t);
        match ev {
            RawEvent::Tick(k) => {
                if k.price.is_finite() && k.price > 0.0 {
                    self.spots.insert(k.underlying.to_string(), k.price);
                    self.ticked.insert(k.underlying.to_string(), true);
                }
            }
            RawEvent::Quote(q) => self.on_quote(q),
        }
    }

    /// Everything that happens once event time moves past the previous event, before the
    /// event at `t` is applied: expiries, time stops, candidates decided before `t`.
    fn advance_to(&mut self, t: i64) {
        let Some(last) = self.last_time else {
            self.first_time = Some(t);
            self.last_time = Some(t);
            self.out.equity.push((t, self.cash));
            return;
        };
        if t <= last {
            return;
        }
        if self.positions.iter().any(|p| p.phase != Phase::Entering) {
            self.out.exposed_micros += t - last;
        }
        if t.div_euclid(MINUTE) != last.div_euclid(MINUTE) {
            let e = self.equity();
            self.out.equity.push((last, e));
        }
        self.last_time = Some(t);
        self.settle_expired(t);
        if self.cfg.max_hold_secs > 0 {
            let hold = self.cfg.max_hold_secs as i64 * 1_000_000;
            for p in &mut self.positions {
                if p.phase == Phase::Open && p.entry_time + hold < t {
                    p.phase = Phase::Exiting;
                    p.order_time = p.entry_time + hold;
                    p.exit_reason = "time-stop";
                }
            }
        }
        while self.candidates.front().is_some_and(|c| c.time < t) {
            let c = self.candidates.pop_front().expect("checked");
            if let Err(reason) = self.enter(c) {
                *self.out.skipped.entry(reason.to_string()).or_default() += 1;
            }
        }
    }

    /// Settles, at intrinsic value against the last spot at or before expiry, every position
    /// whose expiry is before `t`; cancels entries that never filled.
    fn settle_expired(&mut self, t: i64) {
        let mut i = 0;
        while i < self.positions.len() {
            if self.positions[i].expiry_time >= t {
                i += 1;
                continue;
            }
            let p = self.positions.remove(i);
            if p.phase == Phase::Entering {
                *self
                    .out
                    .skipped
                    .entry("expired before the entry filled".into())
                    .or_default() += 1;
                continue;
            }
            let spot = self.spots.get(&p.candidate.underlying).copied();
            let value: f64 = p
                .legs
                .iter()
                .map(|l| {
                    let s = spot.unwrap_or(l.strike);
                    let intrinsic = match l.right {
                        Right::Call => (s - l.strike).max(0.0),
                        Right::Put => (l.strike - s).max(0.0),
                    };
                    l.qty as f64 * intrinsic
                })
                .sum();
            let expiry = p.expiry_time;
            self.close(p, expiry, value, 0.0, "expiry");
        }
    }

    fn on_quote(&mut self, q: &RawQuote) {
        let t = q.event_time;
        let usable = q.bid.is_finite() && q.ask.is_finite() && q.bid >= 0.0 && q.ask > 0.0;
        let contract = usable
            .then(|| parse_occ(&q.symbol).ok())
            .flatten()
            .filter(|_| q.ask >= q.bid);
        let Some(occ) = contract else {
            self.out.unusable_quotes += 1;
            return;
        };
        if let Some(s) = q.underlying_price.filter(|s| s.is_finite() && *s > 0.0) {
            if !self.ticked.contains_key(q.underlying.as_str()) {
                self.spots.insert(q.underlying.to_string(), s);
            }
        }
        let quote = Quote {
            bid: q.bid,
            ask: q.ask,
        };
        let chain = self.chains.entry(q.underlying.to_string()).or_default();
        match chain.get_mut(q.symbol.as_str()) {
            Some(c) => c.quote = quote,
            None => {
                let Some(expiry_time) = expiry_instant(&occ.root, occ.expiry) else {
                    self.out.unusable_quotes += 1;
                    return;
                };
                chain.insert(
                    q.symbol.to_string(),
                    Contract {
                        right: occ.right,
                        strike: occ.strike,
                        expiry_time,
                        style: ExerciseStyle::for_root(&occ.root),
                        quote,
                    },
                );
            }
        }
        self.fill_orders(&q.underlying, &q.symbol, t, quote);
        self.check_marks(&q.underlying, &q.symbol, t);
    }

    /// Fills the legs on `symbol` of every order placed before `t`.
    fn fill_orders(&mut self, underlying: &str, symbol: &str, t: i64, quote: Quote) {
        let (slip, fill_at) = (
            self.cfg.slippage_per_contract / MULTIPLIER,
            self.cfg.fill_at,
        );
        let mut done = Vec::new();
        for (i, p) in self.positions.iter_mut().enumerate() {
            if p.phase == Phase::Open || p.order_time >= t || p.candidate.underlying != underlying {
                continue;
            }
            let entering = p.phase == Phase::Entering;
            for leg in p.legs.iter_mut().filter(|l| l.symbol == symbol) {
                if leg.fill.is_none() {
                    let buying = (leg.qty > 0) == entering;
                    leg.fill = Some(fill_price(quote, buying, fill_at, slip));
                }
            }
            if p.legs.iter().all(|l| l.fill.is_some()) {
                done.push(i);
            }
        }
        for i in done.into_iter().rev() {
            let net: f64 = self.positions[i]
                .legs
                .iter()
                .map(|l| l.qty as f64 * l.fill.unwrap_or(0.0))
                .sum();
            if self.positions[i].phase == Phase::Entering {
                let commission = self.commission(&self.positions[i]);
                let p = &mut self.positions[i];
                self.cash -= net * MULTIPLIER * p.contracts as f64 + commission;
                p.reserved = 0.0;
                p.phase = Phase::Open;
                p.entry_time = t;
                p.entry_price = net;
                for l in &mut p.legs {
                    l.fill = None;
                }
            } else {
                let p = self.positions.remove(i);
                let commission = self.commission(&p);
                self.close(p, t, net, commission, "");
            }
        }
    }

    /// Marks every open position holding `symbol`, and places its exit when take-profit or
    /// stop-loss is reached.
    fn check_marks(&mut self, underlying: &str, symbol: &str, t: i64) {
        let Some(chain) = self.chains.get(underlying) else {
            return;
        };
        for p in &mut self.positions {
            if p.phase != Phase::Open || !p.legs.iter().any(|l| l.symbol == symbol) {
                continue;
            }
            let Some(value) = mark(chain, &p.legs) else {
                continue;
            };
            let reason = if self.cfg.take_profit > 0.0
                && value >= p.entry_price * (1.0 + self.cfg.take_profit)
            {
                "take-profit"
            } else if self.cfg.stop_loss > 0.0
                && value <= p.entry_price * (1.0 - self.cfg.stop_loss)
            {
                "stop-loss"
            } else {
                continue;
            };
            p.phase = Phase::Exiting;
            p.order_time = t;
            p.exit_reason = reason;
        }
    }

    fn commission(&self, p: &Position) -> f64 {
        self.cfg.commission_per_contract * p.legs.len() as f64 * p.contracts as f64
    }

    /// Books the exit of `p` at `price` per share (net), with `commission` in $.
    fn close(&mut self, p: Position, t: i64, price: f64, commission: f64, reason: &'static str) {
        let contracts = p.contracts as f64;
        self.cash += price * MULTIPLIER * contracts - commission;
        let entry_commission = self.commission(&p);
        let cost = p.entry_price * MULTIPLIER * contracts + entry_commission;
        let pnl = (price - p.entry_price) * MULTIPLIER * contracts - entry_commission - commission;
        let legs = p
            .legs
            .iter()
            .map(|l| format!("{:+} {}", l.qty, l.symbol))
            .collect::<Vec<_>>()
            .join(";");
        self.out.trades.push(Trade {
            id: p.id,
            signal_id: p.candidate.signal_id.clone(),
            underlying: p.candidate.underlying.clone(),
            direction: p.candidate.direction.clone(),
            structure: p.structure.to_string(),
            legs,
            entry_time: p.entry_time,
            entry_price: p.entry_price,
            contracts: p.contracts,
            exit_time: t,
            exit_price: price,
            exit_reason: if reason.is_empty() {
                p.exit_reason
            } else {
                reason
            }
            .to_string(),
            pnl,
            ret: if cost.abs() > 0.0 { pnl / cost } else { 0.0 },
            score: p.candidate.score,
            probability: p.candidate.probability,
            hold_days: (t - p.entry_time) as f64 / MICROS_PER_DAY,
        });
        let e = self.equity();
        self.out.equity.push((t, e));
    }

    /// Cash plus every open position marked at its closing side (bid of long legs, ask of short
    /// ones); cash set aside for entries in flight counts as cash.
    fn equity(&self) -> f64 {
        let marks: f64 = self
            .positions
            .iter()
            .filter(|p| p.phase != Phase::Entering)
            .map(|p| {
                let chain = self.chains.get(&p.candidate.underlying);
                let value = chain
                    .and_then(|c| mark(c, &p.legs))
                    .unwrap_or(p.entry_price);
                value * MULTIPLIER * p.contracts as f64
            })
            .sum();
        self.cash + marks
    }

    /// Turns a candidate into an entry order, or says why not.
    fn enter(&mut self, c: Candidate) -> Result<(), &'static str> {
        let cfg = &self.cfg;
        if c.score < cfg.min_score {
            return Err("score below min-score");
        }
        if !cfg.directions.contains(&c.direction) {
            return Err("direction not traded");
        }
        if !cfg.require_factors.iter().all(|f| c.factors.contains(f)) {
            return Err("a required factor did not vote");
        }
        if cfg.exclude_factors.iter().any(|f| c.factors.contains(f)) {
            return Err("an excluded factor voted");
        }
        if self.positions.len() >= cfg.max_positions {
            return Err("max-positions reached");
        }
        let spot = *self
            .spots
            .get(&c.underlying)
            .ok_or("no underlying price yet")?;
        let chain = self
            .chains
            .get(&c.underlying)
            .ok_or("no option quotes yet")?;
        let min_expiry = c.time as f64 + cfg.min_days_to_expiry * MICROS_PER_DAY;
        let expiry = chain
            .values()
            .map(|k| k.expiry_time)
            .filter(|e| *e as f64 >= min_expiry)
            .min()
            .ok_or("no expiry far enough out")?;
        let years = (expiry - c.time) as f64 / MICROS_PER_YEAR;
        let in_expiry = |right: Right| {
            chain
                .iter()
                .filter(move |(_, k)| k.expiry_time == expiry && k.right == right)
        };
        let delta = |k: &Contract| -> Option<f64> {
            let mid = 0.5 * (k.quote.bid + k.quote.ask);
            let vol = implied_vol_for(k.style, k.right, spot, k.strike, years, self.rate, 0.0, mid)
                .ok()?;
            let g = streaming_greeks(k.style, k.right, spot, k.strike, years, self.rate, 0.0, vol);
            g.delta.is_finite().then_some(g.delta.abs())
        };
        // Nearest to the target |delta|; ties to the lower strike (the chain's symbol order).
        let nearest = |right: Right, target: f64, beyond: Option<f64>| {
            let mut best: Option<(f64, &String, &Contract)> = None;
            for (s, k) in in_expiry(right) {
                let further_otm = match (beyond, right) {
                    (None, _) => true,
                    (Some(b), Right::Call) => k.strike > b,
                    (Some(b), Right::Put) => k.strike < b,
                };
                if !further_otm {
                    continue;
                }
                if let Some(d) = delta(k) {
                    let gap = (d - target).abs();
                    if best.is_none_or(|(g, _, _)| gap < g) {
                        best = Some((gap, s, k));
                    }
                }
            }
            best.map(|(_, s, k)| (s.clone(), k.clone()))
        };
        let leg = |(s, k): (String, Contract), qty: i32| Leg {
            symbol: s,
            qty,
            right: k.right,
            strike: k.strike,
            fill: None,
        };
        let (structure, legs) = match c.direction.as_str() {
            direction::VOLATILITY => {
                let mut best: Option<(f64, String, String)> = None;
                for (s, k) in in_expiry(Right::Call) {
                    let put = in_expiry(Right::Put).find(|(_, p)| p.strike == k.strike);
                    if let Some((ps, _)) = put {
                        let gap = (k.strike - spot).abs();
                        if best.as_ref().is_none_or(|(g, _, _)| gap < *g) {
                            best = Some((gap, s.clone(), ps.clone()));
                        }
                    }
                }
                let (_, cs, ps) = best.ok_or("no strike quoted on both sides")?;
                let (ck, pk) = (chain[&cs].clone(), chain[&ps].clone());
                ("straddle", vec![leg((cs, ck), 1), leg((ps, pk), 1)])
            }
            d => {
                let right = if d == direction::BULLISH {
                    Right::Call
                } else if d == direction::BEARISH {
                    Right::Put
                } else {
                    return Err("direction not traded");
                };
                let long = nearest(right, cfg.target_delta, None)
                    .ok_or("no contract with a delta near target-delta")?;
                match cfg.structure {
                    Structure::Single => (
                        if right == Right::Call {
                            "long-call"
                        } else {
                            "long-put"
                        },
                        vec![leg(long, 1)],
                    ),
                    Structure::Vertical => {
                        let short = nearest(right, cfg.vertical_short_delta, Some(long.1.strike))
                            .ok_or("no further out-of-the-money leg for the vertical")?;
                        (
                            if right == Right::Call {
                                "call-vertical"
                            } else {
                                "put-vertical"
                            },
                            vec![leg(long, 1), leg(short, -1)],
                        )
                    }
                }
            }
        };
        // Cost of one contract at the quotes known now; the fill comes later, at the next quote.
        let slip = cfg.slippage_per_contract / MULTIPLIER;
        let premium: f64 = legs
            .iter()
            .map(|l| {
                l.qty as f64 * fill_price(chain[&l.symbol].quote, l.qty > 0, cfg.fill_at, slip)
            })
            .sum();
        let per_contract = premium * MULTIPLIER + cfg.commission_per_contract * legs.len() as f64;
        if per_contract <= 0.0 {
            return Err("the structure costs nothing at the quotes");
        }
        let available = self.cash - self.positions.iter().map(|p| p.reserved).sum::<f64>();
        let budget = self.equity() * cfg.position_fraction;
        let mut contracts = (budget / per_contract).floor() as i64;
        if contracts < 1 {
            contracts = 1;
        }
        contracts = contracts.min((available / per_contract).floor() as i64);
        if contracts < 1 {
            return Err("not enough cash for one contract");
        }
        let id = self.next_id;
        self.next_id += 1;
        self.positions.push(Position {
            id,
            structure,
            legs,
            contracts,
            phase: Phase::Entering,
            order_time: c.time,
            reserved: per_contract * contracts as f64,
            expiry_time: expiry,
            entry_time: 0,
            entry_price: 0.0,
            exit_reason: "",
            candidate: c,
        });
        Ok(())
    }

    /// Ends the pass: positions still open (or exiting) close at the last quotes of their legs
    /// (long legs at the bid, short legs at the ask), reason `end-of-tape`; entries that never
    /// filled are dropped.
    pub fn finish(mut self) -> Outcome {
        if let Some(t) = self.last_time {
            while let Some(c) = self.candidates.pop_front() {
                let reason = if c.time < t {
                    "unfilled at the end of the tape"
                } else {
                    "after the end of the tape"
                };
                *self.out.skipped.entry(reason.into()).or_default() += 1;
            }
            let slip = self.cfg.slippage_per_contract / MULTIPLIER;
            for p in std::mem::take(&mut self.positions) {
                if p.phase == Phase::Entering {
                    *self
                        .out
                        .skipped
                        .entry("unfilled at the end of the tape".into())
                        .or_default() += 1;
                    continue;
                }
                let chain = &self.chains[&p.candidate.underlying];
                let price: f64 = p
                    .legs
                    .iter()
                    .map(|l| {
                        let q = chain[&l.symbol].quote;
                        l.qty as f64 * fill_price(q, l.qty < 0, self.cfg.fill_at, slip)
                    })
                    .sum();
                let commission = self.commission(&p);
                self.close(p, t, price, commission, "end-of-tape");
            }
            let e = self.equity();
            self.out.equity.push((t, e));
        } else {
            let n = self.candidates.len() as u64;
            if n > 0 {
                *self.out.skipped.entry("empty tape".into()).or_default() += n;
            }
        }
        self.out.end_equity = self.cash;
        self.out.span = self.first_time.zip(self.last_time);
        self.out
    }
}

/// Per-share price of one fill: buying pays the ask (or mid) plus slippage, selling gets the bid
/// (or mid) minus slippage, never below zero.
fn fill_price(q: Quote, buying: bool, fill_at: FillAt, slip: f64) -> f64 {
    let (bid, ask) = match fill_at {
        FillAt::BidAsk => (q.bid, q.ask),
        FillAt::Mid => {
            let m = 0.5 * (q.bid + q.ask);
            (m, m)
        }
    };
    if buying {
        ask + slip
    } else {
        (bid - slip).max(0.0)
    }
}

/// Net value per share of `legs` if closed at the latest quotes: bid of long legs, ask of short.
fn mark(chain: &BTreeMap<String, Contract>, legs: &[Leg]) -> Option<f64> {
    legs.iter()
        .map(|l| {
            let q = chain.get(&l.symbol)?.quote;
            Some(l.qty as f64 * if l.qty > 0 { q.bid } else { q.ask })
        })
        .sum()
}
