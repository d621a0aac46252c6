//! The `dispatch` stage decides what goes out, in the spirit of Prometheus Alertmanager: approved
//! decisions are matched against routes (first match wins unless a route says `continue`; the
//! top-level channels are the default route), then, per route, deduplicated by signal id, muted by
//! silences and by inhibition (an index-regime alert muting single names), held back by a cooldown
//! per route and group key, and gathered into one message per group window. Each surviving group
//! becomes one [`Alert`] per channel; each decision held back becomes a rejection with the reason
//! (`suppressed.jsonl`), so nothing disappears unexplained.
//!
//! Decisions are processed in `(event_time, event_id)` order behind the watermark, so the output
//! does not depend on arrival order. Delivery itself (files, HTTP, SMTP) is I/O and lives in the
//! pipeline's sinks.
//!
//! - [`matcher`]: label matchers and group keys.
//! - [`silence`]: silences and their file format.

pub mod matcher;
pub mod silence;

#[cfg(test)]
mod tests;

use crate::config::{ConfigErrors, Problems};
use crate::operator::{decode_state, encode_state, rejection, Ctx, Emit, OpError, Operator};
use crate::ordering::WatermarkBuffer;
use matcher::{group_key, Label, Matcher};
use optionflow_schemas::{time::MICROS_PER_SECOND, Alert, EventId, RiskDecision};
use serde::{Deserialize, Serialize};
use silence::Silence;
use std::collections::{BTreeMap, BTreeSet};

const STAGE: &str = "dispatch";
/// Name of the route made of the top-level settings.
pub const DEFAULT_ROUTE: &str = "default";

/// The `[dispatch]` configuration. The top-level `channels`, `cooldown-secs`, `group-by` and
/// `group-window-secs` form the default route, used when no `[[dispatch.routes]]` entry matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct DispatchConfig {
    /// Channels of the default route.
    pub channels: Vec<String>,
    /// Minimum event time between two alerts of one group key on one route, in seconds (the
    /// default route's, and every route's unless it sets its own).
    pub cooldown_secs: u64,
    /// How long a sent signal id is remembered for deduplication, in seconds of event time.
    pub dedupe_horizon_secs: u64,
    /// Labels the default route groups and cools down by.
    pub group_by: Vec<Label>,
    /// Seconds the default route gathers signals of one group into one message (0: send each at
    /// once).
    pub group_window_secs: u64,
    /// Routes, tried in order.
    pub routes: Vec<RouteConfig>,
    /// Inhibition rules.
    pub inhibit: Vec<InhibitRule>,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            channels: vec!["file".to_string()],
            cooldown_secs: 15 * 60,
            dedupe_horizon_secs: 7 * 86_400,
            group_by: vec![Label::Underlying],
            group_window_secs: 0,
            routes: Vec::new(),
            inhibit: Vec::new(),
        }
    }
}

/// One `[[dispatch.routes]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RouteConfig {
    /// Name, shown in alerts (`route`) and suppression reasons.
    pub name: String,
    /// Which decisions take this route.
    #[serde(rename = "match", default)]
    pub matcher: Matcher,
    /// Channels the route sends to.
    pub channels: Vec<String>,
    /// Cooldown per group key, in seconds (default: `[dispatch] cooldown-secs`).
    #[serde(default)]
    pub cooldown_secs: Option<u64>,
    /// Labels the route groups and cools down by (default: underlying).
    #[serde(default = "default_group_by")]
    pub group_by: Vec<Label>,
    /// Seconds signals of one group are gathered into one message (0: send each at once).
    #[serde(default)]
    pub group_window_secs: u64,
    /// Keep trying the routes after this one when it matches.
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
}

fn default_group_by() -> Vec<Label> {
    vec![Label::Underlying]
}

/// One `[[dispatch.inhibit]]` rule: once an alert matching `source` has gone out, decisions
/// matching `target` on other underlyings are muted for `window-secs` of event time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct InhibitRule {
    /// The alerts that inhibit (e.g. a bearish signal on SPY or QQQ).
    pub source: Matcher,
    /// The decisions they mute (e.g. everything but the index ETFs).
    #[serde(default)]
    pub target: Matcher,
    /// How long after the source alert the mute lasts, in seconds.
    pub window_secs: u64,
    /// Labels that must be equal between source and target (e.g. `["sector"]`).
    #[serde(default)]
    pub equal: Vec<Label>,
}

