//! The host->guest frame queue, and the builder that completes frames.
//!
//! Producers (services, flows) ask for room for one frame with
//! [`TxQueue::reserve`], write it in place (payload first, straight from a
//! socket if they like, then headers with [`finish_ip`]), and
//! [`TxQueue::commit`] its length. Frames are stored back to back, each
//! preceded by 4 bytes where the QEMU stream framing's length goes, so the
//! stream backend sends many frames with one `write`; the tap and
//! in-process backends take them one by one.
//!
//! The queue is lossless: what the backend cannot take yet stays queued,
//! and producers look at [`TxQueue::room`] before reading host sockets, so
//! that data the guest has not received is never read from the kernel.
//! Memory follows use: the buffer grows up to its limit and no further.
//! Its first growth reserves the whole limit (and the frame list room for
//! as many of the smallest frames), address space only: pages are touched
//! as the high-water mark rises, and a busy queue never reallocates.

use crate::wire::{checksum, ethernet, ipv4, ipv6};
use std::net::IpAddr;

/// Room before each frame for the stream framing's length prefix.
pub const PREFIX: usize = 4;
/// Largest frame: Ethernet header plus the largest MTU (65520) plus slack.
pub const MAX_FRAME: usize = ethernet::HEADER_LEN + 65535;
/// Room the smallest frame we build (an ARP reply) takes in the queue:
/// sizes the frame list for a full buffer.
const MIN_STRIDE: usize = PREFIX + ethernet::HEADER_LEN + 28;

/// Ethernet addressing of a frame to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L2 {
    pub src: [u8; 6],
    pub dst: [u8; 6],
}

/// Where the L4 header starts in a frame for this IP version.
pub const fn l4_offset(v6: bool) -> usize {
    ethernet::HEADER_LEN + if v6 { ipv6::HEADER_LEN } else { ipv4::HEADER_LEN }
}

/// Offset of the checksum inside an L4 header, and whether it covers a
/// pseudo-header.
fn l4_checksum_field(proto: u8, v6: bool) -> Option<(usize, bool)> {
    match proto {
        ipv4::PROTO_TCP => Some((16, true)),
        ipv4::PROTO_UDP => Some((6, true)),
        ipv4::PROTO_ICMP if !v6 => Some((2, false)),
        ipv6::NEXT_ICMPV6 if v6 => Some((2, true)),
        _ => None,
    }
}

/// Completes a frame whose L4 part (`l4_len` bytes: header and payload) is
/// already at `buf[l4_offset(v6)..]`: writes the Ethernet and IP headers and
/// the L4 checksum. Returns the frame length.
///
/// # Panics
/// If `src` and `dst` are of different families or `buf` is shorter than
/// the frame: both are programming errors of the caller, which sized `buf`
/// through [`TxQueue::reserve`].
pub fn finish_ip(buf: &mut [u8], l2: L2, src: IpAddr, dst: IpAddr, proto: u8, l4_len: usize) -> usize {
    finish_ip_with(buf, l2, src, dst, proto, l4_len, L4Checksum::Full)
}

/// What [`finish_ip_with`] writes in the L4 checksum field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4Checksum {
    /// The checksum, computed over the whole segment.
    Full,
    /// For a TCP or UDP segment, the pseudo-header sum only: the receiver
    /// completes it (what a virtio-net header with `NEEDS_CSUM` announces;
    /// see [`Offload`]). Only for a queue whose backend offloads checksums.
    Partial,
    /// For UDP over IPv4, zero: no checksum (RFC 768 allows it there, and
    /// nowhere else; other protocols get [`L4Checksum::Full`]).
    Omitted,
}

impl L4Checksum {
    /// [`L4Checksum::Partial`] when the backend offloads checksums
    /// ([`TxQueue::offload`]), [`L4Checksum::Full`] otherwise.
    pub fn offloaded_if(offload: bool) -> Self {
        if offload {
            L4Checksum::Partial
        } else {
            L4Checksum::Full
        }
    }
}

