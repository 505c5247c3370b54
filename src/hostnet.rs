//! The host's network configuration, as passt reads it at start, and the
//! setup of a tap inside a namespace, as pasta's `--config-net` does it.
//!
//! # Discovery ([`discover`])
//!
//! passt gives the guest the host's own address, prefix and gateway, so it
//! first picks a *template interface* per IP version:
//!
//! 1. the interface named with `-i`, if given;
//! 2. otherwise the output interface of the main table's unicast default
//!    route with the lowest metric;
//! 3. otherwise (no default route) the first non-loopback interface, by
//!    index, holding a global address of that version.
//!
//! From it: the first global address (for IPv6: not tentative and not
//! failed DAD, preferring non-deprecated, non-temporary ones), its prefix,
//! the gateway of the best default route through that interface, and for
//! IPv6 a link-local address. A version without a usable address is
//! `None` (passt then runs without it). The MTU is the template
//! interface's (IPv4's if both exist).
//!
//! The choice is a pure function of a [`Snapshot`] of links, addresses and
//! routes, so it is unit-tested without a kernel; [`discover`] takes the
//! snapshot over rtnetlink in the calling thread's namespace.
//!
//! # resolv.conf ([`read_resolv_conf`])
//!
//! `nameserver`, `search` and `domain` lines as resolv.conf(5) defines
//! them (the last `search`/`domain` wins); comments and anything unparsable
//! are skipped.
//!
//! # Namespace setup ([`configure_link`])
//!
//! Run inside the namespace (through `sys::netns::run_in_netns`): link up,
//! MTU, IPv4 address and default route, IPv6 address without DAD and
//! default route. A gateway outside the address's prefix first gets an
//! on-link host route, so the kernel accepts it as a next hop; a
//! link-local IPv6 gateway needs none, the default route names the
//! interface.
//!
//! Left out: watching for changes (passt reads the configuration once),
//! policy routing tables, nexthop objects.

use crate::sys::netlink::{Addr, Family, Link, Netlink, Route, RouteRequest, RTN_UNICAST, RT_SCOPE_LINK};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// The IPv4 side of the host's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostV4 {
    /// Template interface index.
    pub ifindex: u32,
    /// Template interface name.
    pub ifname: String,
    /// The host's address on it.
    pub addr: Ipv4Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// Default gateway through that interface, if any.
    pub gateway: Option<Ipv4Addr>,
}

/// The IPv6 side of the host's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostV6 {
    /// Template interface index.
    pub ifindex: u32,
    /// Template interface name.
    pub ifname: String,
    /// A global, non-tentative address of the host on it.
    pub addr: Ipv6Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// Default gateway through that interface, if any (often link-local).
    pub gateway: Option<Ipv6Addr>,
    /// The host's link-local address on it, if any.
    pub link_local: Option<Ipv6Addr>,
}

/// What [`discover`] found; a version is `None` when the host has no usable
/// address of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostNet {
    /// IPv4 template.
    pub v4: Option<HostV4>,
    /// IPv6 template.
    pub v6: Option<HostV6>,
    /// MTU of the template interface (IPv4's if both exist).
    pub mtu: Option<u32>,
}

/// The kernel's tables, as [`discover`] reads them.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// All links.
    pub links: Vec<Link>,
    /// All IPv4 and IPv6 addresses.
    pub addrs: Vec<Addr>,
    /// Main-table routes of both versions.
    pub routes: Vec<Route>,
}

impl Snapshot {
    /// Reads links, addresses and routes over rtnetlink, in the calling
    /// thread's network namespace.
    pub fn read() -> io::Result<Snapshot> {
        let mut nl = Netlink::open().map_err(|e| context(e, "opening rtnetlink socket"))?;
        let links = nl.links().map_err(|e| context(e, "listing network interfaces"))?;
        let addrs = nl.addrs(None).map_err(|e| context(e, "listing addresses"))?;
        let mut routes = nl.routes(Family::V4).map_err(|e| context(e, "listing IPv4 routes"))?;
        routes.extend(nl.routes(Family::V6).map_err(|e| context(e, "listing IPv6 routes"))?);
        Ok(Snapshot { links, addrs, routes })
    }
}

/// Finds the host's addresses, gateways and MTU (see the module docs).
///
/// `interface`: `Some(name)` forces that interface (passt `-i`); else the
/// interface of the default route with the lowest metric; if there is no
/// default route, the first interface (not loopback) with a global address
/// of that family.
///
/// # Errors
///
/// Netlink failures; `NotFound` if `interface` names no interface.
pub fn discover(interface: Option<&str>) -> io::Result<HostNet> {
    discover_in(&Snapshot::read()?, interface)
}

