//! DHCPv6 messages between a client and a server on the same link
//! (RFC 8415 §8, §21), and the DNS options of RFC 3646.
//!
//! What this file knows: the 4-byte client/server header (message type,
//! 24-bit transaction id) and the options a simple stateful server reads or
//! writes: Client and Server Identifier (DUIDs, §11), IA_NA with its IA
//! Address and Status Code sub-options (§21.4, §21.6, §21.13), Option
//! Request (§21.7), Preference (§21.8), Elapsed Time (§21.9), Rapid Commit
//! (§21.14), DNS Recursive Name Server (23) and Domain Search List (24).
//!
//! The input is a UDP payload. [`Packet`] is a zero-copy view;
//! [`Repr::parse`] walks every option (and every IA_NA / IA Address
//! sub-option) checking it stays inside its parent, checks the length of
//! each option it knows, and keeps the first instance of each (RFC 8415
//! forbids repeating those, except IA_NA: see below). Unknown options are
//! skipped once their bounds are checked. [`Repr::emit`] writes options in
//! a fixed order and returns an error instead of writing past the buffer.
//!
//! Left out: relay messages (RELAY-FORW/REPL have another header and are
//! refused), IA_TA and IA_PD contents (the caller can test their presence
//! with [`Packet::has_option`]), authentication, reconfiguration. A client
//! may send several IA_NA options; [`Repr`] keeps only the first.

use std::fmt;
use std::net::Ipv6Addr;

pub use crate::wire::ndp::{DomainList, Ipv6List};

/// Length of the client/server message header: type and transaction id.
pub const HEADER_LEN: usize = 4;
/// Length of an option header: code and length.
pub const OPTION_HEADER_LEN: usize = 4;
/// UDP port servers listen on (RFC 8415 §7.2).
pub const SERVER_PORT: u16 = 547;
/// UDP port clients listen on.
pub const CLIENT_PORT: u16 = 546;
/// All_DHCP_Relay_Agents_and_Servers, ff02::1:2 (RFC 8415 §7.1).
pub const ALL_DHCP_AGENTS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
/// Shortest DUID: a 2-byte type and at least one byte (RFC 8415 §11.1).
pub const MIN_DUID_LEN: usize = 3;
/// Longest DUID: 2-byte type and 128 bytes (RFC 8415 §11.1).
pub const MAX_DUID_LEN: usize = 130;
/// IA_NA fixed part: IAID, T1, T2.
pub const IA_NA_FIXED_LEN: usize = 12;
/// IA Address fixed part: address, preferred and valid lifetimes.
pub const IAADDR_FIXED_LEN: usize = 24;
/// Lifetime or T1/T2 value meaning "forever" (RFC 8415 §7.7).
pub const INFINITY: u32 = 0xffff_ffff;

/// Option codes (RFC 8415 §21, RFC 3646).
pub mod code {
    pub const CLIENTID: u16 = 1;
    pub const SERVERID: u16 = 2;
    pub const IA_NA: u16 = 3;
    pub const IA_TA: u16 = 4;
    pub const IAADDR: u16 = 5;
    pub const ORO: u16 = 6;
    pub const PREFERENCE: u16 = 7;
    pub const ELAPSED_TIME: u16 = 8;
    pub const STATUS_CODE: u16 = 13;
    pub const RAPID_COMMIT: u16 = 14;
    pub const DNS_SERVERS: u16 = 23;
    pub const DOMAIN_LIST: u16 = 24;
    pub const IA_PD: u16 = 25;
}

/// Why a DHCPv6 message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the 4-byte header.
    Truncated,
    /// A relay message, whose header we do not parse.
    RelayMessage,
    /// An option (or its 4-byte header) runs past the end of its parent.
    OptionPastEnd {
        /// The option code, when its header could be read.
        code: Option<u16>,
    },
    /// A known option with a length that does not fit its format.
    BadOptionLength {
        /// The option code.
        code: u16,
        /// Its length field.
        len: u16,
    },
    /// A Domain Search List holds a malformed or compressed name.
    BadDomainName,
    /// An option to emit would exceed 65535 bytes.
    OptionTooLong,
    /// The output buffer is too small for what is being emitted.
    BufferTooSmall,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("truncated DHCPv6 message"),
            Error::RelayMessage => f.write_str("DHCPv6 relay message"),
            Error::OptionPastEnd { code: Some(c) } => {
                write!(f, "DHCPv6 option {c} runs past the end")
            }
            Error::OptionPastEnd { code: None } => {
                f.write_str("DHCPv6 option header runs past the end")
            }
            Error::BadOptionLength { code, len } => {
                write!(f, "DHCPv6 option {code} with bad length {len}")
            }
            Error::BadDomainName => f.write_str("malformed domain name"),
            Error::OptionTooLong => f.write_str("DHCPv6 option too long to encode"),
            Error::BufferTooSmall => f.write_str("output buffer too small"),
        }
    }
}

impl std::error::Error for Error {}

