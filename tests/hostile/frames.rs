//! Guest frames built by hand for the hostile-guest tests (storm, faults):
//! a seeded generator, builders for every protocol the library handles,
//! a mutator that breaks them in the ways a hostile guest would, and a
//! small parser of the TCP/UDP frames the library sends back.
//!
//! The builders are written independently of the library's own `wire`
//! code (checksums included), so that they are an oracle, not a copy.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
pub const OUR_MAC: [u8; 6] = [0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55];
pub const BROADCAST: [u8; 6] = [0xff; 6];
pub const G4: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
pub const GW4: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
pub const G6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x15);
pub const GW6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
/// The guest's link-local address (from its MAC).
pub const G6_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0x00ff, 0xfe12, 0x3456);

/// The configuration the frame-driven tests use: both families, fixed
/// addresses, our MAC as above.
pub const CONFIG: &[&str] = &[
    "address=10.0.2.15",
    "netmask=24",
    "gateway=10.0.2.2",
    "address=fd00::15",
    "gateway=fd00::2",
    "dns=10.0.2.3",
];

pub const ETH_ARP: u16 = 0x0806;
pub const ETH_V4: u16 = 0x0800;
pub const ETH_V6: u16 = 0x86dd;
pub const P_ICMP: u8 = 1;
pub const P_TCP: u8 = 6;
pub const P_UDP: u8 = 17;
pub const P_ICMP6: u8 = 58;

/// xorshift64*: deterministic, so a failing seed replays.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// In `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn byte(&mut self) -> u8 {
        self.next() as u8
    }
    /// True once in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
    /// Fewer than `max` random bytes.
    pub fn upto(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        self.bytes(n)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

/// Internet checksum of `data`, starting from the partial sum `acc`.
pub fn csum(mut acc: u32, data: &[u8]) -> u16 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
        acc = (acc & 0xffff) + (acc >> 16);
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The partial sum of an L4 pseudo-header.
fn pseudo(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    let mut b = Vec::with_capacity(40);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            b.extend_from_slice(&s.octets());
            b.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            b.extend_from_slice(&s.octets());
            b.extend_from_slice(&d.octets());
        }
        _ => panic!("mixed families"),
    }
    let mut acc: u32 = 0;
    for c in b.chunks_exact(2) {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    acc + u32::from(proto) + (len as u32 & 0xffff) + (len as u32 >> 16)
}

/// L4 checksum with the pseudo-header.
pub fn l4_csum(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> u16 {
    csum(pseudo(src, dst, proto, l4.len()), l4)
}

pub fn eth(dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 packet (options padded to 4 bytes), don't-fragment set.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut opts = options.to_vec();
    while opts.len() % 4 != 0 {
        opts.push(0);
    }
    let hl = 20 + opts.len();
    let total = hl + payload.len();
    let mut p = vec![0x40 | (hl / 4) as u8, 0];
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&opts);
    let c = csum(0, &p[..hl]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An IPv6 packet; `ext` is a chain of (type, body) extension headers
/// placed before the upper layer `proto` (bodies padded to 8-byte units).
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, hop: u8, ext: &[(u8, Vec<u8>)], proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut chain = Vec::new();
    let mut types: Vec<u8> = ext.iter().map(|e| e.0).collect();
    types.push(proto);
    for (i, (_, body)) in ext.iter().enumerate() {
        let mut h = vec![types[i + 1], 0];
        h.extend_from_slice(body);
        while h.len() < 8 || h.len() % 8 != 0 {
            h.push(0);
        }
        h[1] = (h.len() / 8 - 1) as u8;
        chain.extend_from_slice(&h);
    }
    let plen = chain.len() + payload.len();
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(plen.min(0xffff) as u16).to_be_bytes());
    p.push(types[0]);
    p.push(hop);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&chain);
    p.extend_from_slice(payload);
    p
}

/// A whole frame around an L4 segment (family from the addresses).
pub fn ip_frame(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth(OUR_MAC, ETH_V4, &ipv4(s, d, proto, &[], l4)),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth(OUR_MAC, ETH_V6, &ipv6(s, d, 64, &[], proto, l4)),
        _ => panic!("mixed families"),
    }
}

