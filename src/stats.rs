//! Counters: frames and bytes each way, drops by reason, flows.

/// Why a guest frame was dropped. Never renumbered (exported to C).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Drop {
    /// Shorter than a header or than its own length fields.
    Truncated = 0,
    /// A length field inconsistent with the frame.
    BadLength = 1,
    /// IP header or L4 checksum wrong.
    BadChecksum = 2,
    /// Malformed fields (version, options...).
    Malformed = 3,
    /// Valid but unsupported (fragments, VLAN, unknown protocol).
    Unsupported = 4,
    /// Not for us (another destination MAC, martian address...).
    NotForUs = 5,
    /// A limit was reached (flows, fds, memory).
    Limit = 6,
    /// The frame was too large for the backend framing or our buffers.
    Oversize = 7,
    /// A host->guest frame the guest side could not take.
    TxFull = 8,
    /// A feature switched off by configuration (--no-udp...).
    Disabled = 9,
}

pub const DROP_REASONS: usize = 10;

impl From<crate::wire::WireError> for Drop {
    fn from(e: crate::wire::WireError) -> Drop {
        use crate::wire::WireError as W;
        match e {
            W::Truncated => Drop::Truncated,
            W::BadLength => Drop::BadLength,
            W::BadChecksum => Drop::BadChecksum,
            W::Malformed => Drop::Malformed,
            W::Unsupported => Drop::Unsupported,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub frames_in: u64,
    pub bytes_in: u64,
    pub frames_out: u64,
    pub bytes_out: u64,
    pub drops: [u64; DROP_REASONS],
}

impl Stats {
    pub fn drop(&mut self, why: Drop) {
        self.drops[why as usize] += 1;
    }
    pub fn dropped(&self, why: Drop) -> u64 {
        self.drops[why as usize]
    }
}
