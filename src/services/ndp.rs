//! Neighbor Discovery responder: we are the guest's only router and the
//! owner of every address on its link (RFC 4861, RFC 4862, RFC 8106).
//!
//! What it answers:
//! * Router Solicitation: a Router Advertisement ([`build_ra`]) carrying our
//!   link-layer address, the MTU, the host's prefix for SLAAC (L and A flags)
//!   and the DNS servers and search list (RFC 8106). Sent unicast to the
//!   soliciting address (RFC 4861 §6.2.6 allows it; it needs no rate limit
//!   and works before the guest has joined any group), or to ff02::1 when
//!   the RS comes from the unspecified address.
//! * Neighbor Solicitation: a solicited Neighbor Advertisement (R, S and O
//!   flags, target link-layer address = our MAC) for any target that is not
//!   the guest's own, so that every address on the link resolves to us and
//!   the engine can map it (proxy-ND, as passt does). NS for the guest's own
//!   addresses and Duplicate Address Detection probes (unspecified source,
//!   RFC 4862 §5.4.3) are never answered: that would make the guest's DAD
//!   fail and leave it without an address.
//!
//! Ignored (`Ok(None)`): RAs, NAs and Redirects from the guest (we are the
//! only router and learn the guest's addresses elsewhere), and non-NDP types.
//!
//! Validation (RFC 4861 §6.1.1, §7.1.1) is done here except the ICMPv6
//! checksum: hop limit 255 (so the message cannot come from off-link), code
//! 0, option lengths, no source link-layer address option from the
//! unspecified address, multicast NS only to the target's solicited-node
//! group. Replies leave the checksum field zero; the engine sends them with
//! IPv6 hop limit [`NDP_HOP_LIMIT`] from [`NdpReply::src_ip`] (our link-local
//! address for RAs: RFC 4861 §6.1.2 makes hosts drop RAs from anything else).
//!
//! Values picked (and why), all RFC 4861 §6.2.1 unless said otherwise:
//! * [`RA_INTERVAL`] 600 s: the default MaxRtrAdvInterval.
//! * Router lifetime: [`NdpConfig::router_lifetime_secs`], default
//!   [`DEFAULT_ROUTER_LIFETIME_SECS`] = 9000 s, the largest value RFC 4861
//!   allows (RFC 8319 raises the limit to 65535 but older hosts may clamp):
//!   fifteen RA intervals, so a few lost RAs never cost the default route.
//! * Cur Hop Limit 64 ([`RA_CUR_HOP_LIMIT`]), reachable time and retrans
//!   timer 0 (unspecified: the guest keeps its own defaults).
//! * Prefix, RDNSS and DNSSL lifetimes infinite: the configuration does not
//!   change while an instance runs, and the guest should keep its address
//!   and resolvers even if it misses RAs (e.g. across a host suspend).
//! * M and O flags both follow [`NdpConfig::managed`]: set when our DHCPv6
//!   server runs, so that clients that honour them (NetworkManager,
//!   systemd-networkd) also ask it for the host's address and options.
//! * The A flag is set only for a /64 prefix: SLAAC needs a 64-bit
//!   interface identifier on Ethernet (RFC 4862 §5.5.3, RFC 2464 §4) and
//!   Linux ignores autoconfiguration for other lengths anyway.
//!
//! Left out: Redirects, router preference (RFC 4191), route information
//! options, rate limiting of multicast RAs (the engine's timers), and any
//! neighbour cache (we have nothing to resolve: the guest's MAC comes from
//! the frames it sends).

use std::net::Ipv6Addr;
use std::time::Duration;

use crate::wire::ndp::{
    self, DomainList, Ipv6List, NdpOption, PrefixInfo, Repr, ALL_NODES, INFINITE_LIFETIME,
    MAX_OPTION_LEN, NA_FLAG_OVERRIDE, NA_FLAG_ROUTER, NA_FLAG_SOLICITED, PREFIX_FLAG_AUTONOMOUS,
    PREFIX_FLAG_ON_LINK, RA_FLAG_MANAGED, RA_FLAG_OTHER,
};
use crate::wire::{dns, ipv6};

/// Period between unsolicited RAs to ff02::1: RFC 4861's default
/// MaxRtrAdvInterval (600 s; the allowed range is 4..=1800 s). The engine
/// may send the first few faster (§6.2.4: up to 3 at most 16 s apart).
pub const RA_INTERVAL: Duration = Duration::from_secs(600);

/// Default router lifetime in seconds: RFC 4861's upper bound (§6.2.1).
pub const DEFAULT_ROUTER_LIFETIME_SECS: u16 = 9000;

/// Cur Hop Limit advertised in RAs (the common default for hosts).
pub const RA_CUR_HOP_LIMIT: u8 = 64;

/// Valid and preferred lifetime of the advertised prefix (infinite).
pub const PREFIX_LIFETIME_SECS: u32 = INFINITE_LIFETIME;

