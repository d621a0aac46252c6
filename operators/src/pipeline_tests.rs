//! Tests of the downstream stages (consensus, explain, risk-gate, dispatch) on hand-built events.

use crate::consensus::ConsensusConfig;
use crate::dispatch::DispatchConfig;
use crate::explain::ExplainConfig;
use crate::risk_gate::RiskGateConfig;
use crate::testing::{run, run_events, Step};
use crate::Operator;
use optionflow_schemas::{time::MICROS_PER_MINUTE, Explanation, FactorScore, RiskDecision, Signal};
use std::collections::BTreeMap;

const T: i64 = 1_704_205_800_000_000;

fn factor(u: &str, name: &str, z: f64, dir: &str, end: i64) -> FactorScore {
    FactorScore {
        event_id: format!("{u}-{name}-{end}").into(),
        event_time: end,
        underlying: u.into(),
        factor: name.into(),
        window_start: end - MICROS_PER_MINUTE,
        window_end: end,
        raw_value: z / 10.0,
        zscore: z,
        score: crate::score::stats::score_from_z(z),
        direction: dir.into(),
        samples: 30,
        detail: format!("{name} saw z {z}"),
        spot: 20.0,
        sector: Some("Consumer Discretionary".into()),
        metadata: BTreeMap::new(),
        contracts: Vec::new(),
    }
}

fn consensus(scores: Vec<FactorScore>, end: i64) -> Vec<Signal> {
    let mut op = ConsensusConfig::default().build().unwrap();
    let mut steps: Vec<_> = scores.into_iter().map(Step::Event).collect();
    steps.push(Step::Watermark(end - 1));
    run(&mut op, steps).unwrap().events
}

#[test]
fn two_agreeing_factors_make_a_signal_and_one_does_not() {
    let end = T + MICROS_PER_MINUTE;
    let sigs = consensus(
        vec![
            factor("GME", "iv_zscore", 4.0, "bullish", end),
            factor("GME", "unusual_flow", 5.0, "bullish", end),
            factor("GME", "gamma_exposure", 0.5, "neutral", end),
        ],
        end,
    );
    assert_eq!(sigs.len(), 1);
    let s = &sigs[0];
    assert_eq!((s.direction.as_str(), s.agreeing), ("bullish", 2));
    // (99.997 + 99.99997 + 50) / 3
    assert!((s.composite - 83.33).abs() < 0.01, "{}", s.composite);
    assert_eq!(s.sector, "Consumer Discretionary");
    assert!(s
        .factors
        .iter()
        .any(|f| f.factor == "gamma_exposure" && !f.voted));

    let none = consensus(
        vec![
            factor("AMC", "iv_zscore", 4.0, "bullish", end),
            factor("AMC", "unusual_flow", 5.0, "bearish", end),
            factor("AMC", "gamma_exposure", 0.1, "neutral", end),
        ],
        end,
    );
    assert!(
        none.is_empty(),
        "disagreeing factors are not a consensus: {none:?}"
    );
}

#[test]
fn consensus_waits_for_the_watermark_and_ignores_arrival_order() {
    let end = T + MICROS_PER_MINUTE;
    let a = vec![
        factor("GME", "iv_zscore", 4.0, "volatility", end),
        factor("GME", "unusual_flow", 5.0, "bullish", end),
    ];
    let mut b = a.clone();
    b.reverse();
    let mut op = ConsensusConfig::default().build().unwrap();
    assert!(
        run_events(&mut op, a.clone()).unwrap().events.is_empty(),
        "nothing before the watermark"
    );
    assert_eq!(consensus(a, end), consensus(b, end));
}

#[test]
fn signals_carry_the_latest_spot_of_every_underlying_seen() {
    let w1 = T + MICROS_PER_MINUTE;
    let w2 = w1 + MICROS_PER_MINUTE;
    let at = |mut f: FactorScore, spot: f64| {
        f.spot = spot;
        f
    };
    let mut op = ConsensusConfig::default().build().unwrap();
    let steps = vec![
        // Window 1: AMC scored (no signal), GME scored at 20.
        Step::Event(at(factor("AMC", "iv_zscore", 0.5, "neutral", w1), 5.0)),
        Step::Event(at(factor("GME", "iv_zscore", 0.5, "neutral", w1), 20.0)),
        Step::Watermark(w1 - 1),
        // Window 2: GME signals at 22; AMC is not scored again and keeps its last spot.
        Step::Event(at(factor("GME", "iv_zscore", 4.0, "bullish", w2), 22.0)),
        Step::Event(at(factor("GME", "unusual_flow", 4.5, "bullish", w2), 22.0)),
        Step::Watermark(w2 - 1),
    ];
    let sigs = run(&mut op, steps).unwrap().events;
    assert_eq!(sigs.len(), 1);
    let want = BTreeMap::from([("AMC".to_string(), 5.0), ("GME".to_string(), 22.0)]);
    assert_eq!(sigs[0].marks, want);
    // The marks survive a checkpoint, and explain copies them through.
    let mut again = ConsensusConfig::default().build().unwrap();
    again.restore(&op.snapshot().unwrap()).unwrap();
    assert_eq!(again.snapshot().unwrap(), op.snapshot().unwrap());
    let mut ex = ExplainConfig::default().build().unwrap();
    let e = run_events(&mut ex, sigs).unwrap().events.remove(0);
    assert_eq!(e.marks, want);
}