/// [`finish_ip`], with the L4 checksum as `csum` says.
pub fn finish_ip_with(buf: &mut [u8], l2: L2, src: IpAddr, dst: IpAddr, proto: u8, l4_len: usize, csum: L4Checksum) -> usize {
    let v6 = src.is_ipv6();
    let off = l4_offset(v6);
    let l4 = &mut buf[off..off + l4_len];
    if let Some((at, pseudo)) = l4_checksum_field(proto, v6) {
        l4[at..at + 2].copy_from_slice(&[0, 0]);
        let acc = match (src, dst, pseudo) {
            (_, _, false) => 0,
            (IpAddr::V4(s), IpAddr::V4(d), true) => checksum::pseudo_v4(s, d, proto, l4_len),
            (IpAddr::V6(s), IpAddr::V6(d), true) => checksum::pseudo_v6(s, d, proto, l4_len),
            _ => panic!("finish_ip: mixed address families"),
        };
        let udp4 = proto == ipv4::PROTO_UDP && !v6;
        let c = match csum {
            L4Checksum::Omitted if udp4 => 0,
            L4Checksum::Partial if pseudo && proto != ipv6::NEXT_ICMPV6 => !checksum::finish(acc),
            _ => match checksum::finish(checksum::sum(acc, l4)) {
                // A computed UDP checksum of zero is sent as all ones
                // (RFC 768): zero means none.
                0 if proto == ipv4::PROTO_UDP => 0xffff,
                c => c,
            },
        };
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            ethernet::emit(buf, l2.dst, l2.src, ethernet::EtherType::Ipv4);
            ipv4::emit(&mut buf[ethernet::HEADER_LEN..], s, d, proto, l4_len, ipv4::DEFAULT_TTL);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            ethernet::emit(buf, l2.dst, l2.src, ethernet::EtherType::Ipv6);
            let hop = if proto == ipv6::NEXT_ICMPV6 { 255 } else { ipv6::DEFAULT_HOP_LIMIT };
            ipv6::emit(&mut buf[ethernet::HEADER_LEN..], s, d, proto, l4_len, hop);
        }
        _ => panic!("finish_ip: mixed address families"),
    }
    off + l4_len
}

/// What the kernel is asked to finish in a frame, for a backend with
/// offloads (a tap with virtio-net headers); other backends never see
/// anything but the default (a complete frame).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offload {
    /// The L4 checksum field holds only the pseudo-header sum
    /// ([`finish_ip_with`]).
    pub csum_partial: bool,
    /// A TCP or UDP frame carrying more than one segment (datagram): the
    /// payload size of each but the last (0: one segment).
    pub gso_size: u16,
}

/// A FIFO of frames waiting for the backend (see the module comment).
pub struct TxQueue {
    /// `[prefix][frame][prefix][frame]...`; its length is the high-water
    /// mark, so reuse does not zero-fill again.
    buf: Vec<u8>,
    /// Bytes in use (committed frames).
    used: usize,
    /// Start (of the prefix) and length (of the frame) of each frame, and
    /// what is left for the kernel to do; those before `first` were sent.
    /// Like `buf`, only appended to until drained, then cleared.
    frames: Vec<(usize, usize, Offload)>,
    first: usize,
    /// The backend takes [`Offload`] frames (see [`TxQueue::set_offload`]).
    offload: bool,
    /// ... including UDP frames of several datagrams.
    udp_gso: bool,
    /// Bytes of the first frame (prefix included) already sent by a stream
    /// backend's partial write.
    head_sent: usize,
    /// Upper bound on `buf`'s size.
    limit: usize,
    /// Space handed out by `reserve`, not yet committed.
    reserved: usize,
    /// Frame length and slots handed out by `reserve_run`.
    run_reserved: (usize, usize),
    /// Frames committed since the last [`TxQueue::take_new`] (for capture).
    unseen: usize,
    /// Bytes of the queued frames, prefixes excluded (so that the engine
    /// counts what a flush really delivered).
    queued_bytes: usize,
}

impl TxQueue {
    /// A queue that grows to at most `limit` bytes.
    pub fn new(limit: usize) -> TxQueue {
        TxQueue {
            buf: Vec::new(),
            used: 0,
            frames: Vec::new(),
            first: 0,
            head_sent: 0,
            limit: limit.max(PREFIX + MAX_FRAME),
            reserved: 0,
            run_reserved: (0, 0),
            unseen: 0,
            queued_bytes: 0,
            offload: false,
            udp_gso: false,
        }
    }

