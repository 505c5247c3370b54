//! Neighbor Discovery messages (RFC 4861) and the DNS options of RFC 8106.
//!
//! What this file knows: the bytes of the four NDP messages a router on a
//! one-guest link deals with (Router Solicitation and Advertisement, Neighbor
//! Solicitation and Advertisement, RFC 4861 §4.1-4.4), and the options they
//! carry (§4.6): source/target link-layer address (Ethernet only), prefix
//! information, MTU, Recursive DNS Server and DNS Search List (RFC 8106 §5).
//!
//! The input is the ICMPv6 message (type, code, checksum, body) whose IPv6
//! header and checksum the caller has already validated. [`Packet`] is a
//! zero-copy view whose checked constructor guarantees the fixed header of
//! the message type is present; [`Repr::parse`] then validates the code and
//! every option (RFC 4861 §6.1, §7.1: a zero option length or an option
//! running past the end invalidates the whole message). Options stay borrowed
//! from the message ([`Options`]); emission goes through [`Repr::emit`] and
//! [`NdpOption::emit`], which return an error instead of writing past the
//! caller's buffer. The checksum field is always written as zero: the
//! caller computes it over the IPv6 pseudo-header.
//!
//! Left out: Redirect (§4.5) is only named, not parsed; link-layer address
//! options of non-Ethernet lengths are refused; option kinds we do not know
//! are kept as opaque bytes.
//!
//! The DNS name encoding (RFC 1035 §3.1, no compression) shared with DHCPv6
//! (RFC 8415 §10) lives here too: [`DomainList`] and [`encoded_name_len`].

use std::fmt;
use std::net::Ipv6Addr;

/// Length of the common ICMPv6 header: type, code, checksum.
pub const ICMPV6_HEADER_LEN: usize = 4;
/// Option lengths are counted in units of 8 bytes (RFC 4861 §4.6).
pub const OPTION_UNIT: usize = 8;
/// The longest option: a one-byte length of 255 units.
pub const MAX_OPTION_LEN: usize = 255 * OPTION_UNIT;

/// RA flag "Managed address configuration" (RFC 4861 §4.2).
pub const RA_FLAG_MANAGED: u8 = 0x80;
/// RA flag "Other configuration" (RFC 4861 §4.2).
pub const RA_FLAG_OTHER: u8 = 0x40;
/// NA flag "Router" (RFC 4861 §4.4).
pub const NA_FLAG_ROUTER: u8 = 0x80;
/// NA flag "Solicited" (RFC 4861 §4.4).
pub const NA_FLAG_SOLICITED: u8 = 0x40;
/// NA flag "Override" (RFC 4861 §4.4).
pub const NA_FLAG_OVERRIDE: u8 = 0x20;
/// Prefix information flag "on-link" (L, RFC 4861 §4.6.2).
pub const PREFIX_FLAG_ON_LINK: u8 = 0x80;
/// Prefix information flag "autonomous address configuration" (A).
pub const PREFIX_FLAG_AUTONOMOUS: u8 = 0x40;

/// Lifetime value meaning "forever" (prefix, RDNSS and DNSSL lifetimes).
pub const INFINITE_LIFETIME: u32 = 0xffff_ffff;

/// Byte offsets of the fixed fields (RFC 4861 §4.1-4.4).
mod field {
    use std::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    /// RS: 4 reserved bytes; NS/NA: flags (NA) then reserved.
    pub const RESERVED: Range<usize> = 4..8;
    pub const NA_FLAGS: usize = 4;
    pub const NS_TARGET: Range<usize> = 8..24;
    pub const RA_CUR_HOP_LIMIT: usize = 4;
    pub const RA_FLAGS: usize = 5;
    pub const RA_ROUTER_LIFETIME: Range<usize> = 6..8;
    pub const RA_REACHABLE_TIME: Range<usize> = 8..12;
    pub const RA_RETRANS_TIMER: Range<usize> = 12..16;
}

/// Option kinds (RFC 4861 §4.6, RFC 8106 §5).
pub mod kind {
    pub const SOURCE_LLA: u8 = 1;
    pub const TARGET_LLA: u8 = 2;
    pub const PREFIX_INFO: u8 = 3;
    pub const REDIRECTED_HEADER: u8 = 4;
    pub const MTU: u8 = 5;
    pub const RDNSS: u8 = 25;
    pub const DNSSL: u8 = 31;
}

/// Why an NDP message or option was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the fixed header of its message type.
    Truncated,
    /// An ICMPv6 type that is not one of the NDP messages parsed here.
    UnknownType(u8),
    /// The code field is not zero (RFC 4861 §6.1, §7.1).
    BadCode(u8),
    /// An option's length field is zero (RFC 4861 §4.6: invalid).
    ZeroLengthOption,
    /// An option (or its 2-byte header) runs past the end of the message.
    OptionPastEnd,
    /// A known option kind with a length that does not fit its format.
    BadOptionLength {
        /// The option kind.
        kind: u8,
        /// Its length field, in units of 8 bytes.
        len: u8,
    },
    /// A prefix information option with a prefix length above 128.
    BadPrefixLength(u8),
    /// A DNS Search List holds a malformed or compressed domain name.
    BadDomainName,
    /// The target address of an NS/NA is a multicast address.
    MulticastTarget,
    /// The option to emit would not fit in 255 units of 8 bytes.
    OptionTooLong,
    /// The output buffer is too small for what is being emitted.
    BufferTooSmall,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("truncated NDP message"),
            Error::UnknownType(t) => write!(f, "ICMPv6 type {t} is not NDP"),
            Error::BadCode(c) => write!(f, "non-zero NDP code {c}"),
            Error::ZeroLengthOption => f.write_str("NDP option with length 0"),
            Error::OptionPastEnd => f.write_str("NDP option runs past the end"),
            Error::BadOptionLength { kind, len } => {
                write!(f, "NDP option {kind} with bad length {len}")
            }
            Error::BadPrefixLength(l) => write!(f, "prefix length {l} above 128"),
            Error::BadDomainName => f.write_str("malformed domain name"),
            Error::MulticastTarget => f.write_str("multicast NS/NA target"),
            Error::OptionTooLong => f.write_str("NDP option too long to encode"),
            Error::BufferTooSmall => f.write_str("output buffer too small"),
        }
    }
}

impl std::error::Error for Error {}

/// ICMPv6 message types of Neighbor Discovery; total over `u8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// Router Solicitation, 133.
    RouterSolicit,
    /// Router Advertisement, 134.
    RouterAdvert,
    /// Neighbor Solicitation, 135.
    NeighborSolicit,
    /// Neighbor Advertisement, 136.
    NeighborAdvert,
    /// Redirect, 137.
    Redirect,
    /// Anything else (not NDP).
    Unknown(u8),
}

