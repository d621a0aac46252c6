//! Outcome labelling: what happened after each signal, and the calibration fitted from it.
//!
//! For every signal and horizon `h`, the underlying's spot at the signal (the last tick at or
//! before its event time) and at `t + h` (the last tick at or before `t + h`) give the forward
//! return. A signal is a hit when the move agrees with its direction by more than `threshold`
//! (bullish: up, bearish: down, volatility: either way). Horizons the tape does not reach are
//! left unlabelled rather than guessed. One streaming pass over the tape; memory holds the
//! signals, not the tape.

use optionflow_operators::calibration::Calibration;
use optionflow_pipeline::tape::{TapeError, TapeReader};
use optionflow_schemas::{RawEvent, Signal};
use std::collections::BTreeMap;
use std::path::Path;

pub use optionflow_operators::explain::outcomes::{is_hit, Outcome};
use optionflow_operators::explain::trade::{self, Trade};
use optionflow_operators::pricing::{implied_vol_for, Right};

/// Labels `signals` over `horizons_secs` from the tape at `tape`: the underlying's forward
/// return from its ticks, and, for the trade explain suggests from the signal's chain
/// candidates, the option P&L (bought at the ask at the signal, sold at the bid of each leg's
/// last quote at or before the horizon) and the first leg's IV change.
pub fn label(
    tape: &Path,
    signals: &[Signal],
    horizons_secs: &[i64],
    threshold: f64,
) -> Result<Vec<Outcome>, TapeError> {
    let horizon_micros = |h: i64| h.saturating_mul(1_000_000);
    // (time wanted, index into `wanted`): spots of underlyings, resolved as the tape passes
    // that time; likewise the quotes of the suggested trades' legs.
    let mut spots = Lookups::default();
    let mut quotes = Lookups::default();
    let trades: Vec<Option<Trade>> = signals
        .iter()
        .map(|s| trade::select(&s.direction, s.spot, &s.contracts))
        .collect();
    for (s, tr) in signals.iter().zip(&trades) {
        spots.want(&s.underlying, s.event_time);
        for &h in horizons_secs {
            let t = s.event_time.saturating_add(horizon_micros(h));
            spots.want(&s.underlying, t);
            for leg in tr.iter().flat_map(|tr| &tr.legs) {
                quotes.want(&symbol_key(&leg.symbol), t);
            }
        }
    }
    let mut last_spot: BTreeMap<String, f64> = BTreeMap::new();
    let mut last_quote: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let (mut end_tick, mut end) = (i64::MIN, i64::MIN);
    for ev in TapeReader::open(tape)? {
        let ev = ev?;
        let t = ev.event_time();
        // Every time strictly before this event is now final.
        quotes.resolve_before(t, &last_quote);
        match ev {
            RawEvent::Tick(tick) => {
                spots.resolve_before(tick.event_time, &last_spot);
                last_spot.insert(tick.underlying.to_string(), tick.price);
                end_tick = end_tick.max(tick.event_time);
            }
            RawEvent::Quote(q) => {
                let key = symbol_key(&q.symbol);
                if quotes.symbols.contains(&key) {
                    last_quote.insert(key, (q.bid, q.ask));
                }
            }
        }
        end = end.max(t);
    }
    // Times at or before the tape's end are resolved by what it holds; later ones are not.
    spots.resolve_until(end_tick, &last_spot);
    quotes.resolve_until(end, &last_quote);

    let mut out = Vec::new();
    let (mut k, mut q) = (0, 0);
    for (s, tr) in signals.iter().zip(&trades) {
        let spot = spots.resolved[k];
        k += 1;
        for &h in horizons_secs {
            let forward = spots.resolved[k];
            k += 1;
            let ret = spot
                .zip(forward)
                .filter(|(a, _)| *a > 0.0)
                .map(|(a, b)| b / a - 1.0);
            let exits: Vec<Option<(f64, f64)>> = tr
                .iter()
                .flat_map(|tr| &tr.legs)
                .map(|_| {
                    q += 1;
                    quotes.resolved[q - 1]
                })
                .collect();
            let option = tr.as_ref().map(|tr| option_labels(tr, &exits, forward, h));
            out.push(Outcome {
                signal_id: s.event_id.to_string(),
                underlying: s.underlying.clone(),
                direction: s.direction.clone(),
                composite: s.composite,
                event_time: s.event_time,
                horizon_secs: h,
                spot,
                forward_spot: forward,
                underlying_return: ret,
                hit: ret.map(|r| is_hit(&s.direction, r, threshold)),
                structure: tr.as_ref().map(|tr| tr.structure.to_string()),
                option_pnl: option.and_then(|o| o.0),
                option_return: option.and_then(|o| o.1),
                iv_change: option.and_then(|o| o.2),
            });
        }
    }
    Ok(out)
}

