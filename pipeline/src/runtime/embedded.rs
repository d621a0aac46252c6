//! The embedded mode: the whole pipeline in one process.
//!
//! ```text
//! simulator ─► tape ─► normalize ─► greeks ─► score ─► consensus ─► explain ─► risk-gate ─► dispatch ─► alert sink
//!                 │        └─ rejected-normalize.jsonl   └─ rejected-greeks.jsonl
//!    quotes.raw.avro                     signals.jsonl ─┘          decisions.jsonl ─┘        alerts.jsonl
//! ```
//!
//! The data directory holds the session manifest, the input tape, the output files and the
//! checkpoints. Starting again on an interrupted session restores the latest checkpoint,
//! truncates every file to the length it records, and continues: the result is byte-identical to
//! an uninterrupted run.

use super::stage::{run_stage, Observers, StageIo, StageObserver};
use super::workers::LentWorkers;
use super::{Ack, Message, Part, PipelineError};
use crate::config::{Config, RuntimeConfig};
use crate::delivery::{Delivery, DeliveryHandle};
use crate::hit_rates::HitRates;
use crate::jsonl::JsonlFile;
use crate::silences::WatchedDispatch;
use crate::source::simulator::Simulator;
use crate::source::tape::TapeSource;
use crate::source::TickSource;
use crate::store::{Checkpoint, FileStateStore, SessionStore};
use crate::tape::TapeWriter;
use crate::telemetry::{Metrics, Status};
use optionflow_schemas::{Alert, RawEvent};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Names of the files in a data directory.
pub mod files {
    /// Session parameters.
    pub const SESSION: &str = "session.json";
    /// Written when a session has run to its end.
    pub const FINISHED: &str = "finished.json";
    /// The input tape.
    pub const TAPE: &str = "quotes.raw.avro";
    /// Alerts.
    pub const ALERTS: &str = "alerts.jsonl";
    /// Signals.
    pub const SIGNALS: &str = "signals.jsonl";
    /// Risk decisions.
    pub const DECISIONS: &str = "decisions.jsonl";
    /// Explanations (the narratives of every signal, before the risk gate).
    pub const EXPLANATIONS: &str = "explanations.jsonl";
    /// Quotes rejected by normalize.
    pub const REJECTED_NORMALIZE: &str = "rejected-normalize.jsonl";
    /// Quotes rejected by greeks.
    pub const REJECTED_GREEKS: &str = "rejected-greeks.jsonl";
    /// Approved decisions dispatch held back (duplicate, silenced, inhibited, cooldown), with
    /// the reason; `symbol` names the route.
    pub const SUPPRESSED: &str = "suppressed.jsonl";
    /// Silences (`optionflow silence add`), watched while the session runs.
    pub const SILENCES: &str = crate::silences::FILE;
    /// Checkpoint folder.
    pub const CHECKPOINTS: &str = "checkpoints";
    /// The delivery ledger: the final outcome of every alert on every channel but `file`.
    pub const DELIVERIES: &str = crate::delivery::LEDGER_FILE;
}

/// What defines a session: the same parameters on the same data directory resume it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionParams {
    /// Where the events come from.
    pub input: SessionInput,
    /// Fingerprint of the effective configuration.
    pub config_fingerprint: String,
}

/// The input of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SessionInput {
    /// The built-in market simulator; its events are recorded on the data directory's tape.
    Simulator {
        /// Simulator seed.
        seed: u64,
        /// Market time to simulate, µs.
        duration_micros: i64,
        /// Number of underlyings.
        underlyings: usize,
    },
    /// A live vendor feed; its events are recorded on the data directory's tape.
    Live {
        /// The vendor (`polygon`, `tradier`).
        vendor: String,
        /// The underlyings it watches.
        underlyings: Vec<String>,
    },
    /// A recorded tape, replayed (not re-recorded).
    Tape {
        /// The tape file.
        path: PathBuf,
        /// Its length when the session started: a tape that changed is another session.
        bytes: u64,
    },
}