/// DHCPv6 message types (RFC 8415 §7.3); total over `u8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// 1, client looks for servers.
    Solicit,
    /// 2, server offers.
    Advertise,
    /// 3, client asks a chosen server.
    Request,
    /// 4, client checks its addresses still fit the link.
    Confirm,
    /// 5, client extends its lease with its server.
    Renew,
    /// 6, client extends its lease with any server.
    Rebind,
    /// 7, server answers.
    Reply,
    /// 8, client gives addresses back.
    Release,
    /// 9, client found its addresses in use.
    Decline,
    /// 10, server asks the client to come back.
    Reconfigure,
    /// 11, client wants configuration without addresses.
    InformationRequest,
    /// 12, relay to server.
    RelayForw,
    /// 13, server to relay.
    RelayRepl,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for MessageType {
    fn from(v: u8) -> Self {
        use MessageType::*;
        match v {
            1 => Solicit,
            2 => Advertise,
            3 => Request,
            4 => Confirm,
            5 => Renew,
            6 => Rebind,
            7 => Reply,
            8 => Release,
            9 => Decline,
            10 => Reconfigure,
            11 => InformationRequest,
            12 => RelayForw,
            13 => RelayRepl,
            other => Unknown(other),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(t: MessageType) -> u8 {
        use MessageType::*;
        match t {
            Solicit => 1,
            Advertise => 2,
            Request => 3,
            Confirm => 4,
            Renew => 5,
            Rebind => 6,
            Reply => 7,
            Release => 8,
            Decline => 9,
            Reconfigure => 10,
            InformationRequest => 11,
            RelayForw => 12,
            RelayRepl => 13,
            Unknown(v) => v,
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use MessageType::*;
        let name = match self {
            Solicit => "SOLICIT",
            Advertise => "ADVERTISE",
            Request => "REQUEST",
            Confirm => "CONFIRM",
            Renew => "RENEW",
            Rebind => "REBIND",
            Reply => "REPLY",
            Release => "RELEASE",
            Decline => "DECLINE",
            Reconfigure => "RECONFIGURE",
            InformationRequest => "INFORMATION-REQUEST",
            RelayForw => "RELAY-FORW",
            RelayRepl => "RELAY-REPL",
            Unknown(t) => return write!(f, "DHCPv6 type {t}"),
        };
        f.write_str(name)
    }
}

/// Status codes (RFC 8415 §21.13); total over `u16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCode {
    /// 0.
    Success,
    /// 1, failure not covered by another code.
    UnspecFail,
    /// 2, no addresses for the IA.
    NoAddrsAvail,
    /// 3, no binding for the IA.
    NoBinding,
    /// 4, the address does not belong on this link.
    NotOnLink,
    /// 5, the client must use multicast.
    UseMulticast,
    /// 6, no prefixes for the IA_PD.
    NoPrefixAvail,
    /// Anything else.
    Unknown(u16),
}

impl From<u16> for StatusCode {
    fn from(v: u16) -> Self {
        match v {
            0 => StatusCode::Success,
            1 => StatusCode::UnspecFail,
            2 => StatusCode::NoAddrsAvail,
            3 => StatusCode::NoBinding,
            4 => StatusCode::NotOnLink,
            5 => StatusCode::UseMulticast,
            6 => StatusCode::NoPrefixAvail,
            other => StatusCode::Unknown(other),
        }
    }
}

impl From<StatusCode> for u16 {
    fn from(s: StatusCode) -> u16 {
        match s {
            StatusCode::Success => 0,
            StatusCode::UnspecFail => 1,
            StatusCode::NoAddrsAvail => 2,
            StatusCode::NoBinding => 3,
            StatusCode::NotOnLink => 4,
            StatusCode::UseMulticast => 5,
            StatusCode::NoPrefixAvail => 6,
            StatusCode::Unknown(v) => v,
        }
    }
}

/// Copies `N` bytes at `at`, zeros if out of range (callers check first).
fn array_at<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = b.get(at..at + N) {
        out.copy_from_slice(src);
    }
    out
}

fn be16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(array_at(b, at))
}

fn be32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(array_at(b, at))
}

/// Writes `bytes` at `at` in `buf`, or fails without writing.
fn put(buf: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), Error> {
    let end = at.checked_add(bytes.len()).ok_or(Error::BufferTooSmall)?;
    buf.get_mut(at..end)
        .ok_or(Error::BufferTooSmall)?
        .copy_from_slice(bytes);
    Ok(())
}

/// A zero-copy view of a client/server DHCPv6 message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; for building replies only.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer holding at least the 4-byte header.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Packet { buffer })
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The message type.
    pub fn msg_type(&self) -> MessageType {
        self.buffer.as_ref().first().copied().unwrap_or(0).into()
    }

    /// The 24-bit transaction id.
    pub fn transaction_id(&self) -> u32 {
        let [_, a, b, c] = array_at::<4>(self.buffer.as_ref(), 0);
        u32::from_be_bytes([0, a, b, c])
    }

    /// The raw option bytes after the header.
    pub fn options(&self) -> &[u8] {
        self.buffer.as_ref().get(HEADER_LEN..).unwrap_or(&[])
    }

    /// Whether a top-level option with `code` is present (stops at the
    /// first malformed option).
    pub fn has_option(&self, code: u16) -> bool {
        OptionIter::new(self.options())
            .map_while(Result::ok)
            .any(|(c, _)| c == code)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the message type.
    pub fn set_msg_type(&mut self, t: MessageType) {
        if let Some(b) = self.buffer.as_mut().first_mut() {
            *b = t.into();
        }
    }

    /// Sets the transaction id (its low 24 bits).
    pub fn set_transaction_id(&mut self, id: u32) {
        let [_, a, b, c] = id.to_be_bytes();
        let _ = put(self.buffer.as_mut(), 1, &[a, b, c]);
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Repr::parse(self.buffer.as_ref()) {
            Ok(repr) => write!(f, "{repr}"),
            Err(e) => write!(
                f,
                "{} xid={:06x} (invalid: {e})",
                self.msg_type(),
                self.transaction_id()
            ),
        }
    }
}

