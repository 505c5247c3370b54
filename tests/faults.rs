//! Faults around a running instance: the process out of fds (RLIMIT_NOFILE
//! lowered), a host peer resetting mid-transfer, the guest's namespace
//! disappearing, a guest that stops reading. Each must give a clear,
//! rate-limited log line, no crash, no busy loop, no leaked socket, and
//! recovery once the cause goes away.

mod common;
#[path = "hostile/frames.rs"]
mod frames;
#[path = "hostile/rig.rs"]
mod rig;

use common::netns::TestNs;
use common::{recv_stream_frame, stream_record};
use frames::*;
use passt::engine::Instance;
use std::io::{ErrorKind, IoSlice, Read, Write};
#[allow(unused_imports)]
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// fd counts and limits are per process: the tests of this file run alone.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// An in-process instance whose log lines are kept (the thread that
/// creates it must stay the one that drives it: the log sink is per
/// thread).
struct Rig {
    inst: Instance,
    out: Arc<Mutex<Vec<Vec<u8>>>>,
    lines: rig::Lines,
    _log: passt::log::SinkGuard,
}

impl Rig {
    fn new(extra: &[&str]) -> Rig {
        let lines: rig::Lines = Default::default();
        let sink = lines.clone();
        let echo = std::env::var("PASST_TEST_ECHO").is_ok();
        let func: passt::log::SinkFn = Arc::new(move |level, text: &str| {
            if echo {
                eprintln!("passt[{level}]: {text}");
            }
            sink.lock().unwrap().push((level, text.to_string()));
        });
        let log = passt::log::SinkGuard::enter(passt::log::Sink { func: Some(func), max_level: 6 });
        let mut opts = CONFIG.to_vec();
        opts.push("frames");
        opts.extend_from_slice(extra);
        let mut inst = Instance::new(&common::driver::Driver::config(&opts)).expect("instance");
        let out: Arc<Mutex<Vec<Vec<u8>>>> = Default::default();
        let o = out.clone();
        inst.set_frame_output(Box::new(move |frames: &[IoSlice<'_>]| {
            o.lock().unwrap().extend(frames.iter().map(|f| f.to_vec()));
            frames.len()
        }))
        .unwrap();
        Rig { inst, out, lines, _log: log }
    }

    fn input(&mut self, f: &[u8]) {
        self.inst.frame_input(f, common::driver::now()).unwrap();
    }

    fn process(&mut self) {
        self.inst.process(common::driver::now()).unwrap();
    }

    fn take(&mut self) -> Vec<Out> {
        std::mem::take(&mut *self.out.lock().unwrap()).iter().filter_map(|f| parse_out(f)).collect()
    }

