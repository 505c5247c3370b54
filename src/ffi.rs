//! The C ABI: every `extern "C"` symbol, the panic boundary, handle casts.
//! A thin layer over [`crate::api`]: C types in, C types out.
//!
//! Conventions (rustls-ffi's): opaque handles; every pointer argument is
//! NULL-checked; each body runs inside `boundary`, which catches a panic,
//! logs it, poisons the instance so later calls fail fast with
//! `PASST_ERROR_PANIC`, and returns an error value instead of unwinding
//! into C. The ABI's rules for growing (new functions, keys, enum values,
//! trailing struct fields only) are in `docs/abi-policy.md` and at the top
//! of the generated header (`cbindgen.toml`).

#![allow(unsafe_code)]
#![allow(non_camel_case_types)]

use crate::api::{Error, ErrorKind, Event, Passt, Proto, Waker};
use crate::config::Config;
use crate::log::{Sink, SinkGuard};
use crate::stats::DROP_REASONS;
use crate::time::Instant;
use std::cell::UnsafeCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io::IoSlice;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// Error codes returned (negated) by the functions that return `int`.
/// The numbers never change; new codes are only ever appended.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum passt_error {
    /// Success.
    Ok = 0,
    /// A pointer argument was NULL.
    Null = 1,
    /// An invalid key or value; `passt_config_error()` says which.
    Invalid = 2,
    /// A system call failed; the message says which and why.
    System = 3,
    /// A bug inside the library was caught; the instance is unusable.
    Panic = 4,
    /// The operation does not apply to this instance's attachment.
    Unsupported = 5,
    /// The guest went away and the instance was told to stop then (`one-off`).
    GuestGone = 6,
}

/// Opaque configuration builder (see `passt_config_new`).
pub struct passt_config {
    config: Config,
    error: CString,
    /// Values returned by `passt_config_get`, kept alive until the next call.
    last_get: CString,
    log: Option<Sink>,
}

/// Opaque instance (see `passt_new`).
// The waker sits outside the cell so that `passt_frame_output_ready` may
// read it from another thread while the driving thread holds the cell's
// contents mutably.
pub struct passt {
    waker: Waker,
    inner: UnsafeCell<Inner>,
}

impl passt {
    fn inner_sink(&self) -> Sink {
        // SAFETY: only called by passt_free, which owns the instance.
        unsafe { &*self.inner.get() }.api.sink()
    }
}

/// What one thread at a time works on.
struct Inner {
    api: Passt,
    /// Set when a panic was caught: every later call fails fast.
    poisoned: bool,
    last_error: CString,
}

/// A host callback receiving host->guest frames for the `frames` attachment.
/// `frames` points to `n` iovecs, one frame each (Ethernet header first, no
/// length prefix), valid only during the call (copy what you keep).
/// Returns how many frames it took, in order. Taking fewer than `n` is
/// back-pressure: the rest stay queued, in order, and are offered again
/// later (see `passt_frame_output_ready()`); nothing is lost while the
/// queue (4 MiB) has room, and beyond that TCP waits and datagrams for the
/// guest are dropped and counted as `PASST_DROP_TX_FULL`. Runs on the
/// thread that called into the library; must not call back into the same
/// instance (except `passt_frame_output_ready()`).
pub type passt_frames_fn = Option<unsafe extern "C" fn(userdata: *mut c_void, frames: *const libc::iovec, n: usize) -> usize>;

/// A host log callback: `level` is a syslog level (3 error, 4 warning,
/// 6 info, 7 debug); `msg` is NUL-terminated, valid only during the call.
pub type passt_log_fn = Option<unsafe extern "C" fn(userdata: *mut c_void, level: c_int, msg: *const c_char)>;

/// Runs `f`, turning a panic into `on_panic` (after logging it).
fn boundary<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            log::error!("internal error caught at the C boundary: {what}");
            on_panic
        }
    }
}

/// A C string as text; `None` for NULL or invalid UTF-8.
///
/// # Safety
/// `s` is NULL or a valid NUL-terminated string.
unsafe fn text<'a>(s: *const c_char) -> Option<&'a str> {
    if s.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees a valid NUL-terminated string.
    unsafe { CStr::from_ptr(s) }.to_str().ok()
}

/// Copies `msg` into the caller's buffer, truncated, always NUL-terminated.
///
/// # Safety
/// `buf` is NULL or valid for writes of `len` bytes.
unsafe fn copy_out(msg: &str, buf: *mut c_char, len: usize) {
    if buf.is_null() || len == 0 {
        return;
    }
    let n = msg.len().min(len - 1);
    // SAFETY: buf has room for len >= n + 1 bytes, and msg holds n bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(msg.as_ptr().cast::<c_char>(), buf, n);
        *buf.add(n) = 0;
    }
}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

