//! The Kafka mode: the same operators as the embedded mode, joined by Kafka topics, with their
//! state checkpointed per input partition (files, or ScyllaDB with `[state] kind = "scylla"`).
//!
//! ```text
//! source ─► quotes.raw ─► normalize ─► quotes.normalized ─► greeks ─► greeks ─► score ─► factors (1)
//!   ─► consensus ─► signals ─► explain ─► explanations (1) ─► risk-gate ─► decisions (1) ─► dispatch ─► alerts (1)
//! ```
//!
//! - [`wire`]: message framing (single-object Avro, origin, sequence, in-band watermarks).
//! - [`stream`]: the per-partition bookkeeping those frames drive.
//! - [`stage`]: one stage as a consumer-group member; [`source`]: a source as a producer.
//! - [`topics`]: the topics and the admin calls; [`checkpoint`]: instance checkpoints.

pub mod checkpoint;
pub mod config;
pub mod producer;
pub mod run;
pub mod source;
pub mod stage;
pub mod stream;
pub mod topics;
pub mod wire;

use crate::config::Config;
use crate::runtime::embedded::files;
use crate::runtime::stage::StageObserver;
use crate::runtime::PipelineError;
use crate::scylla::{ScyllaState, StateKind};
use crate::silences::WatchedDispatch;
use crate::telemetry::Metrics;
use checkpoint::CheckpointStore;
use producer::Producer;
use stage::StageSpec;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::watch;

/// Everything a stage or source of the Kafka mode shares within one process.
#[derive(Clone)]
pub struct KafkaEnv {
    /// Effective configuration.
    pub config: Arc<Config>,
    /// The process's producer.
    pub producer: Arc<Producer>,
    /// Where instance checkpoints go.
    pub store: CheckpointStore,
    /// Local directory for the taps (`alerts.jsonl`, …) and file checkpoints.
    pub data_dir: PathBuf,
    /// Shared counters.
    pub metrics: Arc<Metrics>,
    /// Fires when the process should stop (checkpointing first).
    pub stop: watch::Receiver<bool>,
    /// Stop a stage once every partition of its input has ended (`run`), rather than serving on.
    pub exit_on_end: bool,
    /// Who else sees each stage's outputs (the dashboard, the CLI's alert printer).
    pub observer: Option<Arc<dyn StageObserver>>,
    /// Alert delivery (dispatch only; set by [`run_stage`] when channels besides `file` are on).
    pub delivery: Option<crate::delivery::DeliveryHandle>,
}

impl KafkaEnv {
    /// Connects what `[state]` and `[kafka]` name. `stop` ends the stages.
    pub async fn connect(
        config: Config,
        data_dir: &Path,
        stop: watch::Receiver<bool>,
    ) -> Result<KafkaEnv, PipelineError> {
        std::fs::create_dir_all(data_dir).map_err(PipelineError::io(format!(
            "creating {}",
            data_dir.display()
        )))?;
        let store = match config.state.kind {
            StateKind::Embedded => CheckpointStore::Files(data_dir.join("kafka-checkpoints")),
            StateKind::Scylla => CheckpointStore::Scylla(Arc::new(
                ScyllaState::connect(&config.scylla)
                    .await
                    .map_err(|e| PipelineError::State(e.to_string()))?,
            )),
        };
        let producer = Arc::new(Producer::new(&config.kafka)?);
        Ok(KafkaEnv {
            config: Arc::new(config),
            producer,
            store,
            data_dir: data_dir.to_path_buf(),
            metrics: Arc::new(Metrics::default()),
            stop,
            exit_on_end: false,
            observer: None,
            delivery: None,
        })
    }
}

/// The stages, in pipeline order, by their CLI names.
pub const STAGES: [&str; 7] = [
    "normalize",
    "greeks",
    "score",
    "consensus",
    "explain",
    "risk-gate",
    "dispatch",
];

