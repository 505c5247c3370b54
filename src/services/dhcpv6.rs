//! DHCPv6 server for the one guest on the link (RFC 8415, RFC 3646).
//!
//! The guest gets the host's own address (when there is one) as its only
//! IA_NA address, plus DNS servers and a search list, so that it looks like
//! the host. There is no lease database: the answer depends only on the
//! configuration, so every server decision is a pure function of the
//! request (the same address for every IAID, lifetimes and T1/T2 infinite:
//! nothing changes while the instance runs, and a guest that never renews
//! loses nothing).
//!
//! What it answers (message validation: RFC 8415 §16; replies: §18.3):
//! * SOLICIT: ADVERTISE with Preference 255 (the client need not wait for
//!   other servers, §18.2.1), or REPLY with Rapid Commit when the client
//!   asked for it (§18.3.1) and we have an address to commit. Without an
//!   address: ADVERTISE with a top-level NoAddrsAvail status and no IA
//!   (clients such as odhcp6c choke on empty IAs).
//! * REQUEST, RENEW, REBIND: REPLY with the client's first IA_NA holding
//!   our address; other addresses the client listed come back with zero
//!   lifetimes so it drops them (§18.3.4-5). Without an address: the IA_NA
//!   with a NoAddrsAvail status (§18.3.2).
//! * CONFIRM: REPLY with Success if every address the client lists is
//!   ours, NotOnLink otherwise; no reply when it lists none or we have none
//!   (we cannot judge, §18.3.3).
//! * RELEASE, DECLINE: REPLY with status Success (§18.3.7-8).
//! * INFORMATION-REQUEST: REPLY with DNS servers (23) and search list (24).
//!
//! DNS servers and search list go into ADVERTISE and REPLY to SOLICIT,
//! REQUEST, RENEW, REBIND and INFORMATION-REQUEST when the client's Option
//! Request lists them, or when it sent no Option Request at all.
//!
//! Dropped as invalid ([`Dhcpv6Error`]): malformed messages, a missing
//! Client Identifier (except in INFORMATION-REQUEST), a Server Identifier in
//! SOLICIT/CONFIRM/REBIND, a missing one in REQUEST/RENEW/RELEASE/DECLINE,
//! an IA option in INFORMATION-REQUEST. Ignored (`Ok(None)`): messages for
//! another server (Server Identifier not ours), server and relay messages.
//!
//! Left out: IA_TA and IA_PD (not answered: the client sees no IA for
//! them), every IA_NA after the first, Reconfigure, authentication, relays.
//! Our server identifier is a DUID-LL (type 3, RFC 8415 §11.4) built from
//! our MAC address. The engine sends replies from our link-local address,
//! port 547, to the client's source address and port.

use std::net::Ipv6Addr;

use crate::wire::dhcpv6;
use crate::wire::dhcpv6::{
    code, DomainList, IaAddr, IaAddrList, IaNa, Ipv6List, MessageType, Packet, Repr, Status,
    StatusCode, INFINITY,
};

/// Preferred and valid lifetime of the address we hand out (infinite).
pub const ADDR_LIFETIME_SECS: u32 = INFINITY;
/// T1 and T2 of the IA_NA we answer (infinite: no renewals needed).
pub const T1_SECS: u32 = INFINITY;
/// T2, see [`T1_SECS`].
pub const T2_SECS: u32 = INFINITY;
/// Server Preference sent in ADVERTISE: the maximum, so the client requests
/// at once (RFC 8415 §18.2.1).
pub const PREFERENCE: u8 = 255;
/// DUID type of our server identifier: DUID-LL (RFC 8415 §11.4).
pub const DUID_TYPE_LL: u16 = 3;
/// Hardware type of the DUID-LL: Ethernet (IANA ARP hardware type 1).
pub const HW_TYPE_ETHERNET: u16 = 1;
/// Most stale client addresses echoed back with zero lifetimes.
const MAX_STALE_ADDRS: usize = 8;

/// What the server hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dhcpv6Config {
    /// Our MAC: source of the server DUID.
    pub our_mac: [u8; 6],
    /// The IA_NA address (the host's); `None`: NoAddrsAvail.
    pub addr: Option<Ipv6Addr>,
    /// DNS Recursive Name Servers (option 23) when non-empty.
    pub dns: Vec<Ipv6Addr>,
    /// Domain Search List (option 24) when it has an encodable name.
    pub search: Vec<String>,
}

/// A reply written at the start of `out`: sent from our link-local address,
/// port 547, to the client's source address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dhcpv6Reply {
    /// Length of the UDP payload written.
    pub len: usize,
}

