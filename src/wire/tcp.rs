//! TCP headers and options (RFC 9293 section 3.1; options: MSS RFC 9293
//! 3.2, window scale and timestamps RFC 7323, SACK-permitted and SACK
//! blocks RFC 2018).
//!
//! What it answers: a checked view of a guest's segment (ports, sequence
//! numbers, flags, window, options, payload), the meaning of the options we
//! care about, and a builder that writes a header (with the options of a
//! SYN) in front of a payload already in place. Sequence-number comparisons
//! modulo 2^32 live here too.
//!
//! What it leaves out: the checksum (verified by the engine, written by
//! [`crate::tx::finish_ip`]), urgent data (the pointer is read, never
//! acted on), any state.

use super::{be16, be32, put16, put32, WireError};
use std::fmt;

/// The fixed header, without options.
pub const HEADER_LEN: usize = 20;
/// The longest header: data offset 15 words.
pub const MAX_HEADER_LEN: usize = 60;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;
pub const URG: u8 = 0x20;
pub const ECE: u8 = 0x40;
pub const CWR: u8 = 0x80;

/// Largest window shift (RFC 7323 section 2.3: larger values mean 14).
pub const MAX_WINDOW_SCALE: u8 = 14;

const OPT_END: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;
const OPT_WS: u8 = 3;
const OPT_SACK_PERMITTED: u8 = 4;
const OPT_SACK: u8 = 5;
const OPT_TIMESTAMPS: u8 = 8;

