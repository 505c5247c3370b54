//! passt-standalone's confinement (examples-c/confine.c, docs/security.md),
//! checked from outside on the running daemon:
//!
//! * `/proc/PID/status` once it listens: user and group after `--runas`
//!   (numbers and names) or the default "nobody", no supplementary groups,
//!   every capability set empty (bounding set included when started as
//!   root), `NoNewPrivs: 1`, `Seccomp: 2` (filter mode); started
//!   unprivileged with an ambient capability, it gives that up too.
//! * `--seccomp-selftest NAME`: each forbidden call (execve, ptrace, packet
//!   and raw sockets, open; on x86_64 getpid through the i386 and x32 ABIs,
//!   for the architecture check) kills the daemon with SIGSYS; socket(AF_UNIX)
//!   fails with EACCES instead; with `--no-seccomp` the same calls go
//!   through to the kernel (open succeeds, a raw socket fails with EPERM for
//!   want of the capability), which shows the filter is what refused them.
//! * Real traffic through the confined daemon in namespace mode (`--netns`,
//!   a tap in a namespace of ours, the daemon in a "host" namespace beside a
//!   router): DHCP (busybox udhcpc), ping v4/v6, TCP and UDP to the host's
//!   loopback through the gateway address both IP versions, and inbound TCP
//!   through a forwarded port; the daemon logs at debug level to a file and
//!   writes a capture file meanwhile, then exits 0 on SIGTERM (it was never
//!   killed by the filter). The QEMU guests of tests/c_programs.rs and
//!   tests/e2e_qemu.rs (the guest kit's full example) run the daemon with
//!   its default confinement as well.
//! * Detached with syslog (libvirt's way): messages logged once confined
//!   reach a /dev/log of ours (a private mount namespace); after the logger
//!   restarts, the daemon lives on and still cleans up on SIGTERM.
//! * The aarch64 variant compiles (when a cross compiler is installed).
//!
//! Needs root (skipped otherwise), make and cc, iproute2, python3, busybox,
//! socat, unshare and setpriv.

mod common;

use common::netns::{wait_until, HostWithRouter, TestNs};
use common::{build_standalone, is_root, run_limited, wait_output};
use common::tempdir::TempDir;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
const SIGSYS: i32 = 31;
const RUN_TIMEOUT: Duration = Duration::from_secs(20);


/// passt-standalone, built once for this binary.
fn daemon() -> &'static Path {
    static DAEMON: OnceLock<PathBuf> = OnceLock::new();
    DAEMON.get_or_init(|| build_standalone("confinement"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}


/// A daemon killed on drop (if a test fails half-way).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Daemon {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGTERM, then the exit status and stderr (when piped).
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let _ = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.0.try_wait().expect("try_wait") {
                break s;
            }
            assert!(start.elapsed() < RUN_TIMEOUT, "daemon ignored SIGTERM");
            thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        if let Some(mut e) = self.0.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        (status, err)
    }
}

fn run(cmd: &mut Command) -> Output {
    run_limited(cmd, RUN_TIMEOUT)
}

/// One line of /proc/PID/status, without its name ("" if absent).
fn status_field(pid: u32, name: &str) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let prefix = format!("{name}:");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.split_whitespace().collect::<Vec<_>>().join(" ")))
        .unwrap_or_default()
}

/// Every capability set empty, no new privileges, seccomp filter mode.
fn assert_confined(pid: u32, bounding_too: bool) {
    let mut sets = vec!["CapInh", "CapPrm", "CapEff", "CapAmb"];
    if bounding_too {
        sets.push("CapBnd");
    }
    for set in sets {
        assert_eq!(status_field(pid, set), "0000000000000000", "{set} of the confined daemon");
    }
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    assert_eq!(status_field(pid, "Seccomp"), "2", "seccomp filter mode");
}

/// Field `idx` of `name`'s line in `file` (/etc/passwd, /etc/group).
fn etc_field(file: &str, name: &str, idx: usize) -> Option<u32> {
    fs::read_to_string(file).ok()?.lines().find_map(|l| {
        let f: Vec<_> = l.split(':').collect();
        (f.first() == Some(&name)).then(|| f.get(idx)?.parse().ok()).flatten()
    })
}