impl From<u8> for MessageType {
    fn from(v: u8) -> Self {
        match v {
            133 => MessageType::RouterSolicit,
            134 => MessageType::RouterAdvert,
            135 => MessageType::NeighborSolicit,
            136 => MessageType::NeighborAdvert,
            137 => MessageType::Redirect,
            other => MessageType::Unknown(other),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(t: MessageType) -> u8 {
        match t {
            MessageType::RouterSolicit => 133,
            MessageType::RouterAdvert => 134,
            MessageType::NeighborSolicit => 135,
            MessageType::NeighborAdvert => 136,
            MessageType::Redirect => 137,
            MessageType::Unknown(v) => v,
        }
    }
}

impl MessageType {
    /// Length of the fixed part before the options (RFC 4861 §4.1-4.5);
    /// the bare ICMPv6 header for unknown types.
    pub fn header_len(self) -> usize {
        match self {
            MessageType::RouterSolicit => 8,
            MessageType::RouterAdvert => 16,
            MessageType::NeighborSolicit | MessageType::NeighborAdvert => 24,
            MessageType::Redirect => 40,
            MessageType::Unknown(_) => ICMPV6_HEADER_LEN,
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageType::RouterSolicit => f.write_str("RS"),
            MessageType::RouterAdvert => f.write_str("RA"),
            MessageType::NeighborSolicit => f.write_str("NS"),
            MessageType::NeighborAdvert => f.write_str("NA"),
            MessageType::Redirect => f.write_str("Redirect"),
            MessageType::Unknown(t) => write!(f, "ICMPv6 type {t}"),
        }
    }
}

fn be16(b: &[u8; 2]) -> u16 {
    u16::from_be_bytes(*b)
}

/// Copies `N` bytes at `at`; callers guarantee the range is in bounds
/// (checked constructor or explicit length test right before).
fn array_at<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = b.get(at..at + N) {
        out.copy_from_slice(src);
    }
    out
}

/// Writes `bytes` at `at` in `buf`, or fails without writing.
fn put(buf: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), Error> {
    let end = at.checked_add(bytes.len()).ok_or(Error::BufferTooSmall)?;
    buf.get_mut(at..end)
        .ok_or(Error::BufferTooSmall)?
        .copy_from_slice(bytes);
    Ok(())
}

/// A zero-copy view of an NDP message (ICMPv6 header included).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; for building replies only.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer after checking it holds the fixed header of its type;
    /// after this no getter can panic.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the buffer holds the fixed header of its message type.
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < ICMPV6_HEADER_LEN || b.len() < self.msg_type().header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The ICMPv6 type.
    pub fn msg_type(&self) -> MessageType {
        self.bytes().get(field::TYPE).copied().unwrap_or(0).into()
    }

    /// The ICMPv6 code (0 for every valid NDP message).
    pub fn code(&self) -> u8 {
        self.bytes().get(field::CODE).copied().unwrap_or(0)
    }

    /// The ICMPv6 checksum as found in the message.
    pub fn checksum(&self) -> u16 {
        be16(&array_at(self.bytes(), field::CHECKSUM.start))
    }

    /// RA: the Cur Hop Limit field.
    pub fn cur_hop_limit(&self) -> u8 {
        self.bytes()
            .get(field::RA_CUR_HOP_LIMIT)
            .copied()
            .unwrap_or(0)
    }

    /// RA: the flags byte (M, O and reserved bits).
    pub fn ra_flags(&self) -> u8 {
        self.bytes().get(field::RA_FLAGS).copied().unwrap_or(0)
    }

    /// RA: the Router Lifetime in seconds.
    pub fn router_lifetime(&self) -> u16 {
        be16(&array_at(self.bytes(), field::RA_ROUTER_LIFETIME.start))
    }

    /// RA: the Reachable Time in milliseconds.
    pub fn reachable_time(&self) -> u32 {
        u32::from_be_bytes(array_at(self.bytes(), field::RA_REACHABLE_TIME.start))
    }

    /// RA: the Retrans Timer in milliseconds.
    pub fn retrans_timer(&self) -> u32 {
        u32::from_be_bytes(array_at(self.bytes(), field::RA_RETRANS_TIMER.start))
    }

    /// NA: the flags byte (R, S, O and reserved bits).
    pub fn na_flags(&self) -> u8 {
        self.bytes().get(field::NA_FLAGS).copied().unwrap_or(0)
    }

    /// NS/NA: the target address.
    pub fn target_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(array_at::<16>(self.bytes(), field::NS_TARGET.start))
    }

    /// The raw option bytes after the fixed header (not yet validated).
    pub fn options(&self) -> &[u8] {
        let start = self.msg_type().header_len();
        self.bytes().get(start..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_byte(&mut self, at: usize, v: u8) {
        if let Some(b) = self.buffer.as_mut().get_mut(at) {
            *b = v;
        }
    }

    fn set_bytes(&mut self, at: usize, v: &[u8]) {
        // A short buffer makes this a no-op rather than a panic; emitters
        // check the length first.
        let _ = put(self.buffer.as_mut(), at, v);
    }

    /// Sets the ICMPv6 type.
    pub fn set_msg_type(&mut self, t: MessageType) {
        self.set_byte(field::TYPE, t.into());
    }

    /// Sets the ICMPv6 code.
    pub fn set_code(&mut self, code: u8) {
        self.set_byte(field::CODE, code);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.set_bytes(field::CHECKSUM.start, &v.to_be_bytes());
    }

    /// Zeroes the 4 bytes after the ICMPv6 header (RS/NS reserved, NA flags).
    pub fn clear_reserved(&mut self) {
        self.set_bytes(field::RESERVED.start, &[0; 4]);
    }

    /// RA: sets the Cur Hop Limit.
    pub fn set_cur_hop_limit(&mut self, v: u8) {
        self.set_byte(field::RA_CUR_HOP_LIMIT, v);
    }

    /// RA: sets the flags byte.
    pub fn set_ra_flags(&mut self, v: u8) {
        self.set_byte(field::RA_FLAGS, v);
    }

    /// RA: sets the Router Lifetime (seconds).
    pub fn set_router_lifetime(&mut self, v: u16) {
        self.set_bytes(field::RA_ROUTER_LIFETIME.start, &v.to_be_bytes());
    }

    /// RA: sets the Reachable Time (milliseconds).
    pub fn set_reachable_time(&mut self, v: u32) {
        self.set_bytes(field::RA_REACHABLE_TIME.start, &v.to_be_bytes());
    }

    /// RA: sets the Retrans Timer (milliseconds).
    pub fn set_retrans_timer(&mut self, v: u32) {
        self.set_bytes(field::RA_RETRANS_TIMER.start, &v.to_be_bytes());
    }

    /// NA: sets the flags byte (the 3 reserved bytes after it are untouched).
    pub fn set_na_flags(&mut self, v: u8) {
        self.set_byte(field::NA_FLAGS, v);
    }

    /// NS/NA: sets the target address.
    pub fn set_target_addr(&mut self, a: Ipv6Addr) {
        self.set_bytes(field::NS_TARGET.start, &a.octets());
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Repr::parse(self) {
            Ok(repr) => write!(f, "{repr}"),
            Err(e) => write!(
                f,
                "{} ({} bytes, invalid: {e})",
                self.msg_type(),
                self.bytes().len()
            ),
        }
    }
}

/// A validated sequence of NDP options, borrowed from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options<'a> {
    bytes: &'a [u8],
}

