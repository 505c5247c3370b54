//! A small rtnetlink client (NETLINK_ROUTE), enough for what passt needs
//! from the host's network configuration and for setting up a tap in a
//! namespace (pasta's `--config-net`).
//!
//! # What it answers
//!
//! * Dumps: links (`RTM_GETLINK`: index, name, MTU, MAC, flags), addresses
//!   (`RTM_GETADDR`: family, index, prefix, scope, address, flags including
//!   `IFA_F_TENTATIVE`/`IFA_F_DADFAILED`) and main-table routes
//!   (`RTM_GETROUTE`: destination, gateway, output interface, metric).
//! * Changes: link up and MTU (`RTM_NEWLINK` on an existing link), address
//!   add (`RTM_NEWADDR`, IPv6 optionally `IFA_F_NODAD`), route add
//!   (`RTM_NEWROUTE`: default route via a gateway, on-link routes).
//!
//! # How
//!
//! One blocking `SOCK_RAW` socket per [`Netlink`], bound with a kernel-chosen
//! port id, a receive timeout so a lost answer cannot hang the caller, and a
//! sequence number per request: answers carrying another sequence number
//! (left over from an earlier request) are skipped. Dumps are multipart:
//! messages are read until `NLMSG_DONE`; a dump the kernel flags as
//! interrupted (`NLM_F_DUMP_INTR`, the table changed while it was read) is
//! restarted a few times. Changes ask for an acknowledgement
//! (`NLM_F_ACK`) and turn a negative `NLMSG_ERROR` into an `io::Error`,
//! with the kernel's extended-ack text when it sends one
//! (`NETLINK_EXT_ACK`).
//!
//! The kernel is trusted to be the kernel, not to be bug-free: every length
//! it sends is checked before use ([`ParseError`]) and nothing here indexes
//! a slice unchecked. Building and parsing are safe byte code; only the
//! socket calls are `unsafe`.
//!
//! Netlink fields are in host byte order, addresses in network order.
//! Message layouts: `linux/netlink.h`, `linux/rtnetlink.h`,
//! `linux/if_link.h`, `linux/if_addr.h` (netlink(7), rtnetlink(7)).
//!
//! # Left out
//!
//! Notifications (multicast groups), deletions, policy routing tables other
//! than main, nexthop objects (`RTA_NH_ID`): a route using one is reported
//! without gateway or interface.

use super::{cvt, owned};
use std::fmt;
use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};

// --- Constants (linux/netlink.h, linux/rtnetlink.h, if_link.h, if_addr.h) ---

/// Size of `struct nlmsghdr`.
const NLMSG_HDRLEN: usize = 16;
/// Size of `struct nlattr` / `struct rtattr` header.
const NLA_HDRLEN: usize = 4;
/// Size of `struct ifinfomsg`.
const IFINFOMSG_LEN: usize = 16;
/// Size of `struct ifaddrmsg`.
const IFADDRMSG_LEN: usize = 8;
/// Size of `struct rtmsg`.
const RTMSG_LEN: usize = 12;
/// Size of `struct rtnexthop`.
const RTNEXTHOP_LEN: usize = 8;

const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;

const NLM_F_REQUEST: u16 = 0x01;
const NLM_F_MULTI: u16 = 0x02;
const NLM_F_ACK: u16 = 0x04;
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
/// On NLMSG_ERROR: the echoed request was cut to its header.
const NLM_F_CAPPED: u16 = 0x100;
/// On NLMSG_ERROR: extended-ack attributes follow the echoed request.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// Extended-ack attribute carrying a NUL-terminated error text.
const NLMSGERR_ATTR_MSG: u16 = 1;

const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
const RTA_VIA: u16 = 18;

/// Attribute type bits (the top two are the nested/byte-order flags).
const NLA_TYPE_MASK: u16 = 0x3fff;

/// `IFF_UP` (linux/if.h).
pub const IFF_UP: u32 = 0x1;
/// `IFF_LOOPBACK`.
pub const IFF_LOOPBACK: u32 = 0x8;
/// `IFF_RUNNING`.
pub const IFF_RUNNING: u32 = 0x40;
/// `IFF_LOWER_UP` (carrier).
pub const IFF_LOWER_UP: u32 = 0x1_0000;

/// `IFA_F_TEMPORARY`: an IPv6 privacy address.
pub const IFA_F_TEMPORARY: u32 = 0x01;
/// `IFA_F_NODAD`: no duplicate address detection.
pub const IFA_F_NODAD: u32 = 0x02;
/// `IFA_F_DADFAILED`: duplicate address detection failed.
pub const IFA_F_DADFAILED: u32 = 0x08;
/// `IFA_F_DEPRECATED`: preferred lifetime expired.
pub const IFA_F_DEPRECATED: u32 = 0x20;
/// `IFA_F_TENTATIVE`: duplicate address detection still running.
pub const IFA_F_TENTATIVE: u32 = 0x40;

/// `RT_SCOPE_UNIVERSE`: global.
pub const RT_SCOPE_UNIVERSE: u8 = 0;
/// `RT_SCOPE_LINK`: valid on this link only.
pub const RT_SCOPE_LINK: u8 = 253;
/// `RT_SCOPE_HOST`: this host only (loopback).
pub const RT_SCOPE_HOST: u8 = 254;

/// `RT_TABLE_MAIN`.
pub const RT_TABLE_MAIN: u32 = 254;
/// `RTN_UNICAST`: a gateway or direct route.
pub const RTN_UNICAST: u8 = 1;
/// `RTPROT_BOOT`: installed by us (what `ip route add` uses too).
const RTPROT_BOOT: u8 = 3;

/// How long to wait for the kernel's answer before giving up.
const RECV_TIMEOUT_SECS: libc::time_t = 5;
/// How many times a dump interrupted by concurrent changes is restarted.
const DUMP_RETRIES: usize = 5;
/// Initial receive buffer; grown on demand (a single message can be larger).
const RECV_BUF_LEN: usize = 64 * 1024;

// --- Errors ---

/// Malformed data from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Fewer bytes left than a `nlmsghdr` needs.
    TruncatedHeader,
    /// A message length below the header size or past the end of the data.
    BadMessageLength(u32),
    /// A message body shorter than its fixed header (the name says which).
    TruncatedBody(&'static str),
    /// An attribute length below the attribute header or past the message.
    BadAttributeLength(u16),
    /// An attribute value of the wrong size for its type (the name says which).
    BadAttributeValue(&'static str),
    /// An address family other than IPv4 or IPv6 where one of them is required.
    UnknownFamily(u8),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::TruncatedHeader => write!(f, "netlink message header truncated"),
            ParseError::BadMessageLength(n) => write!(f, "bad netlink message length {n}"),
            ParseError::TruncatedBody(what) => write!(f, "netlink {what} truncated"),
            ParseError::BadAttributeLength(n) => write!(f, "bad netlink attribute length {n}"),
            ParseError::BadAttributeValue(what) => write!(f, "bad size for netlink attribute {what}"),
            ParseError::UnknownFamily(af) => write!(f, "unexpected address family {af}"),
        }
    }
}

