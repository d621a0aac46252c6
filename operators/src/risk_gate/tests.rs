//! Every rule of the risk gate on hand-built explanations.

use super::calendar::Calendar;
use super::*;
use crate::testing::{run, Step};
use chrono::TimeZone;
use optionflow_schemas::time::MICROS_PER_MINUTE;

const M: i64 = MICROS_PER_MINUTE;

/// New York wall time as event time.
fn ny(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    chrono_tz::America::New_York
        .with_ymd_and_hms(y, mo, d, h, mi, 0)
        .unwrap()
        .timestamp_micros()
}

/// 2021-01-25 10:00 New York, a Monday with nothing on the example calendar.
fn t0() -> i64 {
    ny(2021, 1, 25, 10, 0)
}

struct Ex {
    u: &'static str,
    sector: &'static str,
    dir: &'static str,
    composite: f64,
    spot: f64,
    t: i64,
    marks: Vec<(&'static str, f64)>,
}

impl Ex {
    fn new(u: &'static str, dir: &'static str, t: i64) -> Ex {
        Ex {
            u,
            sector: "Tech",
            dir,
            composite: 80.0,
            spot: 100.0,
            t,
            marks: Vec::new(),
        }
    }
    fn sector(mut self, s: &'static str) -> Ex {
        self.sector = s;
        self
    }
    fn composite(mut self, c: f64) -> Ex {
        self.composite = c;
        self
    }
    fn spot(mut self, s: f64) -> Ex {
        self.spot = s;
        self
    }
    fn mark(mut self, u: &'static str, s: f64) -> Ex {
        self.marks.push((u, s));
        self
    }
    fn build(self) -> Explanation {
        let id = format!("{}-{}-{}", self.u, self.dir, self.t);
        let mut marks: BTreeMap<String, f64> = self
            .marks
            .iter()
            .map(|(u, s)| (u.to_string(), *s))
            .collect();
        marks.insert(self.u.to_string(), self.spot);
        Explanation {
            event_id: format!("ex-{id}").into(),
            event_time: self.t,
            underlying: self.u.into(),
            signal_id: format!("sig-{id}").into(),
            sector: self.sector.into(),
            direction: self.dir.into(),
            composite: self.composite,
            spot: self.spot,
            headline: format!("{} {}", self.u, self.dir),
            markdown: String::new(),
            text: String::new(),
            factors: Vec::new(),
            marks,
            html: String::new(),
            telegram: String::new(),
        }
    }
}

fn decide_with(gate: &mut RiskGate, inputs: Vec<Ex>) -> Vec<RiskDecision> {
    let mut steps: Vec<_> = inputs.into_iter().map(|e| Step::Event(e.build())).collect();
    steps.push(Step::Watermark(i64::MAX));
    run(gate, steps).unwrap().events
}

fn decide(cfg: RiskGateConfig, calendar: &str, inputs: Vec<Ex>) -> Vec<RiskDecision> {
    let cal = Calendar::parse_csv(calendar).unwrap();
    decide_with(&mut cfg.build().unwrap().with_calendar(&cal), inputs)
}

fn rules(d: &[RiskDecision]) -> Vec<&str> {
    d.iter().map(|d| d.rule.as_str()).collect()
}

fn roomy() -> RiskGateConfig {
    RiskGateConfig {
        max_open_signals: 100,
        max_per_sector: 100,
        max_per_underlying: 100,
        max_underlying_exposure: 100.0,
        ..Default::default()
    }
}

const FOMC: &str =
    "start,end,scope,kind,note\n2021-01-27,,all,fomc,FOMC statement: rates unchanged\n";

#[test]
fn an_fomc_day_blacks_out_every_signal_and_only_that_day() {
    let d = decide(
        roomy(),
        FOMC,
        vec![
            Ex::new("GME", "bullish", ny(2021, 1, 26, 15, 59)),
            Ex::new("SPY", "bearish", ny(2021, 1, 27, 0, 0)),
            Ex::new("AAPL", "bullish", ny(2021, 1, 27, 14, 0)).sector("Financials"),
            Ex::new("MSFT", "volatility", ny(2021, 1, 27, 23, 59)),
            Ex::new("QQQ", "bearish", ny(2021, 1, 28, 0, 0)),
        ],
    );
    assert_eq!(
        rules(&d),
        ["approved", "blackout", "blackout", "blackout", "approved"]
    );
    assert!(!d[1].approved);
    assert!(
        d[1].reason.contains("FOMC on 2021-01-27")
            && d[1].reason.contains("every underlying")
            && d[1].reason.contains("rates unchanged"),
        "{}",
        d[1].reason
    );
}

#[test]
fn earnings_black_out_one_underlying_from_the_weekday_before() {
    let cal = "2021-01-27,,underlying:AAPL,earnings,Apple Q1 FY21 after the close\n\
               2021-01-25 09:30,2021-01-25 10:30,sector:Energy,other,OPEC call\n";
    let d = decide(
        roomy(),
        cal,
        vec![
            Ex::new("XOM", "bullish", ny(2021, 1, 25, 10, 0)).sector("Energy"),
            Ex::new("AAPL", "bullish", ny(2021, 1, 25, 11, 0)),
            Ex::new("AAPL", "bearish", ny(2021, 1, 26, 10, 0)),
            Ex::new("MSFT", "bullish", ny(2021, 1, 27, 10, 0)),
            Ex::new("AAPL", "volatility", ny(2021, 1, 27, 15, 0)),
            Ex::new("AAPL", "bearish", ny(2021, 1, 28, 10, 0)),
        ],
    );
    assert_eq!(
        rules(&d),
        ["blackout", "approved", "blackout", "approved", "blackout", "approved"]
    );
    assert!(
        d[2].reason
            .contains("AAPL earnings on 2021-01-27 (blackout 2021-01-26 to 2021-01-27)"),
        "{}",
        d[2].reason
    );
    assert!(d[0].reason.contains("OPEC call"), "{}", d[0].reason);
    // Wider windows come from the configuration, not the file.
    let wide = RiskGateConfig {
        earnings_days_before: 2,
        earnings_days_after: 1,
        ..roomy()
    };
    let d = decide(
        wide,
        cal,
        vec![
            Ex::new("AAPL", "bullish", ny(2021, 1, 25, 11, 0)),
            Ex::new("AAPL", "bearish", ny(2021, 1, 28, 10, 0)),
        ],
    );
    assert_eq!(rules(&d), ["blackout", "blackout"]);
}

#[test]
fn underlying_caps_count_signals_and_weigh_exposure() {
    let cfg = RiskGateConfig {
        max_per_underlying: 2,
        ..roomy()
    };
    let t = t0();
    let d = decide(
        cfg,
        "",
        vec![
            Ex::new("GME", "bullish", t),
            Ex::new("GME", "bearish", t + M),
            Ex::new("GME", "volatility", t + 2 * M),
            Ex::new("AMC", "volatility", t + 3 * M),
        ],
    );
    assert_eq!(
        rules(&d),
        ["approved", "approved", "underlying_cap", "approved"]
    );
    assert_eq!(d[2].reason, "2 signals open on GME, limit 2");

    let cfg = RiskGateConfig {
        max_underlying_exposure: 1.5,
        ..roomy()
    };
    let d = decide(
        cfg,
        "",
        vec![
            Ex::new("GME", "bullish", t).composite(90.0),
            Ex::new("GME", "bearish", t + M).composite(80.0),
            Ex::new("GME", "volatility", t + 2 * M).composite(60.0),
        ],
    );
    assert_eq!(rules(&d), ["approved", "underlying_exposure", "approved"]);
    assert!(
        d[1].reason
            .starts_with("exposure on GME would be 1.70 (open 0.90 + this 0.80"),
        "{}",
        d[1].reason
    );
}

#[test]
fn positions_mark_by_direction() {
    assert!((signal_pnl("bullish", 100.0, 110.0, 0.01) - 0.10).abs() < 1e-12);
    assert!((signal_pnl("bearish", 100.0, 110.0, 0.01) + 0.10).abs() < 1e-12);
    assert!((signal_pnl("volatility", 100.0, 95.0, 0.01) - 0.04).abs() < 1e-12);
    assert!((signal_pnl("volatility", 100.0, 100.5, 0.01) + 0.005).abs() < 1e-12);
    assert_eq!(signal_pnl("bullish", 0.0, 110.0, 0.01), 0.0);
    assert_eq!(signal_pnl("bullish", 100.0, f64::NAN, 0.01), 0.0);
}

/// One unit of capital: a 10% loss on one signal is a 10% drawdown.
fn small_book(action: DrawdownAction) -> RiskGateConfig {
    RiskGateConfig {
        drawdown_capital: 1.0,
        drawdown_limit: 0.05,
        drawdown_action: action,
        drawdown_min_composite: 90.0,
        hold_secs: 600,
        drawdown_window_secs: 3600,
        ..roomy()
    }
}

#[test]
fn a_drawdown_raises_the_bar() {
    let t = t0();
    let d = decide(
        small_book(DrawdownAction::RaiseBar),
        "",
        vec![
            Ex::new("GME", "bullish", t).spot(100.0),
            // AMC's explanation carries GME's latest spot, 90: GME is 10% under water.
            Ex::new("AMC", "bullish", t + M).spot(5.0).mark("GME", 90.0),
            Ex::new("AMC", "bearish", t + 2 * M)
                .spot(5.0)
                .mark("GME", 90.0)
                .composite(95.0),
        ],
    );
    assert_eq!(rules(&d), ["approved", "drawdown_raise_bar", "approved"]);
    assert_eq!((d[0].equity, d[0].drawdown), (1.0, 0.0));
    assert!((d[1].drawdown - 0.10).abs() < 1e-12, "{}", d[1].drawdown);
    assert!((d[1].equity - 0.90).abs() < 1e-12);
    assert!(
        d[1].reason
            .contains("drawdown 10.00% of peak equity 1.0000 (now 0.9000), limit 5.00%")
            && d[1]
                .reason
                .contains("composite 80.00 is under the raised bar 90.00"),
        "{}",
        d[1].reason
    );
    assert!(
        d[2].reason.contains("clears the raised bar"),
        "{}",
        d[2].reason
    );
}

#[test]
fn a_drawdown_stops_everything_and_lifts_when_marks_recover() {
    let t = t0();
    let d = decide(
        small_book(DrawdownAction::Stop),
        "",
        vec![
            Ex::new("GME", "bearish", t).spot(100.0),
            Ex::new("AMC", "bullish", t + M)
                .mark("GME", 106.0)
                .composite(99.0),
            // GME falls back to 101 while still open: the drawdown is 1%, under the limit.
            Ex::new("AMC", "bearish", t + 2 * M).mark("GME", 101.0),
        ],
    );
    assert_eq!(rules(&d), ["approved", "drawdown_stop", "approved"]);
    assert!(
        d[1].reason.starts_with(
            "drawdown 6.00% of peak equity 1.0000 (now 0.9400), limit 5.00%: no new signals"
        ),
        "{}",
        d[1].reason
    );
    assert!((d[2].drawdown - 0.01).abs() < 1e-12, "{}", d[2].drawdown);
}

#[test]
fn a_realized_loss_holds_the_stop_until_it_leaves_the_window() {
    let t = t0();
    let d = decide(
        small_book(DrawdownAction::Stop),
        "",
        vec![
            Ex::new("GME", "bullish", t).spot(100.0),
            Ex::new("AMC", "bullish", t + M).mark("GME", 90.0),
            // GME's hold ended at t + 10 min: realized at its last mark, 90, whatever GME is now.
            Ex::new("AMC", "bullish", t + 11 * M).mark("GME", 120.0),
            Ex::new("AMC", "bullish", t + 59 * M).mark("GME", 120.0),
            // An hour after the peak, the peak is the flat equity of 0.9 itself.
            Ex::new("AMC", "bullish", t + 61 * M).mark("GME", 120.0),
        ],
    );
    assert_eq!(
        rules(&d),
        [
            "approved",
            "drawdown_stop",
            "drawdown_stop",
            "drawdown_stop",
            "approved"
        ]
    );
    assert_eq!(d[2].open_signals, 0, "the GME position has closed");
    assert!((d[2].equity - 0.90).abs() < 1e-12, "{}", d[2].equity);
    assert!((d[4].equity - 0.90).abs() < 1e-12);
    assert_eq!(d[4].drawdown, 0.0);
}

#[test]
fn the_older_rules_still_decide_in_their_order() {
    let cfg = RiskGateConfig {
        max_open_signals: 3,
        max_per_sector: 2,
        hold_secs: 600,
        ..Default::default()
    };
    let t = t0();
    let d = decide(
        cfg,
        "",
        vec![
            Ex::new("GME", "bullish", t).sector("Retail"),
            Ex::new("GME", "bullish", t + M).sector("Retail"),
            Ex::new("AMC", "bullish", t + 2 * M).sector("Retail"),
            Ex::new("BBBY", "bullish", t + 3 * M).sector("Retail"),
            Ex::new("SPY", "bearish", t + 4 * M).sector("Index"),
            Ex::new("QQQ", "bearish", t + 5 * M).sector("Index"),
        ],
    );
    assert_eq!(
        rules(&d),
        [
            "approved",
            "already_open",
            "approved",
            "sector_cap",
            "approved",
            "max_open_signals"
        ]
    );
}

#[test]
fn a_restored_snapshot_decides_exactly_like_the_uninterrupted_run() {
    let cfg = RiskGateConfig {
        max_per_underlying: 2,
        ..small_book(DrawdownAction::RaiseBar)
    };
    let cal = Calendar::parse_csv(FOMC).unwrap();
    let t = ny(2021, 1, 26, 15, 0);
    let day = 24 * 60 * M;
    let inputs = || {
        vec![
            Ex::new("GME", "bullish", t).spot(100.0),
            // GME at 92: an 8% drawdown raises the bar to 90.
            Ex::new("AMC", "bullish", t + M)
                .spot(10.0)
                .mark("GME", 92.0),
            Ex::new("GME", "bearish", t + 2 * M)
                .spot(92.0)
                .composite(95.0),
            Ex::new("GME", "volatility", t + 3 * M)
                .spot(92.0)
                .composite(95.0),
            // The next day is the FOMC day.
            Ex::new("SPY", "bearish", t + day).mark("GME", 93.0),
            Ex::new("AMC", "bullish", t + day + 20 * M)
                .mark("GME", 97.0)
                .composite(92.0),
            Ex::new("AMC", "bearish", t + 2 * day).mark("GME", 96.0),
            Ex::new("GME", "bullish", t + 2 * day + M).spot(95.0),
        ]
    };
    let steps = || -> Vec<Step<Explanation>> {
        inputs()
            .into_iter()
            .flat_map(|e| {
                let at = e.t;
                [Step::Event(e.build()), Step::Watermark(at)]
            })
            .collect()
    };
    let mut whole = cfg.build().unwrap().with_calendar(&cal);
    let expected = run(&mut whole, steps()).unwrap().events;
    assert_eq!(expected.len(), 8);
    assert!(rules(&expected).contains(&"blackout"));
    assert!(rules(&expected).contains(&"drawdown_raise_bar"));
    assert!(rules(&expected).contains(&"underlying_cap"));
    for cut in 1..steps().len() {
        let mut first = cfg.build().unwrap().with_calendar(&cal);
        let mut got = run(&mut first, steps().into_iter().take(cut))
            .unwrap()
            .events;
        let snap = first.snapshot().unwrap();
        let mut second = cfg.build().unwrap().with_calendar(&cal);
        second.restore(&snap).unwrap();
        assert_eq!(second.snapshot().unwrap(), snap);
        got.extend(
            run(&mut second, steps().into_iter().skip(cut))
                .unwrap()
                .events,
        );
        assert_eq!(got, expected, "cut after step {cut}");
    }
}

#[test]
fn validation_reports_every_problem() {
    let cfg = RiskGateConfig {
        max_per_underlying: 0,
        max_underlying_exposure: f64::NAN,
        drawdown_capital: 0.0,
        drawdown_limit: 1.5,
        drawdown_min_composite: 101.0,
        drawdown_window_secs: 0,
        volatility_expected_move: -0.1,
        calendar_file: Some(" ".into()),
        earnings_days_before: 31,
        ..Default::default()
    };
    let err = cfg.validate().unwrap_err().to_string();
    for key in [
        "max-per-underlying",
        "max-underlying-exposure",
        "drawdown-capital",
        "drawdown-limit",
        "drawdown-min-composite",
        "drawdown-window-secs",
        "volatility-expected-move",
        "calendar-file",
        "earnings-days-before",
    ] {
        assert!(
            err.contains(&format!("- {key}:")),
            "{key} missing from {err}"
        );
    }
    assert!(RiskGateConfig::default().validate().is_ok());
    let bad = serde_json::from_str::<RiskGateConfig>(r#"{"drawdown-action": "halt"}"#)
        .unwrap_err()
        .to_string();
    assert!(bad.contains("raise-bar") && bad.contains("stop"), "{bad}");
}
