//! Start-up: the guest's network from the configuration and the host's own,
//! and the guest attachment.

use crate::backend::stream::{Conn, Listener};
use crate::config::{Attach, Config, MIN_MTU_V6};
use crate::guestnet::{GuestNet, Net4, Net6};
use crate::hostnet::{self, HostNet, NsNetConfig};
use crate::sys;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// A gateway for a subnet without one: the first address of the subnet
/// that is not the guest's.
fn invent_gateway(addr: Ipv4Addr, prefix_len: u8) -> Ipv4Addr {
    let mask = if prefix_len == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix_len.min(32))) };
    let net = u32::from(addr) & mask;
    let first = Ipv4Addr::from(net | 1);
    if first == addr {
        Ipv4Addr::from(net | 2)
    } else {
        first
    }
}

/// Builds the guest's network: configured values first, the host's own
/// configuration for the rest, as passt does.
pub fn guest_net(cfg: &Config, host: &HostNet, resolv: &hostnet::Resolv) -> Result<GuestNet, String> {
    let mut net = GuestNet {
        our_mac: cfg.our_mac,
        guest_mac: None,
        mtu: cfg.mtu,
        v4: None,
        v6: None,
        search: if cfg.search_none {
            Vec::new()
        } else if !cfg.search.is_empty() {
            cfg.search.clone()
        } else {
            resolv.search.clone()
        },
    };
    let resolvers: Vec<IpAddr> = if cfg.dns_none {
        Vec::new()
    } else if !cfg.dns.is_empty() {
        cfg.dns.clone()
    } else {
        resolv.nameservers.clone()
    };

    if !cfg.ipv6_only {
        let addr = cfg.addr4.or(host.v4.as_ref().map(|h| h.addr));
        if let Some(addr) = addr {
            let prefix_len = cfg.prefix4.or(host.v4.as_ref().map(|h| h.prefix_len)).unwrap_or(24);
            let gateway = cfg
                .gw4
                .or(host.v4.as_ref().and_then(|h| h.gateway))
                .unwrap_or_else(|| invent_gateway(addr, prefix_len));
            if gateway == addr {
                return Err(format!("gateway {gateway} is the guest's own address"));
            }
            let map_host_loopback = if cfg.no_map_gw { None } else { Some(cfg.map_host_loopback4.unwrap_or(gateway)) };
            let mut n = Net4 {
                assigned: addr,
                prefix_len,
                gateway,
                observed: None,
                map_host_loopback,
                map_guest_addr: cfg.map_guest_addr4,
                host_addr: host.v4.as_ref().map(|h| h.addr),
                dns: Vec::new(),
                dns_forward: cfg.dns_forward4,
                dns_host: None,
            };
            for r in &resolvers {
                match r {
                    // A resolver on the host's loopback cannot be reached as
                    // such from the guest: hand out a mapped address whose
                    // port 53 leads to it (passt's --dns-forward; defaults to
                    // the gateway when mapping is on).
                    IpAddr::V4(a) if a.is_loopback() => {
                        if n.dns_host.is_none() {
                            n.dns_forward = n.dns_forward.or(map_host_loopback);
                            if let Some(fwd) = n.dns_forward {
                                n.dns_host = Some(*r);
                                n.dns.push(fwd);
                            }
                        }
                    }
                    IpAddr::V4(a) => n.dns.push(*a),
                    IpAddr::V6(a) if a.is_loopback() && n.dns_host.is_none() => {
                        n.dns_forward = n.dns_forward.or(map_host_loopback);
                        if let Some(fwd) = n.dns_forward {
                            n.dns_host = Some(*r);
                            n.dns.push(fwd);
                        }
                    }
                    IpAddr::V6(_) => {}
                }
            }
            if n.dns_host.is_none() && n.dns_forward.is_some() {
                n.dns_host = resolvers.iter().find(|r| r.is_ipv4()).copied();
            }
            net.v4 = Some(n);
        } else {
            log::info!("no IPv4 address on the host and none configured: IPv4 is off");
        }
    }

    if !cfg.ipv4_only && cfg.mtu >= MIN_MTU_V6 {
        let addr = cfg.addr6.or(host.v6.as_ref().map(|h| h.addr));
        if let Some(addr) = addr {
            let gateway = cfg.gw6.or(host.v6.as_ref().and_then(|h| h.gateway));
            let our_ll = crate::services::ndp::our_link_local(cfg.our_mac);
            let map_host_loopback = if cfg.no_map_gw { None } else { cfg.map_host_loopback6.or(gateway).or(Some(our_ll)) };
            let mut n = Net6 {
                assigned: addr,
                prefix_len: host.v6.as_ref().map(|h| h.prefix_len).unwrap_or(64),
                gateway,
                our_ll,
                observed: None,
                observed_ll: None,
                map_host_loopback,
                map_guest_addr: cfg.map_guest_addr6,
                host_addr: host.v6.as_ref().map(|h| h.addr),
                dns: Vec::new(),
                dns_forward: cfg.dns_forward6,
                dns_host: None,
            };
            for r in &resolvers {
                match r {
                    IpAddr::V6(a) if a.is_loopback() => {
                        if n.dns_host.is_none() {
                            n.dns_forward = n.dns_forward.or(map_host_loopback);
                            if let Some(fwd) = n.dns_forward {
                                n.dns_host = Some(*r);
                                n.dns.push(fwd);
                            }
                        }
                    }
                    IpAddr::V6(a) => n.dns.push(*a),
                    IpAddr::V4(_) => {}
                }
            }
            if n.dns_host.is_none() && n.dns_forward.is_some() {
                n.dns_host = resolvers.iter().find(|r| r.is_ipv6()).copied();
            }
            net.v6 = Some(n);
        } else {
            log::info!("no global IPv6 address on the host and none configured: IPv6 is off");
        }
    } else if !cfg.ipv4_only {
        log::info!("MTU {} is below IPv6's minimum: IPv6 is off", cfg.mtu);
    }

    if net.v4.is_none() && net.v6.is_none() {
        return Err("no usable address: the host has none on a routable interface; set 'address'".into());
    }
    Ok(net)
}

