//! Fuzz targets for passt-rs: see README.md. The harness lives in its own
//! file so that the main crate's regression test can include it.

pub mod harness;
pub mod seeds;
pub mod services;
