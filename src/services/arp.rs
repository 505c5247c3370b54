//! ARP responder (RFC 826).
//!
//! We are every other host on the guest's link: a request for any IPv4
//! address but the guest's own is answered with our MAC, so the guest sends
//! everything to us, whatever its routes say. Requests for the guest's own
//! addresses (assigned or observed), ARP probes (RFC 5227: sender 0.0.0.0,
//! the guest checking its address is free) and gratuitous announcements get
//! no answer: answering would make the guest think its address is taken.
//! Replies are not cached by us: we never send ARP requests, since frames
//! to the guest go to the MAC learned from its frames.

use crate::wire::arp::{Repr, OP_REPLY, OP_REQUEST, PACKET_LEN};
use crate::wire::WireError;
use std::net::Ipv4Addr;

/// Answers `request` (an ARP packet, the Ethernet payload) if it asks for
/// an address we stand for: writes the reply packet into `out` (at least
/// [`PACKET_LEN`] bytes) and returns it with the MAC to send it to.
pub fn handle(our_mac: [u8; 6], guest_addrs: &[Ipv4Addr], request: &[u8], out: &mut [u8]) -> Result<Option<([u8; 6], usize)>, WireError> {
    let req = Repr::parse(request)?;
    if req.op != OP_REQUEST || out.len() < PACKET_LEN {
        return Ok(None);
    }
    let probe_or_announce = req.sender_ip.is_unspecified() || req.sender_ip == req.target_ip;
    let for_guest = guest_addrs.contains(&req.target_ip);
    if probe_or_announce || for_guest || req.target_ip.is_unspecified() || req.target_ip.is_broadcast() {
        return Ok(None);
    }
    let reply = Repr {
        op: OP_REPLY,
        sender_mac: our_mac,
        sender_ip: req.target_ip,
        target_mac: req.sender_mac,
        target_ip: req.sender_ip,
    };
    reply.emit(out);
    Ok(Some((req.sender_mac, PACKET_LEN)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: [u8; 6] = [0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55];
    const GUEST: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    fn request(sender: Ipv4Addr, target: Ipv4Addr) -> [u8; 28] {
        let mut b = [0u8; 28];
        Repr { op: OP_REQUEST, sender_mac: GUEST, sender_ip: sender, target_mac: [0; 6], target_ip: target }.emit(&mut b);
        b
    }

    #[test]
    fn answers_for_others_not_for_the_guest() {
        let guest: Ipv4Addr = "10.0.2.15".parse().unwrap();
        let mut out = [0u8; 28];
        let (dst, len) = handle(OURS, &[guest], &request(guest, "10.0.2.2".parse().unwrap()), &mut out).unwrap().unwrap();
        assert_eq!((dst, len), (GUEST, 28));
        let r = Repr::parse(&out).unwrap();
        assert_eq!(r.op, OP_REPLY);
        assert_eq!(r.sender_mac, OURS);
        assert_eq!(r.sender_ip, "10.0.2.2".parse::<Ipv4Addr>().unwrap());
        assert_eq!(r.target_ip, guest);
        // Any other address on or off the subnet too.
        assert!(handle(OURS, &[guest], &request(guest, "10.0.2.77".parse().unwrap()), &mut out).unwrap().is_some());
        // Not for the guest's own address, probes or announcements.
        assert!(handle(OURS, &[guest], &request("10.0.2.3".parse().unwrap(), guest), &mut out).unwrap().is_none());
        assert!(handle(OURS, &[guest], &request(Ipv4Addr::UNSPECIFIED, "10.0.2.99".parse().unwrap()), &mut out).unwrap().is_none());
        assert!(handle(OURS, &[guest], &request(guest, guest), &mut out).unwrap().is_none());
        // Replies from the guest are not answered.
        let mut reply = request(guest, "10.0.2.2".parse().unwrap());
        reply[7] = 2;
        assert!(handle(OURS, &[guest], &reply, &mut out).unwrap().is_none());
        // Malformed input is an error, not a panic.
        assert!(handle(OURS, &[guest], &reply[..10], &mut out).is_err());
    }
}
