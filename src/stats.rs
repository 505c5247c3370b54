//! Counters: frames and bytes each way, drops by reason, flows.
//!
//! [`Stats`] holds the counters the engine bumps as it goes; a
//! [`Snapshot`] adds what is read from the flow tables when asked (flows
//! now and at their peak, forwarded sockets). `ffi` copies a snapshot into
//! the size-versioned C struct `passt_stats`.

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

/// Every drop reason, in index order.
pub const ALL_DROPS: [Drop; DROP_REASONS] = [
        Drop::Truncated,
        Drop::BadLength,
        Drop::BadChecksum,
        Drop::Malformed,
        Drop::Unsupported,
        Drop::NotForUs,
        Drop::Limit,
        Drop::Oversize,
        Drop::TxFull,
    Drop::Disabled,
];

impl Drop {
    /// A short stable name ("truncated", "tx-full"...), for logs and tools.
    pub fn name(self) -> &'static str {
        match self {
            Drop::Truncated => "truncated",
            Drop::BadLength => "bad-length",
            Drop::BadChecksum => "bad-checksum",
            Drop::Malformed => "malformed",
            Drop::Unsupported => "unsupported",
            Drop::NotForUs => "not-for-us",
            Drop::Limit => "limit",
            Drop::Oversize => "oversize",
            Drop::TxFull => "tx-full",
            Drop::Disabled => "disabled",
        }
    }
}

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

/// The counters the engine keeps as it runs (they only grow).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames (and their bytes, Ethernet header included) received from
    /// the guest, whatever became of them.
    pub frames_in: u64,
    pub bytes_in: u64,
    /// Frames (and bytes) handed to the guest side: written to the socket
    /// or tap, or taken by the in-process output callback.
    pub frames_out: u64,
    pub bytes_out: u64,
    /// Frames dropped, by [`Drop`] reason (index: `Drop as usize`).
    pub drops: [u64; DROP_REASONS],
    /// Guests attached (socket accepts, fd/tap start, frame output set).
    pub guest_connects: u64,
    /// DHCPACKs that handed out an address.
    pub dhcp_leases: u64,
    /// DHCPv6 replies to REQUEST/RENEW/REBIND carrying an address.
    pub dhcpv6_leases: u64,
}

/// Flows of one protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCount {
    /// Open now.
    pub current: u64,
    /// The most open at once since the instance started.
    pub peak: u64,
}

/// Everything [`crate::engine::Instance::snapshot`] reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub counters: Stats,
    pub tcp: FlowCount,
    pub udp: FlowCount,
    pub icmp: FlowCount,
    /// Listening sockets for forwarded TCP ports (`-t`, `forward_add`).
    pub tcp_forwards: u64,
    /// Bound sockets for forwarded UDP ports (`-u`, `forward_add`).
    pub udp_forwards: u64,
}

impl Stats {
    pub fn drop(&mut self, why: Drop) {
        self.drops[why as usize] += 1;
    }
    pub fn dropped(&self, why: Drop) -> u64 {
        self.drops[why as usize]
    }
}
