//! epoll tokens: what an event is about, found without asking the kernel.
//!
//! A token packs a kind (high 8 bits) and a table index (low 32 bits), with
//! a generation in between (bits 32..56) so that an event for a flow slot
//! that was freed and reused in the same batch is recognised as stale.

/// What an fd registered in the instance's epoll set is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The guest attachment's data fd (stream socket or tap).
    Backend = 1,
    /// The UNIX socket listening for a guest.
    BackendListen = 2,
    /// A TCP connection socket (index into the TCP flow table).
    TcpConn = 3,
    /// A TCP listening socket for a forwarded port.
    TcpListen = 4,
    /// A UDP flow's socket.
    UdpFlow = 5,
    /// A UDP socket bound to a forwarded port.
    UdpListen = 6,
    /// An ICMP/ICMPv6 ping socket.
    Icmp = 7,
    /// The nested epoll set of host sockets (see `engine`).
    HostSet = 8,
    /// The eventfd the host signals when it can take frames again.
    Wake = 9,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub gen: u32,
    pub idx: u32,
}

impl Token {
    pub fn new(kind: Kind, idx: u32) -> Token {
        Token { kind, gen: 0, idx }
    }
    pub fn with_gen(kind: Kind, idx: u32, gen: u32) -> Token {
        Token { kind, gen: gen & 0xff_ffff, idx }
    }
    pub fn to_u64(self) -> u64 {
        (self.kind as u64) << 56 | u64::from(self.gen & 0xff_ffff) << 32 | u64::from(self.idx)
    }
    pub fn from_u64(v: u64) -> Option<Token> {
        let kind = match (v >> 56) as u8 {
            1 => Kind::Backend,
            2 => Kind::BackendListen,
            3 => Kind::TcpConn,
            4 => Kind::TcpListen,
            5 => Kind::UdpFlow,
            6 => Kind::UdpListen,
            7 => Kind::Icmp,
            8 => Kind::HostSet,
            9 => Kind::Wake,
            _ => return None,
        };
        Some(Token { kind, gen: ((v >> 32) & 0xff_ffff) as u32, idx: v as u32 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let t = Token::with_gen(Kind::TcpConn, 0xdead_beef, 0x12_3456);
        assert_eq!(Token::from_u64(t.to_u64()), Some(t));
        assert_eq!(Token::from_u64(0), None);
    }
}
