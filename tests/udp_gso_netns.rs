//! Bursts of datagrams from the host to a namespace guest, the case where
//! the tap backend gathers several datagrams of one flow into one frame
//! (UDP segmentation offload, when the kernel has it): every datagram must
//! arrive whole, in order, with its own boundaries; a shorter one ends a
//! run. Sockets sending with `UDP_SEGMENT`, on either side: a guest's
//! kernel hands the tap one frame for all the datagrams of such a send.
//! Over IPv4 and IPv6; with `PASST_TAP_OFFLOAD=0` the same checks run on
//! the plain tap. And a burst the other way, waiting in the tap: it leaves
//! for the host in parts. Needs root.

mod common;

use common::driver::Driver;
use common::netns::{HostWithRouter, TestNs};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Datagrams per burst at most; bursts stay under 96 KB so that they fit
/// the default socket buffers on both sides.
const BURST_MAX: usize = 48;

fn payload(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
}

/// Our instance with its tap in a guest namespace, the host's side in
/// `HostWithRouter`'s host namespace. Drop the three in reverse order.
fn tap_guest(tag: &str) -> (HostWithRouter, TestNs, Driver) {
    tap_guest_with(tag, |_| {})
}

/// [`tap_guest`], its driver calling `each` between two `process` calls.
fn tap_guest_with(tag: &str, each: impl FnMut(&passt::engine::Instance) + Send + 'static) -> (HostWithRouter, TestNs, Driver) {
    let net = HostWithRouter::new(tag);
    let guest = TestNs::new(&format!("{tag}-g"));
    let netns = format!("netns={}", guest.path.display());
    let config = Driver::config(&[netns.as_str(), "ns-ifname=tap0", "config-net"]);
    let driver = Driver::start_in_with(&net.host.path, &config, each).expect("instance starts");
    (net, guest, driver)
}

/// The gateway addresses (and the host's loopback they lead to) to test
/// over: (guest bind address, host bind address, gateway).
const GATEWAYS: [(&str, &str, &str); 2] = [("0.0.0.0:0", "127.0.0.1:0", "192.0.2.1"), ("[::]:0", "[::1]:0", "2001:db8::1")];

/// A host server on loopback and a guest socket connected to it through
/// the gateway, once the path is up (IPv6 neighbours): the server heard
/// "hi". Returns them and the guest's address as the server sees it.
fn connected_pair(
    net: &HostWithRouter,
    guest: &TestNs,
    (bind, loopback, gw): (&'static str, &'static str, &str),
) -> (UdpSocket, UdpSocket, SocketAddr) {
    let server = net.host.run(move || UdpSocket::bind(loopback)).unwrap();
    server.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let port = server.local_addr().unwrap().port();
    let c = guest.run(move || UdpSocket::bind(bind)).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    c.connect((gw, port)).unwrap();
    let mut buf = [0u8; 16];
    let from = (0..60)
        .find_map(|_| {
            let _ = c.send(b"hi");
            server.recv_from(&mut buf).ok().filter(|(n, _)| *n == 2).map(|(_, f)| f)
        })
        .unwrap_or_else(|| panic!("no path to {gw}"));
    server.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    (server, c, from)
}

#[test]
fn host_bursts_arrive_as_separate_datagrams() {
    let (net, guest, _driver) = tap_guest("udp-gso");
    for gateway in GATEWAYS {
        let gw = gateway.2;
        let (server, c, from) = connected_pair(&net, &guest, gateway);
        let mut buf = vec![0u8; 65536];
        for (size, tail) in [(1400usize, 700usize), (1, 1), (8000, 100)] {
            let burst = (96_000 / size).clamp(4, BURST_MAX);
            let lens: Vec<usize> = (0..burst).map(|i| if i == burst - 1 { tail } else { size }).collect();
            for (i, &len) in lens.iter().enumerate() {
                server.send_to(&payload(i, len), from).unwrap();
            }
            let mut got = 0;
            let mut last = None;
            while let Ok(n) = c.recv(&mut buf) {
                // Which datagram is it? The first byte says, its length and
                // content must match.
                let i = (0..burst).find(|&i| lens[i] == n && buf[..n] == payload(i, n)[..]);
                let i = i.unwrap_or_else(|| panic!("{gw}, {size} B: a datagram of {n} bytes matches none sent"));
                assert!(last.map_or(true, |l| i > l), "{gw}, {size} B: datagram {i} after {last:?}");
                last = Some(i);
                got += 1;
                if i == burst - 1 {
                    break;
                }
            }
            assert!(got >= burst * 9 / 10, "{gw}, {size} B: only {got} of {burst} datagrams arrived");
        }
    }
}

