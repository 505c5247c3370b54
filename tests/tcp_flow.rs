//! The TCP flow table driven by hand against real loopback sockets: a
//! simulated guest writes segments and reads the frames we queue.

#[path = "tcp_util.rs"]
mod util;

use passt::fwd::PortSpec;
use passt::sys::tcp as stcp;
use passt::wire::tcp::{Options, ACK, FIN, PSH, RST, SYN};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;
use util::*;

fn server4() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, format!("{GW4}:{port}"))
}

fn accept(l: &TcpListener) -> TcpStream {
    let (s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn inq(h: &H, g: &G) -> usize {
    stcp::inq(h.tcp.socket_of(g.me, g.peer).expect("connection exists")).unwrap()
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn handshake_syn_ack_has_our_mss_and_window_scale() {
    let (l, peer) = server4();
    let mut h = H::new();
    let me = sa(&format!("{GUEST4}:40001"));
    h.guest(me, sa(&peer), 5000, 0, SYN, 65535, Options { mss: Some(1400), window_scale: Some(5), ..Default::default() }, &[]);
    let f = h.wait_for(2000, |f| f.dst == me);
    assert_eq!(f.flags, SYN | ACK);
    assert_eq!(f.src, sa(&peer));
    assert_eq!(f.ack, 5001);
    assert_eq!(f.opts.mss, Some((MTU - 40) as u16), "our MSS comes from our MTU");
    assert_eq!(f.opts.window_scale, Some(7));
    assert!(f.window > 0);
    let _s = accept(&l);
    assert_eq!(h.tcp.len(), 1);
    // A SYN without window scaling gets none back.
    let me2 = sa(&format!("{GUEST4}:40002"));
    h.guest(me2, sa(&peer), 9, 0, SYN, 65535, Options { mss: Some(1400), ..Default::default() }, &[]);
    let f = h.wait_for(2000, |f| f.dst == me2);
    assert_eq!(f.flags, SYN | ACK);
    assert_eq!(f.opts.window_scale, None);
}

#[test]
fn connection_refused_is_rst_at_once() {
    let mut h = H::new();
    let me = sa(&format!("{GUEST4}:40003"));
    let peer = sa(&format!("{GW4}:{}", free_port()));
    let t0 = std::time::Instant::now();
    h.guest(me, peer, 777, 0, SYN, 65535, G::syn_options(), &[]);
    let f = h.wait_for(1000, |f| f.dst == me);
    assert!(t0.elapsed() < Duration::from_millis(500));
    assert_eq!(f.flags, RST | ACK);
    assert_eq!(f.ack, 778);
    assert_eq!(h.tcp.len(), 0);
    assert_eq!(h.budget.used, 0, "budget released");
}

#[test]
fn guest_data_reaches_server_and_ack_covers_it() {
    let (l, peer) = server4();
    let mut h = H::new();
    let mut g = G::connect(&mut h, &format!("{GUEST4}:40004"), &peer);
    let mut s = accept(&l);
    let data = pattern(10_000, 1);
    let start = g.seq;
    g.send(&mut h, ACK | PSH, &data);
    let f = h.wait_for(1000, |f| f.dst == g.me && f.has(ACK));
    assert_eq!(f.ack, start + 10_000);
    assert!(f.payload.is_empty());
    let mut got = vec![0u8; 10_000];
    s.read_exact(&mut got).unwrap();
    assert_eq!(got, data);
    // A second copy of the same data (a retransmission) is not written again.
    h.guest(g.me, g.peer, start, g.ack, ACK, g.wnd, Options::default(), &data);
    let f = h.wait_for(1000, |f| f.dst == g.me);
    assert_eq!(f.ack, start + 10_000);
    s.set_nonblocking(true).unwrap();
    assert_eq!(s.read(&mut got).unwrap_err().kind(), ErrorKind::WouldBlock);
    // Partly old data: only the new part is written.
    h.guest(g.me, g.peer, start + 9_990, g.ack, ACK, g.wnd, Options::default(), &data[9_990..]);
    h.guest(g.me, g.peer, start + 9_995, g.ack, ACK, g.wnd, Options::default(), b"0123456789abcde");
    s.set_nonblocking(false).unwrap();
    let mut tail = [0u8; 10];
    s.read_exact(&mut tail).unwrap();
    assert_eq!(&tail, b"56789abcde");
}

#[test]
fn host_data_is_consumed_only_when_acked() {
    let (l, peer) = server4();
    let mut h = H::new();
    let mut g = G::connect(&mut h, &format!("{GUEST4}:40005"), &peer);
    let mut s = accept(&l);
    let data = pattern(3000, 7);
    s.write_all(&data).unwrap();
    let f = h.wait_for(2000, |f| f.dst == g.me && !f.payload.is_empty());
    assert_eq!(f.seq, g.ack);
    assert_eq!(f.payload, data, "one segment: the MSS is large");
    assert!(f.has(PSH));
    assert_eq!(inq(&h, &g), 3000, "peeked, not consumed");
    // ACK the first 1000 bytes.
    h.guest(g.me, g.peer, g.seq, g.ack + 1000, ACK, g.wnd, Options::default(), &[]);
    assert_eq!(inq(&h, &g), 2000);
    g.ack += 3000;
    g.ack_now(&mut h);
    assert_eq!(inq(&h, &g), 0);
    // And more data keeps flowing after that.
    let more = pattern(200_000, 9);
    let writer = std::thread::spawn(move || {
        s.write_all(&more).unwrap();
        s
    });
    let got = g.recv(&mut h, 200_000, 5000);
    assert_eq!(got, pattern(200_000, 9));
    drop(writer.join().unwrap());
}

#[test]
fn a_full_frame_queue_holds_data_back_without_loss() {
    let (l, peer) = server4();
    // Room for one largest frame only.
    let mut h = H::with_queue(10, 0);
    let mut g = G::connect(&mut h, &format!("{GUEST4}:40021"), &peer);
    let mut s = accept(&l);
    let data = pattern(1 << 20, 21);
    let w = std::thread::spawn(move || {
        s.write_all(&data).unwrap();
        s
    });
    assert_eq!(g.recv(&mut h, 1 << 20, 10_000), pattern(1 << 20, 21));
    assert_eq!(h.stats.dropped(passt::stats::Drop::TxFull), 0);
    drop(w.join().unwrap());
}

#[test]
fn segments_respect_guest_mss_and_window() {
    let (l, peer) = server4();
    let mut h = H::new();
    let me = sa(&format!("{GUEST4}:40006"));
    // MSS 1000, no window scaling, window 4000.
    h.guest(me, sa(&peer), 1, 0, SYN, 4000, Options { mss: Some(1000), ..Default::default() }, &[]);
    let sa_ = h.wait_for(2000, |f| f.dst == me);
    h.guest(me, sa(&peer), 2, sa_.seq + 1, ACK, 4000, Options::default(), &[]);
    let mut s = accept(&l);
    s.write_all(&pattern(10_000, 3)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    h.poll(100);
    let frames: Vec<_> = h.take().into_iter().filter(|f| !f.payload.is_empty()).collect();
    assert_eq!(frames.iter().map(|f| f.payload.len()).collect::<Vec<_>>(), vec![1000; 4], "window of 4000");
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.seq, sa_.seq + 1 + 1000 * i as u32);
    }
    // Opening the window (ACK of 2000, window 4000) sends 2000 more.
    h.guest(me, sa(&peer), 2, sa_.seq + 1 + 2000, ACK, 4000, Options::default(), &[]);
    let frames: Vec<_> = h.take().into_iter().filter(|f| !f.payload.is_empty()).collect();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].seq, sa_.seq + 1 + 4000);
}

