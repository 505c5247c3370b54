//! The daemon's busy polling (`--busy-poll`), with a real namespace guest:
//! 1-byte TCP round trips through the daemon's tap, the daemon's sleeps
//! counted from /proc (voluntary context switches), and its CPU time once
//! the traffic stops.
//!
//! What polling is for: a round trip wakes the daemon twice (the guest's
//! request, the host's reply); polling for a while after each event
//! catches most of those without sleeping. What it must not do: keep
//! polling when nothing comes. And its coalescing: a short nap before
//! waiting in a flood of small datagrams to the guest, never between
//! round trips.

mod common;

use common::netns::{wait_until, ChildGuard, HostWithRouter, TestNs};
use common::tempdir::TempDir;
use common::{build_standalone, is_root};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

const ROUND_TRIPS: usize = 3000;

/// passt-standalone, built once for this binary.
fn daemon() -> &'static Path {
    static DAEMON: OnceLock<PathBuf> = OnceLock::new();
    DAEMON.get_or_init(|| build_standalone("busy-poll"))
}

/// One field of /proc/PID/status as a number.
fn status_number(pid: u32, name: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// The daemon serving a fresh guest namespace, with `serve` answering each
/// connection to a listener on the host namespace's loopback (the guest
/// reaches it at `target`).
struct Setup {
    daemon: ChildGuard,
    guest: TestNs,
    target: String,
    net: HostWithRouter,
}

impl Setup {
    fn new(tag: &str, extra: &[&str], serve: fn(TcpStream)) -> Setup {
        Setup::with_stderr(tag, extra, serve, Stdio::null())
    }

    fn with_stderr(tag: &str, extra: &[&str], serve: fn(TcpStream), stderr: Stdio) -> Setup {
        let net = HostWithRouter::new(tag);
        let guest = TestNs::new(&format!("{tag}-g"));
        let listener = net.host.run(|| TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(s) = s else { return };
                thread::spawn(move || serve(s));
            }
        });
        let child = net
            .host
            .command(daemon().to_str().unwrap())
            .args(["-f", "-q", "--netns"])
            .arg(&guest.path)
            .args(["--config-net"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start the daemon");
        let daemon = ChildGuard(child);
        let target = format!("{}:{port}", HostWithRouter::ROUTER4);
        assert!(
            wait_until(Duration::from_secs(20), || guest.run(|| TcpStream::connect(&target)).is_ok()),
            "the guest never reached the host"
        );
        Setup { daemon, guest, target, net }
    }

    fn pid(&self) -> u32 {
        self.daemon.id()
    }
}

fn echo(mut s: TcpStream) {
    s.set_nodelay(true).unwrap();
    let mut b = [0u8; 1];
    while s.read_exact(&mut b).is_ok() && s.write_all(&b).is_ok() {}
}

fn sink(mut s: TcpStream) {
    let mut b = vec![0u8; 1 << 16];
    while s.read(&mut b).map(|n| n > 0).unwrap_or(false) {}
}

/// ROUND_TRIPS 1-byte round trips from the guest through the daemon to
/// an `echo` server, each reply checked.
fn round_trips(setup: &Setup) {
    let checked = setup
        .guest
        .run(|| {
            let mut s = TcpStream::connect(&setup.target)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut b = [0u8; 1];
            for i in 0..ROUND_TRIPS {
                s.write_all(&[i as u8])?;
                s.read_exact(&mut b)?;
                assert_eq!(b[0], i as u8, "echo of round trip {i}");
            }
            Ok(ROUND_TRIPS)
        })
        .expect("round trips");
    assert_eq!(checked, ROUND_TRIPS);
}

/// Round trips through the daemon: its sleeps per round trip, and its CPU
/// ticks over one idle second afterwards.
fn measure(tag: &str, extra: &[&str]) -> (f64, u64) {
    let setup = Setup::new(tag, extra, echo);
    let pid = setup.pid();
    let before = status_number(pid, "voluntary_ctxt_switches");
    round_trips(&setup);
    let sleeps = (status_number(pid, "voluntary_ctxt_switches") - before) as f64 / ROUND_TRIPS as f64;
    thread::sleep(Duration::from_millis(300));
    let t0 = cpu_ticks(pid);
    thread::sleep(Duration::from_secs(1));
    let idle = cpu_ticks(pid) - t0;
    (sleeps, idle)
}

/// Sleeps per round trip the no-polling baseline must show before polling
/// is compared with it.
const BASELINE_SLEEPS: f64 = 0.5;

#[test]
fn polling_saves_sleeps_under_round_trips_and_stops_when_idle() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    // Without polling every request and every reply is a wake-up (1.4
    // sleeps per round trip on an idle machine). On a saturated one (the
    // other test thread moving hundreds of MiB, say) the daemon is often
    // preempted while the peer answers and finds the next frame waiting
    // instead of sleeping for it: 0.02-0.22 with two CPU hogs beside the
    // test. So the pair is measured again, up to three times, until the
    // baseline shows the wake-ups polling is meant to save.
    let mut attempt = 0;
    let (sleeps_off, idle_off, sleeps_on, idle_on) = loop {
        attempt += 1;
        let (sleeps_off, idle_off) = measure("bp-off", &["--busy-poll", "0"]);
        let (sleeps_on, idle_on) = measure("bp-on", &[]);
        eprintln!("sleeps per round trip: {sleeps_off:.2} without polling, {sleeps_on:.2} with; idle ticks {idle_off}, {idle_on}");
        if sleeps_off > BASELINE_SLEEPS || attempt == 3 {
            break (sleeps_off, idle_off, sleeps_on, idle_on);
        }
    };
    assert!(sleeps_off > BASELINE_SLEEPS, "without polling: {sleeps_off:.2} sleeps per round trip (the machine too busy to tell, three times)");
    // With it, most of them are caught while polling (a loaded machine
    // delays some past the window, hence the margin).
    assert!(sleeps_on < sleeps_off * 0.75, "with polling: {sleeps_on:.2} vs {sleeps_off:.2} sleeps per round trip");
    // Idle: no polling left (100 ticks would be a whole CPU).
    assert!(idle_on <= 3, "{idle_on} ticks of CPU in an idle second with polling");
    assert!(idle_off <= 3, "{idle_off} ticks of CPU in an idle second without polling");
}

