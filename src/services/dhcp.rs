//! DHCPv4 server: one guest, one address, answered without state.
//!
//! # Theory of operation
//!
//! The guest is alone on its link and gets one address, fixed by
//! configuration (by default the host's own, so the guest looks like the
//! host). There is no pool and no lease table: every message is answered
//! from [`DhcpConfig`] and the message itself, so [`handle`] is a pure
//! function. The engine gives it the UDP payload of a datagram the guest
//! sent to port 67 and wraps the reply in UDP 67 -> 68, IPv4 (source: our
//! `server_id`) and Ethernet, towards [`DhcpReply::dst_ip`] and
//! [`DhcpReply::dst_mac`].
//!
//! What is answered (RFC 2131 section 4.3):
//!
//! * DISCOVER -> OFFER of `guest_addr`, whatever address was asked for.
//! * REQUEST -> ACK if it asks for `guest_addr`, else NAK. The address asked
//!   for is option 50 (SELECTING and INIT-REBOOT) or else `ciaddr`
//!   (RENEWING, REBINDING). A REQUEST naming another server (option 54) is
//!   the client choosing that server's offer: no answer (section 4.3.2).
//! * INFORM -> ACK with the configuration options but no address and no
//!   lease times (section 4.3.5).
//! * DECLINE, RELEASE, and types only servers send: no answer. With a
//!   single fixed address there is nothing to mark or free.
//!
//! Replies follow RFC 2131 table 3: `xid`, `giaddr`, `chaddr` and the
//! broadcast flag copied, `secs`/`hops`/`siaddr` zero, `ciaddr` echoed only
//! in ACK. Options: 53 and 54 first, then the client identifier if it sent
//! one (RFC 6842), then what option 55 asked for in the client's order
//! (RFC 2132 section 9.8), then the remaining ones we have (RFC 2131 allows
//! unrequested parameters; unknown requested codes such as 12 or 42 are
//! skipped). When not everything fits, the lease times, subnet mask and
//! router win over the rest, and the rest goes in request order. NAK
//! carries only 53, 54 and 61.
//!
//! Size: a client that sends no option 57 can only be relied on to take a
//! 576-byte IP datagram (RFC 2131 section 2), so the DHCP message stays
//! within 576 - 28 = 548 bytes; option 57 raises that (read as including
//! the IP and UDP headers, as busybox and ISC fill it in, the
//! conservative reading). Replies are padded to 300 bytes, the BOOTP
//! minimum some clients still enforce (RFC 1542 section 2.1).
//!
//! Destination: a client with no address (`ciaddr` zero) or one that set
//! the broadcast flag gets a broadcast (255.255.255.255,
//! ff:ff:ff:ff:ff:ff), which every client can receive; RFC 2131 section 4.1
//! also allows unicast to `chaddr`/`yiaddr` there, but broadcast needs no
//! ARP-less delivery trick and changes nothing for a single guest. Others
//! get unicast to `ciaddr` at `chaddr`. NAK is always broadcast (section
//! 4.3.2, `giaddr` zero).
//!
//! Lease times: passt hands out practically infinite leases. We send
//! [`DhcpConfig::lease_secs`] (default [`DhcpConfig::DEFAULT_LEASE_SECS`],
//! one day) with T1 = 1/2 and T2 = 7/8 of it (RFC 2131 section 4.4.5), or
//! no T1/T2 for an infinite lease (0xffffffff). A day keeps clients
//! renewing now and then, which costs nothing here and lets a changed
//! configuration reach them.
//!
//! Left out: relay agents (`giaddr` is copied but replies still go to the
//! link), BOOTP clients without option 53 (rejected as an error), option
//! overload, RFC 4039 rapid commit. Mirrors passt's `dhcp.c` in scope.

use core::fmt;
use std::net::Ipv4Addr;

use crate::wire::dhcp::{
    self as wire, option, MessageType, OpCode, OptionWriter, Packet, Repr, MIN_BOOTP_LEN,
    OPTIONS_OFFSET,
};
use crate::wire::dhcp::{DomainList, Ipv4List};

