//! TCP through a real instance: a tap in a fresh namespace whose kernel is
//! the guest, our instance in a "host" namespace with a router beside it,
//! clients and servers as Rust threads inside those namespaces. Transfers
//! are compared by checksum.

mod common;

use common::driver::{fd_count, Driver};
use common::netns::{wait_until, HostWithRouter, TestNs};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// Tests that count this process's fds run alone; the others together.
static FDS: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    FDS.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> std::sync::RwLockWriteGuard<'static, ()> {
    FDS.write().unwrap_or_else(|e| e.into_inner())
}

const GW4: &str = "192.0.2.1";
const GW6: &str = "2001:db8::1";
/// An address of the router's, reached through the host's default route.
const FAR4: &str = "203.0.113.1";

struct Setup {
    _driver: Driver,
    guest: TestNs,
    net: HostWithRouter,
}

impl Setup {
    /// Runs `f` inside the guest namespace.
    fn in_guest<T: Send>(&self, f: impl FnOnce() -> std::io::Result<T> + Send) -> T {
        self.guest.run(f).expect("in the guest namespace")
    }

    fn in_host<T: Send>(&self, f: impl FnOnce() -> std::io::Result<T> + Send) -> T {
        self.net.host.run(f).expect("in the host namespace")
    }

    /// A listener on the host's loopback (what the gateway address reaches).
    fn host_server(&self, v6: bool) -> (TcpListener, u16) {
        let l = self.in_host(|| TcpListener::bind(if v6 { "[::1]:0" } else { "127.0.0.1:0" }));
        let port = l.local_addr().unwrap().port();
        (l, port)
    }

    fn guest_connect(&self, to: SocketAddr) -> std::io::Result<TcpStream> {
        self.guest.run(move || {
            let s = TcpStream::connect_timeout(&to, Duration::from_secs(10))?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            Ok(s)
        })
    }
}

/// Host and router namespaces, a guest namespace configured by us
/// (config-net), and an instance in the host namespace.
fn setup(tag: &str, extra: &[&str]) -> Setup {
    let net = HostWithRouter::new(tag);
    net.router.ip(&["addr", "add", &format!("{FAR4}/32"), "dev", "lo"]);
    let guest = TestNs::new(&format!("{tag}-g"));
    let netns = format!("netns={}", guest.path.display());
    let mut opts = vec![netns.as_str(), "ns-ifname=tap0", "config-net"];
    opts.extend_from_slice(extra);
    let driver = Driver::start_in(&net.host.path, &Driver::config(&opts)).expect("instance starts");
    let s = Setup { _driver: driver, guest, net };
    // IPv6 needs the link-local address and neighbours: wait until a
    // connection attempt gets an answer (refused is an answer).
    let probe: SocketAddr = format!("[{GW6}]:1").parse().unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || {
            matches!(s.guest.run(move || TcpStream::connect_timeout(&probe, Duration::from_millis(500))), Err(e) if e.kind() == ErrorKind::ConnectionRefused)
        }),
        "IPv6 path ready"
    );
    s
}

/// A deterministic byte stream and an order-sensitive checksum (FNV-1a).
struct Stream {
    block: Vec<u8>,
}

impl Stream {
    fn new(seed: u64) -> Stream {
        let mut x = seed | 1;
        let block = (0..1 << 16)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        Stream { block }
    }

    /// Bytes `off..off+buf.len()` of the stream: the block, with its
    /// index in the first 8 bytes of each (so blocks cannot be swapped).
    fn fill(&self, off: u64, buf: &mut [u8]) {
        let b = self.block.len() as u64;
        for (i, byte) in buf.iter_mut().enumerate() {
            let p = off + i as u64;
            let (n, at) = (p / b, (p % b) as usize);
            *byte = if at < 8 { (n >> (8 * at)) as u8 } else { self.block[at] };
        }
    }
}

fn fnv(mut h: u64, data: &[u8]) -> u64 {
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}
const FNV0: u64 = 0xcbf2_9ce4_8422_2325;

/// Writes `n` bytes of the stream; returns their checksum.
fn send_stream(s: &mut TcpStream, st: &Stream, n: u64) -> u64 {
    let mut buf = vec![0u8; 1 << 16];
    let (mut off, mut h) = (0u64, FNV0);
    while off < n {
        let len = (n - off).min(buf.len() as u64) as usize;
        st.fill(off, &mut buf[..len]);
        s.write_all(&buf[..len]).expect("write");
        h = fnv(h, &buf[..len]);
        off += len as u64;
    }
    h
}

