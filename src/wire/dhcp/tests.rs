//! Unit and property tests of the DHCP message layer.

use super::*;
use crate::wire::test_rng::Rng;

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/// A DHCPDISCOVER as busybox udhcpc 1.36 sends it, written by hand from
/// the layout of RFC 2131 figure 1 and RFC 2132.
fn udhcpc_discover() -> Vec<u8> {
    let mut m = vec![
        0x01, // op: BOOTREQUEST
        0x01, // htype: Ethernet
        0x06, // hlen: 6
        0x00, // hops
        0x3d, 0x1d, 0x52, 0x8a, // xid
        0x00, 0x00, // secs
        0x00, 0x00, // flags: broadcast bit clear (udhcpc's default)
        0, 0, 0, 0, // ciaddr
        0, 0, 0, 0, // yiaddr
        0, 0, 0, 0, // siaddr
        0, 0, 0, 0, // giaddr
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // chaddr: the MAC...
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ...and 10 bytes of padding
    ];
    assert_eq!(m.len(), 44);
    m.resize(236, 0); // sname (64 bytes) and file (128 bytes): empty
    m.extend_from_slice(&[
        0x63, 0x82, 0x53, 0x63, // magic cookie 99.130.83.99
        53, 1, 1, // message type: DISCOVER
        61, 7, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // client id: type 1 + MAC
        57, 2, 0x02, 0x40, // max message size: 576
        55, 7, 1, 3, 6, 12, 15, 28, 42, // parameter request list
        60, 12, b'u', b'd', b'h', b'c', b'p', b' ', b'1', b'.', b'3', b'6', b'.', b'1',
        255, // END
    ]);
    m.resize(300, 0); // udhcpc pads to the BOOTP minimum
    m
}

/// Offset of the END option in `udhcpc_discover()`.
const DISCOVER_END: usize = 240 + 3 + 9 + 4 + 9 + 14;

/// A DHCPOFFER with its options in `Repr::EMIT_ORDER`, so that
/// parse-then-emit must give back the same bytes.
fn offer() -> Vec<u8> {
    let mut m = vec![
        0x02, 0x01, 0x06, 0x00, // op BOOTREPLY, Ethernet, hlen 6, hops 0
        0x3d, 0x1d, 0x52, 0x8a, // xid
        0x00, 0x00, 0x80, 0x00, // secs 0, flags: broadcast
        0, 0, 0, 0, // ciaddr
        192, 168, 1, 20, // yiaddr
        0, 0, 0, 0, // siaddr
        0, 0, 0, 0, // giaddr
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // chaddr
    ];
    m.resize(236, 0);
    m.extend_from_slice(&[
        0x63, 0x82, 0x53, 0x63, // cookie
        53, 1, 2, // OFFER
        54, 4, 192, 168, 1, 1, // server id
        51, 4, 0x00, 0x01, 0x51, 0x80, // lease 86400
        58, 4, 0x00, 0x00, 0xa8, 0xc0, // T1 43200
        59, 4, 0x00, 0x01, 0x27, 0x50, // T2 75600
        1, 4, 255, 255, 255, 0, // subnet mask
        3, 4, 192, 168, 1, 1, // router
        6, 8, 192, 168, 1, 1, 9, 9, 9, 9, // DNS
        15, 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', // domain name
        119, 9, 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0, // search: "example"
        26, 2, 0xff, 0xf0, // MTU 65520
        255,
    ]);
    m
}

fn parse(bytes: &[u8]) -> Result<Repr<'_>> {
    Repr::parse(&Packet::new_checked(bytes)?)
}

fn with_options(options: &[u8]) -> Vec<u8> {
    let mut m = udhcpc_discover();
    m.truncate(OPTIONS_OFFSET);
    m.extend_from_slice(options);
    m
}