/// [`discover`] on a given snapshot.
pub fn discover_in(snap: &Snapshot, interface: Option<&str>) -> io::Result<HostNet> {
    let forced = match interface {
        Some(name) => Some(snap.links.iter().find(|l| l.name == name).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("interface {name:?} (-i) does not exist"))
        })?),
        None => None,
    };
    let v4 = template(snap, Family::V4, forced).and_then(|(link, gw)| host_v4(snap, link, gw));
    let v6 = template(snap, Family::V6, forced).and_then(|(link, gw)| host_v6(snap, link, gw));
    let mtu_of = |ifindex: u32| snap.links.iter().find(|l| l.ifindex == ifindex).and_then(|l| l.mtu);
    let mtu = v4.as_ref().map(|h| h.ifindex).or(v6.as_ref().map(|h| h.ifindex)).and_then(mtu_of);
    Ok(HostNet { v4, v6, mtu })
}

/// The template interface for `family` and the gateway through it.
fn template<'a>(snap: &'a Snapshot, family: Family, forced: Option<&'a Link>) -> Option<(&'a Link, Option<IpAddr>)> {
    let best = |ifindex: Option<u32>| {
        snap.routes
            .iter()
            .filter(|r| r.family == family && r.is_default() && r.kind == RTN_UNICAST && r.oif.is_some())
            .filter(|r| ifindex.is_none() || r.oif == ifindex)
            .min_by_key(|r| r.priority)
    };
    if let Some(link) = forced {
        return Some((link, best(Some(link.ifindex)).and_then(|r| r.gateway)));
    }
    if let Some(route) = best(None) {
        let link = snap.links.iter().find(|l| Some(l.ifindex) == route.oif)?;
        return Some((link, route.gateway));
    }
    let mut candidates: Vec<&Link> = snap.links.iter().filter(|l| !l.is_loopback()).collect();
    candidates.sort_by_key(|l| l.ifindex);
    let link = candidates
        .into_iter()
        .find(|l| snap.addrs.iter().any(|a| a.ifindex == l.ifindex && a.family() == family && usable_global(a)))?;
    Some((link, None))
}

/// A global address that can be used now: DAD done and passed.
fn usable_global(a: &Addr) -> bool {
    a.is_global() && !a.is_tentative() && !a.is_dadfailed()
}

fn host_v4(snap: &Snapshot, link: &Link, gw: Option<IpAddr>) -> Option<HostV4> {
    let a = snap.addrs.iter().find(|a| a.ifindex == link.ifindex && a.family() == Family::V4 && usable_global(a))?;
    let IpAddr::V4(addr) = a.addr else { return None };
    let gateway = match gw {
        Some(IpAddr::V4(g)) => Some(g),
        _ => None,
    };
    Some(HostV4 { ifindex: link.ifindex, ifname: link.name.clone(), addr, prefix_len: a.prefix_len, gateway })
}

fn host_v6(snap: &Snapshot, link: &Link, gw: Option<IpAddr>) -> Option<HostV6> {
    use crate::sys::netlink::{IFA_F_DEPRECATED, IFA_F_TEMPORARY};
    let ours = |a: &&Addr| a.ifindex == link.ifindex && a.family() == Family::V6;
    // Stable, preferred addresses first; deprecated or temporary ones only
    // when nothing else is there.
    let global = snap
        .addrs
        .iter()
        .filter(ours)
        .filter(|a| usable_global(a))
        .min_by_key(|a| (a.flags & IFA_F_DEPRECATED != 0, a.flags & IFA_F_TEMPORARY != 0))?;
    let IpAddr::V6(addr) = global.addr else { return None };
    let link_local = snap
        .addrs
        .iter()
        .filter(ours)
        .filter(|a| a.scope == RT_SCOPE_LINK && !a.is_dadfailed())
        .min_by_key(|a| a.is_tentative())
        .and_then(|a| match a.addr {
            IpAddr::V6(ll) => Some(ll),
            IpAddr::V4(_) => None,
        });
    let gateway = match gw {
        Some(IpAddr::V6(g)) => Some(g),
        _ => None,
    };
    Some(HostV6 {
        ifindex: link.ifindex,
        ifname: link.name.clone(),
        addr,
        prefix_len: global.prefix_len,
        gateway,
        link_local,
    })
}

// --- resolv.conf ---

