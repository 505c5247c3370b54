//! ICMP (RFC 792) and ICMPv6 (RFC 4443) messages that we translate: echo
//! requests/replies, and the error messages we generate for the guest.
//! Neighbor Discovery (also ICMPv6) lives in `ndp`.

use super::{be16, put16, WireError};

pub const HEADER_LEN: usize = 8;

pub const V4_ECHO_REPLY: u8 = 0;
pub const V4_DEST_UNREACH: u8 = 3;
pub const V4_ECHO_REQUEST: u8 = 8;
pub const V4_TIME_EXCEEDED: u8 = 11;
pub const V6_DEST_UNREACH: u8 = 1;
pub const V6_PACKET_TOO_BIG: u8 = 2;
pub const V6_TIME_EXCEEDED: u8 = 3;
pub const V6_ECHO_REQUEST: u8 = 128;
pub const V6_ECHO_REPLY: u8 = 129;

/// A checked view of an ICMP/ICMPv6 message (8-byte header at least).
#[derive(Clone, Copy, Debug)]
pub struct Message<'a>(&'a [u8]);

impl<'a> Message<'a> {
    pub fn new_checked(b: &'a [u8]) -> Result<Self, WireError> {
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Message(b))
    }
    pub fn msg_type(&self) -> u8 {
        self.0[0]
    }
    pub fn code(&self) -> u8 {
        self.0[1]
    }
    /// Echo identifier.
    pub fn echo_id(&self) -> u16 {
        be16(self.0, 4)
    }
    /// Echo sequence number.
    pub fn echo_seq(&self) -> u16 {
        be16(self.0, 6)
    }
    /// Bytes after the 8-byte header (echo data, or the quoted packet).
    pub fn body(&self) -> &'a [u8] {
        &self.0[HEADER_LEN..]
    }
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// Writes an echo header (checksum zero: the frame builder fills it).
///
/// # Panics
/// If `buf` is shorter than [`HEADER_LEN`].
pub fn emit_echo(buf: &mut [u8], msg_type: u8, id: u16, seq: u16) {
    buf[0] = msg_type;
    buf[1] = 0;
    put16(buf, 2, 0);
    put16(buf, 4, id);
    put16(buf, 6, seq);
}

/// Writes an error header (type, code, the 4-byte field: unused, or the
/// MTU for "fragmentation needed"/"packet too big").
///
/// # Panics
/// If `buf` is shorter than [`HEADER_LEN`].
pub fn emit_error(buf: &mut [u8], msg_type: u8, code: u8, info: u32) {
    buf[0] = msg_type;
    buf[1] = code;
    put16(buf, 2, 0);
    super::put32(buf, 4, info);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo() {
        let mut b = [0u8; 12];
        emit_echo(&mut b, V4_ECHO_REQUEST, 0x1234, 7);
        b[8..].copy_from_slice(b"ping");
        let m = Message::new_checked(&b).unwrap();
        assert_eq!((m.msg_type(), m.code(), m.echo_id(), m.echo_seq()), (8, 0, 0x1234, 7));
        assert_eq!(m.body(), b"ping");
        for len in 0..HEADER_LEN {
            assert_eq!(Message::new_checked(&b[..len]).unwrap_err(), WireError::Truncated);
        }
    }
}
