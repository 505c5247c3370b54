//! ICMP and ICMPv6 echo through ping sockets.
//!
//! A guest echo request becomes a datagram on an unprivileged ping socket
//! (`SOCK_DGRAM`, `IPPROTO_ICMP`/`IPPROTO_ICMPV6`), one socket per
//! (guest identifier, destination) pair. The kernel replaces the identifier
//! with the socket's own and filters replies by it; we put the guest's
//! identifier back on each reply, which comes from the address the guest
//! pinged (the gateway, even though the host's loopback answered).
//!
//! Ping sockets need the process's group in `net.ipv4.ping_group_range`
//! (it covers both IP versions); when they are refused we say so once, and
//! echo requests are dropped (counted). Flows idle for 60 s are closed;
//! with the flow budget spent, one idle for 5 s gives way to a new flow.
//! Only echo is translated; other ICMP from the guest (errors, MLD...) is
//! ignored.

use super::FlowCtx;
use crate::stats::Drop;
use crate::sys::{self, epoll};
use crate::time::Instant;
use crate::token::{Kind, Token};
use crate::tx::{finish_ip, l4_offset};
use crate::wire::{icmp, ipv4, ipv6};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

/// A ping flow without traffic for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// With the flow budget spent, a ping flow idle this long gives way to a
/// new flow of any protocol.
pub const EVICT_MIN_IDLE: Duration = Duration::from_secs(5);
/// Largest echo message we relay (the MTU bounds it anyway).
const MAX_MESSAGE: usize = 65535 - 40;

struct PingFlow {
    fd: OwnedFd,
    guest_id: u16,
    /// The guest's address, and the one it pinged (our replies' source).
    guest: IpAddr,
    pinged: IpAddr,
    last_used: Instant,
}

type Key = (u16, IpAddr);

/// The table of ping flows.
#[derive(Default)]
pub struct Icmp {
    slots: Vec<Option<PingFlow>>,
    gens: Vec<u32>,
    by_key: HashMap<Key, u32>,
    /// Whether the "ping sockets not permitted" line was logged.
    told_denied: bool,
    /// Most flows open at once (statistics).
    peak: usize,
    /// Rate limit of warnings the guest can trigger (one per echo request).
    warn: crate::log::RateLimit,
    /// No flow can have been idle for [`EVICT_MIN_IDLE`] before this (the
    /// oldest one's last use, plus that): `evict_idle` scans no sooner,
    /// which keeps a SYN flood against a full budget cheap.
    evict_not_before: Option<Instant>,
}

impl Icmp {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Most flows open at once so far.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// An ICMP (`v6` false) or ICMPv6 message from the guest.
    pub fn handle_guest(&mut self, ctx: &mut FlowCtx, src: IpAddr, dst: IpAddr, msg: &[u8]) {
        let Ok(m) = icmp::Message::new_checked(msg) else {
            ctx.stats.drop(Drop::Truncated);
            return;
        };
        let request = if dst.is_ipv6() { icmp::V6_ECHO_REQUEST } else { icmp::V4_ECHO_REQUEST };
        if msg.len() > MAX_MESSAGE {
            ctx.stats.drop(Drop::Oversize);
            return;
        }
        if m.msg_type() != request || m.code() != 0 {
            // Not translated (errors, MLD...): counted, as every frame
            // that goes nowhere is.
            ctx.stats.drop(Drop::Unsupported);
            return;
        }
        let key = (m.echo_id(), dst);
        let idx = match self.by_key.get(&key) {
            Some(&i) => i,
            None => match self.open(ctx, key, src) {
                Some(i) => i,
                None => return,
            },
        };
        let Some(flow) = self.slots.get_mut(idx as usize).and_then(|s| s.as_mut()) else { return };
        flow.last_used = ctx.now;
        flow.guest = src;
        let to = ctx.net.outbound(SocketAddr::new(dst, 0));
        if let Err(e) = sys::net::send_to(flow.fd.as_fd(), msg, &to) {
            log::debug!("ping to {to}: {e}");
        }
    }

