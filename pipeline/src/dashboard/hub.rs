//! What the dashboard knows: the recent signals with everything that happened to each (its
//! explanation, risk decision, alerts and suppressions), the latest greeks of every contract per
//! underlying, and the pipeline's counters. Fed by the stages as they emit ([`StageObserver`]);
//! read by the HTTP handlers; every change is announced on a broadcast feed for WebSockets.

use crate::runtime::stage::StageObserver;
use crate::telemetry::Metrics;
use optionflow_schemas::{
    time::MICROS_PER_YEAR, Alert, CompactString, ContractGreeks, Explanation, GreeksEvent,
    IdString, RejectedQuote, RiskDecision, Signal,
};
use serde::Serialize;
use std::any::Any;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// Signals kept (the oldest are dropped first): a trading day of a busy universe.
const MAX_CARDS: usize = 2000;

/// Everything known about one signal.
#[derive(Debug, Clone, Serialize)]
pub struct Card {
    /// The signal.
    pub signal: Signal,
    /// Its narrative.
    pub explanation: Option<Explanation>,
    /// The risk gate's decision.
    pub decision: Option<RiskDecision>,
    /// Alerts that carried it (one per channel).
    pub alerts: Vec<Alert>,
    /// Why dispatch held it back on a route, if it did.
    pub suppressed: Vec<RejectedQuote>,
}

/// The latest state of one contract, as the chain view shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChainRow {
    /// Expiry date.
    pub expiry: CompactString,
    /// Call or put.
    pub is_call: bool,
    /// Strike.
    pub strike: f64,
    /// Years to expiry at the last quote.
    pub years: f64,
    /// Event time of the last quote.
    pub at: i64,
    /// Bid.
    pub bid: f64,
    /// Ask.
    pub ask: f64,
    /// Implied volatility.
    pub iv: f64,
    /// Delta.
    pub delta: f64,
    /// Gamma.
    pub gamma: f64,
    /// Vega per 1.00 of vol.
    pub vega: f64,
    /// Theta per year.
    pub theta: f64,
    /// Open interest.
    pub open_interest: i64,
    /// Day volume.
    pub volume: i64,
    /// Rate the greeks used.
    pub rate: f64,
    /// Dividend yield the greeks used.
    pub dividend_yield: f64,
}

impl ChainRow {
    fn update(&mut self, g: &ContractGreeks) {
        if self.expiry != g.expiry {
            self.expiry.clone_from(&g.expiry);
        }
        self.is_call = g.right == "call";
        self.strike = g.strike;
        self.years = g.years_to_expiry;
        self.at = g.event_time;
        self.bid = g.bid;
        self.ask = g.ask;
        self.iv = g.iv;
        self.delta = g.delta;
        self.gamma = g.gamma;
        self.vega = g.vega;
        self.theta = g.theta;
        self.open_interest = g.open_interest;
        self.volume = g.volume;
        self.rate = g.rate;
        self.dividend_yield = g.dividend_yield;
    }

    /// Whether the contract had expired by event time `now`.
    pub fn expired_at(&self, now: i64) -> bool {
        self.at as f64 + self.years * MICROS_PER_YEAR <= now as f64
    }
}

/// One underlying's chain.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    /// Last underlying price seen.
    pub spot: f64,
    /// Sector, when known.
    pub sector: Option<CompactString>,
    /// Event time of the last update.
    pub updated: i64,
    /// Contracts by OCC symbol. Hashed, not ordered: every greeks event of a session looks its
    /// contract up here (an ordered map's string comparisons were ~2% of a replay), and the
    /// views sort what they show ([`super::chain::view`]).
    pub contracts: HashMap<CompactString, ChainRow>,
}

#[derive(Debug, Default)]
struct State {
    cards: BTreeMap<IdString, Card>,
    /// Signal ids, oldest first.
    order: VecDeque<IdString>,
    /// Decision id → signal id (suppressions name the decision).
    by_decision: BTreeMap<IdString, IdString>,
    chains: BTreeMap<String, Chain>,
}

/// The dashboard's shared state.
#[derive(Debug)]
pub struct Hub {
    state: Mutex<State>,
    feed: broadcast::Sender<String>,
    metrics: Mutex<Option<Arc<Metrics>>>,
    data_dir: Mutex<Option<PathBuf>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            feed: broadcast::channel(1024).0,
            metrics: Mutex::default(),
            data_dir: Mutex::default(),
        }
    }
}

