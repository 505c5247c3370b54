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

/// Runs busybox udhcpc once in `ns` on tap0 and returns what its script saw.
fn udhcpc(ns: &TestNs, extra: &[&str]) -> String {
    let dir = std::env::temp_dir().join(format!("passt-udhcpc-{}-{}", std::process::id(), ns.name));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("script.sh");
    let out = dir.join("out.txt");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1 ip=$ip mask=$mask router=$router dns=$dns domain=$domain search=$search mtu=$mtu lease=$lease serverid=$serverid\" >> {}\n",
            out.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = script.to_str().unwrap().to_string();
    let mut args = vec!["udhcpc", "-i", "tap0", "-n", "-q", "-f", "-t", "3", "-T", "1", "-s", &script, "-O", "mtu", "-O", "search"];
    args.extend_from_slice(extra);
    let o = ns.exec("busybox", &args);
    let seen = std::fs::read_to_string(&out).unwrap_or_default();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(o.status.success(), "udhcpc failed: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    seen
}

#[test]
fn busybox_udhcpc_gets_the_lease_and_options() {
    let s = setup("svc-dhcp", &["dns=192.0.2.53", "dns=2001:db8::53", "search=example.org lab.example", "mtu=9000"]);
    let seen = udhcpc(&s.guest, &[]);
    let bound = seen.lines().find(|l| l.starts_with("bound")).unwrap_or_else(|| panic!("no lease: {seen}"));
    for want in [
        "ip=192.0.2.2",
        "mask=24",
        "router=192.0.2.1",
        "dns=192.0.2.53",
        "mtu=9000",
        "serverid=192.0.2.1",
        "search=example.org lab.example",
    ] {
        assert!(bound.contains(want), "{want} missing in: {bound}");
    }
    // With the broadcast flag requested (-B) too.
    let seen = udhcpc(&s.guest, &["-B"]);
    assert!(seen.contains("bound ip=192.0.2.2"), "{seen}");
}

#[test]
fn no_dhcp_means_no_lease() {
    let s = setup("svc-nodhcp", &["no-dhcp"]);
    let o = s.guest.exec("busybox", &["udhcpc", "-i", "tap0", "-n", "-q", "-f", "-t", "2", "-T", "1", "-s", "/bin/true"]);
    assert!(!o.status.success(), "udhcpc must not get a lease with no-dhcp");
}
