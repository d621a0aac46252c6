//! The simulator on hand-built event sequences: one underlying, XYZ, at 100, with a chain priced
//! by Black-Scholes-Merton at 30% volatility, so the deltas that choose strikes are known.

use super::config::{BacktestConfig, Structure};
use super::sim::{Candidate, Outcome, Simulator, MULTIPLIER};
use optionflow_operators::pricing::{bsm_price, Right};
use optionflow_schemas::{RawEvent, RawQuote, UnderlyingTick};

/// 2024-01-02 10:00 New York, µs.
const T0: i64 = 1_704_207_600_000_000;
const SEC: i64 = 1_000_000;
/// Ten days out: 2024-01-12 (the first expiry at least seven days after T0).
const EXPIRY: &str = "240112";
/// 2024-01-12 16:00 New York.
const EXPIRY_TIME: i64 = 1_705_093_200_000_000;
const RATE: f64 = 0.04;

fn symbol(expiry: &str, right: Right, strike: f64) -> String {
    let r = if right == Right::Call { 'C' } else { 'P' };
    format!(
        "{:<6}{expiry}{r}{:08}",
        "XYZ",
        (strike * 1000.0).round() as i64
    )
}

fn quote(t: i64, symbol: &str, bid: f64, ask: f64) -> RawEvent {
    RawEvent::Quote(RawQuote {
        event_id: format!("q{t}{symbol}").into(),
        event_time: t,
        underlying: "XYZ".into(),
        source: "test".into(),
        symbol: symbol.into(),
        bid,
        ask,
        bid_size: 10,
        ask_size: 10,
        last: None,
        volume: 0,
        open_interest: 0,
        underlying_price: None,
    })
}

fn tick(t: i64, price: f64) -> RawEvent {
    RawEvent::Tick(UnderlyingTick {
        event_id: format!("t{t}").into(),
        event_time: t,
        underlying: "XYZ".into(),
        source: "test".into(),
        price,
        volume: 0,
        sector: None,
    })
}

/// Model price of a contract expiring at `expiry_time`, seen at `t` with spot 100.
fn model(right: Right, strike: f64, t: i64, expiry_time: i64) -> f64 {
    let years = (expiry_time - t) as f64 / (365.0 * 86_400e6);
    bsm_price(right, 100.0, strike, years, RATE, 0.0, 0.30)
}

/// Spot 100 and the full chain (strikes 90 to 110, calls and puts) at `t`, a 0.10 spread
/// around the model price.
fn chain(t: i64, expiry: &str, expiry_time: i64) -> Vec<RawEvent> {
    let mut v = vec![tick(t, 100.0)];
    for k in 90..=110 {
        for right in [Right::Call, Right::Put] {
            let m = model(right, k as f64, t, expiry_time);
            v.push(quote(
                t,
                &symbol(expiry, right, k as f64),
                m - 0.05,
                m + 0.05,
            ));
        }
    }
    v
}

fn candidate(t: i64, direction: &str, score: f64) -> Candidate {
    Candidate {
        decision_id: format!("d{t}{direction}"),
        signal_id: format!("s{t}{direction}"),
        time: t,
        underlying: "XYZ".into(),
        direction: direction.into(),
        score,
        probability: score / 100.0,
        factors: vec!["gex".into()],
    }
}

fn run(cfg: &BacktestConfig, candidates: Vec<Candidate>, events: &[RawEvent]) -> Outcome {
    let mut sim = Simulator::new(cfg.clone(), RATE, candidates);
    for e in events {
        sim.on_event(e);
    }
    sim.finish()
}

/// No exits but the end of the tape, no commission: the fill prices show through.
fn plain() -> BacktestConfig {
    BacktestConfig {
        take_profit: 0.0,
        stop_loss: 0.0,
        max_hold_secs: 0,
        commission_per_contract: 0.0,
        ..BacktestConfig::default()
    }
}

/// The 0.40-delta call of the ten-day expiry at spot 100 and 30% volatility.
/// (Deltas at T0: 101 → 0.44, 102 → 0.365, 103 → 0.29.)
/// Contracts of a position are sized at the quotes known at the signal: here its ask in the
/// chain at T0 − 1 s, plus slippage and commission.
fn sized_at_signal(equity: f64, slippage: f64, commission: f64) -> i64 {
    let ask = model(Right::Call, 102.0, T0 - SEC, EXPIRY_TIME) + 0.05;
    (equity * 0.02 / (ask * MULTIPLIER + slippage + commission)).floor() as i64
}

fn call_40() -> String {
    symbol(EXPIRY, Right::Call, 102.0)
}

