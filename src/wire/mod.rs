//! Wire formats: one file per header, byte views and builders, no I/O.
//!
//! The contract (smoltcp's): a view's checked constructor validates every
//! length once, after which no getter can panic; guest and host bytes always
//! enter through it. Builders write into a caller's buffer of known size.

pub mod arp;
pub mod checksum;
pub mod dhcp;
pub mod dhcpv6;
pub mod dns;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod ndp;
pub mod tcp;
#[cfg(test)]
pub(crate) mod test_rng;
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

/// The output buffer cannot hold what was to be written. The modules that
/// build messages turn it into their own "buffer too small" error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoSpace;

impl fmt::Display for NoSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("output buffer too small")
    }
}

/// Shows a MAC address as `aa:bb:cc:dd:ee:ff`, without allocating (for
/// the `Display` of views and reprs).
#[derive(Clone, Copy, Debug)]
pub struct DisplayMac<'a>(pub &'a [u8; 6]);

impl fmt::Display for DisplayMac<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// `N` bytes at `at`, or zeros if `b` does not hold them all: views read
/// their fields through this, so a getter on a short unchecked buffer reads
/// zeros instead of panicking.
#[inline]
pub(crate) fn array_at<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = at.checked_add(N).and_then(|end| b.get(at..end)) {
        out.copy_from_slice(src);
    }
    out
}

/// Reads the byte at `at` (0 if `b` is too short).
#[inline]
pub(crate) fn byte_at(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

/// Reads a big-endian u16 at `at` (0 if `b` is too short).
#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(array_at(b, at))
}

/// Reads a big-endian u32 at `at` (0 if `b` is too short).
#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(array_at(b, at))
}

/// Writes `bytes` at `at` in `buf`, or fails without writing anything.
#[inline]
pub(crate) fn put(buf: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), NoSpace> {
    let end = at.checked_add(bytes.len()).ok_or(NoSpace)?;
    buf.get_mut(at..end).ok_or(NoSpace)?.copy_from_slice(bytes);
    Ok(())
}

/// Writes a big-endian u16 at `at`.
///
/// # Panics
/// If `b` is shorter than `at + 2`: for builders that sized the buffer.
#[inline]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Writes a big-endian u32 at `at`.
///
/// # Panics
/// If `b` is shorter than `at + 4`: for builders that sized the buffer.
#[inline]
pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_give_zeros_past_the_end() {
        let b = [0x12, 0x34, 0x56, 0x78, 0x9a];
        assert_eq!(be16(&b, 0), 0x1234);
        assert_eq!(be16(&b, 3), 0x789a);
        assert_eq!(be32(&b, 1), 0x3456_789a);
        // Not all of it there: zeros, not a partial read or a panic.
        assert_eq!(be16(&b, 4), 0);
        assert_eq!(be32(&b, 2), 0);
        assert_eq!(array_at::<2>(&b, usize::MAX), [0, 0]);
        assert_eq!(array_at::<5>(&b, 0), b);
        assert_eq!(byte_at(&b, 4), 0x9a);
        assert_eq!(byte_at(&b, 5), 0);
    }

    #[test]
    fn put_writes_all_or_nothing() {
        let mut b = [0u8; 4];
        assert_eq!(put(&mut b, 1, &[1, 2, 3]), Ok(()));
        assert_eq!(b, [0, 1, 2, 3]);
        assert_eq!(put(&mut b, 2, &[9, 9, 9]), Err(NoSpace));
        assert_eq!(put(&mut b, usize::MAX, &[9]), Err(NoSpace));
        assert_eq!(b, [0, 1, 2, 3]);
        assert_eq!(put(&mut b, 4, &[]), Ok(()));
    }

    #[test]
    fn mac_display() {
        let mac = [0x52, 0x54, 0x00, 0x0a, 0xbc, 0xff];
        assert_eq!(DisplayMac(&mac).to_string(), "52:54:00:0a:bc:ff");
    }
}
