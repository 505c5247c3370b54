//! UDP sockets: batched datagram I/O (`recvmmsg`/`sendmmsg`, never more
//! than [`MAX_MSGS`] messages a call), the socket error queue
//! (`IP_RECVERR`/`IPV6_RECVERR` read with `MSG_ERRQUEUE`), and the socket
//! options UDP flows and forwarded ports use.
//!
//! The header arrays of a batch ([`Batch`]) are allocated once and reused:
//! a call only fills in pointers to the caller's buffers, valid for the
//! duration of that call.

use super::{cvt, net};
use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// The most messages one `recvmmsg`/`sendmmsg` call carries (the kernel's
/// `UIO_MAXIOV`, which `sendmmsg` caps `vlen` at).
pub const MAX_MSGS: usize = 1024;

/// `SO_ZEROCOPY` from asm-generic/socket.h (x86, arm, riscv...); the libc
/// crate does not export it.
const SO_ZEROCOPY: libc::c_int = 60;

/// `sock_extended_err.ee_origin`: locally generated (e.g. EMSGSIZE).
pub const ORIGIN_LOCAL: u8 = libc::SO_EE_ORIGIN_LOCAL;
/// An ICMPv4 message; `icmp_type`/`icmp_code` are its type and code.
pub const ORIGIN_ICMP: u8 = libc::SO_EE_ORIGIN_ICMP;
/// An ICMPv6 message.
pub const ORIGIN_ICMP6: u8 = libc::SO_EE_ORIGIN_ICMP6;
/// A `MSG_ZEROCOPY` completion notification (not an error).
pub const ORIGIN_ZEROCOPY: u8 = 5;

/// A UDP socket of the given family (non-blocking, close-on-exec).
pub fn socket(v6: bool) -> io::Result<OwnedFd> {
    let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    net::socket(domain, libc::SOCK_DGRAM, libc::IPPROTO_UDP)
}

/// Queues ICMP errors (and local errors) for this socket on its error
/// queue, with the offending destination, instead of only reporting
/// ECONNREFUSED on connected sockets. `v4_too` also sets `IP_RECVERR` on an
/// IPv6 socket, for errors about IPv4-mapped destinations.
pub fn set_recverr(fd: BorrowedFd<'_>, v6: bool, v4_too: bool) -> io::Result<()> {
    if v6 {
        net::setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVERR, 1)?;
        if !v4_too {
            return Ok(());
        }
    }
    net::setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_RECVERR, 1)
}

/// `IPV6_V6ONLY`: whether an IPv6 socket refuses IPv4-mapped traffic.
pub fn set_v6only(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    net::setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, on.into())
}

/// `SO_REUSEADDR`. For UDP this lets two sockets that both set it share a
/// port, so flows do not set it: a host application's port must make our
/// bind fail, not be shared.
pub fn set_reuseaddr(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    net::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, on.into())
}

/// `IP_FREEBIND`/`IPV6_FREEBIND`: allow binding an address not (yet)
/// configured on the host.
pub fn set_freebind(fd: BorrowedFd<'_>, v6: bool) -> io::Result<()> {
    if v6 {
        // IPV6_FREEBIND exists since Linux 4.15; older kernels take the
        // IPv4 option on IPv6 sockets too (the flag is shared).
        if net::setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_FREEBIND, 1).is_ok() {
            return Ok(());
        }
    }
    net::setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_FREEBIND, 1)
}

/// Tries to enable `SO_ZEROCOPY`; `false` where the kernel or the socket
/// type does not support it (harmless: sends then copy as usual).
pub fn try_zerocopy(fd: BorrowedFd<'_>) -> bool {
    net::setsockopt_int(fd, libc::SOL_SOCKET, SO_ZEROCOPY, 1).is_ok()
}

/// The host's ephemeral port range (`ip_local_port_range`), or Linux's
/// default when it cannot be read.
pub fn ephemeral_ports() -> (u16, u16) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut it = text.split_whitespace().filter_map(|w| w.parse::<u16>().ok());
    match (it.next(), it.next()) {
        (Some(a), Some(b)) if a <= b => (a, b),
        _ => (32768, 60999),
    }
}

/// One received datagram's metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Bytes written to the slot.
    pub len: usize,
    /// The datagram was longer than the slot (the rest is lost).
    pub truncated: bool,
    /// The sender.
    pub from: Option<SocketAddr>,
}

