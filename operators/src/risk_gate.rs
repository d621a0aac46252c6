//! risk_gate (being written).