/// `user`'s uid and primary gid.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    Some((etc_field("/etc/passwd", user, 2)?, etc_field("/etc/passwd", user, 3)?))
}

fn group_id(group: &str) -> Option<u32> {
    etc_field("/etc/group", group, 2)
}

/// Starts `passt-standalone -f -s SOCKET args...` (through `wrapper`, a
/// command and its arguments, if given) and waits until it listens.
fn start_listening(dir: &TempDir, wrapper: &[&str], args: &[&str]) -> Daemon {
    let sock = dir.join("passt.sock");
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(daemon());
            c
        }
        None => Command::new(daemon()),
    };
    cmd.args(["-f", "-q", "-s"]).arg(&sock).args(args);
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn daemon");
    let d = Daemon(child);
    // Its pid file would do too; the socket existing means passt_new() is
    // done, then a moment for the confinement that follows.
    assert!(wait_until(RUN_TIMEOUT, || sock.exists()), "daemon never listened");
    assert!(
        wait_until(RUN_TIMEOUT, || status_field(d.pid(), "Seccomp") == "2"),
        "no seccomp filter on the daemon: {}",
        fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap_or_default()
    );
    d
}

#[test]
fn runas_numbers_changes_ids_and_drops_everything() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = TempDir::new("confine-runas");
    let d = start_listening(&dir, &[], &["--runas", "65534:65534"]);
    assert_eq!(status_field(d.pid(), "Uid"), "65534 65534 65534 65534");
    assert_eq!(status_field(d.pid(), "Gid"), "65534 65534 65534 65534");
    assert_eq!(status_field(d.pid(), "Groups"), "", "supplementary groups left");
    assert_confined(d.pid(), true);
    // Exit through the filter: signal handler, passt_free(), unlink().
    let (status, err) = d.terminate();
    assert_eq!(status.code(), Some(0), "{status:?}: {err}");
    assert!(!dir.join("passt.sock").exists(), "socket file left behind");
}

#[test]
fn runas_names_and_the_nobody_default() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let (Some((uid, gid)), Some(daemon_gid)) = (user_ids("nobody"), group_id("daemon")) else {
        eprintln!("skipped: no user nobody or group daemon");
        return;
    };
    let dir = TempDir::new("confine-names");
    // A user and a group by name; the group is not the user's own.
    let d = start_listening(&dir, &[], &["--runas", "nobody:daemon"]);
    assert_eq!(status_field(d.pid(), "Uid"), format!("{uid} {uid} {uid} {uid}"));
    assert_eq!(status_field(d.pid(), "Gid"), format!("{daemon_gid} {daemon_gid} {daemon_gid} {daemon_gid}"));
    assert_confined(d.pid(), true);
    assert_eq!(d.terminate().0.code(), Some(0));

    // Root without --runas: nobody and nobody's group, as passt does.
    let dir = TempDir::new("confine-nobody");
    let d = start_listening(&dir, &[], &[]);
    assert_eq!(status_field(d.pid(), "Uid"), format!("{uid} {uid} {uid} {uid}"));
    assert_eq!(status_field(d.pid(), "Gid"), format!("{gid} {gid} {gid} {gid}"));
    assert_confined(d.pid(), true);
    assert_eq!(d.terminate().0.code(), Some(0));
}

/// The socket file: mode 0600, owned by the user the daemon became; another
/// user cannot connect, that user can (and becomes the guest).
#[test]
fn only_the_daemons_user_may_connect_to_its_socket() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let dir = TempDir::new("confine-perm");
    let sock = dir.join("passt.sock");
    let d = start_listening(&dir, &[], &["--runas", "65534:65534"]);
    let meta = fs::symlink_metadata(&sock).expect("socket file");
    assert_eq!(meta.mode() & 0o777, 0o600, "socket file mode");
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534), "socket file owner");
    let connect_as = |uid: &str| {
        run(Command::new("setpriv")
            .args([&format!("--reuid={uid}"), &format!("--regid={uid}"), "--clear-groups"])
            .args(["socat", "-u", "/dev/null"])
            .arg(format!("UNIX-CONNECT:{}", sock.display())))
    };
    let other = connect_as("65533");
    assert!(!other.status.success(), "another user connected");
    assert!(text(&other.stderr).contains("Permission denied"), "{}", text(&other.stderr));
    let same = connect_as("65534");
    assert!(same.status.success(), "the daemon's own user: {}", text(&same.stderr));
    assert_eq!(d.terminate().0.code(), Some(0));
}