#[test]
fn the_target_delta_call_fills_at_the_ask_of_the_next_quote_after_the_signal() {
    let c = call_40();
    let mut ev = chain(T0 - SEC, EXPIRY, EXPIRY_TIME);
    // At the signal's own time: known when choosing, but too early to fill.
    ev.push(quote(T0, &c, 1.80, 1.90));
    ev.push(tick(T0 + SEC, 100.0));
    ev.push(quote(T0 + 2 * SEC, &c, 2.00, 2.20));
    ev.push(quote(T0 + 3 * SEC, &c, 2.10, 2.30));
    let out = run(&plain(), vec![candidate(T0, "bullish", 80.0)], &ev);
    assert_eq!(out.trades.len(), 1, "{:?}", out.skipped);
    let t = &out.trades[0];
    assert_eq!(t.legs, format!("+1 {c}"));
    assert_eq!(t.structure, "long-call");
    assert_eq!(t.entry_time, T0 + 2 * SEC);
    assert_eq!(
        t.entry_price, 2.20,
        "the ask, not the mid 2.10 nor the quote at t"
    );
    // Closed at the end of the tape at the last bid.
    assert_eq!(
        (t.exit_reason.as_str(), t.exit_price),
        ("end-of-tape", 2.10)
    );
    // Sized at the quote known at the signal: 2% of 100,000 over $190 a contract.
    assert_eq!(t.contracts, 10);
    assert!((t.pnl - (2.10 - 2.20) * MULTIPLIER * 10.0).abs() < 1e-9);
}

#[test]
fn puts_for_bearish_signals_straddles_for_volatility_and_verticals() {
    let mut ev = chain(T0 - SEC, EXPIRY, EXPIRY_TIME);
    ev.extend(chain(T0 + SEC, EXPIRY, EXPIRY_TIME));
    let out = run(
        &plain(),
        vec![
            candidate(T0, "bearish", 80.0),
            candidate(T0, "volatility", 80.0),
        ],
        &ev,
    );
    let legs: Vec<&str> = out.trades.iter().map(|t| t.legs.as_str()).collect();
    assert_eq!(out.trades.len(), 2, "{:?}", out.skipped);
    assert!(legs.contains(&format!("+1 {}", symbol(EXPIRY, Right::Put, 99.0)).as_str()));
    let straddle = format!(
        "+1 {};+1 {}",
        symbol(EXPIRY, Right::Call, 100.0),
        symbol(EXPIRY, Right::Put, 100.0)
    );
    assert!(legs.contains(&straddle.as_str()), "{legs:?}");

    let vertical = BacktestConfig {
        structure: Structure::Vertical,
        ..plain()
    };
    let out = run(&vertical, vec![candidate(T0, "bullish", 80.0)], &ev);
    let t = &out.trades[0];
    assert_eq!(t.structure, "call-vertical");
    let short = symbol(EXPIRY, Right::Call, 105.0);
    assert_eq!(t.legs, format!("+1 {};-1 {short}", call_40()));
    // Debit: the long leg's ask less the short leg's bid.
    let expected = (model(Right::Call, 102.0, T0 + SEC, EXPIRY_TIME) + 0.05)
        - (model(Right::Call, 105.0, T0 + SEC, EXPIRY_TIME) - 0.05);
    assert!((t.entry_price - expected).abs() < 1e-9);
}

#[test]
fn slippage_and_commission_are_paid_on_every_fill_of_every_leg() {
    let c = call_40();
    let mut ev = chain(T0 - SEC, EXPIRY, EXPIRY_TIME);
    ev.push(quote(T0 + SEC, &c, 2.00, 2.20));
    ev.push(quote(T0 + 2 * SEC, &c, 2.50, 2.70));
    let cfg = BacktestConfig {
        slippage_per_contract: 3.0,
        commission_per_contract: 1.25,
        ..plain()
    };
    let out = run(&cfg, vec![candidate(T0, "bullish", 80.0)], &ev);
    let t = &out.trades[0];
    assert!((t.entry_price - 2.23).abs() < 1e-12);
    assert!((t.exit_price - 2.47).abs() < 1e-12);
    let n = sized_at_signal(100_000.0, 3.0, 1.25);
    assert_eq!(t.contracts, n);
    let n = n as f64;
    let pnl = (2.47 - 2.23) * MULTIPLIER * n - 2.0 * 1.25 * n;
    assert!((t.pnl - pnl).abs() < 1e-9, "{}", t.pnl);
    assert!((t.ret - pnl / (223.0 * n + 1.25 * n)).abs() < 1e-12);
    assert!((out.end_equity - (100_000.0 + pnl)).abs() < 1e-9);
}

