//! Counters (skeleton).