/// Started unprivileged, but with CAP_NET_RAW in its ambient set (as a
/// service manager could give it): ids untouched, the capability gone.
#[test]
fn started_unprivileged_with_a_capability_it_gives_it_up() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let setpriv = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=+net_raw",
        "--ambient-caps=+net_raw",
    ];
    // The control: that environment really has the capability.
    let out = run(Command::new(setpriv[0]).args(&setpriv[1..]).args(["grep", "^CapEff", "/proc/self/status"]));
    assert!(text(&out.stdout).contains("0000000000002000"), "setpriv: {}{}", text(&out.stdout), text(&out.stderr));

    let dir = TempDir::new("confine-unpriv");
    let d = start_listening(&dir, &setpriv, &[]);
    assert_eq!(status_field(d.pid(), "Uid"), "65534 65534 65534 65534");
    // Without CAP_SETPCAP the bounding set cannot be cleared: not checked.
    assert_confined(d.pid(), false);
    assert_eq!(d.terminate().0.code(), Some(0));

    // And it cannot open a raw socket even with the filter off.
    let dir = TempDir::new("confine-unpriv-raw");
    let out = run(Command::new(setpriv[0]).args(&setpriv[1..]).arg(daemon()).args([
        "-f",
        "-q",
        "-s",
        dir.join("s").to_str().unwrap(),
        "--no-seccomp",
        "--seccomp-selftest",
        "raw-socket",
    ]));
    assert!(
        text(&out.stderr).contains("raw-socket returned -1 (Operation not permitted)"),
        "{:?} {}",
        out.status,
        text(&out.stderr)
    );
}

/// Runs `passt-standalone -f -q -s SOCK extra... --seccomp-selftest NAME`.
fn selftest(name: &str, extra: &[&str]) -> Output {
    let dir = TempDir::new("confine-selftest");
    let sock = dir.join("s");
    run(Command::new(daemon())
        .args(["-f", "-q", "-s", sock.to_str().unwrap()])
        .args(extra)
        .args(["--seccomp-selftest", name]))
}

#[test]
fn forbidden_system_calls_kill_the_daemon() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    for name in ["execve", "ptrace", "packet-socket", "raw-socket", "open"] {
        let out = selftest(name, &[]);
        assert_eq!(out.status.signal(), Some(SIGSYS), "{name}: {:?} {}", out.status, text(&out.stderr));
        assert!(!text(&out.stderr).contains("returned"), "{name}: {}", text(&out.stderr));
    }
    // socket(AF_UNIX): refused, not fatal (glibc's syslog() reconnects so).
    let out = selftest("unix-socket", &[]);
    assert_eq!(out.status.code(), Some(0), "{:?} {}", out.status, text(&out.stderr));
    assert!(text(&out.stderr).contains("unix-socket returned -1 (Permission denied)"), "{}", text(&out.stderr));

    // Without the filter the same calls reach the kernel.
    let out = selftest("open", &["--no-seccomp"]);
    assert_eq!(out.status.code(), Some(0), "{:?} {}", out.status, text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("open returned ") && err.contains("(success)"), "{err}");
    assert!(err.contains("running without a system call filter"), "{err}");
    let out = selftest("raw-socket", &["--no-seccomp"]);
    assert!(
        text(&out.stderr).contains("raw-socket returned -1 (Operation not permitted)"),
        "capabilities left: {}",
        text(&out.stderr)
    );

    // An allowed call (getpid) through another ABI dies too: the filter
    // checks the architecture first. Without the filter the i386 call
    // works where the kernel has IA-32 emulation.
    if cfg!(target_arch = "x86_64") {
        for name in ["i386-getpid", "x32-getpid"] {
            let out = selftest(name, &[]);
            assert_eq!(out.status.signal(), Some(SIGSYS), "{name}: {:?} {}", out.status, text(&out.stderr));
        }
        let out = selftest("i386-getpid", &["--no-seccomp"]);
        eprintln!("i386-getpid without the filter: {}", text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{:?} {}", out.status, text(&out.stderr));
    }

    // An unknown name is an error before anything starts.
    let out = selftest("reboot", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("invalid value 'reboot' for 'seccomp-selftest'"), "{}", text(&out.stderr));
}

