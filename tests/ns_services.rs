//! The local services and ICMP echo against a real kernel: a tap in a
//! fresh namespace (the "guest"), our instance running in a "host"
//! namespace with a router beside it (as the guest kit's example sets up).

mod common;

use common::driver::Driver;
use common::netns::{wait_until, HostWithRouter, TestNs};
use std::time::Duration;

struct Setup {
    _driver: Driver,
    guest: TestNs,
    _net: HostWithRouter,
}

/// Host and router namespaces, a guest namespace, and an instance in the
/// host namespace with a tap in the guest namespace.
fn setup(tag: &str, extra: &[&str]) -> Setup {
    let net = HostWithRouter::new(tag);
    let guest = TestNs::new(&format!("{tag}-g"));
    let netns = format!("netns={}", guest.path.display());
    let mut opts = vec![netns.as_str(), "ns-ifname=tap0"];
    opts.extend_from_slice(extra);
    let driver = Driver::start_in(&net.host.path, &Driver::config(&opts)).expect("instance starts");
    Setup { _driver: driver, guest, _net: net }
}

fn ping_ok(ns: &TestNs, args: &[&str]) -> bool {
    // busybox's ping: always there with the guest kit's packages.
    let mut a = vec!["ping", "-c", "1", "-W", "2"];
    a.extend_from_slice(args);
    (0..3).any(|_| {
        let o = ns.exec("busybox", &a);
        eprintln!("ping {args:?}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        o.status.success()
    })
}

#[test]
fn config_net_sets_up_the_namespace_and_ping_reaches_the_gateway() {
    let s = setup("svc-ping", &["config-net", "pcap=/tmp/svc-ping.pcap"]);
    let addrs = s.guest.ip(&["addr", "show", "dev", "tap0"]);
    assert!(addrs.contains("192.0.2.2/24"), "{addrs}");
    assert!(addrs.contains("2001:db8::2/64"), "{addrs}");
    assert!(addrs.contains("mtu 65520"), "{addrs}");
    let routes = s.guest.ip(&["route"]);
    assert!(routes.contains("default via 192.0.2.1"), "{routes}");
    // The gateway address leads to the host namespace's loopback, which
    // answers through a ping socket.
    assert!(ping_ok(&s.guest, &["192.0.2.1"]), "ping 192.0.2.1 through the tap");
    // Any other address on the link resolves to us too (ARP for all but the guest).
    assert!(
        wait_until(Duration::from_secs(5), || ping_ok(&s.guest, &["-6", "2001:db8::1"])),
        "ping -6 2001:db8::1 through the tap"
    );
}