/// A route, resolved from the configuration.
#[derive(Debug, Clone, PartialEq)]
struct Route {
    name: String,
    matcher: Matcher,
    channels: Vec<String>,
    cooldown: i64,
    group_by: Vec<Label>,
    group_window: i64,
    continue_matching: bool,
}

fn valid_channel(c: &str) -> bool {
    !c.is_empty()
        && c.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
}

impl DispatchConfig {
    /// Every channel any route sends to, each once, in first-use order.
    pub fn all_channels(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.channels
            .iter()
            .chain(self.routes.iter().flat_map(|r| r.channels.iter()))
            .filter(|c| seen.insert(c.as_str()))
            .cloned()
            .collect()
    }

    /// Reports every problem at once.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut p = Problems::default();
        p.check(
            !self.channels.is_empty(),
            "channels",
            "name at least one channel (e.g. [\"file\"])",
        );
        let check_channels = |p: &mut Problems, key: &str, channels: &[String]| {
            for c in channels {
                p.check(
                    valid_channel(c),
                    key,
                    format!("{c:?} is not a channel name (letters, digits, - and _)"),
                );
            }
        };
        check_channels(&mut p, "channels", &self.channels);
        p.check(
            self.dedupe_horizon_secs >= self.cooldown_secs,
            "dedupe-horizon-secs",
            "must be at least cooldown-secs",
        );
        let mut names = BTreeSet::from([DEFAULT_ROUTE.to_string()]);
        for (i, r) in self.routes.iter().enumerate() {
            let key = format!("routes[{i}]");
            p.check(
                valid_channel(&r.name),
                &format!("{key}.name"),
                format!(
                    "{:?} is not a route name (letters, digits, - and _)",
                    r.name
                ),
            );
            p.check(
                names.insert(r.name.clone()),
                &format!("{key}.name"),
                format!(
                    "{:?} is used twice (or is the default route's name)",
                    r.name
                ),
            );
            p.check(
                !r.channels.is_empty(),
                &format!("{key}.channels"),
                "name at least one channel",
            );
            check_channels(&mut p, &format!("{key}.channels"), &r.channels);
            r.matcher.validate(&mut p, &format!("{key}.match"));
            if let Some(c) = r.cooldown_secs {
                p.check(
                    self.dedupe_horizon_secs >= c,
                    &format!("{key}.cooldown-secs"),
                    "must be at most dedupe-horizon-secs",
                );
            }
        }
        for (i, rule) in self.inhibit.iter().enumerate() {
            let key = format!("inhibit[{i}]");
            rule.source.validate(&mut p, &format!("{key}.source"));
            rule.target.validate(&mut p, &format!("{key}.target"));
            p.check(
                rule.window_secs >= 1,
                &format!("{key}.window-secs"),
                "must be at least 1 second",
            );
        }
        p.finish()
    }

    /// Builds the operator (with no silences; see [`Dispatch::set_silences`]).
    pub fn build(&self) -> Result<Dispatch, ConfigErrors> {
        self.validate()?;
        let secs = |s: u64| s as i64 * MICROS_PER_SECOND;
        let mut routes: Vec<Route> = self
            .routes
            .iter()
            .map(|r| Route {
                name: r.name.clone(),
                matcher: r.matcher.clone(),
                channels: r.channels.clone(),
                cooldown: secs(r.cooldown_secs.unwrap_or(self.cooldown_secs)),
                group_by: r.group_by.clone(),
                group_window: secs(r.group_window_secs),
                continue_matching: r.continue_matching,
            })
            .collect();
        routes.push(Route {
            name: DEFAULT_ROUTE.to_string(),
            matcher: Matcher::default(),
            channels: self.channels.clone(),
            cooldown: secs(self.cooldown_secs),
            group_by: self.group_by.clone(),
            group_window: secs(self.group_window_secs),
            continue_matching: false,
        });
        Ok(Dispatch {
            routes,
            inhibit: self.inhibit.clone(),
            dedupe_horizon: secs(self.dedupe_horizon_secs),
            silences: Vec::new(),
            state: State::default(),
            suppressed: BTreeMap::new(),
        })
    }
}

