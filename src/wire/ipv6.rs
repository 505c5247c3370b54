//! IPv6 headers (RFC 8200). Hop-by-hop, routing and destination options
//! headers are skipped to find the upper layer; fragments are refused.

use super::{be16, put16, WireError};
use std::net::Ipv6Addr;

pub const HEADER_LEN: usize = 40;
pub const NEXT_TCP: u8 = 6;
pub const NEXT_UDP: u8 = 17;
pub const NEXT_ICMPV6: u8 = 58;
const NEXT_HOP_BY_HOP: u8 = 0;
const NEXT_ROUTING: u8 = 43;
const NEXT_FRAGMENT: u8 = 44;
const NEXT_DEST_OPTS: u8 = 60;
/// At most this many extension headers are walked (a guest could chain many).
const MAX_EXT_HEADERS: usize = 8;
pub const DEFAULT_HOP_LIMIT: u8 = 64;

/// A checked view of an IPv6 packet, its upper-layer protocol found.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    bytes: &'a [u8],
    next_header: u8,
    l4_offset: usize,
}

impl<'a> Packet<'a> {
    pub fn new_checked(b: &'a [u8]) -> Result<Self, WireError> {
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(WireError::Malformed);
        }
        let total = HEADER_LEN + usize::from(be16(b, 4));
        if total > b.len() {
            return Err(WireError::Truncated);
        }
        let bytes = &b[..total];
        let mut next = bytes[6];
        let mut off = HEADER_LEN;
        for _ in 0..MAX_EXT_HEADERS {
            match next {
                NEXT_HOP_BY_HOP | NEXT_ROUTING | NEXT_DEST_OPTS => {
                    if off + 8 > bytes.len() {
                        return Err(WireError::Truncated);
                    }
                    let len = (usize::from(bytes[off + 1]) + 1) * 8;
                    next = bytes[off];
                    off += len;
                    if off > bytes.len() {
                        return Err(WireError::BadLength);
                    }
                }
                NEXT_FRAGMENT => return Err(WireError::Unsupported),
                _ => return Ok(Packet { bytes, next_header: next, l4_offset: off }),
            }
        }
        Err(WireError::Unsupported)
    }
    pub fn hop_limit(&self) -> u8 {
        self.bytes[7]
    }
    /// The upper-layer protocol (after extension headers).
    pub fn next_header(&self) -> u8 {
        self.next_header
    }
    pub fn src(&self) -> Ipv6Addr {
        addr_at(self.bytes, 8)
    }
    pub fn dst(&self) -> Ipv6Addr {
        addr_at(self.bytes, 24)
    }
    /// The upper-layer payload.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.l4_offset..]
    }
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

fn addr_at(b: &[u8], at: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(a)
}

/// Writes a 40-byte header into `buf[..40]`.
///
/// # Panics
/// If `buf` is shorter than [`HEADER_LEN`].
pub fn emit(buf: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, payload_len: usize, hop_limit: u8) {
    buf[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
    put16(buf, 4, payload_len.min(usize::from(u16::MAX)) as u16);
    buf[6] = next_header;
    buf[7] = hop_limit;
    buf[8..24].copy_from_slice(&src.octets());
    buf[24..40].copy_from_slice(&dst.octets());
}

/// The Ethernet multicast address for an IPv6 multicast address (RFC 2464).
pub fn multicast_mac(dst: Ipv6Addr) -> [u8; 6] {
    let o = dst.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// Whether an address is link-local unicast (fe80::/10).
pub fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN + payload.len()];
        emit(&mut b, "fe80::1".parse().unwrap(), "ff02::2".parse().unwrap(), next, payload.len(), 255);
        b[HEADER_LEN..].copy_from_slice(payload);
        b
    }

    #[test]
    fn round_trip() {
        let mut b = sample(NEXT_ICMPV6, &[133, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&[0; 4]);
        let p = Packet::new_checked(&b).unwrap();
        assert_eq!(p.src(), "fe80::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst(), "ff02::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.next_header(), NEXT_ICMPV6);
        assert_eq!(p.hop_limit(), 255);
        assert_eq!(p.payload().len(), 8);
        assert_eq!(multicast_mac(p.dst()), [0x33, 0x33, 0, 0, 0, 2]);
    }

    #[test]
    fn extension_headers() {
        // Hop-by-hop (8 bytes, next = ICMPv6) as in an MLD report.
        let mut ext = vec![NEXT_ICMPV6, 0, 5, 2, 0, 0, 1, 0];
        ext.extend_from_slice(&[143, 0, 0, 0]);
        let b = sample(NEXT_HOP_BY_HOP, &ext);
        let p = Packet::new_checked(&b).unwrap();
        assert_eq!(p.next_header(), NEXT_ICMPV6);
        assert_eq!(p.payload(), &[143, 0, 0, 0]);
        // A length running past the end.
        let b = sample(NEXT_HOP_BY_HOP, &[NEXT_ICMPV6, 3, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Packet::new_checked(&b).unwrap_err(), WireError::BadLength);
        // Fragments are refused.
        let b = sample(NEXT_FRAGMENT, &[NEXT_UDP, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(Packet::new_checked(&b).unwrap_err(), WireError::Unsupported);
        // A chain longer than we walk.
        let mut chain = Vec::new();
        for _ in 0..12 {
            chain.extend_from_slice(&[NEXT_DEST_OPTS, 0, 1, 4, 0, 0, 0, 0]);
        }
        let b = sample(NEXT_DEST_OPTS, &chain);
        assert_eq!(Packet::new_checked(&b).unwrap_err(), WireError::Unsupported);
    }

    #[test]
    fn malformed() {
        let b = sample(NEXT_UDP, &[1, 2, 3, 4, 5, 6, 7, 8]);
        for len in 0..b.len() {
            assert!(Packet::new_checked(&b[..len]).is_err(), "len {len}");
        }
        let mut v = b;
        v[0] = 0x40;
        assert_eq!(Packet::new_checked(&v).unwrap_err(), WireError::Malformed);
    }
}
