//! Domain names in DNS wire form (RFC 1035 §3.1), as three of our options
//! carry them: the DHCPv4 Domain Search option 119 (RFC 3397), the NDP DNS
//! Search List option (RFC 8106 §5.2) and the DHCPv6 Domain Search List
//! option 24 (RFC 3646 §4, RFC 8415 §10).
//!
//! # Theory of operation
//!
//! A name is a run of labels, each a length byte (1..=63) and that many
//! bytes, closed by the zero-length root label; 255 bytes in all at most
//! (RFC 1035 §2.3.4). A list of names is the names back to back.
//!
//! * [`encoded_name_len`] decides whether a dotted name from configuration
//!   can be encoded, and how long it is then; [`encode_name`] writes it.
//!   One trailing dot (the root) is allowed; an empty name, an empty label
//!   ("a..b") or one over 63 bytes, or a name over 255 bytes is refused.
//! * [`check_names`] validates received names: every label inside the
//!   bytes, no label type but plain labels, no name over 255 bytes. NDP
//!   pads the list with zeros to its 8-byte units; DHCPv6 does not.
//! * [`DomainList`] is a list as found in a message (bytes) or as given by
//!   configuration (dotted names), with one length and one encoder for both.
//!
//! Left out: name compression. We never compress (RFC 3397 allows it in
//! option 119, RFC 8106 §5.2 and RFC 8415 §10 forbid it), and a compression
//! pointer in a name we check is an error. The DHCPv4 server never reads
//! option 119, so its bytes are kept as they are, unchecked.

use std::fmt;

use super::{put, NoSpace};

/// The longest name in wire form, length bytes and root included
/// (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// The longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// Why received names were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// A label, or the root label closing a name, runs past the end.
    Truncated,
    /// A label length byte above 63: a compression pointer (0xc0) or a
    /// reserved label type (0x40, 0x80), none of them allowed here.
    NotALabel(u8),
    /// A name longer than 255 bytes.
    TooLong,
    /// A zero byte where a name starts: an empty name (root only).
    EmptyName,
    /// A non-zero byte in the zero padding after the names.
    BadPadding,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("domain name runs past the end"),
            Error::NotALabel(b) => write!(f, "label type {b:#04x} in a domain name"),
            Error::TooLong => f.write_str("domain name over 255 bytes"),
            Error::EmptyName => f.write_str("empty domain name"),
            Error::BadPadding => f.write_str("non-zero padding after domain names"),
        }
    }
}

impl std::error::Error for Error {}

/// The labels of a dotted name, one trailing dot (the root) allowed. An
/// empty name gives one empty label, which the callers refuse.
fn labels(name: &str) -> std::str::Split<'_, char> {
    name.strip_suffix('.').unwrap_or(name).split('.')
}

/// Bytes `name` takes in wire form, or `None` when it cannot be encoded:
/// empty (the root alone is no search domain), an empty label ("a..b"), a
/// label over 63 bytes or a name over 255 bytes. A trailing dot is allowed.
pub fn encoded_name_len(name: &str) -> Option<usize> {
    let mut len = 1; // the terminating root label
    for label in labels(name) {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return None;
        }
        len += 1 + label.len();
    }
    (len <= MAX_NAME_LEN).then_some(len)
}

/// Encodes `name` at the start of `buf`; returns the length, or `None` if
/// the name is not encodable or `buf` is too short (nothing written then).
pub fn encode_name(name: &str, buf: &mut [u8]) -> Option<usize> {
    let len = encoded_name_len(name)?;
    let mut slots = buf.get_mut(..len)?.iter_mut();
    write_labels(name, &mut |b| {
        if let Some(slot) = slots.next() {
            *slot = b;
        }
    });
    Some(len)
}

/// Feeds the wire form of a name [`encoded_name_len`] accepts to `sink`:
/// exactly that many bytes. The one encoder behind every other.
fn write_labels(name: &str, sink: &mut impl FnMut(u8)) {
    for label in labels(name) {
        // Cannot truncate: encoded_name_len() capped labels at 63 bytes.
        sink(label.len() as u8);
        label.bytes().for_each(&mut *sink);
    }
    sink(0);
}

