//! No fd leaks in any end path of a TCP connection. Alone in its own test
//! binary: it counts this process's open fds.

#[path = "tcp_util.rs"]
mod util;

use passt::fwd::PortSpec;
use passt::wire::tcp::{Options, ACK, FIN, RST, SYN};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;
use util::*;

#[test]
fn no_fd_leak_in_any_end_path() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let sport = server.local_addr().unwrap().port();
    let peer = format!("{GW4}:{sport}");
    let closed_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let fwd_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let before = fd_count();
    {
        let mut h = H::new();
        h.run(|t, c| t.listen(c, &[PortSpec::parse(&fwd_port.to_string()).unwrap()])).unwrap();
        let with_table = fd_count();
        let mut port = 30000u16;
        let mut next = || {
            port += 1;
            format!("{GUEST4}:{port}")
        };
        for round in 0..40 {
            // Graceful: FIN both ways.
            let mut g = G::connect(&mut h, &next(), &peer);
            let (mut s, _) = server.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            g.send(&mut h, ACK | FIN, b"bye");
            let mut v = Vec::new();
            s.read_to_end(&mut v).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            h.wait_for(2000, |f| f.dst == g.me && f.has(FIN));
            g.ack += 1;
            g.ack_now(&mut h);
            drop(s);
            // Guest reset.
            let mut g = G::connect(&mut h, &next(), &peer);
            let _s = server.accept().unwrap();
            g.send(&mut h, RST, &[]);
            // Host reset.
            let g = G::connect(&mut h, &next(), &peer);
            let (s, _) = server.accept().unwrap();
            passt::sys::tcp::set_linger_zero(std::os::fd::AsFd::as_fd(&s)).unwrap();
            drop(s);
            h.wait_for(2000, |f| f.dst == g.me && f.has(RST));
            // Refused.
            let me = sa(&next());
            h.guest(me, sa(&format!("{GW4}:{closed_port}")), 1, 0, SYN, 65535, Options::default(), &[]);
            h.wait_for(2000, |f| f.dst == me && f.has(RST));
            // Handshake never completed by the guest (SYN-ACK unanswered).
            let me = sa(&next());
            h.guest(me, sa(&peer), 1, 0, SYN, 65535, Options::default(), &[]);
            h.wait_for(2000, |f| f.dst == me && f.has(SYN));
            let _s = server.accept().unwrap();
            // Inbound, refused by the guest.
            let mut c = TcpStream::connect(("127.0.0.1", fwd_port)).unwrap();
            let syn = h.wait_for(2000, |f| f.has(SYN) && f.flags == SYN);
            h.guest(syn.dst, syn.src, 0, syn.seq + 1, RST | ACK, 0, Options::default(), &[]);
            let _ = c.write_all(b"x");
            // Established and left open: ended by reset_all every 10 rounds.
            let _g = G::connect(&mut h, &next(), &peer);
            let _s = server.accept().unwrap();
            if round % 10 == 9 {
                h.run(|t, c| t.reset_all(c));
            }
        }
        // The handshake timeouts.
        h.advance(Duration::from_secs(11));
        h.run(|t, c| t.reset_all(c));
        assert_eq!(h.tcp.len(), 0);
        assert_eq!(h.budget.used, 0);
        assert_eq!(fd_count(), with_table, "every connection socket closed");
    }
    assert_eq!(fd_count(), before, "epoll and listeners closed with the table");
}
