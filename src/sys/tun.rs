//! Tap devices (`/dev/net/tun`), for the namespace (pasta-like) backend.
//!
//! [`open_tap`] creates (or attaches to) a tap interface in the calling
//! thread's network namespace: Ethernet frames, no packet-information
//! prefix (`IFF_NO_PI`) and no virtio-net header (`IFF_VNET_HDR` off), so
//! each `read` returns exactly one frame and each `write` sends one. The fd
//! is non-blocking and close-on-exec. The interface lives in the namespace
//! it was created in even if the fd is later used from elsewhere, and
//! disappears when the fd is closed (it is not made persistent).
//!
//! [`open_tap_offload`] adds the virtio-net header and offloads (see there).
//!
//! To get a tap in another namespace, call it through
//! [`super::netns::run_in_netns`]. See `Documentation/networking/tuntap.rst`.

use super::{cvt, owned};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// Interface names are at most `IFNAMSIZ - 1` bytes.
const IFNAMSIZ: usize = 16;

/// Opens a tap interface named `ifname` in the current network namespace
/// and returns its fd.
///
/// # Errors
///
/// `InvalidInput` for an empty name, one of 16 bytes or more, or one with
/// NUL, `/`, `:` or whitespace; otherwise the error of opening
/// `/dev/net/tun` or of `TUNSETIFF` (e.g. `EBUSY` if a tap of that name is
/// already attached, `EINVAL` if a non-tap interface has that name), with
/// the interface name in the message.
pub fn open_tap(ifname: &str) -> io::Result<OwnedFd> {
    open(ifname, false)
}

/// Size of the virtio-net header that precedes every frame on a tap opened
/// by [`open_tap_offload`] (`struct virtio_net_hdr`, native byte order).
pub const VNET_HDR_LEN: usize = 10;

/// Like [`open_tap`], but with a virtio-net header before each frame
/// (`IFF_VNET_HDR`) and checksum and TCP segmentation offload enabled
/// (`TUNSETOFFLOAD`: `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`): the
/// namespace's kernel then sends us TCP segments of up to 64 KiB whatever
/// the MTU, with the L4 checksum left for us to skip, and accepts the same
/// from us. UDP segmentation offload (`TUN_F_USO4 | TUN_F_USO6`, Linux
/// 6.2) too when the kernel has it: the second value says so. `Ok(None)`
/// when the kernel refuses the offloads (the caller falls back to
/// [`open_tap`]).
pub fn open_tap_offload(ifname: &str) -> io::Result<Option<(OwnedFd, bool)>> {
    let fd = open(ifname, true)?;
    let base = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;
    for (flags, uso) in [(base | libc::TUN_F_USO4 | libc::TUN_F_USO6, true), (base, false)] {
        // SAFETY: TUNSETOFFLOAD takes an unsigned long by value.
        if cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETOFFLOAD as _, flags as libc::c_ulong) }).is_ok() {
            return Ok(Some((fd, uso)));
        }
    }
    Ok(None)
}

fn open(ifname: &str, vnet_hdr: bool) -> io::Result<OwnedFd> {
    let name = check_ifname(ifname)?;
    let dev = c"/dev/net/tun";
    // SAFETY: dev is a valid NUL-terminated string; integer flags.
    let fd = cvt(unsafe { libc::open(dev.as_ptr(), libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC) })
        .map_err(|e| io::Error::new(e.kind(), format!("opening /dev/net/tun: {e}")))?;
    let fd = owned(fd);

    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(name) {
        *dst = src as libc::c_char;
    }
    let vnet = if vnet_hdr { libc::IFF_VNET_HDR } else { 0 };
    ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | vnet) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one struct ifreq, which ifr is.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF as _, &mut ifr as *mut libc::ifreq) })
        .map_err(|e| io::Error::new(e.kind(), format!("creating tap interface {ifname:?} (TUNSETIFF): {e}")))?;
    Ok(fd)
}

/// The name as the kernel accepts it (`dev_valid_name`): 1 to 15 bytes,
/// no NUL, `/`, `:` or whitespace, not `.` or `..`.
fn check_ifname(ifname: &str) -> io::Result<[u8; IFNAMSIZ]> {
    let bytes = ifname.as_bytes();
    let bad = bytes.is_empty()
        || bytes.len() >= IFNAMSIZ
        || ifname == "."
        || ifname == ".."
        || bytes.iter().any(|&c| c == 0 || c == b'/' || c == b':' || c.is_ascii_whitespace());
    if bad {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid interface name {ifname:?}")));
    }
    let mut name = [0u8; IFNAMSIZ];
    name[..bytes.len()].copy_from_slice(bytes);
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_names() {
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "a\0b", "0123456789abcdef"] {
            assert_eq!(check_ifname(bad).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            assert_eq!(open_tap(bad).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
        let n = check_ifname("0123456789abcde").unwrap();
        assert_eq!(&n[..15], b"0123456789abcde");
        assert_eq!(n[15], 0);
    }
}
