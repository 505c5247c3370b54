//! A tap device in a network namespace (pasta's mode): the namespace's
//! kernel is the guest. One frame per `read`/`write`, as tap requires.
//!
//! With offloads (see [`crate::sys::tun::open_tap_offload`]) every frame
//! is preceded by a virtio-net header, both ways:
//!
//! * **Reads.** The namespace's kernel may leave the L4 checksum undone
//!   (`NEEDS_CSUM`) or say it checked it (`DATA_VALID`): either way there
//!   is no wire between us and it, so [`RxMeta::l4_checked`] tells the
//!   dispatcher to skip the verification. With TSO a TCP frame carries up
//!   to 64 KiB of payload whatever the MTU; the flows take it as one
//!   segment. With USO a UDP frame likewise carries the datagrams of one
//!   socket (`GSO_UDP_L4`): its `gso_size` goes with the frame as
//!   [`RxMeta::udp_segment`], and the UDP flows cut it apart.
//! * **Writes.** Frames whose [`Offload`] says so go out with `NEEDS_CSUM`
//!   (the checksum field holds the pseudo-header sum; a locally delivered
//!   packet is never summed at all) and, for TCP frames larger than a
//!   segment, `gso_size` and `GSO_TCPV4/6`, so that the kernel takes one
//!   64 KiB frame as the segments it stands for; likewise UDP frames
//!   holding several datagrams of one flow (`GSO_UDP_L4`, when the kernel
//!   has USO). The header goes out with the frame in one `writev`.

use super::{would_block, Flush, RxMeta, READ_BATCH_FRAMES};
use crate::sys;
use crate::sys::tun::VNET_HDR_LEN;
use crate::tx::{Offload, TxQueue, MAX_FRAME};
use crate::wire::{ethernet, ipv4, ipv6};
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, OwnedFd};

/// The largest frame the namespace may send with TSO: an IPv6 header and
/// a 64 KiB payload (IPv4's total length stops below that).
const MAX_RX_FRAME: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + 65535;

// virtio-net header fields (virtio spec 5.1.6; struct virtio_net_hdr).
const F_NEEDS_CSUM: u8 = 1;
const F_DATA_VALID: u8 = 2;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;
const GSO_UDP_L4: u8 = 5;
/// A flag on `gso_type`: the segments carry ECN's CWR bit (TCP only).
const GSO_ECN: u8 = 0x80;

/// One frame read from the tap.
pub struct RxFrame<'a> {
    pub frame: &'a [u8],
    pub meta: RxMeta,
}

pub struct Tap {
    pub fd: OwnedFd,
    /// Frames carry a virtio-net header (offloads on).
    vnet: bool,
    buf: Vec<u8>,
    /// Whether the last write found the link down (said once per outage).
    down: bool,
}

impl Tap {
    pub fn new(fd: OwnedFd, vnet: bool) -> Tap {
        let len = if vnet { VNET_HDR_LEN + MAX_RX_FRAME } else { MAX_FRAME };
        Tap { fd, vnet, buf: vec![0; len], down: false }
    }

    /// Whether frames to the guest may leave work to the kernel.
    pub fn offloads(&self) -> bool {
        self.vnet
    }

