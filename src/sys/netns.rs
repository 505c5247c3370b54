//! Placeholder until the namespace work lands.
use std::io;
use std::path::Path;
pub fn run_in_netns<T: Send>(_path: &Path, _f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    Err(io::Error::other("namespace support not built yet"))
}
