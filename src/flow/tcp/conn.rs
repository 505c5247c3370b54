//! One TCP connection: the guest's view of it kept in step with a host
//! kernel socket. See the module comment of [`super`] for the states.
//!
//! Everything here works on one [`Conn`] and the frame queue; what happens
//! to the table entry afterwards is said by the returned [`Verdict`].

use super::reorder::{Budget, Hold, Reorder};
use super::rtt::Rtt;
use super::{Verdict, FIN_TIMEOUT, GIVE_UP_STALLED, HANDSHAKE_TIMEOUT, IDLE_TIMEOUT, MAX_RETRIES, OUR_WINDOW_SCALE};
use crate::flow::FlowCtx;
use crate::sys::{self, epoll, tcp as stcp};
use crate::time::Instant;
use crate::tx;
use crate::wire::ipv4::PROTO_TCP;
use crate::wire::tcp::{self as wtcp, seq_le, seq_lt, seq_max, Header, Options, Segment, ACK, FIN, PSH, RST, SYN};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

/// Bytes of data sent but not acknowledged we allow without `SO_PEEK_OFF`
/// (each peek re-reads them into a scratch buffer of this size).
pub(super) const FALLBACK_MAX_IN_FLIGHT: u32 = 1 << 20;

/// Guest segments we let be in flight at most (our window never exceeds
/// this many MSS). Between the guest's kernel and us sits a queue that
/// drops what does not fit (a tap's 1000 frames by default, on the
/// namespace side or in front of a socket-mode pump) rather than pushing
/// back; a window beyond it lets a guest that outruns us lose segments
/// (when we still dropped what followed a loss, at MTU 1500 throughput
/// collapsed into timeouts; held now, each loss still costs the guest a
/// retransmission and a halved congestion window). It also bounds the
/// segments held after a gap ([`super::reorder::MAX_HELD_SEGMENTS`]). With
/// TSO frames (64 KiB each) or a 64 KiB MTU the cap is far above the socket
/// buffer and changes nothing.
pub(super) const MAX_SEGS_IN_FLIGHT: u32 = 512;

/// Guest segments smaller than this are staged and written to the socket
/// together at the end of the batch of frames (one `send` for a batch of
/// MTU-sized segments instead of one each); larger ones go out at once.
pub(super) const STAGE_DIRECT_MIN: usize = 16 << 10;
/// Most bytes staged before they are written out.
pub(super) const STAGE_MAX: usize = 256 << 10;

/// Where a connection is in its life (see the table in [`super`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// Outbound: the guest's SYN became a `connect()` still in progress.
    Connecting,
    /// Outbound: connected; our SYN-ACK is out, the guest's ACK not yet in.
    SynAckSent,
    /// Inbound: an accepted socket; our SYN is out, no SYN-ACK yet.
    SynSent,
    /// Handshake done: data both ways; the FIN flags say which directions
    /// are closed.
    Established,
}

/// A connection. Sequence numbers: `snd_*` are ours (host -> guest data,
/// in the guest's sequence space), `rcv_*` the guest's.
pub(super) struct Conn {
    pub sock: OwnedFd,
    /// The epoll token of `sock`.
    pub token: u64,
    pub state: State,
    /// The guest's end (its address and port).
    pub guest: SocketAddr,
    /// The far end as the guest sees it (what the guest connects to, or
    /// the mapped source of an inbound connection).
    pub peer: SocketAddr,
    pub created: Instant,
    pub last_activity: Instant,

    // Guest -> host.
    /// Next sequence number expected from the guest (what we acknowledge).
    rcv_nxt: u32,
    /// Right edge of the window we last advertised (never moved left).
    rcv_edge: u32,
    /// Shift of the windows we advertise (0 without window scaling).
    our_ws: u8,
    /// The guest's FIN was accepted and the socket shut for writing.
    guest_fin: bool,
    /// Guest data was refused by a full socket: on drain, advertise the
    /// window again with duplicate ACKs so the guest retransmits at once.
    starved: bool,
    /// EPOLLOUT was re-armed to learn when the send buffer drains.
    want_out: bool,
    /// The last `SO_MEMINFO` answer: (`rcv_nxt` then, room, size); see
    /// [`Conn::send_space`].
    space_cache: Option<(u32, u32, u32)>,
    /// Acknowledgment number and window field of our last pure ACK: a
    /// window update identical to it would count as a duplicate ACK.
    last_ack: (u32, u16),
    /// Data that arrived after a gap.
    reorder: Reorder,
    /// Both sides permitted SACK: our ACKs say what `reorder` holds.
    sack_ok: bool,

    // Host -> guest.
    /// Our initial sequence number.
    isn: u32,
    /// Oldest unacknowledged sequence number.
    snd_una: u32,
    /// Next sequence number to send.
    snd_nxt: u32,
    /// Highest sequence number sent so far (above `snd_nxt` after a rewind).
    snd_max: u32,
    /// Sequence number of the first byte still in the socket's receive
    /// queue: bytes below it were acknowledged and discarded.
    consumed: u32,
    /// The guest's receive window, in bytes (scaled).
    guest_wnd: u32,
    guest_ws: u8,
    /// Largest payload of a segment to the guest.
    mss: u32,
    /// The host peer finished sending (FIN seen at the end of the data).
    host_eof: bool,
    /// EPOLLRDHUP seen: the end of stream is in the queue (the fallback
    /// peek cannot tell it from "no more data yet" otherwise).
    host_rdhup: bool,
    /// Sequence number of our FIN (the end of the host's data), once known.
    fin_seq: Option<u32>,
    /// Our FIN is below `snd_nxt` (sent in this round).
    fin_sent: bool,
    dup_acks: u8,
    /// No new fast retransmit until `snd_una` passes this (RFC 6582's
    /// "recover", roughly).
    recover: Option<u32>,
    /// `SO_PEEK_OFF` works on this socket.
    peek_off: bool,
    /// The last peek found the receive queue empty past what we sent:
    /// no peek is worth a system call until the next EPOLLIN (edge-
    /// triggered: every arrival after that peek raises one) or a rewind.
    host_drained: bool,

    // Timers.
    /// Retransmission, persist, or SYN/SYN-ACK retransmission.
    rto_at: Option<Instant>,
    /// Consecutive expiries without progress (backoff exponent).
    retries: u8,
    /// When the first of those expired.
    stalled_since: Instant,
    /// Round trips to the guest, for the retransmission timeout.
    rtt: Rtt,
    /// The earliest instant this connection has in the timer heap.
    pub queued: Option<Instant>,