/// Iterates over `(code, data)` of a run of options, yielding an error (and
/// then stopping) when one runs past the end.
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    rest: &'a [u8],
}

impl<'a> OptionIter<'a> {
    /// Options in `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        OptionIter { rest: bytes }
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<(u16, &'a [u8]), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < OPTION_HEADER_LEN {
            self.rest = &[];
            return Some(Err(Error::OptionPastEnd { code: None }));
        }
        let code = be16_at(self.rest, 0);
        let len = usize::from(be16_at(self.rest, 2));
        let Some(data) = self.rest.get(OPTION_HEADER_LEN..OPTION_HEADER_LEN + len) else {
            self.rest = &[];
            return Some(Err(Error::OptionPastEnd { code: Some(code) }));
        };
        self.rest = &self.rest[OPTION_HEADER_LEN + len..];
        Some(Ok((code, data)))
    }
}

/// Checks that every option in `bytes` stays inside it.
fn check_bounds(bytes: &[u8]) -> Result<(), Error> {
    OptionIter::new(bytes).try_for_each(|o| o.map(|_| ()))
}

/// A Status Code option (RFC 8415 §21.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status<'a> {
    /// The code.
    pub code: StatusCode,
    /// UTF-8 text for humans (may be empty).
    pub message: &'a [u8],
}

impl<'a> Status<'a> {
    fn parse(data: &'a [u8]) -> Result<Self, Error> {
        if data.len() < 2 {
            return Err(bad_len(code::STATUS_CODE, data));
        }
        Ok(Status {
            code: be16_at(data, 0).into(),
            message: &data[2..],
        })
    }

    fn data_len(&self) -> usize {
        2 + self.message.len()
    }
}

/// An IA Address (RFC 8415 §21.6), without sub-options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IaAddr {
    /// The address.
    pub addr: Ipv6Addr,
    /// Seconds it stays preferred.
    pub preferred_lifetime: u32,
    /// Seconds it stays valid.
    pub valid_lifetime: u32,
}

impl IaAddr {
    fn parse(data: &[u8]) -> Result<Self, Error> {
        if data.len() < IAADDR_FIXED_LEN {
            return Err(bad_len(code::IAADDR, data));
        }
        check_bounds(&data[IAADDR_FIXED_LEN..])?;
        Ok(IaAddr {
            addr: Ipv6Addr::from(array_at::<16>(data, 0)),
            preferred_lifetime: be32_at(data, 16),
            valid_lifetime: be32_at(data, 20),
        })
    }
}

/// The IA Addresses of an IA_NA: as found in a message, or to send.
#[derive(Clone, Copy)]
pub enum IaAddrList<'a> {
    /// The IA_NA's sub-options, validated; only IA Address options count.
    Wire(&'a [u8]),
    /// Addresses to send.
    Addrs(&'a [IaAddr]),
}

impl<'a> IaAddrList<'a> {
    /// The addresses in order.
    pub fn iter(&self) -> impl Iterator<Item = IaAddr> + 'a {
        let (wire, addrs): (&'a [u8], &'a [IaAddr]) = match *self {
            IaAddrList::Wire(b) => (b, &[]),
            IaAddrList::Addrs(a) => (&[], a),
        };
        OptionIter::new(wire)
            .map_while(Result::ok)
            .filter(|&(c, _)| c == code::IAADDR)
            .filter_map(|(_, data)| IaAddr::parse(data).ok())
            .chain(addrs.iter().copied())
    }

    /// Number of addresses.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// No address.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl PartialEq for IaAddrList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for IaAddrList<'_> {}

impl fmt::Debug for IaAddrList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// An Identity Association for Non-temporary Addresses (RFC 8415 §21.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IaNa<'a> {
    /// The client's identifier for this IA.
    pub iaid: u32,
    /// Seconds until the client renews (0: client's choice).
    pub t1: u32,
    /// Seconds until the client rebinds (0: client's choice).
    pub t2: u32,
    /// Its addresses.
    pub addrs: IaAddrList<'a>,
    /// The first Status Code sub-option.
    pub status: Option<Status<'a>>,
}

impl<'a> IaNa<'a> {
    fn parse(data: &'a [u8]) -> Result<Self, Error> {
        if data.len() < IA_NA_FIXED_LEN {
            return Err(bad_len(code::IA_NA, data));
        }
        let sub = &data[IA_NA_FIXED_LEN..];
        let mut status = None;
        for option in OptionIter::new(sub) {
            let (c, d) = option?;
            match c {
                code::IAADDR => {
                    IaAddr::parse(d)?;
                }
                code::STATUS_CODE if status.is_none() => status = Some(Status::parse(d)?),
                _ => {}
            }
        }
        Ok(IaNa {
            iaid: be32_at(data, 0),
            t1: be32_at(data, 4),
            t2: be32_at(data, 8),
            addrs: IaAddrList::Wire(sub),
            status,
        })
    }

