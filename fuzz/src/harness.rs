//! The fuzz harness shared by the `cargo fuzz` targets and by the
//! regression test (`tests/fuzz_regressions.rs` includes this file with
//! `#[path]`, so it depends only on `passt` and `std`).
//!
//! Theory of operation. A fuzz input is a sequence of *records*:
//!
//! ```text
//! record = ctl:u8  len:u16 (big-endian)  body:[u8; len]   (body cut short at the end of the input)
//! ctl    = bits 0-4: time step before the record: 0 none, n -> 2^(n-1) ms (1 ms .. 12 days)
//!          bit 5 (FIX_CSUM): the harness fills in the IPv4 header checksum and the
//!                 TCP/UDP/ICMP/ICMPv6 checksum of the body before handing it in
//!          bit 6 (FIX_ACK): a TCP body's acknowledgement number, and the edges of
//!                 its SACK blocks, are offsets from the next sequence number we sent on
//!                 that guest port (our initial sequence numbers are random); a zero
//!                 destination port becomes the peer's port
//!          bit 7 (SPECIAL): with an empty body, a *host action* (a client on the host
//!                 connects to the forwarded TCP port and sends to the forwarded UDP
//!                 port); a one-byte body N limits what the guest side takes
//!                 (backpressure): the frame output at most N frames per call, the
//!                 stream reader at most N * 4 KiB per round (0: no limit); in the
//!                 stream target, a longer body is raw stream bytes written as they
//!                 are (no length prefix added)
//! ```
//!
//! The checksum and acknowledgement fix-ups let mutations reach the protocol
//! code instead of dying at the checksum checks; inputs without them still
//! exercise those checks.
//!
//! Each input gets a fresh instance with a fixed configuration (explicit
//! addresses, MAC, DNS, search list, forwarded ports), so a run does not
//! depend on the host. Flows do open real host sockets: the harness must run
//! in a network namespace of its own with only a loopback interface (the
//! fuzz script uses `unshare -n`, the test a fresh namespace), where it
//! serves real peers on loopback: TCP echo on port 7, TCP port 9 closing at
//! once, TCP port 19 sending 256 KiB (chargen), UDP echo on ports 7 and 53 (the DNS address is the host's loopback,
//! reached through the gateway address). Anything else is refused or
//! unreachable, deterministically.
//!
//! Checks beyond "no panic": every frame we emit has our MAC as source, a
//! sane length, consistent IP lengths and correct checksums; in the stream
//! target every length prefix is valid; and no file descriptor outlives its
//! instance.

#![allow(dead_code)]

use passt::engine::{Instance, RunError};
use passt::wire::checksum;
use passt::{Config, Instant};
use std::collections::HashMap;
use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const FIX_CSUM: u8 = 0x20;
pub const FIX_ACK: u8 = 0x40;
pub const SPECIAL: u8 = 0x80;
pub const TIME_MASK: u8 = 0x1f;

pub const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
pub const OUR_MAC: [u8; 6] = [0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55];
pub const GUEST4: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
pub const GATEWAY4: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
pub const GUEST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x15);
pub const GUEST6_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456);
/// The IPv6 address mapped to the host's loopback.
pub const HOST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
/// Our link-local address (from OUR_MAC): the router's.
pub const OUR6_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x9857, 0x9aff, 0xfe55, 0x9a55);
/// What a chargen peer sends on each connection.
const CHARGEN_BYTES: usize = 256 << 10;
/// Forwarded host ports (to the same guest ports).
pub const FWD_TCP: u16 = 8080;
pub const FWD_UDP: u16 = 8081;

/// Largest body a record can carry in one frame (passt's own limit is higher; this keeps runs fast).
const MAX_FRAME: usize = 14 + 65535;
/// The instance's start time: not zero, so that "time 0" is never special.
const START_NS: u64 = 1_000_000_000;