/// Signals of one route and group key gathered in one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Group {
    /// Event time of the first decision; the window is `[opened, opened + window)`.
    opened: i64,
    decisions: Vec<RiskDecision>,
}

/// An alert that went out and may inhibit others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Inhibitor {
    rule: usize,
    until: i64,
    decision: RiskDecision,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// (route, signal id) → event time it was taken by that route.
    sent: BTreeMap<(String, String), i64>,
    /// (route, group key) → event time of its last alert.
    last_alert: BTreeMap<(String, String), i64>,
    /// (route, group key) → the group being gathered.
    open_groups: BTreeMap<(String, String), Group>,
    /// Alerts that went out and inhibit matching decisions until `until`.
    inhibitors: Vec<Inhibitor>,
    pending: WatermarkBuffer<RiskDecision>,
}

/// The dispatch operator.
#[derive(Debug)]
pub struct Dispatch {
    /// Configured routes, then the default route.
    routes: Vec<Route>,
    inhibit: Vec<InhibitRule>,
    dedupe_horizon: i64,
    silences: Vec<Silence>,
    state: State,
    /// Decisions held back since start, by reason code.
    suppressed: BTreeMap<&'static str, u64>,
}

/// Why a decision did not go out on a route.
struct Suppression {
    code: &'static str,
    reason: String,
}

impl Dispatch {
    /// Approved decisions held back (by dedupe, silence, inhibition or cooldown) since start.
    pub fn suppressed(&self) -> u64 {
        self.suppressed.values().sum()
    }

