//! The `explain` stage: each [`Signal`] becomes an [`Explanation`] — a one-sentence headline and
//! a narrative in Markdown, HTML, plain text and Telegram's HTML subset, rendered by handlebars
//! from `operators/templates/` (compiled in; a user directory may override any of them). The
//! structured factor votes, with their metadata, travel with it so UIs need no parsing.
//!
//! Sections: executive summary; catalyst (the factors, their values, z-scores and percentiles);
//! risk (invalidation, gamma flip and walls, liquidity of the suggested contracts); trade
//! mechanics ([`trade`]: structure, strike, expiry, cost at the ask, breakevens, position
//! greeks); a scenario table (P&L at spot ±2/5/10% and vol ±5 points); and [`outcomes`] of past
//! signals like it.
//!
//! Escaping: the HTML and Telegram templates run in a registry with handlebars' HTML escaping,
//! so every value from data is escaped; Markdown, text and the headline are not HTML and are
//! rendered as they are.

pub mod outcomes;
pub mod trade;

#[cfg(test)]
mod tests;

use crate::config::{ConfigErrors, Problems};
use crate::operator::{Ctx, Emit, OpError, Operator};
use crate::score::stats::norm_cdf;
use chrono::TimeZone;
use handlebars::Handlebars;
use optionflow_schemas::{direction, ChainContract, EventId, Explanation, FactorVote, Signal};
use outcomes::OutcomeHistory;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use trade::{Trade, SPOT_MOVES_PCT, VOL_MOVES_PTS};

const STAGE: &str = "explain";

/// How a template's values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// As they are (Markdown, plain text).
    None,
    /// HTML entities (HTML, Telegram).
    Html,
}

/// (registered name, file name, built-in text, escaping) of every template.
const TEMPLATES: &[(&str, &str, &str, Escape)] = &[
    (
        "headline",
        "headline.hbs",
        include_str!("../../templates/headline.hbs"),
        Escape::None,
    ),
    (
        "markdown",
        "signal.md.hbs",
        include_str!("../../templates/signal.md.hbs"),
        Escape::None,
    ),
    (
        "text",
        "signal.txt.hbs",
        include_str!("../../templates/signal.txt.hbs"),
        Escape::None,
    ),
    (
        "html",
        "signal.html.hbs",
        include_str!("../../templates/signal.html.hbs"),
        Escape::Html,
    ),
    (
        "telegram",
        "signal.telegram.hbs",
        include_str!("../../templates/signal.telegram.hbs"),
        Escape::Html,
    ),
];

/// File names a `templates-dir` may hold, one per format.
pub fn template_files() -> impl Iterator<Item = &'static str> {
    TEMPLATES.iter().map(|t| t.1)
}

/// The `[explain]` configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ExplainConfig {
    /// IANA time zone that narratives show times in.
    pub time_zone: Option<String>,
    /// Directory whose `*.hbs` files (named as the built-in ones: `headline.hbs`,
    /// `signal.md.hbs`, `signal.html.hbs`, `signal.txt.hbs`, `signal.telegram.hbs`) replace
    /// the built-in templates; the runtime reads it. Unset: the built-in templates.
    pub templates_dir: Option<String>,
    /// JSON-lines file of labelled outcomes (`optionflow calibrate --outcomes FILE`) behind the
    /// narratives' outcome statistics; the runtime reads it. Unset: "no outcomes yet".
    pub outcomes_file: Option<String>,
}

/// What the runtime read for the stage: template overrides and labelled outcomes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExplainAssets {
    /// Template text by file name (see [`template_files`]).
    pub templates: BTreeMap<String, String>,
    /// Past outcomes.
    pub outcomes: OutcomeHistory,
}

impl ExplainConfig {
    fn tz(&self) -> Result<chrono_tz::Tz, String> {
        let name = self.time_zone.as_deref().unwrap_or("America/New_York");
        name.parse::<chrono_tz::Tz>()
            .map_err(|_| format!("unknown IANA time zone {name:?}"))
    }