/// Values wanted at points in time, each the last one seen strictly before that time (or, for
/// times at or before the tape's end once it is read, the last one seen).
struct Lookups<V> {
    /// (key, time) per lookup, in the order asked.
    wanted: Vec<(String, i64)>,
    /// Pending lookups by (time, index).
    at: BTreeMap<(i64, usize), ()>,
    /// Keys looked up.
    symbols: std::collections::BTreeSet<String>,
    resolved: Vec<Option<V>>,
}

impl<V> Default for Lookups<V> {
    fn default() -> Self {
        Self {
            wanted: Vec::new(),
            at: BTreeMap::new(),
            symbols: Default::default(),
            resolved: Vec::new(),
        }
    }
}

impl<V: Copy> Lookups<V> {
    fn want(&mut self, key: &str, t: i64) {
        self.at.insert((t, self.wanted.len()), ());
        self.wanted.push((key.to_string(), t));
        self.symbols.insert(key.to_string());
        self.resolved.push(None);
    }

    /// Resolves every lookup strictly before `t` from `last`.
    fn resolve_before(&mut self, t: i64, last: &BTreeMap<String, V>) {
        while let Some((&(when, i), ())) = self.at.first_key_value() {
            if when >= t {
                break;
            }
            self.resolved[i] = last.get(&self.wanted[i].0).copied();
            self.at.remove(&(when, i));
        }
    }

    /// Resolves the lookups at or before `end` from `last`; later ones stay unknown.
    fn resolve_until(&mut self, end: i64, last: &BTreeMap<String, V>) {
        for (&(when, i), ()) in &self.at {
            if when <= end {
                self.resolved[i] = last.get(&self.wanted[i].0).copied();
            }
        }
        self.at.clear();
    }
}

