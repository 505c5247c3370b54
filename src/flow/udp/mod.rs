//! UDP flows: the guest's datagrams through host UDP sockets, forwarded
//! ports (`-u`), and ICMP errors back (RFC 768; RFC 792 and RFC 4443 for
//! the errors; passt's `udp.c` and `udp_flow.c` do the same job).
//!
//! # Outbound (the guest starts)
//! A flow per guest (source address, source port). Its host socket is
//! bound on demand to the same port when that port is free on the host (as
//! passt does, so protocols that look at source ports keep working), else
//! to an ephemeral port: a host application already using the guest's port
//! keeps it, and replies still reach the guest's port. Datagrams go to
//! [`GuestNet::outbound`] of the guest's destination: the gateway reaches
//! the host's loopback, the `dns-forward` address the host's resolver.
//! Replies from any peer go back to the guest's (address, port). Their
//! source is translated: a peer the guest reached through a mapping (host
//! loopback, the host's resolver) must appear as exactly the address and
//! port the guest sent to, or the guest's connected socket drops the reply
//! (the bug of Debian's 2023 passt with IPv6); each flow remembers the last
//! `MAX_MAPPED` (8) such destinations. Other peers appear as
//! [`GuestNet::inbound`] says.
//!
//! # Inbound (a host peer starts, through `-u`)
//! Sockets bound on the forwarded host ports (ranges, exclusions,
//! `HOST:GUEST` mappings, a bind address, `all`). A datagram from a peer
//! creates a flow (listener, peer) -> (guest address, guest port), the peer
//! appearing as [`GuestNet::inbound`] says. The guest's replies (from that
//! guest port to that peer) leave through the same bound socket, so the
//! peer sees the forwarded port as their source. Each datagram goes to the
//! guest address [`GuestNet::inbound`] gives at that time (the guest may
//! show later which address it really uses).
//!
//! # Timeouts and limits
//! A flow closes (and its socket with it) after [`IDLE_TIMEOUT`] = 180 s
//! without a datagram either way, as passt's UDP flows do. Each flow takes
//! one unit of the shared flow budget; when it is spent (or the process
//! runs out of fds), the least recently used UDP flow is evicted if it has
//! been idle for [`EVICT_MIN_IDLE`], else the datagram is dropped and
//! counted (with a rate-limited log line). A guest scanning 60,000 ports
//! from one source port is one flow; from 60,000 source ports it is bounded
//! by the budget.
//!
//! # Batching and copies
//! Guest datagrams are queued in `handle_guest` (copied: the guest's frame
//! is not ours after the call) and sent in `flush` with one `sendmmsg` per
//! run of datagrams to the same socket (at most 1024 a call), where runs of
//! equal-sized ones to one destination travel as one UDP GSO message (see
//! `sys::udp::Batch::send`). A tap frame holding several datagrams of one
//! guest socket (its kernel's UDP segmentation offload) is cut into them
//! here, before the queue, so that each keeps its own boundaries on the
//! host side whatever the path does with GSO. Datagrams of
//! [`DIRECT_MIN`] bytes or more skip the queue (after flushing it, to keep
//! the order) and go straight from the guest's frame, one copy less.
//! Host sockets are read with `recvmmsg`: the first datagram lands in
//! place in a frame reserved in the guest queue (no copy), the following
//! ones in a preallocated scratch area and are copied into their frames
//! (the queue lends one frame at a time). Sockets that have recently
//! carried large datagrams (average of [`DIRECT_MIN`] or more) are read one
//! datagram per call, each straight into its frame, since the copy would
//! then cost more than the system calls saved. `SO_ZEROCOPY` is not used
//! for sends: the queue buffer is reused right after `sendmmsg`, which
//! `MSG_ZEROCOPY` forbids until the kernel's completion, and loopback
//! peers get a copy anyway.
//!
//! # ICMP errors
//! Sockets have `IP_RECVERR`/`IPV6_RECVERR`: an ICMP error about one of
//! our datagrams (port or host unreachable, time exceeded, fragmentation
//! needed / packet too big) is read from the socket's error queue
//! (`MSG_ERRQUEUE`) and becomes an ICMP/ICMPv6 error to the guest quoting
//! its datagram as it sent it (see the `icmp` submodule): `dig` gets "connection
//! refused" at once. A send failing locally (ECONNREFUSED left by an
//! earlier error, EHOSTUNREACH, ENETUNREACH, EACCES) does the same.
//! An epoll event with only EPOLLERR drains the error queue and does not
//! read the socket.
//!
//! Left out: multicast and broadcast (dropped), IP options, the guest's
//! TTL/hop limit (not propagated, so traceroute sees only the hops past
//! the host), fragments (the engine refuses them), link-local peers other
//! than our own address (no scope to send with), UDP-Lite, GRO on host
//! sockets.

