//! Packaging, the way a program using the library meets it: `make
//! install-only` into a temporary prefix (the library cargo built for this
//! run; never cargo itself, whose lock the running `cargo test` holds),
//! pkg-config finding it, and the examples built with `pkg-config --cflags
//! --libs passt` against that installed copy, then run with real traffic:
//!
//! * layout: libpasst.so.0 a real file with that soname, libpasst.so a
//!   symlink, passt.h, passt.pc (prefix, crate version), the programs
//!   running from the prefix; DESTDIR staging, stripped; `make uninstall`.
//! * README's "C API in brief" program compiles and links that way.
//! * frames-cxx (C++17): ARP, DHCP and a UDP round trip through the host's
//!   loopback with the in-process attachment; its exit status says.
//! * epoll-loop (C, its own epoll loop): a frame pump on its UNIX socket
//!   gets ARP answered and UDP carried to a socket of this test and back;
//!   its own timer ticks alongside; SIGTERM ends it cleanly; with
//!   `--one-off`, the guest leaving makes passt_process() fatal (< -1) and
//!   the loop exits 1 with the reason. As root, also
//!   a namespace's tap (config-net), through which the kernel's TCP talks
//!   to a listener on the host namespace's loopback.
//!
//! Needs make, cc, g++, pkg-config, readelf, ldd.

mod common;

use common::netns::{wait_until, HostWithRouter, TestNs};
use common::{is_root, lib_dir, run_limited};
use common::tempdir::TempDir;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Longest a build step or an example may take before the test calls it hung.
const LIMIT: Duration = Duration::from_secs(30);



/// A child killed and reaped on drop, so that a failing test leaves none.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `cmd` to completion within LIMIT (killed and a panic otherwise).
fn run(cmd: &mut Command) -> Output {
    run_limited(cmd, LIMIT)
}

fn run_ok(cmd: &mut Command) -> String {
    let what = format!("{cmd:?}");
    let out = run(cmd);
    assert!(out.status.success(), "{what}: {}\n{}{}", out.status, text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// An installation into `<root>/prefix` by the top-level Makefile.
struct Installed {
    root: PathBuf,
    prefix: PathBuf,
    /// Owns `root` when it is temporary.
    _tmp: Option<TempDir>,
}

impl Installed {
    /// Into a temporary directory, removed with the value.
    fn new(tag: &str) -> Installed {
        let tmp = TempDir::new(tag);
        let mut inst = Installed::at(&tmp.0);
        inst._tmp = Some(tmp);
        inst
    }

    fn at(root: &Path) -> Installed {
        let prefix = root.join("prefix");
        make_install(root, &[format!("PREFIX={}", prefix.display())]);
        Installed { root: root.to_path_buf(), prefix, _tmp: None }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.prefix.join(rel)
    }

    fn pkg_config(&self, args: &[&str]) -> String {
        run_ok(Command::new("pkg-config").args(args).arg("passt").env("PKG_CONFIG_PATH", self.path("lib/pkgconfig")))
            .trim()
            .to_string()
    }

    /// Builds the examples with examples-c/pkg-config.mk, against this
    /// installed copy only; returns the directory holding them.
    fn build_examples(&self) -> PathBuf {
        let out = self.root.join("examples");
        run_ok(
            Command::new("make")
                .arg("-C")
                .arg(Path::new(ROOT).join("examples-c"))
                .args(["-f", "pkg-config.mk"])
                .arg(format!("BUILDDIR={}", out.display()))
                .env("PKG_CONFIG_PATH", self.path("lib/pkgconfig")),
        );
        for program in ["epoll-loop", "frames-cxx"] {
            self.assert_links_installed_copy(&out.join(program));
        }
        out
    }

    /// `ldd` resolves libpasst.so.0 to the installed file, not to the build
    /// tree's.
    fn assert_links_installed_copy(&self, program: &Path) {
        let ldd = run_ok(Command::new("ldd").arg(program).env_remove("LD_LIBRARY_PATH"));
        let line = ldd.lines().find(|l| l.contains("libpasst.so.0")).unwrap_or_else(|| panic!("{ldd}"));
        // "libpasst.so.0 => /path (0x...)"; the path may hold "bin/../lib".
        let resolved = line.split("=> ").nth(1).and_then(|r| r.split(" (").next()).unwrap_or("");
        let resolved = fs::canonicalize(resolved).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        let installed = fs::canonicalize(self.path("lib/libpasst.so.0")).expect("installed library");
        assert_eq!(resolved, installed, "{} links {line:?}, not the installed copy", program.display());
    }
}

/// `make install-only` with `vars`; the C programs are built in `dir/build`.
fn make_install(dir: &Path, vars: &[String]) {
    run_ok(
        Command::new("make")
            .arg("-C")
            .arg(ROOT)
            .arg("install-only")
            .arg(format!("LIBPASST_DIR={}", lib_dir().display()))
            .arg(format!("BUILDDIR={}", dir.join("build").display()))
            .args(vars)
            .env_remove("MAKEFLAGS"),
    );
}

/// One installation with the examples built against it, shared by the
/// tests that only use them (building takes seconds on a loaded machine).
/// Build output, like the programs tests/c_programs.rs builds: it lives
/// under the target directory, remade by each run.
fn shared() -> &'static (Installed, PathBuf) {
    static SHARED: OnceLock<(Installed, PathBuf)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let root = lib_dir().join("packaging-test");
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).expect("create the shared install root");
        let inst = Installed::at(&root);
        let examples = inst.build_examples();
        (inst, examples)
    })
}

