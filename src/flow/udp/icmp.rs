//! ICMP and ICMPv6 errors (RFC 792, RFC 4443 section 3) telling the guest
//! that one of its UDP datagrams failed on the host side.
//!
//! The host kernel reports the failure on our socket (error queue, or the
//! errno of a send); the guest's kernel needs an ICMP error quoting the
//! datagram *as the guest sent it* to match it to its socket, so the
//! quoted IP and UDP headers are rebuilt from the flow's tuple (guest
//! source, guest's original destination) rather than copied from the
//! host's packet, whose addresses and ports may differ. The quoted payload
//! is what the kernel gave back, trimmed so that the whole error fits in
//! 576 bytes (IPv4, RFC 1812 4.3.2.3) or 1280 bytes (IPv6, RFC 4443 2.4).

use crate::sys::udp::{SockError, ORIGIN_ICMP, ORIGIN_ICMP6};
use crate::wire::{checksum, icmp, ipv4, ipv6, udp};
use std::net::{IpAddr, SocketAddr};

/// What to tell the guest: ICMP type, code and the 4-byte field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ErrKind {
    pub icmp_type: u8,
    pub code: u8,
    pub info: u32,
}

const V4_PARAM_PROBLEM: u8 = 12;
const V6_PARAM_PROBLEM: u8 = 4;
const V4_FRAG_NEEDED: u8 = 4;
/// ICMPv4 destination unreachable codes we translate for IPv6 guests.
const V4_NET_UNREACH: u8 = 0;
const V4_HOST_UNREACH: u8 = 1;
const V4_PORT_UNREACH: u8 = 3;
const V4_ADMIN: u8 = 13;
const V6_NO_ROUTE: u8 = 0;
const V6_ADMIN: u8 = 1;
const V6_ADDR_UNREACH: u8 = 3;
const V6_PORT_UNREACH: u8 = 4;
/// An IPv6 header is 20 bytes longer than an IPv4 one: a v4 path MTU is a
/// v6 one 20 bytes larger (RFC 7915 5.2).
const V6_V4_HEADER_DIFF: u32 = 20;

/// Largest IP packet carrying an ICMPv4 error (RFC 1812 4.3.2.3).
const V4_ERROR_MAX: usize = 576;
/// Largest IPv6 packet carrying an ICMPv6 error (RFC 4443 2.4 (c)).
const V6_ERROR_MAX: usize = 1280;

/// The longest ICMP message (L4 bytes) [`emit`] writes for this family.
pub(super) const fn max_len(v6: bool) -> usize {
    if v6 {
        V6_ERROR_MAX - ipv6::HEADER_LEN
    } else {
        V4_ERROR_MAX - ipv4::HEADER_LEN
    }
}

/// The error for the guest (of family `v6`) from an error-queue entry;
/// `None` for what the guest need not hear about (local errors, zero-copy
/// notifications, redirects...).
pub(super) fn from_sock_error(e: &SockError, v6: bool) -> Option<ErrKind> {
    let k = |icmp_type, code, info| Some(ErrKind { icmp_type, code, info });
    match (e.origin, v6) {
        (ORIGIN_ICMP, false) => match e.icmp_type {
            icmp::V4_DEST_UNREACH if e.icmp_code == V4_FRAG_NEEDED => k(e.icmp_type, e.icmp_code, e.info & 0xffff),
            icmp::V4_DEST_UNREACH | icmp::V4_TIME_EXCEEDED => k(e.icmp_type, e.icmp_code, 0),
            V4_PARAM_PROBLEM => k(e.icmp_type, e.icmp_code, 0),
            _ => None,
        },
        (ORIGIN_ICMP6, true) => match e.icmp_type {
            icmp::V6_PACKET_TOO_BIG => k(e.icmp_type, 0, e.info),
            icmp::V6_DEST_UNREACH | icmp::V6_TIME_EXCEEDED => k(e.icmp_type, e.icmp_code, 0),
            V6_PARAM_PROBLEM => k(e.icmp_type, e.icmp_code, 0),
            _ => None,
        },
        // An IPv6 guest whose datagram went to an IPv4 peer (dual-stack
        // socket): translate as RFC 7915 5.2 does.
        (ORIGIN_ICMP, true) => match (e.icmp_type, e.icmp_code) {
            (icmp::V4_DEST_UNREACH, V4_FRAG_NEEDED) => {
                k(icmp::V6_PACKET_TOO_BIG, 0, (e.info & 0xffff) + V6_V4_HEADER_DIFF)
            }
            (icmp::V4_DEST_UNREACH, V4_PORT_UNREACH) => k(icmp::V6_DEST_UNREACH, V6_PORT_UNREACH, 0),
            (icmp::V4_DEST_UNREACH, V4_HOST_UNREACH) => k(icmp::V6_DEST_UNREACH, V6_ADDR_UNREACH, 0),
            (icmp::V4_DEST_UNREACH, 9 | 10 | V4_ADMIN) => k(icmp::V6_DEST_UNREACH, V6_ADMIN, 0),
            (icmp::V4_DEST_UNREACH, _) => k(icmp::V6_DEST_UNREACH, V6_NO_ROUTE, 0),
            (icmp::V4_TIME_EXCEEDED, c) => k(icmp::V6_TIME_EXCEEDED, c, 0),
            _ => None,
        },
        _ => None,
    }
}