#[test]
fn host_data_fills_one_full_segment_per_frame_both_ip_versions() {
    // Frames without offloads carry one segment each; several are peeked
    // at once. Every frame must be a whole MSS but the last of a burst,
    // with its own sequence number and checksum (checked by parse_frame).
    for (n, (guest, listen)) in [(GUEST4, "127.0.0.1:0"), (GUEST6, "[::1]:0")].into_iter().enumerate() {
        let l = TcpListener::bind(listen).unwrap();
        let peer = if n == 0 { format!("{GW4}:{}", l.local_addr().unwrap().port()) } else { format!("[{GW6}]:{}", l.local_addr().unwrap().port()) };
        let mut h = H::new();
        let opts = Options { mss: Some(1460), window_scale: Some(7), ..Default::default() };
        let me = if n == 0 { format!("{guest}:40031") } else { format!("[{guest}]:40031") };
        let mut g = G::connect_with(&mut h, &me, &peer, opts);
        let mut s = accept(&l);
        let data = pattern(3 << 20, 31);
        let w = std::thread::spawn(move || {
            s.write_all(&data).unwrap();
            s
        });
        let mut got = Vec::new();
        let end = std::time::Instant::now() + Duration::from_secs(20);
        while got.len() < 3 << 20 {
            assert!(std::time::Instant::now() < end, "received {} bytes", got.len());
            h.poll(20);
            let frames: Vec<_> = h.take().into_iter().filter(|f| !f.payload.is_empty()).collect();
            for (i, f) in frames.iter().enumerate() {
                assert!(f.payload.len() <= 1460);
                assert_eq!(f.seq, g.ack, "in order, no gap");
                if f.payload.len() < 1460 {
                    let next_seq = frames.get(i + 1).map(|f| f.seq);
                    assert!(next_seq.is_none() || f.has(PSH), "only the last of a peek is short");
                }
                got.extend_from_slice(&f.payload);
                g.ack = g.ack.wrapping_add(f.payload.len() as u32);
            }
            if !frames.is_empty() {
                g.ack_now(&mut h);
            }
        }
        assert!(got == pattern(3 << 20, 31), "data intact");
        drop(w.join().unwrap());
    }
}

#[test]
fn retransmit_after_three_duplicate_acks() {
    let (l, peer) = server4();
    let mut h = H::new();
    let me = sa(&format!("{GUEST4}:40007"));
    h.guest(me, sa(&peer), 1, 0, SYN, 65535, Options { mss: Some(1000), ..Default::default() }, &[]);
    let syn_ack = h.wait_for(2000, |f| f.dst == me);
    let base = syn_ack.seq + 1;
    h.guest(me, sa(&peer), 2, base, ACK, 65535, Options::default(), &[]);
    let mut s = accept(&l);
    let data = pattern(5000, 5);
    s.write_all(&data).unwrap();
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let f = h.wait_for(2000, |f| !f.payload.is_empty());
        seen.push(f);
    }
    // "Lose" the first segment: ACK the SYN only, three times.
    for _ in 0..3 {
        h.guest(me, sa(&peer), 2, base, ACK, 65535, Options::default(), &[]);
    }
    let f = h.wait_for(100, |f| !f.payload.is_empty());
    assert_eq!(f.seq, base, "went back to the oldest unacknowledged byte");
    assert_eq!(f.payload, &data[..1000]);
    // The guest now has all of it: one ACK past what we resent so far.
    h.guest(me, sa(&peer), 2, base + 5000, ACK, 65535, Options::default(), &[]);
    assert_eq!(stcp::inq(h.tcp.socket_of(me, sa(&peer)).unwrap()).unwrap(), 0);
    // New data continues at the right sequence number.
    s.write_all(b"next").unwrap();
    let f = h.wait_for(2000, |f| f.payload == b"next");
    assert_eq!(f.seq, base + 5000);
}