const INSTALLED_FILES: [&str; 6] =
    ["lib/libpasst.so.0", "lib/libpasst.so", "include/passt.h", "lib/pkgconfig/passt.pc", "bin/passt-standalone", "bin/qrap"];

#[test]
fn install_lays_out_library_header_pkg_config_and_programs() {
    let inst = Installed::new("layout");

    let lib = inst.path("lib/libpasst.so.0");
    assert!(fs::symlink_metadata(&lib).expect("libpasst.so.0").is_file(), "libpasst.so.0 must be a real file");
    assert!(fs::read(&lib).unwrap() == fs::read(lib_dir().join("libpasst.so")).unwrap(), "not the library cargo built");
    let dynamic = run_ok(Command::new("readelf").arg("-d").arg(&lib));
    assert!(dynamic.contains("Library soname: [libpasst.so.0]"), "{dynamic}");
    assert_eq!(fs::read_link(inst.path("lib/libpasst.so")).expect("libpasst.so symlink"), Path::new("libpasst.so.0"));
    assert_eq!(
        fs::read(inst.path("include/passt.h")).unwrap(),
        fs::read(Path::new(ROOT).join("include/passt.h")).unwrap(),
        "installed passt.h"
    );

    assert_eq!(inst.pkg_config(&["--modversion"]), VERSION);
    assert_eq!(inst.pkg_config(&["--cflags"]), format!("-I{}", inst.path("include").display()));
    assert_eq!(inst.pkg_config(&["--libs"]), format!("-L{} -lpasst", inst.path("lib").display()));
    assert_eq!(inst.pkg_config(&["--variable=prefix"]), inst.prefix.display().to_string());

    // The daemon runs from the prefix (its run path), with the installed library.
    let standalone = inst.path("bin/passt-standalone");
    let out = run_ok(Command::new(&standalone).arg("--version").env_remove("LD_LIBRARY_PATH"));
    assert!(out.contains(VERSION), "passt-standalone --version: {out}");
    inst.assert_links_installed_copy(&standalone);
    let out = run(Command::new(inst.path("bin/qrap")).arg("--help"));
    assert!(out.status.success() && text(&out.stdout).contains("Usage"), "qrap --help: {}", text(&out.stdout));

    run_ok(
        Command::new("make")
            .arg("-C")
            .arg(ROOT)
            .arg("uninstall")
            .arg(format!("PREFIX={}", inst.prefix.display()))
            .env_remove("MAKEFLAGS"),
    );
    for rel in INSTALLED_FILES {
        assert!(fs::symlink_metadata(inst.path(rel)).is_err(), "{rel} left behind by make uninstall");
    }
}

