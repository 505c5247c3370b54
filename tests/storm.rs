//! A hostile guest's storm: a million random and mutated frames through
//! the in-process attachment, then through the stream socket's framing.
//! Nothing may panic, memory and fds stay bounded, every frame we send
//! back is well formed, and afterwards a normal TCP connection and a UDP
//! exchange work through the same instance.
//!
//! Mutations start from valid frames of every protocol the library
//! handles (ARP, DHCP, DHCPv6, NDP NS/RS, ICMP echo v4/v6, UDP, TCP SYN /
//! data / FIN / RST on connections that really exist, IPv6 extension
//! headers), and half of the mutated frames get their checksums fixed so
//! that the deeper parsers see them. Everything runs in a fresh network
//! namespace (only loopback), so whatever the storm makes the library
//! send goes nowhere but to the test's own servers.

mod common;
#[path = "hostile/frames.rs"]
mod frames;

use common::netns::TestNs;
use common::stream_record;
use frames::*;
use passt::engine::Instance;
use passt::stats::Drop;
use std::collections::HashMap;
use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// fd and RSS figures are per process: the tests of this file run alone.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const FRAMES: usize = 1_000_000;
const MAX_FLOWS: usize = 256;

/// The instance, what it sent, and a clock that runs faster than the real
/// one (so that timers fire during the storm).
struct Rig {
    inst: Instance,
    out: Arc<Mutex<Vec<Vec<u8>>>>,
    skew: Duration,
}

impl Rig {
    fn new(extra: &[&str]) -> Rig {
        let mut opts = CONFIG.to_vec();
        opts.push("frames");
        opts.extend_from_slice(extra);
        let mut inst = Instance::new(&common::driver::Driver::config(&opts)).expect("instance");
        let out: Arc<Mutex<Vec<Vec<u8>>>> = Default::default();
        let sink = out.clone();
        inst.set_frame_output(Box::new(move |frames: &[IoSlice<'_>]| {
            let mut o = sink.lock().unwrap();
            o.extend(frames.iter().map(|f| f.to_vec()));
            frames.len()
        }))
        .unwrap();
        Rig { inst, out, skew: Duration::ZERO }
    }

    fn now(&self) -> passt::Instant {
        common::driver::now() + self.skew
    }

    fn input(&mut self, f: &[u8]) {
        let now = self.now();
        self.inst.frame_input(f, now).expect("frame_input");
    }

    fn process(&mut self) {
        let now = self.now();
        self.inst.process(now).expect("process");
    }