/// A system logger for the syslog test: records each datagram sent to
/// $1 (a line each) in $2, touches $3 when ready, stops when $4 exists or
/// after 30 s.
const PY_SYSLOG: &str = r#"
import os, socket, sys, time
path, out, ready, stop = sys.argv[1:5]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(path); os.chmod(path, 0o666)
s.settimeout(0.1); end = time.time() + 30
open(ready, "w").close()
with open(out, "ab") as f:
    while time.time() < end and not os.path.exists(stop):
        try:
            f.write(s.recv(4096) + b"\n"); f.flush()
        except socket.timeout:
            pass
s.close(); os.unlink(path)
"#;

/// Detached (the default, as libvirt starts it), the daemon logs to syslog
/// through a connection opened before the filter. Here, in a private mount
/// namespace whose /dev is a tmpfs with a /dev/log of ours: messages logged
/// once confined arrive; then the logger restarts, the daemon cannot
/// reconnect (socket(AF_UNIX) fails with EACCES) but lives on, and a
/// SIGTERM still ends it cleanly (pid file removed by its own clean-up).
#[test]
fn detached_daemon_logs_to_syslog_and_survives_a_logger_restart() {
    if !is_root() || Command::new("unshare").arg("--version").output().is_err() {
        eprintln!("skipped: needs root and unshare");
        return;
    }
    let dir = TempDir::new("confine-syslog");
    let script = r#"
set -e
W=$1
wait_for() { n=0; while [ ! -e "$1" ] && [ $n -lt 250 ]; do sleep 0.02; n=$((n+1)); done; [ -e "$1" ]; }
touch "$W/null"; mount --bind /dev/null "$W/null"
mount -t tmpfs passt-test /dev
touch /dev/null; mount --bind "$W/null" /dev/null
python3 -c "$PY_SYSLOG" /dev/log "$W/log1" "$W/ready1" "$W/stop1" &
wait_for "$W/ready1"
"$DAEMON" -s "$W/sock" -P "$W/pid"
pid=$(cat "$W/pid")
socat -u /dev/null "UNIX-CONNECT:$W/sock"
sleep 0.3
echo "STATUS $(grep Seccomp: /proc/$pid/status | tr -s '	 ' ' ')"
touch "$W/stop1"; wait
python3 -c "$PY_SYSLOG" /dev/log "$W/log2" "$W/ready2" "$W/stop2" &
wait_for "$W/ready2"
socat -u /dev/null "UNIX-CONNECT:$W/sock"
sleep 0.3
[ -d /proc/$pid ] && echo "ALIVE after the logger restart"
kill -TERM $pid
n=0; while [ -d /proc/$pid ] && [ $n -lt 250 ]; do sleep 0.02; n=$((n+1)); done
[ -e "$W/pid" ] && echo "PIDFILE left" || echo "PIDFILE removed"
touch "$W/stop2"; wait
"#;
    let out = run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&dir.0)
        .env("PY_SYSLOG", PY_SYSLOG)
        .env("DAEMON", daemon()));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let log1 = fs::read_to_string(dir.join("log1")).unwrap_or_default();
    assert!(out.status.success(), "{stdout}\n{stderr}\nsyslog: {log1}");
    assert!(stdout.contains("STATUS Seccomp: 2"), "{stdout}");
    // Logged after the filter was installed: the guest came and went.
    assert!(log1.contains("passt-standalone[") && log1.contains("guest connected"), "syslog: {log1}");
    assert!(log1.contains("guest disconnected"), "syslog: {log1}");
    assert!(stdout.contains("ALIVE after the logger restart"), "{stdout}\n{stderr}");
    assert!(stdout.contains("PIDFILE removed"), "{stdout}\n{stderr}");
    eprintln!("after the restart the logger got: {:?}", fs::read_to_string(dir.join("log2")).unwrap_or_default());
}

