//! Floods from a hostile guest (a namespace on our tap, with an AF_PACKET
//! socket for what its kernel would not send by itself): SYN floods to
//! closed and open ports (half-open connections from a spoofed source),
//! UDP to 60,000 ports and from thousands of source ports, ping floods,
//! ARP and neighbour solicitation floods. While they run, a TCP transfer
//! both ways must complete intact, each direction keeping pace with the
//! other through the losses the floods cause; the instance must stay
//! within its flow limit (`max-flows`), its fds and memory bounded, its
//! warnings rate limited; and once the flood stops, new flows must be
//! possible again.

mod common;
#[path = "hostile/frames.rs"]
mod frames;
#[path = "hostile/rig.rs"]
mod rig;

use frames::{fd_count, rss_kib, Rng};
use rig::*;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// fd and RSS figures are per process: the tests of this file run alone.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const MAX_FLOWS: usize = 300;
const G4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const GW4A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const G6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const GW6A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// A source address in the guest's subnet that its kernel does not own:
/// answers to it are dropped there, so connections stay half-open.
const SPOOF4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 77);

/// Frames from the guest's real MAC (a different one would make the
/// instance send everything, the transfer's segments included, there).
fn from_guest(mac: [u8; 6], mut f: Vec<u8>) -> Vec<u8> {
    f[6..12].copy_from_slice(&mac);
    f
}

/// A transfer both ways on one connection, running until told to stop;
/// each side counts and checksums what it sends and receives.
struct Transfer {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<(u64, u64)>>,
}

fn pump_out(mut s: TcpStream, stop: Arc<AtomicBool>) -> (u64, u64) {
    let mut buf = vec![0u8; 32 << 10];
    let (mut off, mut h) = (0u64, FNV0);
    while !stop.load(Ordering::Relaxed) {
        fill(off, &mut buf);
        s.write_all(&buf).expect("transfer write");
        h = fnv(h, &buf);
        off += buf.len() as u64;
        // Keep it going for the whole flood without hogging the CPU.
        std::thread::sleep(Duration::from_millis(2));
    }
    s.shutdown(Shutdown::Write).unwrap();
    (off, h)
}

fn pump_in(mut s: TcpStream, who: &'static str) -> (u64, u64) {
    let mut buf = vec![0u8; 64 << 10];
    let (mut n, mut h) = (0u64, FNV0);
    let mut last = Instant::now();
    loop {
        let r = s.read(&mut buf);
        if last.elapsed() > Duration::from_millis(300) {
            eprintln!("transfer to the {who}: a read waited {:?} after {n} bytes", last.elapsed());
        }
        last = Instant::now();
        match r {
            Ok(0) => return (n, h),
            Ok(k) => {
                h = fnv(h, &buf[..k]);
                n += k as u64;
            }
            Err(e) => panic!("transfer read after {n} bytes: {e}"),
        }
    }
}

impl Transfer {
    fn start(s: &Setup, l: &TcpListener, to: SocketAddr) -> Transfer {
        let c = s.in_guest(move || {
            let c = TcpStream::connect_timeout(&to, Duration::from_secs(10))?;
            c.set_read_timeout(Some(Duration::from_secs(60)))?;
            Ok(c)
        });
        let (a, _) = l.accept().unwrap();
        a.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (c2, a2) = (c.try_clone().unwrap(), a.try_clone().unwrap());
        let (st1, st2) = (stop.clone(), stop.clone());
        let threads = vec![
            std::thread::spawn(move || pump_out(c, st1)),
            std::thread::spawn(move || pump_in(a, "host")),
            std::thread::spawn(move || pump_out(a2, st2)),
            std::thread::spawn(move || pump_in(c2, "guest")),
        ];
        Transfer { stop, threads }
    }

    /// Stops both senders; checks that each side got exactly what the
    /// other sent. Returns the bytes moved (guest -> host, host -> guest).
    fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let r: Vec<(u64, u64)> = self.threads.into_iter().map(|t| t.join().expect("transfer thread")).collect();
        assert_eq!(r[0], r[1], "guest -> host: (bytes, checksum) sent and received");
        assert_eq!(r[2], r[3], "host -> guest: (bytes, checksum) sent and received");
        (r[0].0, r[2].0)
    }
}

