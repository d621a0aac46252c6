//! One stage as a consumer-group member: an operator instance per assigned input partition.
//!
//! Each instance is the same deterministic state machine as in the embedded mode, fed by one
//! partition's ordered log: events, and in-band watermarks and end-of-stream markers from every
//! origin that writes to it. Duplicates (a restored upstream rewriting what it already wrote)
//! are dropped by sequence number; a record whose number skips ahead is not taken, and the
//! reader seeks back until the broker has given it every record (or stops: see
//! [`Position`]). On assignment an instance restores its checkpoint and skips
//! what it already reflects; it checkpoints every `[runtime] checkpoint-interval-secs` of event
//! time, at the end of its stream and on revocation, each time only after every output so far
//! has been acknowledged, and only then commits the offset. Each output carries the source's
//! production time of the input that caused it (`optionflow-emitted-at`); dispatch records the
//! age of that stamp per alert, as the embedded alert sink does.

use super::checkpoint::PartitionCheckpoint;
use super::stream::{Delivery, Position, Step};
use super::topics::{self, TopicSpec};
use super::wire::{now_micros, partition_of, Frame, Kind, WireEvent, H_ERROR, H_FROM};
use super::KafkaEnv;
use crate::jsonl::JsonlFile;
use crate::runtime::PipelineError;
use crate::telemetry::Metrics;
use optionflow_operators::{Ctx, Emit, ErrorKind, Operator};
use optionflow_schemas::RejectedQuote;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::{ClientContext, Message as _, Offset, TopicPartitionList};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// What a stage reads and writes.
#[derive(Debug, Clone, Copy)]
pub struct StageSpec {
    /// Stage name (`greeks`), also its consumer group's suffix and its checkpoint owner.
    pub name: &'static str,
    /// Input topic.
    pub input: TopicSpec,
    /// Output topic.
    pub output: TopicSpec,
    /// Local JSON-lines copy of the outputs (single-partition stages only), e.g. `alerts.jsonl`.
    pub tap: Option<&'static str>,
    /// Local JSON-lines copy of the rejected inputs (single-partition stages only).
    pub rejects_tap: Option<&'static str>,
    /// Counter of output events in the shared metrics.
    pub counter: Option<fn(&Metrics) -> &AtomicU64>,
}

/// Partitions the group took away, reported by the consumer's rebalance callback.
struct RebalanceContext {
    revoked: UnboundedSender<Vec<i32>>,
    stage: &'static str,
}

impl ClientContext for RebalanceContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        metrics::counter!("optionflow_kafka_client_errors_total", "client" => self.stage)
            .increment(1);
        tracing::warn!(stage = self.stage, error = %error, reason, "kafka consumer: broker trouble (retrying)");
    }
}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            tracing::info!(stage = self.stage, partitions = ?parts, "partitions revoked");
            let _ = self.revoked.send(parts);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            tracing::info!(stage = self.stage, partitions = ?parts, "partitions assigned");
        }
    }
}

/// One operator instance and its bookkeeping, for one input partition.
struct Instance<Op: Operator> {
    op: Op,
    partition: i32,
    ckpt: PartitionCheckpoint,
    ctx: Ctx,
    emit: Emit<Op::Out>,
    last_checkpoint_time: Option<i64>,
    tap: Option<JsonlFile>,
    rejects_tap: Option<JsonlFile>,
    /// Inputs since the last checkpoint.
    dirty: bool,
    /// Rows for the query tables (`[state] kind = "scylla"`).
    projector: crate::scylla::Projector,
    /// Where the reader is, and whether it must re-read.
    position: Position,
}

/// What became of a message.
enum Handled {
    /// Taken (or dropped as a duplicate or a dead letter); `true` when it ended the stream.
    Done(bool),
    /// Not taken: the reader sought back to re-read.
    Reread,
}

