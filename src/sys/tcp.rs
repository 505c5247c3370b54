//! TCP-specific socket calls: peeking at received data without consuming it
//! (`MSG_PEEK`, `SO_PEEK_OFF`), discarding it once the guest acknowledged
//! it (`MSG_TRUNC` without a buffer), send-buffer room (`SO_MEMINFO`),
//! queue sizes (`SIOCINQ`/`SIOCOUTQ`), resets (`SO_LINGER` 0), half-close.

use super::{cvt, net};
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `SO_PEEK_OFF` (asm-generic/socket.h, as on x86, arm and riscv; libc does
/// not export it for glibc). Sparc uses its own numbers.
#[cfg(not(target_arch = "sparc64"))]
const SO_PEEK_OFF: libc::c_int = 42;
#[cfg(target_arch = "sparc64")]
const SO_PEEK_OFF: libc::c_int = 0x26;
/// `SO_MEMINFO` (asm-generic/socket.h).
#[cfg(not(target_arch = "sparc64"))]
const SO_MEMINFO: libc::c_int = 55;
#[cfg(target_arch = "sparc64")]
const SO_MEMINFO: libc::c_int = 0x39;
/// Entries of the `SO_MEMINFO` array (`SK_MEMINFO_VARS`).
const MEMINFO_VARS: usize = 9;
/// `SIOCINQ` and `SIOCOUTQ` are `FIONREAD` and `TIOCOUTQ` under other names.
const SIOCINQ: libc::Ioctl = libc::FIONREAD;
const SIOCOUTQ: libc::Ioctl = libc::TIOCOUTQ;

/// Makes `MSG_PEEK` reads start at `off` bytes into the receive queue and
/// advance it (Linux 6.10+ for TCP); `-1` turns the offset off.
pub fn set_peek_off(fd: BorrowedFd<'_>, off: i32) -> io::Result<()> {
    net::setsockopt_int(fd, libc::SOL_SOCKET, SO_PEEK_OFF, off)
}

/// `recv(MSG_PEEK)` into `buf`: with `SO_PEEK_OFF` set, from the peek
/// offset, which then advances; without it, from the head of the queue.
/// `Ok(0)` means end of stream (the peer's FIN) at that point.
pub fn peek(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for writes of buf.len() bytes.
    let n = cvt(unsafe {
        libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_PEEK | libc::MSG_DONTWAIT)
    })?;
    Ok(n as usize)
}

/// Most pieces [`peek_into`] fills with one call.
pub const PEEK_PIECES_MAX: usize = 64;

/// [`peek`] into several pieces of `buf` with one `recvmsg`, filled in
/// order: piece `i` is `buf[first + i * stride..][..lens[i]]`. Returns the
/// bytes peeked in all. At most [`PEEK_PIECES_MAX`] pieces are used.
///
/// # Panics
/// If a piece lies outside `buf` (a programming error of the caller).
pub fn peek_into(fd: BorrowedFd<'_>, buf: &mut [u8], first: usize, stride: usize, lens: &[usize]) -> io::Result<usize> {
    let lens = &lens[..lens.len().min(PEEK_PIECES_MAX)];
    let mut iov = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; PEEK_PIECES_MAX];
    for (i, &len) in lens.iter().enumerate() {
        let piece = &mut buf[first + i * stride..][..len];
        iov[i] = libc::iovec { iov_base: piece.as_mut_ptr().cast(), iov_len: len };
    }
    // SAFETY: all-zero msghdr is valid (no name, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = lens.len() as _;
    // SAFETY: the iovecs describe bounds-checked pieces of `buf`, which we
    // borrow mutably for the whole call.
    let n = cvt(unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_PEEK | libc::MSG_DONTWAIT) })?;
    Ok(n as usize)
}

