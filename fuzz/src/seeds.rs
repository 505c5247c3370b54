//! The seed corpus: small, valid exchanges of every protocol the guest
//! speaks, as records for the harness (see `harness.rs`). Checksums are
//! left at zero and filled in by the harness (`FIX_CSUM`); acknowledgement
//! numbers of TCP segments after our SYN are offsets (`FIX_ACK`).
//! `cargo run --release --example seeds` (in `fuzz/`) writes them to `corpus/`.

use crate::harness::{
    encode, FIX_ACK, FIX_CSUM, FWD_TCP, GATEWAY4, GUEST4, GUEST6, GUEST6_LL, GUEST_MAC, HOST6, OUR6_LL, OUR_MAC, SPECIAL,
};
use std::net::{Ipv4Addr, Ipv6Addr};

const BROADCAST: [u8; 6] = [0xff; 6];
/// 1 ms, then 2^(n-1) ms: see the harness's time steps.
const T1MS: u8 = 1;
const T1S: u8 = 11;
const T1MIN: u8 = 17;

fn eth(dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    eth(OUR_MAC, 0x0800, &p)
}

fn ipv6_to(dst_mac: [u8; 6], src: Ipv6Addr, dst: Ipv6Addr, nh: u8, hop: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[nh, hop]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    eth(dst_mac, 0x86dd, &p)
}

fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, nh: u8, payload: &[u8]) -> Vec<u8> {
    ipv6_to(OUR_MAC, src, dst, nh, 64, payload)
}

fn multicast_mac(dst: Ipv6Addr) -> [u8; 6] {
    let o = dst.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = sport.to_be_bytes().to_vec();
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// SYN options: MSS and window scale.
const SYN_OPTS: &[u8] = &[2, 4, 0x05, 0xb4, 1, 3, 3, 7];
/// SYN options as a Linux guest's: MSS, window scale and SACK permitted.
const SYN_OPTS_SACK: &[u8] = &[2, 4, 0x05, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2];

fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let opts: &[u8] = if flags & SYN != 0 { SYN_OPTS } else { &[] };
    tcp_with(sport, dport, seq, ack, flags, opts, payload)
}

/// A TCP segment with the given options (a multiple of 4 bytes).
fn tcp_with(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, opts: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut t = sport.to_be_bytes().to_vec();
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.push((((20 + opts.len()) / 4) as u8) << 4);
    t.push(flags);
    t.extend_from_slice(&[0xfa, 0xf0, 0, 0, 0, 0]);
    t.extend_from_slice(opts);
    t.extend_from_slice(payload);
    t
}

fn echo_request(v6: bool, id: u16, seq: u16) -> Vec<u8> {
    let mut m = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(b"ping payload 0123456789");
    m
}

fn arp_packet(target: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0, 6, 4, 0, 1];
    a.extend_from_slice(&GUEST_MAC);
    a.extend_from_slice(&GUEST4.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target.octets());
    a
}

fn arp_request(target: Ipv4Addr) -> Vec<u8> {
    eth(BROADCAST, 0x0806, &arp_packet(target))
}

fn dhcp_msg(msg_type: u8, extra: &[u8]) -> Vec<u8> {
    let mut m = vec![1, 1, 6, 0, 0x12, 0x34, 0x56, 0x78, 0, 0, 0x80, 0];
    m.extend_from_slice(&[0; 16]); // ciaddr, yiaddr, siaddr, giaddr
    m.extend_from_slice(&GUEST_MAC);
    m.extend_from_slice(&[0; 10 + 64 + 128]); // chaddr padding, sname, file
    m.extend_from_slice(&[99, 130, 83, 99, 53, 1, msg_type]);
    m.extend_from_slice(&[55, 6, 1, 3, 6, 15, 26, 119]); // parameter request list
    m.extend_from_slice(extra);
    m.push(255);
    m
}

fn dhcp(msg_type: u8, extra: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45, 0];
    let u = udp(68, 67, &dhcp_msg(msg_type, extra));
    p.extend_from_slice(&((20 + u.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255]);
    p.extend_from_slice(&u);
    eth(BROADCAST, 0x0800, &p)
}

