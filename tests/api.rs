//! The embedding API (`passt::api::Passt`, and the C ABI over it), with
//! real traffic:
//!
//! * statistics: exact counters after known traffic (ARP, UDP echo through
//!   the gateway to a server on the namespace's loopback);
//! * run-time port forwards: TCP and UDP forwards added and removed while
//!   the instance runs, a guest namespace (tap) serving them, a client on
//!   the host side: works after add, refused after remove, earlier TCP
//!   connections carry on, conflicts and bad specs named;
//! * back-pressure: an in-process host (frames) bridged to a tap whose
//!   kernel is the guest, taking one frame per call and none until it says
//!   it is ready again: an 8 MiB TCP download arrives byte-exact;
//! * events: guest attached/gone (socket and frames), addresses, DHCP lease;
//! * threads: eight instances driven in parallel threads, each with its
//!   own ARP/DHCP/UDP/ICMP traffic, each getting exactly its own answers;
//! * rate-limited guest-triggered logs;
//! * the panic boundary through the C ABI.
//!
//! Everything runs in namespaces the tests create (root needed; skipped
//! otherwise).

mod common;

use common::{is_root, recv_stream_frame, stream_record};
use common::netns::TestNs;
use passt::api::{monotonic_now, Event, Passt, Proto};
use passt::stats::Drop;
use passt::{Config, Instant};
use std::io::{IoSlice, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
const GUEST: [u8; 4] = [10, 0, 2, 15];
const GW: [u8; 4] = [10, 0, 2, 2];

macro_rules! need_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root (namespaces)");
            return;
        }
    };
}

fn config(opts: &[&str]) -> Config {
    let mut c = Config::new();
    for o in opts {
        let (k, v) = o.split_once('=').unwrap_or((o, ""));
        c.set(k, v).unwrap_or_else(|e| panic!("{o}: {e}"));
    }
    c
}

const FRAMES: &[&str] = &["frames", "address=10.0.2.15", "netmask=24", "gateway=10.0.2.2", "ipv4-only"];

type Frames = Arc<Mutex<Vec<Vec<u8>>>>;

/// A frames instance whose output is collected.
fn frames_instance(extra: &[&str]) -> (Passt, Frames) {
    let mut opts = FRAMES.to_vec();
    opts.extend_from_slice(extra);
    let mut p = Passt::new(&config(&opts)).expect("instance");
    let out: Frames = Default::default();
    let sink = out.clone();
    p.set_frame_output(move |frames: &[IoSlice<'_>]| {
        sink.lock().unwrap().extend(frames.iter().map(|f| f.to_vec()));
        frames.len()
    })
    .unwrap();
    (p, out)
}

// ---- Frame builders (IPv4 only; checksums computed here). -----------------

fn csum(data: &[u8], mut acc: u32) -> u16 {
    for c in data.chunks(2) {
        acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

fn ether(dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn arp_request(target: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&GUEST_MAC);
    a.extend_from_slice(&GUEST);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target);
    ether([0xff; 6], 0x0806, &a)
}

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
    let len = (20 + l4.len()) as u16;
    let mut h = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
    h[2..4].copy_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = csum(&h, 0);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(l4);
    h
}

/// A UDP datagram from the guest (checksum 0: none, allowed for IPv4).
fn udp_frame(dst_mac: [u8; 6], src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&src.1.to_be_bytes());
    u.extend_from_slice(&dst.1.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    ether(dst_mac, 0x0800, &ipv4(src.0, dst.0, 17, &u))
}

fn icmp_echo(dst_mac: [u8; 6], id: u16, seq: u16) -> Vec<u8> {
    icmp_msg(dst_mac, 8, id, seq)
}

fn icmp_msg(dst_mac: [u8; 6], icmp_type: u8, id: u16, seq: u16) -> Vec<u8> {
    let mut m = vec![icmp_type, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(b"passt-api-test");
    let c = csum(&m, 0);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ether(dst_mac, 0x0800, &ipv4(GUEST, GW, 1, &m))
}

/// A DHCP DISCOVER (53=1) or REQUEST (53=3, 50=10.0.2.15, 54=server).
fn dhcp(msg_type: u8, server: [u8; 4]) -> Vec<u8> {
    let mut b = vec![0u8; 240];
    b[0] = 1;
    b[1] = 1;
    b[2] = 6;
    b[4..8].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    b[28..34].copy_from_slice(&GUEST_MAC);
    b[236..240].copy_from_slice(&[99, 130, 83, 99]);
    b.extend_from_slice(&[53, 1, msg_type]);
    if msg_type == 3 {
        b.extend_from_slice(&[50, 4]);
        b.extend_from_slice(&GUEST);
        b.extend_from_slice(&[54, 4]);
        b.extend_from_slice(&server);
    }
    b.push(255);
    udp_frame([0xff; 6], ([0; 4], 68), ([255; 4], 67), &b)
}

fn is_arp_reply(f: &[u8], target: [u8; 4]) -> bool {
    f.len() >= 42 && f[12..14] == [8, 6] && f[20..22] == [0, 2] && f[28..32] == target && f[0..6] == GUEST_MAC
}

/// UDP payload of a frame to the guest from `from`, if it is one.
fn udp_payload(f: &[u8], from: ([u8; 4], u16)) -> Option<Vec<u8>> {
    if f.len() < 42 || f[12..14] != [8, 0] || f[23] != 17 || f[26..30] != from.0 || f[34..36] != from.1.to_be_bytes() {
        return None;
    }
    Some(f[42..].to_vec())
}

fn is_icmp_reply(f: &[u8], id: u16) -> bool {
    f.len() >= 42 && f[12..14] == [8, 0] && f[23] == 1 && f[34] == 0 && f[38..40] == id.to_be_bytes()
}

/// Runs `job` in a thread (same namespace as the caller) while driving
/// `p` (poll on its fd, then process) until the job is done.
fn pump<T: Send>(p: &mut Passt, job: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        let h = s.spawn(job);
        while !h.is_finished() {
            wait_readable(p.fd(), 5);
            p.process(monotonic_now()).expect("process");
        }
        h.join().expect("job")
    })
}