    /// Held-back decisions since start, by reason code.
    pub fn suppressed_by_reason(&self) -> &BTreeMap<&'static str, u64> {
        &self.suppressed
    }

    /// Replaces the silences. They apply by event time, so a silence added while a session runs
    /// mutes the same alerts in a replay that loads the same list.
    pub fn set_silences(&mut self, silences: Vec<Silence>) {
        self.silences = silences;
    }

    /// The routes `d` takes: in order, up to and including the first match that does not
    /// `continue`; the default route when none matched.
    fn routes_for(&self, d: &RiskDecision) -> Vec<usize> {
        let mut taken = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            let is_default = i + 1 == self.routes.len();
            if is_default && !taken.is_empty() {
                break;
            }
            if r.matcher.matches(d) {
                taken.push(i);
                if !r.continue_matching {
                    break;
                }
            }
        }
        taken
    }

    /// Why `d` may not go out on route `route` now, if it may not.
    fn hold_back(&self, route: &Route, key: &str, d: &RiskDecision) -> Option<Suppression> {
        let now = d.event_time;
        if self
            .state
            .sent
            .contains_key(&(route.name.clone(), d.signal_id.to_string()))
        {
            return Some(Suppression {
                code: "duplicate",
                reason: format!("signal already taken by route {}", route.name),
            });
        }
        if let Some(s) = self.silences.iter().find(|s| s.mutes(d)) {
            return Some(Suppression {
                code: "silenced",
                reason: format!(
                    "silence {} ({}){}",
                    s.id,
                    s.matcher.describe(),
                    if s.comment.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", s.comment)
                    }
                ),
            });
        }
        if let Some(i) = self.state.inhibitors.iter().find(|i| {
            let rule = &self.inhibit[i.rule];
            now < i.until
                && i.decision.underlying != d.underlying
                && rule.target.matches(d)
                && rule
                    .equal
                    .iter()
                    .all(|l| l.value(&i.decision) == l.value(d))
        }) {
            return Some(Suppression {
                code: "inhibited",
                reason: format!(
                    "inhibited by the {} {} alert ({:.0}/100) until {} µs",
                    i.decision.underlying, i.decision.direction, i.decision.composite, i.until
                ),
            });
        }
        let last = self
            .state
            .last_alert
            .get(&(route.name.clone(), key.to_string()));
        if let Some(&t) = last.filter(|&&t| now - t < route.cooldown) {
            return Some(Suppression {
                code: "cooldown",
                reason: format!(
                    "route {} sent {key} {}s ago (cooldown {}s)",
                    route.name,
                    (now - t) / MICROS_PER_SECOND,
                    route.cooldown / MICROS_PER_SECOND
                ),
            });
        }
        None
    }

    fn suppress(&mut self, d: &RiskDecision, route: &str, s: Suppression, out: &mut Emit<Alert>) {
        *self.suppressed.entry(s.code).or_default() += 1;
        // The rejection's `symbol` names the route: the decision it refers to is the input id.
        out.reject(rejection(
            STAGE,
            &d.event_id,
            d.event_time,
            &d.underlying,
            route,
            s.code,
            s.reason,
        ));
    }

    fn on_decision(&mut self, d: &RiskDecision, out: &mut Emit<Alert>) {
        if !d.approved {
            return;
        }
        let now = d.event_time;
        let horizon = now - self.dedupe_horizon;
        self.state.sent.retain(|_, t| *t >= horizon);
        self.state.inhibitors.retain(|i| i.until > now);
        for r in self.routes_for(d) {
            let route = self.routes[r].clone();
            let key = group_key(&route.group_by, d);
            let group_id = (route.name.clone(), key.clone());
            // A decision joins a group already gathering without a new cooldown check: the
            // group's first decision passed it. Duplicates and mutes still apply.
            let joining = self.state.open_groups.contains_key(&group_id);
            let held = match self.hold_back(&route, &key, d) {
                Some(s) if joining && s.code == "cooldown" => None,
                other => other,
            };
            if let Some(s) = held {
                self.suppress(d, &route.name, s, out);
                continue;
            }
            self.state
                .sent
                .insert((route.name.clone(), d.signal_id.to_string()), now);
            if route.group_window == 0 {
                self.send(&route, &key, now, vec![d.clone()], out);
            } else {
                self.state
                    .open_groups
                    .entry(group_id)
                    .or_insert_with(|| Group {
                        opened: now,
                        decisions: Vec::new(),
                    })
                    .decisions
                    .push(d.clone());
            }
        }
    }

    /// Sends every group whose window has ended by `t`, in (close time, route, key) order.
    fn close_groups(&mut self, t: i64, out: &mut Emit<Alert>) {
        let window = |name: &str| {
            self.routes
                .iter()
                .find(|r| r.name == name)
                .map_or(0, |r| r.group_window)
        };
        let mut due: Vec<(i64, (String, String))> = self
            .state
            .open_groups
            .iter()
            .map(|(id, g)| (g.opened + window(&id.0), id.clone()))
            .filter(|(closes, _)| *closes <= t)
            .collect();
        due.sort();
        for (closes, id) in due {
            let Some(group) = self.state.open_groups.remove(&id) else {
                continue;
            };
            let Some(route) = self.routes.iter().find(|r| r.name == id.0).cloned() else {
                continue;
            };
            self.send(&route, &id.1, closes, group.decisions, out);
        }
    }

    /// One alert per channel for `decisions` (one, or a group), at event time `at`.
    fn send(
        &mut self,
        route: &Route,
        key: &str,
        at: i64,
        decisions: Vec<RiskDecision>,
        out: &mut Emit<Alert>,
    ) {
        let Some(first) = decisions.first() else {
            return;
        };
        self.state
            .last_alert
            .insert((route.name.clone(), key.to_string()), at);
        for d in &decisions {
            for (rule, inh) in self.inhibit.iter().enumerate() {
                if inh.source.matches(d) {
                    self.state.inhibitors.push(Inhibitor {
                        rule,
                        until: at + inh.window_secs as i64 * MICROS_PER_SECOND,
                        decision: d.clone(),
                    });
                }
            }
        }
        let single = decisions.len() == 1;
        let message = if single {
            Message {
                headline: first.headline.clone(),
                text: first.text.clone(),
                markdown: first.markdown.clone(),
                html: first.html.clone(),
                telegram: first.telegram.clone(),
            }
        } else {
            group_message(key, &decisions)
        };
        let direction = if decisions.iter().all(|d| d.direction == first.direction) {
            first.direction.clone()
        } else {
            "mixed".to_string()
        };
        let composite = decisions.iter().map(|d| d.composite).fold(0.0, f64::max);
        for channel in &route.channels {
            // Single alerts on the default route keep the ids they had before routes existed.
            let mut id = EventId::new("alert");
            let mut dedupe = EventId::new("delivery");
            if single {
                id = id.part(&first.event_id);
                dedupe = dedupe.part(&first.signal_id);
            } else {
                id = id.part(key).part_i64(at);
                dedupe = dedupe.part(key).part_i64(at);
            }
            if route.name != DEFAULT_ROUTE {
                id = id.part(&route.name);
                dedupe = dedupe.part(&route.name);
            }
            out.emit(Alert {
                event_id: id.part(channel).finish(),
                event_time: at,
                underlying: first.underlying.clone(),
                signal_id: first.signal_id.clone(),
                decision_id: first.event_id.clone(),
                sector: first.sector.clone(),
                direction: direction.clone(),
                composite,
                channel: channel.clone(),
                dedupe_key: dedupe.part(channel).finish(),
                headline: message.headline.clone(),
                text: message.text.clone(),
                markdown: message.markdown.clone(),
                route: route.name.clone(),
                group_key: key.to_string(),
                signal_ids: decisions.iter().map(|d| d.signal_id.clone()).collect(),
                html: message.html.clone(),
                telegram: message.telegram.clone(),
            });
        }
    }
}