/// Wraps a C log callback as a sink.
fn c_sink(func: passt_log_fn, userdata: *mut c_void, max_level: c_int) -> Sink {
    /// The userdata pointer: the host promises it may be used from the
    /// thread driving the instance, which is the only one calling it.
    struct Userdata(*mut c_void);
    // SAFETY: see above; we never touch the pointer, only pass it back.
    unsafe impl Send for Userdata {}
    // SAFETY: as above.
    unsafe impl Sync for Userdata {}
    impl Userdata {
        // A method, so that closures capture the whole Send wrapper.
        fn get(&self) -> *mut c_void {
            self.0
        }
    }
    let data = Userdata(userdata);
    Sink {
        func: func.map(|f| -> crate::log::SinkFn {
            Arc::new(move |level, msg| {
                let msg = cstring(msg);
                // SAFETY: the host registered f with this userdata and keeps
                // both valid while the instance lives; msg outlives the call.
                unsafe { f(data.get(), level, msg.as_ptr()) }
            })
        }),
        max_level,
    }
}

/// Creates an empty configuration with passt's defaults.
/// Free it with `passt_config_free()`. Returns NULL only if out of memory.
#[unsafe(no_mangle)]
pub extern "C" fn passt_config_new() -> *mut passt_config {
    boundary(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(passt_config {
            config: Config::new(),
            error: CString::default(),
            last_get: CString::default(),
            log: None,
        }))
    })
}

/// Sets one option by passt's long option name without dashes ("socket",
/// "address", "tcp-ports", "ipv4-only"...), the value in passt's
/// command-line syntax. Flags take NULL or "" (or "yes"/"no"). Repeatable
/// options ("dns", "search", "tcp-ports", "udp-ports") accumulate.
/// Returns 0, or `-PASST_ERROR_INVALID` with the reason in
/// `passt_config_error()`, or `-PASST_ERROR_NULL`.
///
/// # Safety
/// `c` comes from `passt_config_new()`; `key` is a NUL-terminated string;
/// `value` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_config_set(c: *mut passt_config, key: *const c_char, value: *const c_char) -> c_int {
    boundary(-(passt_error::Panic as c_int), || {
        // SAFETY: the caller passes a pointer from passt_config_new or NULL.
        let Some(c) = (unsafe { c.as_mut() }) else { return -(passt_error::Null as c_int) };
        // SAFETY: the caller guarantees NUL-terminated strings or NULL.
        let (key, value) = unsafe { (text(key), text(value)) };
        let Some(key) = key else {
            c.error = cstring("option name is NULL or not UTF-8");
            return -(passt_error::Null as c_int);
        };
        match c.config.set(key, value.unwrap_or("")) {
            Ok(()) => 0,
            Err(e) => {
                c.error = cstring(&e.0);
                -(passt_error::Invalid as c_int)
            }
        }
    })
}

/// Parses a whole passt command line (`argv[0]` is the program name): short
/// and long options, `--opt=value`, grouped short flags. Options that only
/// concern a process (foreground, pid, log-file, runas, help, version...)
/// are stored for `passt_config_get()`. Returns 0 or a negative error, with
/// the offending option named in `passt_config_error()`.
///
/// # Safety
/// `c` comes from `passt_config_new()`; `argv` holds `argc` valid
/// NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_config_parse_args(c: *mut passt_config, argc: c_int, argv: *const *const c_char) -> c_int {
    boundary(-(passt_error::Panic as c_int), || {
        // SAFETY: the caller passes a pointer from passt_config_new or NULL.
        let Some(c) = (unsafe { c.as_mut() }) else { return -(passt_error::Null as c_int) };
        if argv.is_null() || argc < 0 {
            c.error = cstring("argv is NULL or argc negative");
            return -(passt_error::Null as c_int);
        }
        let mut args = Vec::with_capacity(argc as usize);
        for i in 0..argc as usize {
            // SAFETY: argv holds argc valid pointers to C strings.
            let arg = unsafe { *argv.add(i) };
            // SAFETY: as above.
            match unsafe { text(arg) } {
                Some(a) => args.push(a.to_string()),
                None => {
                    c.error = cstring(&format!("argument {i} is NULL or not UTF-8"));
                    return -(passt_error::Invalid as c_int);
                }
            }
        }
        match c.config.parse_args(&args) {
            Ok(()) => 0,
            Err(e) => {
                c.error = cstring(&e.0);
                -(passt_error::Invalid as c_int)
            }
        }
    })
}

/// The value last set for `key`: "" for a flag that is set, NULL when never
/// set. The string stays valid until the next call on `c` or its free.
///
/// # Safety
/// `c` comes from `passt_config_new()`; `key` is a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_config_get(c: *mut passt_config, key: *const c_char) -> *const c_char {
    boundary(std::ptr::null(), || {
        // SAFETY: the caller passes a pointer from passt_config_new or NULL.
        let Some(c) = (unsafe { c.as_mut() }) else { return std::ptr::null() };
        // SAFETY: the caller guarantees a NUL-terminated string or NULL.
        let Some(key) = (unsafe { text(key) }) else { return std::ptr::null() };
        match c.config.get(key) {
            Some(v) => {
                c.last_get = cstring(v);
                c.last_get.as_ptr()
            }
            None => std::ptr::null(),
        }
    })
}

