//! The QEMU stream socket: frames preceded by a 4-byte big-endian length.
//!
//! Reads fill a buffer with as much as the socket has, then split it into
//! frames; a frame cut by the end of a read stays at the front of the
//! buffer until the rest arrives. A call stops reading once it has
//! [`READ_BATCH_FRAMES`] frames (see there why), or after a read that
//! left room in the buffer (the socket is empty). A length below an
//! Ethernet header or above the largest frame means the peer does not
//! speak this framing (or is hostile): we log it and drop the connection,
//! as resynchronising a byte stream is guesswork. Writes send the queued
//! frames, prefixes included, in one `write`, and keep the position of a
//! partial write; the socket's send buffer follows the size of the frames
//! (see `SendBuffer`).

use super::{would_block, Flush, READ_BATCH_FRAMES};
use crate::sys;
use crate::tx::{TxQueue, MAX_FRAME};
use crate::wire::ethernet;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

/// Read buffer size: room for several maximum-size frames per read.
const READ_BUF: usize = 4 * (4 + MAX_FRAME);

/// Reads per call at most: 32 frames of 64 KiB, or as many small ones as
/// [`READ_BATCH_FRAMES`] allows (one read of 1,500-byte frames already
/// holds more).
const READS_PER_CALL: usize = 8;

/// Frames that the connection's send buffer should hold. The default
/// buffer (208 KiB) holds three 64 KiB frames: at a large MTU each time it
/// fills, the host side pauses until the socket is writable again, and
/// host-to-guest transfers ran ~20 % slower for it. So while large frames
/// flow, the buffer is raised to hold this many of the largest the MTU
/// allows; while only small ones do, it is the default, which already
/// holds over a hundred: a buffer sized for 64 KiB frames holds many
/// hundreds of 1,500 bytes, queued in front of the guest's reader, who
/// then takes them in bursts its own socket buffers cannot hold (UDP
/// floods host->guest lost more for it, see [`SendBuffer`]).
const FRAMES_IN_SEND_BUFFER: usize = 16;

/// Flushes in a row with new frames, none of them large, after which the
/// send buffer goes back to the default: a bulk transfer queues large
/// frames at nearly every flush, and the small frames between them
/// (acknowledgements, another connection's exchange) must not shrink the
/// buffer under it.
const SHRINK_AFTER_FLUSHES: u32 = 256;

/// The send buffer for frames of `mtu`, or `None` if the default holds
/// enough.
fn send_buffer_for(mtu: u32, default: usize) -> Option<usize> {
    let want = FRAMES_IN_SEND_BUFFER * (4 + ethernet::HEADER_LEN + mtu as usize);
    (want > default).then_some(want)
}

/// The guest connection's send buffer, sized to the frames it carries
/// (see [`FRAMES_IN_SEND_BUFFER`]). Measured behind the benchmark's frame
/// pump at MTU 65520, interleaved, against the large buffer throughout:
/// UDP host->guest flood 0.87-0.97 Gbit/s received against 0.80-0.85, TCP
/// host->guest unchanged (11.3-12.3 Gbit/s both).
struct SendBuffer {
    /// What to ask for while large frames flow (`None`: the MTU allows no
    /// frame that the default cannot hold enough of).
    large: Option<usize>,
    /// What to ask for to get the default back: the kernel reports (and
    /// grants) twice what was asked.
    default: usize,
    /// Frames longer than this are large.
    large_frame: usize,
    /// The large buffer is set.
    is_large: bool,
    /// Flushes in a row whose new frames were all small.
    quiet: u32,
}

impl SendBuffer {
    fn new(fd: &OwnedFd, mtu: u32) -> SendBuffer {
        let default = sys::net::sndbuf(fd.as_fd()).unwrap_or(0);
        SendBuffer {
            large: send_buffer_for(mtu, default),
            default: default / 2,
            large_frame: (default / FRAMES_IN_SEND_BUFFER).saturating_sub(4),
            is_large: false,
            quiet: 0,
        }
    }

    /// Before a flush; `largest`: the longest frame queued since the
    /// last one (0: none, which says nothing either way).
    fn fit(&mut self, fd: &OwnedFd, largest: usize) {
        let Some(large) = self.large else { return };
        if largest == 0 {
            return;
        }
        if largest > self.large_frame {
            self.quiet = 0;
            if !self.is_large {
                self.is_large = true;
                Self::set(fd, large);
            }
        } else if self.is_large {
            self.quiet += 1;
            if self.quiet >= SHRINK_AFTER_FLUSHES {
                self.is_large = false;
                Self::set(fd, self.default);
            }
        }
    }