#[test]
fn acks_with_data_and_sack_blocks_count_as_duplicates() {
    let (l, peer) = server4();
    let mut h = H::new();
    let me = sa(&format!("{GUEST4}:40033"));
    let opts = Options { mss: Some(1000), sack_permitted: true, ..Default::default() };
    h.guest(me, sa(&peer), 1, 0, SYN, 65535, opts, &[]);
    let syn_ack = h.wait_for(2000, |f| f.dst == me);
    assert!(syn_ack.opts.sack_permitted);
    let base = syn_ack.seq + 1;
    h.guest(me, sa(&peer), 2, base, ACK, 65535, Options::default(), &[]);
    let mut s = accept(&l);
    let data = pattern(5000, 9);
    s.write_all(&data).unwrap();
    for _ in 0..5 {
        h.wait_for(2000, |f| !f.payload.is_empty());
    }
    // The first segment is lost; the guest sends data of its own with
    // each ACK (and its window changes), so only the SACK blocks say that
    // these are duplicates. Without them: no retransmission until the
    // timer, which does not run here.
    let mut seq = 2u32;
    for (i, wnd) in [(1u32, 60000u16), (2, 61000), (3, 62000)] {
        let mut sack = passt::wire::tcp::SackBlocks::default();
        sack.push(base + 1000, base + 1000 * (i + 1));
        let opts = Options { sack, ..Default::default() };
        h.guest(me, sa(&peer), seq, base, ACK | PSH, wnd, opts, b"data");
        seq += 4;
    }
    let f = h.wait_for(100, |f| !f.payload.is_empty());
    assert_eq!(f.seq, base, "went back to the oldest unacknowledged byte");
    assert_eq!(f.payload, &data[..1000]);
    let mut got = [0u8; 12];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"datadatadata");
}

#[test]
fn retransmit_on_timeout_with_backoff_then_give_up() {
    let (l, peer) = server4();
    let mut h = H::new();
    let g = G::connect(&mut h, &format!("{GUEST4}:40008"), &peer);
    let mut s = accept(&l);
    s.write_all(b"lost in the mail").unwrap();
    let first = h.wait_for(2000, |f| !f.payload.is_empty());
    assert_eq!(first.seq, g.ack);
    h.advance(Duration::from_millis(900));
    assert!(h.take().is_empty(), "not before the timeout");
    h.advance(Duration::from_millis(200));
    let again = h.take();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].seq, &again[0].payload), (first.seq, &first.payload));
    // Backoff: the next one after 2 s, not 1.
    h.advance(Duration::from_millis(1500));
    assert!(h.take().is_empty());
    h.advance(Duration::from_millis(600));
    assert_eq!(h.take().len(), 1);
    // Never acknowledged: reset after the last retransmission.
    for _ in 0..10 {
        h.advance(Duration::from_secs(61));
    }
    let out = h.take();
    assert!(out.iter().any(|f| f.has(RST)), "{out:?}");
    assert_eq!(h.tcp.len(), 0);
    let mut b = [0u8; 1];
    assert_eq!(s.read(&mut b).unwrap_err().kind(), ErrorKind::ConnectionReset);
}

#[test]
fn retransmit_timeout_follows_measured_round_trips() {
    let (l, peer) = server4();
    let mut h = H::new();
    let mut g = G::connect(&mut h, &format!("{GUEST4}:40031"), &peer);
    let mut s = accept(&l);
    // A few exchanges answered within 2 ms: the timeout drops to its
    // 200 ms floor (it was the initial 1 s before any measurement).
    for i in 0..4u8 {
        s.write_all(&[i; 100]).unwrap();
        let f = h.wait_for(2000, |f| !f.payload.is_empty());
        assert_eq!(f.seq, g.ack);
        h.advance(Duration::from_millis(2));
        g.ack = g.ack.wrapping_add(f.payload.len() as u32);
        g.ack_now(&mut h);
    }
    s.write_all(b"lost").unwrap();
    let lost = h.wait_for(2000, |f| !f.payload.is_empty());
    h.advance(Duration::from_millis(150));
    assert!(h.take().iter().all(|f| f.payload.is_empty()), "resent before 200 ms");
    h.advance(Duration::from_millis(100));
    let again: Vec<Out> = h.take().into_iter().filter(|f| !f.payload.is_empty()).collect();
    assert_eq!(again.len(), 1, "resent once after 250 ms, not after the initial 1 s");
    assert_eq!((again[0].seq, &again[0].payload), (lost.seq, &lost.payload));
    // Backoff doubles from there: 400 ms to the next.
    h.advance(Duration::from_millis(300));
    assert!(h.take().iter().all(|f| f.payload.is_empty()));
    h.advance(Duration::from_millis(150));
    assert_eq!(h.take().iter().filter(|f| !f.payload.is_empty()).count(), 1);
    // Acknowledged at last: the data arrived once, the connection lives on.
    g.ack = g.ack.wrapping_add(4);
    g.ack_now(&mut h);
    s.write_all(b"more").unwrap();
    let next = h.wait_for(2000, |f| !f.payload.is_empty());
    assert_eq!((next.seq, &next.payload[..]), (g.ack, &b"more"[..]));
}