/// Lifetime of the RDNSS and DNSSL options (infinite).
pub const DNS_LIFETIME_SECS: u32 = INFINITE_LIFETIME;

/// IPv6 hop limit of every NDP message, sent and accepted (RFC 4861 §6.1).
pub const NDP_HOP_LIMIT: u8 = 255;

/// Smallest MTU IPv6 allows (RFC 8200 §5); smaller MTU options are not sent.
pub const MIN_IPV6_MTU: u32 = 1280;

/// Prefix length SLAAC needs on Ethernet (RFC 4862 §5.5.3, RFC 2464 §4).
pub const SLAAC_PREFIX_LEN: u8 = 64;

/// What we advertise. Built once per instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NdpConfig {
    /// Our MAC address: source of every frame we send to the guest.
    pub our_mac: [u8; 6],
    /// Our link-local address, source of RAs: normally
    /// [`our_link_local`]`(our_mac)`.
    pub our_ll: Ipv6Addr,
    /// The host's global prefix and its length, advertised with the L flag
    /// (and the A flag for a /64) so the guest autoconfigures an address in
    /// it. `None`, link-local, multicast or unspecified: no prefix option.
    pub prefix: Option<(Ipv6Addr, u8)>,
    /// MTU option when `Some` and at least [`MIN_IPV6_MTU`].
    pub mtu: Option<u32>,
    /// RDNSS option when non-empty (as many as fit, at most 127).
    pub dns: Vec<Ipv6Addr>,
    /// DNSSL option when it holds an encodable name (as many as fit).
    pub search: Vec<String>,
    /// Router lifetime, seconds: 0 means "not a default router".
    pub router_lifetime_secs: u16,
    /// M and O flags: our DHCPv6 server runs.
    pub managed: bool,
    /// Send no RA at all (RS ignored, [`build_ra`] writes nothing); NS are
    /// still answered.
    pub no_ra: bool,
}

impl NdpConfig {
    /// A configuration with defaults: EUI-64 link-local address, no prefix,
    /// no MTU, no DNS, [`DEFAULT_ROUTER_LIFETIME_SECS`], DHCPv6 off, RAs on.
    pub fn new(our_mac: [u8; 6]) -> Self {
        NdpConfig {
            our_mac,
            our_ll: our_link_local(our_mac),
            prefix: None,
            mtu: None,
            dns: Vec::new(),
            search: Vec::new(),
            router_lifetime_secs: DEFAULT_ROUTER_LIFETIME_SECS,
            managed: false,
            no_ra: false,
        }
    }
}

/// The fe80::/64 address with the modified EUI-64 interface identifier of
/// `mac` (RFC 4291 Appendix A, RFC 2464 §4-5): the universal/local bit
/// flipped and ff:fe inserted in the middle.
pub fn link_local_from_mac(mac: [u8; 6]) -> Ipv6Addr {
    let [a, b, c, d, e, f] = mac;
    let mut octets = [0u8; 16];
    octets[..2].copy_from_slice(&[0xfe, 0x80]);
    octets[8..].copy_from_slice(&[a ^ 0x02, b, c, 0xff, 0xfe, d, e, f]);
    Ipv6Addr::from(octets)
}

/// Our own link-local address, the source of our RAs and NAs: `our_mac`
/// in the modified EUI-64 layout but with the universal/local bit left as
/// it is. Why not plain EUI-64: libvirt passes the guest's own MAC as
/// `--mac-addr`, and with the same MAC on both ends plain EUI-64 would give
/// us the guest's link-local address, and the guest would ignore a router
/// with its own address (no default route). One bit apart, ours never
/// equals the guest's EUI-64 address for the same MAC.
pub fn our_link_local(our_mac: [u8; 6]) -> Ipv6Addr {
    let mut mac = our_mac;
    mac[0] ^= 0x02; // undone by the flip in link_local_from_mac
    link_local_from_mac(mac)
}

/// Where a reply written into `out` goes. The engine wraps `out[..len]` in
/// IPv6 (hop limit [`NDP_HOP_LIMIT`], next header 58) and Ethernet (source
/// our MAC) and fills the ICMPv6 checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdpReply {
    /// Length of the ICMPv6 message written at the start of `out`.
    pub len: usize,
    /// IPv6 source: our link-local address for an RA, the target for an NA.
    pub src_ip: Ipv6Addr,
    /// IPv6 destination.
    pub dst_ip: Ipv6Addr,
    /// Ethernet destination when the request named one (its source
    /// link-layer address option). `None`: for a multicast `dst_ip` its
    /// 33:33 group address, otherwise the Ethernet source of the request
    /// frame; [`NdpReply::dst_mac_or`] applies this rule.
    pub dst_mac: Option<[u8; 6]>,
}