#[test]
fn benjamini_hochberg_matches_a_hand_computed_cut() {
    use crate::consensus::benjamini_hochberg;
    // m = 6, q = 0.05: thresholds k·q/m = .0083 .0167 .025 .0333 .0417 .05. The largest k with
    // p(k) ≤ its threshold is k = 4 (0.030 ≤ .0333), so the four smallest are discoveries even
    // though p(3) = 0.024... also passes and p(2) = 0.02 fails its own threshold.
    let p = [0.030, 0.001, 0.020, 0.024, 0.200, 0.049];
    assert_eq!(
        benjamini_hochberg(&p, 0.05),
        vec![true, true, true, true, false, false]
    );
    assert_eq!(benjamini_hochberg(&[0.04, 0.5], 0.05), vec![false, false]);
    assert!(benjamini_hochberg(&[], 0.05).is_empty());
}

/// Twenty names: seventeen calm (|z| = 0.5), three whose two factors agree at |z| = 2.2 (each
/// p ≈ 0.028, enough for an uncorrected vote at z ≥ 2, and what 40 tests produce by chance),
/// and one genuine outlier. The correction across the window keeps only the outlier; turning
/// it off (fdr = 1) lets the three through.
#[test]
fn the_false_discovery_correction_spans_every_underlying_in_the_window() {
    let end = T + MICROS_PER_MINUTE;
    let mut scores = vec![
        factor("GME", "iv_zscore", 6.0, "bullish", end),
        factor("GME", "unusual_flow", 7.0, "bullish", end),
    ];
    for i in 0..20 {
        let u = format!("N{i:02}");
        let z = if i < 3 { 2.2 } else { 0.5 };
        scores.push(factor(&u, "iv_zscore", z, "bullish", end));
        scores.push(factor(&u, "unusual_flow", z, "bullish", end));
    }
    let run_with = |fdr: f64| {
        let cfg = ConsensusConfig {
            fdr,
            min_composite: 0.0,
            ..Default::default()
        };
        let mut op = cfg.build().unwrap();
        let mut steps: Vec<_> = scores.iter().cloned().map(Step::Event).collect();
        steps.push(Step::Watermark(end - 1));
        run(&mut op, steps).unwrap().events
    };
    let corrected = run_with(0.05);
    assert_eq!(
        corrected
            .iter()
            .map(|s| s.underlying.as_str())
            .collect::<Vec<_>>(),
        vec!["GME"]
    );
    assert!(corrected[0].factors.iter().all(|f| f.p_value < 1e-8));
    assert_eq!(run_with(1.0).len(), 4);
}

#[test]
fn signals_carry_a_calibrated_probability() {
    use crate::calibration::Calibration;
    let end = T + MICROS_PER_MINUTE;
    let scores = [
        factor("GME", "iv_zscore", 4.0, "bullish", end),
        factor("GME", "unusual_flow", 5.0, "bullish", end),
    ];
    let steps = || {
        let mut v: Vec<_> = scores.iter().cloned().map(Step::Event).collect();
        v.push(Step::Watermark(end - 1));
        v
    };
    let mut prior = ConsensusConfig::default().build().unwrap();
    let s = &run(&mut prior, steps()).unwrap().events[0];
    assert!(!s.calibrated);
    assert!((s.probability - s.composite / 100.0).abs() < 1e-4);
    let cal = Calibration::Isotonic {
        points: vec![(50.0, 0.3), (100.0, 0.8)],
    };
    let mut fitted = ConsensusConfig::default()
        .build()
        .unwrap()
        .with_calibration(cal.clone());
    let s = &run(&mut fitted, steps()).unwrap().events[0];
    assert!(s.calibrated);
    assert!((s.probability - cal.probability(s.composite)).abs() < 1e-12);
    assert!((0.75..=0.8).contains(&s.probability), "{}", s.probability);
}

fn signal(u: &str, sector: &str, dir: &str, t: i64) -> Signal {
    let end = t;
    let mut s = consensus(
        vec![
            factor(u, "iv_zscore", 4.0, dir, end),
            factor(u, "unusual_flow", 4.5, dir, end),
        ],
        end,
    )
    .remove(0);
    s.sector = sector.into();
    s
}