    fn take(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.out.lock().unwrap())
    }

    /// Processes until a decoded frame matches, for up to `ms` of real time.
    fn wait_for(&mut self, ms: u64, mut pred: impl FnMut(&Out) -> bool) -> Out {
        let end = std::time::Instant::now() + Duration::from_millis(ms);
        loop {
            self.process();
            for f in self.take() {
                if let Some(o) = parse_out(&f) {
                    if pred(&o) {
                        return o;
                    }
                }
            }
            assert!(std::time::Instant::now() < end, "no matching frame within {ms} ms");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// A connection the storm opened for real (we saw its SYN-ACK): segments
/// with plausible numbers reach the established-state code.
#[derive(Clone, Copy)]
struct Conn {
    v6: bool,
    gport: u16,
    sport: u16,
    snd: u32,
    rcv: u32,
}

struct Storm {
    rng: Rng,
    tcp_port: u16,
    udp_port: u16,
    conns: HashMap<(bool, u16), Conn>,
    keys: Vec<(bool, u16)>,
    /// The forwarded port (`-t`) host peers connect to, and the SYNs we
    /// sent the guest for those connections: (guest-visible peer, its
    /// port, our sequence number).
    fwd_port: u16,
    inbound: Vec<(IpAddr, u16, u32)>,
}

fn pick<T: Copy>(rng: &mut Rng, from: &[T]) -> T {
    from[rng.below(from.len())]
}

impl Storm {
    fn addrs(&mut self, v6: bool) -> (IpAddr, IpAddr) {
        let r = self.rng.below(10);
        if v6 {
            let dst = match r {
                0 => Ipv6Addr::from(self.rng.next() as u128 | ((self.rng.next() as u128) << 64)),
                1 => Ipv6Addr::LOCALHOST,
                2 => G6,
                _ => GW6,
            };
            (IpAddr::V6(if self.rng.one_in(8) { G6_LL } else { G6 }), dst.into())
        } else {
            let dst = match r {
                0 => Ipv4Addr::from(self.rng.next() as u32),
                1 => Ipv4Addr::new(10, 0, 2, self.rng.byte()),
                2 => Ipv4Addr::new(127, 0, 0, 1),
                _ => GW4,
            };
            (IpAddr::V4(G4), dst.into())
        }
    }

    fn payload(&mut self) -> Vec<u8> {
        let n = match self.rng.below(10) {
            0 => 0,
            1 => 1400 + self.rng.below(200),
            2 if self.rng.one_in(20) => 8192 + self.rng.below(8000),
            _ => self.rng.below(64),
        };
        self.rng.bytes(n)
    }

    /// A valid frame of one of the protocols we handle.
    fn valid(&mut self) -> Vec<u8> {
        let v6 = self.rng.one_in(2);
        match self.rng.below(17) {
            0 => {
                let r = self.rng.next() as u32;
                let t = pick(&mut self.rng, &[GW4, G4, Ipv4Addr::new(10, 0, 2, 3), Ipv4Addr::from(r)]);
                arp_request(G4, t)
            }
            1 => dhcp(pick(&mut self.rng, &[1, 3, 7, 8]), self.rng.next() as u32),
            2 => dhcpv6(pick(&mut self.rng, &[1, 3, 5, 11]), self.rng.next() as u32),
            3 => {
                let src = pick(&mut self.rng, &[G6_LL, G6, Ipv6Addr::UNSPECIFIED]);
                let ll = passt::services::ndp::link_local_from_mac(OUR_MAC);
                ndp_ns(src, pick(&mut self.rng, &[GW6, ll, G6, G6_LL]))
            }
            4 => ndp_rs(pick(&mut self.rng, &[G6_LL, Ipv6Addr::UNSPECIFIED])),
            5 => {
                let (s, d) = self.addrs(v6);
                let data = self.payload();
                let (id, seq) = (self.rng.next() as u16, self.rng.next() as u16);
                match (s, d) {
                    (IpAddr::V6(s6), IpAddr::V6(d6)) => {
                        let mut b = id.to_be_bytes().to_vec();
                        b.extend_from_slice(&seq.to_be_bytes());
                        b.extend_from_slice(&data);
                        ip_frame(s, d, P_ICMP6, &icmp6(s6, d6, 128, 0, &b))
                    }
                    _ => ip_frame(s, d, P_ICMP, &icmp4_echo(id, seq, &data)),
                }
            }
            6 | 7 => {
                let (s, d) = self.addrs(v6);
                let r = self.rng.next() as u16;
                let dport = pick(&mut self.rng, &[self.udp_port, self.udp_port, 53, r]);
                let sport = 1024 + self.rng.below(2000) as u16;
                let p = self.payload();
                ip_frame(s, d, P_UDP, &udp(s, d, sport, dport, &p))
            }
            8 | 9 => {
                let (s, d) = self.addrs(v6);
                let r = self.rng.next() as u16;
                let dport = pick(&mut self.rng, &[self.tcp_port, self.tcp_port, r]);
                let gport = 20000 + self.rng.below(20000) as u16;
                let opts = if self.rng.one_in(4) { self.rng.upto(40) } else { SYN_OPTS.to_vec() };
                let seq = self.rng.next() as u32;
                ip_frame(s, d, P_TCP, &tcp(s, d, gport, dport, seq, 0, 0x02, 64240, &opts, &[]))
            }
            10 | 11 if !self.keys.is_empty() => self.on_conn(),
            12 if !self.inbound.is_empty() => self.on_inbound(),
            13 => {
                // IPv6 extension header chains (fragment headers included).
                let n = self.rng.below(10);
                let ext: Vec<(u8, Vec<u8>)> =
                    (0..n).map(|_| (pick(&mut self.rng, &[0, 60, 43, 60, 0, 44]), self.rng.upto(20))).collect();
                let (s, d) = (IpAddr::V6(G6), IpAddr::V6(GW6));
                let (proto, l4) = match self.rng.below(3) {
                    0 => (P_UDP, udp(s, d, 5000, self.udp_port, b"ext")),
                    1 => (P_TCP, tcp(s, d, 5001, self.tcp_port, 1, 0, 0x02, 1000, SYN_OPTS, &[])),
                    _ => (P_ICMP6, icmp6(G6, GW6, 128, 0, &[0, 1, 0, 1])),
                };
                let mut f = eth(OUR_MAC, ETH_V6, &ipv6(G6, GW6, 64, &ext, proto, &l4));
                fix_checksums(&mut f);
                f
            }
            14 => {
                // IPv4 options and fragments.
                let l4 = udp(G4.into(), GW4.into(), 5002, self.udp_port, b"frag");
                let opts = self.rng.upto(40);
                let mut p = ipv4(G4, GW4, P_UDP, &opts, &l4);
                if self.rng.one_in(2) {
                    let frag: u16 = pick(&mut self.rng, &[0x2000, 0x0001, 0x2010, 0x1fff, 0x4001]);
                    p[6..8].copy_from_slice(&frag.to_be_bytes());
                }
                let mut f = eth(OUR_MAC, ETH_V4, &p);
                fix_checksums(&mut f);
                f
            }
            15 => {
                // VLAN tags and odd ethertypes around a valid packet.
                let inner = ipv4(G4, GW4, P_UDP, &[], &udp(G4.into(), GW4.into(), 5003, self.udp_port, b"vlan"));
                let et: u16 = pick(&mut self.rng, &[0x8100, 0x88a8, 0x88cc, 0x8035, 0x0000, 0xffff, ETH_V6, 0x05dc, 0x0600]);
                let mut p = Vec::new();
                if et == 0x8100 || et == 0x88a8 {
                    p.extend_from_slice(&[0, 5, 0x08, 0]);
                }
                p.extend_from_slice(&inner);
                eth(OUR_MAC, et, &p)
            }
            _ => {
                // Lengths beyond what the frame holds, or giant frames.
                let big = if self.rng.one_in(50) { 65_536 + self.rng.below(10_000) } else { 1500 + self.rng.below(8000) };
                let l4 = udp(G4.into(), GW4.into(), 5004, self.udp_port, &self.rng.bytes(big));
                let mut f = eth(OUR_MAC, ETH_V4, &ipv4(G4, GW4, P_UDP, &[], &l4));
                if self.rng.one_in(2) {
                    f.truncate(14 + 20 + self.rng.below(100));
                }
                f
            }
        }
    }

    /// A segment on a connection that exists.
    fn on_conn(&mut self) -> Vec<u8> {
        let key = self.keys[self.rng.below(self.keys.len())];
        let c = self.conns[&key];
        let (s, d): (IpAddr, IpAddr) = if c.v6 { (G6.into(), GW6.into()) } else { (G4.into(), GW4.into()) };
        let data = if self.rng.one_in(2) { self.rng.upto(3000) } else { Vec::new() };
        let flags = pick(&mut self.rng, &[0x10, 0x10, 0x18, 0x18, 0x11, 0x04, 0x14, 0x02, 0x12, 0x19, 0x00, 0x3f]);
        let jitter = |r: &mut Rng, v: u32| if r.one_in(4) { v.wrapping_add(r.next() as u32 % 100_000) } else { v };
        let seq = jitter(&mut self.rng, c.snd);
        let ack = jitter(&mut self.rng, c.rcv);
        let r = self.rng.next() as u16;
        let win = pick(&mut self.rng, &[0, 1, 512, 65535, r]);
        let opts = if self.rng.one_in(3) { self.rng.upto(40) } else { Vec::new() };
        if let Some(c) = self.conns.get_mut(&key) {
            c.snd = c.snd.wrapping_add(data.len() as u32);
        }
        ip_frame(s, d, P_TCP, &tcp(s, d, c.gport, c.sport, seq, ack, flags, win, &opts, &data))
    }

    /// An answer to one of our SYNs for an inbound connection: SYN-ACK
    /// (right or wrong numbers), RST, or anything else.
    fn on_inbound(&mut self) -> Vec<u8> {
        let (peer, pport, our_seq) = self.inbound[self.rng.below(self.inbound.len())];
        let g: IpAddr = G4.into();
        let flags = pick(&mut self.rng, &[0x12, 0x12, 0x12, 0x04, 0x14, 0x10, 0x02, 0x11, 0x18]);
        let r = self.rng.next() as u32;
        let ack = if self.rng.one_in(4) { r } else { our_seq.wrapping_add(1) };
        let seq = self.rng.next() as u32;
        let opts = if self.rng.one_in(3) { self.rng.upto(40) } else { SYN_OPTS.to_vec() };
        let data = if self.rng.one_in(4) { self.rng.upto(2000) } else { Vec::new() };
        ip_frame(g, peer, P_TCP, &tcp(g, peer, self.fwd_port, pport, seq, ack, flags, 65535, &opts, &data))
    }

    /// Learns connections from the frames we got back.
    fn learn(&mut self, o: &Out) {
        if o.proto == P_TCP && o.dport == self.fwd_port && o.flags == 0x02 && o.src.is_ipv4() {
            self.inbound.push((o.src, o.sport, o.seq));
            if self.inbound.len() > 64 {
                self.inbound.remove(0);
            }
        }
        if o.proto != P_TCP || o.sport != self.tcp_port {
            return;
        }
        let key = (o.src.is_ipv6(), o.dport);
        let fin = u32::from(o.flags & 0x01 != 0);
        if o.flags & 0x12 == 0x12 {
            let c = Conn { v6: key.0, gport: o.dport, sport: o.sport, snd: o.ack, rcv: o.seq.wrapping_add(1) };
            if self.conns.insert(key, c).is_none() {
                self.keys.push(key);
            }
            if self.keys.len() > 128 {
                let k = self.keys.swap_remove(self.rng.below(self.keys.len()));
                self.conns.remove(&k);
            }
        } else if let Some(c) = self.conns.get_mut(&key) {
            c.rcv = o.seq.wrapping_add(o.payload.len() as u32 + fin);
        }
    }

    /// A frame: valid (a fifth of the time) or mutated, checksums fixed
    /// for half of the mutated ones.
    fn next(&mut self) -> Vec<u8> {
        let mut f = self.valid();
        if self.rng.one_in(5) {
            return f;
        }
        if self.rng.one_in(12) {
            return self.rng.upto(200);
        }
        let lens = [14 + 2, 14 + 3, 14, 14 + 4, 14 + 5, 14 + 20 + 4, 14 + 40 + 4, 14 + 20 + 12, 14 + 40 + 12, 14 + 40 + 1, 14 + 6];
        for _ in 0..=self.rng.below(4) {
            match self.rng.below(8) {
                0 | 1 if !f.is_empty() => {
                    let at = self.rng.below(f.len());
                    f[at] = self.rng.byte();
                }
                2 if !f.is_empty() => {
                    let at = self.rng.below(f.len());
                    f[at] = pick(&mut self.rng, &[0, 1, 2, 3, 4, 5, 6, 0x7f, 0x80, 0xff]);
                }
                3 => f.truncate(self.rng.below(f.len() + 1)),
                4 => {
                    let n = self.rng.below(64);
                    f.extend(self.rng.bytes(n));
                }
                5 => {
                    // A length or offset field to an interesting value.
                    let at = pick(&mut self.rng, &lens);
                    if at + 1 < f.len() {
                        let r = self.rng.next() as u16;
                        let v: u16 = pick(&mut self.rng, &[0, 1, 7, 8, 19, 20, 39, 40, 0x45, 0xf0, 0x7fff, 0xffff, r]);
                        f[at..at + 2].copy_from_slice(&v.to_be_bytes());
                    }
                }
                6 if f.len() > 20 => {
                    let at = 14 + self.rng.below(f.len() - 14);
                    let n = self.rng.below(16).min(f.len() - at);
                    let junk = self.rng.bytes(n);
                    f[at..at + n].copy_from_slice(&junk);
                }
                _ => {
                    let at = self.rng.below(f.len() + 1);
                    let n = self.rng.below(16);
                    let junk = self.rng.bytes(n);
                    f.splice(at..at, junk);
                }
            }
        }
        if self.rng.one_in(2) {
            fix_checksums(&mut f);
        }
        f
    }
}

/// Host side of the storm: accepts connections (IPv4 and IPv6 on one
/// port), sends a little, reads what comes, closes some at random; and a
/// UDP echo server on another port. Stops (closing everything) when
/// `stop` is set.
fn servers(stop: Arc<AtomicBool>, fwd_port: u16) -> (u16, u16, std::thread::JoinHandle<()>) {
    let l4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l4.local_addr().unwrap().port();
    let l6 = TcpListener::bind(("::1", port)).unwrap();
    let u4 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uport = u4.local_addr().unwrap().port();
    let u6 = UdpSocket::bind(("::1", uport)).unwrap();
    for s in [&l4, &l6] {
        s.set_nonblocking(true).unwrap();
    }
    for s in [&u4, &u6] {
        s.set_nonblocking(true).unwrap();
    }
    let t = std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        let mut peers: Vec<TcpStream> = Vec::new();
        let mut rng = Rng::new(99);
        let mut tick = 0u64;
        let mut buf = vec![0u8; 70_000];
        while !stop.load(Ordering::Relaxed) {
            let mut idle = true;
            for l in [&l4, &l6] {
                while let Ok((s, _)) = l.accept() {
                    idle = false;
                    s.set_nonblocking(true).unwrap();
                    let _ = (&s).write(&rng.upto(3000));
                    held.push(s);
                }
            }
            held.retain_mut(|s| match s.read(&mut buf) {
                Ok(0) => false,
                Ok(_) => {
                    idle = false;
                    !rng.one_in(20)
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => !rng.one_in(500),
                Err(_) => false,
            });
            if held.len() > 200 {
                held.drain(..50);
            }
            // Host peers connecting to the forwarded port, now and then.
            tick += 1;
            if fwd_port != 0 && tick % 2 == 0 {
                if let Ok(c) = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], fwd_port)), Duration::from_millis(50)) {
                    c.set_nonblocking(true).unwrap();
                    let _ = (&c).write(b"hello guest");
                    peers.push(c);
                }
                if peers.len() > 32 {
                    peers.remove(0);
                }
            }
            for u in [&u4, &u6] {
                while let Ok((n, from)) = u.recv_from(&mut buf) {
                    idle = false;
                    let _ = u.send_to(&buf[..n], from);
                }
            }
            if idle {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    (port, uport, t)
}

/// After the storm: an ordinary TCP connection (handshake, data both
/// ways, FIN) and a UDP exchange, IPv4 and IPv6, through the same instance.
fn normal_traffic_works(rig: &mut Rig) {
    for v6 in [false, true] {
        let (g, gw): (IpAddr, IpAddr) = if v6 { (G6.into(), GW6.into()) } else { (G4.into(), GW4.into()) };
        let l = TcpListener::bind(if v6 { "[::1]:0" } else { "127.0.0.1:0" }).unwrap();
        let port = l.local_addr().unwrap().port();
        let gport = 61000 + u16::from(v6);
        rig.input(&ip_frame(g, gw, P_TCP, &tcp(g, gw, gport, port, 1000, 0, 0x02, 65535, SYN_OPTS, &[])));
        let sa = rig.wait_for(3000, |o| o.proto == P_TCP && o.dport == gport);
        assert_eq!(sa.flags & 0x12, 0x12, "SYN-ACK after the storm");
        assert_eq!(sa.ack, 1001);
        let (snd, rcv) = (1001u32, sa.seq.wrapping_add(1));
        rig.input(&ip_frame(g, gw, P_TCP, &tcp(g, gw, gport, port, snd, rcv, 0x10, 65535, &[], &[])));
        rig.input(&ip_frame(g, gw, P_TCP, &tcp(g, gw, gport, port, snd, rcv, 0x18, 65535, &[], b"hello after the storm")));
        rig.process();
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = [0u8; 21];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello after the storm");
        s.write_all(b"still here").unwrap();
        let d = rig.wait_for(3000, |o| o.proto == P_TCP && o.dport == gport && !o.payload.is_empty());
        assert_eq!(d.payload, b"still here");
        assert_eq!(d.seq, rcv);
        assert_eq!(d.ack, snd + 21, "our data acknowledged");
        let rcv = rcv + 10;
        rig.input(&ip_frame(g, gw, P_TCP, &tcp(g, gw, gport, port, snd + 21, rcv, 0x11, 65535, &[], &[])));
        rig.process();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "the guest's FIN reached the server");
        drop(s);
        let fin = rig.wait_for(3000, |o| o.proto == P_TCP && o.dport == gport && o.flags & 0x01 != 0);
        rig.input(&ip_frame(g, gw, P_TCP, &tcp(g, gw, gport, port, snd + 22, fin.seq + 1, 0x10, 65535, &[], &[])));

        let u = UdpSocket::bind(if v6 { "[::1]:0" } else { "127.0.0.1:0" }).unwrap();
        u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let uport = u.local_addr().unwrap().port();
        rig.input(&ip_frame(g, gw, P_UDP, &udp(g, gw, 61100, uport, b"ping after the storm")));
        rig.process();
        let mut buf = [0u8; 64];
        let (n, from) = u.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping after the storm");
        u.send_to(b"pong", from).unwrap();
        let r = rig.wait_for(3000, |o| o.proto == P_UDP && o.dport == 61100);
        assert_eq!(r.payload, b"pong");
        assert_eq!(r.sport, uport);
    }
}

