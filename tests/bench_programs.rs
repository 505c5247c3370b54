//! The benchmark's C programs (`bench/`), built and run briefly: the
//! benchmark itself (`bench/run.sh`) is not part of the suite, but its
//! tools must keep compiling and working.
//!
//! * frames-bench against the libpasst.so of this build: every frame kind
//!   answered (it exits non-zero when an answer is missing or wrong).
//! * rr: a server and the RR and CRR clients on loopback, a positive rate.
//! * frame-pump: built, and refuses a bad command line.
//!
//! Needs cc and make.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The bench programs, built against this build's library.
fn build() -> PathBuf {
    let lib = common::lib_dir();
    let out = lib.join("bench-programs");
    common::make("bench", &lib, &out, "all");
    out
}

#[test]
fn bench_programs_build_and_work() {
    let dir = build();

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