#[test]
fn a_stalled_guest_is_given_two_minutes_even_with_a_short_timeout() {
    let (l, peer) = server4();
    let mut h = H::new();
    let mut g = G::connect(&mut h, &format!("{GUEST4}:40032"), &peer);
    let mut s = accept(&l);
    s.write_all(b"measured").unwrap();
    let f = h.wait_for(2000, |f| !f.payload.is_empty());
    h.advance(Duration::from_millis(1));
    g.ack = g.ack.wrapping_add(f.payload.len() as u32);
    g.ack_now(&mut h);
    // Then the guest stops answering (paused): 0.2 + 0.4 + ... s.
    s.write_all(b"unanswered").unwrap();
    h.wait_for(2000, |f| !f.payload.is_empty());
    for _ in 0..10 {
        h.advance(Duration::from_secs(10)); // 100 s
    }
    assert!(!h.take().iter().any(|f| f.has(RST)), "reset within 100 s");
    assert_eq!(h.tcp.len(), 1);
    for _ in 0..4 {
        h.advance(Duration::from_secs(61));
    }
    assert!(h.take().iter().any(|f| f.has(RST)), "never reset");
    assert_eq!(h.tcp.len(), 0);
}

#[test]
fn fin_from_guest_then_host_data_then_host_fin() {
    let (l, peer) = server4();
    let mut h = H::new();
    let mut g = G::connect(&mut h, &format!("{GUEST4}:40009"), &peer);
    let mut s = accept(&l);
    g.send(&mut h, ACK | FIN | PSH, b"request");
    let f = h.wait_for(1000, |f| f.dst == g.me);
    assert_eq!(f.ack, g.seq, "FIN acknowledged");
    let mut req = Vec::new();
    s.read_to_end(&mut req).unwrap();
    assert_eq!(req, b"request", "then end of stream");
    // Half-closed: the other direction still works.
    s.write_all(b"response").unwrap();
    assert_eq!(g.recv(&mut h, 8, 2000), b"response");
    s.shutdown(Shutdown::Write).unwrap();
    let fin = h.wait_for(2000, |f| f.has(FIN));
    assert_eq!(fin.seq, g.ack);
    assert_eq!(h.tcp.len(), 1, "closed only once the FIN is acknowledged");
    g.ack += 1;
    g.ack_now(&mut h);
    assert_eq!(h.tcp.len(), 0);
    assert_eq!(h.budget.used, 0);
}

#[test]
fn fin_from_host_first_guest_keeps_sending() {
    let (l, peer) = server4();
    let mut h = H::new();
    let mut g = G::connect(&mut h, &format!("{GUEST4}:40010"), &peer);
    let mut s = accept(&l);
    s.write_all(b"banner").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(g.recv(&mut h, 6, 2000), b"banner");
    let fin = h.wait_for(2000, |f| f.has(FIN));
    assert_eq!(fin.seq, g.ack);
    g.ack += 1;
    g.ack_now(&mut h);
    assert_eq!(h.tcp.len(), 1, "half-closed, still open from the guest");
    g.send(&mut h, ACK | PSH, b"still talking");
    let mut b = [0u8; 13];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"still talking");
    g.send(&mut h, ACK | FIN, &[]);
    assert_eq!(h.tcp.len(), 0);
    assert_eq!(s.read(&mut b).unwrap(), 0, "clean end of stream, no reset");
}

#[test]
fn guest_rst_resets_the_host_side() {
    let (l, peer) = server4();
    let mut h = H::new();
    let mut g = G::connect(&mut h, &format!("{GUEST4}:40011"), &peer);
    let mut s = accept(&l);
    // An RST outside the window is ignored.
    h.guest(g.me, g.peer, g.seq.wrapping_add(1 << 30), 0, RST, 0, Options::default(), &[]);
    assert_eq!(h.tcp.len(), 1);
    g.send(&mut h, RST, &[]);
    assert_eq!(h.tcp.len(), 0);
    let mut b = [0u8; 1];
    assert_eq!(s.read(&mut b).unwrap_err().kind(), ErrorKind::ConnectionReset);
    // Later segments of that connection get RST.
    g.send(&mut h, ACK, b"x");
    let f = h.wait_for(500, |f| f.dst == g.me);
    assert!(f.has(RST));
}

#[test]
fn host_reset_is_rst_to_guest() {
    let (l, peer) = server4();
    let mut h = H::new();
    let g = G::connect(&mut h, &format!("{GUEST4}:40012"), &peer);
    let s = accept(&l);
    stcp::set_linger_zero(s.as_fd()).unwrap();
    drop(s);
    let f = h.wait_for(2000, |f| f.dst == g.me && f.has(RST));
    assert_eq!(f.seq, g.ack);
    assert_eq!(h.tcp.len(), 0);
}

#[test]
fn flow_limit_refuses_with_rst() {
    let (l, peer) = server4();
    let mut h = H::with_limit(1);
    let _g = G::connect(&mut h, &format!("{GUEST4}:40013"), &peer);
    let _s = accept(&l);
    let me = sa(&format!("{GUEST4}:40014"));
    h.guest(me, sa(&peer), 100, 0, SYN, 65535, G::syn_options(), &[]);
    let f = h.wait_for(500, |f| f.dst == me);
    assert_eq!(f.flags, RST | ACK);
    assert_eq!(f.ack, 101);
    assert_eq!(h.stats.dropped(passt::stats::Drop::Limit), 1);
    assert_eq!(h.tcp.len(), 1);
}