#[test]
fn fixture_header_fields() {
    let bytes = udhcpc_discover();
    let p = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(p.op(), OpCode::Request);
    assert_eq!((p.htype(), p.hlen(), p.hops()), (1, 6, 0));
    assert_eq!(p.xid(), 0x3d1d_528a);
    assert_eq!(p.secs(), 0);
    assert_eq!(p.flags(), 0);
    assert!(!p.broadcast());
    assert_eq!(p.ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(p.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(p.siaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(p.giaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(p.client_mac(), MAC);
    assert_eq!(&p.chaddr()[..6], &MAC);
    assert_eq!(&p.chaddr()[6..], &[0; 10]);
    assert_eq!(p.magic_cookie(), MAGIC_COOKIE);
}

#[test]
fn fixture_options_in_order() {
    let bytes = udhcpc_discover();
    let p = Packet::new_checked(&bytes[..]).unwrap();
    let codes: Vec<u8> = p.options().map(|o| o.unwrap().code).collect();
    assert_eq!(codes, [53, 61, 57, 55, 60]);
    let vendor = p.options().map(|o| o.unwrap()).find(|o| o.code == 60).unwrap();
    assert_eq!(vendor.data, b"udhcp 1.36.1");
}

#[test]
fn fixture_repr() {
    let bytes = udhcpc_discover();
    let r = parse(&bytes).unwrap();
    assert_eq!(r.message_type, MessageType::Discover);
    assert_eq!(r.client_id, Some(&[1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56][..]));
    assert_eq!(r.max_message_size, Some(576));
    assert_eq!(r.parameter_request_list, Some(&[1, 3, 6, 12, 15, 28, 42][..]));
    assert_eq!(r.requested_ip, None);
    assert_eq!(r.server_id, None);
    assert_eq!(r.client_mac(), MAC);
    assert!(!r.broadcast);
}

#[test]
fn discover_round_trip_through_repr() {
    let bytes = udhcpc_discover();
    let r = parse(&bytes).unwrap();
    let mut out = vec![0xaa; r.buffer_len()];
    let len = r.emit(&mut Packet::new_unchecked(&mut out[..])).unwrap();
    assert_eq!(len, out.len());
    // Same header; options the same except the vendor class (60), which
    // Repr does not carry.
    assert_eq!(&out[..OPTIONS_OFFSET], &bytes[..OPTIONS_OFFSET]);
    assert_eq!(parse(&out).unwrap(), r);
}

#[test]
fn offer_parse_emit_same_bytes() {
    let bytes = offer();
    let r = parse(&bytes).unwrap();
    assert_eq!(r.op, OpCode::Reply);
    assert_eq!(r.message_type, MessageType::Offer);
    assert!(r.broadcast);
    assert_eq!(r.yiaddr, Ipv4Addr::new(192, 168, 1, 20));
    assert_eq!(r.server_id, Some(Ipv4Addr::new(192, 168, 1, 1)));
    assert_eq!(r.lease_time, Some(86_400));
    assert_eq!(r.renewal_time, Some(43_200));
    assert_eq!(r.rebinding_time, Some(75_600));
    assert_eq!(r.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
    assert_eq!(r.router, Some(Ipv4Addr::new(192, 168, 1, 1)));
    let dns = [Ipv4Addr::new(192, 168, 1, 1), Ipv4Addr::new(9, 9, 9, 9)];
    assert_eq!(r.dns_servers, Some(Ipv4List::Addrs(&dns)));
    assert_eq!(r.domain_name, Some(&b"example"[..]));
    let names = ["example".to_string()];
    assert_eq!(r.domain_search, Some(DomainList::Names(&names)));
    assert_eq!(r.interface_mtu, Some(65520));
    assert_eq!(r.buffer_len(), bytes.len());

    let mut out = vec![0x55; bytes.len()];
    assert_eq!(r.emit(&mut Packet::new_unchecked(&mut out[..])), Ok(bytes.len()));
    assert_eq!(out, bytes);
}

#[test]
fn emit_needs_buffer_len() {
    let bytes = offer();
    let r = parse(&bytes).unwrap();
    for len in [0, 1, 100, 239, 240, 241, bytes.len() - 1] {
        let mut out = vec![0; len];
        let res = r.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(res, Err(Error::NoSpace), "buffer of {len}");
    }
}

#[test]
fn truncated_at_each_header_field_boundary() {
    let bytes = udhcpc_discover();
    // op htype hlen hops xid secs flags ciaddr yiaddr siaddr giaddr chaddr sname file
    for cut in [0, 1, 2, 3, 4, 8, 10, 12, 16, 20, 24, 28, 44, 108, 235] {
        assert_eq!(Packet::new_checked(&bytes[..cut]).err(), Some(Error::Truncated), "{cut}");
    }
    for cut in 236..240 {
        let err = Packet::new_checked(&bytes[..cut]).err();
        assert_eq!(err, Some(Error::MissingMagicCookie), "{cut}");
    }
    // From the cookie on, the options are cut: at an option boundary the
    // END is missing, inside an option its data overruns.
    assert_eq!(parse(&bytes[..240]).err(), Some(Error::MissingEnd));
    assert_eq!(parse(&bytes[..241]).err(), Some(Error::OptionOverrun { code: 53 }));
    assert_eq!(parse(&bytes[..242]).err(), Some(Error::OptionOverrun { code: 53 }));
    assert_eq!(parse(&bytes[..243]).err(), Some(Error::MissingEnd));
    assert_eq!(parse(&bytes[..250]).err(), Some(Error::OptionOverrun { code: 61 }));
    assert_eq!(parse(&bytes[..DISCOVER_END]).err(), Some(Error::MissingEnd));
    assert!(parse(&bytes[..=DISCOVER_END]).is_ok());
    // Every cut inside the options is an error, never a panic.
    for cut in 240..DISCOVER_END {
        assert!(parse(&bytes[..cut]).is_err(), "{cut}");
    }
}

#[test]
fn getters_on_short_unchecked_buffer_read_zero() {
    let p = Packet::new_unchecked(&[1u8, 1, 6][..]);
    assert_eq!(p.op(), OpCode::Request);
    assert_eq!(p.hlen(), 6);
    assert_eq!(p.xid(), 0);
    assert_eq!(p.chaddr(), [0; 16]);
    assert_eq!(p.magic_cookie(), 0);
    assert_eq!(p.options().count(), 1); // MissingEnd on an empty area
    let mut buf = [0u8; 5];
    let mut p = Packet::new_unchecked(&mut buf[..]);
    p.set_xid(0x0102_0304); // spans the end: dropped, no panic
    p.set_giaddr(Ipv4Addr::BROADCAST);
    p.clear_sname_file();
    p.set_magic_cookie();
    assert!(p.options_mut().is_empty());
    assert_eq!(buf, [0; 5]);
}

#[test]
fn missing_or_bad_cookie() {
    let mut bytes = udhcpc_discover();
    bytes[239] = 0x62;
    assert_eq!(Packet::new_checked(&bytes[..]).err(), Some(Error::BadMagicCookie));
    // A BOOTP message: the vend field without cookie.
    bytes[236..240].fill(0);
    assert_eq!(Packet::new_checked(&bytes[..]).err(), Some(Error::BadMagicCookie));
    assert_eq!(parse(&bytes).err(), Some(Error::BadMagicCookie));
}

#[test]
fn option_length_past_end() {
    let bytes = with_options(&[53, 1, 1, 55, 200, 1, 3, 6]);
    assert_eq!(parse(&bytes).err(), Some(Error::OptionOverrun { code: 55 }));
    // A code as the very last byte: no length byte at all.
    let bytes = with_options(&[53, 1, 1, 61]);
    assert_eq!(parse(&bytes).err(), Some(Error::OptionOverrun { code: 61 }));
    // Length exactly reaching the end, END missing.
    let bytes = with_options(&[53, 1, 1, 61, 2, 1, 2]);
    assert_eq!(parse(&bytes).err(), Some(Error::MissingEnd));
}

#[test]
fn zero_length_options() {
    // Known options with a fixed or minimum size: errors.
    for code in [53, 50, 54, 57, 55, 61, 1, 3, 6, 15, 26, 51, 58, 59, 119] {
        let bytes = with_options(&[53, 1, 1, code, 0, 255]);
        let bytes = if code == 53 { with_options(&[53, 0, 255]) } else { bytes };
        assert_eq!(
            parse(&bytes).err(),
            Some(Error::BadOptionLength { code, len: 0 }),
            "{code}"
        );
    }
    // Unknown ones are legal and skipped.
    let bytes = with_options(&[53, 1, 3, 224, 0, 12, 0, 255]);
    let r = parse(&bytes).unwrap();
    assert_eq!(r.message_type, MessageType::Request);
    let p = Packet::new_checked(&bytes[..]).unwrap();
    let opts: Vec<_> = p.options().map(|o| o.unwrap()).collect();
    assert_eq!(opts[1], DhcpOption { code: 224, data: &[] });
}

#[test]
fn wrong_fixed_lengths() {
    let cases: [(&[u8], u8, u8); 6] = [
        (&[53, 2, 1, 1], 53, 2),
        (&[50, 3, 1, 2, 3], 50, 3),
        (&[54, 5, 1, 2, 3, 4, 5], 54, 5),
        (&[57, 1, 2], 57, 1),
        (&[3, 6, 1, 2, 3, 4, 5, 6], 3, 6),
        (&[6, 2, 1, 2], 6, 2),
    ];
    for (opt, code, len) in cases {
        let mut options = vec![53, 1, 1];
        if code == 53 {
            options.clear();
        }
        options.extend_from_slice(opt);
        options.push(255);
        let bytes = with_options(&options);
        assert_eq!(parse(&bytes).err(), Some(Error::BadOptionLength { code, len }));
    }
}

#[test]
fn end_missing() {
    let bytes = with_options(&[53, 1, 1]);
    assert_eq!(parse(&bytes).err(), Some(Error::MissingEnd));
    // Padding to the end does not make up for END.
    let bytes = with_options(&[53, 1, 1, 0, 0, 0, 0]);
    assert_eq!(parse(&bytes).err(), Some(Error::MissingEnd));
    // Nothing at all after the cookie.
    assert_eq!(parse(&with_options(&[])).err(), Some(Error::MissingEnd));
}

#[test]
fn pad_skipped_and_bytes_after_end_ignored() {
    let bytes = with_options(&[0, 0, 53, 1, 8, 0, 50, 4, 10, 0, 0, 2, 255, 61, 200, 9]);
    let r = parse(&bytes).unwrap();
    assert_eq!(r.message_type, MessageType::Inform);
    assert_eq!(r.requested_ip, Some(Ipv4Addr::new(10, 0, 0, 2)));
    assert_eq!(r.client_id, None);
}

#[test]
fn missing_message_type() {
    let bytes = with_options(&[50, 4, 10, 0, 0, 2, 255]);
    assert_eq!(parse(&bytes).err(), Some(Error::MissingMessageType));
}

#[test]
fn repeated_option_first_wins() {
    let bytes = with_options(&[53, 1, 3, 53, 1, 1, 50, 4, 1, 1, 1, 1, 50, 4, 2, 2, 2, 2, 255]);
    let r = parse(&bytes).unwrap();
    assert_eq!(r.message_type, MessageType::Request);
    assert_eq!(r.requested_ip, Some(Ipv4Addr::new(1, 1, 1, 1)));
}

#[test]
fn iterator_stops_after_error() {
    let bytes = with_options(&[53, 1, 1, 55, 9, 1]);
    let p = Packet::new_checked(&bytes[..]).unwrap();
    let mut it = p.options();
    assert!(it.next().unwrap().is_ok());
    assert_eq!(it.next(), Some(Err(Error::OptionOverrun { code: 55 })));
    assert_eq!(it.next(), None);
    assert_eq!(it.next(), None);
}

#[test]
fn code_enums_total_and_reversible() {
    for n in 0..=255u8 {
        assert_eq!(u8::from(MessageType::from(n)), n);
        assert_eq!(u8::from(OpCode::from(n)), n);
    }
    assert_eq!(MessageType::from(8), MessageType::Inform);
    assert_eq!(MessageType::from(9), MessageType::Unknown(9));
}

#[test]
fn long_option_split_per_rfc3396() {
    let data: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
    assert_eq!(encoded_option_len(300), 304);
    assert_eq!(encoded_option_len(255), 257);
    assert_eq!(encoded_option_len(256), 260);
    assert_eq!(encoded_option_len(0), 2);
    let mut area = vec![0xee; 305];
    let mut w = OptionWriter::new(&mut area);
    assert_eq!(w.remaining(), 304);
    w.write(119, &data).unwrap();
    assert_eq!(w.remaining(), 0);
    assert_eq!(w.finish(), Ok(305));
    assert_eq!(&area[..2], &[119, 255]);
    assert_eq!(&area[2..257], &data[..255]);
    assert_eq!(&area[257..259], &[119, 45]);
    assert_eq!(&area[259..304], &data[255..]);
    assert_eq!(area[304], 255);
}

#[test]
fn writer_refuses_what_does_not_fit() {
    let mut area = [0xee; 8];
    let mut w = OptionWriter::new(&mut area);
    w.write(53, &[1]).unwrap(); // 3 bytes, 4 left for options + END
    assert_eq!(w.remaining(), 4);
    assert_eq!(w.write(54, &[1, 2, 3, 4]), Err(Error::NoSpace));
    assert_eq!(w.write_with(6, 8, |_| {}), Err(Error::NoSpace));
    w.write(224, &[]).unwrap(); // zero-length: 2 bytes
    w.write(12, b"h").unwrap_err(); // 3 bytes, 2 left
    assert_eq!(w.position(), 5);
    assert_eq!(w.finish(), Ok(6));
    assert_eq!(area, [53, 1, 1, 224, 0, 255, 0xee, 0xee]);
    assert_eq!(OptionWriter::new(&mut []).finish(), Err(Error::NoSpace));
}

#[test]
fn writer_keeps_framing_when_fill_misbehaves() {
    let mut area = [0xee; 16];
    let mut w = OptionWriter::new(&mut area);
    w.write_with(6, 4, |s| (0..9).for_each(|b| s.push(b))).unwrap(); // too many
    w.write_with(3, 4, |s| s.push(7)).unwrap(); // too few
    assert_eq!(w.finish(), Ok(13));
    assert_eq!(&area[..13], &[6, 4, 0, 1, 2, 3, 3, 4, 7, 0, 0, 0, 255]);
}

#[test]
fn long_dns_list_split_at_whole_addresses() {
    // 70 servers: 280 bytes, two instances on the wire, each a valid
    // list of whole addresses; parse keeps the first one (documented).
    let addrs: Vec<Ipv4Addr> = (0..70u8).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect();
    let mut r = Repr::new(OpCode::Reply, MessageType::Ack, 1, MAC);
    r.dns_servers = Some(Ipv4List::Addrs(&addrs));
    assert_eq!(r.option_len(6), Some(284));
    let mut out = vec![0; r.buffer_len()];
    r.emit(&mut Packet::new_unchecked(&mut out[..])).unwrap();
    let p = Packet::new_checked(&out[..]).unwrap();
    let opts: Vec<_> = p.options().map(|o| o.unwrap()).collect();
    assert_eq!(opts.len(), 3);
    assert_eq!((opts[1].code, opts[1].data.len()), (6, 252));
    assert_eq!((opts[2].code, opts[2].data.len()), (6, 28));
    let all: Vec<u8> = [opts[1].data, opts[2].data].concat();
    let back: Vec<Ipv4Addr> = Ipv4List::Wire(&all).iter().collect();
    assert_eq!(back, addrs);
    let parsed = parse(&out).unwrap();
    assert_eq!(parsed.dns_servers.unwrap().len(), 63);
    assert_eq!(parsed.dns_servers.unwrap().get(62), Some(Ipv4Addr::new(10, 0, 0, 62)));
}

#[test]
fn ipv4_list_views_agree_and_bound() {
    let wire = [10, 0, 0, 1, 10, 0, 0, 2, 7]; // a stray byte: not an address
    let addrs = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)];
    assert_eq!(Ipv4List::Wire(&wire).len(), 2);
    assert_eq!(Ipv4List::Wire(&wire), Ipv4List::Addrs(&addrs));
    assert_ne!(Ipv4List::Wire(&wire[..4]), Ipv4List::Addrs(&addrs));
    for list in [Ipv4List::Wire(&wire), Ipv4List::Addrs(&addrs)] {
        assert_eq!(list.get(2), None);
        assert_eq!(list.get(usize::MAX), None);
        assert_eq!(list.get(usize::MAX / 4), None);
    }
    assert!(Ipv4List::Wire(&wire[..3]).is_empty());
}

#[test]
fn display_is_one_line() {
    let bytes = udhcpc_discover();
    let p = Packet::new_checked(&bytes[..]).unwrap();
    let line = p.to_string();
    assert!(line.starts_with("DHCP DISCOVER xid=0x3d1d528a chaddr=52:54:00:12:34:56"));
    assert!(!line.contains('\n'));
    let short = Packet::new_unchecked(&bytes[..10]).to_string();
    assert_eq!(short, "DHCP (shorter than the BOOTP header)");
}

/// Random reprs: emit, parse, same repr.
#[test]
fn random_repr_round_trip() {
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let names = ["example.com".to_string(), "corp.example".to_string()];
    let addrs = [Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(8, 8, 4, 4)];
    let mut client_id = [0u8; 40];
    let mut prl = [0u8; 40];
    for _ in 0..2000 {
        let mac = [rng.byte(), rng.byte(), rng.byte(), rng.byte(), rng.byte(), rng.byte()];
        let op = OpCode::from(rng.byte());
        let mut r = Repr::new(op, MessageType::from(rng.byte()), rng.next() as u32, mac);
        r.secs = rng.next() as u16;
        r.hops = rng.byte();
        r.broadcast = rng.below(2) == 0;
        r.ciaddr = Ipv4Addr::from(rng.next() as u32);
        r.yiaddr = Ipv4Addr::from(rng.next() as u32);
        let maybe = |rng: &mut Rng| rng.below(2) == 0;
        let ip = |rng: &mut Rng| Ipv4Addr::from(rng.next() as u32);
        if maybe(&mut rng) {
            r.requested_ip = Some(ip(&mut rng));
        }
        if maybe(&mut rng) {
            r.server_id = Some(ip(&mut rng));
        }
        if maybe(&mut rng) {
            let n = 1 + rng.below(40);
            client_id.iter_mut().for_each(|b| *b = rng.byte());
            r.client_id = Some(&client_id[..n]);
        }
        if maybe(&mut rng) {
            let n = 1 + rng.below(40);
            prl.iter_mut().for_each(|b| *b = rng.byte());
            r.parameter_request_list = Some(&prl[..n]);
        }
        if maybe(&mut rng) {
            r.max_message_size = Some(rng.next() as u16);
            r.interface_mtu = Some(rng.next() as u16);
            r.lease_time = Some(rng.next() as u32);
            r.renewal_time = Some(rng.next() as u32);
            r.rebinding_time = Some(rng.next() as u32);
        }
        if maybe(&mut rng) {
            r.subnet_mask = Some(ip(&mut rng));
            r.router = Some(ip(&mut rng));
            r.dns_servers = Some(Ipv4List::Addrs(&addrs[..1 + rng.below(2)]));
            r.domain_name = Some(b"example.com");
            r.domain_search = Some(DomainList::Names(&names[..1 + rng.below(2)]));
        }
        let mut out = vec![0; r.buffer_len()];
        assert_eq!(r.emit(&mut Packet::new_unchecked(&mut out[..])), Ok(out.len()));
        assert_eq!(parse(&out).unwrap(), r);
    }
}

/// Random and mutated bytes: parsing never panics.
#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
    let base = udhcpc_discover();
    for i in 0..10_000 {
        let bytes = if i % 2 == 0 {
            let len = rng.below(400);
            let mut b: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
            if b.len() >= OPTIONS_OFFSET {
                b[236..240].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            }
            b
        } else {
            let mut b = base.clone();
            for _ in 0..1 + rng.below(6) {
                let at = OPTIONS_OFFSET + rng.below(b.len() - OPTIONS_OFFSET);
                b[at] = rng.byte();
            }
            b.truncate(OPTIONS_OFFSET + rng.below(b.len() - OPTIONS_OFFSET + 1));
            b
        };
        if let Ok(p) = Packet::new_checked(&bytes[..]) {
            let _ = p.to_string();
            if let Ok(r) = Repr::parse(&p) {
                let mut out = vec![0; r.buffer_len()];
                assert_eq!(r.emit(&mut Packet::new_unchecked(&mut out[..])), Ok(out.len()));
            }
        }
    }
}
