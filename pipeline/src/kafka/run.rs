//! `optionflow run` with `[bus] kind = "kafka"`: the source and every stage in one process,
//! each a consumer-group member of its own as if it ran alone, so the quickest way to try the
//! distributed mode is also a faithful one.

use super::{run_stage, source, topics, KafkaEnv, STAGES};
use crate::config::Config;
use crate::runtime::embedded::{files, RunSummary};
use crate::runtime::stage::StageObserver;
use crate::runtime::PipelineError;
use crate::source::TickSource;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// What to run.
pub struct AllInOne {
    /// Effective configuration (`[bus] kind = "kafka"`).
    pub config: Config,
    /// Local directory: `alerts.jsonl`, `signals.jsonl`, `decisions.jsonl`, file checkpoints.
    pub data_dir: PathBuf,
    /// The source of `quotes.raw`.
    pub source: Box<dyn TickSource>,
    /// Event-time pace, `None` as fast as possible.
    pub speed: Option<f64>,
    /// Who sees each stage's outputs (the CLI prints dispatch's alerts).
    pub observer: Option<Arc<dyn StageObserver>>,
}

/// Creates the topics, then runs the source and the seven stages until the end of the session
/// has reached dispatch. Run again after an interruption, it resumes from the checkpoints.
/// The summary's latency percentiles are source produce → alert written, over this run's
/// alerts.
pub async fn run(opts: AllInOne) -> Result<RunSummary, PipelineError> {
    let finished = opts.data_dir.join(files::FINISHED);
    if let Ok(bytes) = std::fs::read(&finished) {
        let mut s: RunSummary = serde_json::from_slice(&bytes).unwrap_or_default();
        s.already_finished = true;
        return Ok(s);
    }
    let created = topics::create_all_retrying(&opts.config.kafka)
        .await
        .map_err(|e| PipelineError::Kafka(e.to_string()))?;
    let new = created.iter().filter(|c| c.new).count();
    tracing::info!(topics = created.len(), new, brokers = %opts.config.kafka.brokers, "kafka topics ready");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut env = KafkaEnv::connect(opts.config, &opts.data_dir, stop_rx).await?;
    env.exit_on_end = true;
    env.observer = opts.observer;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for name in STAGES {
        let env = env.clone();
        tasks.spawn(async move { run_stage(name, env).await.map(|_| name) });
    }
    {
        let env = env.clone();
        tasks.spawn(async move {
            source::run(opts.source, env, opts.speed)
                .await
                .map(|_| "source")
        });
    }
    let mut failure = None;
    while let Some(res) = tasks.join_next().await {
        match res {
            Ok(Ok(name)) => tracing::debug!(task = name, "finished"),
            Ok(Err(e)) => {
                failure.get_or_insert(e);
                let _ = stop_tx.send(true);
            }
            Err(e) => {
                failure.get_or_insert(PipelineError::Kafka(format!("a stage panicked: {e}")));
                let _ = stop_tx.send(true);
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let st = env.metrics.status();
    // Source produce → alert written by dispatch, as the embedded sink measures it.
    let latency = env.metrics.alert_latency.p50_p99();
    let summary = RunSummary {
        quotes: st.quotes,
        rejected: st.rejected,
        signals: st.signals,
        alerts: st.alerts,
        checkpoints: st.checkpoints,
        elapsed_secs: started.elapsed().as_secs_f64(),
        latency_p50_us: latency.map(|l| l.0),
        latency_p99_us: latency.map(|l| l.1),
        ..Default::default()
    };
    std::fs::write(
        &finished,
        serde_json::to_vec_pretty(&summary).unwrap_or_default(),
    )
    .map_err(PipelineError::io(format!("writing {}", finished.display())))?;
    Ok(summary)
}
