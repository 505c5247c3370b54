//! The safe Rust API, for VMMs written in Rust: [`Passt`], one instance.
//! The C ABI (`ffi`) is a thin layer over it, adding the panic boundary
//! and C types.
//!
//! # The loop
//!
//! Build a [`Config`] (passt's option names and syntax), create a
//! [`Passt`], then poll [`Passt::fd`] for readability together with your
//! own fds, and call [`Passt::process`] whenever it is readable or the
//! time it returned has passed:
//!
//! ```no_run
//! use passt::api::{monotonic_now, Passt};
//! use passt::Config;
//!
//! let mut config = Config::new();
//! config.set("socket", "/run/vm1/passt.sock").unwrap();
//! config.set("tcp-ports", "2222:22").unwrap();
//! let mut p = Passt::new(&config).expect("instance");
//! let mut pfd = libc::pollfd { fd: p.fd(), events: libc::POLLIN, revents: 0 };
//! let mut timeout = p.process(monotonic_now()).unwrap();
//! loop {
//!     let ms = timeout.map_or(-1, |d| d.as_millis().min(i32::MAX as u128) as i32);
//!     // SAFETY: one valid pollfd.
//!     unsafe { libc::poll(&mut pfd, 1, ms) };
//!     timeout = p.process(monotonic_now()).unwrap();
//! }
//! ```
//!
//! # In-process frames
//!
//! With the `frames` key, there is no socket: the VMM's device model hands
//! guest frames to [`Passt::frame_input`] / [`Passt::frames_input`] and
//! receives frames for the guest through the closure given to
//! [`Passt::set_frame_output`], which returns how many of the offered
//! frames it took. Frames it does not take stay queued, in order (up to
//! 4 MiB: beyond that TCP waits for room, with nothing lost, and datagrams
//! for the guest are dropped and counted as [`crate::stats::Drop::TxFull`]). They are
//! offered again on the next call into the instance, at once after
//! [`Passt::frame_output_ready`] (or [`Waker::wake`] from another thread),
//! which makes the fd readable. A host that never calls it is polled:
//! `process` then returns a deadline of 1 ms while frames are held back.
//!
//! This example runs as a doctest: it answers an ARP request.
//!
//! ```
//! use passt::api::{monotonic_now, Passt};
//! use passt::Config;
//! use std::sync::{Arc, Mutex};
//!
//! let mut config = Config::new();
//! for (k, v) in [("frames", ""), ("address", "10.0.2.15"), ("netmask", "24"), ("gateway", "10.0.2.2")] {
//!     config.set(k, v).unwrap();
//! }
//! let mut p = Passt::new(&config).unwrap();
//! let out: Arc<Mutex<Vec<Vec<u8>>>> = Default::default();
//! let sink = out.clone();
//! p.set_frame_output(move |frames| {
//!     sink.lock().unwrap().extend(frames.iter().map(|f| f.to_vec()));
//!     frames.len() // took them all
//! })
//! .unwrap();
//!
//! // Who has 10.0.2.2? Tell 10.0.2.15 (at 52:54:00:12:34:56).
//! let guest_mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
//! let mut arp = vec![0xff; 6];
//! arp.extend_from_slice(&guest_mac);
//! arp.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
//! arp.extend_from_slice(&guest_mac);
//! arp.extend_from_slice(&[10, 0, 2, 15, 0, 0, 0, 0, 0, 0, 10, 0, 2, 2]);
//! p.frame_input(&arp, monotonic_now()).unwrap();
//!
//! let replies: Vec<Vec<u8>> = out.lock().unwrap().iter().filter(|f| f[12..14] == [0x08, 0x06]).cloned().collect();
//! assert_eq!(replies.len(), 1);
//! assert_eq!(&replies[0][0..6], &guest_mac, "to the guest");
//! assert_eq!(&replies[0][28..32], &[10, 0, 2, 2], "10.0.2.2 is at our MAC");
//! assert_eq!(p.stats().counters.frames_in, 1);
//! ```
//!
//! # Threads
//!
//! A [`Passt`] is `Send`: it may move between threads, and one thread at a
//! time drives it (`&mut self`). Several instances run in several threads
//! independently (tested with eight at once). Callbacks (frame output,
//! log, events) run on the thread that called into the instance, before
//! that call returns, and must not call back into the same instance; they
//! must be `Send` (and the log callback `Sync`, as it is shared with the
//! logger). [`Waker`] is the one handle meant for other threads.
//!
//! # Logging
//!
//! Each instance has a log callback receiving (syslog level, message):
//! 3 error, 4 warning, 6 info, 7 debug (8 as `max_level` adds per-packet
//! traces, also at 7). Without one, lines go to stderr. Messages a guest
//! can trigger at will (limits reached, sockets refused...) are
//! rate-limited: at most one line per kind every 5 s, saying how many were
//! suppressed.