    /// Reports every problem at once (the files are checked by [`ExplainConfig::build_with`]).
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut p = Problems::default();
        if let Err(e) = self.tz() {
            p.push("time-zone", e);
        }
        for (key, v) in [
            ("templates-dir", &self.templates_dir),
            ("outcomes-file", &self.outcomes_file),
        ] {
            if let Some(v) = v {
                p.check(!v.trim().is_empty(), key, "must be a path (or left unset)");
            }
        }
        p.finish()
    }

    /// Builds the operator with the built-in templates and no outcomes.
    pub fn build(&self) -> Result<Explain, ConfigErrors> {
        self.build_with(&ExplainAssets::default())
    }

    /// Builds the operator with `assets`. Every problem is reported at once: an override that
    /// names no template, fails to compile, or fails to render an example signal is named by
    /// its file.
    pub fn build_with(&self, assets: &ExplainAssets) -> Result<Explain, ConfigErrors> {
        let mut p = Problems::default();
        if let Err(ConfigErrors(v)) = self.validate() {
            v.into_iter().for_each(|e| p.push_qualified(e));
        }
        let mut plain = Handlebars::new();
        let mut html = Handlebars::new();
        plain.set_strict_mode(true);
        html.set_strict_mode(true);
        // Markdown and plain text are not HTML: leave characters as they are. The HTML
        // registry keeps handlebars' default escaping of & < > " ' ` =.
        plain.register_escape_fn(handlebars::no_escape);
        html.register_escape_fn(handlebars::html_escape);
        for file in assets.templates.keys() {
            if !template_files().any(|f| f == file) {
                p.push(
                    "templates-dir",
                    format!(
                        "{file} names no template (expected {})",
                        template_files().collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
        for &(name, file, builtin, escape) in TEMPLATES {
            let text = assets.templates.get(file).map_or(builtin, String::as_str);
            let hb = match escape {
                Escape::None => &mut plain,
                Escape::Html => &mut html,
            };
            if let Err(e) = hb.register_template_string(name, text) {
                p.push("templates-dir", format!("{file} does not compile: {e}"));
            }
        }
        p.finish()?;
        let op = Explain {
            plain,
            html,
            tz: self.tz().map_err(|e| ConfigErrors(vec![e]))?,
            outcomes: assets.outcomes.clone(),
        };
        // An override that compiles can still ask for a value the data lacks (strict mode):
        // render an example now so the mistake surfaces at start-up, named by its file.
        let mut p = Problems::default();
        let mut data = op.data(&example_signal());
        let headline = op
            .render(Escape::None, "headline", &data)
            .map_err(|e| e.to_string());
        data["headline"] = json!(headline.as_deref().unwrap_or_default());
        for &(name, file, _, escape) in TEMPLATES {
            if !assets.templates.contains_key(file) {
                continue;
            }
            let rendered = if name == "headline" {
                headline.clone()
            } else {
                op.render(escape, name, &data).map_err(|e| e.to_string())
            };
            if let Err(e) = rendered {
                p.push("templates-dir", format!("{file} does not render: {e}"));
            }
        }
        p.finish()?;
        Ok(op)
    }
}

/// The explain operator (stateless apart from its templates and the loaded outcomes).
pub struct Explain {
    plain: Handlebars<'static>,
    html: Handlebars<'static>,
    tz: chrono_tz::Tz,
    outcomes: OutcomeHistory,
}

impl std::fmt::Debug for Explain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Explain")
            .field("tz", &self.tz)
            .field("outcomes", &self.outcomes.rows.len())
            .finish_non_exhaustive()
    }
}

/// Display name of a factor.
pub fn factor_label(factor: &str) -> &str {
    match factor {
        "iv_zscore" => "IV z-score",
        "gamma_exposure" => "dealer gamma",
        "unusual_flow" => "unusual flow",
        "realized_vol" => "realized vol",
        "iv_rv" => "IV-RV spread",
        "skew" => "skew",
        "mispricing" => "mispricing",
        other => other,
    }
}

/// A raw factor value: fixed decimals in the usual range, scientific outside it.
fn value(x: f64) -> String {
    let a = x.abs();
    if a != 0.0 && !(1e-3..1e6).contains(&a) {
        format!("{x:.3e}")
    } else {
        format!("{x:.4}")
    }
}

/// Dollars with a sign in front: `$430.00`, `-$12.50`.
fn usd(x: f64) -> String {
    if x < 0.0 {
        format!("-${:.2}", -x)
    } else {
        format!("${x:.2}")
    }
}

/// Signed dollars: `+$12.50`, `-$3.00`.
fn usd_signed(x: f64) -> String {
    if x < 0.0 {
        format!("-${:.2}", -x)
    } else {
        format!("+${x:.2}")
    }
}

/// A whole-number move with its sign, and 0 without one: `vol +5`, `vol 0`, `-10%`.
fn signed_or_zero(v: f64, prefix: &str, suffix: &str) -> String {
    if v == 0.0 {
        format!("{prefix}0{suffix}")
    } else {
        format!("{prefix}{v:+.0}{suffix}")
    }
}

/// A price (strikes, spot, breakevens): two decimals.
fn px(x: f64) -> String {
    format!("{x:.2}")
}

/// A contract as a trader names it: `GME 2021-01-29 70 call`.
fn contract_name(c: &ChainContract) -> String {
    let k = if c.strike.fract() == 0.0 {
        format!("{:.0}", c.strike)
    } else {
        format!("{}", c.strike)
    };
    format!("{} {} {k} {}", c.root, c.expiry, c.right)
}

/// Percentile of a z-score under a standard normal, in %.
fn percentile(z: f64) -> f64 {
    if z.is_finite() {
        100.0 * norm_cdf(z)
    } else {
        50.0
    }
}

fn vote_json(v: &FactorVote) -> Value {
    json!({
        "factor": v.factor,
        "label": factor_label(&v.factor),
        "value": value(v.raw_value),
        "score": format!("{:.0}", v.score),
        "z": format!("{:+.1}", v.zscore),
        "percentile": format!("{:.1}", percentile(v.zscore)),
        "direction": v.direction,
        "voted": v.voted,
        "detail": v.detail,
        "p": format!("{:.2e}", v.p_value),
    })
}

/// What would invalidate the signal, in words.
fn invalidation(sig: &Signal) -> String {
    let against = match sig.direction.as_str() {
        direction::BULLISH => {
            "a close back below the window's opening price or a fade in call volume"
        }
        direction::BEARISH => "a recovery above the window's opening price or put volume fading",
        _ => "implied volatility settling back to its recent range",
    };
    let dissent: Vec<&str> = sig
        .factors
        .iter()
        .filter(|f| !f.voted)
        .map(|f| factor_label(&f.factor))
        .collect();
    if dissent.is_empty() {
        format!("Invalidated by {against}.")
    } else {
        format!(
            "Invalidated by {against}. Not confirming: {}.",
            dissent.join(", ")
        )
    }
}

/// The gamma flip and the walls, with their distance from spot, from the gamma_exposure vote.
fn gamma_line(sig: &Signal) -> String {
    let meta = sig
        .factors
        .iter()
        .find(|f| f.factor == "gamma_exposure")
        .map(|f| &f.metadata);
    let Some(meta) = meta.filter(|m| !m.is_empty()) else {
        return "No dealer-gamma reading in this window.".to_string();
    };
    let dist = |k: f64| {
        if sig.spot > 0.0 {
            format!("{:+.2}%", (k / sig.spot - 1.0) * 100.0)
        } else {
            "n/a".to_string()
        }
    };
    let mut parts = Vec::new();
    match meta.get("gamma_flip") {
        Some(&f) => {
            let d = meta
                .get("flip_distance_pct")
                .map_or_else(|| dist(f), |d| format!("{d:+.2}%"));
            parts.push(format!("gamma flip at {} ({d} of spot)", px(f)));
        }
        None => parts.push("no gamma flip within the swept range".to_string()),
    }
    if let Some(&k) = meta.get("call_wall") {
        parts.push(format!("call wall {} ({})", px(k), dist(k)));
    }
    if let Some(&k) = meta.get("put_wall") {
        parts.push(format!("put wall {} ({})", px(k), dist(k)));
    }
    let mut s = parts.join("; ");
    if let Some(first) = s.get(..1) {
        s = first.to_uppercase() + &s[1..];
    }
    s + "."
}

fn liquidity_json(c: &ChainContract) -> Value {
    let spread = c.ask - c.bid;
    let pct = if c.mid > 0.0 {
        spread / c.mid * 100.0
    } else {
        f64::NAN
    };
    let pct_s = if pct.is_finite() {
        format!("{pct:.1}%")
    } else {
        "n/a".to_string()
    };
    json!({
        "contract": contract_name(c),
        "symbol": c.symbol,
        "bid": px(c.bid),
        "ask": px(c.ask),
        "spread": px(spread),
        "spread_pct": pct_s,
        "open_interest": c.open_interest,
        "volume": c.volume,
        "wide": pct.is_finite() && pct > 10.0,
    })
}

fn model_name(t: &Trade) -> &'static str {
    match trade::style_of(&t.legs[0]) {
        crate::pricing::ExerciseStyle::European => "Black-Scholes-Merton (European)",
        crate::pricing::ExerciseStyle::American => "Bjerksund-Stensland 2002 (American)",
    }
}

