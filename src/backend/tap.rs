//! A tap device in a network namespace (pasta's mode): the namespace's
//! kernel is the guest. One frame per `read`/`write`, as tap requires.

use super::{would_block, Flush};
use crate::sys;
use crate::tx::{TxQueue, MAX_FRAME};
use std::io;
use std::os::fd::{AsFd, OwnedFd};

/// Frames read per call before yielding to host sockets.
const READ_BATCH: usize = 128;

pub struct Tap {
    pub fd: OwnedFd,
    buf: Vec<u8>,
    /// Whether the last write found the link down (said once per outage).
    down: bool,
}

impl Tap {
    pub fn new(fd: OwnedFd) -> Tap {
        Tap { fd, buf: vec![0; MAX_FRAME], down: false }
    }

    /// Reads up to a batch of frames. `Err` only for a dead device.
    pub fn read_frames(&mut self, mut on_frame: impl FnMut(&[u8])) -> io::Result<()> {
        for _ in 0..READ_BATCH {
            match sys::read(self.fd.as_fd(), &mut self.buf) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "tap device gone")),
                Ok(n) => on_frame(&self.buf[..n]),
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
        for frame in tx.frames() {
            match sys::write(self.fd.as_fd(), frame) {
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