/// Runs `spec` until `env.stop` fires (or, with `env.exit_on_end`, until every partition of
/// its input has ended). `build` makes a fresh operator.
pub async fn run<Op, B>(spec: StageSpec, build: B, env: KafkaEnv) -> Result<(), PipelineError>
where
    Op: Operator,
    Op::In: WireEvent,
    Op::Out: WireEvent + Serialize + 'static,
    B: Fn() -> Result<Op, PipelineError>,
{
    let kcfg = &env.config.kafka;
    let input_topic = kcfg.topic(spec.input.name);
    let (revoked_tx, mut revoked_rx) = unbounded_channel();
    let mut c = kcfg.client_config();
    c.set("group.id", format!("{}-{}", kcfg.group_prefix, spec.name))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", kcfg.session_timeout_ms.to_string())
        .set(
            "heartbeat.interval.ms",
            (kcfg.session_timeout_ms / 4).max(250).to_string(),
        )
        .set("partition.assignment.strategy", "range");
    for (k, v) in &kcfg.properties {
        c.set(k, v);
    }
    let consumer: StreamConsumer<RebalanceContext> = c
        .create_with_context(RebalanceContext {
            revoked: revoked_tx,
            stage: spec.name,
        })
        .map_err(|e| PipelineError::Kafka(format!("creating the {} consumer: {e}", spec.name)))?;
    consumer
        .subscribe(&[&input_topic])
        .map_err(|e| PipelineError::Kafka(format!("subscribing to {input_topic}: {e}")))?;
    tracing::info!(stage = spec.name, topic = %input_topic, "stage started");

    let runner = Runner {
        spec,
        env: env.clone(),
        owner: format!("{}{}", kcfg.topic_prefix, spec.name),
        input_topic,
        output_topic: kcfg.topic(spec.output.name),
        rejects_topic: kcfg.topic(topics::REJECTED.name),
        in_parts: spec.input.partitions(kcfg),
        out_parts: spec.output.partitions(kcfg),
        rejects_parts: topics::REJECTED.partitions(kcfg),
        logged: BTreeSet::new(),
    };
    runner.consume(&consumer, &mut revoked_rx, &build).await
}

struct Runner {
    spec: StageSpec,
    env: KafkaEnv,
    owner: String,
    input_topic: String,
    output_topic: String,
    rejects_topic: String,
    in_parts: i32,
    out_parts: i32,
    rejects_parts: i32,
    logged: BTreeSet<String>,
}

impl Runner {
    async fn consume<Op, B>(
        mut self,
        consumer: &StreamConsumer<RebalanceContext>,
        revoked: &mut UnboundedReceiver<Vec<i32>>,
        build: &B,
    ) -> Result<(), PipelineError>
    where
        Op: Operator,
        Op::In: WireEvent,
        Op::Out: WireEvent + Serialize + 'static,
        B: Fn() -> Result<Op, PipelineError>,
    {
        let mut instances: BTreeMap<i32, Instance<Op>> = BTreeMap::new();
        let mut finished: BTreeSet<i32> = BTreeSet::new();
        let mut stop = self.env.stop.clone();
        loop {
            if self.env.exit_on_end && finished.len() as i32 >= self.in_parts {
                tracing::info!(stage = self.spec.name, "every input partition has ended");
                return Ok(());
            }
            let msg = tokio::select! {
                m = consumer.recv() => m,
                _ = stop.changed() => {
                    for inst in instances.values_mut() {
                        self.checkpoint(consumer, inst).await?;
                    }
                    return Ok(());
                }
            };
            while let Ok(parts) = revoked.try_recv() {
                for p in parts {
                    if let Some(mut inst) = instances.remove(&p) {
                        self.checkpoint(consumer, &mut inst).await?;
                    }
                }
            }
            let msg = match msg {
                Ok(m) => m,
                Err(e) => {
                    metrics::counter!("optionflow_kafka_client_errors_total", "client" => self.spec.name).increment(1);
                    tracing::warn!(stage = self.spec.name, error = %e, "kafka consume error (retrying)");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    continue;
                }
            };
            let p = msg.partition();
            if let std::collections::btree_map::Entry::Vacant(slot) = instances.entry(p) {
                slot.insert(self.open(p, build).await?);
            }
            let Some(inst) = instances.get_mut(&p) else {
                continue;
            };
            match inst.position.delivered(msg.offset()) {
                Delivery::Skip => continue,
                Delivery::Read => {}
                Delivery::Seek(to) => {
                    // The broker started past where this reader must start: the group's
                    // committed offset is past the checkpoint (another member committed, then
                    // saved a later checkpoint than the one read here, or crashed between the
                    // two), or the checkpoint's offset is inside a record batch and the broker
                    // (Tansu) answered with the next batch. Inputs must not be skipped.
                    tracing::info!(
                        stage = self.spec.name,
                        partition = p,
                        delivered = msg.offset(),
                        wanted = inst.ckpt.next_offset,
                        to,
                        "the broker started past the reader's position; seeking back"
                    );
                    self.seek(consumer, p, to)?;
                    continue;
                }
            }
            let ended = match self.handle(consumer, &msg, inst).await? {
                Handled::Done(ended) => ended,
                Handled::Reread => continue,
            };
            inst.ckpt.next_offset = inst.ckpt.next_offset.max(msg.offset() + 1);
            inst.dirty = true;
            let due = inst.last_checkpoint_time.is_none_or(|t| {
                inst.ctx.watermark.saturating_sub(t)
                    >= self.env.config.runtime.checkpoint_interval_secs as i64 * 1_000_000
            });
            if ended || (due && inst.ctx.watermark != i64::MIN) {
                self.checkpoint(consumer, inst).await?;
            }
            if inst.ckpt.finished {
                finished.insert(p);
            }
        }
    }