impl std::error::Error for ParseError {}

impl From<ParseError> for io::Error {
    fn from(e: ParseError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

// --- Public data types ---

/// IP version of an address, route or request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 (`AF_INET`).
    V4,
    /// IPv6 (`AF_INET6`).
    V6,
}

impl Family {
    /// The `AF_*` value in the one-byte field rtnetlink uses.
    pub fn af(self) -> u8 {
        match self {
            Family::V4 => libc::AF_INET as u8,
            Family::V6 => libc::AF_INET6 as u8,
        }
    }

    /// The family of an `AF_*` value, `None` for others.
    pub fn from_af(af: u8) -> Option<Family> {
        match af as libc::c_int {
            libc::AF_INET => Some(Family::V4),
            libc::AF_INET6 => Some(Family::V6),
            _ => None,
        }
    }

    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The longest prefix length.
    pub fn max_prefix_len(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The all-zeroes address of the family.
    pub fn unspecified(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }
}

/// A network interface (from `RTM_GETLINK`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub ifindex: u32,
    /// Interface name (lossy UTF-8).
    pub name: String,
    /// MTU, if the kernel reported it.
    pub mtu: Option<u32>,
    /// Hardware address, when it is an Ethernet-sized one.
    pub mac: Option<[u8; 6]>,
    /// `IFF_*` flags.
    pub flags: u32,
}

impl Link {
    /// Administratively up (`IFF_UP`).
    pub fn is_up(&self) -> bool {
        self.flags & IFF_UP != 0
    }

    /// The loopback interface.
    pub fn is_loopback(&self) -> bool {
        self.flags & IFF_LOOPBACK != 0
    }
}

/// An interface address (from `RTM_GETADDR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    /// Interface index.
    pub ifindex: u32,
    /// The local address (`IFA_LOCAL` when present, else `IFA_ADDRESS`).
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// `RT_SCOPE_*`.
    pub scope: u8,
    /// `IFA_F_*` flags (the 32-bit `IFA_FLAGS` when present).
    pub flags: u32,
}

impl Addr {
    /// IPv4 or IPv6.
    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }

    /// Duplicate address detection still running.
    pub fn is_tentative(&self) -> bool {
        self.flags & IFA_F_TENTATIVE != 0
    }

    /// Duplicate address detection failed.
    pub fn is_dadfailed(&self) -> bool {
        self.flags & IFA_F_DADFAILED != 0
    }

    /// Scope global.
    pub fn is_global(&self) -> bool {
        self.scope == RT_SCOPE_UNIVERSE
    }
}

/// A route of the main table (from `RTM_GETROUTE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// IPv4 or IPv6.
    pub family: Family,
    /// `RTN_*` type (unicast, local, broadcast, unreachable...).
    pub kind: u8,
    /// `RT_SCOPE_*`.
    pub scope: u8,
    /// Routing table (`RTA_TABLE` when present).
    pub table: u32,
    /// Destination network; the unspecified address for a default route.
    pub dst: IpAddr,
    /// Destination prefix length; 0 for a default route.
    pub dst_len: u8,
    /// Next hop, if any (`RTA_GATEWAY`, `RTA_VIA`, or the first nexthop of a
    /// multipath route). May be of the other family (`RTA_VIA`).
    pub gateway: Option<IpAddr>,
    /// Output interface (`RTA_OIF`, or the first nexthop's).
    pub oif: Option<u32>,
    /// Metric (`RTA_PRIORITY`), 0 when absent.
    pub priority: u32,
}

impl Route {
    /// A default route: prefix length 0.
    pub fn is_default(&self) -> bool {
        self.dst_len == 0
    }
}

/// A route to add with [`Netlink::add_route`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRequest {
    /// Destination network (its family is the route's family).
    pub dst: IpAddr,
    /// Destination prefix length.
    pub dst_len: u8,
    /// Next hop; `None` for an on-link (scope link) route.
    pub gateway: Option<IpAddr>,
    /// Output interface.
    pub oif: u32,
    /// Metric; the kernel's default when `None`.
    pub metric: Option<u32>,
}

impl RouteRequest {
    /// A default route via `gateway` out of `oif`.
    pub fn default_via(gateway: IpAddr, oif: u32) -> RouteRequest {
        RouteRequest { dst: Family::of(&gateway).unspecified(), dst_len: 0, gateway: Some(gateway), oif, metric: None }
    }

    /// An on-link route to `dst/dst_len` out of `oif`, no gateway.
    pub fn on_link(dst: IpAddr, dst_len: u8, oif: u32) -> RouteRequest {
        RouteRequest { dst, dst_len, gateway: None, oif, metric: None }
    }
}

// --- Byte helpers ---

/// Rounds up to the 4-byte alignment of netlink messages and attributes.
fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_ne_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn i32_at(b: &[u8], off: usize) -> Option<i32> {
    u32_at(b, off).map(|v| v as i32)
}

/// A 32-bit attribute value (exactly four bytes).
fn attr_u32(val: &[u8], what: &'static str) -> Result<u32, ParseError> {
    match val {
        [a, b, c, d] => Ok(u32::from_ne_bytes([*a, *b, *c, *d])),
        _ => Err(ParseError::BadAttributeValue(what)),
    }
}

/// An address attribute of `family` (exactly 4 or 16 bytes).
fn attr_ip(family: Family, val: &[u8], what: &'static str) -> Result<IpAddr, ParseError> {
    match (family, val.len()) {
        (Family::V4, 4) => {
            let mut o = [0u8; 4];
            o.copy_from_slice(val);
            Ok(IpAddr::V4(Ipv4Addr::from(o)))
        }
        (Family::V6, 16) => {
            let mut o = [0u8; 16];
            o.copy_from_slice(val);
            Ok(IpAddr::V6(Ipv6Addr::from(o)))
        }
        _ => Err(ParseError::BadAttributeValue(what)),
    }
}

/// A NUL-terminated (or not) string attribute, lossy UTF-8.
fn attr_string(val: &[u8]) -> String {
    let end = val.iter().position(|&c| c == 0).unwrap_or(val.len());
    String::from_utf8_lossy(val.get(..end).unwrap_or_default()).into_owned()
}

// --- Parsing ---