/// Peeks from the head of the queue, the first `skip.len()` bytes into
/// `skip` (thrown away by the caller) and the rest into `buf`: the fallback
/// when `SO_PEEK_OFF` is not available. Returns the bytes that landed in
/// `buf`; `Ok(0)` with nothing skipped short means end of stream.
pub fn peek_after(fd: BorrowedFd<'_>, skip: &mut [u8], buf: &mut [u8]) -> io::Result<(usize, usize)> {
    let mut iov = [
        libc::iovec { iov_base: skip.as_mut_ptr().cast(), iov_len: skip.len() },
        libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() },
    ];
    // SAFETY: all-zero msghdr is valid (no name, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = iov.len() as _;
    // SAFETY: msg points at two iovecs describing live, writable buffers.
    let n = cvt(unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_PEEK | libc::MSG_DONTWAIT) })? as usize;
    Ok((n.min(skip.len()), n.saturating_sub(skip.len())))
}

/// Drops up to `n` bytes from the head of the receive queue without
/// copying them (`recv(NULL, n, MSG_TRUNC)`, which TCP implements as a
/// discard). Moves the peek offset back by the same amount.
pub fn discard(fd: BorrowedFd<'_>, n: usize) -> io::Result<usize> {
    // SAFETY: with MSG_TRUNC, TCP copies nothing, so the NULL buffer is never
    // written; the kernel only checks that the range is a user range.
    let r = cvt(unsafe {
        libc::recv(fd.as_raw_fd(), std::ptr::null_mut(), n, libc::MSG_TRUNC | libc::MSG_DONTWAIT)
    })?;
    Ok(r as usize)
}

fn ioctl_int(fd: BorrowedFd<'_>, req: libc::Ioctl) -> io::Result<usize> {
    let mut v: libc::c_int = 0;
    // SAFETY: SIOCINQ/SIOCOUTQ write one int to the pointer, which is valid.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), req, &mut v as *mut libc::c_int) })?;
    Ok(v.max(0) as usize)
}

/// Bytes received and not yet read (consumed) from the socket.
pub fn inq(fd: BorrowedFd<'_>) -> io::Result<usize> {
    ioctl_int(fd, SIOCINQ)
}

/// Bytes written to the socket and not yet acknowledged by the peer.
pub fn outq(fd: BorrowedFd<'_>) -> io::Result<usize> {
    ioctl_int(fd, SIOCOUTQ)
}

/// Send-buffer size and what is queued against it, as the kernel accounts
/// them (`SO_MEMINFO`: `SK_MEMINFO_SNDBUF`, `SK_MEMINFO_WMEM_QUEUED`).
/// `send()` takes new data while queued < size.
pub fn send_buffer(fd: BorrowedFd<'_>) -> io::Result<(usize, usize)> {
    let mut info = [0u32; MEMINFO_VARS];
    let mut len = size_of::<[u32; MEMINFO_VARS]>() as libc::socklen_t;
    // SAFETY: info/len are valid out-pointers of the stated size; the kernel
    // writes at most len bytes.
    cvt(unsafe {
        libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, SO_MEMINFO, info.as_mut_ptr().cast(), &mut len)
    })?;
    Ok((info[libc::SK_MEMINFO_SNDBUF as usize] as usize, info[libc::SK_MEMINFO_WMEM_QUEUED as usize] as usize))
}

/// `SO_LINGER` with a zero timeout: closing the socket then sends RST
/// instead of FIN and drops whatever is queued.
pub fn set_linger_zero(fd: BorrowedFd<'_>) -> io::Result<()> {
    let l = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: l is a valid linger struct for the duration of the call.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `shutdown(SHUT_WR)`: FIN to the peer once queued data is sent.
pub fn shutdown_write(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain syscall on a valid fd.
    cvt(unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_WR) })?;
    Ok(())
}

/// `TCP_ESTABLISHED` (netinet/tcp.h's `tcp_state`), the first byte of
/// `struct tcp_info`.
const STATE_ESTABLISHED: u8 = 1;

/// Whether the connection is established (`TCP_INFO`'s state): a
/// non-blocking `connect()` to a local address has usually finished by
/// the time it returns.
pub fn is_established(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // The kernel copies as much of struct tcp_info as asked for: the state
    // is its first byte.
    let mut state = [0u8; 1];
    let mut len = 1 as libc::socklen_t;
    // SAFETY: state/len are valid out-pointers of the stated size; the
    // kernel writes at most len bytes.
    cvt(unsafe { libc::getsockopt(fd.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_INFO, state.as_mut_ptr().cast(), &mut len) })?;
    Ok(len >= 1 && state[0] == STATE_ESTABLISHED)
}