#[test]
fn guest_bursts_through_a_route_with_a_smaller_mtu_still_arrive() {
    // Equal datagrams from the guest leave the host as one segmentation
    // offload send; through a route whose MTU is below their size the
    // kernel refuses that (EMSGSIZE) and they must go one by one, each
    // fragmented by the host's kernel and reassembled by the receiver.
    let net = HostWithRouter::new("udp-gso-mtu");
    let guest = TestNs::new("udp-gso-mtu-g");
    net.veth.ip_a(&["link", "set", "veth0", "mtu", "1280"]);
    net.veth.ip_b(&["link", "set", "veth1", "mtu", "1280"]);
    net.veth.addr_b("198.51.100.1/32");
    net.veth.addr_b("2001:db8:1::1/128");
    let netns = format!("netns={}", guest.path.display());
    let _driver = Driver::start_in(&net.host.path, &Driver::config(&[netns.as_str(), "ns-ifname=tap0", "config-net"]))
        .expect("instance starts");
    for (bind, far) in [("0.0.0.0:0", "198.51.100.1:0"), ("[::]:0", "[2001:db8:1::1]:0")] {
        let server = net.router.run(move || UdpSocket::bind(far)).unwrap();
        server.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let to = server.local_addr().unwrap();
        let c = guest.run(move || UdpSocket::bind(bind)).unwrap();
        c.connect(to).unwrap();
        let mut buf = vec![0u8; 65536];
        // Until the path is up (IPv6 neighbours, DAD): the server hears "hi".
        let up = (0..60).any(|_| {
            let _ = c.send(b"hi");
            server.recv_from(&mut buf).is_ok_and(|(n, _)| n == 2)
        });
        assert!(up, "no path to {to}");
        while server.recv_from(&mut buf).is_ok() {}
        let burst = 32;
        for i in 0..burst {
            c.send(&payload(i, 1400)).unwrap();
        }
        let mut got = Vec::new();
        while let Ok((n, _)) = server.recv_from(&mut buf) {
            let i = (0..burst).find(|&i| n == 1400 && buf[..n] == payload(i, 1400)[..]);
            got.push(i.unwrap_or_else(|| panic!("{to}: a datagram of {n} bytes matches none sent")));
            if got.len() == burst {
                break;
            }
        }
        assert!(got.len() >= burst * 9 / 10, "{to}: only {} of {burst} datagrams of 1400 bytes arrived", got.len());
    }
}

/// `UDP_SEGMENT` (linux/udp.h): the datagram size of a segmentation
/// offload send.
const UDP_SEGMENT: libc::c_int = 103;

#[test]
fn guest_segmentation_offload_sends_arrive_as_separate_datagrams() {
    // One send of a guest socket with UDP_SEGMENT is several datagrams;
    // through a tap with USO the guest's kernel passes them to us as one
    // frame with one UDP header, and the host peer must still get each
    // on its own (the bug: one datagram of their total size).
    let (net, guest, _driver) = tap_guest("udp-uso");
    for gateway in GATEWAYS {
        let gw = gateway.2;
        let (server, c, _) = connected_pair(&net, &guest, gateway);
        // (segment size, full segments, last one): a short tail, many
        // segments, tiny ones, one that is whole.
        for shape in [(1000, 3, 500), (1400, 40, 700), (7, 100, 3), (1200, 2, 1200)] {
            segmented_send_arrives_whole(gw, shape, &c, |b| c.send(b), |b| server.recv_from(b).map(|(n, _)| n));
        }
    }
}

