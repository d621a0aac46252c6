//! The configuration file: one TOML document, one section per component, layered as
//! built-in defaults ← `--config` file ← `OPTIONFLOW__SECTION__KEY` environment variables.
//! Unknown keys are errors that name the key; validation reports every problem at once.
//! Every key is documented in `deploy/optionflow.example.toml`.

use crate::delivery::ChannelsConfig;
use crate::source::simulator::SimulatorConfig;
use crate::vendor::polygon::PolygonConfig;
use crate::vendor::tradier::TradierConfig;
use crate::vendor::universe::Universe;
use optionflow_operators::{
    calibration::Calibration,
    consensus::ConsensusConfig,
    dispatch::DispatchConfig,
    explain::{outcomes::OutcomeHistory, Explain, ExplainAssets, ExplainConfig},
    greeks::GreeksConfig,
    normalize::NormalizeConfig,
    risk_gate::{calendar::Calendar, RiskGateConfig},
    score::ScoreConfig,
    ConfigErrors,
};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Prefix of environment overrides: `OPTIONFLOW__SCORE__WINDOW_SECS=30`.
pub const ENV_PREFIX: &str = "OPTIONFLOW__";

/// Sections of the configuration file owned by other crates, which [`Config::load`] sets aside
/// (after applying the environment overrides) instead of rejecting: `[backtest]` is
/// `optionflow-replay`'s `BacktestConfig`, validated by `optionflow backtest`. They are not part
/// of [`Config::fingerprint`], so changing a backtest setting does not invalidate a replay.
pub const FOREIGN_SECTIONS: &[&str] = &["backtest"];

/// Channels the runtime delivers alerts to: `file` is `<data-dir>/alerts.jsonl` plus the line
/// printed on stdout; the others are configured in `[channels]` (see [`crate::delivery`]).
pub const DELIVERABLE_CHANNELS: &[&str] = &["file", "webhook", "telegram", "slack", "email"];

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Config {
    /// The embedded runtime.
    pub runtime: RuntimeConfig,
    /// The built-in market simulator.
    pub simulator: SimulatorConfig,
    /// The normalize stage.
    pub normalize: NormalizeConfig,
    /// The greeks stage.
    pub greeks: GreeksConfig,
    /// The score stage.
    pub score: ScoreConfig,
    /// The consensus stage.
    pub consensus: ConsensusConfig,
    /// The explain stage.
    pub explain: ExplainConfig,
    /// The risk-gate stage.
    pub risk_gate: RiskGateConfig,
    /// The dispatch stage.
    pub dispatch: DispatchConfig,
    /// How alerts reach the channels `[dispatch] channels` names.
    pub channels: ChannelsConfig,
    /// The underlyings vendor sources watch.
    pub universe: Universe,
    /// The Polygon source.
    pub polygon: PolygonConfig,
    /// The Tradier source.
    pub tradier: TradierConfig,
    /// The local HTTP server (`/metrics`).
    pub http: HttpServerConfig,
    /// Hit rates on `/metrics` and trace export.
    pub telemetry: TelemetryConfig,
    /// What joins the stages: embedded channels or Kafka.
    pub bus: crate::kafka::config::BusConfig,
    /// How to reach Kafka (`[bus] kind = "kafka"`).
    pub kafka: crate::kafka::config::KafkaConfig,
    /// Where operator state is checkpointed: embedded files or ScyllaDB.
    pub state: crate::scylla::config::StateConfig,
    /// How to reach ScyllaDB (`[state] kind = "scylla"`).
    pub scylla: crate::scylla::ScyllaConfig,
    /// The input tape a session records. Left out of the serialized form while it is the
    /// default, so [`Config::fingerprint`] of existing data directories does not change.
    #[serde(skip_serializing_if = "TapeConfig::is_default")]
    pub tape: TapeConfig,
}

/// The `[tape]` section: how a session's input tape (`quotes.raw.avro`) is written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct TapeConfig {
    /// Block compression of a new tape: `zstandard` (default), `snappy`, `deflate` or `null`.
    /// A resumed session goes on in its tape's own codec.
    pub codec: crate::tape::TapeCodec,
}