fn dhcpv6_solicit_msg() -> Vec<u8> {
    let mut m = vec![1, 0xab, 0xcd, 0xef];
    m.extend_from_slice(&[0, 1, 0, 10, 0, 3, 0, 1]); // client id: DUID-LL
    m.extend_from_slice(&GUEST_MAC);
    m.extend_from_slice(&[0, 8, 0, 2, 0, 0]); // elapsed time
    m.extend_from_slice(&[0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]); // IA_NA
    m.extend_from_slice(&[0, 6, 0, 4, 0, 23, 0, 24]); // ORO: DNS servers, domain list
    m.extend_from_slice(&[0, 14, 0, 0]); // rapid commit
    m
}

fn dhcpv6_solicit() -> Vec<u8> {
    let m = dhcpv6_solicit_msg();
    let dst: Ipv6Addr = "ff02::1:2".parse().unwrap();
    ipv6_to(multicast_mac(dst), GUEST6_LL, dst, 17, 1, &udp(546, 547, &m))
}

fn router_solicitation_msg() -> Vec<u8> {
    let mut m = vec![133, 0, 0, 0, 0, 0, 0, 0, 1, 1];
    m.extend_from_slice(&GUEST_MAC);
    m
}

fn router_solicitation() -> Vec<u8> {
    let m = router_solicitation_msg();
    let dst: Ipv6Addr = "ff02::2".parse().unwrap();
    ipv6_to(multicast_mac(dst), GUEST6_LL, dst, 58, 255, &m)
}

fn neighbour_solicitation_msg(target: Ipv6Addr) -> Vec<u8> {
    let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    m.extend_from_slice(&[1, 1]);
    m.extend_from_slice(&GUEST_MAC);
    m
}

fn neighbour_solicitation(target: Ipv6Addr) -> Vec<u8> {
    let m = neighbour_solicitation_msg(target);
    let t = target.octets();
    let dst = Ipv6Addr::from([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13], t[14], t[15]]);
    ipv6_to(multicast_mac(dst), GUEST6_LL, dst, 58, 255, &m)
}