#[test]
fn destdir_stages_under_the_final_prefix_stripped() {
    let dir = TempDir::new("pkg-destdir");
    let stage = dir.0.join("stage");
    let prefix = format!("/opt/passt-pkg-test-{}", std::process::id());
    let vars = [format!("DESTDIR={}", stage.display()), format!("PREFIX={prefix}"), "INSTALL_STRIP=-s".to_string()];
    make_install(&dir.0, &vars);
    assert!(!Path::new(&prefix).exists(), "{prefix} written outside DESTDIR");
    let staged = stage.join(prefix.trim_start_matches('/'));
    for rel in INSTALLED_FILES {
        assert!(fs::symlink_metadata(staged.join(rel)).is_ok(), "{rel} not staged under {}", staged.display());
    }
    let pc = fs::read_to_string(staged.join("lib/pkgconfig/passt.pc")).unwrap();
    assert!(pc.contains(&format!("prefix={prefix}\n")), "{pc}");
    assert!(pc.contains(&format!("libdir={prefix}/lib\n")) && pc.contains(&format!("Version: {VERSION}\n")), "{pc}");

    // Stripped (what `make install-strip` does): smaller, same exports.
    let lib = staged.join("lib/libpasst.so.0");
    let built = lib_dir().join("libpasst.so");
    assert!(fs::metadata(&lib).unwrap().len() < fs::metadata(&built).unwrap().len(), "library not stripped");
    let exports = |path: &Path| run_ok(Command::new("nm").args(["-D", "--defined-only"]).arg(path));
    let names = |nm: String| nm.lines().filter_map(|l| l.split_whitespace().nth(2).map(String::from)).collect::<Vec<_>>();
    assert_eq!(names(exports(&lib)), names(exports(&built)), "exports of the stripped library");
}

