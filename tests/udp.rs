//! UDP flows against real host sockets on loopback: a `FlowCtx` built by
//! hand plays the engine, hand-built guest datagrams go in, frames for the
//! guest are parsed back out of the queue.
//!
//! Tests take a process-wide lock: several count this process's open fds.

use passt::flow::udp::{Udp, IDLE_TIMEOUT};
use passt::flow::{FlowBudget, FlowCtx};
use passt::fwd::PortSpec;
use passt::guestnet::{GuestNet, Net4, Net6};
use passt::stats::{Drop, Stats};
use passt::sys::epoll::{self, Epoll};
use passt::time::Instant;
use passt::token::Token;
use passt::tx::TxQueue;
use passt::wire::{checksum, ethernet, icmp, ipv4, ipv6, udp};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::num::NonZeroU16;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

const G4: &str = "192.0.2.2";
const GW4: &str = "192.0.2.1";
const DNS4: &str = "192.0.2.3";
const G6: &str = "2001:db8::2";
const GW6: &str = "2001:db8::1";
const DNS6: &str = "2001:db8::3";
const GLL: &str = "fe80::5054:ff:fe12:3456";
/// The "host resolver" of the dns-forward tests, on loopback.
const RESOLVER4: &str = "127.77.0.53";

fn guest_net(mtu: u32) -> GuestNet {
    GuestNet {
        our_mac: [0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55],
        guest_mac: Some([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
        mtu,
        v4: Some(Net4 {
            assigned: G4.parse().unwrap(),
            prefix_len: 24,
            gateway: GW4.parse().unwrap(),
            observed: None,
            map_host_loopback: Some(GW4.parse().unwrap()),
            map_guest_addr: None,
            host_addr: None,
            dns: vec![DNS4.parse().unwrap()],
            dns_forward: Some(DNS4.parse().unwrap()),
            dns_host: Some(RESOLVER4.parse().unwrap()),
        }),
        v6: Some(Net6 {
            assigned: G6.parse().unwrap(),
            prefix_len: 64,
            gateway: Some(GW6.parse().unwrap()),
            our_ll: "fe80::1".parse().unwrap(),
            observed: None,
            observed_ll: None,
            map_host_loopback: Some(GW6.parse().unwrap()),
            map_guest_addr: None,
            host_addr: None,
            dns: vec![DNS6.parse().unwrap()],
            dns_forward: Some(DNS6.parse().unwrap()),
            dns_host: Some(RESOLVER4.parse().unwrap()),
        }),
        search: vec![],
    }
}

/// A frame for the guest, parsed and checked (IP header and L4 checksums).
#[derive(Debug, Clone, PartialEq)]
enum Got {
    Udp { src: SocketAddr, dst: SocketAddr, payload: Vec<u8> },
    Icmp { src: IpAddr, dst: IpAddr, ty: u8, code: u8, quoted_src: SocketAddr, quoted_dst: SocketAddr },
}

/// The L4 checksum verifies; a datagram over IPv4 must carry none (zero:
/// we send them so, without a backend that offloads checksums).
fn l4_checksum_ok(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> bool {
    if proto == 17 && src.is_ipv4() {
        return l4[6..8] == [0, 0];
    }
    let acc = match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => 0,
        (IpAddr::V6(s), IpAddr::V6(d)) => checksum::pseudo_v6(s, d, proto, l4.len()),
        _ => return false,
    };
    checksum::finish(checksum::sum(acc, l4)) == 0
}

fn parse_frame(f: &[u8]) -> Got {
    let eth = ethernet::Frame::new_checked(f).unwrap();
    assert_eq!(eth.dst(), [0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    let p = eth.payload();
    let (src, dst, proto, l4): (IpAddr, IpAddr, u8, &[u8]) = if p[0] >> 4 == 4 {
        let ip = ipv4::Packet::new_checked(p).unwrap();
        (ip.src().into(), ip.dst().into(), ip.protocol(), ip.payload())
    } else {
        let ip = ipv6::Packet::new_checked(p).unwrap();
        (ip.src().into(), ip.dst().into(), ip.next_header(), ip.payload())
    };
    assert!(l4_checksum_ok(src, dst, proto, l4), "L4 checksum of {f:02x?}");
    match proto {
        17 => {
            let d = udp::Datagram::new_checked(l4).unwrap();
            Got::Udp {
                src: SocketAddr::new(src, d.src_port()),
                dst: SocketAddr::new(dst, d.dst_port()),
                payload: d.payload().to_vec(),
            }
        }
        1 | 58 => {
            let m = icmp::Message::new_checked(l4).unwrap();
            let q = m.body();
            let (qs, qd, ql4): (IpAddr, IpAddr, &[u8]) = if proto == 1 {
                let ip = ipv4::Packet::new_checked(q).unwrap();
                (ip.src().into(), ip.dst().into(), ip.payload())
            } else {
                let ip = ipv6::Packet::new_checked(q).unwrap();
                (ip.src().into(), ip.dst().into(), ip.payload())
            };
            let d = udp::Datagram::new_checked(ql4).unwrap();
            Got::Icmp {
                src,
                dst,
                ty: m.msg_type(),
                code: m.code(),
                quoted_src: SocketAddr::new(qs, d.src_port()),
                quoted_dst: SocketAddr::new(qd, d.dst_port()),
            }
        }
        p => panic!("unexpected protocol {p}"),
    }
}

/// Plays the engine around one `Udp` table.
struct H {
    ep: Epoll,
    tx: TxQueue,
    net: GuestNet,
    stats: Stats,
    budget: FlowBudget,
    now: Instant,
    udp: Udp,
}

impl H {
    fn new(mtu: u32, max_flows: usize) -> H {
        H {
            ep: Epoll::new().unwrap(),
            tx: TxQueue::new(8 << 20),
            net: guest_net(mtu),
            stats: Stats::default(),
            budget: FlowBudget::new(max_flows),
            now: Instant::from_nanos(1_000_000_000),
            udp: Udp::new(max_flows),
        }
    }

    fn run<R>(&mut self, f: impl FnOnce(&mut Udp, &mut FlowCtx) -> R) -> R {
        let H { ep, tx, net, stats, budget, now, udp } = self;
        let mut ctx = FlowCtx { now: *now, host: ep, tx, net, stats, budget };
        f(udp, &mut ctx)
    }

    /// The guest sends one datagram (queued until `flush`).
    fn send(&mut self, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        self.send_segmented(src, dst, payload, None);
    }

    /// The guest sends one frame: one UDP header, then `payload`, the
    /// datagrams of `segment` bytes each (segmentation offload) if given.
    fn send_segmented(&mut self, src: SocketAddr, dst: SocketAddr, payload: &[u8], segment: Option<NonZeroU16>) {
        let mut l4 = vec![0u8; udp::HEADER_LEN + payload.len()];
        udp::emit(&mut l4, src.port(), dst.port(), payload.len());
        l4[udp::HEADER_LEN..].copy_from_slice(payload);
        self.run(|u, c| u.handle_guest_segmented(c, src.ip(), dst.ip(), &l4, segment));
    }

    fn flush(&mut self) {
        self.run(|u, c| u.flush(c));
    }

    /// One round of host events (waiting up to `ms`).
    fn poll(&mut self, ms: i32) -> usize {
        let mut evs = [epoll::empty_event(); 64];
        let n = self.ep.wait(&mut evs, ms).unwrap();
        for ev in &evs[..n] {
            let (bits, data) = (ev.events, ev.u64);
            let t = Token::from_u64(data).unwrap();
            self.run(|u, c| u.handle_event(c, t, bits));
        }
        n
    }

    /// Takes every frame queued for the guest.
    fn frames(&mut self) -> Vec<Got> {
        let got: Vec<Got> = self.tx.frames().map(parse_frame).collect();
        self.tx.pop_frames(got.len());
        got
    }

    /// Polls until `n` frames arrived or `ms` passed.
    fn wait_frames(&mut self, n: usize, ms: u64) -> Vec<Got> {
        let deadline = std::time::Instant::now() + Duration::from_millis(ms);
        let mut out = self.frames();
        while out.len() < n && std::time::Instant::now() < deadline {
            self.poll(10);
            out.extend(self.frames());
        }
        out
    }

    /// Drops every queued frame; counts (UDP, ICMP) among them.
    fn discard_frames(&mut self) -> (usize, usize) {
        let mut counts = (0, 0);
        for f in self.tx.frames() {
            // Ethernet (14) + IPv4 header: the protocol byte.
            match f.get(14 + 9) {
                Some(17) => counts.0 += 1,
                Some(1) => counts.1 += 1,
                _ => {}
            }
        }
        let n = self.tx.len();
        self.tx.pop_frames(n);
        counts
    }

    fn timeout(&mut self) {
        self.run(|u, c| u.handle_timeout(c));
    }
}

/// A UDP echo server on a loopback address, in a thread.
struct Echo {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Echo {
    fn start(bind: &str) -> Echo {
        let sock = UdpSocket::bind(bind).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            let mut n = 0u64;
            while !s2.load(Ordering::Relaxed) {
                if let Ok((len, from)) = sock.recv_from(&mut buf) {
                    n += 1;
                    let _ = sock.send_to(&buf[..len], from);
                }
            }
            n
        });
        Echo { addr, stop, thread: Some(thread) }
    }

    /// Stops it; how many datagrams it echoed.
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl std::ops::Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A UDP port that is free on both loopbacks right now.
fn free_port() -> u16 {
    loop {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = s.local_addr().unwrap().port();
        if UdpSocket::bind(("::1", p)).is_ok() && UdpSocket::bind(("0.0.0.0", p)).is_err() {
            return p;
        }
    }
}

/// `n` consecutive ports free on both loopbacks.
fn free_range(n: u16) -> u16 {
    'outer: for base in (20000u16..30000).step_by(37) {
        for p in base..base + n {
            if UdpSocket::bind(("127.0.0.1", p)).is_err() || UdpSocket::bind(("::1", p)).is_err() {
                continue 'outer;
            }
        }
        return base;
    }
    panic!("no free port range");
}

fn echo_sizes(h: &mut H, guest: SocketAddr, to: SocketAddr, sizes: &[usize]) {
    for &size in sizes {
        let payload: Vec<u8> = (0..size).map(|i| (i * 7 + size) as u8).collect();
        h.send(guest, to, &payload);
        h.flush();
        let got = h.wait_frames(1, 2000);
        assert_eq!(got, vec![Got::Udp { src: to, dst: guest, payload }], "echo of {size} bytes from {guest} to {to}");
    }
}

#[test]
fn echo_every_size_v4_v6_through_the_gateway_mapping() {
    let _g = serial();
    let e4 = Echo::start("127.0.0.1:0");
    let e6 = Echo::start("[::1]:0");
    let mut h = H::new(65520, 100);
    let max4 = 65520 - 28;
    let max6 = 65520 - 48;
    let sizes = [1, 2, 3, 100, 1000, 1472, 1500, 8191, 8192, 20000, 65000];
    let p4 = free_port();
    let guest4 = SocketAddr::new(G4.parse().unwrap(), p4);
    let to4 = SocketAddr::new(GW4.parse().unwrap(), e4.addr.port());
    echo_sizes(&mut h, guest4, to4, &sizes);
    echo_sizes(&mut h, guest4, to4, &[max4]);
    assert_eq!(h.udp.host_port_of(guest4), Some(p4), "the guest's port was free: the flow uses it");
    let guest6 = SocketAddr::new(G6.parse().unwrap(), free_port());
    let to6 = SocketAddr::new(GW6.parse().unwrap(), e6.addr.port());
    echo_sizes(&mut h, guest6, to6, &sizes);
    echo_sizes(&mut h, guest6, to6, &[max6]);
    // The guest's link-local address reaching our link-local address.
    let guest_ll = SocketAddr::new(GLL.parse().unwrap(), free_port());
    let to_ll = SocketAddr::new("fe80::1".parse().unwrap(), e6.addr.port());
    echo_sizes(&mut h, guest_ll, to_ll, &[1, 1400]);
    assert_eq!(h.udp.len(), 3);
    let s = h.udp.stats().clone();
    assert_eq!(s.to_host, (2 * sizes.len() + 4) as u64);
    assert_eq!(s.to_guest, s.to_host);
    assert_eq!(s.to_guest_dropped + s.to_host_failed, 0);
    assert_eq!(e4.stop() + e6.stop(), s.to_host);
}

#[test]
fn datagrams_larger_than_the_mtu_are_dropped_and_counted() {
    let _g = serial();
    let mut h = H::new(1500, 100);
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let guest = SocketAddr::new(G4.parse().unwrap(), free_port());
    let to = SocketAddr::new(GW4.parse().unwrap(), server.local_addr().unwrap().port());
    h.send(guest, to, b"hi");
    h.flush();
    let (_, peer) = server.recv_from(&mut [0u8; 16]).unwrap();
    server.send_to(&[1u8; 1473], peer).unwrap();
    server.send_to(&[2u8; 1472], peer).unwrap();
    let got = h.wait_frames(1, 2000);
    assert_eq!(got, vec![Got::Udp { src: to, dst: guest, payload: vec![2u8; 1472] }]);
    assert_eq!(h.stats.dropped(Drop::Oversize), 1);
    assert_eq!(h.udp.stats().to_guest_dropped, 1);
}

#[test]
fn replies_from_mapped_peers_come_from_the_guests_destination() {
    let _g = serial();
    let mut h = H::new(65520, 100);
    // dns-forward: the guest asks 192.0.2.3:53 (and 2001:db8::3:53); the
    // host's resolver is on loopback (127.77.0.53:53, IPv4 only, so the
    // IPv6 flow needs a dual-stack socket).
    let resolver = UdpSocket::bind((RESOLVER4, 53)).expect("bind the test resolver on 127.77.0.53:53 (root)");
    for (g, dns) in [(G4, DNS4), (G6, DNS6)] {
        let guest = SocketAddr::new(g.parse().unwrap(), free_port());
        let dns = SocketAddr::new(dns.parse().unwrap(), 53);
        h.send(guest, dns, b"query");
        h.flush();
        let mut buf = [0u8; 64];
        resolver.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let (n, peer) = resolver.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"query");
        resolver.send_to(b"answer", peer).unwrap();
        let got = h.wait_frames(1, 2000);
        assert_eq!(got, vec![Got::Udp { src: dns, dst: guest, payload: b"answer".to_vec() }]);
        // A reply from another loopback port is not a mapped peer: it
        // appears from the gateway, at its own port.
        let other = UdpSocket::bind((RESOLVER4, 0)).unwrap();
        if g == G4 {
            let gw = SocketAddr::new(GW4.parse().unwrap(), other.local_addr().unwrap().port());
            other.send_to(b"other", peer).unwrap();
            let got = h.wait_frames(1, 2000);
            assert_eq!(got, vec![Got::Udp { src: gw, dst: guest, payload: b"other".to_vec() }]);
        }
    }
}

#[test]
fn idle_flows_time_out_and_close_their_sockets() {
    let _g = serial();
    let mut h = H::new(65520, 100);
    let e = Echo::start("127.0.0.1:0");
    let before = open_fds();
    let guest = SocketAddr::new(G4.parse().unwrap(), free_port());
    let to = SocketAddr::new(GW4.parse().unwrap(), e.addr.port());
    let t0 = h.now;
    h.send(guest, to, b"x");
    h.flush();
    assert_eq!(h.wait_frames(1, 2000).len(), 1);
    assert_eq!(open_fds(), before + 1);
    assert_eq!(h.budget.used, 1);
    assert_eq!(h.udp.poll_deadline(), Some(t0 + IDLE_TIMEOUT));
    h.now = t0 + Duration::from_secs(179);
    h.timeout();
    assert_eq!(h.udp.len(), 1, "not idle long enough yet");
    // Traffic refreshes the flow.
    h.send(guest, to, b"y");
    h.flush();
    assert_eq!(h.wait_frames(1, 2000).len(), 1);
    let t1 = h.now;
    assert_eq!(h.udp.poll_deadline(), Some(t1 + IDLE_TIMEOUT));
    h.now = t1 + Duration::from_secs(179);
    h.timeout();
    assert_eq!(h.udp.len(), 1);
    h.now = t1 + IDLE_TIMEOUT;
    h.timeout();
    assert_eq!(h.udp.len(), 0);
    assert_eq!(open_fds(), before, "the flow's socket is closed");
    assert_eq!(h.budget.used, 0);
    assert_eq!(h.udp.poll_deadline(), None);
    assert_eq!(h.udp.stats().flows_expired, 1);
}

#[test]
fn inbound_forwarding_with_a_range_a_mapping_and_an_exclusion() {
    let _g = serial();
    let mut h = H::new(65520, 100);
    let hp = free_range(4);
    let gp = 41000;
    let specs = [
        PortSpec::parse(&format!("{}-{}:{}-{}", hp, hp + 2, gp, gp + 2)).unwrap(),
        PortSpec::parse(&format!("127.0.0.1/{}", hp + 3)).unwrap(),
    ];
    h.run(|u, c| u.listen(c, &specs)).unwrap();
    assert_eq!(h.udp.listener_count(), 3 * 2 + 1);
    for (client_bind, seen_as, guest_ip) in [("127.0.0.1:0", GW4, G4), ("[::1]:0", GW6, G6)] {
        let client = UdpSocket::bind(client_bind).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let cport = client.local_addr().unwrap().port();
        let target = SocketAddr::new(client.local_addr().unwrap().ip(), hp + 1);
        client.send_to(b"ping", target).unwrap();
        let got = h.wait_frames(1, 2000);
        let peer = SocketAddr::new(seen_as.parse().unwrap(), cport);
        let guest = SocketAddr::new(guest_ip.parse().unwrap(), gp + 1);
        assert_eq!(got, vec![Got::Udp { src: peer, dst: guest, payload: b"ping".to_vec() }]);
        // The guest answers from its port; the client sees the forwarded
        // host port as the source.
        h.send(guest, peer, b"pong");
        h.flush();
        let mut buf = [0u8; 16];
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"pong"[..], target));
        // The guest turns out to use another address (SLAAC's, a new
        // DHCP lease...): the peer's next datagram goes there.
        let moved: IpAddr = if guest_ip == G4 { "192.0.2.77".parse().unwrap() } else { "2001:db8::5054:ff:fe12:3456".parse().unwrap() };
        h.net.observe(moved);
        client.send_to(b"again", target).unwrap();
        let got = h.wait_frames(1, 2000);
        let moved_guest = SocketAddr::new(moved, gp + 1);
        assert_eq!(got, vec![Got::Udp { src: peer, dst: moved_guest, payload: b"again".to_vec() }]);
        h.send(moved_guest, peer, b"pong2");
        h.flush();
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"pong2"[..], target));
    }
    // The single port with a bind address, no mapping.
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.send_to(b"one", ("127.0.0.1", hp + 3)).unwrap();
    let got = h.wait_frames(1, 2000);
    assert!(matches!(&got[..], [Got::Udp { dst, .. }] if dst.port() == hp + 3), "{got:?}");
    assert_eq!(h.udp.stats().flows_inbound, 3);
    // An excluded port is not bound; an explicit port in use is an error.
    let mut h2 = H::new(65520, 100);
    let ex = PortSpec::parse(&format!("{}-{},~{}", hp, hp + 2, hp + 1)).unwrap();
    let busy = h2.run(|u, c| u.listen(c, &[ex]));
    assert!(busy.is_err(), "ports {hp} and {} are bound by the first table", hp + 2);
    assert!(busy.unwrap_err().contains(&hp.to_string()));
    drop(h);
    let ex = PortSpec::parse(&format!("{}-{},~{}", hp, hp + 2, hp + 1)).unwrap();
    let mut h3 = H::new(65520, 100);
    h3.run(|u, c| u.listen(c, &[ex])).unwrap();
    assert_eq!(h3.udp.listener_count(), 2 * 2);
    assert!(UdpSocket::bind(("127.0.0.1", hp + 1)).is_ok(), "the excluded port stays free");
}

