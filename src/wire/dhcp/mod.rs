//! DHCPv4 / BOOTP messages (RFC 2131, RFC 2132): a zero-copy view, a parsed
//! representation, and an option encoder.
//!
//! # Theory of operation
//!
//! A DHCP message is a BOOTP message (RFC 951): a fixed 236-byte header
//! (`op` .. `file`, RFC 2131 section 2, figure 1), the magic cookie
//! 99.130.83.99 (RFC 2131 section 3), then a list of options, each a code
//! byte, a length byte and that many data bytes, except PAD (0, one byte,
//! skipped) and END (255, one byte, closes the list; RFC 2132 section 3).
//!
//! * [`Packet`] is the byte view. [`Packet::new_checked`] validates the
//!   fixed header length and the cookie once; afterwards no getter can
//!   panic (getters never index anyway: a short buffer reads as zeros).
//! * [`OptionsIter`] walks the options: PAD skipped, END stops, an option
//!   whose length byte or data would run past the end is an error, and so is
//!   a list that ends without END. Bytes after END are padding and ignored.
//! * [`Repr`] is the validated meaning: header fields plus the options a
//!   DHCP server reads (53, 50, 54, 55, 57, 61) and sends (1, 3, 6, 15, 26,
//!   51, 58, 59, 119). Data is borrowed from the frame, never copied.
//!   Options of a fixed size with another size are errors; unknown options
//!   are skipped.
//! * [`OptionWriter`] appends options to a reply, splitting any option
//!   longer than 255 bytes into consecutive instances of the same code
//!   (RFC 3396), and never writes past the slice it was given.
//!
//! Left out: option overload (52: `sname`/`file` holding options) is not
//! honoured, those fields are read as opaque; a repeated option is not
//! concatenated on parse (RFC 3396), the first instance wins; domain search
//! lists (119, RFC 3397) are encoded without name compression and not
//! decoded (see [`super::dns`]). Mirrors the message layer of passt's
//! `dhcp.c`.

use core::fmt;
use std::net::Ipv4Addr;

use super::{array_at, be16, be32, byte_at, put, DisplayMac};
use options::{encoded_len_in_chunks, MAX_ADDRESS_LIST_DATA};

pub use super::dns::DomainList;
pub use options::{
    encoded_option_len, DhcpOption, Ipv4List, OptionSink, OptionWriter, OptionsIter,
};

mod options;
#[cfg(test)]
mod tests;

/// Length of the fixed BOOTP header, `op` through `file` (RFC 2131 figure 1).
pub const FIXED_HEADER_LEN: usize = 236;
/// The magic cookie 99.130.83.99 opening the options (RFC 2131 section 3).
pub const MAGIC_COOKIE: u32 = 0x6382_5363;
/// Offset of the first option: the fixed header plus the cookie.
pub const OPTIONS_OFFSET: usize = 240;
/// Smallest BOOTP message some clients accept (RFC 1542 section 2.1): the
/// 236-byte header plus the 64-byte `vend` field of RFC 951.
pub const MIN_BOOTP_LEN: usize = 300;
/// UDP port of DHCP servers (RFC 2131 section 4.1).
pub const SERVER_PORT: u16 = 67;
/// UDP port of DHCP clients (RFC 2131 section 4.1).
pub const CLIENT_PORT: u16 = 68;
/// The only defined bit of `flags` (RFC 2131 figure 2).
const FLAG_BROADCAST: u16 = 0x8000;

/// Byte ranges of the fixed header (RFC 2131 figure 1).
mod field {
    use core::ops::Range;

    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    pub const HOPS: usize = 3;
    pub const XID: Range<usize> = 4..8;
    pub const SECS: Range<usize> = 8..10;
    pub const FLAGS: Range<usize> = 10..12;
    pub const CIADDR: Range<usize> = 12..16;
    pub const YIADDR: Range<usize> = 16..20;
    pub const SIADDR: Range<usize> = 20..24;
    pub const GIADDR: Range<usize> = 24..28;
    pub const CHADDR: Range<usize> = 28..44;
    /// `sname` and `file`, zeroed in replies.
    pub const SNAME_FILE: Range<usize> = 44..236;
    pub const MAGIC: Range<usize> = 236..240;
}