/// What one flood did to the instance.
struct Held {
    name: &'static str,
    secs: f64,
    fd_peak: usize,
    warnings: usize,
}

/// Sends `n` frames from `make`, sampling fds as it goes.
fn flood(s: &Setup, raw: &Raw, name: &'static str, n: usize, mut make: impl FnMut(usize) -> Vec<u8>) -> Held {
    let warn_before = s.driver.warnings().len();
    let t0 = Instant::now();
    let mut fd_peak = 0;
    for i in 0..n {
        raw.send(&make(i)).expect("raw send");
        if i % 500 == 0 {
            fd_peak = fd_peak.max(fd_count());
        }
    }
    // Let the instance catch up with its queue.
    std::thread::sleep(Duration::from_millis(300));
    fd_peak = fd_peak.max(fd_count());
    let warnings = s.driver.warnings().len() - warn_before;
    let held = Held { name, secs: t0.elapsed().as_secs_f64(), fd_peak, warnings };
    eprintln!(
        "flood {name}: {n} frames in {:.2} s ({:.0}/s), fd peak {fd_peak}, {warnings} warnings",
        held.secs,
        n as f64 / held.secs
    );
    held
}

#[test]
fn guest_floods_stay_within_limits_while_a_transfer_completes() {
    let _serial = serial();
    let max = format!("max-flows={MAX_FLOWS}");
    let t_setup = Instant::now();
    // PASST_TEST_PCAP=file captures what the instance sees (diagnosis).
    let pcap = std::env::var("PASST_TEST_PCAP").map(|p| format!("pcap={p}"));
    let mut extra = vec![max.as_str()];
    extra.extend(pcap.as_deref());
    let s = setup("flood", &extra);
    eprintln!("setup took {:?}", t_setup.elapsed());
    let (l, port) = {
        let l = s.in_host(|| TcpListener::bind("127.0.0.1:0"));
        let p = l.local_addr().unwrap().port();
        (l, p)
    };
    // A listener nobody accepts on: the target of the half-open flood.
    let (_open, open_port) = {
        let l = s.in_host(|| TcpListener::bind("127.0.0.1:0"));
        let p = l.local_addr().unwrap().port();
        (l, p)
    };
    // The floods overflow the guest's own tap queue (its TX drops): the
    // transfer loses segments there and must recover from those losses.
    let fds0 = fd_count();
    let rss0 = rss_kib();
    let transfer = Transfer::start(&s, &l, format!("{GW4}:{port}").parse().unwrap());
    let raw = s.raw();
    let mac = s.guest_mac();
    let mut rng = Rng::new(0xf100d);
    let (g4, gw4): (IpAddr, IpAddr) = (G4.into(), GW4A.into());
    let (g6, gw6): (IpAddr, IpAddr) = (G6.into(), GW6A.into());
    let mut held = Vec::new();

    // SYN flood to closed ports: each refused at once (RST), no flow kept.
    held.push(flood(&s, &raw, "TCP SYN to closed ports", 20_000, |i| {
        let (src, dst) = if i % 2 == 0 { (g4, gw4) } else { (g6, gw6) };
        let dport = 1 + rng.below(1000) as u16;
        let sport = 10_000 + rng.below(50_000) as u16;
        from_guest(mac, frames::ip_frame(src, dst, frames::P_TCP, &frames::tcp(src, dst, sport, dport, rng.next() as u32, 0, 0x02, 64240, frames::SYN_OPTS, &[])))
    }));
    // SYN flood to an open port from an address whose SYN-ACKs nobody
    // answers: half-open connections up to the flow limit.
    let spoof: IpAddr = SPOOF4.into();
    held.push(flood(&s, &raw, "TCP SYN half-open to an open port", 20_000, |i| {
        let sport = 1024 + (i % 60_000) as u16;
        from_guest(mac, frames::ip_frame(spoof, gw4, frames::P_TCP, &frames::tcp(spoof, gw4, sport, open_port, rng.next() as u32, 0, 0x02, 64240, frames::SYN_OPTS, &[])))
    }));
    // UDP to 60,000 ports from one socket: one flow.
    {
        let t0 = Instant::now();
        let warn_before = s.driver.warnings().len();
        let to = GW4A;
        s.in_guest(move || {
            let u = UdpSocket::bind("0.0.0.0:0")?;
            for p in 1..=60_000u16 {
                // The guest's kernel may refuse when errors come back.
                let _ = u.send_to(b"scan", (to, p));
            }
            Ok(())
        });
        std::thread::sleep(Duration::from_millis(300));
        let n = s.driver.warnings().len() - warn_before;
        eprintln!("flood UDP to 60000 ports from one socket: {:.2} s, fds {}, {n} warnings", t0.elapsed().as_secs_f64(), fd_count());
        held.push(Held { name: "UDP to 60000 ports", secs: t0.elapsed().as_secs_f64(), fd_peak: fd_count(), warnings: n });
    }
    // UDP from thousands of source ports: bounded by the flow limit.
    held.push(flood(&s, &raw, "UDP from 20000 source ports", 20_000, |i| {
        let (src, dst) = if i % 2 == 0 { (g4, gw4) } else { (g6, gw6) };
        let sport = 1024 + rng.below(60_000) as u16;
        from_guest(mac, frames::ip_frame(src, dst, frames::P_UDP, &frames::udp(src, dst, sport, 9, b"flood")))
    }));
    // Ping flood with a new identifier each time: a flow per identifier.
    held.push(flood(&s, &raw, "ping with 20000 identifiers", 20_000, |i| {
        let id = i as u16;
        if i % 2 == 0 {
            from_guest(mac, frames::ip_frame(g4, gw4, frames::P_ICMP, &frames::icmp4_echo(id, 1, b"flood")))
        } else {
            let mut b = id.to_be_bytes().to_vec();
            b.extend_from_slice(&[0, 1]);
            from_guest(mac, frames::ip_frame(g6, gw6, frames::P_ICMP6, &frames::icmp6(G6, GW6A, 128, 0, &b)))
        }
    }));
    // ARP and neighbour solicitation floods: answered, nothing kept.
    held.push(flood(&s, &raw, "ARP requests", 20_000, |i| {
        let target = Ipv4Addr::new(192, 0, 2, (i % 250) as u8 + 1);
        let mut f = from_guest(mac, frames::arp_request(G4, target));
        f[22..28].copy_from_slice(&mac);
        f
    }));
    held.push(flood(&s, &raw, "neighbour solicitations", 20_000, |_| {
        let mut f = from_guest(mac, frames::ndp_ns(G6, GW6A));
        // The source link-layer option carries the real MAC too.
        let n = f.len();
        f[n - 6..].copy_from_slice(&mac);
        frames::fix_checksums(&mut f);
        f
    }));

    let t_fin = Instant::now();
    let (to_host, to_guest) = transfer.finish();
    let moved = to_host + to_guest;
    eprintln!("finishing the transfer took {:?}", t_fin.elapsed());
    let stats = s.driver.stats();
    let warnings = s.driver.warnings();
    eprintln!("transfer during the floods: {to_host} bytes to the host, {to_guest} to the guest, intact");
    eprintln!("drops {:?}; {} warnings: {:#?}", stats.drops, warnings.len(), warnings);
    assert!(!s.driver.finished(), "the instance is still running");
    assert!(moved > 1 << 20, "the transfer moved data during the floods ({moved} bytes)");
    // Both senders are paced alike. A direction that recovers from its
    // losses only by retransmission timeouts falls far behind (guest ->
    // host moved a tenth to a half of the other way before out-of-order
    // data was held and SACKed, stalling for up to a minute).
    assert!(
        to_host >= to_guest / 2 && to_guest >= to_host / 2,
        "both directions kept going: {to_host} bytes to the host, {to_guest} to the guest"
    );
    // Every flow holds one socket (a TCP connection while connecting,
    // maybe one more): the limit bounds fds.
    for h in &held {
        assert!(h.fd_peak <= fds0 + MAX_FLOWS + 16, "{}: fds {fds0} -> {}", h.name, h.fd_peak);
        // Rate-limited: one line per kind per 5 s, whatever the rate.
        assert!(h.warnings <= 6, "{}: {} warnings", h.name, h.warnings);
    }
    assert!(s.driver.count(4, "flow limit") >= 1, "the flow limit was reached and said so");
    assert!(stats.dropped(passt::stats::Drop::Limit) > 1000, "refusals counted: {:?}", stats.drops);
    assert!(warnings.len() <= 20, "warnings in total: {warnings:#?}");
    let rss1 = rss_kib();
    eprintln!("RSS {rss0} KiB -> {rss1} KiB");
    assert!(rss1 < rss0 + 64 * 1024, "RSS {rss0} KiB -> {rss1} KiB");

    // The flood is over: the guest can open connections again, soon.
    let t0 = Instant::now();
    let to: SocketAddr = format!("{GW4}:{port}").parse().unwrap();
    let ok = common::netns::wait_until(Duration::from_secs(20), || {
        let c = s.guest.run(move || TcpStream::connect_timeout(&to, Duration::from_millis(500)));
        c.is_ok() && l.accept().is_ok()
    });
    eprintln!("a new connection after the floods took {:?}", t0.elapsed());
    assert!(ok, "the guest can connect again after the flood");
    // UDP flows of the flood give way once idle for a few seconds: a
    // client that retries (as resolvers do) gets through.
    let u = s.in_host(|| UdpSocket::bind("127.0.0.1:0"));
    let uport = u.local_addr().unwrap().port();
    let to: SocketAddr = format!("{GW4}:{uport}").parse().unwrap();
    u.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let t0 = Instant::now();
    let c = s.in_guest(|| UdpSocket::bind("0.0.0.0:0"));
    let mut b = [0u8; 16];
    let got = (0..30).any(|_| {
        c.send_to(b"after", to).unwrap();
        matches!(u.recv_from(&mut b), Ok((5, _)))
    });
    eprintln!("a UDP exchange after the floods took {:?}", t0.elapsed());
    assert!(got, "UDP works again after the flood");
    let t_end = Instant::now();
    drop(s);
    eprintln!("teardown took {:?}", t_end.elapsed());
}