/// What stage `name` reads and writes.
pub fn spec(name: &str) -> Option<StageSpec> {
    use topics::*;
    let s = |name, input, output| StageSpec {
        name,
        input,
        output,
        tap: None,
        rejects_tap: None,
        counter: None,
    };
    Some(match name {
        "normalize" => s("normalize", RAW, NORMALIZED),
        "greeks" => s("greeks", NORMALIZED, GREEKS),
        "score" => s("score", GREEKS, FACTORS),
        "consensus" => StageSpec {
            tap: Some(files::SIGNALS),
            counter: Some(|m| &m.signals),
            ..s("consensus", FACTORS, SIGNALS)
        },
        "explain" => s("explain", SIGNALS, EXPLANATIONS),
        "risk-gate" => StageSpec {
            tap: Some(files::DECISIONS),
            counter: Some(|m| &m.decisions),
            ..s("risk-gate", EXPLANATIONS, DECISIONS)
        },
        "dispatch" => StageSpec {
            tap: Some(files::ALERTS),
            rejects_tap: Some(files::SUPPRESSED),
            counter: Some(|m| &m.alerts),
            ..s("dispatch", DECISIONS, ALERTS)
        },
        _ => return None,
    })
}

fn cfg_err(e: optionflow_operators::ConfigErrors) -> PipelineError {
    PipelineError::Config(crate::config::ConfigError::Invalid(e))
}

/// Runs stage `name` (one of [`STAGES`]) with its operator built from the configuration.
pub async fn run_stage(name: &str, env: KafkaEnv) -> Result<(), PipelineError> {
    let Some(spec) = spec(name) else {
        return Err(PipelineError::Kafka(format!(
            "no stage {name:?}; stages are {}",
            STAGES.join(", ")
        )));
    };
    let cfg = env.config.clone();
    match name {
        "normalize" => stage::run(spec, || cfg.normalize.build().map_err(cfg_err), env).await,
        "greeks" => stage::run(spec, || cfg.greeks.build().map_err(cfg_err), env).await,
        "score" => stage::run(spec, || cfg.score.build().map_err(cfg_err), env).await,
        "consensus" => {
            let calibration = cfg.load_calibration()?;
            stage::run(
                spec,
                || {
                    Ok(cfg
                        .consensus
                        .build()
                        .map_err(cfg_err)?
                        .with_calibration(calibration.clone()))
                },
                env,
            )
            .await
        }
        "explain" => stage::run(spec, || cfg.build_explain().map_err(cfg_err), env).await,
        "risk-gate" => {
            let calendar = cfg.load_calendar()?;
            stage::run(
                spec,
                || {
                    Ok(cfg
                        .risk_gate
                        .build()
                        .map_err(cfg_err)?
                        .with_calendar(&calendar))
                },
                env,
            )
            .await
        }
        _ => {
            let silences = env.data_dir.join(files::SILENCES);
            // Dispatch delivers what it writes to `alerts`; with the state in ScyllaDB the
            // ledger is there too, so a dispatch taking over elsewhere skips what went out.
            let shared = match &env.store {
                CheckpointStore::Scylla(db) => Some(db.clone()),
                CheckpointStore::Files(_) => None,
            };
            let delivery = crate::delivery::Delivery::start_shared(
                &cfg.channels,
                &cfg.dispatch.all_channels(),
                &env.data_dir,
                Vec::new(),
                &|k| std::env::var(k).ok(),
                shared,
            )?;
            let env = KafkaEnv {
                delivery: delivery.as_ref().map(crate::delivery::Delivery::handle),
                ..env
            };
            let result = stage::run(
                spec,
                || {
                    Ok(WatchedDispatch::new(
                        cfg.dispatch.build().map_err(cfg_err)?,
                        silences.clone(),
                    )?)
                },
                env,
            )
            .await;
            if let Some(d) = delivery {
                d.finish().await;
            }
            result
        }
    }
}
