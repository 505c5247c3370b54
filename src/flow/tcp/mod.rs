//! TCP: guest connections translated to host kernel sockets, with no TCP
//! stack of our own (the design of passt's `tcp.c`, written afresh).
//!
//! # Theory of operation
//!
//! The guest speaks TCP to us; the host kernel speaks TCP to the real peer.
//! We keep the two in step and own no data buffer:
//!
//! * **Guest -> host.** Payload that arrives in sequence is written to the
//!   socket: large segments at once (one copy: guest frame -> kernel),
//!   MTU-sized ones staged and written together at the end of the batch of
//!   frames (one more copy, far fewer system calls). We acknowledge only
//!   what the kernel took, and advertise as window the room left in the
//!   socket's send buffer (`SO_MEMINFO`: size minus queued), so a guest
//!   that respects our window never sends what the socket would refuse.
//!   When that room is small we re-arm EPOLLOUT and send a window update
//!   when it drains. Segments after a gap are held (bounded, see the
//!   `reorder` module) and answered with duplicate ACKs that carry SACK
//!   blocks if the guest permitted SACK; they follow the gap into the
//!   socket once it is filled. ACKs are coalesced: one per connection per
//!   batch of guest frames ([`Tcp::flush`]). A guest FIN, once all data
//!   before it is written, becomes `shutdown(SHUT_WR)`.
//! * **Host -> guest.** Data is peeked (`MSG_PEEK` with `SO_PEEK_OFF`, so
//!   each peek continues where the last one stopped) straight into frames
//!   in the guest queue, in segments of the guest's MSS, never beyond the
//!   guest's window nor the queue's room (one copy: kernel -> frame; the
//!   backend's write is the second). Bytes are consumed from the socket
//!   (`recv(MSG_TRUNC)` without a buffer) only when the guest acknowledges
//!   them, so the kernel's receive queue is our retransmission buffer:
//!   on a timeout or three duplicate ACKs we rewind the peek offset to the
//!   oldest unacknowledged byte and send again (go-back-N). End of stream
//!   (a zero-length peek) becomes a FIN once all data was sent. Without
//!   `SO_PEEK_OFF` (kernels before 6.10) each peek starts at the head and
//!   skips the bytes in flight into a scratch buffer.
//! * **Resets.** A guest RST closes the socket with `SO_LINGER` 0, so the
//!   host peer sees a reset; a socket error (ECONNRESET, EPIPE...) or a
//!   failed `connect()` (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH...) sends
//!   RST to the guest at once.
//! * **Inbound.** A listening socket per forwarded port (`-t`; dual-stack
//!   `[::]` unless a bind address is given); an accepted connection becomes
//!   a SYN to the guest from the address [`crate::guestnet::GuestNet::inbound`]
//!   gives (loopback peers appear as the gateway).
//!
//! Connection sockets are edge-triggered (EPOLLIN|EPOLLOUT|EPOLLRDHUP|ET):
//! data we peeked but did not consume would keep a level-triggered socket
//! readable forever. So whenever we stop reading before EAGAIN (guest
//! window full, frame queue full) we resume on our own: on the guest's
//! next ACK, or in [`Tcp::handle_tx_room`].
//!
//! # States
//!
//! | state         | how it is entered                         | leaves to                                                    |
//! |---------------|-------------------------------------------|--------------------------------------------------------------|
//! | `Connecting`  | guest SYN, flow slot free: `connect()`    | `SynAckSent` on EPOLLOUT, or at once when `connect()` returned established (the host's loopback) (SYN-ACK to guest); gone + RST on error or after 10 s |
//! | `SynAckSent`  | outbound connect finished                 | `Established` on the guest's ACK of our SYN; SYN-ACK resent 1, 2, 4 s...; gone + RST after 10 s |
//! | `SynSent`     | `accept()` on a forwarded port: SYN sent  | `Established` on the guest's SYN-ACK (we ACK); gone on guest RST (host peer sees a reset) or after 10 s |
//! | `Established` | handshake done                            | gone: closed when both FINs are acknowledged; reset on RST either way, on 7 unanswered retransmissions over 2 minutes or more, or on inactivity |
//!
//! Within `Established`, each direction closes on its own (half-close):
//! the guest's FIN (`guest_fin`, socket shut for writing) and the host's end
//! of stream (`host_eof`, then our FIN to the guest, then its ACK). While
//! one direction is open the inactivity limit is 2 hours (passt's activity
//! timeout); once both FINs were exchanged and only an ACK is missing, 60 s.
//! Retransmission starts at 1 s, or once round trips were measured at
//! SRTT + 4 RTTVAR but at least 200 ms ([`rtt`]), and doubles up to 60 s;
//! the same timer is the persist (zero-window probe) timer when the
//! guest's window is closed.
//!
//! What a handler may touch: the connection's own socket and the frame
//! queue. What happens to the table entry afterwards is a [`Verdict`]:
//! keep, close gracefully, abort (RST both ways), or drop (the guest
//! reset: RST to the host only). Every end path closes the socket (the
//! `OwnedFd` drops) and releases the flow budget.
//!
//! SACK (RFC 2018), when the guest permits it: our ACKs report what we
//! hold, and a guest ACK with SACK blocks counts as a duplicate ACK even if
//! it carries data or a new window (so a guest that sends while it
//! receives still gets a fast retransmit); but we send host data again
//! from the first unacknowledged byte, whatever the blocks say (the
//! kernel's receive queue is our only copy, and a guest link rarely
//! loses). Left out: timestamps, urgent data, ECN (never offered, so never
//! negotiated); ICMP errors to the guest (RST is used for all failures).

