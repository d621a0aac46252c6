//! explain (being written).
