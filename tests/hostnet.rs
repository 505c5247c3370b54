//! Host network discovery, tap creation and namespace configuration against
//! the real kernel, in namespaces created (and deleted) by each test.

mod common;

use common::netns::{wait_until, HostWithRouter, Side, TestNs, VethPair};
use passt::hostnet::{configure_link, discover, read_resolv_conf, HostV4, HostV6, NsNetConfig};
use passt::sys::netns::run_in_netns;
use passt::sys::tun::open_tap;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::time::Duration;

/// The first link-local IPv6 address on `dev` in `ns`, if any.
fn link_local_of(ns: &TestNs, dev: &str) -> Option<Ipv6Addr> {
    let out = ns.ip(&["-6", "-o", "addr", "show", "dev", dev, "scope", "link"]);
    let word = out.split_whitespace().skip_while(|w| *w != "inet6").nth(1)?;
    word.split('/').next()?.parse().ok()
}

#[test]
fn discovers_host_like_namespace() {
    let t = HostWithRouter::new("disc");
    t.host.ip(&["link", "set", "veth0", "mtu", "1400"]);
    // The kernel adds the link-local address once it sees the carrier.
    assert!(wait_until(Duration::from_secs(5), || link_local_of(&t.host, "veth0").is_some()), "no link-local address");
    let ll = link_local_of(&t.host, "veth0");
    let ifindex = t.host.ifindex("veth0");

    let h = t.host.run(|| discover(None)).unwrap();
    assert_eq!(
        h.v4,
        Some(HostV4 {
            ifindex,
            ifname: "veth0".into(),
            addr: HostWithRouter::HOST4.parse().unwrap(),
            prefix_len: HostWithRouter::PREFIX4,
            gateway: Some(HostWithRouter::ROUTER4.parse().unwrap()),
        })
    );
    assert_eq!(
        h.v6,
        Some(HostV6 {
            ifindex,
            ifname: "veth0".into(),
            addr: HostWithRouter::HOST6.parse().unwrap(),
            prefix_len: HostWithRouter::PREFIX6,
            gateway: Some(HostWithRouter::ROUTER6.parse().unwrap()),
            link_local: ll,
        })
    );
    assert_eq!(h.mtu, Some(1400));

    // Forcing the same interface gives the same answer; a missing one is an error.
    assert_eq!(t.host.run(|| discover(Some("veth0"))).unwrap(), h);
    let e = t.host.run(|| discover(Some("nosuch0"))).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(e.to_string().contains("nosuch0"), "{e}");
    // Loopback has no global address: nothing to copy.
    let lo = t.host.run(|| discover(Some("lo"))).unwrap();
    assert_eq!((lo.v4, lo.v6), (None, None));

    // The router has addresses but no default route: first interface with
    // a global address, no gateway.
    let r = t.router.run(|| discover(None)).unwrap();
    let (v4, v6) = (r.v4.unwrap(), r.v6.unwrap());
    assert_eq!((v4.ifname.as_str(), v4.addr.to_string(), v4.gateway), ("veth1", HostWithRouter::ROUTER4.into(), None));
    assert_eq!((v6.ifname.as_str(), v6.addr.to_string(), v6.gateway), ("veth1", HostWithRouter::ROUTER6.into(), None));
}

#[test]
fn lowest_metric_default_route_wins() {
    let host = TestNs::new("metric");
    let peer = TestNs::new("metric-peer");
    let a = VethPair::new(Side::Ns(&host), "eth-a", Side::Ns(&peer), "peer-a");
    let b = VethPair::new(Side::Ns(&host), "eth-b", Side::Ns(&peer), "peer-b");
    a.addr_a("198.51.100.2/24").addr_a("2001:db8:a::2/64");
    b.addr_a("203.0.113.2/24").addr_a("2001:db8:b::2/64");
    host.ip(&["route", "add", "default", "via", "198.51.100.1", "metric", "200"]);
    host.ip(&["route", "add", "default", "via", "203.0.113.1", "metric", "100"]);
    host.ip(&["-6", "route", "add", "default", "via", "2001:db8:a::1", "metric", "100"]);
    host.ip(&["-6", "route", "add", "default", "via", "2001:db8:b::1", "metric", "300"]);

    let h = host.run(|| discover(None)).unwrap();
    let (v4, v6) = (h.v4.unwrap(), h.v6.unwrap());
    assert_eq!(
        (v4.ifname.as_str(), v4.addr.to_string(), v4.gateway.map(|g| g.to_string())),
        ("eth-b", "203.0.113.2".into(), Some("203.0.113.1".into()))
    );
    assert_eq!(
        (v6.ifname.as_str(), v6.addr.to_string(), v6.gateway.map(|g| g.to_string())),
        ("eth-a", "2001:db8:a::2".into(), Some("2001:db8:a::1".into()))
    );

    // -i eth-a: its own (higher-metric) IPv4 gateway.
    let h = host.run(|| discover(Some("eth-a"))).unwrap();
    assert_eq!(h.v4.unwrap().gateway, Some("198.51.100.1".parse().unwrap()));
}