mod conn;
mod listen;
mod reorder;
mod rtt;

use self::conn::{Conn, State};
use crate::flow::hash::FlowHash;
use crate::flow::FlowCtx;
use crate::sys::{self, epoll, tcp as stcp};
use crate::time::Instant;
use crate::token::{Kind, Token};
use crate::wire::tcp::{Options, Segment, ACK, FIN, RST, SYN};
use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, HashMap};
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

pub use self::listen::ephemeral_port_start;

/// A handshake (either way) must finish within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// An established connection with no traffic either way is reset after
/// this (passt's activity timeout).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(2 * 3600);
/// Once both FINs are exchanged, the last ACK must come within this.
pub const FIN_TIMEOUT: Duration = Duration::from_secs(60);
/// First retransmission timeout (RFC 6298 2.1's initial RTO).
pub const RTO_INITIAL: Duration = Duration::from_secs(1);
/// Largest retransmission timeout (RFC 6298 2.5 allows capping at >= 60 s).
pub const RTO_MAX: Duration = Duration::from_secs(60);
/// Retransmissions without progress before the connection is reset, if
/// they also spanned [`GIVE_UP_STALLED`] (at the initial 1 s timeout,
/// 1 + 2 + ... + 60 s: about three minutes).
pub const MAX_RETRIES: u8 = 7;
/// The least time from the first unanswered retransmission to the reset.
pub const GIVE_UP_STALLED: Duration = Duration::from_secs(120);
/// Shift of the windows we advertise: up to 8 MiB, beyond Linux's
/// default largest send buffer (4 MiB).
pub const OUR_WINDOW_SCALE: u8 = 7;
/// Connections accepted per listener event (the rest on the next one).
const ACCEPT_BATCH: usize = 64;

/// epoll events of connection sockets (see the module comment).
pub(crate) const CONN_EVENTS: u32 = epoll::IN | epoll::OUT | epoll::RDHUP | epoll::ET;

/// What becomes of a connection after a handler ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Keep,
    /// Both directions finished: close the socket normally.
    Close,
    /// Reset both ways: RST to the guest, RST to the host peer.
    Abort,
    /// The guest reset: RST to the host peer only.
    Drop,
}

