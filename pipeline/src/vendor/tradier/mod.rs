//! Tradier market data (being written).
