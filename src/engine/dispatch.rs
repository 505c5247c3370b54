//! Guest frames to services and flows; host events to flows; timers.
//!
//! Every guest frame is validated layer by layer through the `wire` views
//! (Ethernet, then IPv4/IPv6 with their checksums, then the L4 checksum)
//! before any protocol code sees it; a frame failing a check is dropped and
//! counted by reason. The guest's MAC and source addresses are learned here.

use super::Core;
use crate::backend::RxMeta;
use crate::config::Config;
use crate::guestnet::GuestNet;
use crate::services::{arp, dhcp, dhcpv6, ndp};
use crate::stats::Drop;
use crate::time::Instant;
use crate::token::{Kind, Token};
use crate::wire::ethernet::{self, EtherType};
use crate::wire::{checksum, ipv4, ipv6, udp};
use crate::tx::{finish_ip, l4_offset, L2};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU16;

/// Guest datagrams for host sockets after which a batch of guest frames
/// ends (the rest waits for the next call: buffered by the stream backend,
/// in the device's queue for the tap). The batch's datagrams leave
/// together, and the caller yields between calls: a host receiver sharing
/// our CPU gets to drain its socket buffer (~90 datagrams of 1,400 bytes
/// by default) between bursts instead of losing the end of each. Through
/// the tap, batches of 128 such frames lost 12 % of what we forwarded at
/// the receiver's buffer, batches ending here 5 %; the CPU time we saved
/// (5 %) went to the receiver, which got 1-2 % more.
const UDP_BURST: usize = 32;

/// The local services' settings and timers.
pub(crate) struct Services {
    /// DHCPv4 server settings; `None` when IPv4 or DHCP is off.
    pub(crate) dhcp: Option<dhcp::DhcpConfig>,
    /// NDP (neighbour answers, router advertisements); `None` when IPv6
    /// or NDP is off.
    pub(crate) ndp: Option<ndp::NdpConfig>,
    /// DHCPv6 server settings; `None` when IPv6 or DHCPv6 is off.
    pub(crate) dhcpv6: Option<dhcpv6::Dhcpv6Config>,
    /// When the next unsolicited router advertisement is due.
    pub(crate) next_ra: Option<Instant>,
}

impl Services {
    pub(crate) fn new(cfg: &Config, net: &GuestNet) -> Services {
        let dhcp = net.v4.as_ref().filter(|_| !cfg.no_dhcp).map(|v4| dhcp::DhcpConfig {
            guest_addr: v4.assigned,
            prefix_len: v4.prefix_len,
            router: Some(v4.gateway),
            server_id: v4.gateway,
            dns: if cfg.no_dhcp_dns { Vec::new() } else { v4.dns.clone() },
            search: if cfg.no_dhcp_search { Vec::new() } else { net.search.clone() },
            mtu: u16::try_from(net.mtu).ok(),
            lease_secs: dhcp::DhcpConfig::DEFAULT_LEASE_SECS,
        });
        let v6 = net.v6.as_ref();
        let search = if cfg.no_dhcp_search { Vec::new() } else { net.search.clone() };
        let dns6 = |v6: &crate::guestnet::Net6| if cfg.no_dhcp_dns { Vec::new() } else { v6.dns.clone() };
        let ndp = v6.filter(|_| !cfg.no_ndp).map(|v6| ndp::NdpConfig {
            our_mac: net.our_mac,
            our_ll: v6.our_ll,
            prefix: Some((prefix_of(v6.assigned, v6.prefix_len), v6.prefix_len)),
            mtu: Some(net.mtu),
            dns: dns6(v6),
            search: search.clone(),
            router_lifetime_secs: ndp::DEFAULT_ROUTER_LIFETIME_SECS,
            managed: !cfg.no_dhcpv6,
            no_ra: cfg.no_ra,
        });
        let dhcpv6 = v6.filter(|_| !cfg.no_dhcpv6).map(|v6| dhcpv6::Dhcpv6Config {
            our_mac: net.our_mac,
            addr: Some(v6.assigned),
            dns: dns6(v6),
            search: search.clone(),
        });
        Services { dhcp, ndp, dhcpv6, next_ra: None }
    }

