//! Signal hit rates by score bucket on `/metrics`, labelled while the session runs: a signal is
//! resolved once its underlying ticks past the signal's event time plus the horizon, and counts
//! as a hit when the underlying moved its way by more than the threshold (bullish: up, bearish:
//! down, volatility: either way) — the rule `optionflow calibrate` labels tapes with.
//!
//! The spot at the signal is the one the signal carries (its window's last spot); the forward
//! spot is the first tick at or after the horizon. Metrics:
//! `optionflow_signal_outcomes_total{bucket, result}` (result `hit` | `miss`) and
//! `optionflow_signal_hit_rate{bucket}`, with 10-point buckets (`80-90`, `90-100`).

use crate::runtime::stage::StageObserver;
use optionflow_operators::explain::outcomes::is_hit;
use optionflow_schemas::{time::MICROS_PER_SECOND, GreeksEvent, RejectedQuote, Signal};
use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

/// A signal waiting for its horizon.
#[derive(Debug, Clone)]
struct Pending {
    due: i64,
    direction: String,
    composite: f64,
    spot: f64,
}

#[derive(Debug, Default)]
struct State {
    /// Per underlying, in event-time order (consensus emits in order).
    pending: BTreeMap<String, VecDeque<Pending>>,
    /// Per bucket: (hits, resolved).
    buckets: BTreeMap<u8, (u64, u64)>,
}

/// The labeller, fed by the greeks stage's ticks and the consensus stage's signals.
#[derive(Debug)]
pub struct HitRates {
    horizon: i64,
    threshold: f64,
    state: Mutex<State>,
}

/// The 10-point bucket of a composite (0–9 … 90–100).
fn bucket(composite: f64) -> u8 {
    ((composite / 10.0).floor().clamp(0.0, 9.0)) as u8
}

fn bucket_label(b: u8) -> String {
    format!("{}-{}", b as u32 * 10, b as u32 * 10 + 10)
}

impl HitRates {
    /// Labels over `horizon_secs` of event time with a move `threshold` (0.005 = 0.5%).
    pub fn new(horizon_secs: u64, threshold: f64) -> Self {
        Self {
            horizon: horizon_secs as i64 * MICROS_PER_SECOND,
            threshold,
            state: Mutex::default(),
        }
    }

    /// (hits, resolved) per bucket label, for tests and status.
    pub fn counts(&self) -> BTreeMap<String, (u64, u64)> {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.buckets
            .iter()
            .map(|(b, c)| (bucket_label(*b), *c))
            .collect()
    }

    fn on_signals(&self, signals: &[Signal]) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for sig in signals.iter().filter(|s| s.spot > 0.0) {
            s.pending
                .entry(sig.underlying.clone())
                .or_default()
                .push_back(Pending {
                    due: sig.event_time + self.horizon,
                    direction: sig.direction.clone(),
                    composite: sig.composite,
                    spot: sig.spot,
                });
        }
    }

    fn on_tick(&self, s: &mut State, underlying: &str, t: i64, price: f64) {
        let Some(queue) = s.pending.get_mut(underlying) else {
            return;
        };
        let mut resolved = Vec::new();
        while queue.front().is_some_and(|p| p.due <= t) {
            resolved.extend(queue.pop_front());
        }
        for p in resolved {
            let hit = is_hit(&p.direction, price / p.spot - 1.0, self.threshold);
            let b = bucket(p.composite);
            let counts = s.buckets.entry(b).or_default();
            counts.0 += u64::from(hit);
            counts.1 += 1;
            let label = bucket_label(b);
            let result = if hit { "hit" } else { "miss" };
            metrics::counter!("optionflow_signal_outcomes_total", "bucket" => label.clone(), "result" => result)
                .increment(1);
            metrics::gauge!("optionflow_signal_hit_rate", "bucket" => label)
                .set(counts.0 as f64 / counts.1 as f64);
        }
    }
}

impl StageObserver for HitRates {
    fn observe(&self, stage: &'static str, events: &dyn Any, _rejected: &[RejectedQuote]) {
        match stage {
            "consensus" => {
                if let Some(signals) = events.downcast_ref::<Vec<Signal>>() {
                    self.on_signals(signals);
                }
            }
            "greeks" => {
                let Some(events) = events.downcast_ref::<Vec<GreeksEvent>>() else {
                    return;
                };
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if s.pending.is_empty() {
                    return;
                }
                for ev in events {
                    if let GreeksEvent::Tick(t) = ev {
                        self.on_tick(&mut s, &t.underlying, t.event_time, t.price);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use optionflow_schemas::UnderlyingTick;

    fn signal(u: &str, dir: &str, composite: f64, t: i64, spot: f64) -> Signal {
        Signal {
            event_id: format!("{u}-{t}").into(),
            event_time: t,
            underlying: u.into(),
            window_end: t,
            sector: "Retail".into(),
            direction: dir.into(),
            composite,
            agreeing: 3,
            spot,
            factors: vec![],
            probability: composite / 100.0,
            calibrated: false,
            contracts: vec![],
            marks: Default::default(),
        }
    }

    fn tick(u: &str, t: i64, price: f64) -> GreeksEvent {
        GreeksEvent::Tick(UnderlyingTick {
            event_id: format!("tick-{u}-{t}").into(),
            event_time: t,
            underlying: u.into(),
            source: "test".into(),
            price,
            volume: 0,
            sector: None,
        })
    }

    #[test]
    fn signals_resolve_at_their_horizon_by_direction_and_bucket() {
        let h = HitRates::new(60, 0.005);
        let s = MICROS_PER_SECOND;
        h.observe(
            "consensus",
            &vec![
                signal("GME", "bullish", 92.0, 0, 100.0),
                signal("AMC", "bearish", 85.0, 0, 10.0),
                signal("SPY", "volatility", 81.0, 0, 400.0),
            ],
            &[],
        );
        // Before the horizon nothing resolves, whatever the price.
        h.observe("greeks", &vec![tick("GME", 59 * s, 200.0)], &[]);
        assert!(h.counts().is_empty());
        h.observe(
            "greeks",
            &vec![
                tick("GME", 60 * s, 101.0), // +1%: a bullish hit
                tick("AMC", 61 * s, 10.02), // +0.2%: a bearish miss
                tick("SPY", 62 * s, 401.0), // +0.25%: inside the threshold, a miss
                tick("GME", 120 * s, 50.0), // already resolved: no double count
            ],
            &[],
        );
        let counts = h.counts();
        assert_eq!(counts["90-100"], (1, 1));
        assert_eq!(counts["80-90"], (0, 2));
    }
}