/// Drives `p` until `cond` holds or `limit` passes; whether it held.
fn pump_until(p: &mut Passt, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + limit;
    while std::time::Instant::now() < end {
        p.process(monotonic_now()).expect("process");
        if cond() {
            return true;
        }
        wait_readable(p.fd(), 5);
    }
    cond()
}

fn wait_readable(fd: i32, ms: i32) -> bool {
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, ms) > 0 }
}

// ---- Statistics. -----------------------------------------------------------

#[test]
fn stats_count_known_traffic_exactly() {
    need_root!();
    let ns = TestNs::new("api-stats");
    ns.run(|| {
        const N: usize = 20;
        let server = UdpSocket::bind("127.0.0.1:0")?;
        let port = server.local_addr()?.port();
        let (mut p, out) = frames_instance(&[]);
        let our_mac: [u8; 6] = {
            p.frame_input(&arp_request(GW), monotonic_now()).unwrap();
            let f = out.lock().unwrap().iter().find(|f| is_arp_reply(f, GW)).cloned().expect("ARP reply");
            f[22..28].try_into().unwrap()
        };
        let mut bytes_in = arp_request(GW).len();
        for _ in 1..N {
            let f = arp_request(GW);
            bytes_in += f.len();
            p.frame_input(&f, monotonic_now()).unwrap();
        }
        for i in 0..N {
            let f = udp_frame(our_mac, (GUEST, 40000), (GW, port), format!("datagram {i}").as_bytes());
            bytes_in += f.len();
            p.frame_input(&f, monotonic_now()).unwrap();
        }
        // Echo them back: the server sees the instance's socket on loopback.
        let echo = std::thread::spawn(move || {
            let mut buf = [0u8; 100];
            for _ in 0..N {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                server.send_to(&buf[..n], from).unwrap();
            }
        });
        let replies = || out.lock().unwrap().iter().filter(|f| udp_payload(f, (GW, port)).is_some()).count();
        assert!(pump_until(&mut p, Duration::from_secs(10), || replies() == N), "{} of {N} echoes", replies());
        echo.join().unwrap();
        let frames = out.lock().unwrap().clone();
        assert_eq!(frames.iter().filter(|f| is_arp_reply(f, GW)).count(), N);
        let s = p.stats();
        let c = &s.counters;
        assert_eq!(c.frames_in, 2 * N as u64);
        assert_eq!(c.bytes_in, bytes_in as u64);
        assert_eq!(c.frames_out, frames.len() as u64, "counted = taken by the callback");
        assert_eq!(c.frames_out, 2 * N as u64, "ARP replies and echoes, nothing else");
        assert_eq!(c.bytes_out, frames.iter().map(|f| f.len() as u64).sum::<u64>());
        assert_eq!(c.drops, [0; passt::stats::DROP_REASONS], "nothing dropped");
        assert_eq!((s.udp.current, s.udp.peak), (1, 1), "one source port: one flow");
        assert_eq!((s.tcp.current, s.icmp.current), (0, 0));
        assert_eq!(c.guest_connects, 1, "set_frame_output attached the guest");

        // Malformed frames are counted by reason.
        p.frame_input(&[1, 2, 3], monotonic_now()).unwrap();
        let mut bad = udp_frame(our_mac, (GUEST, 40000), (GW, port), b"x");
        bad[24] ^= 0xff; // IP header checksum
        p.frame_input(&bad, monotonic_now()).unwrap();
        let s = p.stats();
        assert_eq!(s.counters.frames_in, 2 * N as u64 + 2);
        assert_eq!(s.counters.drops[Drop::Truncated as usize], 1);
        assert_eq!(s.counters.drops[Drop::BadChecksum as usize], 1);
        // ICMP other than echo requests goes nowhere: counted too.
        p.frame_input(&icmp_msg(our_mac, 13, 1, 1), monotonic_now()).unwrap();
        assert_eq!(p.stats().counters.drops[Drop::Unsupported as usize], 1);
        assert_eq!(p.stats().counters.drops.iter().sum::<u64>(), 3);
        Ok(())
    })
    .unwrap();
}