/// The fixed configuration of every instance.
fn config(attach: &[(&str, String)]) -> Config {
    let mut c = Config::new();
    let fixed = [
        ("address", "10.0.2.15"),
        ("netmask", "24"),
        ("gateway", "10.0.2.2"),
        ("address", "2001:db8::15"),
        ("mac-addr", "9a:55:9a:55:9a:55"),
        // The guest reaches the host's loopback through the gateway (IPv4)
        // and through this address (IPv6).
        ("map-host-loopback", "2001:db8::2"),
        ("dns", "127.0.0.1"),
        ("dns", "::1"),
        ("search", "example.org"),
        ("tcp-ports", "8080"),
        ("udp-ports", "8081"),
        // Small, so that inputs can reach the limit.
        ("max-flows", "32"),
    ];
    for (k, v) in fixed {
        c.set(k, v).unwrap_or_else(|e| panic!("fuzz config {k}={v}: {e}"));
    }
    for (k, v) in attach {
        c.set(k, v).unwrap_or_else(|e| panic!("fuzz config {k}={v}: {e}"));
    }
    c
}

/// One record of the input.
pub struct Record<'a> {
    pub ctl: u8,
    pub body: &'a [u8],
}

/// Splits an input into records (see the module comment).
pub fn records(mut data: &[u8]) -> Vec<Record<'_>> {
    let mut out = Vec::new();
    while data.len() >= 3 {
        let ctl = data[0];
        let len = usize::from(u16::from_be_bytes([data[1], data[2]]));
        let end = (3 + len).min(data.len());
        out.push(Record { ctl, body: &data[3..end] });
        data = &data[end..];
    }
    out
}

/// Encodes records (the seed generator's side of [`records`]).
pub fn encode(records: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (ctl, body) in records {
        assert!(body.len() <= usize::from(u16::MAX));
        out.push(*ctl);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
    }
    out
}

/// The time step a control byte asks for, in nanoseconds.
fn step_ns(ctl: u8) -> u64 {
    match ctl & TIME_MASK {
        0 => 0,
        n => (1u64 << (n - 1)) * 1_000_000,
    }
}

/// `PASST_FUZZ_TRACE=1`: describe every frame from and to the guest on
/// stderr (to check what a seed or a finding does).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("PASST_FUZZ_TRACE").is_some())
}

/// One line about a frame: addresses, protocol, ports, TCP flags and numbers.
fn describe(f: &[u8]) -> String {
    if f.len() < 14 {
        return format!("{} bytes", f.len());
    }
    let et = u16::from_be_bytes([f[12], f[13]]);
    let Some((s, e, proto)) = l4_range(f) else { return format!("ethertype {et:#06x}, {} bytes", f.len()) };
    let l4 = &f[s..e];
    let ports = if l4.len() >= 4 && (proto == 6 || proto == 17) {
        format!(" {} -> {}", u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]]))
    } else {
        String::new()
    };
    let extra = if proto == 6 && l4.len() >= 20 {
        let seq = u32::from_be_bytes(l4[4..8].try_into().unwrap());
        let ack = u32::from_be_bytes(l4[8..12].try_into().unwrap());
        let off = usize::from(l4[12] >> 4) * 4;
        format!(" flags {:#04x} seq {seq} ack {ack} data {}", l4[13], l4.len().saturating_sub(off))
    } else if (proto == 1 || proto == 58) && !l4.is_empty() {
        format!(" type {}", l4[0])
    } else {
        format!(" {} bytes", l4.len())
    };
    format!("ethertype {et:#06x} proto {proto}{ports}{extra}")
}

