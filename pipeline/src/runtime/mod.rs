//! The runtime: stages as tokio tasks joined by bounded channels.
//!
//! Everything flows in-band, in one order: event batches, watermarks (event time has reached
//! `t`), checkpoint barriers, and the end of the stream. Because barriers travel with the data,
//! each stage snapshots its state exactly between the inputs before and after the barrier, and
//! a checkpoint is one consistent cut of the whole pipeline (Chandy-Lamport on a chain).
//!
//! - [`stage`]: [`stage::run_stage`], the one loop that drives any operator.
//! - [`embedded`]: the whole pipeline in one process, with tape, checkpoints and resume.
//! - [`workers`]: the runtime's workers lent to a stage for its batches' pure work.

pub mod embedded;
pub mod stage;
pub mod workers;

use crate::store::Checkpoint;
use std::fs::File;
use std::time::Instant;

/// What travels between stages.
#[derive(Debug)]
pub enum Message<T> {
    /// Events, with the wall-clock instant their source input was emitted (for latency).
    Batch(Vec<T>, Instant),
    /// Every event with event time ≤ the value has been delivered.
    Watermark(i64, Instant),
    /// Snapshot now, then pass it on.
    Barrier(u64),
    /// No more input.
    End,
}

/// One participant's share of a checkpoint.
#[derive(Debug)]
pub enum Part {
    /// The source's state.
    Source {
        /// Serialized source state.
        state: Vec<u8>,
        /// Ticks emitted.
        ticks: u64,
        /// Event time of the last tick.
        event_time: i64,
    },
    /// The tape's length at the barrier.
    Tape {
        /// Bytes.
        bytes: u64,
        /// Events.
        events: u64,
        /// The tape file, synced by the coordinator before it saves the checkpoint (none when
        /// nothing is recorded).
        unsynced: Option<File>,
    },
    /// An operator's state.
    Stage {
        /// Stage name.
        name: &'static str,
        /// Serialized state.
        state: Vec<u8>,
    },
    /// An output file's length at the barrier.
    File {
        /// File name.
        name: String,
        /// Length in bytes.
        len: u64,
        /// The file, synced by the coordinator before it saves the checkpoint.
        unsynced: File,
    },
}

/// A participant's acknowledgement of barrier `id`.
#[derive(Debug)]
pub struct Ack {
    /// Checkpoint id.
    pub id: u64,
    /// What it contributes.
    pub parts: Vec<Part>,
}

impl Checkpoint {
    /// Adds a participant's parts; the files it must sync before saving go to `unsynced`.
    pub fn absorb(&mut self, parts: Vec<Part>, unsynced: &mut Vec<File>) {
        for p in parts {
            match p {
                Part::Source {
                    state,
                    ticks,
                    event_time,
                } => {
                    self.source = state;
                    self.ticks = ticks;
                    self.event_time = event_time;
                }
                Part::Tape {
                    bytes,
                    events,
                    unsynced: file,
                } => {
                    self.tape = (bytes, events);
                    unsynced.extend(file);
                }
                Part::Stage { name, state } => {
                    self.stages.insert(name.to_string(), state);
                }
                Part::File {
                    name,
                    len,
                    unsynced: file,
                } => {
                    self.files.insert(name, len);
                    unsynced.push(file);
                }
            }
        }
    }
}

/// Errors that stop the runtime.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// An operator failed fatally.
    #[error(transparent)]
    Operator(#[from] optionflow_operators::OpError),
    /// The tape.
    #[error(transparent)]
    Tape(#[from] crate::tape::TapeError),
    /// The simulator.
    #[error("simulator: {0}")]
    Simulator(String),
    /// A source.
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    /// A file in the data directory.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The data directory holds another session.
    #[error("{0}")]
    SessionMismatch(String),
    /// The silences file.
    #[error(transparent)]
    Silences(#[from] crate::silences::SilencesError),
    /// Alert delivery could not start.
    #[error(transparent)]
    Delivery(#[from] crate::delivery::DeliveryError),
    /// Kafka: a client could not be made, or a delivery failed for good.
    #[error("kafka: {0}")]
    Kafka(String),
    /// The state store (ScyllaDB).
    #[error("state store: {0}")]
    State(String),
    /// A task ended early; the real cause is logged by that task.
    #[error("stage {0} stopped unexpectedly")]
    Disconnected(&'static str),
}

impl PipelineError {
    /// Wraps an I/O error with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }

    /// Wraps an error writing the file `name`. The message is formatted only for an error:
    /// stages write a line per event, and formatting it up front for each (as
    /// `io(format!(..))` does) was 0.9% of a replay's CPU samples (perf).
    pub fn writing(name: &str) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            what: format!("writing {name}"),
            source,
        }
    }
}
