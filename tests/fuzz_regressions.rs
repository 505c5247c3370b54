//! Replays the fuzz seeds (`fuzz/corpus/TARGET/`) and every minimised
//! finding (`fuzz/regressions/TARGET/`) through the very harness the
//! `cargo fuzz` targets run (`fuzz/src/harness.rs`), in a network namespace
//! of the test's own: no panic, every frame to the guest well-formed, no
//! file descriptor leaked. The seeds' expected answers are checked too, so
//! that a harness that stopped reaching the protocols would fail here.

mod common;
#[path = "../fuzz/src/harness.rs"]
mod harness;
#[path = "../fuzz/src/seeds.rs"]
mod seeds;
#[path = "../fuzz/src/services.rs"]
mod services;

use common::netns::TestNs;
use passt::wire::tcp::{seq_lt, Segment};
use std::path::{Path, PathBuf};

/// The harness counts the process's fds: the tests of this file run one at
/// a time (even reading a file opens one).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn inputs(dir: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(dir).join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(d) => d.map(|e| e.unwrap().path()).filter(|p| p.is_file() && !is_doc(p)).collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

fn is_doc(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "md")
}

/// Runs every input through `run` inside a fresh namespace; returns what
/// each sent to the guest, by file name. A panic names the file.
fn replay(files: &[PathBuf], run: fn(&[u8]) -> Vec<Vec<u8>>) -> Vec<(String, Vec<Vec<u8>>)> {
    let ns = TestNs::new("fuzzreg");
    ns.run(|| {
        Ok(files
            .iter()
            .map(|f| {
                let data = std::fs::read(f).unwrap();
                let name = f.file_name().unwrap().to_string_lossy().into_owned();
                let out = std::panic::catch_unwind(|| run(&data))
                    .unwrap_or_else(|_| panic!("the harness failed on {}", f.display()));
                (name, out)
            })
            .collect())
    })
    .unwrap()
}

fn udp_from(frames: &[Vec<u8>], port: u16) -> Vec<Vec<u8>> {
    frames
        .iter()
        .filter_map(|f| harness::l4_of(f).filter(|(l4, p)| *p == 17 && l4.len() >= 8 && l4[0..2] == port.to_be_bytes()))
        .map(|(l4, _)| l4[8..].to_vec())
        .collect()
}

/// TCP payload bytes to the guest from `port`, and the flags seen.
fn tcp_from(frames: &[Vec<u8>], port: u16) -> (Vec<u8>, u8) {
    let (mut data, mut flags) = (Vec::new(), 0);
    for (l4, p) in frames.iter().filter_map(|f| harness::l4_of(f)) {
        if p == 6 && l4.len() >= 20 && l4[0..2] == port.to_be_bytes() {
            data.extend_from_slice(&l4[usize::from(l4[12] >> 4) * 4..]);
            flags |= l4[13];
        }
    }
    (data, flags)
}

/// TCP segments to the guest from `port`, as our own parser reads them.
fn tcp_segments_from(frames: &[Vec<u8>], port: u16) -> Vec<Segment<'_>> {
    frames
        .iter()
        .filter_map(|f| harness::l4_of(f))
        .filter(|(_, p)| *p == 6)
        .filter_map(|(l4, _)| Segment::new_checked(l4).ok())
        .filter(|s| s.src_port() == port)
        .collect()
}

/// Whether data from `port` was sent again: a segment that starts before
/// the end of one sent earlier.
fn retransmitted(frames: &[Vec<u8>], port: u16) -> bool {
    let mut end: Option<u32> = None;
    for s in tcp_segments_from(frames, port).into_iter().filter(|s| !s.payload().is_empty()) {
        if end.is_some_and(|e| seq_lt(s.seq(), e)) {
            return true;
        }
        end = Some(s.seq().wrapping_add(s.payload().len() as u32));
    }
    false
}

/// Whether a segment from `port` carried SACK blocks.
fn sack_sent(frames: &[Vec<u8>], port: u16) -> bool {
    tcp_segments_from(frames, port).iter().any(|s| s.options().is_ok_and(|o| !o.sack.is_empty()))
}

fn icmp_types(frames: &[Vec<u8>]) -> Vec<(u8, u8)> {
    frames
        .iter()
        .filter_map(|f| harness::l4_of(f))
        .filter(|(l4, p)| (*p == 1 || *p == 58) && !l4.is_empty())
        .map(|(l4, p)| (p, l4[0]))
        .collect()
}