impl std::fmt::Display for SessionInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionInput::Simulator {
                seed,
                duration_micros,
                underlyings,
            } => write!(
                f,
                "simulator: seed {seed}, {underlyings} underlyings, {duration_micros} µs of market time"
            ),
            SessionInput::Live {
                vendor,
                underlyings,
            } => write!(f, "live {vendor}: {}", underlyings.join(", ")),
            SessionInput::Tape { path, bytes } => {
                write!(f, "replay of {} ({bytes} bytes)", path.display())
            }
        }
    }
}

/// Called with every alert as it is written (the CLI prints it).
pub type AlertHook = Box<dyn Fn(&Alert) + Send + Sync>;
/// Called with every periodic status (the CLI prints the progress line).
pub type StatusHook = Box<dyn Fn(&Status) + Send + Sync>;

/// How to run.
pub struct RunOptions {
    /// Effective configuration.
    pub config: Config,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Session parameters.
    pub params: SessionParams,
    /// Event-time pace: `Some(1.0)` is real time, `None` as fast as possible.
    pub speed: Option<f64>,
    /// Called for every alert written (the CLI prints it).
    pub on_alert: Option<AlertHook>,
    /// Called every `status-interval-secs` with the counters (the CLI prints a status line).
    pub on_status: Option<StatusHook>,
    /// The feed of a [`SessionInput::Live`] session (required for one, ignored otherwise).
    pub live: Option<Box<dyn TickSource>>,
    /// The dashboard to feed, if one is served.
    pub dashboard: Option<Arc<crate::dashboard::hub::Hub>>,
}

/// How a run ended.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunSummary {
    /// The session had already finished before this run; nothing was done.
    pub already_finished: bool,
    /// Checkpoint this run resumed from, if any.
    pub resumed_from: Option<u64>,
    /// Option quotes processed by this run.
    pub quotes: u64,
    /// Rejected inputs in this run.
    pub rejected: u64,
    /// Signals formed in this run.
    pub signals: u64,
    /// Alerts written in this run.
    pub alerts: u64,
    /// Checkpoints written in this run.
    pub checkpoints: u64,
    /// Wall-clock seconds.
    pub elapsed_secs: f64,
    /// Quote → alert latency percentiles in microseconds (p50, p99), when alerts were written.
    pub latency_p50_us: Option<u64>,
    /// See `latency_p50_us`.
    pub latency_p99_us: Option<u64>,
}