/// Validates a run of encoded names and returns the length they take.
/// With `padded` (NDP's DNSSL), a zero byte where a name would start begins
/// the padding, and everything after it must be zero too; without (DHCPv6
/// option 24), the names must fill `bytes` exactly and none may be empty.
///
/// # Errors
/// Which check failed; see [`Error`].
pub fn check_names(bytes: &[u8], padded: bool) -> Result<usize, Error> {
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest[0] == 0 {
            if !padded {
                return Err(Error::EmptyName);
            }
            if rest.iter().any(|&b| b != 0) {
                return Err(Error::BadPadding);
            }
            return Ok(at);
        }
        at += check_one_name(rest)?;
    }
    Ok(at)
}

/// Length of the first encoded name of `bytes` (root label included).
fn check_one_name(bytes: &[u8]) -> Result<usize, Error> {
    let mut at = 0;
    loop {
        let label = *bytes.get(at).ok_or(Error::Truncated)?;
        if usize::from(label) > MAX_LABEL_LEN {
            // 0xc0 pointers and the reserved 0x40/0x80 kinds: no compression
            // in NDP or DHCPv6 (RFC 8106 §5.2, RFC 8415 §10).
            return Err(Error::NotALabel(label));
        }
        at += 1 + usize::from(label);
        if at > MAX_NAME_LEN {
            return Err(Error::TooLong);
        }
        if at > bytes.len() {
            return Err(Error::Truncated);
        }
        if label == 0 {
            return Ok(at);
        }
    }
}

/// Renders one encoded name (validated) as dotted text; bytes outside
/// printable ASCII, dots and backslashes inside labels are escaped.
fn write_name(f: &mut impl fmt::Write, encoded: &[u8]) -> fmt::Result {
    let mut at = 0;
    let mut first = true;
    while let Some(&len) = encoded.get(at) {
        if len == 0 {
            break;
        }
        if !first {
            f.write_char('.')?;
        }
        first = false;
        let label = encoded
            .get(at + 1..at + 1 + usize::from(len))
            .unwrap_or(&[]);
        for &b in label {
            if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                f.write_char(char::from(b))?;
            } else {
                write!(f, "\\{b:03}")?;
            }
        }
        at += 1 + usize::from(len);
    }
    Ok(())
}

/// A list of domain names: encoded as found in a message, or as dotted
/// names from configuration.
#[derive(Clone, Copy)]
pub enum DomainList<'a> {
    /// Encoded names from a message, as they are, without padding
    /// (validated by [`check_names`] where the protocol asks for it).
    Wire(&'a [u8]),
    /// Names to send; those [`encoded_name_len`] refuses are skipped.
    Names(&'a [String]),
}

impl DomainList<'_> {
    /// Bytes the encoded names take (no padding; 0 if none is encodable).
    pub fn encoded_len(&self) -> usize {
        match self {
            DomainList::Wire(b) => b.len(),
            DomainList::Names(names) => names.iter().filter_map(|n| encoded_name_len(n)).sum(),
        }
    }

    /// No (encodable) name at all.
    pub fn is_empty(&self) -> bool {
        self.encoded_len() == 0
    }

    /// Feeds the encoded list to `sink`, byte by byte: exactly
    /// [`DomainList::encoded_len`] bytes (DHCPv4 splits them across option
    /// instances as they come).
    pub fn encode(&self, sink: &mut impl FnMut(u8)) {
        match self {
            DomainList::Wire(bytes) => bytes.iter().for_each(|&b| sink(b)),
            DomainList::Names(names) => {
                for name in names.iter() {
                    if encoded_name_len(name).is_some() {
                        write_labels(name, sink);
                    }
                }
            }
        }
    }

    /// Writes the encoded names at the start of `buf`; returns
    /// [`DomainList::encoded_len`].
    ///
    /// # Errors
    /// [`NoSpace`] if `buf` is shorter than that (nothing written then).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, NoSpace> {
        match self {
            DomainList::Wire(b) => put(buf, 0, b).map(|()| b.len()),
            DomainList::Names(_) => {
                let len = self.encoded_len();
                let mut slots = buf.get_mut(..len).ok_or(NoSpace)?.iter_mut();
                self.encode(&mut |b| {
                    if let Some(slot) = slots.next() {
                        *slot = b;
                    }
                });
                Ok(len)
            }
        }
    }

    /// The names as dotted text (allocates: for logs and tests).
    pub fn to_strings(&self) -> Vec<String> {
        let mut encoded = vec![0u8; self.encoded_len()];
        let len = self.emit(&mut encoded).unwrap_or(0);
        let mut out = Vec::new();
        let mut at = 0;
        while at < len {
            let Ok(n) = check_one_name(&encoded[at..len]) else {
                break;
            };
            let mut s = String::new();
            let _ = write_name(&mut s, &encoded[at..at + n]);
            out.push(s);
            at += n;
        }
        out
    }
}