    /// Whether UDP frames may carry several datagrams (with
    /// [`Offload::gso_size`]; only together with [`Self::set_offload`]).
    pub fn set_udp_gso(&mut self, on: bool) {
        self.udp_gso = on;
    }

    pub fn udp_gso(&self) -> bool {
        self.offload && self.udp_gso
    }

    /// Grows the most recently committed frame by `extra` bytes, if the
    /// queue has room and nothing was queued after it, and returns it
    /// whole: a producer appends to it and rewrites its headers, then sets
    /// its [`Offload`] with [`Self::set_last_offload`].
    pub fn grow_last(&mut self, extra: usize) -> Option<&mut [u8]> {
        let &(start, len, _) = self.queued().last()?;
        let new_len = len + extra;
        if start + PREFIX + len != self.used || new_len > MAX_FRAME || self.used + extra > self.limit {
            return None;
        }
        self.extend_buf(self.used + extra);
        self.used += extra;
        self.queued_bytes += extra;
        if let Some(f) = self.queued_mut().last_mut() {
            f.1 = new_len;
        }
        self.buf[start..start + PREFIX].copy_from_slice(&(new_len as u32).to_be_bytes());
        Some(&mut self.buf[start + PREFIX..start + PREFIX + new_len])
    }

    /// Sets the offload work of the most recently committed frame.
    pub fn set_last_offload(&mut self, offload: Offload) {
        debug_assert!(self.offload || offload == Offload::default());
        if let Some(f) = self.queued_mut().last_mut() {
            f.2 = offload;
        }
    }

    /// Whether producers may commit frames with [`Offload`] work (set by
    /// the engine for a backend that passes it on to the kernel).
    pub fn set_offload(&mut self, on: bool) {
        self.offload = on;
    }

    pub fn offload(&self) -> bool {
        self.offload
    }

    /// Bytes of frame data that can still be queued now.
    pub fn room(&self) -> usize {
        self.limit.saturating_sub(self.used + PREFIX)
    }

    pub fn is_empty(&self) -> bool {
        self.queued().is_empty()
    }

    pub fn len(&self) -> usize {
        self.queued().len()
    }

    /// The frames not yet sent.
    fn queued(&self) -> &[(usize, usize, Offload)] {
        &self.frames[self.first..]
    }

    fn queued_mut(&mut self) -> &mut [(usize, usize, Offload)] {
        &mut self.frames[self.first..]
    }

    /// Makes `buf` at least `end` bytes long (see the module comment).
    fn extend_buf(&mut self, end: usize) {
        if self.buf.len() >= end {
            return;
        }
        if self.buf.capacity() < self.limit {
            self.buf.reserve_exact(self.limit - self.buf.len());
            self.frames.reserve_exact((self.limit / MIN_STRIDE).saturating_sub(self.frames.len()));
        }
        self.buf.resize(end, 0);
    }

    /// Bytes of the queued frames (prefixes excluded; a frame partly
    /// written by the stream backend counts whole until it is done).
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Space for one frame of at most `max_len` bytes, or `None` when the
    /// queue is too full (the caller counts a drop or waits).
    pub fn reserve(&mut self, max_len: usize) -> Option<&mut [u8]> {
        if max_len > MAX_FRAME || self.used + PREFIX + max_len > self.limit {
            return None;
        }
        let end = self.used + PREFIX + max_len;
        self.extend_buf(end);
        self.reserved = max_len;
        Some(&mut self.buf[self.used + PREFIX..end])
    }