mod forward;
mod icmp;
mod rx;
mod table;

use crate::flow::slots::Slots;
use crate::flow::{FlowBudget, FlowCtx};
use crate::fwd::PortSpec;
use crate::guestnet::GuestNet;
use crate::stats::Drop;
use crate::sys::epoll;
use crate::sys::net as sysnet;
use crate::sys::udp::{self as sysudp, Batch, MAX_MSGS};
use crate::time::Instant;
use crate::token::{Kind as TokenKind, Token};
use crate::wire::udp as wudp;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU16;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;
use table::{same_peer, Flow, Kind, OutFlow, Table};

/// A flow closes after this long without a datagram either way (passt's
/// UDP flows use 180 s too).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(180);
/// With the flow budget spent, the least recently used UDP flow gives way
/// to a new one if it has been idle at least this long: by then a
/// request/response exchange (DNS, NTP...) is over.
pub const EVICT_MIN_IDLE: Duration = Duration::from_secs(5);
/// Datagrams this long or longer are sent and received one per system
/// call straight between the guest's frame and the socket (see the module
/// comment).
pub const DIRECT_MIN: usize = 8192;
/// Bytes of small guest datagrams queued before a flush is forced.
const QUEUE_MAX_BYTES: usize = 1 << 20;
/// Upper bound of the receive scratch area (bytes).
const SCRATCH_MAX: usize = 2 << 20;
/// Datagrams per `recvmmsg` at first; doubles while calls come back full.
const RX_SLOTS_START: usize = 8;
/// Most datagrams read from one socket per event, so that one busy socket
/// does not starve the others (level-triggered: the rest comes next turn).
const RX_PER_EVENT: usize = 1024;
/// Most error-queue entries handled per event.
const ERR_PER_EVENT: usize = 64;
/// Room for the payload of an error-queue entry (what an ICMPv6 error may
/// quote).
const ERRBUF_LEN: usize = 1280;
/// Interval of the rate-limited warnings a guest can trigger.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// Counters of the UDP table (tests and `stats` read them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UdpStats {
    pub flows_opened: u64,
    pub flows_inbound: u64,
    pub flows_expired: u64,
    pub flows_evicted: u64,
    /// Guest datagrams dropped because no flow could be opened (budget,
    /// fds).
    pub refused: u64,
    /// Guest datagrams the kernel accepted.
    pub to_host: u64,
    /// Guest datagrams the kernel refused (buffer full, unreachable...).
    pub to_host_failed: u64,
    /// `sendmmsg`/`sendto` calls (`to_host` / `send_calls` is the batching).
    pub send_calls: u64,
    /// Datagrams delivered to the guest queue.
    pub to_guest: u64,
    /// Host datagrams dropped: too large for the MTU, untranslatable, or
    /// no room in the guest queue.
    pub to_guest_dropped: u64,
    /// `recvmmsg` calls.
    pub recv_calls: u64,
    /// ICMP/ICMPv6 errors sent to the guest.
    pub icmp_to_guest: u64,
}

/// Which socket a queued datagram leaves through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SockRef {
    /// The outbound flow's own socket.
    Flow(u32),
    /// A forwarded port's socket (replies of inbound flows).
    Listener(u32),
}

/// A guest datagram waiting for `flush`.
#[derive(Clone, Copy, Debug)]
struct Pending {
    sock: SockRef,
    /// The generation of the outbound flow (it may be evicted before the
    /// flush).
    gen: u32,
    /// The guest's socket and the destination it used (for ICMP errors).
    guest: SocketAddr,
    guest_dst: SocketAddr,
    /// Where it goes on the host.
    dst: SocketAddr,
    /// Its payload in the queue buffer.
    start: usize,
    len: usize,
}

/// A socket bound on a forwarded port.
#[derive(Debug)]
struct Listener {
    sock: OwnedFd,
    /// The spec's bind address (`None`: the wildcard of each IP version).
    bind: Option<IpAddr>,
    bound: SocketAddr,
    guest_port: u16,
    /// Average datagram size lately (chooses the read strategy).
    rx_avg: u32,
}

/// What to do after one datagram failed to go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    /// Try the same datagram again (an old error was in the way).
    Retry,
    /// Give up on this one, go on with the next.
    Skip,
    /// The socket is full: give up on the rest of the run.
    DropRest,
}

