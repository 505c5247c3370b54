//! A hand-driven TCP flow table for tests: a FlowCtx built from parts, a
//! simulated guest that writes segments and reads frames, real host
//! sockets underneath. Included by the tcp_* test files with `#[path]`.

#![allow(dead_code)]

use passt::flow::tcp::Tcp;
use passt::flow::{FlowBudget, FlowCtx};
use passt::guestnet::{GuestNet, Net4, Net6};
use passt::stats::Stats;
use passt::sys::epoll::{self, Epoll};
use passt::time::Instant;
use passt::token::Token;
use passt::tx::TxQueue;
use passt::wire::tcp::{Header, Options, Repr, Segment, ACK};
use passt::wire::{checksum, ethernet, ipv4, ipv6};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub const GW4: &str = "192.0.2.1";
pub const GUEST4: &str = "192.0.2.2";
pub const GW6: &str = "2001:db8::1";
pub const GUEST6: &str = "2001:db8::2";
pub const MTU: u32 = 65520;

pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn guest_net() -> GuestNet {
    GuestNet {
        our_mac: [0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55],
        guest_mac: Some([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
        mtu: MTU,
        v4: Some(Net4 {
            assigned: GUEST4.parse().unwrap(),
            prefix_len: 24,
            gateway: GW4.parse().unwrap(),
            observed: None,
            map_host_loopback: Some(GW4.parse().unwrap()),
            map_guest_addr: None,
            host_addr: None,
            dns: vec![],
            dns_forward: None,
            dns_host: None,
        }),
        v6: Some(Net6 {
            assigned: GUEST6.parse().unwrap(),
            prefix_len: 64,
            gateway: Some(GW6.parse().unwrap()),
            our_ll: "fe80::1".parse().unwrap(),
            observed: None,
            observed_ll: None,
            map_host_loopback: Some(GW6.parse().unwrap()),
            map_guest_addr: None,
            host_addr: None,
            dns: vec![],
            dns_forward: None,
            dns_host: None,
        }),
        search: vec![],
    }
}

/// A TCP segment the flow table sent to the guest, parsed and checked.
#[derive(Clone, Debug)]
pub struct Out {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub opts: Options,
    pub payload: Vec<u8>,
}

impl Out {
    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

/// Parses a frame to the guest, verifying the IP and TCP checksums.
pub fn parse_frame(f: &[u8]) -> Out {
    let eth = ethernet::Frame::new_checked(f).unwrap();
    let (src, dst, l4): (IpAddr, IpAddr, &[u8]) = match eth.ethertype() {
        ethernet::EtherType::Ipv4 => {
            let p = ipv4::Packet::new_checked(eth.payload()).unwrap();
            assert_eq!(p.protocol(), ipv4::PROTO_TCP);
            let acc = checksum::pseudo_v4(p.src(), p.dst(), 6, p.payload().len());
            assert_eq!(checksum::finish(checksum::sum(acc, p.payload())), 0, "TCP checksum");
            (p.src().into(), p.dst().into(), p.payload())
        }
        ethernet::EtherType::Ipv6 => {
            let p = ipv6::Packet::new_checked(eth.payload()).unwrap();
            assert_eq!(p.next_header(), ipv6::NEXT_TCP);
            let acc = checksum::pseudo_v6(p.src(), p.dst(), 6, p.payload().len());
            assert_eq!(checksum::finish(checksum::sum(acc, p.payload())), 0, "TCP checksum");
            (p.src().into(), p.dst().into(), p.payload())
        }
        other => panic!("not IP: {other:?}"),
    };
    let s = Segment::new_checked(l4).unwrap();
    Out {
        src: SocketAddr::new(src, s.src_port()),
        dst: SocketAddr::new(dst, s.dst_port()),
        seq: s.seq(),
        ack: s.ack(),
        flags: s.flags(),
        window: s.window(),
        opts: s.options().unwrap(),
        payload: s.payload().to_vec(),
    }
}

pub struct H {
    pub tcp: Tcp,
    pub ep: Epoll,
    pub tx: TxQueue,
    pub net: GuestNet,
    pub stats: Stats,
    pub budget: FlowBudget,
    pub now: Instant,
    /// Frames read but not yet taken by a test.
    pub pending: Vec<Out>,
}

impl Default for H {
    fn default() -> H {
        H::new()
    }
}

impl H {
    pub fn new() -> H {
        H::with_limit(1000)
    }

    pub fn with_limit(max_flows: usize) -> H {
        H::with_queue(max_flows, 8 << 20)
    }

    /// A frame queue of `tx_limit` bytes (at least one largest frame).
    pub fn with_queue(max_flows: usize, tx_limit: usize) -> H {
        H {
            tcp: Tcp::new(max_flows),
            ep: Epoll::new().unwrap(),
            tx: TxQueue::new(tx_limit),
            net: guest_net(),
            stats: Stats::default(),
            budget: FlowBudget::new(max_flows),
            now: Instant::from_nanos(1_000_000_000),
            pending: Vec::new(),
        }
    }

    pub fn run<R>(&mut self, f: impl FnOnce(&mut Tcp, &mut FlowCtx) -> R) -> R {
        let mut ctx = FlowCtx {
            now: self.now,
            host: &self.ep,
            tx: &mut self.tx,
            net: &self.net,
            stats: &mut self.stats,
            budget: &mut self.budget,
        };
        f(&mut self.tcp, &mut ctx)
    }

    /// One guest segment, then the end of the batch.
    #[allow(clippy::too_many_arguments)]
    pub fn guest(&mut self, from: SocketAddr, to: SocketAddr, seq: u32, ack: u32, flags: u8, window: u16, opts: Options, payload: &[u8]) {
        self.guest_no_flush(from, to, seq, ack, flags, window, opts, payload);
        self.run(|t, c| t.flush(c));
    }

    #[allow(clippy::too_many_arguments)]
    pub fn guest_no_flush(&mut self, from: SocketAddr, to: SocketAddr, seq: u32, ack: u32, flags: u8, window: u16, opts: Options, payload: &[u8]) {
        let repr = Repr {
            header: Header { src_port: from.port(), dst_port: to.port(), seq, ack, flags, window },
            options: opts,
            payload,
        };
        let mut l4 = vec![0u8; repr.buffer_len()];
        repr.emit(&mut l4);
        self.run(|t, c| t.handle_guest(c, from.ip(), to.ip(), &l4));
    }

    /// Waits up to `ms` for host socket events and dispatches them.
    pub fn poll(&mut self, ms: i32) -> usize {
        let mut evs = [epoll::empty_event(); 64];
        let n = self.ep.wait(&mut evs, ms).unwrap();
        for ev in &evs[..n] {
            let (data, events) = (ev.u64, ev.events);
            let tok = Token::from_u64(data).unwrap();
            self.run(|t, c| t.handle_event(c, tok, events));
        }
        n
    }

    /// Moves queued frames to `pending` (parsed).
    pub fn collect(&mut self) {
        let frames: Vec<Out> = self.tx.frames().map(parse_frame).collect();
        let n = self.tx.len();
        self.tx.pop_frames(n);
        if n > 0 {
            self.run(|t, c| t.handle_tx_room(c));
        }
        self.pending.extend(frames);
    }

    /// Takes all frames seen so far.
    pub fn take(&mut self) -> Vec<Out> {
        self.collect();
        std::mem::take(&mut self.pending)
    }

    /// Polls until a frame matching `pred` shows up (frames before it are
    /// dropped from `pending`); panics after `ms`.
    pub fn wait_for(&mut self, ms: u64, pred: impl Fn(&Out) -> bool) -> Out {
        let end = std::time::Instant::now() + Duration::from_millis(ms);
        loop {
            self.collect();
            if let Some(i) = self.pending.iter().position(&pred) {
                let f = self.pending.remove(i);
                self.pending.drain(..i);
                return f;
            }
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                panic!("no matching frame within {ms} ms; have {:?}", self.pending);
            }
            self.poll(left.as_millis().clamp(1, 50) as i32);
        }
    }

    /// Moves the clock and runs the timers.
    pub fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
        self.run(|t, c| t.handle_timeout(c));
    }
}

/// The guest's end of one connection.
#[derive(Clone, Debug)]
pub struct G {
    pub me: SocketAddr,
    pub peer: SocketAddr,
    /// Next sequence number the guest sends.
    pub seq: u32,
    /// Next sequence number the guest expects (what it acknowledges).
    pub ack: u32,
    /// Window field it advertises (scaled by `ws` at the other end).
    pub wnd: u16,
    /// Our window scale as the peer applies it to `wnd`.
    pub ws: u8,
    /// The peer's window scale (applies to windows we read).
    pub peer_ws: u8,
    /// The peer's MSS.
    pub peer_mss: u16,
    /// The window of the SYN-ACK (unscaled).
    pub syn_ack_window: u16,
}

impl G {
    pub fn syn_options() -> Options {
        Options { mss: Some(65480), window_scale: Some(7), ..Default::default() }
    }

    /// Outbound handshake: SYN, wait for SYN-ACK, ACK.
    pub fn connect(h: &mut H, me: &str, peer: &str) -> G {
        G::connect_with(h, me, peer, G::syn_options())
    }

    /// [`G::connect`] with these SYN options.
    pub fn connect_with(h: &mut H, me: &str, peer: &str, opts: Options) -> G {
        let (me, peer) = (sa(me), sa(peer));
        let isn = 0x1000_0000;
        h.guest(me, peer, isn, 0, passt::wire::tcp::SYN, 65535, opts, &[]);
        let sa = h.wait_for(2000, |f| f.dst == me && f.src == peer);
        assert_eq!(sa.flags, passt::wire::tcp::SYN | ACK, "{sa:?}");
        assert_eq!(sa.ack, isn + 1);
        let mut g = G {
            me,
            peer,
            seq: isn + 1,
            ack: sa.seq.wrapping_add(1),
            wnd: 65535,
            ws: 7,
            peer_ws: sa.opts.window_scale.unwrap_or(0),
            peer_mss: sa.opts.mss.unwrap_or(536),
            syn_ack_window: sa.window,
        };
        g.send(h, ACK, &[]);
        g
    }

    /// Sends a segment at the current sequence numbers and advances `seq`.
    pub fn send(&mut self, h: &mut H, flags: u8, payload: &[u8]) {
        h.guest(self.me, self.peer, self.seq, self.ack, flags, self.wnd, Options::default(), payload);
        self.seq = self.seq.wrapping_add(payload.len() as u32 + u32::from(flags & passt::wire::tcp::FIN != 0));
    }

    /// A pure ACK of everything received so far.
    pub fn ack_now(&mut self, h: &mut H) {
        self.send(h, ACK, &[]);
    }

    /// Receives `n` bytes of in-order data from the peer, ACKing each
    /// batch of frames; out-of-order or old frames are ignored.
    pub fn recv(&mut self, h: &mut H, n: usize, ms: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let end = std::time::Instant::now() + Duration::from_millis(ms);
        while out.len() < n {
            h.collect();
            let frames = std::mem::take(&mut h.pending);
            let mut got = false;
            for f in frames {
                if f.dst != self.me || f.payload.is_empty() {
                    if f.dst == self.me && f.has(passt::wire::tcp::FIN) && f.seq == self.ack {
                        h.pending.push(f);
                    }
                    continue;
                }
                if f.seq == self.ack {
                    out.extend_from_slice(&f.payload);
                    self.ack = self.ack.wrapping_add(f.payload.len() as u32);
                    got = true;
                }
            }
            if got {
                self.ack_now(h);
            } else {
                assert!(std::time::Instant::now() < end, "received {} of {n} bytes", out.len());
                h.poll(20);
            }
        }
        out
    }
}

/// Open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}