#[test]
fn out_of_order_data_is_held_dup_acked_and_written_once_the_gap_fills() {
    let (l, peer) = server4();
    let mut h = H::new();
    let mut g = G::connect(&mut h, &format!("{GUEST4}:40015"), &peer);
    let mut s = accept(&l);
    h.guest(g.me, g.peer, g.seq + 5, g.ack, ACK, g.wnd, Options::default(), b"later");
    let acks = h.take();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].ack, g.seq, "duplicate ACK of what we have");
    assert!(acks[0].opts.sack.is_empty(), "no SACK blocks unless SACK was permitted");
    assert!(h.tcp.held_bytes() > 5, "held");
    // Three segments in one batch, after the gap and overlapping what is
    // held: three duplicate ACKs, nothing held twice.
    for i in 0..3 {
        h.guest_no_flush(g.me, g.peer, g.seq + 5 + i, g.ack, ACK, g.wnd, Options::default(), b"x");
    }
    h.run(|t, c| t.flush(c));
    let acks = h.take();
    assert_eq!(acks.len(), 3);
    assert!(acks.iter().all(|a| a.ack == g.seq && a.window == acks[0].window));
    // The gap filled: the held data follows it, and one ACK covers both.
    g.send(&mut h, ACK, b"first");
    let f = h.wait_for(1000, |f| f.dst == g.me && f.payload.is_empty());
    assert_eq!(f.ack, g.seq + 5);
    assert_eq!(h.tcp.held_bytes(), 0);
    let mut b = [0u8; 10];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"firstlater");
}

#[test]
fn sack_is_permitted_when_the_guest_offers_it_and_acks_report_the_held_blocks() {
    let (l, peer) = server4();
    let mut h = H::new();
    let me = sa(&format!("{GUEST4}:40030"));
    // Without the offer, none in the SYN-ACK.
    h.guest(me, sa(&peer), 1, 0, SYN, 65535, G::syn_options(), &[]);
    assert!(!h.wait_for(2000, |f| f.dst == me).opts.sack_permitted);
    let _s0 = accept(&l);
    let opts = Options { sack_permitted: true, ..G::syn_options() };
    let mut g = G::connect_with(&mut h, &format!("{GUEST4}:40031"), &peer, opts);
    let mut s = accept(&l);
    let base = g.seq;
    // Segments at 100..200, 300..400 and 200..300: one run, then 500..600.
    for off in [100u32, 300, 200, 500] {
        h.guest(g.me, g.peer, base + off, g.ack, ACK, g.wnd, Options::default(), &pattern(100, off as u8));
        let dup = h.wait_for(1000, |f| f.dst == g.me && f.payload.is_empty());
        assert_eq!(dup.ack, base);
        let want: &[(u32, u32)] = match off {
            100 => &[(base + 100, base + 200)],
            300 => &[(base + 300, base + 400), (base + 100, base + 200)],
            200 => &[(base + 100, base + 400)],
            _ => &[(base + 500, base + 600), (base + 100, base + 400)],
        };
        assert_eq!(dup.opts.sack.as_slice(), want, "after the segment at {off}");
    }
    // The first gap filled: up to the second gap is acknowledged, and the
    // ACK still reports what lies beyond it.
    g.send(&mut h, ACK, &pattern(100, 0));
    let f = h.wait_for(1000, |f| f.dst == g.me && f.payload.is_empty());
    assert_eq!(f.ack, base + 400);
    assert_eq!(f.opts.sack.as_slice(), &[(base + 500, base + 600)]);
    let mut got = vec![0u8; 400];
    s.read_exact(&mut got).unwrap();
    let want: Vec<u8> = [0u8, 100, 200, 44].iter().flat_map(|&seed| pattern(100, seed)).collect();
    assert_eq!(got, want, "in order, each byte once");
    // Closing the connection gives back what it held.
    assert!(h.tcp.held_bytes() > 0);
    h.guest(g.me, g.peer, base + 400, g.ack, RST, 0, Options::default(), &[]);
    assert_eq!(h.tcp.len(), 1, "only the first connection is left");
    assert_eq!(h.tcp.held_bytes(), 0);
}

#[test]
fn held_segments_are_capped_per_connection_and_the_excess_counted() {
    let (l, peer) = server4();
    let mut h = H::new();
    let mut g = G::connect(&mut h, &format!("{GUEST4}:40034"), &peer);
    let mut s = accept(&l);
    // 1-byte segments with a gap before each: every one held apart.
    for i in 0..513u32 {
        h.guest_no_flush(g.me, g.peer, g.seq + 1 + 2 * i, g.ack, ACK, g.wnd, Options::default(), &[i as u8]);
    }
    h.run(|t, c| t.flush(c));
    let limit = passt::stats::Drop::Limit;
    assert_eq!(h.stats.dropped(limit), 1, "the 513th is over the cap");
    let per_segment = h.tcp.held_bytes() / 512;
    assert!(per_segment >= 1 && h.tcp.held_bytes() % 512 == 0, "512 charged alike: {}", h.tcp.held_bytes());
    // Filling the first gap releases the first held segment only.
    g.send(&mut h, ACK, b"a");
    let mut b = [0u8; 2];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, &[b'a', 0]);
    assert_eq!(h.tcp.held_bytes(), 511 * per_segment);
}

#[test]
fn segments_in_any_order_with_losses_and_overlaps_arrive_as_one_stream() {
    for seed in 1..=4u64 {
        one_stream_from_random_segments(seed);
    }
}