/// Reads to the end of stream; returns (bytes, checksum).
fn recv_all(s: &mut TcpStream) -> (u64, u64) {
    let mut buf = vec![0u8; 1 << 16];
    let (mut n, mut h) = (0u64, FNV0);
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (n, h),
            Ok(k) => {
                h = fnv(h, &buf[..k]);
                n += k as u64;
            }
            Err(e) => panic!("read after {n} bytes: {e}"),
        }
    }
}

/// One transfer each way of `n` bytes between the guest and `server`.
fn transfer_both_ways(s: &Setup, server: &TcpListener, to: SocketAddr, n: u64) {
    let st = Stream::new(n ^ 0x5eed);
    // Guest -> host.
    let t0 = Instant::now();
    let mut c = s.guest_connect(to).expect("connect");
    let srv = std::thread::scope(|scope| {
        let h = scope.spawn(|| {
            let (mut a, _) = server.accept().unwrap();
            a.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            recv_all(&mut a)
        });
        let sent = send_stream(&mut c, &st, n);
        c.shutdown(Shutdown::Write).unwrap();
        let got = h.join().unwrap();
        assert_eq!(got, (n, sent), "guest -> host, {n} bytes");
        got
    });
    let up = t0.elapsed();
    // The server closed after reading: our FIN reaches the guest.
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    drop(c);
    // Host -> guest.
    let t0 = Instant::now();
    let mut c = s.guest_connect(to).expect("connect");
    std::thread::scope(|scope| {
        let h = scope.spawn(|| {
            let (mut a, _) = server.accept().unwrap();
            let sent = send_stream(&mut a, &st, n);
            a.shutdown(Shutdown::Write).unwrap();
            sent
        });
        let got = recv_all(&mut c);
        let sent = h.join().unwrap();
        assert_eq!(got, (n, sent), "host -> guest, {n} bytes");
    });
    let down = t0.elapsed();
    if n >= 1 << 20 {
        let mbit = |d: Duration| n as f64 * 8.0 / d.as_secs_f64() / 1e6;
        eprintln!("{n} bytes: guest->host {:.0} Mbit/s, host->guest {:.0} Mbit/s (debug build)", mbit(up), mbit(down));
    }
    let _ = srv;
}

#[test]
fn transfers_of_every_size_both_ways_over_ipv4() {
    let _fds = shared();
    let s = setup("tcp-xfer4", &[]);
    let (l, port) = s.host_server(false);
    let to: SocketAddr = format!("{GW4}:{port}").parse().unwrap();
    let before = s.guest.tcp_retransmissions();
    for n in [0u64, 1, 64 << 10, 256 << 20] {
        transfer_both_ways(&s, &l, to, n);
    }
    // Nothing lost on the way: no window we advertised was refused, no
    // window update looked like a duplicate ACK.
    assert_eq!(s.guest.tcp_retransmissions() - before, 0, "the guest retransmitted");
}

#[test]
fn transfers_over_ipv6_and_to_a_routed_address() {
    let _fds = shared();
    let s = setup("tcp-xfer6", &[]);
    let (l, port) = s.host_server(true);
    let to: SocketAddr = format!("[{GW6}]:{port}").parse().unwrap();
    for n in [1u64, 64 << 10, 8 << 20] {
        transfer_both_ways(&s, &l, to, n);
    }
    // Not the loopback: a server on the router, through the host's route.
    let far = s.net.router.run(|| TcpListener::bind(format!("{FAR4}:0"))).unwrap();
    let to: SocketAddr = format!("{FAR4}:{}", far.local_addr().unwrap().port()).parse().unwrap();
    transfer_both_ways(&s, &far, to, 1 << 20);
}

#[test]
fn five_hundred_parallel_connections() {
    let _fds = shared();
    let s = setup("tcp-many", &[]);
    let (l, port) = s.host_server(false);
    let to: SocketAddr = format!("{GW4}:{port}").parse().unwrap();
    const N: usize = 500;
    std::thread::scope(|scope| {
        let server = scope.spawn(|| {
            let mut conns = Vec::new();
            for _ in 0..N {
                let (a, _) = l.accept().unwrap();
                a.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                conns.push(a);
            }
            // Echo each one's message, reversed.
            for a in &mut conns {
                let mut b = [0u8; 8];
                a.read_exact(&mut b).unwrap();
                b.reverse();
                a.write_all(&b).unwrap();
            }
            conns
        });
        let mut clients: Vec<TcpStream> = s.in_guest(|| {
            (0..N)
                .map(|_| {
                    let c = TcpStream::connect_timeout(&to, Duration::from_secs(10))?;
                    c.set_read_timeout(Some(Duration::from_secs(30)))?;
                    Ok(c)
                })
                .collect()
        });
        for (i, c) in clients.iter_mut().enumerate() {
            c.write_all(&(i as u64).to_le_bytes()).unwrap();
        }
        for (i, c) in clients.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            c.read_exact(&mut b).unwrap();
            b.reverse();
            assert_eq!(u64::from_le_bytes(b), i as u64);
        }
        let conns = server.join().unwrap();
        drop(clients);
        // Every guest close reaches the server as end of stream.
        for mut a in conns {
            let mut b = [0u8; 1];
            assert_eq!(a.read(&mut b).unwrap(), 0);
        }
    });
}