/// Prepares the data directory: creates it, checks or records the session, and reports whether
/// it already finished.
fn prepare_dir(dir: &Path, params: &SessionParams) -> Result<Option<RunSummary>, PipelineError> {
    std::fs::create_dir_all(dir)
        .map_err(PipelineError::io(format!("creating {}", dir.display())))?;
    let session = dir.join(files::SESSION);
    match std::fs::read(&session) {
        Ok(bytes) => {
            let recorded: SessionParams = serde_json::from_slice(&bytes).map_err(|e| {
                PipelineError::SessionMismatch(format!(
                    "{} is unreadable ({e}); use a fresh --data-dir",
                    session.display()
                ))
            })?;
            if &recorded != params {
                return Err(PipelineError::SessionMismatch(format!(
                    "{} holds a session with other parameters ({}, config {}); \
                     use another directory, or delete this one to start over",
                    dir.display(),
                    recorded.input,
                    recorded.config_fingerprint
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = serde_json::to_vec_pretty(params).unwrap_or_default();
            std::fs::write(&session, text)
                .map_err(PipelineError::io(format!("writing {}", session.display())))?;
        }
        Err(e) => {
            return Err(PipelineError::io(format!("reading {}", session.display()))(
                e,
            ))
        }
    }
    match std::fs::read(dir.join(files::FINISHED)) {
        Ok(bytes) => {
            let mut s: RunSummary = serde_json::from_slice(&bytes).unwrap_or_default();
            s.already_finished = true;
            Ok(Some(s))
        }
        Err(_) => Ok(None),
    }
}

/// Runs (or resumes) a simulated session in the embedded mode.
pub async fn run(opts: RunOptions) -> Result<RunSummary, PipelineError> {
    let dir = opts.data_dir.clone();
    if let Some(done) = prepare_dir(&dir, &opts.params)? {
        return Ok(done);
    }
    let cfg = &opts.config;
    let store = open_store(cfg, &dir).await?;
    let ckpt = store
        .load_latest()
        .await
        .map_err(PipelineError::io("loading the latest checkpoint"))?;
    let resumed_from = ckpt.as_ref().map(|c| c.id);
    let ckpt = ckpt.unwrap_or_default();
    if let Some(id) = resumed_from {
        tracing::info!(
            checkpoint = id,
            ticks = ckpt.ticks,
            "resuming interrupted session"
        );
    } else {
        tracing::info!(
            data_dir = %dir.display(),
            input = %opts.params.input,
            "new session; alerts go to {}",
            dir.join(files::ALERTS).display()
        );
    }

    let (mut source, tape_path): (Box<dyn TickSource>, Option<PathBuf>) = match &opts.params.input {
        SessionInput::Simulator {
            seed,
            duration_micros,
            underlyings,
        } => {
            let sim = Simulator::new(&cfg.simulator, *seed, *underlyings, *duration_micros)
                .map_err(|e| PipelineError::Simulator(e.to_string()))?;
            (Box::new(sim), Some(dir.join(files::TAPE)))
        }
        SessionInput::Tape { path, .. } => (Box::new(TapeSource::open(path)?), None),
        SessionInput::Live { vendor, .. } => match opts.live {
            Some(feed) => (feed, Some(dir.join(files::TAPE))),
            None => {
                return Err(PipelineError::Simulator(format!(
                    "a live {vendor} session needs its feed"
                )))
            }
        },
    };
    if resumed_from.is_some() {
        source.restore(&ckpt.source)?;
    }
    let kept = |name: &str| ckpt.files.get(name).copied().unwrap_or(0);
    let open = |name: &str| {
        JsonlFile::open(&dir.join(name), kept(name))
            .map_err(PipelineError::io(format!("opening {name}")))
    };
    // A simulated session records its input; a replay reads one and records nothing.
    let tape = match tape_path {
        Some(path) => Some(TapeWriter::open(
            &path,
            ckpt.tape.0,
            ckpt.tape.1,
            cfg.tape.codec,
        )?),
        None => None,
    };

    let mut normalize = cfg.normalize.build().map_err(cfg_err)?;
    let mut greeks = cfg.greeks.build().map_err(cfg_err)?;
    let workers = LentWorkers::current();
    greeks.lend_helpers(Arc::new(workers.clone()));
    let mut score = cfg.score.build().map_err(cfg_err)?;
    let mut consensus = cfg
        .consensus
        .build()
        .map_err(cfg_err)?
        .with_calibration(cfg.load_calibration()?);
    let mut explain = cfg.build_explain().map_err(cfg_err)?;
    let mut risk = cfg
        .risk_gate
        .build()
        .map_err(cfg_err)?
        .with_calendar(&cfg.load_calendar()?);
    let silences = silences_path(&dir, &opts.params.input);
    let mut dispatch = WatchedDispatch::new(cfg.dispatch.build().map_err(cfg_err)?, silences)?;
    if resumed_from.is_some() {
        use optionflow_operators::Operator;
        let state = |name: &str| ckpt.stages.get(name).map(Vec::as_slice).unwrap_or_default();
        normalize.restore(state(normalize.name()))?;
        greeks.restore(state(greeks.name()))?;
        score.restore(state(score.name()))?;
        consensus.restore(state(consensus.name()))?;
        explain.restore(state(explain.name()))?;
        risk.restore(state(risk.name()))?;
        dispatch.restore(state(dispatch.name()))?;
    }

    let metrics = Arc::new(Metrics::default());
    let cap = cfg.runtime.channel_capacity;
    // Source, tape, seven stages and the alert sink each acknowledge every barrier.
    const PARTICIPANTS: usize = 10;
    let (ack_tx, ack_rx) = mpsc::channel::<Ack>(PARTICIPANTS * 4);
    let mut observers: Vec<Arc<dyn StageObserver>> = vec![Arc::new(HitRates::new(
        cfg.telemetry.hit_rate_horizon_secs,
        cfg.telemetry.hit_rate_threshold,
    ))];
    if let SessionStore::Scylla { tables, .. } = &store {
        observers.push(tables.clone());
    }
    if let Some(hub) = opts.dashboard.clone() {
        hub.attach(metrics.clone(), dir.clone());
        // A resumed session's page starts where the checkpoint is, not empty.
        hub.preload(&dir, &kept);
        observers.push(hub);
    }
    let observer: Option<Arc<dyn StageObserver>> = Some(Arc::new(Observers(observers)));
    let io = |tap: Option<JsonlFile>, rejects: Option<JsonlFile>, counter| StageIo {
        tap,
        rejects,
        counter,
        acks: ack_tx.clone(),
        metrics: metrics.clone(),
        observer: observer.clone(),
        helping: Some(workers.clone()),
    };

    let (raw_tx, raw_rx) = mpsc::channel(cap);
    let (taped_tx, taped_rx) = mpsc::channel(cap);
    let (norm_tx, norm_rx) = mpsc::channel(cap);
    let (greeks_tx, greeks_rx) = mpsc::channel(cap);
    let (factor_tx, factor_rx) = mpsc::channel(cap);
    let (signal_tx, signal_rx) = mpsc::channel(cap);
    let (expl_tx, expl_rx) = mpsc::channel(cap);
    let (decision_tx, decision_rx) = mpsc::channel(cap);
    let (alert_tx, alert_rx) = mpsc::channel(cap);

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let checkpoint_every = (checkpoint_interval_secs(&cfg.runtime, &opts.params.input, opts.speed)
        * 1000
        / cfg.simulator.tick_interval_ms.max(1))
    .max(1);
    let source = SourceTask {
        source,
        ticks: ckpt.ticks,
        next_id: ckpt.id + 1,
        checkpoint_every,
        speed: opts.speed,
        metrics: metrics.clone(),
        acks: ack_tx.clone(),
    };
    tasks.spawn(source.run(raw_tx));
    tasks.spawn(tape_task(tape, raw_rx, taped_tx, ack_tx.clone()));
    let rejects_n = open(files::REJECTED_NORMALIZE)?;
    let rejects_g = open(files::REJECTED_GREEKS)?;
    tasks.spawn(run_stage(
        normalize,
        taped_rx,
        norm_tx,
        io(None, Some(rejects_n), None),
    ));
    tasks.spawn(run_stage(
        greeks,
        norm_rx,
        greeks_tx,
        io(None, Some(rejects_g), None),
    ));
    tasks.spawn(run_stage(score, greeks_rx, factor_tx, io(None, None, None)));
    tasks.spawn(run_stage(
        consensus,
        factor_rx,
        signal_tx,
        io(Some(open(files::SIGNALS)?), None, Some(|m| &m.signals)),
    ));
    tasks.spawn(run_stage(
        explain,
        signal_rx,
        expl_tx,
        io(Some(open(files::EXPLANATIONS)?), None, None),
    ));
    tasks.spawn(run_stage(
        risk,
        expl_rx,
        decision_tx,
        io(Some(open(files::DECISIONS)?), None, Some(|m| &m.decisions)),
    ));
    tasks.spawn(run_stage(
        dispatch,
        decision_rx,
        alert_tx,
        io(None, Some(open(files::SUPPRESSED)?), None),
    ));
    let shared_ledger = match &store {
        SessionStore::Scylla { db, .. } => Some(db.clone()),
        SessionStore::Files(_) => None,
    };
    let delivery = start_delivery(
        cfg,
        &opts.params.input,
        &dir,
        kept(files::ALERTS),
        shared_ledger,
    )?;
    let sink = AlertSink {
        file: open(files::ALERTS)?,
        delivery: delivery.as_ref().map(Delivery::handle),
        on_alert: opts.on_alert,
        latency: hdrhistogram::Histogram::new(3)
            .map_err(|e| PipelineError::Simulator(e.to_string()))?,
        metrics: metrics.clone(),
        acks: ack_tx.clone(),
    };
    let sink_handle = tokio::spawn(sink.run(alert_rx));
    drop(ack_tx);
    let coordinator = tokio::spawn(coordinate(store, ack_rx, PARTICIPANTS, metrics.clone()));
    let status = opts.on_status.map(|f| {
        let metrics = metrics.clone();
        let every = Duration::from_secs(cfg.runtime.status_interval_secs);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                f(&metrics.status());
            }
        })
    });

    let mut failure = None;
    while let Some(res) = tasks.join_next().await {
        let res =
            res.unwrap_or_else(|e| Err(PipelineError::Simulator(format!("task panicked: {e}"))));
        if let Err(e) = res {
            // The first failure is the cause; the disconnections it triggers downstream are not.
            if failure.is_none()
                || !matches!(e, PipelineError::Disconnected(_))
                    && matches!(failure, Some(PipelineError::Disconnected(_)))
            {
                failure = Some(e);
            }
            tasks.abort_all();
        }
    }
    let latency = sink_handle.await.unwrap_or_else(|e| {
        Err(PipelineError::Simulator(format!(
            "alert sink panicked: {e}"
        )))
    });
    // Whatever was written is delivered (or recorded as failed) before the run returns.
    if let Some(d) = delivery {
        d.finish().await;
    }
    let coordinator_result = coordinator.await.unwrap_or_else(|e| {
        Err(PipelineError::Simulator(format!(
            "checkpointing panicked: {e}"
        )))
    });
    if let Some(s) = status {
        s.abort();
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let latency = latency?;
    coordinator_result?;
    let st = metrics.status();
    let summary = RunSummary {
        already_finished: false,
        resumed_from,
        quotes: st.quotes,
        rejected: st.rejected,
        signals: st.signals,
        alerts: st.alerts,
        checkpoints: st.checkpoints,
        elapsed_secs: started.elapsed().as_secs_f64(),
        latency_p50_us: (!latency.is_empty()).then(|| latency.value_at_quantile(0.5)),
        latency_p99_us: (!latency.is_empty()).then(|| latency.value_at_quantile(0.99)),
    };
    let path = dir.join(files::FINISHED);
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&summary).unwrap_or_default(),
    )
    .map_err(PipelineError::io(format!("writing {}", path.display())))?;
    Ok(summary)
}