/// One netlink message, borrowed from a receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NlMsg<'a> {
    /// `nlmsg_type`.
    pub ty: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// The bytes after the header, up to `nlmsg_len`.
    pub payload: &'a [u8],
}

/// Iterates over the messages of one datagram. Yields an error and stops at
/// the first malformed header.
pub struct Messages<'a> {
    rest: &'a [u8],
}

/// The messages in `buf` (one `recv` worth).
pub fn messages(buf: &[u8]) -> Messages<'_> {
    Messages { rest: buf }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<NlMsg<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.rest);
        let (Some(len), Some(ty), Some(flags), Some(seq)) =
            (u32_at(rest, 0), u16_at(rest, 4), u16_at(rest, 6), u32_at(rest, 8))
        else {
            return Some(Err(ParseError::TruncatedHeader));
        };
        if rest.len() < NLMSG_HDRLEN {
            return Some(Err(ParseError::TruncatedHeader));
        }
        let n = len as usize;
        let Some(payload) = rest.get(NLMSG_HDRLEN..n).filter(|_| n >= NLMSG_HDRLEN) else {
            return Some(Err(ParseError::BadMessageLength(len)));
        };
        self.rest = rest.get(align4(n)..).unwrap_or_default();
        Some(Ok(NlMsg { ty, flags, seq, payload }))
    }
}

/// Iterates over the attributes in `buf` as `(type, value)`. Yields an
/// error and stops at the first malformed one.
pub struct Attrs<'a> {
    rest: &'a [u8],
}

/// The attributes in `buf` (a message payload after its fixed header).
pub fn attrs(buf: &[u8]) -> Attrs<'_> {
    Attrs { rest: buf }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<(u16, &'a [u8]), ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.rest);
        let (Some(len), Some(ty)) = (u16_at(rest, 0), u16_at(rest, 2)) else {
            return Some(Err(ParseError::BadAttributeLength(rest.len() as u16)));
        };
        let n = len as usize;
        let Some(val) = rest.get(NLA_HDRLEN..n).filter(|_| n >= NLA_HDRLEN) else {
            return Some(Err(ParseError::BadAttributeLength(len)));
        };
        self.rest = rest.get(align4(n)..).unwrap_or_default();
        Some(Ok((ty & NLA_TYPE_MASK, val)))
    }
}

/// Parses an `RTM_NEWLINK` payload.
pub fn parse_link(payload: &[u8]) -> Result<Link, ParseError> {
    let (Some(index), Some(flags), Some(rest)) = (i32_at(payload, 4), u32_at(payload, 8), payload.get(IFINFOMSG_LEN..))
    else {
        return Err(ParseError::TruncatedBody("ifinfomsg"));
    };
    let mut link = Link { ifindex: index as u32, name: String::new(), mtu: None, mac: None, flags };
    for attr in attrs(rest) {
        let (ty, val) = attr?;
        match ty {
            IFLA_IFNAME => link.name = attr_string(val),
            IFLA_MTU => link.mtu = Some(attr_u32(val, "IFLA_MTU")?),
            IFLA_ADDRESS => link.mac = <[u8; 6]>::try_from(val).ok(),
            _ => {}
        }
    }
    Ok(link)
}

/// Parses an `RTM_NEWADDR` payload; `None` for families other than IPv4/IPv6
/// and for entries without an address.
pub fn parse_addr(payload: &[u8]) -> Result<Option<Addr>, ParseError> {
    let (Some(head), Some(index), Some(rest)) = (payload.get(..4), u32_at(payload, 4), payload.get(IFADDRMSG_LEN..))
    else {
        return Err(ParseError::TruncatedBody("ifaddrmsg"));
    };
    let (af, prefix_len, flags8, scope) = (head[0], head[1], head[2], head[3]);
    let Some(family) = Family::from_af(af) else {
        return Ok(None);
    };
    let (mut address, mut local, mut flags) = (None, None, u32::from(flags8));
    for attr in attrs(rest) {
        let (ty, val) = attr?;
        match ty {
            IFA_ADDRESS => address = Some(attr_ip(family, val, "IFA_ADDRESS")?),
            IFA_LOCAL => local = Some(attr_ip(family, val, "IFA_LOCAL")?),
            IFA_FLAGS => flags = attr_u32(val, "IFA_FLAGS")?,
            _ => {}
        }
    }
    // On point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL is ours.
    Ok(local.or(address).map(|addr| Addr { ifindex: index, addr, prefix_len, scope, flags }))
}

/// Parses an `RTM_NEWROUTE` payload; `None` for families other than
/// IPv4/IPv6.
pub fn parse_route(payload: &[u8]) -> Result<Option<Route>, ParseError> {
    let (Some(head), Some(rest)) = (payload.get(..8), payload.get(RTMSG_LEN..)) else {
        return Err(ParseError::TruncatedBody("rtmsg"));
    };
    let (af, dst_len, table8, scope, kind) = (head[0], head[1], head[4], head[6], head[7]);
    let Some(family) = Family::from_af(af) else {
        return Ok(None);
    };
    let mut route = Route {
        family,
        kind,
        scope,
        table: u32::from(table8),
        dst: family.unspecified(),
        dst_len,
        gateway: None,
        oif: None,
        priority: 0,
    };
    for attr in attrs(rest) {
        let (ty, val) = attr?;
        match ty {
            RTA_DST => route.dst = attr_ip(family, val, "RTA_DST")?,
            RTA_GATEWAY => route.gateway = Some(attr_ip(family, val, "RTA_GATEWAY")?),
            RTA_VIA => route.gateway = Some(parse_via(val)?),
            RTA_OIF => route.oif = Some(attr_u32(val, "RTA_OIF")?),
            RTA_PRIORITY => route.priority = attr_u32(val, "RTA_PRIORITY")?,
            RTA_TABLE => route.table = attr_u32(val, "RTA_TABLE")?,
            RTA_MULTIPATH => {
                let (oif, gw) = parse_first_nexthop(family, val)?;
                route.oif = route.oif.or(oif);
                route.gateway = route.gateway.or(gw);
            }
            _ => {}
        }
    }
    Ok(Some(route))
}

/// `struct rtvia`: a two-byte family, then the address.
fn parse_via(val: &[u8]) -> Result<IpAddr, ParseError> {
    let (Some(af), Some(addr)) = (u16_at(val, 0), val.get(2..)) else {
        return Err(ParseError::BadAttributeValue("RTA_VIA"));
    };
    let family = u8::try_from(af).ok().and_then(Family::from_af).ok_or(ParseError::UnknownFamily(af as u8))?;
    attr_ip(family, addr, "RTA_VIA")
}

