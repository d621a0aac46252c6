//! A source as a producer onto `quotes.raw`: a tick's events keyed by underlying, then the
//! tick's watermark to every partition, and at the end the final watermark and the end of
//! stream. Its state (the source's own, and its sequence numbers) is checkpointed like a
//! stage's, after a flush, so a restarted source rewrites exactly what followed its checkpoint
//! and the readers drop those duplicates. Every message is stamped with the wall-clock time
//! its tick was produced (the `optionflow-emitted-at` header), for end-to-end latency.

use super::checkpoint::PartitionCheckpoint;
use super::topics;
use super::wire::{now_micros, partition_of, Kind, WireEvent};
use super::KafkaEnv;
use crate::runtime::PipelineError;
use crate::source::TickSource;
use crate::telemetry::Metrics;
use std::time::Duration;

/// Checkpoint owner name of the source.
pub const OWNER: &str = "source";

/// Produces `source` onto `quotes.raw` until it ends (or `env.stop` fires). `speed` paces by
/// event time as in the embedded mode. Returns the ticks written by this run.
pub async fn run(
    mut source: Box<dyn TickSource>,
    env: KafkaEnv,
    speed: Option<f64>,
) -> Result<u64, PipelineError> {
    let kcfg = &env.config.kafka;
    let topic = kcfg.topic(topics::RAW.name);
    let parts = topics::RAW.partitions(kcfg);
    let owner = format!("{}{OWNER}", kcfg.topic_prefix);
    let io = |what: &str| PipelineError::io(format!("{what} the source checkpoint"));
    let mut ckpt = env
        .store
        .load(&owner, 0)
        .await
        .map_err(io("loading"))?
        .unwrap_or_default();
    if ckpt.finished {
        tracing::info!("the source has already written its whole session");
        return Ok(0);
    }
    if !ckpt.state.is_empty() {
        source.restore(&ckpt.state)?;
        tracing::info!(
            ticks = ckpt.next_offset,
            "source resumed from its checkpoint"
        );
    }
    let checkpoint_every = (env.config.runtime.checkpoint_interval_secs * 1000
        / env.config.simulator.tick_interval_ms.max(1))
    .max(1) as i64;
    let pace_start = tokio::time::Instant::now();
    let mut market_elapsed = Duration::ZERO;
    let mut previous = None;
    let mut written = 0u64;
    let mut stop = env.stop.clone();
    let mut buf = Vec::with_capacity(512);
    loop {
        if *stop.borrow_and_update() {
            return Ok(written);
        }
        let mut batch = Vec::new();
        let Some(t) = source.next_tick(&mut batch)? else {
            break;
        };
        if let Some(speed) = speed {
            market_elapsed += source.market_step(previous, t);
            tokio::select! {
                _ = tokio::time::sleep_until(pace_start + market_elapsed.div_f64(speed)) => {}
                _ = stop.changed() => return Ok(written),
            }
        }
        previous = Some(t);
        let out = ckpt.outputs.entry(topic.clone()).or_default();
        env.metrics.count_source_batch(&batch, t);
        // One stamp per tick, as the embedded source takes one `Instant` per batch.
        let emitted = Some(now_micros());
        for ev in &batch {
            buf.clear();
            ev.encode(&mut buf)
                .map_err(|e| PipelineError::Kafka(format!("encoding a source event: {e}")))?;
            let part = partition_of(ev.key(), parts);
            let frame = out.frame(part, Kind::Event, 0, 1).emitted(emitted);
            env.producer
                .send(&topic, part, Some(ev.key()), &buf, &frame)
                .await?;
        }
        for part in 0..parts {
            let frame = out.frame(part, Kind::Watermark(t), 0, 1).emitted(emitted);
            env.producer.send(&topic, part, None, &[], &frame).await?;
        }
        written += 1;
        // `next_offset` counts ticks for the source.
        ckpt.next_offset += 1;
        ckpt.event_time = t;
        if ckpt.next_offset % checkpoint_every == 0 {
            let state = source.snapshot()?;
            save(&env, &owner, &mut ckpt, state).await?;
        }
    }
    let out = ckpt.outputs.entry(topic.clone()).or_default();
    let emitted = Some(now_micros());
    for kind in [Kind::Watermark(i64::MAX), Kind::End] {
        for part in 0..parts {
            let frame = out.frame(part, kind, 0, 1).emitted(emitted);
            env.producer.send(&topic, part, None, &[], &frame).await?;
        }
    }
    ckpt.finished = true;
    let state = source.snapshot()?;
    save(&env, &owner, &mut ckpt, state).await?;
    tracing::info!(ticks = ckpt.next_offset, "source finished its session");
    Ok(written)
}

async fn save(
    env: &KafkaEnv,
    owner: &str,
    ckpt: &mut PartitionCheckpoint,
    state: Vec<u8>,
) -> Result<(), PipelineError> {
    env.producer.flush().await?;
    ckpt.state = state;
    env.store
        .save(owner, 0, ckpt)
        .await
        .map_err(PipelineError::io("saving the source checkpoint"))?;
    Metrics::add(&env.metrics.checkpoints, 1);
    Ok(())
}