/// What each seed must get from the instance (the seeds are the same for
/// both targets, so both are held to it).
fn check_seed(name: &str, out: &[Vec<u8>]) {
    let ether = |t: u16| out.iter().filter(|f| f[12..14] == t.to_be_bytes()).count();
    match name {
        "stream_split" => assert_eq!(ether(0x0806), 1, "{name}: one ARP reply"),
        "arp" | "stream_two_in_one" => assert_eq!(ether(0x0806), 2, "{name}: two ARP replies"),
        "dhcp" => assert_eq!(udp_from(out, 67).len(), 3, "{name}: OFFER, ACK and the INFORM's ACK"),
        "dhcpv6" => assert_eq!(udp_from(out, 547).len(), 1, "{name}: a reply"),
        "ndp" => assert!(icmp_types(out).contains(&(58, 136)), "{name}: a neighbour advertisement"),
        "icmp4" => assert_eq!(icmp_types(out).iter().filter(|t| **t == (1, 0)).count(), 2, "{name}: echo replies"),
        "icmp6" => assert_eq!(icmp_types(out).iter().filter(|t| **t == (58, 129)).count(), 2, "{name}: echo replies"),
        "udp4" => assert_eq!(udp_from(out, 7), [b"hello, udp echo".to_vec(), b"again".to_vec()], "{name}"),
        "udp6" => assert_eq!(udp_from(out, 7), [b"hello, udp echo".to_vec()], "{name}"),
        "dns4" | "dns6" => assert_eq!(udp_from(out, 53).len(), 1, "{name}: the (echoed) answer through the DNS forward"),
        "tcp4_echo" | "tcp6_echo" => {
            let (data, flags) = tcp_from(out, 7);
            assert_eq!(data, b"hello, echo\n", "{name}: echoed data");
            assert_eq!(flags & 0x13, 0x13, "{name}: SYN, ACK and FIN");
        }
        "tcp4_closing_peer" => assert_eq!(tcp_from(out, 9).1 & 0x01, 0x01, "{name}: FIN from the closing peer"),
        "tcp4_chargen" => assert!(tcp_from(out, 19).0.len() > 100_000, "{name}: bulk data from the host"),
        "tcp4_chargen_sack" => {
            assert!(tcp_from(out, 19).0.len() > 100_000, "{name}: bulk data from the host");
            assert!(retransmitted(out, 19), "{name}: the hole the guest reported sent again");
        }
        "tcp4_reorder" => {
            let (data, flags) = tcp_from(out, 7);
            assert_eq!(data, b"echoed out of order\n", "{name}: echoed data, in order");
            assert_eq!(flags & 0x13, 0x13, "{name}: SYN, ACK and FIN");
            assert!(sack_sent(out, 7), "{name}: an ACK with the held block (SACK)");
        }
        "tcp4_refused" => assert_eq!(tcp_from(out, 1).1 & 0x04, 0x04, "{name}: RST"),
        "inbound" => {
            let (data, flags) = tcp_from_to(out, harness::FWD_TCP);
            assert!(flags & 0x02 != 0, "{name}: SYN to the guest");
            assert!(data.starts_with(b"hello from the host\n"), "{name}: the host's data");
        }
        "stream_bad_length" | "stream_short_length" | "empty" => {
            assert!(icmp_types(out).iter().all(|t| *t == (58, 134)), "{name}: router advertisements only")
        }
        _ => assert!(!out.is_empty(), "{name}: the instance said something"),
    }
}

/// TCP payload bytes and flags to the guest's port `port`.
fn tcp_from_to(frames: &[Vec<u8>], port: u16) -> (Vec<u8>, u8) {
    let (mut data, mut flags) = (Vec::new(), 0);
    for (l4, p) in frames.iter().filter_map(|f| harness::l4_of(f)) {
        if p == 6 && l4.len() >= 20 && l4[2..4] == port.to_be_bytes() {
            data.extend_from_slice(&l4[usize::from(l4[12] >> 4) * 4..]);
            flags |= l4[13];
        }
    }
    (data, flags)
}

fn replay_target(target: &str, run: fn(&[u8]) -> Vec<Vec<u8>>) {
    let _serial = serial();
    let seeds = inputs("corpus", target);
    assert!(seeds.len() >= 15, "the {target} seed corpus is there");
    for (name, out) in replay(&seeds, run) {
        check_seed(&name, &out);
    }
    // Findings: that they run through without a failure is the test.
    let findings = inputs("regressions", target);
    replay(&findings, run);
}

#[test]
fn frames_seeds_and_findings_replay() {
    replay_target("frames", harness::run_frames);
}

/// The `frames_mtu576` target shares the `frames` seeds; their answers
/// differ (no IPv6), so only the harness's own checks apply.
#[test]
fn frames_mtu576_seeds_and_findings_replay() {
    let _serial = serial();
    let inputs: Vec<PathBuf> = [inputs("corpus", "frames"), inputs("regressions", "frames_mtu576")].concat();
    let out = replay(&inputs, harness::run_frames_mtu576);
    let (_, chargen) = out.iter().find(|(n, _)| n == "tcp4_chargen").expect("the chargen seed");
    assert!(tcp_from(chargen, 19).0.len() > 100_000, "bulk data in small segments");
}

#[test]
fn stream_seeds_and_findings_replay() {
    replay_target("stream", harness::run_stream);
}

#[test]
fn services_seeds_and_findings_replay() {
    let _serial = serial();
    let seeds = inputs("corpus", "services");
    assert!(seeds.len() >= 9, "the services seed corpus is there");
    for f in seeds.iter().chain(inputs("regressions", "services").iter()) {
        let data = std::fs::read(f).unwrap();
        let reply = services::run_services(&data);
        if f.parent().unwrap().ends_with("corpus/services") {
            // Every seed is a request that gets an answer.
            assert!(reply.is_some(), "no reply to the seed {}", f.display());
        }
    }
}

/// The seeds in the repository are what the generator writes.
#[test]
fn seed_corpus_is_up_to_date() {
    let _serial = serial();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let targets = [
        ("frames", seeds::all()),
        ("stream", [seeds::all(), seeds::stream_only()].concat()),
        ("services", seeds::services()),
    ];
    for (target, all) in targets {
        for (name, data) in all {
            let path = dir.join(target).join(name);
            assert_eq!(std::fs::read(&path).ok(), Some(data), "{} differs from the generator (run the seeds generator)", path.display());
        }
    }
}
