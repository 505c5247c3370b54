//! Host sockets to guest frames: datagrams (`recvmmsg`, see the module
//! comment of [`super`] for where they land) and error-queue entries
//! (ICMP errors for the guest).

use super::table::{InFlow, Kind, Table};
use super::{canonical, emit_icmp, icmp, take_budget, Listener, Udp, UdpStats, DIRECT_MIN, ERR_PER_EVENT, RX_PER_EVENT, SCRATCH_MAX};
use crate::flow::{FlowBudget, FlowCtx};
use crate::guestnet::GuestNet;
use crate::stats::Drop;
use crate::sys::udp::{recv_error, Received, MAX_MSGS, ORIGIN_ZEROCOPY};
use crate::time::Instant;
use crate::tx;
use crate::wire::{ipv4, ipv6, udp as wudp};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};

/// A socket we read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    /// An outbound flow's socket (slot index).
    Flow(u32),
    /// A forwarded port's socket.
    Listener(u32),
}

/// Datagrams of one flow being gathered into one frame for the guest (UDP
/// segmentation offload): the frame last committed holds them.
struct Run {
    from: SocketAddr,
    to: SocketAddr,
    /// Size of each datagram (the last may be shorter, and ends the run).
    seg: usize,
    /// Payload bytes in the frame.
    total: usize,
    closed: bool,
}

/// The largest UDP payload that fits the guest's MTU.
fn max_payload(mtu: u32, v6: bool) -> usize {
    let ip = if v6 { ipv6::HEADER_LEN } else { ipv4::HEADER_LEN };
    let by_mtu = (mtu as usize).saturating_sub(ip + wudp::HEADER_LEN);
    // Never more than a frame can hold, whatever the configuration says.
    by_mtu.min(tx::MAX_FRAME - tx::l4_offset(v6) - wudp::HEADER_LEN).max(1)
}

/// Datagrams per `recvmmsg` the scratch area may hold for this slot size.
fn max_slots(slot: usize) -> usize {
    (SCRATCH_MAX / slot).clamp(1, MAX_MSGS)
}

/// Source and destination (as the guest sees them) of a datagram from
/// `from` on the outbound flow of `guest`.
fn reply_addrs(net: &GuestNet, guest: SocketAddr, mapped: &super::table::Mapped, from: SocketAddr) -> Option<SocketAddr> {
    let from = canonical(from);
    if let Some(g) = mapped.guest_for(&from) {
        return Some(g);
    }
    let (src, _) = net.inbound(from)?;
    if src.is_ipv6() != guest.is_ipv6() {
        return None;
    }
    // A guest using its link-local address expects link-local peers: host
    // loopback then appears as our link-local address.
    if let (IpAddr::V6(g), IpAddr::V6(s), Some(n)) = (guest.ip(), src.ip(), net.v6.as_ref()) {
        if ipv6::is_link_local(&g) && !ipv6::is_link_local(&s) && from.ip().is_loopback() {
            return Some(SocketAddr::new(n.our_ll.into(), src.port()));
        }
    }
    Some(src)
}

/// The inbound flow for a datagram from `peer` on listener `l` (created if
/// new): (peer as the guest sees it, guest address and port), or why the
/// datagram cannot go to the guest.
#[allow(clippy::too_many_arguments)]
fn inbound_addrs(
    table: &mut Table,
    stats: &mut UdpStats,
    budget: &mut FlowBudget,
    net: &GuestNet,
    now: Instant,
    l: u32,
    guest_port: u16,
    peer: SocketAddr,
) -> Result<(SocketAddr, SocketAddr), Drop> {
    let peer = canonical(peer);
    // No address for the guest in that IP version (yet): nowhere to go.
    let (seen_as, gdst) = net.inbound(peer).ok_or(Drop::NotForUs)?;
    let guest = SocketAddr::new(gdst.ip(), guest_port);
    if let Some(&idx) = table.in_by_peer.get(&(l, peer)) {
        table.touch(idx, now);
        table.retarget_in(idx, guest, seen_as);
        return Ok((seen_as, guest));
    }
    if !take_budget(table, stats, budget, now) {
        stats.refused += 1;
        return Err(Drop::Limit);
    }
    table.insert(super::Flow { last: now, kind: Kind::In(InFlow { listener: l, peer, seen_as, guest }) });
    stats.flows_inbound += 1;
    log::debug!("UDP: inbound flow {peer} -> {guest} (seen as {seen_as})");
    Ok((seen_as, guest))
}