/// Why the last failing call on `c` failed ("" if none). Valid until the
/// next call on `c` or its free.
///
/// # Safety
/// `c` is NULL or comes from `passt_config_new()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_config_error(c: *const passt_config) -> *const c_char {
    // SAFETY: the caller passes a pointer from passt_config_new or NULL.
    match unsafe { c.as_ref() } {
        Some(c) => c.error.as_ptr(),
        None => c"config is NULL".as_ptr(),
    }
}

/// Sets the log callback used from `passt_new()` on (so that start-up
/// messages reach it too); the instance inherits it. `max_level` is the
/// highest syslog level passed (7 = debug, 8 adds per-packet traces).
/// A NULL `func` logs to stderr.
///
/// # Safety
/// `c` comes from `passt_config_new()`; `func` and `userdata` stay valid for
/// the life of every instance created from `c`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_config_set_log(c: *mut passt_config, func: passt_log_fn, userdata: *mut c_void, max_level: c_int) -> c_int {
    boundary(-(passt_error::Panic as c_int), || {
        // SAFETY: the caller passes a pointer from passt_config_new or NULL.
        let Some(c) = (unsafe { c.as_mut() }) else { return -(passt_error::Null as c_int) };
        c.log = Some(c_sink(func, userdata, max_level));
        0
    })
}

/// Frees a configuration. NULL is a no-op.
///
/// # Safety
/// `c` is NULL or comes from `passt_config_new()` and is not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_config_free(c: *mut passt_config) {
    if !c.is_null() {
        // SAFETY: c came from Box::into_raw in passt_config_new.
        boundary((), || drop(unsafe { Box::from_raw(c) }));
    }
}

/// Creates an instance: validates the configuration, discovers the host's
/// addresses, attaches the guest side (listening socket, fd, tap in a
/// namespace, or in-process frames) and opens forwarded ports. On failure
/// returns NULL and writes a readable reason into `err` (truncated to
/// `errlen`, always NUL-terminated). `c` may be freed right after.
///
/// # Safety
/// `c` comes from `passt_config_new()`; `err` is NULL or valid for `errlen`
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_new(c: *const passt_config, err: *mut c_char, errlen: usize) -> *mut passt {
    let result = boundary(Err("internal error (panic) while creating the instance".to_string()), || {
        // SAFETY: the caller passes a pointer from passt_config_new or NULL.
        let Some(c) = (unsafe { c.as_ref() }) else { return Err("config is NULL".to_string()) };
        let sink = c.log.clone().unwrap_or_default();
        let api = Passt::with_sink(&c.config, sink).map_err(|e| e.message)?;
        let waker = api.waker();
        let inner = Inner { api, poisoned: false, last_error: CString::default() };
        Ok(Box::into_raw(Box::new(passt { waker, inner: UnsafeCell::new(inner) })))
    });
    match result {
        Ok(p) => p,
        Err(msg) => {
            // SAFETY: the caller guarantees err is NULL or valid for errlen bytes.
            unsafe { copy_out(&msg, err, errlen) };
            std::ptr::null_mut()
        }
    }
}

/// Frees an instance: closes every socket and fd it opened, removes its
/// listening socket file. NULL is a no-op. Works on an instance disabled
/// by a caught panic too.
///
/// # Safety
/// `p` is NULL or comes from `passt_new()` and is not used afterwards (by
/// any thread).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_free(p: *mut passt) {
    if p.is_null() {
        return;
    }
    // SAFETY: p came from Box::into_raw in passt_new.
    let boxed = unsafe { Box::from_raw(p) };
    // Messages while closing go where the instance's went.
    let _guard = SinkGuard::enter(boxed.inner_sink());
    boundary((), || drop(boxed));
}

/// The instance's single-thread part, for the thread driving it.
///
/// # Safety
/// `p` is NULL or a live pointer from `passt_new()`, and no other call on
/// it runs meanwhile (the caller's duty, stated on every entry point)
/// except `passt_frame_output_ready`, which touches only `waker`.
unsafe fn inner<'a>(p: *const passt) -> Option<&'a mut Inner> {
    // SAFETY: see above: the cell's contents are reached by one thread.
    unsafe { p.as_ref().map(|p| &mut *p.inner.get()) }
}

/// Records `e` as the last error and returns its negated code.
fn fail(inner: &mut Inner, e: Error) -> c_int {
    inner.last_error = cstring(&e.message);
    let code = match e.kind {
        ErrorKind::Invalid => passt_error::Invalid,
        ErrorKind::System => passt_error::System,
        ErrorKind::Unsupported => passt_error::Unsupported,
        ErrorKind::GuestGone => passt_error::GuestGone,
    };
    -(code as c_int)
}