/// Hardware type of Ethernet in `htype` (RFC 1700, "Hardware Type").
const HTYPE_ETHERNET: u8 = 1;
/// Length of an Ethernet address in `hlen`.
const HLEN_ETHERNET: u8 = 6;
/// IPv4 datagram every DHCP client must accept (RFC 2131 section 2) and
/// the smallest legal option 57 (RFC 2132 section 9.10).
const MIN_DATAGRAM: usize = 576;
/// IPv4 (without options) plus UDP headers around the message.
const IP_UDP_HEADERS: usize = 20 + 8;
/// Lease time meaning "infinite" (RFC 2131 section 3.3).
const INFINITE_LEASE: u32 = u32::MAX;
/// Smallest MTU option 26 may carry (RFC 2132 section 5.1).
const MIN_MTU: u16 = 68;

/// What the server hands out. Built by the engine from the instance
/// configuration; read only here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpConfig {
    /// The address we hand out (the host's own by default).
    pub guest_addr: Ipv4Addr,
    /// Its prefix length; over 32 is read as 32.
    pub prefix_len: u8,
    /// Default gateway (option 3); `None`: no router option.
    pub router: Option<Ipv4Addr>,
    /// Our address towards the guest (the gateway address): option 54 and
    /// the source of replies.
    pub server_id: Ipv4Addr,
    /// DNS servers (option 6); empty: no option 6.
    pub dns: Vec<Ipv4Addr>,
    /// Search domains: the first valid one is option 15, all valid ones
    /// option 119; empty: neither.
    pub search: Vec<String>,
    /// Interface MTU (option 26); `None`, or below 68: no option 26.
    /// passt advertises 65520 by default.
    pub mtu: Option<u16>,
    /// Lease time in seconds (option 51); 0xffffffff is infinite.
    pub lease_secs: u32,
}

impl DhcpConfig {
    /// One day: see the module documentation for why not infinite.
    pub const DEFAULT_LEASE_SECS: u32 = 86_400;
}

/// Which answer a reply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// DHCPOFFER, to a DISCOVER.
    Offer,
    /// DHCPACK, to a REQUEST for our address or to an INFORM.
    Ack,
    /// DHCPNAK, to a REQUEST for another address.
    Nak,
}

/// A reply written by [`handle`], and where to send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpReply {
    /// Bytes of the reply at the start of the output buffer.
    pub len: usize,
    /// Whether it goes to the broadcast addresses (then `dst_ip` is
    /// 255.255.255.255 and `dst_mac` ff:ff:ff:ff:ff:ff).
    pub broadcast: bool,
    /// IPv4 destination.
    pub dst_ip: Ipv4Addr,
    /// Ethernet destination.
    pub dst_mac: [u8; 6],
    /// OFFER, ACK or NAK.
    pub kind: ReplyKind,
}

/// Why a client message was dropped without answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhcpError {
    /// The message does not parse (the wire error says why), including
    /// plain BOOTP without a message type.
    Malformed(wire::Error),
    /// `op` is not BOOTREQUEST (1): the value found.
    NotRequest(u8),
    /// `htype`/`hlen` are not Ethernet's 1/6.
    NotEthernet {
        /// `htype` found.
        htype: u8,
        /// `hlen` found.
        hlen: u8,
    },
    /// The output buffer is shorter than a minimal reply (300 bytes): a
    /// caller bug, not the guest's doing.
    OutputTooSmall(usize),
}

impl fmt::Display for DhcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DhcpError::Malformed(err) => write!(f, "malformed DHCP message: {err}"),
            DhcpError::NotRequest(op) => write!(f, "DHCP op {op} is not BOOTREQUEST"),
            DhcpError::NotEthernet { htype, hlen } => {
                write!(f, "DHCP hardware type {htype}/length {hlen} is not Ethernet")
            }
            DhcpError::OutputTooSmall(len) => {
                write!(f, "DHCP output buffer of {len} bytes is too small")
            }
        }
    }
}

impl std::error::Error for DhcpError {}

impl From<wire::Error> for DhcpError {
    fn from(err: wire::Error) -> Self {
        DhcpError::Malformed(err)
    }
}

