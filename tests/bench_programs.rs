//! The benchmark's C programs (`bench/`), built and run briefly: the
//! benchmark itself (`bench/run.sh`) is not part of the suite, but its
//! tools must keep compiling and working.
//!
//! * frames-bench against the libpasst.so of this build: every frame kind
//!   answered (it exits non-zero when an answer is missing or wrong).
//! * rr: a server and the RR and CRR clients on loopback, a positive rate.
//! * frame-pump: built, refuses a bad command line, and two pumps (one
//!   `--listen`ing) carry a TCP transfer between two namespaces' taps
//!   intact (the benchmark's "wire" path; root only).
//!
//! Needs cc and make.

mod common;

use common::netns::{frame_pump_in, TestNs};
use common::tempdir::TempDir;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The bench programs, built against this build's library into a
/// directory of the test's own: two makes building the same binaries at
/// once let one test run a program while the other's linker was still
/// writing it (ETXTBSY, seen in CI).
fn build(test: &str) -> PathBuf {
    let lib = common::lib_dir();
    let out = lib.join("bench-programs").join(test);
    common::make("bench", &lib, &out, "all");
    out
}

#[test]
fn bench_programs_build_and_work() {
    let dir = build("work");

    let fb = Command::new(dir.join("frames-bench")).args(["all", "20000"]).output().unwrap();
    let text = String::from_utf8_lossy(&fb.stdout);
    assert!(fb.status.success(), "frames-bench: {text} {}", String::from_utf8_lossy(&fb.stderr));
    for kind in ["arp", "tcp-rst", "tcp-rst-64k"] {
        assert!(text.lines().any(|l| l.starts_with(kind) && l.contains("frames/s")), "{kind} missing: {text}");
    }

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port().to_string()
    };
    let mut server = Command::new(dir.join("rr")).args(["server", "127.0.0.1", &port]).spawn().unwrap();
    let wait = Command::new(dir.join("rr")).args(["wait", "127.0.0.1", &port, "5"]).status().unwrap();
    for mode in ["rr", "crr"] {
        let out = Command::new(dir.join("rr")).args([mode, "127.0.0.1", &port, "0.3"]).output().unwrap();
        let rate: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0.0);
        assert!(wait.success() && rate > 0.0, "{mode}: {:?} {}", out, String::from_utf8_lossy(&out.stderr));
    }
    let _ = server.kill();
    let _ = server.wait();

    let pump = Command::new(dir.join("frame-pump")).stderr(Stdio::piped()).output().unwrap();
    assert_eq!(pump.status.code(), Some(2), "usage error expected");
    assert!(String::from_utf8_lossy(&pump.stderr).contains("usage"));
}

#[test]
fn two_frame_pumps_join_two_namespaces() {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let pump = build("pumps").join("frame-pump");
    let dir = TempDir::new("wire");
    let socket = dir.0.join("wire.sock");
    let socket = socket.to_str().unwrap();
    let (a, b) = (TestNs::new("wire-a"), TestNs::new("wire-b"));
    let _listening = frame_pump_in(&b, &pump, &["--listen", socket, "tap0"], "192.0.2.1/24");
    let _connecting = frame_pump_in(&a, &pump, &[socket, "tap0"], "192.0.2.2/24");

    // 8 MiB with a pattern that shows a lost, repeated or reordered chunk,
    // in frames up to 64 KiB: the pumps' batching and partial writes.
    let listener = b.run(|| TcpListener::bind("192.0.2.1:5000")).unwrap();
    // The listener is there already; a SYN lost while the wire comes up is
    // retransmitted by the kernel.
    let mut client = a
        .run(|| TcpStream::connect_timeout(&"192.0.2.1:5000".parse().unwrap(), Duration::from_secs(10)))
        .expect("connect across the wire");
    let (mut server, _) = listener.accept().unwrap();
    server.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let data: Vec<u8> = (0..8u32 << 20).map(|i| ((i / 7) ^ (i >> 13)) as u8).collect();
    let sent = data.clone();
    let writer = std::thread::spawn(move || client.write_all(&sent));
    let mut got = Vec::new();
    server.read_to_end(&mut got).unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(got.len(), data.len(), "bytes received");
    assert!(got == data, "the data arrived changed");
}