#[test]
fn guest_port_in_use_on_the_host_falls_back_to_an_ephemeral_port() {
    let _g = serial();
    let mut h = H::new(65520, 100);
    let e = Echo::start("127.0.0.1:0");
    let host_app = UdpSocket::bind("0.0.0.0:0").unwrap();
    host_app.set_nonblocking(true).unwrap();
    let p = host_app.local_addr().unwrap().port();
    let guest = SocketAddr::new(G4.parse().unwrap(), p);
    let to = SocketAddr::new(GW4.parse().unwrap(), e.addr.port());
    echo_sizes(&mut h, guest, to, &[10, 3000]);
    let used = h.udp.host_port_of(guest).unwrap();
    assert_ne!(used, p, "the host application keeps its port");
    assert!(host_app.recv_from(&mut [0u8; 64]).is_err(), "the host application got nothing");
}

#[test]
fn port_unreachable_becomes_an_icmp_error_for_the_guest() {
    let _g = serial();
    let mut h = H::new(65520, 100);
    let closed = free_port();
    for (g, gw, ty, code) in [(G4, GW4, 3, 3), (G6, GW6, 1, 4)] {
        let guest = SocketAddr::new(g.parse().unwrap(), free_port());
        let to = SocketAddr::new(gw.parse().unwrap(), closed);
        let want = Got::Icmp { src: to.ip(), dst: guest.ip(), ty, code, quoted_src: guest, quoted_dst: to };
        h.send(guest, to, b"anyone?");
        h.flush();
        assert_eq!(h.wait_frames(1, 2000), vec![want.clone()]);
        // Again, and a send right behind it, without reading events in
        // between: the second send meets the pending error (ECONNREFUSED).
        h.send(guest, to, b"again");
        h.flush();
        std::thread::sleep(Duration::from_millis(20));
        h.send(guest, to, b"and again");
        h.flush();
        let got = h.wait_frames(2, 2000);
        assert_eq!(got, vec![want.clone(), want], "one error per datagram");
    }
    let st = h.udp.stats();
    assert_eq!(st.icmp_to_guest, 6);
    // Each "and again" met the pending error once (ECONNREFUSED from
    // sendmmsg) and was sent again.
    assert_eq!((st.to_host, st.send_calls), (6, 8));
}