    /// Reads up to a batch of frames; `on_frame` returns `false` to end it
    /// early (the host side has had a burst: what is left waits in the
    /// device's queue, which keeps the fd readable). `Err` only for a dead
    /// device.
    pub fn read_frames(&mut self, mut on_frame: impl FnMut(RxFrame<'_>) -> bool) -> io::Result<()> {
        for _ in 0..READ_BATCH_FRAMES {
            match sys::read(self.fd.as_fd(), &mut self.buf) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "tap device gone")),
                Ok(n) if self.vnet => {
                    if n < VNET_HDR_LEN {
                        continue;
                    }
                    let meta = rx_meta(&self.buf[..VNET_HDR_LEN]);
                    if !on_frame(RxFrame { frame: &self.buf[VNET_HDR_LEN..n], meta }) {
                        break;
                    }
                }
                Ok(n) => {
                    if !on_frame(RxFrame { frame: &self.buf[..n], meta: RxMeta::default() }) {
                        break;
                    }
                }
                Err(e) if would_block(&e) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes queued frames one by one.
    pub fn flush(&mut self, tx: &mut TxQueue) -> io::Result<Flush> {
        let mut sent = 0;
        let mut result = Ok(Flush::Done);
        for (frame, offload) in tx.frames_offload() {
            let r = if self.vnet {
                let hdr = vnet_header(frame, offload);
                sys::writev(self.fd.as_fd(), &[IoSlice::new(&hdr), IoSlice::new(frame)])
            } else {
                sys::write(self.fd.as_fd(), frame)
            };
            match r {
                Ok(_) => {
                    sent += 1;
                    if self.down {
                        self.down = false;
                        log::info!("tap device is up again");
                    }
                }
                Err(e) if would_block(&e) => {
                    result = Ok(Flush::Blocked);
                    break;
                }
                // The interface is down or the namespace is gone: what is
                // queued cannot be delivered; TCP will send it again.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EIO) | Some(libc::ENETDOWN) | Some(libc::EINVAL)) => {
                    if !self.down {
                        self.down = true;
                        // Info, not warning: a tap not yet up is normal at start.
                        log::info!("tap device is down or its namespace is gone ({e}): frames to the guest are dropped");
                    }
                    sent += 1;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        tx.pop_frames(sent);
        result
    }
}

/// What the virtio-net header before a frame from the namespace says. Its
/// segment size is taken as given, as the datagram sizes a guest chooses
/// would be; a size of zero is left for the dispatcher to refuse.
fn rx_meta(h: &[u8]) -> RxMeta {
    let l4_checked = h[0] & (F_NEEDS_CSUM | F_DATA_VALID) != 0;
    let udp_segment = (h[1] & !GSO_ECN == GSO_UDP_L4).then(|| u16::from_ne_bytes([h[4], h[5]]));
    RxMeta { l4_checked, udp_segment }
}

/// The virtio-net header for a frame we built (so its headers are ours and
/// well-formed: IPv4 without options or IPv6 without extension headers).
fn vnet_header(frame: &[u8], offload: Offload) -> [u8; VNET_HDR_LEN] {
    let mut h = [0u8; VNET_HDR_LEN];
    let ip = ethernet::HEADER_LEN;
    let (l4, proto, v6) = match frame.get(12..14).map(|t| u16::from_be_bytes([t[0], t[1]])) {
        Some(0x0800) if frame.len() >= ip + ipv4::HEADER_LEN => (ip + ipv4::HEADER_LEN, frame[ip + 9], false),
        Some(0x86dd) if frame.len() >= ip + ipv6::HEADER_LEN => (ip + ipv6::HEADER_LEN, frame[ip + 6], true),
        _ => return h,
    };
    if !offload.csum_partial {
        return h;
    }
    let csum_offset: u16 = match proto {
        ipv4::PROTO_TCP => 16,
        ipv4::PROTO_UDP => 6,
        _ => return h,
    };
    h[0] = F_NEEDS_CSUM;
    if offload.gso_size > 0 && proto == ipv4::PROTO_TCP && frame.len() > l4 + 12 {
        let tcp_hdr = usize::from(frame[l4 + 12] >> 4) * 4;
        h[1] = if v6 { GSO_TCPV6 } else { GSO_TCPV4 };
        h[2..4].copy_from_slice(&((l4 + tcp_hdr) as u16).to_ne_bytes());
        h[4..6].copy_from_slice(&offload.gso_size.to_ne_bytes());
    } else if offload.gso_size > 0 && proto == ipv4::PROTO_UDP {
        // Several datagrams of one flow after one UDP header (USO): the
        // kernel cuts them apart for the receiving socket.
        h[1] = GSO_UDP_L4;
        h[2..4].copy_from_slice(&((l4 + 8) as u16).to_ne_bytes());
        h[4..6].copy_from_slice(&offload.gso_size.to_ne_bytes());
    }
    h[6..8].copy_from_slice(&(l4 as u16).to_ne_bytes());
    h[8..10].copy_from_slice(&csum_offset.to_ne_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(flags: u8, gso_type: u8, gso_size: u16) -> [u8; VNET_HDR_LEN] {
        let mut h = [0u8; VNET_HDR_LEN];
        h[0] = flags;
        h[1] = gso_type;
        h[4..6].copy_from_slice(&gso_size.to_ne_bytes());
        h
    }

    #[test]
    fn only_udp_segmentation_gives_a_segment_size() {
        let plain = rx_meta(&header(0, 0, 0));
        assert_eq!(plain, RxMeta { l4_checked: false, udp_segment: None });
        let uso = rx_meta(&header(F_NEEDS_CSUM, GSO_UDP_L4, 1400));
        assert_eq!(uso, RxMeta { l4_checked: true, udp_segment: Some(1400) });
        // The ECN flag does not hide the type; TCP segments are one segment
        // to the flows whatever their size.
        assert_eq!(rx_meta(&header(F_DATA_VALID, GSO_UDP_L4 | GSO_ECN, 7)).udp_segment, Some(7));
        assert_eq!(rx_meta(&header(F_NEEDS_CSUM, GSO_TCPV4 | GSO_ECN, 1448)).udp_segment, None);
        assert_eq!(rx_meta(&header(F_NEEDS_CSUM, GSO_TCPV6, 1428)).udp_segment, None);
        // A size of zero is passed on, for the dispatcher to refuse.
        assert_eq!(rx_meta(&header(F_NEEDS_CSUM, GSO_UDP_L4, 0)).udp_segment, Some(0));
    }
}