#[test]
fn explanations_render_every_format_with_the_factors() {
    let mut op = ExplainConfig::default().build().unwrap();
    let out = run_events(
        &mut op,
        vec![signal("GME", "Consumer Discretionary", "bullish", T)],
    )
    .unwrap()
    .events;
    let e = &out[0];
    assert!(
        e.headline
            .starts_with("GME bullish 100/100 at 20.00: 2 of 2 factors agree"),
        "{}",
        e.headline
    );
    assert!(
        e.markdown.contains("| IV z-score |") && e.markdown.contains("### Risk"),
        "{}",
        e.markdown
    );
    assert!(e.text.contains("When: 2024-01-02 09:30 EST"), "{}", e.text);
    assert_eq!(e.factors.len(), 2);
    assert!(ExplainConfig {
        time_zone: Some("Mars/Olympus".into()),
        ..ExplainConfig::default()
    }
    .validate()
    .is_err());
}

fn explained(u: &str, sector: &str, dir: &str, t: i64) -> Explanation {
    let mut op = ExplainConfig::default().build().unwrap();
    run_events(&mut op, vec![signal(u, sector, dir, t)])
        .unwrap()
        .events
        .remove(0)
}

fn gate(cfg: RiskGateConfig, inputs: Vec<Explanation>) -> Vec<RiskDecision> {
    let mut op = cfg.build().unwrap();
    let mut steps: Vec<_> = inputs.into_iter().map(Step::Event).collect();
    steps.push(Step::Watermark(i64::MAX));
    run(&mut op, steps).unwrap().events
}

#[test]
fn risk_gate_names_the_rule_that_decided() {
    let cfg = RiskGateConfig {
        max_open_signals: 3,
        max_per_sector: 2,
        hold_secs: 600,
        ..Default::default()
    };
    let m = MICROS_PER_MINUTE;
    let d = gate(
        cfg,
        vec![
            explained("GME", "Retail", "bullish", T),
            explained("GME", "Retail", "bullish", T + m),
            explained("AMC", "Retail", "bullish", T + 2 * m),
            explained("BBBY", "Retail", "bullish", T + 3 * m),
            explained("SPY", "Index", "bearish", T + 4 * m),
            explained("QQQ", "Index", "bearish", T + 5 * m),
            // The first signals have closed after ten minutes.
            explained("BBBY", "Retail", "bullish", T + 11 * m),
        ],
    );
    let rules: Vec<&str> = d.iter().map(|d| d.rule.as_str()).collect();
    assert_eq!(
        rules,
        [
            "approved",
            "already_open",
            "approved",
            "sector_cap",
            "approved",
            "max_open_signals",
            "approved"
        ]
    );
    assert!(d.iter().all(|d| d.approved == (d.rule == "approved")));
}

#[test]
fn risk_gate_orders_by_event_time_not_arrival() {
    let a = explained("GME", "Retail", "bullish", T);
    let b = explained("GME", "Retail", "bullish", T + MICROS_PER_MINUTE);
    let cfg = RiskGateConfig::default();
    assert_eq!(
        gate(cfg.clone(), vec![a.clone(), b.clone()]),
        gate(cfg, vec![b, a])
    );
}

#[test]
fn dispatch_dedupes_cools_down_and_fans_out_to_channels() {
    let cfg = RiskGateConfig {
        max_open_signals: 10,
        max_per_sector: 10,
        hold_secs: 60,
        ..Default::default()
    };
    let m = MICROS_PER_MINUTE;
    let decisions = gate(
        cfg,
        vec![
            explained("GME", "Retail", "bullish", T),
            explained("GME", "Retail", "bullish", T + 5 * m),
            explained("GME", "Retail", "bullish", T + 20 * m),
        ],
    );
    assert!(decisions.iter().all(|d| d.approved));
    let mut op = DispatchConfig {
        channels: vec!["file".into(), "webhook".into()],
        ..Default::default()
    }
    .build()
    .unwrap();
    let mut steps: Vec<_> = decisions.iter().cloned().map(Step::Event).collect();
    steps.push(Step::Event(decisions[0].clone())); // a redelivery
    steps.push(Step::Watermark(i64::MAX));
    let alerts = run(&mut op, steps).unwrap().events;
    // First at T, second inside the 15-minute cooldown, third after it; the redelivery deduped.
    let times: Vec<i64> = alerts.iter().map(|a| a.event_time).collect();
    assert_eq!(times, [T, T, T + 20 * m, T + 20 * m]);
    assert_eq!(alerts[0].channel, "file");
    assert_eq!(alerts[1].channel, "webhook");
    assert_ne!(alerts[0].dedupe_key, alerts[1].dedupe_key);
    assert_eq!(
        op.suppressed(),
        1,
        "one cooled down (the redelivery replaced its original in the buffer)"
    );
    let snap = op.snapshot().unwrap();
    let mut again = DispatchConfig::default().build().unwrap();
    again.restore(&snap).unwrap();
    assert!(again.restore(b"garbage that is not state").is_err());
}
