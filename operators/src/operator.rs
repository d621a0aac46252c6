//! The operator contract every stage implements, and the small types around it.

use optionflow_schemas::RejectedQuote;
use serde::{de::DeserializeOwned, Serialize};

/// A deterministic, stateful stage: same inputs in the same order give the same outputs, byte
/// for byte. Time is event time (from the event or [`Ctx`]); state is owned here and
/// checkpointed by the runner through [`Operator::snapshot`] / [`Operator::restore`].
pub trait Operator: Send + 'static {
    /// What the stage consumes.
    type In;
    /// What the stage produces.
    type Out;
    /// Stage name, as in topics, logs and checkpoints (`normalize`, `risk-gate`, ...).
    fn name(&self) -> &'static str;
    /// Handles one input event.
    fn on_event(
        &mut self,
        ev: &Self::In,
        ctx: &Ctx,
        out: &mut Emit<Self::Out>,
    ) -> Result<(), OpError>;
    /// Handles a batch of input events, in order, pushing each event's error to `errors`. The
    /// default calls [`Operator::on_event`] on each, and stops at the first error that is not
    /// [`ErrorKind::Skip`] (the runner stops the stage on it). A stage may override it to share
    /// work across the batch (the greeks stage prices its quotes on every core) or to move the
    /// inputs' fields into its outputs, as long as the outputs, the rejections, the errors and
    /// the state are exactly those of the per-event calls.
    fn on_batch(
        &mut self,
        events: Vec<Self::In>,
        ctx: &Ctx,
        out: &mut Emit<Self::Out>,
        errors: &mut Vec<OpError>,
    ) {
        for ev in &events {
            if let Err(e) = self.on_event(ev, ctx, out) {
                let stops = e.kind != ErrorKind::Skip;
                errors.push(e);
                if stops {
                    return;
                }
            }
        }
    }
    /// Event time has advanced to `event_time`: no input older than it will follow.
    fn on_watermark(
        &mut self,
        _event_time: i64,
        _ctx: &Ctx,
        _out: &mut Emit<Self::Out>,
    ) -> Result<(), OpError> {
        Ok(())
    }
    /// The operator's whole state, for a checkpoint.
    fn snapshot(&self) -> Result<Vec<u8>, OpError>;
    /// Replaces the state with one taken by [`Operator::snapshot`].
    fn restore(&mut self, state: &[u8]) -> Result<(), OpError>;
}

/// What the runner tells an operator besides the event: the current event-time clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ctx {
    /// The latest watermark (event time, microseconds), or `i64::MIN` before the first one.
    pub watermark: i64,
}

impl Ctx {
    /// A context whose clock reads `watermark`.
    pub fn at(watermark: i64) -> Self {
        Self { watermark }
    }
}

/// Collects an operator's outputs for one input: the events for its output topic, and inputs it
/// rejected (bound for `quotes.rejected`).
#[derive(Debug)]
pub struct Emit<T> {
    /// Events for the output topic, in emission order.
    pub events: Vec<T>,
    /// Rejected inputs, with their reasons.
    pub rejected: Vec<RejectedQuote>,
    /// How many events recent drains gave (halving with each smaller one), the capacity the
    /// next collection starts with.
    events_hint: usize,
}

impl<T> Default for Emit<T> {
    fn default() -> Self {
        Self {
            events: Vec::new(),
            rejected: Vec::new(),
            events_hint: 0,
        }
    }
}

impl<T> Emit<T> {
    /// Emits an event on the output topic.
    pub fn emit(&mut self, ev: impl Into<T>) {
        self.events.push(ev.into());
    }
    /// Emits a rejection.
    pub fn reject(&mut self, r: RejectedQuote) {
        self.rejected.push(r);
    }
    /// Makes room for `n` more events, for an operator that knows how many a batch gives. An
    /// empty collector too small for them gets a new vector instead: growing one copies its
    /// whole old allocation, used or not (a batch of greeks events is ~200 kB).
    pub fn reserve(&mut self, n: usize) {
        if self.events.is_empty() && self.events.capacity() < n {
            self.events = Vec::with_capacity(n);
        } else {
            self.events.reserve(n);
        }
    }
    /// Takes everything collected so far, leaving the collector empty with room for as many
    /// events as recent drains gave: batches are alike in size (a watermark's few outputs in
    /// between do not reset it), and a vector of large events grown from nothing copies each of
    /// them about twice on the way.
    pub fn drain(&mut self) -> (Vec<T>, Vec<RejectedQuote>) {
        if self.events.is_empty() {
            // Nothing to hand over (a watermark's usual outcome): the vector keeps its room,
            // where a new one would be allocated and the old one freed.
            return (Vec::new(), std::mem::take(&mut self.rejected));
        }
        let events = Vec::with_capacity(self.events.len().max(self.events_hint));
        self.events_hint = self.events.len().max(self.events_hint / 2);
        (
            std::mem::replace(&mut self.events, events),
            std::mem::take(&mut self.rejected),
        )
    }
}

/// How the runner should treat an operator error. Only the runner acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Transient: retry the same input later.
    Retryable,
    /// The input cannot be processed: send it to the dead-letter topic and go on.
    Skip,
    /// Nothing sensible can continue (corrupt state, impossible configuration): stop.
    Fatal,
}

