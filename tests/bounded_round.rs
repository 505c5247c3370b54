//! One `process` call does one bounded round of work: with a backlog of
//! guest frames waiting in the tap, the first call forwards part of it and
//! leaves the instance's fd readable; later calls forward the rest. (A
//! call that drained everything would hold the host's thread for as long
//! as a flood lasts, and leave it no point to yield the CPU to the readers
//! of what was delivered.) Needs root.

mod common;

use common::driver::{now, Driver};
use common::netns::{HostWithRouter, TestNs};
use passt::engine::Instance;
use std::net::UdpSocket;
use std::time::Duration;

/// Datagrams queued in the tap before the counted call: under the tap's
/// queue (500 frames), well over one round's read batch.
const BACKLOG: usize = 400;

fn fd_readable(fd: i32) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n == 1 && p.revents & libc::POLLIN != 0
}

/// Datagrams waiting at `s` (non-blocking), read and counted.
fn drain(s: &UdpSocket) -> usize {
    let mut buf = [0u8; 2048];
    let mut n = 0;
    while s.recv(&mut buf).is_ok() {
        n += 1;
    }
    n
}

#[test]
fn a_backlog_of_guest_frames_takes_several_calls() {
    let net = HostWithRouter::new("round");
    let guest = TestNs::new("round-g");
    let netns = format!("netns={}", guest.path.display());
    let config = Driver::config(&[netns.as_str(), "ns-ifname=tap0", "config-net"]);
    let (first_call, total, readable_after_first) = net
        .host
        .run(move || {
            let mut instance = Instance::new(&config).expect("instance starts");
            let server = UdpSocket::bind("127.0.0.1:0")?;
            server.set_nonblocking(true)?;
            let port = server.local_addr()?.port();
            let client = guest.run(move || {
                let c = UdpSocket::bind("0.0.0.0:0")?;
                c.connect(("192.0.2.1", port))?;
                Ok(c)
            })?;
            // The path first (the guest resolves the gateway, the flow
            // opens): "hi" until the server hears it.
            let mut up = false;
            for _ in 0..200 {
                let _ = client.send(b"hi");
                for _ in 0..10 {
                    instance.process(now()).expect("process");
                }
                if drain(&server) > 0 {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(up, "no path from the guest to the host's server");
            while fd_readable(instance.fd()) {
                instance.process(now()).expect("process");
            }
            drain(&server);

            for i in 0..BACKLOG {
                client.send(&[i as u8; 100])?;
            }
            assert!(fd_readable(instance.fd()), "the guest's datagrams did not make the fd readable");
            instance.process(now()).expect("process");
            let first_call = drain(&server);
            let readable_after_first = fd_readable(instance.fd());
            let mut total = first_call;
            for _ in 0..1000 {
                if !fd_readable(instance.fd()) {
                    break;
                }
                instance.process(now()).expect("process");
                total += drain(&server);
            }
            // Anything still in flight on loopback.
            std::thread::sleep(Duration::from_millis(50));
            total += drain(&server);
            Ok((first_call, total, readable_after_first))
        })
        .expect("test body in the host namespace");
    assert!(first_call > 0, "the first call forwarded nothing");
    assert!(first_call < BACKLOG, "one call forwarded the whole backlog of {BACKLOG} datagrams");
    assert!(readable_after_first, "work left after the first call, but the fd is not readable");
    assert_eq!(total, BACKLOG, "datagrams forwarded over all calls");
}