impl<'a> Options<'a> {
    /// Validates every option (RFC 4861 §4.6 lengths, known-kind formats).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let (option, after) = split_option(rest)?;
            NdpOption::parse(option)?;
            rest = after;
        }
        Ok(Options { bytes })
    }

    /// No options at all.
    pub fn empty() -> Self {
        Options { bytes: &[] }
    }

    /// The raw option bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The options in order.
    pub fn iter(&self) -> OptionIter<'a> {
        OptionIter { rest: self.bytes }
    }

    /// The first Source Link-Layer Address option.
    pub fn source_lla(&self) -> Option<[u8; 6]> {
        self.iter().find_map(|o| match o {
            NdpOption::SourceLla(mac) => Some(mac),
            _ => None,
        })
    }

    /// The first Target Link-Layer Address option.
    pub fn target_lla(&self) -> Option<[u8; 6]> {
        self.iter().find_map(|o| match o {
            NdpOption::TargetLla(mac) => Some(mac),
            _ => None,
        })
    }
}

/// Splits the first option (header included) off `rest`.
fn split_option(rest: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let units = *rest.get(1).ok_or(Error::OptionPastEnd)?;
    if units == 0 {
        return Err(Error::ZeroLengthOption);
    }
    let len = usize::from(units) * OPTION_UNIT;
    if len > rest.len() {
        return Err(Error::OptionPastEnd);
    }
    Ok(rest.split_at(len))
}

/// Iterator over validated options (stops silently on invalid bytes, which
/// [`Options::parse`] has ruled out).
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = NdpOption<'a>;

    fn next(&mut self) -> Option<NdpOption<'a>> {
        let (option, after) = split_option(self.rest).ok()?;
        self.rest = after;
        NdpOption::parse(option).ok()
    }
}

/// The Prefix Information option body (RFC 4861 §4.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixInfo {
    /// Number of leading bits of `prefix` that are valid (0..=128).
    pub prefix_len: u8,
    /// L, A and reserved bits.
    pub flags: u8,
    /// Valid lifetime, seconds ([`INFINITE_LIFETIME`]: forever).
    pub valid_lifetime: u32,
    /// Preferred lifetime, seconds.
    pub preferred_lifetime: u32,
    /// The prefix; bits after `prefix_len` are zero when we send it.
    pub prefix: Ipv6Addr,
}

impl PrefixInfo {
    /// The L flag.
    pub fn on_link(&self) -> bool {
        self.flags & PREFIX_FLAG_ON_LINK != 0
    }

    /// The A flag.
    pub fn autonomous(&self) -> bool {
        self.flags & PREFIX_FLAG_AUTONOMOUS != 0
    }
}

/// A list of IPv6 addresses: as found in a message, or as given by us.
#[derive(Clone, Copy)]
pub enum Ipv6List<'a> {
    /// Raw bytes, a multiple of 16 long (checked by the parser).
    Wire(&'a [u8]),
    /// Addresses to send.
    Addrs(&'a [Ipv6Addr]),
}

impl<'a> Ipv6List<'a> {
    /// Number of addresses.
    pub fn len(&self) -> usize {
        match self {
            Ipv6List::Wire(b) => b.len() / 16,
            Ipv6List::Addrs(a) => a.len(),
        }
    }

    /// No address at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The addresses in order.
    pub fn iter(&self) -> impl Iterator<Item = Ipv6Addr> + 'a {
        let (wire, addrs): (&'a [u8], &'a [Ipv6Addr]) = match *self {
            Ipv6List::Wire(b) => (b, &[]),
            Ipv6List::Addrs(a) => (&[], a),
        };
        wire.chunks_exact(16)
            .map(|c| Ipv6Addr::from(array_at::<16>(c, 0)))
            .chain(addrs.iter().copied())
    }

    /// Writes the addresses back to back at the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut at = 0;
        for a in self.iter() {
            put(buf, at, &a.octets())?;
            at += 16;
        }
        Ok(at)
    }
}

impl PartialEq for Ipv6List<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Ipv6List<'_> {}

impl fmt::Debug for Ipv6List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Display for Ipv6List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

/// The longest encoded domain name (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// The longest label.
pub const MAX_LABEL_LEN: usize = 63;

/// Bytes `name` takes once encoded as DNS labels, or `None` when it cannot
/// be encoded: empty (the root is no search domain), an empty label ("a..b"),
/// a label over 63 bytes or a name over 255 bytes. A trailing dot is allowed.
pub fn encoded_name_len(name: &str) -> Option<usize> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return None;
    }
    let mut len = 1; // the terminating root label
    for label in name.split('.') {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return None;
        }
        len += 1 + label.len();
    }
    (len <= MAX_NAME_LEN).then_some(len)
}

/// Encodes `name` at the start of `buf`; returns the length, or `None` if
/// the name is not encodable or `buf` is too short (nothing useful written).
pub fn encode_name(name: &str, buf: &mut [u8]) -> Option<usize> {
    let len = encoded_name_len(name)?;
    let out = buf.get_mut(..len)?;
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut at = 0;
    for label in name.split('.') {
        // Each label is 1..=63 bytes: checked by encoded_name_len.
        out[at] = label.len() as u8;
        out[at + 1..at + 1 + label.len()].copy_from_slice(label.as_bytes());
        at += 1 + label.len();
    }
    out[at] = 0;
    Some(len)
}

/// Validates a run of encoded names and returns the length they take.
/// With `padded` (DNSSL), a zero byte where a name would start begins the
/// padding, and everything after it must be zero too; without (DHCPv6
/// option 24), the names must fill `bytes` exactly and none may be empty.
pub fn check_names(bytes: &[u8], padded: bool) -> Result<usize, Error> {
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == 0 {
            if padded && bytes[at..].iter().all(|&b| b == 0) {
                return Ok(at);
            }
            return Err(Error::BadDomainName);
        }
        at += check_one_name(&bytes[at..])?;
    }
    Ok(at)
}

/// Length of the first encoded name of `bytes` (root label included).
fn check_one_name(bytes: &[u8]) -> Result<usize, Error> {
    let mut at = 0;
    loop {
        let label = usize::from(*bytes.get(at).ok_or(Error::BadDomainName)?);
        if label > MAX_LABEL_LEN {
            // 0xc0 pointers and the reserved 0x40/0x80 kinds: no compression
            // in NDP or DHCPv6 (RFC 8106 §5.2, RFC 8415 §10).
            return Err(Error::BadDomainName);
        }
        at += 1 + label;
        if at > MAX_NAME_LEN || at > bytes.len() {
            return Err(Error::BadDomainName);
        }
        if label == 0 {
            return Ok(at);
        }
    }
}

/// Renders one encoded name (validated) as dotted text; bytes outside
/// printable ASCII, dots and backslashes inside labels are escaped.
fn write_name(f: &mut impl fmt::Write, encoded: &[u8]) -> fmt::Result {
    let mut at = 0;
    let mut first = true;
    while let Some(&len) = encoded.get(at) {
        if len == 0 {
            break;
        }
        if !first {
            f.write_char('.')?;
        }
        first = false;
        let label = encoded
            .get(at + 1..at + 1 + usize::from(len))
            .unwrap_or(&[]);
        for &b in label {
            if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                f.write_char(char::from(b))?;
            } else {
                write!(f, "\\{b:03}")?;
            }
        }
        at += 1 + usize::from(len);
    }
    Ok(())
}