impl TapeConfig {
    fn is_default(&self) -> bool {
        *self == TapeConfig::default()
    }
}

/// The `[telemetry]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Event-time seconds after a signal at which its outcome is labelled for the hit-rate
    /// metrics.
    pub hit_rate_horizon_secs: u64,
    /// A move beyond this fraction in the signal's direction is a hit (0.005 = 0.5%).
    pub hit_rate_threshold: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            hit_rate_horizon_secs: 30 * 60,
            hit_rate_threshold: 0.005,
        }
    }
}

/// The `[http]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct HttpServerConfig {
    /// Address the HTTP server listens on (`/metrics`); port 0 picks a free one.
    pub listen: String,
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
        }
    }
}

/// The `[runtime]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Market time between checkpoints, in seconds.
    pub checkpoint_interval_secs: u64,
    /// Market time between checkpoints of a replay run as fast as it goes (a tape, no
    /// `--speed`), in seconds: there a minute of market time passes in a few tens of
    /// milliseconds, and a checkpoint a minute (score's histories are megabytes) cost a tenth of
    /// the replay's throughput, where one every 15 minutes costs under 1% (perf) and a crash
    /// replays at most 15 minutes of market time again (~450,000 quotes of the 20-underlying
    /// tape: well under a second at the measured speed).
    pub replay_checkpoint_interval_secs: u64,
    /// Capacity of each channel between stages, in batches (bounded: backpressure, not memory).
    pub channel_capacity: usize,
    /// Wall-clock seconds between status lines.
    pub status_interval_secs: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            checkpoint_interval_secs: 60,
            replay_checkpoint_interval_secs: 900,
            channel_capacity: 16,
            status_interval_secs: 2,
        }
    }
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// Path given.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The TOML does not parse or names unknown keys.
    #[error("config {origin}: {message}")]
    Parse {
        /// File or environment.
        origin: String,
        /// What serde/toml said (it names the key).
        message: String,
    },
    /// Values are out of range.
    #[error("config: {0}")]
    Invalid(ConfigErrors),
}

