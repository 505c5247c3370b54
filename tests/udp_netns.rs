//! UDP against a real kernel: a tap in a fresh namespace is the guest
//! (configured with `config-net`), our instance runs in a "host" namespace
//! beside a router, as in the guest kit's example. Servers on the host
//! namespace's loopback are reached through the gateway address; clients
//! and servers in the guest are real sockets of its kernel (created by a
//! thread inside the namespace) or busybox.
//!
//! These need the engine to hand UDP to `flow::udp::Udp` (guest datagrams,
//! `UdpFlow`/`UdpListen` events, flush after each guest batch, timers,
//! `listen` with the `-u` specs).

mod common;

use common::driver::Driver;
use common::netns::{wait_until, HostWithRouter, TestNs};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

struct Setup {
    _driver: Driver,
    guest: TestNs,
    net: HostWithRouter,
}

/// Host and router namespaces, a guest namespace with our tap (configured
/// by us), the instance in the host namespace.
fn setup(tag: &str, extra: &[&str]) -> Setup {
    let net = HostWithRouter::new(tag);
    let guest = TestNs::new(&format!("{tag}-g"));
    let netns = format!("netns={}", guest.path.display());
    let mut opts = vec![netns.as_str(), "ns-ifname=tap0", "config-net"];
    opts.extend_from_slice(extra);
    let driver = Driver::start_in(&net.host.path, &Driver::config(&opts)).expect("instance starts");
    Setup { _driver: driver, guest, net }
}

/// A socket made inside a namespace (it stays there).
fn udp_in(ns: &TestNs, bind: &str) -> UdpSocket {
    let bind = bind.to_string();
    let s = ns.run(move || UdpSocket::bind(bind.as_str())).unwrap_or_else(|e| panic!("bind in {}: {e}", ns.name));
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

/// Serves datagrams on `sock` with `answer` in a thread until dropped.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(sock: UdpSocket, answer: fn(&[u8]) -> Vec<u8>) -> Server {
        sock.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(&answer(&buf[..n]), from);
                }
            }
        });
        Server { addr, stop, thread: Some(thread) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn echo(b: &[u8]) -> Vec<u8> {
    b.to_vec()
}

/// A DNS answer to any A/AAAA query: 198.51.100.7 / 2001:db8:ffff::7
/// (RFC 1035 4.1: header, the question copied, one answer pointing at it).
fn dns_answer(q: &[u8]) -> Vec<u8> {
    if q.len() < 12 {
        return Vec::new();
    }
    // End of the question: the name's labels, then type and class.
    let mut i = 12;
    while i < q.len() && q[i] != 0 {
        i += 1 + usize::from(q[i]);
    }
    let end = (i + 5).min(q.len());
    let qtype = if end >= i + 3 { u16::from_be_bytes([q[i + 1], q[i + 2]]) } else { 1 };
    let mut r = q[..end].to_vec();
    r[2] = 0x81; // response, recursion desired
    r[3] = 0x80; // recursion available, no error
    r[4..12].copy_from_slice(&[0, 1, 0, 1, 0, 0, 0, 0]);
    r.extend_from_slice(&[0xc0, 12]);
    if qtype == 28 {
        r.extend_from_slice(&[0, 28, 0, 1, 0, 0, 0, 60, 0, 16]);
        r.extend_from_slice(&"2001:db8:ffff::7".parse::<std::net::Ipv6Addr>().unwrap().octets());
    } else {
        r.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 51, 100, 7]);
    }
    r
}

/// Sends until an answer comes (the first datagrams may wait for neighbour
/// resolution or IPv6 DAD); the answer.
fn first_exchange(s: &UdpSocket, payload: &[u8], within: Duration) -> Option<Vec<u8>> {
    s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let deadline = Instant::now() + within;
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        let _ = s.send(payload);
        if let Ok(n) = s.recv(&mut buf) {
            let answer = buf[..n].to_vec();
            // Answers to earlier tries may still be on their way: let them
            // come and go, so that the caller's next read is its own.
            while s.recv(&mut buf).is_ok() {}
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            return Some(answer);
        }
    }
    None
}

