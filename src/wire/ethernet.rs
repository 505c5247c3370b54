//! Ethernet II frames (IEEE 802.3 with EtherType): 14-byte header.
//! 802.1Q VLAN tags are not handled: such frames are dropped as unsupported.

use super::{be16, put16, WireError};

pub const HEADER_LEN: usize = 14;
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// EtherType code points we act on; anything else is `Unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EtherType {
    Ipv4,
    Arp,
    Ipv6,
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            n => EtherType::Unknown(n),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(t: EtherType) -> u16 {
        match t {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Unknown(n) => n,
        }
    }
}

/// A checked view of an Ethernet frame.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a>(&'a [u8]);

impl<'a> Frame<'a> {
    pub fn new_checked(b: &'a [u8]) -> Result<Self, WireError> {
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Frame(b))
    }
    pub fn dst(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.0[0..6]);
        m
    }
    pub fn src(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.0[6..12]);
        m
    }
    pub fn ethertype(&self) -> EtherType {
        be16(self.0, 12).into()
    }
    pub fn payload(&self) -> &'a [u8] {
        &self.0[HEADER_LEN..]
    }
}

/// Writes an Ethernet header into `buf[..14]`.
///
/// # Panics
/// If `buf` is shorter than [`HEADER_LEN`] (callers size their buffers).
pub fn emit(buf: &mut [u8], dst: [u8; 6], src: [u8; 6], ethertype: EtherType) {
    buf[0..6].copy_from_slice(&dst);
    buf[6..12].copy_from_slice(&src);
    put16(buf, 12, ethertype.into());
}

/// Whether a MAC address is unicast (group bit clear) and not all zeroes.
pub fn is_unicast(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 0 && *mac != [0; 6]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_emit() {
        let bytes = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x06, 0xaa,
        ];
        let f = Frame::new_checked(&bytes).unwrap();
        assert_eq!(f.dst(), BROADCAST);
        assert_eq!(f.src(), [0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        assert_eq!(f.ethertype(), EtherType::Arp);
        assert_eq!(f.payload(), &[0xaa]);
        let mut out = [0u8; 14];
        emit(&mut out, f.dst(), f.src(), EtherType::Arp);
        assert_eq!(&out[..], &bytes[..14]);
        for len in 0..HEADER_LEN {
            assert_eq!(Frame::new_checked(&bytes[..len]).unwrap_err(), WireError::Truncated);
        }
        assert_eq!(Frame::new_checked(&bytes[..14]).unwrap().ethertype(), EtherType::Arp);
        assert!(is_unicast(&f.src()) && !is_unicast(&f.dst()));
    }
}