/// Runs `f` on the instance, unless poisoned; a panic poisons it.
///
/// # Safety
/// As for [`inner`].
unsafe fn with_instance(p: *const passt, f: impl FnOnce(&mut Inner) -> c_int) -> c_int {
    // SAFETY: forwarded caller guarantee.
    let Some(inner) = (unsafe { self::inner(p) }) else { return -(passt_error::Null as c_int) };
    if inner.poisoned {
        return -(passt_error::Panic as c_int);
    }
    // Also for the boundary's own message, logged after the API's guard is gone.
    let _guard = SinkGuard::enter(inner.api.sink());
    let ip: *mut Inner = inner;
    let r = boundary(None, || Some(f(inner)));
    match r {
        Some(v) => v,
        None => {
            // SAFETY: ip is still the live instance; the closure that held
            // the other reference has ended (it panicked and was dropped).
            let inner = unsafe { &mut *ip };
            inner.poisoned = true;
            inner.last_error = cstring("internal error (panic caught): instance disabled");
            -(passt_error::Panic as c_int)
        }
    }
}

/// The one fd to poll for readability: readable whenever the instance has
/// work (guest frames, host sockets, `passt_frame_output_ready()`). Watch
/// it level-triggered (not `EPOLLET`): work a `passt_process()` call left
/// keeps it readable without a new edge. Owned by the instance: do not
/// close. -1 if `p` is NULL.
///
/// # Safety
/// `p` is NULL or a live pointer from `passt_new()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_fd(p: *const passt) -> c_int {
    // SAFETY: the caller passes a live instance pointer or NULL.
    match unsafe { inner(p) } {
        Some(i) => i.api.fd(),
        None => -1,
    }
}

/// Does one bounded round of the work that is ready, without blocking:
/// guest frames and host sockets up to a batch each, then timers due at
/// `now_ns` (CLOCK_MONOTONIC in nanoseconds, read once by the caller per
/// wake-up). Work still pending keeps `passt_fd()` readable, so a loop
/// that polls it calls again at once; such a loop may yield the CPU in
/// between (`sched_yield()`), which lets the readers of what was just
/// delivered keep up.
/// Returns the milliseconds until it must be called again at the latest
/// (a soft deadline: early calls are harmless), -1 for no deadline (wait
/// for `passt_fd()` only), or below -1 a negated `passt_error` when the
/// instance cannot go on (`passt_last_error()` says why). A NULL `p`
/// gives `-PASST_ERROR_INVALID` (not -1, which means "no deadline").
/// After an internal error (`-PASST_ERROR_PANIC`) every later call on the
/// instance returns that code at once; only `passt_free()` remains useful.
///
/// # Safety
/// `p` is NULL or a live pointer from `passt_new()`; one thread at a time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_process(p: *mut passt, now_ns: u64) -> c_int {
    if p.is_null() {
        return -(passt_error::Invalid as c_int);
    }
    // SAFETY: forwarded caller guarantee.
    unsafe {
        with_instance(p, |i| match i.api.process(Instant::from_nanos(now_ns)) {
            Ok(None) => -1,
            Ok(Some(d)) => d.as_millis().min(i32::MAX as u128) as c_int,
            Err(e) => fail(i, e),
        })
    }
}

/// Why the instance stopped or the last call failed ("" if none). Valid
/// until the next call on `p`.
///
/// # Safety
/// `p` is NULL or a live pointer from `passt_new()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_last_error(p: *const passt) -> *const c_char {
    // SAFETY: the caller passes a live instance pointer or NULL.
    match unsafe { inner(p) } {
        Some(i) => i.last_error.as_ptr(),
        None => c"instance is NULL".as_ptr(),
    }
}

/// Replaces the instance's log callback (see `passt_config_set_log`).
/// Messages a guest can trigger at will are rate-limited (one line per
/// kind every 5 s, with the number suppressed).
///
/// # Safety
/// `p` is NULL or a live pointer from `passt_new()`; `func`/`userdata`
/// stay valid while the instance lives.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_set_log(p: *mut passt, func: passt_log_fn, userdata: *mut c_void, max_level: c_int) {
    // SAFETY: the caller passes a live instance pointer or NULL.
    if let Some(i) = unsafe { inner(p) } {
        i.api.set_sink(c_sink(func, userdata, max_level));
    }
}

/// The host's userdata pointer, passed back to its callbacks only, on the
/// thread that drives the instance (the host's promise when registering).
struct Userdata(*mut c_void);
// SAFETY: see above; we never dereference the pointer.
unsafe impl Send for Userdata {}
impl Userdata {
    // A method, so that closures capture the whole Send wrapper.
    fn get(&self) -> *mut c_void {
        self.0
    }
}

/// Sets the callback that receives host->guest frames for an instance
/// created with the "frames" attachment (see `passt_frames_fn` for
/// back-pressure). Returns 0, or `-PASST_ERROR_UNSUPPORTED` for other
/// attachments.
///
/// # Safety
/// `p` is a live pointer from `passt_new()`; `func`/`userdata` stay valid
/// while the instance lives.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_set_frame_output(p: *mut passt, func: passt_frames_fn, userdata: *mut c_void) -> c_int {
    let data = Userdata(userdata);
    let set = move |i: &mut Inner| {
        let Some(f) = func else { return -(passt_error::Null as c_int) };
        let out = move |frames: &[IoSlice<'_>]| -> usize {
            // SAFETY: IoSlice is ABI-compatible with struct iovec; the
            // frames stay valid during the call; the host vouched for f.
            let taken = unsafe { f(data.get(), frames.as_ptr().cast(), frames.len()) };
            taken.min(frames.len())
        };
        match i.api.set_frame_output(out) {
            Ok(()) => 0,
            Err(e) => fail(i, e),
        }
    };
    // SAFETY: forwarded caller guarantee.
    unsafe { with_instance(p, set) }
}

