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
//! decoded. Mirrors the message layer of passt's `dhcp.c`.

use core::fmt;
use std::net::Ipv4Addr;

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
/// Most data bytes one option instance can carry (the length is one byte).
const MAX_OPTION_DATA: usize = 255;
/// Longest domain name in DNS wire form, length bytes and root included
/// (RFC 1035 section 2.3.4).
const MAX_DOMAIN_WIRE_LEN: usize = 255;
/// Longest DNS label (RFC 1035 section 2.3.4).
const MAX_LABEL_LEN: usize = 63;

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

    /// `N` bytes at `at`, or zeros if the buffer is too short.
    fn bytes<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(src) = self.buffer.as_ref().get(at..at + N) {
            out.copy_from_slice(src);
        }
        out
    }

    fn byte(&self, at: usize) -> u8 {
        self.buffer.as_ref().get(at).copied().unwrap_or(0)
    }

    fn addr(&self, range: core::ops::Range<usize>) -> Ipv4Addr {
        Ipv4Addr::from(self.bytes::<4>(range.start))
    }

    /// `op`: request or reply.
    pub fn op(&self) -> OpCode {
        OpCode::from(self.byte(field::OP))
    }

    /// `htype`: hardware address type (1: Ethernet).
    pub fn htype(&self) -> u8 {
        self.byte(field::HTYPE)
    }

    /// `hlen`: hardware address length (6 for Ethernet).
    pub fn hlen(&self) -> u8 {
        self.byte(field::HLEN)
    }

    /// `hops`: relay agent hop count.
    pub fn hops(&self) -> u8 {
        self.byte(field::HOPS)
    }

    /// `xid`: transaction identifier chosen by the client.
    pub fn xid(&self) -> u32 {
        u32::from_be_bytes(self.bytes(field::XID.start))
    }

    /// `secs`: seconds since the client began.
    pub fn secs(&self) -> u16 {
        u16::from_be_bytes(self.bytes(field::SECS.start))
    }

    /// `flags`, all 16 bits.
    pub fn flags(&self) -> u16 {
        u16::from_be_bytes(self.bytes(field::FLAGS.start))
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
        self.bytes(field::CHADDR.start)
    }

    /// The first six bytes of `chaddr`: the client's MAC when `htype` is 1
    /// and `hlen` is 6.
    pub fn client_mac(&self) -> [u8; 6] {
        self.bytes(field::CHADDR.start)
    }

    /// The four bytes after the fixed header.
    pub fn magic_cookie(&self) -> u32 {
        u32::from_be_bytes(self.bytes(field::MAGIC.start))
    }

    /// Iterates over the options (empty, with an error, if the buffer is
    /// shorter than the header).
    pub fn options(&self) -> OptionsIter<'_> {
        OptionsIter::new(self.buffer.as_ref().get(OPTIONS_OFFSET..).unwrap_or(&[]))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes `value` at `at`; a write past the end is dropped (emitters
    /// check the length first, so this never happens on their path).
    fn set_bytes(&mut self, at: usize, value: &[u8]) {
        if let Some(dst) = self.buffer.as_mut().get_mut(at..at + value.len()) {
            dst.copy_from_slice(value);
        }
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

/// One option as found in a message: its code and data (PAD and END are
/// never yielded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpOption<'a> {
    /// Option code.
    pub code: u8,
    /// Option data, `len` bytes.
    pub data: &'a [u8],
}

/// Iterator over the options of a message; see the module documentation
/// for what is an error. After an error it yields nothing more.
#[derive(Debug, Clone)]
pub struct OptionsIter<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> OptionsIter<'a> {
    /// Iterates over an options area (the bytes after the cookie).
    pub fn new(data: &'a [u8]) -> Self {
        OptionsIter { data, pos: 0, done: false }
    }

    fn fail(&mut self, err: Error) -> Option<Result<DhcpOption<'a>>> {
        self.done = true;
        Some(Err(err))
    }
}

impl<'a> Iterator for OptionsIter<'a> {
    type Item = Result<DhcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            let code = match self.data.get(self.pos) {
                None => return self.fail(Error::MissingEnd),
                Some(&option::PAD) => {
                    self.pos += 1;
                    continue;
                }
                Some(&option::END) => {
                    self.done = true;
                    return None;
                }
                Some(&code) => code,
            };
            let Some(&len) = self.data.get(self.pos + 1) else {
                return self.fail(Error::OptionOverrun { code });
            };
            let start = self.pos + 2;
            let end = start + usize::from(len);
            let Some(data) = self.data.get(start..end) else {
                return self.fail(Error::OptionOverrun { code });
            };
            self.pos = end;
            return Some(Ok(DhcpOption { code, data }));
        }
    }
}

