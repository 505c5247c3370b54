//! The `services` fuzz target: the local services' handlers (ARP, DHCPv4,
//! DHCPv6, NDP and router advertisements) called directly, thousands of
//! times faster than through an instance, with configurations drawn from
//! the input (many DNS servers, long search lists, odd prefix lengths and
//! MTUs) so that the reply builders meet their limits.
//!
//! Input: `selector:u8  cfg:[u8; 4]  message...`. Selector bits 0-2 (mod
//! 5) pick the handler: ARP, DHCP, DHCPv6, NDP, RA builder; for NDP, bits
//! 3-4 the source (guest link-local, unspecified, guest global), bits 5-6
//! the destination (all-routers, our solicited-node, our link-local,
//! all-nodes) and bit 7 a hop limit of 64 instead of 255. Checks: no panic, every reply fits its buffer and parses back
//! with our own parsers (a builder writing something malformed fails), and
//! the parsed requests print (the Display impls feed debug logs).
//!
//! Shared with the regression test like `harness.rs`: depends only on
//! `passt` and `std`.

#![allow(dead_code)]

use passt::services::{arp, dhcp, dhcpv6, ndp};
use passt::wire;
use std::net::{Ipv4Addr, Ipv6Addr};

const OUR_MAC: [u8; 6] = [0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55];
const GUEST4: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
const GUEST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x15);

/// The parts of the services' settings the input chooses.
struct Knobs {
    dns: usize,
    search: Vec<String>,
    prefix_len: u8,
    mtu: u32,
}

fn knobs(c: [u8; 4]) -> Knobs {
    let labels = usize::from(c[3] % 5) + 1;
    let label_len = usize::from(c[2] % 63) + 1;
    let search = (0..usize::from(c[1] % 16))
        .map(|i| {
            let label = char::from(b'a' + (i % 26) as u8).to_string().repeat(label_len);
            vec![label; labels].join(".")
        })
        .collect();
    let mtu = [65520, 1500, 1280, 1279, 576, 68, 0, 9000][usize::from(c[3] >> 5)];
    Knobs { dns: usize::from(c[0] % 64), search, prefix_len: c[0] % 40, mtu }
}

/// Runs one input (see the module comment); returns the length of the
/// reply, if there was one.
pub fn run_services(data: &[u8]) -> Option<usize> {
    if data.len() < 5 {
        return None;
    }
    let k = knobs([data[1], data[2], data[3], data[4]]);
    let msg = &data[5..];
    match (data[0] & 7) % 5 {
        0 => run_arp(msg),
        1 => run_dhcp(&k, msg),
        2 => run_dhcpv6(&k, msg),
        3 => run_ndp(&k, msg, data[0]),
        _ => run_ra(&k),
    }
}

fn run_arp(msg: &[u8]) -> Option<usize> {
    let mut out = [0u8; wire::arp::PACKET_LEN];
    if let Ok(Some((_mac, len))) = arp::handle(OUR_MAC, &[GUEST4], msg, &mut out) {
        assert!(len <= out.len());
        wire::arp::Repr::parse(&out[..len]).expect("our ARP reply parses");
        return Some(len);
    }
    None
}

fn run_dhcp(k: &Knobs, msg: &[u8]) -> Option<usize> {
    if let Ok(p) = wire::dhcp::Packet::new_checked(msg) {
        if let Ok(r) = wire::dhcp::Repr::parse(&p) {
            let _ = format!("{r}");
        }
    }
    let cfg = dhcp::DhcpConfig {
        guest_addr: GUEST4,
        prefix_len: k.prefix_len,
        router: (k.prefix_len % 2 == 0).then_some(Ipv4Addr::new(10, 0, 2, 2)),
        server_id: Ipv4Addr::new(10, 0, 2, 2),
        dns: (0..k.dns).map(|i| Ipv4Addr::new(10, 0, 3, i as u8)).collect(),
        search: k.search.clone(),
        mtu: u16::try_from(k.mtu).ok(),
        lease_secs: dhcp::DhcpConfig::DEFAULT_LEASE_SECS,
    };
    // The engine's buffer size.
    let mut out = [0u8; 1500];
    if let Ok(Some(reply)) = dhcp::handle(&cfg, msg, &mut out) {
        assert!(reply.len <= out.len());
        let p = wire::dhcp::Packet::new_checked(&out[..reply.len]).expect("our DHCP reply parses");
        let r = wire::dhcp::Repr::parse(&p).expect("our DHCP reply parses");
        let _ = format!("{r}");
        return Some(reply.len);
    }
    None
}