/// A list of domain names: encoded as found in a message, or as text to send.
#[derive(Clone, Copy)]
pub enum DomainList<'a> {
    /// Validated encoded names, without padding.
    Wire(&'a [u8]),
    /// Names to send; those [`encoded_name_len`] refuses are skipped.
    Names(&'a [String]),
}

impl DomainList<'_> {
    /// Bytes the encoded names take (no padding).
    pub fn encoded_len(&self) -> usize {
        match self {
            DomainList::Wire(b) => b.len(),
            DomainList::Names(names) => names.iter().filter_map(|n| encoded_name_len(n)).sum(),
        }
    }

    /// No (encodable) name at all.
    pub fn is_empty(&self) -> bool {
        self.encoded_len() == 0
    }

    /// Writes the encoded names at the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        match self {
            DomainList::Wire(b) => put(buf, 0, b).map(|()| b.len()),
            DomainList::Names(names) => {
                let mut at = 0;
                for name in names.iter() {
                    if encoded_name_len(name).is_none() {
                        continue;
                    }
                    let rest = buf.get_mut(at..).ok_or(Error::BufferTooSmall)?;
                    at += encode_name(name, rest).ok_or(Error::BufferTooSmall)?;
                }
                Ok(at)
            }
        }
    }

    /// The names as dotted text (allocates: for logs and tests).
    pub fn to_strings(&self) -> Vec<String> {
        let mut encoded = vec![0u8; self.encoded_len()];
        let len = self.emit(&mut encoded).unwrap_or(0);
        let mut out = Vec::new();
        let mut at = 0;
        while at < len {
            let Ok(n) = check_one_name(&encoded[at..len]) else {
                break;
            };
            let mut s = String::new();
            let _ = write_name(&mut s, &encoded[at..at + n]);
            out.push(s);
            at += n;
        }
        out
    }
}

impl PartialEq for DomainList<'_> {
    fn eq(&self, other: &Self) -> bool {
        let mut a = vec![0u8; self.encoded_len()];
        let mut b = vec![0u8; other.encoded_len()];
        self.emit(&mut a).is_ok() && other.emit(&mut b).is_ok() && a == b
    }
}

impl Eq for DomainList<'_> {}

impl fmt::Debug for DomainList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.to_strings()).finish()
    }
}

impl fmt::Display for DomainList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_strings().join(","))
    }
}

/// One NDP option, parsed or to be emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdpOption<'a> {
    /// Source Link-Layer Address (kind 1), Ethernet.
    SourceLla([u8; 6]),
    /// Target Link-Layer Address (kind 2), Ethernet.
    TargetLla([u8; 6]),
    /// Prefix Information (kind 3).
    PrefixInfo(PrefixInfo),
    /// MTU (kind 5), bytes.
    Mtu(u32),
    /// Recursive DNS Server (kind 25, RFC 8106 §5.1).
    Rdnss {
        /// Seconds the servers may be used.
        lifetime: u32,
        /// At least one server when parsed.
        servers: Ipv6List<'a>,
    },
    /// DNS Search List (kind 31, RFC 8106 §5.2).
    Dnssl {
        /// Seconds the names may be used.
        lifetime: u32,
        /// At least one name when parsed.
        names: DomainList<'a>,
    },
    /// Any other kind: the bytes after the 2-byte header, padding included.
    Unknown {
        /// Option kind.
        kind: u8,
        /// Body; emitted padded with zeros to a multiple of 8 with the header.
        data: &'a [u8],
    },
}

impl<'a> NdpOption<'a> {
    /// Parses one option, header included; `bytes` must be exactly the
    /// option (as cut by its length field).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let (&kind, &units) = match bytes {
            [k, l, ..] => (k, l),
            _ => return Err(Error::OptionPastEnd),
        };
        if units == 0 {
            return Err(Error::ZeroLengthOption);
        }
        if usize::from(units) * OPTION_UNIT != bytes.len() {
            return Err(Error::OptionPastEnd);
        }
        let bad_len = Error::BadOptionLength { kind, len: units };
        match kind {
            kind::SOURCE_LLA | kind::TARGET_LLA => {
                if units != 1 {
                    return Err(bad_len);
                }
                let mac = array_at::<6>(bytes, 2);
                Ok(if kind == kind::SOURCE_LLA {
                    NdpOption::SourceLla(mac)
                } else {
                    NdpOption::TargetLla(mac)
                })
            }
            kind::PREFIX_INFO => {
                if units != 4 {
                    return Err(bad_len);
                }
                let prefix_len = bytes[2];
                if prefix_len > 128 {
                    return Err(Error::BadPrefixLength(prefix_len));
                }
                Ok(NdpOption::PrefixInfo(PrefixInfo {
                    prefix_len,
                    flags: bytes[3],
                    valid_lifetime: u32::from_be_bytes(array_at(bytes, 4)),
                    preferred_lifetime: u32::from_be_bytes(array_at(bytes, 8)),
                    prefix: Ipv6Addr::from(array_at::<16>(bytes, 16)),
                }))
            }
            kind::MTU => {
                if units != 1 {
                    return Err(bad_len);
                }
                Ok(NdpOption::Mtu(u32::from_be_bytes(array_at(bytes, 4))))
            }
            kind::RDNSS => {
                // 8-byte header then 16 bytes per server: an odd count >= 3.
                if units < 3 || units % 2 == 0 {
                    return Err(bad_len);
                }
                Ok(NdpOption::Rdnss {
                    lifetime: u32::from_be_bytes(array_at(bytes, 4)),
                    servers: Ipv6List::Wire(&bytes[8..]),
                })
            }
            kind::DNSSL => {
                if units < 2 {
                    return Err(bad_len);
                }
                let names = &bytes[8..];
                let used = check_names(names, true)?;
                if used == 0 {
                    return Err(Error::BadDomainName);
                }
                Ok(NdpOption::Dnssl {
                    lifetime: u32::from_be_bytes(array_at(bytes, 4)),
                    names: DomainList::Wire(&names[..used]),
                })
            }
            _ => Ok(NdpOption::Unknown {
                kind,
                data: &bytes[2..],
            }),
        }
    }

    /// Bytes the option takes on the wire, header and padding included.
    pub fn buffer_len(&self) -> usize {
        match self {
            NdpOption::SourceLla(_) | NdpOption::TargetLla(_) | NdpOption::Mtu(_) => 8,
            NdpOption::PrefixInfo(_) => 32,
            NdpOption::Rdnss { servers, .. } => 8 + 16 * servers.len(),
            NdpOption::Dnssl { names, .. } => 8 + round_up8(names.encoded_len()),
            NdpOption::Unknown { data, .. } => round_up8(2 + data.len()),
        }
    }

    /// Writes the option at the start of `buf`; returns its length.
    ///
    /// # Errors
    /// [`Error::OptionTooLong`] above 2040 bytes, [`Error::BufferTooSmall`]
    /// when `buf` is shorter than [`Self::buffer_len`]. Nothing is promised
    /// about `buf`'s contents on error, but nothing past it is touched.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = self.buffer_len();
        if len > MAX_OPTION_LEN {
            return Err(Error::OptionTooLong);
        }
        let out = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        out.fill(0);
        out[0] = self.kind();
        out[1] = (len / OPTION_UNIT) as u8; // <= 255: checked above
        match self {
            NdpOption::SourceLla(mac) | NdpOption::TargetLla(mac) => put(out, 2, mac)?,
            NdpOption::PrefixInfo(p) => {
                out[2] = p.prefix_len;
                out[3] = p.flags;
                put(out, 4, &p.valid_lifetime.to_be_bytes())?;
                put(out, 8, &p.preferred_lifetime.to_be_bytes())?;
                put(out, 16, &p.prefix.octets())?;
            }
            NdpOption::Mtu(mtu) => put(out, 4, &mtu.to_be_bytes())?,
            NdpOption::Rdnss { lifetime, servers } => {
                put(out, 4, &lifetime.to_be_bytes())?;
                servers.emit(&mut out[8..])?;
            }
            NdpOption::Dnssl { lifetime, names } => {
                put(out, 4, &lifetime.to_be_bytes())?;
                names.emit(&mut out[8..])?;
            }
            NdpOption::Unknown { data, .. } => put(out, 2, data)?,
        }
        Ok(len)
    }

    /// The option kind byte.
    pub fn kind(&self) -> u8 {
        match self {
            NdpOption::SourceLla(_) => kind::SOURCE_LLA,
            NdpOption::TargetLla(_) => kind::TARGET_LLA,
            NdpOption::PrefixInfo(_) => kind::PREFIX_INFO,
            NdpOption::Mtu(_) => kind::MTU,
            NdpOption::Rdnss { .. } => kind::RDNSS,
            NdpOption::Dnssl { .. } => kind::DNSSL,
            NdpOption::Unknown { kind, .. } => *kind,
        }
    }
}