/// `a < b` in sequence space (RFC 9293 section 3.4).
#[inline]
pub fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a <= b` in sequence space.
#[inline]
pub fn seq_le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

/// The later of two sequence numbers.
#[inline]
pub fn seq_max(a: u32, b: u32) -> u32 {
    if seq_lt(a, b) {
        b
    } else {
        a
    }
}

/// A checked view of a TCP segment: the data offset is at least 5 words
/// and within the buffer, so no getter can panic.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    bytes: &'a [u8],
    header_len: usize,
}

impl<'a> Segment<'a> {
    /// Validates `b` (TCP header and payload, trimmed to the IP length).
    pub fn new_checked(b: &'a [u8]) -> Result<Self, WireError> {
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = usize::from(b[12] >> 4) * 4;
        if header_len < HEADER_LEN {
            return Err(WireError::BadLength);
        }
        if header_len > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(Segment { bytes: b, header_len })
    }
    pub fn src_port(&self) -> u16 {
        be16(self.bytes, 0)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.bytes, 2)
    }
    pub fn seq(&self) -> u32 {
        be32(self.bytes, 4)
    }
    pub fn ack(&self) -> u32 {
        be32(self.bytes, 8)
    }
    pub fn header_len(&self) -> usize {
        self.header_len
    }
    /// The eight flag bits (FIN..CWR).
    pub fn flags(&self) -> u8 {
        self.bytes[13]
    }
    pub fn has(&self, flag: u8) -> bool {
        self.flags() & flag != 0
    }
    /// The raw window field (unscaled).
    pub fn window(&self) -> u16 {
        be16(self.bytes, 14)
    }
    pub fn checksum(&self) -> u16 {
        be16(self.bytes, 16)
    }
    pub fn urgent(&self) -> u16 {
        be16(self.bytes, 18)
    }
    /// The raw option bytes.
    pub fn option_bytes(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..self.header_len]
    }
    /// The options we understand (see [`Options::parse`]).
    pub fn options(&self) -> Result<Options, WireError> {
        Options::parse(self.option_bytes())
    }
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.header_len..]
    }
    /// Sequence space the segment occupies: payload, plus one each for SYN
    /// and FIN.
    pub fn seq_len(&self) -> u32 {
        self.payload().len() as u32 + u32::from(self.has(SYN)) + u32::from(self.has(FIN))
    }
}

impl fmt::Display for Segment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TCP {} > {} [{}] seq {} ack {} win {} len {}",
            self.src_port(),
            self.dst_port(),
            FlagsDisplay(self.flags()),
            self.seq(),
            self.ack(),
            self.window(),
            self.payload().len()
        )
    }
}

/// Shows flags as tcpdump does ("S.", "F.", "R", "P.").
pub struct FlagsDisplay(pub u8);

impl fmt::Display for FlagsDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, c) in [(SYN, 'S'), (FIN, 'F'), (RST, 'R'), (PSH, 'P'), (URG, 'U'), (ECE, 'E'), (CWR, 'W'), (ACK, '.')] {
            if self.0 & bit != 0 {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// The options we read and write. Unknown options are skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub mss: Option<u16>,
    /// Window scale shift, clamped to [`MAX_WINDOW_SCALE`].
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    /// (TSval, TSecr).
    pub timestamps: Option<(u32, u32)>,
    /// SACK blocks (in ACKs, once SACK is permitted both ways).
    pub sack: SackBlocks,
}

/// Most SACK blocks in one option (RFC 2018 section 3: four fill the 40
/// bytes of options; we send no timestamps).
pub const MAX_SACK_BLOCKS: usize = 4;

/// The blocks of a SACK option: `[start, end)` ranges of sequence space,
/// the first the one holding the most recently received segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SackBlocks {
    len: u8,
    blocks: [(u32, u32); MAX_SACK_BLOCKS],
}

impl SackBlocks {
    /// Adds a block; `false` (and nothing added) when four are there.
    pub fn push(&mut self, start: u32, end: u32) -> bool {
        let Some(slot) = self.blocks.get_mut(usize::from(self.len)) else { return false };
        *slot = (start, end);
        self.len += 1;
        true
    }

    pub fn as_slice(&self) -> &[(u32, u32)] {
        &self.blocks[..usize::from(self.len)]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Options {
    /// Parses an option list. Refused: a length byte below 2 (Malformed),
    /// an option running past the end (BadLength), a known option with the
    /// wrong length (Malformed).
    pub fn parse(mut b: &[u8]) -> Result<Options, WireError> {
        let mut o = Options::default();
        while let Some(&kind) = b.first() {
            match kind {
                OPT_END => break,
                OPT_NOP => {
                    b = &b[1..];
                    continue;
                }
                _ => {}
            }
            let len = usize::from(*b.get(1).ok_or(WireError::BadLength)?);
            if len < 2 {
                return Err(WireError::Malformed);
            }
            let body = b.get(2..len).ok_or(WireError::BadLength)?;
            match (kind, body.len()) {
                (OPT_MSS, 2) => o.mss = Some(be16(body, 0)),
                (OPT_WS, 1) => o.window_scale = Some(body[0].min(MAX_WINDOW_SCALE)),
                (OPT_SACK_PERMITTED, 0) => o.sack_permitted = true,
                (OPT_TIMESTAMPS, 8) => o.timestamps = Some((be32(body, 0), be32(body, 4))),
                (OPT_SACK, n) if n > 0 && n % 8 == 0 => {
                    // At most four fit in the 40 bytes of options.
                    for b in body.chunks_exact(8) {
                        o.sack.push(be32(b, 0), be32(b, 4));
                    }
                }
                (OPT_MSS | OPT_WS | OPT_SACK_PERMITTED | OPT_TIMESTAMPS | OPT_SACK, _) => return Err(WireError::Malformed),
                _ => {}
            }
            b = &b[len..];
        }
        Ok(o)
    }

    /// Bytes [`Self::emit`] writes (a multiple of 4).
    pub fn buffer_len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        if self.window_scale.is_some() {
            n += 4;
        }
        if self.timestamps.is_some() {
            // SACK-permitted, if any, fills the two bytes of padding.
            n += 12;
        } else if self.sack_permitted {
            n += 4;
        }
        if !self.sack.is_empty() {
            n += 4 + 8 * self.sack.as_slice().len();
        }
        n
    }

    /// Writes the options, NOP-padded to 32-bit words (the layout of RFC
    /// 7323 appendix A). Returns the bytes written.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let mut at = 0;
        if let Some(mss) = self.mss {
            buf[at..at + 2].copy_from_slice(&[OPT_MSS, 4]);
            put16(buf, at + 2, mss);
            at += 4;
        }
        if let Some(ws) = self.window_scale {
            buf[at..at + 4].copy_from_slice(&[OPT_NOP, OPT_WS, 3, ws]);
            at += 4;
        }
        match (self.sack_permitted, self.timestamps) {
            (sack, Some((val, ecr))) => {
                let lead = if sack { [OPT_SACK_PERMITTED, 2] } else { [OPT_NOP, OPT_NOP] };
                buf[at..at + 4].copy_from_slice(&[lead[0], lead[1], OPT_TIMESTAMPS, 10]);
                put32(buf, at + 4, val);
                put32(buf, at + 8, ecr);
                at += 12;
            }
            (true, None) => {
                buf[at..at + 4].copy_from_slice(&[OPT_NOP, OPT_NOP, OPT_SACK_PERMITTED, 2]);
                at += 4;
            }
            (false, None) => {}
        }
        let sack = self.sack.as_slice();
        if !sack.is_empty() {
            let len = 2 + 8 * sack.len() as u8;
            buf[at..at + 4].copy_from_slice(&[OPT_NOP, OPT_NOP, OPT_SACK, len]);
            at += 4;
            for &(start, end) in sack {
                put32(buf, at, start);
                put32(buf, at + 4, end);
                at += 8;
            }
        }
        at
    }
}

/// The fixed fields of a segment we build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// The window field as sent (already scaled down).
    pub window: u16,
}

impl Header {
    /// Bytes of header with these options.
    pub fn buffer_len(options: &Options) -> usize {
        HEADER_LEN + options.buffer_len()
    }

    /// Writes the header and options at the start of `buf` (checksum and
    /// urgent pointer zero). The payload, if any, is already in place after
    /// them. Returns the header length.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8], options: &Options) -> usize {
        let len = Self::buffer_len(options);
        put16(buf, 0, self.src_port);
        put16(buf, 2, self.dst_port);
        put32(buf, 4, self.seq);
        put32(buf, 8, self.ack);
        buf[12] = ((len / 4) as u8) << 4;
        buf[13] = self.flags;
        put16(buf, 14, self.window);
        put16(buf, 16, 0);
        put16(buf, 18, 0);
        options.emit(&mut buf[HEADER_LEN..len]);
        len
    }
}

/// The validated meaning of a whole segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr<'a> {
    pub header: Header,
    pub options: Options,
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    pub fn parse(seg: &Segment<'a>) -> Result<Repr<'a>, WireError> {
        Ok(Repr {
            header: Header {
                src_port: seg.src_port(),
                dst_port: seg.dst_port(),
                seq: seg.seq(),
                ack: seg.ack(),
                flags: seg.flags(),
                window: seg.window(),
            },
            options: seg.options()?,
            payload: seg.payload(),
        })
    }

    pub fn buffer_len(&self) -> usize {
        Header::buffer_len(&self.options) + self.payload.len()
    }

    /// Writes header, options and payload; returns [`Self::buffer_len`].
    ///
    /// # Panics
    /// If `buf` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let h = self.header.emit(buf, &self.options);
        buf[h..h + self.payload.len()].copy_from_slice(self.payload);
        h + self.payload.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sack(blocks: &[(u32, u32)]) -> SackBlocks {
        let mut s = SackBlocks::default();
        for &(a, b) in blocks {
            assert!(s.push(a, b));
        }
        s
    }

    #[test]
    fn sack_blocks_hold_four_and_a_sack_option_must_be_whole_blocks() {
        let mut s = sack(&[(1, 2), (3, 4), (5, 6), (7, 8)]);
        assert!(!s.push(9, 10), "a fifth block does not fit");
        assert_eq!(s.as_slice(), &[(1, 2), (3, 4), (5, 6), (7, 8)]);
        let o = Options::parse(&[OPT_NOP, OPT_NOP, OPT_SACK, 10, 0, 0, 0, 1, 0, 0, 0, 9]).unwrap();
        assert_eq!(o.sack.as_slice(), &[(1, 9)]);
        for bad in [&[OPT_SACK, 2][..], &[OPT_SACK, 9, 0, 0, 0, 1, 0, 0, 0], &[OPT_SACK, 11, 0, 0, 0, 1, 0, 0, 0, 9, 0]] {
            assert_eq!(Options::parse(bad), Err(WireError::Malformed), "{bad:?}");
        }
    }

    /// A SYN from a Linux guest (captured): 40000 -> 80, MSS 1460,
    /// SACK-permitted, timestamps, window scale 7.
    const SYN_FIXTURE: [u8; 40] = [
        0x9c, 0x40, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa, 0xf0, 0x00, 0x00,
        0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x01, 0x02, 0x03, 0x00, 0x00, 0x00, 0x00,
        0x01, 0x03, 0x03, 0x07,
    ];

    #[test]
    fn parse_fixture() {
        let s = Segment::new_checked(&SYN_FIXTURE).unwrap();
        assert_eq!((s.src_port(), s.dst_port()), (40000, 80));
        assert_eq!(s.seq(), 0x1234_5678);
        assert_eq!(s.ack(), 0);
        assert_eq!(s.flags(), SYN);
        assert!(s.has(SYN) && !s.has(ACK));
        assert_eq!(s.window(), 64240);
        assert_eq!(s.header_len(), 40);
        assert_eq!(s.seq_len(), 1);
        assert!(s.payload().is_empty());
        let o = s.options().unwrap();
        assert_eq!(
            o,
            Options {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                timestamps: Some((0x0001_0203, 0)),
                ..Default::default()
            }
        );
        assert_eq!(s.to_string(), "TCP 40000 > 80 [S] seq 305419896 ack 0 win 64240 len 0");
    }

    #[test]
    fn emit_then_parse_round_trips() {
        let cases = [
            Options::default(),
            Options { mss: Some(65480), window_scale: Some(8), ..Default::default() },
            Options { sack_permitted: true, ..Default::default() },
            Options { timestamps: Some((1, 2)), ..Default::default() },
            Options {
                mss: Some(1),
                window_scale: Some(0),
                sack_permitted: true,
                timestamps: Some((u32::MAX, 7)),
                ..Default::default()
            },
            Options { sack: sack(&[(0xffff_fff0, 5)]), ..Default::default() },
            Options { sack: sack(&[(9, 10), (1, 3), (u32::MAX - 1, 0), (100, 200)]), ..Default::default() },
        ];
        for (i, options) in cases.iter().enumerate() {
            let payload = b"hello, world";
            let repr = Repr {
                header: Header {
                    src_port: 1000 + i as u16,
                    dst_port: 22,
                    seq: 0xfffffff0,
                    ack: 17,
                    flags: ACK | PSH,
                    window: 513,
                },
                options: *options,
                payload,
            };
            let mut buf = vec![0xee; repr.buffer_len()];
            assert_eq!(repr.emit(&mut buf), buf.len());
            assert_eq!(buf.len() % 4, payload.len() % 4, "header is whole words");
            let seg = Segment::new_checked(&buf).unwrap();
            assert_eq!(Repr::parse(&seg).unwrap(), repr);
            // And emitting the parsed repr gives the same bytes.
            let mut again = vec![0; buf.len()];
            Repr::parse(&seg).unwrap().emit(&mut again);
            assert_eq!(again, buf);
        }
    }

    #[test]
    fn truncated_at_each_boundary() {
        for len in 0..SYN_FIXTURE.len() {
            let e = Segment::new_checked(&SYN_FIXTURE[..len]).unwrap_err();
            assert_eq!(e, WireError::Truncated, "len {len}");
        }
    }

    #[test]
    fn bad_data_offset() {
        for off in 0..5u8 {
            let mut b = SYN_FIXTURE;
            b[12] = off << 4;
            assert_eq!(Segment::new_checked(&b).unwrap_err(), WireError::BadLength, "offset {off}");
        }
        // 15 words = 60 bytes > 40 available.
        let mut b = SYN_FIXTURE;
        b[12] = 0xf0;
        assert_eq!(Segment::new_checked(&b).unwrap_err(), WireError::Truncated);
        // Offset 5 with options present: they become payload.
        b[12] = 0x50;
        let s = Segment::new_checked(&b).unwrap();
        assert_eq!(s.payload().len(), 20);
        assert_eq!(s.options().unwrap(), Options::default());
    }

    #[test]
    fn malformed_options() {
        // Zero and one length bytes.
        assert_eq!(Options::parse(&[OPT_MSS, 0, 0, 0]).unwrap_err(), WireError::Malformed);
        assert_eq!(Options::parse(&[99, 1, 0, 0]).unwrap_err(), WireError::Malformed);
        // Running past the end.
        assert_eq!(Options::parse(&[OPT_MSS, 4, 5]).unwrap_err(), WireError::BadLength);
        assert_eq!(Options::parse(&[OPT_NOP, 99, 10, 0, 0]).unwrap_err(), WireError::BadLength);
        // A kind with no room for its length byte.
        assert_eq!(Options::parse(&[OPT_NOP, OPT_NOP, OPT_NOP, OPT_WS]).unwrap_err(), WireError::BadLength);
        // Known options with the wrong length.
        assert_eq!(Options::parse(&[OPT_MSS, 3, 5]).unwrap_err(), WireError::Malformed);
        assert_eq!(Options::parse(&[OPT_WS, 4, 1, 1]).unwrap_err(), WireError::Malformed);
        assert_eq!(Options::parse(&[OPT_SACK_PERMITTED, 3, 0]).unwrap_err(), WireError::Malformed);
        assert_eq!(Options::parse(&[OPT_TIMESTAMPS, 6, 0, 0, 0, 0]).unwrap_err(), WireError::Malformed);
        // Every option in the fixture cut at each point is refused or
        // parsed, never a panic; cut inside an option, refused.
        let opts = &SYN_FIXTURE[20..];
        for cut in 0..opts.len() {
            let _ = Options::parse(&opts[..cut]);
        }
        assert!(Options::parse(&opts[..2]).is_err());
        assert!(Options::parse(&opts[..5]).is_err());
    }

    #[test]
    fn benign_options() {
        // Unknown options are skipped, END stops, big window scales clamp.
        let o = Options::parse(&[30, 4, 0xaa, 0xbb, OPT_WS, 3, 20, OPT_END, OPT_MSS, 0]).unwrap();
        assert_eq!(o, Options { window_scale: Some(14), ..Default::default() });
        assert_eq!(Options::parse(&[]).unwrap(), Options::default());
        assert_eq!(Options::parse(&[OPT_NOP; 7]).unwrap(), Options::default());
    }

    #[test]
    fn sequence_arithmetic() {
        assert!(seq_lt(1, 2));
        assert!(seq_lt(0xffff_fff0, 5), "wraps");
        assert!(!seq_lt(5, 0xffff_fff0));
        assert!(seq_le(7, 7) && !seq_lt(7, 7));
        assert_eq!(seq_max(0xffff_fff0, 5), 5);
        assert_eq!(seq_max(9, 5), 9);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A seeded generator (xorshift) so the run is the same every time.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 72) as usize;
            let b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Ok(s) = Segment::new_checked(&b) {
                let _ = (s.payload(), s.options(), s.to_string(), s.seq_len());
            }
            let _ = Options::parse(&b);
        }
    }

    #[test]
    fn flags_display() {
        assert_eq!(FlagsDisplay(SYN | ACK).to_string(), "S.");
        assert_eq!(FlagsDisplay(FIN | PSH | ACK).to_string(), "FP.");
        assert_eq!(FlagsDisplay(RST).to_string(), "R");
    }
}
