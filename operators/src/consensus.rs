//! consensus (being written).