/// The UDP flow table and forwarded ports of one instance.
pub struct Udp {
    table: Table,
    listeners: Slots<Listener>,
    /// Guest datagrams waiting for `flush`, their payloads back to back.
    queue: Vec<Pending>,
    qbytes: Vec<u8>,
    /// Header arrays for recvmmsg/sendmmsg.
    batch: Batch,
    /// Where datagrams after the first of a `recvmmsg` land.
    scratch: Vec<u8>,
    /// Datagrams per `recvmmsg` now.
    rx_slots: usize,
    /// Payload of error-queue entries.
    errbuf: Vec<u8>,
    stats: UdpStats,
    fd_warn: crate::log::RateLimit,
    /// Bind forwarded ports with IP_FREEBIND (`--freebind`).
    freebind: bool,
}

/// Whether the guest may send to this address at all.
fn deliverable(dst: IpAddr) -> bool {
    match dst {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast() || a.is_loopback()),
    }
}

/// IPv4-mapped IPv6 addresses as IPv4, and no flow label: the form peers
/// are compared and keyed in.
fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(s) => match s.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), s.port()),
            None => SocketAddr::V6(std::net::SocketAddrV6::new(*s.ip(), s.port(), 0, s.scope_id())),
        },
        v4 => v4,
    }
}

/// The unspecified address of a family, port `port`.
fn any(v6: bool, port: u16) -> SocketAddr {
    if v6 {
        SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port)
    } else {
        SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)
    }
}

/// Our own address on the guest's link, as the source of errors we
/// generate locally (a send that failed on the host).
fn our_addr(net: &GuestNet, guest: IpAddr) -> Option<IpAddr> {
    match guest {
        IpAddr::V4(_) => net.v4.as_ref().map(|n| n.gateway.into()),
        IpAddr::V6(g) => {
            let n = net.v6.as_ref()?;
            if crate::wire::ipv6::is_link_local(&g) {
                Some(n.our_ll.into())
            } else {
                Some(n.gateway.unwrap_or(n.our_ll).into())
            }
        }
    }
}

