//! The standalone daemon with real QEMU guests, started the ways its
//! callers start passt:
//!
//! * as libvirt does: `--one-off --socket PATH --mac-addr MAC --mtu N
//!   --address A --netmask N --tcp-ports SPEC --udp-ports SPEC --log-file F`,
//!   detached (the parent exits 0 once the socket listens); the guest uses
//!   QEMU's `-netdev stream`; the daemon ends with the guest and leaves no
//!   files behind;
//! * as QEMU's `-netdev passt` does: `--quiet --pid FILE --fd 3` on one end
//!   of a socketpair whose other end is the guest's `-netdev socket,fd=`;
//!   stopped with SIGTERM, the pid file goes;
//! * as a long-running daemon (`-s PATH -P FILE`): a guest, then another
//!   one after the first powered off (a reboot of the VM reconnects the
//!   same way), then SIGTERM.
//!
//! Each guest runs the kit's default test (DHCPv4, SLAAC, DHCPv6, ping v4
//! and v6, HTTP downloads from the host side, UDP both IP versions, the
//! host reaching the guest's TCP listener through `-t`) plus the host
//! reaching a UDP responder in the guest through `-u`.

mod common;

use common::kit::{build_image, kit_dir, run_guest, run_guest_on, GuestRun, Work};
use common::netns::{wait_until, ChildGuard, HostWithRouter};
use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One guest at a time across the tests of this file (TCG on two cores).
static GUESTS: Mutex<()> = Mutex::new(());

/// The guest's own checks, added in front of the kit's default test: a
/// UDP responder on port 5000 (v4 and v6) that leaves a mark when asked.
const UDP_RESPONDER: &str = r#"
socat UDP4-RECVFROM:5000,fork SYSTEM:'touch /run/udp-v4; echo pong4' &
socat UDP6-RECVFROM:5000,ipv6only=1,fork SYSTEM:'touch /run/udp-v6; echo pong6' &
"#;

/// After the default test's TCP checks, before its summary.
const UDP_WAIT: &str = r#"
for tag in v4 v6; do
	w=200; while [ "$w" -gt 0 ] && [ ! -e /run/udp-$tag ]; do sleep 0.1; w=$((w - 1)); done
	if [ -e /run/udp-$tag ]; then result inbound-udp-$tag ok port=5000; else result inbound-udp-$tag fail "nothing from the host"; fi
done
"#;

/// Everything the guest must report as ok.
const EXPECTED: &[&str] = &[
    "link", "dhcp4", "slaac6", "dhcpv6", "ping4", "ping6", "http4", "http6", "udp4", "udp6", "udp4-echo",
    "udp6-echo", "inbound-tcp-v4", "inbound-tcp-v6", "inbound-udp-v4", "inbound-udp-v6", "summary",
];

/// The kit's default test with our UDP additions spliced in.
fn guest_script() -> String {
    let default = std::fs::read_to_string(kit_dir().join("default-test.sh")).expect("kit default-test.sh");
    let body = default.trim_end().strip_suffix("summary").expect("default-test.sh ends with summary");
    let body = body.replacen(". /lib/kit.sh\n", &format!(". /lib/kit.sh\n{UDP_RESPONDER}"), 1);
    format!("{body}{UDP_WAIT}summary\n")
}

fn daemon_path() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let make = Command::new("make").args(["-s", "-C"]).arg(root.join("examples-c")).output().expect("make runs");
    assert!(make.status.success(), "make examples-c: {}", String::from_utf8_lossy(&make.stderr));
    root.join("examples-c/passt-standalone")
}

/// The host side of one guest run, in the host namespace: the kit's HTTP
/// and UDP server on loopback, its inbound TCP client (v4 and v6) and a
/// UDP knocker for the forwarded port 10000 (guest port 5000).
struct HostSide {
    _server: ChildGuard,
    connects: Vec<ChildGuard>,
    knocks: Vec<Knock>,
}