/// Handles one client message (the UDP payload sent to port 67) and writes
/// the reply, a full DHCP message, at the start of `out`.
///
/// Returns `Ok(None)` when nothing is to be sent: RELEASE, DECLINE, a
/// REQUEST choosing another server, message types a client does not send.
/// Never writes past `out.len()`; `out` should hold at least 576 bytes.
///
/// # Errors
/// [`DhcpError`]: malformed or non-Ethernet input, or `out` shorter than
/// 300 bytes. Nothing is written then.
pub fn handle(
    cfg: &DhcpConfig,
    msg: &[u8],
    out: &mut [u8],
) -> Result<Option<DhcpReply>, DhcpError> {
    let packet = Packet::new_checked(msg)?;
    let request = Repr::parse(&packet)?;
    check_request(&request)?;
    if out.len() < MIN_BOOTP_LEN {
        return Err(DhcpError::OutputTooSmall(out.len()));
    }
    log::trace!("dhcp: received {request}");

    let Some(answer) = decide(cfg, &request) else {
        return Ok(None);
    };
    let reply = build_reply(cfg, &request, &answer);
    let cap = reply_size_cap(&request, out.len());
    let len = emit_reply(&reply, request.parameter_request_list, out, cap)?;
    let (broadcast, dst_ip, dst_mac) = destination(&request, answer.kind);
    log::debug!("dhcp: sending {reply} ({len} bytes) to {dst_ip}");
    Ok(Some(DhcpReply { len, broadcast, dst_ip, dst_mac, kind: answer.kind }))
}

/// A client message must be a BOOTREQUEST from an Ethernet client.
fn check_request(request: &Repr<'_>) -> Result<(), DhcpError> {
    if request.op != OpCode::Request {
        return Err(DhcpError::NotRequest(u8::from(request.op)));
    }
    if request.htype != HTYPE_ETHERNET || request.hlen != HLEN_ETHERNET {
        return Err(DhcpError::NotEthernet { htype: request.htype, hlen: request.hlen });
    }
    Ok(())
}

/// What to answer, before it is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Answer {
    kind: ReplyKind,
    /// The address given: `guest_addr`, or zero for NAK and INFORM.
    yiaddr: Ipv4Addr,
    /// ACK echoes `ciaddr`; OFFER and NAK carry zero.
    ciaddr: Ipv4Addr,
    /// Lease time options (not for INFORM, RFC 2131 section 4.3.5).
    lease: bool,
}

impl Answer {
    fn offer(cfg: &DhcpConfig) -> Self {
        Answer {
            kind: ReplyKind::Offer,
            yiaddr: cfg.guest_addr,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            lease: true,
        }
    }

    fn ack(cfg: &DhcpConfig, request: &Repr<'_>) -> Self {
        Answer { kind: ReplyKind::Ack, yiaddr: cfg.guest_addr, ciaddr: request.ciaddr, lease: true }
    }

    fn inform_ack(request: &Repr<'_>) -> Self {
        Answer {
            kind: ReplyKind::Ack,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            ciaddr: request.ciaddr,
            lease: false,
        }
    }

    fn nak() -> Self {
        Answer {
            kind: ReplyKind::Nak,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            lease: false,
        }
    }
}

/// RFC 2131 section 4.3: which message gets which answer.
fn decide(cfg: &DhcpConfig, request: &Repr<'_>) -> Option<Answer> {
    match request.message_type {
        MessageType::Discover => Some(Answer::offer(cfg)),
        MessageType::Request => decide_request(cfg, request),
        MessageType::Inform => Some(Answer::inform_ack(request)),
        MessageType::Decline => {
            // Someone else on the guest's link has the address we hand out:
            // nothing we can do with a single address but say so.
            log::debug!("dhcp: guest declined {}", cfg.guest_addr);
            None
        }
        MessageType::Release => {
            log::debug!("dhcp: guest released its address");
            None
        }
        other => {
            log::debug!("dhcp: ignoring {other} from guest");
            None
        }
    }
}

