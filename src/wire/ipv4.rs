//! IPv4 headers (RFC 791). Options are skipped, not interpreted; fragments
//! are refused (a guest with MTU <= ours has no reason to fragment).

use super::checksum;
use super::{be16, put16, WireError};
use std::net::Ipv4Addr;

pub const HEADER_LEN: usize = 20;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
/// Default TTL of packets we build.
pub const DEFAULT_TTL: u8 = 64;

/// A checked view of an IPv4 packet: header verified, payload trimmed to
/// the total length (Ethernet padding removed).
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    bytes: &'a [u8],
    header_len: usize,
}

impl<'a> Packet<'a> {
    pub fn new_checked(b: &'a [u8]) -> Result<Self, WireError> {
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[0] >> 4 != 4 {
            return Err(WireError::Malformed);
        }
        let header_len = usize::from(b[0] & 0xf) * 4;
        let total = usize::from(be16(b, 2));
        if header_len < HEADER_LEN || total < header_len {
            return Err(WireError::BadLength);
        }
        if total > b.len() {
            return Err(WireError::Truncated);
        }
        if checksum::checksum(&b[..header_len]) != 0 {
            return Err(WireError::BadChecksum);
        }
        Ok(Packet { bytes: &b[..total], header_len })
    }
    pub fn header_len(&self) -> usize {
        self.header_len
    }
    pub fn ttl(&self) -> u8 {
        self.bytes[8]
    }
    pub fn protocol(&self) -> u8 {
        self.bytes[9]
    }
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.bytes[12], self.bytes[13], self.bytes[14], self.bytes[15])
    }
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.bytes[16], self.bytes[17], self.bytes[18], self.bytes[19])
    }
    /// Whether this is a fragment (more-fragments set, or an offset).
    pub fn is_fragment(&self) -> bool {
        be16(self.bytes, 6) & 0x3fff != 0
    }
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.header_len..]
    }
    /// The whole packet, header included (for ICMP error quotes).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// Writes a 20-byte header for `payload_len` bytes of payload, with its
/// checksum, into `buf[..20]`. Don't-fragment is set, as for any path-MTU
/// aware sender.
///
/// # Panics
/// If `buf` is shorter than [`HEADER_LEN`].
pub fn emit(buf: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload_len: usize, ttl: u8) {
    buf[0] = 0x45;
    buf[1] = 0;
    put16(buf, 2, (HEADER_LEN + payload_len).min(usize::from(u16::MAX)) as u16);
    put16(buf, 4, 0);
    put16(buf, 6, 0x4000);
    buf[8] = ttl;
    buf[9] = proto;
    put16(buf, 10, 0);
    buf[12..16].copy_from_slice(&src.octets());
    buf[16..20].copy_from_slice(&dst.octets());
    let c = checksum::checksum(&buf[..HEADER_LEN]);
    put16(buf, 10, c);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN + payload.len()];
        emit(&mut b, Ipv4Addr::new(10, 0, 2, 15), Ipv4Addr::new(10, 0, 2, 2), PROTO_UDP, payload.len(), 64);
        b[HEADER_LEN..].copy_from_slice(payload);
        b
    }

    #[test]
    fn round_trip_and_padding() {
        let mut b = sample(b"hello");
        b.extend_from_slice(&[0; 20]); // Ethernet padding
        let p = Packet::new_checked(&b).unwrap();
        assert_eq!(p.src(), Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(p.dst(), Ipv4Addr::new(10, 0, 2, 2));
        assert_eq!(p.protocol(), PROTO_UDP);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.payload(), b"hello");
        assert!(!p.is_fragment());
    }

    #[test]
    fn malformed() {
        let b = sample(b"hello");
        for len in 0..b.len() {
            assert!(Packet::new_checked(&b[..len]).is_err(), "len {len}");
        }
        let mut v = b.clone();
        v[0] = 0x65;
        assert_eq!(Packet::new_checked(&v).unwrap_err(), WireError::Malformed);
        let mut ihl = b.clone();
        ihl[0] = 0x44;
        assert_eq!(Packet::new_checked(&ihl).unwrap_err(), WireError::BadLength);
        let mut total = b.clone();
        put16(&mut total, 2, 10);
        assert_eq!(Packet::new_checked(&total).unwrap_err(), WireError::BadLength);
        let mut csum = b.clone();
        csum[8] = 1;
        assert_eq!(Packet::new_checked(&csum).unwrap_err(), WireError::BadChecksum);
        let mut frag = b;
        put16(&mut frag, 6, 0x2000);
        put16(&mut frag, 10, 0);
        let c = checksum::checksum(&frag[..20]);
        put16(&mut frag, 10, c);
        assert!(Packet::new_checked(&frag).unwrap().is_fragment());
    }
}