/// Starts delivery to the configured channels, except for a replay, which never delivers.
/// The alerts the checkpoint already covers (the first `kept` bytes of `alerts.jsonl`) are the
/// backlog: a resumed session does not emit them again, and the ledger tells which went out.
fn start_delivery(
    cfg: &Config,
    input: &SessionInput,
    dir: &Path,
    kept: u64,
    shared_ledger: Option<Arc<crate::scylla::ScyllaState>>,
) -> Result<Option<Delivery>, PipelineError> {
    let channels = cfg.dispatch.all_channels();
    let external = channels.iter().any(|c| c != "file");
    if !external {
        return Ok(None);
    }
    if matches!(input, SessionInput::Tape { .. }) {
        tracing::info!(
            channels = %channels.join(","),
            "replay: alert channels are off (alerts are written to alerts.jsonl only)"
        );
        return Ok(None);
    }
    let mut backlog = Vec::new();
    if kept > 0 {
        let path = dir.join(files::ALERTS);
        let bytes = std::fs::read(&path)
            .map_err(PipelineError::io(format!("reading {}", path.display())))?;
        let upto = (kept as usize).min(bytes.len());
        for line in bytes[..upto].split(|b| *b == b'\n') {
            if let Ok(alert) = serde_json::from_slice::<Alert>(line) {
                if alert.channel != "file" {
                    backlog.push(alert);
                }
            }
        }
    }
    Ok(Delivery::start_shared(
        &cfg.channels,
        &channels,
        dir,
        backlog,
        &|k| std::env::var(k).ok(),
        shared_ledger,
    )?)
}