/// `UDP_SEGMENT` (linux/udp.h): the segment size of a UDP GSO send.
const UDP_SEGMENT: libc::c_int = 103;
/// Most datagrams in one UDP GSO send (`UDP_MAX_SEGMENTS` before Linux 6.2).
const GSO_MAX_SEGS: usize = 64;
/// Most payload bytes in one UDP GSO send (an IPv4 datagram's limit is
/// 65,507; kept below with room for the headers of either family).
const GSO_MAX_BYTES: usize = 65_000;
/// `CMSG_SPACE(sizeof(u16))` on 64- and 32-bit Linux: within the u64 array
/// of each header's control data.
const GSO_CMSG_SPACE: usize = 24;

/// Reusable header arrays for `recvmmsg`/`sendmmsg`. Grows to the largest
/// batch used (at most [`MAX_MSGS`]), then allocates no more.
pub struct Batch {
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_storage>,
    /// Sends: each datagram's destination, and the GSO control data of
    /// each message (u64s: cmsg alignment).
    dsts: Vec<Option<SocketAddr>>,
    ctrls: Vec<[u64; GSO_CMSG_SPACE / 8]>,
    /// Sends: the messages of the call being built (see [`Batch::send`]).
    groups: Vec<(usize, usize, usize, usize)>,
    /// A route refused segmentation offload: no more GSO sends.
    no_gso: bool,
}

