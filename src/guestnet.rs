//! The guest's network as we present it, and address translation.
//!
//! As passt does, the guest gets the host's own address, prefix and
//! gateway by default. We are "the gateway" on the guest's link: our MAC
//! answers ARP/NS for every address but the guest's own. Traffic the guest
//! sends to the gateway address (or `--map-host-loopback`) goes to the
//! host's loopback; host connections from loopback appear to come from the
//! gateway. We learn the guest's MAC from its frames (broadcast until then),
//! and the addresses it really uses (observed) besides those we assigned;
//! frames to the guest go to what we observed.

use crate::tx::L2;
use crate::wire::ethernet::BROADCAST;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// IPv4 side of the guest's network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Net4 {
    /// The address handed out by DHCP.
    pub assigned: Ipv4Addr,
    pub prefix_len: u8,
    /// Our address on the link (the guest's default router).
    pub gateway: Ipv4Addr,
    /// The last source address the guest used, if any.
    pub observed: Option<Ipv4Addr>,
    /// A guest destination that means "the host's loopback".
    pub map_host_loopback: Option<Ipv4Addr>,
    /// A guest destination that means "the host's own address".
    pub map_guest_addr: Option<Ipv4Addr>,
    /// The host's own address (what `map_guest_addr` leads to).
    pub host_addr: Option<Ipv4Addr>,
    /// DNS servers the guest is told about.
    pub dns: Vec<Ipv4Addr>,
    /// `--dns-forward`: datagrams to this address, port 53, go to `dns_host`.
    pub dns_forward: Option<Ipv4Addr>,
    pub dns_host: Option<IpAddr>,
}

/// IPv6 side of the guest's network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Net6 {
    /// The address handed out by DHCPv6 (SLAAC builds its own).
    pub assigned: Ipv6Addr,
    pub prefix_len: u8,
    /// The host's gateway: a global address the guest may use to reach us.
    pub gateway: Option<Ipv6Addr>,
    /// Our link-local address: source of RAs, the guest's router.
    pub our_ll: Ipv6Addr,
    /// Last global and link-local source addresses the guest used.
    pub observed: Option<Ipv6Addr>,
    pub observed_ll: Option<Ipv6Addr>,
    pub map_host_loopback: Option<Ipv6Addr>,
    pub map_guest_addr: Option<Ipv6Addr>,
    pub host_addr: Option<Ipv6Addr>,
    pub dns: Vec<Ipv6Addr>,
    pub dns_forward: Option<Ipv6Addr>,
    pub dns_host: Option<IpAddr>,
}

/// Everything about the guest's link.
#[derive(Clone, Debug)]
pub struct GuestNet {
    pub our_mac: [u8; 6],
    /// Learned from the guest's frames; `None` until the first one.
    pub guest_mac: Option<[u8; 6]>,
    pub mtu: u32,
    pub v4: Option<Net4>,
    pub v6: Option<Net6>,
    pub search: Vec<String>,
}

impl GuestNet {
    /// Ethernet addressing for a frame to the guest.
    pub fn l2(&self) -> L2 {
        L2 { src: self.our_mac, dst: self.guest_mac.unwrap_or(BROADCAST) }
    }

    /// The guest's IPv4 address as far as we know (observed, else assigned).
    pub fn guest_v4(&self) -> Option<Ipv4Addr> {
        self.v4.as_ref().map(|n| n.observed.unwrap_or(n.assigned))
    }

    /// The guest's global IPv6 address (observed, else assigned).
    pub fn guest_v6(&self) -> Option<Ipv6Addr> {
        self.v6.as_ref().map(|n| n.observed.unwrap_or(n.assigned))
    }

    /// Records a source address seen in a guest frame; whether it is new
    /// (the first of its kind, or a change).
    pub fn observe(&mut self, src: IpAddr) -> bool {
        fn set<T: PartialEq>(slot: &mut Option<T>, v: T) -> bool {
            if slot.as_ref() == Some(&v) {
                return false;
            }
            *slot = Some(v);
            true
        }
        match src {
            IpAddr::V4(a) => match self.v4.as_mut() {
                Some(n) if !a.is_unspecified() && !a.is_broadcast() && !a.is_multicast() && !a.is_loopback() => {
                    set(&mut n.observed, a)
                }
                _ => false,
            },
            IpAddr::V6(a) => match self.v6.as_mut() {
                Some(_) if a.is_unspecified() || a.is_multicast() || a.is_loopback() => false,
                Some(n) if crate::wire::ipv6::is_link_local(&a) => set(&mut n.observed_ll, a),
                Some(n) => set(&mut n.observed, a),
                None => false,
            },
        }
    }

