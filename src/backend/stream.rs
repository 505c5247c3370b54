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
//! partial write; the socket's send buffer is raised once, so that a
//! reader that takes a little at a time does not keep us waking to refill
//! it (see [`SEND_BUFFER`]).

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

/// The send buffer asked for the guest connection (the kernel grants
/// twice this, or twice `net.core.wmem_max` if that is lower). QEMU reads
/// the socket 69,632 bytes at a time, once per turn of its main loop;
/// behind a reader like that (the benchmark's frame pump), host->guest TCP
/// at MTU 1500 made 5.26 Gbit/s with the default buffer (208 KiB, three
/// of the reader's turns: we kept waking to refill it), 0.87x passt, and
/// 7.96 with this one, 1.31x passt, while a UDP flood to the guest lost
/// no more for it (2.94 and 3.12 Gbit/s received). The buffer only fills
/// when the reader lags, and then it holds at most this much.
const SEND_BUFFER: usize = 2 << 20;

/// Raises the connection's send buffer to [`SEND_BUFFER`] unless it is
/// larger already (best effort: a lower `wmem_max` gives less).
fn raise_send_buffer(fd: &OwnedFd) {
    if sys::net::sndbuf(fd.as_fd()).unwrap_or(0) >= 2 * SEND_BUFFER {
        return;
    }
    if let Err(e) = sys::net::setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, SEND_BUFFER as libc::c_int) {
        log::debug!("guest connection: SO_SNDBUF {SEND_BUFFER}: {e}");
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
}

impl Conn {
    /// A connection to the guest.
    pub fn new(fd: OwnedFd) -> Conn {
        raise_send_buffer(&fd);
        Conn { fd, buf: Vec::new(), start: 0, filled: 0 }
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
    fn the_send_buffer_is_raised_at_once_as_far_as_wmem_max_lets_it_and_stays() {
        let wmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/wmem_max").unwrap().trim().parse().unwrap();
        let sndbuf = |fd: &OwnedFd| sys::net::sndbuf(fd.as_fd()).unwrap();
        let (ours, peer) = UnixStream::pair().unwrap();
        let ours = OwnedFd::from(ours);
        let default = sndbuf(&ours);
        // The kernel grants twice what is asked, up to twice wmem_max.
        let raised = (2 * SEND_BUFFER.min(wmem_max)).max(default);
        let mut conn = Conn::new(ours);
        assert_eq!(sndbuf(&conn.fd), raised);
        flush_frames(&mut conn, &peer, &[1514, 60, 65534, 1514]);
        assert_eq!(sndbuf(&conn.fd), raised);
        // A buffer larger already (the embedder's choice) is left alone.
        if wmem_max > SEND_BUFFER {
            let (ours, _peer) = UnixStream::pair().unwrap();
            let ours = OwnedFd::from(ours);
            sys::net::setsockopt_int(ours.as_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, wmem_max as libc::c_int).unwrap();
            let before = sndbuf(&ours);
            assert!(before > 2 * SEND_BUFFER);
            let conn = Conn::new(ours);
            assert_eq!(sndbuf(&conn.fd), before);
        }
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
        let mut conn = Conn::new(OwnedFd::from(ours));
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
        let mut conn = Conn::new(OwnedFd::from(ours));
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
        let mut conn = Conn::new(OwnedFd::from(ours));
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