#[test]
fn a_million_hostile_frames_then_normal_traffic() {
    let _serial = serial();
    let ns = TestNs::new("storm");
    ns.run(|| {
        storm(seed(0x5707_2026), FRAMES, MAX_FLOWS);
        Ok(())
    })
    .unwrap();
}

/// The same with room for many flows, so that more of the storm gets
/// past the flow limit into the TCP and UDP state machines.
#[test]
fn hostile_frames_with_room_for_many_flows() {
    let _serial = serial();
    let ns = TestNs::new("storm2");
    ns.run(|| {
        storm(seed(0xdead_beef), 300_000, 4096);
        Ok(())
    })
    .unwrap();
}

/// The storm's seed: fixed, so that CI runs the same storm every time;
/// `STORM_SEED=N` (decimal) explores others, e.g. in a loop:
/// `for n in $(seq 100); do STORM_SEED=$n cargo test --profile checked --test storm || break; done`.
fn seed(fixed: u64) -> u64 {
    match std::env::var("STORM_SEED") {
        Ok(s) => s.parse().unwrap_or_else(|_| panic!("STORM_SEED={s}: not a decimal number")),
        Err(_) => fixed,
    }
}

fn storm(seed: u64, frames: usize, max_flows: usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let fwd_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (tcp_port, udp_port, server) = servers(stop.clone(), fwd_port);
    let fds_before = fd_count();
    let mut rig = Rig::new(&[&format!("max-flows={max_flows}"), &format!("tcp-ports={fwd_port}")]);
    let mut st = Storm {
        rng: Rng::new(seed),
        tcp_port,
        udp_port,
        conns: HashMap::new(),
        keys: Vec::new(),
        fwd_port,
        inbound: Vec::new(),
    };
    let mut inbound_seen = 0u64;
    let t0 = std::time::Instant::now();
    let (mut rss_base, mut rss_peak, mut fd_peak) = (0u64, 0u64, 0usize);
    let (mut out_frames, mut tcp_out, mut udp_out) = (0u64, 0u64, 0u64);
    let (mut dhcp_out, mut dhcpv6_out, mut arp_out) = (0u64, 0u64, 0u64);
    let mut input_bytes = 0u64;
    for i in 0..frames {
        let f = st.next();
        input_bytes += f.len() as u64;
        rig.input(&f);
        // A clock 20 µs faster per frame: 20 s of timers over the storm.
        rig.skew += Duration::from_micros(20);
        if i % 64 == 63 {
            rig.process();
            for f in rig.take() {
                out_frames += 1;
                arp_out += u64::from(f[12..14] == [0x08, 0x06]);
                if let Some(o) = parse_out(&f) {
                    if o.proto == P_TCP {
                        tcp_out += 1;
                    } else {
                        udp_out += 1;
                        dhcp_out += u64::from(o.sport == 67);
                        dhcpv6_out += u64::from(o.sport == 547);
                    }
                    inbound_seen += u64::from(o.proto == P_TCP && o.dport == fwd_port && o.flags == 0x02);
                    st.learn(&o);
                }
            }
        }
        if i % 4096 == 0 {
            fd_peak = fd_peak.max(fd_count());
            let rss = rss_kib();
            if i == 12 * 4096 {
                rss_base = rss;
            }
            rss_peak = rss_peak.max(rss);
        }
    }
    let elapsed = t0.elapsed();
    let stats = rig.inst.stats().clone();
    eprintln!(
        "storm: {frames} frames ({input_bytes} bytes) in {elapsed:?}; {out_frames} frames back ({tcp_out} TCP, {udp_out} UDP); \
         {} connections learnt; fds {fds_before} -> peak {fd_peak}; RSS {rss_base} KiB -> peak {rss_peak} KiB; drops {:?}",
        st.keys.len(),
        stats.drops
    );
    assert_eq!(stats.frames_in, frames as u64);
    for why in [Drop::Truncated, Drop::BadLength, Drop::BadChecksum, Drop::Malformed, Drop::Unsupported, Drop::NotForUs] {
        assert!(stats.dropped(why) > 100, "{why:?} drops counted: {:?}", stats.drops);
    }
    eprintln!("services answered: {arp_out} ARP, {dhcp_out} DHCP, {dhcpv6_out} DHCPv6");
    assert!(arp_out > 100 && dhcp_out > 100 && dhcpv6_out > 100, "the services kept answering through the storm");
    assert!(tcp_out > 1000 && udp_out > 1000, "the storm reached the flows: {tcp_out} TCP and {udp_out} UDP frames back");
    assert!(st.keys.len() > 10, "connections established during the storm");
    eprintln!("{inbound_seen} SYNs to the guest for inbound connections");
    assert!(inbound_seen > 10, "inbound connections reached the guest during the storm");
    // Each flow holds at most a couple of sockets; the instance a few more.
    assert!(fd_peak <= fds_before + 2 * max_flows + 16, "fds bounded by max-flows: {fds_before} -> {fd_peak}");
    // Queues are bounded (4 MiB to the guest, 1 MiB of UDP, buffers):
    // 64 MiB is far above what they can hold, far below a leak of a
    // million frames.
    assert!(rss_peak < rss_base + 64 * 1024, "RSS grew from {rss_base} KiB to {rss_peak} KiB");

    // The host side goes away; time passes; every flow of the storm ends.
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    let fds_servers_gone = fds_before - 4;
    for _ in 0..400 {
        rig.skew += Duration::from_secs(30);
        rig.process();
        rig.take();
    }
    let instance_fds = 5; // the two epoll sets, the wake-up eventfd, the -t listener and its spare fd
    assert_eq!(fd_count(), fds_servers_gone + instance_fds, "every socket of the storm closed once its flow ended");
    normal_traffic_works(&mut rig);
    drop(rig);
    assert_eq!(fd_count(), fds_servers_gone, "no fd left after the instance is freed");
}