/// The filter is written for x86_64 and aarch64: with a cross compiler at
/// hand (Debian's gcc-aarch64-linux-gnu), the aarch64 build is checked too
/// (compiled only: it cannot run here).
#[test]
fn confinement_compiles_for_aarch64() {
    if Command::new("aarch64-linux-gnu-gcc").arg("--version").output().map(|o| !o.status.success()).unwrap_or(true) {
        eprintln!("skipped: no aarch64-linux-gnu-gcc");
        return;
    }
    let dir = Path::new(MANIFEST_DIR).join("examples-c");
    for file in ["confine.c", "passt-standalone.c"] {
        let out = run(Command::new("aarch64-linux-gnu-gcc")
            .current_dir(&dir)
            .args(["-I../include", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE"])
            .args(["-fsyntax-only", file]));
        assert!(out.status.success(), "{file} for aarch64: {}", text(&out.stderr));
    }
}

/// Host side in the "host" namespace: TCP and UDP echo on the loopback
/// (both versions: a dual-stack wildcard socket), for 60 s at most.
const PY_ECHO: &str = r#"
import socket, sys, threading, time
port = int(sys.argv[1]); ready = sys.argv[2]
t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("::", port)); t.listen(8)
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
u.bind(("::", port))
def tcp(c):
    c.settimeout(30)
    while True:
        b = c.recv(65536)
        if not b: break
        c.sendall(b)
    c.close()
def tcp_loop():
    while True:
        c, _ = t.accept(); threading.Thread(target=tcp, args=(c,), daemon=True).start()
def udp_loop():
    while True:
        b, a = u.recvfrom(65536); u.sendto(b, a)
threading.Thread(target=tcp_loop, daemon=True).start()
threading.Thread(target=udp_loop, daemon=True).start()
open(ready, "w").close()
time.sleep(60)
"#;

/// Guest side: 1 MiB over TCP and back, one datagram and back, to the
/// gateway of each IP version (the daemon maps it to the host's loopback).
const PY_CLIENT: &str = r#"
import os, socket, sys
port = int(sys.argv[1])
for name, fam, gw in (("4", socket.AF_INET, "192.0.2.1"), ("6", socket.AF_INET6, "2001:db8::1")):
    data = os.urandom(1 << 20)
    c = socket.create_connection((gw, port), timeout=20)
    c.sendall(data); c.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        b = c.recv(65536)
        if not b: break
        got += b
    print("tcp%s %s %d" % (name, "ok" if got == data else "fail", len(got)), flush=True)
    u = socket.socket(fam, socket.SOCK_DGRAM); u.settimeout(2)
    d = os.urandom(1200); ok = False
    for _ in range(5):
        u.sendto(d, (gw, port))
        try:
            ok = u.recvfrom(65536)[0] == d
            break
        except socket.timeout:
            pass
    print("udp%s %s" % (name, "ok" if ok else "fail"), flush=True)
"#;

/// Guest side of inbound TCP: answers one connection with "pong " + what it got.
const PY_INBOUND: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1); s.settimeout(30)
open(sys.argv[2], "w").close()
c, _ = s.accept(); c.settimeout(10)
c.sendall(b"pong " + c.recv(100)); c.close()
"#;

/// The host side of inbound TCP: connects to the forwarded port on loopback.
const PY_CONNECT: &str = r#"
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
c.sendall(b"ping"); c.shutdown(socket.SHUT_WR)
print(c.recv(100).decode(), flush=True)
"#;

fn busybox_ping(ns: &TestNs, args: &[&str]) -> bool {
    let mut a = vec!["ping", "-c", "1", "-W", "2"];
    a.extend_from_slice(args);
    (0..3).any(|_| ns.exec("busybox", &a).status.success())
}