    /// Runs the loop as a host program would for `ms`; returns how many
    /// times poll() said the instance had work.
    fn run_for(&mut self, ms: u64) -> usize {
        let end = Instant::now() + Duration::from_millis(ms);
        let mut wakeups = 0;
        while Instant::now() < end {
            let mut pfd = libc::pollfd { fd: self.inst.fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: pfd is a valid pollfd array of length 1.
            if unsafe { libc::poll(&mut pfd, 1, 10) } > 0 {
                wakeups += 1;
            }
            self.process();
        }
        wakeups
    }

    fn warnings(&self) -> Vec<String> {
        self.lines.lock().unwrap().iter().filter(|(l, _)| *l <= 4).map(|(_, t)| t.clone()).collect()
    }
}

fn set_nofile(soft: u64) -> u64 {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: r is a valid out-pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    let old = r.rlim_cur;
    r.rlim_cur = soft;
    // SAFETY: r is a valid rlimit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) }, 0);
    old
}

/// Restores RLIMIT_NOFILE even if the test fails half-way.
struct NofileGuard(u64);

impl Drop for NofileGuard {
    fn drop(&mut self) {
        set_nofile(self.0);
    }
}

/// The process runs out of fds while the guest opens TCP connections,
/// UDP flows and pings, and a host peer connects to a forwarded port:
/// the guest gets resets, the log says why (rate limited), the loop does
/// not spin on the listener it cannot accept from, and everything works
/// again once fds are available.
#[test]
fn out_of_fds_is_logged_survived_and_recovered() {
    let _serial = serial();
    let ns = TestNs::new("nofile");
    ns.run(|| {
        out_of_fds();
        Ok(())
    })
    .unwrap();
}

fn out_of_fds() {
    let (g, gw): (IpAddr, IpAddr) = (G4.into(), GW4.into());
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let sport = server.local_addr().unwrap().port();
    server.set_nonblocking(true).unwrap();
    let fwd_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let fds_before = fd_count();
    let fwd = format!("tcp-ports={fwd_port}");
    let mut rig = Rig::new(&[&fwd]);
    // A host peer connects to a forwarded port (while fds are plentiful
    // on its side): the connection waits in the listener's backlog.
    let c = std::net::TcpStream::connect(("127.0.0.1", fwd_port)).unwrap();
    let soft = fd_count() as u64 + 20;
    let guard = NofileGuard(set_nofile(soft));
    // The guest opens 60 connections: the first few get through, the
    // others are refused.
    for i in 0..60u16 {
        rig.input(&syn(g, gw, 30000 + i, sport));
    }
    rig.run_for(200);
    let answers = rig.take();
    let syn_acks = answers.iter().filter(|o| o.proto == P_TCP && o.flags & 0x12 == 0x12).count();
    let resets = answers.iter().filter(|o| o.proto == P_TCP && o.flags & 0x04 != 0).count();
    eprintln!("out of fds: {syn_acks} SYN-ACKs, {resets} resets");
    assert!((1..=25).contains(&syn_acks), "{syn_acks} connections with about 20 fds");
    assert_eq!(syn_acks + resets, 60, "every SYN answered, by a SYN-ACK or a reset");
    // UDP flows and pings, 60 each.
    for i in 0..60u16 {
        rig.input(&ip_frame(g, gw, P_UDP, &udp(g, gw, 31000 + i, 9, b"x")));
        rig.input(&ip_frame(g, gw, P_ICMP, &icmp4_echo(i, 1, b"x")));
    }
    // The forwarded port's listener is readable, but nothing can be
    // accepted.
    let wakeups = rig.run_for(500);
    let warnings = rig.warnings();
    eprintln!("{wakeups} wake-ups in 500 ms; warnings: {warnings:#?}");
    assert!(wakeups < 100, "the loop spins while fds are exhausted: {wakeups} wake-ups in 500 ms");
    assert!(warnings.iter().any(|w| w.contains("Too many open files")), "the log says why: {warnings:#?}");
    assert!(warnings.len() <= 8, "rate-limited: {warnings:#?}");
    // fds come back: everything works again.
    drop(guard);
    // The waiting peer was turned away with a reset, not left hanging.
    let mut c = c;
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut b = [0u8; 1];
    let r = c.read(&mut b);
    assert!(matches!(&r, Err(e) if e.kind() == ErrorKind::ConnectionReset), "the waiting peer is reset: {r:?}");
    drop(c);
    rig.input(&syn(g, gw, 32000, sport));
    rig.run_for(100);
    let o = rig.take();
    assert!(o.iter().any(|o| o.dport == 32000 && o.flags & 0x12 == 0x12), "a new connection once fds are back");
    let c2 = std::net::TcpStream::connect(("127.0.0.1", fwd_port)).unwrap();
    rig.run_for(200);
    let o = rig.take();
    assert!(o.iter().any(|o| o.dport == fwd_port && o.flags == 0x02), "inbound connections reach the guest again: {o:?}");
    drop(c2);
    drop(rig);
    drop(server);
    assert_eq!(fd_count(), fds_before - 1, "no fd leaked");
}

/// The guest's namespace disappears under a running tap instance (its
/// processes gone, the namespace deleted, the tap down) while a host peer
/// keeps talking: our tap fd keeps the namespace alive, so the instance
/// sees a silent guest and a link that refuses frames. No busy loop, no
/// log flood, no crash; freeing the instance releases every socket and
/// the host peer gets an end instead of a hang.
#[test]
fn the_guest_namespace_disappearing() {
    let _serial = serial();
    let fds0 = fd_count();
    let s = rig::setup("nsgone", &[]);
    let l = s.in_host(|| TcpListener::bind("127.0.0.1:0"));
    let to: SocketAddr = format!("{}:{}", rig::GW4, l.local_addr().unwrap().port()).parse().unwrap();
    let fds_idle = fd_count();
    let mut c = s.in_guest(move || TcpStream::connect(to));
    let (mut a, _) = l.accept().unwrap();
    c.write_all(b"before").unwrap();
    let mut b = [0u8; 6];
    a.read_exact(&mut b).unwrap();
    // The guest's processes end without closing their connection (as a
    // SIGKILLed namespace would, once the link is gone), then the
    // namespace is deleted.
    s.guest.ip(&["link", "set", "tap0", "down"]);
    drop(c);
    let out = std::process::Command::new("ip").args(["netns", "del", &s.guest.name]).output().unwrap();
    assert!(out.status.success());
    let w0 = s.driver.wakeups.load(std::sync::atomic::Ordering::Relaxed);
    // The host peer keeps sending: our TCP retransmits into a dead link.
    let writer = std::thread::spawn(move || {
        let chunk = [0x42u8; 4096];
        for _ in 0..64 {
            if a.write_all(&chunk).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        a
    });
    std::thread::sleep(Duration::from_millis(1500));
    let wakeups = s.driver.wakeups.load(std::sync::atomic::Ordering::Relaxed) - w0;
    let warnings = s.driver.warnings();
    eprintln!("{wakeups} wake-ups in 1.5 s after the namespace went; fds {fds_idle} -> {}; warnings {warnings:#?}", fd_count());
    assert!(wakeups < 200, "no busy loop: {wakeups} wake-ups in 1.5 s");
    assert!(warnings.is_empty(), "no log flood: {warnings:#?}");
    assert_eq!(s.driver.count(6, "tap device is down"), 1, "one clear line: {:#?}", s.driver.lines.lock().unwrap());
    assert!(!s.driver.finished(), "the instance still runs");
    let mut a = writer.join().unwrap();
    let rig::Setup { driver, guest, net } = s;
    driver.stop().expect("a clean end");
    drop(guest);
    // Freed: the host peer's connection ends, nothing is left open.
    a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let r = a.read(&mut b);
    assert!(matches!(&r, Ok(0)) || matches!(&r, Err(e) if e.kind() == ErrorKind::ConnectionReset), "the host peer sees the end: {r:?}");
    drop(a);
    drop(l);
    assert_eq!(fd_count(), fds0, "every socket of the instance closed, its tap too");
    drop(net);
}

/// A host peer resets a connection in the middle of a transfer each way:
/// the guest gets a reset (its read or write fails with ECONNRESET or
/// EPIPE, after the data that did arrive), the flow and its socket are
/// gone, and the next connection works.
#[test]
fn a_host_peer_reset_mid_transfer_resets_the_guest() {
    use std::os::fd::AsFd;
    let _serial = serial();
    let s = rig::setup("hostrst", &[]);
    let l = s.in_host(|| TcpListener::bind("127.0.0.1:0"));
    let to: SocketAddr = format!("{}:{}", rig::GW4, l.local_addr().unwrap().port()).parse().unwrap();
    let fds_idle = fd_count();
    // Host -> guest: the host sends 1 MiB, the guest reads 100 KiB, the
    // host resets.
    let mut c = s.in_guest(move || TcpStream::connect(to));
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (mut a, _) = l.accept().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = a.write_all(&vec![7u8; 1 << 20]);
        a
    });
    let mut got = vec![0u8; 100 << 10];
    c.read_exact(&mut got).unwrap();
    let a = sender.join().unwrap();
    passt::sys::tcp::set_linger_zero(a.as_fd()).unwrap();
    drop(a);
    let mut buf = vec![0u8; 1 << 16];
    let end = loop {
        match c.read(&mut buf) {
            Ok(0) => break Ok(0),
            Ok(_) => continue,
            Err(e) => break Err(e),
        }
    };
    assert!(matches!(&end, Err(e) if e.kind() == ErrorKind::ConnectionReset), "the guest sees the reset: {end:?}");
    // Guest -> host: the guest keeps writing, the host resets.
    let mut c2 = s.in_guest(move || TcpStream::connect(to));
    let (mut a2, _) = l.accept().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![9u8; 64 << 10];
        let t0 = Instant::now();
        loop {
            if let Err(e) = c2.write_all(&chunk) {
                return Ok::<_, String>(e);
            }
            if t0.elapsed() > Duration::from_secs(10) {
                return Err("the guest could write for 10 s after the reset".to_string());
            }
        }
    });
    let mut got = vec![0u8; 200 << 10];
    a2.read_exact(&mut got).unwrap();
    passt::sys::tcp::set_linger_zero(a2.as_fd()).unwrap();
    drop(a2);
    let e = writer.join().unwrap().expect("the guest's writes fail");
    assert!(matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe), "{e}");
    drop(c);
    // Both flows gone, their sockets closed; a new connection works.
    assert!(common::netns::wait_until(Duration::from_secs(3), || fd_count() == fds_idle), "fds back to {fds_idle}: {}", fd_count());
    let mut c3 = s.in_guest(move || TcpStream::connect(to));
    let (mut a3, _) = l.accept().unwrap();
    c3.write_all(b"again").unwrap();
    let mut b = [0u8; 5];
    a3.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"again");
}

