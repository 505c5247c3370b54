//! The engine with its simplest attachments: in-process frames and the
//! QEMU stream socket, driven as a host program would.

mod common;
#[path = "hostile/frames.rs"]
mod frames;

/// fd counts are per process: tests of this file run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

use common::driver::{fd_count, now, Driver};
use common::{recv_stream_frame, stream_record};
use passt::engine::Instance;
use std::io::{IoSlice, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
const OUR_MAC: [u8; 6] = [0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55];

fn arp_request(target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&[10, 0, 2, 15]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f
}

fn check_arp_reply(f: &[u8], target: [u8; 4]) {
    assert_eq!(&f[0..6], &GUEST_MAC, "to the guest");
    assert_eq!(&f[6..12], &OUR_MAC, "from us");
    assert_eq!(&f[12..14], &[0x08, 0x06]);
    assert_eq!(&f[20..22], &[0, 2], "a reply");
    assert_eq!(&f[22..28], &OUR_MAC);
    assert_eq!(&f[28..32], &target);
    assert_eq!(&f[38..42], &[10, 0, 2, 15]);
}

const BASE: &[&str] = &["address=10.0.2.15", "netmask=24", "gateway=10.0.2.2", "ipv4-only"];

#[test]
fn frames_attachment_answers_arp_through_the_callback() {
    let _serial = serial();
    let mut opts = BASE.to_vec();
    opts.push("frames");
    let mut inst = Instance::new(&Driver::config(&opts)).unwrap();
    let seen: Arc<Mutex<Vec<Vec<u8>>>> = Default::default();
    let sink = seen.clone();
    inst.set_frame_output(Box::new(move |frames: &[IoSlice<'_>]| {
        sink.lock().unwrap().extend(frames.iter().map(|f| f.to_vec()));
        frames.len()
    }))
    .unwrap();
    inst.frame_input(&arp_request([10, 0, 2, 2]), now()).unwrap();
    inst.frame_input(&arp_request([10, 0, 2, 15]), now()).unwrap(); // the guest's own: silence
    inst.frame_input(&[1, 2, 3], now()).unwrap(); // truncated: dropped, counted
    let frames = seen.lock().unwrap();
    assert_eq!(frames.len(), 1, "one reply, none for the guest's own address");
    check_arp_reply(&frames[0], [10, 0, 2, 2]);
    assert_eq!(inst.stats().dropped(passt::stats::Drop::Truncated), 1);
    assert_eq!(inst.stats().frames_in, 3);
    assert_eq!(inst.stats().frames_out, 1);
    assert_eq!(inst.stats().bytes_out, frames[0].len() as u64);
}

#[test]
fn frames_backpressure_keeps_frames_until_taken() {
    let _serial = serial();
    let mut opts = BASE.to_vec();
    opts.push("frames");
    let mut inst = Instance::new(&Driver::config(&opts)).unwrap();
    let seen: Arc<Mutex<Vec<Vec<u8>>>> = Default::default();
    let accept = Arc::new(Mutex::new(false));
    let (sink, gate) = (seen.clone(), accept.clone());
    inst.set_frame_output(Box::new(move |frames: &[IoSlice<'_>]| {
        if !*gate.lock().unwrap() {
            return 0;
        }
        sink.lock().unwrap().extend(frames.iter().map(|f| f.to_vec()));
        frames.len()
    }))
    .unwrap();
    for i in 1..=3u8 {
        inst.frame_input(&arp_request([10, 0, 2, i]), now()).unwrap();
    }
    assert!(seen.lock().unwrap().is_empty());
    // The instance asks to be called again soon.
    assert_eq!(inst.process(now()).unwrap(), Some(1));
    *accept.lock().unwrap() = true;
    inst.process(now()).unwrap();
    let frames = seen.lock().unwrap();
    assert_eq!(frames.len(), 3);
    for (i, f) in frames.iter().enumerate() {
        check_arp_reply(f, [10, 0, 2, i as u8 + 1]);
    }
}

fn send_frame(s: &mut UnixStream, f: &[u8]) {
    // The peer may have closed already (a refused guest): not an error here.
    let _ = s.write_all(&stream_record(f));
}

#[test]
fn stream_socket_serves_one_guest_then_the_next() {
    let _serial = serial();
    let dir = std::env::temp_dir().join(format!("passt-engine-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let fds_before = fd_count();
    let mut opts = BASE.to_vec();
    let sock = format!("socket={}", path.display());
    opts.push(&sock);
    let driver = Driver::start(&Driver::config(&opts)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    for round in 0..2 {
        let mut s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // A frame split across writes, then two frames in one write.
        let b = stream_record(&arp_request([10, 0, 2, 2]));
        s.write_all(&b[..7]).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(&b[7..]).unwrap();
        check_arp_reply(&recv_stream_frame(&mut s), [10, 0, 2, 2]);
        let two = [stream_record(&arp_request([10, 0, 2, 3])), stream_record(&arp_request([10, 0, 2, 4]))].concat();
        s.write_all(&two).unwrap();
        check_arp_reply(&recv_stream_frame(&mut s), [10, 0, 2, 3]);
        check_arp_reply(&recv_stream_frame(&mut s), [10, 0, 2, 4]);
        if round == 0 {
            // A second guest while the first is attached is refused.
            let mut other = UnixStream::connect(&path).unwrap();
            other.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            send_frame(&mut other, &arp_request([10, 0, 2, 2]));
            let mut buf = [0u8; 4];
            assert_eq!(other.read(&mut buf).unwrap_or(0), 0, "refused");
        }
        drop(s);
        std::thread::sleep(Duration::from_millis(100));
    }
    // A bogus frame length closes the connection.
    let mut s = UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0);
    drop(s);
    driver.stop().unwrap();
    assert!(!path.exists(), "socket file removed when the instance is freed");
    assert_eq!(fd_count(), fds_before, "no fd leaked");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_configuration_is_refused_with_a_reason() {
    let _serial = serial();
    let err = Instance::new(&Driver::config(&["address=10.0.2.15", "ipv4-only"])).err().unwrap();
    assert!(err.contains("socket"), "{err}");
    let err = Instance::new(&Driver::config(&["ipv4-only", "address=10.0.2.15", "gateway=10.0.2.15", "frames"])).err().unwrap();
    assert!(err.contains("10.0.2.15"), "{err}");
    let err = Instance::new(&Driver::config(&["address=10.0.2.15", "ipv4-only", "socket=/nonexistent/dir/s.sock"])).err().unwrap();
    assert!(err.contains("/nonexistent/dir/s.sock"), "{err}");
    let err = Instance::new(&Driver::config(&["address=10.0.2.15", "ipv4-only", "fd=987"])).err().unwrap();
    assert!(err.contains("987"), "{err}");
}

/// What the instance has written to the guest's end of a stream so far:
/// the frames of the complete records (the end must be non-blocking).
fn frames_written(s: &mut UnixStream) -> Vec<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n @ 1..) = s.read(&mut buf) {
        bytes.extend_from_slice(&buf[..n]);
    }
    common::split_stream_records(&bytes).0.into_iter().map(<[u8]>::to_vec).collect()
}

/// A guest's connection to the host's loopback is answered (SYN-ACK) in
/// the wake-up that read its SYN: the kernel completes a loopback
/// `connect()` within the call, and the engine polls the host sockets
/// again rather than leaving the socket's writability to the next
/// wake-up (a whole round of the host's loop per connection set up).
#[test]
fn a_loopback_connect_is_answered_in_the_wake_up_that_read_the_syn() {
    use frames::{parse_out, syn, G4, GW4, P_TCP};
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    let _serial = serial();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (mut guest, theirs) = UnixStream::pair().unwrap();
    guest.set_nonblocking(true).unwrap();
    let fd = format!("fd={}", std::os::fd::IntoRawFd::into_raw_fd(theirs));
    let mut opts = BASE.to_vec();
    opts.push(&fd);
    let mut inst = Instance::new(&Driver::config(&opts)).unwrap();
    inst.process(now()).unwrap();
    frames_written(&mut guest);
    // The kernel leaves a loopback handshake to ksoftirqd when that is
    // already running (other tests' traffic on a loaded machine): enough,
    // not all, must be answered at once (none ever were before).
    let (tries, wanted, mut at_once) = (40, 5, 0);
    for i in 0..tries {
        if at_once == wanted {
            break;
        }
        let sport = 40000 + i;
        guest.write_all(&stream_record(&syn(G4.into(), GW4.into(), sport, port))).unwrap();
        let mut pfd = libc::pollfd { fd: inst.fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: pfd is a valid pollfd array of length 1.
        assert_eq!(unsafe { libc::poll(&mut pfd, 1, 5000) }, 1, "the instance never saw the SYN");
        inst.process(now()).unwrap();
        let answered = |frames: &[Vec<u8>]| {
            frames.iter().filter_map(|f| parse_out(f)).any(|o| o.proto == P_TCP && o.dport == sport && o.flags & (SYN | ACK) == SYN | ACK)
        };
        if answered(&frames_written(&mut guest)) {
            at_once += 1;
            continue;
        }
        // Answered later, then: the connection itself must work.
        let end = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            assert!(std::time::Instant::now() < end, "no SYN-ACK for connection {i}");
            // SAFETY: as above.
            unsafe { libc::poll(&mut pfd, 1, 100) };
            inst.process(now()).unwrap();
            if answered(&frames_written(&mut guest)) {
                break;
            }
        }
    }
    assert_eq!(at_once, wanted, "only {at_once} of {tries} loopback connections answered in the wake-up of their SYN");
}