/// An alert's message in every format.
struct Message {
    headline: String,
    text: String,
    markdown: String,
    html: String,
    telegram: String,
}

/// The message of a group: a headline counting the signals, then each signal's own narrative.
fn group_message(key: &str, decisions: &[RiskDecision]) -> Message {
    let summary: Vec<String> = decisions
        .iter()
        .map(|d| format!("{} {} {:.0}", d.underlying, d.direction, d.composite))
        .collect();
    let headline = format!(
        "{key}: {} signals — {}",
        decisions.len(),
        summary.join(", ")
    );
    let text = std::iter::once(headline.clone())
        .chain(decisions.iter().map(|d| d.text.clone()))
        .collect::<Vec<_>>()
        .join("\n\n");
    let markdown = std::iter::once(format!("**{headline}**"))
        .chain(decisions.iter().map(|d| d.markdown.clone()))
        .collect::<Vec<_>>()
        .join("\n\n---\n\n");
    // The narratives' own HTML is escaped already; only the headline built here is not.
    let html = std::iter::once(format!("<h2>{}</h2>", handlebars::html_escape(&headline)))
        .chain(decisions.iter().map(|d| d.html.clone()))
        .collect::<Vec<_>>()
        .join("\n<hr>\n");
    let telegram = std::iter::once(format!("<b>{}</b>", handlebars::html_escape(&headline)))
        .chain(decisions.iter().map(|d| d.telegram.clone()))
        .collect::<Vec<_>>()
        .join("\n\n");
    Message {
        headline,
        text,
        markdown,
        html,
        telegram,
    }
}

impl Operator for Dispatch {
    type In = RiskDecision;
    type Out = Alert;

    fn name(&self) -> &'static str {
        STAGE
    }

    fn on_event(
        &mut self,
        ev: &RiskDecision,
        _ctx: &Ctx,
        _out: &mut Emit<Alert>,
    ) -> Result<(), OpError> {
        self.state
            .pending
            .push(ev.event_time, &ev.event_id, ev.clone());
        Ok(())
    }

    fn on_watermark(
        &mut self,
        event_time: i64,
        _ctx: &Ctx,
        out: &mut Emit<Alert>,
    ) -> Result<(), OpError> {
        for d in self.state.pending.release(event_time) {
            // Groups whose window ended before this decision go out first: a decision at the
            // very instant a window ends starts the next group.
            self.close_groups(d.event_time, out);
            self.on_decision(&d, out);
        }
        self.close_groups(event_time, out);
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>, OpError> {
        encode_state(STAGE, &self.state)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), OpError> {
        self.state = decode_state(STAGE, state)?;
        Ok(())
    }
}