/// The interface and gateway of the first `struct rtnexthop` of a multipath
/// route (passt, too, only uses the first one).
fn parse_first_nexthop(family: Family, val: &[u8]) -> Result<(Option<u32>, Option<IpAddr>), ParseError> {
    let (Some(len), Some(ifindex)) = (u16_at(val, 0), i32_at(val, 4)) else {
        return Err(ParseError::BadAttributeValue("RTA_MULTIPATH"));
    };
    let n = len as usize;
    let Some(nested) = val.get(RTNEXTHOP_LEN..n).filter(|_| n >= RTNEXTHOP_LEN) else {
        return Err(ParseError::BadAttributeValue("RTA_MULTIPATH"));
    };
    let mut gw = None;
    for attr in attrs(nested) {
        match attr? {
            (RTA_GATEWAY, v) => gw = Some(attr_ip(family, v, "RTA_GATEWAY")?),
            (RTA_VIA, v) => gw = Some(parse_via(v)?),
            _ => {}
        }
    }
    Ok((Some(ifindex as u32), gw))
}

/// What an `NLMSG_ERROR` payload says: `Ok` for an acknowledgement, else
/// the error with the extended-ack text if the kernel sent one.
pub fn parse_error(msg: &NlMsg<'_>) -> Result<Result<(), (i32, Option<String>)>, ParseError> {
    let Some(errno) = i32_at(msg.payload, 0) else {
        return Err(ParseError::TruncatedBody("nlmsgerr"));
    };
    if errno == 0 {
        return Ok(Ok(()));
    }
    let mut text = None;
    if msg.flags & NLM_F_ACK_TLVS != 0 {
        // After the error code: the request's header, and its payload
        // unless capped; the TLVs follow.
        let echoed = if msg.flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            u32_at(msg.payload, 4).map_or(NLMSG_HDRLEN, |n| n as usize)
        };
        let tlvs = msg.payload.get(align4(4 + echoed)..).unwrap_or_default();
        for (ty, val) in attrs(tlvs).map_while(Result::ok) {
            if ty == NLMSGERR_ATTR_MSG {
                text = Some(attr_string(val)).filter(|s| !s.is_empty());
            }
        }
    }
    // The kernel sends -errno; take the magnitude either way.
    Ok(Err((errno.saturating_abs(), text)))
}

// --- Building ---

/// A request under construction: header, fixed family header, attributes.
struct Request {
    buf: Vec<u8>,
}

impl Request {
    fn new(ty: u16, flags: u16) -> Request {
        let mut buf = vec![0u8; NLMSG_HDRLEN];
        buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        Request { buf }
    }

