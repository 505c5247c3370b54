//! UDP headers (RFC 768, RFC 8200 section 8.1 for IPv6's mandatory checksum).

use super::{be16, put16, WireError};

pub const HEADER_LEN: usize = 8;

/// A checked view of a UDP datagram: length field verified against the
/// buffer, payload trimmed to it. The checksum is verified by the caller
/// with the pseudo-header (see [`crate::wire::checksum`]).
#[derive(Clone, Copy, Debug)]
pub struct Datagram<'a>(&'a [u8]);

impl<'a> Datagram<'a> {
    pub fn new_checked(b: &'a [u8]) -> Result<Self, WireError> {
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let len = usize::from(be16(b, 4));
        if len < HEADER_LEN {
            return Err(WireError::BadLength);
        }
        if len > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(Datagram(&b[..len]))
    }
    pub fn src_port(&self) -> u16 {
        be16(self.0, 0)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.0, 2)
    }
    pub fn checksum(&self) -> u16 {
        be16(self.0, 6)
    }
    pub fn payload(&self) -> &'a [u8] {
        &self.0[HEADER_LEN..]
    }
    /// The whole datagram (header and payload), for checksum verification.
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// Writes the 8-byte header (checksum zero: the frame builder fills it).
///
/// # Panics
/// If `buf` is shorter than [`HEADER_LEN`].
pub fn emit(buf: &mut [u8], src_port: u16, dst_port: u16, payload_len: usize) {
    put16(buf, 0, src_port);
    put16(buf, 2, dst_port);
    put16(buf, 4, (HEADER_LEN + payload_len).min(usize::from(u16::MAX)) as u16);
    put16(buf, 6, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_emit_malformed() {
        let mut b = vec![0u8; 12];
        emit(&mut b, 68, 67, 4);
        b[8..].copy_from_slice(b"abcd");
        b.extend_from_slice(&[0; 6]); // trailing bytes beyond the UDP length
        let d = Datagram::new_checked(&b).unwrap();
        assert_eq!((d.src_port(), d.dst_port()), (68, 67));
        assert_eq!(d.payload(), b"abcd");
        for len in 0..12 {
            assert!(Datagram::new_checked(&b[..len]).is_err());
        }
        put16(&mut b, 4, 7);
        assert_eq!(Datagram::new_checked(&b).unwrap_err(), WireError::BadLength);
    }
}