#[test]
fn take_profit_stop_loss_and_time_stop_exit_at_the_next_bid() {
    let c = call_40();
    let cfg = BacktestConfig {
        take_profit: 0.5,
        stop_loss: 0.5,
        max_hold_secs: 60,
        ..plain()
    };
    let base = || {
        let mut ev = chain(T0 - SEC, EXPIRY, EXPIRY_TIME);
        ev.push(quote(T0 + SEC, &c, 1.90, 2.00));
        ev
    };
    let one = |extra: Vec<RawEvent>| {
        let mut ev = base();
        ev.extend(extra);
        let out = run(&cfg, vec![candidate(T0, "bullish", 80.0)], &ev);
        assert_eq!(out.trades.len(), 1);
        out.trades[0].clone()
    };
    // 3.00 = 2.00 × 1.5 triggers; the exit fills at the next quote's bid.
    let t = one(vec![
        quote(T0 + 2 * SEC, &c, 2.90, 3.00),
        quote(T0 + 3 * SEC, &c, 3.00, 3.10),
        quote(T0 + 4 * SEC, &c, 3.20, 3.30),
    ]);
    assert_eq!(
        (t.exit_reason.as_str(), t.exit_price, t.exit_time),
        ("take-profit", 3.20, T0 + 4 * SEC)
    );
    let t = one(vec![
        quote(T0 + 2 * SEC, &c, 1.00, 1.10),
        quote(T0 + 3 * SEC, &c, 0.90, 1.00),
    ]);
    assert_eq!((t.exit_reason.as_str(), t.exit_price), ("stop-loss", 0.90));
    // Held 60 s from the entry fill; the first quote after that fills the exit.
    let t = one(vec![
        quote(T0 + 30 * SEC, &c, 2.00, 2.10),
        tick(T0 + 62 * SEC, 100.0),
        quote(T0 + 70 * SEC, &c, 2.05, 2.15),
    ]);
    assert_eq!(
        (t.exit_reason.as_str(), t.exit_price, t.exit_time),
        ("time-stop", 2.05, T0 + 70 * SEC)
    );
}

#[test]
fn expiry_settles_at_intrinsic_against_the_last_spot_at_or_before_it() {
    // Tomorrow's expiry (2024-01-03 16:00 New York), traded with min-days-to-expiry 0.
    let (expiry, expiry_time) = ("240103", 1_704_315_600_000_000);
    let mut ev = chain(T0 - SEC, expiry, expiry_time);
    ev.extend(chain(T0 + SEC, expiry, expiry_time));
    ev.push(tick(expiry_time - 60 * SEC, 103.0));
    ev.push(tick(expiry_time, 103.5));
    // After the expiry: must not count.
    ev.push(tick(expiry_time + 60 * SEC, 200.0));
    let cfg = BacktestConfig {
        min_days_to_expiry: 0.0,
        commission_per_contract: 0.65,
        ..plain()
    };
    let out = run(&cfg, vec![candidate(T0, "volatility", 80.0)], &ev);
    let t = &out.trades[0];
    assert_eq!(t.structure, "straddle");
    assert_eq!(
        (t.exit_reason.as_str(), t.exit_time),
        ("expiry", expiry_time)
    );
    // |103.5 − 100|: the call's intrinsic value, the put worthless.
    assert!((t.exit_price - 3.5).abs() < 1e-12);
    // Commission on entry only (two legs); none at settlement.
    let pnl =
        (3.5 - t.entry_price) * MULTIPLIER * t.contracts as f64 - 0.65 * 2.0 * t.contracts as f64;
    assert!((t.pnl - pnl).abs() < 1e-9);
}

#[test]
fn sizing_commits_a_fraction_of_equity_at_least_one_affordable_contract_and_respects_max_positions()
{
    let c = call_40();
    let mut ev = chain(T0 - SEC, EXPIRY, EXPIRY_TIME);
    ev.push(quote(T0 + 2 * SEC, &c, 2.50, 2.60));
    ev.push(quote(T0 + 3 * SEC, &c, 2.50, 2.60));
    let sized = |equity: f64| {
        let cfg = BacktestConfig {
            starting_equity: equity,
            ..plain()
        };
        let out = run(&cfg, vec![candidate(T0, "bullish", 80.0)], &ev);
        (out.trades.first().map(|t| t.contracts), out.skipped)
    };
    assert_eq!(
        sized(100_000.0).0,
        Some(sized_at_signal(100_000.0, 0.0, 0.0))
    );
    assert!(sized_at_signal(100_000.0, 0.0, 0.0) > 1);
    // $20 buys none: one contract, affordable.
    assert_eq!(sized_at_signal(1_000.0, 0.0, 0.0), 0);
    assert_eq!(sized(1_000.0).0, Some(1));
    let (none, skipped) = sized(100.0);
    assert_eq!(none, None);
    assert_eq!(skipped["not enough cash for one contract"], 1);

    let cfg = BacktestConfig {
        max_positions: 1,
        ..plain()
    };
    let out = run(
        &cfg,
        vec![
            candidate(T0, "bullish", 80.0),
            candidate(T0, "volatility", 90.0),
        ],
        &ev,
    );
    assert_eq!(out.trades.len(), 1);
    assert_eq!(out.skipped["max-positions reached"], 1);
    // Entry rules: score and direction.
    let cfg = BacktestConfig {
        min_score: 85.0,
        directions: vec!["volatility".into()],
        require_factors: vec!["gex".into()],
        ..plain()
    };
    let out = run(
        &cfg,
        vec![
            candidate(T0, "bullish", 90.0),
            candidate(T0, "volatility", 80.0),
        ],
        &ev,
    );
    assert!(out.trades.is_empty());
    assert_eq!(out.skipped["direction not traded"], 1);
    assert_eq!(out.skipped["score below min-score"], 1);
}