impl NdpReply {
    /// The Ethernet destination, given the request frame's source address.
    pub fn dst_mac_or(&self, request_src_mac: [u8; 6]) -> [u8; 6] {
        match self.dst_mac {
            Some(mac) => mac,
            None if self.dst_ip.is_multicast() => ipv6::multicast_mac(self.dst_ip),
            None => request_src_mac,
        }
    }
}

/// Why a message from the guest was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdpError {
    /// IPv6 hop limit is not 255: the message may come from off-link.
    BadHopLimit(u8),
    /// The ICMPv6 message or one of its options is malformed.
    Malformed(ndp::Error),
    /// A source link-layer address option from the unspecified address.
    LlaFromUnspecified,
    /// The IPv6 source is multicast.
    MulticastSource,
    /// NS target is the unspecified or loopback address.
    BadTarget,
    /// Multicast NS not sent to the target's solicited-node group.
    BadDestination,
    /// `out` cannot hold the reply.
    OutTooSmall,
}

impl std::fmt::Display for NdpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NdpError::BadHopLimit(h) => write!(f, "NDP hop limit {h}, not 255"),
            NdpError::Malformed(e) => write!(f, "malformed NDP: {e}"),
            NdpError::LlaFromUnspecified => f.write_str("link-layer address option from ::"),
            NdpError::MulticastSource => f.write_str("NDP from a multicast source"),
            NdpError::BadTarget => f.write_str("NS for an unspecified or loopback target"),
            NdpError::BadDestination => f.write_str("multicast NS not to the solicited-node group"),
            NdpError::OutTooSmall => f.write_str("reply buffer too small"),
        }
    }
}

impl std::error::Error for NdpError {}

impl From<ndp::Error> for NdpError {
    fn from(e: ndp::Error) -> Self {
        NdpError::Malformed(e)
    }
}

/// Answers one NDP message from the guest.
///
/// `src`, `dst` and `hop_limit` come from its IPv6 header; `msg` is the
/// ICMPv6 message (checksum already verified by the caller). `guest_addrs`
/// are addresses known to be the guest's own: an NS for them is never
/// answered. The reply, if any, is written at the start of `out`.
///
/// # Errors
/// Invalid messages (see [`NdpError`]); `Ok(None)` for valid messages that
/// need no answer.
pub fn handle(
    cfg: &NdpConfig,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    msg: &[u8],
    guest_addrs: &[Ipv6Addr],
    out: &mut [u8],
) -> Result<Option<NdpReply>, NdpError> {
    let msg_type = ndp::MessageType::from(*msg.first().ok_or(ndp::Error::Truncated)?);
    if !matches!(
        msg_type,
        ndp::MessageType::RouterSolicit | ndp::MessageType::NeighborSolicit
    ) {
        log::trace!("ndp: ignoring {msg_type} from {src}");
        return Ok(None);
    }
    if hop_limit != NDP_HOP_LIMIT {
        return Err(NdpError::BadHopLimit(hop_limit));
    }
    if src.is_multicast() {
        return Err(NdpError::MulticastSource);
    }
    let repr = Repr::parse_bytes(msg)?;
    log::trace!("ndp: {src} > {dst}: {repr}");
    if src.is_unspecified() && repr.options().source_lla().is_some() {
        return Err(NdpError::LlaFromUnspecified);
    }
    match repr {
        Repr::RouterSolicit { options } => {
            answer_router_solicit(cfg, src, options.source_lla(), out)
        }
        Repr::NeighborSolicit { target, options } => answer_neighbor_solicit(
            cfg,
            src,
            dst,
            target,
            options.source_lla(),
            guest_addrs,
            out,
        ),
        // parse_bytes only returns the message type we matched above.
        Repr::RouterAdvert { .. } | Repr::NeighborAdvert { .. } => Ok(None),
    }
}

fn answer_router_solicit(
    cfg: &NdpConfig,
    src: Ipv6Addr,
    src_lla: Option<[u8; 6]>,
    out: &mut [u8],
) -> Result<Option<NdpReply>, NdpError> {
    if cfg.no_ra {
        return Ok(None);
    }
    let len = build_ra(cfg, out);
    if len == 0 {
        return Err(NdpError::OutTooSmall);
    }
    let (dst_ip, dst_mac) = if src.is_unspecified() {
        (ALL_NODES, None)
    } else {
        (src, src_lla)
    };
    Ok(Some(NdpReply {
        len,
        src_ip: cfg.our_ll,
        dst_ip,
        dst_mac,
    }))
}