/// An operator failure, classified for the runner.
#[derive(Debug, thiserror::Error)]
#[error("{stage}: {message}")]
pub struct OpError {
    /// What the runner should do.
    pub kind: ErrorKind,
    /// Stage that failed.
    pub stage: &'static str,
    /// What went wrong and what to do about it.
    pub message: String,
}

impl OpError {
    /// A fatal error.
    pub fn fatal(stage: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Fatal,
            stage,
            message: message.into(),
        }
    }
    /// An input to dead-letter.
    pub fn skip(stage: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Skip,
            stage,
            message: message.into(),
        }
    }
}

/// Serialises operator state for a checkpoint (postcard: compact, deterministic for
/// `BTreeMap`/`Vec` state).
pub fn encode_state<S: Serialize>(stage: &'static str, state: &S) -> Result<Vec<u8>, OpError> {
    encode_state_into(stage, state, Vec::new())
}

/// [`encode_state`] appended to `buffer` (one the caller sized, e.g. from its last snapshot):
/// the same bytes.
pub fn encode_state_into<S: Serialize>(
    stage: &'static str,
    state: &S,
    buffer: Vec<u8>,
) -> Result<Vec<u8>, OpError> {
    postcard::to_extend(state, buffer)
        .map_err(|e| OpError::fatal(stage, format!("snapshot failed: {e}")))
}

/// Reads operator state written by [`encode_state`].
pub fn decode_state<S: DeserializeOwned>(stage: &'static str, bytes: &[u8]) -> Result<S, OpError> {
    postcard::from_bytes(bytes).map_err(|e| undecodable(stage, e))
}

/// The error for state that does not decode.
fn undecodable(stage: &'static str, e: postcard::Error) -> OpError {
    OpError::fatal(
        stage,
        format!("checkpoint state does not decode ({e}); it was written by another version: start with a fresh data directory"),
    )
}

/// Reads operator state written by [`encode_state`] at the start of `bytes`, and returns what
/// follows it (state a later version appended).
pub fn decode_state_prefix<'a, S: DeserializeOwned>(
    stage: &'static str,
    bytes: &'a [u8],
) -> Result<(S, &'a [u8]), OpError> {
    postcard::take_from_bytes(bytes).map_err(|e| undecodable(stage, e))
}

/// Builds a [`RejectedQuote`] for an input a stage cannot use.
pub fn rejection(
    stage: &str,
    input_event_id: &str,
    event_time: i64,
    underlying: &str,
    symbol: &str,
    reason_code: &str,
    reason: String,
) -> RejectedQuote {
    RejectedQuote {
        event_id: optionflow_schemas::EventId::new("rejected")
            .part(stage)
            .part(input_event_id)
            .finish(),
        event_time,
        underlying: underlying.into(),
        input_event_id: input_event_id.into(),
        stage: stage.into(),
        reason_code: reason_code.into(),
        reason,
        symbol: symbol.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what it saw; input 1 is skipped, input 2 is fatal.
    struct Picky(Vec<u32>);

    impl Operator for Picky {
        type In = u32;
        type Out = u32;
        fn name(&self) -> &'static str {
            "picky"
        }
        fn on_event(&mut self, ev: &u32, _: &Ctx, out: &mut Emit<u32>) -> Result<(), OpError> {
            self.0.push(*ev);
            match ev {
                1 => Err(OpError::skip("picky", "one")),
                2 => Err(OpError::fatal("picky", "two")),
                _ => {
                    out.emit(*ev);
                    Ok(())
                }
            }
        }
        fn snapshot(&self) -> Result<Vec<u8>, OpError> {
            Ok(Vec::new())
        }
        fn restore(&mut self, _: &[u8]) -> Result<(), OpError> {
            Ok(())
        }
    }

    #[test]
    fn the_default_batch_goes_on_past_skips_and_stops_at_a_fatal_error() {
        let mut op = Picky(Vec::new());
        let (events, _, errors) = crate::testing::run_batch(&mut op, vec![0, 1, 3, 2, 4]);
        assert_eq!(
            op.0,
            [0, 1, 3, 2],
            "nothing after the fatal error is handled"
        );
        let kinds: Vec<_> = errors.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [ErrorKind::Skip, ErrorKind::Fatal]);
        assert_eq!(events, [0, 3]);
    }

    /// A batch's events come out whole and in order; an empty drain (a watermark's) keeps the
    /// collector's room, and `reserve` on an empty collector makes room for the whole batch.
    #[test]
    fn emit_hands_over_batches_and_keeps_its_room() {
        let mut emit: Emit<u32> = Emit::default();
        emit.reserve(500);
        assert!(emit.events.capacity() >= 500);
        for i in 0..300u32 {
            emit.emit(i);
        }
        let (events, rejected) = emit.drain();
        assert_eq!(events, (0..300).collect::<Vec<_>>());
        assert!(rejected.is_empty());
        let room = emit.events.capacity();
        assert!(room >= 300, "{room}");
        let (events, _) = emit.drain();
        assert!(events.is_empty());
        assert_eq!(
            emit.events.capacity(),
            room,
            "an empty drain keeps the vector"
        );
        emit.emit(7u32);
        emit.reserve(1000);
        assert_eq!(emit.drain().0, vec![7]);
    }
}
