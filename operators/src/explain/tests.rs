//! Golden narratives of every format on [`example_signal`], escaping, and template overrides.
//! `UPDATE_GOLDEN=1` rewrites the files under `operators/tests/golden/explain/`.

use super::outcomes::{Outcome, OutcomeHistory};
use super::*;
use crate::testing::run_events;

fn history() -> OutcomeHistory {
    let t = example_signal().event_time;
    let rows = (0..6)
        .map(|i| Outcome {
            signal_id: format!("past{i}"),
            underlying: if i < 5 { "AMC" } else { "GME" }.into(),
            direction: "bullish".into(),
            composite: 90.0 + i as f64,
            event_time: t - (i + 1) * 3_600_000_000,
            horizon_secs: 1800,
            spot: None,
            forward_spot: None,
            underlying_return: Some([0.012, -0.004, 0.031, 0.008, -0.015, 0.02][i as usize]),
            hit: Some([true, false, true, true, false, true][i as usize]),
            structure: None,
            option_pnl: None,
            option_return: None,
            iv_change: None,
        })
        .collect();
    OutcomeHistory {
        horizon_secs: Some(1800),
        rows,
    }
}

fn explain(sig: Signal, assets: &ExplainAssets) -> Explanation {
    let mut op = ExplainConfig::default().build_with(assets).unwrap();
    run_events(&mut op, vec![sig]).unwrap().events.remove(0)
}

#[test]
fn golden_narratives_of_every_format() {
    let assets = ExplainAssets {
        outcomes: history(),
        ..ExplainAssets::default()
    };
    let e = explain(example_signal(), &assets);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/explain");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut stale = Vec::new();
    for (file, got) in [
        ("headline.txt", &e.headline),
        ("signal.md", &e.markdown),
        ("signal.html", &e.html),
        ("signal.txt", &e.text),
        ("signal.telegram.html", &e.telegram),
    ] {
        let path = dir.join(file);
        let got = format!("{got}\n");
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &got).unwrap();
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
        if got != want {
            stale.push(format!("{file}:\n{got}"));
        }
    }
    assert!(
        stale.is_empty(),
        "differs from operators/tests/golden/explain (review, then UPDATE_GOLDEN=1):\n{}",
        stale.join("\n")
    );
    // Structured metadata travels with the explanation.
    let gex = e
        .factors
        .iter()
        .find(|f| f.factor == "gamma_exposure")
        .unwrap();
    assert_eq!(gex.metadata["gamma_flip"], 71.5);
}

#[test]
fn every_section_is_there() {
    let e = explain(example_signal(), &ExplainAssets::default());
    for want in [
        "> GME is bullish at 65.00",
        "### Catalyst",
        "| unusual flow | 0.6000 | 100 | +4.2 | 100.0 |",
        "Gamma flip at 71.50 (+10.00% of spot); call wall 80.00 (+23.08%); put wall 60.00 (-7.69%).",
        "**long call: GME 2021-01-29 70 call**",
        "**Cost at the ask:** $417.00",
        "**Breakeven at expiry:** 74.17 (+14.11%)",
        "vega +$3.53 per vol point",
        "| -10% | 58.50 |",
        "No outcomes yet",
    ] {
        assert!(e.markdown.contains(want), "{want:?} missing from\n{}", e.markdown);
    }
    assert!(e.telegram.contains("<pre>") && e.html.starts_with("<section"));
}

#[test]
fn a_volatility_signal_suggests_a_straddle_and_a_bare_signal_none() {
    let mut sig = example_signal();
    sig.direction = "volatility".into();
    let e = explain(sig.clone(), &ExplainAssets::default());
    assert!(
        e.text
            .contains("long straddle: GME 2021-01-29 65 call + GME 2021-01-29 65 put"),
        "{}",
        e.text
    );
    // The strike minus and plus both premiums at the ask.
    let (call, put) = (&sig.contracts[0], &sig.contracts[3]);
    assert_eq!(
        (call.strike, put.strike, put.right.as_str()),
        (65.0, 65.0, "put")
    );
    let premium = call.ask + put.ask;
    let want = format!("Breakeven at expiry: {:.2} (", 65.0 - premium);
    assert!(e.text.contains(&want), "{want:?} missing from {}", e.text);
    let want = format!(" / {:.2} (+", 65.0 + premium);
    assert!(e.text.contains(&want), "{want:?} missing from {}", e.text);
    sig.contracts.clear();
    let e = explain(sig, &ExplainAssets::default());
    assert!(
        e.markdown
            .contains("No chain snapshot came with this signal"),
        "{}",
        e.markdown
    );
}

#[test]
fn html_and_telegram_escape_everything_from_data() {
    let mut sig = example_signal();
    let evil = "<script>&\"'";
    sig.underlying = evil.into();
    sig.sector = evil.into();
    sig.factors[1].detail = format!("detail {evil}");
    for c in &mut sig.contracts {
        c.root = evil.into();
    }
    let e = explain(sig, &ExplainAssets::default());
    let escaped = "&lt;script&gt;&amp;&quot;&#x27;";
    for (name, out) in [("html", &e.html), ("telegram", &e.telegram)] {
        assert!(
            !out.contains("<script"),
            "{name} lets a tag through:\n{out}"
        );
        assert!(!out.contains("&\""), "{name} lets & or \" through:\n{out}");
        assert!(out.contains(&format!("detail {escaped}")), "{name}:\n{out}");
        assert!(
            out.contains(&format!("{escaped} 2021-01-29 70 call")),
            "{name}:\n{out}"
        );
    }
    // Telegram's HTML mode knows only b, i, code, pre and a.
    let tags: std::collections::BTreeSet<String> = e
        .telegram
        .split('<')
        .skip(1)
        .map(|t| {
            t.split(['>', ' '])
                .next()
                .unwrap()
                .trim_start_matches('/')
                .to_string()
        })
        .collect();
    assert!(
        tags.iter()
            .all(|t| ["b", "i", "code", "pre", "a"].contains(&t.as_str())),
        "{tags:?}"
    );
    // Markdown and text keep the characters as they are.
    assert!(e.markdown.contains(evil) && e.text.contains(evil));
}

#[test]
fn template_overrides_replace_the_built_ins_and_bad_ones_are_named() {
    let mut assets = ExplainAssets::default();
    assets.templates.insert(
        "headline.hbs".into(),
        "{{underlying}} says {{direction}}".into(),
    );
    assets
        .templates
        .insert("signal.html.hbs".into(), "<p>{{summary}}</p>".into());
    let e = explain(example_signal(), &assets);
    assert_eq!(e.headline, "GME says bullish");
    assert!(e.html.starts_with("<p>GME is bullish"), "{}", e.html);
    assert!(
        e.markdown.contains("**GME says bullish**"),
        "{}",
        e.markdown
    );

    let mut bad = ExplainAssets::default();
    bad.templates
        .insert("signal.md.hbs".into(), "{{#each factors}}".into());
    bad.templates
        .insert("signal.txt.hbs".into(), "{{no_such_field}}".into());
    bad.templates
        .insert("signal.markdown.hbs".into(), "x".into());
    let err = ExplainConfig::default()
        .build_with(&bad)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("signal.markdown.hbs names no template"),
        "{err}"
    );
    assert!(err.contains("signal.md.hbs does not compile"), "{err}");
    // Compile problems are reported first; once they are fixed, render problems are.
    bad.templates.remove("signal.md.hbs");
    bad.templates.remove("signal.markdown.hbs");
    let err = ExplainConfig::default()
        .build_with(&bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("signal.txt.hbs does not render"), "{err}");
}