fn trade_json(t: &Trade, sig: &Signal) -> Value {
    let legs: Vec<Value> = t
        .legs
        .iter()
        .map(|c| {
            json!({
                "contract": contract_name(c),
                "symbol": c.symbol,
                "right": c.right,
                "strike": px(c.strike),
                "ask": px(c.ask),
                "iv": format!("{:.1}%", c.iv * 100.0),
                "delta": format!("{:+.2}", c.delta),
            })
        })
        .collect();
    let days = t.legs[0].years_to_expiry * 365.0;
    let breakevens: Vec<String> = t.breakevens.iter().map(|b| px(*b)).collect();
    let be_moves: Vec<String> = t
        .breakevens
        .iter()
        .map(|b| {
            if sig.spot > 0.0 {
                format!("{} ({:+.2}%)", px(*b), (b / sig.spot - 1.0) * 100.0)
            } else {
                px(*b)
            }
        })
        .collect();
    let names: Vec<String> = t.legs.iter().map(contract_name).collect();
    json!({
        "structure": t.structure,
        "contracts": names.join(" + "),
        "legs": legs,
        "expiry": t.expiry(),
        "days": format!("{days:.1}"),
        "cost": usd(t.cost),
        "breakevens": breakevens.join(" / "),
        "breakevens_from_spot": be_moves.join(" / "),
        "delta": format!("{:+.1}", t.greeks.delta),
        "gamma": format!("{:+.2}", t.greeks.gamma),
        "vega": usd_signed(t.greeks.vega),
        "theta": usd_signed(t.greeks.theta),
        "model": model_name(t),
    })
}