impl Udp {
    /// The socket of a source (an associated function: callers borrow
    /// other fields mutably meanwhile).
    fn source_fd<'s>(table: &'s Table, listeners: &'s crate::flow::slots::Slots<Listener>, src: Source) -> Option<BorrowedFd<'s>> {
        match src {
            Source::Flow(i) => match &table.at(i)?.kind {
                Kind::Out(o) => Some(o.sock.as_fd()),
                Kind::In(_) => None,
            },
            Source::Listener(l) => listeners.get(l as usize).map(|l| l.sock.as_fd()),
        }
    }

    /// Whether frames from this socket are IPv6 (the guest side's family),
    /// and its recent average datagram size.
    fn source_info(&self, src: Source) -> Option<(bool, u32)> {
        match src {
            Source::Flow(i) => match &self.table.at(i)?.kind {
                Kind::Out(o) => Some((o.guest.is_ipv6(), o.rx_avg)),
                Kind::In(_) => None,
            },
            Source::Listener(l) => self.listeners.get(l as usize).map(|l| (l.bound.is_ipv6(), l.rx_avg)),
        }
    }

    fn set_rx_avg(&mut self, src: Source, avg: u32) {
        match src {
            Source::Flow(i) => {
                if let Some(super::Flow { kind: Kind::Out(o), .. }) = self.table.at_mut(i) {
                    o.rx_avg = avg;
                }
            }
            Source::Listener(l) => {
                if let Some(l) = self.listeners.get_mut(l as usize) {
                    l.rx_avg = avg;
                }
            }
        }
    }

    /// Where a received datagram goes: (source, destination) as the guest
    /// sees them, or why it is dropped. Refreshes the flow.
    fn guest_addrs(
        &mut self,
        net: &GuestNet,
        budget: &mut FlowBudget,
        now: Instant,
        src: Source,
        from: Option<SocketAddr>,
    ) -> Result<(SocketAddr, SocketAddr), Drop> {
        let from = from.ok_or(Drop::Unsupported)?;
        match src {
            Source::Flow(i) => {
                let out = match self.table.at(i).map(|f| &f.kind) {
                    Some(Kind::Out(o)) => o,
                    _ => return Err(Drop::NotForUs),
                };
                let src = reply_addrs(net, out.guest, &out.mapped, from).ok_or(Drop::NotForUs)?;
                let dst = out.guest;
                self.table.touch(i, now);
                Ok((src, dst))
            }
            Source::Listener(l) => {
                let guest_port = self.listeners.get(l as usize).ok_or(Drop::NotForUs)?.guest_port;
                inbound_addrs(&mut self.table, &mut self.stats, budget, net, now, l, guest_port, from)
            }
        }
    }