#[test]
fn no_look_ahead_a_future_spike_changes_neither_the_contract_nor_the_fill() {
    let c = call_40();
    let honest = {
        let mut ev = chain(T0 - SEC, EXPIRY, EXPIRY_TIME);
        ev.push(quote(T0 + 2 * SEC, &c, 2.00, 2.20));
        ev.push(quote(T0 + 3 * SEC, &c, 2.10, 2.30));
        ev
    };
    let mut planted = chain(T0 - SEC, EXPIRY, EXPIRY_TIME);
    // At the signal's own time, a quote of the contract that will be chosen (its bid and ask
    // unchanged): part of the chain as of the signal, too early to be its fill.
    let m = model(Right::Call, 102.0, T0 - SEC, EXPIRY_TIME);
    planted.push(quote(T0, &c, m - 0.05, m + 0.05));
    // After the signal: the underlying jumps, another strike spikes, and a nearer eligible
    // expiry (2024-01-10, eight days) appears. Seen early, each would change the choice.
    planted.push(tick(T0 + SEC, 150.0));
    planted.push(quote(
        T0 + SEC,
        &symbol(EXPIRY, Right::Call, 104.0),
        45.0,
        46.0,
    ));
    planted.extend(
        chain(T0 + SEC, "240110", 1_704_920_400_000_000)
            .into_iter()
            .filter(|e| matches!(e, RawEvent::Quote(_))),
    );
    planted.push(quote(T0 + 2 * SEC, &c, 2.00, 2.20));
    planted.push(quote(T0 + 3 * SEC, &c, 2.10, 2.30));
    let a = run(&plain(), vec![candidate(T0, "bullish", 80.0)], &honest);
    let b = run(&plain(), vec![candidate(T0, "bullish", 80.0)], &planted);
    assert_eq!(a.trades[0].legs, format!("+1 {c}"));
    assert_eq!(b.trades[0].legs, a.trades[0].legs);
    assert_eq!(b.trades[0].entry_price, 2.20);
    assert_eq!(b.trades[0].entry_time, T0 + 2 * SEC);
    assert_eq!(b.trades[0].contracts, a.trades[0].contracts);
}

#[test]
fn two_runs_write_identical_outputs_and_the_report_is_self_contained() {
    let c = call_40();
    let mut ev = chain(T0 - SEC, EXPIRY, EXPIRY_TIME);
    ev.extend(chain(T0 + SEC, EXPIRY, EXPIRY_TIME));
    ev.push(quote(T0 + 120 * SEC, &c, 3.5, 3.6));
    ev.extend(chain(T0 + 180 * SEC, EXPIRY, EXPIRY_TIME));
    let candidates = vec![
        candidate(T0, "bullish", 82.0),
        candidate(T0, "volatility", 77.0),
        candidate(T0 + 60 * SEC, "bearish", 91.0),
    ];
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for d in &dirs {
        let out = run(&BacktestConfig::default(), candidates.clone(), &ev);
        super::write_outputs(d.path(), &out).unwrap();
    }
    for f in ["trades.csv", "summary.json", "report.html"] {
        let a = std::fs::read(dirs[0].path().join(f)).unwrap();
        let b = std::fs::read(dirs[1].path().join(f)).unwrap();
        assert!(a == b, "{f} differs between two runs");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dirs[0].path().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["trades"], 3);
    assert_eq!(summary["hit_rate_by_score_bucket"]["80-85"]["trades"], 1);
    let html = std::fs::read_to_string(dirs[0].path().join("report.html")).unwrap();
    for id in [
        "equity-curve",
        "drawdown",
        "return-distribution",
        "hit-rate-by-score",
        "calibration",
    ] {
        assert!(html.contains(&format!("Plotly.newPlot(\"{id}\"")), "{id}");
    }
    assert!(!html.contains("<script src=\"http"));
}