/// Writes 64 KiB every 2 ms for 2 s; returns the bytes written.
fn write_bursts(s: &mut TcpStream) -> std::io::Result<usize> {
    let burst = vec![0x5au8; 1 << 16];
    let end = std::time::Instant::now() + Duration::from_secs(2);
    let mut sent = 0usize;
    while std::time::Instant::now() < end {
        s.write_all(&burst)?;
        sent += burst.len();
        thread::sleep(Duration::from_millis(2));
    }
    Ok(sent)
}

/// Host side: bursts to the guest, then closes.
fn bursts(mut s: TcpStream) {
    let _ = write_bursts(&mut s);
}

/// Guest side: reads until the host closes; returns the bytes read.
fn read_all(target: &str) -> std::io::Result<usize> {
    let mut s = TcpStream::connect(target)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut b = vec![0u8; 1 << 16];
    let mut received = 0usize;
    loop {
        match s.read(&mut b)? {
            0 => return Ok(received),
            n => received += n,
        }
    }
}

/// A transfer with the longest polling window: `serve` answers on the
/// host, `guest` runs in the guest. Returns the bytes `guest` counted and
/// the daemon's CPU ticks meanwhile.
fn bulk_with_longest_window(tag: &str, serve: fn(TcpStream), guest: fn(&str) -> std::io::Result<usize>) -> (usize, u64) {
    let setup = Setup::new(tag, &["--busy-poll", "10000"], serve);
    let pid = setup.pid();
    let t0 = cpu_ticks(pid);
    let bytes = setup.guest.run(|| guest(&setup.target)).expect("bulk transfer");
    (bytes, cpu_ticks(pid) - t0)
}

/// A bulk transfer in bursts (64 KiB every 2 ms, guest to host) with the
/// longest window: the waits between bursts are within it, so by the
/// window's own rule polling would fill them (a whole CPU). Once a burst's
/// worth of frames went through since the last sleep, the daemon must
/// sleep instead.
#[test]
fn no_polling_between_the_batches_of_a_bulk_transfer() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let (sent, ticks) = bulk_with_longest_window("bp-bulk", sink, |target| write_bursts(&mut TcpStream::connect(target)?));
    eprintln!("{} MiB in bursts: {ticks} ticks of daemon CPU in 2 s", sent >> 20);
    assert!(sent >= 16 << 20, "only {sent} bytes sent");
    // Polling between bursts is ~200 ticks (a whole CPU for 2 s); moving
    // the data itself a few.
    assert!(ticks < 60, "{ticks} ticks of daemon CPU in 2 s of bursts: polling between them");
}

