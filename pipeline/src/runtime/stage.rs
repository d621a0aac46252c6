//! The stage loop: the same code drives every operator in every mode; only the channels differ.

use super::workers::LentWorkers;
use super::{Ack, Message, Part, PipelineError};
use crate::jsonl::JsonlFile;
use crate::telemetry::Metrics;
use optionflow_operators::{Ctx, Emit, ErrorKind, OpError, Operator};
use optionflow_schemas::RejectedQuote;
use serde::Serialize;
use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use tokio::sync::mpsc::{Receiver, Sender};

/// Something that watches a stage's outputs as they go downstream (the dashboard). It gets the
/// batch as `&Vec<Out>` behind `Any`, to downcast by stage name; it must be quick and must not
/// block, since it runs on the stage's task.
pub trait StageObserver: Send + Sync {
    /// `events` (a `&Vec<Out>` of stage `stage`) and the inputs it rejected.
    fn observe(&self, stage: &'static str, events: &dyn Any, rejected: &[RejectedQuote]);
}

/// Several observers, each seeing every batch in turn.
pub struct Observers(pub Vec<Arc<dyn StageObserver>>);

impl StageObserver for Observers {
    fn observe(&self, stage: &'static str, events: &dyn Any, rejected: &[RejectedQuote]) {
        for o in &self.0 {
            o.observe(stage, events, rejected);
        }
    }
}

/// Files and counters a stage writes besides its output channel.
pub struct StageIo {
    /// Every output event, as JSON lines (e.g. `signals.jsonl`).
    pub tap: Option<JsonlFile>,
    /// Rejected inputs, as JSON lines.
    pub rejects: Option<JsonlFile>,
    /// Counter of output events.
    pub counter: Option<fn(&Metrics) -> &AtomicU64>,
    /// Where checkpoint acknowledgements go.
    pub acks: Sender<Ack>,
    /// Shared counters.
    pub metrics: Arc<Metrics>,
    /// Who else sees the outputs.
    pub observer: Option<Arc<dyn StageObserver>>,
    /// The workers a stage lends its batches' pure work to: this stage works what is on offer
    /// before each of its own messages.
    pub helping: Option<LentWorkers>,
}

/// Drives `op` from `input` to `output` until the stream ends.
pub async fn run_stage<Op>(
    mut op: Op,
    mut input: Receiver<Message<Op::In>>,
    output: Sender<Message<Op::Out>>,
    mut io: StageIo,
) -> Result<(), PipelineError>
where
    Op: Operator,
    Op::In: Send,
    Op::Out: Serialize + Send + 'static,
{
    let name = op.name();
    let mut ctx = Ctx::at(i64::MIN);
    let mut emit = Emit::default();
    let mut errors = Vec::new();
    let mut logged_causes = BTreeSet::new();
    let closed = || PipelineError::Disconnected(name);
    while let Some(msg) = input.recv().await {
        if let Some(workers) = &io.helping {
            workers.help();
        }
        match msg {
            Message::Batch(events, origin) => {
                let started = std::time::Instant::now();
                let count = events.len();
                {
                    // Entered only around the synchronous part: a span held across an await
                    // would be attributed to whatever else the task's thread runs meanwhile.
                    let span = tracing::info_span!("stage.batch", stage = name, events = count);
                    let _entered = span.enter();
                    op.on_batch(events, &ctx, &mut emit, &mut errors);
                    for e in errors.drain(..) {
                        handle_error(e, &io.metrics, &mut logged_causes)?;
                    }
                }
                // Per batch, not per event: a registry lookup per label set is ~1 µs.
                metrics::counter!("optionflow_stage_events_in_total", "stage" => name)
                    .increment(count as u64);
                metrics::histogram!("optionflow_stage_batch_seconds", "stage" => name)
                    .record(started.elapsed().as_secs_f64());
                metrics::gauge!("optionflow_stage_queue_depth", "stage" => name)
                    .set(input.len() as f64);
                flush(
                    &mut emit,
                    &mut io,
                    &output,
                    origin,
                    name,
                    &mut logged_causes,
                )
                .await?;
            }
            Message::Watermark(t, origin) => {
                ctx = Ctx::at(t);
                // Event-time lag is `time() - optionflow_stage_watermark_seconds` in PromQL; the
                // runner itself never reads the wall clock into event time.
                metrics::gauge!("optionflow_stage_watermark_seconds", "stage" => name)
                    .set(t as f64 / 1e6);
                if let Err(e) = op.on_watermark(t, &ctx, &mut emit) {
                    handle_error(e, &io.metrics, &mut logged_causes)?;
                }
                flush(
                    &mut emit,
                    &mut io,
                    &output,
                    origin,
                    name,
                    &mut logged_causes,
                )
                .await?;
                output
                    .send(Message::Watermark(t, origin))
                    .await
                    .map_err(|_| closed())?;
            }
            Message::Barrier(id) => {
                let mut parts = vec![Part::Stage {
                    name,
                    state: op.snapshot()?,
                }];
                // Flushed here, synced by the coordinator: the stage goes on meanwhile.
                for f in [&mut io.tap, &mut io.rejects].into_iter().flatten() {
                    let (len, unsynced) = f.cut().map_err(PipelineError::writing(f.name()))?;
                    parts.push(Part::File {
                        name: f.name().to_string(),
                        len,
                        unsynced,
                    });
                }
                io.acks
                    .send(Ack { id, parts })
                    .await
                    .map_err(|_| closed())?;
                output
                    .send(Message::Barrier(id))
                    .await
                    .map_err(|_| closed())?;
            }
            Message::End => {
                for f in [&mut io.tap, &mut io.rejects].into_iter().flatten() {
                    f.commit().map_err(PipelineError::writing(f.name()))?;
                }
                output.send(Message::End).await.map_err(|_| closed())?;
                return Ok(());
            }
        }
    }
    Err(closed())
}

/// Sends what the operator emitted downstream and to the stage's files.
async fn flush<T: Serialize + 'static>(
    emit: &mut Emit<T>,
    io: &mut StageIo,
    output: &Sender<Message<T>>,
    origin: std::time::Instant,
    name: &'static str,
    logged: &mut BTreeSet<String>,
) -> Result<(), PipelineError> {
    let (events, rejected) = emit.drain();
    if let Some(o) = &io.observer {
        if !events.is_empty() || !rejected.is_empty() {
            o.observe(name, &events, &rejected);
        }
    }
    if !rejected.is_empty() {
        Metrics::add(&io.metrics.rejected, rejected.len() as u64);
        // Counted per reason per batch, not per rejection: a registry lookup costs about a
        // microsecond, and a simulated session rejects a sixth of its quotes.
        let mut by_reason: BTreeMap<&str, (u64, &RejectedQuote)> = BTreeMap::new();
        for r in &rejected {
            by_reason.entry(&r.reason_code).or_insert((0, r)).0 += 1;
        }
        for (reason_code, (count, example)) in by_reason {
            metrics::counter!("optionflow_rejects_total", "stage" => name, "reason" => reason_code.to_string())
                .increment(count);
            let key = format!("reject {reason_code}");
            if !logged.contains(&key) {
                logged.insert(key);
                // Info, not warn: zero bids and deep in-the-money mids below intrinsic are
                // ordinary market data, and every one is kept with its reason anyway.
                tracing::info!(
                    stage = name,
                    reason_code = %reason_code,
                    example = %example.reason,
                    "rejecting inputs (logged once per reason; each one is in the rejects file)"
                );
            }
        }
        if let Some(f) = io.rejects.as_mut() {
            for r in &rejected {
                f.write_with(|line| r.write_json(line))
                    .map_err(PipelineError::writing(f.name()))?;
            }
        }
    }
    if events.is_empty() {
        return Ok(());
    }
    if let Some(counter) = io.counter {
        Metrics::add(counter(&io.metrics), events.len() as u64);
    }
    metrics::counter!("optionflow_stage_events_out_total", "stage" => name)
        .increment(events.len() as u64);
    if let Some(f) = io.tap.as_mut() {
        for ev in &events {
            f.write(ev).map_err(PipelineError::writing(f.name()))?;
        }
    }
    output
        .send(Message::Batch(events, origin))
        .await
        .map_err(|_| PipelineError::Disconnected(name))
}

/// Skippable errors are counted and logged once per cause; anything else stops the stage.
fn handle_error(
    e: OpError,
    metrics: &Metrics,
    logged: &mut BTreeSet<String>,
) -> Result<(), PipelineError> {
    match e.kind {
        ErrorKind::Skip => {
            Metrics::add(&metrics.dead_lettered, 1);
            if logged.len() < 1000 && logged.insert(e.message.clone()) {
                tracing::warn!(stage = e.stage, error = %e.message, "input skipped (logged once per cause)");
            }
            Ok(())
        }
        ErrorKind::Retryable | ErrorKind::Fatal => Err(e.into()),
    }
}