/// Hands one guest->host frame (starting with the Ethernet header) to an
/// instance with the "frames" attachment, and processes it at once
/// (replies may reach the output callback before this returns).
/// Returns 0 (malformed frames are dropped and counted, not errors) or a
/// negative `passt_error`.
///
/// # Safety
/// `p` is a live pointer from `passt_new()`; `frame` is valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_frame_input(p: *mut passt, frame: *const c_void, len: usize, now_ns: u64) -> c_int {
    let input = |i: &mut Inner| {
        if frame.is_null() {
            return -(passt_error::Null as c_int);
        }
        // SAFETY: the caller guarantees frame is valid for len bytes.
        let bytes = unsafe { std::slice::from_raw_parts(frame.cast::<u8>(), len) };
        match i.api.frame_input(bytes, Instant::from_nanos(now_ns)) {
            Ok(()) => 0,
            Err(e) => fail(i, e),
        }
    };
    // SAFETY: forwarded caller guarantee.
    unsafe { with_instance(p, input) }
}

/// Hands `n` guest->host frames (one per iovec, each starting with the
/// Ethernet header) to an instance with the "frames" attachment and
/// processes them as one batch: acknowledgements are coalesced and
/// datagrams sent together, then replies are flushed to the output
/// callback. Returns how many frames were taken (all `n`: malformed frames
/// are dropped and counted, not errors), or a negative `passt_error`
/// (`-PASST_ERROR_INVALID` if `n` exceeds `INT_MAX`). The iovecs and frames
/// need only stay valid during the call.
///
/// # Safety
/// `p` is a live pointer from `passt_new()`; `frames` points to `n` iovecs
/// (or is NULL when `n` is 0), each valid for `iov_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_frames_input(p: *mut passt, frames: *const libc::iovec, n: usize, now_ns: u64) -> c_int {
    let input = |i: &mut Inner| {
        if n > i32::MAX as usize {
            return -(passt_error::Invalid as c_int);
        }
        if n == 0 {
            return 0;
        }
        if frames.is_null() {
            return -(passt_error::Null as c_int);
        }
        // SAFETY: the caller guarantees n valid iovecs.
        let iovs = unsafe { std::slice::from_raw_parts(frames, n) };
        if iovs.iter().any(|v| v.iov_base.is_null() && v.iov_len > 0) {
            return -(passt_error::Null as c_int);
        }
        let slices = iovs.iter().map(|v| {
            if v.iov_len == 0 {
                return &[][..];
            }
            // SAFETY: each iovec is valid for iov_len bytes (caller).
            unsafe { std::slice::from_raw_parts(v.iov_base.cast::<u8>(), v.iov_len) }
        });
        match i.api.frames_input(slices, Instant::from_nanos(now_ns)) {
            Ok(k) => k as c_int,
            Err(e) => fail(i, e),
        }
    };
    // SAFETY: forwarded caller guarantee.
    unsafe { with_instance(p, input) }
}

/// Tells a "frames" instance that its output callback can take frames
/// again after taking fewer than offered: `passt_fd()` becomes readable and
/// the next `passt_process()` offers the held-back frames. Hosts that call
/// this are not polled: without it, `passt_process()` returns a deadline of
/// 1 ms while frames are held back. The one function that may be called
/// from any thread, at any time, even during another call on `p` (from the
/// output callback, for instance). Returns 0, or `-PASST_ERROR_NULL`.
///
/// # Safety
/// `p` is NULL or a live pointer from `passt_new()`, not being freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_frame_output_ready(p: *const passt) -> c_int {
    // SAFETY: the caller passes a live instance pointer or NULL; only the
    // waker (outside the cell, immutable, thread-safe) is touched.
    match unsafe { p.as_ref() } {
        Some(p) => {
            p.waker.wake();
            0
        }
        None => -(passt_error::Null as c_int),
    }
}

/// Checks a protocol name and a spec string.
///
/// # Safety
/// Both are NULL or NUL-terminated strings.
unsafe fn forward_args(i: &mut Inner, proto: *const c_char, spec: *const c_char) -> Result<(Proto, String), c_int> {
    // SAFETY: forwarded caller guarantee.
    let (proto_s, spec_s) = unsafe { (text(proto), text(spec)) };
    let (Some(proto_s), Some(spec_s)) = (proto_s, spec_s) else {
        i.last_error = cstring("protocol or port specification is NULL or not UTF-8");
        return Err(-(passt_error::Null as c_int));
    };
    match Proto::parse(proto_s) {
        Some(p) => Ok((p, spec_s.to_string())),
        None => Err(fail(i, Error { kind: ErrorKind::Invalid, message: format!("unknown protocol '{proto_s}' (not \"tcp\" or \"udp\")") })),
    }
}

