//! Thin wrappers over the system calls we use, returning owned fds and
//! `io::Result`. The only place besides `ffi` where `unsafe` is allowed;
//! every block says why it is sound. One file per family of calls.

#![allow(unsafe_code)]

pub mod epoll;
pub mod eventfd;
pub mod net;
pub mod netlink;
pub mod netns;
pub mod tcp;
pub mod tun;
pub mod udp;

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Turns a libc return value into `io::Result`, reading errno on -1.
pub(crate) fn cvt<T: PartialEq + From<i8>>(ret: T) -> io::Result<T> {
    if ret == T::from(-1) {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Wraps a fresh fd returned by a successful syscall.
pub(crate) fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: only called with an fd just returned by the kernel to us and
    // owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Sets O_NONBLOCK (and keeps the other flags).
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl on a valid borrowed fd with integer arguments.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    Ok(())
}

/// Takes ownership of an fd number handed to us by the host (`fd` key),
/// after checking that it is open. The fd is closed when the owner drops.
pub fn adopt_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD on any integer is harmless; it tells whether it is open.
    cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    Ok(owned(fd))
}

/// `read(2)` into `buf`.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for writes of buf.len() bytes.
    let n = cvt(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })?;
    Ok(n as usize)
}

/// `write(2)` from `buf`.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for reads of buf.len() bytes.
    let n = cvt(unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) })?;
    Ok(n as usize)
}

/// `writev(2)` of the slices in order.
pub fn writev(fd: BorrowedFd<'_>, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    let cnt = bufs.len().min(libc::UIO_MAXIOV as usize) as libc::c_int;
    // SAFETY: IoSlice is ABI-compatible with struct iovec (std guarantees
    // it on Unix); the slices outlive the call.
    let n = cvt(unsafe { libc::writev(fd.as_raw_fd(), bufs.as_ptr().cast(), cnt) })?;
    Ok(n as usize)
}

/// `send(2)` with flags (MSG_NOSIGNAL is always added: no SIGPIPE ever).
pub fn send(fd: BorrowedFd<'_>, buf: &[u8], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: buf is valid for reads of buf.len() bytes.
    let n = cvt(unsafe {
        libc::send(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), flags | libc::MSG_NOSIGNAL)
    })?;
    Ok(n as usize)
}

/// The process's limit on open files (soft).
pub fn nofile_limit() -> u64 {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: rl is a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0 {
        rl.rlim_cur
    } else {
        1024
    }
}

/// CLOCK_MONOTONIC in nanoseconds (for hosts: the library's logic takes
/// `now` as an argument and never reads a clock).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}
