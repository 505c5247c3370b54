//! End to end with a real QEMU guest (the kit in ../shared/guest): the
//! guest's virtio-net NIC attached to our instance's UNIX socket.
//! Guests run one at a time (two TCG guests on two cores crawl).

mod common;

use common::driver::Driver;
use common::kit::{build_image, kit_dir, run_guest, Work};
use common::netns::HostWithRouter;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

/// One guest at a time across the tests of this file.
static GUESTS: Mutex<()> = Mutex::new(());

const SERVICES_TEST: &str = r#"#!/bin/sh
. /lib/kit.sh
kit_dhcp4 eth0 && [ -n "$DHCP4_IP" ] && result dhcp4 ok "addr=$DHCP4_IP/$DHCP4_MASK router=$DHCP4_ROUTER dns=$DHCP4_DNS mtu=$DHCP4_MTU" || result dhcp4 fail
if kit_wait_slaac6 15; then result slaac6 ok "addr=$SLAAC6_ADDR router=$SLAAC6_ROUTER"; else result slaac6 fail "$(ip -6 addr show dev eth0 | tr '\n' ' ')"; fi
ip -6 route | grep -q '^default via fe80' && result route6 ok "$(ip -6 route | grep ^default)" || result route6 fail "$(ip -6 route | tr '\n' ' ')"
kit_dhcpv6 eth0 && result dhcpv6 ok "addr=$DHCP6_ADDR dns=$DHCP6_DNS" || result dhcpv6 fail "$DHCP6_INFO"
kit_ping ping4 "$DHCP4_ROUTER"
kit_ping ping6 "$KIT_GW6"
summary
"#;

#[test]
fn guest_gets_addresses_and_pings_then_a_second_guest_does_too() {
    let _one = GUESTS.lock().unwrap_or_else(|e| e.into_inner());
    let work = Work::new("svc");
    build_image(&work.0, SERVICES_TEST);
    let net = HostWithRouter::new("e2e-svc");
    let sock = work.0.join("passt.sock");
    let sock_opt = format!("socket={}", sock.display());
    let driver = Driver::start_in(&net.host.path, &Driver::config(&[&sock_opt, "dns=192.0.2.53", "dns=2001:db8::53"])).unwrap();
    for round in 1..=2 {
        let guest = run_guest(&work.0, &sock, "kit.gw6=2001:db8::1");
        guest.assert_ok(&format!("guest {round}"), &["dhcp4", "slaac6", "route6", "dhcpv6", "ping4", "ping6"]);
        let dhcp4 = guest.detail("dhcp4");
        assert!(dhcp4.contains("addr=192.0.2.2/24") && dhcp4.contains("router=192.0.2.1"), "{dhcp4}");
        assert!(guest.detail("dhcpv6").contains("2001:db8::2"), "{}", guest.detail("dhcpv6"));
    }
    driver.stop().unwrap();
    assert!(!sock.exists());
}

fn status<'a>(results: &'a [(String, String, String)], name: &str) -> &'a str {
    results.iter().find(|r| r.0 == name).map(|r| r.1.as_str()).unwrap_or("missing")
}

/// Runs the guest kit's own example against our daemon (it starts it as
/// `-f -s SOCK -t 8080` in a namespace with a router beside it): DHCPv4,
/// SLAAC, DHCPv6, ping, HTTP downloads and UDP both IP versions, and the
/// host reaching the guest through the forwarded port. `netmode` is the
/// kit's NETMODE: `stream` (QEMU -netdev stream) or `qrap` (our qrap).
fn kit_example(netmode: &str) {
    let _one = GUESTS.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["examples-c", "qrap"] {
        let make = Command::new("make").args(["-s", "-C"]).arg(root.join(dir)).output().expect("make runs");
        assert!(make.status.success(), "make {dir}: {}", String::from_utf8_lossy(&make.stderr));
    }
    let path = format!("{}:{}", root.join("qrap").display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .arg(kit_dir().join("example-upstream-passt.sh"))
        .env("PASST", root.join("examples-c/passt-standalone"))
        .env("NETMODE", netmode)
        .env("PATH", path)
        .output()
        .expect("example runs");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    let results: Vec<(String, String, String)> = text
        .lines()
        .filter(|l| l.starts_with("GUEST-RESULT ") || l.starts_with("HOST-RESULT "))
        .filter_map(|l| {
            let mut w = l.splitn(4, ' ').skip(1);
            Some((w.next()?.to_string(), w.next()?.to_string(), w.next().unwrap_or("").to_string()))
        })
        .collect();
    let expected = [
        "link", "dhcp4", "dhcp4-dns", "slaac6", "dhcpv6", "ping4", "ping6", "http4", "http6", "udp4", "udp6",
        "udp4-echo", "udp6-echo", "inbound-tcp-v4", "inbound-tcp-v6", "summary",
    ];
    for name in expected {
        assert_eq!(status(&results, name), "ok", "{netmode}: {name}\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(out.status.success() && text.contains("ALL OK"), "{netmode}:\n{text}");
}

#[test]
fn kit_example_with_passt_standalone() {
    kit_example("stream");
}

#[test]
fn kit_example_through_our_qrap() {
    kit_example("qrap");
}