fn run_dhcpv6(k: &Knobs, msg: &[u8]) -> Option<usize> {
    if let Ok(r) = wire::dhcpv6::Repr::parse(msg) {
        let _ = format!("{r}");
    }
    let cfg = dhcpv6::Dhcpv6Config {
        our_mac: OUR_MAC,
        addr: (k.prefix_len % 4 != 0).then_some(GUEST6),
        dns: (0..k.dns).map(|i| Ipv6Addr::new(0x2001, 0xdb8, 0, 53, 0, 0, 0, i as u16)).collect(),
        search: k.search.clone(),
    };
    let mut out = [0u8; 1280];
    if let Ok(Some(reply)) = dhcpv6::handle(&cfg, msg, &mut out) {
        assert!(reply.len <= out.len());
        let r = wire::dhcpv6::Repr::parse(&out[..reply.len]).expect("our DHCPv6 reply parses");
        let _ = format!("{r}");
        return Some(reply.len);
    }
    None
}

fn ndp_config(k: &Knobs) -> ndp::NdpConfig {
    ndp::NdpConfig {
        our_mac: OUR_MAC,
        our_ll: ndp::link_local_from_mac(OUR_MAC),
        prefix: Some((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), k.prefix_len * 3)),
        mtu: Some(k.mtu),
        dns: (0..k.dns).map(|i| Ipv6Addr::new(0x2001, 0xdb8, 0, 53, 0, 0, 0, i as u16)).collect(),
        search: k.search.clone(),
        router_lifetime_secs: ndp::DEFAULT_ROUTER_LIFETIME_SECS,
        managed: k.dns % 2 == 0,
        no_ra: false,
    }
}

fn check_ndp_reply(bytes: &[u8]) {
    let p = wire::ndp::Packet::new_checked(bytes).expect("our NDP message parses");
    let r = wire::ndp::Repr::parse(&p).expect("our NDP message parses");
    let _ = format!("{p} {r:?}");
}

fn run_ndp(k: &Knobs, msg: &[u8], selector: u8) -> Option<usize> {
    if let Ok(p) = wire::ndp::Packet::new_checked(msg) {
        if let Ok(r) = wire::ndp::Repr::parse(&p) {
            let _ = format!("{p} {r:?}");
        }
    }
    let cfg = ndp_config(k);
    // Sources and destinations a guest would use, chosen by the selector.
    let guest_ll = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456);
    let src = [guest_ll, Ipv6Addr::UNSPECIFIED, GUEST6][usize::from((selector >> 3) & 3) % 3];
    let dst = [
        "ff02::2".parse().unwrap(),
        wire::ndp::solicited_node(cfg.our_ll),
        cfg.our_ll,
        "ff02::1".parse().unwrap(),
    ][usize::from((selector >> 5) & 3)];
    let hop = if selector & 0x80 != 0 { 64 } else { 255 };
    let mut out = [0u8; 1280];
    if let Ok(Some(reply)) = ndp::handle(&cfg, src, dst, hop, msg, &[GUEST6], &mut out) {
        assert!(reply.len <= out.len());
        check_ndp_reply(&out[..reply.len]);
        return Some(reply.len);
    }
    None
}

fn run_ra(k: &Knobs) -> Option<usize> {
    let cfg = ndp_config(k);
    let mut out = [0u8; 1280];
    let len = ndp::build_ra(&cfg, &mut out);
    assert!(len <= out.len());
    check_ndp_reply(&out[..len]);
    Some(len)
}
