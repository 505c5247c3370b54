//! The C programs, built and run: `examples-c/` (passt-standalone and
//! api-test, linked against the libpasst.so cargo built for this run) and
//! `qrap/`.
//!
//! * api-test: the C API from C (configuration, errors, NULL handling);
//!   with `--live`, instances too: frames, socket, batched input, stats,
//!   back-pressure and `passt_frame_output_ready`, events, a run-time TCP
//!   forward on 127.0.0.1, and the panic boundary.
//! * passt-standalone: every option in valid forms (parsed, then `--help`
//!   ends the run before any instance exists) and invalid forms (exit 1,
//!   the option and value named on stderr), `--help`/`--version`, start-up
//!   failures reported by the parent when detaching, pid file removed on
//!   failure, the default `/tmp/passt_N.socket` probe (in a private mount
//!   namespace with its own /tmp).
//! * qrap: QEMU command lines rewritten as expected, checked by exec'ing a
//!   fake QEMU (a shell script) that prints its arguments and writes through
//!   the inherited fd to a UNIX listener of the test; its errors.
//! * the daemon started the way libvirt and QEMU's `-netdev passt` start
//!   passt, SIGTERM clean-up, `api-test --live`, and real guests booted
//!   through qrap (against our daemon and against Debian's passt).
//!
//! Needs cc and make; the namespace tests need root (skipped otherwise) and
//! python3 (for the listeners inside the namespace).

mod common;

use common::tempdir::TempDir;
use common::{is_root, make, run_limited, wait_output};
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// Longest any program here may take before the test calls it hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(20);

/// Where cargo put libpasst.so for this build: the test executable lives in
/// `<target dir>/<profile>/deps/`, next to which the library is. Falls back
/// to `$CARGO_TARGET_DIR/debug` (or `<manifest>/target/debug`).
fn lib_dir() -> PathBuf {
    let from_exe = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(Path::to_path_buf))
        .filter(|dir| dir.join("libpasst.so").exists());
    from_exe.unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(MANIFEST_DIR).join("target"));
        target.join("debug")
    })
}

/// The programs, built once per test run into `<lib dir>/c-programs/`.
struct Programs {
    standalone: PathBuf,
    api_test: PathBuf,
    qrap: PathBuf,
}

fn programs() -> &'static Programs {
    static PROGRAMS: OnceLock<Programs> = OnceLock::new();
    PROGRAMS.get_or_init(|| {
        let lib = lib_dir();
        assert!(lib.join("libpasst.so").exists(), "no libpasst.so in {}: run cargo build", lib.display());
        let examples = lib.join("c-programs/examples-c");
        let qrap = lib.join("c-programs/qrap");
        make("examples-c", &lib, &examples, "all");
        make("qrap", &lib, &qrap, "all");
        Programs {
            standalone: examples.join("passt-standalone"),
            api_test: examples.join("api-test"),
            qrap: qrap.join("qrap"),
        }
    })
}