/// Forwards more host ports to the guest while the instance runs, as the
/// `-t`/`-u` options do at start: `proto` is "tcp" or "udp", `spec` in
/// their syntax ("8080", "2222:22", "127.0.0.1/5000-5010", "~22", "all").
/// Returns the number of sockets opened (>= 0), or `-PASST_ERROR_INVALID`
/// with `passt_last_error()` naming the spec and the reason: it does not
/// parse, the protocol is disabled, a port is forwarded already or is bound
/// by another process. On error nothing of `spec` stays open.
///
/// # Safety
/// `p` is a live pointer from `passt_new()`; `proto` and `spec` are
/// NUL-terminated strings; one thread at a time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_forward_add(p: *mut passt, proto: *const c_char, spec: *const c_char) -> c_int {
    let add = |i: &mut Inner| {
        // SAFETY: forwarded caller guarantee.
        let (proto, spec) = match unsafe { forward_args(i, proto, spec) } {
            Ok(x) => x,
            Err(rc) => return rc,
        };
        match i.api.forward_add(proto, &spec) {
            Ok(n) => n.min(i32::MAX as usize) as c_int,
            Err(e) => fail(i, e),
        }
    };
    // SAFETY: forwarded caller guarantee.
    unsafe { with_instance(p, add) }
}

/// Stops forwarding the host ports `spec` names (`proto` "tcp" or "udp";
/// the same bind address as when added; "all" for every port): their
/// sockets are closed, so new connections and datagrams are refused. TCP
/// connections accepted earlier continue until they end; UDP flows that
/// came in through those ports end at once. Returns the number of sockets
/// closed (> 0), or `-PASST_ERROR_INVALID` when `spec` does not parse or
/// matches no forwarded port (`passt_last_error()` says which).
///
/// # Safety
/// As for `passt_forward_add()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_forward_remove(p: *mut passt, proto: *const c_char, spec: *const c_char) -> c_int {
    let remove = |i: &mut Inner| {
        // SAFETY: forwarded caller guarantee.
        let (proto, spec) = match unsafe { forward_args(i, proto, spec) } {
            Ok(x) => x,
            Err(rc) => return rc,
        };
        match i.api.forward_remove(proto, &spec) {
            Ok(n) => n.min(i32::MAX as usize) as c_int,
            Err(e) => fail(i, e),
        }
    };
    // SAFETY: forwarded caller guarantee.
    unsafe { with_instance(p, remove) }
}

/// Why frames were dropped: indices into `passt_stats.drops`. Never
/// renumbered; new reasons are appended (up to `PASST_DROP_SLOTS`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum passt_drop {
    /// Shorter than a header or than its own length fields.
    Truncated = 0,
    /// A length field inconsistent with the frame.
    BadLength = 1,
    /// An IP header or L4 checksum was wrong.
    BadChecksum = 2,
    /// Malformed fields (version, options...).
    Malformed = 3,
    /// Valid but unsupported (fragments, VLAN, unknown protocol...).
    Unsupported = 4,
    /// Not for us (another MAC, a martian address...).
    NotForUs = 5,
    /// A limit was reached (flows, fds, memory).
    Limit = 6,
    /// Too large for the framing or our buffers.
    Oversize = 7,
    /// A frame for the guest that the guest side could not take (queue full).
    TxFull = 8,
    /// A feature switched off by configuration (no-udp...).
    Disabled = 9,
    /// The length of `passt_stats.drops`: room for future reasons.
    Slots = 32,
}

/// Statistics of an instance, filled by `passt_stats()`.
///
/// Versioning: fields are only ever appended, never moved, resized or
/// removed. The library fills `min(out_size, its own sizeof)` bytes and
/// stores that number in `size`: a program built against an older header
/// gets the fields it knows, one built against a newer header sees from
/// `size` which fields this library filled (it writes nothing beyond:
/// zero the struct first).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct passt_stats {
    /// Bytes of this struct the library filled.
    pub size: u64,
    /// Frames from the guest (whatever became of them) and their bytes.
    pub frames_in: u64,
    pub bytes_in: u64,
    /// Frames handed to the guest side (written, or taken by the output
    /// callback) and their bytes.
    pub frames_out: u64,
    pub bytes_out: u64,
    /// Frames dropped, indexed by `enum passt_drop` (slots beyond the
    /// reasons this library knows stay 0). `passt_drop_name()` names them.
    pub drops: [u64; 32],
    /// Flows open now, and the most open at once, per protocol.
    pub tcp_flows: u64,
    pub tcp_flows_peak: u64,
    pub udp_flows: u64,
    pub udp_flows_peak: u64,
    pub icmp_flows: u64,
    pub icmp_flows_peak: u64,
    /// Sockets listening for forwarded TCP ports, bound for UDP ports.
    pub tcp_forwards: u64,
    pub udp_forwards: u64,
    /// Guests attached so far (accepted connections, fd/tap start, frame
    /// output set).
    pub guest_connects: u64,
    /// Addresses handed out: DHCPACKs, DHCPv6 REPLYs with an address.
    pub dhcp_leases: u64,
    pub dhcpv6_leases: u64,
}

