//! Placeholder until the tap work lands.
use std::io;
use std::os::fd::OwnedFd;
pub fn open_tap(_ifname: &str) -> io::Result<OwnedFd> {
    Err(io::Error::other("tap support not built yet"))
}