impl HostSide {
    fn start(net: &HostWithRouter, work: &Path) -> HostSide {
        let tools = kit_dir().join("host-tools.py");
        let ready = work.join("server-ready");
        let _ = std::fs::remove_file(&ready);
        let www = work.join("www");
        let server = net
            .host
            .command("python3")
            .arg(&tools)
            .args(["serve", "--dir"])
            .arg(&www)
            .arg("--ready-file")
            .arg(&ready)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("host-tools.py serve");
        let server = ChildGuard(server);
        assert!(wait_until(Duration::from_secs(20), || ready.exists()), "host-tools.py serve never got ready");
        let connects = [("127.0.0.1", "v4"), ("::1", "v6")]
            .iter()
            .map(|(host, tag)| {
                let child = net
                    .host
                    .command("python3")
                    .arg(&tools)
                    .args(["connect", "--host", host, "--port", "8080", "--tag", tag, "--timeout", "100"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("host-tools.py connect");
                ChildGuard(child)
            })
            .collect();
        let knocks = ["127.0.0.1:10000", "[::1]:10000"]
            .iter()
            .map(|target| {
                let bind = if target.starts_with('[') { "[::1]:0" } else { "127.0.0.1:0" };
                let sock = net.host.run(move || UdpSocket::bind(bind)).expect("bind in the host namespace");
                Knock::start(sock, target.parse().unwrap())
            })
            .collect();
        HostSide { _server: server, connects, knocks }
    }

    /// Waits for the inbound TCP clients; returns their `HOST-RESULT` lines
    /// and the UDP answers (or None).
    fn finish(self) -> (String, Vec<Option<String>>) {
        let mut lines = String::new();
        for mut c in self.connects {
            // Its output ends when it does (it gives up after --timeout).
            if let Some(mut out) = c.stdout.take() {
                let _ = out.read_to_string(&mut lines);
            }
        }
        (lines, self.knocks.into_iter().map(Knock::finish).collect())
    }
}

/// Sends "ping" to a target every half second until an answer comes.
struct Knock {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Option<String>>>,
}

impl Knock {
    fn start(sock: UdpSocket, target: SocketAddr) -> Knock {
        sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while !flag.load(Ordering::Relaxed) {
                let _ = sock.send_to(b"ping", target);
                if let Ok((n, _)) = sock.recv_from(&mut buf) {
                    return Some(String::from_utf8_lossy(&buf[..n]).trim().to_string());
                }
            }
            None
        });
        Knock { stop, thread: Some(thread) }
    }

    fn finish(mut self) -> Option<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).flatten()
    }
}

impl Drop for Knock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Checks a guest run and its host side.
fn check(what: &str, guest: &GuestRun, host: HostSide) {
    let (host_lines, udp) = host.finish();
    guest.assert_ok(what, EXPECTED);
    for tag in ["v4", "v6"] {
        assert!(host_lines.contains(&format!("HOST-RESULT inbound-tcp-{tag} ok")), "{what}: {host_lines}");
    }
    assert_eq!(udp, vec![Some("pong4".to_string()), Some("pong6".to_string())], "{what}: UDP through -u");
}

/// Kills the daemon named in a pid file if a test fails before stopping it.
struct PidFileGuard(PathBuf);

impl PidFileGuard {
    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(&self.0).ok()?.trim().parse().ok()
    }
}

impl Drop for PidFileGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }
}

fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| !s.contains(") Z ")).unwrap_or(false)
}