/// RFC 2131 section 4.3.2: SELECTING (options 54 and 50), INIT-REBOOT
/// (option 50, no 54), RENEWING/REBINDING (`ciaddr`, neither option).
fn decide_request(cfg: &DhcpConfig, request: &Repr<'_>) -> Option<Answer> {
    if let Some(server) = request.server_id {
        if server != cfg.server_id {
            log::debug!("dhcp: guest chose server {server}, not us");
            return None;
        }
    }
    let wanted = request
        .requested_ip
        .or_else(|| (!request.ciaddr.is_unspecified()).then_some(request.ciaddr));
    if wanted == Some(cfg.guest_addr) {
        Some(Answer::ack(cfg, request))
    } else {
        log::debug!("dhcp: guest asked for {wanted:?}, we hand out {}", cfg.guest_addr);
        Some(Answer::nak())
    }
}

/// The netmask of a prefix length (over 32 read as 32).
fn netmask(prefix_len: u8) -> Ipv4Addr {
    let prefix = u32::from(prefix_len.min(32));
    // checked_shl: a shift by 32 (prefix 0) is an overflow for u32.
    Ipv4Addr::from(u32::MAX.checked_shl(32 - prefix).unwrap_or(0))
}

/// Option 15: the first search domain that is a valid name, without the
/// root dot.
fn domain_name(search: &[String]) -> Option<&[u8]> {
    let name = search.iter().find(|n| wire::domain_wire_len(n).is_some())?;
    Some(name.strip_suffix('.').unwrap_or(name).as_bytes())
}

/// The reply's meaning (RFC 2131 table 3), borrowing from `cfg` and the
/// request.
fn build_reply<'a>(cfg: &'a DhcpConfig, request: &Repr<'a>, answer: &Answer) -> Repr<'a> {
    let message_type = match answer.kind {
        ReplyKind::Offer => MessageType::Offer,
        ReplyKind::Ack => MessageType::Ack,
        ReplyKind::Nak => MessageType::Nak,
    };
    let mut reply = Repr::new(OpCode::Reply, message_type, request.xid, [0; 6]);
    reply.htype = request.htype;
    reply.hlen = request.hlen;
    reply.chaddr = request.chaddr;
    reply.giaddr = request.giaddr;
    reply.broadcast = request.broadcast;
    reply.ciaddr = answer.ciaddr;
    reply.yiaddr = answer.yiaddr;
    reply.server_id = Some(cfg.server_id);
    reply.client_id = request.client_id;
    if answer.kind == ReplyKind::Nak {
        return reply;
    }
    reply.subnet_mask = Some(netmask(cfg.prefix_len));
    reply.router = cfg.router;
    reply.dns_servers = (!cfg.dns.is_empty()).then_some(Ipv4List::Addrs(&cfg.dns));
    reply.domain_name = domain_name(&cfg.search);
    reply.domain_search = Some(DomainList::Names(&cfg.search));
    reply.interface_mtu = cfg.mtu.filter(|&mtu| mtu >= MIN_MTU);
    if answer.lease {
        reply.lease_time = Some(cfg.lease_secs);
        if cfg.lease_secs != INFINITE_LEASE {
            // RFC 2131 section 4.4.5 defaults: T1 = 0.5, T2 = 0.875 of the lease.
            reply.renewal_time = Some(cfg.lease_secs / 2);
            reply.rebinding_time = Some((u64::from(cfg.lease_secs) * 7 / 8) as u32);
        }
    }
    reply
}

/// Longest reply the client takes and `out` holds (see the module
/// documentation on option 57).
fn reply_size_cap(request: &Repr<'_>, out_len: usize) -> usize {
    let datagram =
        request.max_message_size.map_or(MIN_DATAGRAM, |size| usize::from(size).max(MIN_DATAGRAM));
    (datagram - IP_UDP_HEADERS).min(out_len)
}

/// Options sent whether asked for or not, when they fit: without them a
/// lease is unusable or wrong (systemd-networkd drops an ACK without 51).
const ESSENTIAL: [u8; 6] = [
    option::MESSAGE_TYPE,
    option::SERVER_ID,
    option::LEASE_TIME,
    option::SUBNET_MASK,
    option::ROUTER,
    option::CLIENT_ID,
];

/// Options we send unasked, after the requested ones, in this order.
const UNREQUESTED: [u8; 8] = [
    option::LEASE_TIME,
    option::RENEWAL_TIME,
    option::REBINDING_TIME,
    option::SUBNET_MASK,
    option::ROUTER,
    option::DNS_SERVERS,
    option::DOMAIN_NAME,
    option::DOMAIN_SEARCH,
];