impl passt_stats {
    /// The C view of a snapshot.
    pub fn from_snapshot(s: &crate::stats::Snapshot) -> passt_stats {
        let c = &s.counters;
        let mut drops = [0u64; 32];
        drops[..DROP_REASONS].copy_from_slice(&c.drops);
        passt_stats {
            size: std::mem::size_of::<passt_stats>() as u64,
            frames_in: c.frames_in,
            bytes_in: c.bytes_in,
            frames_out: c.frames_out,
            bytes_out: c.bytes_out,
            drops,
            tcp_flows: s.tcp.current,
            tcp_flows_peak: s.tcp.peak,
            udp_flows: s.udp.current,
            udp_flows_peak: s.udp.peak,
            icmp_flows: s.icmp.current,
            icmp_flows_peak: s.icmp.peak,
            tcp_forwards: s.tcp_forwards,
            udp_forwards: s.udp_forwards,
            guest_connects: c.guest_connects,
            dhcp_leases: c.dhcp_leases,
            dhcpv6_leases: c.dhcpv6_leases,
        }
    }
}

/// Copies the instance's statistics into `out`: `min(out_size,
/// sizeof(struct passt_stats))` bytes, `out->size` set to that number when
/// `out_size >= 8` (see `struct passt_stats` for the versioning rule).
/// Pass `sizeof(struct passt_stats)` as `out_size`. Returns the number of
/// bytes written, or a negative `passt_error`. Cheap: counters are kept as
/// the instance runs; flows are counted from the tables' sizes.
///
/// # Safety
/// `p` is a live pointer from `passt_new()`; `out` is valid for writes of
/// `out_size` bytes; one thread at a time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_stats(p: *const passt, out: *mut passt_stats, out_size: usize) -> c_int {
    let copy = |i: &mut Inner| {
        if out.is_null() {
            return -(passt_error::Null as c_int);
        }
        let mut full = passt_stats::from_snapshot(&i.api.stats());
        let n = out_size.min(std::mem::size_of::<passt_stats>());
        full.size = n as u64;
        // SAFETY: out is valid for out_size >= n bytes (caller); full is a
        // plain-data struct of at least n bytes; they do not overlap.
        unsafe { std::ptr::copy_nonoverlapping((&full as *const passt_stats).cast::<u8>(), out.cast::<u8>(), n) };
        n as c_int
    };
    // SAFETY: forwarded caller guarantee.
    unsafe { with_instance(p, copy) }
}

/// A short stable name for a drop reason ("truncated", "tx-full"...), or
/// NULL for an index this library does not know. A static string.
#[unsafe(no_mangle)]
pub extern "C" fn passt_drop_name(reason: c_int) -> *const c_char {
    const NAMES: [&CStr; DROP_REASONS] = [
        c"truncated",
        c"bad-length",
        c"bad-checksum",
        c"malformed",
        c"unsupported",
        c"not-for-us",
        c"limit",
        c"oversize",
        c"tx-full",
        c"disabled",
    ];
    usize::try_from(reason).ok().and_then(|i| NAMES.get(i)).map_or(std::ptr::null(), |n| n.as_ptr())
}

/// What a `passt_event` reports. Never renumbered; new kinds are appended
/// (ignore kinds you do not know).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum passt_event_kind {
    /// A guest attached (connection accepted, or frame output set); also
    /// reported when events are switched on while a guest is attached
    /// (a tap or an fd is from the start).
    GuestConnected = 1,
    /// The guest went away (its connection or fd closed).
    GuestDisconnected = 2,
    /// The guest used a new source address, or changed it: `family` and
    /// `addr` say which (IPv4, IPv6 global and link-local each count).
    GuestAddress = 3,
    /// A DHCPACK handed `addr` (IPv4) to the guest with MAC `mac`.
    DhcpLease = 4,
    /// A DHCPv6 REPLY handed `addr` (IPv6) to the guest with MAC `mac`
    /// (zero if not seen yet).
    Dhcpv6Lease = 5,
}

/// One event, valid only during the callback. Versioning: `size` is the
/// number of bytes the library filled; fields are only ever appended.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct passt_event {
    /// `sizeof(struct passt_event)` as the library knows it.
    pub size: u32,
    /// A `enum passt_event_kind` value (a fixed-size field: ignore values
    /// you do not know).
    pub kind: u32,
    /// `AF_INET`, `AF_INET6`, or 0 when the event has no address.
    pub family: c_int,
    /// The address: 4 bytes for IPv4, 16 for IPv6, network order.
    pub addr: [u8; 16],
    /// The guest's MAC address when the event has one, else zero.
    pub mac: [u8; 6],
    /// Zero; room for future fields.
    pub reserved: [u8; 30],
}

