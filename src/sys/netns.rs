//! Running code inside another network namespace without moving the caller.
//!
//! `setns(2)` with `CLONE_NEWNET` changes the namespace of the calling
//! *thread* only. [`run_in_netns`] therefore opens the namespace file,
//! starts a short-lived scoped thread, switches that thread into the
//! namespace and runs the closure there. Sockets and tap devices created by
//! the closure stay bound to that namespace after the thread exits, while
//! the caller's thread (often one of the host program's) never changes
//! namespace. The thread ends with the closure, so no pooled thread is ever
//! left in the wrong namespace.
//!
//! Needs `CAP_SYS_ADMIN` over the target namespace (root, or the owner of
//! its user namespace).

use super::{cvt, owned};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Runs `f` in a new thread that first joins the network namespace at
/// `path` (`/run/netns/NAME`, `/proc/PID/ns/net`...), and returns what `f`
/// returns. The calling thread's namespace is never changed.
///
/// # Errors
///
/// Opening `path` or `setns` failing (not a network namespace, no
/// permission), with the path in the message and the original error kind;
/// a panic in `f` becomes an error too (with its message); otherwise `f`'s
/// own error.
pub fn run_in_netns<T: Send>(path: &Path, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    let ns = open_ns(path)?;
    let joined = std::thread::scope(|s| {
        let handle = std::thread::Builder::new().name("passt-netns".into()).spawn_scoped(s, move || {
            setns_net(&ns).map_err(|e| with_path(e, "entering network namespace", path))?;
            drop(ns);
            f()
        })?;
        Ok::<_, io::Error>(handle.join())
    })?;
    joined.unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(io::Error::other(format!("panic while running in network namespace {}: {what}", path.display())))
    })
}

/// Moves the calling thread into the network namespace at `path`, for
/// good. Only for threads that exist for that purpose (a host program's
/// thread that runs an instance inside a namespace); everything else should
/// use [`run_in_netns`].
pub fn enter_netns(path: &Path) -> io::Result<()> {
    let ns = open_ns(path)?;
    setns_net(&ns).map_err(|e| with_path(e, "entering network namespace", path))
}

/// Opens a namespace file read-only and close-on-exec.
fn open_ns(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("network namespace path {} contains NUL", path.display()))
    })?;
    // SAFETY: c is a valid NUL-terminated string; integer flags.
    let fd = cvt(unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) })
        .map_err(|e| with_path(e, "opening network namespace", path))?;
    Ok(owned(fd))
}

/// `setns(fd, CLONE_NEWNET)` for the calling thread. EINVAL means the file
/// is not a network namespace.
fn setns_net(ns: &OwnedFd) -> io::Result<()> {
    // SAFETY: plain syscall on a valid fd; affects only this thread.
    match cvt(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            Err(io::Error::new(io::ErrorKind::InvalidInput, "not a network namespace"))
        }
        Err(e) => Err(e),
    }
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The namespace identity of a thread, as the kernel names it.
    fn current_ns() -> std::path::PathBuf {
        std::fs::read_link("/proc/thread-self/ns/net").unwrap()
    }

    #[test]
    fn runs_in_own_namespace_and_returns_value() {
        let mine = current_ns();
        let seen = run_in_netns(Path::new("/proc/self/ns/net"), || Ok(current_ns())).unwrap();
        assert_eq!(seen, mine);
        assert_eq!(current_ns(), mine);
    }

    #[test]
    fn closure_error_is_returned() {
        let e = run_in_netns(Path::new("/proc/self/ns/net"), || -> io::Result<()> {
            Err(io::Error::new(io::ErrorKind::AddrInUse, "inner"))
        })
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn missing_path_is_named() {
        let p = Path::new("/run/netns/passt-rs-does-not-exist");
        let e = run_in_netns(p, || Ok(())).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("/run/netns/passt-rs-does-not-exist"), "{e}");
    }

    #[test]
    fn not_a_namespace_is_named() {
        let e = run_in_netns(Path::new("/proc/self/ns/uts"), || Ok(())).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("/proc/self/ns/uts"), "{e}");
        let e = run_in_netns(Path::new("/dev/null"), || Ok(())).unwrap_err();
        assert!(e.to_string().contains("/dev/null"), "{e}");
    }

    #[test]
    fn panic_becomes_error() {
        let e =
            run_in_netns(Path::new("/proc/self/ns/net"), || -> io::Result<()> { panic!("boom {}", 42) }).unwrap_err();
        assert!(e.to_string().contains("boom 42"), "{e}");
    }
}