/// Why a message from the guest was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dhcpv6Error {
    /// The message or one of its options is malformed.
    Malformed(dhcpv6::Error),
    /// No Client Identifier where RFC 8415 §16 requires one.
    MissingClientId,
    /// No Server Identifier where RFC 8415 §16 requires one.
    MissingServerId,
    /// A Server Identifier where RFC 8415 §16 forbids one.
    UnexpectedServerId,
    /// An IA option in an INFORMATION-REQUEST (RFC 8415 §16.12).
    IaInInformationRequest,
    /// `out` cannot hold the reply.
    OutTooSmall,
}

impl std::fmt::Display for Dhcpv6Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dhcpv6Error::Malformed(e) => write!(f, "malformed DHCPv6: {e}"),
            Dhcpv6Error::MissingClientId => f.write_str("DHCPv6 message without client id"),
            Dhcpv6Error::MissingServerId => f.write_str("DHCPv6 message without server id"),
            Dhcpv6Error::UnexpectedServerId => {
                f.write_str("DHCPv6 message with a forbidden server id")
            }
            Dhcpv6Error::IaInInformationRequest => f.write_str("IA option in INFORMATION-REQUEST"),
            Dhcpv6Error::OutTooSmall => f.write_str("reply buffer too small"),
        }
    }
}

impl std::error::Error for Dhcpv6Error {}

impl From<dhcpv6::Error> for Dhcpv6Error {
    fn from(e: dhcpv6::Error) -> Self {
        Dhcpv6Error::Malformed(e)
    }
}

/// Our DUID-LL: type 3, hardware type 1, then the MAC address.
pub fn server_duid(mac: [u8; 6]) -> [u8; 10] {
    let [t0, t1] = DUID_TYPE_LL.to_be_bytes();
    let [h0, h1] = HW_TYPE_ETHERNET.to_be_bytes();
    [
        t0, t1, h0, h1, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5],
    ]
}

/// What a message type demands of the Server Identifier (RFC 8415 §16).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ServerIdRule {
    /// Must be absent.
    Forbidden,
    /// Must be present and ours.
    Required,
    /// If present, must be ours.
    Optional,
}

/// Answers one DHCPv6 message (a UDP payload sent to port 547), writing the
/// reply at the start of `out`.
///
/// # Errors
/// Invalid messages (see [`Dhcpv6Error`]); `Ok(None)` for valid messages
/// that need no answer.
pub fn handle(
    cfg: &Dhcpv6Config,
    msg: &[u8],
    out: &mut [u8],
) -> Result<Option<Dhcpv6Reply>, Dhcpv6Error> {
    let msg_type = Packet::new_checked(msg)?.msg_type();
    let (server_rule, needs_client_id) = match msg_type {
        MessageType::Solicit | MessageType::Confirm | MessageType::Rebind => {
            (ServerIdRule::Forbidden, true)
        }
        MessageType::Request | MessageType::Renew | MessageType::Release | MessageType::Decline => {
            (ServerIdRule::Required, true)
        }
        MessageType::InformationRequest => (ServerIdRule::Optional, false),
        other => {
            log::trace!("dhcpv6: ignoring {other}");
            return Ok(None);
        }
    };
    let request = Repr::parse(msg)?;
    log::trace!("dhcpv6: {request}");
    if needs_client_id && request.client_id.is_none() {
        return Err(Dhcpv6Error::MissingClientId);
    }
    let duid = server_duid(cfg.our_mac);
    match (server_rule, request.server_id) {
        (ServerIdRule::Forbidden, Some(_)) => return Err(Dhcpv6Error::UnexpectedServerId),
        (ServerIdRule::Required, None) => return Err(Dhcpv6Error::MissingServerId),
        (ServerIdRule::Required | ServerIdRule::Optional, Some(id)) if id != duid => {
            log::debug!("dhcpv6: {msg_type} for another server, ignored");
            return Ok(None);
        }
        _ => {}
    }
    if msg_type == MessageType::InformationRequest && has_ia(msg) {
        return Err(Dhcpv6Error::IaInInformationRequest);
    }
    let answer = Answer {
        cfg,
        request: &request,
        duid: &duid,
    };
    let reply = match msg_type {
        MessageType::Solicit => answer.solicit(out),
        MessageType::Request | MessageType::Renew | MessageType::Rebind => {
            answer.lease(MessageType::Reply, false, out)
        }
        MessageType::Confirm => answer.confirm(out),
        MessageType::Release | MessageType::Decline => answer.status_only(StatusCode::Success, out),
        _ => answer.information(out),
    }?;
    Ok(reply.map(|len| Dhcpv6Reply { len }))
}