pub fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut u = Vec::with_capacity(len);
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(len as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let mut c = l4_csum(src, dst, P_UDP, &u);
    if c == 0 {
        c = 0xffff;
    }
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

/// A TCP segment; `opts` raw option bytes (padded with NOPs... no: with
/// end-of-list zeros to 4 bytes).
#[allow(clippy::too_many_arguments)]
pub fn tcp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, win: u16, opts: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut o = opts.to_vec();
    while o.len() % 4 != 0 {
        o.push(0);
    }
    let hl = 20 + o.len();
    let mut t = Vec::with_capacity(hl + payload.len());
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.push(((hl / 4) as u8) << 4);
    t.push(flags);
    t.extend_from_slice(&win.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(&o);
    t.extend_from_slice(payload);
    let c = l4_csum(src, dst, P_TCP, &t);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

/// MSS 1460, SACK permitted, timestamps, NOP, window scale 7.
pub const SYN_OPTS: &[u8] = &[2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7];

/// A whole frame holding a guest's SYN (sequence number 1, [`SYN_OPTS`]).
pub fn syn(src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> Vec<u8> {
    ip_frame(src, dst, P_TCP, &tcp(src, dst, sport, dport, 1, 0, 0x02, 65535, SYN_OPTS, &[]))
}

pub fn icmp4_echo(id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(data);
    let c = csum(0, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An ICMPv6 message with its checksum.
pub fn icmp6(src: Ipv6Addr, dst: Ipv6Addr, typ: u8, code: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![typ, code, 0, 0];
    m.extend_from_slice(body);
    let c = l4_csum(src.into(), dst.into(), P_ICMP6, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

pub fn arp_request(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0, 6, 4, 0, 1];
    a.extend_from_slice(&GUEST_MAC);
    a.extend_from_slice(&sender.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target.octets());
    eth(BROADCAST, ETH_ARP, &a)
}

/// A DHCP message of `kind` (1 discover, 3 request) from 0.0.0.0.
pub fn dhcp(kind: u8, xid: u32) -> Vec<u8> {
    let mut m = vec![1, 1, 6, 0];
    m.extend_from_slice(&xid.to_be_bytes());
    m.extend_from_slice(&[0; 8]); // secs, flags, ciaddr
    m.extend_from_slice(&[0; 12]); // yiaddr, siaddr, giaddr
    m.extend_from_slice(&GUEST_MAC);
    m.extend_from_slice(&[0; 10 + 64 + 128]);
    m.extend_from_slice(&[99, 130, 83, 99, 53, 1, kind]);
    m.extend_from_slice(&[61, 7, 1]);
    m.extend_from_slice(&GUEST_MAC);
    if kind == 3 {
        m.extend_from_slice(&[50, 4, 10, 0, 2, 15, 54, 4, 10, 0, 2, 2]);
    }
    m.extend_from_slice(&[12, 5, b'g', b'u', b'e', b's', b't', 55, 6, 1, 3, 6, 15, 26, 119, 57, 2, 5, 220, 255]);
    let any = Ipv4Addr::UNSPECIFIED;
    let bc = Ipv4Addr::BROADCAST;
    let u = udp(any.into(), bc.into(), 68, 67, &m);
    eth(BROADCAST, ETH_V4, &ipv4(any, bc, P_UDP, &[], &u))
}

/// A DHCPv6 message (1 solicit, 3 request, 11 info-request) to
/// all-DHCP-agents.
pub fn dhcpv6(kind: u8, xid: u32) -> Vec<u8> {
    let mut m = vec![kind, (xid >> 16) as u8, (xid >> 8) as u8, xid as u8];
    // Client ID: DUID-LL.
    m.extend_from_slice(&[0, 1, 0, 10, 0, 3, 0, 1]);
    m.extend_from_slice(&GUEST_MAC);
    // IA_NA with IAID 1, T1/T2 0, no address.
    m.extend_from_slice(&[0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    // ORO: DNS servers, domain list; elapsed time.
    m.extend_from_slice(&[0, 6, 0, 4, 0, 23, 0, 24, 0, 8, 0, 2, 0, 0]);
    let agents = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
    let u = udp(G6_LL.into(), agents.into(), 546, 547, &m);
    eth([0x33, 0x33, 0, 1, 0, 2], ETH_V6, &ipv6(G6_LL, agents, 1, &[], P_UDP, &u))
}

/// A neighbour solicitation for `target` (source link-layer option).
pub fn ndp_ns(src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let o = target.octets();
    let snm = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | u16::from(o[13]), u16::from_be_bytes([o[14], o[15]]));
    let mut body = vec![0, 0, 0, 0];
    body.extend_from_slice(&o);
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(&GUEST_MAC);
    let m = icmp6(src, snm, 135, 0, &body);
    let so = snm.octets();
    eth([0x33, 0x33, so[12], so[13], so[14], so[15]], ETH_V6, &ipv6(src, snm, 255, &[], P_ICMP6, &m))
}

/// A router solicitation.
pub fn ndp_rs(src: Ipv6Addr) -> Vec<u8> {
    let routers = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
    let mut body = vec![0, 0, 0, 0, 1, 1];
    body.extend_from_slice(&GUEST_MAC);
    let m = icmp6(src, routers, 133, 0, &body);
    eth([0x33, 0x33, 0, 0, 0, 2], ETH_V6, &ipv6(src, routers, 255, &[], P_ICMP6, &m))
}

/// Recomputes what can be recomputed: the IPv4 header checksum and the
/// L4 checksum over what the IP lengths cover, so that a mutated frame
/// passes the checksum checks and reaches the deeper parsers.
pub fn fix_checksums(f: &mut [u8]) {
    if f.len() < 14 {
        return;
    }
    let ethertype = u16::from_be_bytes([f[12], f[13]]);
    let ip = &mut f[14..];
    match ethertype {
        ETH_V4 if ip.len() >= 20 && ip[0] >> 4 == 4 => {
            let hl = usize::from(ip[0] & 0xf) * 4;
            if hl < 20 || hl > ip.len() {
                return;
            }
            ip[10..12].copy_from_slice(&[0, 0]);
            let c = csum(0, &ip[..hl]);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            if total < hl || total > ip.len() {
                return;
            }
            let (src, dst) = (addr4(&ip[12..16]), addr4(&ip[16..20]));
            fix_l4(src.into(), dst.into(), ip[9], &mut ip[hl..total]);
        }
        ETH_V6 if ip.len() >= 40 => {
            let total = 40 + usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            if total > ip.len() {
                return;
            }
            let (mut next, mut off) = (ip[6], 40);
            // Walk the extension headers as a receiver would.
            for _ in 0..8 {
                if !matches!(next, 0 | 43 | 60) || off + 8 > total {
                    break;
                }
                let len = (usize::from(ip[off + 1]) + 1) * 8;
                next = ip[off];
                off += len;
            }
            if off > total {
                return;
            }
            let (src, dst) = (addr6(&ip[8..24]), addr6(&ip[24..40]));
            fix_l4(src.into(), dst.into(), next, &mut ip[off..total]);
        }
        _ => {}
    }
}

fn fix_l4(src: IpAddr, dst: IpAddr, proto: u8, l4: &mut [u8]) {
    let at = match proto {
        P_TCP => 16,
        P_UDP => 6,
        P_ICMP | P_ICMP6 => 2,
        _ => return,
    };
    if l4.len() < at + 2 {
        return;
    }
    l4[at..at + 2].copy_from_slice(&[0, 0]);
    let c = if proto == P_ICMP { csum(0, l4) } else { l4_csum(src, dst, proto, l4) };
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

pub fn addr4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

pub fn addr6(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

/// A TCP or UDP frame the library sent to the guest, decoded; `None` for
/// anything else. Checks the IP and L4 checksums on the way: the library
/// must never send a broken frame.
#[derive(Clone, Debug)]
pub struct Out {
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub payload: Vec<u8>,
}

/// Decodes an outgoing frame; panics if it is IPv4/IPv6 with a wrong
/// checksum (a bug of ours, not of the guest).
pub fn parse_out(f: &[u8]) -> Option<Out> {
    if f.len() < 14 {
        panic!("frame to the guest shorter than an Ethernet header: {f:?}");
    }
    let ethertype = u16::from_be_bytes([f[12], f[13]]);
    let ip = &f[14..];
    let (src, dst, proto, l4): (IpAddr, IpAddr, u8, &[u8]) = match ethertype {
        ETH_V4 => {
            let hl = usize::from(ip[0] & 0xf) * 4;
            assert_eq!(csum(0, &ip[..hl]), 0, "IPv4 header checksum of a frame to the guest");
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            assert!(total <= ip.len());
            (addr4(&ip[12..16]).into(), addr4(&ip[16..20]).into(), ip[9], &ip[hl..total])
        }
        ETH_V6 => {
            let total = 40 + usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            assert!(total <= ip.len());
            (addr6(&ip[8..24]).into(), addr6(&ip[24..40]).into(), ip[6], &ip[40..total])
        }
        _ => return None,
    };
    match proto {
        // UDP over IPv4 may go without a checksum (zero, RFC 768): ours do.
        P_UDP if src.is_ipv4() && l4.get(6..8) == Some(&[0, 0]) => {}
        P_TCP | P_UDP => {
            assert_eq!(l4_csum(src, dst, proto, l4), 0, "L4 checksum of a frame to the guest");
        }
        _ => return None,
    }
    let sport = u16::from_be_bytes([l4[0], l4[1]]);
    let dport = u16::from_be_bytes([l4[2], l4[3]]);
    if proto == P_UDP {
        return Some(Out { proto, src, dst, sport, dport, seq: 0, ack: 0, flags: 0, payload: l4[8..].to_vec() });
    }
    let hl = usize::from(l4[12] >> 4) * 4;
    Some(Out {
        proto,
        src,
        dst,
        sport,
        dport,
        seq: u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]),
        ack: u32::from_be_bytes([l4[8], l4[9], l4[10], l4[11]]),
        flags: l4[13],
        payload: l4[hl..].to_vec(),
    })
}

/// VmRSS of this process, in KiB.
pub fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Number of open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// A directory under the system temp dir, removed on drop (even when the
/// test fails).
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("passt-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