    fn data_len(&self) -> usize {
        IA_NA_FIXED_LEN
            + self.addrs.len() * (OPTION_HEADER_LEN + IAADDR_FIXED_LEN)
            + self.status.map_or(0, |s| OPTION_HEADER_LEN + s.data_len())
    }

    fn emit_data(&self, out: &mut [u8]) -> Result<(), Error> {
        put(out, 0, &self.iaid.to_be_bytes())?;
        put(out, 4, &self.t1.to_be_bytes())?;
        put(out, 8, &self.t2.to_be_bytes())?;
        let mut at = IA_NA_FIXED_LEN;
        for a in self.addrs.iter() {
            at += emit_option(out, at, code::IAADDR, IAADDR_FIXED_LEN, |d| {
                put(d, 0, &a.addr.octets())?;
                put(d, 16, &a.preferred_lifetime.to_be_bytes())?;
                put(d, 20, &a.valid_lifetime.to_be_bytes())
            })?;
        }
        if let Some(s) = self.status {
            emit_status(out, at, &s)?;
        }
        Ok(())
    }
}

/// The codes of an Option Request option (RFC 8415 §21.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionCodes<'a>(&'a [u8]);

impl<'a> OptionCodes<'a> {
    /// Wraps the option's data; `None` unless its length is even.
    pub fn new(data: &'a [u8]) -> Option<Self> {
        (data.len() % 2 == 0).then_some(OptionCodes(data))
    }

    /// The requested codes in order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + 'a {
        self.0.chunks_exact(2).map(|c| be16_at(c, 0))
    }

    /// Whether `code` is requested.
    pub fn contains(&self, code: u16) -> bool {
        self.iter().any(|c| c == code)
    }

    /// The raw data (2 bytes per code).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

fn bad_len(code: u16, data: &[u8]) -> Error {
    Error::BadOptionLength {
        code,
        len: u16::try_from(data.len()).unwrap_or(u16::MAX),
    }
}

/// Writes an option header at `at` and lets `body` fill `data_len` bytes
/// after it; returns the total length written.
fn emit_option(
    out: &mut [u8],
    at: usize,
    code: u16,
    data_len: usize,
    body: impl FnOnce(&mut [u8]) -> Result<(), Error>,
) -> Result<usize, Error> {
    let len16 = u16::try_from(data_len).map_err(|_| Error::OptionTooLong)?;
    let total = OPTION_HEADER_LEN + data_len;
    let end = at.checked_add(total).ok_or(Error::BufferTooSmall)?;
    let option = out.get_mut(at..end).ok_or(Error::BufferTooSmall)?;
    option.fill(0);
    put(option, 0, &code.to_be_bytes())?;
    put(option, 2, &len16.to_be_bytes())?;
    body(&mut option[OPTION_HEADER_LEN..])?;
    Ok(total)
}

fn emit_status(out: &mut [u8], at: usize, s: &Status<'_>) -> Result<usize, Error> {
    emit_option(out, at, code::STATUS_CODE, s.data_len(), |d| {
        put(d, 0, &u16::from(s.code).to_be_bytes())?;
        put(d, 2, s.message)
    })
}

/// The validated meaning of a client/server message: the options this
/// module knows, first instance of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    /// Message type (never a relay message).
    pub msg_type: MessageType,
    /// 24-bit transaction id.
    pub transaction_id: u32,
    /// Client Identifier (a DUID, 3..=130 bytes).
    pub client_id: Option<&'a [u8]>,
    /// Server Identifier (a DUID, 3..=130 bytes).
    pub server_id: Option<&'a [u8]>,
    /// The first IA_NA.
    pub ia_na: Option<IaNa<'a>>,
    /// Elapsed Time, hundredths of a second.
    pub elapsed_time: Option<u16>,
    /// Option Request.
    pub requested: Option<OptionCodes<'a>>,
    /// Rapid Commit present.
    pub rapid_commit: bool,
    /// Server Preference (255: take this server at once).
    pub preference: Option<u8>,
    /// Top-level Status Code.
    pub status: Option<Status<'a>>,
    /// DNS Recursive Name Servers (option 23).
    pub dns_servers: Option<Ipv6List<'a>>,
    /// Domain Search List (option 24).
    pub domain_list: Option<DomainList<'a>>,
}

impl<'a> Repr<'a> {
    /// A message with no options.
    pub fn new(msg_type: MessageType, transaction_id: u32) -> Self {
        Repr {
            msg_type,
            transaction_id: transaction_id & 0x00ff_ffff,
            client_id: None,
            server_id: None,
            ia_na: None,
            elapsed_time: None,
            requested: None,
            rapid_commit: false,
            preference: None,
            status: None,
            dns_servers: None,
            domain_list: None,
        }
    }