    /// Where a guest's packet to `dst` really goes on the host: the
    /// loopback for the gateway (unless disabled), the host's address for
    /// `map-guest-addr`, the host's resolver for `dns-forward` (port 53).
    pub fn outbound(&self, dst: SocketAddr) -> SocketAddr {
        match dst.ip() {
            IpAddr::V4(ip) => {
                let Some(n) = &self.v4 else { return dst };
                if dst.port() == 53 && Some(ip) == n.dns_forward {
                    if let Some(h) = n.dns_host {
                        return SocketAddr::new(h, 53);
                    }
                }
                if Some(ip) == n.map_host_loopback {
                    return SocketAddr::new(Ipv4Addr::LOCALHOST.into(), dst.port());
                }
                if let (Some(m), Some(h)) = (n.map_guest_addr, n.host_addr) {
                    if ip == m {
                        return SocketAddr::new(h.into(), dst.port());
                    }
                }
                dst
            }
            IpAddr::V6(ip) => {
                let Some(n) = &self.v6 else { return dst };
                if dst.port() == 53 && Some(ip) == n.dns_forward {
                    if let Some(h) = n.dns_host {
                        return SocketAddr::new(h, 53);
                    }
                }
                // Our link-local address is the gateway too (the RA's router).
                let to_gw = Some(ip) == n.map_host_loopback || (n.map_host_loopback.is_some() && ip == n.our_ll);
                if to_gw {
                    return SocketAddr::new(Ipv6Addr::LOCALHOST.into(), dst.port());
                }
                if let (Some(m), Some(h)) = (n.map_guest_addr, n.host_addr) {
                    if ip == m {
                        return SocketAddr::new(h.into(), dst.port());
                    }
                }
                dst
            }
        }
    }

    /// For a host peer that reaches the guest (inbound connection or
    /// datagram), the source address the guest sees and the guest address
    /// it goes to. Loopback peers appear as the gateway; IPv6 link-local
    /// guests are reached from our link-local address. `None` when that IP
    /// version is off or the guest has no such address.
    pub fn inbound(&self, peer: SocketAddr) -> Option<(SocketAddr, SocketAddr)> {
        match peer.ip() {
            IpAddr::V4(ip) => {
                let n = self.v4.as_ref()?;
                let src = if ip.is_loopback() || ip.is_unspecified() {
                    n.map_host_loopback.unwrap_or(n.gateway)
                } else if Some(ip) == n.host_addr && n.map_guest_addr.is_some() {
                    n.map_guest_addr.unwrap_or(ip)
                } else {
                    ip
                };
                let dst = self.guest_v4()?;
                Some((SocketAddr::new(src.into(), peer.port()), SocketAddr::new(dst.into(), 0)))
            }
            IpAddr::V6(ip) => {
                // Before looking at IPv6: a dual-stack socket reports IPv4
                // peers this way even when the guest has no IPv6.
                if let Some(v4) = ip.to_ipv4_mapped() {
                    return self.inbound(SocketAddr::new(v4.into(), peer.port()));
                }
                let n = self.v6.as_ref()?;
                let (src, dst) = if ip.is_loopback() || ip.is_unspecified() {
                    match (n.map_host_loopback.or(n.gateway), n.observed.or(Some(n.assigned))) {
                        (Some(gw), Some(g)) if !crate::wire::ipv6::is_link_local(&gw) => (gw, g),
                        _ => (n.our_ll, n.observed_ll?),
                    }
                } else if crate::wire::ipv6::is_link_local(&ip) {
                    (ip, n.observed_ll?)
                } else if Some(ip) == n.host_addr && n.map_guest_addr.is_some() {
                    (n.map_guest_addr.unwrap_or(ip), self.guest_v6()?)
                } else {
                    (ip, self.guest_v6()?)
                };
                Some((SocketAddr::new(src.into(), peer.port()), SocketAddr::new(dst.into(), 0)))
            }
        }
    }