/// A list of IPv4 addresses: as found in a message (4 bytes each), or as
/// given by configuration.
#[derive(Debug, Clone, Copy)]
pub enum Ipv4List<'a> {
    /// Network-order bytes from a message; a length not a multiple of 4
    /// leaves the last partial address out.
    Wire(&'a [u8]),
    /// Addresses from configuration.
    Addrs(&'a [Ipv4Addr]),
}

impl Ipv4List<'_> {
    /// Number of addresses.
    pub fn len(&self) -> usize {
        match self {
            Ipv4List::Wire(bytes) => bytes.len() / 4,
            Ipv4List::Addrs(addrs) => addrs.len(),
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `index`th address.
    pub fn get(&self, index: usize) -> Option<Ipv4Addr> {
        match self {
            Ipv4List::Wire(bytes) => {
                let start = index.checked_mul(4)?;
                let chunk = bytes.get(start..start.checked_add(4)?)?;
                let octets: [u8; 4] = chunk.try_into().ok()?;
                Some(Ipv4Addr::from(octets))
            }
            Ipv4List::Addrs(addrs) => addrs.get(index).copied(),
        }
    }

    /// The addresses in order.
    pub fn iter(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

impl PartialEq for Ipv4List<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Ipv4List<'_> {}

/// A domain search list (option 119, RFC 3397): as found in a message (DNS
/// wire form, not decoded), or as names from configuration.
#[derive(Debug, Clone, Copy)]
pub enum DomainList<'a> {
    /// DNS wire-form names from a message, as they are.
    Wire(&'a [u8]),
    /// Dotted names from configuration; names that cannot be encoded
    /// (empty labels, labels over 63 bytes, names over 255 bytes) are
    /// skipped.
    Names(&'a [String]),
}

impl DomainList<'_> {
    /// Bytes of the encoded list (0 if nothing can be encoded).
    pub fn encoded_len(&self) -> usize {
        match self {
            DomainList::Wire(bytes) => bytes.len(),
            DomainList::Names(names) => names.iter().filter_map(|n| domain_wire_len(n)).sum(),
        }
    }

    /// Feeds the encoded list to `sink`, byte by byte: exactly
    /// [`DomainList::encoded_len`] bytes.
    pub fn encode(&self, sink: &mut impl FnMut(u8)) {
        match self {
            DomainList::Wire(bytes) => bytes.iter().for_each(|&b| sink(b)),
            DomainList::Names(names) => {
                for name in names.iter() {
                    if domain_wire_len(name).is_some() {
                        encode_domain(name, sink);
                    }
                }
            }
        }
    }

    fn to_wire_vec(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut |b| out.push(b));
        out
    }
}

impl PartialEq for DomainList<'_> {
    /// Lists are equal when they encode to the same bytes. Allocates: meant
    /// for tests and logs, not for the packet path.
    fn eq(&self, other: &Self) -> bool {
        self.to_wire_vec() == other.to_wire_vec()
    }
}

impl Eq for DomainList<'_> {}

/// The labels of a dotted name, one trailing dot (the root) allowed.
fn labels(name: &str) -> core::str::Split<'_, char> {
    name.strip_suffix('.').unwrap_or(name).split('.')
}

/// Length of `name` in DNS wire form (RFC 1035 section 3.1: each label
/// prefixed by its length, then the zero-length root label), or `None` if
/// it cannot be encoded: empty (or root only), an empty or over-long label,
/// or over 255 bytes in all.
pub fn domain_wire_len(name: &str) -> Option<usize> {
    let mut total = 1; // the root label
    for label in labels(name) {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return None;
        }
        total += 1 + label.len();
    }
    (total <= MAX_DOMAIN_WIRE_LEN).then_some(total)
}

/// Encodes a name [`domain_wire_len`] accepts; no compression.
fn encode_domain(name: &str, sink: &mut impl FnMut(u8)) {
    for label in labels(name) {
        // Cannot truncate: domain_wire_len() capped labels at 63 bytes.
        sink(label.len() as u8);
        label.bytes().for_each(&mut *sink);
    }
    sink(0);
}

/// Instance size for address lists: 63 whole addresses, so that each
/// instance is a valid list on its own for clients that do not concatenate.
const MAX_ADDRESS_LIST_DATA: usize = 252;

/// Bytes an option with `data_len` bytes of data takes on the wire, split
/// into instances of at most 255 bytes (RFC 3396 section 5).
pub fn encoded_option_len(data_len: usize) -> usize {
    encoded_len_in_chunks(data_len, MAX_OPTION_DATA)
}

/// Bytes on the wire of `data_len` bytes in instances of at most `chunk`.
fn encoded_len_in_chunks(data_len: usize, chunk: usize) -> usize {
    data_len + 2 * data_len.div_ceil(chunk).max(1)
}