    // Work owed at the end of the batch (flush) or when the queue has room.
    /// In the table's dirty list.
    pub dirty: bool,
    /// Held back for want of room in the frame queue.
    pub blocked: bool,
    /// In the table's list of connections waiting for frame room.
    pub listed_blocked: bool,
    ack_owed: bool,
    dupacks_owed: u8,
    rewind: bool,
    /// The guest acknowledged data or opened its window since the last
    /// flush: consume, and send more.
    send_more: bool,
}

/// The largest segment payload for this IP version and MTU (RFC 9293
/// 3.7.1: MTU minus IP and TCP headers), bounded by what one frame holds.
pub(super) fn mss_for(mtu: u32, v6: bool) -> u32 {
    let ip = if v6 { 40 } else { 20 };
    let by_mtu = mtu.saturating_sub(ip + 20);
    let by_frame = (tx::MAX_FRAME - tx::l4_offset(v6) - wtcp::HEADER_LEN) as u32;
    let by_ip_len = 65535 - if v6 { 20 } else { 40 };
    by_mtu.min(by_frame).min(by_ip_len).max(64)
}

/// The MSS a peer that sends no option uses (RFC 9293 3.7.1, RFC 8200 5).
fn default_mss(v6: bool) -> u32 {
    if v6 {
        1220
    } else {
        536
    }
}