    /// Appends raw bytes (a fixed family header), padded to 4 bytes.
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.buf.resize(align4(self.buf.len()), 0);
    }

    /// Appends one attribute, padded to 4 bytes.
    fn attr(&mut self, ty: u16, val: &[u8]) {
        // Attribute values here are at most 16 bytes: no overflow.
        let len = (NLA_HDRLEN + val.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.push(val);
    }

    fn attr_u32(&mut self, ty: u16, val: u32) {
        self.attr(ty, &val.to_ne_bytes());
    }

    fn attr_ip(&mut self, ty: u16, addr: &IpAddr) {
        match addr {
            IpAddr::V4(a) => self.attr(ty, &a.octets()),
            IpAddr::V6(a) => self.attr(ty, &a.octets()),
        }
    }

    /// Sets length and sequence number; the bytes to send.
    fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

/// `struct ifinfomsg`.
fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; IFINFOMSG_LEN] {
    let mut b = [0u8; IFINFOMSG_LEN];
    b[0] = libc::AF_UNSPEC as u8;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

/// `struct ifaddrmsg`.
fn ifaddrmsg(af: u8, prefix_len: u8, flags: u8, scope: u8, index: u32) -> [u8; IFADDRMSG_LEN] {
    let mut b = [af, prefix_len, flags, scope, 0, 0, 0, 0];
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b
}

/// `struct rtmsg` (flags zero).
fn rtmsg(af: u8, dst_len: u8, table: u8, protocol: u8, scope: u8, kind: u8) -> [u8; RTMSG_LEN] {
    [af, dst_len, 0, 0, table, protocol, scope, kind, 0, 0, 0, 0]
}

fn link_dump_request() -> Request {
    let mut r = Request::new(RTM_GETLINK, NLM_F_DUMP);
    r.push(&ifinfomsg(0, 0, 0));
    r
}

fn addr_dump_request(family: Option<Family>) -> Request {
    let mut r = Request::new(RTM_GETADDR, NLM_F_DUMP);
    r.push(&ifaddrmsg(family.map_or(libc::AF_UNSPEC as u8, Family::af), 0, 0, 0, 0));
    r
}

fn route_dump_request(family: Family) -> Request {
    let mut r = Request::new(RTM_GETROUTE, NLM_F_DUMP);
    r.push(&rtmsg(family.af(), 0, 0, 0, 0, 0));
    r
}

/// Brings a link up (or down) and/or sets its MTU: an `RTM_NEWLINK` on an
/// existing link (no `NLM_F_CREATE`) changes it.
fn set_link_request(ifindex: u32, up: Option<bool>, mtu: Option<u32>) -> Request {
    let mut r = Request::new(RTM_NEWLINK, NLM_F_ACK);
    let (flags, change) = match up {
        Some(true) => (IFF_UP, IFF_UP),
        Some(false) => (0, IFF_UP),
        None => (0, 0),
    };
    r.push(&ifinfomsg(ifindex, flags, change));
    if let Some(mtu) = mtu {
        r.attr_u32(IFLA_MTU, mtu);
    }
    r
}

/// Adds (or replaces the flags of) an address. The prefix route comes from
/// the kernel as usual.
fn add_addr_request(ifindex: u32, addr: &IpAddr, prefix_len: u8, nodad: bool) -> Request {
    let mut r = Request::new(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
    let flags = if nodad { IFA_F_NODAD } else { 0 };
    r.push(&ifaddrmsg(Family::of(addr).af(), prefix_len, flags as u8, RT_SCOPE_UNIVERSE, ifindex));
    r.attr_ip(IFA_LOCAL, addr);
    r.attr_ip(IFA_ADDRESS, addr);
    r.attr_u32(IFA_FLAGS, flags);
    r
}

/// Adds (or replaces) a main-table unicast route.
fn add_route_request(req: &RouteRequest) -> Request {
    let family = Family::of(&req.dst);
    let scope = if req.gateway.is_some() { RT_SCOPE_UNIVERSE } else { RT_SCOPE_LINK };
    let mut r = Request::new(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
    r.push(&rtmsg(family.af(), req.dst_len, RT_TABLE_MAIN as u8, RTPROT_BOOT, scope, RTN_UNICAST));
    if req.dst_len > 0 {
        r.attr_ip(RTA_DST, &req.dst);
    }
    if let Some(gw) = &req.gateway {
        r.attr_ip(RTA_GATEWAY, gw);
    }
    r.attr_u32(RTA_OIF, req.oif);
    if let Some(metric) = req.metric {
        r.attr_u32(RTA_PRIORITY, metric);
    }
    r
}

fn check_route_request(req: &RouteRequest) -> io::Result<()> {
    let family = Family::of(&req.dst);
    let invalid =
        |what: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("route {}/{}: {what}", req.dst, req.dst_len));
    if req.dst_len > family.max_prefix_len() {
        return Err(invalid("prefix length too long"));
    }
    if req.gateway.is_some_and(|gw| Family::of(&gw) != family) {
        return Err(invalid("gateway of another family"));
    }
    Ok(())
}

// --- The socket ---

/// An rtnetlink socket with its sequence counter and receive buffer.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens a NETLINK_ROUTE socket in the calling thread's network
    /// namespace (blocking, close-on-exec, with a receive timeout).
    pub fn open() -> io::Result<Netlink> {
        // SAFETY: plain syscall with integer arguments.
        let fd = owned(cvt(unsafe {
            libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE)
        })?);
        // SAFETY: sockaddr_nl is plain data; all zeroes is valid (pid 0:
        // the kernel picks our port id).
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: sa is a valid sockaddr_nl of the stated size.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        })?;
        let timeout = libc::timeval { tv_sec: RECV_TIMEOUT_SECS, tv_usec: 0 };
        // SAFETY: timeout is a valid timeval of the stated size.
        cvt(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        })?;
        // Optional niceties (older kernels lack them): error texts, and
        // errors that do not echo our whole request.
        for opt in [NETLINK_EXT_ACK, NETLINK_CAP_ACK] {
            let one: libc::c_int = 1;
            // SAFETY: one is a valid c_int of the stated size.
            let _ = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    SOL_NETLINK,
                    opt,
                    (&one as *const libc::c_int).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
        }
        Ok(Netlink { fd, seq: 0, buf: vec![0; RECV_BUF_LEN] })
    }

    /// All links.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        self.dump(link_dump_request, RTM_NEWLINK, |p| parse_link(p).map(Some))
    }

    /// The link called `name`; `NotFound` naming it if there is none.
    pub fn link_by_name(&mut self, name: &str) -> io::Result<Link> {
        self.links()?
            .into_iter()
            .find(|l| l.name == name)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no network interface named {name:?}")))
    }

    /// All IPv4 and IPv6 addresses, or those of one family.
    pub fn addrs(&mut self, family: Option<Family>) -> io::Result<Vec<Addr>> {
        self.dump(|| addr_dump_request(family), RTM_NEWADDR, parse_addr)
    }

    /// The routes of the main table of one family (of every `RTN_*` type;
    /// see [`Route::kind`]).
    pub fn routes(&mut self, family: Family) -> io::Result<Vec<Route>> {
        self.dump(
            || route_dump_request(family),
            RTM_NEWROUTE,
            |p| Ok(parse_route(p)?.filter(|r| r.table == RT_TABLE_MAIN && r.family == family)),
        )
    }

    /// Brings a link up and, if given, sets its MTU (MTU first, so a
    /// rejected MTU leaves the link as it was).
    pub fn set_link(&mut self, ifindex: u32, up: bool, mtu: Option<u32>) -> io::Result<()> {
        if mtu.is_some() {
            self.request_ack(set_link_request(ifindex, None, mtu))?;
        }
        self.request_ack(set_link_request(ifindex, Some(up), None))
    }

    /// Adds an address (replacing the flags of an identical one); `nodad`
    /// skips IPv6 duplicate address detection so it is usable at once.
    pub fn add_addr(&mut self, ifindex: u32, addr: IpAddr, prefix_len: u8, nodad: bool) -> io::Result<()> {
        if prefix_len > Family::of(&addr).max_prefix_len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("address {addr}/{prefix_len}: prefix length too long"),
            ));
        }
        self.request_ack(add_addr_request(ifindex, &addr, prefix_len, nodad))
    }

    /// Adds (or replaces) a route in the main table.
    pub fn add_route(&mut self, req: &RouteRequest) -> io::Result<()> {
        check_route_request(req)?;
        self.request_ack(add_route_request(req))
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends one request to the kernel.
    fn send(&self, msg: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_nl is plain data; zeroes address the kernel.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: msg and sa are valid for reads of the stated sizes.
            let r = cvt(unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    msg.as_ptr().cast(),
                    msg.len(),
                    0,
                    (&sa as *const libc::sockaddr_nl).cast(),
                    size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            });
            match r {
                Ok(n) if n as usize == msg.len() => return Ok(()),
                Ok(_) => return Err(io::Error::new(io::ErrorKind::WriteZero, "netlink: short send")),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Receives one datagram into `self.buf`, growing it first if the
    /// pending datagram is larger; returns its length.
    fn recv(&mut self) -> io::Result<usize> {
        loop {
            // MSG_PEEK|MSG_TRUNC returns the real size without consuming it.
            let size = match self.recv_flags(libc::MSG_PEEK | libc::MSG_TRUNC) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => r?,
            };
            if size > self.buf.len() {
                self.buf.resize(size, 0);
            }
            match self.recv_flags(0) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    fn recv_flags(&mut self, flags: libc::c_int) -> io::Result<usize> {
        // SAFETY: buf is valid for writes of buf.len() bytes.
        let r = cvt(unsafe { libc::recv(self.fd.as_raw_fd(), self.buf.as_mut_ptr().cast(), self.buf.len(), flags) });
        match r {
            Ok(n) => Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "netlink: no answer from the kernel"))
            }
            Err(e) => Err(e),
        }
    }

    /// Runs a dump: sends the request made by `make`, parses each payload
    /// of type `want` with `parse` and collects the `Some`s, until
    /// `NLMSG_DONE`. A dump the kernel flags as interrupted is restarted a
    /// few times.
    fn dump<T>(
        &mut self,
        make: impl Fn() -> Request,
        want: u16,
        parse: impl Fn(&[u8]) -> Result<Option<T>, ParseError>,
    ) -> io::Result<Vec<T>> {
        for _ in 0..DUMP_RETRIES {
            let seq = self.next_seq();
            self.send(&make().finish(seq))?;
            let mut out = Vec::new();
            let interrupted = self.read_dump(seq, want, &mut |p| {
                if let Some(item) = parse(p)? {
                    out.push(item);
                }
                Ok(())
            })?;
            if !interrupted {
                return Ok(out);
            }
            log::debug!("netlink dump interrupted by a concurrent change, restarting");
        }
        Err(io::Error::new(io::ErrorKind::Interrupted, "netlink dump kept being interrupted by changes"))
    }

    /// Reads the answers to dump `seq`; true if the kernel flagged it as
    /// interrupted.
    fn read_dump(
        &mut self,
        seq: u32,
        want: u16,
        each: &mut impl FnMut(&[u8]) -> Result<(), ParseError>,
    ) -> io::Result<bool> {
        let mut interrupted = false;
        loop {
            let n = self.recv()?;
            let data = self.buf.get(..n).unwrap_or_default();
            for msg in messages(data) {
                let msg = msg?;
                if msg.seq != seq {
                    continue;
                }
                interrupted |= msg.flags & NLM_F_DUMP_INTR != 0;
                match msg.ty {
                    NLMSG_DONE => {
                        // Payload: an int, negative if the dump failed.
                        return match i32_at(msg.payload, 0) {
                            Some(e) if e < 0 => Err(io::Error::from_raw_os_error(e.saturating_neg())),
                            _ => Ok(interrupted),
                        };
                    }
                    NLMSG_ERROR => {
                        return match parse_error(&msg)? {
                            Ok(()) => Ok(interrupted),
                            Err(e) => Err(kernel_error(e)),
                        };
                    }
                    NLMSG_NOOP => {}
                    NLMSG_OVERRUN => return Err(io::Error::other("netlink: overrun")),
                    ty if ty == want => each(msg.payload)?,
                    _ => {}
                }
                if msg.flags & NLM_F_MULTI == 0 && msg.ty == want {
                    // A single-part answer ends here.
                    return Ok(interrupted);
                }
            }
        }
    }

    /// Sends a request with `NLM_F_ACK` and waits for its acknowledgement.
    fn request_ack(&mut self, req: Request) -> io::Result<()> {
        let seq = self.next_seq();
        self.send(&req.finish(seq))?;
        loop {
            let n = self.recv()?;
            let data = self.buf.get(..n).unwrap_or_default();
            for msg in messages(data) {
                let msg = msg?;
                if msg.seq != seq || msg.ty != NLMSG_ERROR {
                    continue;
                }
                return parse_error(&msg)?.map_err(kernel_error);
            }
        }
    }
}