#[test]
fn half_close_both_ways() {
    let _fds = shared();
    let s = setup("tcp-half", &[]);
    let (l, port) = s.host_server(false);
    let to: SocketAddr = format!("{GW4}:{port}").parse().unwrap();
    // The guest closes first and keeps reading.
    let mut c = s.guest_connect(to).unwrap();
    let (mut a, _) = l.accept().unwrap();
    a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"question").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut q = Vec::new();
    a.read_to_end(&mut q).unwrap();
    assert_eq!(q, b"question");
    std::thread::sleep(Duration::from_millis(100));
    a.write_all(b"a long answer").unwrap();
    a.shutdown(Shutdown::Write).unwrap();
    let mut ans = Vec::new();
    c.read_to_end(&mut ans).unwrap();
    assert_eq!(ans, b"a long answer");
    // The host closes first and keeps reading.
    let mut c = s.guest_connect(to).unwrap();
    let (mut a, _) = l.accept().unwrap();
    a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    a.write_all(b"banner").unwrap();
    a.shutdown(Shutdown::Write).unwrap();
    let mut b = Vec::new();
    c.read_to_end(&mut b).unwrap();
    assert_eq!(b, b"banner");
    std::thread::sleep(Duration::from_millis(100));
    c.write_all(b"late reply").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut r = Vec::new();
    a.read_to_end(&mut r).unwrap();
    assert_eq!(r, b"late reply");
}

#[test]
fn refused_is_immediate_and_resets_cross_both_ways() {
    let _fds = shared();
    let s = setup("tcp-rst", &[]);
    // Refused: at once, not after the guest's own timeout.
    let closed = s.in_host(|| TcpListener::bind("127.0.0.1:0")).local_addr().unwrap().port();
    for to in [format!("{GW4}:{closed}"), format!("[{GW6}]:{closed}")] {
        let to: SocketAddr = to.parse().unwrap();
        let t0 = Instant::now();
        let e = match s.guest_connect(to) {
            Err(e) => e,
            // Seen once in ~10 suite runs, not reproduced in 400 runs of
            // this binary: say what the host namespace held at the time.
            Ok(c) => panic!(
                "{to}: connected from {:?} where nothing listens (port {closed} closed); host TCP sockets:\n{}",
                c.local_addr(),
                s.net.host.exec_ok("ss", &["-tane"])
            ),
        };
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{to}: {e}");
        assert!(t0.elapsed() < Duration::from_millis(500), "{to}: took {:?}", t0.elapsed());
    }
    let (l, port) = s.host_server(false);
    let to: SocketAddr = format!("{GW4}:{port}").parse().unwrap();
    // The host resets.
    let mut c = s.guest_connect(to).unwrap();
    let (a, _) = l.accept().unwrap();
    passt::sys::tcp::set_linger_zero(a.as_fd()).unwrap();
    drop(a);
    let mut b = [0u8; 1];
    assert_eq!(c.read(&mut b).unwrap_err().kind(), ErrorKind::ConnectionReset);
    // The guest resets.
    let c = s.guest_connect(to).unwrap();
    let (mut a, _) = l.accept().unwrap();
    a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    passt::sys::tcp::set_linger_zero(c.as_fd()).unwrap();
    drop(c);
    assert_eq!(a.read(&mut b).unwrap_err().kind(), ErrorKind::ConnectionReset);
}