impl Config {
    /// Loads defaults ← `path` ← environment overrides from `env` (pass `std::env::vars()`).
    /// The [`FOREIGN_SECTIONS`] are ignored; [`Config::load_split`] returns them.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        Self::load_split(path, env).map(|(cfg, _)| cfg)
    }

    /// As [`Config::load`], also returning the [`FOREIGN_SECTIONS`] present in the file or the
    /// environment, by name, for their owners to deserialize and validate.
    pub fn load_split(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Config, toml::Table), ConfigError> {
        let mut table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })?;
                toml::from_str::<toml::Table>(&text).map_err(|e| ConfigError::Parse {
                    origin: p.display().to_string(),
                    message: e.to_string(),
                })?
            }
            None => toml::Table::new(),
        };
        let mut overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        // Apply in a fixed order so the result never depends on the environment's ordering.
        overrides.sort();
        for (key, value) in overrides {
            apply_env(&mut table, &key, &value)?;
        }
        let mut foreign = toml::Table::new();
        for name in FOREIGN_SECTIONS {
            if let Some(section) = table.remove(*name) {
                foreign.insert(name.to_string(), section);
            }
        }
        let origin = path.map_or("(defaults and environment)".to_string(), |p| {
            p.display().to_string()
        });
        let cfg: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                origin,
                message: e.message().to_string(),
            })?;
        cfg.validate().map_err(ConfigError::Invalid)?;
        Ok((cfg, foreign))
    }

    /// Validates every section and reports every problem, each prefixed by its section.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut p = optionflow_operators::config::Problems::default();
        p.check(
            self.runtime.checkpoint_interval_secs >= 1,
            "runtime.checkpoint-interval-secs",
            "must be at least 1",
        );
        p.check(
            self.runtime.replay_checkpoint_interval_secs >= 1,
            "runtime.replay-checkpoint-interval-secs",
            "must be at least 1",
        );
        p.check(
            self.runtime.channel_capacity >= 1,
            "runtime.channel-capacity",
            "must be at least 1",
        );
        p.check(
            self.runtime.status_interval_secs >= 1,
            "runtime.status-interval-secs",
            "must be at least 1",
        );
        // The simulator's messages already name their key as `simulator.<key>`.
        for problem in self.simulator.validate().err().unwrap_or_default() {
            p.push_qualified(problem);
        }
        for channel in &self.dispatch.all_channels() {
            p.check(
                DELIVERABLE_CHANNELS.contains(&channel.as_str()),
                "dispatch.channels",
                format!(
                    "{channel:?} is not a channel this version delivers to (available: {})",
                    DELIVERABLE_CHANNELS.join(", ")
                ),
            );
        }
        p.extend_section("normalize", self.normalize.validate());
        p.extend_section("greeks", self.greeks.validate());
        p.extend_section("score", self.score.validate());
        p.extend_section("consensus", self.consensus.validate());
        // Reads and compiles the template overrides and the outcomes file, so a missing or
        // corrupt one is reported with everything else.
        p.extend_section("explain", self.build_explain().map(|_| ()));
        p.extend_section("risk-gate", self.risk_gate.validate());
        if let Err(problems) = self.read_calendar() {
            for problem in problems {
                p.push("risk-gate.calendar-file", problem);
            }
        }
        p.extend_section("dispatch", self.dispatch.validate());
        p.extend_section(
            "channels",
            self.channels.validate(&self.dispatch.all_channels()),
        );
        p.extend_section("universe", self.universe.validate());
        p.extend_section("polygon", self.polygon.validate());
        p.extend_section("kafka", self.kafka.validate());
        p.extend_section("scylla", self.scylla.validate());
        p.extend_section("tradier", self.tradier.validate());
        p.check(
            self.telemetry.hit_rate_horizon_secs >= 1,
            "telemetry.hit-rate-horizon-secs",
            "must be at least 1",
        );
        p.check(
            self.telemetry.hit_rate_threshold.is_finite()
                && self.telemetry.hit_rate_threshold >= 0.0,
            "telemetry.hit-rate-threshold",
            "must be a non-negative fraction such as 0.005",
        );
        p.check(
            self.http.listen.parse::<std::net::SocketAddr>().is_ok(),
            "http.listen",
            format!(
                "{:?} is not an address such as 127.0.0.1:8080",
                self.http.listen
            ),
        );
        p.finish()
    }

    /// Builds the explain stage with the files `[explain] templates-dir` and `outcomes-file`
    /// name, read here because the stage itself does no I/O. Every problem is reported at once,
    /// keys relative to `[explain]`; a template is named by its file.
    pub fn build_explain(&self) -> Result<Explain, ConfigErrors> {
        let mut p = optionflow_operators::config::Problems::default();
        let mut assets = ExplainAssets::default();
        if let Some(dir) = &self.explain.templates_dir {
            match read_templates(Path::new(dir)) {
                Ok(t) => assets.templates = t,
                Err(e) => p.push("templates-dir", e),
            }
        }
        if let Some(path) = &self.explain.outcomes_file {
            match std::fs::read_to_string(path) {
                Ok(text) => match OutcomeHistory::from_jsonl(&text) {
                    Ok(h) => assets.outcomes = h,
                    Err(e) => p.push("outcomes-file", format!("{path}: {e}")),
                },
                Err(e) => p.push("outcomes-file", format!("cannot read {path}: {e}")),
            }
        }
        let built = self.explain.build_with(&assets);
        if let Err(ConfigErrors(v)) = &built {
            v.iter().for_each(|e| p.push_qualified(e.clone()));
        }
        p.finish()?;
        built
    }

    /// Reads `[consensus] calibration-file` when set; the identity prior otherwise.
    pub fn load_calibration(&self) -> Result<Calibration, ConfigError> {
        let Some(path) = &self.consensus.calibration_file else {
            return Ok(Calibration::Identity);
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        Calibration::from_json(&text).map_err(|message| ConfigError::Parse {
            origin: format!("consensus.calibration-file {path}"),
            message,
        })
    }

    /// Reads and parses `[risk-gate] calendar-file` (`None` when unset or blank, which the
    /// stage's own validation reports); `Err` names the file and every bad line.
    fn read_calendar(&self) -> Result<Option<Calendar>, Vec<String>> {
        let Some(path) = self
            .risk_gate
            .calendar_file
            .as_ref()
            .filter(|p| !p.trim().is_empty())
        else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![format!(
                "cannot read {path}: {e} (the path is relative to the working directory)"
            )]
        })?;
        Calendar::parse_csv(&text).map(Some).map_err(|problems| {
            problems
                .into_iter()
                .map(|e| format!("{path} {e}"))
                .collect()
        })
    }

    /// The blackout calendar of `[risk-gate] calendar-file`; an empty one when unset.
    pub fn load_calendar(&self) -> Result<Calendar, ConfigError> {
        self.read_calendar()
            .map(Option::unwrap_or_default)
            .map_err(|problems| {
                ConfigError::Invalid(ConfigErrors(
                    problems
                        .into_iter()
                        .map(|e| format!("risk-gate.calendar-file: {e}"))
                        .collect(),
                ))
            })
    }

    /// A stable fingerprint of the effective configuration, to tell whether a data directory's
    /// session was started with the same settings.
    /// `[channels]` is left out: how alerts are delivered never changes the outputs, so a new
    /// webhook URL or rate limit must not turn a session into another one.
    pub fn fingerprint(&self) -> String {
        let outputs = Config {
            channels: ChannelsConfig::default(),
            telemetry: TelemetryConfig::default(),
            // Where the stages run, how often their state is saved and where it is kept never
            // changes the outputs.
            runtime: Default::default(),
            bus: Default::default(),
            kafka: Default::default(),
            state: Default::default(),
            scylla: Default::default(),
            // How the tape is compressed never changes what is on it.
            tape: Default::default(),
            // Nor does which thread prices a quote.
            greeks: GreeksConfig {
                pricing_threads: 0,
                ..self.greeks.clone()
            },
            ..self.clone()
        };
        let text = toml::to_string(&outputs).unwrap_or_default();
        optionflow_schemas::EventId::new("config")
            .part(&text)
            .finish()
            .to_string()
    }
}