/// A guest on the stream socket that stops reading while a host peer
/// sends 8 MiB: our writes to it fail with EAGAIN, the queue to the guest
/// fills to its bound, host sockets stop being read (the peer is held
/// back by TCP, memory stays bounded) and when the guest reads again every
/// byte arrives, in order.
#[test]
fn a_guest_that_stops_reading_loses_nothing() {
    let _serial = serial();
    let ns = TestNs::new("stall");
    ns.run(|| {
        stalled_guest();
        Ok(())
    })
    .unwrap();
}

fn write_frame(s: &mut std::os::unix::net::UnixStream, f: &[u8]) {
    s.write_all(&stream_record(f)).unwrap();
}

fn byte_at(off: usize) -> u8 {
    (off as u8) ^ ((off >> 8) as u8).wrapping_mul(13) ^ ((off >> 16) as u8)
}

fn stalled_guest() {
    const N: usize = 8 << 20;
    let dir = TempDir::new("stall");
    let path = dir.0.join("guest.sock");
    let mut opts = CONFIG.to_vec();
    let sock = format!("socket={}", path.display());
    opts.push(&sock);
    let driver = common::driver::Driver::start(&common::driver::Driver::config(&opts)).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (g, gw): (IpAddr, IpAddr) = (G4.into(), GW4.into());
    write_frame(&mut s, &syn(g, gw, 40000, port));
    let sa = loop {
        if let Some(o) = parse_out(&recv_stream_frame(&mut s)) {
            if o.proto == P_TCP && o.dport == 40000 {
                break o;
            }
        }
    };
    assert_eq!(sa.flags & 0x12, 0x12);
    let mut rcv = sa.seq.wrapping_add(1);
    let ack = |rcv: u32| ip_frame(g, gw, P_TCP, &tcp(g, gw, 40000, port, 2, rcv, 0x10, 65535, &[], &[]));
    write_frame(&mut s, &ack(rcv));
    let (mut a, _) = l.accept().unwrap();
    let rss0 = rss_kib();
    let sender = std::thread::spawn(move || {
        for off in (0..N).step_by(64 << 10) {
            let chunk: Vec<u8> = (off..off + (64 << 10)).map(byte_at).collect();
            a.write_all(&chunk).unwrap();
        }
        a.shutdown(Shutdown::Write).unwrap();
        a
    });
    // The guest does not read for a second.
    std::thread::sleep(Duration::from_secs(1));
    let rss_stalled = rss_kib();
    eprintln!("RSS {rss0} KiB -> {rss_stalled} KiB while the guest does not read");
    assert!(rss_stalled < rss0 + 16 * 1024, "memory bounded while the guest stalls: {rss0} -> {rss_stalled} KiB");
    assert!(!sender.is_finished(), "the host peer is held back, not buffered without bound");
    // It reads again, acknowledging as it goes.
    let mut got = 0usize;
    let mut fin = false;
    let t0 = Instant::now();
    while !fin {
        assert!(t0.elapsed() < Duration::from_secs(30), "stuck at {got} bytes");
        let Some(o) = parse_out(&recv_stream_frame(&mut s)) else { continue };
        if o.proto != P_TCP || o.dport != 40000 {
            continue;
        }
        assert_eq!(o.flags & 0x04, 0, "no reset");
        if o.seq == rcv {
            for (i, b) in o.payload.iter().enumerate() {
                assert_eq!(*b, byte_at(got + i), "byte {} intact", got + i);
            }
            got += o.payload.len();
            rcv = rcv.wrapping_add(o.payload.len() as u32);
            if o.flags & 0x01 != 0 {
                rcv = rcv.wrapping_add(1);
                fin = true;
            }
        }
        write_frame(&mut s, &ack(rcv));
    }
    assert_eq!(got, N, "every byte arrived");
    drop(sender.join().unwrap());
    drop(s);
    driver.stop().unwrap();
}

