//! The `dispatch` stage decides what goes out: approved decisions become [`Alert`]s, one per
//! configured channel, deduplicated by signal id and held back by a cooldown per underlying.
//! Delivery itself (files, HTTP, SMTP) is I/O and lives in the pipeline's sinks.

use crate::config::{ConfigErrors, Problems};
use crate::operator::{decode_state, encode_state, Ctx, Emit, OpError, Operator};
use crate::ordering::WatermarkBuffer;
use optionflow_schemas::{time::MICROS_PER_SECOND, Alert, EventId, RiskDecision};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const STAGE: &str = "dispatch";

/// The `[dispatch]` configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct DispatchConfig {
    /// Channels every alert is routed to.
    pub channels: Vec<String>,
    /// Minimum event time between two alerts on one underlying, in seconds.
    pub cooldown_secs: u64,
    /// How long a sent signal id is remembered for deduplication, in seconds of event time.
    pub dedupe_horizon_secs: u64,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            channels: vec!["file".to_string()],
            cooldown_secs: 15 * 60,
            dedupe_horizon_secs: 7 * 86_400,
        }
    }
}

impl DispatchConfig {
    /// Reports every problem at once.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut p = Problems::default();
        p.check(
            !self.channels.is_empty(),
            "channels",
            "name at least one channel (e.g. [\"file\"])",
        );
        for c in &self.channels {
            p.check(
                !c.is_empty()
                    && c.chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'),
                "channels",
                format!("{c:?} is not a channel name (letters, digits, - and _)"),
            );
        }
        p.check(
            self.dedupe_horizon_secs >= self.cooldown_secs,
            "dedupe-horizon-secs",
            "must be at least cooldown-secs",
        );
        p.finish()
    }

    /// Builds the operator.
    pub fn build(&self) -> Result<Dispatch, ConfigErrors> {
        self.validate()?;
        Ok(Dispatch {
            cfg: self.clone(),
            state: State::default(),
            suppressed: 0,
        })
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// Signal id → event time it was sent.
    sent: BTreeMap<String, i64>,
    /// Underlying → event time of its last alert.
    last_alert: BTreeMap<String, i64>,
    pending: WatermarkBuffer<RiskDecision>,
}

/// The dispatch operator.
#[derive(Debug)]
pub struct Dispatch {
    cfg: DispatchConfig,
    state: State,
    suppressed: u64,
}

impl Dispatch {
    /// Approved decisions held back by dedupe or cooldown since start.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }

    fn dispatch(&mut self, d: &RiskDecision, out: &mut Emit<Alert>) {
        if !d.approved {
            return;
        }
        let now = d.event_time;
        let horizon = now - self.cfg.dedupe_horizon_secs as i64 * MICROS_PER_SECOND;
        self.state.sent.retain(|_, t| *t >= horizon);
        let cooling = self
            .state
            .last_alert
            .get(&d.underlying)
            .is_some_and(|t| now - t < self.cfg.cooldown_secs as i64 * MICROS_PER_SECOND);
        if self.state.sent.contains_key(&d.signal_id) || cooling {
            self.suppressed += 1;
            return;
        }
        self.state.sent.insert(d.signal_id.clone(), now);
        self.state.last_alert.insert(d.underlying.clone(), now);
        for channel in &self.cfg.channels {
            out.emit(Alert {
                event_id: EventId::new("alert")
                    .part(&d.event_id)
                    .part(channel)
                    .finish(),
                event_time: d.event_time,
                underlying: d.underlying.clone(),
                signal_id: d.signal_id.clone(),
                decision_id: d.event_id.clone(),
                sector: d.sector.clone(),
                direction: d.direction.clone(),
                composite: d.composite,
                channel: channel.clone(),
                dedupe_key: EventId::new("delivery")
                    .part(&d.signal_id)
                    .part(channel)
                    .finish(),
                headline: d.headline.clone(),
                text: d.text.clone(),
                markdown: d.markdown.clone(),
            });
        }
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
            self.dispatch(&d, out);
        }
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