    /// Best effort: the kernel caps it at net.core.wmem_max.
    fn set(fd: &OwnedFd, size: usize) {
        let size = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
        if let Err(e) = sys::net::setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, size) {
            log::debug!("guest connection: SO_SNDBUF {size}: {e}");
        }
    }
}

/// A listening socket path, removed when dropped.
pub struct Listener {
    pub fd: OwnedFd,
    pub path: PathBuf,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Listener {
    /// Binds and listens on `path` with permissions `mode`. A stale socket
    /// file (nobody accepts on it) is replaced; a live one is an error.
    pub fn bind(path: PathBuf, mode: u32) -> Result<Listener, String> {
        if path.exists() {
            match sys::net::unix_connect(&path) {
                Ok(_) => return Err(format!("socket path {} is in use by another process", path.display())),
                Err(_) => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let fd = sys::net::unix_listen(&path, 1).map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
        let listener = Listener { fd, path };
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&listener.path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot set mode {mode:o} on {}: {e}", listener.path.display()))?;
        Ok(listener)
    }
}

/// What a read found.
pub enum ReadOutcome {
    /// Frames were delivered (maybe none); the connection is fine.
    Open,
    /// The guest closed the connection (or it failed).
    Closed,
    /// The guest broke the framing (a length out of range): the
    /// connection is to be closed, and what it sent counted as dropped.
    BadFraming,
}

/// A connected guest.
pub struct Conn {
    pub fd: OwnedFd,
    buf: Vec<u8>,
    /// `buf[start..filled]` holds the data not yet taken as frames.
    start: usize,
    filled: usize,
    sndbuf: SendBuffer,
}

impl Conn {
    /// A connection carrying frames of up to `mtu` bytes of IP.
    pub fn new(fd: OwnedFd, mtu: u32) -> Conn {
        let sndbuf = SendBuffer::new(&fd, mtu);
        Conn { fd, buf: Vec::new(), start: 0, filled: 0, sndbuf }
    }

    /// Reads what is available (up to `READS_PER_CALL` buffers or
    /// [`READ_BATCH_FRAMES`] frames, so that one busy guest cannot starve
    /// the host side) and calls `on_frame` for each complete frame, those
    /// left by the previous call first. `on_frame` returns `false` to end
    /// the call before the next frame (the host side has had a burst); what
    /// is not taken stays buffered, see [`Conn::has_frame`].
    ///
    /// A read that did not fill the buffer emptied the socket: the call
    /// ends there rather than with a read that fails with EAGAIN (one
    /// system call in every wake-up of a round trip). The socket is
    /// watched level-triggered, so what came since is reported again.
    pub fn read_frames(&mut self, mut on_frame: impl FnMut(&[u8]) -> bool) -> ReadOutcome {
        if self.buf.is_empty() {
            self.buf = vec![0; READ_BUF];
        }
        let (mut frames, mut reads, mut drained) = (0, 0, false);
        loop {
            while let Some(len) = self.next_len() {
                if !(ethernet::HEADER_LEN..=MAX_FRAME).contains(&len) {
                    log::warn!("guest sent a frame length of {len}: not this framing, closing the connection");
                    return ReadOutcome::BadFraming;
                }
                let at = self.start;
                if self.filled - at < 4 + len {
                    break;
                }
                self.start = at + 4 + len;
                frames += 1;
                if !on_frame(&self.buf[at + 4..at + 4 + len]) {
                    return ReadOutcome::Open;
                }
            }
            if drained || reads == READS_PER_CALL || frames >= READ_BATCH_FRAMES {
                return ReadOutcome::Open;
            }
            // Keep the incomplete tail at the front for the next read.
            self.buf.copy_within(self.start..self.filled, 0);
            self.filled -= self.start;
            self.start = 0;
            match sys::read(self.fd.as_fd(), &mut self.buf[self.filled..]) {
                Ok(0) => return ReadOutcome::Closed,
                Ok(n) => {
                    drained = self.filled + n < self.buf.len();
                    self.filled += n;
                    reads += 1;
                }
                Err(e) if would_block(&e) => return ReadOutcome::Open,
                Err(e) => {
                    log::info!("guest connection error: {e}");
                    return ReadOutcome::Closed;
                }
            }
        }
    }

    /// The length field of the next buffered frame, if its prefix is there.
    fn next_len(&self) -> Option<usize> {
        let prefix = self.buf[self.start..self.filled].first_chunk::<4>()?;
        Some(u32::from_be_bytes(*prefix) as usize)
    }

    /// Whether a whole frame is buffered, left by a call that ended early:
    /// the socket may stay quiet, so the caller must see to it that
    /// [`Conn::read_frames`] is called again.
    pub fn has_frame(&self) -> bool {
        self.next_len().is_some_and(|len| self.filled - self.start >= 4 + len)
    }

    /// Writes queued frames; keeps a partial write's position.
    pub fn flush(&mut self, tx: &mut TxQueue) -> io::Result<Flush> {
        self.sndbuf.fit(&self.fd, tx.take_largest());
        while !tx.is_empty() {
            match sys::send(self.fd.as_fd(), tx.stream_bytes(), libc::MSG_DONTWAIT) {
                Ok(n) => tx.consume_stream(n),
                Err(e) if would_block(&e) => return Ok(Flush::Blocked),
                Err(e) => return Err(e),
            }
        }
        Ok(Flush::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    /// Queues frames of `lens` bytes and flushes them to `conn`, then
    /// drains them at `peer` (so that no flush finds the buffer full).
    fn flush_frames(conn: &mut Conn, peer: &UnixStream, lens: &[usize]) {
        use std::io::Read;
        let mut tx = TxQueue::new(1 << 20);
        for &len in lens {
            tx.reserve(len).unwrap()[..len].fill(0xab);
            tx.commit(len);
        }
        assert!(matches!(conn.flush(&mut tx).unwrap(), Flush::Done));
        let want: usize = lens.iter().map(|l| 4 + l).sum();
        let mut reader: &UnixStream = peer;
        reader.read_exact(&mut vec![0; want]).unwrap();
    }

    #[test]
    fn the_send_buffer_grows_while_large_frames_flow_and_shrinks_back_after() {
        assert_eq!(send_buffer_for(65520, 212_992), Some(16 * (4 + 14 + 65520)));
        assert_eq!(send_buffer_for(1500, 212_992), None);
        // On a real socket, as far as wmem_max lets it (the kernel doubles
        // what it grants).
        let wmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/wmem_max").unwrap().trim().parse().unwrap();
        let (ours, peer) = UnixStream::pair().unwrap();
        let default = sys::net::sndbuf(ours.as_fd()).unwrap();
        let large = 2 * (16 * (4 + 14 + 65520)).min(wmem_max).max(default / 2);
        let mut conn = Conn::new(OwnedFd::from(ours), 65520);
        let sndbuf = |c: &Conn| sys::net::sndbuf(c.fd.as_fd()).unwrap();
        // Small frames only: the default stays.
        flush_frames(&mut conn, &peer, &[1514, 60, 1514]);
        assert_eq!(sndbuf(&conn), default);
        // One large frame among small ones: raised for it.
        flush_frames(&mut conn, &peer, &[60, 65534, 60]);
        assert_eq!(sndbuf(&conn), large);
        // Flushes with nothing new say nothing either way.
        for _ in 0..2 * SHRINK_AFTER_FLUSHES {
            assert!(matches!(conn.flush(&mut TxQueue::new(1 << 20)).unwrap(), Flush::Done));
        }
        assert_eq!(sndbuf(&conn), large);
        // Small frames for a while: still large (a bulk transfer's gaps)...
        for _ in 1..SHRINK_AFTER_FLUSHES {
            flush_frames(&mut conn, &peer, &[1514]);
        }
        assert_eq!(sndbuf(&conn), large);
        // ... a large one starts the count again...
        flush_frames(&mut conn, &peer, &[65534]);
        for _ in 1..SHRINK_AFTER_FLUSHES {
            flush_frames(&mut conn, &peer, &[1514]);
        }
        assert_eq!(sndbuf(&conn), large);
        // ... and only a full run of small-frame flushes brings the default back.
        flush_frames(&mut conn, &peer, &[1514]);
        assert_eq!(sndbuf(&conn), default);
        // At MTU 1500 no frame is large: the default throughout.
        let (ours, peer) = UnixStream::pair().unwrap();
        let mut conn = Conn::new(OwnedFd::from(ours), 1500);
        flush_frames(&mut conn, &peer, &[1514; 64]);
        assert_eq!(sndbuf(&conn), default);
    }

    #[test]
    fn a_call_ended_early_leaves_the_rest_buffered_for_the_next_one_in_order() {
        use std::io::Write;
        let (mut guest, ours) = UnixStream::pair().unwrap();
        let mut all = Vec::new();
        for i in 0..10u8 {
            all.extend_from_slice(&60u32.to_be_bytes());
            all.extend_from_slice(&[i; 60]);
        }
        guest.write_all(&all).unwrap();
        ours.set_nonblocking(true).unwrap();
        let mut conn = Conn::new(OwnedFd::from(ours), 1500);
        let mut seen = Vec::new();
        assert!(matches!(
            conn.read_frames(|f| {
                seen.push(f[0]);
                seen.len() < 3
            }),
            ReadOutcome::Open
        ));
        assert_eq!(seen, [0, 1, 2]);
        assert!(conn.has_frame(), "seven whole frames left in the buffer");
        // The socket is empty now: the rest comes from the buffer.
        assert!(matches!(
            conn.read_frames(|f| {
                seen.push(f[0]);
                true
            }),
            ReadOutcome::Open
        ));
        assert_eq!(seen, (0..10).collect::<Vec<u8>>());
        assert!(!conn.has_frame());
        // A partial frame is not a frame.
        guest.write_all(&[0, 0, 0, 60, 1, 2]).unwrap();
        assert!(matches!(conn.read_frames(|_| panic!("no whole frame")), ReadOutcome::Open));
        assert!(!conn.has_frame());
    }

    #[test]
    fn a_read_that_empties_the_socket_ends_the_call_and_the_next_call_reads_on() {
        use std::io::Write;
        let (mut guest, ours) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let mut conn = Conn::new(OwnedFd::from(ours), 1500);
        let frame = |i: u8| [&60u32.to_be_bytes()[..], &[i; 60]].concat();
        let mut seen = Vec::new();
        let read = |conn: &mut Conn, seen: &mut Vec<u8>| {
            conn.read_frames(|f| {
                seen.push(f[0]);
                true
            })
        };
        guest.write_all(&frame(1)).unwrap();
        assert!(matches!(read(&mut conn, &mut seen), ReadOutcome::Open));
        assert_eq!(seen, [1]);
        // The close comes after a read that emptied the socket: that call
        // ends without another read, and the next one finds the close.
        guest.write_all(&frame(2)).unwrap();
        drop(guest);
        assert!(matches!(read(&mut conn, &mut seen), ReadOutcome::Open));
        assert_eq!(seen, [1, 2]);
        assert!(matches!(read(&mut conn, &mut seen), ReadOutcome::Closed));
        assert_eq!(seen, [1, 2]);
    }

    #[test]
    fn a_call_reads_a_bounded_batch_of_small_frames_and_the_next_call_the_rest() {
        use std::io::Write;
        const FRAME: usize = 1500;
        let (guest, ours) = UnixStream::pair().unwrap();
        // Queue what the socket takes of 1,000 frames written at once (a
        // 1 MiB send buffer asked; wmem_max may grant less, still more than
        // one read holds).
        let _ = sys::net::setsockopt_int(guest.as_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, 1 << 20);
        guest.set_nonblocking(true).unwrap();
        let mut all = Vec::new();
        for _ in 0..1000 {
            all.extend_from_slice(&(FRAME as u32).to_be_bytes());
            all.extend_from_slice(&[0xab; FRAME]);
        }
        let mut written = 0;
        while written < all.len() {
            match (&guest).write(&all[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("write: {e}"),
            }
        }
        // A frame cut at the end stays as a tail: only whole ones count.
        let queued = written / (4 + FRAME);
        let per_read = READ_BUF / (4 + FRAME);
        assert!(queued > per_read + 10, "only {queued} frames fit in the socket");
        ours.set_nonblocking(true).unwrap();
        let mut conn = Conn::new(OwnedFd::from(ours), FRAME as u32);
        let mut first = 0;
        assert!(matches!(conn.read_frames(|_| {
            first += 1;
            true
        }), ReadOutcome::Open));
        assert!(
            (READ_BATCH_FRAMES..=per_read).contains(&first),
            "{first} frames in one call ({queued} queued, {per_read} per read)"
        );
        let mut rest = 0;
        while first + rest < queued {
            let before = rest;
            assert!(matches!(conn.read_frames(|_| {
                rest += 1;
                true
            }), ReadOutcome::Open));
            assert!(rest > before, "a call found nothing with {} frames left", queued - first - before);
        }
        assert_eq!(first + rest, queued);
    }
}