/// A lock that survives a panicked holder (the state is plain data, always consistent between
/// statements).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// A new, empty hub.
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub::default())
    }

    /// Called by the runtime when a session starts: its counters and directory.
    pub fn attach(&self, metrics: Arc<Metrics>, data_dir: PathBuf) {
        *lock(&self.metrics) = Some(metrics);
        *lock(&self.data_dir) = Some(data_dir);
    }

    /// The session's counters, once attached.
    pub fn metrics(&self) -> Option<Arc<Metrics>> {
        lock(&self.metrics).clone()
    }

    /// The session's data directory, once attached.
    pub fn data_dir(&self) -> Option<PathBuf> {
        lock(&self.data_dir).clone()
    }

    /// Messages for WebSocket clients (JSON text).
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.feed.subscribe()
    }

    fn announce(&self, kind: &str, signal_id: &str, summary: Option<serde_json::Value>) {
        // No receivers is fine: nobody is watching.
        let _ = self.feed.send(
            serde_json::json!({"type": kind, "signal_id": signal_id, "signal": summary})
                .to_string(),
        );
    }

    /// Cards, newest first, passing `keep`.
    pub fn cards(&self, keep: impl Fn(&Card) -> bool, limit: usize) -> Vec<Card> {
        let s = lock(&self.state);
        s.order
            .iter()
            .rev()
            .filter_map(|id| s.cards.get(id))
            .filter(|c| keep(c))
            .take(limit)
            .cloned()
            .collect()
    }

    /// One card.
    pub fn card(&self, signal_id: &str) -> Option<Card> {
        lock(&self.state).cards.get(signal_id).cloned()
    }

    /// A copy of one underlying's chain.
    pub fn chain(&self, underlying: &str) -> Option<Chain> {
        lock(&self.state).chains.get(underlying).cloned()
    }

    /// Every underlying with its sector, spot, contract count and signal count.
    pub fn underlyings(&self) -> Vec<(String, Option<String>, f64, usize, usize)> {
        let s = lock(&self.state);
        let mut signals: BTreeMap<&str, usize> = BTreeMap::new();
        for c in s.cards.values() {
            *signals.entry(c.signal.underlying.as_str()).or_default() += 1;
        }
        s.chains
            .iter()
            .map(|(u, c)| {
                (
                    u.clone(),
                    c.sector.as_ref().map(ToString::to_string),
                    c.spot,
                    c.contracts.len(),
                    signals.get(u.as_str()).copied().unwrap_or(0),
                )
            })
            .collect()
    }

    /// Loads what a resumed session had already written (the first `kept(file)` bytes of each
    /// output, the part its checkpoint covers, which the run will not write again), so the page
    /// shows the session's earlier signals. Unreadable lines are skipped: the files are the
    /// session's own, and the page is a view, not a record.
    pub fn preload(&self, dir: &std::path::Path, kept: &dyn Fn(&str) -> u64) {
        use crate::runtime::embedded::files;
        fn read<T: serde::de::DeserializeOwned>(
            dir: &std::path::Path,
            name: &str,
            kept: &dyn Fn(&str) -> u64,
        ) -> Vec<T> {
            let Ok(bytes) = std::fs::read(dir.join(name)) else {
                return Vec::new();
            };
            let upto = (kept(name) as usize).min(bytes.len());
            bytes[..upto]
                .split(|b| *b == b'\n')
                .filter_map(|l| serde_json::from_slice(l).ok())
                .collect()
        }
        self.on_signals(&read::<Signal>(dir, files::SIGNALS, kept));
        self.on_explanations(&read::<Explanation>(dir, files::EXPLANATIONS, kept));
        self.on_decisions(&read::<RiskDecision>(dir, files::DECISIONS, kept));
        let suppressed = read::<RejectedQuote>(dir, files::SUPPRESSED, kept);
        self.on_alerts(&read::<Alert>(dir, files::ALERTS, kept), &suppressed);
    }

    fn on_greeks(&self, events: &[GreeksEvent]) {
        let mut s = lock(&self.state);
        for ev in events {
            match ev {
                GreeksEvent::Greeks(g) => {
                    let chain = chain_of(&mut s.chains, &g.underlying);
                    chain.spot = g.spot;
                    chain.updated = g.event_time;
                    if chain.sector.is_none() {
                        chain.sector.clone_from(&g.sector);
                    }
                    // Update in place: no allocation per quote once the contract is known.
                    match chain.contracts.get_mut(&g.symbol) {
                        Some(row) => row.update(g),
                        None => {
                            let mut row = ChainRow::default();
                            row.update(g);
                            chain.contracts.insert(g.symbol.clone(), row);
                        }
                    }
                }
                GreeksEvent::Tick(t) => {
                    let chain = chain_of(&mut s.chains, &t.underlying);
                    chain.spot = t.price;
                    chain.updated = t.event_time;
                    if chain.sector.is_none() {
                        chain.sector.clone_from(&t.sector);
                    }
                }
            }
        }
    }

    fn on_signals(&self, signals: &[Signal]) {
        let mut added = Vec::new();
        {
            let mut s = lock(&self.state);
            for sig in signals {
                if s.cards.contains_key(&sig.event_id) {
                    continue;
                }
                s.order.push_back(sig.event_id.clone());
                s.cards.insert(
                    sig.event_id.clone(),
                    Card {
                        signal: sig.clone(),
                        explanation: None,
                        decision: None,
                        alerts: Vec::new(),
                        suppressed: Vec::new(),
                    },
                );
                while s.order.len() > MAX_CARDS {
                    if let Some(old) = s.order.pop_front() {
                        if let Some(card) = s.cards.remove(&old) {
                            if let Some(d) = card.decision {
                                s.by_decision.remove(&d.event_id);
                            }
                        }
                    }
                }
                if let Some(card) = s.cards.get(&sig.event_id) {
                    added.push((sig.event_id.clone(), super::api::summary(card)));
                }
            }
        }
        // Announced after the lock is released: a slow subscriber never holds up a stage.
        for (id, summary) in added {
            self.announce("signal", &id, Some(summary));
        }
    }

    fn update_card(&self, signal_id: &str, f: impl FnOnce(&mut Card)) {
        let summary = {
            let mut s = lock(&self.state);
            let Some(card) = s.cards.get_mut(signal_id) else {
                return;
            };
            f(card);
            super::api::summary(card)
        };
        self.announce("update", signal_id, Some(summary));
    }

    fn on_explanations(&self, ex: &[Explanation]) {
        for e in ex {
            self.update_card(&e.signal_id, |c| c.explanation = Some(e.clone()));
        }
    }

    fn on_decisions(&self, decisions: &[RiskDecision]) {
        for d in decisions {
            lock(&self.state)
                .by_decision
                .insert(d.event_id.clone(), d.signal_id.clone());
            self.update_card(&d.signal_id, |c| c.decision = Some(d.clone()));
        }
    }

    fn on_alerts(&self, alerts: &[Alert], suppressed: &[RejectedQuote]) {
        for a in alerts {
            let ids = if a.signal_ids.is_empty() {
                vec![a.signal_id.clone()]
            } else {
                a.signal_ids.clone()
            };
            for id in ids {
                self.update_card(&id, |c| c.alerts.push(a.clone()));
            }
        }
        for r in suppressed {
            let signal = lock(&self.state)
                .by_decision
                .get(&r.input_event_id)
                .cloned();
            if let Some(id) = signal {
                self.update_card(&id, |c| c.suppressed.push(r.clone()));
            }
        }
    }
}