fn has_ia(msg: &[u8]) -> bool {
    let packet = Packet::new_unchecked(msg);
    [code::IA_NA, code::IA_TA, code::IA_PD]
        .iter()
        .any(|&c| packet.has_option(c))
}

/// Builds the reply to one validated request.
struct Answer<'r> {
    cfg: &'r Dhcpv6Config,
    request: &'r Repr<'r>,
    duid: &'r [u8; 10],
}

impl<'r> Answer<'r> {
    /// A reply of `msg_type` with the same transaction id, our server id and
    /// the client's id.
    fn base(&self, msg_type: MessageType) -> Repr<'r> {
        let mut reply = Repr::new(msg_type, self.request.transaction_id);
        reply.server_id = Some(self.duid);
        reply.client_id = self.request.client_id;
        reply
    }

    /// SOLICIT: ADVERTISE, or REPLY under Rapid Commit.
    fn solicit(&self, out: &mut [u8]) -> Result<Option<usize>, Dhcpv6Error> {
        if self.cfg.addr.is_none() {
            let mut reply = self.base(MessageType::Advertise);
            reply.status = Some(status(StatusCode::NoAddrsAvail));
            return self.with_dns(reply, out);
        }
        if self.request.rapid_commit {
            return self.lease(MessageType::Reply, true, out);
        }
        self.lease(MessageType::Advertise, false, out)
    }

    /// ADVERTISE or REPLY carrying the client's first IA_NA.
    fn lease(
        &self,
        msg_type: MessageType,
        rapid_commit: bool,
        out: &mut [u8],
    ) -> Result<Option<usize>, Dhcpv6Error> {
        let mut reply = self.base(msg_type);
        reply.rapid_commit = rapid_commit;
        if msg_type == MessageType::Advertise {
            reply.preference = Some(PREFERENCE);
        }
        let mut addrs = [IaAddr {
            addr: Ipv6Addr::UNSPECIFIED,
            preferred_lifetime: 0,
            valid_lifetime: 0,
        }; MAX_STALE_ADDRS + 1];
        if let Some(client_ia) = self.request.ia_na {
            reply.ia_na = Some(self.answer_ia(&client_ia, &mut addrs));
        }
        self.with_dns(reply, out)
    }

    /// Our answer for the client's IA: our address (and its stale ones with
    /// zero lifetimes), or NoAddrsAvail. `slots` holds the addresses.
    fn answer_ia<'s>(
        &self,
        client_ia: &IaNa<'_>,
        slots: &'s mut [IaAddr; MAX_STALE_ADDRS + 1],
    ) -> IaNa<'s> {
        let Some(ours) = self.cfg.addr else {
            return IaNa {
                iaid: client_ia.iaid,
                t1: 0,
                t2: 0,
                addrs: IaAddrList::Addrs(&[]),
                status: Some(status(StatusCode::NoAddrsAvail)),
            };
        };
        slots[0] = IaAddr {
            addr: ours,
            preferred_lifetime: ADDR_LIFETIME_SECS,
            valid_lifetime: ADDR_LIFETIME_SECS,
        };
        let mut count = 1;
        // Only RENEW/REBIND/REQUEST list addresses they hold; a SOLICIT's
        // are hints, which ADVERTISE just overrides.
        if self.request.msg_type != MessageType::Solicit {
            let stale = client_ia
                .addrs
                .iter()
                .filter(|a| a.addr != ours)
                .take(MAX_STALE_ADDRS);
            for a in stale {
                slots[count] = IaAddr {
                    addr: a.addr,
                    preferred_lifetime: 0,
                    valid_lifetime: 0,
                };
                count += 1;
            }
        }
        IaNa {
            iaid: client_ia.iaid,
            t1: T1_SECS,
            t2: T2_SECS,
            addrs: IaAddrList::Addrs(&slots[..count]),
            status: None,
        }
    }

    /// CONFIRM: are the client's addresses ours?
    fn confirm(&self, out: &mut [u8]) -> Result<Option<usize>, Dhcpv6Error> {
        let Some(ours) = self.cfg.addr else {
            return Ok(None);
        };
        let Some(ia) = self.request.ia_na else {
            return Ok(None);
        };
        if ia.addrs.is_empty() {
            return Ok(None);
        }
        let verdict = if ia.addrs.iter().all(|a| a.addr == ours) {
            StatusCode::Success
        } else {
            StatusCode::NotOnLink
        };
        self.status_only(verdict, out)
    }

    /// A REPLY with just a top-level status.
    fn status_only(&self, code: StatusCode, out: &mut [u8]) -> Result<Option<usize>, Dhcpv6Error> {
        let mut reply = self.base(MessageType::Reply);
        reply.status = Some(status(code));
        emit(&reply, out)
    }

    /// INFORMATION-REQUEST: configuration only.
    fn information(&self, out: &mut [u8]) -> Result<Option<usize>, Dhcpv6Error> {
        self.with_dns(self.base(MessageType::Reply), out)
    }

    /// Adds the DNS options the client wants, then emits; if they do not
    /// fit `out`, drops the search list, then the servers.
    fn with_dns<'x>(
        &self,
        mut reply: Repr<'x>,
        out: &mut [u8],
    ) -> Result<Option<usize>, Dhcpv6Error>
    where
        'r: 'x,
    {
        let wants = |c: u16| self.request.requested.map_or(true, |oro| oro.contains(c));
        if wants(code::DNS_SERVERS) && !self.cfg.dns.is_empty() {
            reply.dns_servers = Some(Ipv6List::Addrs(&self.cfg.dns));
        }
        let search = DomainList::Names(&self.cfg.search);
        if wants(code::DOMAIN_LIST) && !search.is_empty() {
            reply.domain_list = Some(search);
        }
        if reply.buffer_len() > out.len() && reply.domain_list.take().is_some() {
            log::debug!("dhcpv6: search list left out, reply too long");
        }
        if reply.buffer_len() > out.len() && reply.dns_servers.take().is_some() {
            log::debug!("dhcpv6: DNS servers left out, reply too long");
        }
        emit(&reply, out)
    }
}