#[test]
fn dhcp_ping_tcp_udp_through_the_confined_daemon_in_a_namespace() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let net = HostWithRouter::new("conf");
    let guest = TestNs::new("conf-g");
    let dir = TempDir::new("confine-traffic");
    let (log, pcap) = (dir.join("daemon.log"), dir.join("frames.pcap"));

    // Started as root in the host namespace: it opens the tap in the guest
    // namespace, configures it, then becomes nobody and confines itself.
    let child = net
        .host
        .command(daemon().to_str().unwrap())
        .args(["-f", "-d", "--netns"])
        .arg(&guest.path)
        .args(["--ns-ifname", "tap0", "--config-net", "-t", "8080", "-l"])
        .arg(&log)
        .arg("-p")
        .arg(&pcap)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the daemon");
    let d = Daemon(child);
    assert!(
        wait_until(RUN_TIMEOUT, || fs::read_to_string(&log).unwrap_or_default().contains("confined:")),
        "never confined: {}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    assert_confined(d.pid(), true);
    let nobody = user_ids("nobody").map(|(uid, _)| uid).unwrap_or(65534);
    assert_eq!(status_field(d.pid(), "Uid"), format!("{nobody} {nobody} {nobody} {nobody}"));

    // DHCP: busybox udhcpc reports the lease to a script that only prints it.
    let script = dir.join("udhcpc.sh");
    fs::write(&script, "#!/bin/sh\n[ \"$1\" = bound ] && echo \"LEASE ip=$ip router=$router\"\nexit 0\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let out = guest.exec(
        "busybox",
        &["udhcpc", "-i", "tap0", "-n", "-q", "-f", "-t", "3", "-T", "1", "-s", script.to_str().unwrap()],
    );
    assert!(
        text(&out.stdout).contains("LEASE ip=192.0.2.2 router=192.0.2.1"),
        "udhcpc: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // ICMP echo through ping sockets, opened as nobody under the filter.
    assert!(busybox_ping(&guest, &["192.0.2.1"]), "ping 192.0.2.1");
    assert!(wait_until(Duration::from_secs(5), || busybox_ping(&guest, &["-6", "2001:db8::1"])), "ping -6 2001:db8::1");

    // TCP and UDP to the host namespace's loopback through the gateway.
    let ready = dir.join("echo.ready");
    let mut echo = net.host.command("python3");
    let echo =
        Daemon(echo.args(["-c", PY_ECHO, "5000"]).arg(&ready).stdin(Stdio::null()).spawn().expect("echo server"));
    assert!(wait_until(RUN_TIMEOUT, || ready.exists()), "echo server not ready");
    let out = wait_output(
        guest
            .command("python3")
            .args(["-c", PY_CLIENT, "5000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        RUN_TIMEOUT,
        "guest client",
    );
    let got = text(&out.stdout);
    for want in ["tcp4 ok 1048576", "udp4 ok", "tcp6 ok 1048576", "udp6 ok"] {
        assert!(got.contains(want), "{want}: {got}{}", text(&out.stderr));
    }
    drop(echo);

    // Inbound: host loopback port 8080 forwarded to the guest.
    let ready = dir.join("inbound.ready");
    let inbound = Daemon(
        guest.command("python3").args(["-c", PY_INBOUND, "8080"]).arg(&ready).stdin(Stdio::null()).spawn().unwrap(),
    );
    assert!(wait_until(RUN_TIMEOUT, || ready.exists()), "guest listener not ready");
    let out = run(net.host.command("python3").args(["-c", PY_CONNECT, "8080"]));
    assert_eq!(text(&out.stdout).trim(), "pong ping", "inbound: {}", text(&out.stderr));
    drop(inbound);

    // Still confined, still alive: SIGTERM ends it normally.
    assert_confined(d.pid(), true);
    let (status, err) = d.terminate();
    assert_eq!(status.code(), Some(0), "{status:?} {err}\n{}", fs::read_to_string(&log).unwrap_or_default());
    let pcap_meta = fs::metadata(&pcap).expect("capture file");
    assert!(pcap_meta.len() > 1 << 20, "capture file only {} bytes", pcap_meta.len());
    // The guest's traffic is readable by the daemon's starter only.
    assert_eq!(pcap_meta.permissions().mode() & 0o077, 0, "capture file mode");
}
