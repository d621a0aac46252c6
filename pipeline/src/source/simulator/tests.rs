use super::*;
use optionflow_schemas::time::{MICROS_PER_MINUTE, MICROS_PER_YEAR};
use std::collections::{BTreeMap, BTreeSet};

/// 2024-01-02 09:30 New York.
const START: i64 = 1_704_205_800_000_000;
const MINUTE: i64 = MICROS_PER_MINUTE;

fn run(cfg: &SimulatorConfig, seed: u64, names: usize, duration: i64) -> Vec<RawEvent> {
    let mut sim = Simulator::new(cfg, seed, names, duration).unwrap();
    let mut out = Vec::new();
    while sim.next_tick(&mut out).is_some() {}
    out
}

/// Byte-for-byte comparison (a NaN bid would defeat `PartialEq`).
fn bytes(events: &[RawEvent]) -> Vec<u8> {
    postcard::to_allocvec(events).unwrap()
}

fn quotes(events: &[RawEvent]) -> impl Iterator<Item = &RawQuote> {
    events.iter().filter_map(|e| match e {
        RawEvent::Quote(q) => Some(q),
        RawEvent::Tick(_) => None,
    })
}

fn ticks<'a>(
    events: &'a [RawEvent],
    underlying: &'a str,
) -> impl Iterator<Item = &'a UnderlyingTick> {
    events.iter().filter_map(move |e| match e {
        RawEvent::Tick(t) if t.underlying == underlying => Some(t),
        _ => None,
    })
}

fn is_bad(q: &RawQuote) -> bool {
    q.bid.is_nan()
        || q.bid < 0.0
        || q.ask < 0.0
        || q.bid > q.ask
        || (q.bid == 0.0 && q.ask == 0.0)
        || q.symbol.len() != 21
}