    /// Restores (or starts) the instance of partition `p`.
    async fn open<Op, B>(&self, p: i32, build: &B) -> Result<Instance<Op>, PipelineError>
    where
        Op: Operator,
        B: Fn() -> Result<Op, PipelineError>,
    {
        let mut op = build()?;
        let ckpt = self
            .env
            .store
            .load(&self.owner, p)
            .await
            .map_err(PipelineError::io(format!(
                "loading the checkpoint of {} partition {p}",
                self.spec.name
            )))?;
        let ckpt = match ckpt {
            Some(c) => {
                op.restore(&c.state)?;
                tracing::info!(
                    stage = self.spec.name,
                    partition = p,
                    offset = c.next_offset,
                    "restored checkpoint"
                );
                c
            }
            None => PartitionCheckpoint::default(),
        };
        let open = |name: Option<&'static str>| -> Result<Option<JsonlFile>, PipelineError> {
            name.map(|n| {
                JsonlFile::open(
                    &self.env.data_dir.join(n),
                    ckpt.files.get(n).copied().unwrap_or(0),
                )
                .map_err(PipelineError::io(format!("opening {n}")))
            })
            .transpose()
        };
        Ok(Instance {
            tap: open(self.spec.tap)?,
            rejects_tap: open(self.spec.rejects_tap)?,
            ctx: Ctx::at(ckpt.input.delivered.unwrap_or(i64::MIN)),
            last_checkpoint_time: ckpt.input.delivered,
            op,
            partition: p,
            position: Position::at(ckpt.next_offset),
            ckpt,
            emit: Emit::default(),
            dirty: false,
            projector: Default::default(),
        })
    }

    /// Moves the reader of partition `p` to `offset` (0: the beginning of the partition).
    fn seek(
        &self,
        consumer: &StreamConsumer<RebalanceContext>,
        p: i32,
        offset: i64,
    ) -> Result<(), PipelineError> {
        let to = if offset <= 0 {
            Offset::Beginning
        } else {
            Offset::Offset(offset)
        };
        consumer
            .seek(&self.input_topic, p, to, std::time::Duration::from_secs(10))
            .map_err(|e| {
                PipelineError::Kafka(format!(
                    "{} partition {p}: cannot seek to offset {offset}: {e}",
                    self.spec.name
                ))
            })
    }

    /// Handles one message.
    async fn handle<Op>(
        &mut self,
        consumer: &StreamConsumer<RebalanceContext>,
        msg: &BorrowedMessage<'_>,
        inst: &mut Instance<Op>,
    ) -> Result<Handled, PipelineError>
    where
        Op: Operator,
        Op::In: WireEvent,
        Op::Out: WireEvent + Serialize + 'static,
    {
        // A re-read may dead-letter a message again (same `optionflow-from`): better twice
        // than not at all, and which offsets the broker skipped is not known here.
        let frame = match Frame::read(msg) {
            Ok(f) => f,
            Err(e) => {
                self.dead_letter(msg, &e).await?;
                return Ok(Handled::Done(false));
            }
        };
        // An event is decoded before its sequence number is taken: a message that cannot be
        // used goes to the dead letters without moving the origin's position, so it can never
        // shadow the real message with that number.
        let event = match frame.kind {
            Kind::Event => match Op::In::decode(msg.payload().unwrap_or_default()) {
                Ok(ev) => Some(ev),
                Err(e) => {
                    self.dead_letter(msg, &e.to_string()).await?;
                    return Ok(Handled::Done(false));
                }
            },
            _ => None,
        };
        let step = inst.ckpt.input.accept(&frame);
        if let Step::Gap { expected } = step {
            metrics::counter!("optionflow_sequence_gaps_total", "stage" => self.spec.name)
                .increment(1);
            let missing = inst
                .position
                .gap(frame.origin, expected, frame.seq, msg.offset());
            return match missing {
                Ok(to) => {
                    tracing::warn!(
                        stage = self.spec.name,
                        topic = %self.input_topic,
                        partition = inst.partition,
                        offset = msg.offset(),
                        origin = frame.origin,
                        expected,
                        got = frame.seq,
                        to,
                        "sequence gap: records of this writer were not delivered; re-reading"
                    );
                    self.seek(consumer, inst.partition, to)?;
                    Ok(Handled::Reread)
                }
                Err(missing) => {
                    tracing::error!(stage = self.spec.name, topic = %self.input_topic,
                        partition = inst.partition, %missing, "input records are missing; stopping");
                    Err(PipelineError::Kafka(format!(
                        "{} reading {} partition {}: {missing}",
                        self.spec.name, self.input_topic, inst.partition
                    )))
                }
            };
        }
        if step != Step::Duplicate && inst.position.taken(frame.origin, frame.seq, msg.offset()) {
            tracing::info!(
                stage = self.spec.name,
                topic = %self.input_topic,
                partition = inst.partition,
                offset = msg.offset(),
                "sequence gap closed: the missing records were read"
            );
        }
        let ended = match step {
            Step::Duplicate | Step::Nothing | Step::Gap { .. } => false,
            Step::Event => {
                let Some(ev) = event else {
                    return Ok(Handled::Done(false));
                };
                if let Err(e) = inst.op.on_event(&ev, &inst.ctx, &mut inst.emit) {
                    match e.kind {
                        ErrorKind::Skip => self.dead_letter(msg, &e.message).await?,
                        ErrorKind::Retryable | ErrorKind::Fatal => return Err(e.into()),
                    }
                }
                self.flush_outputs(inst, frame.emitted_at).await?;
                false
            }
            Step::Advance(t) => {
                inst.ctx = Ctx::at(t);
                metrics::gauge!("optionflow_stage_watermark_seconds", "stage" => self.spec.name)
                    .set(t as f64 / 1e6);
                if let Err(e) = inst.op.on_watermark(t, &inst.ctx, &mut inst.emit) {
                    match e.kind {
                        ErrorKind::Skip => {
                            tracing::warn!(stage = self.spec.name, error = %e.message, "watermark handling skipped")
                        }
                        ErrorKind::Retryable | ErrorKind::Fatal => return Err(e.into()),
                    }
                }
                self.flush_outputs(inst, frame.emitted_at).await?;
                self.control(inst, Kind::Watermark(t), frame.emitted_at)
                    .await?;
                false
            }
            Step::End => {
                self.flush_outputs(inst, frame.emitted_at).await?;
                self.control(inst, Kind::End, frame.emitted_at).await?;
                inst.ckpt.finished = true;
                true
            }
        };
        Ok(Handled::Done(ended))
    }

    /// Writes what the operator emitted: events to the output topic, rejects to
    /// `quotes.rejected`, and both to the local taps; each stamped `emitted` (the stamp of the
    /// input that caused them).
    async fn flush_outputs<Op>(
        &mut self,
        inst: &mut Instance<Op>,
        emitted: Option<u64>,
    ) -> Result<(), PipelineError>
    where
        Op: Operator,
        Op::Out: WireEvent + Serialize + 'static,
    {
        let (events, rejected) = inst.emit.drain();
        if events.is_empty() && rejected.is_empty() {
            return Ok(());
        }
        if let Some(o) = &self.env.observer {
            o.observe(self.spec.name, &events, &rejected);
        }
        let (origin, origins) = self.origin(inst.partition);
        let mut buf = Vec::with_capacity(512);
        for ev in &events {
            buf.clear();
            ev.encode(&mut buf).map_err(|e| {
                PipelineError::Kafka(format!("encoding an output of {}: {e}", self.spec.name))
            })?;
            let part = partition_of(ev.key(), self.out_parts);
            let frame = inst
                .ckpt
                .outputs
                .entry(self.output_topic.clone())
                .or_default()
                .frame(part, Kind::Event, origin, origins)
                .emitted(emitted);
            self.env
                .producer
                .send(&self.output_topic, part, Some(ev.key()), &buf, &frame)
                .await?;
            if let Some(tap) = inst.tap.as_mut() {
                tap.write(ev).map_err(PipelineError::writing(tap.name()))?;
            }
        }
        if let super::checkpoint::CheckpointStore::Scylla(db) = &self.env.store {
            let rows = inst
                .projector
                .project(self.spec.name, &events)
                .map_err(|e| PipelineError::State(e.to_string()))?;
            db.write_rows(rows)
                .await
                .map_err(|e| PipelineError::State(e.to_string()))?;
        }
        if let Some(d) = &self.env.delivery {
            // After the tap, as in the embedded mode: a delivered alert is one the file holds.
            if let Some(alerts) =
                (&events as &dyn std::any::Any).downcast_ref::<Vec<optionflow_schemas::Alert>>()
            {
                for a in alerts {
                    if !d.deliver(a).await {
                        return Err(PipelineError::Kafka("alert delivery stopped".into()));
                    }
                }
            }
        }
        if let Some(counter) = self.spec.counter {
            Metrics::add(counter(&self.env.metrics), events.len() as u64);
        }
        metrics::counter!("optionflow_stage_events_out_total", "stage" => self.spec.name)
            .increment(events.len() as u64);
        if !rejected.is_empty() {
            Metrics::add(&self.env.metrics.rejected, rejected.len() as u64);
        }
        for r in &rejected {
            metrics::counter!("optionflow_rejects_total", "stage" => self.spec.name, "reason" => r.reason_code.to_string()).increment(1);
            if self.logged.len() < 1000 && self.logged.insert(format!("reject {}", r.reason_code)) {
                tracing::info!(stage = self.spec.name, reason_code = %r.reason_code, example = %r.reason,
                    "rejecting inputs (logged once per reason; each one is on quotes.rejected)");
            }
            buf.clear();
            r.encode(&mut buf)
                .map_err(|e| PipelineError::Kafka(format!("encoding a rejection: {e}")))?;
            let part = partition_of(RejectedQuote::key(r), self.rejects_parts);
            let frame = inst
                .ckpt
                .outputs
                .entry(self.rejects_topic.clone())
                .or_default()
                .frame(
                    part,
                    Kind::Event,
                    inst.partition as u32,
                    self.in_parts as u32,
                )
                .emitted(emitted);
            self.env
                .producer
                .send(
                    &self.rejects_topic,
                    part,
                    Some(RejectedQuote::key(r)),
                    &buf,
                    &frame,
                )
                .await?;
            if let Some(tap) = inst.rejects_tap.as_mut() {
                tap.write_with(|line| r.write_json(line))
                    .map_err(PipelineError::writing(tap.name()))?;
            }
        }
        // The pipeline's end: source produce → alert written (to the topic and alerts.jsonl).
        if let Some(at) = emitted.filter(|_| self.spec.output.name == topics::ALERTS.name) {
            if !events.is_empty() {
                let age = now_micros().saturating_sub(at);
                let latency = &self.env.metrics.alert_latency;
                latency.record(age, events.len() as u64);
            }
        }
        Ok(())
    }

    /// The origin number and count this instance writes to the output topic under. A topic
    /// with as many partitions as the input is co-partitioned: partition `p` writes only to
    /// partition `p`, so it is that partition's only origin.
    fn origin(&self, partition: i32) -> (u32, u32) {
        if self.in_parts == self.out_parts {
            (0, 1)
        } else {
            (partition as u32, self.in_parts as u32)
        }
    }

    /// Sends a watermark or the end, stamped `emitted`, to every output partition this instance
    /// is an origin of.
    async fn control<Op: Operator>(
        &mut self,
        inst: &mut Instance<Op>,
        kind: Kind,
        emitted: Option<u64>,
    ) -> Result<(), PipelineError> {
        let (origin, origins) = self.origin(inst.partition);
        let targets: Vec<i32> = if self.in_parts == self.out_parts {
            vec![inst.partition]
        } else {
            (0..self.out_parts).collect()
        };
        for part in targets {
            let frame = inst
                .ckpt
                .outputs
                .entry(self.output_topic.clone())
                .or_default()
                .frame(part, kind, origin, origins)
                .emitted(emitted);
            self.env
                .producer
                .send(&self.output_topic, part, None, &[], &frame)
                .await?;
        }
        Ok(())
    }

    /// Saves the instance's checkpoint once every output so far is acknowledged, then commits
    /// the offset.
    async fn checkpoint<Op: Operator>(
        &self,
        consumer: &StreamConsumer<RebalanceContext>,
        inst: &mut Instance<Op>,
    ) -> Result<(), PipelineError> {
        if !inst.dirty {
            return Ok(());
        }
        self.env.producer.flush().await?;
        if let Some(d) = &self.env.delivery {
            d.settled().await;
        }
        if let super::checkpoint::CheckpointStore::Scylla(db) = &self.env.store {
            // The query tables reflect every input the checkpoint does.
            db.write_rows(inst.projector.drain())
                .await
                .map_err(|e| PipelineError::State(e.to_string()))?;
        }
        inst.ckpt.state = inst.op.snapshot()?;
        inst.ckpt.event_time = inst.ctx.watermark;
        for f in [&mut inst.tap, &mut inst.rejects_tap].into_iter().flatten() {
            let len = f.commit().map_err(PipelineError::writing(f.name()))?;
            inst.ckpt.files.insert(f.name().to_string(), len);
        }
        // While a re-read is under way, resume from where the missing records may lie: what
        // was taken after it is dropped by sequence number when read again.
        let read_to = inst.ckpt.next_offset;
        inst.ckpt.next_offset = inst.position.resume_offset(read_to);
        let saved = self
            .env
            .store
            .save(&self.owner, inst.partition, &inst.ckpt)
            .await;
        let resume = inst.ckpt.next_offset;
        inst.ckpt.next_offset = read_to;
        saved.map_err(PipelineError::io(format!(
            "saving the checkpoint of {} partition {}",
            self.spec.name, inst.partition
        )))?;
        Metrics::add(&self.env.metrics.checkpoints, 1);
        inst.last_checkpoint_time = Some(inst.ctx.watermark);
        inst.dirty = false;
        let mut tpl = TopicPartitionList::new();
        if tpl
            .add_partition_offset(&self.input_topic, inst.partition, Offset::Offset(resume))
            .is_ok()
        {
            // The checkpoint is what restores; the committed offset only starts the reader
            // near it and shows the group's lag. A commit refused after a revocation is fine.
            if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
                tracing::debug!(stage = self.spec.name, error = %e, "offset commit refused");
            }
        }
        Ok(())
    }

    /// Sends an unusable message to `<topic>.dlq` with the reason, counts it and goes on.
    async fn dead_letter(
        &mut self,
        msg: &BorrowedMessage<'_>,
        error: &str,
    ) -> Result<(), PipelineError> {
        let dlq = topics::dlq(&self.input_topic);
        metrics::counter!("optionflow_dead_letters_total", "topic" => self.input_topic.clone())
            .increment(1);
        Metrics::add(&self.env.metrics.dead_lettered, 1);
        if self.logged.len() < 1000 && self.logged.insert(format!("dlq {error}")) {
            tracing::warn!(stage = self.spec.name, topic = %self.input_topic, partition = msg.partition(),
                offset = msg.offset(), error, "unusable message sent to {dlq} (logged once per cause)");
        }
        let from = format!("{}/{}/{}", self.input_topic, msg.partition(), msg.offset());
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: H_ERROR,
                value: Some(error.as_bytes()),
            })
            .insert(Header {
                key: H_FROM,
                value: Some(from.as_bytes()),
            });
        self.env
            .producer
            .send_raw(
                &dlq,
                0,
                msg.key(),
                msg.payload().unwrap_or_default(),
                headers,
            )
            .await
    }
}