/// Refuses to run outside an isolated network namespace: flows open real
/// sockets, and fuzzed destinations must not reach anything but loopback.
fn assert_isolated() {
    let dev = std::fs::read_to_string("/proc/thread-self/net/dev").expect("/proc/thread-self/net/dev");
    let ifaces: Vec<&str> = dev.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
    assert!(
        ifaces == ["lo"],
        "the fuzz harness must run in a network namespace with only 'lo' (use fuzz/run.sh, or unshare -n); found {ifaces:?}"
    );
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// Runs one `frames` input: records are frames handed to `frame_input`.
/// Returns every frame sent to the guest.
pub fn run_frames(data: &[u8]) -> Vec<Vec<u8>> {
    run_frames_with(data, &[])
}

/// The `frames_mtu576` target: the same with an MTU of 576, the smallest
/// common one (IPv6 off, as below 1280; small TCP segments, DHCP's MTU
/// option, frames cut at the MTU).
pub fn run_frames_mtu576(data: &[u8]) -> Vec<Vec<u8>> {
    run_frames_with(data, &[("mtu", "576")])
}

fn run_frames_with(data: &[u8], extra: &[(&str, &str)]) -> Vec<Vec<u8>> {
    assert_isolated();
    let fds = open_fds();
    let seen = {
        let out: Arc<Mutex<Vec<Vec<u8>>>> = Default::default();
        let limit = Arc::new(AtomicUsize::new(0));
        let mut attach = vec![("frames", String::new())];
        attach.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        let mut inst = Instance::new(&config(&attach)).expect("instance");
        let (sink, max) = (out.clone(), limit.clone());
        inst.set_frame_output(Box::new(move |frames: &[IoSlice<'_>]| {
            let n = match max.load(Ordering::Relaxed) {
                0 => frames.len(),
                m => m.min(frames.len()),
            };
            sink.lock().unwrap().extend(frames[..n].iter().map(|f| f.to_vec()));
            n
        }))
        .expect("frame output");
        let mut s = Session::new(Guest::Frames { inst, out });
        s.mtu = extra.iter().find(|(k, _)| *k == "mtu").map_or(65520, |(_, v)| v.parse().unwrap());
        s.process();
        for r in records(data) {
            s.now += step_ns(r.ctl);
            if r.ctl & SPECIAL != 0 && r.body.is_empty() {
                s.peers.host_action();
            } else if r.ctl & SPECIAL != 0 && r.body.len() == 1 {
                limit.store(usize::from(r.body[0]), Ordering::Relaxed);
            } else {
                let frame = s.fixup(r.ctl, r.body);
                let Guest::Frames { inst, .. } = &mut s.guest else { unreachable!() };
                inst.frame_input(&frame, Instant::from_nanos(s.now)).expect("frame_input");
            }
            s.settle();
        }
        s.finish();
        s.seen
    };
    assert_eq!(open_fds(), fds, "file descriptors outlived the instance");
    seen
}

/// Runs one `stream` input: records are written to the QEMU stream socket
/// of an instance attached with `fd`, each in one `write`. Returns every
/// frame sent to the guest.
pub fn run_stream(data: &[u8]) -> Vec<Vec<u8>> {
    assert_isolated();
    let fds = open_fds();
    let seen = {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        ours.set_nonblocking(true).expect("non-blocking");
        let fd = theirs.into_raw_fd();
        let inst = Instance::new(&config(&[("fd", fd.to_string())])).expect("instance");
        let mut s = Session::new(Guest::Stream { inst, sock: ours, rx: Vec::new(), gone: false, read_limit: 0 });
        s.process();
        for r in records(data) {
            s.now += step_ns(r.ctl);
            let bytes = if r.ctl & SPECIAL != 0 {
                if r.body.len() <= 1 {
                    match r.body.first() {
                        None => s.peers.host_action(),
                        Some(&n) => {
                            if let Guest::Stream { read_limit, .. } = &mut s.guest {
                                *read_limit = usize::from(n) * 4096;
                            }
                        }
                    }
                    s.settle();
                    continue;
                }
                r.body.to_vec()
            } else {
                let frame = s.fixup(r.ctl, r.body);
                let mut b = (frame.len() as u32).to_be_bytes().to_vec();
                b.extend_from_slice(&frame);
                b
            };
            s.write_stream(&bytes);
            s.settle();
            if s.stream_gone() {
                break;
            }
        }
        s.finish();
        s.seen
    };
    assert_eq!(open_fds(), fds, "file descriptors outlived the instance");
    seen
}

enum Guest {
    Frames { inst: Instance, out: Arc<Mutex<Vec<Vec<u8>>>> },
    /// `read_limit`: most bytes read from the socket per round (0: all there is).
    Stream { inst: Instance, sock: UnixStream, rx: Vec<u8>, gone: bool, read_limit: usize },
}

struct Session {
    guest: Guest,
    peers: Peers,
    now: u64,
    /// Per guest TCP port: the peer's port and the next sequence number we send.
    seqs: HashMap<u16, (u16, u32)>,
    /// Every frame sent to the guest.
    seen: Vec<Vec<u8>>,
    /// The configured MTU: no TCP segment to the guest is larger.
    mtu: usize,
}

impl Session {
    fn new(guest: Guest) -> Session {
        Session { guest, peers: Peers::new(), now: START_NS, seqs: HashMap::new(), seen: Vec::new(), mtu: 65520 }
    }

    fn instance(&mut self) -> &mut Instance {
        match &mut self.guest {
            Guest::Frames { inst, .. } | Guest::Stream { inst, .. } => inst,
        }
    }

    /// Runs the instance's loop once; checks what it emitted.
    fn process(&mut self) {
        let now = Instant::from_nanos(self.now);
        match self.instance().process(now) {
            Ok(_) => {}
            Err(RunError::GuestGone) if matches!(self.guest, Guest::Stream { .. }) => {
                if let Guest::Stream { gone, .. } = &mut self.guest {
                    *gone = true;
                }
            }
            Err(e) => panic!("process: {e}"),
        }
        self.collect();
    }

    /// After a record: the instance runs, the host peers answer, the
    /// instance runs again to carry their answers to the guest.
    fn settle(&mut self) {
        self.process();
        if self.peers.service() {
            self.process();
        }
    }

    /// The end of an input: a long time later, so that timers fire.
    fn finish(&mut self) {
        self.now += 3 * 3600 * 1_000_000_000;
        self.process();
        if trace() {
            let stats = self.instance().stats().clone();
            eprintln!("  stats: {stats:?}");
        }
    }

    fn stream_gone(&self) -> bool {
        matches!(self.guest, Guest::Stream { gone: true, .. })
    }

    /// Takes the frames the instance emitted and checks them.
    fn collect(&mut self) {
        let frames: Vec<Vec<u8>> = match &mut self.guest {
            Guest::Frames { out, .. } => std::mem::take(&mut *out.lock().unwrap()),
            Guest::Stream { sock, rx, gone, read_limit, .. } => {
                let mut buf = vec![0u8; if *read_limit == 0 { 1 << 16 } else { *read_limit }];
                let mut total = 0;
                loop {
                    if *read_limit != 0 && total >= *read_limit {
                        break;
                    }
                    match sock.read(&mut buf) {
                        Ok(0) => {
                            *gone = true;
                            break;
                        }
                        Ok(n) => {
                            rx.extend_from_slice(&buf[..n]);
                            total += n;
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        // The instance closed the connection while data was in flight.
                        Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                            *gone = true;
                            break;
                        }
                        Err(e) => panic!("reading the stream socket: {e}"),
                    }
                }
                let mut frames = Vec::new();
                let mut at = 0;
                while rx.len() - at >= 4 {
                    let n = u32::from_be_bytes(rx[at..at + 4].try_into().unwrap()) as usize;
                    assert!((14..=MAX_FRAME).contains(&n), "bad length prefix {n} on the stream to the guest");
                    if rx.len() - at < 4 + n {
                        break;
                    }
                    frames.push(rx[at + 4..at + 4 + n].to_vec());
                    at += 4 + n;
                }
                rx.drain(..at);
                frames
            }
        };
        for f in &frames {
            if trace() {
                eprintln!("  to guest: {}", describe(f));
            }
            check_output(f);
            check_tcp_mtu(f, self.mtu);
            self.track_tcp(f);
        }
        self.seen.extend(frames);
    }

    /// Writes stream bytes, letting the instance drain the socket when it is full.
    fn write_stream(&mut self, mut bytes: &[u8]) {
        for _ in 0..256 {
            if bytes.is_empty() || self.stream_gone() {
                return;
            }
            let Guest::Stream { sock, .. } = &mut self.guest else { unreachable!() };
            match sock.write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.process(),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // The instance closed its end (bad framing).
                Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => {
                    if let Guest::Stream { gone, .. } = &mut self.guest {
                        *gone = true;
                    }
                    return;
                }
                Err(e) => panic!("writing the stream socket: {e}"),
            }
        }
    }

    /// Remembers the next sequence number we send on a guest TCP port.
    fn track_tcp(&mut self, f: &[u8]) {
        let Some((l4, proto)) = l4_of(f) else { return };
        if proto != 6 || l4.len() < 20 {
            return;
        }
        let off = usize::from(l4[12] >> 4) * 4;
        if off < 20 || off > l4.len() {
            return;
        }
        let flags = l4[13];
        let seq = u32::from_be_bytes(l4[4..8].try_into().unwrap());
        let len = (l4.len() - off) as u32 + u32::from(flags & 0x02 != 0) + u32::from(flags & 0x01 != 0);
        let (src_port, dst_port) = (u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]]));
        self.seqs.insert(dst_port, (src_port, seq.wrapping_add(len)));
    }

    /// Applies the fix-ups `ctl` asks for to a copy of `body`.
    fn fixup(&self, ctl: u8, body: &[u8]) -> Vec<u8> {
        let mut f = body.to_vec();
        if ctl & FIX_ACK != 0 {
            self.fix_ack(&mut f);
        }
        if ctl & FIX_CSUM != 0 {
            fix_checksums(&mut f);
        }
        if trace() {
            eprintln!("from guest: {}", describe(&f));
        }
        f
    }

    fn fix_ack(&self, f: &mut [u8]) {
        let Some((start, end, proto)) = l4_range(f) else { return };
        if proto != 6 || end - start < 20 {
            return;
        }
        let l4 = &mut f[start..end];
        let src_port = u16::from_be_bytes([l4[0], l4[1]]);
        let Some(&(peer_port, next)) = self.seqs.get(&src_port) else { return };
        if l4[2..4] == [0, 0] {
            l4[2..4].copy_from_slice(&peer_port.to_be_bytes());
        }
        let ack = u32::from_be_bytes(l4[8..12].try_into().unwrap()).wrapping_add(next);
        l4[8..12].copy_from_slice(&ack.to_be_bytes());
        // SACK blocks (option 5) name our sequence numbers too.
        let off = (usize::from(l4[12] >> 4) * 4).clamp(20, l4.len());
        let mut i = 20;
        while i < off {
            match l4[i] {
                0 => break,
                1 => i += 1,
                kind => {
                    let Some(&len) = l4.get(i + 1) else { break };
                    let len = usize::from(len);
                    if len < 2 || i + len > off {
                        break;
                    }
                    if kind == 5 {
                        for edge in l4[i + 2..i + len].chunks_exact_mut(4) {
                            let v = u32::from_be_bytes(edge.try_into().unwrap()).wrapping_add(next);
                            edge.copy_from_slice(&v.to_be_bytes());
                        }
                    }
                    i += len;
                }
            }
        }
    }
}