/// The silences a session applies: its own data directory's file, or, for a replay of an
/// earlier run's data directory that has none of its own, that run's file, so the replay mutes
/// what the run muted.
fn silences_path(dir: &Path, input: &SessionInput) -> PathBuf {
    let own = dir.join(files::SILENCES);
    if own.exists() {
        return own;
    }
    if let SessionInput::Tape { path, .. } = input {
        if let Some(theirs) = path
            .parent()
            .map(|p| p.join(files::SILENCES))
            .filter(|p| p.exists())
        {
            tracing::info!(file = %theirs.display(), "replay: applying the recorded run's silences");
            return theirs;
        }
    }
    own
}

fn cfg_err(e: optionflow_operators::ConfigErrors) -> PipelineError {
    PipelineError::Config(crate::config::ConfigError::Invalid(e))
}

/// Market time between two checkpoints of a session with `input` run at `speed`: a replay as
/// fast as it goes takes [`RuntimeConfig::replay_checkpoint_interval_secs`], every other
/// session (simulated, live, or a replay paced for a demo) the regular interval.
fn checkpoint_interval_secs(
    runtime: &RuntimeConfig,
    input: &SessionInput,
    speed: Option<f64>,
) -> u64 {
    match (input, speed) {
        (SessionInput::Tape { .. }, None) => runtime.replay_checkpoint_interval_secs,
        _ => runtime.checkpoint_interval_secs,
    }
}