#[test]
fn namespace_echo_of_every_size_v4_v6_and_many_flows() {
    let s = setup("udp-echo", &[]);
    let e4 = Server::start(udp_in(&s.net.host, "127.0.0.1:0"), echo);
    let e6 = Server::start(udp_in(&s.net.host, "[::1]:0"), echo);
    for (bind, gw, port, max) in [("0.0.0.0:0", "192.0.2.1", e4.addr.port(), 65520 - 28), ("[::]:0", "2001:db8::1", e6.addr.port(), 65520 - 48)] {
        // Connected: only replies from exactly the gateway's address and
        // port are accepted.
        let c = udp_in(&s.guest, bind);
        c.connect((gw, port)).unwrap();
        assert_eq!(first_exchange(&c, b"hello", Duration::from_secs(10)).as_deref(), Some(&b"hello"[..]), "{gw}");
        let mut buf = vec![0u8; 65536];
        for size in [1, 2, 100, 1000, 1472, 1500, 8191, 8192, 30000, max] {
            let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            c.send(&payload).unwrap();
            let n = c.recv(&mut buf).unwrap_or_else(|e| panic!("echo of {size} bytes via {gw}: {e}"));
            assert!(n == size && buf[..n] == payload[..], "echo of {size} bytes via {gw}: got {n}");
        }
    }
    // 200 flows at once, each from its own port.
    let socks: Vec<UdpSocket> = (0..200).map(|_| udp_in(&s.guest, "0.0.0.0:0")).collect();
    for (i, c) in socks.iter().enumerate() {
        c.send_to(format!("flow {i}").as_bytes(), ("192.0.2.1", e4.addr.port())).unwrap();
    }
    let mut buf = [0u8; 64];
    for (i, c) in socks.iter().enumerate() {
        let (n, from) = c.recv_from(&mut buf).unwrap_or_else(|e| panic!("flow {i}: {e}"));
        assert_eq!((&buf[..n], from), (format!("flow {i}").as_bytes(), SocketAddr::from(([192, 0, 2, 1], e4.addr.port()))));
    }
}