/// `TCP_NODELAY`: the guest does its own Nagle; we add no delay of ours.
pub fn set_nodelay(fd: BorrowedFd<'_>) -> io::Result<()> {
    net::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    fn wait_inq(s: &TcpStream, n: usize) {
        for _ in 0..1000 {
            if inq(s.as_fd()).unwrap() >= n {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("data did not arrive");
    }

    #[test]
    fn a_loopback_connect_is_established_when_it_returns() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let s = net::socket(libc::AF_INET, libc::SOCK_STREAM, 0).unwrap();
        assert!(!is_established(s.as_fd()).unwrap(), "not before connect()");
        let _done = net::connect(s.as_fd(), &addr).unwrap();
        assert!(is_established(s.as_fd()).unwrap());
        // A listening socket is not.
        assert!(!is_established(l.as_fd()).unwrap());
    }

    #[test]
    fn peek_offset_discard() {
        let (mut a, b) = pair();
        a.write_all(b"0123456789").unwrap();
        wait_inq(&b, 10);
        set_peek_off(b.as_fd(), 0).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(peek(b.as_fd(), &mut buf).unwrap(), 4);
        assert_eq!(&buf, b"0123");
        assert_eq!(peek(b.as_fd(), &mut buf).unwrap(), 4);
        assert_eq!(&buf, b"4567", "the peek offset advanced");
        assert_eq!(inq(b.as_fd()).unwrap(), 10, "nothing consumed");
        assert_eq!(discard(b.as_fd(), 3).unwrap(), 3);
        assert_eq!(inq(b.as_fd()).unwrap(), 7);
        // The offset moved back with the discard: next peek is at byte 8.
        assert_eq!(peek(b.as_fd(), &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"89");
        // Rewind.
        set_peek_off(b.as_fd(), 0).unwrap();
        assert_eq!(peek(b.as_fd(), &mut buf).unwrap(), 4);
        assert_eq!(&buf, b"3456");
        // The fallback: skip bytes from the head.
        set_peek_off(b.as_fd(), -1).unwrap();
        let mut skip = [0u8; 5];
        assert_eq!(peek_after(b.as_fd(), &mut skip, &mut buf).unwrap(), (5, 2));
        assert_eq!(&buf[..2], b"89");
        // End of stream is a zero-length peek once the data is gone.
        drop(a);
        let mut rest = Vec::new();
        (&b).read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"3456789");
        assert_eq!(peek(b.as_fd(), &mut buf).unwrap(), 0);
    }

    #[test]
    fn buffer_sizes_and_queues() {
        let (a, _b) = pair();
        let (size, queued) = send_buffer(a.as_fd()).unwrap();
        assert!(size > 0 && queued < size, "{size} {queued}");
        assert_eq!(size, net::sndbuf(a.as_fd()).unwrap());
        assert!(net::rcvbuf(a.as_fd()).unwrap() > 0);
        assert_eq!(outq(a.as_fd()).unwrap(), 0);
        set_nodelay(a.as_fd()).unwrap();
    }

    #[test]
    fn linger_zero_resets_and_shutdown_half_closes() {
        let (a, mut b) = pair();
        shutdown_write(a.as_fd()).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(b.read(&mut buf).unwrap(), 0, "FIN seen");
        b.write_all(b"x").unwrap();
        assert_eq!((&a).read(&mut buf).unwrap(), 1, "other direction still open");
        set_linger_zero(a.as_fd()).unwrap();
        drop(a);
        b.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        // A reset in CLOSE_WAIT reports EPIPE (tcp_reset), elsewhere ECONNRESET.
        let e = b.write_all(b"y").and_then(|_| b.read(&mut buf)).unwrap_err();
        assert!(matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe), "{e}");
    }
}