/// Option codes used here (RFC 2132, RFC 3397).
pub mod option {
    /// Padding, a single byte without length (RFC 2132 section 3.1).
    pub const PAD: u8 = 0;
    /// Subnet mask, 4 bytes (RFC 2132 section 3.3).
    pub const SUBNET_MASK: u8 = 1;
    /// Routers, a list of addresses (RFC 2132 section 3.5).
    pub const ROUTER: u8 = 3;
    /// DNS servers, a list of addresses (RFC 2132 section 3.8).
    pub const DNS_SERVERS: u8 = 6;
    /// Host name (RFC 2132 section 3.14); clients ask, we do not answer.
    pub const HOST_NAME: u8 = 12;
    /// Domain name, text (RFC 2132 section 3.17).
    pub const DOMAIN_NAME: u8 = 15;
    /// Interface MTU, 2 bytes, at least 68 (RFC 2132 section 5.1).
    pub const INTERFACE_MTU: u8 = 26;
    /// Requested IP address, 4 bytes (RFC 2132 section 9.1).
    pub const REQUESTED_IP: u8 = 50;
    /// Lease time in seconds, 4 bytes (RFC 2132 section 9.2).
    pub const LEASE_TIME: u8 = 51;
    /// DHCP message type, 1 byte (RFC 2132 section 9.6).
    pub const MESSAGE_TYPE: u8 = 53;
    /// Server identifier, 4 bytes (RFC 2132 section 9.7).
    pub const SERVER_ID: u8 = 54;
    /// Parameter request list, option codes (RFC 2132 section 9.8).
    pub const PARAMETER_REQUEST_LIST: u8 = 55;
    /// Maximum DHCP message size, 2 bytes (RFC 2132 section 9.10).
    pub const MAX_MESSAGE_SIZE: u8 = 57;
    /// Renewal (T1) time in seconds, 4 bytes (RFC 2132 section 9.11).
    pub const RENEWAL_TIME: u8 = 58;
    /// Rebinding (T2) time in seconds, 4 bytes (RFC 2132 section 9.12).
    pub const REBINDING_TIME: u8 = 59;
    /// Client identifier, opaque (RFC 2132 section 9.14).
    pub const CLIENT_ID: u8 = 61;
    /// Domain search list, DNS wire names (RFC 3397).
    pub const DOMAIN_SEARCH: u8 = 119;
    /// End of the options, a single byte (RFC 2132 section 3.2).
    pub const END: u8 = 255;
}

/// What can be wrong with a DHCP message, or with writing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the 236-byte fixed BOOTP header.
    Truncated,
    /// The message ends inside the 4-byte magic cookie.
    MissingMagicCookie,
    /// The four bytes after the fixed header are not 99.130.83.99.
    BadMagicCookie,
    /// An option's length byte or data runs past the end of the message.
    OptionOverrun {
        /// Code of the offending option.
        code: u8,
    },
    /// The options run to the end of the message without an END option.
    MissingEnd,
    /// A known option has a length its definition does not allow.
    BadOptionLength {
        /// Code of the offending option.
        code: u8,
        /// Its length byte.
        len: u8,
    },
    /// No message type option (53): a plain BOOTP message.
    MissingMessageType,
    /// The output buffer cannot hold what was to be written.
    NoSpace,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => write!(f, "shorter than the BOOTP header"),
            Error::MissingMagicCookie => write!(f, "truncated magic cookie"),
            Error::BadMagicCookie => write!(f, "bad magic cookie"),
            Error::OptionOverrun { code } => write!(f, "option {code} runs past the end"),
            Error::MissingEnd => write!(f, "options not terminated by END"),
            Error::BadOptionLength { code, len } => {
                write!(f, "option {code} has invalid length {len}")
            }
            Error::MissingMessageType => write!(f, "no DHCP message type (plain BOOTP)"),
            Error::NoSpace => write!(f, "output buffer too small"),
        }
    }
}

