//! The one idempotent producer a process shares, and what "acknowledged" means for it.
//!
//! Sends are asynchronous; librdkafka retries each message until a broker takes it
//! (`message.timeout.ms = 0`: a broker outage delays, it never drops). [`Producer::flush`]
//! waits until every message sent so far is acknowledged: a stage calls it before saving a
//! checkpoint, so no checkpoint ever covers an input whose outputs could still be lost.

use super::config::KafkaConfig;
use super::wire::Frame;
use crate::runtime::PipelineError;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};
use rdkafka::ClientContext;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Counts failed deliveries (none are expected with idempotence and no timeout, but a fatal
/// producer error must stop the stage rather than let a checkpoint pass it).
#[derive(Default)]
pub struct AckContext {
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for AckContext {
    fn error(&self, error: KafkaError, reason: &str) {
        metrics::counter!("optionflow_kafka_client_errors_total", "client" => "producer")
            .increment(1);
        tracing::warn!(error = %error, reason, "kafka producer: broker trouble (retrying)");
    }
}

impl ProducerContext for AckContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut first) = self.first_error.lock() {
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// The process's producer.
pub struct Producer {
    inner: ThreadedProducer<AckContext>,
}

impl Producer {
    /// An idempotent producer (`acks=all`, ordered retries) on `[kafka] brokers`.
    pub fn new(cfg: &KafkaConfig) -> Result<Producer, PipelineError> {
        let mut c = cfg.client_config();
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "0")
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .set("queue.buffering.max.messages", "200000");
        for (k, v) in &cfg.properties {
            c.set(k, v);
        }
        let inner = c
            .create_with_context(AckContext::default())
            .map_err(|e| PipelineError::Kafka(format!("creating the producer: {e}")))?;
        Ok(Producer { inner })
    }

    /// Queues one framed message; waits while the local queue is full.
    pub async fn send(
        &self,
        topic: &str,
        partition: i32,
        key: Option<&str>,
        payload: &[u8],
        frame: &Frame,
    ) -> Result<(), PipelineError> {
        self.send_raw(
            topic,
            partition,
            key.map(str::as_bytes),
            payload,
            frame.headers(payload),
        )
        .await
    }

    /// Queues one message with the given headers; waits while the local queue is full.
    pub async fn send_raw(
        &self,
        topic: &str,
        partition: i32,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: OwnedHeaders,
    ) -> Result<(), PipelineError> {
        let mut waited = false;
        loop {
            let mut record = BaseRecord::<[u8], [u8]>::to(topic)
                .partition(partition)
                .payload(payload)
                .headers(headers.clone());
            if let Some(k) = key {
                record = record.key(k);
            }
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if !waited {
                        metrics::counter!("optionflow_kafka_queue_full_total").increment(1);
                        waited = true;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err((e, _)) => {
                    return Err(PipelineError::Kafka(format!("producing to {topic}: {e}")))
                }
            }
        }
    }

    /// Waits until every message queued so far is acknowledged by the brokers, logging while a
    /// broker is unavailable; fails if any delivery failed.
    pub async fn flush(&self) -> Result<(), PipelineError> {
        let mut rounds = 0u32;
        loop {
            let done = tokio::task::block_in_place(|| self.inner.flush(Duration::from_secs(10)));
            match done {
                Ok(()) => break,
                Err(_) => {
                    rounds += 1;
                    metrics::counter!("optionflow_kafka_flush_waits_total").increment(1);
                    tracing::warn!(
                        in_flight = self.inner.in_flight_count(),
                        waited_secs = rounds * 10,
                        "kafka: outputs not yet acknowledged (broker unavailable?); still waiting"
                    );
                }
            }
        }
        let ctx = self.inner.context();
        if ctx.failed.load(Ordering::Relaxed) > 0 {
            let first = ctx
                .first_error
                .lock()
                .ok()
                .and_then(|f| f.clone())
                .unwrap_or_default();
            return Err(PipelineError::Kafka(format!(
                "{} outputs were not delivered (first: {first})",
                ctx.failed.load(Ordering::Relaxed)
            )));
        }
        Ok(())
    }
}
