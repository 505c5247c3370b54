//! UDP end to end with a real QEMU guest (the kit in ../shared/guest): the
//! guest asks a DNS-answering echo server on the host's loopback through
//! the gateway address (busybox nslookup, socat), asks the host's resolver
//! (on loopback too) through the dns-forward address it got by DHCP, and
//! answers datagrams the host sends to a forwarded port (`-u`).
//!
//! These need the engine to hand UDP to `flow::udp::Udp` (guest datagrams,
//! `UdpFlow`/`UdpListen` events, flush after each guest batch, timers,
//! `listen` with the `-u` specs).

mod common;

use common::driver::Driver;
use common::kit::{kit_dir, Work};
use common::netns::HostWithRouter;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const GUEST_TEST: &str = r#"#!/bin/sh
. /lib/kit.sh
kit_dhcp4 eth0 && [ -n "$DHCP4_IP" ] && result dhcp4 ok "dns=$DHCP4_DNS" || result dhcp4 fail
kit_wait_slaac6 15 && result slaac6 ok "$SLAAC6_ADDR" || result slaac6 fail
# Forwarded port: answer whatever comes, from port 5000.
socat UDP4-RECVFROM:5000,fork SYSTEM:'echo pong4' &
socat UDP6-RECVFROM:5000,ipv6only=1,fork SYSTEM:'echo pong6' &
kit_udp_dns udp4 "$DHCP4_ROUTER" 5353 A 198.51.100.7
kit_udp_dns udp6 "$KIT_GW6" 5353 AAAA 2001:db8:ffff::7
kit_udp_echo udp4-echo "$DHCP4_ROUTER" 5353 2000
kit_udp_echo udp6-echo "$KIT_GW6" 5353 2000
kit_udp_dns dns4 "$DHCP4_DNS" 53 A 198.51.100.7
# Give the host side time to reach the listeners.
sleep 6
summary
"#;

/// A DNS answer for a query (198.51.100.7 / 2001:db8:ffff::7), an echo of
/// anything else (what the kit's host-tools.py server does).
fn dns_or_echo(q: &[u8]) -> Vec<u8> {
    let is_query = q.len() > 12 && q[2] & 0x80 == 0 && q[4..6] == [0, 1];
    if !is_query {
        return q.to_vec();
    }
    let mut i = 12;
    while i < q.len() && q[i] != 0 {
        i += 1 + usize::from(q[i]);
    }
    if i + 5 > q.len() {
        return q.to_vec();
    }
    let qtype = u16::from_be_bytes([q[i + 1], q[i + 2]]);
    let mut r = q[..i + 5].to_vec();
    r[2] = 0x81;
    r[3] = 0x80;
    r[4..12].copy_from_slice(&[0, 1, 0, 1, 0, 0, 0, 0]);
    r.extend_from_slice(&[0xc0, 12]);
    if qtype == 28 {
        r.extend_from_slice(&[0, 28, 0, 1, 0, 0, 0, 60, 0, 16]);
        r.extend_from_slice(&"2001:db8:ffff::7".parse::<std::net::Ipv6Addr>().unwrap().octets());
    } else {
        r.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 51, 100, 7]);
    }
    r
}

/// Runs `f` in a thread until dropped.
struct Bg {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Option<String>>>,
}

impl Bg {
    fn start(f: impl FnOnce(&AtomicBool) -> Option<String> + Send + 'static) -> Bg {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        Bg { stop, thread: Some(std::thread::spawn(move || f(&flag))) }
    }

    fn finish(mut self) -> Option<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).flatten()
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(sock: UdpSocket) -> Bg {
    sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    Bg::start(move |stop| {
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                let _ = sock.send_to(&dns_or_echo(&buf[..n]), from);
            }
        }
        None
    })
}

/// Sends to `target` every half second until an answer comes; the answer
/// and where it came from.
fn knock(sock: UdpSocket, target: SocketAddr) -> Bg {
    sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    Bg::start(move |stop| {
        let mut buf = [0u8; 64];
        while !stop.load(Ordering::Relaxed) {
            let _ = sock.send_to(b"ping", target);
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                return Some(format!("{} from {from}", String::from_utf8_lossy(&buf[..n]).trim()));
            }
        }
        None
    })
}

#[test]
fn qemu_guest_udp_to_host_loopback_dns_forward_and_inbound() {
    let work = Work::new("udp");
    let script = work.0.join("test.sh");
    std::fs::write(&script, GUEST_TEST).unwrap();
    let img = work.0.join("img");
    let out = Command::new(kit_dir().join("build-initramfs.sh"))
        .args(["--add-bin", "socat"])
        .arg(&img)
        .arg(&script)
        .output()
        .expect("build-initramfs.sh runs");
    assert!(out.status.success(), "image: {}", String::from_utf8_lossy(&out.stderr));

    let net = HostWithRouter::new("udp-qemu");
    let in_host = |bind: &str| {
        let b = bind.to_string();
        net.host.run(move || UdpSocket::bind(b.as_str())).unwrap()
    };
    let _s4 = serve(in_host("127.0.0.1:5353"));
    let _s6 = serve(in_host("[::1]:5353"));
    let _resolver = serve(in_host("127.0.0.53:53"));
    let sock = work.0.join("passt.sock");
    let sock_opt = format!("socket={}", sock.display());
    let opts = [sock_opt.as_str(), "dns=127.0.0.53", "dns-forward=192.0.2.53", "udp-ports=10000:5000"];
    let driver = Driver::start_in(&net.host.path, &Driver::config(&opts)).expect("instance starts");
    let k4 = knock(in_host("127.0.0.1:0"), "127.0.0.1:10000".parse().unwrap());
    let k6 = knock(in_host("[::1]:0"), "[::1]:10000".parse().unwrap());

    let out = Command::new(kit_dir().join("run-guest.sh"))
        .arg("--dir")
        .arg(&img)
        .arg("--socket")
        .arg(&sock)
        .args(["--timeout", "120", "--append", "kit.gw6=2001:db8::1"])
        .output()
        .expect("run-guest.sh runs");
    let console = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    let (in4, in6) = (k4.finish(), k6.finish());
    driver.stop().unwrap();
    let status = |name: &str| {
        console
            .lines()
            .filter_map(|l| l.find("GUEST-RESULT ").map(|i| &l[i + 13..]))
            .find(|l| l.split(' ').next() == Some(name))
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("missing")
            .to_string()
    };
    for name in ["dhcp4", "slaac6", "udp4", "udp6", "udp4-echo", "udp6-echo", "dns4"] {
        assert_eq!(status(name), "ok", "{name}\n{console}");
    }
    assert!(console.contains("dns=192.0.2.53"), "the guest was told the forward address\n{console}");
    assert_eq!((in4.as_deref(), in6.as_deref()), (Some("pong4 from 127.0.0.1:10000"), Some("pong6 from [::1]:10000")), "{console}");
}