/// The same in the other direction, host to guest: now the daemon's
/// wake-ups alternate between the host's bursts and the guest's ACKs, a
/// few small frames each. Polling after each ACK (it moved too little to
/// count as bulk by itself) fills the wait for the next burst: a whole
/// CPU. The rate of the last millisecond shows the transfer instead.
#[test]
fn no_polling_after_the_acks_of_a_bulk_transfer_to_the_guest() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let (received, ticks) = bulk_with_longest_window("bp-down", bursts, read_all);
    eprintln!("{} MiB in bursts to the guest: {ticks} ticks of daemon CPU in 2 s", received >> 20);
    assert!(received >= 16 << 20, "only {received} bytes received");
    assert!(ticks < 60, "{ticks} ticks of daemon CPU in 2 s of bursts: polling after the guest's ACKs");
}

/// Datagrams of 1400 bytes from the host's loopback to the guest, as fast
/// as the host can send them for `secs`, once the guest sent one (a UDP
/// flow starts from the guest). Returns how many the guest received.
fn udp_flood_to_guest(setup: &Setup, secs: u64) -> usize {
    let host = setup.net.host.run(|| UdpSocket::bind("127.0.0.1:0")).unwrap();
    let port = host.local_addr().unwrap().port();
    let sender = thread::spawn(move || {
        host.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 16];
        let (_, peer) = host.recv_from(&mut b).expect("the guest's first datagram");
        let until = std::time::Instant::now() + Duration::from_secs(secs);
        let payload = [0x5au8; 1400];
        while std::time::Instant::now() < until {
            // A full buffer on the way drops datagrams: that is a flood.
            let _ = host.send_to(&payload, peer);
        }
    });
    let received = setup
        .guest
        .run(|| {
            let s = UdpSocket::bind("0.0.0.0:0")?;
            s.set_read_timeout(Some(Duration::from_millis(500)))?;
            s.send_to(b"go", format!("{}:{port}", HostWithRouter::ROUTER4))?;
            let mut n = 0;
            let mut b = [0u8; 2048];
            while let Ok(len) = s.recv(&mut b) {
                assert_eq!(len, 1400, "datagram {n} arrived whole");
                n += 1;
            }
            Ok(n)
        })
        .expect("the guest's receiver");
    sender.join().unwrap();
    received
}

/// The counts the daemon logs at debug level when SIGTERM stops it: its
/// waits for events and its coalescing naps.
fn waits_and_naps(setup: Setup, log: &Path) -> (u64, u64) {
    let pid = setup.pid().to_string();
    let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
    assert!(
        wait_until(Duration::from_secs(5), || std::fs::read_to_string(log).unwrap_or_default().contains("napped")),
        "no exit log line with the counts in {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    let text = std::fs::read_to_string(log).unwrap();
    let line = text.lines().find(|l| l.contains("napped")).unwrap();
    let numbers: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert_eq!(numbers.len(), 2, "two counts in {line:?}");
    (numbers[0], numbers[1])
}

/// Coalescing: a flood of small datagrams to the guest makes the daemon
/// nap before it waits, so that the next wake-up takes a larger batch
/// (COALESCE_NAP_NS in passt-standalone.c); 1-byte round trips, where a
/// nap would be pure latency, never do. The daemon counts its naps in its
/// debug log at exit.
#[test]
fn a_flood_of_datagrams_to_the_guest_is_coalesced_and_round_trips_are_not() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = TempDir::new("bp-nap");
    let flood_log = dir.join("flood.log");
    let setup = Setup::with_stderr("bp-nap", &["-d"], echo, Stdio::from(std::fs::File::create(&flood_log).unwrap()));
    let received = udp_flood_to_guest(&setup, 2);
    let (waits, naps) = waits_and_naps(setup, &flood_log);
    eprintln!("UDP flood: {received} datagrams received, {waits} waits, {naps} naps");
    assert!(received >= 10_000, "only {received} datagrams reached the guest");
    // Thousands on an idle machine; a few dozen with both CPUs taken by
    // other work, where the daemon's rare turns find batches too large to
    // need a nap. Without coalescing: none.
    assert!(naps >= 5, "{naps} naps in 2 s of flood ({waits} waits)");

    let rr_log = dir.join("rr.log");
    let setup = Setup::with_stderr("bp-nonap", &["-d"], echo, Stdio::from(std::fs::File::create(&rr_log).unwrap()));
    round_trips(&setup);
    let (waits, naps) = waits_and_naps(setup, &rr_log);
    eprintln!("{ROUND_TRIPS} round trips: {waits} waits, {naps} naps");
    assert_eq!(naps, 0, "round trips napped ({waits} waits)");
}