/// Appends options to an options area, splitting long ones (RFC 3396) and
/// always keeping one byte for END.
#[derive(Debug)]
pub struct OptionWriter<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> OptionWriter<'b> {
    /// Writes into `buf`, the options area cut to the size the message may
    /// have (see [`Packet::options_mut`]).
    pub fn new(buf: &'b mut [u8]) -> Self {
        OptionWriter { buf, pos: 0 }
    }

    /// Bytes still free for options, the END byte already set aside.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos + 1)
    }

    /// Bytes written so far (END not included).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Appends option `code` with `data`.
    ///
    /// # Errors
    /// [`Error::NoSpace`] (nothing written) if it does not fit.
    pub fn write(&mut self, code: u8, data: &[u8]) -> Result<()> {
        self.write_with(code, data.len(), |sink| data.iter().for_each(|&b| sink.push(b)))
    }

    /// Appends option `code` with `len` data bytes produced by `fill`
    /// through [`OptionSink::push`]; pushes beyond `len` are dropped and a
    /// shortfall is zero-filled, so the framing always holds.
    ///
    /// # Errors
    /// [`Error::NoSpace`] (nothing written) if it does not fit.
    pub fn write_with(
        &mut self,
        code: u8,
        len: usize,
        fill: impl FnOnce(&mut OptionSink<'_>),
    ) -> Result<()> {
        self.write_chunked(code, len, MAX_OPTION_DATA, fill)
    }

    /// As [`OptionWriter::write_with`], for a list of 4-byte addresses:
    /// instances hold whole addresses only.
    ///
    /// # Errors
    /// [`Error::NoSpace`] (nothing written) if it does not fit.
    pub fn write_address_list(
        &mut self,
        code: u8,
        addrs: impl Iterator<Item = Ipv4Addr>,
        count: usize,
    ) -> Result<()> {
        self.write_chunked(code, count * 4, MAX_ADDRESS_LIST_DATA, |sink| {
            addrs.flat_map(|a| a.octets()).for_each(|b| sink.push(b));
        })
    }

    /// Writes `len` data bytes from `fill` in instances of at most `chunk`
    /// bytes (1..=255).
    fn write_chunked(
        &mut self,
        code: u8,
        len: usize,
        chunk: usize,
        fill: impl FnOnce(&mut OptionSink<'_>),
    ) -> Result<()> {
        let chunk = chunk.clamp(1, MAX_OPTION_DATA);
        let total = encoded_len_in_chunks(len, chunk);
        if total > self.remaining() {
            return Err(Error::NoSpace);
        }
        let region = self.buf.get_mut(self.pos..self.pos + total).ok_or(Error::NoSpace)?;
        let mut sink = OptionSink { buf: region, pos: 0, code, len, chunk, written: 0 };
        if len == 0 {
            sink.put(code);
            sink.put(0);
        } else {
            fill(&mut sink);
            while sink.written < len {
                sink.push(0);
            }
        }
        self.pos += total;
        Ok(())
    }

    /// Writes END and returns the length of the options area used, END
    /// included.
    ///
    /// # Errors
    /// [`Error::NoSpace`] only if the area given to [`OptionWriter::new`]
    /// was empty: every write keeps a byte for END.
    pub fn finish(self) -> Result<usize> {
        let slot = self.buf.get_mut(self.pos).ok_or(Error::NoSpace)?;
        *slot = option::END;
        Ok(self.pos + 1)
    }
}

/// Receives the data bytes of one option from [`OptionWriter::write_with`]
/// and inserts the code/length header of each 255-byte instance.
#[derive(Debug)]
pub struct OptionSink<'s> {
    buf: &'s mut [u8],
    pos: usize,
    code: u8,
    len: usize,
    /// Data bytes per instance, 1..=255.
    chunk: usize,
    written: usize,
}

impl OptionSink<'_> {
    /// Appends one data byte.
    pub fn push(&mut self, byte: u8) {
        if self.written >= self.len {
            return;
        }
        if self.written % self.chunk == 0 {
            let chunk = (self.len - self.written).min(self.chunk);
            self.put(self.code);
            // Cannot truncate: min() above.
            self.put(chunk as u8);
        }
        self.put(byte);
        self.written += 1;
    }

    fn put(&mut self, byte: u8) {
        if let Some(slot) = self.buf.get_mut(self.pos) {
            *slot = byte;
        }
        self.pos += 1;
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

fn be_u16(data: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(..2)?.try_into().ok()?))
}

fn be_u32(data: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(..4)?.try_into().ok()?))
}