/// Drives a source: a batch per tick, then a watermark; a barrier every `checkpoint_every`
/// ticks; pacing by market time when a speed is set.
struct SourceTask {
    source: Box<dyn TickSource>,
    ticks: u64,
    next_id: u64,
    checkpoint_every: u64,
    speed: Option<f64>,
    metrics: Arc<Metrics>,
    acks: mpsc::Sender<Ack>,
}

impl SourceTask {
    async fn run(mut self, tx: mpsc::Sender<Message<RawEvent>>) -> Result<(), PipelineError> {
        let closed = || PipelineError::Disconnected("source");
        let pace_start = tokio::time::Instant::now();
        let mut market_elapsed = Duration::ZERO;
        let mut previous = None;
        // Ticks are of similar sizes: sizing each batch like the largest so far saves regrowing
        // it (sized like the last one, a tick larger than it grew the vector, copying it).
        let mut largest = 0;
        loop {
            let mut batch = Vec::with_capacity(largest);
            let Some(t) = self.source.next_tick(&mut batch)? else {
                break;
            };
            self.ticks += 1;
            largest = largest.max(batch.len());
            if let Some(speed) = self.speed {
                market_elapsed += self.source.market_step(previous, t);
                let due = pace_start + market_elapsed.div_f64(speed);
                tokio::time::sleep_until(due).await;
            }
            previous = Some(t);
            self.metrics.count_source_batch(&batch, t);
            let origin = Instant::now();
            tx.send(Message::Batch(batch, origin))
                .await
                .map_err(|_| closed())?;
            tx.send(Message::Watermark(t, origin))
                .await
                .map_err(|_| closed())?;
            if self.ticks.is_multiple_of(self.checkpoint_every) {
                let id = self.next_id;
                self.next_id += 1;
                let state = self.source.snapshot()?;
                let part = Part::Source {
                    state,
                    ticks: self.ticks,
                    event_time: t,
                };
                self.acks
                    .send(Ack {
                        id,
                        parts: vec![part],
                    })
                    .await
                    .map_err(|_| closed())?;
                tx.send(Message::Barrier(id)).await.map_err(|_| closed())?;
            }
        }
        // The end of the session closes every open window.
        tx.send(Message::Watermark(i64::MAX, Instant::now()))
            .await
            .map_err(|_| closed())?;
        tx.send(Message::End).await.map_err(|_| closed())
    }
}