    /// Space for up to `count` frames of `frame_len` bytes each, laid out
    /// as they will be queued: the returned slice holds `n` slots of
    /// [`PREFIX`] + `frame_len` bytes, slot `i` being
    /// `[i * stride .. (i + 1) * stride]` with its frame at `PREFIX` into
    /// it. `n` (returned too) is what the queue has room for, at least 1.
    /// Filled slots are queued with [`Self::commit_run`]; this is for
    /// producers that fill several frames with one system call.
    pub fn reserve_run(&mut self, frame_len: usize, count: usize) -> Option<(&mut [u8], usize)> {
        let stride = PREFIX + frame_len;
        if frame_len > MAX_FRAME || count == 0 {
            return None;
        }
        let n = (self.limit.saturating_sub(self.used) / stride).min(count);
        if n == 0 {
            return None;
        }
        let end = self.used + n * stride;
        self.extend_buf(end);
        self.reserved = 0;
        self.run_reserved = (frame_len, n);
        Some((&mut self.buf[self.used..end], n))
    }

    /// Queues the first `full` slots of the last [`Self::reserve_run`]
    /// (each a frame of exactly its `frame_len` bytes), then, if `last_len`
    /// is not 0, the next slot holding a frame of `last_len` bytes.
    pub fn commit_run(&mut self, full: usize, last_len: usize) {
        let (frame_len, n) = std::mem::take(&mut self.run_reserved);
        debug_assert!(full + usize::from(last_len > 0) <= n && last_len <= frame_len);
        let full = full.min(n);
        let lens = std::iter::repeat(frame_len).take(full);
        let last = (last_len > 0 && full < n).then_some(last_len.min(frame_len));
        for len in lens.chain(last) {
            self.push_frame(len, Offload::default());
        }
    }

    /// Queues the frame written into the last reservation (`len` bytes).
    pub fn commit(&mut self, len: usize) {
        self.commit_with(len, Offload::default());
    }

    /// [`Self::commit`] with work left for the kernel (only when
    /// [`Self::offload`] is on).
    pub fn commit_with(&mut self, len: usize, offload: Offload) {
        debug_assert!(self.offload || offload == Offload::default());
        debug_assert!(len <= self.reserved);
        let len = len.min(self.reserved);
        self.reserved = 0;
        if len == 0 {
            return;
        }
        self.push_frame(len, offload);
    }

    /// Queues the `len` bytes written at `PREFIX` past the end of the queue
    /// as a frame: its length prefix, bookkeeping.
    fn push_frame(&mut self, len: usize, offload: Offload) {
        let start = self.used;
        self.buf[start..start + PREFIX].copy_from_slice(&(len as u32).to_be_bytes());
        self.frames.push((start, len, offload));
        self.used += PREFIX + len;
        self.unseen += 1;
        self.queued_bytes += len;
    }

    /// The queued frames, oldest first (without prefixes), for the tap
    /// and in-process backends. A frame partly sent by the stream backend is
    /// never mixed with these (one backend per instance).
    pub fn frames(&self) -> impl Iterator<Item = &[u8]> {
        self.queued().iter().map(|&(s, l, _)| &self.buf[s + PREFIX..s + PREFIX + l])
    }

    /// The queued frames with their offload work, for the tap backend.
    pub fn frames_offload(&self) -> impl Iterator<Item = (&[u8], Offload)> {
        self.queued().iter().map(|&(s, l, o)| (&self.buf[s + PREFIX..s + PREFIX + l], o))
    }

    /// The frames committed since the last call (call it before frames
    /// are sent, or some will have left unseen).
    pub fn take_new(&mut self) -> impl Iterator<Item = &[u8]> {
        let skip = self.len().saturating_sub(std::mem::take(&mut self.unseen));
        self.frames().skip(skip)
    }

    /// Drops the `n` oldest frames (they were sent).
    pub fn pop_frames(&mut self, n: usize) {
        let n = n.min(self.len());
        let sent: usize = self.queued()[..n].iter().map(|&(_, len, _)| len).sum();
        self.queued_bytes -= sent;
        self.first += n;
        self.head_sent = 0;
        self.compact();
    }

    /// Everything not yet sent, prefixes included, as one byte run for the
    /// stream backend.
    pub fn stream_bytes(&self) -> &[u8] {
        match self.queued().first() {
            Some(&(s, _, _)) => &self.buf[s + self.head_sent..self.used],
            None => &[],
        }
    }