    /// A guest appeared: advertise the router at once.
    pub(crate) fn guest_attached(&mut self, now: Instant) {
        if self.ndp.as_ref().is_some_and(|n| !n.no_ra) {
            self.next_ra = Some(now);
        }
    }
}

/// The network part of an IPv6 address.
fn prefix_of(addr: Ipv6Addr, len: u8) -> Ipv6Addr {
    let bits = u128::from(addr);
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len.min(128))) };
    Ipv6Addr::from(bits & mask)
}

/// Verifies the checksum of an L4 segment with its pseudo-header.
fn l4_checksum_ok(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> bool {
    let acc = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => checksum::pseudo_v4(s, d, proto, l4.len()),
        (IpAddr::V6(s), IpAddr::V6(d)) => checksum::pseudo_v6(s, d, proto, l4.len()),
        _ => return false,
    };
    checksum::finish(checksum::sum(acc, l4)) == 0
}

impl Core {
    /// One frame from the guest.
    pub(crate) fn handle_frame(&mut self, frame: &[u8]) {
        self.handle_frame_from(frame, RxMeta::default());
    }

    /// One frame from the guest, with what its backend says of it (a tap
    /// with offloads): an L4 checksum its kernel vouches for or left undone
    /// is not verified here.
    pub(crate) fn handle_frame_from(&mut self, frame: &[u8], meta: RxMeta) {
        self.stats.frames_in += 1;
        self.stats.bytes_in += frame.len() as u64;
        if let Some(p) = self.pcap.as_mut() {
            if p.record(self.now, frame).is_err() {
                self.pcap = None;
            }
        }
        let eth = match ethernet::Frame::new_checked(frame) {
            Ok(e) => e,
            Err(e) => return self.stats.drop(e.into()),
        };
        let dst = eth.dst();
        if dst != self.net.our_mac && dst[0] & 1 == 0 {
            return self.stats.drop(Drop::NotForUs);
        }
        let src = eth.src();
        if ethernet::is_unicast(&src) && self.net.guest_mac != Some(src) {
            log::debug!("guest MAC is {}", crate::wire::DisplayMac(&src));
            self.net.guest_mac = Some(src);
        }
        match eth.ethertype() {
            EtherType::Arp => self.handle_arp(eth.payload()),
            EtherType::Ipv4 => self.handle_ipv4(eth.payload(), meta),
            EtherType::Ipv6 => self.handle_ipv6(eth.payload(), meta),
            EtherType::Unknown(_) => self.stats.drop(Drop::Unsupported),
        }
    }

    /// Writes one reply frame around an ARP packet or an L4 message.
    fn queue_arp(&mut self, dst_mac: [u8; 6], packet: &[u8]) {
        let len = ethernet::HEADER_LEN + packet.len();
        let Some(buf) = self.tx.reserve(len) else { return self.stats.drop(Drop::TxFull) };
        ethernet::emit(buf, dst_mac, self.net.our_mac, EtherType::Arp);
        buf[ethernet::HEADER_LEN..len].copy_from_slice(packet);
        self.tx.commit(len);
    }

    /// Queues a UDP datagram to the guest (local services' replies).
    fn queue_udp(&mut self, dst_mac: [u8; 6], src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        let v6 = src.is_ipv6();
        let off = l4_offset(v6);
        let l4_len = udp::HEADER_LEN + payload.len();
        let Some(buf) = self.tx.reserve(off + l4_len) else { return self.stats.drop(Drop::TxFull) };
        udp::emit(&mut buf[off..], src.port(), dst.port(), payload.len());
        buf[off + udp::HEADER_LEN..off + l4_len].copy_from_slice(payload);
        let l2 = L2 { src: self.net.our_mac, dst: dst_mac };
        let len = finish_ip(buf, l2, src.ip(), dst.ip(), ipv4::PROTO_UDP, l4_len);
        self.tx.commit(len);
    }