    fn open(&mut self, ctx: &mut FlowCtx, key: Key, guest: IpAddr) -> Option<u32> {
        let (domain, proto) = if key.1.is_ipv6() {
            (libc::AF_INET6, libc::IPPROTO_ICMPV6)
        } else {
            (libc::AF_INET, libc::IPPROTO_ICMP)
        };
        if !ctx.budget.try_take(ctx.now, "ICMP") {
            ctx.stats.drop(Drop::Limit);
            return None;
        }
        let fd = match sys::net::socket(domain, libc::SOCK_DGRAM, proto) {
            Ok(fd) => fd,
            Err(e) => {
                ctx.budget.release();
                ctx.stats.drop(Drop::Limit);
                if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) {
                    if !self.told_denied {
                        self.told_denied = true;
                        log::warn!(
                            "ping sockets are not permitted for this process: ICMP echo from the guest is dropped \
                             (allow our group in sysctl net.ipv4.ping_group_range)"
                        );
                    }
                } else {
                    ctx.budget.socket_failed(ctx.now, "open a ping socket", &e);
                }
                return None;
            }
        };
        let idx = match self.slots.iter().position(|s| s.is_none()) {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.gens.push(0);
                self.slots.len() - 1
            }
        };
        self.gens[idx] = self.gens[idx].wrapping_add(1);
        let token = Token::with_gen(Kind::Icmp, idx as u32, self.gens[idx]);
        if let Err(e) = ctx.host.add(fd.as_fd(), epoll::IN, token.to_u64()) {
            if let Some(n) = self.warn.allow(ctx.now, Duration::from_secs(5)) {
                log::warn!("cannot watch a ping socket: {e} ({n} more not logged)");
            }
            ctx.budget.release();
            return None;
        }
        log::debug!("ping flow {idx}: id {} to {}", key.0, key.1);
        self.slots[idx] = Some(PingFlow { fd, guest_id: key.0, guest, pinged: key.1, last_used: ctx.now });
        self.by_key.insert(key, idx as u32);
        self.peak = self.peak.max(self.by_key.len());
        Some(idx as u32)
    }

    /// Replies are readable on a ping socket.
    pub fn handle_event(&mut self, ctx: &mut FlowCtx, token: Token, _events: u32) {
        let idx = token.idx as usize;
        // A stale event for a slot closed and reused in the same batch.
        if self.gens.get(idx).map(|g| g & 0xff_ffff) != Some(token.gen) {
            return;
        }
        let Some(flow) = self.slots.get_mut(idx).and_then(|s| s.as_mut()) else { return };
        let v6 = flow.pinged.is_ipv6();
        let off = l4_offset(v6);
        let reply_type = if v6 { icmp::V6_ECHO_REPLY } else { icmp::V4_ECHO_REPLY };
        let proto = if v6 { ipv6::NEXT_ICMPV6 } else { ipv4::PROTO_ICMP };
        // The MTU counts the IP header: a frame is the Ethernet header plus the MTU.
        let max = (crate::wire::ethernet::HEADER_LEN + ctx.net.mtu as usize).min(crate::tx::MAX_FRAME);
        // Read until the socket is empty or the guest queue is full (then
        // the rest waits in the socket: the engine stops reading host
        // sockets until the queue drains).
        while let Some(buf) = ctx.tx.reserve(max) {
            let n = match sys::net::recv_from(flow.fd.as_fd(), &mut buf[off..], libc::MSG_DONTWAIT) {
                Ok((n, _)) => n,
                Err(_) => break,
            };
            flow.last_used = ctx.now;
            if n < icmp::HEADER_LEN || buf[off] != reply_type {
                continue;
            }
            buf[off + 4..off + 6].copy_from_slice(&flow.guest_id.to_be_bytes());
            let len = finish_ip(buf, ctx.net.l2(), flow.pinged, flow.guest, proto, n);
            ctx.tx.commit(len);
        }
    }

    /// Closes flows idle for [`IDLE_TIMEOUT`].
    pub fn handle_timeout(&mut self, ctx: &mut FlowCtx) {
        for idx in 0..self.slots.len() {
            let expired = matches!(&self.slots[idx], Some(f) if ctx.now.since(f.last_used) >= IDLE_TIMEOUT);
            if expired {
                self.close(ctx, idx);
            }
        }
    }

    /// With the budget spent, closes the least recently used ping flow if
    /// it has been idle for [`EVICT_MIN_IDLE`] (an echo exchange is over
    /// by then), so that a new flow can take its place; whether it did.
    pub fn evict_idle(&mut self, ctx: &mut FlowCtx) -> bool {
        if self.evict_not_before.is_some_and(|t| ctx.now < t) {
            return false;
        }
        let oldest = self.slots.iter().enumerate().filter_map(|(i, s)| s.as_ref().map(|f| (i, f.last_used))).min_by_key(|&(_, t)| t);
        match oldest {
            Some((idx, last)) if ctx.now.since(last) >= EVICT_MIN_IDLE => {
                self.close(ctx, idx);
                self.evict_not_before = None;
                true
            }
            // Flows only get younger, and new ones start at `now`.
            Some((_, last)) => {
                self.evict_not_before = Some(last + EVICT_MIN_IDLE);
                false
            }
            None => {
                self.evict_not_before = Some(ctx.now + EVICT_MIN_IDLE);
                false
            }
        }
    }

    fn close(&mut self, ctx: &mut FlowCtx, idx: usize) {
        if let Some(f) = self.slots[idx].take() {
            self.by_key.remove(&(f.guest_id, f.pinged));
            ctx.budget.release();
            log::debug!("ping flow {idx} closed");
        }
    }

    pub fn poll_deadline(&self) -> Option<Instant> {
        self.slots.iter().flatten().map(|f| f.last_used + IDLE_TIMEOUT).min()
    }

    /// The guest went away: close every ping socket.
    pub fn reset_all(&mut self, ctx: &mut FlowCtx) {
        for idx in 0..self.slots.len() {
            self.close(ctx, idx);
        }
    }
}
