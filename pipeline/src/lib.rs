//! # optionflow-pipeline
//!
//! The runtime around the operators: sources, the stage runner, the on-disk tape, checkpoints,
//! sinks and configuration.
//!
//! ## Layout
//! - [`source`]: event sources (the seeded market simulator).

pub mod source;