fn status(code: StatusCode) -> Status<'static> {
    let message: &'static [u8] = match code {
        StatusCode::Success => b"success",
        StatusCode::NoAddrsAvail => b"no addresses available",
        StatusCode::NotOnLink => b"address not on link",
        _ => b"",
    };
    Status { code, message }
}

fn emit(reply: &Repr<'_>, out: &mut [u8]) -> Result<Option<usize>, Dhcpv6Error> {
    log::trace!("dhcpv6: answering {reply}");
    match reply.emit(out) {
        Ok(len) => Ok(Some(len)),
        Err(dhcpv6::Error::BufferTooSmall) => Err(Dhcpv6Error::OutTooSmall),
        Err(e) => Err(Dhcpv6Error::Malformed(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::dhcpv6::tests::{KIT_REQUEST, KIT_SOLICIT};
    use crate::wire::ndp::tests::{mutate, Rng};

    const OUR_MAC: [u8; 6] = [0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55];
    /// Client id option of the kit's messages (header included).
    const KIT_CID: &[u8] = &[0, 1, 0, 10, 0, 3, 0, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56];
    /// The kit's IA_NA option: IAID 1, T1 and T2 0, no address.
    const KIT_IA: &[u8] = &[0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    /// Our server id option (DUID-LL of OUR_MAC).
    const OUR_SID: &[u8] = &[0, 2, 0, 10, 0, 3, 0, 1, 0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55];

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn config() -> Dhcpv6Config {
        Dhcpv6Config {
            our_mac: OUR_MAC,
            addr: Some(ip("2001:db8:1:2::42")),
            dns: vec![ip("2001:db8::53")],
            search: vec!["example.com".into()],
        }
    }

    /// A message of `msg_type` (transaction id 0x010203) with `options`.
    fn msg(msg_type: u8, options: &[&[u8]]) -> Vec<u8> {
        let mut m = vec![msg_type, 0x01, 0x02, 0x03];
        options.iter().for_each(|o| m.extend_from_slice(o));
        m
    }

    /// Runs `handle` with guard bytes after `out`; checks they survive.
    fn run(
        cfg: &Dhcpv6Config,
        request: &[u8],
        out_len: usize,
    ) -> (Result<Option<Dhcpv6Reply>, Dhcpv6Error>, Vec<u8>) {
        let mut buf = vec![0xa5u8; out_len + 64];
        let result = handle(cfg, request, &mut buf[..out_len]);
        assert!(buf[out_len..].iter().all(|&b| b == 0xa5), "wrote past out");
        let len = match result {
            Ok(Some(reply)) => reply.len,
            _ => 0,
        };
        assert!(len <= out_len);
        buf.truncate(len);
        (result, buf)
    }

    /// Runs `handle` and parses the reply back.
    fn answer(cfg: &Dhcpv6Config, request: &[u8]) -> Vec<u8> {
        let (result, reply) = run(cfg, request, 1500);
        assert!(matches!(result, Ok(Some(_))), "{result:?}");
        Repr::parse(&reply).expect("our reply parses");
        reply
    }

    /// What the kit's awk parser (kit_dhcp6_parse) extracts from a reply.
    #[derive(Debug, Default, PartialEq)]
    struct KitView {
        msg_type: u8,
        server_id: Vec<u8>,
        addrs: Vec<Ipv6Addr>,
        dns: Vec<Ipv6Addr>,
        status: Vec<u16>,
    }

    /// Mirrors kit_dhcp6_parse: top-level options from byte 4; inside
    /// option 3, sub-options from byte 12 of its data.
    fn kit_view(reply: &[u8]) -> KitView {
        let mut view = KitView {
            msg_type: reply[0],
            ..KitView::default()
        };
        let mut p = 4;
        while p + 4 <= reply.len() {
            let c = u16::from_be_bytes([reply[p], reply[p + 1]]);
            let l = usize::from(u16::from_be_bytes([reply[p + 2], reply[p + 3]]));
            let v = &reply[p + 4..p + 4 + l];
            match c {
                2 => view.server_id = reply[p..p + 4 + l].to_vec(),
                13 => view.status.push(u16::from_be_bytes([v[0], v[1]])),
                23 => view.dns.extend(
                    v.chunks(16)
                        .map(|a| Ipv6Addr::from(<[u8; 16]>::try_from(a).unwrap())),
                ),
                3 => {
                    let mut q = 12;
                    while q + 4 <= v.len() {
                        let sc = u16::from_be_bytes([v[q], v[q + 1]]);
                        let sl = usize::from(u16::from_be_bytes([v[q + 2], v[q + 3]]));
                        if sc == 5 {
                            view.addrs.push(Ipv6Addr::from(
                                <[u8; 16]>::try_from(&v[q + 4..q + 20]).unwrap(),
                            ));
                        }
                        if sc == 13 {
                            view.status.push(u16::from_be_bytes([v[q + 4], v[q + 5]]));
                        }
                        q += 4 + sl;
                    }
                }
                _ => {}
            }
            p += 4 + l;
        }
        view
    }

    #[test]
    fn server_duid_is_duid_ll() {
        assert_eq!(
            server_duid(OUR_MAC),
            [0, 3, 0, 1, 0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55]
        );
    }

    #[test]
    fn kit_solicit_gets_exact_advertise() {
        let reply = answer(&config(), KIT_SOLICIT);
        #[rustfmt::skip]
        let want: &[u8] = &[
            0x02, 0xa1, 0xb2, 0xc3, // ADVERTISE, the Solicit's transaction id
            // client id, echoed
            0x00, 0x01, 0x00, 0x0a, 0x00, 0x03, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56,
            // server id: DUID-LL of 9a:55:9a:55:9a:55
            0x00, 0x02, 0x00, 0x0a, 0x00, 0x03, 0x00, 0x01, 0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55,
            // IA_NA, 40 bytes: IAID 1, T1 and T2 infinite
            0x00, 0x03, 0x00, 0x28, 0x00, 0x00, 0x00, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            //   IA Address 2001:db8:1:2::42, lifetimes infinite
            0x00, 0x05, 0x00, 0x18,
            0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0x42,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            // preference 255
            0x00, 0x07, 0x00, 0x01, 0xff,
            // DNS servers (requested by the ORO; the search list was not)
            0x00, 0x17, 0x00, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53,
        ];
        assert_eq!(&reply[..], want);
    }

    #[test]
    fn kit_exchange_as_the_kit_parses_it() {
        let cfg = config();
        let adv = kit_view(&answer(&cfg, KIT_SOLICIT));
        assert_eq!(adv.msg_type, 2);
        assert_eq!(adv.server_id, OUR_SID);
        // The kit builds its Request from the Advertise's server id option.
        let request = [
            &[0x03, 0xd4, 0xe5, 0xf6][..],
            KIT_CID,
            &adv.server_id,
            KIT_IA,
            &KIT_SOLICIT[34..],
        ]
        .concat();
        assert_eq!(request, KIT_REQUEST);
        let reply = answer(&cfg, &request);
        assert_eq!(&reply[..4], &[7, 0xd4, 0xe5, 0xf6]);
        let view = kit_view(&reply);
        assert_eq!(
            view,
            KitView {
                msg_type: 7,
                server_id: OUR_SID.to_vec(),
                addrs: vec![ip("2001:db8:1:2::42")],
                dns: vec![ip("2001:db8::53")],
                status: vec![],
            }
        );
        let repr = Repr::parse(&reply).unwrap();
        assert_eq!(repr.preference, None);
        assert_eq!(repr.domain_list, None);
        let ia = repr.ia_na.unwrap();
        assert_eq!((ia.iaid, ia.t1, ia.t2), (1, INFINITY, INFINITY));
    }

    #[test]
    fn rapid_commit_gets_reply() {
        let rapid: &[u8] = &[0, 14, 0, 0];
        let reply = answer(&config(), &msg(1, &[KIT_CID, KIT_IA, rapid]));
        let repr = Repr::parse(&reply).unwrap();
        assert_eq!(repr.msg_type, MessageType::Reply);
        assert!(repr.rapid_commit);
        assert_eq!(
            repr.ia_na.unwrap().addrs.iter().next().unwrap().addr,
            ip("2001:db8:1:2::42")
        );
        // No ORO: both DNS options.
        assert_eq!(
            repr.dns_servers.unwrap().iter().collect::<Vec<_>>(),
            vec![ip("2001:db8::53")]
        );
        assert_eq!(repr.domain_list.unwrap().to_strings(), vec!["example.com"]);
        // Without an address there is nothing to commit: ADVERTISE.
        let cfg = Dhcpv6Config {
            addr: None,
            ..config()
        };
        let repr_bytes = answer(&cfg, &msg(1, &[KIT_CID, KIT_IA, rapid]));
        let repr = Repr::parse(&repr_bytes).unwrap();
        assert_eq!(
            (repr.msg_type, repr.rapid_commit),
            (MessageType::Advertise, false)
        );
    }

    #[test]
    fn no_address_available() {
        let cfg = Dhcpv6Config {
            addr: None,
            ..config()
        };
        let adv = answer(&cfg, KIT_SOLICIT);
        let repr = Repr::parse(&adv).unwrap();
        assert_eq!(repr.msg_type, MessageType::Advertise);
        assert_eq!(repr.ia_na, None, "no empty IA in ADVERTISE");
        assert_eq!(repr.status.unwrap().code, StatusCode::NoAddrsAvail);
        assert_eq!(kit_view(&adv).status, vec![2]);
        let reply = answer(&cfg, KIT_REQUEST);
        let repr = Repr::parse(&reply).unwrap();
        let ia = repr.ia_na.unwrap();
        assert_eq!((ia.iaid, ia.addrs.len()), (1, 0));
        assert_eq!(ia.status.unwrap().code, StatusCode::NoAddrsAvail);
        assert!(kit_view(&reply).addrs.is_empty());
        assert_eq!(kit_view(&reply).status, vec![2]);
    }

    #[test]
    fn renew_and_rebind_drop_stale_addresses() {
        #[rustfmt::skip]
        let ia_with_old: &[u8] = &[
            0x00, 0x03, 0x00, 0x28, 0x00, 0x00, 0x00, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, // IA_NA, IAID 9
            0x00, 0x05, 0x00, 0x18, // IA Address 2001:db8:9::1 (an old lease)
            0x20, 0x01, 0x0d, 0xb8, 0x00, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
            0, 0, 0x0e, 0x10, 0, 0, 0x1c, 0x20,
        ];
        for (msg_type, sid) in [(5u8, OUR_SID), (6, &[][..])] {
            let reply = answer(&config(), &msg(msg_type, &[KIT_CID, sid, ia_with_old]));
            let repr = Repr::parse(&reply).unwrap();
            assert_eq!(repr.msg_type, MessageType::Reply);
            let ia = repr.ia_na.unwrap();
            assert_eq!(ia.iaid, 9);
            let addrs: Vec<_> = ia
                .addrs
                .iter()
                .map(|a| (a.addr, a.preferred_lifetime, a.valid_lifetime))
                .collect();
            assert_eq!(
                addrs,
                vec![
                    (ip("2001:db8:1:2::42"), INFINITY, INFINITY),
                    (ip("2001:db8:9::1"), 0, 0)
                ]
            );
        }
    }

    #[test]
    fn confirm() {
        let ia = |addr: Ipv6Addr| {
            let mut o = vec![0, 3, 0, 40, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 24];
            o.extend_from_slice(&addr.octets());
            o.extend_from_slice(&[0; 8]);
            o
        };
        let status_of = |reply: Vec<u8>| Repr::parse(&reply).unwrap().status.unwrap().code;
        let ours = answer(&config(), &msg(4, &[KIT_CID, &ia(ip("2001:db8:1:2::42"))]));
        assert_eq!(status_of(ours), StatusCode::Success);
        let other = answer(&config(), &msg(4, &[KIT_CID, &ia(ip("2001:db8:7::1"))]));
        assert_eq!(status_of(other), StatusCode::NotOnLink);
        // No address to judge, or no address of ours: no reply (§18.3.3).
        assert_eq!(
            run(&config(), &msg(4, &[KIT_CID, KIT_IA]), 1500).0,
            Ok(None)
        );
        let cfg = Dhcpv6Config {
            addr: None,
            ..config()
        };
        assert_eq!(
            run(&cfg, &msg(4, &[KIT_CID, &ia(ip("2001:db8:1:2::42"))]), 1500).0,
            Ok(None)
        );
    }

    #[test]
    fn release_and_decline_get_success() {
        for msg_type in [8u8, 9] {
            let reply = answer(&config(), &msg(msg_type, &[KIT_CID, OUR_SID, KIT_IA]));
            let repr = Repr::parse(&reply).unwrap();
            assert_eq!(repr.msg_type, MessageType::Reply);
            assert_eq!(repr.transaction_id, 0x010203);
            assert_eq!(repr.status.unwrap().code, StatusCode::Success);
            assert_eq!((repr.ia_na, repr.dns_servers), (None, None));
            assert_eq!(repr.server_id, Some(&OUR_SID[4..]));
        }
    }

    #[test]
    fn information_request_gets_dns_only() {
        let oro: &[u8] = &[0, 6, 0, 4, 0, 23, 0, 24];
        let reply = answer(&config(), &msg(11, &[KIT_CID, oro]));
        let repr = Repr::parse(&reply).unwrap();
        assert_eq!(repr.msg_type, MessageType::Reply);
        assert_eq!(
            (repr.ia_na, repr.status, repr.preference),
            (None, None, None)
        );
        assert_eq!(
            repr.dns_servers.unwrap().iter().collect::<Vec<_>>(),
            vec![ip("2001:db8::53")]
        );
        assert_eq!(repr.domain_list.unwrap().to_strings(), vec!["example.com"]);
        // Only the search list requested; no client id (allowed here).
        let reply = answer(&config(), &msg(11, &[&[0, 6, 0, 2, 0, 24]]));
        let repr = Repr::parse(&reply).unwrap();
        assert_eq!((repr.client_id, repr.dns_servers), (None, None));
        assert!(repr.domain_list.is_some());
        // Neither requested: nothing but the identifiers.
        let reply = answer(&config(), &msg(11, &[KIT_CID, &[0, 6, 0, 2, 0, 32]]));
        assert_eq!(reply.len(), 4 + 14 + 14);
        // An IA option is not allowed.
        assert_eq!(
            run(&config(), &msg(11, &[KIT_CID, KIT_IA]), 1500).0,
            Err(Dhcpv6Error::IaInInformationRequest)
        );
        // Another server's id: not for us.
        let other: &[u8] = &[0, 2, 0, 10, 0, 3, 0, 1, 1, 2, 3, 4, 5, 6];
        assert_eq!(
            run(&config(), &msg(11, &[KIT_CID, other]), 1500).0,
            Ok(None)
        );
    }

    #[test]
    fn server_id_rules() {
        let other: &[u8] = &[0, 2, 0, 10, 0, 3, 0, 1, 1, 2, 3, 4, 5, 6];
        for msg_type in [3u8, 5, 8, 9] {
            // For another server: silently ignored.
            assert_eq!(
                run(&config(), &msg(msg_type, &[KIT_CID, other, KIT_IA]), 1500).0,
                Ok(None)
            );
            // Missing: invalid.
            assert_eq!(
                run(&config(), &msg(msg_type, &[KIT_CID, KIT_IA]), 1500).0,
                Err(Dhcpv6Error::MissingServerId)
            );
        }
        for msg_type in [1u8, 4, 6] {
            let got = run(&config(), &msg(msg_type, &[KIT_CID, OUR_SID, KIT_IA]), 1500).0;
            assert_eq!(got, Err(Dhcpv6Error::UnexpectedServerId), "type {msg_type}");
        }
    }

    #[test]
    fn client_id_is_required() {
        for msg_type in [1u8, 3, 4, 5, 6, 8, 9] {
            let got = run(&config(), &msg(msg_type, &[OUR_SID, KIT_IA]), 1500).0;
            assert_eq!(got, Err(Dhcpv6Error::MissingClientId), "type {msg_type}");
        }
    }

    #[test]
    fn server_and_relay_messages_are_ignored() {
        for msg_type in [2u8, 7, 10, 12, 13, 0, 200] {
            let (result, reply) = run(&config(), &msg(msg_type, &[KIT_CID, OUR_SID]), 1500);
            assert_eq!(result, Ok(None));
            assert!(reply.is_empty());
        }
    }

    #[test]
    fn truncated_kit_solicit() {
        for len in 0..KIT_SOLICIT.len() {
            let got = run(&config(), &KIT_SOLICIT[..len], 1500).0;
            match len {
                0..=3 => assert_eq!(got, Err(Dhcpv6Error::Malformed(dhcpv6::Error::Truncated))),
                4 => assert_eq!(got, Err(Dhcpv6Error::MissingClientId)),
                18 | 34 | 40 => assert!(matches!(got, Ok(Some(_))), "len {len}: {got:?}"),
                _ => assert!(
                    matches!(
                        got,
                        Err(Dhcpv6Error::Malformed(dhcpv6::Error::OptionPastEnd { .. }))
                    ),
                    "len {len}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn malformed_options_are_errors() {
        let zero_cid: &[u8] = &[0, 1, 0, 0];
        let got = run(&config(), &msg(1, &[zero_cid, KIT_IA]), 1500).0;
        assert_eq!(
            got,
            Err(Dhcpv6Error::Malformed(dhcpv6::Error::BadOptionLength {
                code: 1,
                len: 0
            }))
        );
        let past_end: &[u8] = &[0, 8, 0, 4, 0];
        let got = run(&config(), &msg(1, &[KIT_CID, past_end]), 1500).0;
        assert_eq!(
            got,
            Err(Dhcpv6Error::Malformed(dhcpv6::Error::OptionPastEnd {
                code: Some(8)
            }))
        );
    }

    #[test]
    fn small_out_is_an_error_and_dns_options_give_way() {
        let cfg = Dhcpv6Config {
            dns: (1..=20u16)
                .map(|i| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i))
                .collect(),
            search: (0..40).map(|i| format!("d{i}.example.com")).collect(),
            ..config()
        };
        let no_oro = &KIT_REQUEST[..KIT_REQUEST.len() - 6];
        let full = answer(&cfg, no_oro).len();
        let mut saw: (bool, bool) = (false, false);
        for out_len in 0..full {
            let (result, reply) = run(&cfg, no_oro, out_len);
            match result {
                Ok(Some(_)) => {
                    let repr = Repr::parse(&reply).unwrap();
                    assert!(repr.ia_na.is_some());
                    assert!(repr.domain_list.is_none(), "search list goes first");
                    saw.0 |= repr.dns_servers.is_some();
                    saw.1 |= repr.dns_servers.is_none();
                }
                other => assert_eq!(other, Err(Dhcpv6Error::OutTooSmall)),
            }
        }
        assert_eq!(saw, (true, true));
    }

    #[test]
    fn fuzz_handle_never_panics_nor_overflows() {
        let mut rng = Rng::new(0x6b69_7420_6468_6370);
        let cfgs = [
            config(),
            Dhcpv6Config {
                addr: None,
                dns: vec![],
                search: vec![],
                ..config()
            },
        ];
        let info = msg(11, &[KIT_CID, &[0, 6, 0, 4, 0, 23, 0, 24]]);
        let rapid = msg(1, &[KIT_CID, KIT_IA, &[0, 14, 0, 0]]);
        let fixtures = [KIT_SOLICIT, KIT_REQUEST, &info[..], &rapid[..]];
        let mut answered = 0;
        for _ in 0..10_000 {
            let request = mutate(&mut rng, &fixtures);
            let cfg = &cfgs[rng.below(2)];
            let out_len = if rng.below(4) == 0 {
                rng.below(200)
            } else {
                1500
            };
            let (result, reply) = run(cfg, &request, out_len);
            if let Ok(Some(_)) = result {
                answered += 1;
                let repr = Repr::parse(&reply).expect("our reply parses");
                assert!(matches!(
                    repr.msg_type,
                    MessageType::Advertise | MessageType::Reply
                ));
                assert_eq!(repr.server_id, Some(&server_duid(OUR_MAC)[..]));
                assert_eq!(&reply[1..4], &request[1..4], "transaction id echoed");
            }
        }
        assert!(answered > 1000, "only {answered} replies");
    }
}