#[test]
fn inbound_forwarding_with_a_range_and_a_mapping() {
    let _fds = shared();
    // Ports chosen free in the (fresh) host namespace.
    let (r0, m_host, m_guest) = (41000u16, 42080u16, 8080u16);
    let t_range = format!("tcp-ports={}-{}", r0, r0 + 2);
    let t_map = format!("tcp-ports={m_host}:{m_guest}");
    let s = setup("tcp-in", &[&t_range, &t_map]);
    // Servers in the guest on the forwarded ports.
    let listeners: Vec<TcpListener> = s.in_guest(|| {
        [r0, r0 + 1, r0 + 2, m_guest].iter().map(|p| TcpListener::bind(("::", *p))).collect()
    });
    std::thread::scope(|scope| {
        for l in &listeners {
            scope.spawn(move || {
                for _ in 0..2 {
                    let (mut a, peer) = l.accept().unwrap();
                    a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    let mut b = [0u8; 4];
                    a.read_exact(&mut b).unwrap();
                    // Answer with the port it came in on and who it saw.
                    let reply = format!("{}:{b:?}:{}", a.local_addr().unwrap().port(), peer.ip());
                    a.write_all(reply.as_bytes()).unwrap();
                }
            });
        }
        // From the host's loopback (appears as the gateway), IPv4 and IPv6.
        for (port, want_port) in [(r0, r0), (r0 + 2, r0 + 2), (m_host, m_guest), (r0 + 1, r0 + 1)] {
            for addr in [format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
                let addr: SocketAddr = addr.parse().unwrap();
                let mut c = s.in_host(move || TcpStream::connect_timeout(&addr, Duration::from_secs(5)));
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                c.write_all(b"knck").unwrap();
                let mut r = String::new();
                c.read_to_string(&mut r).unwrap();
                let gw = if addr.is_ipv4() { format!("::ffff:{GW4}") } else { GW6.to_string() };
                assert_eq!(r, format!("{want_port}:{:?}:{gw}", *b"knck"), "via {addr}");
            }
        }
    });
    // A port outside the spec is not forwarded.
    let other: SocketAddr = format!("127.0.0.1:{}", r0 + 3).parse().unwrap();
    let e = s.in_host(move || Ok(TcpStream::connect_timeout(&other, Duration::from_secs(2)))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
}

/// A guest attached through the stream socket (as QEMU is), pumped from a
/// tap in a namespace; dropping the pump is the guest vanishing.
struct Pump {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Pump {
    fn new(guest: &TestNs, sock_path: &std::path::Path) -> Pump {
        use std::os::unix::net::UnixStream;
        let tap = std::fs::File::from(guest.run(|| passt::sys::tun::open_tap("tap0")).unwrap());
        guest.ip(&["link", "set", "tap0", "mtu", "65520", "up"]);
        guest.ip(&["addr", "add", "192.0.2.2/24", "dev", "tap0"]);
        guest.ip(&["route", "add", "default", "via", GW4]);
        let sock = UnixStream::connect(sock_path).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = |s: &std::sync::atomic::AtomicBool| s.load(std::sync::atomic::Ordering::Relaxed);
        let mut threads = Vec::new();
        {
            // Tap (non-blocking) -> socket.
            let (mut tap, mut sock, stop) = (tap.try_clone().unwrap(), sock.try_clone().unwrap(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536 + 4];
                while !stopped(&stop) {
                    match tap.read(&mut buf[4..]) {
                        Ok(n) => {
                            buf[..4].copy_from_slice(&(n as u32).to_be_bytes());
                            if sock.write_all(&buf[..4 + n]).is_err() {
                                return;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
                        Err(_) => return,
                    }
                }
            }));
        }
        {
            // Socket (length-prefixed frames) -> tap.
            let (mut tap, mut sock, stop) = (tap, sock, stop.clone());
            sock.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            threads.push(std::thread::spawn(move || {
                let mut stream = Vec::new();
                let mut buf = vec![0u8; 1 << 17];
                while !stopped(&stop) {
                    match sock.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => stream.extend_from_slice(&buf[..n]),
                        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
                        Err(_) => return,
                    }
                    let (frames, used) = common::split_stream_records(&stream);
                    for frame in frames {
                        let _ = tap.write(frame);
                    }
                    stream.drain(..used);
                }
            }));
        }
        Pump { stop, threads }
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[test]
fn guest_vanishing_mid_transfer_closes_every_socket() {
    let _fds = exclusive();
    let net = HostWithRouter::new("tcp-gone");
    let guest = TestNs::new("tcp-gone-g");
    let dir = std::env::temp_dir().join(format!("passt-tcp-gone-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let sock = format!("socket={}", path.display());
    let driver = Driver::start_in(&net.host.path, &Driver::config(&[&sock, "ipv4-only"])).unwrap();
    let l = net.host.run(|| TcpListener::bind("127.0.0.1:0")).unwrap();
    let to: SocketAddr = format!("{GW4}:{}", l.local_addr().unwrap().port()).parse().unwrap();
    let baseline = fd_count();
    let pump = Pump::new(&guest, &path);
    const N: usize = 20;
    let clients: Vec<TcpStream> = guest
        .run(|| (0..N).map(|_| TcpStream::connect_timeout(&to, Duration::from_secs(10))).collect())
        .unwrap();
    let servers: Vec<TcpStream> = (0..N).map(|_| l.accept().unwrap().0).collect();
    // Data in flight both ways; the guest reads nothing.
    for c in &clients {
        (&*c).write_all(&[7u8; 100_000]).unwrap();
    }
    // Host data in flight too: write until the buffers are full (the
    // writers stop before the guest vanishes, so that only the reads
    // below can collect the reset).
    for a in &servers {
        a.set_nonblocking(true).unwrap();
        let mut total = 0;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match (&*a).write(&[9u8; 65536]) {
                Ok(n) => total += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock && total > 0 => break,
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => panic!("write: {e}"),
            }
        }
        a.set_nonblocking(false).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let with_flows = fd_count();
    assert!(with_flows >= baseline + 3 * N, "{baseline} -> {with_flows}");
    // The guest vanishes.
    drop(pump);
    // Each host peer sees a reset.
    for mut a in servers {
        let mut b = vec![0u8; 1 << 20];
        a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let e = loop {
            match a.read(&mut b) {
                Ok(0) => panic!("end of stream instead of a reset"),
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(e.kind(), ErrorKind::ConnectionReset);
    }
    drop(clients);
    // Our sockets, the instance's end of the guest connection, the pump's
    // and the clients' and servers' are all gone.
    assert!(
        wait_until(Duration::from_secs(5), || fd_count() == baseline),
        "fds: baseline {baseline}, now {}",
        fd_count()
    );
    driver.stop().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs iperf3 in `client_ns` against a server in `server_ns`; returns
/// Gbit/s received.
fn iperf3(server_ns: &TestNs, bind: &str, client_ns: &TestNs, to: &str, extra: &[&str]) -> f64 {
    let port = "5301";
    let _srv = server_ns.spawn_guarded("iperf3", &["-s", "-1", "-B", bind, "-p", port]);
    std::thread::sleep(Duration::from_millis(300));
    let mut args = vec!["-c", to, "-p", port, "-t", "5", "-C", "cubic", "-J"];
    args.extend_from_slice(extra);
    let out = client_ns.exec("iperf3", &args);
    let json = String::from_utf8_lossy(&out.stdout);
    let key = "\"sum_received\"";
    let at = json.find(key).unwrap_or_else(|| panic!("iperf3 failed: {json} {}", String::from_utf8_lossy(&out.stderr)));
    let rest = &json[at..];
    let bps = rest.find("\"bits_per_second\":").map(|i| &rest[i + 18..]).unwrap();
    let end = bps.find([',', '\n', '}']).unwrap();
    bps[..end].trim().parse::<f64>().unwrap() / 1e9
}

/// Throughput against a veth pair, same run (not a pass/fail test: run with
/// `cargo test --release --test tcp_ns -- --ignored --nocapture`).
#[test]
#[ignore]
fn iperf3_against_veth() {
    let _fds = shared();
    let s = setup("tcp-perf", &[]);
    let mut rows = Vec::new();
    for extra in [&[][..], &["-w", "256K"][..]] {
        let up = iperf3(&s.net.host, "127.0.0.1", &s.guest, GW4, extra);
        let down = iperf3(&s.net.host, "127.0.0.1", &s.guest, GW4, &[extra, &["-R"]].concat());
        rows.push(format!("ours {extra:?}: guest->host {up:.2} Gbit/s, host->guest {down:.2} Gbit/s"));
    }
    let a = TestNs::new("tcp-perf-va");
    let b = TestNs::new("tcp-perf-vb");
    let v = common::netns::VethPair::new(common::netns::Side::Ns(&a), "v0", common::netns::Side::Ns(&b), "v1");
    v.addr_a("10.9.0.1/24").addr_b("10.9.0.2/24");
    v.ip_a(&["link", "set", "v0", "mtu", "65520"]);
    v.ip_b(&["link", "set", "v1", "mtu", "65520"]);
    for extra in [&[][..], &["-w", "256K"][..]] {
        let up = iperf3(&b, "10.9.0.2", &a, "10.9.0.2", extra);
        let down = iperf3(&b, "10.9.0.2", &a, "10.9.0.2", &[extra, &["-R"]].concat());
        rows.push(format!("veth {extra:?}: a->b {up:.2} Gbit/s, b->a {down:.2} Gbit/s"));
    }
    for r in rows {
        eprintln!("{r}");
    }
}