/// Reads one frame from a non-blocking tap fd, waiting up to `timeout`.
fn read_frame(fd: std::os::fd::BorrowedFd<'_>, timeout: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    let mut got = None;
    wait_until(timeout, || match passt::sys::read(fd, &mut buf) {
        Ok(n) => {
            got = Some(buf[..n].to_vec());
            true
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Err(e) => panic!("read from tap: {e}"),
    });
    got
}

/// The `flags:` line of /proc/self/fdinfo/FD (octal open flags).
fn fd_flags(fd: i32) -> u32 {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
    let line = info.lines().find(|l| l.starts_with("flags:")).unwrap();
    u32::from_str_radix(line.trim_start_matches("flags:").trim(), 8).unwrap()
}

#[test]
fn tap_in_namespace_configured_with_link_local_gateway() {
    let ns = TestNs::new("tap");
    let tap = format!("tp{}", std::process::id());
    let cfg = NsNetConfig {
        ifname: tap.clone(),
        mtu: Some(65520),
        addr4: Some(("192.0.2.2".parse().unwrap(), 24)),
        gw4: Some("192.0.2.1".parse().unwrap()),
        addr6: Some(("2001:db8::2".parse().unwrap(), 64)),
        gw6: Some("fe80::1".parse().unwrap()),
    };
    let fd = ns
        .run(|| {
            let fd = open_tap(&cfg.ifname)?;
            configure_link(&cfg)?;
            Ok(fd)
        })
        .unwrap();

    // Non-blocking and close-on-exec.
    let flags = fd_flags(fd.as_raw_fd());
    assert_ne!(flags & libc::O_NONBLOCK as u32, 0, "flags {flags:o}");
    assert_ne!(flags & libc::O_CLOEXEC as u32, 0, "flags {flags:o}");

    let link = ns.ip(&["-o", "link", "show", "dev", &tap]);
    assert!(link.contains("mtu 65520"), "{link}");
    assert!(link.contains(",UP") || link.contains("<UP"), "{link}");
    assert!(link.contains("link/ether"), "not a tap: {link}");
    let a4 = ns.ip(&["-4", "addr", "show", "dev", &tap]);
    assert!(a4.contains("inet 192.0.2.2/24"), "{a4}");
    let a6 = ns.ip(&["-6", "addr", "show", "dev", &tap, "scope", "global"]);
    assert!(a6.contains("inet6 2001:db8::2/64"), "{a6}");
    assert!(!a6.contains("tentative"), "DAD not skipped: {a6}");
    let r4 = ns.ip(&["-4", "route", "show", "default"]);
    assert!(r4.contains(&format!("default via 192.0.2.1 dev {tap}")), "{r4}");
    let r6 = ns.ip(&["-6", "route", "show", "default"]);
    assert!(r6.contains(&format!("default via fe80::1 dev {tap}")), "{r6}");

    // Frames, not packets with a PI header: the kernel's first IPv6
    // traffic on the new link (MLD/NDP) goes to a 33:33:... multicast MAC.
    let frame = read_frame(fd.as_fd(), Duration::from_secs(10)).expect("no frame from the namespace");
    assert!(frame.len() >= 14, "short frame {frame:?}");
    assert_eq!(&frame[0..2], &[0x33, 0x33], "frame {frame:02x?}");
    assert_eq!(&frame[12..14], &[0x86, 0xdd]);

    // Calling it again is harmless (replace semantics).
    ns.run(|| configure_link(&cfg)).unwrap();

    // A second open of an attached tap fails and names it.
    let e = ns.run(|| open_tap(&tap)).unwrap_err();
    assert!(e.to_string().contains(&tap), "{e}");

    // The tap lives in the namespace, not in ours (its name is unique to
    // this process, so it cannot be someone else's).
    let here = passt::sys::netlink::Netlink::open().unwrap().links().unwrap();
    assert!(!here.iter().any(|l| l.name == cfg.ifname), "{} leaked into the test's namespace", cfg.ifname);
    // It goes away with its fd.
    drop(fd);
    assert!(wait_until(Duration::from_secs(5), || !ns.ip_output(&["link", "show", "dev", &tap]).status.success()));
}

#[test]
fn gateways_off_prefix_get_on_link_routes() {
    let ns = TestNs::new("offlink");
    let cfg = NsNetConfig {
        ifname: "tap1".into(),
        mtu: None,
        addr4: Some(("10.0.0.2".parse().unwrap(), 24)),
        gw4: Some("192.0.2.1".parse().unwrap()),
        addr6: Some(("2001:db8::2".parse().unwrap(), 0)), // 0: default /64
        gw6: Some("2001:db8:ffff::1".parse().unwrap()),
    };
    let _fd = ns
        .run(|| {
            let fd = open_tap(&cfg.ifname)?;
            configure_link(&cfg)?;
            Ok(fd)
        })
        .unwrap();
    let r4 = ns.ip(&["-4", "route", "show"]);
    assert!(r4.contains("192.0.2.1 dev tap1") && r4.contains("scope link"), "{r4}");
    assert!(r4.contains("default via 192.0.2.1 dev tap1"), "{r4}");
    let r6 = ns.ip(&["-6", "route", "show"]);
    assert!(r6.contains("2001:db8:ffff::1 dev tap1"), "{r6}");
    assert!(r6.contains("default via 2001:db8:ffff::1 dev tap1"), "{r6}");
    let a6 = ns.ip(&["-6", "addr", "show", "dev", "tap1", "scope", "global"]);
    assert!(a6.contains("inet6 2001:db8::2/64"), "{a6}");
    // Without MTU the tap keeps its default.
    assert!(ns.ip(&["-o", "link", "show", "dev", "tap1"]).contains("mtu 1500"));
}

#[test]
fn link_up_only_without_config_net() {
    let ns = TestNs::new("uponly");
    let cfg = NsNetConfig { ifname: "tap2".into(), ..Default::default() };
    let _fd = ns
        .run(|| {
            let fd = open_tap(&cfg.ifname)?;
            configure_link(&cfg)?;
            Ok(fd)
        })
        .unwrap();
    assert!(ns.ip(&["-o", "link", "show", "dev", "tap2"]).contains(",UP"));
    assert!(!ns.ip(&["-4", "addr", "show", "dev", "tap2"]).contains("inet "));
    assert!(ns.ip(&["-4", "route", "show"]).trim().is_empty());
}

#[test]
fn error_cases() {
    let p = Path::new("/run/netns/passt-rs-no-such-ns");
    let e = run_in_netns(p, || Ok(())).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(e.to_string().contains("/run/netns/passt-rs-no-such-ns"), "{e}");

    let ns = TestNs::new("err");
    let e = ns.run(|| configure_link(&NsNetConfig { ifname: "missing0".into(), ..Default::default() })).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(e.to_string().contains("missing0"), "{e}");
    // A non-tap interface of that name: TUNSETIFF refuses it.
    let e = ns.run(|| open_tap("lo")).unwrap_err();
    assert!(e.to_string().contains("\"lo\""), "{e}");
    let e = ns.run(|| open_tap("name-far-too-long")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    // MTU out of range for a tap: the kernel's error, naming the step.
    let e = ns
        .run(|| {
            let fd = open_tap("tap3")?;
            configure_link(&NsNetConfig { ifname: "tap3".into(), mtu: Some(70000), ..Default::default() })?;
            Ok(fd)
        })
        .unwrap_err();
    assert!(e.to_string().contains("MTU 70000"), "{e}");
}

#[test]
fn ping_group_range_only_inside() {
    let host_before = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap();
    let ns = TestNs::new("ping");
    let inside = ns.exec_ok("cat", &["/proc/sys/net/ipv4/ping_group_range"]);
    assert_eq!(inside.split_whitespace().collect::<Vec<_>>(), ["0", "2147483647"]);
    assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap(), host_before);
    let path = ns.path.clone();
    drop(ns);
    assert!(!path.exists());
}

#[test]
fn resolv_conf_from_files() {
    let ns = TestNs::new("resolv");
    let p = ns.set_resolv_conf(
        "# test\nnameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch example.org lab.example\noptions edns0\n",
    );
    // What a command in the namespace sees is what we parse from the path.
    let seen = ns.exec_ok("cat", &["/etc/resolv.conf"]);
    assert!(seen.contains("nameserver 192.0.2.53"), "{seen}");
    let r = read_resolv_conf(&p);
    assert_eq!(r.nameservers, vec!["192.0.2.53".parse::<IpAddr>().unwrap(), "2001:db8::53".parse().unwrap()]);
    assert_eq!(r.search, vec!["example.org".to_string(), "lab.example".to_string()]);

    std::fs::write(&p, b"domain only.example\nnameserver \x80\x81\nnameserver 10.1.1.1 extra words\n").unwrap();
    let r = read_resolv_conf(&p);
    assert_eq!(r.nameservers, vec!["10.1.1.1".parse::<IpAddr>().unwrap()]);
    assert_eq!(r.search, vec!["only.example".to_string()]);

    let r = read_resolv_conf(Path::new("/nonexistent/resolv.conf"));
    assert!(r.nameservers.is_empty() && r.search.is_empty());
}
