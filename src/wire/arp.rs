//! ARP for IPv4 over Ethernet (RFC 826): the only form a guest sends us.

use super::{be16, put16, WireError};
use std::net::Ipv4Addr;

pub const PACKET_LEN: usize = 28;
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

/// The validated meaning of an Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub op: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

fn mac_at(b: &[u8], at: usize) -> [u8; 6] {
    let mut m = [0; 6];
    m.copy_from_slice(&b[at..at + 6]);
    m
}

fn ip_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

impl Repr {
    /// Parses an ARP packet (the Ethernet payload; padding after it is fine).
    pub fn parse(b: &[u8]) -> Result<Repr, WireError> {
        if b.len() < 8 {
            return Err(WireError::Truncated);
        }
        // Hardware Ethernet (1), protocol IPv4, address lengths 6 and 4.
        if be16(b, 0) != 1 || be16(b, 2) != 0x0800 || b[4] != 6 || b[5] != 4 {
            return Err(WireError::Unsupported);
        }
        if b.len() < PACKET_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Repr {
            op: be16(b, 6),
            sender_mac: mac_at(b, 8),
            sender_ip: ip_at(b, 14),
            target_mac: mac_at(b, 18),
            target_ip: ip_at(b, 24),
        })
    }

    /// Writes the packet into `buf[..PACKET_LEN]`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`PACKET_LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        put16(buf, 0, 1);
        put16(buf, 2, 0x0800);
        buf[4] = 6;
        buf[5] = 4;
        put16(buf, 6, self.op);
        buf[8..14].copy_from_slice(&self.sender_mac);
        buf[14..18].copy_from_slice(&self.sender_ip.octets());
        buf[18..24].copy_from_slice(&self.target_mac);
        buf[24..28].copy_from_slice(&self.target_ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A request from 52:54:00:12:34:56 (10.0.2.15): who has 10.0.2.2?
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype, ptype, hlen, plen, op
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 0, 2, 15, // sender
        0, 0, 0, 0, 0, 0, 10, 0, 2, 2, // target
    ];

    #[test]
    fn round_trip() {
        let r = Repr::parse(&REQUEST).unwrap();
        assert_eq!(r.op, OP_REQUEST);
        assert_eq!(r.sender_ip, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(r.target_ip, Ipv4Addr::new(10, 0, 2, 2));
        let mut out = [0u8; 28];
        r.emit(&mut out);
        assert_eq!(out, REQUEST);
    }

    #[test]
    fn malformed() {
        for len in 0..PACKET_LEN {
            assert!(Repr::parse(&REQUEST[..len]).is_err(), "len {len}");
        }
        let mut bad = REQUEST;
        bad[4] = 8;
        assert_eq!(Repr::parse(&bad), Err(WireError::Unsupported));
        let mut bad = REQUEST;
        bad[2] = 0x86;
        assert_eq!(Repr::parse(&bad), Err(WireError::Unsupported));
    }
}