fn answer_neighbor_solicit(
    cfg: &NdpConfig,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    src_lla: Option<[u8; 6]>,
    guest_addrs: &[Ipv6Addr],
    out: &mut [u8],
) -> Result<Option<NdpReply>, NdpError> {
    if target.is_unspecified() || target.is_loopback() {
        return Err(NdpError::BadTarget);
    }
    if dst.is_multicast() && dst != ndp::solicited_node(target) {
        return Err(NdpError::BadDestination);
    }
    if src.is_unspecified() {
        log::debug!("ndp: not answering DAD probe for {target}");
        return Ok(None);
    }
    if guest_addrs.contains(&target) {
        log::trace!("ndp: {target} is the guest's own, no NA");
        return Ok(None);
    }
    let na = Repr::NeighborAdvert {
        flags: NA_FLAG_ROUTER | NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE,
        target,
        options: ndp::Options::empty(),
    };
    let header = na.emit_header(out).map_err(|_| NdpError::OutTooSmall)?;
    let option = NdpOption::TargetLla(cfg.our_mac);
    let tail = out.get_mut(header..).ok_or(NdpError::OutTooSmall)?;
    let len = header + option.emit(tail).map_err(|_| NdpError::OutTooSmall)?;
    Ok(Some(NdpReply {
        len,
        src_ip: target,
        dst_ip: src,
        dst_mac: src_lla,
    }))
}

/// Writes an RA describing `cfg` at the start of `out` and returns its
/// length: 0 when `cfg.no_ra` or when `out` cannot even hold the header and
/// our link-layer address. Options are written in this order as long as
/// they fit: source link-layer address, MTU, prefix, RDNSS, DNSSL (an
/// option that does not fit is left out, with as many servers or names as
/// fit). Sent from `cfg.our_ll` to ff02::1 unsolicited, or as the answer to
/// an RS.
pub fn build_ra(cfg: &NdpConfig, out: &mut [u8]) -> usize {
    if cfg.no_ra {
        return 0;
    }
    let managed = if cfg.managed {
        RA_FLAG_MANAGED | RA_FLAG_OTHER
    } else {
        0
    };
    let ra = Repr::RouterAdvert {
        cur_hop_limit: RA_CUR_HOP_LIMIT,
        flags: managed,
        router_lifetime: cfg.router_lifetime_secs,
        reachable_time: 0,
        retrans_timer: 0,
        options: ndp::Options::empty(),
    };
    let Ok(mut len) = ra.emit_header(out) else {
        return 0;
    };
    let mut writer = OptionWriter { out, len: &mut len };
    if !writer.push(&NdpOption::SourceLla(cfg.our_mac)) {
        return 0;
    }
    if let Some(mtu) = cfg.mtu.filter(|&m| m >= MIN_IPV6_MTU) {
        writer.push(&NdpOption::Mtu(mtu));
    }
    if let Some(prefix) = prefix_info(cfg.prefix) {
        writer.push(&NdpOption::PrefixInfo(prefix));
    }
    let room = writer.room();
    if let Some(servers) = rdnss_servers(&cfg.dns, room) {
        writer.push(&NdpOption::Rdnss {
            lifetime: DNS_LIFETIME_SECS,
            servers,
        });
    }
    let room = writer.room();
    if let Some(names) = dnssl_names(&cfg.search, room) {
        writer.push(&NdpOption::Dnssl {
            lifetime: DNS_LIFETIME_SECS,
            names,
        });
    }
    len
}

/// Appends options after what is already in `out[..len]`.
struct OptionWriter<'o, 'l> {
    out: &'o mut [u8],
    len: &'l mut usize,
}

impl OptionWriter<'_, '_> {
    /// Bytes left for options.
    fn room(&self) -> usize {
        self.out.len().saturating_sub(*self.len)
    }

    /// Writes `option` if it fits; reports whether it did.
    fn push(&mut self, option: &NdpOption<'_>) -> bool {
        let Some(tail) = self.out.get_mut(*self.len..) else {
            return false;
        };
        match option.emit(tail) {
            Ok(n) => {
                *self.len += n;
                true
            }
            Err(e) => {
                log::debug!("ndp: RA option {option} left out: {e}");
                false
            }
        }
    }
}

/// The prefix option for `prefix`, if it is one a guest can use: masked to
/// its length, L always, A for a /64, infinite lifetimes.
fn prefix_info(prefix: Option<(Ipv6Addr, u8)>) -> Option<PrefixInfo> {
    let (addr, prefix_len) = prefix?;
    if prefix_len > 128
        || addr.is_multicast()
        || addr.is_unspecified()
        || ipv6::is_link_local(&addr)
    {
        return None;
    }
    let mask = u128::MAX
        .checked_shl(128 - u32::from(prefix_len))
        .unwrap_or(0);
    let flags = if prefix_len == SLAAC_PREFIX_LEN {
        PREFIX_FLAG_ON_LINK | PREFIX_FLAG_AUTONOMOUS
    } else {
        PREFIX_FLAG_ON_LINK
    };
    Some(PrefixInfo {
        prefix_len,
        flags,
        valid_lifetime: PREFIX_LIFETIME_SECS,
        preferred_lifetime: PREFIX_LIFETIME_SECS,
        prefix: Ipv6Addr::from(u128::from(addr) & mask),
    })
}