fn scenario_json(t: &Trade, spot: f64) -> Value {
    let grid = trade::scenarios(t, spot);
    let header: Vec<String> = VOL_MOVES_PTS
        .iter()
        .map(|v| signed_or_zero(*v, "vol ", ""))
        .collect();
    let rows: Vec<Value> = SPOT_MOVES_PCT
        .iter()
        .zip(&grid)
        .map(|(m, r)| {
            json!({
                "move": signed_or_zero(*m, "", "%"),
                "spot": px(spot * (1.0 + m / 100.0)),
                "cells": r.iter().map(|v| usd_signed(*v)).collect::<Vec<_>>(),
            })
        })
        .collect();
    // Fixed-width lines for plain text and Telegram's <pre>.
    let mut lines = vec![format!(
        "{:>5} {:>9} {:>10} {:>10} {:>10}",
        "move", "spot", header[0], header[1], header[2]
    )];
    for (m, r) in SPOT_MOVES_PCT.iter().zip(&grid) {
        lines.push(format!(
            "{:>5} {:>9} {:>10} {:>10} {:>10}",
            signed_or_zero(*m, "", "%"),
            px(spot * (1.0 + m / 100.0)),
            usd_signed(r[0]),
            usd_signed(r[1]),
            usd_signed(r[2])
        ));
    }
    json!({ "header": header, "rows": rows, "lines": lines })
}

fn outcomes_json(h: &OutcomeHistory, sig: &Signal) -> Value {
    let bucket = outcomes::bucket(sig.composite);
    let range = format!("{bucket}–{}", bucket + 10);
    let Some(horizon) = h.horizon_secs else {
        return json!({
            "available": false,
            "line": "No outcomes yet: set [explain] outcomes-file to the JSON lines `optionflow calibrate --outcomes` writes.",
        });
    };
    let horizon_s = pipeline_duration(horizon);
    match h.like(sig) {
        None => json!({
            "available": false,
            "line": format!(
                "No earlier {} signals scoring {range} have outcomes at the {horizon_s} horizon yet.",
                sig.direction
            ),
        }),
        Some(s) => {
            let scope = s
                .underlying
                .clone()
                .unwrap_or_else(|| "all underlyings".to_string());
            let rate = 100.0 * s.hits as f64 / s.count as f64;
            json!({
                "available": true,
                "count": s.count,
                "hits": s.hits,
                "hit_rate": format!("{rate:.0}%"),
                "median_move": format!("{:+.2}%", s.median_move_pct),
                "scope": scope,
                "bucket": range,
                "horizon": horizon_s,
                "line": format!(
                    "{} earlier {} signals scoring {range} ({scope}): hit rate {rate:.0}% ({} of {}), median move of the underlying {:+.2}% at {horizon_s}.",
                    s.count, sig.direction, s.hits, s.count, s.median_move_pct
                ),
            })
        }
    }
}