impl passt_event {
    /// The C view of an event.
    pub fn from_event(e: &Event) -> passt_event {
        let mut ev = passt_event {
            size: std::mem::size_of::<passt_event>() as u32,
            kind: passt_event_kind::GuestConnected as u32,
            family: 0,
            addr: [0; 16],
            mac: [0; 6],
            reserved: [0; 30],
        };
        let set_addr = |ev: &mut passt_event, a: std::net::IpAddr| match a {
            std::net::IpAddr::V4(v4) => {
                ev.family = libc::AF_INET;
                ev.addr[..4].copy_from_slice(&v4.octets());
            }
            std::net::IpAddr::V6(v6) => {
                ev.family = libc::AF_INET6;
                ev.addr = v6.octets();
            }
        };
        match *e {
            Event::GuestConnected => ev.kind = passt_event_kind::GuestConnected as u32,
            Event::GuestDisconnected => ev.kind = passt_event_kind::GuestDisconnected as u32,
            Event::GuestAddress(a) => {
                ev.kind = passt_event_kind::GuestAddress as u32;
                set_addr(&mut ev, a);
            }
            Event::DhcpLease { addr, mac } => {
                ev.kind = passt_event_kind::DhcpLease as u32;
                set_addr(&mut ev, addr.into());
                ev.mac = mac;
            }
            Event::Dhcpv6Lease { addr, mac } => {
                ev.kind = passt_event_kind::Dhcpv6Lease as u32;
                set_addr(&mut ev, addr.into());
                ev.mac = mac;
            }
        }
        ev
    }
}

/// A host event callback; `ev` is valid only during the call.
pub type passt_event_fn = Option<unsafe extern "C" fn(userdata: *mut c_void, ev: *const passt_event)>;

/// Sets (or, with a NULL `func`, clears) the event callback: guest
/// attached or gone, guest addresses seen, DHCP/DHCPv6 leases handed out
/// (see `enum passt_event_kind`). Events are delivered on the calling
/// thread before the call that caused them (`passt_process()`,
/// `passt_frame_input()`...) returns; the callback must not call back into
/// the same instance. Events of a `fd` or `netns` attachment's start
/// happen in `passt_new()`, before a callback can be set. Returns 0 or a
/// negative `passt_error`.
///
/// # Safety
/// `p` is a live pointer from `passt_new()`; `func`/`userdata` stay valid
/// while the instance lives; one thread at a time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_set_event_callback(p: *mut passt, func: passt_event_fn, userdata: *mut c_void) -> c_int {
    let data = Userdata(userdata);
    let set = move |i: &mut Inner| {
        let cb = func.map(|f| -> crate::api::EventFn {
            Box::new(move |e: &Event| {
                let ev = passt_event::from_event(e);
                // SAFETY: the host registered f with this userdata; ev
                // outlives the call.
                unsafe { f(data.get(), &ev) }
            })
        });
        i.api.set_event_callback(cb);
        0
    };
    // SAFETY: forwarded caller guarantee.
    unsafe { with_instance(p, set) }
}

/// Testing aid, never needed in production: makes the next
/// `passt_process()` on `p` panic inside the library, so that a host (and
/// our test suite) can check what happens then: that call returns
/// `-PASST_ERROR_PANIC`, the instance is disabled (every later call returns
/// the same code, `passt_last_error()` says so), `passt_free()` still
/// releases everything, and the host process carries on. Returns 0 or a
/// negative `passt_error`.
///
/// # Safety
/// `p` is a live pointer from `passt_new()`; one thread at a time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_debug_inject_panic(p: *mut passt) -> c_int {
    // SAFETY: forwarded caller guarantee.
    unsafe {
        with_instance(p, |i| {
            i.api.debug_inject_panic();
            0
        })
    }
}

/// The library's version, e.g. "0.1.0". A static string. See the ABI
/// policy at the top of this header: the soname (libpasst.so.0) changes
/// only for an incompatible change; within it, functions, config keys,
/// enum values and trailing struct fields are only ever added.
#[unsafe(no_mangle)]
pub extern "C" fn passt_version() -> *const c_char {
    const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };
    VERSION.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_indices_match_the_engine() {
        for d in crate::stats::ALL_DROPS {
            // SAFETY: the pointer is NULL or a static C string.
            let name = unsafe { CStr::from_ptr(passt_drop_name(d as c_int)) };
            assert_eq!(name.to_str().unwrap(), d.name());
        }
        assert!(passt_drop_name(DROP_REASONS as c_int).is_null());
        assert!(passt_drop_name(-1).is_null());
        let c_reasons = [
            passt_drop::Truncated,
            passt_drop::BadLength,
            passt_drop::BadChecksum,
            passt_drop::Malformed,
            passt_drop::Unsupported,
            passt_drop::NotForUs,
            passt_drop::Limit,
            passt_drop::Oversize,
            passt_drop::TxFull,
            passt_drop::Disabled,
        ];
        for (c, d) in c_reasons.iter().zip(crate::stats::ALL_DROPS) {
            assert_eq!(*c as usize, d as usize);
        }
        assert!(DROP_REASONS <= passt_drop::Slots as usize);
    }

    #[test]
    fn struct_layouts_are_stable() {
        // Appending fields is the only allowed change: these grow, never shrink.
        assert_eq!(std::mem::size_of::<passt_stats>(), 8 * (5 + 32 + 11));
        assert_eq!(std::mem::offset_of!(passt_stats, drops), 40);
        assert_eq!(std::mem::size_of::<passt_event>(), 64);
    }
}