struct Slot {
    /// Bumped when the slot is freed, so stale events and timers miss.
    gen: u32,
    conn: Option<Conn>,
}

/// The TCP flow table.
pub struct Tcp {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// (guest end, peer as the guest sees it) -> slot.
    by_tuple: HashMap<(SocketAddr, SocketAddr), u32, FlowHash>,
    listeners: crate::flow::slots::Slots<listen::Listener>,
    /// (deadline, slot, generation); entries go stale and are skipped.
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    /// Connections with work for the end of the batch.
    dirty: Vec<u32>,
    /// Connections waiting for room in the frame queue.
    blocked: Vec<u32>,
    /// The list being retried by [`Self::handle_tx_room`] while `blocked`
    /// collects those that block again: the two swap, so that neither is
    /// allocated anew each time (a bulk transfer to the guest blocks and
    /// resumes hundreds of times a second).
    retrying: Vec<u32>,
    /// Secret for initial sequence numbers (RFC 6528).
    isn_key: RandomState,
    /// Scratch for the peek fallback without `SO_PEEK_OFF`.
    scratch: Vec<u8>,
    /// Guest data accepted during the current batch of frames, not yet
    /// written to its socket (see [`conn::STAGE_DIRECT_MIN`]): one
    /// connection's at a time, written when the batch ends or another
    /// connection's data comes.
    stage: Vec<u8>,
    /// The connection whose data is in `stage`.
    stage_owner: Option<u32>,
    /// Bytes of out-of-order guest data all connections hold together.
    held: reorder::Budget,
    live: usize,
    /// Most connections live at once (statistics).
    peak: usize,
    use_peek_off: bool,
    /// Rate limit of warnings the guest can trigger.
    warn: crate::log::RateLimit,
    /// An fd held in reserve while listening: out of fds, it is given up
    /// to accept (and reset) a waiting connection, see `listen::shed_one`.
    spare: Option<std::os::fd::OwnedFd>,
    /// A `connect()` was started since the host sockets were last polled
    /// (see [`Tcp::take_connect_started`]).
    connect_started: bool,
    /// A SYN-ACK was queued while guest frames were being handled (see
    /// [`Tcp::take_answered_early`]).
    answered_early: bool,
}

impl Tcp {
    pub fn new(max_flows_hint: usize) -> Self {
        Tcp {
            slots: Vec::new(),
            free: Vec::new(),
            by_tuple: HashMap::with_capacity_and_hasher(max_flows_hint.min(64), FlowHash::default()),
            listeners: Default::default(),
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            blocked: Vec::new(),
            retrying: Vec::new(),
            isn_key: RandomState::new(),
            scratch: Vec::new(),
            stage: Vec::new(),
            stage_owner: None,
            held: reorder::Budget::new(reorder::DEFAULT_BUDGET),
            live: 0,
            peak: 0,
            use_peek_off: true,
            warn: Default::default(),
            spare: None,
            connect_started: false,
            answered_early: false,
        }
    }

    /// Whether a `connect()` was started, and not found established at
    /// once, since the last call. One to the host's loopback completes
    /// within the call (the SYN and SYN-ACK are handled in the kernel
    /// before it returns) and is answered then (see
    /// [`Tcp::take_answered_early`]); one that completes just after is
    /// writable by the end of the batch: polling the host sockets again
    /// at once answers the guest's SYN in the same wake-up instead of the
    /// next (connection setups per second, `rr crr`).
    pub fn take_connect_started(&mut self) -> bool {
        std::mem::take(&mut self.connect_started)
    }