/// The `*.hbs` files of a template-override directory, by file name.
fn read_templates(dir: &Path) -> Result<std::collections::BTreeMap<String, String>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read directory {}: {e}", dir.display()))?;
    let mut out = std::collections::BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".hbs") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path())
            .map_err(|e| format!("cannot read {}: {e}", entry.path().display()))?;
        out.insert(name, text);
    }
    Ok(out)
}

/// Sets `section.key` from `OPTIONFLOW__SECTION__KEY=value` (`_` in names stands for `-`).
fn apply_env(table: &mut toml::Table, var: &str, value: &str) -> Result<(), ConfigError> {
    let path: Vec<String> = var[ENV_PREFIX.len()..]
        .split("__")
        .map(|s| s.to_ascii_lowercase().replace('_', "-"))
        .collect();
    if path.iter().any(|s| s.is_empty()) {
        return Err(ConfigError::Parse {
            origin: format!("environment variable {var}"),
            message: "expected OPTIONFLOW__SECTION__KEY".to_string(),
        });
    }
    // A value is TOML when it parses as one (numbers, booleans, arrays), a string otherwise.
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let mut node = table;
    for part in &path[..path.len() - 1] {
        let entry = node
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(ConfigError::Parse {
                    origin: format!("environment variable {var}"),
                    message: format!("{part} is a value, not a section"),
                })
            }
        };
    }
    node.insert(path[path.len() - 1].clone(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_validate() {
        let cfg = Config::load(None, env(&[])).unwrap();
        assert_eq!(cfg, Config::default());
    }

    #[test]
    fn foreign_sections_are_set_aside_not_rejected_nor_fingerprinted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[backtest]\nanything = 1\n").unwrap();
        let (cfg, foreign) =
            Config::load_split(Some(&path), env(&[("OPTIONFLOW__BACKTEST__OTHER", "2")])).unwrap();
        assert_eq!(cfg, Config::default());
        assert_eq!(cfg.fingerprint(), Config::default().fingerprint());
        let section = foreign["backtest"].as_table().unwrap();
        assert_eq!(section["anything"].as_integer(), Some(1));
        assert_eq!(section["other"].as_integer(), Some(2));
    }

    #[test]
    fn file_then_environment_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[score]\nwindow-secs = 30\nmin-samples = 5\n").unwrap();
        let cfg = Config::load(
            Some(&path),
            env(&[("OPTIONFLOW__SCORE__WINDOW_SECS", "15"), ("HOME", "/x")]),
        )
        .unwrap();
        assert_eq!(cfg.score.window_secs, 15);
        assert_eq!(cfg.score.min_samples, 5);
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::load(None, env(&[("OPTIONFLOW__SCORE__WINDOW_SEKS", "15")])).unwrap_err();
        assert!(err.to_string().contains("window-seks"), "{err}");
    }

    #[test]
    fn every_problem_is_reported() {
        let err = Config::load(
            None,
            env(&[
                ("OPTIONFLOW__SCORE__WINDOW_SECS", "0"),
                ("OPTIONFLOW__RISK_GATE__MAX_PER_SECTOR", "0"),
                ("OPTIONFLOW__SIMULATOR__EXPIRIES", "0"),
                (
                    "OPTIONFLOW__DISPATCH__CHANNELS",
                    "[\"file\", \"pager\", \"webhook\"]",
                ),
                ("OPTIONFLOW__CHANNELS__EMAIL__SMTP_PORT", "0"),
            ]),
        )
        .unwrap_err()
        .to_string();
        for want in [
            "\n  - score.window-secs",
            "\n  - risk-gate.max-per-sector",
            "\n  - simulator.expiries",
            "\n  - dispatch.channels: \"pager\"",
            "\n  - channels.webhook.url: set url",
            "\n  - channels.email.smtp-port",
        ] {
            assert!(err.contains(want), "{want:?} missing from {err}");
        }
    }

    #[test]
    fn delivery_settings_do_not_change_the_fingerprint() {
        let mut cfg = Config::default();
        let before = cfg.fingerprint();
        cfg.channels.webhook.url = Some("http://127.0.0.1:9/hook".into());
        cfg.channels.slack.requests_per_minute = 1;
        assert_eq!(cfg.fingerprint(), before);
        cfg.dispatch.channels.push("webhook".into());
        assert_ne!(cfg.fingerprint(), before);
    }

    #[test]
    fn checkpoint_cadence_does_not_change_the_fingerprint() {
        let mut cfg = Config::default();
        let before = cfg.fingerprint();
        cfg.runtime.checkpoint_interval_secs = 5;
        cfg.runtime.replay_checkpoint_interval_secs = 7;
        cfg.runtime.channel_capacity = 3;
        assert_eq!(cfg.fingerprint(), before);
    }

    #[test]
    fn the_calibration_file_is_loaded_or_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("cal.json");
        std::fs::write(&good, r#"{"method":"platt","a":4.0,"b":-3.0}"#).unwrap();
        let mut cfg = Config::default();
        assert_eq!(cfg.load_calibration().unwrap(), Calibration::Identity);
        cfg.consensus.calibration_file = Some(good.display().to_string());
        assert!(cfg.load_calibration().unwrap().is_fitted());
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"method":"isotonic","points":[]}"#).unwrap();
        cfg.consensus.calibration_file = Some(bad.display().to_string());
        let err = cfg.load_calibration().unwrap_err().to_string();
        assert!(
            err.contains("bad.json") && err.contains("at least one point"),
            "{err}"
        );
    }

    #[test]
    fn the_calendar_file_is_checked_line_by_line_and_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        assert!(cfg.load_calendar().unwrap().entries.is_empty());
        let missing = dir.path().join("nope.csv");
        cfg.risk_gate.calendar_file = Some(missing.display().to_string());
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("\n  - risk-gate.calendar-file: cannot read") && err.contains("nope.csv"),
            "{err}"
        );
        let bad = dir.path().join("bad.csv");
        std::fs::write(
            &bad,
            "start,end,scope,kind,note\n2021-01-27,,all,fomc,ok\n2021-02-30,,all,fomc,x\n",
        )
        .unwrap();
        cfg.risk_gate.calendar_file = Some(bad.display().to_string());
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("risk-gate.calendar-file:")
                && err.contains("bad.csv line 3: start \"2021-02-30\""),
            "{err}"
        );
        assert!(cfg.load_calendar().is_err());
        // The example calendar in deploy/ loads.
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/calendar.example.csv");
        cfg.risk_gate.calendar_file = Some(example.display().to_string());
        assert!(cfg.validate().is_ok(), "{:?}", cfg.validate());
        assert!(cfg.load_calendar().unwrap().entries.len() >= 10);
    }

    #[test]
    fn explain_files_are_loaded_or_refused_with_their_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.explain.templates_dir = Some(dir.path().join("nope").display().to_string());
        cfg.explain.outcomes_file = Some(dir.path().join("none.jsonl").display().to_string());
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("explain.templates-dir: cannot read directory"),
            "{err}"
        );
        assert!(err.contains("explain.outcomes-file: cannot read"), "{err}");

        let templates = dir.path().join("templates");
        std::fs::create_dir(&templates).unwrap();
        std::fs::write(templates.join("headline.hbs"), "{{underlying}}!").unwrap();
        std::fs::write(templates.join("signal.txt.hbs"), "{{#if}}").unwrap();
        std::fs::write(templates.join("README"), "not a template").unwrap();
        let outcomes = dir.path().join("outcomes.jsonl");
        std::fs::write(&outcomes, "{\"signal_id\": 1}\n").unwrap();
        cfg.explain.templates_dir = Some(templates.display().to_string());
        cfg.explain.outcomes_file = Some(outcomes.display().to_string());
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("explain.templates-dir: signal.txt.hbs does not compile"),
            "{err}"
        );
        assert!(err.contains("outcomes.jsonl: line 1:"), "{err}");

        std::fs::write(templates.join("signal.txt.hbs"), "{{summary}}").unwrap();
        std::fs::write(&outcomes, "").unwrap();
        cfg.validate().unwrap();
        cfg.build_explain().unwrap();
    }

    /// The tape's codec is chosen in `[tape]` (or the environment), unknown codecs are refused
    /// by name, and the choice does not change the fingerprint a data directory is resumed by.
    #[test]
    fn the_tape_codec_is_configurable_and_outside_the_fingerprint() {
        let snappy = Config::load(None, env(&[("OPTIONFLOW__TAPE__CODEC", "snappy")])).unwrap();
        assert_eq!(snappy.tape.codec, crate::tape::TapeCodec::Snappy);
        assert_eq!(snappy.fingerprint(), Config::default().fingerprint());
        let err = Config::load(None, env(&[("OPTIONFLOW__TAPE__CODEC", "lz4")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lz4"), "{err}");
    }

    #[test]
    fn pricing_threads_are_outside_the_fingerprint() {
        let inline =
            Config::load(None, env(&[("OPTIONFLOW__GREEKS__PRICING_THREADS", "1")])).unwrap();
        assert_eq!(inline.greeks.pricing_threads, 1);
        assert_eq!(inline.fingerprint(), Config::default().fingerprint());
        let err = Config::load(
            None,
            env(&[("OPTIONFLOW__GREEKS__PRICING_THREADS", "5000")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("greeks.pricing-threads"), "{err}");
    }

    /// The example file documents every key with its default: loading it must give exactly the
    /// built-in defaults, and every key the defaults have must appear in it.
    #[test]
    fn the_example_config_is_the_defaults_and_names_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/optionflow.example.toml");
        let cfg = Config::load(Some(&path), env(&[])).unwrap();
        assert_eq!(cfg, Config::default());
        let text = std::fs::read_to_string(&path).unwrap();
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        // (`[backtest]`, a foreign section, is checked by optionflow-replay.)
        fn check(text: &str, path: &str, table: &toml::Table) {
            for (key, value) in table {
                match value {
                    // A nested section ([polygon.http]) has its own header.
                    toml::Value::Table(t) if !t.is_empty() || path.is_empty() => {
                        let name = if path.is_empty() {
                            key.clone()
                        } else {
                            format!("{path}.{key}")
                        };
                        assert!(text.contains(&format!("[{name}]")), "[{name}] undocumented");
                        check(text, &name, t);
                    }
                    _ => assert!(
                        text.contains(&format!("\n{key} ="))
                            || text.contains(&format!("# {key} =")),
                        "{path}.{key} undocumented"
                    ),
                }
            }
        }
        check(&text, "", &defaults);
    }
}