use crate::config::Config;
use crate::engine::{Instance, RunError};
use crate::log::{Sink, SinkGuard};
use crate::time::Instant;
use std::fmt;
use std::io::IoSlice;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

pub use crate::engine::{Event, Proto, Waker};
pub use crate::stats::{FlowCount, Snapshot, Stats};

/// CLOCK_MONOTONIC now, as the `now` to pass to [`Passt::process`] (read it
/// once per wake-up).
pub fn monotonic_now() -> Instant {
    Instant::from_nanos(crate::sys::monotonic_ns())
}

/// What kind of failure an [`Error`] is (the C codes, without `Ok`/`Null`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A bad configuration value or argument; the message names it.
    Invalid,
    /// A system call failed; the message says which and why.
    System,
    /// The call does not apply to this instance's attachment.
    Unsupported,
    /// `one-off`, or an `fd` attachment: the guest went away, the
    /// instance is done.
    GuestGone,
}

/// A failure, with a sentence saying what and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<RunError> for Error {
    fn from(e: RunError) -> Error {
        let kind = match &e {
            RunError::System(_) => ErrorKind::System,
            RunError::Unsupported(_) => ErrorKind::Unsupported,
            RunError::GuestGone => ErrorKind::GuestGone,
            RunError::Invalid(_) => ErrorKind::Invalid,
        };
        Error { kind, message: e.to_string() }
    }
}

/// The host's log function: (syslog level, message).
pub type LogFn = dyn Fn(i32, &str) + Send + Sync;

/// The host's event function (see [`Passt::set_event_callback`]).
pub type EventFn = Box<dyn FnMut(&Event) + Send>;

/// One instance: a guest attachment, its flows and forwarded ports.
/// Dropping it closes every socket and fd it opened.
pub struct Passt {
    inst: Instance,
    sink: Sink,
    on_event: Option<EventFn>,
}

impl fmt::Debug for Passt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passt").field("fd", &self.inst.fd()).finish_non_exhaustive()
    }
}

