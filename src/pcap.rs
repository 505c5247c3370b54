//! Capture of every frame both ways in the classic pcap format (readable
//! by tcpdump and wireshark): a 24-byte file header, then per frame a
//! 16-byte record header (time, captured and original length) and the
//! bytes. Timestamps are the wall-clock time at open plus the monotonic
//! time elapsed since (the library reads no clock per frame).

use crate::time::Instant;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

const MAGIC: u32 = 0xa1b2_c3d4;
const LINKTYPE_ETHERNET: u32 = 1;
const SNAPLEN: u32 = 65535 + 14;

pub struct Pcap {
    out: BufWriter<File>,
    /// Wall-clock nanoseconds at the first frame, and that frame's `now`.
    origin: Option<(u128, Instant)>,
}

impl Pcap {
    /// Creates (truncates) the capture file and writes its header.
    pub fn create(path: &Path) -> io::Result<Pcap> {
        let mut out = BufWriter::with_capacity(256 * 1024, File::create(path)?);
        let mut hdr = Vec::with_capacity(24);
        hdr.extend_from_slice(&MAGIC.to_le_bytes());
        hdr.extend_from_slice(&2u16.to_le_bytes());
        hdr.extend_from_slice(&4u16.to_le_bytes());
        hdr.extend_from_slice(&0i32.to_le_bytes());
        hdr.extend_from_slice(&0u32.to_le_bytes());
        hdr.extend_from_slice(&SNAPLEN.to_le_bytes());
        hdr.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&hdr)?;
        out.flush()?;
        Ok(Pcap { out, origin: None })
    }

    /// Appends one frame. Errors are logged once by the caller and capture
    /// stops; they never affect traffic.
    pub fn record(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        let (wall0, mono0) = *self.origin.get_or_insert_with(|| {
            let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            (wall, now)
        });
        let t = wall0 + u128::from(now.nanos().saturating_sub(mono0.nanos()));
        let len = frame.len().min(SNAPLEN as usize);
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((t / 1_000_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&(((t % 1_000_000_000) / 1000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&(len as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(&frame[..len])
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_header_and_records() {
        let path = std::env::temp_dir().join(format!("passt-pcap-test-{}.pcap", std::process::id()));
        let mut p = Pcap::create(&path).unwrap();
        p.record(Instant(5_000_000_000), &[1u8; 60]).unwrap();
        p.record(Instant(6_500_000_000), &[2u8; 42]).unwrap();
        p.flush().unwrap();
        let b = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(b.len(), 24 + 16 + 60 + 16 + 42);
        assert_eq!(&b[0..4], &MAGIC.to_le_bytes());
        assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 1);
        let second = 24 + 16 + 60;
        let (s1, u1) = (u32::from_le_bytes(b[24..28].try_into().unwrap()), u32::from_le_bytes(b[28..32].try_into().unwrap()));
        let (s2, u2) = (
            u32::from_le_bytes(b[second..second + 4].try_into().unwrap()),
            u32::from_le_bytes(b[second + 4..second + 8].try_into().unwrap()),
        );
        let delta_us = (i64::from(s2) - i64::from(s1)) * 1_000_000 + i64::from(u2) - i64::from(u1);
        assert_eq!(delta_us, 1_500_000);
        assert_eq!(u32::from_le_bytes(b[second + 8..second + 12].try_into().unwrap()), 42);
    }
}
