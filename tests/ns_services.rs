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

/// Waits up to 15 s for a global address from our prefix and a default
/// route through a link-local router on `tap0`; panics with what is there
/// otherwise. Returns (`ip -6 addr`, `ip -6 route`).
fn wait_for_slaac(guest: &TestNs) -> (String, String) {
    let got = wait_until(Duration::from_secs(15), || {
        let a = guest.ip(&["-6", "addr", "show", "dev", "tap0", "scope", "global"]);
        let r = guest.ip(&["-6", "route", "show", "default"]);
        a.contains("2001:db8::") && !a.contains("tentative") && r.contains("via fe80::")
    });
    let addrs = guest.ip(&["-6", "addr", "show", "dev", "tap0"]);
    let routes = guest.ip(&["-6", "route"]);
    assert!(got, "SLAAC did not complete:\n{addrs}\n{routes}");
    (addrs, routes)
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
    let s = setup("svc-ping", &["config-net"]);
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

#[test]
fn kernel_slaac_takes_address_and_default_route_from_our_ra() {
    let s = setup("svc-slaac", &["dns=2001:db8::53"]);
    // The tap is up (always, also without config-net); the namespace's
    // kernel solicits a router and configures itself from our RA.
    let (addrs, routes) = wait_for_slaac(&s.guest);
    assert!(addrs.contains("/64"), "{addrs}");
    // The default route points at our link-local address (from 9a:55:9a:55:9a:55).
    assert!(routes.contains("default via fe80::9a55:9aff:fe55:9a55"), "{routes}");
    assert!(ping_ok(&s.guest, &["-6", "2001:db8::1"]), "ping -6 the gateway after SLAAC");
}

/// libvirt passes the guest's own MAC as `--mac-addr`: both ends of the
/// link then have the same MAC, and SLAAC must still give the guest its
/// address and a default route through us.
#[test]
fn slaac_works_when_the_guest_has_our_mac() {
    let mac = "52:54:00:12:34:56";
    let s = setup("svc-samemac", &[&format!("mac-addr={mac}")]);
    s.guest.ip(&["link", "set", "tap0", "down"]);
    s.guest.ip(&["link", "set", "tap0", "address", mac]);
    s.guest.ip(&["link", "set", "tap0", "up"]);
    wait_for_slaac(&s.guest);
    assert!(ping_ok(&s.guest, &["-6", "2001:db8::1"]), "ping -6 the gateway after SLAAC");
}

/// A DHCPv6 Solicit then Request from a real UDP socket in the namespace,
/// as the guest kit's client does (client id DUID-LL, IA_NA with IAID 1,
/// option request for DNS).
#[test]
fn dhcpv6_solicit_and_request_get_the_address() {
    use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
    let s = setup("svc-dhcpv6", &["dns=2001:db8::53", "config-net"]);
    let ifindex = s.guest.ifindex("tap0");
    let reply = s
        .guest
        .run(move || {
            let sock = UdpSocket::bind(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 546, 0, 0))?;
            sock.set_read_timeout(Some(Duration::from_secs(2)))?;
            let server = SocketAddrV6::new("ff02::1:2".parse().unwrap(), 547, 0, ifindex);
            let client_id = [0u8, 1, 0, 10, 0, 3, 0, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56];
            let ia_na = [0u8, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
            let tail = [0u8, 8, 0, 2, 0, 0, 0, 6, 0, 2, 0, 23];
            let exchange = |msg: &[u8]| -> std::io::Result<Vec<u8>> {
                let mut buf = [0u8; 1500];
                for _ in 0..5 {
                    sock.send_to(msg, server)?;
                    if let Ok((n, _)) = sock.recv_from(&mut buf) {
                        return Ok(buf[..n].to_vec());
                    }
                }
                Err(std::io::Error::other("no DHCPv6 reply"))
            };
            let mut solicit = vec![1u8, 0xa1, 0xb2, 0xc3];
            solicit.extend_from_slice(&client_id);
            solicit.extend_from_slice(&ia_na);
            solicit.extend_from_slice(&tail);
            let adv = exchange(&solicit)?;
            let server_id = find_option(&adv[4..], 2).ok_or_else(|| std::io::Error::other("no server id"))?;
            let mut request = vec![3u8, 0xd4, 0xe5, 0xf6];
            request.extend_from_slice(&client_id);
            request.extend_from_slice(&[0, 2, 0, server_id.len() as u8]);
            request.extend_from_slice(&server_id);
            request.extend_from_slice(&ia_na);
            request.extend_from_slice(&tail);
            Ok((adv, exchange(&request)?))
        })
        .expect("DHCPv6 exchange");
    let (adv, rep) = reply;
    assert_eq!(adv[0], 2, "ADVERTISE");
    assert_eq!(&adv[1..4], &[0xa1, 0xb2, 0xc3], "transaction id echoed");
    assert_eq!(rep[0], 7, "REPLY");
    let ia = find_option(&rep[4..], 3).expect("IA_NA in the reply");
    let addr = find_option(&ia[12..], 5).expect("IA address");
    assert_eq!(Ipv6Addr::from(<[u8; 16]>::try_from(&addr[..16]).unwrap()), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
    let dns = find_option(&rep[4..], 23).expect("DNS servers option");
    assert_eq!(&dns[..16], &"2001:db8::53".parse::<Ipv6Addr>().unwrap().octets());
}

/// The value of the first DHCPv6 option `code` in `opts`.
fn find_option(mut opts: &[u8], code: u16) -> Option<Vec<u8>> {
    while opts.len() >= 4 {
        let c = u16::from_be_bytes([opts[0], opts[1]]);
        let l = usize::from(u16::from_be_bytes([opts[2], opts[3]]));
        let v = opts.get(4..4 + l)?;
        if c == code {
            return Some(v.to_vec());
        }
        opts = &opts[4 + l..];
    }
    None
}

/// An ICMP echo request frame from the guest (10.0.2.15) to `dst`.
fn echo_frame(dst: [u8; 4], id: u16) -> Vec<u8> {
    let mut f = vec![0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x00];
    let mut icmp = vec![8u8, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&[0, 1]);
    icmp.extend_from_slice(b"ping payload");
    let c = passt::wire::checksum::checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0u8; 20];
    passt::wire::ipv4::emit(&mut ip, [10, 0, 2, 15].into(), dst.into(), 1, icmp.len(), 64);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&icmp);
    f
}