/// Runs a command to completion (stdin from /dev/null), with a time limit.
fn run(cmd: &mut Command) -> Output {
    run_limited(cmd, RUN_TIMEOUT)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn standalone(args: &[&str]) -> Output {
    run(Command::new(&programs().standalone).args(args))
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs `script` with sh in a private mount namespace whose /tmp is an empty
/// tmpfs, so that the default /tmp/passt_N.socket paths are ours alone.
/// None when that is impossible here (not root, no unshare or python3).
fn in_private_tmp(script: &str, env: &[(&str, &OsStr)]) -> Option<Output> {
    if !is_root() || !have("unshare") || !have("python3") {
        eprintln!("skipped: needs root, unshare and python3");
        return None;
    }
    // The build tree may itself be under /tmp (a clone there), which the
    // tmpfs hides: the programs and the library run from a copy elsewhere.
    static STAGE_SEQ: AtomicUsize = AtomicUsize::new(0);
    let n = STAGE_SEQ.fetch_add(1, Ordering::Relaxed);
    let stage = Path::new("/dev/shm").join(format!("passt-c-test-{}-{n}", std::process::id()));
    fs::create_dir_all(&stage).expect("staging dir");
    for entry in fs::read_dir(lib_dir()).expect("lib dir").flatten() {
        if entry.file_name().to_string_lossy().starts_with("libpasst.so") {
            fs::copy(entry.path(), stage.join(entry.file_name())).expect("copy libpasst");
        }
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-ec"])
        .arg(format!("mount -t tmpfs passt-test /tmp\n{SH_WAIT_FOR_SOCKET}\n{script}"))
        .env("PY_STALE", PY_STALE_SOCKET)
        .env("PY_LISTENER", PY_LISTENER)
        .env("LD_LIBRARY_PATH", &stage)
        .current_dir("/");
    for (k, v) in env {
        let path = Path::new(v);
        if path.is_file() {
            let copy = stage.join(path.file_name().expect("a file name"));
            fs::copy(path, &copy).expect("copy program");
            cmd.env(k, copy);
        } else {
            cmd.env(k, v);
        }
    }
    let out = run(&mut cmd);
    let _ = fs::remove_dir_all(&stage);
    Some(out)
}

/// Python for sockets inside the namespace, given to the scripts in the
/// environment: `$PY_STALE PATH` leaves a socket file nobody listens on;
/// `$PY_LISTENER PATH` accepts one connection and prints what it receives.
/// Both give up after 20 s, so nothing outlives a failed test for long.
const PY_STALE_SOCKET: &str = "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])";
const PY_LISTENER: &str = "import socket,sys
s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(4); s.settimeout(20)
c,_=s.accept(); c.settimeout(20); data=b''
while True:
    b=c.recv(4096)
    if not b: break
    data+=b
print('LISTENER-GOT:'+data.decode())";

/// Shell: waits (at most 5 s) for the listener's socket file at $1.
const SH_WAIT_FOR_SOCKET: &str =
    r#"wait_for_socket() { n=0; while [ ! -S "$1" ] && [ $n -lt 250 ]; do sleep 0.02; n=$((n+1)); done; }"#;

// ---------------------------------------------------------------------------
// Build and API
// ---------------------------------------------------------------------------

#[test]
fn header_compiles_as_c99_and_cxx11() {
    let lib = lib_dir();
    make("examples-c", &lib, &lib.join("c-programs/examples-c"), "check-header");
}

#[test]
fn api_test_passes() {
    let out = run(&mut Command::new(&programs().api_test));
    assert!(out.status.success(), "api-test failed:\n{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("all checks passed"));
}

#[test]
fn api_test_is_clean_under_valgrind() {
    if !have("valgrind") {
        eprintln!("skipped: no valgrind");
        return;
    }
    let out = run(Command::new("valgrind")
        .args(["-q", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite"])
        .arg(&programs().api_test));
    assert!(out.status.success(), "valgrind api-test: {:?}\n{}", out.status, text(&out.stderr));
}

/// The live part too: instances, callbacks, events, stats, a forward and
/// the caught panic, with no invalid access and no leak.
#[test]
fn api_test_live_is_clean_under_valgrind() {
    if !have("valgrind") {
        eprintln!("skipped: no valgrind");
        return;
    }
    // Valgrind is slow, and the machine may be busy: a longer limit.
    let child = Command::new("valgrind")
        .args(["-q", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite"])
        .arg(&programs().api_test)
        .arg("--live")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("valgrind runs");
    let out = wait_output(child, Duration::from_secs(120), "valgrind api-test --live");
    assert!(out.status.success(), "valgrind api-test --live: {:?}\n{}", out.status, text(&out.stderr));
}

#[test]
fn api_test_rejects_unknown_arguments() {
    let out = run(Command::new(&programs().api_test).arg("--bogus"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

// ---------------------------------------------------------------------------
// passt-standalone: command line
// ---------------------------------------------------------------------------

/// Every option in its forms; each must parse (`--help` is appended, which
/// makes the program exit 0 right after a successful parse).
#[rustfmt::skip]
const VALID: &[&[&str]] = &[
    &["-f"], &["--foreground"], &["-d"], &["--debug"], &["-q"], &["--quiet"],
    &["-l", "/tmp/x.log"], &["--log-file=/tmp/x.log"], &["-P", "/tmp/x.pid"], &["--pid", "/tmp/x.pid"],
    &["--runas", "nobody"], &["--runas", "65534:65534"], &["--runas=root:root"],
    &["-1"], &["--one-off"], &["-s", "/tmp/x.sock"], &["--socket=/tmp/x.sock"], &["-s/tmp/x.sock"],
    &["--socket-mode", "0660"], &["-F", "3"], &["--fd=3"],
    &["--netns", "/run/netns/x"], &["--netns", "/run/netns/x", "--config-net", "--ns-ifname", "tap1"],
    &["-p", "/tmp/x.pcap"], &["--pcap", "/tmp/x.pcap"],
    &["-m", "1500"], &["-m1500"], &["--mtu=65520"], &["--mtu", "68"],
    &["-a", "10.0.2.15"], &["-a", "2001:db8::2"], &["--address", "10.0.2.15", "--address", "2001:db8::2"],
    &["-n", "24"], &["--netmask", "255.255.255.0"],
    &["-M", "52:54:00:12:34:56"], &["--mac-addr=9a:55:9a:55:9a:55"],
    &["-g", "10.0.2.2"], &["--gateway", "fe80::1"], &["-i", "eth0"], &["--interface", "lo"],
    &["-o", "192.0.2.1"], &["--outbound", "2001:db8::1"],
    &["-D", "1.1.1.1"], &["--dns", "2001:db8::53", "-D", "192.0.2.53"], &["-D", "none"],
    &["--dns-forward", "10.0.2.3"], &["-S", "example.org"], &["--search", "a.example b.example"], &["-S", "none"],
    &["--no-tcp"], &["--no-udp"], &["--no-icmp"], &["--no-dhcp"], &["--no-ndp"], &["--no-dhcpv6"],
    &["--no-ra"], &["--no-dhcp-dns"], &["--no-dhcp-search"], &["--no-map-gw"], &["--freebind"],
    &["--map-host-loopback", "10.0.2.2"], &["--map-host-loopback", "none"],
    &["--map-guest-addr", "10.0.2.3"], &["--map-guest-addr", "none"],
    &["-4"], &["--ipv4-only"], &["-6"], &["--ipv6-only"],
    &["-t", "8080"], &["-t", "8080:80"], &["-t", "1000-1010,~1005"], &["-t", "all"], &["-t", "none"],
    &["--tcp-ports", "127.0.0.1/2222"], &["-t", "~22"], &["-u", "53"], &["--udp-ports=5000-5010:6000-6010"],
    &["--max-flows", "100"],
    &["--busy-poll", "0"], &["--busy-poll=10000"], &["--busy-poll", "50"],
    &["-f4"], &["-fdq"], &["-f1s", "/tmp/x.sock"],
    // libvirt's and QEMU's command lines.
    &["--one-off", "--socket", "/tmp/x.sock", "--mac-addr", "52:54:00:12:34:56", "--mtu", "1500",
      "--address", "10.0.2.15", "--netmask", "24", "--tcp-ports", "8080", "--udp-ports", "5353",
      "--log-file", "/tmp/x.log"],
    &["--quiet", "--pid", "/tmp/x.pid", "--fd", "3"],
];

#[test]
fn valid_options_parse() {
    for args in VALID {
        let mut all = args.to_vec();
        all.push("--help");
        let out = standalone(&all);
        assert!(out.status.success(), "{args:?} refused: {}", text(&out.stderr));
        assert!(text(&out.stdout).starts_with("Usage:"), "{args:?}: {}", text(&out.stdout));
    }
}

/// Invalid forms: each must exit 1 with every listed word on stderr.
/// `-f` is prepended so that nothing detaches.
#[rustfmt::skip]
const INVALID: &[(&[&str], &[&str])] = &[
    (&["--mtu", "70000"], &["mtu", "70000"]),
    (&["-m", "20"], &["mtu", "20"]),
    (&["--mtu=abc"], &["mtu", "abc"]),
    (&["--bogus"], &["--bogus"]),
    (&["-Z"], &["-Z"]),
    (&["-a", "1.2.3"], &["address", "1.2.3"]),
    (&["--address", "0.0.0.0"], &["address", "0.0.0.0"]),
    (&["-n", "33"], &["netmask", "33"]),
    (&["--netmask", "255.0.255.0"], &["netmask", "255.0.255.0"]),
    (&["-M", "zz:00:00:00:00:01"], &["mac-addr", "zz:00:00:00:00:01"]),
    (&["--mac-addr", "01:00:5e:00:00:01"], &["mac-addr", "01:00:5e:00:00:01"]),
    (&["-g", "gw"], &["gateway", "gw"]),
    (&["-o", "nowhere"], &["outbound", "nowhere"]),
    (&["-D", "999.1.1.1"], &["dns", "999.1.1.1"]),
    (&["--dns-forward", "x"], &["dns-forward", "x"]),
    (&["-S", "a..b"], &["search", "a..b"]),
    (&["-t", "0"], &["tcp-ports", "0"]),
    (&["-t", "70000"], &["tcp-ports", "70000"]),
    (&["-t", "10-1"], &["tcp-ports", "10-1"]),
    (&["-u", "x"], &["udp-ports", "x"]),
    (&["-F", "-3"], &["fd", "-3"]),
    (&["--fd", "abc"], &["fd", "abc"]),
    (&["-F", "77"], &["fd", "77", "not an open file descriptor"]),
    (&["--socket-mode", "999"], &["socket-mode", "999"]),
    (&["--map-host-loopback", "x"], &["map-host-loopback", "x"]),
    (&["--map-guest-addr", "x"], &["map-guest-addr", "x"]),
    (&["--max-flows", "0"], &["max-flows", "0"]),
    (&["--ns-ifname", "a-very-long-interface-name"], &["ns-ifname", "a-very-long-interface-name"]),
    (&["--runas", "no-such-user-zz"], &["runas", "no-such-user-zz"]),
    (&["--runas", "nobody:no-such-group-zz"], &["runas", "no-such-group-zz"]),
    (&["--runas", "a:b:c"], &["runas", "a:b:c"]),
    (&["-s"], &["'-s'", "needs a value"]),
    (&["--pid"], &["'--pid'", "needs a value"]),
    (&["--foreground=yes"], &["foreground", "takes no value"]),
    (&["stray"], &["stray"]),
    (&["-l", "/nonexistent-passt-dir/x.log"], &["log file", "/nonexistent-passt-dir/x.log"]),
    (&["-P", "/nonexistent-passt-dir/x.pid"], &["pid file", "/nonexistent-passt-dir/x.pid"]),
    (&["--frames"], &["frames"]),
    (&["--busy-poll", "abc"], &["busy-poll", "abc"]),
    (&["--busy-poll", "10001"], &["busy-poll", "10001"]),
    (&["--busy-poll=-1"], &["busy-poll", "-1"]),
    (&["--busy-poll"], &["'--busy-poll'", "needs a value"]),
    // Combinations, refused by passt_new before anything is opened.
    (&["-4", "-6", "-s", "/nonexistent-passt-dir/s"], &["ipv4-only", "ipv6-only"]),
    (&["--config-net", "-s", "/nonexistent-passt-dir/s"], &["config-net", "netns"]),
    (&["-s", "/nonexistent-passt-dir/s", "-F", "0"], &["more than one"]),
];

#[test]
fn invalid_options_are_named() {
    for (args, words) in INVALID {
        let mut all = vec!["-f"];
        all.extend_from_slice(args);
        let out = standalone(&all);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {:?}\n{err}", out.status);
        assert!(err.starts_with("passt-standalone: "), "{args:?}: {err}");
        for w in *words {
            assert!(err.contains(w), "{args:?}: stderr lacks '{w}': {err}");
        }
    }
}

#[test]
fn help_lists_every_option() {
    for flag in ["--help", "-h"] {
        let out = standalone(&[flag]);
        assert!(out.status.success(), "{flag}: {:?}", out.status);
        let help = text(&out.stdout);
        for opt in [
            "--socket",
            "--fd",
            "--foreground",
            "--debug",
            "--quiet",
            "--log-file",
            "--pid",
            "--runas",
            "--one-off",
            "--help",
            "--version",
            "--socket-mode",
            "--netns",
            "--ns-ifname",
            "--config-net",
            "--pcap",
            "--mtu",
            "--address",
            "--netmask",
            "--mac-addr",
            "--gateway",
            "--interface",
            "--outbound",
            "--dns",
            "--dns-forward",
            "--search",
            "--map-host-loopback",
            "--map-guest-addr",
            "--no-map-gw",
            "--ipv4-only",
            "--ipv6-only",
            "--tcp-ports",
            "--udp-ports",
            "--no-tcp",
            "--no-udp",
            "--no-icmp",
            "--no-dhcp",
            "--no-ndp",
            "--no-dhcpv6",
            "--no-ra",
            "--no-dhcp-dns",
            "--no-dhcp-search",
            "--freebind",
            "--max-flows",
            "--busy-poll",
        ] {
            assert!(help.contains(opt), "{flag}: help lacks {opt}");
        }
        for short in [
            "-f,", "-d,", "-q,", "-l,", "-P,", "-1,", "-s,", "-F,", "-p,", "-m,", "-a,", "-n,", "-M,", "-g,", "-i,",
            "-o,", "-D,", "-S,", "-4,", "-6,", "-t,", "-u,", "-h,",
        ] {
            assert!(help.contains(short), "{flag}: help lacks {short}");
        }
    }
}

#[test]
fn version_is_the_library_version() {
    let out = standalone(&["--version"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), format!("passt-standalone {}\n", env!("CARGO_PKG_VERSION")));
}

/// A socket path that cannot be bound: passt_new fails, with or without
/// the engine. The pid file, opened before, must not be left behind.
#[test]
fn start_failure_in_foreground_exits_1_and_cleans_up() {
    let dir = TempDir::new("c-fgfail");
    let pid = dir.join("pid");
    let out = standalone(&["-f", "-s", "/nonexistent-passt-dir/passt.sock", "-P", pid.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("passt-standalone: ") && err.len() > "passt-standalone: \n".len(), "{err}");
    assert!(!pid.exists(), "pid file left behind");
}

/// A pid file that was there before (another instance's?) is not ours to
/// remove when we fail to start.
#[test]
fn start_failure_keeps_a_pid_file_it_did_not_write() {
    let dir = TempDir::new("c-oldpid");
    let pid = dir.join("pid");
    fs::write(&pid, "12345\n").expect("write pid file");
    let out = standalone(&["-f", "-s", "/nonexistent-passt-dir/passt.sock", "-P", pid.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(fs::read_to_string(&pid).expect("pid file kept"), "12345\n");
}

/// Without -f, the parent waits for the detached daemon and exits 1 when it
/// fails to start; the daemon's message reaches the caller's stderr.
#[test]
fn start_failure_when_detaching_is_reported_by_the_parent() {
    let dir = TempDir::new("c-bgfail");
    let pid = dir.join("pid");
    let out = standalone(&["-s", "/nonexistent-passt-dir/passt.sock", "-P", pid.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("passt-standalone: ") && err.len() > "passt-standalone: \n".len(), "{err}");
    assert!(!pid.exists(), "pid file left behind");
}

/// The default socket: /tmp/passt_1.socket is a regular file (skipped, kept),
/// _2 has a listener (probed by connecting, skipped), _3 is a stale socket (taken: removed, then
/// bound). With the engine pending the daemon stops after choosing; with
/// it, `timeout` stops it with SIGTERM, and the socket is removed either way.
#[test]
fn default_socket_path_is_the_first_free_one() {
    let script = r#"
echo not-a-socket > /tmp/passt_1.socket
python3 -c "$PY_LISTENER" /tmp/passt_2.socket > /tmp/listener.out &
python3 -c "$PY_STALE" /tmp/passt_3.socket
wait_for_socket /tmp/passt_2.socket
status=0; timeout --preserve-status -s TERM 3 "$STANDALONE" -f -d || status=$?
echo "STATUS:$status"
for i in 1 2 3; do [ -e /tmp/passt_$i.socket ] && echo "EXISTS:$i"; done
[ "$(cat /tmp/passt_1.socket)" = not-a-socket ] && echo "KEPT:1"
wait
cat /tmp/listener.out
"#;
    let Some(out) = in_private_tmp(script, &[("STANDALONE", programs().standalone.as_os_str())]) else { return };
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("socket path: /tmp/passt_3.socket"), "{stderr}");
    // 1: the engine is pending; 0: it ran and SIGTERM stopped it cleanly.
    assert!(stdout.contains("STATUS:1") || stdout.contains("STATUS:0"), "{stdout}\n{stderr}");
    assert!(stdout.contains("EXISTS:1") && stdout.contains("KEPT:1"), "{stdout}");
    // The listener saw the daemon's probe connection (and kept its socket).
    assert!(stdout.contains("EXISTS:2") && stdout.contains("LISTENER-GOT:"), "{stdout}");
    assert!(!stdout.contains("EXISTS:3"), "stale socket not removed, or left behind: {stdout}");
}

// ---------------------------------------------------------------------------
// passt-standalone: as libvirt and QEMU run it (needs the engine)
// ---------------------------------------------------------------------------

/// Whether process `pid` is gone (or a zombie nobody reaped yet).
fn process_gone(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name in parentheses.
        Ok(stat) => stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')).unwrap_or(true),
    }
}

fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    cond()
}

fn send_signal(pid: u32, signal: &str) {
    let _ = Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status();
}

/// Pids of live processes with `needle` among their arguments.
fn pids_with_arg(needle: &str) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.split(|b| *b == 0).any(|a| a == needle.as_bytes()))
                .unwrap_or(false)
        })
        .filter(|pid| !process_gone(*pid))
        .collect()
}

/// Kills, on drop, every daemon still running with `needle` (a path unique
/// to the test) among its arguments: a failing test leaves nothing behind.
struct KillDaemons(String);

impl Drop for KillDaemons {
    fn drop(&mut self) {
        for pid in pids_with_arg(&self.0) {
            send_signal(pid, "KILL");
        }
    }
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// libvirt: `passt --one-off --socket PATH --pid FILE --mac-addr MAC --mtu N
/// --tcp-ports SPEC`, no -f; it waits for exit status 0, then connects at
/// once and reads the pid file.
#[test]
fn libvirt_style_invocation() {
    let dir = TempDir::new("c-libvirt");
    let sock = dir.join("passt.sock");
    let sock_s = sock.to_str().unwrap().to_string();
    let pidfile = dir.join("passt.pid");
    let _guard = KillDaemons(sock_s.clone());
    let port = free_tcp_port().to_string();
    #[rustfmt::skip]
    let out = standalone(&[
        "--one-off", "--socket", &sock_s, "--pid", pidfile.to_str().unwrap(),
        "--mac-addr", "52:54:00:12:34:56", "--mtu", "1500", "--tcp-ports", &port,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let conn = UnixStream::connect(&sock).expect("the socket accepts connections once the parent exited");
    let pid: u32 = fs::read_to_string(&pidfile).expect("pid file").trim().parse().expect("a pid");
    assert!(!process_gone(pid), "pid {pid} from the pid file is not running");
    assert_eq!(pids_with_arg(&sock_s), vec![pid], "exactly one daemon, the one in the pid file");
    // --one-off: the guest going away ends the daemon, which removes its files.
    drop(conn);
    assert!(wait_until(Duration::from_secs(5), || process_gone(pid)), "daemon still running");
    assert!(!sock.exists(), "socket file left behind");
    assert!(!pidfile.exists(), "pid file left behind");
}

/// QEMU's -netdev passt: `passt --quiet --pid FILE --fd 3` with one end of
/// a socketpair on fd 3 (FILE created empty beforehand); it waits for exit
/// status 0, reads the pid file and later stops the daemon with SIGTERM.
#[test]
fn qemu_netdev_passt_style_invocation() {
    let dir = TempDir::new("c-qemu");
    let pidfile = dir.join("passt.pid");
    let pidfile_s = pidfile.to_str().unwrap().to_string();
    let _guard = KillDaemons(pidfile_s.clone());
    // QEMU creates the pid file (empty, 0600) before starting passt.
    fs::write(&pidfile, "").expect("create pid file");
    fs::set_permissions(&pidfile, fs::Permissions::from_mode(0o600)).expect("chmod pid file");
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    // The daemon's end goes in as stdin, and the shell moves it to fd 3.
    let child = Command::new("sh")
        .args(["-c", "exec 3<&0 </dev/null; exec \"$0\" \"$@\""])
        .arg(&programs().standalone)
        .args(["--quiet", "--pid", &pidfile_s, "--fd", "3"])
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = wait_output(child, RUN_TIMEOUT, "passt-standalone --fd 3");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // --quiet: warnings at most (the library may have some about the host).
    assert!(out.stdout.is_empty(), "--quiet printed: {}", text(&out.stdout));
    assert!(!text(&out.stderr).contains(" started"), "--quiet logged at info: {}", text(&out.stderr));

    let pid: u32 = fs::read_to_string(&pidfile).expect("pid file").trim().parse().expect("a pid");
    assert!(!process_gone(pid), "pid {pid} from the pid file is not running");
    // Ours is the guest's end: it stays open while the daemon runs.
    ours.set_nonblocking(true).expect("nonblocking");
    send_signal(pid, "TERM");
    assert!(wait_until(Duration::from_secs(5), || process_gone(pid)), "daemon ignored SIGTERM");
    assert!(!pidfile.exists(), "pid file left behind");
    // Frames the daemon sent (a router advertisement greets every guest)
    // come first; then end of file, as the daemon's end is closed.
    let mut buf = [0u8; 4096];
    let eof = loop {
        match (&ours).read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(_) => break false,
        }
    };
    assert!(eof, "the daemon's end of the socketpair is not closed");
}

/// `-f -s PATH`, then SIGTERM (and SIGINT): exit 0, socket file removed.
#[test]
fn foreground_signal_removes_the_socket() {
    for signal in ["TERM", "INT"] {
        let dir = TempDir::new("c-fgterm");
        let sock = dir.join("passt.sock");
        let pidfile = dir.join("pid");
        let child = Command::new(&programs().standalone)
            .args(["-f", "-s", sock.to_str().unwrap(), "-P", pidfile.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let pid = child.id();
        let _guard = KillDaemons(sock.to_str().unwrap().to_string());
        assert!(wait_until(RUN_TIMEOUT, || UnixStream::connect(&sock).is_ok()), "never listened");
        assert_eq!(fs::read_to_string(&pidfile).expect("pid file").trim(), pid.to_string());
        send_signal(pid, signal);
        let out = wait_output(child, RUN_TIMEOUT, "passt-standalone after a signal");
        assert_eq!(out.status.code(), Some(0), "SIG{signal}: {}", text(&out.stderr));
        assert!(!sock.exists(), "SIG{signal}: socket file left behind");
        assert!(!pidfile.exists(), "SIG{signal}: pid file left behind");
    }
}

#[test]
fn api_test_live_passes() {
    let out = run(Command::new(&programs().api_test).arg("--live"));
    assert!(out.status.success(), "api-test --live failed:\n{}{}", text(&out.stdout), text(&out.stderr));
}

// ---------------------------------------------------------------------------
// qrap
// ---------------------------------------------------------------------------

/// A fake QEMU: prints its arguments, what fd $FAKE_FD is, and writes a
/// greeting through it.
const FAKE_QEMU: &str = r#"#!/bin/sh
for a in "$@"; do printf 'ARG:%s\n' "$a"; done
fd=${FAKE_FD:-5}
printf 'FD:%s\n' "$(readlink /proc/$$/fd/$fd)"
eval "printf 'hello from fake qemu' >&$fd"
"#;

fn write_fake_qemu(dir: &TempDir) -> PathBuf {
    let path = dir.join("fake-qemu");
    fs::write(&path, FAKE_QEMU).expect("write fake qemu");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod fake qemu");
    path
}

/// Runs qrap against a listener of ours; returns (qrap's output, the
/// arguments the fake QEMU got, what the listener received).
fn run_qrap(fdnum: &str, qemu_args: &[&str]) -> (Output, Vec<String>, String) {
    let dir = TempDir::new("c-qrap");
    let fake = write_fake_qemu(&dir);
    let sock = dir.join("passt.sock");
    let listener = UnixListener::bind(&sock).expect("bind test listener");
    let receiver = thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(RUN_TIMEOUT)).expect("timeout");
        let mut got = String::new();
        let _ = conn.read_to_string(&mut got);
        got
    });
    let out = run(Command::new(&programs().qrap)
        .arg(fdnum)
        .arg(&fake)
        .args(qemu_args)
        .env("PASST_SOCKET", &sock)
        .env("FAKE_FD", fdnum));
    let got = if out.status.success() {
        receiver.join().expect("listener thread")
    } else {
        // Unblock the accept() so the thread ends.
        drop(UnixStream::connect(&sock));
        let _ = receiver.join();
        String::new()
    };
    let args = text(&out.stdout).lines().filter_map(|l| l.strip_prefix("ARG:").map(str::to_string)).collect();
    (out, args, got)
}

/// (FDNUM, QEMU arguments given, QEMU arguments expected).
#[rustfmt::skip]
const QRAP_CASES: &[(&str, &[&str], &[&str])] = &[
    // Nothing about networking: a NIC is added.
    ("5", &["-m", "512", "-nographic"],
     &["-m", "512", "-nographic", "-netdev", "socket,fd=5,id=hostnet0", "-device", "virtio-net-pci,netdev=hostnet0"]),
    // A -netdev/-device pair: the netdev goes, the device follows ours.
    ("5", &["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56"],
     &["-device", "virtio-net-pci,netdev=hostnet0,mac=52:54:00:12:34:56", "-netdev", "socket,fd=5,id=hostnet0"]),
    // Double-dash forms, another fd number.
    ("7", &["--netdev", "tap,id=t0,ifname=tap0", "--device", "e1000,netdev=t0"],
     &["--device", "e1000,netdev=hostnet0", "-netdev", "socket,fd=7,id=hostnet0"]),
    // Old -net pair: model and MAC carried over, "virtio" spelled out.
    ("5", &["-net", "nic,model=virtio,macaddr=52:54:00:aa:bb:cc", "-net", "user"],
     &["-netdev", "socket,fd=5,id=hostnet0", "-device", "virtio-net-pci,netdev=hostnet0,mac=52:54:00:aa:bb:cc"]),
    ("5", &["-net", "socket,fd=5", "-net", "nic,model=e1000"],
     &["-netdev", "socket,fd=5,id=hostnet0", "-device", "e1000,netdev=hostnet0"]),
    // -nic: its model and mac.
    ("5", &["-nic", "user,model=rtl8139,mac=52:54:00:00:00:01"],
     &["-netdev", "socket,fd=5,id=hostnet0", "-device", "rtl8139,netdev=hostnet0,mac=52:54:00:00:00:01"]),
    ("5", &["-nic", "none"], &["-netdev", "socket,fd=5,id=hostnet0", "-device", "virtio-net-pci,netdev=hostnet0"]),
    // Other devices stay; a second NIC goes (its netdev is gone).
    ("5", &["-device", "virtio-blk-pci,drive=d0", "-device", "e1000,netdev=a", "-netdev", "user,id=a",
            "-device", "virtio-net-pci,netdev=b", "-netdev", "user,id=b"],
     &["-device", "virtio-blk-pci,drive=d0", "-device", "e1000,netdev=hostnet0", "-netdev", "socket,fd=5,id=hostnet0"]),
    // Escaped commas are kept as they are.
    ("5", &["-device", "virtio-net-pci,netdev=n0,romfile=a,,b.rom"],
     &["-device", "virtio-net-pci,netdev=hostnet0,romfile=a,,b.rom", "-netdev", "socket,fd=5,id=hostnet0"]),
    // JSON -device, as libvirt writes it.
    ("5", &["-netdev", "{\"type\":\"user\",\"id\":\"n0\"}", "-device", "{\"driver\":\"virtio-net-pci\",\"netdev\": \"n0\",\"id\":\"net0\"}"],
     &["-device", "{\"driver\":\"virtio-net-pci\",\"netdev\": \"hostnet0\",\"id\":\"net0\"}", "-netdev", "socket,fd=5,id=hostnet0"]),
    // A dangling option at the end is dropped.
    ("5", &["-m", "256", "-netdev"], &["-m", "256", "-netdev", "socket,fd=5,id=hostnet0", "-device", "virtio-net-pci,netdev=hostnet0"]),
];

#[test]
fn qrap_rewrites_qemu_arguments_and_passes_the_connection() {
    for (fdnum, given, expected) in QRAP_CASES {
        let (out, args, got) = run_qrap(fdnum, given);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{given:?}: {:?} {}", out.status, text(&out.stderr));
        assert_eq!(args, *expected, "{given:?}");
        // The fd is a socket, connected to our listener.
        assert!(stdout.contains("FD:socket:["), "{given:?}: fd {fdnum} is not a socket: {stdout}");
        assert_eq!(got, "hello from fake qemu", "{given:?}");
    }
}

#[test]
fn qrap_warns_when_dropping_a_second_nic() {
    let (out, _, _) = run_qrap("5", &["-device", "e1000,netdev=a", "-device", "e1000,netdev=b"]);
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("dropping -device e1000,netdev=b"), "{}", text(&out.stderr));
}

#[test]
fn qrap_errors() {
    let dir = TempDir::new("c-qrap-err");
    let fake = write_fake_qemu(&dir);
    let fake_s = fake.to_str().unwrap();
    let absent = dir.join("absent.sock");
    let absent_s = absent.to_str().unwrap();
    let listener_path = dir.join("listening.sock");
    let _listener = UnixListener::bind(&listener_path).expect("bind");
    let listening = listener_path.to_str().unwrap();

    // (arguments, PASST_SOCKET, exit code, words on stderr)
    let cases: &[(&[&str], &str, i32, &[&str])] = &[
        (&[], listening, 1, &["Usage: qrap FDNUM QEMU_CMD"]),
        (&["5"], listening, 1, &["Usage: qrap FDNUM QEMU_CMD"]),
        (&["abc", fake_s], listening, 1, &["invalid FDNUM 'abc'", "Usage"]),
        (&["2", fake_s], listening, 1, &["invalid FDNUM '2'"]),
        (&["5x", fake_s], listening, 1, &["invalid FDNUM '5x'"]),
        (&["5", fake_s], absent_s, 1, &[absent_s, "PASST_SOCKET"]),
        (&["5", "/nonexistent-qemu-binary"], listening, 1, &["cannot run /nonexistent-qemu-binary"]),
    ];
    for (args, env, code, words) in cases {
        let out = run(Command::new(&programs().qrap).args(*args).env("PASST_SOCKET", env));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {err}");
        for w in *words {
            assert!(err.contains(w), "{args:?}: stderr lacks '{w}': {err}");
        }
    }

    let out = run(Command::new(&programs().qrap).arg("--help"));
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("PASST_SOCKET"), "{}", text(&out.stdout));
}

/// Without PASST_SOCKET: the first of /tmp/passt_N.socket that accepts a
/// connection (1 is stale here, 2 listens); and a clear error with none.
#[test]
fn qrap_probes_the_default_socket_paths() {
    // The test's temporary directories are under the hidden /tmp: the fake
    // QEMU is written again inside.
    let script = r#"
printf '%s' "$FAKE_QEMU" > /tmp/fake-qemu; chmod 755 /tmp/fake-qemu; FAKE=/tmp/fake-qemu
"$QRAP" 5 "$FAKE" -m 64 && echo "UNEXPECTED: qrap ran without a daemon" || echo "NONE:$?"
python3 -c "$PY_STALE" /tmp/passt_1.socket
python3 -c "$PY_LISTENER" /tmp/passt_2.socket &
wait_for_socket /tmp/passt_2.socket
"$QRAP" 5 "$FAKE" -m 64
wait
"#;
    let Some(out) =
        in_private_tmp(script, &[("QRAP", programs().qrap.as_os_str()), ("FAKE_QEMU", OsStr::new(FAKE_QEMU))])
    else {
        return;
    };
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("NONE:1"), "{stdout}");
    assert!(stderr.contains("no passt socket found (tried /tmp/passt_1.socket .. /tmp/passt_100.socket"), "{stderr}");
    assert!(stdout.contains("ARG:-m\nARG:64\nARG:-netdev\nARG:socket,fd=5,id=hostnet0"), "{stdout}");
    assert!(stdout.contains("LISTENER-GOT:hello from fake qemu"), "{stdout}\n{stderr}");
}

// ---------------------------------------------------------------------------
// qrap with a real QEMU (slow: a TCG guest boots)
// ---------------------------------------------------------------------------

/// The test-guest kit (`shared/guest`): `$PASST_GUEST_KIT`, or a `shared/guest`
/// next to the tree or one level up (worktrees).
fn guest_kit() -> Option<PathBuf> {
    let manifest = Path::new(MANIFEST_DIR);
    std::env::var_os("PASST_GUEST_KIT")
        .map(PathBuf::from)
        .into_iter()
        .chain([manifest.join("../shared/guest"), manifest.join("../../shared/guest")])
        .find(|p| p.join("run-guest.sh").exists())
}

/// Boots the kit's guest with QEMU under qrap, attached to `daemon -f -s
/// SOCKET`, and checks that it gets an address by DHCP.
fn boot_guest_through_qrap(daemon: &Path) {
    let kit = guest_kit().expect("guest kit: set PASST_GUEST_KIT to the shared/guest directory");
    let dir = TempDir::new("c-guest");
    let script = dir.join("test.sh");
    fs::write(
        &script,
        "#!/bin/sh\n. /lib/kit.sh\nkit_dhcp4 && result dhcp4 ok \"$DHCP4_IP\" || result dhcp4 fail\nsummary\n",
    )
    .expect("write guest script");
    let img = dir.join("img");
    let out = run(Command::new(kit.join("build-initramfs.sh")).arg(&img).arg(&script));
    assert!(out.status.success(), "build-initramfs: {}", text(&out.stderr));

    let sock = dir.join("passt.sock");
    let log = fs::File::create(dir.join("daemon.log")).expect("daemon log");
    let mut daemon_proc = Command::new(daemon)
        .args(["-f", "-s", sock.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup log"))
        .stderr(log)
        .spawn()
        .expect("start the daemon");
    let _guard = KillDaemons(sock.to_str().unwrap().to_string());
    // Not connect(): a passt serves the first connection it accepts.
    assert!(wait_until(Duration::from_secs(10), || sock.exists()), "daemon never bound its socket");
    thread::sleep(Duration::from_millis(300));

    let wrap = format!("{} 5", programs().qrap.display());
    let child = Command::new(kit.join("run-guest.sh"))
        .args(["--dir", img.to_str().unwrap(), "--fd", "5", "--wrap", &wrap, "--timeout", "120", "--check"])
        .env("PASST_SOCKET", &sock)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run-guest.sh");
    let out = wait_output(child, Duration::from_secs(150), "run-guest.sh");
    send_signal(daemon_proc.id(), "TERM");
    let _ = daemon_proc.wait();
    let console = text(&out.stdout).replace('\r', "");
    assert!(
        out.status.success() && console.contains("GUEST-RESULT dhcp4 ok"),
        "{:?}\n{console}\n{}\ndaemon: {}",
        out.status,
        text(&out.stderr),
        fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
    );
}

#[test]
fn qrap_boots_a_guest_with_upstream_passt() {
    boot_guest_through_qrap(Path::new("/usr/bin/passt"));
}

#[test]
fn qrap_boots_a_guest_with_passt_standalone() {
    boot_guest_through_qrap(&programs().standalone);
}
