//! Routing, grouping, dedupe, cooldown, silences and inhibition on hand-built decisions.

use super::matcher::{Label, Matcher};
use super::silence::{Silence, SilenceFile};
use super::*;
use crate::testing::{run, Step};
use optionflow_schemas::time::MICROS_PER_MINUTE;

const T: i64 = 1_611_325_800_000_000; // 2021-01-22 14:30 UTC
const M: i64 = MICROS_PER_MINUTE;

fn decision(u: &str, sector: &str, dir: &str, composite: f64, t: i64) -> RiskDecision {
    let id = format!("{u}-{dir}-{t}");
    RiskDecision {
        event_id: format!("dec-{id}").into(),
        event_time: t,
        underlying: u.into(),
        signal_id: format!("sig-{id}").into(),
        explanation_id: format!("ex-{id}").into(),
        sector: sector.into(),
        direction: dir.into(),
        composite,
        approved: true,
        rule: "approved".into(),
        reason: "within every limit".into(),
        open_signals: 1,
        drawdown: 0.0,
        equity: 0.0,
        html: format!("<p>{u}</p>"),
        telegram: format!("<b>{u}</b>"),
        headline: format!("{u} {dir} {composite:.0}/100"),
        text: format!("{u} text"),
        markdown: format!("**{u}**"),
    }
}

