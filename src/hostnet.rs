//! Host network discovery (skeleton).