fn ipv4(data: &[u8]) -> Option<Ipv4Addr> {
    be_u32(data).map(Ipv4Addr::from)
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
            option::MAX_MESSAGE_SIZE => first(&mut self.max_message_size, be_u16(data)),
            option::SUBNET_MASK => first(&mut self.subnet_mask, ipv4(data)),
            option::ROUTER => first(&mut self.router, ipv4(data)),
            option::DNS_SERVERS => first(&mut self.dns_servers, Some(Ipv4List::Wire(data))),
            option::DOMAIN_NAME => first(&mut self.domain_name, Some(data)),
            option::DOMAIN_SEARCH => {
                first(&mut self.domain_search, Some(DomainList::Wire(data)));
            }
            option::INTERFACE_MTU => first(&mut self.interface_mtu, be_u16(data)),
            option::LEASE_TIME => first(&mut self.lease_time, be_u32(data)),
            option::RENEWAL_TIME => first(&mut self.renewal_time, be_u32(data)),
            option::REBINDING_TIME => first(&mut self.rebinding_time, be_u32(data)),
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
        let m = self.client_mac();
        write!(
            f,
            "DHCP {} xid={:#010x} chaddr={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} \
             ciaddr={} yiaddr={}",
            self.message_type,
            self.xid,
            m[0],
            m[1],
            m[2],
            m[3],
            m[4],
            m[5],
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

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    /// A DHCPDISCOVER as busybox udhcpc 1.36 sends it, written by hand from
    /// the layout of RFC 2131 figure 1 and RFC 2132.
    fn udhcpc_discover() -> Vec<u8> {
        let mut m = vec![
            0x01, // op: BOOTREQUEST
            0x01, // htype: Ethernet
            0x06, // hlen: 6
            0x00, // hops
            0x3d, 0x1d, 0x52, 0x8a, // xid
            0x00, 0x00, // secs
            0x00, 0x00, // flags: broadcast bit clear (udhcpc's default)
            0, 0, 0, 0, // ciaddr
            0, 0, 0, 0, // yiaddr
            0, 0, 0, 0, // siaddr
            0, 0, 0, 0, // giaddr
            0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // chaddr: the MAC...
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ...and 10 bytes of padding
        ];
        assert_eq!(m.len(), 44);
        m.resize(236, 0); // sname (64 bytes) and file (128 bytes): empty
        m.extend_from_slice(&[
            0x63, 0x82, 0x53, 0x63, // magic cookie 99.130.83.99
            53, 1, 1, // message type: DISCOVER
            61, 7, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // client id: type 1 + MAC
            57, 2, 0x02, 0x40, // max message size: 576
            55, 7, 1, 3, 6, 12, 15, 28, 42, // parameter request list
            60, 12, b'u', b'd', b'h', b'c', b'p', b' ', b'1', b'.', b'3', b'6', b'.', b'1',
            255, // END
        ]);
        m.resize(300, 0); // udhcpc pads to the BOOTP minimum
        m
    }

    /// Offset of the END option in `udhcpc_discover()`.
    const DISCOVER_END: usize = 240 + 3 + 9 + 4 + 9 + 14;

    /// A DHCPOFFER with its options in `Repr::EMIT_ORDER`, so that
    /// parse-then-emit must give back the same bytes.
    fn offer() -> Vec<u8> {
        let mut m = vec![
            0x02, 0x01, 0x06, 0x00, // op BOOTREPLY, Ethernet, hlen 6, hops 0
            0x3d, 0x1d, 0x52, 0x8a, // xid
            0x00, 0x00, 0x80, 0x00, // secs 0, flags: broadcast
            0, 0, 0, 0, // ciaddr
            192, 168, 1, 20, // yiaddr
            0, 0, 0, 0, // siaddr
            0, 0, 0, 0, // giaddr
            0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // chaddr
        ];
        m.resize(236, 0);
        m.extend_from_slice(&[
            0x63, 0x82, 0x53, 0x63, // cookie
            53, 1, 2, // OFFER
            54, 4, 192, 168, 1, 1, // server id
            51, 4, 0x00, 0x01, 0x51, 0x80, // lease 86400
            58, 4, 0x00, 0x00, 0xa8, 0xc0, // T1 43200
            59, 4, 0x00, 0x01, 0x27, 0x50, // T2 75600
            1, 4, 255, 255, 255, 0, // subnet mask
            3, 4, 192, 168, 1, 1, // router
            6, 8, 192, 168, 1, 1, 9, 9, 9, 9, // DNS
            15, 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', // domain name
            119, 9, 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0, // search: "example"
            26, 2, 0xff, 0xf0, // MTU 65520
            255,
        ]);
        m
    }

    /// xorshift64: a tiny deterministic generator for property tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn byte(&mut self) -> u8 {
            self.next() as u8
        }
    }

    fn parse(bytes: &[u8]) -> Result<Repr<'_>> {
        Repr::parse(&Packet::new_checked(bytes)?)
    }

    fn with_options(options: &[u8]) -> Vec<u8> {
        let mut m = udhcpc_discover();
        m.truncate(OPTIONS_OFFSET);
        m.extend_from_slice(options);
        m
    }

    #[test]
    fn fixture_header_fields() {
        let bytes = udhcpc_discover();
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.op(), OpCode::Request);
        assert_eq!((p.htype(), p.hlen(), p.hops()), (1, 6, 0));
        assert_eq!(p.xid(), 0x3d1d_528a);
        assert_eq!(p.secs(), 0);
        assert_eq!(p.flags(), 0);
        assert!(!p.broadcast());
        assert_eq!(p.ciaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(p.yiaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(p.siaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(p.giaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(p.client_mac(), MAC);
        assert_eq!(&p.chaddr()[..6], &MAC);
        assert_eq!(&p.chaddr()[6..], &[0; 10]);
        assert_eq!(p.magic_cookie(), MAGIC_COOKIE);
    }

    #[test]
    fn fixture_options_in_order() {
        let bytes = udhcpc_discover();
        let p = Packet::new_checked(&bytes[..]).unwrap();
        let codes: Vec<u8> = p.options().map(|o| o.unwrap().code).collect();
        assert_eq!(codes, [53, 61, 57, 55, 60]);
        let vendor = p.options().map(|o| o.unwrap()).find(|o| o.code == 60).unwrap();
        assert_eq!(vendor.data, b"udhcp 1.36.1");
    }

    #[test]
    fn fixture_repr() {
        let bytes = udhcpc_discover();
        let r = parse(&bytes).unwrap();
        assert_eq!(r.message_type, MessageType::Discover);
        assert_eq!(r.client_id, Some(&[1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56][..]));
        assert_eq!(r.max_message_size, Some(576));
        assert_eq!(r.parameter_request_list, Some(&[1, 3, 6, 12, 15, 28, 42][..]));
        assert_eq!(r.requested_ip, None);
        assert_eq!(r.server_id, None);
        assert_eq!(r.client_mac(), MAC);
        assert!(!r.broadcast);
    }

    #[test]
    fn discover_round_trip_through_repr() {
        let bytes = udhcpc_discover();
        let r = parse(&bytes).unwrap();
        let mut out = vec![0xaa; r.buffer_len()];
        let len = r.emit(&mut Packet::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(len, out.len());
        // Same header; options the same except the vendor class (60), which
        // Repr does not carry.
        assert_eq!(&out[..OPTIONS_OFFSET], &bytes[..OPTIONS_OFFSET]);
        assert_eq!(parse(&out).unwrap(), r);
    }

    #[test]
    fn offer_parse_emit_same_bytes() {
        let bytes = offer();
        let r = parse(&bytes).unwrap();
        assert_eq!(r.op, OpCode::Reply);
        assert_eq!(r.message_type, MessageType::Offer);
        assert!(r.broadcast);
        assert_eq!(r.yiaddr, Ipv4Addr::new(192, 168, 1, 20));
        assert_eq!(r.server_id, Some(Ipv4Addr::new(192, 168, 1, 1)));
        assert_eq!(r.lease_time, Some(86_400));
        assert_eq!(r.renewal_time, Some(43_200));
        assert_eq!(r.rebinding_time, Some(75_600));
        assert_eq!(r.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
        assert_eq!(r.router, Some(Ipv4Addr::new(192, 168, 1, 1)));
        let dns = [Ipv4Addr::new(192, 168, 1, 1), Ipv4Addr::new(9, 9, 9, 9)];
        assert_eq!(r.dns_servers, Some(Ipv4List::Addrs(&dns)));
        assert_eq!(r.domain_name, Some(&b"example"[..]));
        let names = ["example".to_string()];
        assert_eq!(r.domain_search, Some(DomainList::Names(&names)));
        assert_eq!(r.interface_mtu, Some(65520));
        assert_eq!(r.buffer_len(), bytes.len());

        let mut out = vec![0x55; bytes.len()];
        assert_eq!(r.emit(&mut Packet::new_unchecked(&mut out[..])), Ok(bytes.len()));
        assert_eq!(out, bytes);
    }

    #[test]
    fn emit_needs_buffer_len() {
        let bytes = offer();
        let r = parse(&bytes).unwrap();
        for len in [0, 1, 100, 239, 240, 241, bytes.len() - 1] {
            let mut out = vec![0; len];
            let res = r.emit(&mut Packet::new_unchecked(&mut out[..]));
            assert_eq!(res, Err(Error::NoSpace), "buffer of {len}");
        }
    }

    #[test]
    fn truncated_at_each_header_field_boundary() {
        let bytes = udhcpc_discover();
        // op htype hlen hops xid secs flags ciaddr yiaddr siaddr giaddr chaddr sname file
        for cut in [0, 1, 2, 3, 4, 8, 10, 12, 16, 20, 24, 28, 44, 108, 235] {
            assert_eq!(Packet::new_checked(&bytes[..cut]).err(), Some(Error::Truncated), "{cut}");
        }
        for cut in 236..240 {
            let err = Packet::new_checked(&bytes[..cut]).err();
            assert_eq!(err, Some(Error::MissingMagicCookie), "{cut}");
        }
        // From the cookie on, the options are cut: at an option boundary the
        // END is missing, inside an option its data overruns.
        assert_eq!(parse(&bytes[..240]).err(), Some(Error::MissingEnd));
        assert_eq!(parse(&bytes[..241]).err(), Some(Error::OptionOverrun { code: 53 }));
        assert_eq!(parse(&bytes[..242]).err(), Some(Error::OptionOverrun { code: 53 }));
        assert_eq!(parse(&bytes[..243]).err(), Some(Error::MissingEnd));
        assert_eq!(parse(&bytes[..250]).err(), Some(Error::OptionOverrun { code: 61 }));
        assert_eq!(parse(&bytes[..DISCOVER_END]).err(), Some(Error::MissingEnd));
        assert!(parse(&bytes[..=DISCOVER_END]).is_ok());
        // Every cut inside the options is an error, never a panic.
        for cut in 240..DISCOVER_END {
            assert!(parse(&bytes[..cut]).is_err(), "{cut}");
        }
    }

    #[test]
    fn getters_on_short_unchecked_buffer_read_zero() {
        let p = Packet::new_unchecked(&[1u8, 1, 6][..]);
        assert_eq!(p.op(), OpCode::Request);
        assert_eq!(p.hlen(), 6);
        assert_eq!(p.xid(), 0);
        assert_eq!(p.chaddr(), [0; 16]);
        assert_eq!(p.magic_cookie(), 0);
        assert_eq!(p.options().count(), 1); // MissingEnd on an empty area
        let mut buf = [0u8; 5];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_xid(0x0102_0304); // spans the end: dropped, no panic
        p.set_giaddr(Ipv4Addr::BROADCAST);
        p.clear_sname_file();
        p.set_magic_cookie();
        assert!(p.options_mut().is_empty());
        assert_eq!(buf, [0; 5]);
    }

    #[test]
    fn missing_or_bad_cookie() {
        let mut bytes = udhcpc_discover();
        bytes[239] = 0x62;
        assert_eq!(Packet::new_checked(&bytes[..]).err(), Some(Error::BadMagicCookie));
        // A BOOTP message: the vend field without cookie.
        bytes[236..240].fill(0);
        assert_eq!(Packet::new_checked(&bytes[..]).err(), Some(Error::BadMagicCookie));
        assert_eq!(parse(&bytes).err(), Some(Error::BadMagicCookie));
    }

    #[test]
    fn option_length_past_end() {
        let bytes = with_options(&[53, 1, 1, 55, 200, 1, 3, 6]);
        assert_eq!(parse(&bytes).err(), Some(Error::OptionOverrun { code: 55 }));
        // A code as the very last byte: no length byte at all.
        let bytes = with_options(&[53, 1, 1, 61]);
        assert_eq!(parse(&bytes).err(), Some(Error::OptionOverrun { code: 61 }));
        // Length exactly reaching the end, END missing.
        let bytes = with_options(&[53, 1, 1, 61, 2, 1, 2]);
        assert_eq!(parse(&bytes).err(), Some(Error::MissingEnd));
    }

    #[test]
    fn zero_length_options() {
        // Known options with a fixed or minimum size: errors.
        for code in [53, 50, 54, 57, 55, 61, 1, 3, 6, 15, 26, 51, 58, 59, 119] {
            let bytes = with_options(&[53, 1, 1, code, 0, 255]);
            let bytes = if code == 53 { with_options(&[53, 0, 255]) } else { bytes };
            assert_eq!(
                parse(&bytes).err(),
                Some(Error::BadOptionLength { code, len: 0 }),
                "{code}"
            );
        }
        // Unknown ones are legal and skipped.
        let bytes = with_options(&[53, 1, 3, 224, 0, 12, 0, 255]);
        let r = parse(&bytes).unwrap();
        assert_eq!(r.message_type, MessageType::Request);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        let opts: Vec<_> = p.options().map(|o| o.unwrap()).collect();
        assert_eq!(opts[1], DhcpOption { code: 224, data: &[] });
    }

    #[test]
    fn wrong_fixed_lengths() {
        let cases: [(&[u8], u8, u8); 6] = [
            (&[53, 2, 1, 1], 53, 2),
            (&[50, 3, 1, 2, 3], 50, 3),
            (&[54, 5, 1, 2, 3, 4, 5], 54, 5),
            (&[57, 1, 2], 57, 1),
            (&[3, 6, 1, 2, 3, 4, 5, 6], 3, 6),
            (&[6, 2, 1, 2], 6, 2),
        ];
        for (opt, code, len) in cases {
            let mut options = vec![53, 1, 1];
            if code == 53 {
                options.clear();
            }
            options.extend_from_slice(opt);
            options.push(255);
            let bytes = with_options(&options);
            assert_eq!(parse(&bytes).err(), Some(Error::BadOptionLength { code, len }));
        }
    }

    #[test]
    fn end_missing() {
        let bytes = with_options(&[53, 1, 1]);
        assert_eq!(parse(&bytes).err(), Some(Error::MissingEnd));
        // Padding to the end does not make up for END.
        let bytes = with_options(&[53, 1, 1, 0, 0, 0, 0]);
        assert_eq!(parse(&bytes).err(), Some(Error::MissingEnd));
        // Nothing at all after the cookie.
        assert_eq!(parse(&with_options(&[])).err(), Some(Error::MissingEnd));
    }

    #[test]
    fn pad_skipped_and_bytes_after_end_ignored() {
        let bytes = with_options(&[0, 0, 53, 1, 8, 0, 50, 4, 10, 0, 0, 2, 255, 61, 200, 9]);
        let r = parse(&bytes).unwrap();
        assert_eq!(r.message_type, MessageType::Inform);
        assert_eq!(r.requested_ip, Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(r.client_id, None);
    }

    #[test]
    fn missing_message_type() {
        let bytes = with_options(&[50, 4, 10, 0, 0, 2, 255]);
        assert_eq!(parse(&bytes).err(), Some(Error::MissingMessageType));
    }

    #[test]
    fn repeated_option_first_wins() {
        let bytes = with_options(&[53, 1, 3, 53, 1, 1, 50, 4, 1, 1, 1, 1, 50, 4, 2, 2, 2, 2, 255]);
        let r = parse(&bytes).unwrap();
        assert_eq!(r.message_type, MessageType::Request);
        assert_eq!(r.requested_ip, Some(Ipv4Addr::new(1, 1, 1, 1)));
    }

    #[test]
    fn iterator_stops_after_error() {
        let bytes = with_options(&[53, 1, 1, 55, 9, 1]);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        let mut it = p.options();
        assert!(it.next().unwrap().is_ok());
        assert_eq!(it.next(), Some(Err(Error::OptionOverrun { code: 55 })));
        assert_eq!(it.next(), None);
        assert_eq!(it.next(), None);
    }

    #[test]
    fn code_enums_total_and_reversible() {
        for n in 0..=255u8 {
            assert_eq!(u8::from(MessageType::from(n)), n);
            assert_eq!(u8::from(OpCode::from(n)), n);
        }
        assert_eq!(MessageType::from(8), MessageType::Inform);
        assert_eq!(MessageType::from(9), MessageType::Unknown(9));
    }

    #[test]
    fn search_list_encoding_byte_by_byte() {
        let names = ["example.com".to_string(), "a.b.".to_string(), "x".to_string()];
        let list = DomainList::Names(&names);
        let mut bytes = Vec::new();
        list.encode(&mut |b| bytes.push(b));
        let expected: &[u8] = &[
            7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm',
            0, // example.com
            1, b'a', 1, b'b', 0, // a.b. (the root dot adds nothing)
            1, b'x', 0, // x
        ];
        assert_eq!(bytes, expected);
        assert_eq!(list.encoded_len(), expected.len());
    }

    #[test]
    fn search_list_skips_unencodable_names() {
        let label63 = "a".repeat(63);
        let label64 = "a".repeat(64);
        // 4 labels of 63 bytes: 4 * 64 + 1 = 257 bytes, over 255.
        let too_long = [label63.as_str(); 4].join(".");
        // 3 labels of 63 and one of 61: 3 * 64 + 62 + 1 = 255, the limit.
        let longest = format!("{label63}.{label63}.{label63}.{}", "b".repeat(61));
        assert_eq!(domain_wire_len(&longest), Some(255));
        assert_eq!(domain_wire_len(&too_long), None);
        assert_eq!(domain_wire_len(&label63), Some(65));
        assert_eq!(domain_wire_len(&label64), None);
        for bad in ["", ".", "a..b", ".a", "a.b.."] {
            assert_eq!(domain_wire_len(bad), None, "{bad:?}");
        }
        let names = ["".to_string(), label64, "ok".to_string(), too_long, "a..b".to_string()];
        let mut bytes = Vec::new();
        DomainList::Names(&names).encode(&mut |b| bytes.push(b));
        assert_eq!(bytes, [2, b'o', b'k', 0]);
        assert_eq!(DomainList::Names(&names).encoded_len(), 4);
    }

    #[test]
    fn long_option_split_per_rfc3396() {
        let data: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
        assert_eq!(encoded_option_len(300), 304);
        assert_eq!(encoded_option_len(255), 257);
        assert_eq!(encoded_option_len(256), 260);
        assert_eq!(encoded_option_len(0), 2);
        let mut area = vec![0xee; 305];
        let mut w = OptionWriter::new(&mut area);
        assert_eq!(w.remaining(), 304);
        w.write(119, &data).unwrap();
        assert_eq!(w.remaining(), 0);
        assert_eq!(w.finish(), Ok(305));
        assert_eq!(&area[..2], &[119, 255]);
        assert_eq!(&area[2..257], &data[..255]);
        assert_eq!(&area[257..259], &[119, 45]);
        assert_eq!(&area[259..304], &data[255..]);
        assert_eq!(area[304], 255);
    }

    #[test]
    fn writer_refuses_what_does_not_fit() {
        let mut area = [0xee; 8];
        let mut w = OptionWriter::new(&mut area);
        w.write(53, &[1]).unwrap(); // 3 bytes, 4 left for options + END
        assert_eq!(w.remaining(), 4);
        assert_eq!(w.write(54, &[1, 2, 3, 4]), Err(Error::NoSpace));
        assert_eq!(w.write_with(6, 8, |_| {}), Err(Error::NoSpace));
        w.write(224, &[]).unwrap(); // zero-length: 2 bytes
        w.write(12, b"h").unwrap_err(); // 3 bytes, 2 left
        assert_eq!(w.position(), 5);
        assert_eq!(w.finish(), Ok(6));
        assert_eq!(area, [53, 1, 1, 224, 0, 255, 0xee, 0xee]);
        assert_eq!(OptionWriter::new(&mut []).finish(), Err(Error::NoSpace));
    }

    #[test]
    fn writer_keeps_framing_when_fill_misbehaves() {
        let mut area = [0xee; 16];
        let mut w = OptionWriter::new(&mut area);
        w.write_with(6, 4, |s| (0..9).for_each(|b| s.push(b))).unwrap(); // too many
        w.write_with(3, 4, |s| s.push(7)).unwrap(); // too few
        assert_eq!(w.finish(), Ok(13));
        assert_eq!(&area[..13], &[6, 4, 0, 1, 2, 3, 3, 4, 7, 0, 0, 0, 255]);
    }

    #[test]
    fn long_dns_list_split_at_whole_addresses() {
        // 70 servers: 280 bytes, two instances on the wire, each a valid
        // list of whole addresses; parse keeps the first one (documented).
        let addrs: Vec<Ipv4Addr> = (0..70u8).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect();
        let mut r = Repr::new(OpCode::Reply, MessageType::Ack, 1, MAC);
        r.dns_servers = Some(Ipv4List::Addrs(&addrs));
        assert_eq!(r.option_len(6), Some(284));
        let mut out = vec![0; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut out[..])).unwrap();
        let p = Packet::new_checked(&out[..]).unwrap();
        let opts: Vec<_> = p.options().map(|o| o.unwrap()).collect();
        assert_eq!(opts.len(), 3);
        assert_eq!((opts[1].code, opts[1].data.len()), (6, 252));
        assert_eq!((opts[2].code, opts[2].data.len()), (6, 28));
        let all: Vec<u8> = [opts[1].data, opts[2].data].concat();
        let back: Vec<Ipv4Addr> = Ipv4List::Wire(&all).iter().collect();
        assert_eq!(back, addrs);
        let parsed = parse(&out).unwrap();
        assert_eq!(parsed.dns_servers.unwrap().len(), 63);
        assert_eq!(parsed.dns_servers.unwrap().get(62), Some(Ipv4Addr::new(10, 0, 0, 62)));
    }

    #[test]
    fn ipv4_list_views_agree_and_bound() {
        let wire = [10, 0, 0, 1, 10, 0, 0, 2, 7]; // a stray byte: not an address
        let addrs = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)];
        assert_eq!(Ipv4List::Wire(&wire).len(), 2);
        assert_eq!(Ipv4List::Wire(&wire), Ipv4List::Addrs(&addrs));
        assert_ne!(Ipv4List::Wire(&wire[..4]), Ipv4List::Addrs(&addrs));
        for list in [Ipv4List::Wire(&wire), Ipv4List::Addrs(&addrs)] {
            assert_eq!(list.get(2), None);
            assert_eq!(list.get(usize::MAX), None);
            assert_eq!(list.get(usize::MAX / 4), None);
        }
        assert!(Ipv4List::Wire(&wire[..3]).is_empty());
    }

    #[test]
    fn display_is_one_line() {
        let bytes = udhcpc_discover();
        let p = Packet::new_checked(&bytes[..]).unwrap();
        let line = p.to_string();
        assert!(line.starts_with("DHCP DISCOVER xid=0x3d1d528a chaddr=52:54:00:12:34:56"));
        assert!(!line.contains('\n'));
        let short = Packet::new_unchecked(&bytes[..10]).to_string();
        assert_eq!(short, "DHCP (shorter than the BOOTP header)");
    }

    /// Random reprs: emit, parse, same repr.
    #[test]
    fn random_repr_round_trip() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let names = ["example.com".to_string(), "corp.example".to_string()];
        let addrs = [Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(8, 8, 4, 4)];
        let mut client_id = [0u8; 40];
        let mut prl = [0u8; 40];
        for _ in 0..2000 {
            let mac = [rng.byte(), rng.byte(), rng.byte(), rng.byte(), rng.byte(), rng.byte()];
            let op = OpCode::from(rng.byte());
            let mut r = Repr::new(op, MessageType::from(rng.byte()), rng.next() as u32, mac);
            r.secs = rng.next() as u16;
            r.hops = rng.byte();
            r.broadcast = rng.below(2) == 0;
            r.ciaddr = Ipv4Addr::from(rng.next() as u32);
            r.yiaddr = Ipv4Addr::from(rng.next() as u32);
            let maybe = |rng: &mut Rng| rng.below(2) == 0;
            let ip = |rng: &mut Rng| Ipv4Addr::from(rng.next() as u32);
            if maybe(&mut rng) {
                r.requested_ip = Some(ip(&mut rng));
            }
            if maybe(&mut rng) {
                r.server_id = Some(ip(&mut rng));
            }
            if maybe(&mut rng) {
                let n = 1 + rng.below(40);
                client_id.iter_mut().for_each(|b| *b = rng.byte());
                r.client_id = Some(&client_id[..n]);
            }
            if maybe(&mut rng) {
                let n = 1 + rng.below(40);
                prl.iter_mut().for_each(|b| *b = rng.byte());
                r.parameter_request_list = Some(&prl[..n]);
            }
            if maybe(&mut rng) {
                r.max_message_size = Some(rng.next() as u16);
                r.interface_mtu = Some(rng.next() as u16);
                r.lease_time = Some(rng.next() as u32);
                r.renewal_time = Some(rng.next() as u32);
                r.rebinding_time = Some(rng.next() as u32);
            }
            if maybe(&mut rng) {
                r.subnet_mask = Some(ip(&mut rng));
                r.router = Some(ip(&mut rng));
                r.dns_servers = Some(Ipv4List::Addrs(&addrs[..1 + rng.below(2)]));
                r.domain_name = Some(b"example.com");
                r.domain_search = Some(DomainList::Names(&names[..1 + rng.below(2)]));
            }
            let mut out = vec![0; r.buffer_len()];
            assert_eq!(r.emit(&mut Packet::new_unchecked(&mut out[..])), Ok(out.len()));
            assert_eq!(parse(&out).unwrap(), r);
        }
    }

    /// Random and mutated bytes: parsing never panics.
    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let base = udhcpc_discover();
        for i in 0..10_000 {
            let bytes = if i % 2 == 0 {
                let len = rng.below(400);
                let mut b: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
                if b.len() >= OPTIONS_OFFSET {
                    b[236..240].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
                }
                b
            } else {
                let mut b = base.clone();
                for _ in 0..1 + rng.below(6) {
                    let at = OPTIONS_OFFSET + rng.below(b.len() - OPTIONS_OFFSET);
                    b[at] = rng.byte();
                }
                b.truncate(OPTIONS_OFFSET + rng.below(b.len() - OPTIONS_OFFSET + 1));
                b
            };
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = p.to_string();
                if let Ok(r) = Repr::parse(&p) {
                    let mut out = vec![0; r.buffer_len()];
                    assert_eq!(r.emit(&mut Packet::new_unchecked(&mut out[..])), Ok(out.len()));
                }
            }
        }
    }
}