/// Appends every raw event to the tape and passes it on.
async fn tape_task(
    mut tape: Option<TapeWriter>,
    mut rx: mpsc::Receiver<Message<RawEvent>>,
    tx: mpsc::Sender<Message<RawEvent>>,
    acks: mpsc::Sender<Ack>,
) -> Result<(), PipelineError> {
    let closed = || PipelineError::Disconnected("tape");
    while let Some(msg) = rx.recv().await {
        match (&msg, tape.as_mut()) {
            (Message::Batch(events, _), Some(tape)) => {
                for ev in events {
                    tape.append(ev)?;
                }
            }
            (Message::Barrier(id), tape) => {
                let (bytes, events, unsynced) = match tape {
                    Some(tape) => {
                        let (bytes, events, file) = tape.cut()?;
                        (bytes, events, Some(file))
                    }
                    None => (0, 0, None),
                };
                acks.send(Ack {
                    id: *id,
                    parts: vec![Part::Tape {
                        bytes,
                        events,
                        unsynced,
                    }],
                })
                .await
                .map_err(|_| closed())?;
            }
            (Message::End, Some(tape)) => {
                tape.commit()?;
            }
            _ => {}
        }
        let end = matches!(msg, Message::End);
        tx.send(msg).await.map_err(|_| closed())?;
        if end {
            return Ok(());
        }
    }
    Err(closed())
}

/// Writes alerts to `alerts.jsonl`, hands them to the CLI, and measures quote → alert latency.
struct AlertSink {
    file: JsonlFile,
    /// Where alerts go after the file, when channels other than `file` are configured.
    delivery: Option<DeliveryHandle>,
    on_alert: Option<AlertHook>,
    latency: hdrhistogram::Histogram<u64>,
    metrics: Arc<Metrics>,
    acks: mpsc::Sender<Ack>,
}

impl AlertSink {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Message<Alert>>,
    ) -> Result<hdrhistogram::Histogram<u64>, PipelineError> {
        let write_err = || PipelineError::io(format!("writing {}", files::ALERTS));
        while let Some(msg) = rx.recv().await {
            match msg {
                Message::Batch(alerts, origin) => {
                    for a in &alerts {
                        self.file.write(a).map_err(write_err())?;
                        if let Some(f) = &self.on_alert {
                            f(a);
                        }
                    }
                    // Written means handed to the OS: flush so a reader sees it now.
                    self.file.commit().map_err(write_err())?;
                    let us = origin.elapsed().as_micros() as u64;
                    for _ in &alerts {
                        let _ = self.latency.record(us.max(1));
                    }
                    crate::telemetry::record_quote_to_alert(us, alerts.len() as u64);
                    Metrics::add(&self.metrics.alerts, alerts.len() as u64);
                    // After the file, so a delivered alert is always one alerts.jsonl holds.
                    if let Some(d) = &self.delivery {
                        for a in &alerts {
                            if !d.deliver(a).await {
                                tracing::error!("alert delivery stopped; alerts are still written to alerts.jsonl");
                                self.delivery = None;
                                break;
                            }
                        }
                    }
                }
                Message::Barrier(id) => {
                    let (len, unsynced) = self.file.cut().map_err(write_err())?;
                    let part = Part::File {
                        name: files::ALERTS.to_string(),
                        len,
                        unsynced,
                    };
                    self.acks
                        .send(Ack {
                            id,
                            parts: vec![part],
                        })
                        .await
                        .map_err(|_| PipelineError::Disconnected("alert sink"))?;
                }
                Message::Watermark(..) => {}
                Message::End => {
                    self.file.commit().map_err(write_err())?;
                    return Ok(self.latency);
                }
            }
        }
        Err(PipelineError::Disconnected("alert sink"))
    }
}