/// The QEMU stream framing from a hostile peer: bogus lengths (0, 1, 13,
/// one above the largest frame, huge), a frame cut by the peer vanishing,
/// random bytes, and thousands of well-framed hostile frames. Each broken
/// connection is closed by the instance (or simply ends); the next guest
/// that connects is served; no fd is left behind.
#[test]
fn stream_framing_from_a_hostile_peer() {
    let _serial = serial();
    let ns = TestNs::new("stormsock");
    ns.run(|| {
        stream_framing();
        Ok(())
    })
    .unwrap();
}

/// Connects, asks for the gateway's MAC, checks the reply.
fn arp_works(path: &std::path::Path) -> std::os::unix::net::UnixStream {
    let mut s = connect(path);
    s.write_all(&stream_record(&arp_request(G4, GW4))).unwrap();
    let reply = recv_framed(&mut s).expect("an ARP reply");
    assert_eq!(&reply[12..14], &[0x08, 0x06]);
    assert_eq!(&reply[20..22], &[0, 2], "an ARP reply");
    assert_eq!(&reply[22..28], &OUR_MAC);
    s
}

fn connect(path: &std::path::Path) -> std::os::unix::net::UnixStream {
    // The previous guest's departure may not have been noticed yet: a
    // second guest is refused (closed) while one is attached. An accepted
    // guest gets a router advertisement at once: peek for it.
    use std::os::fd::AsRawFd;
    for _ in 0..100 {
        let s = std::os::unix::net::UnixStream::connect(path).unwrap();
        let mut probe = [0u8; 1];
        let mut n = -1;
        for _ in 0..100 {
            // SAFETY: probe is a valid buffer of its length.
            n = unsafe { libc::recv(s.as_raw_fd(), probe.as_mut_ptr().cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
            if n >= 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if n == 1 {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the instance never took a new guest");
}

/// The next frame that is not a router advertisement (sent at attach).
fn recv_framed(s: &mut std::os::unix::net::UnixStream) -> Option<Vec<u8>> {
    loop {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).ok()?;
        let mut f = vec![0; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut f).ok()?;
        if f.len() > 14 && f[12..14] == [0x08, 0x06] {
            return Some(f);
        }
    }
}

/// Whether the instance closed `s` (reads to EOF within 5 s).
fn closed_by_peer(s: &mut std::os::unix::net::UnixStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn stream_framing() {
    let dir = TempDir::new("storm");
    let path = dir.0.join("guest.sock");
    let fds_before = fd_count();
    let mut opts = CONFIG.to_vec();
    let sock = format!("socket={}", path.display());
    opts.push(&sock);
    let driver = common::driver::Driver::start(&common::driver::Driver::config(&opts)).unwrap();
    drop(arp_works(&path));
    let max_frame = 14 + 65535u32;
    for len in [0u32, 1, 13, max_frame + 1, 1 << 20, 0x7fff_ffff, 0xffff_ffff] {
        let mut s = arp_works(&path);
        s.write_all(&len.to_be_bytes()).unwrap();
        s.write_all(&[0x55; 64]).unwrap_or(());
        assert!(closed_by_peer(&mut s), "a frame length of {len} closes the connection");
        drop(s);
        drop(arp_works(&path));
    }
    // The largest frame passes; a frame cut short by the peer vanishing
    // (in the length, then in the body) is forgotten with the peer.
    let mut s = arp_works(&path);
    let mut big = eth(OUR_MAC, 0x88b5, &[0xaa; 65535]);
    big.truncate(max_frame as usize);
    s.write_all(&stream_record(&big)).unwrap();
    s.write_all(&stream_record(&arp_request(G4, GW4))).unwrap();
    assert!(recv_framed(&mut s).is_some(), "still served after a largest frame");
    let f = stream_record(&arp_request(G4, GW4));
    s.write_all(&f[..f.len() - 7]).unwrap();
    drop(s);
    let mut s = arp_works(&path);
    s.write_all(&[0, 0]).unwrap();
    drop(s);
    // Random bytes: whatever the instance makes of them, it survives.
    let mut rng = Rng::new(0xbad);
    for _ in 0..20 {
        let mut s = arp_works(&path);
        let junk = rng.upto(70_000);
        let _ = s.write_all(&junk);
        drop(s);
    }
    // Well-framed hostile frames on one connection, which stays up.
    let mut s = arp_works(&path);
    let (tx_port, rx_port) = (9, 9);
    let mut st = Storm {
        rng: Rng::new(0xf4a3),
        tcp_port: tx_port,
        udp_port: rx_port,
        conns: HashMap::new(),
        keys: Vec::new(),
        fwd_port: 0,
        inbound: Vec::new(),
    };
    let reader = {
        let mut r = s.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            while matches!(r.read(&mut buf), Ok(n) if n > 0) {}
        })
    };
    let mut sent = 0;
    while sent < 50_000 {
        let f = st.next();
        if (14..=max_frame as usize).contains(&f.len()) {
            s.write_all(&stream_record(&f)).unwrap();
            sent += 1;
        }
    }
    s.shutdown(std::net::Shutdown::Both).unwrap();
    reader.join().unwrap();
    drop(s);
    drop(arp_works(&path));
    driver.stop().expect("the instance ran to the end without error");
    assert_eq!(fd_count(), fds_before, "no fd left behind");
}

/// `max-flows` bounds each protocol on its own: 200 new TCP connections,
/// UDP flows or ping flows against a limit of 50 open at most 50 sockets,
/// and the rest are refused and counted.
#[test]
fn max_flows_bounds_tcp_udp_and_icmp_each() {
    let _serial = serial();
    let ns = TestNs::new("maxflows");
    ns.run(|| {
        let l = TcpListener::bind("127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        let (g, gw): (IpAddr, IpAddr) = (G4.into(), GW4.into());
        type Make = Box<dyn Fn(u16) -> Vec<u8>>;
        let kinds: Vec<(&str, Make)> = vec![
            ("TCP", Box::new(move |i| syn(g, gw, 20000 + i, port))),
            ("UDP", Box::new(move |i| ip_frame(g, gw, P_UDP, &udp(g, gw, 20000 + i, 9, b"x")))),
            ("ICMP", Box::new(move |i| ip_frame(g, gw, P_ICMP, &icmp4_echo(i, 1, b"x")))),
        ];
        for (name, make) in kinds {
            let fds0 = fd_count();
            let mut rig = Rig::new(&["max-flows=50"]);
            let fds_idle = fd_count();
            for i in 0..200u16 {
                rig.input(&make(i));
            }
            rig.process();
            let used = fd_count() - fds_idle;
            let refused = rig.inst.stats().dropped(Drop::Limit);
            eprintln!("{name}: 200 new flows, limit 50: {used} sockets, {refused} refused");
            assert!((45..=50).contains(&used), "{name}: {used} sockets for a limit of 50");
            assert_eq!(refused, 150, "{name}: the rest refused and counted");
            drop(rig);
            assert_eq!(fd_count(), fds0, "{name}: all closed with the instance");
        }
        Ok(())
    })
    .unwrap();
}
