//! pricing (being written).