    /// Parses and validates a client/server message (UDP payload).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let packet = Packet::new_checked(bytes)?;
        let msg_type = packet.msg_type();
        if matches!(msg_type, MessageType::RelayForw | MessageType::RelayRepl) {
            return Err(Error::RelayMessage);
        }
        let mut repr = Repr::new(msg_type, packet.transaction_id());
        for option in OptionIter::new(&bytes[HEADER_LEN..]) {
            let (c, data) = option?;
            repr.take_option(c, data)?;
        }
        Ok(repr)
    }

    /// Validates one top-level option and records it if it is the first of
    /// its kind.
    fn take_option(&mut self, c: u16, data: &'a [u8]) -> Result<(), Error> {
        match c {
            code::CLIENTID | code::SERVERID => {
                if !(MIN_DUID_LEN..=MAX_DUID_LEN).contains(&data.len()) {
                    return Err(bad_len(c, data));
                }
                let slot = if c == code::CLIENTID {
                    &mut self.client_id
                } else {
                    &mut self.server_id
                };
                slot.get_or_insert(data);
            }
            code::IA_NA => {
                let ia = IaNa::parse(data)?;
                self.ia_na.get_or_insert(ia);
            }
            code::IA_TA | code::IA_PD => {
                // Not served; only their bounds matter (IAID + sub-options).
                let fixed = if c == code::IA_TA { 4 } else { IA_NA_FIXED_LEN };
                let sub = data.get(fixed..).ok_or_else(|| bad_len(c, data))?;
                check_bounds(sub)?;
            }
            code::ORO => {
                let oro = OptionCodes::new(data).ok_or_else(|| bad_len(c, data))?;
                self.requested.get_or_insert(oro);
            }
            code::ELAPSED_TIME => {
                if data.len() != 2 {
                    return Err(bad_len(c, data));
                }
                self.elapsed_time.get_or_insert(be16_at(data, 0));
            }
            code::RAPID_COMMIT => {
                if !data.is_empty() {
                    return Err(bad_len(c, data));
                }
                self.rapid_commit = true;
            }
            code::PREFERENCE => {
                if data.len() != 1 {
                    return Err(bad_len(c, data));
                }
                self.preference.get_or_insert(data[0]);
            }
            code::STATUS_CODE => {
                let s = Status::parse(data)?;
                self.status.get_or_insert(s);
            }
            code::DNS_SERVERS => {
                if data.len() % 16 != 0 {
                    return Err(bad_len(c, data));
                }
                self.dns_servers.get_or_insert(Ipv6List::Wire(data));
            }
            code::DOMAIN_LIST => {
                crate::wire::ndp::check_names(data, false).map_err(|_| Error::BadDomainName)?;
                self.domain_list.get_or_insert(DomainList::Wire(data));
            }
            _ => {}
        }
        Ok(())
    }

    /// Bytes [`Repr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        let option = |data_len: usize| OPTION_HEADER_LEN + data_len;
        HEADER_LEN
            + self.client_id.map_or(0, |d| option(d.len()))
            + self.server_id.map_or(0, |d| option(d.len()))
            + self.ia_na.map_or(0, |ia| option(ia.data_len()))
            + self.elapsed_time.map_or(0, |_| option(2))
            + self.requested.map_or(0, |r| option(r.as_bytes().len()))
            + if self.rapid_commit { option(0) } else { 0 }
            + self.preference.map_or(0, |_| option(1))
            + self.status.map_or(0, |s| option(s.data_len()))
            + self.dns_servers.map_or(0, |l| option(16 * l.len()))
            + self.domain_list.map_or(0, |l| option(l.encoded_len()))
    }

    /// Writes the message at the start of `out`; returns its length.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `out` is shorter than
    /// [`Repr::buffer_len`], [`Error::OptionTooLong`] for an option over
    /// 65535 bytes. Nothing past `out` is ever touched.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, Error> {
        if out.len() < self.buffer_len() {
            return Err(Error::BufferTooSmall);
        }
        let mut p = Packet::new_unchecked(&mut *out);
        p.set_msg_type(self.msg_type);
        p.set_transaction_id(self.transaction_id);
        let mut at = HEADER_LEN;
        if let Some(d) = self.client_id {
            at += emit_option(out, at, code::CLIENTID, d.len(), |o| put(o, 0, d))?;
        }
        if let Some(d) = self.server_id {
            at += emit_option(out, at, code::SERVERID, d.len(), |o| put(o, 0, d))?;
        }
        if let Some(ia) = self.ia_na {
            at += emit_option(out, at, code::IA_NA, ia.data_len(), |o| ia.emit_data(o))?;
        }
        if let Some(t) = self.elapsed_time {
            at += emit_option(out, at, code::ELAPSED_TIME, 2, |o| {
                put(o, 0, &t.to_be_bytes())
            })?;
        }
        if let Some(r) = self.requested {
            let d = r.as_bytes();
            at += emit_option(out, at, code::ORO, d.len(), |o| put(o, 0, d))?;
        }
        if self.rapid_commit {
            at += emit_option(out, at, code::RAPID_COMMIT, 0, |_| Ok(()))?;
        }
        if let Some(p) = self.preference {
            at += emit_option(out, at, code::PREFERENCE, 1, |o| put(o, 0, &[p]))?;
        }
        if let Some(s) = self.status {
            at += emit_status(out, at, &s)?;
        }
        if let Some(l) = self.dns_servers {
            at += emit_option(out, at, code::DNS_SERVERS, 16 * l.len(), |o| {
                l.emit(o).map(|_| ()).map_err(ndp_err)
            })?;
        }
        if let Some(l) = self.domain_list {
            at += emit_option(out, at, code::DOMAIN_LIST, l.encoded_len(), |o| {
                l.emit(o).map(|_| ()).map_err(ndp_err)
            })?;
        }
        Ok(at)
    }
}