fn dns_query() -> Vec<u8> {
    let mut q = vec![0x42, 0x42, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(b"\x07example\x03org\x00\x00\x01\x00\x01");
    q
}

/// Records as (control byte, body), before encoding.
type Records = Vec<(u8, Vec<u8>)>;

/// A TCP exchange with the echo peer (port 7) or another port: handshake,
/// data, the echo acknowledged, close.
fn tcp_session(ip: &dyn Fn(&[u8]) -> Vec<u8>, dport: u16) -> Records {
    let c = FIX_CSUM;
    let a = FIX_CSUM | FIX_ACK;
    let sp = 40000;
    vec![
        (c | T1MS, ip(&tcp(sp, dport, 1000, 0, SYN, &[]))),
        (a | T1MS, ip(&tcp(sp, dport, 1001, 0, ACK, &[]))),
        (a | T1MS, ip(&tcp(sp, dport, 1001, 0, PSH | ACK, b"hello, echo\n"))),
        (a | T1MS, ip(&tcp(sp, dport, 1013, 0, ACK, &[]))),
        (a | T1MS, ip(&tcp(sp, dport, 1013, 0, FIN | ACK, &[]))),
        (a | T1S, ip(&tcp(sp, dport, 1014, 0, ACK, &[]))),
    ]
}

/// Every seed: (name, records).
pub fn all() -> Vec<(&'static str, Vec<u8>)> {
    let c = FIX_CSUM;
    let a = FIX_CSUM | FIX_ACK;
    let v4 = |p: u8| move |l4: &[u8]| ipv4(GUEST4, GATEWAY4, p, l4);
    let v6 = |p: u8| move |l4: &[u8]| ipv6(GUEST6, HOST6, p, l4);
    let mut seeds: Vec<(&'static str, Records)> = vec![
        ("empty", vec![]),
        ("arp", vec![(T1MS, arp_request(GATEWAY4)), (T1MS, arp_request(Ipv4Addr::new(10, 0, 2, 99)))]),
        (
            "dhcp",
            vec![
                (c | T1MS, dhcp(1, &[])),
                (c | T1MS, dhcp(3, &[50, 4, 10, 0, 2, 15, 54, 4, 10, 0, 2, 2])),
                (c | T1MIN, dhcp(8, &[])), // INFORM
            ],
        ),
        ("dhcpv6", vec![(c | T1MS, dhcpv6_solicit())]),
        ("ndp", vec![(c | T1MS, router_solicitation()), (c | T1MS, neighbour_solicitation(OUR6_LL))]),
        ("icmp4", vec![(c | T1MS, v4(1)(&echo_request(false, 7, 1))), (c | T1S, v4(1)(&echo_request(false, 7, 2)))]),
        ("icmp6", vec![(c | T1MS, v6(58)(&echo_request(true, 7, 1))), (c | T1S, v6(58)(&echo_request(true, 7, 2)))]),
        (
            "udp4",
            vec![(c | T1MS, v4(17)(&udp(40000, 7, b"hello, udp echo"))), (c | T1MIN, v4(17)(&udp(40000, 7, b"again")))],
        ),
        ("udp6", vec![(c | T1MS, v6(17)(&udp(40000, 7, b"hello, udp echo")))]),
        ("dns4", vec![(c | T1MS, v4(17)(&udp(40001, 53, &dns_query())))]),
        ("dns6", vec![(c | T1MS, v6(17)(&udp(40001, 53, &dns_query())))]),
        ("tcp4_echo", tcp_session(&v4(6), 7)),
        ("tcp6_echo", tcp_session(&v6(6), 7)),
        ("tcp4_closing_peer", tcp_session(&v4(6), 9)),
        ("tcp4_refused", vec![(c | T1MS, v4(6)(&tcp(40002, 1, 1, 0, SYN, &[])))]),
        (
            "tcp4_reset",
            vec![
                (c | T1MS, v4(6)(&tcp(40003, 7, 1, 0, SYN, &[]))),
                (a | T1MS, v4(6)(&tcp(40003, 7, 2, 0, RST | ACK, &[]))),
            ],
        ),
        (
            "inbound",
            vec![
                (SPECIAL | T1MS, vec![]),
                (a | T1MS, v4(6)(&tcp(FWD_TCP, 0, 5000, 0, SYN | ACK, &[]))),
                (a | T1MS, v4(6)(&tcp(FWD_TCP, 0, 5001, 0, PSH | ACK, b"hello from the guest\n"))),
                (a | T1MS, v4(17)(&udp(crate::harness::FWD_UDP, 40000, b"reply"))),
                (a | T1S, v4(6)(&tcp(FWD_TCP, 0, 5022, 0, FIN | ACK, &[]))),
            ],
        ),
    ];
    // Bulk data from the host (chargen, port 19), acknowledged as it comes,
    // first with a frame output taking everything, then one frame per call.
    let mut chargen = vec![
        (c | T1MS, v4(6)(&tcp(40004, 19, 1, 0, SYN, &[]))),
        (a | T1MS, v4(6)(&tcp(40004, 19, 2, 0, ACK, &[]))),
    ];
    for i in 0..6 {
        if i == 3 {
            chargen.push((SPECIAL, vec![1]));
        }
        chargen.push((a | (T1MS + i), v4(6)(&tcp(40004, 19, 2, 0, ACK, &[]))));
    }
    chargen.push((SPECIAL, vec![0]));
    chargen.push((a | T1S, v4(6)(&tcp(40004, 19, 2, 0, RST | ACK, &[]))));
    seeds.push(("tcp4_chargen", chargen));
    // Bulk data from the host with SACK: the guest acknowledges all but the
    // last 20,000 bytes sent and holds the last 10,000 of them (a hole
    // reported). Each such ACK lets more data out until the peer's 256 KiB
    // are all sent (three or four of them here); the rest repeat the last
    // (duplicate ACKs: a fast retransmit). Then it takes it all.
    // Acknowledgement numbers and block edges are offsets from the next
    // sequence number we sent.
    let mut chargen_sack = vec![
        (c | T1MS, v4(6)(&tcp_with(40005, 19, 1, 0, SYN, SYN_OPTS_SACK, &[]))),
        (a | T1MS, v4(6)(&tcp(40005, 19, 2, 0, ACK, &[]))),
    ];
    let mut sack = vec![1, 1, 5, 10];
    sack.extend_from_slice(&10_000u32.wrapping_neg().to_be_bytes());
    sack.extend_from_slice(&0u32.to_be_bytes());
    let hole = 20_000u32.wrapping_neg();
    chargen_sack.extend((0..8).map(|_| (a, v4(6)(&tcp_with(40005, 19, 2, hole, ACK, &sack, &[])))));
    chargen_sack.push((a | T1MS, v4(6)(&tcp(40005, 19, 2, 0, ACK, &[]))));
    chargen_sack.push((a | T1S, v4(6)(&tcp(40005, 19, 2, 0, RST | ACK, &[]))));
    seeds.push(("tcp4_chargen_sack", chargen_sack));
    // Guest data out of order (SACK permitted): the second and third parts
    // before the first, then the second again; the echo must come back whole.
    let sp = 40006;
    seeds.push((
        "tcp4_reorder",
        vec![
            (c | T1MS, v4(6)(&tcp_with(sp, 7, 1000, 0, SYN, SYN_OPTS_SACK, &[]))),
            (a | T1MS, v4(6)(&tcp(sp, 7, 1001, 0, ACK, &[]))),
            (a | T1MS, v4(6)(&tcp(sp, 7, 1008, 0, PSH | ACK, b"out of "))),
            (a | T1MS, v4(6)(&tcp(sp, 7, 1015, 0, PSH | ACK, b"order\n"))),
            (a | T1MS, v4(6)(&tcp(sp, 7, 1001, 0, PSH | ACK, b"echoed "))),
            (a | T1MS, v4(6)(&tcp(sp, 7, 1008, 0, PSH | ACK, b"out of "))),
            (a | T1MS, v4(6)(&tcp(sp, 7, 1021, 0, ACK, &[]))),
            (a | T1MS, v4(6)(&tcp(sp, 7, 1021, 0, FIN | ACK, &[]))),
            (a | T1S, v4(6)(&tcp(sp, 7, 1022, 0, ACK, &[]))),
        ],
    ));
    // One exchange of everything, so that mutations can mix protocols.
    let mixed: Records = ["arp", "dhcp", "ndp", "udp4", "tcp4_echo"]
        .iter()
        .flat_map(|n| seeds.iter().find(|(s, _)| s == n).unwrap().1.clone())
        .collect();
    seeds.push(("mixed", mixed));
    seeds.into_iter().map(|(n, r)| (n, encode(&r))).collect()
}

/// Seeds only the stream target has: frames cut across writes, several
/// frames in one write, and broken length prefixes.
pub fn stream_only() -> Vec<(&'static str, Vec<u8>)> {
    let arp = arp_request(GATEWAY4);
    let mut framed = (arp.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(&arp);
    let two = [framed.clone(), framed.clone()].concat();
    vec![
        (
            "stream_split",
            encode(&[(SPECIAL | T1MS, framed[..2].to_vec()), (SPECIAL | T1MS, framed[2..9].to_vec()), (SPECIAL, framed[9..].to_vec())]),
        ),
        ("stream_two_in_one", encode(&[(SPECIAL | T1MS, two)])),
        ("stream_bad_length", encode(&[(SPECIAL | T1MS, vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3])])),
        ("stream_short_length", encode(&[(SPECIAL | T1MS, vec![0, 0, 0, 4, 1, 2, 3, 4])])),
    ]
}

/// Seeds of the `services` target: `selector cfg[4] message` (see
/// `services.rs`); the selector's low bits pick the handler.
pub fn services() -> Vec<(&'static str, Vec<u8>)> {
    // 3 DNS servers, 2 search domains of 7-byte labels, two labels each, MTU 65520.
    let cfg = [3, 2, 6, 1];
    let with = |sel: u8, msg: Vec<u8>| [vec![sel], cfg.to_vec(), msg].concat();
    vec![
        ("arp", with(0, arp_packet(GATEWAY4))),
        ("dhcp_discover", with(1, dhcp_msg(1, &[]))),
        ("dhcp_request", with(1, dhcp_msg(3, &[50, 4, 10, 0, 2, 15, 54, 4, 10, 0, 2, 2]))),
        ("dhcp_inform", with(1, dhcp_msg(8, &[]))),
        ("dhcpv6_solicit", with(2, dhcpv6_solicit_msg())),
        // selector 3: from the guest's link-local address to ff02::2, hop limit 255.
        ("ndp_rs", with(3, router_solicitation_msg())),
        // selector 3 + 1<<5: to our solicited-node address.
        ("ndp_ns", with(3 | 1 << 5, neighbour_solicitation_msg(OUR6_LL))),
        ("ra", with(4, vec![])),
        ("ra_many_options", [vec![4], vec![63, 15, 62, 4 | 5 << 5]].concat()),
    ]
}