/// Option codes in emission order, each at most once: a small set backed
/// by a bitmap, no allocation.
struct OptionOrder {
    codes: [u8; 256],
    len: usize,
    seen: [bool; 256],
}

impl OptionOrder {
    fn new() -> Self {
        OptionOrder { codes: [0; 256], len: 0, seen: [false; 256] }
    }

    fn push(&mut self, code: u8) {
        let seen = &mut self.seen[usize::from(code)];
        if *seen || code == option::PAD || code == option::END {
            return;
        }
        *seen = true;
        // 254 codes at most reach here (PAD and END excluded): in bounds.
        if let Some(slot) = self.codes.get_mut(self.len) {
            *slot = code;
            self.len += 1;
        }
    }

    fn as_slice(&self) -> &[u8] {
        self.codes.get(..self.len).unwrap_or(&[])
    }
}

/// 53 and 54 first, the client identifier, the requested options in the
/// client's order, then what we send unasked (option 26 last: clients that
/// did not ask for it may not expect it, and it is the least useful).
fn option_order(parameter_request_list: Option<&[u8]>) -> OptionOrder {
    let mut order = OptionOrder::new();
    order.push(option::MESSAGE_TYPE);
    order.push(option::SERVER_ID);
    order.push(option::CLIENT_ID);
    parameter_request_list.unwrap_or(&[]).iter().for_each(|&code| order.push(code));
    UNREQUESTED.iter().for_each(|&code| order.push(code));
    order.push(option::INTERFACE_MTU);
    order
}

/// Picks the options that fit in `budget` bytes: essential ones first, then
/// the others in `order`; an option too big is skipped, smaller ones after
/// it may still go.
fn select_options(reply: &Repr<'_>, order: &[u8], mut budget: usize) -> [bool; 256] {
    let mut selected = [false; 256];
    let passes: [&dyn Fn(u8) -> bool; 2] =
        [&|code| ESSENTIAL.contains(&code), &|code| !ESSENTIAL.contains(&code)];
    for in_pass in passes {
        for &code in order.iter().filter(|&&code| in_pass(code)) {
            let Some(len) = reply.option_len(code) else {
                continue;
            };
            if len <= budget {
                budget -= len;
                selected[usize::from(code)] = true;
            } else {
                log::debug!("dhcp: option {code} ({len} bytes) left out of the reply: no room");
            }
        }
    }
    selected
}

/// Writes the reply into `out`, at most `cap` bytes (and at least 300,
/// zero-padded), and returns its length.
fn emit_reply(
    reply: &Repr<'_>,
    parameter_request_list: Option<&[u8]>,
    out: &mut [u8],
    cap: usize,
) -> Result<usize, DhcpError> {
    let out_len = out.len();
    let cap = cap.min(out_len);
    let area = out.get_mut(..cap).ok_or(DhcpError::OutputTooSmall(out_len))?;
    let mut packet = Packet::new_unchecked(area);
    reply.emit_header(&mut packet)?;

    let order = option_order(parameter_request_list);
    // One byte of the options area is END's.
    let budget = cap.saturating_sub(OPTIONS_OFFSET + 1);
    let selected = select_options(reply, order.as_slice(), budget);
    let mut writer = OptionWriter::new(packet.options_mut());
    for &code in order.as_slice() {
        if selected[usize::from(code)] {
            reply.emit_option(code, &mut writer)?;
        }
    }
    let len = OPTIONS_OFFSET + writer.finish()?;

    let padded = len.max(MIN_BOOTP_LEN).min(cap);
    if let Some(padding) = out.get_mut(len..padded) {
        padding.fill(option::PAD);
    }
    Ok(padded)
}

/// Where the reply goes (see the module documentation).
fn destination(request: &Repr<'_>, kind: ReplyKind) -> (bool, Ipv4Addr, [u8; 6]) {
    if kind == ReplyKind::Nak || request.broadcast || request.ciaddr.is_unspecified() {
        (true, Ipv4Addr::BROADCAST, [0xff; 6])
    } else {
        (false, request.ciaddr, request.client_mac())
    }
}