fn ndp_err(e: crate::wire::ndp::Error) -> Error {
    match e {
        crate::wire::ndp::Error::BadDomainName => Error::BadDomainName,
        _ => Error::BufferTooSmall,
    }
}

fn fmt_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

impl fmt::Display for Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} xid={:06x}", self.msg_type, self.transaction_id)?;
        if let Some(d) = self.client_id {
            f.write_str(" cid=")?;
            fmt_hex(f, d)?;
        }
        if let Some(d) = self.server_id {
            f.write_str(" sid=")?;
            fmt_hex(f, d)?;
        }
        if let Some(ia) = self.ia_na {
            write!(f, " ia_na={:x} t1={} t2={}", ia.iaid, ia.t1, ia.t2)?;
            for a in ia.addrs.iter() {
                write!(
                    f,
                    " addr={} pref={} valid={}",
                    a.addr, a.preferred_lifetime, a.valid_lifetime
                )?;
            }
            if let Some(s) = ia.status {
                write!(f, " ia_status={}", u16::from(s.code))?;
            }
        }
        if self.rapid_commit {
            f.write_str(" rapid-commit")?;
        }
        if let Some(s) = self.status {
            write!(f, " status={}", u16::from(s.code))?;
        }
        if let Some(l) = self.dns_servers {
            write!(f, " dns={l}")?;
        }
        if let Some(l) = self.domain_list {
            write!(f, " search={l}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::ndp::tests::{mutate, Rng};

    /// The guest kit's SOLICIT (lib/kit.sh, kit_dhcpv6) from 52:54:00:12:34:56.
    #[rustfmt::skip]
    pub(crate) const KIT_SOLICIT: &[u8] = &[
        0x01, 0xa1, 0xb2, 0xc3, // SOLICIT, transaction id a1b2c3
        // 4: client id, 10 bytes: DUID-LL (3), Ethernet (1), MAC
        0x00, 0x01, 0x00, 0x0a, 0x00, 0x03, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56,
        // 18: IA_NA, 12 bytes: IAID 1, T1 0, T2 0
        0x00, 0x03, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0,
        // 34: elapsed time 0
        0x00, 0x08, 0x00, 0x02, 0x00, 0x00,
        // 40: option request: DNS servers (23)
        0x00, 0x06, 0x00, 0x02, 0x00, 0x17,
    ];
    /// Option boundaries of KIT_SOLICIT: (offset, code of the option there).
    const SOLICIT_OPTIONS: &[(usize, u16)] = &[(4, 1), (18, 3), (34, 8), (40, 6), (46, 0)];

    /// The kit's REQUEST, with the server id of 9a:55:9a:55:9a:55.
    #[rustfmt::skip]
    pub(crate) const KIT_REQUEST: &[u8] = &[
        0x03, 0xd4, 0xe5, 0xf6, // REQUEST, transaction id d4e5f6
        0x00, 0x01, 0x00, 0x0a, 0x00, 0x03, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56,
        // server id: DUID-LL of our MAC
        0x00, 0x02, 0x00, 0x0a, 0x00, 0x03, 0x00, 0x01, 0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55,
        0x00, 0x03, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0,
        0x00, 0x08, 0x00, 0x02, 0x00, 0x00,
        0x00, 0x06, 0x00, 0x02, 0x00, 0x17,
    ];

    /// A REPLY with an address, a status, DNS servers and a search list.
    #[rustfmt::skip]
    const REPLY: &[u8] = &[
        0x07, 0x00, 0x00, 0x2a, // REPLY, transaction id 42
        0x00, 0x01, 0x00, 0x03, 0x00, 0x04, 0xaa, // client id: a 3-byte DUID (type 4)
        // IA_NA, 12 + 28 + 8 = 48 bytes: IAID 7, T1 3600, T2 5400
        0x00, 0x03, 0x00, 0x30, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x00, 0x15, 0x18,
        //   IA Address 2001:db8::5, preferred 7200, valid 10800
        0x00, 0x05, 0x00, 0x18,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05,
        0x00, 0x00, 0x1c, 0x20, 0x00, 0x00, 0x2a, 0x30,
        //   status Success, message "ok"
        0x00, 0x0d, 0x00, 0x04, 0x00, 0x00, b'o', b'k',
        // DNS servers: 2001:db8::53
        0x00, 0x17, 0x00, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53,
        // domain list: "a.example", "b"
        0x00, 0x18, 0x00, 0x0e,
        0x01, b'a', 0x07, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0x00, 0x01, b'b', 0x00,
    ];

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn kit_solicit_fields_and_round_trip() {
        let packet = Packet::new_checked(KIT_SOLICIT).unwrap();
        assert_eq!(packet.msg_type(), MessageType::Solicit);
        assert_eq!(packet.transaction_id(), 0xa1b2c3);
        assert!(packet.has_option(code::IA_NA) && !packet.has_option(code::SERVERID));
        let repr = Repr::parse(KIT_SOLICIT).unwrap();
        assert_eq!(repr.client_id, Some(&KIT_SOLICIT[8..18]));
        assert_eq!(repr.server_id, None);
        let ia = repr.ia_na.unwrap();
        assert_eq!(
            (ia.iaid, ia.t1, ia.t2, ia.addrs.len(), ia.status),
            (1, 0, 0, 0, None)
        );
        assert_eq!(repr.elapsed_time, Some(0));
        assert_eq!(
            repr.requested.unwrap().iter().collect::<Vec<_>>(),
            vec![code::DNS_SERVERS]
        );
        assert!(!repr.rapid_commit);
        let mut out = vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit(&mut out), Ok(KIT_SOLICIT.len()));
        assert_eq!(&out[..], KIT_SOLICIT);
        let repr = Repr::parse(KIT_REQUEST).unwrap();
        assert_eq!(repr.server_id, Some(&KIT_REQUEST[22..32]));
        let mut out = vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit(&mut out), Ok(KIT_REQUEST.len()));
        assert_eq!(&out[..], KIT_REQUEST);
    }

    #[test]
    fn reply_built_from_parts_matches_fixture() {
        let addrs = [IaAddr {
            addr: ip("2001:db8::5"),
            preferred_lifetime: 7200,
            valid_lifetime: 10800,
        }];
        let dns = [ip("2001:db8::53")];
        let search = ["a.example".to_string(), "b.".to_string()];
        let repr = Repr {
            client_id: Some(&[0, 4, 0xaa]),
            ia_na: Some(IaNa {
                iaid: 7,
                t1: 3600,
                t2: 5400,
                addrs: IaAddrList::Addrs(&addrs),
                status: Some(Status {
                    code: StatusCode::Success,
                    message: b"ok",
                }),
            }),
            dns_servers: Some(Ipv6List::Addrs(&dns)),
            domain_list: Some(DomainList::Names(&search)),
            ..Repr::new(MessageType::Reply, 42)
        };
        assert_eq!(repr.buffer_len(), REPLY.len());
        let mut out = vec![0u8; REPLY.len()];
        assert_eq!(repr.emit(&mut out), Ok(REPLY.len()));
        assert_eq!(&out[..], REPLY);
        let parsed = Repr::parse(REPLY).unwrap();
        assert_eq!(parsed, repr);
        assert_eq!(
            parsed.domain_list.unwrap().to_strings(),
            vec!["a.example", "b"]
        );
        assert_eq!(
            parsed.to_string(),
            "REPLY xid=00002a cid=0004aa ia_na=7 t1=3600 t2=5400 addr=2001:db8::5 pref=7200 \
             valid=10800 ia_status=0 dns=2001:db8::53 search=a.example,b"
        );
    }

    #[test]
    fn truncated_at_every_length() {
        for len in 0..KIT_SOLICIT.len() {
            let got = Repr::parse(&KIT_SOLICIT[..len]).map(|_| ());
            let want = if len < HEADER_LEN {
                Err(Error::Truncated)
            } else {
                // The option that starts at or before `len`.
                let &(start, code) = SOLICIT_OPTIONS
                    .iter()
                    .rev()
                    .find(|(at, _)| *at <= len)
                    .unwrap();
                match len - start {
                    0 => Ok(()),
                    1..=3 => Err(Error::OptionPastEnd { code: None }),
                    _ => Err(Error::OptionPastEnd { code: Some(code) }),
                }
            };
            assert_eq!(got, want, "len {len}");
        }
    }

    /// Parses and forgets the result but for its error.
    fn check(msg: &[u8]) -> Result<(), Error> {
        Repr::parse(msg).map(|_| ())
    }

    /// KIT_SOLICIT's header followed by `options`.
    fn solicit_with(options: &[u8]) -> Vec<u8> {
        let mut m = KIT_SOLICIT[..4].to_vec();
        m.extend_from_slice(options);
        m
    }

    #[test]
    fn option_length_zero() {
        // A client id of length 0 is no DUID.
        let got = check(&solicit_with(&[0, 1, 0, 0]));
        assert_eq!(
            got,
            Err(Error::BadOptionLength {
                code: code::CLIENTID,
                len: 0
            })
        );
        // Elapsed time needs 2 bytes, IA_NA 12, status 2.
        for c in [
            code::ELAPSED_TIME,
            code::IA_NA,
            code::STATUS_CODE,
            code::PREFERENCE,
            code::SERVERID,
        ] {
            let [h, l] = c.to_be_bytes();
            assert_eq!(
                check(&solicit_with(&[h, l, 0, 0])),
                Err(Error::BadOptionLength { code: c, len: 0 })
            );
        }
        // Empty is right for Rapid Commit and harmless for unknown options.
        assert!(Repr::parse(&solicit_with(&[0, 14, 0, 0])).map(|r| r.rapid_commit) == Ok(true));
        assert!(check(&solicit_with(&[0x12, 0x34, 0, 0])).is_ok());
        // Rapid Commit with data is not.
        let got = check(&solicit_with(&[0, 14, 0, 1, 0]));
        assert_eq!(
            got,
            Err(Error::BadOptionLength {
                code: code::RAPID_COMMIT,
                len: 1
            })
        );
    }

    #[test]
    fn option_past_end() {
        // Top level: claims 16 bytes, has 2.
        let got = check(&solicit_with(&[0, 1, 0, 16, 0, 3]));
        assert_eq!(
            got,
            Err(Error::OptionPastEnd {
                code: Some(code::CLIENTID)
            })
        );
        // Inside an IA_NA: an IA Address claiming 24 bytes in a 16-byte IA.
        #[rustfmt::skip]
        let ia = [
            0, 3, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, // IA_NA of 16 bytes
            0, 5, 0, 24,                                     // IAADDR header, no room
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  // (outside the IA_NA)
        ];
        // The bytes after the IA_NA are an option run too: make them a
        // harmless unknown option so only the nested overrun can fail.
        let mut m = solicit_with(&ia[..20]);
        m.extend_from_slice(&[0x7f, 0x7f, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            check(&m),
            Err(Error::OptionPastEnd {
                code: Some(code::IAADDR)
            })
        );
        // A sub-option of an IA Address running past it.
        let mut ia = vec![0, 3, 0, 44, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 28];
        ia.extend_from_slice(&[0; 24]);
        ia.extend_from_slice(&[0, 13, 0, 9]);
        assert_eq!(
            check(&solicit_with(&ia)),
            Err(Error::OptionPastEnd {
                code: Some(code::STATUS_CODE)
            })
        );
    }

    #[test]
    fn bad_lengths_of_known_options() {
        let mut ia = vec![0, 3, 0, 36, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 20];
        ia.extend_from_slice(&[0; 20]);
        assert_eq!(
            check(&solicit_with(&ia)),
            Err(Error::BadOptionLength {
                code: code::IAADDR,
                len: 20
            })
        );
        let oro = [0, 6, 0, 3, 0, 23, 0];
        assert_eq!(
            check(&solicit_with(&oro)),
            Err(Error::BadOptionLength {
                code: code::ORO,
                len: 3
            })
        );
        let mut dns = vec![0, 23, 0, 17];
        dns.extend_from_slice(&[0; 17]);
        assert_eq!(
            check(&solicit_with(&dns)),
            Err(Error::BadOptionLength { code: 23, len: 17 })
        );
        let mut duid = vec![0, 1, 0, 131];
        duid.extend_from_slice(&[0; 131]);
        assert_eq!(
            check(&solicit_with(&duid)),
            Err(Error::BadOptionLength { code: 1, len: 131 })
        );
        let domain = [0, 24, 0, 3, 0xc0, 0x0c, 0];
        assert_eq!(check(&solicit_with(&domain)), Err(Error::BadDomainName));
        let domain = [0, 24, 0, 3, 1, b'a', 0, 0];
        assert_eq!(check(&solicit_with(&domain[..7])), Ok(()));
        let domain = [0, 24, 0, 4, 1, b'a', 0, 0];
        assert_eq!(check(&solicit_with(&domain)), Err(Error::BadDomainName));
        let ia_pd = [0, 25, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(
            check(&solicit_with(&ia_pd)),
            Err(Error::BadOptionLength { code: 25, len: 8 })
        );
    }

    #[test]
    fn relay_and_repeated_options() {
        assert_eq!(Repr::parse(&[12; 40]), Err(Error::RelayMessage));
        assert_eq!(Repr::parse(&[13; 40]), Err(Error::RelayMessage));
        // Only the first client id counts.
        let m = solicit_with(&[0, 1, 0, 3, 0, 4, 1, 0, 1, 0, 3, 0, 4, 2]);
        assert_eq!(Repr::parse(&m).unwrap().client_id, Some(&[0u8, 4, 1][..]));
    }

    #[test]
    fn emit_never_writes_past_the_buffer() {
        let repr = Repr::parse(REPLY).unwrap();
        for len in 0..REPLY.len() {
            let mut buf = vec![0xa5u8; REPLY.len() + 8];
            assert_eq!(repr.emit(&mut buf[..len]), Err(Error::BufferTooSmall));
            assert!(buf[len..].iter().all(|&b| b == 0xa5), "len {len}");
        }
        let many = vec![Ipv6Addr::LOCALHOST; 4096];
        let repr = Repr {
            dns_servers: Some(Ipv6List::Addrs(&many)),
            ..Repr::new(MessageType::Reply, 1)
        };
        let mut big = vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit(&mut big), Err(Error::OptionTooLong));
    }

    #[test]
    fn fuzz_parse_never_panics_and_round_trips() {
        let mut rng = Rng::new(0x6468_6370_7636_2121);
        let mut parsed = 0;
        for _ in 0..10_000 {
            let msg = mutate(&mut rng, &[KIT_SOLICIT, KIT_REQUEST, REPLY]);
            let packet = Packet::new_unchecked(&msg[..]);
            let _ = (
                packet.transaction_id(),
                packet.has_option(code::IA_PD),
                packet.to_string(),
            );
            let Ok(repr) = Repr::parse(&msg) else {
                continue;
            };
            parsed += 1;
            let _ = repr.to_string();
            let mut out = vec![0u8; repr.buffer_len()];
            assert_eq!(repr.emit(&mut out), Ok(out.len()));
            assert_eq!(Repr::parse(&out), Ok(repr), "{msg:02x?}");
        }
        assert!(parsed > 1000, "only {parsed} valid messages");
    }
}