/// The checkpoint store `[state] kind` names: files in the data directory, or ScyllaDB (which
/// then also gets the query tables and the delivery ledger).
async fn open_store(cfg: &Config, dir: &Path) -> Result<SessionStore, PipelineError> {
    match cfg.state.kind {
        crate::scylla::StateKind::Embedded => FileStateStore::open(&dir.join(files::CHECKPOINTS))
            .map(SessionStore::Files)
            .map_err(PipelineError::io("opening the checkpoint store")),
        crate::scylla::StateKind::Scylla => {
            let session = crate::store::session_id(dir)
                .map_err(PipelineError::io("reading the session id"))?;
            let db = Arc::new(
                crate::scylla::ScyllaState::connect(&cfg.scylla)
                    .await
                    .map_err(|e| PipelineError::State(e.to_string()))?,
            );
            tracing::info!(nodes = %cfg.scylla.nodes.join(","), keyspace = %cfg.scylla.keyspace, %session,
                "state in ScyllaDB");
            Ok(SessionStore::Scylla {
                tables: crate::scylla::TableWriter::start(db.clone()),
                db,
                session,
            })
        }
    }
}

/// Gathers every participant's acknowledgement of a barrier, then saves the checkpoint.
async fn coordinate(
    mut store: SessionStore,
    mut acks: mpsc::Receiver<Ack>,
    participants: usize,
    metrics: Arc<Metrics>,
) -> Result<(), PipelineError> {
    let mut pending: std::collections::BTreeMap<u64, (usize, Checkpoint, Vec<File>)> =
        Default::default();
    while let Some(ack) = acks.recv().await {
        let entry = pending.entry(ack.id).or_insert_with(|| {
            (
                0,
                Checkpoint {
                    id: ack.id,
                    ..Default::default()
                },
                Vec::new(),
            )
        });
        entry.0 += 1;
        entry.1.absorb(ack.parts, &mut entry.2);
        if entry.0 == participants {
            if let Some((_, ckpt, unsynced)) = pending.remove(&ack.id) {
                // The stages only flushed their files at the barrier, and went on: the store
                // syncs them before the checkpoint that records their lengths.
                store
                    .save(&ckpt, &unsynced)
                    .await
                    .map_err(PipelineError::io(format!("saving checkpoint {}", ckpt.id)))?;
                Metrics::add(&metrics.checkpoints, 1);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_replay_as_fast_as_it_goes_takes_the_replay_checkpoint_interval() {
        let runtime = RuntimeConfig {
            checkpoint_interval_secs: 60,
            replay_checkpoint_interval_secs: 900,
            ..RuntimeConfig::default()
        };
        let tape = SessionInput::Tape {
            path: "quotes.raw.avro".into(),
            bytes: 1,
        };
        let simulated = SessionInput::Simulator {
            seed: 7,
            duration_micros: 60_000_000,
            underlyings: 2,
        };
        assert_eq!(checkpoint_interval_secs(&runtime, &tape, None), 900);
        assert_eq!(checkpoint_interval_secs(&runtime, &tape, Some(10.0)), 60);
        assert_eq!(checkpoint_interval_secs(&runtime, &simulated, None), 60);
        assert_eq!(
            checkpoint_interval_secs(&runtime, &simulated, Some(60.0)),
            60
        );
    }
}