/// Where the L4 part of an Ethernet frame is, by the IP header's own
/// lengths cut to the frame: (start, end, protocol).
fn l4_range(f: &[u8]) -> Option<(usize, usize, u8)> {
    if f.len() < 14 {
        return None;
    }
    match u16::from_be_bytes([f[12], f[13]]) {
        0x0800 => {
            let ihl = usize::from(f.get(14)? & 0x0f) * 4;
            if ihl < 20 || f.len() < 14 + ihl {
                return None;
            }
            let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
            if total < ihl {
                return None;
            }
            Some((14 + ihl, (14 + total).min(f.len()), f[23]))
        }
        0x86dd => {
            if f.len() < 54 {
                return None;
            }
            let plen = usize::from(u16::from_be_bytes([f[18], f[19]]));
            Some((54, (54 + plen).min(f.len()), f[20]))
        }
        _ => None,
    }
}

pub fn l4_of(f: &[u8]) -> Option<(&[u8], u8)> {
    l4_range(f).map(|(s, e, p)| (&f[s..e], p))
}

/// The L4 checksum's offset in the segment, and whether it covers a pseudo-header.
fn csum_field(proto: u8, v6: bool) -> Option<(usize, bool)> {
    match proto {
        6 => Some((16, true)),
        17 => Some((6, true)),
        1 if !v6 => Some((2, false)),
        58 if v6 => Some((2, true)),
        _ => None,
    }
}