/// One send of `full` datagrams of `size` bytes and a last one of `tail`
/// with `UDP_SEGMENT` set on `sender` (through `send`); each must then come
/// out of `recv` on its own, whole and in order.
fn segmented_send_arrives_whole(
    gw: &str,
    (size, full, tail): (usize, usize, usize),
    sender: &UdpSocket,
    send: impl Fn(&[u8]) -> std::io::Result<usize>,
    mut recv: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
) {
    let lens: Vec<usize> = (0..full).map(|_| size).chain(std::iter::once(tail)).collect();
    let all: Vec<u8> = lens.iter().enumerate().flat_map(|(i, &len)| payload(i, len)).collect();
    passt::sys::net::setsockopt_int(sender.as_fd(), libc::SOL_UDP, UDP_SEGMENT, size as libc::c_int).unwrap();
    assert_eq!(send(&all).unwrap(), all.len());
    let mut buf = vec![0u8; 65536];
    for (i, &len) in lens.iter().enumerate() {
        let n = recv(&mut buf).unwrap_or_else(|e| panic!("{gw}, segments of {size} B: datagram {i} of {}: {e}", lens.len()));
        assert_eq!(n, len, "{gw}, segments of {size} B: datagram {i} is {n} bytes, not {len}");
        assert!(buf[..n] == payload(i, len)[..], "{gw}, segments of {size} B: datagram {i} differs");
    }
}

#[test]
fn host_segmentation_offload_sends_arrive_as_separate_datagrams() {
    // The other way: a host application sending with UDP_SEGMENT (as QUIC
    // servers do). Our host socket must see, and the guest get, each
    // datagram on its own, whatever either side does with offloads.
    let (net, guest, _driver) = tap_guest("udp-uso-h");
    for gateway in GATEWAYS {
        let gw = gateway.2;
        let (server, c, from) = connected_pair(&net, &guest, gateway);
        for shape in [(1000, 3, 500), (1400, 40, 700), (7, 60, 3)] {
            segmented_send_arrives_whole(gw, shape, &server, |b| server.send_to(b, from), |b| c.recv(b));
        }
    }
}

#[test]
fn a_guest_burst_waiting_in_the_tap_leaves_in_parts_and_all_arrive_in_order() {
    // Datagrams queued in the tap while the instance is held: each call
    // then takes at most 32 of them (the engine's UDP_BURST), so that a
    // host receiver sharing our CPU drains its buffer between parts (a
    // call used to take 128 frames, 180 KB of 1,400-byte datagrams, into a
    // default buffer that holds about 90); none is lost or reordered.
    const N: usize = 400; // a tap's queue holds 500 frames
    let (hold, parked, most) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let (h, p, m) = (hold.clone(), parked.clone(), most.clone());
    let mut seen = 0;
    // Between two calls: note the frames the last one took, and wait
    // while the test holds the instance.
    let each = move |i: &passt::engine::Instance| {
        let frames = i.stats().frames_in;
        m.fetch_max(frames - seen, Ordering::Relaxed);
        seen = frames;
        while h.load(Ordering::Relaxed) {
            p.store(true, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(1));
        }
        p.store(false, Ordering::Relaxed);
    };
    let (net, guest, _driver) = tap_guest_with("udp-part", each);
    let (server, c, _) = connected_pair(&net, &guest, GATEWAYS[0]);
    // Room for all of them: only the instance's pacing is under test.
    passt::sys::net::setsockopt_int(server.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 16 << 20).unwrap();
    hold.store(true, Ordering::Relaxed);
    assert!(common::netns::wait_until(Duration::from_secs(5), || parked.load(Ordering::Relaxed)), "instance held");
    for i in 0..N {
        c.send(format!("datagram {i:04}").as_bytes()).unwrap();
    }
    most.store(0, Ordering::Relaxed);
    hold.store(false, Ordering::Relaxed);
    let mut buf = [0u8; 64];
    for i in 0..N {
        let n = server.recv(&mut buf).unwrap_or_else(|e| panic!("datagram {i} of {N}: {e}"));
        assert_eq!(&buf[..n], format!("datagram {i:04}").as_bytes(), "datagram {i} of {N}");
    }
    // A part fills up (the frames did wait), and ends there; a stray
    // frame of the guest's own (neighbour discovery) may share a call.
    let most = most.load(Ordering::Relaxed);
    assert!((32..=40).contains(&most), "at most {most} frames in one call, not 32");
}