/// An OCC symbol without vendor prefix or padding, so a vendor's and normalize's spellings meet.
fn symbol_key(symbol: &str) -> String {
    symbol
        .trim_start_matches("O:")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// (P&L, return, IV change) of `tr` closed at the legs' `exits` (bid, ask) at horizon `h`
/// seconds, with the underlying at `forward`.
fn option_labels(
    tr: &Trade,
    exits: &[Option<(f64, f64)>],
    forward: Option<f64>,
    h: i64,
) -> (Option<f64>, Option<f64>, Option<f64>) {
    let proceeds: Option<f64> = exits
        .iter()
        .map(|e| e.map(|(bid, _)| bid.max(0.0) * 100.0))
        .sum();
    let pnl = proceeds.map(|p| p - tr.cost);
    let ret = pnl.filter(|_| tr.cost > 0.0).map(|p| p / tr.cost);
    let leg = &tr.legs[0];
    let iv_change = exits
        .first()
        .copied()
        .flatten()
        .zip(forward)
        .and_then(|((bid, ask), spot)| {
            let years = leg.years_to_expiry - h as f64 / (365.0 * 86_400.0);
            let right = Right::parse(&leg.right)?;
            let mid = 0.5 * (bid + ask);
            (bid > 0.0 && ask >= bid && years > 0.0).then_some(())?;
            implied_vol_for(
                trade::style_of(leg),
                right,
                spot,
                leg.strike,
                years,
                leg.rate,
                leg.dividend_yield,
                mid,
            )
            .ok()
            .map(|iv| iv - leg.iv)
        });
    (pnl, ret, iv_change)
}

/// Fits the consensus calibration (isotonic) to the labelled outcomes of one horizon.
pub fn fit(outcomes: &[Outcome], horizon_secs: i64) -> Result<Calibration, String> {
    let points: Vec<(f64, bool)> = outcomes
        .iter()
        .filter(|o| o.horizon_secs == horizon_secs)
        .filter_map(|o| o.hit.map(|h| (o.composite, h)))
        .collect();
    Calibration::fit_isotonic(&points).map_err(|e| {
        format!("{e} (no signal reached the {horizon_secs} s horizon inside the tape)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use optionflow_pipeline::tape::TapeWriter;
    use optionflow_schemas::{direction, UnderlyingTick};

    fn tick(t: i64, price: f64) -> RawEvent {
        RawEvent::Tick(UnderlyingTick {
            event_id: format!("t{t}").into(),
            event_time: t,
            underlying: "GME".into(),
            source: "test".into(),
            price,
            volume: 0,
            sector: None,
        })
    }

    fn signal(id: &str, t: i64, dir: &str, composite: f64) -> Signal {
        Signal {
            event_id: id.into(),
            event_time: t,
            underlying: "GME".into(),
            window_end: t,
            sector: "x".into(),
            direction: dir.into(),
            composite,
            agreeing: 2,
            spot: 0.0,
            factors: vec![],
            probability: 0.5,
            calibrated: false,
            marks: Default::default(),
            contracts: vec![],
        }
    }

    const S: i64 = 1_000_000;

    fn quote(t: i64, bid: f64, ask: f64) -> RawEvent {
        RawEvent::Quote(optionflow_schemas::RawQuote {
            event_id: format!("q{t}").into(),
            event_time: t,
            underlying: "GME".into(),
            source: "test".into(),
            // The vendor's spelling; the signal's candidate is normalize's padded one.
            symbol: "O:GME210219C00100000".into(),
            bid,
            ask,
            bid_size: 1,
            ask_size: 1,
            last: None,
            volume: 0,
            open_interest: 0,
            underlying_price: None,
        })
    }

    #[test]
    fn the_suggested_trade_is_marked_at_the_bid_at_each_horizon() {
        use optionflow_operators::pricing::{bsm_price, ExerciseStyle};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.avro");
        let years = 30.0 / 365.0;
        let entry_iv = 0.5;
        let price =
            |spot: f64, vol: f64, t: f64| bsm_price(Right::Call, spot, 100.0, t, 0.04, 0.0, vol);
        // An ATM call at IV 50% bought at the ask; 60 s later spot is up and IV is 60%.
        let later = years - 60.0 / (365.0 * 86_400.0);
        let exit_mid = price(105.0, 0.6, later);
        let mut w = TapeWriter::open(&path, 0, 0, Default::default()).unwrap();
        for ev in [
            tick(0, 100.0),
            quote(
                S,
                price(100.0, entry_iv, years) - 0.05,
                price(100.0, entry_iv, years) + 0.05,
            ),
            tick(50 * S, 105.0),
            quote(55 * S, exit_mid - 0.05, exit_mid + 0.05),
            // After the horizon: must not be the exit.
            quote(61 * S, 0.01, 0.02),
            tick(200 * S, 105.0),
        ] {
            w.append(&ev).unwrap();
        }
        w.commit().unwrap();
        let entry_mid = price(100.0, entry_iv, years);
        let mut s = signal("call", 0, direction::BULLISH, 90.0);
        s.spot = 100.0;
        s.contracts = vec![optionflow_schemas::ChainContract {
            symbol: "GME   210219C00100000".into(),
            root: "GME".into(),
            expiry: "2021-02-19".into(),
            right: "call".into(),
            strike: 100.0,
            years_to_expiry: years,
            bid: entry_mid - 0.05,
            ask: entry_mid + 0.05,
            mid: entry_mid,
            iv: entry_iv,
            delta: 0.45,
            gamma: 0.05,
            vega: 11.0,
            theta: -40.0,
            volume: 10,
            open_interest: 100,
            exercise_style: ExerciseStyle::European.as_str().into(),
            rate: 0.04,
            dividend_yield: 0.0,
        }];
        let out = label(&path, &[s], &[60, 1000], 0.005).unwrap();
        let o = &out[0];
        assert_eq!(o.structure.as_deref(), Some("long call"));
        let pnl = ((exit_mid - 0.05) - (entry_mid + 0.05)) * 100.0;
        assert!((o.option_pnl.unwrap() - pnl).abs() < 1e-9, "{o:?}");
        assert!((o.option_return.unwrap() - pnl / ((entry_mid + 0.05) * 100.0)).abs() < 1e-12);
        assert!((o.iv_change.unwrap() - 0.1).abs() < 1e-6, "{o:?}");
        // 1000 s is past the tape's end: no exit, no labels.
        assert_eq!((out[1].option_pnl, out[1].iv_change), (None, None));
        assert_eq!(out[1].structure.as_deref(), Some("long call"));
    }

    #[test]
    fn forward_returns_use_the_last_spot_at_or_before_each_time_and_never_beyond_the_tape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.avro");
        let mut w = TapeWriter::open(&path, 0, 0, Default::default()).unwrap();
        // A spike one microsecond after the signal must not be its spot.
        for ev in [
            tick(0, 100.0),
            tick(10 * S, 100.0),
            tick(10 * S + 1, 500.0),
            tick(40 * S, 102.0),
            tick(70 * S, 99.0),
        ] {
            w.append(&ev).unwrap();
        }
        w.commit().unwrap();
        let signals = [
            signal("up", 10 * S, direction::BULLISH, 80.0),
            signal("down", 10 * S, direction::BEARISH, 90.0),
            signal("late", 60 * S, direction::VOLATILITY, 85.0),
        ];
        let out = label(&path, &signals, &[30], 0.01).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[0].spot,
            Some(100.0),
            "the spot at the signal, not the spike after it"
        );
        assert_eq!(out[0].forward_spot, Some(102.0));
        assert!((out[0].underlying_return.unwrap() - 0.02).abs() < 1e-12);
        assert_eq!((out[0].hit, out[1].hit), (Some(true), Some(false)));
        assert_eq!(
            out[2].forward_spot, None,
            "60 s + 30 s is past the tape's end"
        );
        assert_eq!(out[2].hit, None);
        let cal = fit(&out, 30).unwrap();
        assert!(cal.is_fitted());
        assert!(Calibration::from_json(&cal.to_json()).is_ok());
        assert!(fit(&out, 999).is_err());

        // The JSON lines `calibrate --outcomes` writes are what `[explain] outcomes-file` reads.
        let lines: String = out
            .iter()
            .map(|o| serde_json::to_string(o).unwrap() + "\n")
            .collect();
        let h =
            optionflow_operators::explain::outcomes::OutcomeHistory::from_jsonl(&lines).unwrap();
        assert_eq!(h.horizon_secs, Some(30));
        assert_eq!(h.rows.len(), 2, "the unlabelled outcome is left out");
        let mut later = signal("next", 100 * S, direction::BULLISH, 85.0);
        later.underlying = "AMC".into();
        let stats = h.like(&later).unwrap();
        assert_eq!((stats.count, stats.hits), (1, 1));
        assert!((stats.median_move_pct - 2.0).abs() < 1e-9);
    }
}