/// The guest attachment, opened.
pub enum Opened {
    Listener(Listener),
    Conn(Conn),
    /// The tap's fd, whether it carries virtio-net headers with offloads,
    /// and whether UDP segmentation offload is among them (see
    /// [`sys::tun::open_tap_offload`]).
    Tap(std::os::fd::OwnedFd, bool, bool),
    Frames,
}

/// Opens the attachment chosen by the configuration.
pub fn open_attachment(cfg: &Config, net: &GuestNet) -> Result<Opened, String> {
    match cfg.attach().map_err(|e| e.0)? {
        Attach::Socket { path, mode } => Ok(Opened::Listener(Listener::bind(path, mode)?)),
        Attach::Fd(fd) => {
            let fd = sys::adopt_fd(fd).map_err(|e| format!("fd {fd} is not usable: {e}"))?;
            use std::os::fd::AsFd;
            sys::set_nonblocking(fd.as_fd()).map_err(|e| format!("fd: cannot make it non-blocking: {e}"))?;
            Ok(Opened::Conn(Conn::new(fd)))
        }
        Attach::Netns { path, ifname, config_net } => {
            open_tap(&path, &ifname, config_net, net).map(|(fd, vnet, uso)| Opened::Tap(fd, vnet, uso))
        }
        Attach::Frames => Ok(Opened::Frames),
    }
}

/// Opens the tap in the namespace, with offloads unless the kernel refuses
/// them or `PASST_TAP_OFFLOAD=0` is set in the environment (to measure or
/// test the plain path).
fn open_tap(path: &Path, ifname: &str, config_net: bool, net: &GuestNet) -> Result<(std::os::fd::OwnedFd, bool, bool), String> {
    let offload = std::env::var_os("PASST_TAP_OFFLOAD").map_or(true, |v| v != "0");
    let ns_cfg = NsNetConfig {
        ifname: ifname.to_string(),
        mtu: Some(net.mtu),
        addr4: config_net.then(|| net.v4.as_ref().map(|n| (n.assigned, n.prefix_len))).flatten(),
        gw4: config_net.then(|| net.v4.as_ref().map(|n| n.gateway)).flatten(),
        addr6: config_net.then(|| net.v6.as_ref().map(|n| (n.assigned, n.prefix_len))).flatten(),
        gw6: config_net.then(|| net.v6.as_ref().map(|n| n.gateway.unwrap_or(n.our_ll))).flatten(),
    };
    let name = ifname.to_string();
    sys::netns::run_in_netns(path, move || {
        let opened = if offload { sys::tun::open_tap_offload(&name)? } else { None };
        let (fd, vnet, uso) = match opened {
            Some((fd, uso)) => (fd, true, uso),
            None => (sys::tun::open_tap(&name)?, false, false),
        };
        hostnet::configure_link(&ns_cfg)?;
        Ok((fd, vnet, uso))
    })
    .map_err(|e| format!("cannot set up tap '{ifname}' in namespace {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_invented_when_missing() {
        assert_eq!(invent_gateway("10.0.2.15".parse().unwrap(), 24), "10.0.2.1".parse::<Ipv4Addr>().unwrap());
        assert_eq!(invent_gateway("10.0.2.1".parse().unwrap(), 24), "10.0.2.2".parse::<Ipv4Addr>().unwrap());
    }

    #[test]
    fn loopback_resolver_is_forwarded_through_the_gateway() {
        let mut cfg = Config::new();
        cfg.set("address", "192.0.2.2").unwrap();
        cfg.set("gateway", "192.0.2.1").unwrap();
        cfg.set("ipv4-only", "").unwrap();
        let resolv = hostnet::Resolv { nameservers: vec!["127.0.0.53".parse().unwrap(), "9.9.9.9".parse().unwrap()], search: vec!["lan".into()] };
        let net = guest_net(&cfg, &HostNet::default(), &resolv).unwrap();
        let v4 = net.v4.unwrap();
        assert_eq!(v4.dns, vec!["192.0.2.1".parse::<Ipv4Addr>().unwrap(), "9.9.9.9".parse().unwrap()]);
        assert_eq!(v4.dns_host, Some("127.0.0.53".parse().unwrap()));
        assert_eq!(net.search, vec!["lan".to_string()]);
    }

    #[test]
    fn no_address_at_all_is_an_error() {
        let cfg = Config::new();
        let err = guest_net(&cfg, &HostNet::default(), &hostnet::Resolv::default()).unwrap_err();
        assert!(err.contains("address"), "{err}");
    }
}
