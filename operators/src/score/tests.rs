//! Factors on hand-built chains with known answers.

use super::*;
use crate::testing::{run, Step};
use optionflow_schemas::{time::MICROS_PER_MINUTE, ContractGreeks};

const T0: i64 = 1_704_205_800_000_000; // 2024-01-02 14:30 UTC, a window boundary

#[allow(clippy::too_many_arguments)]
fn greeks(
    t: i64,
    symbol: &str,
    call: bool,
    strike: f64,
    spot: f64,
    iv: f64,
    gamma: f64,
    oi: i64,
    volume: i64,
) -> GreeksEvent {
    GreeksEvent::Greeks(ContractGreeks {
        event_id: format!("{symbol}@{t}").into(),
        event_time: t,
        underlying: "XYZ".into(),
        source_event_id: Default::default(),
        symbol: symbol.into(),
        root: "XYZ".into(),
        expiry: "2024-02-16".into(),
        right: if call { "call" } else { "put" }.into(),
        strike,
        spot,
        years_to_expiry: 45.0 / 365.0,
        rate: 0.04,
        dividend_yield: 0.0,
        bid: 1.0,
        ask: 1.1,
        mid: 1.05,
        iv,
        delta: 0.5,
        gamma,
        vega: 10.0,
        theta: -5.0,
        rho: 1.0,
        volume,
        open_interest: oi,
        sector: Some("Tech".into()),
        exercise_style: "european".into(),
        vanna: 0.1,
        charm: -0.2,
        vomma: 3.0,
    })
}

/// One window of a four-contract chain: two OTM calls above spot, two OTM puts below.
fn window(
    i: i64,
    call_iv: f64,
    put_iv: f64,
    call_vol: i64,
    put_vol: i64,
) -> Vec<Step<GreeksEvent>> {
    let t = T0 + i * MICROS_PER_MINUTE + 1;
    let mut steps: Vec<Step<GreeksEvent>> = [("C105", true, 105.0), ("C110", true, 110.0)]
        .into_iter()
        .map(|(s, c, k)| Step::Event(greeks(t, s, c, k, 100.0, call_iv, 0.03, 1000, call_vol)))
        .collect();
    steps.extend(
        [("P95", false, 95.0), ("P90", false, 90.0)]
            .into_iter()
            .map(|(s, c, k)| Step::Event(greeks(t, s, c, k, 100.0, put_iv, 0.02, 1000, put_vol))),
    );
    steps.push(Step::Watermark(T0 + (i + 1) * MICROS_PER_MINUTE - 1));
    steps
}

fn calm(n: i64) -> Vec<Step<GreeksEvent>> {
    // Small deterministic wiggles so histories have a spread, cumulative volume growing steadily.
    (0..n)
        .flat_map(|i| {
            let wiggle = if i % 2 == 0 { 0.002 } else { -0.002 };
            window(
                i,
                0.30 + wiggle,
                0.32 - wiggle,
                100 * (i + 1) + (i % 3) * 10,
                100 * (i + 1) + (i % 2) * 10,
            )
        })
        .collect()
}

fn by_factor(out: &[FactorScore], factor: &str) -> Vec<FactorScore> {
    out.iter().filter(|f| f.factor == factor).cloned().collect()
}

#[test]
fn a_call_wing_bid_with_call_volume_reads_bullish() {
    let mut op = ScoreConfig::default().build().unwrap();
    let mut steps = calm(12);
    // The call wing jumps ten vol points and call volume traded in the window is 20x normal.
    let last_cum = 100 * 12 + (11 % 3) * 10;
    steps.extend(window(12, 0.40, 0.32, last_cum + 2000, 100 * 13));
    let out = run(&mut op, steps).unwrap().events;
    assert_eq!(out.len(), 13 * 7, "seven factors per window");
    let names: Vec<&str> = out[..7].iter().map(|f| f.factor.as_str()).collect();
    assert_eq!(
        names,
        [
            "iv_zscore",
            "gamma_exposure",
            "unusual_flow",
            "realized_vol",
            "iv_rv",
            "skew",
            "mispricing"
        ]
    );
    let iv = by_factor(&out, "iv_zscore");
    assert_eq!(iv[0].direction, "neutral", "first windows are warming up");
    assert!(iv[0].detail.contains("warming up"));
    let last = iv.last().unwrap();
    assert_eq!(last.direction, "bullish", "{last:?}");
    assert!(last.zscore > 5.0 && last.score > 99.0, "{last:?}");
    assert!(
        (last.raw_value - 0.10).abs() < 0.005,
        "raw is the IV change: {}",
        last.raw_value
    );
    let flow = by_factor(&out, "unusual_flow");
    let last = flow.last().unwrap();
    assert_eq!(last.direction, "bullish", "{last:?}");
    assert!(last.metadata["call_volume"] > 3000.0);
}

