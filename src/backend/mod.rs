//! Guest attachments ("backends"): where guest frames come from and where
//! frames for the guest go.
//!
//! * `stream`: a UNIX stream socket carrying frames each preceded by a
//!   4-byte big-endian length (QEMU `-netdev stream`, qrap's `-netdev
//!   socket,fd=N`, libvirt): either listening on a path (one guest at a
//!   time; the next is accepted when the first disconnects) or a connected
//!   fd handed over by the host.
//! * `tap`: a tap device inside a network namespace (pasta's mode): one
//!   frame per read/write.
//! * `frames`: in-process, for VMMs with their own device model: frames in
//!   through `frame_input`, out through a callback.
//!
//! Reads are batched (many frames per call) and writes drain the shared
//! [`TxQueue`]; what the guest side cannot take stays queued.

pub mod stream;
pub mod tap;

use crate::tx::TxQueue;
use std::io::{self, IoSlice};

/// Frames read from the guest per call, at most (a stream read can
/// overshoot by what one read holds). What they carry is delivered before
/// the next read, and the daemon lets other tasks run in between, so that
/// a host reader drains its socket between our bursts: a UDP flood through
/// the stream socket read in bursts of ~1,500 datagrams (2 MiB) lost two
/// thirds of them at a receiver whose buffer holds ~90, and in bursts of
/// ~180 the receiver got 1.3-1.5 Gbit/s instead of 0.7-1.0.
pub const READ_BATCH_FRAMES: usize = 128;

/// What a backend knows of a frame beyond its bytes: a tap with offloads
/// says it in the virtio-net header before each frame. Other backends
/// know nothing more (the default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxMeta {
    /// The backend's kernel vouches for the L4 checksum, or left it undone.
    pub l4_checked: bool,
    /// UDP segmentation offload: the frame holds, after one UDP header,
    /// the payloads of several datagrams of one socket, each this many
    /// bytes but the last, which may be shorter (`gso_size`). The guest's
    /// kernel would have cut them apart on a wire; we must, or the host
    /// peer gets one large datagram instead of several.
    pub udp_segment: Option<u16>,
}

/// The host's frame sink for the in-process attachment: takes a batch of
/// frames, returns how many it accepted (the rest wait).
pub type FrameOutput = Box<dyn FnMut(&[IoSlice<'_>]) -> usize + Send>;

/// Result of draining the queue towards the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    /// Everything queued went out.
    Done,
    /// The guest side is full: wait for writability (or the host's call).
    Blocked,
    /// No guest is attached: the queue was discarded.
    NoGuest,
}

/// In-process attachment: frames are handed over by a callback.
#[derive(Default)]
pub struct Frames {
    pub output: Option<FrameOutput>,
}

impl Frames {
    /// Hands queued frames to the host's callback in batches of up to 64.
    pub fn flush(&mut self, tx: &mut TxQueue) -> Flush {
        let Some(out) = self.output.as_mut() else {
            tx.clear();
            return Flush::NoGuest;
        };
        while !tx.is_empty() {
            let mut batch = [IoSlice::new(&[]); 64];
            let mut offered = 0;
            for (slot, frame) in batch.iter_mut().zip(tx.frames()) {
                *slot = IoSlice::new(frame);
                offered += 1;
            }
            let taken = out(&batch[..offered]).min(offered);
            tx.pop_frames(taken);
            if taken < offered {
                return Flush::Blocked;
            }
        }
        Flush::Done
    }
}

/// Classifies an I/O error on a guest fd: `true` when it means "try later".
pub fn would_block(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR))
        || e.kind() == io::ErrorKind::WouldBlock
}