/// An `io::Error` for a negative `NLMSG_ERROR`, keeping the errno when the
/// kernel gave no text (so `raw_os_error` works) and the kind either way.
fn kernel_error((errno, text): (i32, Option<String>)) -> io::Error {
    let os = io::Error::from_raw_os_error(errno);
    match text {
        Some(t) => io::Error::new(os.kind(), format!("{os}: {t}")),
        None => os,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds one message: header + body, length and seq filled in.
    fn msg(ty: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(body);
        v.resize(align4(v.len()), 0);
        v
    }

    fn attr(ty: u16, val: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((NLA_HDRLEN + val.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(val);
        v.resize(align4(v.len()), 0);
        v
    }

    fn link_body() -> Vec<u8> {
        let mut b = ifinfomsg(7, IFF_UP | IFF_LOWER_UP, 0).to_vec();
        b.extend(attr(IFLA_IFNAME, b"eth0\0"));
        b.extend(attr(IFLA_MTU, &1500u32.to_ne_bytes()));
        b.extend(attr(IFLA_ADDRESS, &[2, 0, 0, 0, 0, 1]));
        b
    }

    fn addr6_body() -> Vec<u8> {
        let mut b = ifaddrmsg(libc::AF_INET6 as u8, 64, 0, RT_SCOPE_UNIVERSE, 3).to_vec();
        b.extend(attr(IFA_ADDRESS, &"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets()));
        b.extend(attr(IFA_FLAGS, &(IFA_F_TENTATIVE | IFA_F_NODAD).to_ne_bytes()));
        b
    }

    fn route4_body() -> Vec<u8> {
        let mut b = rtmsg(libc::AF_INET as u8, 0, RT_TABLE_MAIN as u8, RTPROT_BOOT, 0, RTN_UNICAST).to_vec();
        b.extend(attr(RTA_TABLE, &RT_TABLE_MAIN.to_ne_bytes()));
        b.extend(attr(RTA_GATEWAY, &[192, 0, 2, 1]));
        b.extend(attr(RTA_OIF, &3u32.to_ne_bytes()));
        b.extend(attr(RTA_PRIORITY, &100u32.to_ne_bytes()));
        b
    }

    #[test]
    fn parses_link() {
        let l = parse_link(&link_body()).unwrap();
        assert_eq!(
            l,
            Link {
                ifindex: 7,
                name: "eth0".into(),
                mtu: Some(1500),
                mac: Some([2, 0, 0, 0, 0, 1]),
                flags: IFF_UP | IFF_LOWER_UP
            }
        );
        assert!(l.is_up() && !l.is_loopback());
    }

    #[test]
    fn parses_addr_with_32bit_flags() {
        let a = parse_addr(&addr6_body()).unwrap().unwrap();
        assert_eq!(a.addr, "2001:db8::2".parse::<IpAddr>().unwrap());
        assert_eq!((a.ifindex, a.prefix_len, a.scope), (3, 64, RT_SCOPE_UNIVERSE));
        assert!(a.is_tentative() && !a.is_dadfailed() && a.is_global());
        assert_eq!(a.family(), Family::V6);
    }

    #[test]
    fn addr_prefers_local_over_peer() {
        let mut b = ifaddrmsg(libc::AF_INET as u8, 32, 0, 0, 2).to_vec();
        b.extend(attr(IFA_ADDRESS, &[10, 0, 0, 1]));
        b.extend(attr(IFA_LOCAL, &[10, 0, 0, 2]));
        let a = parse_addr(&b).unwrap().unwrap();
        assert_eq!(a.addr, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(a.flags, 0);
    }

    #[test]
    fn addr_other_family_or_no_address_is_none() {
        let b = ifaddrmsg(libc::AF_PACKET as u8, 0, 0, 0, 2);
        assert_eq!(parse_addr(&b).unwrap(), None);
        let b = ifaddrmsg(libc::AF_INET as u8, 24, 0, 0, 2);
        assert_eq!(parse_addr(&b).unwrap(), None);
    }

    #[test]
    fn addr_with_wrong_size_is_error() {
        let mut b = ifaddrmsg(libc::AF_INET as u8, 24, 0, 0, 2).to_vec();
        b.extend(attr(IFA_ADDRESS, &[10, 0, 0]));
        assert_eq!(parse_addr(&b), Err(ParseError::BadAttributeValue("IFA_ADDRESS")));
        let mut b = ifaddrmsg(libc::AF_INET6 as u8, 64, 0, 0, 2).to_vec();
        b.extend(attr(IFA_ADDRESS, &[10, 0, 0, 1]));
        assert_eq!(parse_addr(&b), Err(ParseError::BadAttributeValue("IFA_ADDRESS")));
    }

    #[test]
    fn parses_route() {
        let r = parse_route(&route4_body()).unwrap().unwrap();
        assert_eq!(
            r,
            Route {
                family: Family::V4,
                kind: RTN_UNICAST,
                scope: 0,
                table: RT_TABLE_MAIN,
                dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                dst_len: 0,
                gateway: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
                oif: Some(3),
                priority: 100,
            }
        );
        assert!(r.is_default());
    }

    #[test]
    fn parses_multipath_and_via() {
        let mut nh = Vec::new();
        let inner = attr(RTA_GATEWAY, &"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
        nh.extend_from_slice(&((RTNEXTHOP_LEN + inner.len()) as u16).to_ne_bytes());
        nh.extend_from_slice(&[0, 0]);
        nh.extend_from_slice(&5i32.to_ne_bytes());
        nh.extend(inner);
        let mut b = rtmsg(libc::AF_INET6 as u8, 0, RT_TABLE_MAIN as u8, 0, 0, RTN_UNICAST).to_vec();
        b.extend(attr(RTA_MULTIPATH, &nh));
        let r = parse_route(&b).unwrap().unwrap();
        assert_eq!(r.oif, Some(5));
        assert_eq!(r.gateway, Some("fe80::1".parse().unwrap()));

        let mut via = (libc::AF_INET6 as u16).to_ne_bytes().to_vec();
        via.extend_from_slice(&"fe80::2".parse::<Ipv6Addr>().unwrap().octets());
        let mut b = rtmsg(libc::AF_INET as u8, 0, RT_TABLE_MAIN as u8, 0, 0, RTN_UNICAST).to_vec();
        b.extend(attr(RTA_VIA, &via));
        let r = parse_route(&b).unwrap().unwrap();
        assert_eq!(r.gateway, Some("fe80::2".parse().unwrap()));
    }

    #[test]
    fn malformed_multipath_and_via() {
        let mut b = rtmsg(libc::AF_INET6 as u8, 0, RT_TABLE_MAIN as u8, 0, 0, RTN_UNICAST).to_vec();
        // Nexthop claims 40 bytes but has 8.
        let mut nh = 40u16.to_ne_bytes().to_vec();
        nh.extend_from_slice(&[0, 0, 1, 0, 0, 0]);
        b.extend(attr(RTA_MULTIPATH, &nh));
        assert_eq!(parse_route(&b), Err(ParseError::BadAttributeValue("RTA_MULTIPATH")));

        let mut b = rtmsg(libc::AF_INET as u8, 0, RT_TABLE_MAIN as u8, 0, 0, RTN_UNICAST).to_vec();
        b.extend(attr(RTA_VIA, &[99, 0, 1, 2, 3, 4]));
        assert_eq!(parse_route(&b), Err(ParseError::UnknownFamily(99)));
        let mut b = rtmsg(libc::AF_INET as u8, 0, RT_TABLE_MAIN as u8, 0, 0, RTN_UNICAST).to_vec();
        b.extend(attr(RTA_VIA, &[2]));
        assert_eq!(parse_route(&b), Err(ParseError::BadAttributeValue("RTA_VIA")));
    }

    /// Offsets where a cut leaves whole attributes: each attribute's end,
    /// or anywhere in its padding (missing padding is harmless).
    fn attr_ends(body: &[u8], fixed: usize) -> Vec<usize> {
        let mut ends = vec![fixed];
        let mut off = fixed;
        while let Some(len) = u16_at(body, off) {
            ends.extend(off + len as usize..=off + align4(len as usize));
            off += align4(len as usize);
        }
        ends
    }

    #[test]
    fn truncated_bodies_at_every_length() {
        type Parser = fn(&[u8]) -> Result<(), ParseError>;
        let cases: [(Vec<u8>, &str, usize, Parser); 3] = [
            (link_body(), "ifinfomsg", IFINFOMSG_LEN, |p| parse_link(p).map(|_| ())),
            (addr6_body(), "ifaddrmsg", IFADDRMSG_LEN, |p| parse_addr(p).map(|_| ())),
            (route4_body(), "rtmsg", RTMSG_LEN, |p| parse_route(p).map(|_| ())),
        ];
        for (body, what, fixed, parse) in cases {
            let ends = attr_ends(&body, fixed);
            for cut in 0..=body.len() {
                let res = parse(&body[..cut]);
                if cut < fixed {
                    assert_eq!(res, Err(ParseError::TruncatedBody(what)), "{what} cut at {cut}");
                } else {
                    assert_eq!(res.is_ok(), ends.contains(&cut), "{what} cut at {cut}: {res:?}");
                }
            }
        }
    }

    #[test]
    fn attribute_length_errors() {
        let items: Vec<_> = attrs(&[3, 0, 1, 0]).collect();
        assert_eq!(items, vec![Err(ParseError::BadAttributeLength(3))]);
        let items: Vec<_> = attrs(&[9, 0, 1, 0, 0, 0, 0, 0]).collect();
        assert_eq!(items, vec![Err(ParseError::BadAttributeLength(9))]);
        let items: Vec<_> = attrs(&[4, 0]).collect();
        assert_eq!(items.len(), 1);
        assert!(items[0].is_err());
        // A zero-length value is fine, and the type's flag bits are masked.
        let items: Vec<_> = attrs(&[4, 0, 1, 0x80, 5, 0, 2, 0, 7, 0, 0, 0]).collect();
        assert_eq!(items, vec![Ok((1, &[][..])), Ok((2, &[7][..]))]);
        // Bad value sizes.
        assert!(attr_u32(&[1, 2, 3], "x").is_err());
        assert!(attr_ip(Family::V6, &[0; 15], "x").is_err());
    }

    #[test]
    fn message_iteration_and_errors() {
        let mut data = msg(RTM_NEWLINK, NLM_F_MULTI, 1, &link_body());
        data.extend(msg(NLMSG_DONE, NLM_F_MULTI, 1, &0i32.to_ne_bytes()));
        let got: Vec<_> = messages(&data).map(|m| m.unwrap().ty).collect();
        assert_eq!(got, vec![RTM_NEWLINK, NLMSG_DONE]);

        // Every truncation of the stream ends in an error, never a panic,
        // unless it falls exactly on a message boundary.
        let first_len = align4(NLMSG_HDRLEN + link_body().len());
        for cut in 0..data.len() {
            let res: Result<Vec<_>, _> = messages(&data[..cut]).collect();
            assert_eq!(res.is_ok(), cut == 0 || cut == first_len, "cut at {cut}");
        }
        // Length below the header size.
        let mut bad = msg(NLMSG_DONE, 0, 1, &[0; 4]);
        bad[0..4].copy_from_slice(&8u32.to_ne_bytes());
        assert_eq!(messages(&bad).next(), Some(Err(ParseError::BadMessageLength(8))));
        // Length past the end.
        bad[0..4].copy_from_slice(&100u32.to_ne_bytes());
        assert_eq!(messages(&bad).next(), Some(Err(ParseError::BadMessageLength(100))));
        assert_eq!(messages(&bad[..10]).next(), Some(Err(ParseError::TruncatedHeader)));
    }

    #[test]
    fn error_messages_with_and_without_ext_ack() {
        // Ack.
        let data = msg(NLMSG_ERROR, 0, 4, &[0u8; 20]);
        let m = messages(&data).next().unwrap().unwrap();
        assert_eq!(parse_error(&m), Ok(Ok(())));
        // EEXIST, capped, with a text.
        let mut body = (-libc::EEXIST).to_ne_bytes().to_vec();
        body.extend_from_slice(&[0u8; 16]);
        body.extend(attr(NLMSGERR_ATTR_MSG, b"File exists here\0"));
        let data = msg(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 4, &body);
        let m = messages(&data).next().unwrap().unwrap();
        assert_eq!(parse_error(&m), Ok(Err((libc::EEXIST, Some("File exists here".into())))));
        let e = kernel_error((libc::EEXIST, Some("x".into())));
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(kernel_error((libc::EPERM, None)).raw_os_error(), Some(libc::EPERM));
        // Not capped: the echoed request's length is used to skip it.
        let mut body = (-libc::EINVAL).to_ne_bytes().to_vec();
        let echoed = msg(RTM_NEWADDR, 0, 4, &[0u8; 8]);
        body.extend_from_slice(&echoed);
        body.extend(attr(NLMSGERR_ATTR_MSG, b"bad\0"));
        let data = msg(NLMSG_ERROR, NLM_F_ACK_TLVS, 4, &body);
        let m = messages(&data).next().unwrap().unwrap();
        assert_eq!(parse_error(&m), Ok(Err((libc::EINVAL, Some("bad".into())))));
        // Echoed length nonsense: no text, no panic.
        let mut body = (-libc::EINVAL).to_ne_bytes().to_vec();
        body.extend_from_slice(&u32::MAX.to_ne_bytes());
        let data = msg(NLMSG_ERROR, NLM_F_ACK_TLVS, 4, &body);
        let m = messages(&data).next().unwrap().unwrap();
        assert_eq!(parse_error(&m), Ok(Err((libc::EINVAL, None))));
        // Truncated.
        let data = msg(NLMSG_ERROR, 0, 4, &[0u8; 2]);
        let m = messages(&data).next().unwrap().unwrap();
        assert_eq!(parse_error(&m), Err(ParseError::TruncatedBody("nlmsgerr")));
    }

    #[test]
    fn builds_requests() {
        let b = add_addr_request(3, &"2001:db8::2".parse().unwrap(), 64, true).finish(9);
        let m = messages(&b).next().unwrap().unwrap();
        assert_eq!((m.ty, m.seq), (RTM_NEWADDR, 9));
        assert_eq!(m.flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
        // The kernel's own parser would read it the way ours does.
        let a = parse_addr(m.payload).unwrap().unwrap();
        assert_eq!((a.ifindex, a.prefix_len, a.flags), (3, 64, IFA_F_NODAD));

        let req = RouteRequest::default_via("192.0.2.1".parse().unwrap(), 4);
        let b = add_route_request(&req).finish(1);
        let m = messages(&b).next().unwrap().unwrap();
        let r = parse_route(m.payload).unwrap().unwrap();
        assert_eq!((r.dst_len, r.oif, r.gateway, r.scope), (0, Some(4), req.gateway, RT_SCOPE_UNIVERSE));

        let req = RouteRequest::on_link("10.0.0.1".parse().unwrap(), 32, 4);
        let b = add_route_request(&req).finish(1);
        let m = messages(&b).next().unwrap().unwrap();
        let r = parse_route(m.payload).unwrap().unwrap();
        assert_eq!((r.dst, r.dst_len, r.gateway, r.scope), (req.dst, 32, None, RT_SCOPE_LINK));

        let b = set_link_request(4, Some(true), Some(9000)).finish(2);
        let m = messages(&b).next().unwrap().unwrap();
        let l = parse_link(m.payload).unwrap();
        assert_eq!((l.ifindex, l.flags, l.mtu), (4, IFF_UP, Some(9000)));
        assert_eq!(u32_at(m.payload, 12), Some(IFF_UP));
    }

    #[test]
    fn rejects_bad_route_requests() {
        let mut req = RouteRequest::default_via("192.0.2.1".parse().unwrap(), 4);
        req.gateway = Some("2001:db8::1".parse().unwrap());
        assert_eq!(check_route_request(&req).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let req = RouteRequest::on_link("10.0.0.1".parse().unwrap(), 33, 4);
        assert_eq!(check_route_request(&req).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    /// Arbitrary bytes through every parser: errors are fine, panics not.
    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 96) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Make small, plausible lengths common.
            if len >= 4 && next() % 2 == 0 {
                let l = (next() % (len as u64 + 8)) as u16;
                buf[0..2].copy_from_slice(&l.to_ne_bytes());
            }
            let _ = parse_link(&buf);
            let _ = parse_addr(&buf);
            let _ = parse_route(&buf);
            for m in messages(&buf).flatten() {
                let _ = parse_error(&m);
            }
            let _ = attrs(&buf).count();
        }
    }

    /// The real kernel: the current namespace always has a loopback link.
    #[test]
    fn dumps_from_the_kernel() {
        let mut nl = Netlink::open().unwrap();
        let links = nl.links().unwrap();
        let lo = links.iter().find(|l| l.is_loopback()).expect("a loopback link");
        assert_eq!(nl.link_by_name(&lo.name).unwrap().ifindex, lo.ifindex);
        assert_eq!(nl.link_by_name("no-such-if-xyz").unwrap_err().kind(), io::ErrorKind::NotFound);
        // Dumps succeed (contents depend on the machine).
        nl.addrs(None).unwrap();
        nl.routes(Family::V4).unwrap();
        nl.routes(Family::V6).unwrap();
        // A change on a nonexistent link is a kernel error, not a hang.
        let e = nl.set_link(0x7fff_fff0, true, None).unwrap_err();
        assert!(e.to_string().contains("No such device"), "{e}");
    }
}
