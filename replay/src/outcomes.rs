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

/// Labels `signals` over `horizons_secs` from the underlying ticks of the tape at `tape`.
pub fn label(
    tape: &Path,
    signals: &[Signal],
    horizons_secs: &[i64],
    threshold: f64,
) -> Result<Vec<Outcome>, TapeError> {
    // (time the spot is wanted at, index into `wanted`), resolved as the tape passes that time.
    let mut wanted: Vec<(String, i64)> = Vec::new();
    let mut at: BTreeMap<(i64, usize), ()> = BTreeMap::new();
    for s in signals {
        let mut push = |t: i64| {
            at.insert((t, wanted.len()), ());
            wanted.push((s.underlying.clone(), t));
        };
        push(s.event_time);
        for h in horizons_secs {
            push(s.event_time.saturating_add(h.saturating_mul(1_000_000)));
        }
    }
    let mut resolved: Vec<Option<f64>> = vec![None; wanted.len()];
    let mut last: BTreeMap<String, f64> = BTreeMap::new();
    let mut end = i64::MIN;
    for ev in TapeReader::open(tape)? {
        let RawEvent::Tick(tick) = ev? else { continue };
        // Every time strictly before this tick is now final: its last spot is known.
        while let Some((&(t, i), ())) = at.first_key_value() {
            if t >= tick.event_time {
                break;
            }
            resolved[i] = last.get(&wanted[i].0).copied();
            at.remove(&(t, i));
        }
        last.insert(tick.underlying.clone(), tick.price);
        end = end.max(tick.event_time);
    }
    // Times at or before the tape's last tick are resolved by what it holds; later ones are not.
    for (&(t, i), ()) in &at {
        if t <= end {
            resolved[i] = last.get(&wanted[i].0).copied();
        }
    }
    let mut out = Vec::new();
    let mut k = 0;
    for s in signals {
        let spot = resolved[k];
        k += 1;
        for &h in horizons_secs {
            let forward = resolved[k];
            k += 1;
            let ret = spot
                .zip(forward)
                .filter(|(a, _)| *a > 0.0)
                .map(|(a, b)| b / a - 1.0);
            out.push(Outcome {
                signal_id: s.event_id.clone(),
                underlying: s.underlying.clone(),
                direction: s.direction.clone(),
                composite: s.composite,
                event_time: s.event_time,
                horizon_secs: h,
                spot,
                forward_spot: forward,
                underlying_return: ret,
                hit: ret.map(|r| is_hit(&s.direction, r, threshold)),
            });
        }
    }
    Ok(out)
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
            event_id: format!("t{t}"),
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

    #[test]
    fn forward_returns_use_the_last_spot_at_or_before_each_time_and_never_beyond_the_tape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.avro");
        let mut w = TapeWriter::open(&path, 0, 0).unwrap();
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
