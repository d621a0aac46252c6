//! Drives any operator over a list of inputs without a runtime, for tests and tools.

use crate::operator::{Ctx, Emit, OpError, Operator};
use optionflow_schemas::RejectedQuote;

/// One step of a scripted run.
#[derive(Debug, Clone)]
pub enum Step<I> {
    /// Deliver an event.
    Event(I),
    /// Advance event time.
    Watermark(i64),
}

/// Everything an operator produced over a run.
#[derive(Debug)]
pub struct Collected<O> {
    /// Output events, in order.
    pub events: Vec<O>,
    /// Rejected inputs, in order.
    pub rejected: Vec<RejectedQuote>,
}

/// Runs `op` over `steps`, as the runner would: each event updates the context's clock only
/// through watermarks.
pub fn run<Op: Operator>(
    op: &mut Op,
    steps: impl IntoIterator<Item = Step<Op::In>>,
) -> Result<Collected<Op::Out>, OpError> {
    let mut out = Emit::default();
    let mut ctx = Ctx::at(i64::MIN);
    for step in steps {
        match step {
            Step::Event(ev) => op.on_event(&ev, &ctx, &mut out)?,
            Step::Watermark(t) => {
                ctx = Ctx::at(t);
                op.on_watermark(t, &ctx, &mut out)?;
            }
        }
    }
    let (events, rejected) = out.drain();
    Ok(Collected { events, rejected })
}

/// Runs only events (no watermarks) through `op`.
pub fn run_events<Op: Operator>(
    op: &mut Op,
    events: impl IntoIterator<Item = Op::In>,
) -> Result<Collected<Op::Out>, OpError> {
    run(op, events.into_iter().map(Step::Event))
}

/// Delivers `events` to `op` as one batch ([`Operator::on_batch`], with a default context):
/// the outputs, the rejections and the errors, for comparing a stage's batch path with
/// [`run_events`].
pub fn run_batch<Op: Operator>(
    op: &mut Op,
    events: Vec<Op::In>,
) -> (Vec<Op::Out>, Vec<RejectedQuote>, Vec<OpError>) {
    let (mut out, mut errors) = (Emit::default(), Vec::new());
    op.on_batch(events, &Ctx::default(), &mut out, &mut errors);
    let (events, rejected) = out.drain();
    (events, rejected, errors)
}