    /// Reads datagrams from a socket into frames for the guest, as many as
    /// the guest queue has room for (at most [`RX_PER_EVENT`]).
    pub(super) fn read(&mut self, ctx: &mut FlowCtx, src: Source) {
        let Some((v6, mut avg)) = self.source_info(src) else { return };
        let off = tx::l4_offset(v6) + wudp::HEADER_LEN;
        let slot = max_payload(ctx.net.mtu, v6);
        let frame_max = off + slot;
        let mut total = 0;
        let mut retried = false;
        let mut run: Option<Run>;
        while total < RX_PER_EVENT {
            let fits = ctx.tx.room() / (frame_max + tx::PREFIX);
            if fits == 0 {
                // The engine pauses the host set until the guest queue
                // drains; the socket keeps the rest (level-triggered).
                break;
            }
            let big = avg as usize >= DIRECT_MIN;
            let want = if big { 1 } else { fits.min(self.rx_slots).min(RX_PER_EVENT - total) };
            let rest_len = (want - 1) * slot;
            if self.scratch.len() < rest_len {
                self.scratch.resize(rest_len, 0);
            }
            let Some(fd) = Self::source_fd(&self.table, &self.listeners, src) else { return };
            let partial_ok = ctx.tx.offload();
            let Some(frame) = ctx.tx.reserve(frame_max) else { break };
            let r = self.batch.recv(fd, &mut frame[off..frame_max], &mut self.scratch[..rest_len], slot, want);
            self.stats.recv_calls += 1;
            let n = match r {
                Ok(n) => n,
                Err(e) => {
                    ctx.tx.commit(0);
                    if e.kind() == io::ErrorKind::WouldBlock || retried {
                        break;
                    }
                    // A pending ICMP error (ECONNREFUSED...) reported
                    // instead of data: the error queue says more.
                    retried = true;
                    self.drain_errors(ctx, src);
                    continue;
                }
            };
            // The first datagram is already in place in the reserved frame.
            let first = self.batch.received(0);
            let mut bytes = first.len;
            match self.guest_addrs(ctx.net, ctx.budget, ctx.now, src, first.from) {
                Ok((from, to)) if !first.truncated => {
                    let partial = partial_ok;
                    let len = finish_frame(frame, ctx.net, from, to, first.len, partial);
                    ctx.tx.commit_with(len, tx::Offload { csum_partial: partial, gso_size: 0 });
                    self.stats.to_guest += 1;
                    run = Some(Run { from, to, seg: first.len, total: first.len, closed: false });
                }
                r => {
                    ctx.tx.commit(0);
                    run = None;
                    self.dropped(ctx, r.err().unwrap_or(Drop::Oversize));
                }
            }
            for i in 1..n {
                let m = self.batch.received(i);
                bytes += m.len;
                self.deliver_from_scratch(ctx, src, m, (i - 1) * slot, off, &mut run);
            }
            total += n;
            let batch_avg = (bytes / n.max(1)) as u32;
            avg = (avg.saturating_mul(3).saturating_add(batch_avg)) / 4;
            if n < want {
                break;
            }
            if !big && want == self.rx_slots {
                self.rx_slots = (self.rx_slots * 2).min(max_slots(slot));
            }
        }
        self.set_rx_avg(src, avg);
    }

    /// Copies a datagram received into the scratch area into a frame: the
    /// frame of the current run when it continues it (same flow, no larger
    /// than the run's datagrams) and the backend takes UDP segmentation
    /// offload, a new frame otherwise.
    fn deliver_from_scratch(&mut self, ctx: &mut FlowCtx, src: Source, m: Received, at: usize, off: usize, run: &mut Option<Run>) {
        let (from, to) = match self.guest_addrs(ctx.net, ctx.budget, ctx.now, src, m.from) {
            Ok(a) => a,
            Err(why) => {
                self.dropped(ctx, why);
                return;
            }
        };
        if m.truncated {
            self.dropped(ctx, Drop::Oversize);
            return;
        }
        if let Some(r) = run.as_mut().filter(|r| ctx.tx.udp_gso() && !r.closed && r.from == from && r.to == to) {
            // IPv4's total length, or IPv6's payload length, bounds it.
            let ip = if to.is_ipv6() { 0 } else { ipv4::HEADER_LEN };
            let fits = ip + wudp::HEADER_LEN + r.total + m.len <= usize::from(u16::MAX);
            if m.len > 0 && m.len <= r.seg && fits {
                if let Some(frame) = ctx.tx.grow_last(m.len) {
                    frame[off + r.total..off + r.total + m.len].copy_from_slice(&self.scratch[at..at + m.len]);
                    r.total += m.len;
                    r.closed = m.len < r.seg;
                    finish_frame(frame, ctx.net, from, to, r.total, true);
                    ctx.tx.set_last_offload(tx::Offload { csum_partial: true, gso_size: r.seg as u16 });
                    self.stats.to_guest += 1;
                    return;
                }
            }
        }
        let partial = ctx.tx.offload();
        let Some(frame) = ctx.tx.reserve(off + m.len) else {
            self.dropped(ctx, Drop::TxFull);
            return;
        };
        frame[off..off + m.len].copy_from_slice(&self.scratch[at..at + m.len]);
        let len = finish_frame(frame, ctx.net, from, to, m.len, partial);
        ctx.tx.commit_with(len, tx::Offload { csum_partial: partial, gso_size: 0 });
        self.stats.to_guest += 1;
        *run = Some(Run { from, to, seg: m.len, total: m.len, closed: false });
    }