#[test]
fn ping_sockets_refused_gives_one_clear_log_line_and_no_crash() {
    use passt::engine::Instance;
    use std::sync::{Arc, Mutex};
    let ns = TestNs::new("svc-noping");
    // No group may open ping sockets in this namespace.
    ns.exec_ok("sysctl", &["-qw", "net.ipv4.ping_group_range=1 0"]);
    let lines: Arc<Mutex<Vec<String>>> = Default::default();
    let sink_lines = lines.clone();
    let stats = ns
        .run(move || {
            let sink = passt::log::Sink {
                func: Some(Arc::new(move |_level, msg: &str| sink_lines.lock().unwrap().push(msg.to_string()))),
                max_level: 7,
            };
            let _log = passt::log::SinkGuard::enter(sink);
            let cfg = Driver::config(&["address=10.0.2.15", "netmask=24", "gateway=10.0.2.2", "ipv4-only", "frames"]);
            let mut inst = Instance::new(&cfg).map_err(std::io::Error::other)?;
            inst.set_frame_output(Box::new(|f: &[std::io::IoSlice<'_>]| f.len())).unwrap();
            for id in 0..3 {
                inst.frame_input(&echo_frame([10, 0, 2, 2], id), common::driver::now()).unwrap();
            }
            Ok(inst.stats().dropped(passt::stats::Drop::Limit))
        })
        .unwrap();
    assert_eq!(stats, 3, "each refused echo request is counted");
    let lines = lines.lock().unwrap();
    let told: Vec<_> = lines.iter().filter(|l| l.contains("ping_group_range")).collect();
    assert_eq!(told.len(), 1, "one log line, naming the sysctl: {lines:?}");
}

/// `pcap`: every frame both ways, in a file tcpdump reads.
#[test]
fn pcap_capture_has_both_directions_and_tcpdump_reads_it() {
    let file = std::env::temp_dir().join(format!("passt-svc-{}.pcap", std::process::id()));
    let pcap = format!("pcap={}", file.display());
    {
        let s = setup("svc-pcap", &[&pcap]);
        let seen = udhcpc(&s.guest, &[]);
        assert!(seen.contains("bound"), "{seen}");
    }
    let out = std::process::Command::new("tcpdump").args(["-nn", "-e", "-r"]).arg(&file).output().expect("tcpdump runs");
    let _ = std::fs::remove_file(&file);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "tcpdump: {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("BOOTP/DHCP, Request"), "guest's DHCP request captured:\n{text}");
    assert!(text.contains("192.0.2.1.67 > ") && text.contains("BOOTP/DHCP, Reply"), "our reply captured:\n{text}");
    assert!(text.contains("router advertisement"), "our RA captured:\n{text}");
}