    /// The address a reply to a guest packet from `guest_src` to
    /// `guest_dst` comes from: simply the destination it used (so connected
    /// sockets in the guest accept it).
    pub fn reply_source(guest_dst: SocketAddr) -> SocketAddr {
        guest_dst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> GuestNet {
        GuestNet {
            our_mac: [0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55],
            guest_mac: None,
            mtu: 65520,
            v4: Some(Net4 {
                assigned: "192.0.2.2".parse().unwrap(),
                prefix_len: 24,
                gateway: "192.0.2.1".parse().unwrap(),
                observed: None,
                map_host_loopback: Some("192.0.2.1".parse().unwrap()),
                map_guest_addr: None,
                host_addr: Some("192.0.2.2".parse().unwrap()),
                dns: vec![],
                dns_forward: Some("192.0.2.3".parse().unwrap()),
                dns_host: Some("127.0.0.53".parse().unwrap()),
            }),
            v6: Some(Net6 {
                assigned: "2001:db8::2".parse().unwrap(),
                prefix_len: 64,
                gateway: Some("2001:db8::1".parse().unwrap()),
                our_ll: "fe80::1".parse().unwrap(),
                observed: None,
                observed_ll: None,
                map_host_loopback: Some("2001:db8::1".parse().unwrap()),
                map_guest_addr: None,
                host_addr: None,
                dns: vec![],
                dns_forward: None,
                dns_host: None,
            }),
            search: vec![],
        }
    }

    #[test]
    fn mapped_ipv4_peer_reaches_an_ipv4_only_guest() {
        let mut n = GuestNet {
            our_mac: [2; 6],
            guest_mac: None,
            mtu: 1500,
            v4: Some(Net4 {
                assigned: "10.0.2.15".parse().unwrap(),
                prefix_len: 24,
                gateway: "10.0.2.2".parse().unwrap(),
                observed: None,
                map_host_loopback: Some("10.0.2.2".parse().unwrap()),
                map_guest_addr: None,
                host_addr: None,
                dns: vec![],
                dns_forward: None,
                dns_host: None,
            }),
            v6: None,
            search: vec![],
        };
        let (src, dst) = n.inbound("[::ffff:127.0.0.1]:5000".parse().unwrap()).expect("mapped");
        assert_eq!(src, "10.0.2.2:5000".parse().unwrap());
        assert_eq!(dst.ip(), "10.0.2.15".parse::<IpAddr>().unwrap());
        assert!(n.observe("10.0.2.16".parse().unwrap()), "a new address is news");
        assert!(!n.observe("10.0.2.16".parse().unwrap()), "the same one is not");
        assert!(!n.observe("2001:db8::1".parse().unwrap()), "no IPv6 here");
    }

    #[test]
    fn outbound_mapping() {
        let n = net();
        let s = |x: &str| x.parse::<SocketAddr>().unwrap();
        assert_eq!(n.outbound(s("192.0.2.1:80")), s("127.0.0.1:80"));
        assert_eq!(n.outbound(s("192.0.2.3:53")), s("127.0.0.53:53"));
        assert_eq!(n.outbound(s("192.0.2.3:54")), s("192.0.2.3:54"));
        assert_eq!(n.outbound(s("198.51.100.1:80")), s("198.51.100.1:80"));
        assert_eq!(n.outbound(s("[2001:db8::1]:80")), s("[::1]:80"));
        assert_eq!(n.outbound(s("[fe80::1]:80")), s("[::1]:80"));
    }

    #[test]
    fn inbound_mapping() {
        let mut n = net();
        let s = |x: &str| x.parse::<SocketAddr>().unwrap();
        assert_eq!(n.inbound(s("127.0.0.1:5000")), Some((s("192.0.2.1:5000"), s("192.0.2.2:0"))));
        n.observe("192.0.2.9".parse().unwrap());
        assert_eq!(n.inbound(s("10.1.1.1:5000")), Some((s("10.1.1.1:5000"), s("192.0.2.9:0"))));
        assert_eq!(n.inbound(s("[::1]:7")), Some((s("[2001:db8::1]:7"), s("[2001:db8::2]:0"))));
        assert_eq!(n.inbound(s("[::ffff:127.0.0.1]:7")), Some((s("192.0.2.1:7"), s("192.0.2.9:0"))));
        n.v6.as_mut().unwrap().gateway = None;
        n.v6.as_mut().unwrap().map_host_loopback = None;
        assert_eq!(n.inbound(s("[::1]:7")), None, "no link-local seen yet");
        n.observe("fe80::5054:ff:fe12:3456".parse().unwrap());
        assert_eq!(n.inbound(s("[::1]:7")), Some((s("[fe80::1]:7"), s("[fe80::5054:ff:fe12:3456]:0"))));
    }
}