/// The part of `data` (starting at `seq`, at or before `next`, the first
/// byte not accepted yet) that is new; `None` if all of it, and its FIN
/// if any, was accepted already.
fn unaccepted(next: u32, seq: u32, data: &[u8], fin: bool) -> Option<&[u8]> {
    let old = next.wrapping_sub(seq) as usize;
    if old > data.len() || (old == data.len() && !fin) {
        return None;
    }
    Some(&data[old..])
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

impl Conn {
    /// A connection in its first state. `isn` is our initial sequence number.
    pub fn new(sock: OwnedFd, token: u64, state: State, guest: SocketAddr, peer: SocketAddr, isn: u32, now: Instant) -> Conn {
        let peek_off = stcp::set_peek_off(sock.as_fd(), 0).is_ok();
        // Best effort: without it, small writes of ours wait for ACKs.
        let _ = stcp::set_nodelay(sock.as_fd());
        Conn {
            sock,
            token,
            state,
            guest,
            peer,
            created: now,
            last_activity: now,
            rcv_nxt: 0,
            rcv_edge: 0,
            our_ws: 0,
            guest_fin: false,
            starved: false,
            want_out: false,
            space_cache: None,
            last_ack: (0, 0),
            reorder: Reorder::default(),
            sack_ok: false,
            isn,
            snd_una: isn,
            snd_nxt: isn,
            snd_max: isn,
            consumed: isn.wrapping_add(1),
            guest_wnd: 0,
            guest_ws: 0,
            mss: default_mss(guest.is_ipv6()),
            host_eof: false,
            host_rdhup: false,
            fin_seq: None,
            fin_sent: false,
            dup_acks: 0,
            recover: None,
            peek_off,
            host_drained: false,
            rto_at: None,
            retries: 0,
            stalled_since: now,
            rtt: Rtt::default(),
            queued: None,
            dirty: false,
            blocked: false,
            listed_blocked: false,
            ack_owed: false,
            dupacks_owed: 0,
            rewind: false,
            send_more: false,
        }
    }

    /// Use the skip-and-peek fallback even if `SO_PEEK_OFF` works (tests).
    pub fn disable_peek_off(&mut self) {
        if self.peek_off {
            let _ = stcp::set_peek_off(self.sock.as_fd(), -1);
            self.peek_off = false;
        }
    }

    fn v6(&self) -> bool {
        self.peer.is_ipv6()
    }

    /// Whether the flush at the end of the batch has something to do.
    pub fn needs_flush(&self) -> bool {
        self.ack_owed || self.dupacks_owed > 0 || self.rewind || self.send_more
    }

    fn fin_acked(&self) -> bool {
        self.fin_seq.is_some_and(|f| self.snd_una == f.wrapping_add(1))
    }

    /// Both directions closed and acknowledged: the socket can be closed
    /// gracefully (everything read was consumed, FIN queued by shutdown).
    pub fn finished(&self) -> bool {
        self.state == State::Established && self.guest_fin && self.fin_acked()
    }

    /// When the connection is given up for want of progress: the end of
    /// the handshake, or inactivity.
    fn give_up_at(&self) -> Instant {
        match self.state {
            State::Connecting | State::SynAckSent | State::SynSent => self.created + HANDSHAKE_TIMEOUT,
            State::Established if self.guest_fin && self.fin_sent => self.last_activity + FIN_TIMEOUT,
            State::Established => self.last_activity + IDLE_TIMEOUT,
        }
    }

    /// Returns what the connection holds out of order to the shared
    /// budget (before it is dropped).
    pub fn forget_held(&mut self, held: &mut Budget) {
        self.reorder.clear(held);
    }

    /// Before a graceful close: consume what is left of the acknowledged
    /// data, so that closing sends FIN, not RST (unread data means RST).
    pub fn prepare_close(&mut self) {
        let _ = self.consume_acked();
    }

    /// The next instant something is due for this connection.
    pub fn next_deadline(&self) -> Instant {
        let limit = self.give_up_at();
        match self.rto_at {
            Some(r) if r < limit => r,
            _ => limit,
        }
    }

    // ---- Frames to the guest -------------------------------------------

    /// Queues a segment without payload. `false` when the queue is full.
    fn send_flags(&self, ctx: &mut FlowCtx, seq: u32, flags: u8, window: u16, options: &Options) -> bool {
        emit_ctl(ctx, self.peer, self.guest, seq, self.rcv_nxt, flags, window, options)
    }

    /// The window field for data segments and FINs: the edge advertised
    /// last, so that it never moves left, without a system call.
    fn edge_window(&self) -> u16 {
        let w = if seq_lt(self.rcv_nxt, self.rcv_edge) { self.rcv_edge.wrapping_sub(self.rcv_nxt) } else { 0 };
        (w >> self.our_ws).min(65535) as u16
    }

    /// Room in the socket's send buffer for guest data, in bytes, and the
    /// buffer's size.
    ///
    /// The kernel charges queued data with its overhead (sk_buff and page
    /// fragments: about 1.5 % for large writes), so `n` bytes of payload
    /// use a little more than `n` of the room. Advertising 7/8 of the room
    /// keeps every byte inside our window acceptable while that overhead
    /// stays below 1/7 (see `advertise`), and lets each ACK's window be
    /// computed afresh without ever moving the right edge back.
    ///
    /// Both are capped at [`MAX_SEGS_IN_FLIGHT`] segments.
    ///
    /// The socket is asked (`SO_MEMINFO`) only when what we wrote since the
    /// last answer used up half of the room it gave: until then that answer
    /// minus the bytes written is a safe estimate (the kernel only frees
    /// room meanwhile), and it saved a system call per ACK.
    fn send_space(&mut self) -> (u32, u32) {
        if let Some((at, space, size)) = self.space_cache {
            let written = self.rcv_nxt.wrapping_sub(at);
            if written < space / 2 {
                return (space - written, size);
            }
        }
        self.send_space_now()
    }

    /// [`Self::send_space`], always asking the socket.
    fn send_space_now(&mut self) -> (u32, u32) {
        let r = match stcp::send_buffer(self.sock.as_fd()) {
            Ok((size, queued)) => {
                let cap = MAX_SEGS_IN_FLIGHT.saturating_mul(self.mss);
                let room = size.saturating_sub(queued).min(u32::MAX as usize) as u32;
                ((room - room / 8).min(cap), (size.min(u32::MAX as usize) as u32).min(cap))
            }
            Err(_) => (0, 0),
        };
        self.space_cache = Some((self.rcv_nxt, r.0, r.1));
        r
    }

    /// Computes the window to advertise now from the socket's free send
    /// buffer, records its right edge, and returns the window field.
    fn advertise(&mut self) -> (u16, u32) {
        let (space, size) = self.send_space();
        let mut field = (space >> self.our_ws).min(65535);
        let edge = self.rcv_nxt.wrapping_add(field << self.our_ws);
        if seq_lt(edge, self.rcv_edge) {
            // Keep the old edge (RFC 9293 3.8.6: do not shrink the window).
            field = (self.rcv_edge.wrapping_sub(self.rcv_nxt) >> self.our_ws).min(65535);
        } else {
            self.rcv_edge = edge;
        }
        (field as u16, size)
    }

    /// Re-arms EPOLLOUT (edge-triggered) so that a send buffer that has
    /// little room wakes us when it drains; the re-arm also makes the
    /// kernel note that we wait for room.
    fn arm_out(&mut self, ctx: &mut FlowCtx) {
        if !self.want_out {
            // Armed only if the kernel took it: otherwise the next ACK
            // tries again, rather than waiting for an event never asked.
            self.want_out = ctx.host.modify(self.sock.as_fd(), super::CONN_EVENTS, self.token).is_ok();
        }
    }

    /// Sends the pure ACKs owed (one, plus duplicates to trigger a fast
    /// retransmit). Returns `false` if the queue was full.
    pub fn send_owed_acks(&mut self, ctx: &mut FlowCtx) -> bool {
        if !self.ack_owed && self.dupacks_owed == 0 {
            return true;
        }
        // Duplicate ACKs repeat the last window exactly: one whose window
        // changed is a window update to the guest, not a duplicate (RFC
        // 5681 section 2), and it would wait for its retransmission timer
        // instead of retransmitting the missing segment at once.
        let (field, size) = if !self.ack_owed && self.last_ack.0 == self.rcv_nxt {
            (self.last_ack.1, self.send_space().1)
        } else {
            self.advertise()
        };
        // Only pure ACKs carry SACK blocks: data segments keep all of
        // the MSS for data.
        let opts = Options {
            sack: if self.sack_ok { self.reorder.sack_blocks() } else { Default::default() },
            ..Default::default()
        };
        let copies = u8::from(self.ack_owed) + self.dupacks_owed.min(3);
        for _ in 0..copies {
            if !self.send_flags(ctx, self.snd_nxt, ACK, field, &opts) {
                return false;
            }
            self.last_ack = (self.rcv_nxt, field);
            if self.ack_owed {
                self.ack_owed = false;
            } else {
                self.dupacks_owed -= 1;
            }
        }
        self.dupacks_owed = 0;
        let adv = u32::from(field) << self.our_ws;
        if adv < size / 4 || self.starved {
            self.arm_out(ctx);
        }
        true
    }

    /// The RST that ends this connection for the guest.
    pub fn send_rst(&self, ctx: &mut FlowCtx) {
        let (seq, flags) = match self.state {
            // Refusing its SYN: our sequence number means nothing yet.
            State::Connecting => (0, RST | ACK),
            _ => (self.snd_nxt, RST | ACK),
        };
        if !self.send_flags(ctx, seq, flags, 0, &Options::default()) {
            ctx.stats.drop(crate::stats::Drop::TxFull);
        }
    }

    fn syn_options(&self, ctx: &FlowCtx, scale: bool, sack: bool) -> Options {
        Options {
            mss: Some(mss_for(ctx.net.mtu, self.v6()) as u16),
            window_scale: scale.then_some(OUR_WINDOW_SCALE),
            sack_permitted: sack,
            ..Default::default()
        }
    }

    // ---- Handshake ------------------------------------------------------

    /// Outbound: records the guest's SYN (its ISN, MSS and window scale).
    pub fn accept_guest_syn(&mut self, ctx: &FlowCtx, seg: &Segment<'_>, opts: &Options) {
        self.rcv_nxt = seg.seq().wrapping_add(1);
        self.rcv_edge = self.rcv_nxt;
        self.space_cache = None;
        self.take_peer_options(ctx, opts);
        // The SYN's window is never scaled (RFC 7323 2.2).
        self.guest_wnd = u32::from(seg.window());
    }

    fn take_peer_options(&mut self, ctx: &FlowCtx, opts: &Options) {
        let ours = mss_for(ctx.net.mtu, self.v6());
        self.sack_ok = opts.sack_permitted;
        self.mss = opts.mss.map_or(default_mss(self.v6()), u32::from).clamp(64, ours);
        match opts.window_scale {
            Some(ws) => {
                self.guest_ws = ws;
                self.our_ws = OUR_WINDOW_SCALE;
            }
            None => {
                self.guest_ws = 0;
                self.our_ws = 0;
            }
        }
    }

    /// Outbound: `connect()` finished (EPOLLOUT/ERR/HUP in `Connecting`).
    /// Success sends our SYN-ACK; failure is a reset for the guest.
    pub fn connect_done(&mut self, ctx: &mut FlowCtx, events: u32) -> Verdict {
        let err = match sys::net::take_error(self.sock.as_fd()) {
            Ok(e) => e,
            Err(e) => Some(e),
        };
        if let Some(e) = err {
            log::debug!("TCP {} -> {}: connect failed: {e}", self.guest, self.peer);
            return Verdict::Abort;
        }
        if events & (epoll::OUT | epoll::HUP) == 0 {
            return Verdict::Keep;
        }
        log::debug!("TCP {} -> {}: connected", self.guest, self.peer);
        self.state = State::SynAckSent;
        self.snd_nxt = self.isn.wrapping_add(1);
        self.snd_max = self.snd_nxt;
        self.retries = 0;
        self.send_syn_ack(ctx);
        self.rto_at = Some(ctx.now + self.rtt.rto(0));
        Verdict::Keep
    }

    fn send_syn_ack(&mut self, ctx: &mut FlowCtx) {
        let opts = self.syn_options(ctx, self.our_ws != 0, self.sack_ok);
        let (space, _) = self.send_space();
        let window = space.min(65535) as u16;
        self.rcv_edge = seq_max(self.rcv_edge, self.rcv_nxt.wrapping_add(u32::from(window)));
        if !self.send_flags(ctx, self.isn, SYN | ACK, window, &opts) {
            ctx.stats.drop(crate::stats::Drop::TxFull);
        }
    }

    /// Inbound: sends our SYN to the guest (first time or again).
    pub fn send_syn(&mut self, ctx: &mut FlowCtx) {
        // SACK offered: it is used if the guest's SYN-ACK permits it too.
        let opts = self.syn_options(ctx, true, true);
        let (space, _) = self.send_space();
        let window = space.min(65535) as u16;
        self.snd_nxt = self.isn.wrapping_add(1);
        self.snd_max = self.snd_nxt;
        if !emit_ctl(ctx, self.peer, self.guest, self.isn, 0, SYN, window, &opts) {
            ctx.stats.drop(crate::stats::Drop::TxFull);
        }
        self.rto_at = Some(ctx.now + self.rtt.rto(self.retries));
    }

    fn establish(&mut self, now: Instant) {
        self.state = State::Established;
        self.snd_una = self.isn.wrapping_add(1);
        self.snd_nxt = self.snd_una;
        self.snd_max = self.snd_una;
        self.consumed = self.snd_una;
        self.retries = 0;
        self.rto_at = None;
        self.last_activity = now;
        // Host data may be waiting already (servers that speak first), and
        // its edge-triggered event has passed.
        self.send_more = true;
    }

    // ---- Segments from the guest ---------------------------------------

    /// A segment from the guest for this connection.
    /// `stage`: the table's staging buffer, holding this connection's
    /// accepted but unwritten data (or nothing).
    pub fn on_segment(&mut self, ctx: &mut FlowCtx, seg: &Segment<'_>, stage: &mut Vec<u8>, held: &mut Budget) -> Verdict {
        if seg.has(RST) {
            return self.on_rst(seg);
        }
        match self.state {
            State::Connecting => Verdict::Keep, // a repeated SYN: the answer comes with connect()
            State::SynAckSent => {
                if seg.has(SYN) && !seg.has(ACK) {
                    if seg.seq().wrapping_add(1) == self.rcv_nxt {
                        self.send_syn_ack(ctx); // ours was lost
                    }
                    return Verdict::Keep;
                }
                if !seg.has(ACK) || seg.ack() != self.isn.wrapping_add(1) {
                    return Verdict::Keep;
                }
                log::debug!("TCP {} -> {}: established", self.guest, self.peer);
                self.establish(ctx.now);
                self.guest_wnd = u32::from(seg.window()) << self.guest_ws;
                self.on_data(ctx, seg, stage, held)
            }
            State::SynSent => {
                if !(seg.has(SYN) && seg.has(ACK)) || seg.ack() != self.isn.wrapping_add(1) {
                    return Verdict::Keep;
                }
                let Ok(opts) = seg.options() else {
                    ctx.stats.drop(crate::stats::Drop::Malformed);
                    return Verdict::Keep;
                };
                log::debug!("TCP {} <- {}: established", self.guest, self.peer);
                self.rcv_nxt = seg.seq().wrapping_add(1);
                self.rcv_edge = self.rcv_nxt;
                self.space_cache = None;
                self.take_peer_options(ctx, &opts);
                self.establish(ctx.now);
                self.guest_wnd = u32::from(seg.window());
                // Our first window (segments before the ACK carry it too).
                self.advertise();
                self.ack_owed = true;
                Verdict::Keep
            }
            State::Established => {
                if seg.has(SYN) {
                    // A repeated SYN or SYN-ACK (our ACK was lost), or a
                    // new connection on a tuple we still hold: answer with
                    // an ACK; a guest that forgot us answers with RST.
                    self.ack_owed = true;
                    return Verdict::Keep;
                }
                self.last_activity = ctx.now;
                if seg.has(ACK) {
                    self.on_ack(ctx, seg);
                }
                self.on_data(ctx, seg, stage, held)
            }
        }
    }

    /// RST from the guest: acceptable in SYN-SENT if it acknowledges our
    /// SYN; otherwise if in the window (RFC 9293 3.10.7.4, without the
    /// challenge ACK: the guest can only hurt its own connections).
    fn on_rst(&mut self, seg: &Segment<'_>) -> Verdict {
        let ok = match self.state {
            State::SynSent => !seg.has(ACK) || seg.ack() == self.isn.wrapping_add(1),
            State::Connecting => false,
            State::SynAckSent | State::Established => {
                let s = seg.seq();
                let edge = seq_max(self.rcv_edge, self.rcv_nxt.wrapping_add(1));
                seq_le(self.rcv_nxt, s) && seq_lt(s, edge)
            }
        };
        if ok {
            log::debug!("TCP {} -> {}: reset by the guest", self.guest, self.peer);
            Verdict::Drop
        } else {
            Verdict::Keep
        }
    }

    /// The acknowledgment and window of a guest segment.
    fn on_ack(&mut self, ctx: &mut FlowCtx, seg: &Segment<'_>) {
        let ack = seg.ack();
        if seq_lt(self.snd_max, ack) {
            // Acknowledges what we never sent (RFC 9293 3.10.7.4): ACK back.
            self.ack_owed = true;
            return;
        }
        let wnd = u32::from(seg.window()) << self.guest_ws;
        if seq_lt(self.snd_una, ack) {
            self.snd_una = ack;
            self.rtt.acked(ack, ctx.now);
            if seq_lt(self.snd_nxt, ack) {
                // After a rewind, the guest had more than we resent so far.
                self.snd_nxt = ack;
                if let Some(f) = self.fin_seq {
                    self.fin_sent = seq_lt(f, ack);
                }
            }
            self.dup_acks = 0;
            self.retries = 0;
            self.rto_at = (self.snd_nxt != self.snd_una).then(|| ctx.now + self.rtt.rto(0));
            self.send_more = true;
        } else if ack == self.snd_una
            && self.snd_nxt != self.snd_una
            && ((seg.payload().is_empty() && !seg.has(FIN) && wnd == self.guest_wnd) || self.reports_loss(seg))
        {
            self.dup_acks = self.dup_acks.saturating_add(1);
            let recovered = self.recover.map_or(true, |r| seq_le(r, self.snd_una));
            if self.dup_acks == 3 && recovered {
                log::trace!("TCP {} <- {}: fast retransmit from {}", self.guest, self.peer, ack);
                self.rewind = true;
                self.send_more = true;
                self.recover = Some(self.snd_max);
            }
        }
        if wnd != self.guest_wnd {
            if wnd > self.guest_wnd {
                self.send_more = true;
            }
            self.guest_wnd = wnd;
        }
    }

    /// Whether a guest segment carries SACK blocks above `snd_una`: the
    /// guest holds data after a gap, whatever else the segment carries
    /// (RFC 6675's duplicate ACK). A guest that sends data too carries it
    /// in its duplicate ACKs, and a window that changed with its data
    /// makes them window updates by RFC 5681's rules: without SACK we would
    /// wait for the retransmission timer.
    fn reports_loss(&self, seg: &Segment<'_>) -> bool {
        self.sack_ok
            && seg.header_len() > wtcp::HEADER_LEN
            && seg.options().is_ok_and(|o| o.sack.as_slice().iter().any(|&(_, end)| seq_lt(self.snd_una, end)))
    }

    /// Payload and FIN of a guest segment: written to the socket in
    /// sequence; after a gap, held until the gap is filled (see
    /// [`super::reorder`]). The ACK (owed until the flush) covers what the
    /// kernel took.
    fn on_data(&mut self, ctx: &mut FlowCtx, seg: &Segment<'_>, stage: &mut Vec<u8>, held: &mut Budget) -> Verdict {
        let mut data = seg.payload();
        let fin = seg.has(FIN);
        if data.is_empty() && !fin {
            if seq_lt(seg.seq(), self.rcv_nxt) {
                // A keepalive or zero-window probe: answer with our window.
                self.ack_owed = true;
            }
            return Verdict::Keep;
        }
        if self.guest_fin {
            // Anything after its FIN is a retransmission: re-acknowledge.
            self.ack_owed = true;
            return Verdict::Keep;
        }
        let expected = self.accepted_end(stage);
        let seq = seg.seq();
        if seq_lt(seq, expected) {
            let Some(new) = unaccepted(expected, seq, data, fin) else {
                self.ack_owed = true; // wholly old: tell the guest where we are
                return Verdict::Keep;
            };
            data = new;
        } else if seq != expected {
            // After a gap: held if there is room, and a duplicate ACK per
            // segment (with SACK blocks, if permitted) lets the guest
            // retransmit the gap fast. The ACK after the gap is filled asks
            // the socket afresh for its room, so the guest recovers with
            // the whole window. Beyond the hold's bounds it is a drop for a
            // limit (the guest sends it again); a segment outside the
            // window or held already is ordinary TCP.
            if self.reorder.insert(held, expected, self.rcv_edge, seq, data, fin) == Hold::OverLimit {
                ctx.stats.drop(crate::stats::Drop::Limit);
            }
            self.dupacks_owed = self.dupacks_owed.saturating_add(1);
            self.space_cache = None;
            return Verdict::Keep;
        }
        let v = self.accept_in_order(data, fin, stage);
        if v != Verdict::Keep || self.reorder.is_empty() {
            return v;
        }
        self.accept_held(stage, held)
    }

    /// The sequence number after the guest data accepted so far: staged
    /// bytes are accepted but not yet written to the socket.
    fn accepted_end(&self, stage: &[u8]) -> u32 {
        self.rcv_nxt.wrapping_add(stage.len() as u32)
    }

    /// Held segments that the data accepted now reaches, in order, until
    /// a gap; all are forgotten if the socket refuses some (the guest sends
    /// them again) or the stream ended.
    fn accept_held(&mut self, stage: &mut Vec<u8>, held: &mut Budget) -> Verdict {
        loop {
            if self.guest_fin {
                self.reorder.clear(held);
                return Verdict::Keep;
            }
            let next = self.accepted_end(stage);
            let Some(h) = self.reorder.pop_ready(held, next) else { return Verdict::Keep };
            let Some(new) = unaccepted(next, h.seq, &h.data, h.fin) else {
                continue; // wholly accepted already
            };
            let end = h.seq.wrapping_add(h.data.len() as u32 + u32::from(h.fin));
            let v = self.accept_in_order(new, h.fin, stage);
            if v != Verdict::Keep {
                return v;
            }
            if self.accepted_end(stage) != end {
                self.reorder.clear(held);
                return Verdict::Keep;
            }
        }
    }

    /// Data (and FIN) that starts right where the accepted data ends:
    /// written to the socket, or staged. What the socket refuses is not
    /// acknowledged (the guest sends it again).
    fn accept_in_order(&mut self, data: &[u8], fin: bool, stage: &mut Vec<u8>) -> Verdict {
        if !data.is_empty() {
            self.ack_owed = true;
            if data.len() >= STAGE_DIRECT_MIN {
                // Large segments (TSO, large MTU): one send each is cheap,
                // a copy is not. What is staged goes first.
                match self.send_staged(stage) {
                    Some(true) => {}
                    Some(false) => return Verdict::Keep, // the guest resends
                    None => return Verdict::Abort,
                }
                let n = match sys::send(self.sock.as_fd(), data, 0) {
                    Ok(n) => n,
                    Err(e) if would_block(&e) => 0,
                    Err(e) => {
                        log::debug!("TCP {} -> {}: send: {e}", self.guest, self.peer);
                        return Verdict::Abort;
                    }
                };
                self.rcv_nxt = self.rcv_nxt.wrapping_add(n as u32);
                if n < data.len() {
                    // Only if our window estimate was wrong: the guest resends.
                    log::debug!("TCP {} -> {}: socket took {n} of {} bytes", self.guest, self.peer, data.len());
                    self.starved = true;
                    self.space_cache = None;
                    return Verdict::Keep;
                }
            } else {
                if stage.len() + data.len() > STAGE_MAX {
                    match self.send_staged(stage) {
                        Some(true) => {}
                        Some(false) => return Verdict::Keep, // the guest resends
                        None => return Verdict::Abort,
                    }
                }
                if stage.capacity() < STAGE_MAX {
                    // At once to its bound (address space until used):
                    // growing in steps would reallocate mid-transfer.
                    stage.reserve_exact(STAGE_MAX - stage.len());
                }
                stage.extend_from_slice(data);
            }
        }
        if fin {
            match self.send_staged(stage) {
                // All written: the FIN can follow.
                Some(true) => {}
                // The guest resends the rest, FIN included.
                Some(false) => return Verdict::Keep,
                None => return Verdict::Abort,
            }
            self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
            self.guest_fin = true;
            self.ack_owed = true;
            log::debug!("TCP {} -> {}: FIN from the guest", self.guest, self.peer);
            if let Err(e) = stcp::shutdown_write(self.sock.as_fd()) {
                log::debug!("TCP {} -> {}: shutdown: {e}", self.guest, self.peer);
                return Verdict::Abort;
            }
        }
        Verdict::Keep
    }

    /// Writes the guest data staged during a batch of frames to the socket
    /// in one `send`, and empties the stage. What the socket does not take
    /// is forgotten: it stays unacknowledged and the guest sends it again.
    /// `Some(true)`: all written; `Some(false)`: not all; `None`: the socket
    /// failed (abort).
    pub fn send_staged(&mut self, stage: &mut Vec<u8>) -> Option<bool> {
        if stage.is_empty() {
            return Some(true);
        }
        let n = match sys::send(self.sock.as_fd(), stage, 0) {
            Ok(n) => n,
            Err(e) if would_block(&e) => 0,
            Err(e) => {
                log::debug!("TCP {} -> {}: send: {e}", self.guest, self.peer);
                stage.clear();
                return None;
            }
        };
        self.rcv_nxt = self.rcv_nxt.wrapping_add(n as u32);
        self.ack_owed = true;
        let all = n == stage.len();
        if !all {
            log::debug!("TCP {} -> {}: socket took {n} of {} staged bytes", self.guest, self.peer, stage.len());
            self.starved = true;
            self.space_cache = None;
        }
        stage.clear();
        Some(all)
    }

    // ---- Host data to the guest ----------------------------------------

    /// Discards from the socket what the guest acknowledged.
    fn consume_acked(&mut self) -> io::Result<()> {
        let acked_end = match self.fin_seq {
            Some(f) if seq_lt(f, self.snd_una) => f,
            _ => self.snd_una,
        };
        let n = acked_end.wrapping_sub(self.consumed);
        if n == 0 || (n as i32) < 0 {
            return Ok(());
        }
        let got = stcp::discard(self.sock.as_fd(), n as usize)?;
        self.consumed = self.consumed.wrapping_add(got as u32);
        if got as u32 != n {
            log::warn!("TCP {} <- {}: discarded {got} of {n} acknowledged bytes", self.guest, self.peer);
        }
        Ok(())
    }

    /// Go back to the oldest unacknowledged byte (timeout or fast
    /// retransmit): the kernel's queue still holds it.
    fn do_rewind(&mut self) -> io::Result<()> {
        self.consume_acked()?;
        self.rtt.retransmitted();
        self.snd_nxt = self.snd_una;
        self.host_drained = false;
        if !self.fin_acked() {
            self.fin_sent = false;
        }
        if self.peek_off {
            stcp::set_peek_off(self.sock.as_fd(), 0)?;
        }
        Ok(())
    }

    /// Peeks host data into segments for the guest while its window, our
    /// frame queue and the socket allow; then the FIN once the data ended.
    pub fn send_host_data(&mut self, ctx: &mut FlowCtx, scratch: &mut Vec<u8>) -> Verdict {
        if self.state != State::Established {
            return Verdict::Keep;
        }
        if let Err(e) = self.consume_acked() {
            log::debug!("TCP {} <- {}: discard: {e}", self.guest, self.peer);
            return Verdict::Abort;
        }
        let v6 = self.v6();
        let off = tx::l4_offset(v6);
        let hl = wtcp::HEADER_LEN;
        // With offloads, one frame carries as many segments as fit and the
        // guest's kernel takes it as such (GSO); the checksum is left undone.
        let offload = ctx.tx.offload();
        let seg_max = if offload { mss_for(u32::MAX, v6) } else { self.mss };
        loop {
            if self.fin_sent {
                return Verdict::Keep;
            }
            if self.fin_seq == Some(self.snd_nxt) {
                return self.send_fin(ctx);
            }
            let wnd_end = self.snd_una.wrapping_add(self.guest_wnd);
            let room = if seq_lt(self.snd_nxt, wnd_end) { wnd_end.wrapping_sub(self.snd_nxt) } else { 0 };
            if room == 0 {
                if self.guest_wnd == 0 && self.rto_at.is_none() {
                    self.rto_at = Some(ctx.now + self.rtt.rto(self.retries)); // persist
                }
                return Verdict::Keep;
            }
            // (After EPOLLRDHUP the end of stream may wait behind the data
            // and raises no further edge: peek on until it shows.)
            if self.host_drained && !self.host_rdhup {
                return Verdict::Keep;
            }
            // Without offloads each frame carries one segment: fill several
            // with one peek (a system call per 1,460 bytes was what MTU
            // 1500 cost in socket mode).
            if !offload && self.peek_off && room > self.mss {
                match self.peek_segments(ctx, room) {
                    Some(v) => return v,
                    None => continue,
                }
            }
            let len = room.min(seg_max) as usize;
            let skip = self.snd_nxt.wrapping_sub(self.consumed);
            if !self.peek_off && skip >= FALLBACK_MAX_IN_FLIGHT {
                return Verdict::Keep;
            }
            let window = self.edge_window();
            let Some(buf) = ctx.tx.reserve(off + hl + len) else {
                self.blocked = true;
                return Verdict::Keep;
            };
            let payload = &mut buf[off + hl..off + hl + len];
            let got = if self.peek_off {
                stcp::peek(self.sock.as_fd(), payload)
            } else {
                scratch.resize(skip as usize, 0);
                match stcp::peek_after(self.sock.as_fd(), scratch, payload) {
                    // Nothing past what was sent: no data yet, or the end.
                    Ok((_, 0)) if !self.host_rdhup => Err(io::ErrorKind::WouldBlock.into()),
                    Ok((s, n)) if (s as u32) < skip => {
                        log::warn!("TCP {} <- {}: queue shorter than data in flight", self.guest, self.peer);
                        let _ = n;
                        Err(io::ErrorKind::InvalidData.into())
                    }
                    Ok((_, n)) => Ok(n),
                    Err(e) => Err(e),
                }
            };
            match got {
                Ok(0) => {
                    ctx.tx.commit(0);
                    self.host_data_ended();
                }
                Ok(n) => {
                    let flags = if n < len { ACK | PSH } else { ACK };
                    let h = Header {
                        src_port: self.peer.port(),
                        dst_port: self.guest.port(),
                        seq: self.snd_nxt,
                        ack: self.rcv_nxt,
                        flags,
                        window,
                    };
                    h.emit(&mut buf[off..], &Options::default());
                    let (src, dst) = (self.peer.ip(), self.guest.ip());
                    let flen = tx::finish_ip_with(buf, ctx.net.l2(), src, dst, PROTO_TCP, hl + n, tx::L4Checksum::offloaded_if(offload));
                    let gso_size = if n as u32 > self.mss { self.mss as u16 } else { 0 };
                    ctx.tx.commit_with(flen, tx::Offload { csum_partial: offload, gso_size });
                    self.data_queued(ctx.now, n);
                    if n < len {
                        // The queue is drained for now; the next data
                        // arrival is a new edge.
                        self.host_drained = true;
                        return Verdict::Keep;
                    }
                }
                Err(e) => {
                    ctx.tx.commit(0);
                    return self.peek_failed(&e);
                }
            }
        }
    }

    /// Part of [`Self::send_host_data`] for frames without offloads: host
    /// data peeked straight into up to [`stcp::PEEK_PIECES_MAX`] MSS-sized
    /// frames of the queue with one system call, within `room` bytes of
    /// the guest's window. `None`: all that was asked for came (or the end
    /// of stream), go on; `Some`: stop with this verdict.
    fn peek_segments(&mut self, ctx: &mut FlowCtx, room: u32) -> Option<Verdict> {
        let v6 = self.v6();
        let (off, hl, mss) = (tx::l4_offset(v6), wtcp::HEADER_LEN, self.mss as usize);
        let frame_len = off + hl + mss;
        let stride = tx::PREFIX + frame_len;
        let wanted = (room as usize).div_ceil(mss).min(stcp::PEEK_PIECES_MAX);
        let window = self.edge_window();
        let (l2, src, dst) = (ctx.net.l2(), self.peer.ip(), self.guest.ip());
        let Some((run, n)) = ctx.tx.reserve_run(frame_len, wanted) else {
            self.blocked = true;
            return Some(Verdict::Keep);
        };
        let mut lens = [0usize; stcp::PEEK_PIECES_MAX];
        let mut left = room as usize;
        for len in &mut lens[..n] {
            *len = left.min(mss);
            left -= *len;
        }
        let asked = room as usize - left;
        let got = match stcp::peek_into(self.sock.as_fd(), run, tx::PREFIX + off + hl, stride, &lens[..n]) {
            Ok(0) => {
                ctx.tx.commit_run(0, 0);
                self.host_data_ended();
                return None;
            }
            Ok(got) => got,
            Err(e) => {
                ctx.tx.commit_run(0, 0);
                return Some(self.peek_failed(&e));
            }
        };
        // Every frame but the last is a full segment: the queue takes them
        // as a run of `frame_len` frames and one shorter one.
        let (mut full, mut last_len, mut done) = (0, 0, 0);
        for (slot, &piece) in run.chunks_mut(stride).zip(&lens[..n]) {
            let len = piece.min(got - done);
            if len == 0 {
                break;
            }
            let flags = if done + len == got && got < asked { ACK | PSH } else { ACK };
            let seq = self.snd_nxt.wrapping_add(done as u32);
            let h = Header { src_port: self.peer.port(), dst_port: self.guest.port(), seq, ack: self.rcv_nxt, flags, window };
            let frame = &mut slot[tx::PREFIX..];
            h.emit(&mut frame[off..], &Options::default());
            let flen = tx::finish_ip(frame, l2, src, dst, PROTO_TCP, hl + len);
            if flen == frame_len {
                full += 1;
            } else {
                last_len = flen;
            }
            done += len;
        }
        ctx.tx.commit_run(full, last_len);
        self.data_queued(ctx.now, got);
        if got < asked {
            // Drained for now: the next arrival is a new edge.
            self.host_drained = true;
            return Some(Verdict::Keep);
        }
        None
    }

    /// A peek found the host's end of stream: our FIN follows what was sent.
    fn host_data_ended(&mut self) {
        log::debug!("TCP {} <- {}: end of host data", self.guest, self.peer);
        self.host_eof = true;
        self.fin_seq = Some(self.snd_nxt);
    }

    /// A peek failed: nothing there for now (the next arrival is a new
    /// edge), or the socket is broken.
    fn peek_failed(&mut self, e: &io::Error) -> Verdict {
        if would_block(e) {
            self.host_drained = true;
            return Verdict::Keep;
        }
        log::debug!("TCP {} <- {}: peek: {e}", self.guest, self.peer);
        Verdict::Abort
    }

    /// `n` bytes of host data went into frames for the guest: they carry
    /// our ACK, and the retransmission timer runs.
    fn data_queued(&mut self, now: Instant, n: usize) {
        self.ack_owed = false;
        let new_data = self.snd_nxt == self.snd_max;
        self.snd_nxt = self.snd_nxt.wrapping_add(n as u32);
        self.snd_max = seq_max(self.snd_max, self.snd_nxt);
        if new_data {
            self.rtt.sent(self.snd_nxt, now);
        }
        self.last_activity = now;
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.rtt.rto(self.retries));
        }
    }

    fn send_fin(&mut self, ctx: &mut FlowCtx) -> Verdict {
        let window = self.edge_window();
        if !self.send_flags(ctx, self.snd_nxt, FIN | ACK, window, &Options::default()) {
            self.blocked = true;
            return Verdict::Keep;
        }
        self.ack_owed = false;
        self.fin_sent = true;
        self.snd_nxt = self.snd_nxt.wrapping_add(1);
        self.snd_max = seq_max(self.snd_max, self.snd_nxt);
        if self.rto_at.is_none() {
            self.rto_at = Some(ctx.now + self.rtt.rto(self.retries));
        }
        Verdict::Keep
    }

    // ---- Batch end, events, timers --------------------------------------

    /// End of a batch of guest frames: consume what was acknowledged,
    /// retransmit if asked, send more host data, then the ACK owed.
    pub fn flush(&mut self, ctx: &mut FlowCtx, scratch: &mut Vec<u8>) -> Verdict {
        if self.state == State::Established {
            if self.rewind {
                self.rewind = false;
                if let Err(e) = self.do_rewind() {
                    log::debug!("TCP {} <- {}: rewind: {e}", self.guest, self.peer);
                    return Verdict::Abort;
                }
            }
            if self.send_more {
                self.send_more = false;
                let v = self.send_host_data(ctx, scratch);
                if v != Verdict::Keep {
                    return v;
                }
            }
        }
        if !self.send_owed_acks(ctx) {
            self.blocked = true;
        }
        if self.finished() {
            return Verdict::Close;
        }
        Verdict::Keep
    }

    /// An epoll event on the socket.
    pub fn on_event(&mut self, ctx: &mut FlowCtx, events: u32, scratch: &mut Vec<u8>) -> Verdict {
        match self.state {
            State::Connecting => return self.connect_done(ctx, events),
            State::SynSent | State::SynAckSent => {
                if events & epoll::ERR != 0 {
                    return Verdict::Abort;
                }
                if events & epoll::RDHUP != 0 {
                    self.host_rdhup = true;
                }
                return Verdict::Keep;
            }
            State::Established => {}
        }
        if events & epoll::ERR != 0 {
            let e = sys::net::take_error(self.sock.as_fd());
            log::debug!("TCP {} <- {}: socket error {e:?}", self.guest, self.peer);
            return Verdict::Abort;
        }
        if events & epoll::RDHUP != 0 {
            self.host_rdhup = true;
        }
        if events & (epoll::IN | epoll::RDHUP | epoll::HUP) != 0 {
            self.host_drained = false;
            let v = self.send_host_data(ctx, scratch);
            if v != Verdict::Keep {
                return v;
            }
        }
        if events & epoll::OUT != 0 && self.want_out {
            self.window_update(ctx);
        }
        if self.finished() {
            return Verdict::Close;
        }
        Verdict::Keep
    }

    /// The send buffer drained: tell the guest about the room (and make it
    /// resend at once what a full socket refused).
    fn window_update(&mut self, ctx: &mut FlowCtx) {
        self.want_out = false;
        let before = if seq_lt(self.rcv_nxt, self.rcv_edge) { self.rcv_edge.wrapping_sub(self.rcv_nxt) } else { 0 };
        let (space, _) = self.send_space_now();
        // The field as it would be sent: no update unless it changes (an
        // unchanged ACK is a duplicate ACK to the guest: three of those
        // and it retransmits for nothing).
        let field = (space.max(before) >> self.our_ws).min(65535) as u16;
        if !self.starved && (space <= before || self.last_ack == (self.rcv_nxt, field)) {
            return;
        }
        self.ack_owed = true;
        if self.starved {
            self.dupacks_owed = 3;
            self.starved = false;
        }
        if !self.send_owed_acks(ctx) {
            self.blocked = true;
        }
    }

    /// The frame queue has room again: send what was held back.
    pub fn resume(&mut self, ctx: &mut FlowCtx, scratch: &mut Vec<u8>) -> Verdict {
        self.blocked = false;
        if !self.send_owed_acks(ctx) {
            self.blocked = true;
            return Verdict::Keep;
        }
        let v = self.send_host_data(ctx, scratch);
        if v == Verdict::Keep && self.finished() {
            return Verdict::Close;
        }
        v
    }

    /// Timers due at `ctx.now` (spurious calls are harmless).
    pub fn on_timer(&mut self, ctx: &mut FlowCtx, scratch: &mut Vec<u8>) -> Verdict {
        let now = ctx.now;
        if now >= self.give_up_at() {
            log::debug!("TCP {} - {}: timed out in {:?}", self.guest, self.peer, self.state);
            return Verdict::Abort;
        }
        let Some(at) = self.rto_at else { return Verdict::Keep };
        if at > now {
            return Verdict::Keep;
        }
        self.rto_at = None;
        match self.state {
            State::Connecting => Verdict::Keep,
            State::SynAckSent => {
                self.retries = self.retries.saturating_add(1);
                self.send_syn_ack(ctx);
                self.rto_at = Some(now + self.rtt.rto(self.retries));
                Verdict::Keep
            }
            State::SynSent => {
                self.retries = self.retries.saturating_add(1);
                self.send_syn(ctx);
                Verdict::Keep
            }
            State::Established => self.retransmit_timeout(ctx, scratch),
        }
    }

    fn retransmit_timeout(&mut self, ctx: &mut FlowCtx, scratch: &mut Vec<u8>) -> Verdict {
        let now = ctx.now;
        let outstanding = self.snd_nxt != self.snd_una;
        if outstanding {
            if self.retries == 0 {
                self.stalled_since = now;
            }
            self.retries = self.retries.saturating_add(1);
            // Both a number of tries and a time: with a short measured
            // timeout, seven doublings alone would give up on a guest
            // paused for under a minute.
            if self.retries > MAX_RETRIES && now.since(self.stalled_since) >= GIVE_UP_STALLED {
                log::debug!("TCP {} <- {}: no ACK after {} retransmissions", self.guest, self.peer, self.retries - 1);
                return Verdict::Abort;
            }
            log::trace!("TCP {} <- {}: retransmission timeout, from {}", self.guest, self.peer, self.snd_una);
            if let Err(e) = self.do_rewind() {
                log::debug!("TCP {} <- {}: rewind: {e}", self.guest, self.peer);
                return Verdict::Abort;
            }
            let v = self.send_host_data(ctx, scratch);
            if v != Verdict::Keep {
                return v;
            }
            self.rto_at = Some(now + self.rtt.rto(self.retries));
        } else if self.guest_wnd == 0 {
            // Zero-window probe: an old sequence number makes the guest
            // answer with its current window.
            self.retries = self.retries.saturating_add(1).min(MAX_RETRIES);
            let window = self.edge_window();
            if !self.send_flags(ctx, self.snd_nxt.wrapping_sub(1), ACK, window, &Options::default()) {
                self.blocked = true;
            }
            self.rto_at = Some(now + self.rtt.rto(self.retries));
        }
        Verdict::Keep
    }
}

/// Queues a segment without payload from `from` (the guest's peer) to
/// `to` (the guest). `false` when the frame queue is full.
#[allow(clippy::too_many_arguments)]
pub(super) fn emit_ctl(
    ctx: &mut FlowCtx,
    from: SocketAddr,
    to: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    options: &Options,
) -> bool {
    let off = tx::l4_offset(from.is_ipv6());
    let hl = Header::buffer_len(options);
    let partial = ctx.tx.offload();
    let Some(buf) = ctx.tx.reserve(off + hl) else {
        return false;
    };
    let h = Header { src_port: from.port(), dst_port: to.port(), seq, ack, flags, window };
    h.emit(&mut buf[off..], options);
    let n = tx::finish_ip_with(buf, ctx.net.l2(), from.ip(), to.ip(), PROTO_TCP, hl, tx::L4Checksum::offloaded_if(partial));
    ctx.tx.commit_with(n, tx::Offload { csum_partial: partial, gso_size: 0 });
    true
}