#[test]
fn batched_input_handles_every_frame() {
    need_root!();
    let ns = TestNs::new("api-batch");
    ns.run(|| {
        let (mut p, out) = frames_instance(&[]);
        let batch: Vec<Vec<u8>> = (1..=40u8).map(|i| arp_request([10, 0, 2, i])).collect();
        let n = p.frames_input(batch.iter().map(|f| f.as_slice()), monotonic_now()).unwrap();
        assert_eq!(n, 40);
        let frames = out.lock().unwrap();
        // 10.0.2.15 is the guest itself: no answer for it.
        assert_eq!(frames.len(), 39);
        for (f, i) in frames.iter().zip((1..=40u8).filter(|&i| i != 15)) {
            assert!(is_arp_reply(f, [10, 0, 2, i]), "in order: reply for .{i}");
        }
        assert_eq!(p.stats().counters.frames_in, 40);
        // Other attachments refuse frame input, with a reason.
        let dir = std::env::temp_dir().join(format!("passt-api-batch-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let sock = dir.join("s");
        let mut q = Passt::new(&config(&[&format!("socket={}", sock.display()), "address=10.0.2.15", "gateway=10.0.2.2"])).unwrap();
        let e = q.frames_input([&batch[0][..]], monotonic_now()).unwrap_err();
        assert_eq!(e.kind, passt::api::ErrorKind::Unsupported);
        drop(q);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    })
    .unwrap();
}

// ---- Run-time forwards. ----------------------------------------------------

/// A guest namespace with its tap driven by a `netns` instance.
fn netns_instance(guest: &TestNs) -> Passt {
    let c = config(&[&format!("netns={}", guest.path.display()), "ns-ifname=tap0", "config-net", "ipv4-only",
        "address=10.0.2.15", "netmask=24", "gateway=10.0.2.2"]);
    Passt::new(&c).expect("netns instance")
}

fn echo_line(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(msg)?;
    let mut buf = vec![0; msg.len()];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

#[test]
fn forwards_added_and_removed_at_run_time() {
    need_root!();
    let host = TestNs::new("api-fwd-h");
    let guest = TestNs::new("api-fwd-g");
    // Guest services: TCP echo on 8080, UDP echo on 5353.
    let tcp_l = guest.run(|| TcpListener::bind("0.0.0.0:8080")).unwrap();
    let udp_s = guest.run(|| UdpSocket::bind("0.0.0.0:5353")).unwrap();
    std::thread::spawn(move || {
        for s in tcp_l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok((n, from)) = udp_s.recv_from(&mut buf) {
            let _ = udp_s.send_to(&buf[..n], from);
        }
    });
    host.run(|| {
        let mut p = netns_instance(&guest);
        // Let the guest's link come up (the kernel sends its first frames).
        pump_until(&mut p, Duration::from_millis(300), || false);
        let to: SocketAddr = "127.0.0.1:18080".parse().unwrap();
        let refused = |to: SocketAddr| matches!(TcpStream::connect_timeout(&to, Duration::from_secs(2)), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused);
        assert!(refused(to), "nothing listens before the forward");

        assert_eq!(p.forward_add(Proto::Tcp, "18080:8080").unwrap(), 1);
        assert_eq!(p.stats().tcp_forwards, 1);
        let mut first = pump(&mut p, move || {
            let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap_or_else(|e| panic!("connect after add: {e}"));
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            assert_eq!(echo_line(&mut s, b"hello through the new forward").unwrap(), b"hello through the new forward");
            s
        });

        // Conflicts and bad specs are refused, naming them.
        let e = p.forward_add(Proto::Tcp, "18080").unwrap_err();
        assert!(e.message.contains("18080") && e.message.contains("already forwarded"), "{e}");
        let taken = TcpListener::bind("127.0.0.1:18081").unwrap();
        let e = p.forward_add(Proto::Tcp, "18082,18081").unwrap_err();
        assert!(e.message.contains("18081") && e.message.to_lowercase().contains("in use"), "{e}");
        assert_eq!(p.stats().tcp_forwards, 1, "18082 was closed again: all or nothing");
        drop(taken);
        for bad in ["70000", "9-1", "x", ""] {
            let e = p.forward_add(Proto::Tcp, bad).unwrap_err();
            assert_eq!(e.kind, passt::api::ErrorKind::Invalid);
            assert!(e.message.contains(&format!("'{bad}'")), "{e}");
        }

        assert_eq!(p.forward_remove(Proto::Tcp, "18080").unwrap(), 1);
        assert_eq!(p.stats().tcp_forwards, 0);
        assert!(refused(to), "refused after remove");
        // The connection accepted before goes on.
        let first_again = pump(&mut p, move || {
            assert_eq!(echo_line(&mut first, b"still here").unwrap(), b"still here");
            first
        });
        drop(first_again);
        let e = p.forward_remove(Proto::Tcp, "18080").unwrap_err();
        assert!(e.message.contains("no forwarded port"), "{e}");

        // UDP: echo after add, silence after remove.
        assert_eq!(p.forward_add(Proto::Udp, "15353:5353").unwrap(), 1);
        let e = p.forward_add(Proto::Udp, "15353").unwrap_err();
        assert!(e.message.contains("15353"), "{e}");
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect("127.0.0.1:15353").unwrap();
        client.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let client = pump(&mut p, move || {
            let mut buf = [0u8; 64];
            for _ in 0..20 {
                client.send(b"ping over udp").unwrap();
                if let Ok(n) = client.recv(&mut buf) {
                    assert_eq!(&buf[..n], b"ping over udp");
                    return client;
                }
            }
            panic!("no UDP echo through the forward");
        });
        assert_eq!(p.stats().udp.current, 1, "the inbound flow");
        assert_eq!(p.forward_remove(Proto::Udp, "15353").unwrap(), 1);
        assert_eq!(p.stats().udp.current, 0, "inbound flows end with their port");
        pump(&mut p, move || {
            let mut buf = [0u8; 64];
            // (Late echoes of the earlier pings may still be queued: only
            // an answer to these counts.)
            for _ in 0..3 {
                client.send(b"after remove").unwrap();
                if let Ok(n) = client.recv(&mut buf) {
                    assert_ne!(&buf[..n], b"after remove", "an answer after remove");
                }
            }
        });
        Ok(())
    })
    .unwrap();
}

// ---- Back-pressure. ----------------------------------------------------------

fn pattern(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn back_pressure_from_the_frame_output_loses_nothing() {
    need_root!();
    let host = TestNs::new("api-bp-h");
    let guest = TestNs::new("api-bp-g");
    let tap: Arc<OwnedFd> = Arc::new(guest.run(|| passt::sys::tun::open_tap("tap0")).unwrap());
    guest.ip(&["link", "set", "tap0", "address", "52:54:00:12:34:56", "mtu", "1500", "up"]);
    guest.ip(&["addr", "add", "10.0.2.15/24", "dev", "tap0"]);
    guest.ip(&["route", "add", "default", "via", "10.0.2.2"]);
    const SIZE: usize = 8 << 20;
    let data = Arc::new(pattern(SIZE));
    let guest_path = guest.path.clone();
    host.run(|| {
        let server = TcpListener::bind("127.0.0.1:0")?;
        let port = server.local_addr()?.port();
        let sent = data.clone();
        std::thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            s.write_all(&sent).unwrap();
        });
        let mut p = Passt::new(&config(&["frames", "address=10.0.2.15", "netmask=24", "gateway=10.0.2.2", "ipv4-only", "mtu=1500"])).unwrap();
        // One frame per call, then nothing until the loop says it is ready.
        let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let refusals = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (gate, refused, took, out_tap) = (open.clone(), refusals.clone(), taken.clone(), tap.clone());
        p.set_frame_output(move |frames: &[IoSlice<'_>]| {
            use std::sync::atomic::Ordering::Relaxed;
            if !gate.swap(false, Relaxed) {
                refused.fetch_add(1, Relaxed);
                return 0;
            }
            // A tap write never blocks; a full backlog drops, which TCP survives.
            let _ = passt::sys::write(out_tap.as_fd(), &frames[0]);
            took.fetch_add(1, Relaxed);
            1
        })
        .unwrap();
        let waker = p.waker();
        let client = std::thread::spawn(move || {
            passt::sys::netns::run_in_netns(&guest_path, move || {
                let mut s = TcpStream::connect_timeout(&format!("10.0.2.2:{port}").parse().unwrap(), Duration::from_secs(10))?;
                s.set_read_timeout(Some(Duration::from_secs(60)))?;
                let mut got = Vec::with_capacity(SIZE);
                s.read_to_end(&mut got)?;
                Ok(got)
            })
        });
        let mut buf = vec![0u8; 65536];
        let mut frames: Vec<Vec<u8>> = Vec::new();
        let mut woke = false;
        // Calls after the first wake, and how many of them asked to be
        // called again in 1 ms.
        let (mut calls_after_wake, mut polled) = (0usize, 0usize);
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !client.is_finished() {
            assert!(std::time::Instant::now() < deadline, "transfer stalled");
            let mut pfd = [
                libc::pollfd { fd: p.fd(), events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: tap.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            ];
            // SAFETY: two valid pollfds.
            unsafe { libc::poll(pfd.as_mut_ptr(), 2, 20) };
            frames.clear();
            while frames.len() < 64 {
                match passt::sys::read(tap.as_fd(), &mut buf) {
                    Ok(n) => frames.push(buf[..n].to_vec()),
                    Err(_) => break,
                }
            }
            if !frames.is_empty() {
                p.frames_input(frames.iter().map(|f| f.as_slice()), monotonic_now()).unwrap();
            }
            let next = p.process(monotonic_now()).unwrap();
            if woke {
                calls_after_wake += 1;
                polled += usize::from(next == Some(Duration::from_millis(1)));
            }
            if refusals.load(std::sync::atomic::Ordering::Relaxed) > 0 && !open.load(std::sync::atomic::Ordering::Relaxed) {
                open.store(true, std::sync::atomic::Ordering::Relaxed);
                waker.wake();
                woke = true;
            }
        }
        let got = client.join().unwrap().expect("guest download");
        assert_eq!(got.len(), SIZE);
        assert!(got == *data, "byte-exact");
        // A TCP timer due within the millisecond also says 1 ms, now and
        // then; polling for room says it on nearly every call.
        assert!(polled * 20 < calls_after_wake, "a host that signals readiness is polled: {polled} of {calls_after_wake} calls");
        let s = p.stats();
        let refusals = refusals.load(std::sync::atomic::Ordering::Relaxed);
        assert!(refusals > 100, "the callback did refuse ({refusals})");
        assert_eq!(s.counters.frames_out, taken.load(std::sync::atomic::Ordering::Relaxed) as u64, "frames_out counts what was taken");
        assert_eq!(s.counters.drops[Drop::TxFull as usize], 0, "nothing dropped for want of room");
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_waker_in_another_thread_makes_the_fd_readable() {
    need_root!();
    let ns = TestNs::new("api-waker");
    ns.run(|| {
        let (mut p, _) = frames_instance(&[]);
        p.process(monotonic_now()).unwrap();
        assert!(!wait_readable(p.fd(), 0), "idle instance readable");
        let waker = p.waker();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            waker.wake();
        });
        assert!(wait_readable(p.fd(), 5000), "not woken");
        t.join().unwrap();
        p.process(monotonic_now()).unwrap();
        assert!(!wait_readable(p.fd(), 0), "still readable after process");
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_refusing_host_holds_frames_until_ready_and_overflow_is_counted() {
    need_root!();
    let ns = TestNs::new("api-hold");
    ns.run(|| {
        let mut p = Passt::new(&config(FRAMES)).unwrap();
        let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let got: Frames = Default::default();
        let (gate, sink) = (open.clone(), got.clone());
        p.set_frame_output(move |f: &[IoSlice<'_>]| {
            if !gate.load(std::sync::atomic::Ordering::Relaxed) {
                return 0;
            }
            sink.lock().unwrap().extend(f.iter().map(|x| x.to_vec()));
            f.len()
        })
        .unwrap();
        // More replies than the 4 MiB queue holds (46 bytes each with framing).
        const N: usize = 100_000;
        let req = arp_request(GW);
        let n = p.frames_input(std::iter::repeat(req.as_slice()).take(N), monotonic_now()).unwrap();
        assert_eq!(n, N);
        assert!(got.lock().unwrap().is_empty());
        // Not told when the host is ready: polled every millisecond.
        assert_eq!(p.process(monotonic_now()).unwrap(), Some(Duration::from_millis(1)));
        let full = p.stats().counters.drops[Drop::TxFull as usize];
        assert!(full > 0 && full < N as u64 / 2, "overflow counted: {full}");
        open.store(true, std::sync::atomic::Ordering::Relaxed);
        p.frame_output_ready();
        assert!(wait_readable(p.fd(), 1000), "ready makes the fd readable");
        p.process(monotonic_now()).unwrap();
        let got = got.lock().unwrap();
        assert_eq!(got.len() as u64 + full, N as u64, "every reply delivered or counted");
        assert!(got.iter().all(|f| is_arp_reply(f, GW)));
        assert_eq!(p.stats().counters.frames_out, got.len() as u64);
        Ok(())
    })
    .unwrap();
}

// ---- Events. -----------------------------------------------------------------

#[test]
fn events_reach_the_callback_on_the_calling_thread() {
    need_root!();
    let ns = TestNs::new("api-events");
    ns.run(|| {
        let mut p = Passt::new(&config(FRAMES)).unwrap();
        let seen: Arc<Mutex<Vec<(Event, std::thread::ThreadId)>>> = Default::default();
        let sink = seen.clone();
        p.set_event_callback(Some(Box::new(move |e: &Event| sink.lock().unwrap().push((*e, std::thread::current().id())))));
        let take = || -> Vec<Event> {
            let mut v = seen.lock().unwrap();
            assert!(v.iter().all(|(_, t)| *t == std::thread::current().id()), "delivered on the calling thread");
            v.drain(..).map(|(e, _)| e).collect()
        };
        let out: Frames = Default::default();
        let o = out.clone();
        p.set_frame_output(move |f: &[IoSlice<'_>]| {
            o.lock().unwrap().extend(f.iter().map(|x| x.to_vec()));
            f.len()
        })
        .unwrap();
        assert_eq!(take(), vec![Event::GuestConnected]);
        let mac = {
            p.frame_input(&arp_request(GW), monotonic_now()).unwrap();
            let f = out.lock().unwrap()[0].clone();
            <[u8; 6]>::try_from(&f[22..28]).unwrap()
        };
        let from = |a: [u8; 4]| udp_frame(mac, (a, 40000), (GW, 9), b"x");
        p.frame_input(&from(GUEST), monotonic_now()).unwrap();
        assert_eq!(take(), vec![Event::GuestAddress(Ipv4Addr::from(GUEST).into())]);
        p.frame_input(&from(GUEST), monotonic_now()).unwrap();
        assert_eq!(take(), vec![], "the same address again is no news");
        p.frame_input(&from([10, 0, 2, 16]), monotonic_now()).unwrap();
        assert_eq!(take(), vec![Event::GuestAddress("10.0.2.16".parse().unwrap())]);
        p.frame_input(&dhcp(1, GW), monotonic_now()).unwrap();
        assert_eq!(take(), vec![], "an OFFER is not a lease");
        p.frame_input(&dhcp(3, GW), monotonic_now()).unwrap();
        assert_eq!(take(), vec![Event::DhcpLease { addr: Ipv4Addr::from(GUEST), mac: GUEST_MAC }]);
        assert_eq!(p.stats().counters.dhcp_leases, 1);
        p.set_event_callback(None);
        p.frame_input(&from([10, 0, 2, 17]), monotonic_now()).unwrap();
        assert_eq!(take(), vec![], "no callback, no events");

        // The socket attachment: a guest connecting and leaving.
        let dir = std::env::temp_dir().join(format!("passt-api-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("passt.sock");
        let mut q = Passt::new(&config(&[&format!("socket={}", path.display()), "address=10.0.2.15", "gateway=10.0.2.2", "ipv4-only"])).unwrap();
        let sink = seen.clone();
        q.set_event_callback(Some(Box::new(move |e: &Event| sink.lock().unwrap().push((*e, std::thread::current().id())))));
        let conn = std::os::unix::net::UnixStream::connect(&path)?;
        assert!(pump_until(&mut q, Duration::from_secs(5), || !seen.lock().unwrap().is_empty()));
        assert_eq!(take(), vec![Event::GuestConnected]);
        drop(conn);
        assert!(pump_until(&mut q, Duration::from_secs(5), || !seen.lock().unwrap().is_empty()));
        assert_eq!(take(), vec![Event::GuestDisconnected]);
        assert_eq!(q.stats().counters.guest_connects, 1);
        drop(q);

        // An fd attachment is there from the start: listening later still
        // hears of it.
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let fd = std::os::fd::IntoRawFd::into_raw_fd(theirs);
        let mut r = Passt::new(&config(&[&format!("fd={fd}"), "address=10.0.2.15", "gateway=10.0.2.2", "ipv4-only"])).unwrap();
        let sink = seen.clone();
        r.set_event_callback(Some(Box::new(move |e: &Event| sink.lock().unwrap().push((*e, std::thread::current().id())))));
        assert!(pump_until(&mut r, Duration::from_secs(5), || !seen.lock().unwrap().is_empty()));
        assert_eq!(take(), vec![Event::GuestConnected]);
        // An fd is one-off: its end is the instance's end, and is told.
        drop(ours);
        let end = std::time::Instant::now() + Duration::from_secs(5);
        let gone = loop {
            if let Err(e) = r.process(monotonic_now()) {
                break e;
            }
            assert!(std::time::Instant::now() < end, "the instance never noticed the guest leaving");
            wait_readable(r.fd(), 5);
        };
        assert!(gone.to_string().contains("disconnected"), "{gone}");
        assert_eq!(take(), vec![Event::GuestDisconnected]);
        drop(r);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    })
    .unwrap();
}

/// A one-off guest that connects and hangs up before the instance accepts
/// it: the greeting written at accept fails (the peer is gone), and that
/// must end the instance in the same call or leave its fd readable. It
/// used to return a deadline with nothing left to wake the caller, and a
/// `--one-off` daemon slept until that deadline.
#[test]
fn a_one_off_guest_gone_before_accept_ends_the_instance() {
    let dir = std::env::temp_dir().join(format!("passt-api-oneoff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("passt.sock");
    let opts = [&format!("socket={}", path.display()) as &str, "one-off", "address=10.0.2.15", "gateway=10.0.2.2"];
    let mut p = Passt::new(&config(&opts)).unwrap();
    drop(std::os::unix::net::UnixStream::connect(&path).unwrap());
    let end = std::time::Instant::now() + Duration::from_secs(5);
    let gone = loop {
        match p.process(monotonic_now()) {
            Err(e) => break e,
            Ok(_) => assert!(wait_readable(p.fd(), 1000), "process() returned with the guest gone and nothing to wake the caller"),
        }
        assert!(std::time::Instant::now() < end, "the instance never noticed the guest leaving");
    };
    assert!(gone.to_string().contains("disconnected"), "{gone}");
    drop(p);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn broken_stream_framing_is_counted() {
    let dir = std::env::temp_dir().join(format!("passt-api-framing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("passt.sock");
    let mut p = Passt::new(&config(&[&format!("socket={}", path.display()), "address=10.0.2.15", "gateway=10.0.2.2", "ipv4-only"])).unwrap();
    let mut conn = std::os::unix::net::UnixStream::connect(&path).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
    let closed = pump(&mut p, move || {
        let mut buf = [0u8; 4];
        conn.read(&mut buf).map(|n| n == 0).unwrap_or(true)
    });
    assert!(closed, "connection closed");
    let s = p.stats();
    assert_eq!(s.counters.drops[Drop::BadLength as usize], 1);
    assert_eq!(s.counters.guest_connects, 1);
    drop(p);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_burst_of_datagrams_over_the_stream_leaves_in_parts_and_all_arrive_in_order() {
    need_root!();
    let ns = TestNs::new("api-burst");
    ns.run(|| {
        const N: usize = 1000;
        let server = UdpSocket::bind("127.0.0.1:0")?;
        // Room for all of them: only the instance's pacing is under test.
        passt::sys::net::setsockopt_int(server.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 16 << 20)?;
        server.set_read_timeout(Some(Duration::from_secs(10)))?;
        let port = server.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!("passt-api-burst-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("passt.sock");
        let mut p = Passt::new(&config(&[&format!("socket={}", path.display()), "address=10.0.2.15", "gateway=10.0.2.2", "ipv4-only"])).unwrap();
        let mut conn = std::os::unix::net::UnixStream::connect(&path)?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        conn.write_all(&stream_record(&arp_request(GW)))?;
        let reply = pump(&mut p, || recv_stream_frame(&mut conn));
        assert!(is_arp_reply(&reply, GW));
        let our_mac: [u8; 6] = reply[22..28].try_into().unwrap();
        // All of them in one write: one read of ours takes them all.
        let mut burst = Vec::new();
        for i in 0..N {
            burst.extend(stream_record(&udp_frame(our_mac, (GUEST, 40000), (GW, port), format!("datagram {i:04}").as_bytes())));
        }
        conn.write_all(&burst)?;
        // The instance is driven only when its fd says so: frames it keeps
        // for a later call must make the fd readable themselves.
        let receiver = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            (0..N).all(|i| matches!(server.recv(&mut buf), Ok(n) if buf[..n] == *format!("datagram {i:04}").as_bytes()))
        });
        let (mut calls, mut quiet_ms) = (0, 0);
        while !receiver.is_finished() && quiet_ms < 2000 {
            if wait_readable(p.fd(), 100) {
                p.process(monotonic_now()).expect("process");
                calls += 1;
                quiet_ms = 0;
            } else {
                quiet_ms += 100;
            }
        }
        assert!(receiver.join().unwrap(), "all {N} datagrams, in order, without a stall ({calls} calls)");
        // At most 32 datagrams leave per call (the engine's UDP_BURST).
        assert!(calls >= N / 32, "{N} datagrams in {calls} calls");
        assert_eq!(p.stats().counters.drops.iter().sum::<u64>(), 0);
        drop(p);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    })
    .unwrap();
}

/// A DHCPv6 REQUEST for an address (IA_NA) to our server (DUID-LL of
/// `our_mac`), from the guest's link-local address, checksummed.
fn dhcpv6_request(our_mac: [u8; 6]) -> Vec<u8> {
    let mut m = vec![3, 0x12, 0x34, 0x56];
    let client_duid = [[0u8, 3, 0, 1].as_slice(), &GUEST_MAC].concat();
    let server_duid = [[0u8, 3, 0, 1].as_slice(), &our_mac].concat();
    for (code, data) in [(1u16, client_duid), (2, server_duid), (3, vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])] {
        m.extend_from_slice(&code.to_be_bytes());
        m.extend_from_slice(&(data.len() as u16).to_be_bytes());
        m.extend_from_slice(&data);
    }
    let src: std::net::Ipv6Addr = "fe80::5054:ff:fe12:3456".parse().unwrap();
    let dst: std::net::Ipv6Addr = "ff02::1:2".parse().unwrap();
    let len = (8 + m.len()) as u16;
    let mut udp = [546u16.to_be_bytes(), 547u16.to_be_bytes(), len.to_be_bytes(), [0, 0]].concat();
    udp.extend_from_slice(&m);
    let mut pseudo = [src.octets(), dst.octets()].concat();
    pseudo.extend_from_slice(&u32::from(len).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 17]);
    let mut acc = 0u32;
    for c in pseudo.chunks(2) {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    let c = csum(&udp, acc);
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&len.to_be_bytes());
    ip.extend_from_slice(&[17, 1]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(&udp);
    ether([0x33, 0x33, 0, 1, 0, 2], 0x86dd, &ip)
}

#[test]
fn dhcpv6_lease_is_an_event() {
    need_root!();
    let ns = TestNs::new("api-dhcpv6");
    ns.run(|| {
        let our_mac = [2, 0, 0, 0, 0, 0x66];
        let mut p = Passt::new(&config(&["frames", "address=2001:db8::15", "gateway=fe80::1", "ipv6-only", "mac-addr=02:00:00:00:00:66"])).unwrap();
        let out: Frames = Default::default();
        let o = out.clone();
        p.set_frame_output(move |f: &[IoSlice<'_>]| {
            o.lock().unwrap().extend(f.iter().map(|x| x.to_vec()));
            f.len()
        })
        .unwrap();
        let seen: Arc<Mutex<Vec<Event>>> = Default::default();
        let sk = seen.clone();
        p.set_event_callback(Some(Box::new(move |e: &Event| sk.lock().unwrap().push(*e))));
        p.frame_input(&dhcpv6_request(our_mac), monotonic_now()).unwrap();
        let reply = out.lock().unwrap().iter().any(|f| f.len() > 62 && f[12..14] == [0x86, 0xdd] && f[20] == 17 && f[62] == 7);
        assert!(reply, "a DHCPv6 REPLY went out");
        let addr: std::net::Ipv6Addr = "2001:db8::15".parse().unwrap();
        // The frame output was set before the callback: the guest is
        // reported as there first.
        assert_eq!(*seen.lock().unwrap(), vec![Event::GuestConnected, Event::Dhcpv6Lease { addr, mac: GUEST_MAC }]);
        assert_eq!(p.stats().counters.dhcpv6_leases, 1);
        Ok(())
    })
    .unwrap();
}

// ---- Threads. ----------------------------------------------------------------

#[test]
fn instances_in_parallel_threads_each_get_their_own_traffic() {
    need_root!();
    let ns = TestNs::new("api-threads");
    const THREADS: usize = 8;
    ns.run(|| {
        let barrier = Arc::new(std::sync::Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let barrier = barrier.clone();
                // Spawned from inside the namespace: the threads are there too.
                std::thread::spawn(move || -> Result<(), String> {
                    let me = std::thread::current().id();
                    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
                    let port = server.local_addr().unwrap().port();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 100];
                        if let Ok((n, from)) = server.recv_from(&mut buf) {
                            let _ = server.send_to(&buf[..n], from);
                        }
                    });
                    let log_threads: Arc<Mutex<Vec<std::thread::ThreadId>>> = Default::default();
                    let lt = log_threads.clone();
                    let mac = format!("mac-addr=02:00:00:00:00:{t:02x}");
                    let mut opts = FRAMES.to_vec();
                    opts.push(&mac);
                    let mut p = Passt::with_log(&config(&opts), 7, move |_, _| lt.lock().unwrap().push(std::thread::current().id())).unwrap();
                    let out: Frames = Default::default();
                    let o = out.clone();
                    p.set_frame_output(move |f: &[IoSlice<'_>]| {
                        o.lock().unwrap().extend(f.iter().map(|x| x.to_vec()));
                        f.len()
                    })
                    .unwrap();
                    let our_mac = [2, 0, 0, 0, 0, t as u8];
                    let id = 0x100 + t as u16;
                    let payload = format!("thread {t}");
                    barrier.wait();
                    let frames = [
                        arp_request(GW),
                        dhcp(1, GW),
                        udp_frame(our_mac, (GUEST, 40000 + t as u16), (GW, port), payload.as_bytes()),
                        icmp_echo(our_mac, id, 1),
                    ];
                    p.frames_input(frames.iter().map(|f| f.as_slice()), monotonic_now()).map_err(|e| e.to_string())?;
                    let done = |out: &Frames| {
                        let f = out.lock().unwrap();
                        let arp = f.iter().any(|f| is_arp_reply(f, GW) && f[6..12] == our_mac);
                        let offer = f.iter().any(|f| udp_payload(f, (GW, 67)).is_some_and(|d| d.len() > 240 && d[16..20] == GUEST));
                        let echo = f.iter().any(|f| udp_payload(f, (GW, port)).is_some_and(|d| d == payload.as_bytes()));
                        let ping = f.iter().any(|f| is_icmp_reply(f, id));
                        (arp, offer, echo, ping)
                    };
                    let ok = pump_until(&mut p, Duration::from_secs(10), || done(&out) == (true, true, true, true));
                    if !ok {
                        return Err(format!("thread {t}: (arp, dhcp offer, udp echo, ping) = {:?}", done(&out)));
                    }
                    let s = p.stats();
                    if s.counters.frames_in != 4 || s.counters.drops.iter().sum::<u64>() != 0 || s.icmp.current != 1 || s.udp.current != 1 {
                        return Err(format!("thread {t}: stats {s:?}"));
                    }
                    // Nothing of another instance's traffic came here.
                    let foreign = out.lock().unwrap().iter().any(|f| f[6..12] != our_mac);
                    if foreign {
                        return Err(format!("thread {t}: a frame from another instance's MAC"));
                    }
                    let lt = log_threads.lock().unwrap();
                    if lt.is_empty() || lt.iter().any(|x| *x != me) {
                        return Err(format!("thread {t}: {} log lines, some on another thread", lt.len()));
                    }
                    Ok(())
                })
            })
            .collect();
        let errors: Vec<String> = handles.into_iter().filter_map(|h| h.join().expect("thread").err()).collect();
        assert!(errors.is_empty(), "{errors:#?}");
        Ok(())
    })
    .unwrap();
}

#[test]
fn tap_instances_in_parallel_threads_each_carry_their_guests_tcp() {
    need_root!();
    const THREADS: usize = 4;
    const SIZE: usize = 2 << 20;
    let host = TestNs::new("api-par-h");
    let guests: Vec<TestNs> = (0..THREADS).map(|t| TestNs::new(&format!("api-par-g{t}"))).collect();
    let data = Arc::new(pattern(SIZE));
    host.run(|| {
        std::thread::scope(|s| {
            let handles: Vec<_> = guests
                .iter()
                .enumerate()
                .map(|(t, guest)| {
                    let data = data.clone();
                    // Spawned from inside the host namespace: the thread is there too.
                    s.spawn(move || -> Result<(), String> {
                        let server = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
                        let port = server.local_addr().unwrap().port();
                        let sent = data.clone();
                        std::thread::spawn(move || {
                            if let Ok((mut c, _)) = server.accept() {
                                let _ = c.write_all(&sent);
                            }
                        });
                        let mut p = netns_instance(guest);
                        let path = guest.path.clone();
                        let got = pump(&mut p, move || {
                            passt::sys::netns::run_in_netns(&path, move || {
                                let to: SocketAddr = format!("10.0.2.2:{port}").parse().unwrap();
                                // The guest's link may still be coming up: retry briefly.
                                let mut s = (0..50)
                                    .find_map(|_| {
                                        TcpStream::connect_timeout(&to, Duration::from_secs(2))
                                            .map_err(|_| std::thread::sleep(Duration::from_millis(100)))
                                            .ok()
                                    })
                                    .ok_or_else(|| std::io::Error::other("no connection"))?;
                                s.set_read_timeout(Some(Duration::from_secs(30)))?;
                                let mut got = Vec::with_capacity(SIZE);
                                s.read_to_end(&mut got)?;
                                Ok(got)
                            })
                        })
                        .map_err(|e| format!("guest {t}: {e}"))?;
                        if got != *data {
                            return Err(format!("guest {t}: {} bytes, not the {SIZE} sent", got.len()));
                        }
                        let st = p.stats();
                        if st.counters.frames_in == 0 || st.tcp.peak != 1 || st.counters.guest_connects != 1 {
                            return Err(format!("guest {t}: stats {st:?}"));
                        }
                        Ok(())
                    })
                })
                .collect();
            let errors: Vec<String> = handles.into_iter().filter_map(|h| h.join().expect("thread").err()).collect();
            assert!(errors.is_empty(), "{errors:#?}");
        });
        Ok(())
    })
    .unwrap();
}

// ---- Logging. ----------------------------------------------------------------

#[test]
fn guest_triggered_warnings_are_rate_limited() {
    need_root!();
    let ns = TestNs::new("api-ratelimit");
    ns.run(|| {
        let lines: Arc<Mutex<Vec<(i32, String)>>> = Default::default();
        let l = lines.clone();
        let mut opts = FRAMES.to_vec();
        opts.push("max-flows=1");
        let mut p = Passt::with_log(&config(&opts), 7, move |lvl, msg| l.lock().unwrap().push((lvl, msg.to_string()))).unwrap();
        p.set_frame_output(|f: &[IoSlice<'_>]| f.len()).unwrap();
        let t0 = monotonic_now();
        // 50 pings with 50 identifiers: one flow, 49 refused by the limit.
        let pings: Vec<Vec<u8>> = (0..50).map(|i| icmp_echo([0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55], 1000 + i, 1)).collect();
        p.frames_input(pings.iter().map(|f| f.as_slice()), t0).unwrap();
        let limit_lines = |lines: &Mutex<Vec<(i32, String)>>| -> Vec<(i32, String)> {
            lines.lock().unwrap().iter().filter(|(_, m)| m.contains("flow limit")).cloned().collect()
        };
        assert_eq!(p.stats().counters.drops[Drop::Limit as usize], 49);
        let first = limit_lines(&lines);
        assert_eq!(first.len(), 1, "one line for 49 refusals: {first:?}");
        assert_eq!(first[0].0, 4, "a warning");
        // Later, one more refusal: one more line, counting those suppressed.
        let later = Instant::from_nanos(t0.nanos() + 6_000_000_000);
        p.frame_input(&icmp_echo([0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55], 2000, 1), later).unwrap();
        let second = limit_lines(&lines);
        assert_eq!(second.len(), 2, "{second:?}");
        assert!(second[1].1.contains("48 more"), "{}", second[1].1);
        Ok(())
    })
    .unwrap();
}

// ---- Panic boundary (C ABI). -------------------------------------------------

mod c_abi {
    use super::*;
    use ::passt::ffi::*;
    use std::ffi::{c_char, c_int, c_void, CStr, CString};

    unsafe extern "C" fn count_errors(userdata: *mut c_void, level: c_int, msg: *const c_char) {
        // SAFETY: userdata is the Mutex registered below; msg is a C string.
        let (lines, msg) = unsafe { (&*(userdata as *const Mutex<Vec<(i32, String)>>), CStr::from_ptr(msg)) };
        lines.lock().unwrap().push((level, msg.to_string_lossy().into_owned()));
    }

    unsafe fn frames_instance(lines: &Mutex<Vec<(i32, String)>>) -> *mut passt {
        // SAFETY: plain calls with valid strings and pointers.
        unsafe {
            let c = passt_config_new();
            for o in FRAMES {
                let (k, v) = o.split_once('=').unwrap_or((o, ""));
                let (k, v) = (CString::new(k).unwrap(), CString::new(v).unwrap());
                assert_eq!(passt_config_set(c, k.as_ptr(), v.as_ptr()), 0);
            }
            passt_config_set_log(c, Some(count_errors), lines as *const _ as *mut c_void, 6);
            let mut err = [0 as c_char; 256];
            let p = passt_new(c, err.as_mut_ptr(), err.len());
            passt_config_free(c);
            assert!(!p.is_null(), "{:?}", CStr::from_ptr(err.as_ptr()));
            p
        }
    }

    #[test]
    fn a_panic_inside_disables_only_that_instance() {
        let lines: Mutex<Vec<(i32, String)>> = Default::default();
        let panic_code = -(passt_error::Panic as c_int);
        // SAFETY: the C API used as documented.
        unsafe {
            let p = frames_instance(&lines);
            let q = frames_instance(&lines);
            assert_eq!(passt_debug_inject_panic(p), 0);
            assert_eq!(passt_process(p, 1), panic_code);
            // Every later call fails fast with the same code.
            assert_eq!(passt_process(p, 2), panic_code);
            let f = arp_request(GW);
            assert_eq!(passt_frame_input(p, f.as_ptr().cast(), f.len(), 3), panic_code);
            let mut st = passt_stats::default();
            assert_eq!(passt_stats(p, &mut st, std::mem::size_of::<passt_stats>()), panic_code);
            let proto = CString::new("tcp").unwrap();
            let spec = CString::new("18090").unwrap();
            assert_eq!(passt_forward_add(p, proto.as_ptr(), spec.as_ptr()), panic_code);
            let why = CStr::from_ptr(passt_last_error(p)).to_string_lossy().into_owned();
            assert!(why.contains("panic"), "{why}");
            assert!(lines.lock().unwrap().iter().any(|(l, m)| *l == 3 && m.contains("debug_inject_panic")), "{lines:?}");
            passt_free(p);
            // The other instance is untouched.
            assert!(passt_process(q, 4) >= -1);
            assert_eq!(passt_frame_input(q, f.as_ptr().cast(), f.len(), 5), 0);
            assert_eq!(passt_stats(q, &mut st, std::mem::size_of::<passt_stats>()), std::mem::size_of::<passt_stats>() as c_int);
            assert_eq!(st.frames_in, 1);
            passt_free(q);
        }
    }

    #[test]
    fn stats_fill_only_what_the_caller_knows() {
        let lines: Mutex<Vec<(i32, String)>> = Default::default();
        // SAFETY: the C API used as documented; buffers sized as passed.
        unsafe {
            let p = frames_instance(&lines);
            let f = arp_request(GW);
            let iov = [libc::iovec { iov_base: f.as_ptr() as *mut c_void, iov_len: f.len() }; 3];
            assert_eq!(passt_frames_input(p, iov.as_ptr(), 3, 1), 3);
            // An old caller knowing only size and frames_in: 16 bytes.
            let mut buf = [0xa5u8; 64];
            assert_eq!(passt_stats(p, buf.as_mut_ptr().cast(), 16), 16);
            assert_eq!(u64::from_ne_bytes(buf[0..8].try_into().unwrap()), 16);
            assert_eq!(u64::from_ne_bytes(buf[8..16].try_into().unwrap()), 3);
            assert!(buf[16..].iter().all(|&b| b == 0xa5), "nothing written past out_size");
            // A newer caller with a bigger struct: told how much was filled.
            let mut big = vec![0u8; std::mem::size_of::<passt_stats>() + 64];
            let n = passt_stats(p, big.as_mut_ptr().cast(), big.len());
            assert_eq!(n as usize, std::mem::size_of::<passt_stats>());
            assert_eq!(u64::from_ne_bytes(big[0..8].try_into().unwrap()), n as u64);
            assert_eq!(passt_stats(p, std::ptr::null_mut(), 16), -(passt_error::Null as c_int));
            passt_free(p);
        }
    }
}