// SAFETY: the raw pointers inside the headers are written right before a
// system call, point at buffers borrowed for that call only, and are never
// dereferenced by us; moving the arrays to another thread shares nothing.
unsafe impl Send for Batch {}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    pub fn new() -> Batch {
        Batch {
            hdrs: Vec::new(),
            iovs: Vec::new(),
            addrs: Vec::new(),
            dsts: Vec::new(),
            ctrls: Vec::new(),
            groups: Vec::new(),
            no_gso: false,
        }
    }

    /// Bytes held by the arrays (memory follows use).
    pub fn capacity(&self) -> usize {
        self.hdrs.capacity()
    }

    /// Releases the arrays (an idle instance stays small).
    pub fn shrink(&mut self) {
        let no_gso = self.no_gso;
        *self = Batch::new();
        self.no_gso = no_gso;
    }

    fn ensure(&mut self, n: usize) {
        while self.hdrs.len() < n {
            // SAFETY: mmsghdr, iovec and sockaddr_storage are plain C data
            // for which all-zero bytes are valid values.
            unsafe {
                self.hdrs.push(zeroed());
                self.iovs.push(zeroed());
                self.addrs.push(zeroed());
            }
            self.dsts.push(None);
            self.ctrls.push([0; GSO_CMSG_SPACE / 8]);
        }
    }

    /// `recvmmsg` of up to `max` datagrams (capped at [`MAX_MSGS`]): the
    /// first into `first`, the following ones into consecutive `slot_len`
    /// byte slots of `rest`. Returns how many were received; see
    /// [`Batch::received`] for each. Never blocks.
    pub fn recv(&mut self, fd: BorrowedFd<'_>, first: &mut [u8], rest: &mut [u8], slot_len: usize, max: usize) -> io::Result<usize> {
        let in_rest = rest.len().checked_div(slot_len).unwrap_or(0);
        let n = max.min(MAX_MSGS).min(1 + in_rest);
        if n == 0 {
            return Ok(0);
        }
        self.ensure(n);
        let rest_ptr = rest.as_mut_ptr();
        for i in 0..n {
            let (base, len) = if i == 0 {
                (first.as_mut_ptr(), first.len())
            } else {
                // SAFETY: (i - 1) * slot_len + slot_len <= rest.len() by the
                // choice of n, so the offset stays inside `rest`.
                (unsafe { rest_ptr.add((i - 1) * slot_len) }, slot_len)
            };
            self.iovs[i] = libc::iovec { iov_base: base.cast(), iov_len: len };
            let h = &mut self.hdrs[i];
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: the first n headers point at valid iovecs and address
        // storage in self, and the iovecs at `first` and `rest`, all borrowed
        // mutably for the duration of the call; a null timeout is allowed.
        let r = unsafe {
            libc::recvmmsg(fd.as_raw_fd(), self.hdrs.as_mut_ptr(), n as libc::c_uint, libc::MSG_DONTWAIT, std::ptr::null_mut())
        };
        Ok(cvt(r)? as usize)
    }

    /// The `i`-th datagram of the last [`Batch::recv`] (`i` below what it
    /// returned).
    ///
    /// # Panics
    /// If `i` is beyond the largest batch ever used.
    pub fn received(&self, i: usize) -> Received {
        let h = &self.hdrs[i];
        Received {
            len: h.msg_len as usize,
            truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            from: net::from_raw(&self.addrs[i], h.msg_hdr.msg_namelen),
        }
    }

    /// `sendmmsg` of the datagrams yielded by `msgs` (at most
    /// [`MAX_MSGS`] are taken). Returns how many datagrams the kernel
    /// accepted, from the first; an error only when the first failed.
    ///
    /// Runs of datagrams to the same destination, of one size (the last
    /// may be shorter), leave as one message with `UDP_SEGMENT` (UDP GSO,
    /// Linux 4.18): the kernel makes one buffer of them and goes through
    /// routing and the device once, then cuts them apart (in software on
    /// loopback, in hardware on some NICs). Where a route cannot do that
    /// (`EMSGSIZE`: segments larger than its MTU, which plain sends
    /// fragment; `EIO`: no checksum offload; `EINVAL`) the same call is
    /// made again without it, and after `EIO` the batch stops trying.
    pub fn send<'a, I>(&mut self, fd: BorrowedFd<'_>, msgs: I) -> io::Result<usize>
    where
        I: IntoIterator<Item = (&'a [u8], SocketAddr)>,
    {
        let mut n = 0;
        for (buf, dst) in msgs.into_iter().take(MAX_MSGS) {
            self.ensure(n + 1);
            // The kernel only reads through iov_base on send.
            self.iovs[n] = libc::iovec { iov_base: buf.as_ptr() as *mut libc::c_void, iov_len: buf.len() };
            self.dsts[n] = Some(dst);
            n += 1;
        }
        if n == 0 {
            return Ok(0);
        }
        let gso = !self.no_gso;
        match self.send_stored(fd, n, gso) {
            Err(e) if gso && self.groups[0].1 > 1 && matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL | libc::EMSGSIZE)) => {
                if e.raw_os_error() == Some(libc::EIO) {
                    log::debug!("UDP: segmentation offload refused ({e}): sending datagrams one by one");
                    self.no_gso = true;
                }
                self.send_stored(fd, n, false)
            }
            r => r,
        }
    }

    /// Groups the `n` stored datagrams into messages (see [`Self::send`];
    /// one each without `gso`) and sends them.
    fn send_stored(&mut self, fd: BorrowedFd<'_>, n: usize, gso: bool) -> io::Result<usize> {
        // Groups: (first datagram, count, segment size, bytes), then the
        // headers pointing into the arrays (which no longer move).
        self.groups.clear();
        for i in 0..n {
            let len = self.iovs[i].iov_len;
            if let Some(g) = self.groups.last_mut() {
                let (first, count, seg, bytes) = *g;
                let last = &self.iovs[first + count - 1];
                let joins = gso
                    && self.dsts[first] == self.dsts[i]
                    && seg > 0
                    && len > 0
                    && len <= seg
                    && last.iov_len == seg // a shorter one ends a group
                    && count < GSO_MAX_SEGS
                    && bytes + len <= GSO_MAX_BYTES;
                if joins {
                    *g = (first, count + 1, seg, bytes + len);
                    continue;
                }
            }
            self.groups.push((i, 1, len, len));
        }
        let m = self.groups.len();
        for (k, &(first, count, seg, _)) in self.groups.iter().enumerate() {
            let raw = net::to_raw(&self.dsts[first].expect("stored with each datagram"));
            self.addrs[k] = raw.storage;
            let h = &mut self.hdrs[k];
            h.msg_hdr.msg_name = (&mut self.addrs[k] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = raw.len;
            h.msg_hdr.msg_iov = &mut self.iovs[first];
            h.msg_hdr.msg_iovlen = count as _;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
            if count > 1 {
                let c = &mut self.ctrls[k];
                // SAFETY: `c` is aligned for cmsghdr and large enough for
                // one cmsg with a u16 (GSO_CMSG_SPACE), and the msghdr's
                // control pointer and length describe exactly it.
                unsafe {
                    h.msg_hdr.msg_control = c.as_mut_ptr().cast();
                    h.msg_hdr.msg_controllen = libc::CMSG_SPACE(size_of::<u16>() as u32) as _;
                    let cm = libc::CMSG_FIRSTHDR(&h.msg_hdr);
                    (*cm).cmsg_level = libc::SOL_UDP;
                    (*cm).cmsg_type = UDP_SEGMENT;
                    (*cm).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
                    std::ptr::write_unaligned(libc::CMSG_DATA(cm).cast::<u16>(), seg as u16);
                }
            } else {
                h.msg_hdr.msg_control = std::ptr::null_mut();
                h.msg_hdr.msg_controllen = 0;
            }
        }
        // SAFETY: the first m headers point at valid iovecs, addresses and
        // control data in self, and the iovecs at the caller's buffers,
        // which outlive the call.
        let r = unsafe { libc::sendmmsg(fd.as_raw_fd(), self.hdrs.as_mut_ptr(), m as libc::c_uint, libc::MSG_NOSIGNAL) };
        let sent = cvt(r)? as usize;
        Ok(self.groups[..sent.min(m)].iter().map(|g| g.1).sum())
    }
}