fn coarse(ms: u64) -> SimulatorConfig {
    SimulatorConfig {
        tick_interval_ms: ms,
        ..SimulatorConfig::default()
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_market() {
    let cfg = SimulatorConfig::default();
    let a = run(&cfg, 7, 3, 3 * MINUTE);
    let b = run(&cfg, 7, 3, 3 * MINUTE);
    assert!(!a.is_empty());
    assert_eq!(bytes(&a), bytes(&b));
    let c = run(&cfg, 8, 3, 3 * MINUTE);
    assert_ne!(bytes(&a), bytes(&c));
}

#[test]
fn adding_names_leaves_the_others_unchanged() {
    let cfg = SimulatorConfig::default();
    let one = run(&cfg, 3, 1, 2 * MINUTE);
    let three = run(&cfg, 3, 3, 2 * MINUTE);
    let spy: Vec<_> = three
        .iter()
        .filter(|e| e.underlying() == "SPY")
        .cloned()
        .collect();
    assert_eq!(bytes(&one), bytes(&spy));
}

#[test]
fn event_ids_are_unique_and_layout_is_tick_then_quotes() {
    let events = run(&SimulatorConfig::default(), 1, 5, 2 * MINUTE);
    let ids: BTreeSet<&str> = events.iter().map(|e| e.event_id()).collect();
    assert_eq!(ids.len(), events.len());
    // Per tick: each underlying's tick, then its quotes, in universe order.
    let mut current = "";
    let mut seen = Vec::new();
    for e in &events {
        match e {
            RawEvent::Tick(t) => {
                current = UNIVERSE
                    .iter()
                    .find(|u| u.symbol == t.underlying)
                    .unwrap()
                    .symbol;
                seen.push(current);
            }
            RawEvent::Quote(q) => assert_eq!(q.underlying, current),
        }
    }
    let order: Vec<&str> = UNIVERSE[..5].iter().map(|u| u.symbol).collect();
    assert!(seen.chunks(5).all(|c| c == order.as_slice()));
}

#[test]
fn snapshot_and_restore_continue_the_same_stream() {
    // Coarse ticks so the run crosses a night (the chain relists) after the snapshot.
    let cfg = coarse(60_000);
    let duration = 2 * SESSION_MICROS;
    let mut sim = Simulator::new(&cfg, 11, 3, duration).unwrap();
    let mut head = Vec::new();
    for _ in 0..300 {
        sim.next_tick(&mut head).unwrap();
    }
    let state = sim.snapshot().unwrap();
    let mut rest = Vec::new();
    while sim.next_tick(&mut rest).is_some() {}

    let mut fresh = Simulator::new(&cfg, 11, 3, duration).unwrap();
    fresh.restore(&state).unwrap();
    let mut again = Vec::new();
    while fresh.next_tick(&mut again).is_some() {}
    assert!(rest.len() > head.len());
    assert_eq!(bytes(&rest), bytes(&again));

    let mut other = Simulator::new(&cfg, 12, 3, duration).unwrap();
    assert!(matches!(
        other.restore(&state),
        Err(SimulatorError::Mismatch)
    ));
    assert!(matches!(
        fresh.restore(&state[..10]),
        Err(SimulatorError::Decode(_))
    ));
}

#[test]
fn market_time_skips_nights_and_weekends() {
    // Friday 2024-01-05, two sessions: Friday and Monday.
    let cfg = SimulatorConfig {
        start_date: "2024-01-05".into(),
        ..coarse(60_000)
    };
    let mut sim = Simulator::new(&cfg, 1, 1, 2 * SESSION_MICROS).unwrap();
    let fri_open = 1_704_465_000_000_000; // 2024-01-05 14:30 UTC
    let mon_open = 1_704_724_200_000_000; // 2024-01-08 14:30 UTC
    assert_eq!(sim.start_time(), fri_open);
    assert_eq!(sim.end_time(), mon_open + SESSION_MICROS);
    let mut times = Vec::new();
    let mut out = Vec::new();
    while let Some(t) = sim.next_tick(&mut out) {
        times.push(t);
    }
    assert_eq!(times.len(), 780);
    assert_eq!(times[0], fri_open);
    assert_eq!(times[389], fri_open + SESSION_MICROS - MINUTE);
    assert_eq!(times[390], mon_open);
    assert_eq!(*times.last().unwrap(), mon_open + SESSION_MICROS - MINUTE);
    assert!(times.windows(2).all(|w| w[0] < w[1]));

    // A weekend start date opens on Monday; a part session ends mid-day.
    let cfg = SimulatorConfig {
        start_date: "2024-01-06".into(),
        ..coarse(60_000)
    };
    let sim = Simulator::new(&cfg, 1, 1, SESSION_MICROS + 30 * MINUTE).unwrap();
    assert_eq!(sim.start_time(), mon_open);
    assert_eq!(sim.end_time(), mon_open + 86_400_000_000 + 30 * MINUTE);
    // The default start is the documented one.
    let sim = Simulator::new(&SimulatorConfig::default(), 1, 1, MINUTE).unwrap();
    assert_eq!(sim.start_time(), START);
}

/// Parses an OCC symbol into (root, expiry, is_call, strike), checking every character.
fn parse_occ(s: &str) -> Option<(String, NaiveDate, bool, f64)> {
    if s.len() != 21 || !s.is_ascii() {
        return None;
    }
    let root = s[..6].trim_end();
    if root.is_empty()
        || !root.bytes().all(|b| b.is_ascii_uppercase())
        || s[..6].trim_end() != root.trim()
    {
        return None;
    }
    let date = NaiveDate::parse_from_str(&format!("20{}", &s[6..12]), "%Y%m%d").ok()?;
    let is_call = match &s[12..13] {
        "C" => true,
        "P" => false,
        _ => return None,
    };
    if !s[13..].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let strike = s[13..].parse::<i64>().ok()? as f64 / 1000.0;
    Some((root.to_string(), date, is_call, strike))
}

#[test]
fn occ_symbols_are_well_formed_and_chains_relist() {
    use chrono::Datelike;
    let cfg = SimulatorConfig {
        start_date: "2024-01-05".into(),
        ..coarse(30_000)
    };
    let events = run(&cfg, 5, 20, 2 * SESSION_MICROS);
    let monday = calendar::parse_date("2024-01-08").unwrap();
    let mut per_contract: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    let mut friday_expiries = BTreeSet::new();
    let mut monday_expiries = BTreeSet::new();
    let mut n = 0;
    for q in quotes(&events).filter(|q| !is_bad(q)) {
        n += 1;
        let (root, expiry, _, strike) =
            parse_occ(&q.symbol).unwrap_or_else(|| panic!("malformed {:?}", q.symbol));
        assert_eq!(root, q.underlying);
        assert_eq!(expiry.weekday(), chrono::Weekday::Fri, "{}", q.symbol);
        assert!(strike > 0.0);
        assert!(q.bid >= 0.0 && q.ask > q.bid, "{q:?}");
        assert!(q.underlying_price.is_some_and(|p| p > 0.0));
        assert_eq!(q.last.is_some(), q.volume > 0, "{q:?}");
        assert!(q.open_interest >= 0);
        assert_eq!(q.source, SOURCE);
        let session_monday = q.event_time >= 1_704_724_200_000_000;
        if session_monday {
            monday_expiries.insert(expiry);
            assert!(expiry >= monday, "{} listed after it expired", q.symbol);
        } else {
            friday_expiries.insert(expiry);
        }
        // Cumulative volume never falls within a session.
        let (last_time, last_volume) = per_contract.entry(&q.symbol).or_insert((0, 0));
        let same_session = (*last_time >= 1_704_724_200_000_000) == session_monday;
        assert!(!same_session || q.volume >= *last_volume, "{q:?}");
        *last_time = q.event_time;
        *last_volume = q.volume;
    }
    assert!(n > 100_000, "{n}");
    let friday = calendar::parse_date("2024-01-05").unwrap();
    assert!(
        friday_expiries.contains(&friday),
        "a Friday session lists its own expiry"
    );
    assert!(
        !monday_expiries.contains(&friday),
        "expired expiries drop off"
    );
    assert_eq!(friday_expiries.len(), 5);
    assert_eq!(monday_expiries.len(), 5);
    // Monday lists a new weekly in place of Friday's expired one.
    assert!(monday_expiries.iter().any(|d| !friday_expiries.contains(d)));
}

/// Sum of per-tick volume increments of the contracts matching `pick`, per tick, over ticks
/// in `[from, to)` minutes after the start.
fn volume_rate(
    events: &[RawEvent],
    underlying: &str,
    from: i64,
    to: i64,
    pick: impl Fn(&RawQuote) -> bool,
) -> f64 {
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    let mut traded = 0;
    for q in quotes(events).filter(|q| q.underlying == underlying && !is_bad(q)) {
        let before = last.insert(&q.symbol, q.volume).unwrap_or(0);
        let (a, b) = (START + from * MINUTE, START + to * MINUTE);
        if (a..b).contains(&q.event_time) && pick(q) {
            traded += q.volume - before;
        }
    }
    traded as f64 / ((to - from) * 60) as f64
}

fn price_at(events: &[RawEvent], underlying: &str, minute: i64) -> f64 {
    let t = START + minute * MINUTE;
    ticks(events, underlying)
        .take_while(|k| k.event_time <= t)
        .last()
        .unwrap()
        .price
}

/// Black IV of a quote's mid, from its symbol and underlying price.
fn quote_iv(q: &RawQuote) -> Option<(f64, f64, f64)> {
    use implied_vol::{DefaultSpecialFn, ImpliedBlackVolatility};
    let (_, expiry, is_call, strike) = parse_occ(&q.symbol)?;
    let expiry = calendar::ny_micros(expiry, 16, 0)?;
    let years = (expiry - q.event_time) as f64 / MICROS_PER_YEAR;
    let spot = q.underlying_price?;
    let fwd = spot * (market::RATE * years).exp();
    let undiscounted = 0.5 * (q.bid + q.ask) * (market::RATE * years).exp();
    let iv = ImpliedBlackVolatility::builder()
        .option_price(undiscounted)
        .forward(fwd)
        .strike(strike)
        .expiry(years)
        .is_call(is_call)
        .build()?
        .calculate::<DefaultSpecialFn>()?;
    Some((iv, strike / spot, years * 365.0))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The default session of the end-to-end tests: GME squeeze at +10m..+25m, SPY crash at
/// +40m..+55m.
fn default_session() -> &'static Vec<RawEvent> {
    static EVENTS: std::sync::OnceLock<Vec<RawEvent>> = std::sync::OnceLock::new();
    EVENTS.get_or_init(|| run(&SimulatorConfig::default(), 7, 3, 60 * MINUTE))
}

#[test]
fn the_squeeze_trends_up_with_a_call_frenzy_and_a_bid_call_wing() {
    let events = default_session();
    let before = price_at(events, "GME", 10);
    let after = price_at(events, "GME", 25);
    assert!(after / before > 1.25, "GME {before} -> {after}");
    let calm_calls = volume_rate(events, "GME", 1, 10, |q| q.symbol.as_bytes()[12] == b'C');
    let hot_calls = volume_rate(events, "GME", 13, 25, |q| q.symbol.as_bytes()[12] == b'C');
    assert!(
        hot_calls > 8.0 * calm_calls,
        "calls/s calm {calm_calls:.1}, squeeze {hot_calls:.1}"
    );
    let calm_puts = volume_rate(events, "GME", 1, 10, |q| q.symbol.as_bytes()[12] == b'P');
    let hot_puts = volume_rate(events, "GME", 13, 25, |q| q.symbol.as_bytes()[12] == b'P');
    assert!(
        hot_puts / calm_puts < hot_calls / calm_calls / 3.0,
        "puts {calm_puts:.1} -> {hot_puts:.1}"
    );
    // Out-of-the-money call IVs (7+ days, strikes 5–30% above spot) rise by tens of points.
    let wing = |from: i64, to: i64| {
        let ivs: Vec<f64> = quotes(events)
            .filter(|q| q.underlying == "GME" && !is_bad(q) && q.symbol.as_bytes()[12] == b'C')
            .filter(|q| (START + from * MINUTE..START + to * MINUTE).contains(&q.event_time))
            .filter_map(quote_iv)
            .filter(|&(_, m, days)| (1.05..1.3).contains(&m) && days >= 7.0)
            .map(|(iv, _, _)| iv)
            .collect();
        assert!(ivs.len() > 20, "{}", ivs.len());
        median(ivs)
    };
    let (calm_iv, hot_iv) = (wing(2, 10), wing(18, 25));
    assert!(
        hot_iv - calm_iv > 0.2,
        "GME call wing IV {calm_iv:.3} -> {hot_iv:.3}"
    );
    // Calm again after it: flow back near normal.
    let later = volume_rate(events, "GME", 32, 60, |q| q.symbol.as_bytes()[12] == b'C');
    assert!(
        later < 3.0 * calm_calls,
        "calls/s after the squeeze {later:.1} vs {calm_calls:.1}"
    );
}

#[test]
fn the_crash_gaps_spy_down_with_put_flow_and_a_steeper_skew() {
    let events = default_session();
    let before = price_at(events, "SPY", 39);
    let gap = price_at(events, "SPY", 40);
    let low = price_at(events, "SPY", 55);
    assert!(gap / before < 0.94, "SPY gap {before} -> {gap}");
    assert!(low / before < 0.92, "SPY {before} -> {low}");
    let calm = volume_rate(events, "SPY", 1, 39, |q| q.symbol.as_bytes()[12] == b'P');
    let hot = volume_rate(events, "SPY", 40, 55, |q| q.symbol.as_bytes()[12] == b'P');
    assert!(hot > 5.0 * calm, "puts/s calm {calm:.1}, crash {hot:.1}");
    // ATM IV jumps; the put wing's premium over ATM widens.
    let iv_by = |from: i64, to: i64, band: std::ops::Range<f64>| {
        median(
            quotes(events)
                .filter(|q| q.underlying == "SPY" && !is_bad(q) && q.symbol.as_bytes()[12] == b'P')
                .filter(|q| (START + from * MINUTE..START + to * MINUTE).contains(&q.event_time))
                .filter_map(quote_iv)
                .filter(|(_, m, days)| band.contains(m) && *days >= 7.0)
                .map(|(iv, _, _)| iv)
                .collect(),
        )
    };
    let (atm0, atm1) = (iv_by(20, 39, 0.98..1.02), iv_by(45, 55, 0.98..1.02));
    let (put0, put1) = (iv_by(20, 39, 0.90..0.95), iv_by(45, 55, 0.90..0.95));
    assert!(atm1 > 1.6 * atm0, "ATM IV {atm0:.3} -> {atm1:.3}");
    assert!(
        put1 - atm1 > put0 - atm0,
        "skew {:.3} -> {:.3}",
        put0 - atm0,
        put1 - atm1
    );
    // GME and AAPL are untouched by SPY's crash: no put frenzy there.
    let aapl0 = volume_rate(events, "AAPL", 1, 39, |_| true);
    let aapl1 = volume_rate(events, "AAPL", 40, 55, |_| true);
    assert!(aapl1 < 2.0 * aapl0, "AAPL {aapl0:.1} -> {aapl1:.1}");
}

#[test]
fn squeeze_call_open_interest_grows_at_the_next_session() {
    let cfg = SimulatorConfig {
        events: vec![RegimeEventConfig {
            kind: RegimeKind::Squeeze,
            underlying: "GME".into(),
            start_after: "30m".into(),
            duration: "15m".into(),
        }],
        ..coarse(5_000)
    };
    let events = run(&cfg, 2, 2, SESSION_MICROS + 30 * MINUTE);
    let day2 = START + 86_400_000_000;
    let mut oi: [BTreeMap<&str, i64>; 2] = Default::default();
    for q in quotes(&events).filter(|q| q.underlying == "GME" && !is_bad(q)) {
        oi[usize::from(q.event_time >= day2)].insert(&q.symbol, q.open_interest);
    }
    let total = |call: bool| {
        let mut sums = [0i64; 2];
        for (s, v) in &oi[0] {
            if s.as_bytes()[12] == if call { b'C' } else { b'P' } {
                if let Some(w) = oi[1].get(s) {
                    sums[0] += v;
                    sums[1] += w;
                }
            }
        }
        sums
    };
    let [c0, c1] = total(true);
    let [p0, p1] = total(false);
    assert!(c1 as f64 > 1.3 * c0 as f64, "call OI {c0} -> {c1}");
    assert!((p1 as f64) < 1.3 * p0 as f64, "put OI {p0} -> {p1}");
}

#[test]
fn calm_markets_are_calm() {
    let cfg = SimulatorConfig {
        events: vec![],
        ..SimulatorConfig::default()
    };
    let events = run(&cfg, 9, 20, 30 * MINUTE);
    for spec in &UNIVERSE {
        let p: Vec<f64> = ticks(&events, spec.symbol).map(|t| t.price).collect();
        let (lo, hi) = p
            .iter()
            .fold((f64::MAX, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
        assert!(
            hi / lo < 1.0 + 0.2 * spec.vol,
            "{}: {lo}..{hi}",
            spec.symbol
        );
        let first = volume_rate(&events, spec.symbol, 1, 15, |_| true);
        let second = volume_rate(&events, spec.symbol, 15, 30, |_| true);
        let r = second / first;
        assert!(
            (0.5..2.0).contains(&r),
            "{}: flow {first:.1} -> {second:.1}",
            spec.symbol
        );
    }
}

#[test]
fn bad_quotes_come_at_the_configured_rate_in_every_kind() {
    let cfg = SimulatorConfig {
        bad_quote_rate: 0.01,
        ..SimulatorConfig::default()
    };
    let events = run(&cfg, 4, 20, 3 * MINUTE);
    let all: Vec<&RawQuote> = quotes(&events).collect();
    let bad: Vec<&&RawQuote> = all.iter().filter(|q| is_bad(q)).collect();
    let rate = bad.len() as f64 / all.len() as f64;
    assert!(
        (0.008..0.012).contains(&rate),
        "{} of {}",
        bad.len(),
        all.len()
    );
    assert!(bad.iter().any(|q| q.bid > q.ask));
    assert!(bad.iter().any(|q| q.bid.is_nan()));
    assert!(bad.iter().any(|q| q.bid == 0.0 && q.ask == 0.0));
    assert!(bad.iter().any(|q| q.ask < 0.0));
    assert!(bad.iter().any(|q| q.symbol == "GARBAGE"));
    assert!(bad.iter().any(|q| q.symbol.len() == 12));

    let none = SimulatorConfig {
        bad_quote_rate: 0.0,
        ..SimulatorConfig::default()
    };
    assert!(!quotes(&run(&none, 4, 3, MINUTE)).any(is_bad));
}

#[test]
fn scheduled_events_are_placed_on_event_time() {
    let sim = Simulator::new(&SimulatorConfig::default(), 1, 3, 60 * MINUTE).unwrap();
    let ev = sim.scheduled_events();
    assert_eq!(ev.len(), 2);
    assert_eq!(
        (ev[0].kind, ev[0].underlying.as_str()),
        (RegimeKind::Squeeze, "GME")
    );
    assert_eq!(
        (ev[0].start, ev[0].end),
        (START + 10 * MINUTE, START + 25 * MINUTE)
    );
    assert_eq!(
        (ev[1].kind, ev[1].underlying.as_str()),
        (RegimeKind::Crash, "SPY")
    );
    assert_eq!(
        (ev[1].start, ev[1].end),
        (START + 40 * MINUTE, START + 55 * MINUTE)
    );
    let spy_only = Simulator::new(&SimulatorConfig::default(), 1, 1, 60 * MINUTE).unwrap();
    assert_eq!(spy_only.scheduled_events().len(), 1);
    assert_eq!(spy_only.universe().len(), 1);
    assert_eq!(sim.universe()[1].symbol, "GME");
}

#[test]
fn validation_lists_every_problem() {
    assert_eq!(SimulatorConfig::default().validate(), Ok(()));
    let cfg = SimulatorConfig {
        start_date: "2024-02-30".into(),
        tick_interval_ms: 0,
        quote_probability: 1.5,
        expiries: 0,
        strikes_per_expiry: 0,
        bad_quote_rate: 0.9,
        events: vec![RegimeEventConfig {
            kind: RegimeKind::Crash,
            underlying: "ZZZZ".into(),
            start_after: "soon".into(),
            duration: "-5m".into(),
        }],
    };
    let problems = cfg.validate().unwrap_err();
    assert_eq!(problems.len(), 9, "{problems:#?}");
    assert!(
        problems.contains(&"simulator.quote-probability: must be in (0, 1], got 1.5".to_string())
    );
    for key in [
        "start-date",
        "tick-interval-ms",
        "expiries",
        "strikes-per-expiry",
        "bad-quote-rate",
        "events[0].underlying",
        "events[0].start-after",
        "events[0].duration",
    ] {
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(&format!("simulator.{key}: "))),
            "{key}: {problems:#?}"
        );
    }
    let err = Simulator::new(&cfg, 1, 1, MINUTE).unwrap_err().to_string();
    assert!(
        err.contains("simulator.expiries") && err.contains("simulator.bad-quote-rate"),
        "{err}"
    );
    // An event may start at the open.
    let at_open = SimulatorConfig {
        events: vec![RegimeEventConfig {
            kind: RegimeKind::Crash,
            underlying: "SPY".into(),
            start_after: "0m".into(),
            duration: "5m".into(),
        }],
        ..SimulatorConfig::default()
    };
    assert_eq!(at_open.validate(), Ok(()));
}

#[test]
fn constructor_refuses_bad_arguments() {
    let cfg = SimulatorConfig::default();
    let e = Simulator::new(&cfg, 1, 21, MINUTE).unwrap_err();
    assert!(e.to_string().contains("choose 1 to 20"), "{e}");
    assert!(Simulator::new(&cfg, 1, 0, MINUTE).is_err());
    assert!(matches!(
        Simulator::new(&cfg, 1, 1, 0),
        Err(SimulatorError::Duration(0))
    ));
    // A huge duration is fine: nothing is precomputed per session.
    let sim = Simulator::new(&cfg, 1, 1, 1_000 * SESSION_MICROS).unwrap();
    assert!(sim.end_time() > sim.start_time() + 1_000 * 86_400_000_000);
}

#[test]
fn config_reads_from_toml() {
    let text = r#"
        start-date = "2024-03-04"
        quote-probability = 0.2
        [[events]]
        kind = "crash"
        underlying = "QQQ"
        start-after = "1d"
        duration = "30m"
    "#;
    let cfg: SimulatorConfig = toml::from_str(text).unwrap();
    assert_eq!(cfg.quote_probability, 0.2);
    assert_eq!(cfg.expiries, 5);
    assert_eq!(cfg.events.len(), 1);
    assert_eq!(cfg.events[0].kind, RegimeKind::Crash);
    assert!(toml::from_str::<SimulatorConfig>("quote-prob = 0.2").is_err());
    assert!(toml::from_str::<SimulatorConfig>("[[events]]\nkind = \"melt\"\nunderlying = \"SPY\"\nstart-after = \"1m\"\nduration = \"1m\"").is_err());
    // The event starts at the second session's open.
    let sim = Simulator::new(&cfg, 1, 5, 2 * SESSION_MICROS).unwrap();
    let open2 = calendar::ny_micros(calendar::parse_date("2024-03-05").unwrap(), 9, 30).unwrap();
    assert_eq!(sim.scheduled_events()[0].start, open2);
    // Round trip through TOML, as the config fingerprint does.
    let back: SimulatorConfig =
        toml::from_str(&toml::to_string(&SimulatorConfig::default()).unwrap()).unwrap();
    assert_eq!(back, SimulatorConfig::default());
}

/// `cargo test --release -p optionflow-pipeline --lib source::simulator -- --ignored --nocapture`
#[test]
#[ignore = "timing; run in release"]
fn throughput() {
    let cfg = SimulatorConfig::default();
    let mut sim = Simulator::new(&cfg, 1, 20, 60 * MINUTE).unwrap();
    let mut out = Vec::with_capacity(1024);
    let (mut events, mut quotes) = (0usize, 0usize);
    let started = std::time::Instant::now();
    while sim.next_tick(&mut out).is_some() {
        events += out.len();
        quotes += out
            .iter()
            .filter(|e| matches!(e, RawEvent::Quote(_)))
            .count();
        out.clear();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{events} events ({quotes} quotes) in {secs:.3}s: {:.0} events/s, {:.0} quotes/s",
        events as f64 / secs,
        quotes as f64 / secs
    );
}