fn round_up8(n: usize) -> usize {
    n.div_ceil(OPTION_UNIT) * OPTION_UNIT
}

fn fmt_mac(f: &mut fmt::Formatter<'_>, mac: &[u8; 6]) -> fmt::Result {
    write!(
        f,
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    )
}

impl fmt::Display for NdpOption<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NdpOption::SourceLla(mac) => {
                f.write_str("slla=")?;
                fmt_mac(f, mac)
            }
            NdpOption::TargetLla(mac) => {
                f.write_str("tlla=")?;
                fmt_mac(f, mac)
            }
            NdpOption::PrefixInfo(p) => write!(
                f,
                "prefix={}/{}{}{} valid={} preferred={}",
                p.prefix,
                p.prefix_len,
                if p.on_link() { " L" } else { "" },
                if p.autonomous() { " A" } else { "" },
                p.valid_lifetime,
                p.preferred_lifetime
            ),
            NdpOption::Mtu(m) => write!(f, "mtu={m}"),
            NdpOption::Rdnss { lifetime, servers } => {
                write!(f, "rdnss={servers} lifetime={lifetime}")
            }
            NdpOption::Dnssl { lifetime, names } => write!(f, "dnssl={names} lifetime={lifetime}"),
            NdpOption::Unknown { kind, data } => write!(f, "option{kind}[{}]", data.len() + 2),
        }
    }
}

/// The validated meaning of an NDP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    /// Router Solicitation (RFC 4861 §4.1).
    RouterSolicit {
        /// Options (typically a source link-layer address).
        options: Options<'a>,
    },
    /// Router Advertisement (RFC 4861 §4.2).
    RouterAdvert {
        /// Hop limit hosts should use (0: unspecified).
        cur_hop_limit: u8,
        /// M, O and reserved bits.
        flags: u8,
        /// Seconds this router may be a default router (0: not one).
        router_lifetime: u16,
        /// Milliseconds (0: unspecified).
        reachable_time: u32,
        /// Milliseconds (0: unspecified).
        retrans_timer: u32,
        /// Options.
        options: Options<'a>,
    },
    /// Neighbor Solicitation (RFC 4861 §4.3).
    NeighborSolicit {
        /// Address being resolved (never multicast).
        target: Ipv6Addr,
        /// Options.
        options: Options<'a>,
    },
    /// Neighbor Advertisement (RFC 4861 §4.4).
    NeighborAdvert {
        /// R, S, O and reserved bits.
        flags: u8,
        /// Address advertised (never multicast).
        target: Ipv6Addr,
        /// Options.
        options: Options<'a>,
    },
}

impl<'a> Repr<'a> {
    /// Validates a message: known type, code 0, non-multicast target,
    /// well-formed options. Hop limit, addresses and checksum are the
    /// caller's (they live in the IPv6 header).
    pub fn parse<T: AsRef<[u8]>>(packet: &'a Packet<T>) -> Result<Self, Error> {
        Self::parse_bytes(packet.buffer.as_ref())
    }

    /// Same as [`Repr::parse`], straight from the ICMPv6 message bytes.
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let packet = Packet::new_checked(bytes)?;
        let msg_type = packet.msg_type();
        if matches!(msg_type, MessageType::Unknown(_) | MessageType::Redirect) {
            return Err(Error::UnknownType(msg_type.into()));
        }
        if packet.code() != 0 {
            return Err(Error::BadCode(packet.code()));
        }
        let options = Options::parse(bytes.get(msg_type.header_len()..).unwrap_or(&[]))?;
        match msg_type {
            MessageType::RouterSolicit => Ok(Repr::RouterSolicit { options }),
            MessageType::RouterAdvert => Ok(Repr::RouterAdvert {
                cur_hop_limit: packet.cur_hop_limit(),
                flags: packet.ra_flags(),
                router_lifetime: packet.router_lifetime(),
                reachable_time: packet.reachable_time(),
                retrans_timer: packet.retrans_timer(),
                options,
            }),
            MessageType::NeighborSolicit | MessageType::NeighborAdvert => {
                let target = packet.target_addr();
                if target.is_multicast() {
                    return Err(Error::MulticastTarget);
                }
                Ok(if msg_type == MessageType::NeighborSolicit {
                    Repr::NeighborSolicit { target, options }
                } else {
                    Repr::NeighborAdvert {
                        flags: packet.na_flags(),
                        target,
                        options,
                    }
                })
            }
            MessageType::Redirect | MessageType::Unknown(_) => {
                Err(Error::UnknownType(msg_type.into()))
            }
        }
    }

    /// The message type.
    pub fn msg_type(&self) -> MessageType {
        match self {
            Repr::RouterSolicit { .. } => MessageType::RouterSolicit,
            Repr::RouterAdvert { .. } => MessageType::RouterAdvert,
            Repr::NeighborSolicit { .. } => MessageType::NeighborSolicit,
            Repr::NeighborAdvert { .. } => MessageType::NeighborAdvert,
        }
    }

    /// The options.
    pub fn options(&self) -> Options<'a> {
        match self {
            Repr::RouterSolicit { options }
            | Repr::RouterAdvert { options, .. }
            | Repr::NeighborSolicit { options, .. }
            | Repr::NeighborAdvert { options, .. } => *options,
        }
    }

    /// Bytes the message takes, options included.
    pub fn buffer_len(&self) -> usize {
        self.msg_type().header_len() + self.options().as_bytes().len()
    }

    /// Writes the fixed header (checksum zero, reserved bits zero) at the
    /// start of `buf` and returns its length; options are not written.
    pub fn emit_header(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = self.msg_type().header_len();
        let out = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        out.fill(0);
        let mut p = Packet::new_unchecked(out);
        p.set_msg_type(self.msg_type());
        match *self {
            Repr::RouterSolicit { .. } => {}
            Repr::RouterAdvert {
                cur_hop_limit,
                flags,
                router_lifetime,
                reachable_time,
                retrans_timer,
                ..
            } => {
                p.set_cur_hop_limit(cur_hop_limit);
                p.set_ra_flags(flags);
                p.set_router_lifetime(router_lifetime);
                p.set_reachable_time(reachable_time);
                p.set_retrans_timer(retrans_timer);
            }
            Repr::NeighborSolicit { target, .. } => p.set_target_addr(target),
            Repr::NeighborAdvert { flags, target, .. } => {
                p.set_na_flags(flags);
                p.set_target_addr(target);
            }
        }
        Ok(len)
    }

    /// Writes the whole message (header, then the options' bytes) at the
    /// start of `buf`; returns [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.len() < self.buffer_len() {
            return Err(Error::BufferTooSmall);
        }
        let at = self.emit_header(buf)?;
        put(buf, at, self.options().as_bytes())?;
        Ok(self.buffer_len())
    }
}

