//! Duplicate ACKs for out-of-order guest segments repeat the last window
//! exactly. A sender counts an ACK whose window changed as a window
//! update, not as a duplicate (RFC 5681 section 2; Linux's tcp_ack), so
//! if the free room of the host socket grows between them (the server
//! reads), a window computed afresh for each turns the three duplicates
//! into window updates: no fast retransmit, and the guest waits for its
//! retransmission timer, with exponential backoff, after every loss.
//! Found by the flood test (tests/floods.rs): a guest->host transfer that
//! lost segments to a full queue stalled for tens of seconds.

#[path = "tcp_util.rs"]
mod util;

use passt::wire::tcp::{Options, ACK, PSH};
use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;
use util::*;

#[test]
fn duplicate_acks_keep_the_window_while_the_socket_drains() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = format!("{GW4}:{}", l.local_addr().unwrap().port());
    let mut h = H::new();
    let mut g = G::connect(&mut h, &format!("{GUEST4}:40100"), &peer);
    let (mut s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Fill part of the host socket's buffer: the server does not read yet.
    let chunk = vec![7u8; 60_000];
    for _ in 0..8 {
        g.send(&mut h, ACK | PSH, &chunk);
    }
    let last = h.wait_for(1000, |f| f.dst == g.me && f.ack == g.seq);
    let mut windows = vec![last.window];
    // A segment is lost: those after it arrive out of order, one at a
    // time, while the server drains the socket in between.
    let hole = g.seq;
    let mut buf = vec![0u8; 100_000];
    for i in 0..3u32 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        std::thread::sleep(Duration::from_millis(20));
        h.poll(10);
        h.take();
        h.guest(g.me, g.peer, hole + 1000 * (i + 1), g.ack, ACK | PSH, g.wnd, Options::default(), &[1; 1000]);
        let dup = h.wait_for(1000, |f| f.dst == g.me && f.payload.is_empty());
        assert_eq!(dup.ack, hole, "a duplicate ACK of the hole");
        windows.push(dup.window);
    }
    assert!(windows.iter().all(|w| *w == windows[0]), "duplicate ACKs with the same window as the last ACK: {windows:?}");
    // The hole filled: the three segments held after it follow, and the
    // window opens up again at once.
    h.guest(g.me, g.peer, hole, g.ack, ACK | PSH, g.wnd, Options::default(), &[2; 1000]);
    let f = h.wait_for(1000, |f| f.dst == g.me && f.ack == hole + 4000);
    assert!(f.window > windows[0], "the window grows once data is in order again: {} -> {}", windows[0], f.window);
}