/// The DNS servers that fit in `room` bytes and one option (at most 127).
fn rdnss_servers(dns: &[Ipv6Addr], room: usize) -> Option<Ipv6List<'_>> {
    let fit = room.saturating_sub(8).min(MAX_OPTION_LEN - 8) / 16;
    let servers = dns.get(..dns.len().min(fit))?;
    (!servers.is_empty()).then_some(Ipv6List::Addrs(servers))
}

/// The longest head of `search` whose padded encoding fits in `room` bytes
/// and one option; `None` if it holds no encodable name.
fn dnssl_names(search: &[String], room: usize) -> Option<DomainList<'_>> {
    let limit = room.min(MAX_OPTION_LEN).saturating_sub(8);
    let mut used = 0;
    let mut count = 0;
    for name in search {
        let add = dns::encoded_name_len(name).unwrap_or(0);
        if (used + add).div_ceil(8) * 8 > limit {
            break;
        }
        used += add;
        count += 1;
    }
    let names = DomainList::Names(search.get(..count)?);
    (!names.is_empty()).then_some(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ndp::tests::RA;
    use crate::wire::ndp::ALL_ROUTERS;
    use crate::wire::test_rng::{mutate, Rng};

    const OUR_MAC: [u8; 6] = [0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55];
    const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// The configuration the RA fixture of `wire::ndp` describes.
    fn full_config() -> NdpConfig {
        NdpConfig {
            prefix: Some((ip("2001:db8:1:2::"), 64)),
            mtu: Some(65520),
            dns: vec![ip("2001:db8::53")],
            search: vec!["example.com".into()],
            managed: true,
            ..NdpConfig::new(OUR_MAC)
        }
    }

    fn guest_ll() -> Ipv6Addr {
        link_local_from_mac(GUEST_MAC)
    }

    #[rustfmt::skip]
    fn rs(with_slla: bool) -> Vec<u8> {
        let mut m = vec![
            0x85, 0x00, 0x00, 0x00, // RS, code 0, checksum
            0x00, 0x00, 0x00, 0x00, // reserved
        ];
        if with_slla {
            m.extend_from_slice(&[0x01, 0x01]); // SLLA, 1 unit
            m.extend_from_slice(&GUEST_MAC);
        }
        m
    }

    #[rustfmt::skip]
    fn ns(target: Ipv6Addr, with_slla: bool) -> Vec<u8> {
        let mut m = vec![
            0x87, 0x00, 0x00, 0x00, // NS, code 0, checksum
            0x00, 0x00, 0x00, 0x00, // reserved
        ];
        m.extend_from_slice(&target.octets());
        if with_slla {
            m.extend_from_slice(&[0x01, 0x01]);
            m.extend_from_slice(&GUEST_MAC);
        }
        m
    }

    /// Runs `handle` on a buffer followed by guard bytes, checking they
    /// stay untouched.
    fn run(
        cfg: &NdpConfig,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop_limit: u8,
        msg: &[u8],
        guest: &[Ipv6Addr],
        out_len: usize,
    ) -> (Result<Option<NdpReply>, NdpError>, Vec<u8>) {
        let mut buf = vec![0xa5u8; out_len + 64];
        let result = handle(cfg, src, dst, hop_limit, msg, guest, &mut buf[..out_len]);
        assert!(buf[out_len..].iter().all(|&b| b == 0xa5), "wrote past out");
        if let Ok(Some(reply)) = result {
            assert!(reply.len <= out_len);
        }
        (result, buf)
    }

    #[test]
    fn link_local_is_modified_eui64() {
        assert_eq!(
            link_local_from_mac(GUEST_MAC),
            ip("fe80::5054:ff:fe12:3456")
        );
        assert_eq!(
            link_local_from_mac(OUR_MAC),
            ip("fe80::9855:9aff:fe55:9a55")
        );
    }

    #[test]
    fn our_link_local_differs_from_a_guest_with_our_mac() {
        assert_eq!(our_link_local(OUR_MAC), ip("fe80::9a55:9aff:fe55:9a55"));
        assert_ne!(our_link_local(GUEST_MAC), link_local_from_mac(GUEST_MAC));
    }

    #[test]
    fn build_ra_matches_the_hand_built_fixture() {
        let mut out = [0u8; 1500];
        let len = build_ra(&full_config(), &mut out);
        assert_eq!(&out[..len], RA);
    }

    #[test]
    fn minimal_ra_has_only_our_address() {
        let cfg = NdpConfig {
            mtu: Some(1279),
            ..NdpConfig::new(OUR_MAC)
        };
        let mut out = [0u8; 1500];
        let len = build_ra(&cfg, &mut out);
        #[rustfmt::skip]
        let want = [
            0x86, 0x00, 0x00, 0x00, // RA, checksum left zero
            0x40, 0x00, 0x23, 0x28, // hop limit 64, no M/O, lifetime 9000
            0, 0, 0, 0, 0, 0, 0, 0, // reachable, retrans: unspecified
            0x01, 0x01, 0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55, // SLLA
        ];
        assert_eq!(&out[..len], &want);
        assert_eq!(
            build_ra(
                &NdpConfig {
                    no_ra: true,
                    ..cfg.clone()
                },
                &mut out
            ),
            0
        );
        assert_eq!(build_ra(&cfg, &mut out[..23]), 0);
    }

    #[test]
    fn prefix_option_rules() {
        let prefix_of = |prefix| {
            let cfg = NdpConfig {
                prefix,
                ..NdpConfig::new(OUR_MAC)
            };
            let mut out = [0u8; 200];
            let len = build_ra(&cfg, &mut out);
            let repr = Repr::parse_bytes(&out[..len]).unwrap();
            let found = repr.options().iter().find_map(|o| match o {
                NdpOption::PrefixInfo(p) => Some(p),
                _ => None,
            });
            found
        };
        let p = prefix_of(Some((ip("2001:db8:1:2:3::"), 48))).unwrap();
        assert_eq!((p.prefix, p.prefix_len), (ip("2001:db8:1::"), 48));
        assert!(p.on_link() && !p.autonomous(), "no SLAAC for a /48");
        let p = prefix_of(Some((ip("2001:db8::1"), 64))).unwrap();
        assert_eq!(p.prefix, ip("2001:db8::"));
        assert!(p.on_link() && p.autonomous());
        assert_eq!(
            (p.valid_lifetime, p.preferred_lifetime),
            (INFINITE_LIFETIME, INFINITE_LIFETIME)
        );
        assert_eq!(
            prefix_of(Some((ip("2001:db8::1"), 0))).unwrap().prefix,
            ip("::")
        );
        assert_eq!(
            prefix_of(Some((ip("2001:db8::1"), 128))).unwrap().prefix,
            ip("2001:db8::1")
        );
        assert_eq!(prefix_of(Some((ip("2001:db8::"), 129))), None);
        assert_eq!(prefix_of(Some((ip("fe80::"), 64))), None);
        assert_eq!(prefix_of(Some((ip("ff02::"), 64))), None);
        assert_eq!(prefix_of(None), None);
    }

    #[test]
    fn dns_options_shrink_to_fit() {
        let cfg = NdpConfig {
            dns: (1..=200u16)
                .map(|i| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i))
                .collect(),
            search: (0..300).map(|i| format!("d{i}.example")).collect(),
            ..full_config()
        };
        for out_len in [1280 - 48, 1500 - 48, 9000] {
            let mut out = vec![0u8; out_len];
            let len = build_ra(&cfg, &mut out);
            let repr = Repr::parse_bytes(&out[..len]).unwrap();
            let servers = repr.options().iter().find_map(|o| match o {
                NdpOption::Rdnss { servers, .. } => Some(servers.len()),
                _ => None,
            });
            // Header 16, SLLA 8, MTU 8, prefix 32: 64 bytes before RDNSS.
            let want = ((out_len - 64 - 8) / 16).min(127);
            assert_eq!(servers, Some(want), "out {out_len}");
            if out_len == 9000 {
                let names = repr.options().iter().find_map(|o| match o {
                    NdpOption::Dnssl { names, .. } => Some(names.to_strings()),
                    _ => None,
                });
                let names = names.unwrap();
                assert_eq!(names[0], "d0.example");
                assert!(names.len() > 100 && names.len() < 300);
            }
        }
    }

    #[test]
    fn router_solicit_gets_unicast_ra() {
        let cfg = full_config();
        let (result, buf) = run(&cfg, guest_ll(), ALL_ROUTERS, 255, &rs(true), &[], 1500);
        let reply = result.unwrap().unwrap();
        assert_eq!(
            reply,
            NdpReply {
                len: RA.len(),
                src_ip: cfg.our_ll,
                dst_ip: guest_ll(),
                dst_mac: Some(GUEST_MAC)
            }
        );
        assert_eq!(&buf[..reply.len], RA);
        // Without SLLA the engine falls back to the frame's source.
        let (result, _) = run(&cfg, guest_ll(), ALL_ROUTERS, 255, &rs(false), &[], 1500);
        let reply = result.unwrap().unwrap();
        assert_eq!(reply.dst_mac, None);
        assert_eq!(reply.dst_mac_or(GUEST_MAC), GUEST_MAC);
    }

    #[test]
    fn router_solicit_from_unspecified_gets_multicast_ra() {
        let cfg = full_config();
        let (result, _) = run(
            &cfg,
            Ipv6Addr::UNSPECIFIED,
            ALL_ROUTERS,
            255,
            &rs(false),
            &[],
            1500,
        );
        let reply = result.unwrap().unwrap();
        assert_eq!((reply.dst_ip, reply.dst_mac), (ALL_NODES, None));
        assert_eq!(reply.dst_mac_or(GUEST_MAC), [0x33, 0x33, 0, 0, 0, 1]);
        // RFC 4861 §6.1.1: no SLLA option from the unspecified address.
        let (result, _) = run(
            &cfg,
            Ipv6Addr::UNSPECIFIED,
            ALL_ROUTERS,
            255,
            &rs(true),
            &[],
            1500,
        );
        assert_eq!(result, Err(NdpError::LlaFromUnspecified));
    }

    #[test]
    fn router_solicit_ignored_with_no_ra() {
        let cfg = NdpConfig {
            no_ra: true,
            ..full_config()
        };
        let (result, buf) = run(&cfg, guest_ll(), ALL_ROUTERS, 255, &rs(true), &[], 1500);
        assert_eq!(result, Ok(None));
        assert!(buf.iter().all(|&b| b == 0xa5));
    }

    #[test]
    fn wrong_hop_limit_is_dropped() {
        let cfg = full_config();
        for hop in [0, 1, 64, 254] {
            let (result, _) = run(&cfg, guest_ll(), ALL_ROUTERS, hop, &rs(true), &[], 1500);
            assert_eq!(result, Err(NdpError::BadHopLimit(hop)));
            let target = ip("2001:db8::1");
            let (result, _) = run(&cfg, guest_ll(), target, hop, &ns(target, true), &[], 1500);
            assert_eq!(result, Err(NdpError::BadHopLimit(hop)));
        }
    }

    #[test]
    fn neighbor_solicit_gets_solicited_na() {
        let cfg = full_config();
        let target = ip("2001:db8:1:2::1");
        let (result, buf) = run(
            &cfg,
            guest_ll(),
            ndp::solicited_node(target),
            255,
            &ns(target, true),
            &[ip("2001:db8:1:2::99")],
            1500,
        );
        let reply = result.unwrap().unwrap();
        assert_eq!(
            reply,
            NdpReply {
                len: 32,
                src_ip: target,
                dst_ip: guest_ll(),
                dst_mac: Some(GUEST_MAC)
            }
        );
        #[rustfmt::skip]
        let want = [
            0x88, 0x00, 0x00, 0x00, // NA, checksum left zero
            0xe0, 0x00, 0x00, 0x00, // Router, Solicited, Override
            0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0x01, // target
            0x02, 0x01, 0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55, // TLLA: our MAC
        ];
        assert_eq!(&buf[..32], &want);
        // Unicast NS (neighbour unreachability detection) for our
        // link-local address, without SLLA.
        let (result, _) = run(
            &cfg,
            guest_ll(),
            cfg.our_ll,
            255,
            &ns(cfg.our_ll, false),
            &[],
            1500,
        );
        let reply = result.unwrap().unwrap();
        assert_eq!(
            (reply.src_ip, reply.dst_ip, reply.dst_mac),
            (cfg.our_ll, guest_ll(), None)
        );
    }

    #[test]
    fn dad_probe_is_never_answered() {
        let cfg = full_config();
        let tentative = ip("2001:db8:1:2:5054:ff:fe12:3456");
        let (result, buf) = run(
            &cfg,
            Ipv6Addr::UNSPECIFIED,
            ndp::solicited_node(tentative),
            255,
            &ns(tentative, false),
            &[],
            1500,
        );
        assert_eq!(result, Ok(None));
        assert!(buf.iter().all(|&b| b == 0xa5));
        // Even for an address that is not the guest's.
        let other = ip("2001:db8:1:2::7");
        let (result, _) = run(
            &cfg,
            Ipv6Addr::UNSPECIFIED,
            ndp::solicited_node(other),
            255,
            &ns(other, false),
            &[],
            1500,
        );
        assert_eq!(result, Ok(None));
        // A DAD probe carrying SLLA is invalid.
        let (result, _) = run(
            &cfg,
            Ipv6Addr::UNSPECIFIED,
            ndp::solicited_node(other),
            255,
            &ns(other, true),
            &[],
            1500,
        );
        assert_eq!(result, Err(NdpError::LlaFromUnspecified));
    }

    #[test]
    fn neighbor_solicit_for_the_guests_own_address_is_not_answered() {
        let cfg = full_config();
        let own = ip("2001:db8:1:2:5054:ff:fe12:3456");
        let guest = [guest_ll(), own];
        for target in guest {
            let (result, _) = run(
                &cfg,
                own,
                ndp::solicited_node(target),
                255,
                &ns(target, true),
                &guest,
                1500,
            );
            assert_eq!(result, Ok(None), "{target}");
        }
    }

    #[test]
    fn invalid_neighbor_solicits() {
        let cfg = full_config();
        let src = guest_ll();
        let (result, _) = run(&cfg, src, ALL_NODES, 255, &ns(ALL_NODES, true), &[], 1500);
        assert_eq!(
            result,
            Err(NdpError::Malformed(ndp::Error::MulticastTarget))
        );
        let unspec = Ipv6Addr::UNSPECIFIED;
        let (result, _) = run(
            &cfg,
            src,
            ndp::solicited_node(unspec),
            255,
            &ns(unspec, true),
            &[],
            1500,
        );
        assert_eq!(result, Err(NdpError::BadTarget));
        let target = ip("2001:db8::1");
        let (result, _) = run(&cfg, src, ALL_NODES, 255, &ns(target, true), &[], 1500);
        assert_eq!(result, Err(NdpError::BadDestination));
        let (result, _) = run(&cfg, ALL_NODES, target, 255, &ns(target, false), &[], 1500);
        assert_eq!(result, Err(NdpError::MulticastSource));
        let mut zero_len = ns(target, true);
        zero_len[25] = 0;
        let (result, _) = run(&cfg, src, target, 255, &zero_len, &[], 1500);
        assert_eq!(
            result,
            Err(NdpError::Malformed(ndp::Error::ZeroLengthOption))
        );
        let (result, _) = run(&cfg, src, target, 255, &ns(target, true)[..30], &[], 1500);
        assert_eq!(result, Err(NdpError::Malformed(ndp::Error::OptionPastEnd)));
        let (result, _) = run(&cfg, src, target, 255, &[], &[], 1500);
        assert_eq!(result, Err(NdpError::Malformed(ndp::Error::Truncated)));
    }

    #[test]
    fn guest_ras_nas_and_redirects_are_ignored() {
        let cfg = full_config();
        let na = [
            0x88, 0, 0, 0, 0x20, 0, 0, 0, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        ];
        for msg in [RA, &na[..], &[137u8; 40][..], &[128u8, 0, 0, 0][..]] {
            let (result, _) = run(&cfg, guest_ll(), ALL_NODES, 255, msg, &[], 1500);
            assert_eq!(result, Ok(None));
        }
    }

    #[test]
    fn small_out_buffer_is_an_error_not_an_overflow() {
        let cfg = full_config();
        let target = ip("2001:db8::1");
        for out_len in 0..32 {
            let (result, _) = run(
                &cfg,
                guest_ll(),
                target,
                255,
                &ns(target, true),
                &[],
                out_len,
            );
            assert_eq!(result, Err(NdpError::OutTooSmall), "{out_len}");
        }
        for out_len in 0..24 {
            let (result, _) = run(&cfg, guest_ll(), ALL_ROUTERS, 255, &rs(true), &[], out_len);
            assert_eq!(result, Err(NdpError::OutTooSmall), "{out_len}");
        }
        // From 24 bytes on, an RA goes out with the options that fit.
        for out_len in 24..RA.len() {
            let (result, buf) = run(&cfg, guest_ll(), ALL_ROUTERS, 255, &rs(true), &[], out_len);
            let reply = result.unwrap().unwrap();
            assert!(Repr::parse_bytes(&buf[..reply.len]).is_ok());
        }
    }

    #[test]
    fn fuzz_handle_never_panics_nor_overflows() {
        let mut rng = Rng::new(0x7061_7373_742d_6e64);
        let cfg = full_config();
        let target = ip("2001:db8:1:2::1");
        let fixtures = [
            &rs(true)[..],
            &rs(false)[..],
            &ns(target, true)[..],
            &ns(target, false)[..],
            RA,
        ];
        let fixtures: Vec<Vec<u8>> = fixtures.iter().map(|f| f.to_vec()).collect();
        let fixtures: Vec<&[u8]> = fixtures.iter().map(|f| &f[..]).collect();
        let addrs = [
            Ipv6Addr::UNSPECIFIED,
            guest_ll(),
            target,
            ALL_NODES,
            ndp::solicited_node(target),
            cfg.our_ll,
        ];
        let mut answered = 0;
        for _ in 0..10_000 {
            let msg = mutate(&mut rng, &fixtures);
            let src = addrs[rng.below(addrs.len())];
            let dst = addrs[rng.below(addrs.len())];
            let hop = if rng.below(10) == 0 { rng.byte() } else { 255 };
            let out_len = if rng.below(4) == 0 {
                rng.below(120)
            } else {
                1500
            };
            let (result, buf) = run(&cfg, src, dst, hop, &msg, &[guest_ll()], out_len);
            if let Ok(Some(reply)) = result {
                answered += 1;
                // Every reply is a valid NDP message.
                let repr = Repr::parse_bytes(&buf[..reply.len]).unwrap();
                assert!(matches!(
                    repr,
                    Repr::RouterAdvert { .. } | Repr::NeighborAdvert { .. }
                ));
                assert!(!reply.dst_ip.is_unspecified());
            }
        }
        assert!(answered > 400, "only {answered} replies");
    }
}
