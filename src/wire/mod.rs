//! Wire formats: one file per header, byte views and builders, no I/O.
//!
//! The contract (smoltcp's): a view's checked constructor validates every
//! length once, after which no getter can panic; guest and host bytes always
//! enter through it. Builders write into a caller's buffer of known size.

pub mod arp;
pub mod checksum;
pub mod dhcp;
pub mod dhcpv6;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod ndp;
pub mod tcp;
pub mod udp;

use std::fmt;

/// Why a header was refused. Each variant is a drop counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than the fixed header or than its own length field says.
    Truncated,
    /// A length field is inconsistent (too small, or larger than the buffer).
    BadLength,
    /// The checksum does not verify.
    BadChecksum,
    /// Version, header type or a fixed field has a value we do not accept.
    Malformed,
    /// A valid packet we do not handle (IP fragments, unknown protocol...).
    Unsupported,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireError::Truncated => "truncated",
            WireError::BadLength => "bad length",
            WireError::BadChecksum => "bad checksum",
            WireError::Malformed => "malformed",
            WireError::Unsupported => "unsupported",
        })
    }
}

/// Reads a big-endian u16 at `at`; callers have checked the length.
#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads a big-endian u32 at `at`; callers have checked the length.
#[inline]
#[allow(dead_code)] // for the headers still to come (TCP sequence numbers)
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