#[test]
fn cxx_example_built_with_pkg_config_passes() {
    let (_, examples) = shared();
    let out = run(Command::new(examples.join("frames-cxx")).env_remove("LD_LIBRARY_PATH"));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "frames-cxx: {}\n{stdout}{}", out.status, text(&out.stderr));
    assert!(stdout.contains("all checks passed") && !stdout.contains("FAIL"), "{stdout}");
    for check in ["ARP: a reply", "DHCP: message type OFFER", "UDP: the answer came back"] {
        assert!(stdout.contains(&format!("ok  : {check}")), "{check} missing:\n{stdout}");
    }

    // Library and wrapper together: no invalid access, no leak.
    if Command::new("valgrind").arg("--version").output().is_ok_and(|o| o.status.success()) {
        let out = run(Command::new("valgrind")
            .args(["-q", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite"])
            .arg(examples.join("frames-cxx")));
        assert!(out.status.success(), "valgrind frames-cxx: {}\n{}", out.status, text(&out.stderr));
    } else {
        eprintln!("valgrind run skipped: no valgrind");
    }
}

/// The program under "The C API in brief" in README.md.
fn readme_program() -> String {
    let readme = fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README.md");
    let section = readme.split("## The C API in brief").nth(1).expect("README: \"The C API in brief\" section");
    let code = section.split("```c\n").nth(1).and_then(|c| c.split("```").next()).expect("README: a ```c block");
    code.to_string()
}

#[test]
fn readme_program_builds_with_pkg_config() {
    let (inst, _) = shared();
    let dir = TempDir::new("pkg-readme");
    let src = dir.0.join("readme.c");
    fs::write(&src, readme_program()).unwrap();
    let flags = inst.pkg_config(&["--cflags", "--libs"]);
    let exe = dir.0.join("readme");
    run_ok(
        Command::new("cc")
            .args(["-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&exe)
            .arg(&src)
            .args(flags.split_whitespace())
            .arg(format!("-Wl,-rpath,{}", inst.path("lib").display())),
    );
    inst.assert_links_installed_copy(&exe);
}

// ---------------------------------------------------------------------------
// epoll-loop
// ---------------------------------------------------------------------------

/// epoll-loop's stdout, line by line through a channel (read by a thread,
/// so waits can time out).
fn lines(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle`; returns it.
fn wait_line(rx: &Receiver<String>, needle: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(e) => panic!("no line with {needle:?} from epoll-loop: {e}"),
        }
    }
}

/// SIGTERM, then the exit status and whether "stopping" was printed.
fn terminate(guard: &mut Guard, rx: &Receiver<String>) {
    let pid = guard.0.id();
    run_ok(Command::new("kill").args(["-TERM", &pid.to_string()]));
    wait_line(rx, "Terminated, stopping", Duration::from_secs(5));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = guard.0.try_wait().expect("try_wait") {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "epoll-loop still running after SIGTERM");
        thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "epoll-loop exited with {status} after SIGTERM");
}

const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0xaa, 0xbb, 0xcc];
const GUEST_IP: [u8; 4] = [10, 0, 2, 15];
const GATEWAY_IP: [u8; 4] = [10, 0, 2, 2];

fn arp_request() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&GUEST_IP);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&GATEWAY_IP);
    f
}

/// RFC 1071 sum over `data` added to `sum`, folded and complemented.
fn checksum(data: &[u8], mut sum: u32) -> u16 {
    for pair in data.chunks(2) {
        sum += u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Guest -> gateway UDP/IPv4 frame with correct checksums.
fn udp_frame(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    ip[2..4].copy_from_slice(&((20 + udp_len) as u16).to_be_bytes());
    ip.extend_from_slice(&GUEST_IP);
    ip.extend_from_slice(&GATEWAY_IP);
    let sum = checksum(&ip, 0);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut udp = Vec::new();
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let pseudo: Vec<u8> = [&GUEST_IP[..], &GATEWAY_IP[..], &[0, 17], &(udp_len as u16).to_be_bytes()].concat();
    let sum = checksum(&udp, u32::from(!checksum(&pseudo, 0)));
    udp[6..8].copy_from_slice(&(if sum == 0 { 0xffff } else { sum }).to_be_bytes());
    let mut f = OUR_MAC.to_vec();
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&udp);
    f
}

/// The guest side of a `socket` attachment: frames with a 4-byte
/// big-endian length.
struct FramePump(UnixStream);

impl FramePump {
    fn send(&mut self, frame: &[u8]) {
        self.0.write_all(&(frame.len() as u32).to_be_bytes()).expect("write length");
        self.0.write_all(frame).expect("write frame");
    }

    /// Reads frames until `want` accepts one (which it returns), for at
    /// most 5 s.
    fn wait_for(&mut self, what: &str, want: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no {what} from epoll-loop within 5 s");
            self.0.set_read_timeout(Some(left)).unwrap();
            let mut len = [0u8; 4];
            self.0.read_exact(&mut len).unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
            let mut frame = vec![0; u32::from_be_bytes(len) as usize];
            self.0.read_exact(&mut frame).unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
            if want(&frame) {
                return frame;
            }
        }
    }
}

#[test]
fn epoll_loop_serves_a_frame_pump_on_its_socket() {
    let (_, examples) = shared();
    let dir = TempDir::new("pkg-epoll-sock");
    let socket = dir.0.join("guest.sock");
    let mut child = Command::new(examples.join("epoll-loop"))
        .arg("--socket")
        .arg(&socket)
        .args(["--address", "10.0.2.15", "--netmask", "24", "--gateway", "10.0.2.2"])
        .args(["--mac-addr", "02:00:00:aa:bb:cc"])
        .env_remove("LD_LIBRARY_PATH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start epoll-loop");
    let rx = lines(child.stdout.take().expect("piped"));
    let mut guard = Guard(child);
    wait_line(&rx, "epoll-loop: ready", LIMIT);

    let mut pump = FramePump(UnixStream::connect(&socket).expect("connect to epoll-loop's socket"));
    pump.send(&arp_request());
    let reply = pump.wait_for("ARP reply", |f| f.len() >= 42 && f[12..14] == [8, 6] && f[20..22] == [0, 2]);
    assert_eq!(reply[22..28], OUR_MAC, "ARP reply's sender MAC");
    assert_eq!(reply[28..32], GATEWAY_IP, "ARP reply's sender IP");

    // UDP to the gateway lands on the host's loopback, here; the answer
    // goes back to the guest as a frame from the gateway.
    let host = UdpSocket::bind("127.0.0.1:0").unwrap();
    host.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = host.local_addr().unwrap().port();
    pump.send(&udp_frame(40000, port, b"ping from the guest"));
    let mut buf = [0u8; 64];
    let (n, from) = host.recv_from(&mut buf).expect("the guest's datagram on 127.0.0.1");
    assert_eq!(&buf[..n], b"ping from the guest");
    host.send_to(b"pong from the host", from).unwrap();
    let answer = pump.wait_for("UDP answer", |f| {
        f.len() >= 42 && f[12..14] == [8, 0] && f[23] == 17 && f.ends_with(b"pong from the host")
    });
    assert_eq!(answer[26..30], GATEWAY_IP, "answer's source address");
    assert_eq!(answer[30..34], GUEST_IP, "answer's destination address");
    assert_eq!(answer[34..36], port.to_be_bytes(), "answer's source port");
    assert_eq!(answer[36..38], 40000u16.to_be_bytes(), "answer's destination port");

    // The program's own timer runs in the same loop.
    wait_line(&rx, "epoll-loop: tick", Duration::from_secs(3));
    terminate(&mut guard, &rx);
    assert!(!socket.exists(), "socket file left behind after SIGTERM");
}

#[test]
fn epoll_loop_stops_on_a_fatal_passt_process_result() {
    // With one-off, the guest leaving ends the instance: passt_process()
    // returns -PASST_ERROR_GUEST_GONE (< -1), and the loop must stop.
    let (_, examples) = shared();
    let dir = TempDir::new("pkg-epoll-fatal");
    let socket = dir.0.join("guest.sock");
    let mut child = Command::new(examples.join("epoll-loop"))
        .arg("--socket")
        .arg(&socket)
        .arg("--one-off")
        .env_remove("LD_LIBRARY_PATH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start epoll-loop");
    let rx = lines(child.stdout.take().expect("piped"));
    let mut stderr = child.stderr.take().expect("piped");
    let mut guard = Guard(child);
    wait_line(&rx, "epoll-loop: ready", LIMIT);

    let mut pump = FramePump(UnixStream::connect(&socket).expect("connect"));
    pump.send(&arp_request());
    pump.wait_for("ARP reply", |f| f.len() >= 42 && f[12..14] == [8, 6]);
    drop(pump);

    let start = Instant::now();
    let status = loop {
        if let Some(s) = guard.0.try_wait().expect("try_wait") {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "epoll-loop still running after its one-off guest left");
        thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(1), "exit status; stderr:\n{err}");
    assert!(err.contains("epoll-loop: instance stopped (-6)"), "stderr:\n{err}");
    assert!(!socket.exists(), "socket file left behind");
}

#[test]
fn epoll_loop_carries_a_namespace_tcp_connection() {
    if !is_root() {
        eprintln!("skipped: needs root for namespaces");
        return;
    }
    let (_, examples) = shared();
    let net = HostWithRouter::new("pkg");
    let guest = TestNs::new("pkg-g");

    // A listener on the host namespace's loopback: reads to EOF, answers
    // with the byte count and a sum, closes.
    let listener = net.host.run(|| TcpListener::bind("127.0.0.1:0")).expect("listener in the host namespace");
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut data = Vec::new();
        conn.read_to_end(&mut data).expect("read to EOF");
        let sum: u64 = data.iter().map(|&b| u64::from(b)).sum();
        conn.write_all(format!("{} {sum}", data.len()).as_bytes()).expect("answer");
    });

    let mut child = net
        .host
        .command(examples.join("epoll-loop").to_str().unwrap())
        .arg("--netns")
        .arg(&guest.path)
        .args(["--config-net", "--ns-ifname", "tap0"])
        .env_remove("LD_LIBRARY_PATH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start epoll-loop in the host namespace");
    let rx = lines(child.stdout.take().expect("piped"));
    let mut guard = Guard(child);
    wait_line(&rx, "epoll-loop: ready", LIMIT);
    assert!(
        wait_until(Duration::from_secs(5), || guest.ip(&["-4", "addr", "show", "dev", "tap0"]).contains("192.0.2.2/")),
        "tap0 not configured: {}",
        guest.ip(&["addr"])
    );

    // The guest namespace's kernel TCP, through the tap and epoll-loop, to
    // the gateway address, which leads to the host's loopback.
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let expected = format!("{} {}", data.len(), data.iter().map(|&b| u64::from(b)).sum::<u64>());
    let answer = guest
        .run(move || {
            let gateway: SocketAddr = format!("{}:{port}", HostWithRouter::ROUTER4).parse().unwrap();
            let mut s = TcpStream::connect_timeout(&gateway, Duration::from_secs(5))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            s.write_all(&data)?;
            s.shutdown(Shutdown::Write)?;
            let mut answer = String::new();
            s.read_to_string(&mut answer)?;
            Ok(answer)
        })
        .expect("TCP from the guest namespace through epoll-loop");
    assert_eq!(answer, expected, "what the host-side listener received");
    server.join().expect("listener thread");

    terminate(&mut guard, &rx);
}