/// A port spec in passt's syntax again, for the log.
fn describe(spec: &PortSpec) -> String {
    let mut parts: Vec<String> = spec
        .ranges
        .iter()
        .map(|r| {
            let host = if r.first == r.last { r.first.to_string() } else { format!("{}-{}", r.first, r.last) };
            if r.guest_first == r.first {
                host
            } else {
                format!("{host}:{}", r.guest_first)
            }
        })
        .collect();
    if spec.all {
        parts.push("all".into());
    }
    parts.extend(spec.excluded.iter().map(|(a, b)| format!("~{a}-{b}")));
    match spec.bind {
        Some(a) => format!("{a}/{}", parts.join(",")),
        None => parts.join(","),
    }
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Takes a unit of the flow budget, evicting the least recently used UDP
/// flow first if the budget is spent and that flow has been idle long
/// enough. (A free function: callers hold borrows of other fields.)
fn take_budget(table: &mut Table, stats: &mut UdpStats, budget: &mut FlowBudget, now: Instant) -> bool {
    if budget.used >= budget.max {
        evict_oldest(table, stats, budget, now);
    }
    budget.try_take(now, "UDP")
}

/// Closes the least recently used flow if it has been idle for
/// [`EVICT_MIN_IDLE`]; whether it did.
fn evict_oldest(table: &mut Table, stats: &mut UdpStats, budget: &mut FlowBudget, now: Instant) -> bool {
    match table.oldest() {
        Some((idx, last)) if now.since(last) >= EVICT_MIN_IDLE => {
            log::debug!("UDP: evicting flow {idx}, idle for {:?}", now.since(last));
            table.remove(idx);
            budget.release();
            stats.flows_evicted += 1;
            true
        }
        _ => false,
    }
}

/// Queues an ICMP error for the guest about its datagram `guest` ->
/// `guest_dst`, coming from `src`. (A free function for the same reason.)
#[allow(clippy::too_many_arguments)]
fn emit_icmp(
    ctx: &mut FlowCtx,
    stats: &mut UdpStats,
    kind: icmp::ErrKind,
    src: IpAddr,
    guest: SocketAddr,
    guest_dst: SocketAddr,
    payload: &[u8],
) {
    let v6 = guest.is_ipv6();
    if src.is_ipv6() != v6 {
        return;
    }
    let off = crate::tx::l4_offset(v6);
    let Some(buf) = ctx.tx.reserve(off + icmp::max_len(v6)) else {
        stats.to_guest_dropped += 1;
        ctx.stats.drop(Drop::TxFull);
        return;
    };
    let n = icmp::emit(&mut buf[off..], kind, guest, guest_dst, payload);
    if n == 0 {
        ctx.tx.commit(0);
        return;
    }
    let proto = if v6 { crate::wire::ipv6::NEXT_ICMPV6 } else { crate::wire::ipv4::PROTO_ICMP };
    let len = crate::tx::finish_ip(buf, ctx.net.l2(), src, guest.ip(), proto, n);
    ctx.tx.commit(len);
    stats.icmp_to_guest += 1;
    log::trace!("UDP: ICMP {}/{} to {guest} about {guest_dst}", kind.icmp_type, kind.code);
}

impl Udp {
    /// An empty table; memory grows with use (`max_flows_hint` only caps
    /// the initial reservation).
    pub fn new(max_flows_hint: usize) -> Self {
        Udp {
            table: Table::new(max_flows_hint),
            listeners: Slots::default(),
            queue: Vec::new(),
            qbytes: Vec::new(),
            batch: Batch::new(),
            scratch: Vec::new(),
            rx_slots: RX_SLOTS_START,
            errbuf: vec![0; ERRBUF_LEN],
            stats: UdpStats::default(),
            fd_warn: Default::default(),
            freebind: false,
        }
    }

    /// Binds forwarded ports with `IP_FREEBIND` (`--freebind`); call
    /// before [`Udp::listen`].
    pub fn set_freebind(&mut self, on: bool) {
        self.freebind = on;
    }

    /// Guest datagrams queued for host sockets, sent at the next `flush`.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    pub fn stats(&self) -> &UdpStats {
        &self.stats
    }

    /// With the budget spent, closes the least recently used flow if it
    /// has been idle for [`EVICT_MIN_IDLE`], so that another protocol's
    /// new flow can take its place; whether it did.
    pub fn evict_idle(&mut self, ctx: &mut FlowCtx) -> bool {
        evict_oldest(&mut self.table, &mut self.stats, ctx.budget, ctx.now)
    }

    /// Live flows (both directions).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Most flows live at once so far.
    pub fn peak(&self) -> usize {
        self.table.peak
    }

    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// Sockets bound on forwarded ports.
    pub fn listener_count(&self) -> usize {
        self.listeners.len()
    }

    /// The host port of the outbound flow of the guest's `guest` socket
    /// (diagnostics and tests: is it the guest's own port?).
    pub fn host_port_of(&self, guest: SocketAddr) -> Option<u16> {
        let idx = *self.table.out_by_guest.get(&guest)?;
        match &self.table.at(idx)?.kind {
            Kind::Out(o) => sysnet::local_addr(o.sock.as_fd()).ok().flatten().map(|a| a.port()),
            Kind::In(_) => None,
        }
    }

    /// Opens the sockets of forwarded ports (`-u` specs), registered in
    /// `ctx.host` with [`TokenKind::UdpListen`] tokens. Without a bind
    /// address, each port is bound for each IP version the guest has.
    ///
    /// # Errors
    /// A message naming the port when an explicit port cannot be bound;
    /// `all` skips ports in use but fails when fds run out.
    pub fn listen(&mut self, ctx: &mut FlowCtx, specs: &[PortSpec]) -> Result<(), String> {
        for spec in specs {
            self.listen_spec(ctx, spec, &mut Vec::new())?;
        }
        Ok(())
    }

    /// Opens the sockets of one spec; the indices opened go to `opened`.
    fn listen_spec(&mut self, ctx: &mut FlowCtx, spec: &PortSpec, opened: &mut Vec<u32>) -> Result<(), String> {
        if !spec.none {
            let before = self.listeners.len();
            let addrs: Vec<IpAddr> = match spec.bind {
                Some(a) => vec![a],
                None => {
                    let mut v = Vec::new();
                    if ctx.net.v4.is_some() {
                        v.push(Ipv4Addr::UNSPECIFIED.into());
                    }
                    if ctx.net.v6.is_some() {
                        v.push(Ipv6Addr::UNSPECIFIED.into());
                    }
                    v
                }
            };
            let explicit: Vec<(u16, u16)> = spec.explicit_ports().collect();
            for &(host, guest) in &explicit {
                for &a in &addrs {
                    let idx = self
                        .open_listener(ctx, spec.bind, SocketAddr::new(a, host), guest)
                        .map_err(|e| format!("UDP port {host} on {a}: {e}"))?;
                    opened.push(idx);
                }
            }
            if spec.all {
                let (eph, _) = sysudp::ephemeral_ports();
                for port in 1..eph {
                    if spec.is_excluded(port) || explicit.iter().any(|&(h, _)| h == port) {
                        continue;
                    }
                    for &a in &addrs {
                        match self.open_listener(ctx, spec.bind, SocketAddr::new(a, port), port) {
                            Ok(idx) => opened.push(idx),
                            Err(e) if is_fd_exhaustion(&e) => {
                                return Err(format!("UDP port {port} on {a} (forwarding all ports): {e}"));
                            }
                            Err(e) => log::debug!("UDP: not forwarding port {port} on {a}: {e}"),
                        }
                    }
                }
            }
            log::info!("UDP: forwarding {} ({} sockets)", describe(spec), self.listeners.len() - before);
        }
        Ok(())
    }

    fn open_listener(&mut self, ctx: &mut FlowCtx, bind: Option<IpAddr>, at: SocketAddr, guest_port: u16) -> io::Result<u32> {
        let v6 = at.is_ipv6();
        let sock = sysudp::socket(v6)?;
        if v6 {
            sysudp::set_v6only(sock.as_fd(), true)?;
        }
        if let Err(e) = sysudp::set_recverr(sock.as_fd(), v6, false) {
            log::debug!("UDP: no error queue on port {at}: {e}");
        }
        if self.freebind {
            sysudp::set_freebind(sock.as_fd(), v6)?;
        }
        sysnet::bind(sock.as_fd(), &at)?;
        let idx = self.listeners.next_index();
        ctx.host.add(sock.as_fd(), epoll::IN, Token::new(TokenKind::UdpListen, idx).to_u64())?;
        log::debug!("UDP: forwarding host port {at} to guest port {guest_port}");
        Ok(self.listeners.insert(Listener { sock, bind, bound: at, guest_port, rx_avg: 0 }))
    }

    /// A datagram from the guest (`l4`: UDP header and payload, checksum
    /// verified by the engine). Queued for [`Udp::flush`], or sent at once
    /// when large.
    pub fn handle_guest(&mut self, ctx: &mut FlowCtx, src: IpAddr, dst: IpAddr, l4: &[u8]) {
        self.handle_guest_segmented(ctx, src, dst, l4, None);
    }

    /// Like [`Self::handle_guest`], for a frame that may carry several
    /// datagrams after one UDP header (UDP segmentation offload on a tap):
    /// `segment` is their payload size, the last may be shorter. Each
    /// leaves as a datagram of its own, as the guest's socket sent it.
    pub fn handle_guest_segmented(
        &mut self,
        ctx: &mut FlowCtx,
        src: IpAddr,
        dst: IpAddr,
        l4: &[u8],
        segment: Option<NonZeroU16>,
    ) {
        let d = match wudp::Datagram::new_checked(l4) {
            Ok(d) => d,
            Err(e) => {
                ctx.stats.drop(e.into());
                return;
            }
        };
        if d.dst_port() == 0 || src.is_ipv4() != dst.is_ipv4() {
            ctx.stats.drop(Drop::Malformed);
            return;
        }
        if !deliverable(dst) {
            ctx.stats.drop(Drop::NotForUs);
            return;
        }
        let guest = SocketAddr::new(src, d.src_port());
        let guest_dst = SocketAddr::new(dst, d.dst_port());
        // A reply to a peer that came in through a forwarded port leaves
        // through that port's socket.
        let inbound = if self.table.in_by_guest.is_empty() { None } else { self.table.in_by_guest.get(&(guest, guest_dst)) };
        if let Some(&idx) = inbound {
            let (listener, peer) = match self.table.at(idx).map(|f| &f.kind) {
                Some(Kind::In(i)) => (i.listener, i.peer),
                _ => return,
            };
            self.table.touch(idx, ctx.now);
            let p = Pending {
                sock: SockRef::Listener(listener),
                gen: self.table.gen(idx),
                guest,
                guest_dst,
                dst: peer,
                start: 0,
                len: 0,
            };
            self.queue_segments(ctx, p, d.payload(), segment);
            return;
        }
        let host_dst = ctx.net.outbound(guest_dst);
        if let IpAddr::V6(a) = host_dst.ip() {
            if crate::wire::ipv6::is_link_local(&a) {
                // No scope to send it with: only our own link-local
                // address (mapped above) is reachable.
                ctx.stats.drop(Drop::NotForUs);
                return;
            }
        }
        let idx = match self.table.out_by_guest.get(&guest) {
            Some(&i) => i,
            None => match self.open_flow(ctx, guest) {
                Some(i) => i,
                None => return,
            },
        };
        let Some(Flow { kind: Kind::Out(out), .. }) = self.table.at_mut(idx) else { return };
        let to = match (host_dst, out.dual) {
            (SocketAddr::V4(h), true) => SocketAddr::new(h.ip().to_ipv6_mapped().into(), h.port()),
            (h, _) if h.is_ipv6() == out.guest.is_ipv6() => h,
            _ => {
                log::debug!("UDP: {guest} -> {guest_dst} maps to {host_dst}, of the other IP version");
                ctx.stats.drop(Drop::Unsupported);
                return;
            }
        };
        if !same_peer(&host_dst, &guest_dst) {
            out.mapped.note(host_dst, guest_dst);
        }
        self.table.touch(idx, ctx.now);
        let p = Pending {
            sock: SockRef::Flow(idx),
            gen: self.table.gen(idx),
            guest,
            guest_dst,
            dst: to,
            start: 0,
            len: 0,
        };
        self.queue_segments(ctx, p, d.payload(), segment);
    }

    /// Queues (or sends) the datagrams a guest frame holds: its payload
    /// whole, or cut into `segment`-sized pieces.
    fn queue_segments(&mut self, ctx: &mut FlowCtx, p: Pending, payload: &[u8], segment: Option<NonZeroU16>) {
        match segment {
            Some(size) if !payload.is_empty() => {
                for piece in payload.chunks(usize::from(size.get())) {
                    self.queue_or_send(ctx, p, piece);
                }
            }
            _ => self.queue_or_send(ctx, p, payload),
        }
    }

    /// Opens the outbound flow of the guest's `guest` socket.
    fn open_flow(&mut self, ctx: &mut FlowCtx, guest: SocketAddr) -> Option<u32> {
        if !take_budget(&mut self.table, &mut self.stats, ctx.budget, ctx.now) {
            self.stats.refused += 1;
            ctx.stats.drop(Drop::Limit);
            return None;
        }
        let v6 = guest.is_ipv6();
        // A v6 guest whose dns-forward address leads to an IPv4 resolver
        // needs a socket that reaches IPv4 too.
        let dual = v6 && matches!(ctx.net.v6.as_ref().and_then(|n| n.dns_host), Some(IpAddr::V4(_)));
        let mut made = self.flow_socket(v6, dual, guest.port());
        if matches!(&made, Err(e) if is_fd_exhaustion(e))
            && evict_oldest(&mut self.table, &mut self.stats, ctx.budget, ctx.now)
        {
            made = self.flow_socket(v6, dual, guest.port());
        }
        let (idx, gen) = self.table.next_id();
        let registered = made.and_then(|s| {
            ctx.host.add(s.as_fd(), epoll::IN, Token::with_gen(TokenKind::UdpFlow, idx, gen).to_u64())?;
            Ok(s)
        });
        let sock = match registered {
            Ok(s) => s,
            Err(e) => {
                ctx.budget.release();
                self.stats.refused += 1;
                ctx.stats.drop(Drop::Limit);
                if let Some(n) = self.fd_warn.allow(ctx.now, WARN_EVERY) {
                    log::warn!("UDP: cannot open a socket for {guest}: {e} ({n} more not logged)");
                }
                return None;
            }
        };
        let flow = Flow {
            last: ctx.now,
            kind: Kind::Out(OutFlow { guest, sock, dual, mapped: Default::default(), rx_avg: 0 }),
        };
        let got = self.table.insert(flow);
        debug_assert_eq!(got, idx);
        self.stats.flows_opened += 1;
        log::debug!("UDP: new flow {idx} for {guest}");
        Some(idx)
    }

    /// A socket for a flow: the guest's port if free on the host, else an
    /// ephemeral one. No SO_REUSEADDR, so a host application's port makes
    /// the first bind fail instead of being shared.
    fn flow_socket(&self, v6: bool, dual: bool, port: u16) -> io::Result<OwnedFd> {
        let sock = sysudp::socket(v6)?;
        if v6 {
            sysudp::set_v6only(sock.as_fd(), !dual)?;
        }
        if let Err(e) = sysudp::set_recverr(sock.as_fd(), v6, dual) {
            log::debug!("UDP: no error queue: {e}");
        }
        if port == 0 || sysnet::bind(sock.as_fd(), &any(v6, port)).is_err() {
            sysnet::bind(sock.as_fd(), &any(v6, 0))?;
        }
        Ok(sock)
    }

    /// Queues a small datagram for `flush`, or sends a large one now.
    fn queue_or_send(&mut self, ctx: &mut FlowCtx, mut p: Pending, payload: &[u8]) {
        if payload.len() >= DIRECT_MIN {
            self.flush(ctx);
            self.send_direct(ctx, p, payload);
            return;
        }
        if self.queue.len() >= MAX_MSGS || self.qbytes.len() + payload.len() > QUEUE_MAX_BYTES {
            self.flush(ctx);
        }
        p.start = self.qbytes.len();
        p.len = payload.len();
        self.qbytes.extend_from_slice(payload);
        self.queue.push(p);
    }

    /// The socket a datagram leaves through, if it still exists.
    fn sock_fd<'s>(table: &'s Table, listeners: &'s Slots<Listener>, p: &Pending) -> Option<BorrowedFd<'s>> {
        match p.sock {
            SockRef::Flow(i) => match &table.get(i, p.gen)?.kind {
                Kind::Out(o) => Some(o.sock.as_fd()),
                Kind::In(_) => None,
            },
            SockRef::Listener(l) => listeners.get(l as usize).map(|l| l.sock.as_fd()),
        }
    }

    /// Sends the queued guest datagrams: one `sendmmsg` per run of
    /// datagrams for the same socket (at most 1024 a call).
    pub fn flush(&mut self, ctx: &mut FlowCtx) {
        let n = self.queue.len();
        let mut i = 0;
        while i < n {
            let sock = self.queue[i].sock;
            let mut j = i + 1;
            while j < n && self.queue[j].sock == sock && j - i < MAX_MSGS {
                j += 1;
            }
            self.send_run(ctx, i, j);
            i = j;
        }
        self.queue.clear();
        self.qbytes.clear();
    }

    /// Sends `queue[from..to]`, all for one socket.
    fn send_run(&mut self, ctx: &mut FlowCtx, from: usize, to: usize) {
        let mut i = from;
        let mut retried = false;
        while i < to {
            let p = self.queue[i];
            let Some(fd) = Self::sock_fd(&self.table, &self.listeners, &p) else {
                // The flow was evicted since: its datagrams go nowhere.
                self.stats.to_host_failed += (to - i) as u64;
                return;
            };
            let (bytes, queue) = (&self.qbytes, &self.queue[i..to]);
            let r = self.batch.send(fd, queue.iter().map(|q| (&bytes[q.start..q.start + q.len], q.dst)));
            self.stats.send_calls += 1;
            match r {
                Ok(sent) if sent > 0 => {
                    i += sent;
                    self.stats.to_host += sent as u64;
                    retried = false;
                }
                Ok(_) => {
                    self.stats.to_host_failed += (to - i) as u64;
                    return;
                }
                Err(e) => {
                    let (next, kind) = self.send_failed(ctx, &p, &e, &mut retried);
                    if let Some(k) = kind {
                        let src = self.error_source(ctx.net, &p, e.raw_os_error());
                        let payload = &self.qbytes[p.start..p.start + p.len];
                        emit_icmp(ctx, &mut self.stats, k, src, p.guest, p.guest_dst, payload);
                    }
                    match next {
                        Next::Retry => {}
                        Next::Skip => {
                            self.stats.to_host_failed += 1;
                            i += 1;
                        }
                        Next::DropRest => {
                            self.stats.to_host_failed += (to - i) as u64;
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Sends one large datagram straight from the guest's frame.
    fn send_direct(&mut self, ctx: &mut FlowCtx, p: Pending, payload: &[u8]) {
        let mut retried = false;
        loop {
            let Some(fd) = Self::sock_fd(&self.table, &self.listeners, &p) else { return };
            let r = sysnet::send_to(fd, payload, &p.dst);
            self.stats.send_calls += 1;
            let e = match r {
                Ok(_) => {
                    self.stats.to_host += 1;
                    return;
                }
                Err(e) => e,
            };
            let (next, kind) = self.send_failed(ctx, &p, &e, &mut retried);
            if let Some(k) = kind {
                let src = self.error_source(ctx.net, &p, e.raw_os_error());
                emit_icmp(ctx, &mut self.stats, k, src, p.guest, p.guest_dst, payload);
            }
            if next != Next::Retry {
                self.stats.to_host_failed += 1;
                return;
            }
        }
    }

    /// The source of an ICMP error about a failed send: the destination
    /// itself for "port unreachable", else ourselves (the host's stack
    /// refused it).
    fn error_source(&self, net: &GuestNet, p: &Pending, errno: Option<i32>) -> IpAddr {
        if errno == Some(libc::ECONNREFUSED) {
            return p.guest_dst.ip();
        }
        our_addr(net, p.guest.ip()).unwrap_or(p.guest_dst.ip())
    }

    /// Decides what a failed send means, and whether to tell the guest.
    fn send_failed(&mut self, ctx: &mut FlowCtx, p: &Pending, e: &io::Error, retried: &mut bool) -> (Next, Option<icmp::ErrKind>) {
        let errno = e.raw_os_error().unwrap_or(0);
        match errno {
            libc::EAGAIN | libc::ENOBUFS | libc::ENOMEM => {
                log::trace!("UDP: host socket full, dropping datagrams for {}", p.dst);
                (Next::DropRest, None)
            }
            libc::ECONNREFUSED => {
                // An ICMP error about an earlier datagram was pending on the
                // socket and failed this send instead: report what the
                // error queue says, then send this one again.
                let src = match p.sock {
                    SockRef::Flow(i) => rx::Source::Flow(i),
                    SockRef::Listener(l) => rx::Source::Listener(l),
                };
                let reported = self.drain_errors(ctx, src);
                let kind = if reported == 0 { icmp::from_errno(errno, p.guest.is_ipv6()) } else { None };
                if *retried {
                    (Next::Skip, kind)
                } else {
                    *retried = true;
                    (Next::Retry, kind)
                }
            }
            _ => {
                log::debug!("UDP: sending {} -> {} failed: {e}", p.guest, p.dst);
                (Next::Skip, icmp::from_errno(errno, p.guest.is_ipv6()))
            }
        }
    }

    /// An epoll event for one of our sockets. EPOLLERR drains the error
    /// queue; only EPOLLIN reads datagrams.
    pub fn handle_event(&mut self, ctx: &mut FlowCtx, token: Token, events: u32) {
        let src = match token.kind {
            TokenKind::UdpFlow => match self.table.get(token.idx, token.gen) {
                Some(Flow { kind: Kind::Out(_), .. }) => rx::Source::Flow(token.idx),
                _ => return,
            },
            TokenKind::UdpListen if self.listeners.get(token.idx as usize).is_some() => rx::Source::Listener(token.idx),
            _ => return,
        };
        if events & epoll::ERR != 0 {
            self.drain_errors(ctx, src);
        }
        if events & epoll::IN != 0 {
            self.read(ctx, src);
        }
    }

    /// Closes the flows idle for [`IDLE_TIMEOUT`].
    pub fn handle_timeout(&mut self, ctx: &mut FlowCtx) {
        while let Some((idx, last)) = self.table.oldest() {
            if ctx.now < last + IDLE_TIMEOUT {
                break;
            }
            log::debug!("UDP: flow {idx} timed out");
            self.close(ctx, idx);
            self.stats.flows_expired += 1;
        }
        if self.table.len() == 0 {
            self.release_memory();
        }
    }

    /// When the next flow times out (a soft deadline).
    pub fn poll_deadline(&self) -> Option<Instant> {
        self.table.oldest().map(|(_, last)| last + IDLE_TIMEOUT)
    }

    /// Nothing is held back when the guest queue fills: sockets are
    /// level-triggered and keep the datagrams not read yet, so the engine
    /// resuming the host set is enough.
    pub fn handle_tx_room(&mut self, _ctx: &mut FlowCtx) {}

    /// The guest went away: closes every flow (forwarded ports stay).
    pub fn reset_all(&mut self, ctx: &mut FlowCtx) {
        for idx in self.table.indices() {
            self.close(ctx, idx);
        }
        self.queue.clear();
        self.qbytes.clear();
        self.release_memory();
    }

    fn close(&mut self, ctx: &mut FlowCtx, idx: u32) {
        // Dropping the flow closes its socket, which leaves the epoll set.
        if self.table.remove(idx).is_some() {
            ctx.budget.release();
        }
    }

    /// Gives back buffers an idle table does not need (datagrams still
    /// queued for `flush` stay).
    fn release_memory(&mut self) {
        self.table.shrink_if_empty();
        self.scratch = Vec::new();
        self.batch.shrink();
        if self.queue.is_empty() {
            self.queue = Vec::new();
            self.qbytes = Vec::new();
        }
        self.rx_slots = RX_SLOTS_START;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_destinations() {
        for bad in ["0.0.0.0", "255.255.255.255", "224.0.0.251", "127.0.0.1", "::", "ff02::fb", "::1"] {
            assert!(!deliverable(bad.parse().unwrap()), "{bad}");
        }
        for good in ["192.0.2.1", "2001:db8::1", "fe80::1"] {
            assert!(deliverable(good.parse().unwrap()), "{good}");
        }
    }

    #[test]
    fn canonical_forms() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(canonical(a("[::ffff:127.0.0.1]:53")), a("127.0.0.1:53"));
        let with_label = SocketAddr::V6(std::net::SocketAddrV6::new("2001:db8::1".parse().unwrap(), 7, 99, 0));
        assert_eq!(canonical(with_label), a("[2001:db8::1]:7"));
        assert_eq!(canonical(a("10.0.0.1:1")), a("10.0.0.1:1"));
    }
}