    /// Queues an ICMPv6 message (checksum filled here) to the guest.
    fn queue_icmpv6(&mut self, dst_mac: [u8; 6], src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) {
        let off = l4_offset(true);
        let Some(buf) = self.tx.reserve(off + msg.len()) else { return self.stats.drop(Drop::TxFull) };
        buf[off..off + msg.len()].copy_from_slice(msg);
        let l2 = L2 { src: self.net.our_mac, dst: dst_mac };
        let len = finish_ip(buf, l2, src.into(), dst.into(), ipv6::NEXT_ICMPV6, msg.len());
        self.tx.commit(len);
    }

    fn handle_arp(&mut self, payload: &[u8]) {
        let Some(v4) = &self.net.v4 else { return self.stats.drop(Drop::Disabled) };
        let mut guest_addrs = [v4.assigned; 2];
        guest_addrs[1] = v4.observed.unwrap_or(v4.assigned);
        let mut out = [0u8; crate::wire::arp::PACKET_LEN];
        match arp::handle(self.net.our_mac, &guest_addrs, payload, &mut out) {
            Ok(Some((dst_mac, len))) => self.queue_arp(dst_mac, &out[..len]),
            Ok(None) => {}
            Err(e) => self.stats.drop(e.into()),
        }
    }

    fn handle_ipv4(&mut self, payload: &[u8], meta: RxMeta) {
        if self.net.v4.is_none() {
            return self.stats.drop(Drop::Disabled);
        }
        let ip = match ipv4::Packet::new_checked(payload) {
            Ok(p) => p,
            Err(e) => return self.stats.drop(e.into()),
        };
        if ip.is_fragment() {
            return self.stats.drop(Drop::Unsupported);
        }
        let (src, dst) = (ip.src(), ip.dst());
        // DHCP comes from 0.0.0.0 to the broadcast address: not an
        // address worth learning, nor a flow.
        if ip.protocol() == ipv4::PROTO_UDP {
            if let Ok(d) = udp::Datagram::new_checked(ip.payload()) {
                if d.dst_port() == 67 {
                    return self.handle_dhcp(d.payload());
                }
            }
        }
        if src.is_unspecified() || src.is_broadcast() || src.is_multicast() || src.is_loopback() {
            return self.stats.drop(Drop::NotForUs);
        }
        if dst.is_broadcast() || dst.is_multicast() || dst.is_unspecified() || dst == src {
            return self.stats.drop(Drop::NotForUs);
        }
        self.observe(src.into());
        self.handle_l4(src.into(), dst.into(), ip.protocol(), ip.payload(), meta);
    }

    fn handle_ipv6(&mut self, payload: &[u8], meta: RxMeta) {
        let l4_checked = meta.l4_checked;
        if self.net.v6.is_none() {
            return self.stats.drop(Drop::Disabled);
        }
        let ip = match ipv6::Packet::new_checked(payload) {
            Ok(p) => p,
            Err(e) => return self.stats.drop(e.into()),
        };
        let (src, dst) = (ip.src(), ip.dst());
        if src.is_multicast() || src.is_loopback() {
            return self.stats.drop(Drop::NotForUs);
        }
        let proto = ip.next_header();
        let l4 = ip.payload();
        if proto == ipv6::NEXT_ICMPV6 {
            if !l4_checked && !l4_checksum_ok(src.into(), dst.into(), proto, l4) {
                return self.stats.drop(Drop::BadChecksum);
            }
            if let Some(&t) = l4.first() {
                if (133..=137).contains(&t) {
                    return self.handle_ndp(src, dst, ip.hop_limit(), l4);
                }
            }
        }
        if proto == ipv6::NEXT_UDP {
            if let Ok(d) = udp::Datagram::new_checked(l4) {
                if d.dst_port() == 547 {
                    return self.handle_dhcpv6(src, dst, d.src_port(), l4, l4_checked);
                }
            }
        }
        if src.is_unspecified() || dst.is_multicast() || dst.is_unspecified() || dst.is_loopback() {
            return self.stats.drop(Drop::NotForUs);
        }
        self.observe(src.into());
        self.handle_l4(src.into(), dst.into(), proto, l4, meta);
    }