impl std::error::Error for Error {}

/// Result of this module's operations.
pub type Result<T> = core::result::Result<T, Error>;

/// BOOTP `op` field (RFC 951).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// 1: client to server.
    Request,
    /// 2: server to client.
    Reply,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for OpCode {
    fn from(value: u8) -> Self {
        match value {
            1 => OpCode::Request,
            2 => OpCode::Reply,
            other => OpCode::Unknown(other),
        }
    }
}

impl From<OpCode> for u8 {
    fn from(value: OpCode) -> Self {
        match value {
            OpCode::Request => 1,
            OpCode::Reply => 2,
            OpCode::Unknown(other) => other,
        }
    }
}

/// DHCP message type, option 53 (RFC 2132 section 9.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// 1: client looks for servers.
    Discover,
    /// 2: server offers an address.
    Offer,
    /// 3: client asks for (or renews) an address.
    Request,
    /// 4: client found the address in use.
    Decline,
    /// 5: server confirms.
    Ack,
    /// 6: server refuses.
    Nak,
    /// 7: client gives the address back.
    Release,
    /// 8: client has an address, wants the other parameters.
    Inform,
    /// Anything else (lease query and later extensions).
    Unknown(u8),
}

impl From<u8> for MessageType {
    fn from(value: u8) -> Self {
        match value {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            4 => MessageType::Decline,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            7 => MessageType::Release,
            8 => MessageType::Inform,
            other => MessageType::Unknown(other),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(value: MessageType) -> Self {
        match value {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
            MessageType::Unknown(other) => other,
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageType::Discover => write!(f, "DISCOVER"),
            MessageType::Offer => write!(f, "OFFER"),
            MessageType::Request => write!(f, "REQUEST"),
            MessageType::Decline => write!(f, "DECLINE"),
            MessageType::Ack => write!(f, "ACK"),
            MessageType::Nak => write!(f, "NAK"),
            MessageType::Release => write!(f, "RELEASE"),
            MessageType::Inform => write!(f, "INFORM"),
            MessageType::Unknown(n) => write!(f, "type-{n}"),
        }
    }
}

/// A zero-copy view of a BOOTP/DHCP message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it: for building replies in a reused
    /// buffer. Getters on a short buffer read zeros rather than panic.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a received buffer after [`Packet::check_len`].
    ///
    /// # Errors
    /// As [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the fixed header and the magic cookie are present.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::MissingMagicCookie`] or
    /// [`Error::BadMagicCookie`].
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < FIXED_HEADER_LEN {
            Err(Error::Truncated)
        } else if len < OPTIONS_OFFSET {
            Err(Error::MissingMagicCookie)
        } else if self.magic_cookie() != MAGIC_COOKIE {
            Err(Error::BadMagicCookie)
        } else {
            Ok(())
        }
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn addr(&self, range: core::ops::Range<usize>) -> Ipv4Addr {
        Ipv4Addr::from(be32(self.bytes(), range.start))
    }

    /// `op`: request or reply.
    pub fn op(&self) -> OpCode {
        OpCode::from(byte_at(self.bytes(), field::OP))
    }

    /// `htype`: hardware address type (1: Ethernet).
    pub fn htype(&self) -> u8 {
        byte_at(self.bytes(), field::HTYPE)
    }

    /// `hlen`: hardware address length (6 for Ethernet).
    pub fn hlen(&self) -> u8 {
        byte_at(self.bytes(), field::HLEN)
    }

    /// `hops`: relay agent hop count.
    pub fn hops(&self) -> u8 {
        byte_at(self.bytes(), field::HOPS)
    }

    /// `xid`: transaction identifier chosen by the client.
    pub fn xid(&self) -> u32 {
        be32(self.bytes(), field::XID.start)
    }

    /// `secs`: seconds since the client began.
    pub fn secs(&self) -> u16 {
        be16(self.bytes(), field::SECS.start)
    }

    /// `flags`, all 16 bits.
    pub fn flags(&self) -> u16 {
        be16(self.bytes(), field::FLAGS.start)
    }

    /// The broadcast bit of `flags`: the client cannot receive unicast
    /// before it is configured.
    pub fn broadcast(&self) -> bool {
        self.flags() & FLAG_BROADCAST != 0
    }

    /// `ciaddr`: the client's current address, if it has one.
    pub fn ciaddr(&self) -> Ipv4Addr {
        self.addr(field::CIADDR)
    }

    /// `yiaddr`: the address given to the client.
    pub fn yiaddr(&self) -> Ipv4Addr {
        self.addr(field::YIADDR)
    }

    /// `siaddr`: next server for bootstrap.
    pub fn siaddr(&self) -> Ipv4Addr {
        self.addr(field::SIADDR)
    }

    /// `giaddr`: relay agent address.
    pub fn giaddr(&self) -> Ipv4Addr {
        self.addr(field::GIADDR)
    }

    /// `chaddr`: the 16-byte client hardware address field.
    pub fn chaddr(&self) -> [u8; 16] {
        array_at(self.bytes(), field::CHADDR.start)
    }

    /// The first six bytes of `chaddr`: the client's MAC when `htype` is 1
    /// and `hlen` is 6.
    pub fn client_mac(&self) -> [u8; 6] {
        array_at(self.bytes(), field::CHADDR.start)
    }

    /// The four bytes after the fixed header.
    pub fn magic_cookie(&self) -> u32 {
        be32(self.bytes(), field::MAGIC.start)
    }

    /// Iterates over the options (empty, with an error, if the buffer is
    /// shorter than the header).
    pub fn options(&self) -> OptionsIter<'_> {
        OptionsIter::new(self.bytes().get(OPTIONS_OFFSET..).unwrap_or(&[]))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes `value` at `at`; a write past the end is dropped (emitters
    /// check the length first, so this never happens on their path).
    fn set_bytes(&mut self, at: usize, value: &[u8]) {
        let _ = put(self.buffer.as_mut(), at, value);
    }

    /// Sets `op`.
    pub fn set_op(&mut self, value: OpCode) {
        self.set_bytes(field::OP, &[u8::from(value)]);
    }

    /// Sets `htype`.
    pub fn set_htype(&mut self, value: u8) {
        self.set_bytes(field::HTYPE, &[value]);
    }

    /// Sets `hlen`.
    pub fn set_hlen(&mut self, value: u8) {
        self.set_bytes(field::HLEN, &[value]);
    }

    /// Sets `hops`.
    pub fn set_hops(&mut self, value: u8) {
        self.set_bytes(field::HOPS, &[value]);
    }

    /// Sets `xid`.
    pub fn set_xid(&mut self, value: u32) {
        self.set_bytes(field::XID.start, &value.to_be_bytes());
    }

    /// Sets `secs`.
    pub fn set_secs(&mut self, value: u16) {
        self.set_bytes(field::SECS.start, &value.to_be_bytes());
    }

    /// Sets `flags`, all 16 bits.
    pub fn set_flags(&mut self, value: u16) {
        self.set_bytes(field::FLAGS.start, &value.to_be_bytes());
    }

    /// Sets `ciaddr`.
    pub fn set_ciaddr(&mut self, value: Ipv4Addr) {
        self.set_bytes(field::CIADDR.start, &value.octets());
    }

    /// Sets `yiaddr`.
    pub fn set_yiaddr(&mut self, value: Ipv4Addr) {
        self.set_bytes(field::YIADDR.start, &value.octets());
    }

    /// Sets `siaddr`.
    pub fn set_siaddr(&mut self, value: Ipv4Addr) {
        self.set_bytes(field::SIADDR.start, &value.octets());
    }

    /// Sets `giaddr`.
    pub fn set_giaddr(&mut self, value: Ipv4Addr) {
        self.set_bytes(field::GIADDR.start, &value.octets());
    }

    /// Sets the 16-byte `chaddr` field.
    pub fn set_chaddr(&mut self, value: &[u8; 16]) {
        self.set_bytes(field::CHADDR.start, value);
    }

    /// Zeroes `sname` and `file`.
    pub fn clear_sname_file(&mut self) {
        if let Some(dst) = self.buffer.as_mut().get_mut(field::SNAME_FILE) {
            dst.fill(0);
        }
    }

    /// Writes the magic cookie.
    pub fn set_magic_cookie(&mut self) {
        self.set_bytes(field::MAGIC.start, &MAGIC_COOKIE.to_be_bytes());
    }

    /// The bytes after the cookie, where options go (empty if the buffer is
    /// shorter than the header).
    pub fn options_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut().get_mut(OPTIONS_OFFSET..).unwrap_or(&mut [])
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Repr::parse_bytes(self.buffer.as_ref()) {
            Ok(repr) => write!(f, "{repr}"),
            Err(err) => write!(f, "DHCP ({err})"),
        }
    }
}

/// The meaning of a DHCP message: header fields and the options this
/// module knows, borrowed from the frame (or, for replies, from
/// configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr<'a> {
    /// `op`.
    pub op: OpCode,
    /// `htype`.
    pub htype: u8,
    /// `hlen`.
    pub hlen: u8,
    /// `hops`.
    pub hops: u8,
    /// `xid`.
    pub xid: u32,
    /// `secs`.
    pub secs: u16,
    /// The broadcast bit of `flags` (the others must be zero).
    pub broadcast: bool,
    /// `ciaddr`.
    pub ciaddr: Ipv4Addr,
    /// `yiaddr`.
    pub yiaddr: Ipv4Addr,
    /// `siaddr`.
    pub siaddr: Ipv4Addr,
    /// `giaddr`.
    pub giaddr: Ipv4Addr,
    /// `chaddr`, all 16 bytes.
    pub chaddr: [u8; 16],
    /// Option 53.
    pub message_type: MessageType,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 61, opaque.
    pub client_id: Option<&'a [u8]>,
    /// Option 55: option codes, in the client's order of preference.
    pub parameter_request_list: Option<&'a [u8]>,
    /// Option 57 as sent (values under 576 are not legal but kept).
    pub max_message_size: Option<u16>,
    /// Option 1.
    pub subnet_mask: Option<Ipv4Addr>,
    /// Option 3: the first router listed.
    pub router: Option<Ipv4Addr>,
    /// Option 6 (an empty list is not emitted).
    pub dns_servers: Option<Ipv4List<'a>>,
    /// Option 15, text without terminator.
    pub domain_name: Option<&'a [u8]>,
    /// Option 119 (an empty list is not emitted).
    pub domain_search: Option<DomainList<'a>>,
    /// Option 26.
    pub interface_mtu: Option<u16>,
    /// Option 51, seconds (0xffffffff: infinite).
    pub lease_time: Option<u32>,
    /// Option 58, seconds.
    pub renewal_time: Option<u32>,
    /// Option 59, seconds.
    pub rebinding_time: Option<u32>,
}

