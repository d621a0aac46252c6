//! greeks (being written).