/// The error for a send that failed locally with `errno`; `None` for
/// errors that say nothing about the destination (EAGAIN, ENOBUFS...).
pub(super) fn from_errno(errno: i32, v6: bool) -> Option<ErrKind> {
    let (t, c) = match (errno, v6) {
        (libc::ECONNREFUSED, false) => (icmp::V4_DEST_UNREACH, V4_PORT_UNREACH),
        (libc::ECONNREFUSED, true) => (icmp::V6_DEST_UNREACH, V6_PORT_UNREACH),
        (libc::EHOSTUNREACH, false) => (icmp::V4_DEST_UNREACH, V4_HOST_UNREACH),
        (libc::EHOSTUNREACH, true) => (icmp::V6_DEST_UNREACH, V6_ADDR_UNREACH),
        (libc::ENETUNREACH, false) => (icmp::V4_DEST_UNREACH, V4_NET_UNREACH),
        (libc::ENETUNREACH, true) => (icmp::V6_DEST_UNREACH, V6_NO_ROUTE),
        (libc::EACCES | libc::EPERM, false) => (icmp::V4_DEST_UNREACH, V4_ADMIN),
        (libc::EACCES | libc::EPERM, true) => (icmp::V6_DEST_UNREACH, V6_ADMIN),
        _ => return None,
    };
    Some(ErrKind { icmp_type: t, code: c, info: 0 })
}