fn matching(underlying: &[&str]) -> Matcher {
    Matcher {
        underlying: underlying.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// Runs `cfg` over `decisions` (then a final watermark) and returns alerts and suppressions.
fn dispatch(
    cfg: &DispatchConfig,
    silences: Vec<Silence>,
    decisions: Vec<RiskDecision>,
) -> (Vec<Alert>, Vec<optionflow_schemas::RejectedQuote>) {
    let mut op = cfg.build().unwrap();
    op.set_silences(silences);
    let mut steps: Vec<_> = decisions.into_iter().map(Step::Event).collect();
    steps.push(Step::Watermark(i64::MAX));
    let out = run(&mut op, steps).unwrap();
    (out.events, out.rejected)
}

fn route(name: &str, m: Matcher, channels: &[&str]) -> RouteConfig {
    RouteConfig {
        name: name.into(),
        matcher: m,
        channels: channels.iter().map(|s| s.to_string()).collect(),
        cooldown_secs: None,
        group_by: vec![Label::Underlying],
        group_window_secs: 0,
        continue_matching: false,
    }
}

#[test]
fn routes_match_first_and_continue_adds_channels() {
    let mut meme = route("meme", matching(&["GME", "AMC"]), &["telegram"]);
    meme.continue_matching = true;
    let high = route(
        "high",
        Matcher {
            min_composite: Some(90.0),
            ..Default::default()
        },
        &["webhook"],
    );
    let cfg = DispatchConfig {
        routes: vec![meme, high],
        ..Default::default()
    };
    let (alerts, _) = dispatch(
        &cfg,
        vec![],
        vec![
            decision("GME", "Retail", "bullish", 95.0, T),
            decision("AMC", "Media", "bullish", 80.0, T + M),
            decision("AAPL", "Tech", "bearish", 92.0, T + 2 * M),
            decision("MSFT", "Tech", "bearish", 70.0, T + 3 * M),
        ],
    );
    let got: Vec<(&str, &str, &str)> = alerts
        .iter()
        .map(|a| (a.underlying.as_str(), a.route.as_str(), a.channel.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("GME", "meme", "telegram"),
            ("GME", "high", "webhook"),
            ("AMC", "meme", "telegram"),
            ("AAPL", "high", "webhook"),
            ("MSFT", "default", "file"),
        ]
    );
    let ids: BTreeSet<&str> = alerts.iter().map(|a| a.event_id.as_str()).collect();
    assert_eq!(ids.len(), alerts.len(), "alert ids are distinct");
}

#[test]
fn a_group_window_gathers_one_underlyings_signals_into_one_message() {
    let cfg = DispatchConfig {
        group_window_secs: 120,
        cooldown_secs: 0,
        ..Default::default()
    };
    let (alerts, suppressed) = dispatch(
        &cfg,
        vec![],
        vec![
            decision("GME", "Retail", "bullish", 91.0, T),
            decision("GME", "Retail", "volatility", 88.0, T + M),
            decision("AMC", "Media", "bullish", 85.0, T + M),
            // The GME window is [T, T + 2m): this one opens the next group.
            decision("GME", "Retail", "bullish", 93.0, T + 2 * M),
        ],
    );
    assert!(suppressed.is_empty());
    let got: Vec<(&str, i64, usize, &str)> = alerts
        .iter()
        .map(|a| {
            (
                a.underlying.as_str(),
                a.event_time,
                a.signal_ids.len(),
                a.direction.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("GME", T + 2 * M, 2, "mixed"),
            ("AMC", T + 3 * M, 1, "bullish"),
            ("GME", T + 4 * M, 1, "bullish"),
        ]
    );
    let first = &alerts[0];
    assert!(
        first.headline.starts_with("GME: 2 signals"),
        "{}",
        first.headline
    );
    assert_eq!(first.composite, 91.0);
    assert!(first.text.contains("GME text"));
}

#[test]
fn dedupe_and_cooldown_are_per_route_and_key() {
    let mut by_dir = route("by-direction", matching(&["GME"]), &["file"]);
    by_dir.group_by = vec![Label::Underlying, Label::Direction];
    let cfg = DispatchConfig {
        routes: vec![by_dir],
        cooldown_secs: 600,
        ..Default::default()
    };
    let first = decision("GME", "Retail", "bullish", 91.0, T);
    let (alerts, suppressed) = dispatch(
        &cfg,
        vec![],
        vec![
            first.clone(),
            // Another key (direction) on the same route: not cooling down.
            decision("GME", "Retail", "bearish", 90.0, T + M),
            // Same key inside the cooldown.
            decision("GME", "Retail", "bullish", 92.0, T + 5 * M),
            // The same signal again, under a new decision id: a duplicate.
            RiskDecision {
                event_id: "dec-again".into(),
                event_time: T + 20 * M,
                ..first
            },
            // Default route: its own cooldown per underlying.
            decision("AMC", "Media", "bullish", 90.0, T + 2 * M),
            decision("AMC", "Media", "bullish", 90.0, T + 3 * M),
        ],
    );
    let sent: Vec<(&str, &str, &str)> = alerts
        .iter()
        .map(|a| {
            (
                a.underlying.as_str(),
                a.direction.as_str(),
                a.group_key.as_str(),
            )
        })
        .collect();
    assert_eq!(
        sent,
        [
            ("GME", "bullish", "GME/bullish"),
            ("GME", "bearish", "GME/bearish"),
            ("AMC", "bullish", "AMC"),
        ]
    );
    let reasons: Vec<(&str, &str)> = suppressed
        .iter()
        .map(|r| (r.underlying.as_str(), r.reason_code.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("AMC", "cooldown"),
            ("GME", "cooldown"),
            ("GME", "duplicate")
        ]
    );
    assert!(
        suppressed[1].reason.contains("cooldown 600s"),
        "{}",
        suppressed[1].reason
    );
    assert_eq!(suppressed[1].symbol, "by-direction", "names the route");
}

#[test]
fn silences_mute_by_matcher_inside_their_time_range_only() {
    let silence = Silence {
        id: "s1".into(),
        matcher: Matcher {
            underlying: vec!["GME".into()],
            direction: vec!["bullish".into()],
            ..Default::default()
        },
        starts_at: T + M,
        ends_at: T + 10 * M,
        comment: "earnings call".into(),
    };
    let cfg = DispatchConfig {
        cooldown_secs: 0,
        ..Default::default()
    };
    let (alerts, suppressed) = dispatch(
        &cfg,
        vec![silence],
        vec![
            decision("GME", "Retail", "bullish", 91.0, T),
            decision("GME", "Retail", "bullish", 92.0, T + 2 * M),
            decision("GME", "Retail", "bearish", 92.0, T + 3 * M),
            decision("AMC", "Media", "bullish", 92.0, T + 4 * M),
            decision("GME", "Retail", "bullish", 93.0, T + 10 * M),
        ],
    );
    let sent: Vec<i64> = alerts.iter().map(|a| (a.event_time - T) / M).collect();
    assert_eq!(sent, [0, 3, 4, 10], "the end instant is no longer muted");
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0].reason_code, "silenced");
    assert!(suppressed[0].reason.contains("s1") && suppressed[0].reason.contains("earnings call"));
}

#[test]
fn an_index_alert_inhibits_single_names_for_its_window() {
    let indexes = ["SPY", "QQQ"];
    let cfg = DispatchConfig {
        cooldown_secs: 0,
        inhibit: vec![InhibitRule {
            source: Matcher {
                direction: vec!["bearish".into()],
                ..matching(&indexes)
            },
            target: Matcher {
                not_underlying: indexes.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            window_secs: 1800,
            equal: vec![],
        }],
        ..Default::default()
    };
    let (alerts, suppressed) = dispatch(
        &cfg,
        vec![],
        vec![
            decision("AAPL", "Tech", "bearish", 90.0, T),
            decision("SPY", "Index", "bearish", 95.0, T + M),
            decision("AAPL", "Tech", "bearish", 91.0, T + 2 * M),
            decision("QQQ", "Index", "bearish", 93.0, T + 3 * M),
            decision("MSFT", "Tech", "bullish", 92.0, T + 31 * M),
            decision("MSFT", "Tech", "bullish", 92.0, T + 34 * M),
        ],
    );
    let sent: Vec<(&str, i64)> = alerts
        .iter()
        .map(|a| (a.underlying.as_str(), (a.event_time - T) / M))
        .collect();
    // MSFT at +31m is still inside QQQ's window (+3m … +33m); at +34m it is through.
    assert_eq!(sent, [("AAPL", 0), ("SPY", 1), ("QQQ", 3), ("MSFT", 34)]);
    let codes: Vec<&str> = suppressed.iter().map(|r| r.reason_code.as_str()).collect();
    assert_eq!(codes, ["inhibited", "inhibited"]);
    assert!(
        suppressed[0].reason.contains("SPY bearish"),
        "{}",
        suppressed[0].reason
    );
}

#[test]
fn arrival_order_and_restarts_do_not_change_the_output() {
    let cfg = DispatchConfig {
        group_window_secs: 120,
        ..Default::default()
    };
    let decisions = vec![
        decision("GME", "Retail", "bullish", 91.0, T),
        decision("AMC", "Media", "bullish", 85.0, T + M),
        decision("GME", "Retail", "volatility", 88.0, T + M),
        decision("GME", "Retail", "bullish", 95.0, T + 30 * M),
    ];
    let (straight, _) = dispatch(&cfg, vec![], decisions.clone());
    let mut reversed = decisions.clone();
    reversed.reverse();
    assert_eq!(dispatch(&cfg, vec![], reversed).0, straight);

    // Stop after the first watermark (a group open), restore into a new operator, go on.
    let mut op = cfg.build().unwrap();
    let mut out = run(
        &mut op,
        vec![
            Step::Event(decisions[0].clone()),
            Step::Event(decisions[1].clone()),
            Step::Watermark(T + M),
        ],
    )
    .unwrap()
    .events;
    let snap = op.snapshot().unwrap();
    let mut resumed = cfg.build().unwrap();
    resumed.restore(&snap).unwrap();
    let rest = run(
        &mut resumed,
        vec![
            Step::Event(decisions[2].clone()),
            Step::Event(decisions[3].clone()),
            Step::Watermark(i64::MAX),
        ],
    )
    .unwrap()
    .events;
    out.extend(rest);
    assert_eq!(out, straight);
}

#[test]
fn config_problems_are_reported_together() {
    let mut bad = route("default", matching(&[]), &[]);
    bad.matcher.direction = vec!["sideways".into()];
    bad.cooldown_secs = Some(10 * 86_400);
    let cfg = DispatchConfig {
        routes: vec![bad],
        inhibit: vec![InhibitRule {
            source: Matcher::default(),
            target: Matcher {
                min_composite: Some(120.0),
                ..Default::default()
            },
            window_secs: 0,
            equal: vec![],
        }],
        ..Default::default()
    };
    let err = cfg.validate().unwrap_err().to_string();
    for needle in [
        "routes[0].name",
        "routes[0].channels: name at least one channel",
        "routes[0].match.direction",
        "routes[0].cooldown-secs",
        "inhibit[0].target.min-composite",
        "inhibit[0].window-secs",
    ] {
        assert!(err.contains(needle), "{needle} missing from {err}");
    }
}

#[test]
fn routes_and_silences_read_from_toml_and_json() {
    let cfg: DispatchConfig = toml::from_str(
        r#"
        channels = ["file"]
        [[routes]]
        name = "meme"
        match = { underlying = ["GME"], min-composite = 85 }
        channels = ["telegram"]
        group-by = ["underlying", "direction"]
        group-window-secs = 60
        continue = true
        [[inhibit]]
        source = { underlying = ["SPY"], direction = ["bearish"] }
        target = { not-underlying = ["SPY"] }
        window-secs = 900
        "#,
    )
    .unwrap();
    cfg.validate().unwrap();
    assert!(cfg.routes[0].continue_matching);
    assert_eq!(cfg.all_channels(), ["file", "telegram"]);

    let file = SilenceFile::parse(
        r#"{"silences": [{"id": "s1", "match": {"underlying": ["GME"]},
            "starts-at": "2021-01-22T14:30:00Z", "ends-at": "2021-01-22T16:30:00-05:00",
            "comment": "halted"}]}"#,
    )
    .unwrap();
    let s = &file.silences[0];
    assert_eq!(s.starts_at, T);
    assert_eq!(s.ends_at, T + 7 * 60 * M);
    assert_eq!(file.next_id(), "s2");
    assert_eq!(SilenceFile::parse(&file.to_text()).unwrap(), file);
    let err = SilenceFile::parse(
        r#"{"silences": [{"id": "s1", "match": {}, "starts-at": "2021-01-22T14:30:00Z",
            "ends-at": "2021-01-22T14:00:00Z"}]}"#,
    )
    .unwrap_err();
    assert!(err.contains("ends-at must be after starts-at"), "{err}");
}