impl Passt {
    /// Validates `config`, reads the host's network configuration, attaches
    /// the guest side and opens the forwarded ports. Start-up messages go
    /// to stderr (see [`Passt::with_log`]).
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] for a configuration problem, [`ErrorKind::System`]
    /// when something could not be opened; the message names the culprit.
    pub fn new(config: &Config) -> Result<Passt, Error> {
        Passt::with_sink(config, Sink::default())
    }

    /// As [`Passt::new`], logging through `log` from the start (levels up
    /// to `max_level`).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// let mut config = passt::Config::new();
    /// for (k, v) in [("frames", ""), ("address", "10.0.2.15"), ("gateway", "10.0.2.2"), ("ipv4-only", "")] {
    ///     config.set(k, v).unwrap();
    /// }
    /// let lines: Arc<Mutex<Vec<(i32, String)>>> = Default::default();
    /// let l = lines.clone();
    /// let p = passt::Passt::with_log(&config, 6, move |level, msg| l.lock().unwrap().push((level, msg.to_string()))).unwrap();
    /// // Start-up is logged at info level (6): the addresses handed out.
    /// assert!(lines.lock().unwrap().iter().any(|(level, m)| *level == 6 && m.contains("10.0.2.15")));
    /// ```
    pub fn with_log(config: &Config, max_level: i32, log: impl Fn(i32, &str) + Send + Sync + 'static) -> Result<Passt, Error> {
        Passt::with_sink(config, Sink { func: Some(Arc::new(log)), max_level })
    }

    pub(crate) fn with_sink(config: &Config, sink: Sink) -> Result<Passt, Error> {
        let _guard = SinkGuard::enter(sink.clone());
        config.validate().map_err(|e| Error { kind: ErrorKind::Invalid, message: e.0 })?;
        let inst = Instance::new(config).map_err(|message| Error { kind: ErrorKind::System, message })?;
        Ok(Passt { inst, sink, on_event: None })
    }

    /// Replaces the log callback; `None` logs to stderr.
    pub fn set_log(&mut self, max_level: i32, log: Option<Box<LogFn>>) {
        self.sink = Sink { func: log.map(Arc::from), max_level };
    }

    pub(crate) fn set_sink(&mut self, sink: Sink) {
        self.sink = sink;
    }

    pub(crate) fn sink(&self) -> Sink {
        self.sink.clone()
    }

    /// The fd to poll for readability (owned by the instance).
    pub fn fd(&self) -> RawFd {
        self.inst.fd()
    }

    /// Does the work that is ready without blocking (see the module docs):
    /// returns when to call again at the latest (a soft deadline; `None`:
    /// only when the fd is readable).
    ///
    /// # Errors
    /// The instance cannot go on ([`ErrorKind::GuestGone`], [`ErrorKind::System`]).
    pub fn process(&mut self, now: Instant) -> Result<Option<Duration>, Error> {
        let _guard = SinkGuard::enter(self.sink.clone());
        let r = self.inst.process(now);
        self.deliver_events();
        Ok(r?.map(Duration::from_millis))
    }

    /// One frame from the guest (`frames` attachment), handled at once:
    /// replies may reach the output closure before this returns. Malformed
    /// frames are dropped and counted, not errors.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] for other attachments.
    pub fn frame_input(&mut self, frame: &[u8], now: Instant) -> Result<(), Error> {
        self.frames_input(std::iter::once(frame), now).map(|_| ())
    }

    /// Many frames from the guest, handled as one batch (acknowledgements
    /// coalesced, datagrams sent together); returns how many were taken
    /// (all of them).
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] for other attachments.
    pub fn frames_input<'a>(&mut self, frames: impl IntoIterator<Item = &'a [u8]>, now: Instant) -> Result<usize, Error> {
        let _guard = SinkGuard::enter(self.sink.clone());
        let r = self.inst.frames_input(frames, now);
        self.deliver_events();
        Ok(r?)
    }

    /// Sets where frames for the guest go (`frames` attachment): the
    /// closure gets a batch and returns how many it took, in order (see
    /// the module docs for what happens to the rest).
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] for other attachments.
    pub fn set_frame_output(&mut self, out: impl FnMut(&[IoSlice<'_>]) -> usize + Send + 'static) -> Result<(), Error> {
        let _guard = SinkGuard::enter(self.sink.clone());
        let r = self.inst.set_frame_output(Box::new(out));
        self.deliver_events();
        Ok(r?)
    }

    /// The output closure can take frames again: the fd becomes readable
    /// and the next [`Passt::process`] offers the held-back frames.
    pub fn frame_output_ready(&mut self) {
        self.inst.frame_output_ready();
    }

    /// A handle doing [`Passt::frame_output_ready`] from any thread.
    ///
    /// ```
    /// let mut config = passt::Config::new();
    /// for (k, v) in [("frames", ""), ("address", "10.0.2.15"), ("gateway", "10.0.2.2"), ("ipv4-only", "")] {
    ///     config.set(k, v).unwrap();
    /// }
    /// let p = passt::Passt::new(&config).unwrap();
    /// let waker = p.waker();
    /// std::thread::spawn(move || waker.wake()).join().unwrap();
    /// let mut pfd = libc::pollfd { fd: p.fd(), events: libc::POLLIN, revents: 0 };
    /// // SAFETY: one valid pollfd.
    /// assert_eq!(unsafe { libc::poll(&mut pfd, 1, 1000) }, 1, "readable");
    /// ```
    pub fn waker(&self) -> Waker {
        self.inst.waker()
    }

    /// Forwards more host ports to the guest while running: `spec` in the
    /// syntax of `-t`/`-u` ("8080", "2222:22", "127.0.0.1/5000-5010",
    /// "all"...). Returns the sockets opened.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`], the message naming the spec and the port:
    /// a bad spec, the protocol disabled, a port already forwarded or
    /// bound by another process. Nothing of the spec stays open then.
    ///
    /// ```
    /// use passt::api::{Passt, Proto};
    /// use std::net::{TcpListener, TcpStream};
    /// let mut config = passt::Config::new();
    /// for (k, v) in [("frames", ""), ("address", "10.0.2.15"), ("gateway", "10.0.2.2"), ("ipv4-only", "")] {
    ///     config.set(k, v).unwrap();
    /// }
    /// let mut p = Passt::new(&config).unwrap();
    /// let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    /// let spec = format!("127.0.0.1/{port}:22");
    /// assert_eq!(p.forward_add(Proto::Tcp, &spec).unwrap(), 1);
    /// // The kernel accepts at once; the guest gets a SYN at the next process().
    /// TcpStream::connect(("127.0.0.1", port)).unwrap();
    /// let twice = p.forward_add(Proto::Tcp, &spec).unwrap_err();
    /// assert!(twice.message.contains("already forwarded"), "{twice}");
    /// assert_eq!(p.forward_remove(Proto::Tcp, &format!("127.0.0.1/{port}")).unwrap(), 1);
    /// assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "refused once removed");
    /// ```
    pub fn forward_add(&mut self, proto: Proto, spec: &str) -> Result<usize, Error> {
        let _guard = SinkGuard::enter(self.sink.clone());
        Ok(self.inst.forward_add(proto, spec)?)
    }

    /// Stops forwarding the host ports `spec` names (same syntax, same bind
    /// address as when added; "all" for every port): their sockets are
    /// closed, so new connections are refused. TCP connections accepted
    /// before carry on to their end; UDP flows that came in through those
    /// ports end. Returns the sockets closed.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] for a bad spec or one matching no forwarded port.
    pub fn forward_remove(&mut self, proto: Proto, spec: &str) -> Result<usize, Error> {
        let _guard = SinkGuard::enter(self.sink.clone());
        Ok(self.inst.forward_remove(proto, spec)?)
    }

    /// Counters and flow numbers now.
    ///
    /// ```
    /// use passt::api::{monotonic_now, Passt};
    /// use passt::stats::Drop;
    /// let mut config = passt::Config::new();
    /// for (k, v) in [("frames", ""), ("address", "10.0.2.15"), ("gateway", "10.0.2.2"), ("ipv4-only", "")] {
    ///     config.set(k, v).unwrap();
    /// }
    /// let mut p = Passt::new(&config).unwrap();
    /// p.set_frame_output(|frames| frames.len()).unwrap();
    /// p.frame_input(&[0u8; 10], monotonic_now()).unwrap(); // shorter than Ethernet's header
    /// let s = p.stats();
    /// assert_eq!((s.counters.frames_in, s.counters.bytes_in), (1, 10));
    /// assert_eq!(s.counters.drops[Drop::Truncated as usize], 1);
    /// assert_eq!(s.tcp.current + s.udp.current + s.icmp.current, 0);
    /// ```
    pub fn stats(&self) -> Snapshot {
        self.inst.snapshot()
    }

    /// Calls `f` for each [`Event`], on the calling thread, before the
    /// call into the instance that caused it returns. `None` stops events.
    /// Set while a guest is attached, the first event is `GuestConnected`.
    ///
    /// ```
    /// use passt::api::{Event, Passt};
    /// use std::sync::{Arc, Mutex};
    /// let mut config = passt::Config::new();
    /// for (k, v) in [("frames", ""), ("address", "10.0.2.15"), ("gateway", "10.0.2.2"), ("ipv4-only", "")] {
    ///     config.set(k, v).unwrap();
    /// }
    /// let mut p = Passt::new(&config).unwrap();
    /// let seen: Arc<Mutex<Vec<Event>>> = Default::default();
    /// let s = seen.clone();
    /// p.set_event_callback(Some(Box::new(move |e: &Event| s.lock().unwrap().push(*e))));
    /// p.set_frame_output(|frames| frames.len()).unwrap(); // the in-process guest attaches
    /// assert_eq!(*seen.lock().unwrap(), vec![Event::GuestConnected]);
    /// ```
    pub fn set_event_callback(&mut self, f: Option<EventFn>) {
        self.inst.record_events(f.is_some());
        self.on_event = f;
    }

    /// Test facility: the next [`Passt::process`] panics inside the
    /// library (the C ABI turns that into `PASST_ERROR_PANIC` and disables
    /// the instance). For testing how a host handles internal errors only.
    pub fn debug_inject_panic(&mut self) {
        self.inst.debug_inject_panic();
    }

    /// The engine below, for tests and tools inside the crate's family.
    pub fn instance(&self) -> &Instance {
        &self.inst
    }

    fn deliver_events(&mut self) {
        let Some(f) = self.on_event.as_mut() else { return };
        for e in self.inst.take_events() {
            f(&e);
        }
    }
}

/// The library's version ("0.1.0"), the same as `passt_version()`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod tests {
    use super::*;

    fn send<T: Send>() {}
    fn sync<T: Sync>() {}

    #[test]
    fn threading_promises_hold() {
        // An instance may move to another thread; a waker may be shared.
        send::<Passt>();
        send::<Waker>();
        sync::<Waker>();
        send::<Error>();
    }
}