fn pseudo(f: &[u8], proto: u8, len: usize) -> u64 {
    if u16::from_be_bytes([f[12], f[13]]) == 0x0800 {
        let s = Ipv4Addr::from(<[u8; 4]>::try_from(&f[26..30]).unwrap());
        let d = Ipv4Addr::from(<[u8; 4]>::try_from(&f[30..34]).unwrap());
        checksum::pseudo_v4(s, d, proto, len)
    } else {
        let s = Ipv6Addr::from(<[u8; 16]>::try_from(&f[22..38]).unwrap());
        let d = Ipv6Addr::from(<[u8; 16]>::try_from(&f[38..54]).unwrap());
        checksum::pseudo_v6(s, d, proto, len)
    }
}

/// Fills in the IPv4 header checksum and the L4 checksum, when the frame
/// is long enough to hold them.
pub fn fix_checksums(f: &mut [u8]) {
    let Some((start, end, proto)) = l4_range(f) else { return };
    let v6 = u16::from_be_bytes([f[12], f[13]]) == 0x86dd;
    if !v6 {
        f[24..26].fill(0);
        let c = checksum::checksum(&f[14..start]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
    }
    let Some((at, with_pseudo)) = csum_field(proto, v6) else { return };
    if end - start < at + 2 {
        return;
    }
    f[start + at..start + at + 2].fill(0);
    let acc = if with_pseudo { pseudo(f, proto, end - start) } else { 0 };
    let mut c = checksum::finish(checksum::sum(acc, &f[start..end]));
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    f[start + at..start + at + 2].copy_from_slice(&c.to_be_bytes());
}

/// What every frame we send the guest must satisfy.
fn check_output(f: &[u8]) {
    assert!((14..=MAX_FRAME).contains(&f.len()), "frame of {} bytes to the guest", f.len());
    assert_eq!(&f[6..12], &OUR_MAC, "source MAC of a frame to the guest");
    match u16::from_be_bytes([f[12], f[13]]) {
        0x0806 => assert!(f.len() >= 42, "short ARP frame to the guest"),
        0x0800 => {
            assert!(f.len() >= 34, "short IPv4 frame to the guest");
            assert_eq!(f[14] >> 4, 4, "IPv4 version");
            let ihl = usize::from(f[14] & 0x0f) * 4;
            assert!(ihl >= 20 && f.len() >= 14 + ihl, "IPv4 header length {ihl}");
            assert_eq!(checksum::checksum(&f[14..14 + ihl]), 0, "IPv4 header checksum to the guest");
            let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
            assert!(total >= ihl && 14 + total <= f.len(), "IPv4 total length {total} in a frame of {}", f.len());
            check_l4(f);
        }
        0x86dd => {
            assert!(f.len() >= 54, "short IPv6 frame to the guest");
            assert_eq!(f[14] >> 4, 6, "IPv6 version");
            let plen = usize::from(u16::from_be_bytes([f[18], f[19]]));
            assert!(54 + plen <= f.len(), "IPv6 payload length {plen} in a frame of {}", f.len());
            check_l4(f);
        }
        t => panic!("frame of ethertype {t:#06x} to the guest"),
    }
}

/// TCP segments are cut to the MTU (UDP datagrams are the peer's size).
fn check_tcp_mtu(f: &[u8], mtu: usize) {
    if let Some((_, end, 6)) = l4_range(f) {
        let ip_len = end - 14;
        assert!(ip_len <= mtu, "TCP segment of {ip_len} bytes (IP) to the guest over the MTU {mtu}");
    }
}

fn check_l4(f: &[u8]) {
    let (start, end, proto) = l4_range(f).expect("IP lengths checked");
    let v6 = u16::from_be_bytes([f[12], f[13]]) == 0x86dd;
    let Some((at, with_pseudo)) = csum_field(proto, v6) else { return };
    let l4 = &f[start..end];
    assert!(l4.len() >= at + 2, "L4 segment of {} bytes (protocol {proto}) to the guest", l4.len());
    if proto == 17 && !v6 && l4[6..8] == [0, 0] {
        return;
    }
    let acc = if with_pseudo { pseudo(f, proto, l4.len()) } else { 0 };
    assert_eq!(checksum::finish(checksum::sum(acc, l4)), 0, "L4 checksum (protocol {proto}) to the guest");
}

/// The host side's real peers, on loopback.
struct Peers {
    echo: Vec<TcpListener>,
    closing: Vec<TcpListener>,
    chargen: Vec<TcpListener>,
    /// Connections and whether each is a chargen one (bytes left to send).
    conns: Vec<(TcpStream, usize)>,
    /// What chargen sends (printable characters), made once.
    pattern: Vec<u8>,
    udp: Vec<UdpSocket>,
}

impl Peers {
    fn new() -> Peers {
        let tcp = |a: &str| {
            let l = TcpListener::bind(a).unwrap_or_else(|e| panic!("TCP peer on {a}: {e}"));
            l.set_nonblocking(true).expect("non-blocking");
            l
        };
        let udp = |a: &str| {
            let s = UdpSocket::bind(a).unwrap_or_else(|e| panic!("UDP peer on {a}: {e}"));
            s.set_nonblocking(true).expect("non-blocking");
            s
        };
        Peers {
            echo: vec![tcp("127.0.0.1:7"), tcp("[::1]:7")],
            closing: vec![tcp("127.0.0.1:9"), tcp("[::1]:9")],
            chargen: vec![tcp("127.0.0.1:19"), tcp("[::1]:19")],
            conns: Vec::new(),
            pattern: (0..1 << 16).map(|i| b'!' + (i % 94) as u8).collect(),
            udp: vec![udp("127.0.0.1:7"), udp("[::1]:7"), udp("127.0.0.1:53"), udp("[::1]:53")],
        }
    }

    /// A host client connects to the forwarded TCP port and sends to the
    /// forwarded UDP port (IPv4 and IPv6 alternately).
    fn host_action(&mut self) {
        if self.conns.len() + self.udp.len() >= 64 {
            return;
        }
        let v6 = self.udp.len() % 2 == 1;
        let (any, lo) = if v6 { ("[::1]:0", "[::1]") } else { ("127.0.0.1:0", "127.0.0.1") };
        if let Ok(c) = TcpStream::connect(format!("{lo}:{FWD_TCP}")) {
            let _ = c.set_nonblocking(true);
            let _ = (&c).write(b"hello from the host\n");
            self.conns.push((c, 0));
        }
        if let Ok(u) = UdpSocket::bind(any) {
            let _ = u.set_nonblocking(true);
            let _ = u.send_to(b"datagram from the host", format!("{lo}:{FWD_UDP}"));
            self.udp.push(u);
        }
    }

    /// Accepts, echoes, closes; returns whether anything happened.
    fn service(&mut self) -> bool {
        let mut busy = false;
        for l in &self.echo {
            while let Ok((c, _)) = l.accept() {
                let _ = c.set_nonblocking(true);
                self.conns.push((c, 0));
                busy = true;
            }
        }
        for l in &self.chargen {
            while let Ok((c, _)) = l.accept() {
                let _ = c.set_nonblocking(true);
                self.conns.push((c, CHARGEN_BYTES));
                busy = true;
            }
        }
        for l in &self.closing {
            while let Ok((c, _)) = l.accept() {
                drop(c);
                busy = true;
            }
        }
        let mut buf = vec![0u8; 1 << 16];
        let pattern = &self.pattern;
        self.conns.retain_mut(|(c, left)| {
            if *left > 0 {
                if let Ok(n) = c.write(&pattern[..(*left).min(pattern.len())]) {
                    *left -= n;
                    busy |= n > 0;
                }
            }
            match c.read(&mut buf) {
                Ok(0) => {
                    busy = true;
                    false
                }
                Ok(n) => {
                    busy = true;
                    // Echo (chargen discards).
                    if *left == 0 {
                        let _ = c.write(&buf[..n]);
                    }
                    true
                }
                Err(e) => e.kind() == ErrorKind::WouldBlock,
            }
        });
        for u in &self.udp {
            while let Ok((n, from)) = u.recv_from(&mut buf) {
                busy = true;
                let _: Result<usize, _> = u.send_to(&buf[..n], from);
            }
        }
        busy
    }
}
