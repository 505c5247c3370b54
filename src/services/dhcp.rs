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
//! ff:ff:ff:ff:ff:ff), which every client can receive (RFC 2131 section
//! 4.1 would unicast to `chaddr`/`yiaddr` when the flag is clear; with a
//! single guest on the link broadcast reaches the same client, and works
//! for clients that cannot take unicast before configuration). Others get
//! unicast to `ciaddr` at `chaddr`. NAK is always broadcast (section 4.3.2,
//! `giaddr` zero).
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
    self as wire, option, DomainList, Ipv4List, MessageType, OpCode, OptionWriter, Packet, Repr,
    MIN_BOOTP_LEN, OPTIONS_OFFSET,
};

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
    let mut take = |&code: &u8| {
        let Some(len) = reply.option_len(code) else { return };
        if len <= budget {
            budget -= len;
            selected[usize::from(code)] = true;
        } else {
            log::debug!("dhcp: option {code} ({len} bytes) left out of the reply: no room");
        }
    };
    order.iter().filter(|code| ESSENTIAL.contains(code)).for_each(&mut take);
    order.iter().filter(|code| !ESSENTIAL.contains(code)).for_each(&mut take);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::dhcp::{DhcpOption, OptionsIter};

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    const GUEST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 20);
    const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
    const OTHER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 99);
    const XID: u32 = 0x3d1d_528a;

    fn cfg() -> DhcpConfig {
        DhcpConfig {
            guest_addr: GUEST,
            prefix_len: 24,
            router: Some(GATEWAY),
            server_id: GATEWAY,
            dns: vec![GATEWAY, Ipv4Addr::new(9, 9, 9, 9)],
            search: vec!["example.com".to_string(), "corp.example".to_string()],
            mtu: Some(65520),
            lease_secs: DhcpConfig::DEFAULT_LEASE_SECS,
        }
    }

    /// A client message built by hand from RFC 2131 figure 1 (independent of
    /// the emitter under test): `options` are written as given, END added.
    fn client_msg(ciaddr: Ipv4Addr, flags: u16, options: &[u8]) -> Vec<u8> {
        let mut m = vec![1, 1, 6, 0]; // BOOTREQUEST, Ethernet, hlen 6, hops 0
        m.extend_from_slice(&XID.to_be_bytes());
        m.extend_from_slice(&[0, 3]); // secs
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&ciaddr.octets());
        m.extend_from_slice(&[0; 12]); // yiaddr, siaddr, giaddr
        m.extend_from_slice(&MAC);
        m.resize(236, 0); // rest of chaddr, sname, file
        m.extend_from_slice(&[0x63, 0x82, 0x53, 0x63]);
        m.extend_from_slice(options);
        m.push(255);
        m
    }

    /// busybox udhcpc's DISCOVER (see the wire module's fixture): message
    /// type, client id, max size 576, its default parameter list, vendor
    /// class, END, padding to 300 bytes.
    fn udhcpc_discover() -> Vec<u8> {
        let mut m = client_msg(
            Ipv4Addr::UNSPECIFIED,
            0,
            &[
                53, 1, 1, // DISCOVER
                61, 7, 1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // client id
                57, 2, 0x02, 0x40, // max size 576
                55, 7, 1, 3, 6, 12, 15, 28, 42, // parameter request list
                60, 5, b'u', b'd', b'h', b'c', b'p', // vendor class
            ],
        );
        m.resize(300, 0);
        m
    }

    fn ip_opt(code: u8, ip: Ipv4Addr) -> Vec<u8> {
        let mut v = vec![code, 4];
        v.extend_from_slice(&ip.octets());
        v
    }

    fn request(ciaddr: Ipv4Addr, requested: Option<Ipv4Addr>, server: Option<Ipv4Addr>) -> Vec<u8> {
        let mut opts = vec![53, 1, 3];
        if let Some(ip) = requested {
            opts.extend(ip_opt(50, ip));
        }
        if let Some(ip) = server {
            opts.extend(ip_opt(54, ip));
        }
        opts.extend_from_slice(&[55, 4, 1, 3, 6, 26]);
        client_msg(ciaddr, 0, &opts)
    }

    /// Runs `handle` with a 1500-byte buffer followed by a canary.
    fn run(cfg: &DhcpConfig, msg: &[u8]) -> (Option<DhcpReply>, Vec<u8>) {
        let mut buf = vec![0x5a; 1500 + 64];
        let reply = handle(cfg, msg, &mut buf[..1500]).unwrap();
        assert!(buf[1500..].iter().all(|&b| b == 0x5a), "wrote past out");
        let len = reply.map_or(0, |r| r.len);
        buf.truncate(len);
        (reply, buf)
    }

    fn options(bytes: &[u8]) -> Vec<DhcpOption<'_>> {
        assert!(Packet::new_checked(bytes).is_ok());
        OptionsIter::new(&bytes[OPTIONS_OFFSET..]).map(|o| o.unwrap()).collect()
    }

    fn codes(bytes: &[u8]) -> Vec<u8> {
        options(bytes).iter().map(|o| o.code).collect()
    }

    fn option(bytes: &[u8], code: u8) -> Option<&[u8]> {
        options(bytes).into_iter().find(|o| o.code == code).map(|o| o.data)
    }

    #[test]
    fn udhcpc_discover_gets_offer() {
        let (reply, bytes) = run(&cfg(), &udhcpc_discover());
        let reply = reply.unwrap();
        assert_eq!(reply.kind, ReplyKind::Offer);
        // No address yet, broadcast bit clear: broadcast anyway.
        assert!(reply.broadcast);
        assert_eq!(reply.dst_ip, Ipv4Addr::BROADCAST);
        assert_eq!(reply.dst_mac, [0xff; 6]);
        assert!(reply.len >= 300 && reply.len <= 548, "{}", reply.len);

        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.op(), OpCode::Reply);
        assert_eq!((p.htype(), p.hlen(), p.hops(), p.secs()), (1, 6, 0, 0));
        assert_eq!(p.xid(), XID);
        assert_eq!(p.client_mac(), MAC);
        assert_eq!(p.yiaddr(), GUEST);
        assert_eq!(p.ciaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(p.siaddr(), Ipv4Addr::UNSPECIFIED);
        assert!(!p.broadcast());

        // 53, 54, 61 echoed, then the requested ones in udhcpc's order (12, 28
        // and 42 unknown to us), then lease times and the rest unasked.
        assert_eq!(codes(&bytes), [53, 54, 61, 1, 3, 6, 15, 51, 58, 59, 119, 26]);
        assert_eq!(option(&bytes, 53), Some(&[2][..]));
        assert_eq!(option(&bytes, 54), Some(&[192, 168, 1, 1][..]));
        assert_eq!(option(&bytes, 61), Some(&[1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56][..]));
        assert_eq!(option(&bytes, 1), Some(&[255, 255, 255, 0][..]));
        assert_eq!(option(&bytes, 3), Some(&[192, 168, 1, 1][..]));
        assert_eq!(option(&bytes, 6), Some(&[192, 168, 1, 1, 9, 9, 9, 9][..]));
        assert_eq!(option(&bytes, 15), Some(&b"example.com"[..]));
        assert_eq!(option(&bytes, 51), Some(&86_400u32.to_be_bytes()[..]));
        assert_eq!(option(&bytes, 58), Some(&43_200u32.to_be_bytes()[..]));
        assert_eq!(option(&bytes, 59), Some(&75_600u32.to_be_bytes()[..]));
        assert_eq!(option(&bytes, 26), Some(&[0xff, 0xf0][..]));
        let search: &[u8] = &[
            7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm',
            0, // example.com
            4, b'c', b'o', b'r', b'p', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0,
        ];
        assert_eq!(option(&bytes, 119), Some(search));
        // Padding after END.
        let end = 240 + options(&bytes).iter().map(|o| o.data.len() + 2).sum::<usize>();
        assert_eq!(bytes[end], 255);
        assert!(bytes[end + 1..].iter().all(|&b| b == 0));
    }

    #[test]
    fn discover_broadcast_flag_copied() {
        let msg = client_msg(Ipv4Addr::UNSPECIFIED, 0x8000, &[53, 1, 1]);
        let (reply, bytes) = run(&cfg(), &msg);
        assert!(reply.unwrap().broadcast);
        assert_eq!(Packet::new_checked(&bytes[..]).unwrap().flags(), 0x8000);
    }

    #[test]
    fn discover_without_parameter_list_gets_everything() {
        let msg = client_msg(Ipv4Addr::UNSPECIFIED, 0, &[53, 1, 1, 50, 4, 10, 0, 0, 7]);
        let (reply, bytes) = run(&cfg(), &msg);
        assert_eq!(reply.unwrap().kind, ReplyKind::Offer);
        assert_eq!(codes(&bytes), [53, 54, 51, 58, 59, 1, 3, 6, 15, 119, 26]);
        // Offered address is ours whatever was asked.
        assert_eq!(Packet::new_checked(&bytes[..]).unwrap().yiaddr(), GUEST);
    }

    #[test]
    fn parameter_list_duplicates_and_specials_once() {
        let msg =
            client_msg(Ipv4Addr::UNSPECIFIED, 0, &[53, 1, 1, 55, 8, 6, 6, 53, 54, 0, 255, 3, 6]);
        let (_, bytes) = run(&cfg(), &msg);
        assert_eq!(codes(&bytes), [53, 54, 6, 3, 51, 58, 59, 1, 15, 119, 26]);
    }

    #[test]
    fn selecting_request_for_our_address_acked() {
        let (reply, bytes) =
            run(&cfg(), &request(Ipv4Addr::UNSPECIFIED, Some(GUEST), Some(GATEWAY)));
        let reply = reply.unwrap();
        assert_eq!(reply.kind, ReplyKind::Ack);
        assert!(reply.broadcast);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.yiaddr(), GUEST);
        assert_eq!(p.ciaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(option(&bytes, 53), Some(&[5][..]));
        assert_eq!(codes(&bytes), [53, 54, 1, 3, 6, 26, 51, 58, 59, 15, 119]);
    }

    #[test]
    fn selecting_request_for_other_server_ignored() {
        let (reply, _) = run(&cfg(), &request(Ipv4Addr::UNSPECIFIED, Some(GUEST), Some(OTHER)));
        assert_eq!(reply, None);
    }

    #[test]
    fn selecting_request_for_other_address_naked() {
        let (reply, bytes) =
            run(&cfg(), &request(Ipv4Addr::UNSPECIFIED, Some(OTHER), Some(GATEWAY)));
        let reply = reply.unwrap();
        assert_eq!(reply.kind, ReplyKind::Nak);
        assert!(reply.broadcast);
        assert_eq!(reply.dst_ip, Ipv4Addr::BROADCAST);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.yiaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(p.ciaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(p.xid(), XID);
        // RFC 2131 table 3: only message type and server id.
        assert_eq!(codes(&bytes), [53, 54]);
        assert_eq!(option(&bytes, 53), Some(&[6][..]));
    }

    #[test]
    fn nak_echoes_client_id_only() {
        let msg =
            client_msg(Ipv4Addr::UNSPECIFIED, 0, &[53, 1, 3, 50, 4, 10, 0, 0, 1, 61, 3, 0, 1, 2]);
        let (reply, bytes) = run(&cfg(), &msg);
        assert_eq!(reply.unwrap().kind, ReplyKind::Nak);
        assert_eq!(codes(&bytes), [53, 54, 61]);
        assert_eq!(option(&bytes, 61), Some(&[0, 1, 2][..]));
    }

    #[test]
    fn init_reboot() {
        let (reply, _) = run(&cfg(), &request(Ipv4Addr::UNSPECIFIED, Some(GUEST), None));
        assert_eq!(reply.unwrap().kind, ReplyKind::Ack);
        let (reply, _) = run(&cfg(), &request(Ipv4Addr::UNSPECIFIED, Some(OTHER), None));
        assert_eq!(reply.unwrap().kind, ReplyKind::Nak);
    }

    #[test]
    fn renewing_unicast_to_ciaddr() {
        let (reply, bytes) = run(&cfg(), &request(GUEST, None, None));
        let reply = reply.unwrap();
        assert_eq!(reply.kind, ReplyKind::Ack);
        assert!(!reply.broadcast);
        assert_eq!(reply.dst_ip, GUEST);
        assert_eq!(reply.dst_mac, MAC);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.ciaddr(), GUEST);
        assert_eq!(p.yiaddr(), GUEST);
    }

    #[test]
    fn renewing_with_broadcast_flag_broadcast() {
        let mut msg = request(GUEST, None, None);
        msg[10] = 0x80;
        let (reply, _) = run(&cfg(), &msg);
        let reply = reply.unwrap();
        assert!(reply.broadcast);
        assert_eq!((reply.dst_ip, reply.dst_mac), (Ipv4Addr::BROADCAST, [0xff; 6]));
    }

    #[test]
    fn renewing_other_address_naked_by_broadcast() {
        let (reply, _) = run(&cfg(), &request(OTHER, None, None));
        let reply = reply.unwrap();
        assert_eq!(reply.kind, ReplyKind::Nak);
        assert!(reply.broadcast);
    }

    #[test]
    fn request_without_any_address_naked() {
        let (reply, _) = run(&cfg(), &request(Ipv4Addr::UNSPECIFIED, None, Some(GATEWAY)));
        assert_eq!(reply.unwrap().kind, ReplyKind::Nak);
    }

    #[test]
    fn inform_acked_without_address_or_lease() {
        let msg = client_msg(GUEST, 0, &[53, 1, 8, 55, 3, 6, 15, 51]);
        let (reply, bytes) = run(&cfg(), &msg);
        let reply = reply.unwrap();
        assert_eq!(reply.kind, ReplyKind::Ack);
        assert!(!reply.broadcast);
        assert_eq!((reply.dst_ip, reply.dst_mac), (GUEST, MAC));
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.yiaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(p.ciaddr(), GUEST);
        assert_eq!(codes(&bytes), [53, 54, 6, 15, 1, 3, 119, 26]);
    }

    #[test]
    fn silent_types() {
        for t in [4u8, 7, 2, 5, 6, 10, 200] {
            let msg = client_msg(GUEST, 0, &[53, 1, t, 54, 4, 192, 168, 1, 1]);
            let mut out = [0x77u8; 600];
            assert_eq!(handle(&cfg(), &msg, &mut out), Ok(None), "type {t}");
            assert!(out.iter().all(|&b| b == 0x77), "type {t} wrote");
        }
    }

    #[test]
    fn rejected_headers() {
        let mut out = [0u8; 600];
        let mut msg = udhcpc_discover();
        msg[0] = 2;
        assert_eq!(handle(&cfg(), &msg, &mut out), Err(DhcpError::NotRequest(2)));
        msg[0] = 0;
        assert_eq!(handle(&cfg(), &msg, &mut out), Err(DhcpError::NotRequest(0)));
        let mut msg = udhcpc_discover();
        msg[2] = 16; // bad hlen
        assert_eq!(
            handle(&cfg(), &msg, &mut out),
            Err(DhcpError::NotEthernet { htype: 1, hlen: 16 })
        );
        msg[2] = 0;
        assert_eq!(
            handle(&cfg(), &msg, &mut out),
            Err(DhcpError::NotEthernet { htype: 1, hlen: 0 })
        );
        let mut msg = udhcpc_discover();
        msg[1] = 6; // IEEE 802
        assert_eq!(
            handle(&cfg(), &msg, &mut out),
            Err(DhcpError::NotEthernet { htype: 6, hlen: 6 })
        );
    }

    #[test]
    fn malformed_input_is_an_error() {
        let mut out = [0u8; 600];
        let msg = udhcpc_discover();
        let cases: [(&[u8], wire::Error); 5] = [
            (&msg[..100], wire::Error::Truncated),
            (&msg[..238], wire::Error::MissingMagicCookie),
            (&msg[..243], wire::Error::MissingEnd),
            (&msg[..250], wire::Error::OptionOverrun { code: 61 }),
            (&client_msg(GUEST, 0, &[50, 4, 1, 2, 3, 4]), wire::Error::MissingMessageType),
        ];
        for (bytes, err) in cases {
            assert_eq!(handle(&cfg(), bytes, &mut out), Err(DhcpError::Malformed(err)));
        }
        assert_eq!(out, [0; 600]);
    }

    #[test]
    fn output_too_small() {
        let mut out = [0u8; 299];
        assert_eq!(
            handle(&cfg(), &udhcpc_discover(), &mut out),
            Err(DhcpError::OutputTooSmall(299))
        );
        // 300 bytes: the essentials (36 bytes), then requested 6 and 15 fill
        // the 59 bytes for options; T1/T2 (clients default them) and the
        // rest are left out.
        let mut out = [0u8; 300];
        let reply = handle(&cfg(), &udhcpc_discover(), &mut out).unwrap().unwrap();
        assert_eq!(reply.len, 300);
        assert_eq!(codes(&out), [53, 54, 61, 1, 3, 6, 15, 51]);
    }

    #[test]
    fn lease_times() {
        let mut c = cfg();
        c.lease_secs = u32::MAX;
        let (_, bytes) = run(&c, &udhcpc_discover());
        assert_eq!(option(&bytes, 51), Some(&[0xff; 4][..]));
        assert_eq!(option(&bytes, 58), None);
        assert_eq!(option(&bytes, 59), None);
        c.lease_secs = 0xffff_fffe;
        let (_, bytes) = run(&c, &udhcpc_discover());
        assert_eq!(option(&bytes, 58), Some(&0x7fff_ffffu32.to_be_bytes()[..]));
        assert_eq!(option(&bytes, 59), Some(&0xdfff_fffeu32.to_be_bytes()[..]));
    }

    #[test]
    fn optional_config_left_out() {
        let c = DhcpConfig {
            router: None,
            dns: Vec::new(),
            search: Vec::new(),
            mtu: None,
            prefix_len: 16,
            ..cfg()
        };
        let (_, bytes) = run(&c, &udhcpc_discover());
        assert_eq!(codes(&bytes), [53, 54, 61, 1, 51, 58, 59]);
        assert_eq!(option(&bytes, 1), Some(&[255, 255, 0, 0][..]));
        // An MTU under IPv4's minimum is not advertised.
        let c = DhcpConfig { mtu: Some(67), ..cfg() };
        assert_eq!(option(&run(&c, &udhcpc_discover()).1, 26), None);
        let c = DhcpConfig { mtu: Some(68), ..cfg() };
        assert_eq!(option(&run(&c, &udhcpc_discover()).1, 26), Some(&[0, 68][..]));
        // Unencodable search domains are skipped, the first good one is 15.
        let c = DhcpConfig { search: vec!["a..b".into(), "good.example.".into()], ..cfg() };
        let (_, bytes) = run(&c, &udhcpc_discover());
        assert_eq!(option(&bytes, 15), Some(&b"good.example"[..]));
        let expected: &[u8] =
            &[4, b'g', b'o', b'o', b'd', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0];
        assert_eq!(option(&bytes, 119), Some(expected));
        let c = DhcpConfig { search: vec!["..".into()], ..cfg() };
        let (_, bytes) = run(&c, &udhcpc_discover());
        assert_eq!((option(&bytes, 15), option(&bytes, 119)), (None, None));
    }

    #[test]
    fn netmasks() {
        assert_eq!(netmask(0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(netmask(1), Ipv4Addr::new(128, 0, 0, 0));
        assert_eq!(netmask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(netmask(31), Ipv4Addr::new(255, 255, 255, 254));
        assert_eq!(netmask(32), Ipv4Addr::BROADCAST);
        assert_eq!(netmask(200), Ipv4Addr::BROADCAST);
    }

    /// A search list too long for 548 bytes: what does not fit is left
    /// out, essentials stay even when asked for after it.
    #[test]
    fn size_cap_without_option_57() {
        let search: Vec<String> =
            (0..12).map(|i| format!("domain-number-{i}.subdivision.example.org")).collect();
        let c = DhcpConfig { search, ..cfg() };
        let msg = client_msg(Ipv4Addr::UNSPECIFIED, 0, &[53, 1, 1, 55, 5, 119, 6, 1, 3, 15]);
        let (reply, bytes) = run(&c, &msg);
        assert!(reply.unwrap().len <= 548);
        assert_eq!(codes(&bytes), [53, 54, 6, 1, 3, 15, 51, 58, 59, 26]);

        // With option 57 at 1500 the list fits, split in 255-byte instances.
        let msg = client_msg(
            Ipv4Addr::UNSPECIFIED,
            0,
            &[53, 1, 1, 57, 2, 0x05, 0xdc, 55, 5, 119, 6, 1, 3, 15],
        );
        let (reply, bytes) = run(&c, &msg);
        let len = reply.unwrap().len;
        assert!(len > 548 && len <= 1472, "{len}");
        assert_eq!(codes(&bytes), [53, 54, 119, 119, 6, 1, 3, 15, 51, 58, 59, 26]);
        let joined: Vec<u8> = options(&bytes)
            .iter()
            .filter(|o| o.code == 119)
            .flat_map(|o| o.data.to_vec())
            .collect();
        assert_eq!(joined.len(), DomainList::Names(&c.search).encoded_len());
        assert_eq!(&joined[..16], b"\x0fdomain-number-0");
    }

    #[test]
    fn small_option_57_is_read_as_576() {
        let search: Vec<String> =
            (0..12).map(|i| format!("domain-number-{i}.subdivision.example.org")).collect();
        let c = DhcpConfig { search, ..cfg() };
        let msg = client_msg(Ipv4Addr::UNSPECIFIED, 0, &[53, 1, 1, 57, 2, 0, 10]);
        let (reply, _) = run(&c, &msg);
        let len = reply.unwrap().len;
        assert!((300..=548).contains(&len), "{len}");
    }

    #[test]
    fn out_smaller_than_cap_respected() {
        let msg = client_msg(Ipv4Addr::UNSPECIFIED, 0, &[53, 1, 1, 57, 2, 0x05, 0xdc]);
        let mut buf = [0x5au8; 400];
        let reply = handle(&cfg(), &msg, &mut buf[..320]).unwrap().unwrap();
        assert!(reply.len <= 320);
        assert!(buf[320..].iter().all(|&b| b == 0x5a));
        assert!(Repr::parse(&Packet::new_checked(&buf[..reply.len]).unwrap()).is_ok());
    }

    /// xorshift64: a tiny deterministic generator.
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

    /// A structurally valid client message with random type, addresses and
    /// options (some malformed on purpose).
    fn random_message(rng: &mut Rng) -> Vec<u8> {
        let pick = [GUEST, OTHER, GATEWAY, Ipv4Addr::UNSPECIFIED];
        let ciaddr = pick[rng.below(4)];
        let flags = if rng.below(2) == 0 { 0x8000 } else { 0 };
        let mut opts = vec![53, 1, 1 + rng.below(9) as u8];
        for _ in 0..rng.below(8) {
            match rng.below(6) {
                0 => opts.extend(ip_opt(50, pick[rng.below(4)])),
                1 => opts.extend(ip_opt(54, pick[rng.below(4)])),
                2 => {
                    let n = rng.below(60);
                    opts.extend_from_slice(&[55, n as u8]);
                    opts.extend((0..n).map(|_| rng.byte()));
                }
                3 => opts.extend_from_slice(&[57, 2, rng.byte(), rng.byte()]),
                4 => {
                    let n = rng.below(255);
                    opts.extend_from_slice(&[61, n as u8]);
                    opts.extend((0..n).map(|_| rng.byte()));
                }
                _ => {
                    let n = rng.below(20);
                    opts.extend_from_slice(&[rng.byte(), n as u8]);
                    opts.extend((0..n).map(|_| rng.byte()));
                }
            }
        }
        client_msg(ciaddr, flags, &opts)
    }

    /// 10,000 random, mutated and structured messages, fixed seed: never a
    /// panic, never a byte past `out`, every reply a valid DHCP reply.
    #[test]
    fn fuzz_never_panics_nor_overruns() {
        let mut rng = Rng(0x0dd_c0ff_ee15_600d);
        let base = udhcpc_discover();
        let mut configs = vec![cfg()];
        configs.push(DhcpConfig {
            search: (0..30).map(|i| format!("d{i}.example.net")).collect(),
            dns: (0..80u8).map(|i| Ipv4Addr::new(10, 0, 1, i)).collect(),
            lease_secs: u32::MAX,
            ..cfg()
        });
        let mut answered = 0;
        for i in 0..10_000 {
            let msg = match i % 4 {
                0 => (0..rng.below(700)).map(|_| rng.byte()).collect(),
                1 => {
                    let mut m = base.clone();
                    for _ in 0..1 + rng.below(8) {
                        let at = rng.below(m.len());
                        m[at] = rng.byte();
                    }
                    m.truncate(rng.below(m.len() + 1).max(200));
                    m
                }
                2 => random_message(&mut rng),
                _ => {
                    let mut m = random_message(&mut rng);
                    let at = 240 + rng.below(m.len() - 240);
                    m[at] = rng.byte();
                    m
                }
            };
            let cfg = &configs[rng.below(configs.len())];
            let out_len = 300 + rng.below(1300);
            let mut buf = vec![0xa5u8; out_len + 32];
            let result = handle(cfg, &msg, &mut buf[..out_len]);
            assert!(buf[out_len..].iter().all(|&b| b == 0xa5), "message {i} wrote past out");
            if let Ok(Some(reply)) = result {
                answered += 1;
                assert!(reply.len <= out_len && reply.len >= 300);
                let p = Packet::new_checked(&buf[..reply.len]).unwrap();
                let r = Repr::parse(&p).unwrap_or_else(|e| panic!("message {i}: bad reply {e}"));
                assert_eq!(r.op, OpCode::Reply);
                assert_eq!(r.xid, Packet::new_unchecked(&msg[..]).xid());
                assert_eq!(r.server_id, Some(cfg.server_id));
                if reply.broadcast {
                    assert_eq!(reply.dst_ip, Ipv4Addr::BROADCAST);
                }
            }
        }
        // The generator must actually reach the answering paths.
        assert!(answered > 1000, "{answered}");
    }
}