/// Name servers and search domains from resolv.conf.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolv {
    /// `nameserver` addresses in file order, without duplicates (an IPv6
    /// zone suffix such as `%eth0` is dropped).
    pub nameservers: Vec<IpAddr>,
    /// Search domains (from the last `search` or `domain` line), without
    /// a trailing dot.
    pub search: Vec<String>,
}

/// Longest domain name (RFC 1035 section 2.3.4, in text form).
const MAX_DOMAIN_LEN: usize = 253;

/// Parses resolv.conf at `path` (normally `/etc/resolv.conf`). A missing or
/// unreadable file gives an empty result; junk lines are skipped.
pub fn read_resolv_conf(path: &Path) -> Resolv {
    match std::fs::read(path) {
        Ok(bytes) => parse_resolv_conf(&String::from_utf8_lossy(&bytes)),
        Err(e) => {
            log::debug!("cannot read {}: {e}", path.display());
            Resolv::default()
        }
    }
}

/// Parses resolv.conf text.
pub fn parse_resolv_conf(text: &str) -> Resolv {
    let mut out = Resolv::default();
    for line in text.lines() {
        // Comments: '#' or ';' start one; resolv.conf(5) says at the start
        // of a line, but resolvers also cut them off after a value.
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_ascii_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ns) = words.next().and_then(parse_nameserver) {
                    if !out.nameservers.contains(&ns) {
                        out.nameservers.push(ns);
                    }
                }
            }
            Some("search") => out.search = words.filter_map(clean_domain).collect(),
            Some("domain") => out.search = words.next().and_then(clean_domain).into_iter().collect(),
            _ => {}
        }
    }
    out
}

/// An address, with an IPv6 zone (`fe80::1%eth0`) dropped.
fn parse_nameserver(word: &str) -> Option<IpAddr> {
    let addr = word.split('%').next().unwrap_or_default();
    addr.parse().ok()
}

/// A plausible domain name: printable ASCII, not too long, no empty
/// labels; "." (the root) means no search domain.
fn clean_domain(word: &str) -> Option<String> {
    let d = word.strip_suffix('.').unwrap_or(word);
    let ok = !d.is_empty()
        && d.len() <= MAX_DOMAIN_LEN
        && d.bytes().all(|c| c.is_ascii_graphic())
        && d.split('.').all(|label| !label.is_empty());
    ok.then(|| d.to_string())
}

// --- Namespace setup ---

/// What to set on the tap in the namespace (`--config-net`); with only
/// `ifname` set, [`configure_link`] just brings the link up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NsNetConfig {
    /// The interface (the tap) to configure.
    pub ifname: String,
    /// MTU to set.
    pub mtu: Option<u32>,
    /// IPv4 address and prefix length (1 to 32).
    pub addr4: Option<(Ipv4Addr, u8)>,
    /// IPv4 default gateway.
    pub gw4: Option<Ipv4Addr>,
    /// IPv6 address and prefix length (0 means 64), added without DAD.
    pub addr6: Option<(Ipv6Addr, u8)>,
    /// IPv6 default gateway (may be link-local).
    pub gw6: Option<Ipv6Addr>,
}

/// Default IPv6 prefix length when none is given.
const DEFAULT_PREFIX6: u8 = 64;

/// Configures the interface `cfg.ifname` of the calling thread's namespace
/// (call it through `sys::netns::run_in_netns`): link up (always), MTU,
/// addresses, default routes. Existing identical addresses and routes are
/// replaced, so calling it twice is harmless.
///
/// # Errors
///
/// `InvalidInput` for a bad prefix length; `NotFound` if the interface
/// does not exist; the kernel's error otherwise, saying which step failed.
pub fn configure_link(cfg: &NsNetConfig) -> io::Result<()> {
    let prefix4 = cfg.addr4.map(|(_, p)| p);
    if prefix4.is_some_and(|p| p == 0 || p > 32) {
        return Err(invalid(format!("IPv4 prefix length {} out of range 1-32", prefix4.unwrap_or(0))));
    }
    let addr6 = cfg.addr6.map(|(a, p)| (a, if p == 0 { DEFAULT_PREFIX6 } else { p }));
    if let Some((_, p)) = addr6.filter(|&(_, p)| p > 128) {
        return Err(invalid(format!("IPv6 prefix length {p} out of range 1-128")));
    }

    let mut nl = Netlink::open().map_err(|e| context(e, "opening rtnetlink socket"))?;
    let name = &cfg.ifname;
    let idx = nl.link_by_name(name)?.ifindex;
    if let Some(mtu) = cfg.mtu {
        nl.set_link(idx, true, Some(mtu)).map_err(|e| context(e, &format!("setting MTU {mtu} on {name}")))?;
    } else {
        nl.set_link(idx, true, None).map_err(|e| context(e, &format!("bringing {name} up")))?;
    }

    if let Some((a, p)) = cfg.addr4 {
        nl.add_addr(idx, a.into(), p, false).map_err(|e| context(e, &format!("adding {a}/{p} to {name}")))?;
    }
    if let Some(gw) = cfg.gw4 {
        let on_link = cfg.addr4.is_some_and(|(a, p)| same_prefix4(a, gw, p));
        add_default_route(&mut nl, idx, name, gw.into(), on_link)?;
    }

    if let Some((a, p)) = addr6 {
        nl.add_addr(idx, a.into(), p, true).map_err(|e| context(e, &format!("adding {a}/{p} to {name}")))?;
    }
    if let Some(gw) = cfg.gw6 {
        let on_link = is_link_local6(gw) || addr6.is_some_and(|(a, p)| same_prefix6(a, gw, p));
        add_default_route(&mut nl, idx, name, gw.into(), on_link)?;
    }
    Ok(())
}