fn one_stream_from_random_segments(seed: u64) {
    let (l, peer) = server4();
    let mut h = H::new();
    let opts = Options { sack_permitted: true, ..G::syn_options() };
    let g = G::connect_with(&mut h, &format!("{GUEST4}:{}", 40035 + seed), &peer, opts);
    let mut s = accept(&l);
    let data = pattern(60_000, seed as u8);
    let base = g.seq;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    // Rounds of segments of random offsets and lengths (overlapping each
    // other), in random order, a third of them lost, until all is ACKed;
    // the first of each round starts at the ACK (the guest's retransmission).
    let (mut acked, mut max_held) = (0usize, 0usize);
    for round in 0.. {
        assert!(round < 500, "seed {seed}: stuck at {acked} of {}", data.len());
        for i in 0..40 {
            let from = acked + if i == 0 { 0 } else { next(4000) as usize };
            let len = 1 + next(1460) as usize;
            let to = (from + len).min(data.len());
            if from >= to || next(3) == 0 {
                continue;
            }
            h.guest_no_flush(g.me, g.peer, base + from as u32, g.ack, ACK, g.wnd, Options::default(), &data[from..to]);
        }
        h.run(|t, c| t.flush(c));
        for f in h.take() {
            if f.dst == g.me && f.has(ACK) {
                acked = acked.max(f.ack.wrapping_sub(base) as usize);
            }
        }
        max_held = max_held.max(h.tcp.held_bytes());
        if acked == data.len() {
            break;
        }
    }
    let mut got = vec![0u8; data.len()];
    s.read_exact(&mut got).unwrap();
    assert!(got == data, "the server got the stream, each byte once and in order");
    assert!(max_held > 0, "data after gaps was held on the way");
    assert_eq!(h.tcp.held_bytes(), 0);
}

#[test]
fn a_fin_after_a_gap_is_held_with_its_data() {
    let (l, peer) = server4();
    let mut h = H::new();
    let mut g = G::connect(&mut h, &format!("{GUEST4}:40032"), &peer);
    let mut s = accept(&l);
    h.guest(g.me, g.peer, g.seq + 4, g.ack, ACK | FIN, g.wnd, Options::default(), b"tail");
    let dup = h.wait_for(1000, |f| f.dst == g.me && f.payload.is_empty());
    assert_eq!(dup.ack, g.seq);
    g.send(&mut h, ACK, b"head");
    let f = h.wait_for(1000, |f| f.dst == g.me && f.payload.is_empty() && f.ack != dup.ack);
    assert_eq!(f.ack, g.seq + 5, "data and FIN acknowledged");
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"headtail", "then end of stream");
}

#[test]
fn window_follows_the_send_buffer_and_reopens() {
    let (l, peer) = server4();
    let mut h = H::new();
    let mut g = G::connect(&mut h, &format!("{GUEST4}:40016"), &peer);
    let mut s = accept(&l);
    // The server reads nothing: send what each ACK allows until it is 0.
    let mut window = u32::from(g.syn_ack_window);
    let mut sent = 0usize;
    let mut rounds = 0;
    let mut edge = g.seq + window;
    while window > 0 {
        rounds += 1;
        assert!(rounds < 100_000);
        // Large and MSS-sized writes alike.
        let size = [60_000, 1448, 9000, 536][rounds % 4];
        let chunk = (window.min(size) as usize).max(1);
        let data = pattern(chunk, sent as u8);
        let before = g.seq;
        g.send(&mut h, ACK, &data);
        let a = h.take().into_iter().rev().find(|f| f.dst == g.me).expect("an ACK");
        assert_eq!(a.ack, before + chunk as u32, "all of it taken: the window was honest");
        sent += chunk;
        window = u32::from(a.window) << g.peer_ws;
        let new_edge = a.ack + window;
        assert!(new_edge.wrapping_sub(edge) as i32 >= -128, "the right edge moved left by more than rounding");
        edge = new_edge;
    }
    assert!(sent > 100_000, "{sent}");
    // The server drains: a window update arrives without guest traffic.
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; sent];
        s.read_exact(&mut buf).unwrap();
        s
    });
    let upd = h.wait_for(3000, |f| f.dst == g.me && f.window > 0);
    assert_eq!(upd.ack, g.seq);
    let server = reader.join().unwrap();
    // Later updates each change the window: an identical ACK would be a
    // duplicate ACK to the guest (and three make it retransmit).
    for _ in 0..20 {
        h.poll(10);
    }
    let mut last = (upd.ack, upd.window);
    for f in h.take().into_iter().filter(|f| f.dst == g.me && f.flags == ACK && f.payload.is_empty()) {
        assert_ne!((f.ack, f.window), last, "duplicate window update");
        last = (f.ack, f.window);
    }
    drop(server);
}

#[test]
fn zero_window_from_guest_is_probed() {
    let (l, peer) = server4();
    let mut h = H::new();
    let mut g = G::connect(&mut h, &format!("{GUEST4}:40017"), &peer);
    let mut s = accept(&l);
    g.wnd = 0;
    g.ack_now(&mut h);
    s.write_all(b"waiting").unwrap();
    std::thread::sleep(Duration::from_millis(30));
    h.poll(50);
    assert!(h.take().iter().all(|f| f.payload.is_empty()), "nothing into a closed window");
    h.advance(Duration::from_millis(1100));
    let probe = h.take();
    assert_eq!(probe.len(), 1, "{probe:?}");
    assert_eq!(probe[0].seq, g.ack.wrapping_sub(1), "an old sequence number asks for a window");
    g.wnd = 100;
    g.ack_now(&mut h);
    assert_eq!(g.recv(&mut h, 7, 2000), b"waiting");
}

#[test]
fn guest_keepalive_is_answered_with_our_window() {
    let (l, peer) = server4();
    let mut h = H::new();
    let g = G::connect(&mut h, &format!("{GUEST4}:40020"), &peer);
    let _s = accept(&l);
    // A keepalive (or zero-window probe): one byte before what we expect.
    h.guest(g.me, g.peer, g.seq - 1, g.ack, ACK, g.wnd, Options::default(), &[]);
    let f = h.take();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!((f[0].flags, f[0].seq, f[0].ack), (ACK, g.ack, g.seq));
    assert!(f[0].window > 0);
    // A plain ACK in sequence gets nothing back.
    h.guest(g.me, g.peer, g.seq, g.ack, ACK, g.wnd, Options::default(), &[]);
    assert!(h.take().is_empty());
}