fn chain_of<'a>(chains: &'a mut BTreeMap<String, Chain>, underlying: &str) -> &'a mut Chain {
    if !chains.contains_key(underlying) {
        chains.insert(underlying.to_string(), Chain::default());
    }
    chains.get_mut(underlying).expect("just inserted")
}

impl StageObserver for Hub {
    fn observe(&self, stage: &'static str, events: &dyn Any, rejected: &[RejectedQuote]) {
        match stage {
            "greeks" => {
                if let Some(ev) = events.downcast_ref::<Vec<GreeksEvent>>() {
                    self.on_greeks(ev);
                }
            }
            "consensus" => {
                if let Some(ev) = events.downcast_ref::<Vec<Signal>>() {
                    self.on_signals(ev);
                }
            }
            "explain" => {
                if let Some(ev) = events.downcast_ref::<Vec<Explanation>>() {
                    self.on_explanations(ev);
                }
            }
            "risk-gate" => {
                if let Some(ev) = events.downcast_ref::<Vec<RiskDecision>>() {
                    self.on_decisions(ev);
                }
            }
            "dispatch" => {
                if let Some(ev) = events.downcast_ref::<Vec<Alert>>() {
                    self.on_alerts(ev, rejected);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::embedded::files;

    fn signal(id: &str) -> Signal {
        serde_json::from_value(serde_json::json!({
            "event_id": id, "event_time": 1, "underlying": "GME", "window_end": 1,
            "sector": "Retail", "direction": "bullish", "composite": 90.0, "agreeing": 3,
            "spot": 20.0, "factors": [], "probability": 0.9, "calibrated": false
        }))
        .unwrap()
    }

    #[test]
    fn a_resumed_session_preloads_only_what_its_checkpoint_covers() {
        let dir = tempfile::tempdir().unwrap();
        let lines: String = ["s1", "s2", "s3"]
            .iter()
            .map(|id| serde_json::to_string(&signal(id)).unwrap() + "\n")
            .collect();
        std::fs::write(dir.path().join(files::SIGNALS), &lines).unwrap();
        // The checkpoint covers the first two lines; the third will be written again.
        let two = lines
            .lines()
            .take(2)
            .map(|l| l.len() as u64 + 1)
            .sum::<u64>();
        let hub = Hub::new();
        hub.preload(dir.path(), &|name| {
            if name == files::SIGNALS {
                two
            } else {
                0
            }
        });
        let ids: Vec<IdString> = hub
            .cards(|_| true, 10)
            .into_iter()
            .map(|c| c.signal.event_id)
            .collect();
        assert_eq!(
            ids,
            ["s2", "s1"],
            "newest first, nothing past the checkpoint"
        );
    }
}