#[test]
fn namespace_dns_query_reaches_the_resolver_on_host_loopback() {
    // The host's resolver is on its loopback (127.0.0.53, as with
    // systemd-resolved): the guest is told 192.0.2.53 and reaches it there.
    let s = setup("udp-dns", &["dns=127.0.0.53", "dns-forward=192.0.2.53"]);
    let _resolver = Server::start(udp_in(&s.net.host, "127.0.0.53:53"), dns_answer);
    // A connected socket: the answer must come from 192.0.2.53:53 exactly.
    let c = udp_in(&s.guest, "0.0.0.0:0");
    c.connect("192.0.2.53:53").unwrap();
    let query = [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'k', b'i', b't', 4, b't', b'e', b's', b't', 0, 0, 1, 0, 1];
    let answer = first_exchange(&c, &query, Duration::from_secs(10)).expect("an answer from 192.0.2.53:53");
    assert_eq!(&answer[..2], &[0x12, 0x34]);
    assert!(answer.ends_with(&[198, 51, 100, 7]));
    // busybox nslookup, as a guest's tools would ask.
    let o = s.guest.exec("busybox", &["nslookup", "-type=A", "kit.test", "192.0.2.53"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("198.51.100.7"), "nslookup: {out}{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn namespace_sees_port_unreachable_as_connection_refused() {
    let s = setup("udp-icmp", &[]);
    // Reachable first (neighbours resolved), then a closed port.
    let e4 = Server::start(udp_in(&s.net.host, "127.0.0.1:0"), echo);
    let e6 = Server::start(udp_in(&s.net.host, "[::1]:0"), echo);
    for (bind, gw, open) in [("0.0.0.0:0", "192.0.2.1", e4.addr.port()), ("[::]:0", "2001:db8::1", e6.addr.port())] {
        let warm = udp_in(&s.guest, bind);
        warm.connect((gw, open)).unwrap();
        assert!(first_exchange(&warm, b"up?", Duration::from_secs(10)).is_some(), "{gw} reachable");
        let c = udp_in(&s.guest, bind);
        // Port 9 (discard) is closed on the host namespace's loopback.
        c.connect((gw, 9)).unwrap();
        c.send(b"anyone?").unwrap();
        let err = c.recv(&mut [0u8; 16]).expect_err("no answer from a closed port");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{gw}: {err}");
    }
}

#[test]
fn namespace_inbound_forwarding_of_a_range_with_mapping() {
    let s = setup("udp-in", &["udp-ports=10000-10002:20000-20002"]);
    for (gbind, client_bind, seen_as) in [("0.0.0.0:20001", "127.0.0.1:0", "192.0.2.1"), ("[::]:20001", "[::1]:0", "2001:db8::1")] {
        let server = udp_in(&s.guest, gbind);
        let client = udp_in(&s.net.host, client_bind);
        let target = SocketAddr::new(client.local_addr().unwrap().ip(), 10001);
        let mut buf = [0u8; 64];
        // The guest learns of the datagram once its address is known to us
        // (IPv6: after it has sent something, or from the assigned address).
        let got = wait_until(Duration::from_secs(10), || {
            client.send_to(b"ping", target).unwrap();
            server.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
            matches!(server.recv_from(&mut buf), Ok((4, _)))
        });
        assert!(got, "datagram to {target} reached the guest's port 20001");
        let (_, from) = {
            client.send_to(b"ping", target).unwrap();
            server.recv_from(&mut buf).unwrap()
        };
        assert_eq!(from, SocketAddr::new(seen_as.parse().unwrap(), client.local_addr().unwrap().port()));
        server.send_to(b"pong", from).unwrap();
        let (n, replied_from) = client.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], replied_from), (&b"pong"[..], target));
    }
}

#[test]
fn namespace_hundred_thousand_datagrams_with_the_loss_counted() {
    let s = setup("udp-100k", &[]);
    let e4 = Server::start(udp_in(&s.net.host, "127.0.0.1:0"), echo);
    let c = udp_in(&s.guest, "0.0.0.0:0");
    c.connect(("192.0.2.1", e4.addr.port())).unwrap();
    assert!(first_exchange(&c, &[0xff; 100], Duration::from_secs(10)).is_some());
    const TOTAL: usize = 100_000;
    const WINDOW: usize = 256;
    let received = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let rx = c.try_clone().unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let (r2, d2) = (received.clone(), done.clone());
    let reader = std::thread::spawn(move || {
        let mut seen = vec![false; TOTAL];
        let mut buf = [0u8; 200];
        while !d2.load(Ordering::Relaxed) {
            if let Ok(n) = rx.recv(&mut buf) {
                let i = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                if n == 100 && i < TOTAL && !std::mem::replace(&mut seen[i], true) {
                    r2.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    let started = Instant::now();
    let mut payload = [0u8; 100];
    for i in 0..TOTAL {
        // Keep at most WINDOW in flight (waiting a little when lost ones
        // would otherwise stall the window).
        let wait_until_t = Instant::now() + Duration::from_millis(20);
        while i >= received.load(Ordering::Relaxed) + WINDOW && Instant::now() < wait_until_t {
            std::thread::yield_now();
        }
        payload[..4].copy_from_slice(&(i as u32).to_be_bytes());
        let _ = c.send(&payload);
    }
    let sent_in = started.elapsed();
    wait_until(Duration::from_secs(2), || received.load(Ordering::Relaxed) == TOTAL);
    done.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    let got = received.load(Ordering::Relaxed);
    let lost = TOTAL - got;
    eprintln!(
        "UDP 100k through the namespace: got {got} of {TOTAL} back, lost {lost} ({:.3}%), sent in {sent_in:?}",
        lost as f64 * 100.0 / TOTAL as f64
    );
    assert!(lost * 20 <= TOTAL, "more than 5% lost: {lost}");
}