/// Default route via `gw` out of `idx`, preceded by a host route to `gw`
/// when it is not on a connected prefix.
fn add_default_route(nl: &mut Netlink, idx: u32, name: &str, gw: IpAddr, on_link: bool) -> io::Result<()> {
    if !on_link {
        let host_len = Family::of(&gw).max_prefix_len();
        nl.add_route(&RouteRequest::on_link(gw, host_len, idx))
            .map_err(|e| context(e, &format!("adding on-link route to gateway {gw} on {name}")))?;
    }
    nl.add_route(&RouteRequest::default_via(gw, idx))
        .map_err(|e| context(e, &format!("adding default route via {gw} on {name}")))
}

fn same_prefix4(a: Ipv4Addr, b: Ipv4Addr, prefix_len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix_len.min(32))).unwrap_or(0);
    u32::from(a) & mask == u32::from(b) & mask
}

fn same_prefix6(a: Ipv6Addr, b: Ipv6Addr, prefix_len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix_len.min(128))).unwrap_or(0);
    u128::from(a) & mask == u128::from(b) & mask
}

/// fe80::/10.
fn is_link_local6(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The same error kind, with what we were doing in front.
fn context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::netlink::{
        IFA_F_DADFAILED, IFA_F_DEPRECATED, IFA_F_TEMPORARY, IFA_F_TENTATIVE, IFF_LOOPBACK, IFF_UP, RT_SCOPE_HOST,
        RT_SCOPE_UNIVERSE, RT_TABLE_MAIN,
    };

    fn link(ifindex: u32, name: &str, mtu: u32, flags: u32) -> Link {
        Link { ifindex, name: name.into(), mtu: Some(mtu), mac: None, flags }
    }

    fn addr(ifindex: u32, a: &str, prefix_len: u8, scope: u8, flags: u32) -> Addr {
        Addr { ifindex, addr: a.parse().unwrap(), prefix_len, scope, flags }
    }

    fn default_route(gw: &str, oif: u32, priority: u32) -> Route {
        let gw: IpAddr = gw.parse().unwrap();
        let family = Family::of(&gw);
        Route {
            family,
            kind: RTN_UNICAST,
            scope: RT_SCOPE_UNIVERSE,
            table: RT_TABLE_MAIN,
            dst: family.unspecified(),
            dst_len: 0,
            gateway: Some(gw),
            oif: Some(oif),
            priority,
        }
    }

    /// lo, eth0 (2) and wlan0 (3), both with addresses.
    fn two_interfaces() -> Snapshot {
        Snapshot {
            links: vec![
                link(1, "lo", 65536, IFF_UP | IFF_LOOPBACK),
                link(2, "eth0", 1500, IFF_UP),
                link(3, "wlan0", 1400, IFF_UP),
            ],
            addrs: vec![
                addr(1, "127.0.0.1", 8, RT_SCOPE_HOST, 0),
                addr(1, "::1", 128, RT_SCOPE_HOST, 0),
                addr(2, "192.0.2.2", 24, RT_SCOPE_UNIVERSE, 0),
                addr(2, "2001:db8::2", 64, RT_SCOPE_UNIVERSE, 0),
                addr(2, "fe80::2", 64, RT_SCOPE_LINK, 0),
                addr(3, "198.51.100.7", 25, RT_SCOPE_UNIVERSE, 0),
                addr(3, "2001:db8:1::7", 64, RT_SCOPE_UNIVERSE, 0),
            ],
            routes: vec![],
        }
    }

    #[test]
    fn lowest_metric_default_route_wins() {
        let mut s = two_interfaces();
        s.routes = vec![
            default_route("192.0.2.1", 2, 600),
            default_route("198.51.100.1", 3, 100),
            default_route("fe80::1", 2, 1024),
            default_route("fe80::99", 3, 2048),
        ];
        let h = discover_in(&s, None).unwrap();
        assert_eq!(
            h.v4,
            Some(HostV4 {
                ifindex: 3,
                ifname: "wlan0".into(),
                addr: "198.51.100.7".parse().unwrap(),
                prefix_len: 25,
                gateway: Some("198.51.100.1".parse().unwrap())
            })
        );
        assert_eq!(
            h.v6,
            Some(HostV6 {
                ifindex: 2,
                ifname: "eth0".into(),
                addr: "2001:db8::2".parse().unwrap(),
                prefix_len: 64,
                gateway: Some("fe80::1".parse().unwrap()),
                link_local: Some("fe80::2".parse().unwrap())
            })
        );
        assert_eq!(h.mtu, Some(1400));
    }

    #[test]
    fn no_default_route_takes_first_interface_with_global_address() {
        let s = two_interfaces();
        let h = discover_in(&s, None).unwrap();
        let v4 = h.v4.unwrap();
        assert_eq!((v4.ifindex, v4.gateway), (2, None));
        assert_eq!(h.v6.unwrap().ifindex, 2);
        assert_eq!(h.mtu, Some(1500));
    }

    #[test]
    fn forced_interface_uses_its_own_gateway() {
        let mut s = two_interfaces();
        s.routes = vec![default_route("192.0.2.1", 2, 100), default_route("198.51.100.1", 3, 600)];
        let h = discover_in(&s, Some("wlan0")).unwrap();
        let v4 = h.v4.unwrap();
        assert_eq!((v4.ifname.as_str(), v4.gateway), ("wlan0", Some("198.51.100.1".parse().unwrap())));
        let v6 = h.v6.unwrap();
        assert_eq!((v6.ifindex, v6.gateway, v6.link_local), (3, None, None));
        let e = discover_in(&s, Some("nope0")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("nope0"));
    }

    #[test]
    fn ignores_non_unicast_other_table_and_loopback_only() {
        let mut s = two_interfaces();
        let mut unreachable = default_route("192.0.2.1", 3, 1);
        unreachable.kind = 7; // RTN_PROHIBIT
        let mut no_oif = default_route("192.0.2.1", 3, 1);
        no_oif.oif = None;
        s.routes = vec![unreachable, no_oif, default_route("192.0.2.1", 2, 50)];
        assert_eq!(discover_in(&s, None).unwrap().v4.unwrap().ifindex, 2);

        // Only loopback: nothing.
        s.links.truncate(1);
        s.addrs.truncate(2);
        s.routes.clear();
        assert_eq!(discover_in(&s, None).unwrap(), HostNet::default());
    }

    #[test]
    fn ipv6_address_selection() {
        let mut s = two_interfaces();
        s.addrs = vec![
            addr(2, "192.0.2.2", 24, RT_SCOPE_UNIVERSE, 0),
            addr(2, "2001:db8::a", 64, RT_SCOPE_UNIVERSE, IFA_F_TENTATIVE),
            addr(2, "2001:db8::b", 64, RT_SCOPE_UNIVERSE, IFA_F_DADFAILED),
            addr(2, "2001:db8::c", 64, RT_SCOPE_UNIVERSE, IFA_F_TEMPORARY),
            addr(2, "2001:db8::d", 64, RT_SCOPE_UNIVERSE, IFA_F_DEPRECATED),
            addr(2, "2001:db8::e", 56, RT_SCOPE_UNIVERSE, 0),
            addr(2, "fe80::1", 64, RT_SCOPE_LINK, IFA_F_TENTATIVE),
            addr(2, "fe80::2", 64, RT_SCOPE_LINK, 0),
        ];
        s.routes = vec![default_route("192.0.2.1", 2, 0), default_route("2001:db8::1", 2, 0)];
        let v6 = discover_in(&s, None).unwrap().v6.unwrap();
        assert_eq!(v6.addr, "2001:db8::e".parse::<Ipv6Addr>().unwrap());
        assert_eq!(v6.prefix_len, 56);
        assert_eq!(v6.link_local, Some("fe80::2".parse().unwrap()));
        assert_eq!(v6.gateway, Some("2001:db8::1".parse().unwrap()));

        // Only tentative or failed global addresses: no IPv6, IPv4 still there.
        s.addrs.retain(|a| a.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED) != 0 || a.family() == Family::V4);
        let h = discover_in(&s, None).unwrap();
        assert_eq!(h.v6, None);
        assert!(h.v4.is_some());
    }

    #[test]
    fn gateway_of_the_other_family_is_dropped() {
        let mut s = two_interfaces();
        let mut r = default_route("192.0.2.1", 2, 0);
        r.gateway = Some("fe80::1".parse().unwrap()); // RTA_VIA inet6
        s.routes = vec![r];
        let v4 = discover_in(&s, None).unwrap().v4.unwrap();
        assert_eq!((v4.ifindex, v4.gateway), (2, None));
    }

    #[test]
    fn resolv_conf_cases() {
        let text = "# generated\n\
            nameserver 192.0.2.53\n\
            nameserver   2001:db8::53   # inline comment\n\
            nameserver fe80::1%eth0\n\
            nameserver 192.0.2.53\n\
            nameserver not-an-address\n\
            nameserver\n\
            ; another comment\n\
            domain first.example\n\
            search example.com. corp.example  bad..label .\n\
            options ndots:2 edns0\n\
            \tnameserver 198.51.100.1\n\
            garbage line here\n\
            nameserver192.0.2.9\n";
        let r = parse_resolv_conf(text);
        let ns: Vec<IpAddr> =
            ["192.0.2.53", "2001:db8::53", "fe80::1", "198.51.100.1"].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(r.nameservers, ns);
        assert_eq!(r.search, vec!["example.com".to_string(), "corp.example".to_string()]);

        // The last of search/domain wins.
        let r = parse_resolv_conf("search a.example b.example\ndomain c.example\n");
        assert_eq!(r.search, vec!["c.example".to_string()]);
        assert_eq!(parse_resolv_conf("").search, Vec::<String>::new());
        let long = format!("search {}\n", "a".repeat(300));
        assert!(parse_resolv_conf(&long).search.is_empty());
    }

    #[test]
    fn resolv_conf_files() {
        let dir = std::env::temp_dir().join(format!("passt-resolv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("resolv.conf");
        std::fs::write(&p, b"nameserver 10.0.0.1\n\xff\xfe junk\nsearch x.example\n").unwrap();
        let r = read_resolv_conf(&p);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(r.nameservers, vec!["10.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(r.search, vec!["x.example".to_string()]);
        assert_eq!(read_resolv_conf(&dir.join("missing")), Resolv::default());
    }

    #[test]
    fn prefixes() {
        let a: Ipv4Addr = "192.0.2.2".parse().unwrap();
        assert!(same_prefix4(a, "192.0.2.1".parse().unwrap(), 24));
        assert!(!same_prefix4(a, "192.0.3.1".parse().unwrap(), 24));
        assert!(same_prefix4(a, "10.0.0.1".parse().unwrap(), 0));
        assert!(!same_prefix4(a, "192.0.2.1".parse().unwrap(), 32));
        let b: Ipv6Addr = "2001:db8::2".parse().unwrap();
        assert!(same_prefix6(b, "2001:db8::1".parse().unwrap(), 64));
        assert!(!same_prefix6(b, "2001:db8:1::1".parse().unwrap(), 64));
        assert!(!same_prefix6(b, "2001:db8::1".parse().unwrap(), 128));
        assert!(is_link_local6("fe80::1".parse().unwrap()));
        assert!(is_link_local6("febf::1".parse().unwrap()));
        assert!(!is_link_local6("fec0::1".parse().unwrap()));
    }

    #[test]
    fn configure_rejects_bad_prefixes_before_touching_anything() {
        let cfg =
            NsNetConfig { ifname: "x".into(), addr4: Some(("10.0.0.2".parse().unwrap(), 33)), ..Default::default() };
        assert_eq!(configure_link(&cfg).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let cfg =
            NsNetConfig { ifname: "x".into(), addr4: Some(("10.0.0.2".parse().unwrap(), 0)), ..Default::default() };
        assert_eq!(configure_link(&cfg).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let cfg = NsNetConfig {
            ifname: "x".into(),
            addr6: Some(("2001:db8::2".parse().unwrap(), 129)),
            ..Default::default()
        };
        assert_eq!(configure_link(&cfg).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