/// The C daemon (examples-c/passt-standalone) started under `prlimit
/// --nofile=40:1024`: a guest on its socket opens 60 connections; it answers
/// every SYN (SYN-ACK or reset), says why on stderr, stays up; once its
/// limit is raised (`prlimit --pid`), new connections work.
#[test]
fn the_daemon_out_of_fds_under_prlimit() {
    let _serial = serial();
    let daemon = common::build_standalone("hostile");
    let ns = TestNs::new("daemon");
    // World-writable, in case the daemon drops to another user.
    let dir = TempDir::new("daemon");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let path = dir.0.join("guest.sock");
    let l = ns.run(|| TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = l.local_addr().unwrap().port();
    let mut child = common::netns::ChildGuard(
        ns.command("prlimit")
            .arg("--nofile=40:1024")
            .arg(&daemon)
            .args(["-f", "--runas", "0:0", "-s", path.to_str().unwrap(), "-a", "10.0.2.15", "-n", "24", "-g", "10.0.2.2", "-4"])
            .env("LD_LIBRARY_PATH", common::lib_dir())
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let log: Arc<Mutex<String>> = Default::default();
    let sink = log.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    // The socket file appears at bind(), a moment before listen().
    let mut conn = None;
    assert!(
        common::netns::wait_until(Duration::from_secs(10), || {
            conn = std::os::unix::net::UnixStream::connect(&path).ok();
            conn.is_some()
        }),
        "the daemon listens: {}",
        log.lock().unwrap()
    );
    let mut s = conn.unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (g, gw): (IpAddr, IpAddr) = (G4.into(), GW4.into());
    for i in 0..60u16 {
        write_frame(&mut s, &syn(g, gw, 30000 + i, port));
    }
    let (mut syn_acks, mut resets) = (0, 0);
    while syn_acks + resets < 60 {
        let Some(o) = parse_out(&recv_stream_frame(&mut s)) else { continue };
        if o.proto == P_TCP && (30000..30060).contains(&o.dport) {
            if o.flags & 0x04 != 0 {
                resets += 1;
            } else if o.flags & 0x12 == 0x12 {
                syn_acks += 1;
            }
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let text = log.lock().unwrap().clone();
    eprintln!("daemon at 40 fds: {syn_acks} SYN-ACKs, {resets} resets; stderr:\n{text}");
    assert!(resets > 0 && syn_acks > 0, "some connections opened, the rest refused");
    assert!(text.contains("Too many open files"), "the daemon says why");
    assert!(text.lines().filter(|l| l.contains("Too many open files")).count() <= 3, "rate limited");
    assert!(child.0.try_wait().unwrap().is_none(), "the daemon is still running");
    // Raise the running daemon's limit (it runs as root, without
    // CAP_SYS_RESOURCE here: the soft limit, up to the hard one): new
    // connections work again.
    let pid = child.0.id().to_string();
    let out = std::process::Command::new("prlimit").args(["--pid", &pid, "--nofile=1024:1024"]).output().unwrap();
    assert!(out.status.success(), "prlimit --pid: {}", String::from_utf8_lossy(&out.stderr));
    write_frame(&mut s, &syn(g, gw, 31000, port));
    let o = loop {
        if let Some(o) = parse_out(&recv_stream_frame(&mut s)) {
            if o.proto == P_TCP && o.dport == 31000 {
                break o;
            }
        }
    };
    assert_eq!(o.flags & 0x12, 0x12, "a new connection once the limit is raised");
    drop(s);
    drop(child);
}