#[test]
fn put_wing_and_put_volume_read_bearish() {
    let mut op = ScoreConfig::default().build().unwrap();
    let mut steps = calm(12);
    steps.extend(window(12, 0.30, 0.45, 100 * 13, 100 * 12 + 10 + 3000));
    let out = run(&mut op, steps).unwrap().events;
    assert_eq!(
        by_factor(&out, "iv_zscore").last().unwrap().direction,
        "bearish"
    );
    assert_eq!(
        by_factor(&out, "unusual_flow").last().unwrap().direction,
        "bearish"
    );
}

#[test]
fn gex_is_gamma_times_oi_times_spot_squared_and_signed_by_convention() {
    // One call, one put: GEX = Γ·OI·100·S²·1% with calls + and puts − (dealer long calls).
    let steps = vec![
        Step::Event(greeks(T0 + 1, "C", true, 100.0, 100.0, 0.3, 0.03, 1000, 0)),
        Step::Event(greeks(T0 + 1, "P", false, 100.0, 100.0, 0.3, 0.02, 500, 0)),
        Step::Watermark(T0 + MICROS_PER_MINUTE - 1),
    ];
    let want = (0.03 * 1000.0 - 0.02 * 500.0) * 100.0 * 100.0 * 100.0 * 0.01 / 1e6;
    let mut op = ScoreConfig::default().build().unwrap();
    let out = run(&mut op, steps.clone()).unwrap().events;
    let gex = &by_factor(&out, "gamma_exposure")[0];
    assert!(
        (gex.raw_value - want).abs() < 1e-12,
        "{} vs {want}",
        gex.raw_value
    );
    assert_eq!(gex.metadata["call_wall"], 100.0);
    let cfg = ScoreConfig {
        gex_sign: GexSign::DealerShortCalls,
        ..ScoreConfig::default()
    };
    let out = run(&mut cfg.build().unwrap(), steps).unwrap().events;
    assert!((by_factor(&out, "gamma_exposure")[0].raw_value + want).abs() < 1e-12);
}

#[test]
fn gamma_flip_is_found_between_put_and_call_walls() {
    // Long call gamma concentrated at 110, short put gamma at 90, equal size: by symmetry of
    // lognormal gamma the sign change lies between them, close to the geometric middle.
    let mut book = UnderlyingBook {
        spot: 100.0,
        ..Default::default()
    };
    for (sym, call, k) in [("C", true, 110.0), ("P", false, 90.0)] {
        book.contracts.insert(
            sym.into(),
            ContractBook {
                is_call: call,
                strike: k,
                years: 30.0 / 365.0,
                iv: 0.25,
                gamma: 0.0,
                open_interest: 1000,
                ..Default::default()
            },
        );
    }
    let flip = gamma_exposure::gamma_flip(&ScoreConfig::default(), &book, 100.0).expect("a flip");
    assert!(
        (flip - (110.0f64 * 90.0).sqrt()).abs() < 1.5,
        "flip at {flip}"
    );
}

#[test]
fn windows_close_on_watermarks_and_state_survives_snapshot() {
    let steps = calm(10);
    let (head, tail) = steps.split_at(steps.len() / 2);
    let mut whole = ScoreConfig::default().build().unwrap();
    let all = run(&mut whole, steps.clone()).unwrap().events;

    let mut first = ScoreConfig::default().build().unwrap();
    let mut out = run(&mut first, head.to_vec()).unwrap().events;
    let mut second = ScoreConfig::default().build().unwrap();
    second.restore(&first.snapshot().unwrap()).unwrap();
    out.extend(run(&mut second, tail.to_vec()).unwrap().events);
    assert_eq!(out, all);
}

