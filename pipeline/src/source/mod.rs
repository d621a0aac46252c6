//! Event sources: everything that produces `quotes.raw`.

pub mod simulator;