#[test]
fn flow_budget_refuses_then_evicts_idle_flows() {
    let _g = serial();
    let mut h = H::new(65520, 8);
    let before = open_fds();
    let to = SocketAddr::new(GW4.parse().unwrap(), free_port());
    for i in 0..20u16 {
        h.send(SocketAddr::new(G4.parse().unwrap(), 50000 + i), to, b"x");
    }
    h.flush();
    assert_eq!(h.udp.len(), 8);
    assert_eq!(h.budget.used, 8);
    assert_eq!(h.udp.stats().refused, 12);
    assert_eq!(h.stats.dropped(Drop::Limit), 12);
    assert_eq!(open_fds(), before + 8);
    // Once the oldest flow has been idle a while, a new flow takes its place.
    h.now = h.now + Duration::from_secs(6);
    h.send(SocketAddr::new(G4.parse().unwrap(), 51000), to, b"x");
    h.flush();
    assert_eq!(h.udp.len(), 8);
    assert_eq!(h.udp.stats().flows_evicted, 1);
    assert_eq!(open_fds(), before + 8);
    h.run(|u, c| u.reset_all(c));
    assert_eq!((h.udp.len(), h.budget.used, open_fds()), (0, 0, before));
}

#[test]
fn hundred_thousand_datagrams_with_the_loss_counted() {
    let _g = serial();
    let e = Echo::start("127.0.0.1:0");
    let mut h = H::new(65520, 100);
    let guest = SocketAddr::new(G4.parse().unwrap(), free_port());
    let to = SocketAddr::new(GW4.parse().unwrap(), e.addr.port());
    const TOTAL: usize = 100_000;
    /// Datagrams in flight at most (the echo server's socket buffer is
    /// the bottleneck: ~200 KiB).
    const WINDOW: usize = 128;
    let mut seen = vec![false; TOTAL];
    let mut received = 0usize;
    let mut sent = 0usize;
    let started = std::time::Instant::now();
    let mut payload = [0u8; 100];
    let collect = |h: &mut H, seen: &mut Vec<bool>, received: &mut usize| {
        for got in h.frames() {
            let Got::Udp { payload, src, dst } = got else { panic!("not UDP") };
            assert_eq!((src, dst, payload.len()), (to, guest, 100));
            let i = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
            if !std::mem::replace(&mut seen[i], true) {
                *received += 1;
            }
        }
    };
    while sent < TOTAL {
        let burst = WINDOW.min(TOTAL - sent);
        for i in sent..sent + burst {
            payload[..4].copy_from_slice(&(i as u32).to_be_bytes());
            h.send(guest, to, &payload);
        }
        sent += burst;
        h.flush();
        // Wait (briefly) for the window to come back.
        let deadline = std::time::Instant::now() + Duration::from_millis(50);
        while received + WINDOW / 4 < sent && std::time::Instant::now() < deadline {
            h.poll(5);
            collect(&mut h, &mut seen, &mut received);
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_millis(500);
    while received < TOTAL && std::time::Instant::now() < deadline {
        h.poll(10);
        collect(&mut h, &mut seen, &mut received);
    }
    let elapsed = started.elapsed();
    let echoed = e.stop();
    let s = h.udp.stats().clone();
    let lost = TOTAL - received;
    eprintln!(
        "UDP 100k: sent {TOTAL}, server echoed {echoed}, guest got {received}, lost {lost} ({:.3}%) in {elapsed:?}; \
         {} sendmmsg calls ({:.1} datagrams each), {} recvmmsg calls ({:.1} each)",
        lost as f64 * 100.0 / TOTAL as f64,
        s.send_calls,
        s.to_host as f64 / s.send_calls as f64,
        s.recv_calls,
        s.to_guest as f64 / s.recv_calls as f64
    );
    assert_eq!(s.to_host, TOTAL as u64, "every datagram left (loss is on the way back or at the server)");
    assert!(s.send_calls <= (TOTAL / WINDOW * 2) as u64, "sendmmsg batches");
    assert_eq!(s.to_guest as usize, received);
    assert!(lost * 100 <= TOTAL, "more than 1% lost: {lost}");
}

#[test]
fn a_scan_of_60000_ports_stays_within_the_budget_and_fds() {
    let _g = serial();
    const PORTS: u16 = 60_000;
    const BUDGET: usize = 1000;
    let mut h = H::new(65520, BUDGET);
    let before = open_fds();
    // From one source port to 60,000 ports of the gateway (host loopback,
    // almost all closed): one flow.
    let scanner = SocketAddr::new(G4.parse().unwrap(), free_port());
    let mut icmp = 0;
    for p in 1..=PORTS {
        h.send(scanner, SocketAddr::new(GW4.parse().unwrap(), p), b"?");
        if p % 1024 == 0 {
            h.flush();
            while h.poll(0) > 0 {}
            icmp += h.discard_frames().1;
        }
    }
    h.flush();
    for _ in 0..20 {
        h.poll(5);
        icmp += h.discard_frames().1;
    }
    assert_eq!(h.udp.len(), 1);
    assert_eq!(open_fds(), before + 1);
    let s1 = h.udp.stats().clone();
    eprintln!("UDP scan from one port: {} datagrams sent, {} ICMP errors to the guest (the host rate-limits its ICMP)", s1.to_host, icmp);
    assert!(s1.to_host + s1.to_host_failed >= u64::from(PORTS));
    assert!(icmp > 0);
    // From 60,000 source ports to one closed port: the budget bounds it.
    let target = SocketAddr::new(GW4.parse().unwrap(), free_port());
    for p in 1..=PORTS {
        h.send(SocketAddr::new(G4.parse().unwrap(), p), target, b"?");
        if p % 1024 == 0 {
            h.flush();
            while h.poll(0) > 0 {}
            h.discard_frames();
        }
    }
    h.flush();
    assert_eq!(h.udp.len(), BUDGET);
    assert_eq!(h.budget.used, BUDGET);
    assert!(open_fds() <= before + BUDGET, "{} fds for {BUDGET} flows", open_fds() - before);
    let refused = h.udp.stats().refused;
    // The scanner's own flow holds one unit; if its port is among the 60,000
    // it is reused, not refused.
    let reused = u64::from(scanner.port() <= PORTS);
    assert_eq!(refused, u64::from(PORTS) - (BUDGET as u64 - 1) - reused);
    // Later, new source ports push out the idle ones, still within bounds.
    h.now = h.now + Duration::from_secs(10);
    for p in 1..=2000u16 {
        h.send(SocketAddr::new(G6.parse().unwrap(), p), SocketAddr::new(GW6.parse().unwrap(), 9), b"?");
    }
    h.flush();
    while h.poll(0) > 0 {}
    h.discard_frames();
    assert_eq!(h.udp.len(), BUDGET);
    assert_eq!(h.udp.stats().flows_evicted, 1000, "the old flows gave way, then the new ones are not idle");
    assert!(open_fds() <= before + BUDGET);
    h.now = h.now + IDLE_TIMEOUT;
    h.timeout();
    assert_eq!((h.udp.len(), h.budget.used, open_fds()), (0, 0, before));
}

#[test]
fn malformed_and_unwanted_guest_datagrams_are_dropped_and_counted() {
    let _g = serial();
    let mut h = H::new(65520, 16);
    let g4: IpAddr = G4.parse().unwrap();
    let gw4: IpAddr = GW4.parse().unwrap();
    let mut good = vec![0u8; 12];
    udp::emit(&mut good, 40000, 9, 4);
    // Truncated at every length short of the header, and a length field
    // too small or too large.
    for len in 0..udp::HEADER_LEN {
        h.run(|u, c| u.handle_guest(c, g4, gw4, &good[..len]));
    }
    assert_eq!(h.stats.dropped(Drop::Truncated), udp::HEADER_LEN as u64);
    let mut short = good.clone();
    short[4..6].copy_from_slice(&7u16.to_be_bytes());
    h.run(|u, c| u.handle_guest(c, g4, gw4, &short));
    assert_eq!(h.stats.dropped(Drop::BadLength), 1);
    let mut long = good.clone();
    long[4..6].copy_from_slice(&13u16.to_be_bytes());
    h.run(|u, c| u.handle_guest(c, g4, gw4, &long));
    assert_eq!(h.stats.dropped(Drop::Truncated), udp::HEADER_LEN as u64 + 1);
    // Port 0, families mixed up.
    let mut port0 = good.clone();
    port0[2..4].copy_from_slice(&[0, 0]);
    h.run(|u, c| u.handle_guest(c, g4, gw4, &port0));
    h.run(|u, c| u.handle_guest(c, g4, GW6.parse().unwrap(), &good));
    assert_eq!(h.stats.dropped(Drop::Malformed), 2);
    // Broadcast, multicast, loopback, a link-local peer we cannot scope.
    for (src, dst) in [(G4, "255.255.255.255"), (G4, "224.0.0.251"), (G4, "127.0.0.1"), (G6, "ff02::fb"), (GLL, "fe80::99")] {
        h.run(|u, c| u.handle_guest(c, src.parse().unwrap(), dst.parse().unwrap(), &good));
    }
    assert_eq!(h.stats.dropped(Drop::NotForUs), 5);
    assert_eq!(h.udp.len(), 0, "no flow for any of these");
    h.flush();
    // Arbitrary bytes (seeded, reproducible) never panic; whatever parses
    // goes to the gateway (host loopback), flows bounded by the budget.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..20_000 {
        let len = (next() % 64) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if len >= 6 && next() % 2 == 0 {
            b[4..6].copy_from_slice(&(len as u16).to_be_bytes());
        }
        let (src, dst) = if next() % 2 == 0 { (g4, gw4) } else { (G6.parse().unwrap(), GW6.parse().unwrap()) };
        h.run(|u, c| u.handle_guest(c, src, dst, &b));
        if next() % 64 == 0 {
            h.flush();
            while h.poll(0) > 0 {}
            h.discard_frames();
        }
    }
    h.flush();
    assert!(h.udp.len() <= 16 && h.budget.used == h.udp.len());
}

#[test]
fn a_guest_reply_to_a_vanished_inbound_peer_gets_port_unreachable() {
    let _g = serial();
    let mut h = H::new(65520, 100);
    let hp = free_port();
    h.run(|u, c| u.listen(c, &[PortSpec::parse(&format!("127.0.0.1/{hp}:5353")).unwrap()])).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let cport = client.local_addr().unwrap().port();
    client.send_to(b"hello", ("127.0.0.1", hp)).unwrap();
    let got = h.wait_frames(1, 2000);
    let peer = SocketAddr::new(GW4.parse().unwrap(), cport);
    let guest = SocketAddr::new(G4.parse().unwrap(), 5353);
    assert_eq!(got, vec![Got::Udp { src: peer, dst: guest, payload: b"hello".to_vec() }]);
    drop(client);
    h.send(guest, peer, b"late answer");
    h.flush();
    let got = h.wait_frames(1, 2000);
    let want = Got::Icmp { src: peer.ip(), dst: guest.ip(), ty: 3, code: 3, quoted_src: guest, quoted_dst: peer };
    assert_eq!(got, vec![want]);
}

#[test]
fn a_frame_of_segments_leaves_as_one_datagram_per_segment() {
    // UDP segmentation offload on a tap: one UDP header, then the payloads
    // of several datagrams. The echo server answers each on its own, so
    // the guest gets back one frame per datagram the host saw.
    let _g = serial();
    let e4 = Echo::start("127.0.0.1:0");
    let mut h = H::new(65520, 100);
    let guest = SocketAddr::new(G4.parse().unwrap(), free_port());
    let to = SocketAddr::new(GW4.parse().unwrap(), e4.addr.port());
    // (payload, segment): a remainder, an exact multiple, a segment larger
    // than the payload, pieces large enough to skip the queue, and no
    // payload at all (one empty datagram, as the kernel would send).
    let cases = [(10usize, 3u16), (4200, 1400), (100, 1400), (20000, 9000), (0, 1000)];
    for (total, seg) in cases {
        let payload: Vec<u8> = (0..total).map(|i| (i * 7 + total) as u8).collect();
        h.send_segmented(guest, to, &payload, NonZeroU16::new(seg));
        h.flush();
        let pieces: Vec<Vec<u8>> =
            if total == 0 { vec![Vec::new()] } else { payload.chunks(usize::from(seg)).map(<[u8]>::to_vec).collect() };
        let want: Vec<Got> = pieces.into_iter().map(|payload| Got::Udp { src: to, dst: guest, payload }).collect();
        let got = h.wait_frames(want.len(), 2000);
        assert_eq!(got, want, "{total} bytes in segments of {seg}");
    }
    let sent = h.udp.stats().to_host;
    assert_eq!(sent, 4 + 3 + 1 + 3 + 1);
    assert_eq!(e4.stop(), sent);
}