#[test]
fn a_tick_of_a_later_window_closes_the_open_one_before_moving_spot() {
    // One quote in the first window, then the next tick five minutes later arrives before the
    // watermark that would close the window: the window must read the spot of its own time.
    let tick = |t: i64, price: f64| {
        GreeksEvent::Tick(optionflow_schemas::UnderlyingTick {
            event_id: format!("tick@{t}").into(),
            event_time: t,
            underlying: "XYZ".into(),
            source: "test".into(),
            price,
            volume: 0,
            sector: None,
        })
    };
    let steps = vec![
        Step::Event(tick(T0, 100.0)),
        Step::Event(greeks(T0, "C105", true, 105.0, 100.0, 0.3, 0.03, 1000, 10)),
        Step::Watermark(T0),
        Step::Event(tick(T0 + 5 * MICROS_PER_MINUTE, 90.0)),
        Step::Watermark(T0 + 5 * MICROS_PER_MINUTE),
    ];
    let mut score = ScoreConfig::default().build().unwrap();
    let out = run(&mut score, steps).unwrap().events;
    assert!(!out.is_empty());
    assert!(
        out.iter()
            .all(|f| f.window_end == T0 + MICROS_PER_MINUTE && f.spot == 100.0),
        "{:?}",
        out.iter()
            .map(|f| (f.window_end, f.spot))
            .collect::<Vec<_>>()
    );
}

#[test]
fn config_reports_every_problem() {
    let cfg = ScoreConfig {
        window_secs: 0,
        min_samples: 500,
        iv_min_std: 0.0,
        gex_flip_range_pct: 0.0,
        short_dated_days: f64::NAN,
        squeeze_momentum_windows: 0,
        mispricing_min_edge_usd: -1.0,
        mispricing_max_quote_age_secs: 0,
        ..Default::default()
    };
    let err = cfg.validate().unwrap_err().0;
    assert_eq!(err.len(), 8, "{err:?}");
}

#[test]
fn a_batch_scores_as_its_events_one_by_one() {
    // Two underlyings in runs (each one's tick, then its chain), as a batch holds them, over
    // windows that close inside the batches (no watermarks), cut into batches of 7 so that
    // runs are split across batches too.
    let of = |underlying: &str, ev: GreeksEvent| match ev {
        GreeksEvent::Greeks(mut g) => {
            g.underlying = underlying.into();
            g.symbol = format!("{underlying}{}", g.symbol).into();
            GreeksEvent::Greeks(g)
        }
        GreeksEvent::Tick(mut t) => {
            t.underlying = underlying.into();
            GreeksEvent::Tick(t)
        }
    };
    let mut events = Vec::new();
    for (i, step) in calm(12).into_iter().enumerate() {
        let Step::Event(ev) = step else { continue };
        let t = ev.event_time();
        for (k, underlying) in ["XYZ", "ABC", "XYZ"].into_iter().enumerate() {
            if i % 5 == 0 {
                events.push(of(
                    underlying,
                    GreeksEvent::Tick(optionflow_schemas::UnderlyingTick {
                        event_id: format!("tick@{t}/{k}").into(),
                        event_time: t,
                        underlying: Default::default(),
                        source: "test".into(),
                        price: 100.0 + k as f64,
                        volume: 0,
                        sector: None,
                    }),
                ));
            }
            events.push(of(underlying, ev.clone()));
        }
    }

    let mut one_by_one = ScoreConfig::default().build().unwrap();
    let expected = crate::testing::run_events(&mut one_by_one, events.clone())
        .unwrap()
        .events;
    let mut batched = ScoreConfig::default().build().unwrap();
    let mut got = Vec::new();
    for batch in events.chunks(7) {
        let (out, rejected, errors) = crate::testing::run_batch(&mut batched, batch.to_vec());
        assert!(rejected.is_empty() && errors.is_empty());
        got.extend(out);
    }
    assert!(
        by_factor(&expected, "iv_zscore").len() >= 20,
        "{expected:?}"
    );
    assert_eq!(got, expected);
    assert_eq!(batched.snapshot().unwrap(), one_by_one.snapshot().unwrap());
}