    /// Learns the guest's source address; a new one is an event.
    fn observe(&mut self, src: IpAddr) {
        if self.net.observe(src) {
            log::debug!("guest address {src}");
            self.events.push(super::Event::GuestAddress(src));
        }
    }

    /// TCP, UDP and ICMP echo: to the flow tables.
    fn handle_l4(&mut self, src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8], meta: RxMeta) {
        let l4_checked = meta.l4_checked;
        match proto {
            ipv4::PROTO_ICMP if src.is_ipv4() => {
                if !l4_checked && crate::wire::checksum::checksum(l4) != 0 {
                    return self.stats.drop(Drop::BadChecksum);
                }
                if self.no_icmp {
                    return self.stats.drop(Drop::Disabled);
                }
                let (mut ctx, flows) = self.flow_ctx();
                flows.icmp.handle_guest(&mut ctx, src, dst, l4);
            }
            ipv6::NEXT_ICMPV6 if src.is_ipv6() => {
                // Checksum verified by handle_ipv6.
                if self.no_icmp {
                    return self.stats.drop(Drop::Disabled);
                }
                let (mut ctx, flows) = self.flow_ctx();
                flows.icmp.handle_guest(&mut ctx, src, dst, l4);
            }
            ipv4::PROTO_TCP | ipv4::PROTO_UDP => {
                if !l4_checked && !l4_checksum_ok(src, dst, proto, l4) {
                    // IPv4 UDP may carry no checksum at all (zero).
                    let unchecked_udp = proto == ipv4::PROTO_UDP && src.is_ipv4() && l4.len() >= 8 && l4[6..8] == [0, 0];
                    if !unchecked_udp {
                        return self.stats.drop(Drop::BadChecksum);
                    }
                }
                if proto == ipv4::PROTO_UDP && !self.no_udp {
                    let segment = match meta.udp_segment.map(NonZeroU16::new) {
                        None => None,
                        Some(Some(size)) => Some(size),
                        // Segments of no size: no kernel sends that.
                        Some(None) => return self.stats.drop(Drop::Malformed),
                    };
                    let (mut ctx, flows) = self.flow_ctx();
                    return flows.udp.handle_guest_segmented(&mut ctx, src, dst, l4, segment);
                }
                if proto == ipv4::PROTO_TCP && !self.no_tcp {
                    // A new connection with the budget spent: an idle UDP
                    // or ping flow gives way (UDP only evicts its own).
                    let syn = l4.get(13).is_some_and(|f| f & 0x12 == 0x02);
                    if syn && self.budget.used >= self.budget.max {
                        let (mut ctx, flows) = self.flow_ctx();
                        let _ = flows.udp.evict_idle(&mut ctx) || flows.icmp.evict_idle(&mut ctx);
                    }
                    let (mut ctx, flows) = self.flow_ctx();
                    return flows.tcp.handle_guest(&mut ctx, src, dst, l4);
                }
                self.stats.drop(Drop::Disabled);
            }
            _ => self.stats.drop(Drop::Unsupported),
        }
    }

    fn handle_dhcp(&mut self, msg: &[u8]) {
        let Some(cfg) = &self.services.dhcp else { return self.stats.drop(Drop::Disabled) };
        let mut out = [0u8; 1500];
        match dhcp::handle(cfg, msg, &mut out) {
            Ok(Some(reply)) => {
                let (mac, ip) = if reply.broadcast {
                    (ethernet::BROADCAST, Ipv4Addr::BROADCAST)
                } else {
                    (reply.dst_mac, reply.dst_ip)
                };
                log::debug!("DHCP: {:?} to {ip}", reply.kind);
                // An ACK with a "your address" hands out a lease (an ACK
                // to an INFORM has none); chaddr follows at 28 (RFC 2131).
                let yiaddr = Ipv4Addr::new(out[16], out[17], out[18], out[19]);
                if reply.kind == dhcp::ReplyKind::Ack && !yiaddr.is_unspecified() {
                    let mut mac = [0u8; 6];
                    mac.copy_from_slice(&out[28..34]);
                    self.stats.dhcp_leases += 1;
                    self.events.push(super::Event::DhcpLease { addr: yiaddr, mac });
                }
                let src = SocketAddr::new(cfg.server_id.into(), 67);
                self.queue_udp(mac, src, SocketAddr::new(ip.into(), 68), &out[..reply.len]);
            }
            Ok(None) => {}
            Err(e) => {
                log::debug!("DHCP: dropped a malformed message: {e}");
                self.stats.drop(Drop::Malformed);
            }
        }
    }

    fn handle_ndp(&mut self, src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, msg: &[u8]) {
        let Some(cfg) = &self.services.ndp else { return self.stats.drop(Drop::Disabled) };
        // On the stack: a guest configuring IPv6 sends these all along.
        let mut guest_addrs = [Ipv6Addr::UNSPECIFIED; 3];
        let mut known = 0;
        if let Some(n) = &self.net.v6 {
            for addr in [Some(n.assigned), n.observed, n.observed_ll].into_iter().flatten() {
                guest_addrs[known] = addr;
                known += 1;
            }
        }
        let mut out = [0u8; 1280];
        match ndp::handle(cfg, src, dst, hop_limit, msg, &guest_addrs[..known], &mut out) {
            Ok(Some(reply)) => {
                if !src.is_unspecified() {
                    self.observe(src.into());
                }
                let mac = reply.dst_mac_or(self.net.guest_mac.unwrap_or(ethernet::BROADCAST));
                self.queue_icmpv6(mac, reply.src_ip, reply.dst_ip, &out[..reply.len]);
            }
            Ok(None) => {}
            Err(e) => {
                log::trace!("NDP: dropped: {e}");
                self.stats.drop(Drop::Malformed);
            }
        }
    }

    /// An unsolicited router advertisement to all nodes.
    fn send_ra(&mut self) {
        let Some(cfg) = &self.services.ndp else { return };
        let mut out = [0u8; 1280];
        let len = ndp::build_ra(cfg, &mut out);
        let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        let our_ll = cfg.our_ll;
        self.queue_icmpv6(ipv6::multicast_mac(all_nodes), our_ll, all_nodes, &out[..len]);
    }

    fn handle_dhcpv6(&mut self, src: Ipv6Addr, dst: Ipv6Addr, sport: u16, l4: &[u8], l4_checked: bool) {
        let Some(cfg) = &self.services.dhcpv6 else { return self.stats.drop(Drop::Disabled) };
        let Some(our_ll) = self.net.v6.as_ref().map(|n| n.our_ll) else { return };
        if !l4_checked && !l4_checksum_ok(src.into(), dst.into(), ipv6::NEXT_UDP, l4) {
            return self.stats.drop(Drop::BadChecksum);
        }
        let Ok(d) = udp::Datagram::new_checked(l4) else { return self.stats.drop(Drop::Truncated) };
        let mut out = [0u8; 1280];
        match dhcpv6::handle(cfg, d.payload(), &mut out) {
            Ok(Some(reply)) => {
                // A REPLY to SOLICIT (rapid commit), REQUEST, RENEW or
                // REBIND carries the address: a lease (RFC 8415 message
                // types 1, 3, 5, 6; REPLY is 7).
                let asked = d.payload().first().copied().unwrap_or(0);
                if out[0] == 7 && matches!(asked, 1 | 3 | 5 | 6) {
                    if let Some(addr) = cfg.addr {
                        self.stats.dhcpv6_leases += 1;
                        let mac = self.net.guest_mac.unwrap_or([0; 6]);
                        self.events.push(super::Event::Dhcpv6Lease { addr, mac });
                    }
                }
                let mac = self.net.guest_mac.unwrap_or(ethernet::BROADCAST);
                let from = SocketAddr::new(our_ll.into(), 547);
                self.queue_udp(mac, from, SocketAddr::new(src.into(), sport), &out[..reply.len]);
            }
            Ok(None) => {}
            Err(e) => {
                log::debug!("DHCPv6: dropped: {e}");
                self.stats.drop(Drop::Malformed);
            }
        }
    }

    /// Opens the forwarded ports (`-t`, `-u`).
    pub(crate) fn listen(&mut self, cfg: &Config) -> Result<(), String> {
        let parse = |opt: &str, specs: &[String]| -> Result<Vec<crate::fwd::PortSpec>, String> {
            specs.iter().map(|s| crate::fwd::PortSpec::parse(s).map_err(|e| format!("{opt} {s}: {e}"))).collect()
        };
        if !cfg.no_tcp {
            let specs = parse("-t", &cfg.tcp_ports)?;
            let (mut ctx, flows) = self.flow_ctx();
            flows.tcp.listen(&mut ctx, &specs)?;
        }
        if !cfg.no_udp {
            let specs = parse("-u", &cfg.udp_ports)?;
            let (mut ctx, flows) = self.flow_ctx();
            flows.udp.set_freebind(cfg.freebind);
            flows.udp.listen(&mut ctx, &specs)?;
        }
        Ok(())
    }

    /// Whether the guest's frames so far make a burst for the host side
    /// (see [`UDP_BURST`]): the backend then ends the batch.
    pub(crate) fn host_burst_done(&self) -> bool {
        self.flows.udp.queued() >= UDP_BURST
    }

    /// After a batch of guest frames: flows send what they queued and
    /// coalesced acknowledgements.
    pub(crate) fn after_guest_batch(&mut self) {
        let (mut ctx, flows) = self.flow_ctx();
        flows.tcp.flush(&mut ctx);
        flows.udp.flush(&mut ctx);
    }

    /// An event on a host socket.
    pub(crate) fn host_event(&mut self, token: Token, bits: u32) {
        let (mut ctx, flows) = self.flow_ctx();
        match token.kind {
            Kind::Icmp => flows.icmp.handle_event(&mut ctx, token, bits),
            Kind::TcpConn | Kind::TcpListen => flows.tcp.handle_event(&mut ctx, token, bits),
            Kind::UdpFlow | Kind::UdpListen => flows.udp.handle_event(&mut ctx, token, bits),
            _ => {}
        }
    }

    /// The guest went away: every flow ends.
    pub(crate) fn reset_flows(&mut self) {
        let (mut ctx, flows) = self.flow_ctx();
        flows.icmp.reset_all(&mut ctx);
        flows.tcp.reset_all(&mut ctx);
        flows.udp.reset_all(&mut ctx);
    }

    /// The guest queue has room again.
    pub(crate) fn tx_room(&mut self) {
        let (mut ctx, flows) = self.flow_ctx();
        flows.tcp.handle_tx_room(&mut ctx);
        flows.udp.handle_tx_room(&mut ctx);
    }

    pub(crate) fn run_timers(&mut self) {
        let now = self.now;
        if self.services.next_ra.is_some_and(|t| t <= now) {
            self.send_ra();
            self.services.next_ra = Some(now + ndp::RA_INTERVAL);
        }
        let (mut ctx, flows) = self.flow_ctx();
        if flows.icmp.poll_deadline().is_some_and(|t| t <= now) {
            flows.icmp.handle_timeout(&mut ctx);
        }
        if flows.tcp.poll_deadline().is_some_and(|t| t <= now) {
            flows.tcp.handle_timeout(&mut ctx);
        }
        if flows.udp.poll_deadline().is_some_and(|t| t <= now) {
            flows.udp.handle_timeout(&mut ctx);
        }
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        let f = &self.flows;
        [self.services.next_ra, f.icmp.poll_deadline(), f.tcp.poll_deadline(), f.udp.poll_deadline()]
            .into_iter()
            .flatten()
            .min()
    }
}