    /// Marks `n` bytes of [`Self::stream_bytes`] as sent.
    pub fn consume_stream(&mut self, mut n: usize) {
        while let Some(&(_, len, _)) = self.queued().first() {
            let left = PREFIX + len - self.head_sent;
            if n < left {
                self.head_sent += n;
                return;
            }
            n -= left;
            self.head_sent = 0;
            self.first += 1;
            self.queued_bytes -= len;
        }
        self.compact();
    }

    /// Forgets everything queued (the guest went away).
    pub fn clear(&mut self) {
        self.frames.clear();
        self.first = 0;
        self.unseen = 0;
        self.head_sent = 0;
        self.used = 0;
        self.queued_bytes = 0;
    }

    /// Releases memory beyond `keep` bytes when empty (idle instances stay
    /// small).
    pub fn shrink(&mut self, keep: usize) {
        if self.is_empty() && self.buf.len() > keep {
            self.buf.truncate(keep);
            self.buf.shrink_to(keep);
            self.frames.shrink_to(keep / MIN_STRIDE);
        }
    }

    /// When nothing is queued, start again at the front of the buffer.
    /// (Frames are only ever appended, so a non-empty queue keeps its
    /// layout until drained; the limit bounds how far it reaches.)
    fn compact(&mut self) {
        if self.is_empty() {
            self.frames.clear();
            self.first = 0;
            self.used = 0;
            self.head_sent = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn frames_queue_and_stream_partially() {
        let mut q = TxQueue::new(PREFIX + MAX_FRAME);
        for i in 0..3u8 {
            let b = q.reserve(10).unwrap();
            b[..3].copy_from_slice(&[i; 3]);
            q.commit(3);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.frames().collect::<Vec<_>>(), vec![&[0u8; 3][..], &[1; 3], &[2; 3]]);
        assert_eq!(q.stream_bytes(), &[0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 3, 1, 1, 1, 0, 0, 0, 3, 2, 2, 2]);
        q.consume_stream(9);
        assert_eq!(q.stream_bytes(), &[0, 3, 1, 1, 1, 0, 0, 0, 3, 2, 2, 2]);
        assert_eq!(q.len(), 2);
        q.consume_stream(12);
        assert!(q.is_empty());
        assert_eq!(q.room(), PREFIX + MAX_FRAME - PREFIX);
    }

    #[test]
    fn a_run_of_frames_is_queued_as_separate_frames() {
        const F: usize = 30_000;
        let mut q = TxQueue::new(0);
        q.reserve(2).unwrap()[..2].copy_from_slice(&[9, 9]);
        q.commit(2);
        // Room for 2 slots of F after the first frame, not the 4 asked.
        let (run, n) = q.reserve_run(F, 4).unwrap();
        assert_eq!((run.len(), n), (2 * (PREFIX + F), 2));
        for (i, slot) in run.chunks_mut(PREFIX + F).enumerate() {
            slot[PREFIX..].fill(i as u8 + 1);
        }
        q.commit_run(1, 3);
        assert_eq!(q.frames().collect::<Vec<_>>(), vec![&[9u8, 9][..], &[1; F], &[2; 3]]);
        assert_eq!(q.queued_bytes(), F + 5);
        assert_eq!(q.stream_bytes()[6..10], (F as u32).to_be_bytes());
        // Room for one more slot; nothing filled: nothing queued.
        assert_eq!(q.reserve_run(F, 4).map(|(_, n)| n), Some(1));
        q.commit_run(0, 0);
        assert_eq!(q.len(), 3);
        q.reserve(F).unwrap();
        q.commit(F);
        assert!(q.reserve_run(F, 1).is_none());
    }

    #[test]
    fn a_grown_frame_is_counted_whole() {
        let mut q = TxQueue::new(0);
        q.reserve(10).unwrap()[..10].fill(1);
        q.commit(10);
        q.grow_last(5).unwrap()[10..].fill(2);
        assert_eq!(q.frames().collect::<Vec<_>>(), vec![&[1u8, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2][..]]);
        assert_eq!(q.queued_bytes(), 15);
        // Sent whole: nothing left (it used to underflow here).
        q.pop_frames(1);
        assert_eq!(q.queued_bytes(), 0);
        q.reserve(3).unwrap();
        q.commit(3);
        q.grow_last(4).unwrap();
        q.consume_stream(PREFIX + 7);
        assert_eq!(q.queued_bytes(), 0);
    }

    #[test]
    fn a_busy_queue_keeps_its_memory() {
        let mut q = TxQueue::new(1 << 20);
        let mut where_ = None;
        for round in 0..50usize {
            // Frames of every size, popped in parts, with a partial
            // stream write between: never drained until the round ends.
            for i in 0..(200 + round) {
                let len = 42 + (i * 97 + round) % 6000;
                if q.reserve(len).is_none() {
                    break;
                }
                q.commit(len);
                if i % 7 == 0 {
                    q.pop_frames(2);
                }
            }
            q.consume_stream(5);
            q.pop_frames(usize::MAX);
            assert!(q.is_empty() && q.queued_bytes() == 0 && q.first == 0 && q.frames.is_empty());
            let now = (q.buf.as_ptr(), q.buf.capacity(), q.frames.as_ptr(), q.frames.capacity());
            assert_eq!(*where_.get_or_insert(now), now, "round {round}: the queue reallocated");
        }
    }

    #[test]
    fn limit_is_respected() {
        let mut q = TxQueue::new(0);
        assert!(q.reserve(MAX_FRAME).is_some());
        q.commit(MAX_FRAME);
        assert!(q.reserve(1).is_none());
        q.pop_frames(1);
        assert!(q.reserve(1).is_some());
    }

    #[test]
    fn finish_builds_a_valid_udp_frame() {
        let mut buf = vec![0u8; 100];
        let off = l4_offset(false);
        crate::wire::udp::emit(&mut buf[off..], 53, 40000, 4);
        buf[off + 8..off + 12].copy_from_slice(b"abcd");
        let l2 = L2 { src: [2; 6], dst: [4; 6] };
        let len = finish_ip(&mut buf, l2, Ipv4Addr::new(10, 0, 2, 2).into(), Ipv4Addr::new(10, 0, 2, 15).into(), 17, 12);
        assert_eq!(len, 14 + 20 + 12);
        let ip = ipv4::Packet::new_checked(&buf[14..len]).unwrap();
        let acc = checksum::pseudo_v4(ip.src(), ip.dst(), 17, 12);
        assert_eq!(checksum::finish(checksum::sum(acc, ip.payload())), 0);
    }

    #[test]
    fn only_udp_over_ipv4_goes_without_a_checksum() {
        let l2 = L2 { src: [2; 6], dst: [4; 6] };
        let (s4, d4): (IpAddr, IpAddr) = (Ipv4Addr::new(10, 0, 2, 2).into(), Ipv4Addr::new(10, 0, 2, 15).into());
        let (s6, d6): (IpAddr, IpAddr) = ("fd00::2".parse().unwrap(), "fd00::f".parse().unwrap());
        for (src, dst, proto) in [(s4, d4, 17), (s6, d6, 17), (s4, d4, 6), (s6, d6, 6)] {
            let mut buf = vec![0u8; 120];
            let off = l4_offset(src.is_ipv6());
            // A non-zero payload, so that a missing sum shows.
            buf[off..off + 32].fill(0x5a);
            if proto == 17 {
                crate::wire::udp::emit(&mut buf[off..], 53, 40000, 24);
            }
            let len = finish_ip_with(&mut buf, l2, src, dst, proto, 32, L4Checksum::Omitted);
            let at = if proto == 17 { off + 6 } else { off + 16 };
            let field = [buf[at], buf[at + 1]];
            if proto == 17 && src.is_ipv4() {
                assert_eq!(field, [0, 0], "UDP over IPv4");
                continue;
            }
            let acc = match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => checksum::pseudo_v4(s, d, proto, 32),
                (IpAddr::V6(s), IpAddr::V6(d)) => checksum::pseudo_v6(s, d, proto, 32),
                _ => unreachable!(),
            };
            assert_eq!(checksum::finish(checksum::sum(acc, &buf[off..len])), 0, "protocol {proto} from {src}");
        }
    }
}