#[test]
fn inbound_with_port_mapping() {
    let port = free_port();
    let mut h = H::new();
    let spec = PortSpec::parse(&format!("{port}:2222")).unwrap();
    h.run(|t, c| t.listen(c, &[spec])).unwrap();
    assert_eq!(h.tcp.listening_ports().collect::<Vec<_>>(), vec![(port, 2222)]);
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let client_port = c.local_addr().unwrap().port();
    // The client speaks first, before the guest accepted.
    c.write_all(b"ping").unwrap();
    let syn = h.wait_for(2000, |f| f.has(SYN));
    assert_eq!(syn.flags, SYN);
    assert_eq!(syn.dst, sa(&format!("{GUEST4}:2222")));
    assert_eq!(syn.src, sa(&format!("{GW4}:{client_port}")), "loopback appears as the gateway");
    assert_eq!(syn.opts.mss, Some((MTU - 40) as u16));
    assert_eq!(syn.opts.window_scale, Some(7));
    assert!(syn.opts.sack_permitted, "SACK offered");
    // The guest accepts (and permits SACK).
    let gseq = 0x7000_0000u32;
    let opts = Options { sack_permitted: true, ..G::syn_options() };
    h.guest(syn.dst, syn.src, gseq, syn.seq + 1, SYN | ACK, 65535, opts, &[]);
    // Our ACK comes with the data waiting already.
    let ack = h.wait_for(500, |f| f.dst == syn.dst);
    assert_eq!((ack.flags, ack.seq, ack.ack), (ACK | PSH, syn.seq + 1, gseq + 1));
    assert_eq!(ack.payload, b"ping");
    assert!(ack.window > 0, "a real window from the first segment on");
    let mut g = G { me: syn.dst, peer: syn.src, seq: gseq + 1, ack: syn.seq + 5, wnd: 65535, ws: 7, peer_ws: 7, peer_mss: 65480, syn_ack_window: 0 };
    g.ack_now(&mut h);
    c.write_all(b"more").unwrap();
    assert_eq!(g.recv(&mut h, 4, 2000), b"more");
    g.send(&mut h, ACK | PSH, b"pong");
    let mut b = [0u8; 4];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"pong");
    // Data after a gap: the duplicate ACK reports it.
    h.take();
    h.guest(g.me, g.peer, g.seq + 1, g.ack, ACK, g.wnd, Options::default(), b"x");
    let dup = h.wait_for(1000, |f| f.dst == g.me && f.payload.is_empty());
    assert_eq!(dup.opts.sack.as_slice(), &[(g.seq + 1, g.seq + 2)]);
}

#[test]
fn inbound_range_and_exclusion() {
    // Find three consecutive free ports.
    let base = (40_000u16..60_000)
        .step_by(7)
        .find(|&p| (0..3).all(|i| TcpListener::bind(("::", p + i)).is_ok()))
        .unwrap();
    let mut h = H::new();
    let spec = PortSpec::parse(&format!("{}-{},~{}", base, base + 2, base + 1)).unwrap();
    h.run(|t, c| t.listen(c, &[spec])).unwrap();
    assert_eq!(h.tcp.listening_ports().collect::<Vec<_>>(), vec![(base, base), (base + 2, base + 2)]);
    assert!(TcpStream::connect(("127.0.0.1", base + 1)).is_err(), "excluded");
    // Over IPv6 loopback too (dual-stack listener).
    let _c = TcpStream::connect(("::1", base + 2)).unwrap();
    let syn = h.wait_for(2000, |f| f.has(SYN));
    assert_eq!(syn.dst, sa(&format!("[{GUEST6}]:{}", base + 2)));
    assert_eq!(syn.src.ip(), GW6.parse::<std::net::IpAddr>().unwrap());
    assert_eq!(syn.opts.mss, Some((MTU - 60) as u16));
    // A port in use is an error naming it.
    let taken = TcpListener::bind("0.0.0.0:0").unwrap();
    let p = taken.local_addr().unwrap().port();
    let e = h.run(|t, c| t.listen(c, &[PortSpec::parse(&p.to_string()).unwrap()])).unwrap_err();
    assert!(e.contains(&p.to_string()), "{e}");
}

#[test]
fn inbound_refused_by_guest_resets_client() {
    let port = free_port();
    let mut h = H::new();
    h.run(|t, c| t.listen(c, &[PortSpec::parse(&port.to_string()).unwrap()])).unwrap();
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let syn = h.wait_for(2000, |f| f.has(SYN));
    h.guest(syn.dst, syn.src, 0, syn.seq + 1, RST | ACK, 0, Options::default(), &[]);
    assert_eq!(h.tcp.len(), 0);
    let mut b = [0u8; 1];
    assert_eq!(c.read(&mut b).unwrap_err().kind(), ErrorKind::ConnectionReset);
}

#[test]
fn inbound_unanswered_syn_is_resent_then_given_up() {
    let port = free_port();
    let mut h = H::new();
    h.run(|t, c| t.listen(c, &[PortSpec::parse(&port.to_string()).unwrap()])).unwrap();
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let syn = h.wait_for(2000, |f| f.has(SYN));
    h.advance(Duration::from_millis(1100));
    let again = h.take();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].flags, again[0].seq), (SYN, syn.seq));
    for _ in 0..10 {
        h.advance(Duration::from_secs(1));
    }
    assert_eq!(h.tcp.len(), 0);
    let mut b = [0u8; 1];
    assert_eq!(c.read(&mut b).unwrap_err().kind(), ErrorKind::ConnectionReset);
}