/// The flow budget is shared by TCP, UDP and ICMP: flows a flood left
/// behind, idle for a few seconds, give way to a new TCP connection, not
/// only to new UDP flows (else a guest that sprayed datagrams or pings
/// could not open a connection for minutes).
#[test]
fn idle_flows_of_other_protocols_give_way_to_a_new_connection() {
    let _serial = serial();
    let s = setup("giveway", &["max-flows=40"]);
    let l = s.in_host(|| TcpListener::bind("127.0.0.1:0"));
    let to: SocketAddr = format!("{GW4}:{}", l.local_addr().unwrap().port()).parse().unwrap();
    // 30 UDP flows (one per source port) and 20 ping flows: more than
    // the budget.
    let sink: SocketAddr = format!("{GW4}:9").parse().unwrap();
    let _held: Vec<UdpSocket> = s.in_guest(move || {
        (0..30)
            .map(|_| {
                let u = UdpSocket::bind("0.0.0.0:0")?;
                u.send_to(b"x", sink)?;
                Ok(u)
            })
            .collect()
    });
    let (raw, mac) = (s.raw(), s.guest_mac());
    for id in 0..20u16 {
        raw.send(&from_guest(mac, frames::ip_frame(G4.into(), GW4A.into(), frames::P_ICMP, &frames::icmp4_echo(id, 1, b"x"))))
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(s.driver.count(4, "flow limit") >= 1, "the budget is spent: {:?}", s.driver.warnings());
    let now = s.guest.run(move || TcpStream::connect_timeout(&to, Duration::from_secs(2)));
    assert!(now.is_err(), "no room for a connection while every flow is fresh");
    // Five seconds idle: the oldest flow may be evicted for a new one.
    std::thread::sleep(Duration::from_millis(5500));
    let t0 = Instant::now();
    // Less than the guest's first SYN retransmission (1 s): the first
    // SYN gets through.
    let c = s.guest.run(move || TcpStream::connect_timeout(&to, Duration::from_millis(900)));
    assert!(c.is_ok(), "a new connection once other flows are idle: {c:?}");
    assert!(l.accept().is_ok());
    eprintln!("connected in {:?}", t0.elapsed());
}