/// Whether `len` is a valid length for option `code` (RFC 2132 minimum and
/// fixed lengths; RFC 3397 for 119). Unknown options: any length.
fn option_len_valid(code: u8, len: usize) -> bool {
    match code {
        option::MESSAGE_TYPE => len == 1,
        option::MAX_MESSAGE_SIZE | option::INTERFACE_MTU => len == 2,
        option::SUBNET_MASK
        | option::REQUESTED_IP
        | option::SERVER_ID
        | option::LEASE_TIME
        | option::RENEWAL_TIME
        | option::REBINDING_TIME => len == 4,
        option::ROUTER | option::DNS_SERVERS => len >= 4 && len % 4 == 0,
        option::PARAMETER_REQUEST_LIST
        | option::CLIENT_ID
        | option::DOMAIN_NAME
        | option::DOMAIN_SEARCH => len >= 1,
        _ => true,
    }
}

/// The address opening `data` (options of a checked length).
fn ipv4(data: &[u8]) -> Option<Ipv4Addr> {
    Some(Ipv4Addr::from(be32(data, 0)))
}

/// Sets `slot` unless an earlier instance of the option already did.
fn first<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

impl<'a> Repr<'a> {
    /// The order [`Repr::emit`] writes options in.
    pub const EMIT_ORDER: [u8; 15] = [
        option::MESSAGE_TYPE,
        option::SERVER_ID,
        option::REQUESTED_IP,
        option::CLIENT_ID,
        option::MAX_MESSAGE_SIZE,
        option::PARAMETER_REQUEST_LIST,
        option::LEASE_TIME,
        option::RENEWAL_TIME,
        option::REBINDING_TIME,
        option::SUBNET_MASK,
        option::ROUTER,
        option::DNS_SERVERS,
        option::DOMAIN_NAME,
        option::DOMAIN_SEARCH,
        option::INTERFACE_MTU,
    ];