    fn dropped(&mut self, ctx: &mut FlowCtx, why: Drop) {
        self.stats.to_guest_dropped += 1;
        ctx.stats.drop(why);
    }

    /// Turns the socket's error-queue entries into ICMP errors for the
    /// guest; returns how many entries were read.
    pub(super) fn drain_errors(&mut self, ctx: &mut FlowCtx, src: Source) -> usize {
        let mut count = 0;
        while count < ERR_PER_EVENT {
            let Some(fd) = Self::source_fd(&self.table, &self.listeners, src) else { break };
            let e = match recv_error(fd, &mut self.errbuf) {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(e) => {
                    log::debug!("UDP: reading an error queue: {e}");
                    break;
                }
            };
            count += 1;
            if e.origin == ORIGIN_ZEROCOPY {
                continue;
            }
            let Some(dst) = e.dst.map(canonical) else { continue };
            // Whose datagram was it, and where had the guest sent it?
            let (guest, guest_dst) = match src {
                Source::Flow(i) => match self.table.at(i).map(|f| &f.kind) {
                    Some(Kind::Out(o)) => (o.guest, o.mapped.guest_for(&dst).unwrap_or(dst)),
                    _ => break,
                },
                Source::Listener(l) => {
                    let flow = self.table.in_by_peer.get(&(l, dst)).and_then(|&i| self.table.at(i));
                    match flow.map(|f| &f.kind) {
                        Some(Kind::In(f)) => (f.guest, f.seen_as),
                        _ => continue,
                    }
                }
            };
            let Some(kind) = icmp::from_sock_error(&e, guest.is_ipv6()) else { continue };
            // The destination itself reporting (port unreachable) appears
            // as the address the guest sent to; a router on the way as
            // itself, translated like any host peer.
            let source = match e.offender.map(canonical) {
                Some(o) if o.ip() != dst.ip() => match ctx.net.inbound(o) {
                    Some((s, _)) if s.is_ipv6() == guest.is_ipv6() => s.ip(),
                    _ => guest_dst.ip(),
                },
                _ => guest_dst.ip(),
            };
            let payload = &self.errbuf[..e.len.min(self.errbuf.len())];
            emit_icmp(ctx, &mut self.stats, kind, source, guest, guest_dst, payload);
        }
        count
    }
}

/// Writes the UDP header and the IP/Ethernet headers around a payload
/// already at its place in `frame`; returns the frame length. `partial`:
/// leave the checksum to the kernel (a tap with offloads).
///
/// Otherwise a datagram over IPv4 goes without a checksum (zero, as passt
/// sends them): it came from a kernel socket that had verified it, and
/// reaches the guest through memory only, so summing every byte here and
/// again in the guest (which skips a zero checksum) would protect nothing.
/// Over IPv6, which requires one (RFC 8200 section 8.1),
/// [`tx::L4Checksum::Omitted`] computes it.
fn finish_frame(frame: &mut [u8], net: &GuestNet, from: SocketAddr, to: SocketAddr, len: usize, partial: bool) -> usize {
    let l4 = tx::l4_offset(to.is_ipv6());
    wudp::emit(&mut frame[l4..], from.port(), to.port(), len);
    let csum = if partial { tx::L4Checksum::Partial } else { tx::L4Checksum::Omitted };
    tx::finish_ip_with(frame, net.l2(), from.ip(), to.ip(), ipv4::PROTO_UDP, wudp::HEADER_LEN + len, csum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_limits() {
        assert_eq!(max_payload(1500, false), 1472);
        assert_eq!(max_payload(1500, true), 1452);
        assert_eq!(max_payload(65520, false), 65492);
        assert!(tx::l4_offset(true) + wudp::HEADER_LEN + max_payload(u32::MAX, true) <= tx::MAX_FRAME);
        assert_eq!(max_payload(0, false), 1);
        assert_eq!(max_slots(1472), MAX_MSGS);
        assert_eq!(max_slots(65492), SCRATCH_MAX / 65492);
        assert_eq!(max_slots(usize::MAX), 1);
    }
}
