//! The `explain` stage: each [`Signal`] becomes an [`Explanation`] with a one-sentence headline
//! and a narrative in Markdown and plain text, rendered by handlebars from
//! `operators/templates/` (compiled into the binary). The structured factor votes travel with it
//! so UIs need no parsing.

use crate::config::{ConfigErrors, Problems};
use crate::operator::{Ctx, Emit, OpError, Operator};
use chrono::TimeZone;
use handlebars::Handlebars;
use optionflow_schemas::{EventId, Explanation, FactorVote, Signal};
use serde::{Deserialize, Serialize};
use serde_json::json;

const STAGE: &str = "explain";

/// The `[explain]` configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ExplainConfig {
    /// IANA time zone that narratives show times in.
    pub time_zone: Option<String>,
}

impl ExplainConfig {
    fn tz(&self) -> Result<chrono_tz::Tz, String> {
        let name = self.time_zone.as_deref().unwrap_or("America/New_York");
        name.parse::<chrono_tz::Tz>()
            .map_err(|_| format!("unknown IANA time zone {name:?}"))
    }

    /// Reports every problem at once.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut p = Problems::default();
        if let Err(e) = self.tz() {
            p.push("time-zone", e);
        }
        p.finish()
    }

    /// Builds the operator with the built-in templates.
    pub fn build(&self) -> Result<Explain, ConfigErrors> {
        self.validate()?;
        let tz = self.tz().map_err(|e| ConfigErrors(vec![e]))?;
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        // Markdown and plain text are not HTML: leave characters as they are.
        hb.register_escape_fn(handlebars::no_escape);
        for (name, text) in [
            ("headline", include_str!("../templates/headline.hbs")),
            ("markdown", include_str!("../templates/signal.md.hbs")),
            ("text", include_str!("../templates/signal.txt.hbs")),
        ] {
            hb.register_template_string(name, text)
                .map_err(|e| ConfigErrors(vec![format!("template {name}: {e}")]))?;
        }
        Ok(Explain { hb, tz })
    }
}

/// The explain operator (stateless apart from its templates).
pub struct Explain {
    hb: Handlebars<'static>,
    tz: chrono_tz::Tz,
}

impl std::fmt::Debug for Explain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Explain")
            .field("tz", &self.tz)
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

fn vote_json(v: &FactorVote) -> serde_json::Value {
    json!({
        "label": factor_label(&v.factor),
        "score": format!("{:.0}", v.score),
        "z": format!("{:+.1}", v.zscore),
        "direction": v.direction,
        "voted": v.voted,
        "detail": v.detail,
        "p": format!("{:.2e}", v.p_value),
    })
}

impl Explain {
    fn render(&self, name: &str, data: &serde_json::Value) -> Result<String, OpError> {
        self.hb
            .render(name, data)
            .map(|s| s.trim_end().to_string())
            .map_err(|e| OpError::fatal(STAGE, format!("template {name} failed: {e}")))
    }

    fn time(&self, micros: i64) -> String {
        match self.tz.timestamp_micros(micros).single() {
            Some(t) => t.format("%Y-%m-%d %H:%M %Z").to_string(),
            None => format!("{micros} µs"),
        }
    }
}

/// What would invalidate the signal, in words.
fn risk_line(sig: &Signal) -> String {
    let against = match sig.direction.as_str() {
        "bullish" => "a close back below the window's opening price or a fade in call volume",
        "bearish" => "a recovery above the window's opening price or put volume fading",
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
        let voters: Vec<_> = sig
            .factors
            .iter()
            .filter(|f| f.voted)
            .map(vote_json)
            .collect();
        let mut data = json!({
            "underlying": sig.underlying,
            "sector": sig.sector,
            "direction": sig.direction,
            "composite": format!("{:.0}", sig.composite),
            "spot": format!("{:.2}", sig.spot),
            "time": self.time(sig.window_end),
            "agreeing": sig.agreeing,
            "probability": format!("{:.0}%", 100.0 * sig.probability),
            "probability_basis": if sig.calibrated { "calibrated on past outcomes" } else { "uncalibrated prior: composite/100" },
            "total": sig.factors.len(),
            "voters": voters,
            "factors": sig.factors.iter().map(vote_json).collect::<Vec<_>>(),
            "risk": risk_line(sig),
        });
        let headline = self.render("headline", &data)?;
        data["headline"] = json!(headline);
        out.emit(Explanation {
            event_id: EventId::new("explanation").part(&sig.event_id).finish(),
            event_time: sig.event_time,
            underlying: sig.underlying.clone(),
            signal_id: sig.event_id.clone(),
            sector: sig.sector.clone(),
            direction: sig.direction.clone(),
            composite: sig.composite,
            spot: sig.spot,
            markdown: self.render("markdown", &data)?,
            text: self.render("text", &data)?,
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