/// A horizon in seconds as `30m`, `1h`, `90s`.
fn pipeline_duration(secs: i64) -> String {
    if secs % 3600 == 0 && secs != 0 {
        format!("{}h", secs / 3600)
    } else if secs % 60 == 0 && secs != 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// The one sentence a trader reads first.
fn summary(sig: &Signal, trade: Option<&Trade>) -> String {
    let lead = sig.factors.iter().filter(|f| f.voted).max_by(|a, b| {
        a.zscore
            .abs()
            .total_cmp(&b.zscore.abs())
            .then(b.factor.cmp(&a.factor))
    });
    let led = lead.map_or(String::new(), |f| {
        format!(", led by {} at z {:+.1}", factor_label(&f.factor), f.zscore)
    });
    let idea = match trade {
        Some(t) => format!(
            "; the suggested {} ({}) costs {} at the ask",
            t.structure,
            t.legs
                .iter()
                .map(contract_name)
                .collect::<Vec<_>>()
                .join(" + "),
            usd(t.cost)
        ),
        None => String::new(),
    };
    format!(
        "{} is {} at {} with a composite of {:.0}/100 and {} of {} factors agreeing{led}{idea}.",
        sig.underlying,
        sig.direction,
        px(sig.spot),
        sig.composite,
        sig.agreeing,
        sig.factors.len(),
    )
}

impl Explain {
    fn render(&self, escape: Escape, name: &str, data: &Value) -> Result<String, OpError> {
        let hb = match escape {
            Escape::None => &self.plain,
            Escape::Html => &self.html,
        };
        hb.render(name, data)
            .map(|s| s.trim_end().to_string())
            .map_err(|e| OpError::fatal(STAGE, format!("template {name} failed: {e}")))
    }

    fn time(&self, micros: i64) -> String {
        match self.tz.timestamp_micros(micros).single() {
            Some(t) => t.format("%Y-%m-%d %H:%M %Z").to_string(),
            None => format!("{micros} µs"),
        }
    }

    /// Everything the templates see.
    fn data(&self, sig: &Signal) -> Value {
        let voters: Vec<_> = sig
            .factors
            .iter()
            .filter(|f| f.voted)
            .map(vote_json)
            .collect();
        let trade = trade::select(&sig.direction, sig.spot, &sig.contracts);
        let liquidity: Vec<Value> = trade
            .as_ref()
            .map(|t| t.legs.iter().map(liquidity_json).collect())
            .unwrap_or_default();
        json!({
            "underlying": sig.underlying,
            "sector": sig.sector,
            "direction": sig.direction,
            "composite": format!("{:.0}", sig.composite),
            "spot": px(sig.spot),
            "time": self.time(sig.window_end),
            "agreeing": sig.agreeing,
            "probability": format!("{:.0}%", 100.0 * sig.probability),
            "probability_basis": if sig.calibrated { "calibrated on past outcomes" } else { "uncalibrated prior: composite/100" },
            "total": sig.factors.len(),
            "summary": summary(sig, trade.as_ref()),
            "voters": voters,
            "factors": sig.factors.iter().map(vote_json).collect::<Vec<_>>(),
            "percentile_basis": "percentile = normal CDF of the z-score; the factors keep robust z-scores, not whole histories",
            "risk": invalidation(sig),
            "gamma": gamma_line(sig),
            "liquidity": liquidity,
            "trade": trade.as_ref().map(|t| trade_json(t, sig)),
            "scenario": trade.as_ref().map(|t| scenario_json(t, sig.spot)),
            "no_trade": if sig.contracts.is_empty() {
                "No chain snapshot came with this signal, so no contract is suggested."
            } else {
                "No candidate contract fits the structure for this direction."
            },
            "outcomes": outcomes_json(&self.outcomes, sig),
        })
    }
}

/// A hand-built signal with a chain and factor metadata: what template overrides are checked
/// against at start-up, and what the golden narratives are rendered from.
pub fn example_signal() -> Signal {
    // Quotes the model itself prices, so the scenario table's unchanged cell is the half
    // spread paid: (mid - ask) x 100.
    fn c(right: &str, strike: f64, expiry: &str, days: f64, iv: f64, half: f64) -> ChainContract {
        use crate::pricing::{price_and_greeks, ExerciseStyle, Right};
        let r = if right == "call" {
            Right::Call
        } else {
            Right::Put
        };
        let years = days / 365.0;
        let g = price_and_greeks(
            ExerciseStyle::American,
            r,
            65.0,
            strike,
            years,
            0.01,
            0.0,
            iv,
        )
        .unwrap_or_else(|e| panic!("example contract: {e}"));
        let mid = (g.price * 100.0).round() / 100.0;
        let code = format!(
            "{}{}",
            expiry[2..].replace('-', ""),
            if right == "call" { 'C' } else { 'P' }
        );
        ChainContract {
            symbol: format!("GME   {code}{:08}", (strike * 1000.0) as i64),
            root: "GME".into(),
            expiry: expiry.into(),
            right: right.into(),
            strike,
            years_to_expiry: years,
            bid: mid - half,
            ask: mid + half,
            mid,
            iv,
            delta: g.delta,
            gamma: g.gamma,
            vega: g.vega,
            theta: g.theta,
            volume: (strike * 37.0) as i64,
            open_interest: (strike * 211.0) as i64,
            exercise_style: "american".into(),
            rate: 0.01,
            dividend_yield: 0.0,
        }
    }
    let vote = |factor: &str, z: f64, dir: &str, voted: bool, detail: &str| FactorVote {
        factor: factor.into(),
        score: crate::score::stats::score_from_z(z),
        zscore: z,
        raw_value: z / 7.0,
        direction: dir.into(),
        voted,
        detail: detail.into(),
        p_value: crate::consensus::p_value(z),
        metadata: BTreeMap::new(),
    };
    let mut gex = vote(
        "gamma_exposure",
        -3.1,
        "bullish",
        true,
        "dealers short $41.2M of gamma per 1% move",
    );
    gex.raw_value = -41.2;
    gex.metadata = BTreeMap::from([
        ("gamma_flip".to_string(), 71.5),
        ("flip_distance_pct".to_string(), 10.0),
        ("call_wall".to_string(), 80.0),
        ("put_wall".to_string(), 60.0),
        ("total_gex_musd".to_string(), -41.2),
    ]);
    Signal {
        event_id: "0123456789abcdef0123456789abcdef".into(),
        event_time: 1_611_325_800_000_000,
        underlying: "GME".into(),
        window_end: 1_611_325_800_000_000,
        sector: "Consumer Discretionary".into(),
        direction: "bullish".into(),
        composite: 91.2,
        agreeing: 3,
        spot: 65.0,
        marks: BTreeMap::from([("GME".to_string(), 65.0)]),
        factors: vec![
            gex,
            vote(
                "iv_zscore",
                3.4,
                "bullish",
                true,
                "front calls bid 12 vol points over their history",
            ),
            vote("skew", 0.6, "neutral", false, "risk reversal unremarkable"),
            vote(
                "unusual_flow",
                4.2,
                "bullish",
                true,
                "call volume 6.3x its average",
            ),
        ],
        probability: 0.912,
        calibrated: false,
        contracts: vec![
            c("call", 65.0, "2021-01-29", 7.06, 1.62, 0.15),
            c("call", 70.0, "2021-01-29", 7.06, 1.66, 0.15),
            c("call", 80.0, "2021-01-29", 7.06, 1.72, 0.15),
            c("put", 65.0, "2021-01-29", 7.06, 1.63, 0.20),
            c("put", 50.0, "2021-01-29", 7.06, 1.80, 0.15),
            c("call", 65.0, "2021-01-22", 2.0, 1.90, 0.15),
        ],
    }
}

impl Operator for Explain {
    type In = Signal;
    type Out = Explanation;

    fn name(&self) -> &'static str {
        STAGE
    }

    fn on_event(
        &mut self,
        sig: &Signal,
        _ctx: &Ctx,
        out: &mut Emit<Explanation>,
    ) -> Result<(), OpError> {
        let mut data = self.data(sig);
        let headline = self.render(Escape::None, "headline", &data)?;
        data["headline"] = json!(headline);
        out.emit(Explanation {
            event_id: EventId::derived("explanation", &sig.event_id),
            event_time: sig.event_time,
            underlying: sig.underlying.clone(),
            signal_id: sig.event_id.clone(),
            sector: sig.sector.clone(),
            direction: sig.direction.clone(),
            composite: sig.composite,
            spot: sig.spot,
            markdown: self.render(Escape::None, "markdown", &data)?,
            text: self.render(Escape::None, "text", &data)?,
            html: self.render(Escape::Html, "html", &data)?,
            telegram: self.render(Escape::Html, "telegram", &data)?,
            headline,
            factors: sig.factors.clone(),
            marks: sig.marks.clone(),
        });
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>, OpError> {
        Ok(Vec::new())
    }

    fn restore(&mut self, _state: &[u8]) -> Result<(), OpError> {
        Ok(())
    }
}