impl fmt::Display for Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repr::RouterSolicit { .. } => f.write_str("RS")?,
            Repr::RouterAdvert {
                cur_hop_limit,
                flags,
                router_lifetime,
                ..
            } => write!(
                f,
                "RA hop={cur_hop_limit}{}{} lifetime={router_lifetime}",
                if flags & RA_FLAG_MANAGED != 0 {
                    " M"
                } else {
                    ""
                },
                if flags & RA_FLAG_OTHER != 0 { " O" } else { "" },
            )?,
            Repr::NeighborSolicit { target, .. } => write!(f, "NS target={target}")?,
            Repr::NeighborAdvert { flags, target, .. } => write!(
                f,
                "NA target={target}{}{}{}",
                if flags & NA_FLAG_ROUTER != 0 {
                    " R"
                } else {
                    ""
                },
                if flags & NA_FLAG_SOLICITED != 0 {
                    " S"
                } else {
                    ""
                },
                if flags & NA_FLAG_OVERRIDE != 0 {
                    " O"
                } else {
                    ""
                },
            )?,
        }
        for option in self.options().iter() {
            write!(f, " {option}")?;
        }
        Ok(())
    }
}

/// The all-nodes link-local multicast group, ff02::1.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// The all-routers link-local multicast group, ff02::2.
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// The solicited-node multicast group of `addr` (RFC 4291 §2.7.1):
/// ff02::1:ff00:0/104 plus its low 24 bits.
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ])
}

