//! The engine: one epoll set, the timer table, batching; the one loop.
//! (Skeleton: filled in by the engine work.)

use crate::config::Config;
use crate::ffi::passt_error;
use crate::time::Instant;
use std::fmt;
use std::io::IoSlice;

/// Why an instance cannot go on, or why a call was refused.
#[derive(Debug)]
pub enum RunError {
    /// A system call failed.
    System(String),
    /// The call does not apply to this attachment.
    Unsupported(&'static str),
    /// `one-off`: the guest went away.
    GuestGone,
}

impl RunError {
    pub fn code(&self) -> passt_error {
        match self {
            RunError::System(_) => passt_error::System,
            RunError::Unsupported(_) => passt_error::Unsupported,
            RunError::GuestGone => passt_error::GuestGone,
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::System(s) => f.write_str(s),
            RunError::Unsupported(s) => write!(f, "not supported: {s}"),
            RunError::GuestGone => f.write_str("the guest disconnected (one-off)"),
        }
    }
}

/// The host's frame output for the in-process attachment: takes a batch,
/// returns how many frames it accepted.
pub type FrameOutput = Box<dyn FnMut(&[IoSlice<'_>]) -> usize + Send>;

pub struct Instance {}

impl Instance {
    pub fn new(config: &Config) -> Result<Instance, String> {
        config.validate().map_err(|e| e.0)?;
        Err("not implemented yet".into())
    }
    pub fn fd(&self) -> i32 {
        -1
    }
    pub fn process(&mut self, _now: Instant) -> Result<Option<u64>, RunError> {
        Ok(None)
    }
    pub fn set_frame_output(&mut self, _out: FrameOutput) -> Result<(), RunError> {
        Err(RunError::Unsupported("frame output"))
    }
    pub fn frame_input(&mut self, _frame: &[u8], _now: Instant) -> Result<(), RunError> {
        Err(RunError::Unsupported("frame input"))
    }
}
