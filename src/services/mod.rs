//! Local services: what a guest needs to configure its network, answered
//! by us without any socket: ARP, DHCPv4, NDP (RA, NA), DHCPv6.
//! Each takes a request's bytes and writes a reply into a caller's buffer.

pub mod arp;
pub mod dhcp;
pub mod dhcpv6;
pub mod ndp;