/// The Ethernet address of an IPv6 multicast group (RFC 2464 §7):
/// 33:33 followed by the group's low 32 bits.
pub fn multicast_mac(group: Ipv6Addr) -> [u8; 6] {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A Router Solicitation as Linux sends it once its link-local address
    /// is ready.
    #[rustfmt::skip]
    const RS: &[u8] = &[
        0x85, 0x00, 0x12, 0x34, // type 133, code 0, checksum (not checked here)
        0x00, 0x00, 0x00, 0x00, // reserved
        0x01, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // SLLA 52:54:00:12:34:56
    ];

    /// A Neighbor Solicitation for fe80::1 (address resolution).
    #[rustfmt::skip]
    const NS: &[u8] = &[
        0x87, 0x00, 0xab, 0xcd, // type 135, code 0, checksum
        0x00, 0x00, 0x00, 0x00, // reserved
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // target fe80::1
        0x01, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // SLLA
    ];

    /// A Neighbor Advertisement for 2001:db8::1: R, S, O set.
    #[rustfmt::skip]
    const NA: &[u8] = &[
        0x88, 0x00, 0x00, 0x00, // type 136, code 0, checksum
        0xe0, 0x00, 0x00, 0x00, // R S O, reserved
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // target
        0x02, 0x01, 0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55, // TLLA 9a:55:9a:55:9a:55
    ];

    /// A Router Advertisement with every option we send.
    #[rustfmt::skip]
    pub(crate) const RA: &[u8] = &[
        0x86, 0x00, 0x00, 0x00, // type 134, code 0, checksum
        0x40, 0xc0, 0x23, 0x28, // cur hop limit 64, M|O, router lifetime 9000
        0x00, 0x00, 0x00, 0x00, // reachable time: unspecified
        0x00, 0x00, 0x00, 0x00, // retrans timer: unspecified
        // 16: source link-layer address
        0x01, 0x01, 0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55,
        // 24: MTU 65520
        0x05, 0x01, 0x00, 0x00, 0x00, 0x00, 0xff, 0xf0,
        // 32: prefix information: /64, L|A, lifetimes infinite, reserved
        0x03, 0x04, 0x40, 0xc0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, // 2001:db8:1:2::
        // 64: RDNSS, 3 units = one server, lifetime infinite
        0x19, 0x03, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53, // 2001:db8::53
        // 88: DNSSL, 3 units: "example.com" (13 bytes) + 3 bytes of padding
        0x1f, 0x03, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
        0x07, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0x03, b'c', b'o', b'm', 0x00, 0, 0, 0,
    ];
    /// Where RA's options start and end: the valid truncation points.
    const RA_BOUNDARIES: &[usize] = &[16, 24, 32, 64, 88, 112];

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn router_solicit_fields_and_round_trip() {
        let packet = Packet::new_checked(RS).unwrap();
        assert_eq!(packet.msg_type(), MessageType::RouterSolicit);
        assert_eq!(packet.code(), 0);
        assert_eq!(packet.checksum(), 0x1234);
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(
            repr.options().source_lla(),
            Some([0x52, 0x54, 0, 0x12, 0x34, 0x56])
        );
        assert_eq!(repr.options().target_lla(), None);
        let mut out = vec![0xeeu8; repr.buffer_len()];
        assert_eq!(repr.emit(&mut out), Ok(RS.len()));
        // Same bytes except the checksum, which we always leave zero.
        assert_eq!(&out[4..], &RS[4..]);
        assert_eq!(&out[..4], &[0x85, 0, 0, 0]);
    }

    #[test]
    fn neighbor_solicit_and_advert_fields() {
        let ns = Repr::parse_bytes(NS).unwrap();
        assert_eq!(
            ns,
            Repr::NeighborSolicit {
                target: ip("fe80::1"),
                options: Options::parse(&NS[24..]).unwrap()
            }
        );
        let na = Packet::new_checked(NA).unwrap();
        assert_eq!(
            na.na_flags(),
            NA_FLAG_ROUTER | NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE
        );
        assert_eq!(na.target_addr(), ip("2001:db8::1"));
        let repr = Repr::parse(&na).unwrap();
        assert_eq!(
            repr.options().target_lla(),
            Some([0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55])
        );
        let mut out = [0u8; 32];
        assert_eq!(repr.emit(&mut out), Ok(32));
        assert_eq!(&out[..], NA);
        assert_eq!(
            repr.to_string(),
            "NA target=2001:db8::1 R S O tlla=9a:55:9a:55:9a:55"
        );
    }

    #[test]
    fn router_advert_options_read_and_write_back() {
        let packet = Packet::new_checked(RA).unwrap();
        assert_eq!(packet.cur_hop_limit(), 64);
        assert_eq!(packet.ra_flags(), RA_FLAG_MANAGED | RA_FLAG_OTHER);
        assert_eq!(packet.router_lifetime(), 9000);
        assert_eq!(packet.reachable_time(), 0);
        assert_eq!(packet.retrans_timer(), 0);
        let repr = Repr::parse(&packet).unwrap();
        let options: Vec<_> = repr.options().iter().collect();
        let dns = [ip("2001:db8::53")];
        let search = ["example.com".to_string()];
        assert_eq!(
            options,
            vec![
                NdpOption::SourceLla([0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55]),
                NdpOption::Mtu(65520),
                NdpOption::PrefixInfo(PrefixInfo {
                    prefix_len: 64,
                    flags: PREFIX_FLAG_ON_LINK | PREFIX_FLAG_AUTONOMOUS,
                    valid_lifetime: INFINITE_LIFETIME,
                    preferred_lifetime: INFINITE_LIFETIME,
                    prefix: ip("2001:db8:1:2::"),
                }),
                NdpOption::Rdnss {
                    lifetime: INFINITE_LIFETIME,
                    servers: Ipv6List::Addrs(&dns)
                },
                NdpOption::Dnssl {
                    lifetime: INFINITE_LIFETIME,
                    names: DomainList::Names(&search)
                },
            ]
        );
        // Each option written back gives its bytes.
        let mut at = 16;
        for option in &options {
            let mut out = vec![0xeeu8; option.buffer_len()];
            assert_eq!(option.emit(&mut out), Ok(out.len()));
            assert_eq!(&out[..], &RA[at..at + out.len()], "{option}");
            at += out.len();
        }
        assert_eq!(at, RA.len());
        let mut out = vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit(&mut out), Ok(RA.len()));
        assert_eq!(&out[..], RA);
        assert_eq!(
            repr.to_string(),
            "RA hop=64 M O lifetime=9000 slla=9a:55:9a:55:9a:55 mtu=65520 \
             prefix=2001:db8:1:2::/64 L A valid=4294967295 preferred=4294967295 \
             rdnss=2001:db8::53 lifetime=4294967295 dnssl=example.com lifetime=4294967295"
        );
    }

    #[test]
    fn truncated_at_every_length() {
        for len in 0..RA.len() {
            let got = Repr::parse_bytes(&RA[..len]);
            if len < 16 {
                assert_eq!(got, Err(Error::Truncated), "len {len}");
            } else if RA_BOUNDARIES.contains(&len) {
                assert!(got.is_ok(), "len {len}: {got:?}");
            } else {
                assert_eq!(got, Err(Error::OptionPastEnd), "len {len}");
            }
        }
        for len in 0..NS.len() {
            let want = match len {
                0..=23 => Err(Error::Truncated),
                24 => Ok(()),
                _ => Err(Error::OptionPastEnd),
            };
            assert_eq!(
                Repr::parse_bytes(&NS[..len]).map(|_| ()),
                want,
                "NS len {len}"
            );
        }
        for len in 0..RS.len() {
            let want = match len {
                0..=7 => Err(Error::Truncated),
                8 => Ok(()),
                _ => Err(Error::OptionPastEnd),
            };
            assert_eq!(
                Repr::parse_bytes(&RS[..len]).map(|_| ()),
                want,
                "RS len {len}"
            );
        }
    }

    #[test]
    fn option_length_zero_is_refused() {
        let mut rs = RS.to_vec();
        rs[9] = 0;
        assert_eq!(Repr::parse_bytes(&rs), Err(Error::ZeroLengthOption));
        // A zero length after a valid option too.
        let mut ra = RA.to_vec();
        ra[65] = 0;
        assert_eq!(Repr::parse_bytes(&ra), Err(Error::ZeroLengthOption));
    }

    #[test]
    fn option_running_past_the_end_is_refused() {
        let mut rs = RS.to_vec();
        rs[9] = 2; // 16 bytes announced, 8 present
        assert_eq!(Repr::parse_bytes(&rs), Err(Error::OptionPastEnd));
        let mut ra = RA.to_vec();
        ra[89] = 4; // DNSSL claims 32 bytes, 24 left
        assert_eq!(Repr::parse_bytes(&ra), Err(Error::OptionPastEnd));
    }

    #[test]
    fn known_options_with_bad_lengths() {
        let cases: &[(usize, u8, Error)] = &[
            // (offset of the length byte in a copy of RA extended by 8 zero
            //  bytes, new length, expected error)
            (
                17,
                2,
                Error::BadOptionLength {
                    kind: kind::SOURCE_LLA,
                    len: 2,
                },
            ),
            (
                25,
                2,
                Error::BadOptionLength {
                    kind: kind::MTU,
                    len: 2,
                },
            ),
        ];
        for &(at, len, want) in cases {
            let mut ra = RA[..64].to_vec();
            ra.extend_from_slice(&[0; 8]);
            ra[at] = len;
            assert_eq!(Repr::parse_bytes(&ra), Err(want), "at {at}");
        }
        // Prefix information must be exactly 4 units (Linux drops others).
        let mut ra = RA[..64].to_vec();
        ra[33] = 3;
        ra.truncate(56);
        assert_eq!(
            Repr::parse_bytes(&ra),
            Err(Error::BadOptionLength {
                kind: kind::PREFIX_INFO,
                len: 3
            })
        );
        let mut ra = RA[..64].to_vec();
        ra[34] = 129;
        assert_eq!(Repr::parse_bytes(&ra), Err(Error::BadPrefixLength(129)));
        // RDNSS: 2 units (no address) and 4 units (half an address).
        let mut ra = RA[..88].to_vec();
        ra[65] = 2;
        ra.truncate(80);
        assert_eq!(
            Repr::parse_bytes(&ra),
            Err(Error::BadOptionLength {
                kind: kind::RDNSS,
                len: 2
            })
        );
        let mut ra = RA[..88].to_vec();
        ra.extend_from_slice(&[0; 8]);
        ra[65] = 4;
        assert_eq!(
            Repr::parse_bytes(&ra),
            Err(Error::BadOptionLength {
                kind: kind::RDNSS,
                len: 4
            })
        );
        // DNSSL of one unit has no room for a name.
        let mut ra = RA[..96].to_vec();
        ra[89] = 1;
        assert_eq!(
            Repr::parse_bytes(&ra),
            Err(Error::BadOptionLength {
                kind: kind::DNSSL,
                len: 1
            })
        );
    }

    #[test]
    fn dnssl_names_must_be_well_formed() {
        let dnssl = |body: &[u8]| {
            let mut ra = RA[..88].to_vec();
            ra.extend_from_slice(&[0x1f, ((8 + body.len()) / 8) as u8, 0, 0, 0, 0, 0, 1]);
            ra.extend_from_slice(body);
            Repr::parse_bytes(&ra).map(|r| r.options().iter().last().unwrap().to_string())
        };
        let ok = dnssl(&[3, b'a', b'b', b'c', 0, 1, b'x', 0]).unwrap();
        assert_eq!(ok, "dnssl=abc,x lifetime=1");
        // A compression pointer.
        assert_eq!(
            dnssl(&[0xc0, 0x0c, 0, 0, 0, 0, 0, 0]),
            Err(Error::BadDomainName)
        );
        // Non-zero bytes after the padding started.
        assert_eq!(
            dnssl(&[1, b'a', 0, 0, 1, 0, 0, 0]),
            Err(Error::BadDomainName)
        );
        // A label running past the option.
        assert_eq!(
            dnssl(&[9, b'a', b'b', b'c', b'd', b'e', b'f', b'g']),
            Err(Error::BadDomainName)
        );
        // Only padding.
        assert_eq!(dnssl(&[0; 8]), Err(Error::BadDomainName));
    }

    #[test]
    fn bad_code_type_and_target() {
        let mut rs = RS.to_vec();
        rs[1] = 1;
        assert_eq!(Repr::parse_bytes(&rs), Err(Error::BadCode(1)));
        let mut ns = NS.to_vec();
        ns[8..24].copy_from_slice(&ip("ff02::1").octets());
        assert_eq!(Repr::parse_bytes(&ns), Err(Error::MulticastTarget));
        assert_eq!(
            Repr::parse_bytes(&[128, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::UnknownType(128))
        );
        assert_eq!(Repr::parse_bytes(&[137; 40]), Err(Error::UnknownType(137)));
    }

    #[test]
    fn unknown_options_are_kept_opaque() {
        let mut rs = RS[..8].to_vec();
        rs.extend_from_slice(&[14, 1, 1, 2, 3, 4, 5, 6]); // a nonce option
        let repr = Repr::parse_bytes(&rs).unwrap();
        let option = repr.options().iter().next().unwrap();
        assert_eq!(
            option,
            NdpOption::Unknown {
                kind: 14,
                data: &[1, 2, 3, 4, 5, 6]
            }
        );
        let mut out = [0u8; 8];
        assert_eq!(option.emit(&mut out), Ok(8));
        assert_eq!(&out[..], &rs[8..]);
        // A short body gets padded to 8 bytes.
        let short = NdpOption::Unknown {
            kind: 99,
            data: &[7],
        };
        assert_eq!(short.buffer_len(), 8);
        assert_eq!(short.emit(&mut out), Ok(8));
        assert_eq!(out, [99, 1, 7, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn emit_never_writes_past_the_buffer() {
        let repr = Repr::parse_bytes(RA).unwrap();
        for len in 0..RA.len() {
            let mut buf = vec![0xa5u8; RA.len() + 8];
            assert_eq!(repr.emit(&mut buf[..len]), Err(Error::BufferTooSmall));
            assert!(buf[len..].iter().all(|&b| b == 0xa5), "len {len}");
        }
        let servers = vec![ip("::1"); 128];
        let rdnss = NdpOption::Rdnss {
            lifetime: 1,
            servers: Ipv6List::Addrs(&servers),
        };
        assert_eq!(rdnss.emit(&mut [0u8; 4096]), Err(Error::OptionTooLong));
        let rdnss = NdpOption::Rdnss {
            lifetime: 1,
            servers: Ipv6List::Addrs(&servers[..127]),
        };
        assert_eq!(rdnss.emit(&mut [0u8; 4096]), Ok(MAX_OPTION_LEN));
    }

    #[test]
    fn domain_name_encoding() {
        assert_eq!(encoded_name_len("example.com"), Some(13));
        assert_eq!(encoded_name_len("example.com."), Some(13));
        assert_eq!(encoded_name_len(""), None);
        assert_eq!(encoded_name_len("."), None);
        assert_eq!(encoded_name_len("a..b"), None);
        assert_eq!(encoded_name_len(&"x".repeat(63)), Some(65));
        assert_eq!(encoded_name_len(&"x".repeat(64)), None);
        // 4 labels of 63 = 4 * 64 + 1 = 257 bytes: too long.
        let long = vec!["x".repeat(63); 4].join(".");
        assert_eq!(encoded_name_len(&long), None);
        let mut buf = [0u8; 13];
        assert_eq!(encode_name("example.com", &mut buf), Some(13));
        assert_eq!(&buf, b"\x07example\x03com\x00");
        assert_eq!(encode_name("example.com", &mut buf[..12]), None);
        let names = ["a.b".to_string(), "bad..name".to_string(), "c".to_string()];
        let list = DomainList::Names(&names);
        assert_eq!(list.encoded_len(), 5 + 3);
        assert_eq!(list.to_strings(), vec!["a.b", "c"]);
        assert_eq!(check_names(b"\x01a\x01b\x00\x01c\x00", false), Ok(8));
        assert_eq!(
            check_names(b"\x01a\x00\x00", false),
            Err(Error::BadDomainName)
        );
        assert_eq!(check_names(b"\x01a\x00\x00", true), Ok(3));
        assert_eq!(check_names(b"\x01a", false), Err(Error::BadDomainName));
        let odd = DomainList::Wire(b"\x03a.b\x02\x00\xff\x00");
        assert_eq!(odd.to_strings(), vec!["a\\046b.\\000\\255"]);
    }

    #[test]
    fn multicast_helpers() {
        assert_eq!(
            solicited_node(ip("2001:db8::12:3456")),
            ip("ff02::1:ff12:3456")
        );
        assert_eq!(multicast_mac(ALL_NODES), [0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(
            multicast_mac(ip("ff02::1:ff12:3456")),
            [0x33, 0x33, 0xff, 0x12, 0x34, 0x56]
        );
    }

    /// xorshift64*, fixed seed: reproducible pseudo-random input.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Rng(seed | 1)
        }
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
        pub(crate) fn byte(&mut self) -> u8 {
            self.next() as u8
        }
    }

    /// Random bytes, or a fixture with a few bytes changed, cut or grown.
    pub(crate) fn mutate(rng: &mut Rng, fixtures: &[&[u8]]) -> Vec<u8> {
        if rng.below(8) == 0 {
            let len = rng.below(160);
            return (0..len).map(|_| rng.byte()).collect();
        }
        let mut msg = fixtures[rng.below(fixtures.len())].to_vec();
        for _ in 0..=rng.below(4) {
            match rng.below(4) {
                0 if !msg.is_empty() => {
                    let at = rng.below(msg.len());
                    msg[at] = rng.byte();
                }
                1 if !msg.is_empty() => {
                    // Small lengths are the interesting ones.
                    let at = rng.below(msg.len());
                    msg[at] = rng.below(6) as u8;
                }
                2 => msg.truncate(rng.below(msg.len() + 1)),
                _ => msg.extend((0..rng.below(24)).map(|_| rng.byte())),
            }
        }
        msg
    }

    #[test]
    fn fuzz_parse_never_panics_and_round_trips() {
        let mut rng = Rng::new(0x6e64_7020_7769_7265);
        let mut parsed = 0;
        for _ in 0..10_000 {
            let msg = mutate(&mut rng, &[RS, NS, NA, RA]);
            let packet = Packet::new_unchecked(&msg[..]);
            let _ = (
                packet.checksum(),
                packet.target_addr(),
                packet.router_lifetime(),
                packet.options(),
            );
            let _ = packet.to_string();
            let Ok(repr) = Repr::parse_bytes(&msg) else {
                continue;
            };
            parsed += 1;
            let _ = repr.to_string();
            let mut out = vec![0u8; repr.buffer_len()];
            assert_eq!(repr.emit(&mut out), Ok(out.len()));
            assert_eq!(Repr::parse_bytes(&out), Ok(repr), "{msg:02x?}");
            for option in repr.options().iter() {
                let mut buf = vec![0u8; option.buffer_len()];
                assert_eq!(option.emit(&mut buf), Ok(buf.len()));
                assert_eq!(NdpOption::parse(&buf), Ok(option));
            }
        }
        // The mutations must leave a fair share of valid messages.
        assert!(parsed > 1000, "only {parsed} valid messages");
    }
}
