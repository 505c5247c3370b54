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
