//! # optionflow-replay
//!
//! Replays recorded tapes through the identical operator code, and backtests the signals.
//! The tape format itself lives in `optionflow_pipeline::tape` (the embedded runtime writes it);
//! this crate is where the replayer, the backtester, outcome labelling and reports go
//! (see the open issue "Replay and backtest"). It has no public items yet.