    /// Whether a guest SYN was answered while the batch of guest frames
    /// was being handled, since the last call: a `connect()` found
    /// established as soon as it returned (the host's loopback). Writing
    /// the queue to the guest at once, before the work the batch still
    /// owes other connections (a closing one's `shutdown()` and its ACK
    /// to the guest), takes that work off the path of a client waiting
    /// for its SYN-ACK.
    pub fn take_answered_early(&mut self) -> bool {
        std::mem::take(&mut self.answered_early)
    }

    /// Whether new connections use `SO_PEEK_OFF` when the kernel has it
    /// (default true; false forces the fallback, for tests).
    pub fn set_peek_offset(&mut self, on: bool) {
        self.use_peek_off = on;
    }

    /// Live connections.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Most connections live at once so far.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// Bytes of out-of-order guest data held by all connections (with
    /// each segment's overhead), for diagnostics and tests.
    pub fn held_bytes(&self) -> usize {
        self.held.used()
    }

    /// (host port, guest port) of each listening socket.
    pub fn listening_ports(&self) -> impl Iterator<Item = (u16, u16)> + '_ {
        self.listeners.iter().map(|(_, l)| (l.host_port, l.guest_port))
    }

    /// The host socket of the connection between `guest` and `peer` (the
    /// far end as the guest sees it), for diagnostics and tests.
    pub fn socket_of(&self, guest: SocketAddr, peer: SocketAddr) -> Option<BorrowedFd<'_>> {
        let idx = *self.by_tuple.get(&(guest, peer))?;
        self.slots[idx as usize].conn.as_ref().map(|c| c.sock.as_fd())
    }

    /// A segment from the guest (`l4`: TCP header and payload, checksum
    /// already verified; `src`/`dst`: the guest's addresses).
    pub fn handle_guest(&mut self, ctx: &mut FlowCtx, src: IpAddr, dst: IpAddr, l4: &[u8]) {
        let seg = match Segment::new_checked(l4) {
            Ok(s) => s,
            Err(e) => {
                ctx.stats.drop(e.into());
                return;
            }
        };
        log::trace!("TCP from guest {src} -> {dst}: {seg}");
        if seg.src_port() == 0 || seg.dst_port() == 0 || src.is_ipv4() != dst.is_ipv4() {
            ctx.stats.drop(crate::stats::Drop::Malformed);
            return;
        }
        if !is_unicast(dst) {
            ctx.stats.drop(crate::stats::Drop::NotForUs);
            return;
        }
        let guest = SocketAddr::new(src, seg.src_port());
        let peer = SocketAddr::new(dst, seg.dst_port());
        match self.by_tuple.get(&(guest, peer)) {
            Some(&idx) => {
                if self.stage_owner.is_some_and(|o| o != idx) {
                    self.flush_stage(ctx);
                }
                let Some(conn) = self.slots[idx as usize].conn.as_mut() else { return };
                let v = conn.on_segment(ctx, &seg, &mut self.stage, &mut self.held);
                if !self.stage.is_empty() {
                    self.stage_owner = Some(idx);
                }
                self.settle(ctx, idx, v, true);
            }
            None if seg.flags() & (SYN | ACK | RST | FIN) == SYN => self.connect(ctx, guest, peer, &seg),
            None => reply_rst(ctx, guest, peer, &seg),
        }
    }

    /// A guest SYN for a new connection: a non-blocking `connect()`.
    fn connect(&mut self, ctx: &mut FlowCtx, guest: SocketAddr, peer: SocketAddr, seg: &Segment<'_>) {
        let opts = match seg.options() {
            Ok(o) => o,
            Err(e) => {
                ctx.stats.drop(e.into());
                return;
            }
        };
        if !ctx.budget.try_take(ctx.now, "TCP") {
            ctx.stats.drop(crate::stats::Drop::Limit);
            reply_rst(ctx, guest, peer, seg);
            return;
        }
        let remote = ctx.net.outbound(peer);
        let sock = match sys::net::socket(sys::net::family(&remote), libc::SOCK_STREAM, 0)
            .and_then(|s| sys::net::connect(s.as_fd(), &remote).map(|_| s))
        {
            Ok(s) => s,
            Err(e) => {
                log::debug!("TCP {guest} -> {peer} ({remote}): {e}");
                if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)) {
                    ctx.budget.socket_failed(ctx.now, "open a TCP socket", &e);
                }
                ctx.budget.release();
                reply_rst(ctx, guest, peer, seg);
                return;
            }
        };
        let (idx, gen) = self.alloc();
        let token = Token::with_gen(Kind::TcpConn, idx, gen).to_u64();
        if let Err(e) = ctx.host.add(sock.as_fd(), CONN_EVENTS, token) {
            // The guest can cause this at will (many connections): rate-limited.
            if let Some(n) = self.warn.allow(ctx.now, Duration::from_secs(5)) {
                log::warn!("TCP: cannot watch a socket: {e} ({n} more not logged)");
            }
            self.free.push(idx);
            ctx.budget.release();
            reply_rst(ctx, guest, peer, seg);
            return;
        }
        let isn = self.isn(guest, peer, ctx.now);
        let mut conn = Conn::new(sock, token, State::Connecting, guest, peer, isn, ctx.now);
        if !self.use_peek_off {
            conn.disable_peek_off();
        }
        conn.accept_guest_syn(ctx, seg, &opts);
        log::debug!("TCP {guest} -> {peer}: connecting to {remote}");
        let v = if stcp::is_established(conn.sock.as_fd()).unwrap_or(false) {
            self.answered_early = true;
            conn.connect_done(ctx, epoll::OUT)
        } else {
            self.connect_started = true;
            Verdict::Keep
        };
        self.insert(ctx.now, idx, conn);
        self.settle(ctx, idx, v, true);
    }

    /// RFC 6528: a keyed hash of the tuple plus a 4 µs clock.
    fn isn(&self, guest: SocketAddr, peer: SocketAddr, now: Instant) -> u32 {
        let h = self.isn_key.hash_one((guest, peer));
        (h as u32).wrapping_add((now.nanos() / 4096) as u32)
    }

    fn alloc(&mut self) -> (u32, u32) {
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot { gen: 0, conn: None });
                (self.slots.len() - 1) as u32
            }
        };
        (idx, self.slots[idx as usize].gen)
    }

    fn insert(&mut self, now: Instant, idx: u32, conn: Conn) {
        self.by_tuple.insert((conn.guest, conn.peer), idx);
        self.slots[idx as usize].conn = Some(conn);
        self.live += 1;
        self.peak = self.peak.max(self.live);
        self.schedule(now, idx);
    }

    /// Puts the connection's next deadline in the heap if it is earlier
    /// than the one it has there (later ones are found when that pops).
    fn schedule(&mut self, now: Instant, idx: u32) {
        let slot = &mut self.slots[idx as usize];
        let Some(c) = slot.conn.as_mut() else { return };
        let d = c.next_deadline().max(now + Duration::from_millis(1));
        if c.queued.map_or(true, |q| d < q) {
            c.queued = Some(d);
            self.timers.push(Reverse((d, idx, slot.gen)));
        }
    }

    /// Applies a handler's verdict and files the connection's owed work.
    /// `in_batch`: called while guest frames are being handled, so owed
    /// work waits for [`Self::flush`]; otherwise it is done now.
    fn settle(&mut self, ctx: &mut FlowCtx, idx: u32, v: Verdict, in_batch: bool) {
        if v != Verdict::Keep {
            self.finish(ctx, idx, v);
            return;
        }
        let Some(conn) = self.slots[idx as usize].conn.as_mut() else { return };
        if conn.needs_flush() {
            if in_batch {
                if !conn.dirty {
                    conn.dirty = true;
                    self.dirty.push(idx);
                }
            } else {
                let v = conn.flush(ctx, &mut self.scratch);
                if v != Verdict::Keep {
                    self.finish(ctx, idx, v);
                    return;
                }
            }
        }
        let Some(conn) = self.slots[idx as usize].conn.as_mut() else { return };
        if conn.blocked && !conn.listed_blocked {
            conn.listed_blocked = true;
            self.blocked.push(idx);
        }
        self.schedule(ctx.now, idx);
    }

    /// Writes the staged guest data to its connection's socket.
    fn flush_stage(&mut self, ctx: &mut FlowCtx) {
        let Some(idx) = self.stage_owner.take() else { return };
        let Some(conn) = self.slots[idx as usize].conn.as_mut() else {
            self.stage.clear();
            return;
        };
        let v = if conn.send_staged(&mut self.stage).is_some() { Verdict::Keep } else { Verdict::Abort };
        self.settle(ctx, idx, v, true);
    }

    /// Ends a connection as the verdict says and frees its slot.
    fn finish(&mut self, ctx: &mut FlowCtx, idx: u32, v: Verdict) {
        if v == Verdict::Keep {
            return;
        }
        if self.stage_owner == Some(idx) {
            self.stage.clear();
            self.stage_owner = None;
        }
        let slot = &mut self.slots[idx as usize];
        let Some(mut conn) = slot.conn.take() else { return };
        slot.gen = (slot.gen + 1) & 0xff_ffff;
        conn.forget_held(&mut self.held);
        match v {
            Verdict::Keep => {}
            Verdict::Close => {
                conn.prepare_close();
                log::debug!("TCP {} - {}: closed", conn.guest, conn.peer);
            }
            Verdict::Abort => {
                conn.send_rst(ctx);
                let _ = stcp::set_linger_zero(conn.sock.as_fd());
                log::debug!("TCP {} - {}: reset", conn.guest, conn.peer);
            }
            Verdict::Drop => {
                let _ = stcp::set_linger_zero(conn.sock.as_fd());
            }
        }
        self.by_tuple.remove(&(conn.guest, conn.peer));
        self.free.push(idx);
        self.live -= 1;
        ctx.budget.release();
        // `conn` drops here: the socket closes and leaves the epoll set.
    }

    /// Connections held back by a full frame queue resume as soon as it
    /// has room for a largest frame, whoever notices first: the engine
    /// ([`Self::handle_tx_room`]) or any of our entry points (the queue
    /// may drain without the engine ever pausing host sockets).
    fn retry_blocked(&mut self, ctx: &mut FlowCtx) {
        if !self.blocked.is_empty() && ctx.tx.room() >= crate::tx::MAX_FRAME {
            self.handle_tx_room(ctx);
        }
    }

    /// End of a batch of guest frames: per connection, consume what the
    /// guest acknowledged, send more host data, and one ACK.
    pub fn flush(&mut self, ctx: &mut FlowCtx) {
        self.retry_blocked(ctx);
        self.flush_stage(ctx);
        if self.live == 0 && self.stage.capacity() > 0 {
            self.stage = Vec::new(); // idle instances stay small
        }
        let mut list = std::mem::take(&mut self.dirty);
        for &idx in &list {
            let Some(conn) = self.slots[idx as usize].conn.as_mut() else { continue };
            if !conn.dirty {
                continue;
            }
            conn.dirty = false;
            let v = conn.flush(ctx, &mut self.scratch);
            self.settle(ctx, idx, v, false);
        }
        list.clear();
        if self.dirty.is_empty() {
            self.dirty = list;
        }
        self.compact_timers();
    }

    /// An epoll event for a connection or listening socket.
    pub fn handle_event(&mut self, ctx: &mut FlowCtx, token: Token, events: u32) {
        self.retry_blocked(ctx);
        match token.kind {
            Kind::TcpListen => self.accept(ctx, token.idx as usize),
            Kind::TcpConn => {
                let idx = token.idx;
                let Some(slot) = self.slots.get_mut(idx as usize) else { return };
                if slot.gen != token.gen {
                    return; // the connection this was for is gone
                }
                let Some(conn) = slot.conn.as_mut() else { return };
                let v = conn.on_event(ctx, events, &mut self.scratch);
                self.settle(ctx, idx, v, false);
            }
            _ => {}
        }
    }

    /// Runs the timers that are due (spurious calls are harmless).
    pub fn handle_timeout(&mut self, ctx: &mut FlowCtx) {
        self.retry_blocked(ctx);
        while let Some(&Reverse((when, idx, gen))) = self.timers.peek() {
            if when > ctx.now {
                break;
            }
            self.timers.pop();
            let slot = &mut self.slots[idx as usize];
            if slot.gen != gen {
                continue;
            }
            let Some(conn) = slot.conn.as_mut() else { continue };
            if conn.queued != Some(when) {
                continue;
            }
            conn.queued = None;
            let v = conn.on_timer(ctx, &mut self.scratch);
            self.settle(ctx, idx, v, false);
        }
        self.compact_timers();
    }

    /// Drops stale heap entries when they outnumber live ones (closed
    /// connections leave entries up to two hours ahead).
    fn compact_timers(&mut self) {
        if self.timers.len() <= 64 || self.timers.len() <= 4 * self.live {
            return;
        }
        let slots = &self.slots;
        self.timers.retain(|Reverse((when, idx, gen))| {
            let s = &slots[*idx as usize];
            s.gen == *gen && s.conn.as_ref().is_some_and(|c| c.queued == Some(*when))
        });
    }

    /// The earliest instant a timer may be due (maybe earlier: soft).
    pub fn poll_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((when, _, _))| *when)
    }

    /// The frame queue has room again: resume what was held back.
    pub fn handle_tx_room(&mut self, ctx: &mut FlowCtx) {
        std::mem::swap(&mut self.blocked, &mut self.retrying);
        for i in 0..self.retrying.len() {
            let idx = self.retrying[i];
            let Some(conn) = self.slots[idx as usize].conn.as_mut() else { continue };
            conn.listed_blocked = false;
            if !conn.blocked {
                continue;
            }
            let v = conn.resume(ctx, &mut self.scratch);
            self.settle(ctx, idx, v, false);
        }
        self.retrying.clear();
    }

    /// The guest went away: reset every connection (host peers see RST).
    /// Listening sockets stay.
    pub fn reset_all(&mut self, ctx: &mut FlowCtx) {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if let Some(mut conn) = slot.conn.take() {
                conn.forget_held(&mut self.held);
                let _ = stcp::set_linger_zero(conn.sock.as_fd());
                slot.gen = (slot.gen + 1) & 0xff_ffff;
                self.free.push(i as u32);
                ctx.budget.release();
            }
        }
        if self.live > 0 {
            log::debug!("TCP: reset {} connections", self.live);
        }
        self.live = 0;
        self.by_tuple.clear();
        self.timers.clear();
        self.dirty.clear();
        self.blocked.clear();
        self.stage.clear();
        self.stage_owner = None;
    }
}

/// Whether a guest destination can be a TCP peer.
fn is_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !(a.is_multicast() || a.is_broadcast() || a.is_unspecified()),
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified()),
    }
}

/// RST for a segment that belongs to no connection (RFC 9293 3.10.7.1).
fn reply_rst(ctx: &mut FlowCtx, guest: SocketAddr, peer: SocketAddr, seg: &Segment<'_>) {
    if seg.has(RST) {
        return;
    }
    let (seq, ack, flags) = if seg.has(ACK) {
        (seg.ack(), 0, RST)
    } else {
        (0, seg.seq().wrapping_add(seg.seq_len()), RST | ACK)
    };
    if !conn::emit_ctl(ctx, peer, guest, seq, ack, flags, 0, &Options::default()) {
        ctx.stats.drop(crate::stats::Drop::TxFull);
    }
}