impl PartialEq for DomainList<'_> {
    /// Lists are equal when they encode to the same bytes. Allocates: meant
    /// for tests and logs, not for the packet path.
    fn eq(&self, other: &Self) -> bool {
        let mut a = vec![0u8; self.encoded_len()];
        let mut b = vec![0u8; other.encoded_len()];
        self.emit(&mut a).is_ok() && other.emit(&mut b).is_ok() && a == b
    }
}

impl Eq for DomainList<'_> {}

impl fmt::Debug for DomainList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.to_strings()).finish()
    }
}

impl fmt::Display for DomainList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_strings().join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_name_encoding() {
        assert_eq!(encoded_name_len("example.com"), Some(13));
        assert_eq!(encoded_name_len("example.com."), Some(13));
        assert_eq!(encoded_name_len(""), None);
        assert_eq!(encoded_name_len("."), None);
        assert_eq!(encoded_name_len("a..b"), None);
        assert_eq!(encoded_name_len(&"x".repeat(63)), Some(65));
        assert_eq!(encoded_name_len(&"x".repeat(64)), None);
        // 4 labels of 63 = 4 * 64 + 1 = 257 bytes: too long.
        let long = vec!["x".repeat(63); 4].join(".");
        assert_eq!(encoded_name_len(&long), None);
        let mut buf = [0u8; 13];
        assert_eq!(encode_name("example.com", &mut buf), Some(13));
        assert_eq!(&buf, b"\x07example\x03com\x00");
        assert_eq!(encode_name("example.com", &mut buf[..12]), None);
        let names = ["a.b".to_string(), "bad..name".to_string(), "c".to_string()];
        let list = DomainList::Names(&names);
        assert_eq!(list.encoded_len(), 5 + 3);
        assert_eq!(list.to_strings(), vec!["a.b", "c"]);
        assert_eq!(check_names(b"\x01a\x01b\x00\x01c\x00", false), Ok(8));
        assert_eq!(check_names(b"\x01a\x00\x00", false), Err(Error::EmptyName));
        assert_eq!(check_names(b"\x01a\x00\x00", true), Ok(3));
        assert_eq!(check_names(b"\x01a", false), Err(Error::Truncated));
        let odd = DomainList::Wire(b"\x03a.b\x02\x00\xff\x00");
        assert_eq!(odd.to_strings(), vec!["a\\046b.\\000\\255"]);
    }

    #[test]
    fn search_list_encoding_byte_by_byte() {
        let names = [
            "example.com".to_string(),
            "a.b.".to_string(),
            "x".to_string(),
        ];
        let list = DomainList::Names(&names);
        let mut bytes = Vec::new();
        list.encode(&mut |b| bytes.push(b));
        let expected: &[u8] = &[
            7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm',
            0, // example.com
            1, b'a', 1, b'b', 0, // a.b. (the root dot adds nothing)
            1, b'x', 0, // x
        ];
        assert_eq!(bytes, expected);
        assert_eq!(list.encoded_len(), expected.len());
        // Into a buffer: the same bytes, and nothing past them.
        let mut buf = [0xee; 24];
        assert_eq!(list.emit(&mut buf), Ok(expected.len()));
        assert_eq!(&buf[..expected.len()], expected);
        assert!(buf[expected.len()..].iter().all(|&b| b == 0xee));
        assert_eq!(list.emit(&mut buf[..expected.len() - 1]), Err(NoSpace));
    }

    #[test]
    fn search_list_skips_unencodable_names() {
        let label63 = "a".repeat(63);
        let label64 = "a".repeat(64);
        // 4 labels of 63 bytes: 4 * 64 + 1 = 257 bytes, over 255.
        let too_long = [label63.as_str(); 4].join(".");
        // 3 labels of 63 and one of 61: 3 * 64 + 62 + 1 = 255, the limit.
        let longest = format!("{label63}.{label63}.{label63}.{}", "b".repeat(61));
        assert_eq!(encoded_name_len(&longest), Some(255));
        assert_eq!(encoded_name_len(&too_long), None);
        assert_eq!(encoded_name_len(&label63), Some(65));
        assert_eq!(encoded_name_len(&label64), None);
        for bad in ["", ".", "a..b", ".a", "a.b.."] {
            assert_eq!(encoded_name_len(bad), None, "{bad:?}");
        }
        let names = [
            "".to_string(),
            label64,
            "ok".to_string(),
            too_long,
            "a..b".to_string(),
        ];
        let mut bytes = Vec::new();
        DomainList::Names(&names).encode(&mut |b| bytes.push(b));
        assert_eq!(bytes, [2, b'o', b'k', 0]);
        assert_eq!(DomainList::Names(&names).encoded_len(), 4);
    }

    #[test]
    fn check_names_says_which_check_failed() {
        // A compression pointer, and the reserved label types.
        assert_eq!(
            check_names(&[0xc0, 0x0c], false),
            Err(Error::NotALabel(0xc0))
        );
        assert_eq!(check_names(&[0x40, 0], false), Err(Error::NotALabel(0x40)));
        assert_eq!(
            check_names(&[1, b'a', 0x80, 0], true),
            Err(Error::NotALabel(0x80))
        );
        // A label past the end, and a name without its root label.
        assert_eq!(check_names(&[9, b'a', b'b'], true), Err(Error::Truncated));
        assert_eq!(
            check_names(&[1, b'a', 1, b'b'], false),
            Err(Error::Truncated)
        );
        // Padding that is not all zeros; padding where none is allowed.
        assert_eq!(
            check_names(&[1, b'a', 0, 0, 1, 0], true),
            Err(Error::BadPadding)
        );
        assert_eq!(check_names(&[0, 0, 0], false), Err(Error::EmptyName));
        assert_eq!(check_names(&[0, 0, 0], true), Ok(0));
        assert_eq!(check_names(&[], false), Ok(0));
        // 255 bytes is the longest name: 4 labels of 62 and one of 2.
        let mut name = Vec::new();
        for _ in 0..4 {
            name.push(62);
            name.extend_from_slice(&[b'x'; 62]);
        }
        name.extend_from_slice(&[2, b'y', b'y', 0]);
        assert_eq!(name.len(), 256);
        assert_eq!(check_names(&name, false), Err(Error::TooLong));
        let mut name = name[..252].to_vec();
        name.extend_from_slice(&[1, b'y', 0]);
        assert_eq!(check_names(&name, false), Ok(255));
    }

    #[test]
    fn names_encoded_here_pass_the_check_and_read_back() {
        let q63 = "q".repeat(63);
        let names: Vec<String> = ["example.com", "a.b.", "x-y.z9", &q63]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let list = DomainList::Names(&names);
        let mut buf = vec![0u8; list.encoded_len()];
        assert_eq!(list.emit(&mut buf), Ok(buf.len()));
        assert_eq!(check_names(&buf, false), Ok(buf.len()));
        let read = DomainList::Wire(&buf);
        assert_eq!(read, list);
        assert_eq!(
            read.to_strings(),
            ["example.com", "a.b", "x-y.z9", q63.as_str()]
        );
        assert_eq!(read.to_string(), read.to_strings().join(","));
    }
}