/// One entry of a socket's error queue (`struct sock_extended_err` and
/// what comes with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockError {
    /// `ee_errno` (ECONNREFUSED, EHOSTUNREACH, EMSGSIZE...).
    pub errno: i32,
    /// `ee_origin`: [`ORIGIN_ICMP`], [`ORIGIN_ICMP6`], [`ORIGIN_LOCAL`]...
    pub origin: u8,
    /// ICMP type and code, for ICMP origins.
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// `ee_info`: the MTU for "fragmentation needed"/"packet too big".
    pub info: u32,
    /// Who reported the error (the router or host that sent the ICMP).
    pub offender: Option<SocketAddr>,
    /// Where the datagram that caused it was going.
    pub dst: Option<SocketAddr>,
    /// Bytes of that datagram's payload copied into the caller's buffer.
    pub len: usize,
}

/// Reads one entry from the socket's error queue, with as much of the
/// offending datagram's payload as fits into `buf`. `Ok(None)` when the
/// queue is empty.
pub fn recv_error(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<SockError>> {
    // Room for one cmsg carrying sock_extended_err and a sockaddr_in6
    // (u64 array: cmsg headers need their alignment).
    let mut control = [0u64; 32];
    // SAFETY: all-zero sockaddr_storage and msghdr are valid values.
    let mut name: libc::sockaddr_storage = unsafe { zeroed() };
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 32]>() as _;
    // SAFETY: msg points at valid name, iovec (over `buf`) and control
    // buffers, all live for the call.
    let r = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
    let len = match cvt(r) {
        Ok(n) => n as usize,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = SockError {
        errno: 0,
        origin: 0,
        icmp_type: 0,
        icmp_code: 0,
        info: 0,
        offender: None,
        dst: net::from_raw(&name, msg.msg_namelen),
        len: len.min(buf.len()),
    };
    // SAFETY: msg was filled by the kernel; CMSG_FIRSTHDR/NXTHDR stay within
    // msg_controllen and return null past the end.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: cmsg is non-null and points at a header inside `control`.
        let (level, ty, clen) = unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type, (*cmsg).cmsg_len as usize) };
        let is_recverr = (level == libc::IPPROTO_IP && ty == libc::IP_RECVERR)
            || (level == libc::IPPROTO_IPV6 && ty == libc::IPV6_RECVERR);
        // SAFETY: CMSG_LEN is a pure size computation.
        let ee_cmsg_len = unsafe { libc::CMSG_LEN(size_of::<libc::sock_extended_err>() as u32) } as usize;
        if is_recverr && clen >= ee_cmsg_len {
            // SAFETY: the cmsg holds at least a sock_extended_err (checked
            // above); read_unaligned does not assume alignment.
            let ee: libc::sock_extended_err = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            out.errno = ee.ee_errno as i32;
            out.origin = ee.ee_origin;
            out.icmp_type = ee.ee_type;
            out.icmp_code = ee.ee_code;
            out.info = ee.ee_info;
            // The offender's address follows the structure (SO_EE_OFFENDER).
            let off_len = (clen - ee_cmsg_len).min(size_of::<libc::sockaddr_storage>());
            if off_len >= size_of::<libc::sa_family_t>() {
                // SAFETY: all-zero sockaddr_storage is valid.
                let mut st: libc::sockaddr_storage = unsafe { zeroed() };
                // SAFETY: we copy off_len bytes that lie inside the cmsg
                // (clen bounds them) into `st`, which is larger.
                unsafe {
                    let src = libc::CMSG_DATA(cmsg).add(size_of::<libc::sock_extended_err>());
                    std::ptr::copy_nonoverlapping(src, (&mut st as *mut libc::sockaddr_storage).cast::<u8>(), off_len);
                }
                out.offender = net::from_raw(&st, off_len as libc::socklen_t);
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn batch_send_and_receive() {
        let rx = socket(false).unwrap();
        net::bind(rx.as_fd(), &"127.0.0.1:0".parse().unwrap()).unwrap();
        let to = net::local_addr(rx.as_fd()).unwrap().unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let from = tx.local_addr().unwrap();
        let mut b = Batch::new();
        let payloads: Vec<Vec<u8>> = (1..=5u8).map(|i| vec![i; usize::from(i) * 3]).collect();
        let sent = b.send(tx.as_fd(), payloads.iter().map(|p| (&p[..], to))).unwrap();
        assert_eq!(sent, 5);
        let mut first = [0u8; 8];
        let mut rest = vec![0u8; 4 * 8];
        let n = b.recv(rx.as_fd(), &mut first, &mut rest, 8, 16).unwrap();
        assert_eq!(n, 5);
        assert_eq!(b.received(0), Received { len: 3, truncated: false, from: Some(from) });
        assert_eq!(&first[..3], &[1, 1, 1]);
        assert_eq!(b.received(2), Received { len: 8, truncated: true, from: Some(from) });
        assert_eq!(&rest[8..16], &[3; 8]);
        assert!(b.recv(rx.as_fd(), &mut first, &mut rest, 8, 16).unwrap_err().kind() == io::ErrorKind::WouldBlock);
    }

    #[test]
    fn runs_of_equal_datagrams_leave_as_one_gso_send_and_arrive_apart() {
        for (v6, local) in [(false, "127.0.0.1:0"), (true, "[::1]:0")] {
            let rx = UdpSocket::bind(local).unwrap();
            let rx2 = UdpSocket::bind(local).unwrap();
            let (to, to2) = (rx.local_addr().unwrap(), rx2.local_addr().unwrap());
            let tx = socket(v6).unwrap();
            // 100 of 1000 bytes, one of 500 (ends a run), 3 of 1000, one to
            // another socket, 2 more of 1000, an empty one.
            let mut msgs: Vec<(Vec<u8>, SocketAddr)> = Vec::new();
            for i in 0..100u32 {
                msgs.push(((0..1000u32).map(|j| (i * 7 + j) as u8).collect(), to));
            }
            msgs.push((vec![0xee; 500], to));
            for i in 0..3u8 {
                msgs.push((vec![i; 1000], to));
            }
            msgs.push((vec![0xaa; 1000], to2));
            msgs.push((vec![5; 1000], to));
            msgs.push((vec![6; 1000], to));
            msgs.push((Vec::new(), to));
            let mut b = Batch::new();
            let sent = b.send(tx.as_fd(), msgs.iter().map(|(p, d)| (&p[..], *d))).unwrap();
            assert_eq!(sent, msgs.len());
            // 64 + 37 (the 500 ends it), 3, 1 (other socket), 2, 1 (empty).
            let sizes: Vec<usize> = b.groups.iter().map(|g| g.1).collect();
            assert_eq!(sizes, vec![64, 37, 3, 1, 2, 1], "grouping");
            rx.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
            let mut buf = [0u8; 2000];
            for (p, d) in msgs.iter().filter(|(_, d)| *d == to) {
                let (n, _) = rx.recv_from(&mut buf).unwrap();
                assert_eq!(&buf[..n], &p[..], "datagram to {d} (v6 {v6})");
            }
            let (n, _) = rx2.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[0xaa; 1000][..]);
        }
    }

    #[test]
    fn error_queue_reports_port_unreachable() {
        let closed = {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap()
        };
        let fd = socket(false).unwrap();
        set_recverr(fd.as_fd(), false, false).unwrap();
        let _ = try_zerocopy(fd.as_fd());
        net::send_to(fd.as_fd(), b"hello", &closed).unwrap();
        let mut buf = [0u8; 64];
        let mut got = None;
        for _ in 0..100 {
            if let Some(e) = recv_error(fd.as_fd(), &mut buf).unwrap() {
                got = Some(e);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let e = got.expect("an error queue entry");
        assert_eq!((e.origin, e.icmp_type, e.icmp_code), (ORIGIN_ICMP, 3, 3));
        assert_eq!(e.errno, libc::ECONNREFUSED);
        assert_eq!(e.dst, Some(closed));
        assert_eq!(e.offender.map(|o| o.ip()), Some(closed.ip()));
        assert_eq!(&buf[..e.len], b"hello");
        assert_eq!(recv_error(fd.as_fd(), &mut buf).unwrap(), None);
    }

    #[test]
    fn options() {
        let fd = socket(true).unwrap();
        set_v6only(fd.as_fd(), true).unwrap();
        set_reuseaddr(fd.as_fd(), false).unwrap();
        set_freebind(fd.as_fd(), true).unwrap();
        set_recverr(fd.as_fd(), true, true).unwrap();
        let (a, b) = ephemeral_ports();
        assert!(a <= b && a > 0);
    }
}