fn terminate(pid: u32) {
    let ok = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill").success();
    assert!(ok, "kill -TERM {pid}");
    assert!(wait_until(Duration::from_secs(10), || !running(pid)), "daemon {pid} ignored SIGTERM");
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

const APPEND: &str = "kit.gw6=2001:db8::1";

#[test]
fn libvirt_style_daemon_serves_a_guest_and_exits_with_it() {
    let _one = GUESTS.lock().unwrap_or_else(|e| e.into_inner());
    let daemon = daemon_path();
    let work = Work::new("libvirt");
    build_image(&work.0, &guest_script());
    let net = HostWithRouter::new("e2e-lv");
    let sock = work.0.join("passt.sock");
    let pidfile = work.0.join("passt.pid");
    let log = work.0.join("passt.log");
    let guard = PidFileGuard(pidfile.clone());
    #[rustfmt::skip]
    let out = net.host.command(daemon.to_str().unwrap())
        .args(["--one-off", "--socket"]).arg(&sock)
        .args(["--mac-addr", "52:54:00:12:34:56", "--mtu", "9000"])
        .args(["--address", "192.0.2.2", "--netmask", "24"])
        .args(["--tcp-ports", "8080", "--udp-ports", "10000:5000"])
        .arg("--log-file").arg(&log)
        .arg("--pid").arg(&pidfile)
        .stdin(Stdio::null())
        .output()
        .expect("daemon starts");
    assert_eq!(out.status.code(), Some(0), "the parent exits 0 once listening: {}", text(&out));
    // (Not connecting to check: with --one-off, that would be the guest.)
    assert!(sock.exists(), "socket not there after the parent exited");
    let pid = guard.pid().expect("pid file");
    assert!(running(pid));

    let host = HostSide::start(&net, &work.0);
    let guest = run_guest(&work.0, &sock, APPEND);
    check("libvirt-style", &guest, host);
    assert!(guest.detail("dhcp4").contains("mtu=9000"), "{}", guest.detail("dhcp4"));
    assert!(guest.detail("dhcp4").contains("addr=192.0.2.2/24"), "{}", guest.detail("dhcp4"));

    // --one-off: the guest powered off, the daemon goes with it.
    assert!(wait_until(Duration::from_secs(10), || !running(pid)), "--one-off daemon still running");
    assert!(!sock.exists(), "socket file left behind");
    assert!(!pidfile.exists(), "pid file left behind");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!logged.is_empty(), "nothing in the log file");
}

#[test]
fn qemu_netdev_passt_style_daemon_serves_a_guest_until_sigterm() {
    let _one = GUESTS.lock().unwrap_or_else(|e| e.into_inner());
    let daemon = daemon_path();
    let work = Work::new("qemu");
    build_image(&work.0, &guest_script());
    let net = HostWithRouter::new("e2e-qp");
    let pidfile = work.0.join("passt.pid");
    // QEMU creates the pid file (empty) before starting passt.
    std::fs::write(&pidfile, "").unwrap();
    let guard = PidFileGuard(pidfile.clone());
    let (guest_end, daemon_end) = UnixStream::pair().expect("socketpair");
    // The daemon's end goes in as stdin and the shell moves it to fd 3.
    let script = format!("exec 3<&0 </dev/null; exec {} \"$@\"", daemon.display());
    #[rustfmt::skip]
    let out = net.host.command("sh")
        .args(["-c", &script, "passt"])
        .args(["--quiet", "--pid"]).arg(&pidfile)
        .args(["--fd", "3", "--tcp-ports", "8080", "--udp-ports", "10000:5000"])
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(daemon_end)))
        .output()
        .expect("daemon starts");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(out.stdout.is_empty(), "--quiet printed: {}", text(&out));
    let pid = guard.pid().expect("pid file");
    assert!(running(pid));

    let host = HostSide::start(&net, &work.0);
    let guest = run_guest_on(&work.0, guest_end, APPEND);
    check("-netdev passt style", &guest, host);

    terminate(pid);
    assert!(!pidfile.exists(), "pid file left behind");
}

#[test]
fn daemon_serves_a_second_guest_after_the_first_powers_off() {
    let _one = GUESTS.lock().unwrap_or_else(|e| e.into_inner());
    let daemon = daemon_path();
    let work = Work::new("again");
    build_image(&work.0, &guest_script());
    let net = HostWithRouter::new("e2e-re");
    let sock = work.0.join("passt.sock");
    let pidfile = work.0.join("passt.pid");
    let guard = PidFileGuard(pidfile.clone());
    #[rustfmt::skip]
    let out = net.host.command(daemon.to_str().unwrap())
        .arg("-s").arg(&sock).arg("-P").arg(&pidfile)
        .args(["-t", "8080", "-u", "10000:5000"])
        .stdin(Stdio::null())
        .output()
        .expect("daemon starts");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let pid = guard.pid().expect("pid file");

    for round in 1..=2 {
        let host = HostSide::start(&net, &work.0);
        let guest = run_guest(&work.0, &sock, APPEND);
        check(&format!("guest {round}"), &guest, host);
        assert!(running(pid), "the daemon went away with guest {round}");
    }
    terminate(pid);
    assert!(!sock.exists(), "socket file left behind");
    assert!(!pidfile.exists(), "pid file left behind");
}