#[test]
fn ipv6_outbound() {
    let l = TcpListener::bind("[::1]:0").unwrap();
    let peer = format!("[{GW6}]:{}", l.local_addr().unwrap().port());
    let mut h = H::new();
    let mut g = G::connect(&mut h, &format!("[{GUEST6}]:40018"), &peer);
    assert_eq!(g.peer_mss, (MTU - 60) as u16);
    let mut s = accept(&l);
    g.send(&mut h, ACK | PSH, b"over six");
    let mut b = [0u8; 8];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"over six");
    s.write_all(b"and back").unwrap();
    assert_eq!(g.recv(&mut h, 8, 2000), b"and back");
}

#[test]
fn peek_fallback_without_peek_offset() {
    let (l, peer) = server4();
    let mut h = H::new();
    h.tcp.set_peek_offset(false);
    let me = sa(&format!("{GUEST4}:40019"));
    h.guest(me, sa(&peer), 1, 0, SYN, 65535, Options { mss: Some(1000), window_scale: Some(7), ..Default::default() }, &[]);
    let syn_ack = h.wait_for(2000, |f| f.dst == me);
    let base = syn_ack.seq + 1;
    let mut g = G { me, peer: sa(&peer), seq: 2, ack: base, wnd: 65535, ws: 7, peer_ws: 7, peer_mss: 1000, syn_ack_window: 0 };
    g.ack_now(&mut h);
    let mut s = accept(&l);
    let data = pattern(3000, 11);
    s.write_all(&data).unwrap();
    let mut segs = Vec::new();
    while segs.len() < 3 {
        segs.push(h.wait_for(2000, |f| !f.payload.is_empty()));
    }
    let seqs: Vec<u32> = segs.iter().map(|f| f.seq).collect();
    assert_eq!(seqs, vec![base, base + 1000, base + 2000], "skipping what is in flight");
    assert_eq!(segs[1].payload, &data[1000..2000]);
    // ACK 1000, then three duplicates: rewind to 1000.
    for _ in 0..4 {
        h.guest(me, sa(&peer), 2, base + 1000, ACK, 65535, Options::default(), &[]);
    }
    let f = h.wait_for(500, |f| !f.payload.is_empty());
    assert_eq!((f.seq, &f.payload[..]), (base + 1000, &data[1000..2000]));
    g.ack = base + 3000;
    g.ack_now(&mut h);
    assert_eq!(stcp::inq(h.tcp.socket_of(me, sa(&peer)).unwrap()).unwrap(), 0);
    let more = pattern(100_000, 12);
    let w = std::thread::spawn(move || {
        s.write_all(&more).unwrap();
        s
    });
    assert_eq!(g.recv(&mut h, 100_000, 5000), pattern(100_000, 12));
    drop(w.join().unwrap());
}

#[test]
fn malformed_segments_are_counted_not_fatal() {
    let mut h = H::new();
    let (g, p) = (sa(&format!("{GUEST4}:1")), sa(&format!("{GW4}:2")));
    h.run(|t, c| t.handle_guest(c, g.ip(), p.ip(), &[0u8; 10]));
    assert_eq!(h.stats.dropped(passt::stats::Drop::Truncated), 1);
    let mut seg = [0u8; 20];
    seg[12] = 0x40; // data offset 4 words
    h.run(|t, c| t.handle_guest(c, g.ip(), p.ip(), &seg));
    assert_eq!(h.stats.dropped(passt::stats::Drop::BadLength), 1);
    // A SYN with a bogus option.
    let mut syn = vec![0u8; 24];
    syn[0..4].copy_from_slice(&[0, 1, 0, 2]);
    syn[12] = 0x60;
    syn[13] = SYN;
    syn[20..24].copy_from_slice(&[2, 0, 0, 0]);
    h.run(|t, c| t.handle_guest(c, g.ip(), p.ip(), &syn));
    assert_eq!(h.stats.dropped(passt::stats::Drop::Malformed), 1);
    assert_eq!(h.tcp.len(), 0);
    // An ACK for no connection gets RST with its sequence number.
    h.guest(g, p, 5, 12345, ACK, 100, Options::default(), &[]);
    let f = h.take();
    assert_eq!((f[0].flags, f[0].seq), (RST, 12345));
}

#[test]
fn a_loopback_connect_is_answered_ahead_of_the_batchs_other_work() {
    // A connect() to the host's loopback is established when it returns:
    // the SYN-ACK is queued while the batch is handled, ahead of what the
    // batch owes other connections (here the ACK of a FIN, after a
    // shutdown()), so that the engine writes it to the guest first.
    let (l, peer) = server4();
    let mut h = H::new();
    let g = G::connect(&mut h, &format!("{GUEST4}:40040"), &peer);
    let _s = accept(&l);
    let _ = h.tcp.take_answered_early();
    let _ = h.take();
    // One batch, no host poll: the first connection's FIN, a new SYN.
    h.guest_no_flush(g.me, g.peer, g.seq, g.ack, ACK | FIN, g.wnd, Options::default(), &[]);
    let me2 = sa(&format!("{GUEST4}:40041"));
    h.guest_no_flush(me2, sa(&peer), 77, 0, SYN, 65535, G::syn_options(), &[]);
    assert!(h.tcp.take_answered_early(), "the SYN was answered within the batch");
    h.run(|t, c| t.flush(c));
    let frames = h.take();
    let syn_ack = frames.iter().position(|f| f.dst == me2 && f.flags == SYN | ACK);
    let fin_ack = frames.iter().position(|f| f.dst == g.me && f.ack == g.seq + 1);
    assert!(syn_ack.is_some() && fin_ack.is_some(), "SYN-ACK and the FIN's ACK, without a host poll: {frames:?}");
    assert!(syn_ack < fin_ack, "the SYN-ACK first: {frames:?}");
    let _s2 = accept(&l);
}