/// Writes into `l4` an ICMP error about the UDP datagram the guest sent
/// from `guest` to `guest_dst`, quoting as much of `payload` as fits.
/// Returns the ICMP length (0 if the two addresses are of different
/// families: nothing to say then). The checksum is left to the frame
/// builder.
///
/// # Panics
/// If `l4` is shorter than [`max_len`] for the family (the caller reserves
/// that much).
pub(super) fn emit(l4: &mut [u8], kind: ErrKind, guest: SocketAddr, guest_dst: SocketAddr, payload: &[u8]) -> usize {
    let v6 = guest.is_ipv6();
    let ip_len = if v6 { ipv6::HEADER_LEN } else { ipv4::HEADER_LEN };
    let quote_at = icmp::HEADER_LEN + ip_len;
    let room = max_len(v6) - quote_at - udp::HEADER_LEN;
    let q = payload.len().min(room);
    let udp_len = udp::HEADER_LEN + q;
    let cks = match (guest.ip(), guest_dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            ipv4::emit(&mut l4[icmp::HEADER_LEN..], s, d, ipv4::PROTO_UDP, udp_len, ipv4::DEFAULT_TTL);
            checksum::pseudo_v4(s, d, ipv4::PROTO_UDP, udp_len)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            ipv6::emit(&mut l4[icmp::HEADER_LEN..], s, d, ipv6::NEXT_UDP, udp_len, ipv6::DEFAULT_HOP_LIMIT);
            checksum::pseudo_v6(s, d, ipv6::NEXT_UDP, udp_len)
        }
        _ => return 0,
    };
    icmp::emit_error(l4, kind.icmp_type, kind.code, kind.info);
    let dgram = &mut l4[quote_at..quote_at + udp_len];
    udp::emit(dgram, guest.port(), guest_dst.port(), q);
    dgram[udp::HEADER_LEN..].copy_from_slice(&payload[..q]);
    // The quoted datagram carries a checksum valid for what is quoted.
    let mut c = checksum::finish(checksum::sum(cks, dgram));
    if c == 0 {
        c = 0xffff;
    }
    dgram[6..8].copy_from_slice(&c.to_be_bytes());
    quote_at + udp_len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_port_unreachable_quotes_the_guests_datagram() {
        let mut buf = vec![0u8; max_len(false)];
        let k = from_errno(libc::ECONNREFUSED, false).unwrap();
        let n = emit(&mut buf, k, sa("192.0.2.2:40000"), sa("192.0.2.1:53"), b"query");
        assert_eq!(n, 8 + 20 + 8 + 5);
        let m = icmp::Message::new_checked(&buf[..n]).unwrap();
        assert_eq!((m.msg_type(), m.code()), (3, 3));
        let ip = ipv4::Packet::new_checked(m.body()).unwrap();
        assert_eq!((ip.src(), ip.dst(), ip.protocol()), ("192.0.2.2".parse().unwrap(), "192.0.2.1".parse().unwrap(), 17));
        let d = udp::Datagram::new_checked(ip.payload()).unwrap();
        assert_eq!((d.src_port(), d.dst_port(), d.payload()), (40000, 53, &b"query"[..]));
        let acc = checksum::pseudo_v4(ip.src(), ip.dst(), 17, d.bytes().len());
        assert_eq!(checksum::finish(checksum::sum(acc, d.bytes())), 0);
    }

    #[test]
    fn quotes_are_trimmed_to_the_rfc_limits() {
        let big = vec![0xabu8; 4000];
        let mut buf = vec![0u8; max_len(true)];
        let k = ErrKind { icmp_type: icmp::V6_PACKET_TOO_BIG, code: 0, info: 1400 };
        let n = emit(&mut buf, k, sa("[2001:db8::2]:1"), sa("[2001:db8::1]:2"), &big);
        assert_eq!(n + ipv6::HEADER_LEN, 1280);
        assert_eq!(&buf[4..8], &1400u32.to_be_bytes());
        let ip = ipv6::Packet::new_checked(&buf[8..n]).unwrap();
        assert_eq!(ip.next_header(), 17);
        let mut buf4 = vec![0u8; max_len(false)];
        let n4 = emit(&mut buf4, from_errno(libc::EHOSTUNREACH, false).unwrap(), sa("10.0.0.2:1"), sa("10.0.0.1:2"), &big);
        assert_eq!(n4 + ipv4::HEADER_LEN, 576);
        assert_eq!(emit(&mut buf4, k, sa("10.0.0.2:1"), sa("[::1]:2"), &big), 0, "mixed families");
    }

    #[test]
    fn socket_errors_translate() {
        let e = |origin, t, c, info| SockError {
            errno: 0,
            origin,
            icmp_type: t,
            icmp_code: c,
            info,
            offender: None,
            dst: None,
            len: 0,
        };
        let k = |t, c, info| Some(ErrKind { icmp_type: t, code: c, info });
        assert_eq!(from_sock_error(&e(ORIGIN_ICMP, 3, 3, 0), false), k(3, 3, 0));
        assert_eq!(from_sock_error(&e(ORIGIN_ICMP, 3, 4, 1400), false), k(3, 4, 1400));
        assert_eq!(from_sock_error(&e(ORIGIN_ICMP, 11, 0, 0), false), k(11, 0, 0));
        assert_eq!(from_sock_error(&e(ORIGIN_ICMP, 5, 0, 0), false), None, "redirect");
        assert_eq!(from_sock_error(&e(ORIGIN_ICMP6, 1, 4, 0), true), k(1, 4, 0));
        assert_eq!(from_sock_error(&e(ORIGIN_ICMP6, 2, 0, 1280), true), k(2, 0, 1280));
        assert_eq!(from_sock_error(&e(ORIGIN_ICMP, 3, 3, 0), true), k(1, 4, 0));
        assert_eq!(from_sock_error(&e(ORIGIN_ICMP, 3, 4, 1400), true), k(2, 0, 1420));
        assert_eq!(from_sock_error(&e(ORIGIN_ICMP, 11, 1, 0), true), k(3, 1, 0));
        assert_eq!(from_sock_error(&e(ORIGIN_ICMP6, 1, 4, 0), false), None);
        assert_eq!(from_sock_error(&e(crate::sys::udp::ORIGIN_LOCAL, 0, 0, 0), false), None);
        assert_eq!(from_sock_error(&e(crate::sys::udp::ORIGIN_ZEROCOPY, 0, 0, 0), true), None);
        assert_eq!(from_errno(libc::EAGAIN, false), None);
        assert_eq!(from_errno(libc::ENETUNREACH, true), k(1, 0, 0));
    }
}