    /// A message with the given type and identity, Ethernet hardware type,
    /// every address zero and no other option.
    pub fn new(op: OpCode, message_type: MessageType, xid: u32, mac: [u8; 6]) -> Self {
        let mut chaddr = [0u8; 16];
        chaddr[..6].copy_from_slice(&mac);
        Repr {
            op,
            htype: 1,
            hlen: 6,
            hops: 0,
            xid,
            secs: 0,
            broadcast: false,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr,
            message_type,
            requested_ip: None,
            server_id: None,
            client_id: None,
            parameter_request_list: None,
            max_message_size: None,
            subnet_mask: None,
            router: None,
            dns_servers: None,
            domain_name: None,
            domain_search: None,
            interface_mtu: None,
            lease_time: None,
            renewal_time: None,
            rebinding_time: None,
        }
    }

    /// The first six bytes of `chaddr`.
    pub fn client_mac(&self) -> [u8; 6] {
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&self.chaddr[..6]);
        mac
    }

    /// Parses a message: header, then every option (all must be well
    /// framed, known ones of a valid length).
    ///
    /// # Errors
    /// Any length or cookie error of [`Packet::check_len`], an option error
    /// of [`OptionsIter`], [`Error::BadOptionLength`], or
    /// [`Error::MissingMessageType`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Self> {
        let bytes: &'a T = packet.buffer;
        Self::parse_bytes(bytes.as_ref())
    }

    /// [`Repr::parse`] on a message's bytes.
    fn parse_bytes(bytes: &'a [u8]) -> Result<Self> {
        let packet = Packet::new_checked(bytes)?;
        let mut repr = Repr::new(packet.op(), MessageType::Unknown(0), packet.xid(), [0; 6]);
        repr.htype = packet.htype();
        repr.hlen = packet.hlen();
        repr.hops = packet.hops();
        repr.secs = packet.secs();
        repr.broadcast = packet.broadcast();
        repr.ciaddr = packet.ciaddr();
        repr.yiaddr = packet.yiaddr();
        repr.siaddr = packet.siaddr();
        repr.giaddr = packet.giaddr();
        repr.chaddr = packet.chaddr();

        let mut message_type = None;
        for opt in OptionsIter::new(bytes.get(OPTIONS_OFFSET..).unwrap_or(&[])) {
            let DhcpOption { code, data } = opt?;
            if !option_len_valid(code, data.len()) {
                // The iterator bounds data by a length byte: fits in a u8.
                return Err(Error::BadOptionLength { code, len: data.len() as u8 });
            }
            repr.store_option(code, data, &mut message_type);
        }
        repr.message_type = message_type.ok_or(Error::MissingMessageType)?;
        Ok(repr)
    }

    /// Records one length-checked option; the first instance wins.
    fn store_option(&mut self, code: u8, data: &'a [u8], message_type: &mut Option<MessageType>) {
        match code {
            option::MESSAGE_TYPE => {
                first(message_type, data.first().map(|&b| MessageType::from(b)));
            }
            option::REQUESTED_IP => first(&mut self.requested_ip, ipv4(data)),
            option::SERVER_ID => first(&mut self.server_id, ipv4(data)),
            option::CLIENT_ID => first(&mut self.client_id, Some(data)),
            option::PARAMETER_REQUEST_LIST => {
                first(&mut self.parameter_request_list, Some(data));
            }
            option::MAX_MESSAGE_SIZE => first(&mut self.max_message_size, Some(be16(data, 0))),
            option::SUBNET_MASK => first(&mut self.subnet_mask, ipv4(data)),
            option::ROUTER => first(&mut self.router, ipv4(data)),
            option::DNS_SERVERS => first(&mut self.dns_servers, Some(Ipv4List::Wire(data))),
            option::DOMAIN_NAME => first(&mut self.domain_name, Some(data)),
            option::DOMAIN_SEARCH => {
                first(&mut self.domain_search, Some(DomainList::Wire(data)));
            }
            option::INTERFACE_MTU => first(&mut self.interface_mtu, Some(be16(data, 0))),
            option::LEASE_TIME => first(&mut self.lease_time, Some(be32(data, 0))),
            option::RENEWAL_TIME => first(&mut self.renewal_time, Some(be32(data, 0))),
            option::REBINDING_TIME => first(&mut self.rebinding_time, Some(be32(data, 0))),
            _ => {}
        }
    }

    /// Data length of option `code` if this message carries it (empty
    /// lists count as absent: RFC 2132 gives them a minimum length).
    fn option_data_len(&self, code: u8) -> Option<usize> {
        let nonempty = |len: usize| (len > 0).then_some(len);
        match code {
            option::MESSAGE_TYPE => Some(1),
            option::MAX_MESSAGE_SIZE => self.max_message_size.map(|_| 2),
            option::INTERFACE_MTU => self.interface_mtu.map(|_| 2),
            option::REQUESTED_IP => self.requested_ip.map(|_| 4),
            option::SERVER_ID => self.server_id.map(|_| 4),
            option::SUBNET_MASK => self.subnet_mask.map(|_| 4),
            option::ROUTER => self.router.map(|_| 4),
            option::LEASE_TIME => self.lease_time.map(|_| 4),
            option::RENEWAL_TIME => self.renewal_time.map(|_| 4),
            option::REBINDING_TIME => self.rebinding_time.map(|_| 4),
            option::CLIENT_ID => self.client_id.and_then(|d| nonempty(d.len())),
            option::PARAMETER_REQUEST_LIST => {
                self.parameter_request_list.and_then(|d| nonempty(d.len()))
            }
            option::DNS_SERVERS => self.dns_servers.and_then(|l| nonempty(l.len() * 4)),
            option::DOMAIN_NAME => self.domain_name.and_then(|d| nonempty(d.len())),
            option::DOMAIN_SEARCH => self.domain_search.and_then(|l| nonempty(l.encoded_len())),
            _ => None,
        }
    }

    /// Bytes option `code` takes on the wire (headers included, long data
    /// split per RFC 3396), or `None` if this message does not carry it.
    pub fn option_len(&self, code: u8) -> Option<usize> {
        let len = self.option_data_len(code)?;
        Some(if code == option::DNS_SERVERS {
            encoded_len_in_chunks(len, MAX_ADDRESS_LIST_DATA)
        } else {
            encoded_option_len(len)
        })
    }

    /// Appends option `code` to `writer`; `Ok(false)` if this message does
    /// not carry it.
    ///
    /// # Errors
    /// [`Error::NoSpace`] (nothing written) if it does not fit.
    pub fn emit_option(&self, code: u8, writer: &mut OptionWriter<'_>) -> Result<bool> {
        let Some(len) = self.option_data_len(code) else {
            return Ok(false);
        };
        let addr = |a: Option<Ipv4Addr>| a.unwrap_or(Ipv4Addr::UNSPECIFIED).octets();
        let word = |v: Option<u32>| v.unwrap_or(0).to_be_bytes();
        match code {
            option::MESSAGE_TYPE => writer.write(code, &[u8::from(self.message_type)])?,
            option::MAX_MESSAGE_SIZE => {
                writer.write(code, &self.max_message_size.unwrap_or(0).to_be_bytes())?;
            }
            option::INTERFACE_MTU => {
                writer.write(code, &self.interface_mtu.unwrap_or(0).to_be_bytes())?;
            }
            option::REQUESTED_IP => writer.write(code, &addr(self.requested_ip))?,
            option::SERVER_ID => writer.write(code, &addr(self.server_id))?,
            option::SUBNET_MASK => writer.write(code, &addr(self.subnet_mask))?,
            option::ROUTER => writer.write(code, &addr(self.router))?,
            option::LEASE_TIME => writer.write(code, &word(self.lease_time))?,
            option::RENEWAL_TIME => writer.write(code, &word(self.renewal_time))?,
            option::REBINDING_TIME => writer.write(code, &word(self.rebinding_time))?,
            option::CLIENT_ID => writer.write(code, self.client_id.unwrap_or(&[]))?,
            option::PARAMETER_REQUEST_LIST => {
                writer.write(code, self.parameter_request_list.unwrap_or(&[]))?;
            }
            option::DOMAIN_NAME => writer.write(code, self.domain_name.unwrap_or(&[]))?,
            option::DNS_SERVERS => {
                let list = self.dns_servers.unwrap_or(Ipv4List::Addrs(&[]));
                writer.write_address_list(code, list.iter(), list.len())?;
            }
            option::DOMAIN_SEARCH => {
                let list = self.domain_search.unwrap_or(DomainList::Wire(&[]));
                writer.write_with(code, len, |sink| list.encode(&mut |b| sink.push(b)))?;
            }
            // option_data_len() returned None for every other code.
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Length of the message [`Repr::emit`] writes: header, cookie, every
    /// option carried, END (no padding).
    pub fn buffer_len(&self) -> usize {
        let options: usize = Self::EMIT_ORDER.iter().filter_map(|&c| self.option_len(c)).sum();
        OPTIONS_OFFSET + options + 1
    }

    /// Writes the fixed header and the cookie; `sname` and `file` are
    /// zeroed, `flags` holds only the broadcast bit.
    ///
    /// # Errors
    /// [`Error::NoSpace`] (nothing written) if the buffer is shorter than
    /// the header and cookie.
    pub fn emit_header<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        if packet.buffer.as_ref().len() < OPTIONS_OFFSET {
            return Err(Error::NoSpace);
        }
        packet.set_op(self.op);
        packet.set_htype(self.htype);
        packet.set_hlen(self.hlen);
        packet.set_hops(self.hops);
        packet.set_xid(self.xid);
        packet.set_secs(self.secs);
        packet.set_flags(if self.broadcast { FLAG_BROADCAST } else { 0 });
        packet.set_ciaddr(self.ciaddr);
        packet.set_yiaddr(self.yiaddr);
        packet.set_siaddr(self.siaddr);
        packet.set_giaddr(self.giaddr);
        packet.set_chaddr(&self.chaddr);
        packet.clear_sname_file();
        packet.set_magic_cookie();
        Ok(())
    }

    /// Writes the whole message: header, the options carried in
    /// [`Repr::EMIT_ORDER`], END. Returns its length,
    /// [`Repr::buffer_len`].
    ///
    /// # Errors
    /// [`Error::NoSpace`] if the buffer is shorter than
    /// [`Repr::buffer_len`] (then its content is unspecified).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<usize> {
        self.emit_header(packet)?;
        let mut writer = OptionWriter::new(packet.options_mut());
        for code in Self::EMIT_ORDER {
            self.emit_option(code, &mut writer)?;
        }
        Ok(OPTIONS_OFFSET + writer.finish()?)
    }
}

impl fmt::Display for Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DHCP {} xid={:#010x} chaddr={} ciaddr={} yiaddr={}",
            self.message_type,
            self.xid,
            DisplayMac(&self.client_mac()),
            self.ciaddr,
            self.yiaddr
        )?;
        if self.broadcast {
            write!(f, " broadcast")?;
        }
        if let Some(ip) = self.requested_ip {
            write!(f, " requested={ip}")?;
        }
        if let Some(ip) = self.server_id {
            write!(f, " server={ip}")?;
        }
        Ok(())
    }
}
