//! The C ABI: every `extern "C"` symbol, the panic boundary, handle casts.
//!
//! Conventions (rustls-ffi's): opaque handles; every pointer argument is
//! NULL-checked; each body runs inside [`boundary`], which catches a panic,
//! logs it, poisons the instance so later calls fail fast with
//! `PASST_ERR_PANIC`, and returns an error value instead of unwinding into C.

#![allow(unsafe_code)]
#![allow(non_camel_case_types)]

use crate::config::Config;
use crate::engine::Instance;
use crate::log::{Sink, SinkGuard};
use crate::time::Instant;
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
pub struct passt {
    instance: Instance,
    sink: Sink,
    /// Set when a panic was caught: every later call fails fast.
    poisoned: bool,
    last_error: CString,
}

/// A host callback receiving host->guest frames for the `frames` attachment.
/// `frames` points to `n` iovecs, one frame each (Ethernet header first, no
/// length prefix), valid only during the call. Returns how many frames it
/// took, in order (fewer than `n` is back-pressure: the rest are dropped and
/// counted; TCP data is sent again later). Runs on the thread that called
/// into the library; must not call back into the same instance.
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
        let _guard = SinkGuard::enter(sink.clone());
        let instance = Instance::new(&c.config).map_err(|e| e.to_string())?;
        Ok(Box::into_raw(Box::new(passt { instance, sink, poisoned: false, last_error: CString::default() })))
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
/// listening socket file. NULL is a no-op.
///
/// # Safety
/// `p` is NULL or comes from `passt_new()` and is not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_free(p: *mut passt) {
    if p.is_null() {
        return;
    }
    // SAFETY: p came from Box::into_raw in passt_new.
    let boxed = unsafe { Box::from_raw(p) };
    let _guard = SinkGuard::enter(boxed.sink.clone());
    boundary((), || drop(boxed));
}

/// Runs `f` on the instance with its log sink, unless poisoned; a panic
/// poisons it.
///
/// # Safety
/// `p` is NULL or a live pointer from `passt_new()`.
unsafe fn with_instance(p: *mut passt, f: impl FnOnce(&mut passt) -> c_int) -> c_int {
    // SAFETY: the caller passes a live instance pointer or NULL.
    let Some(p) = (unsafe { p.as_mut() }) else { return -(passt_error::Null as c_int) };
    if p.poisoned {
        return -(passt_error::Panic as c_int);
    }
    let _guard = SinkGuard::enter(p.sink.clone());
    let pp: *mut passt = p;
    let r = boundary(None, || Some(f(p)));
    match r {
        Some(v) => v,
        None => {
            // SAFETY: pp is still the live instance; the closure that held
            // the other reference has ended (it panicked and was dropped).
            let p = unsafe { &mut *pp };
            p.poisoned = true;
            p.last_error = cstring("internal error (panic caught): instance disabled");
            -(passt_error::Panic as c_int)
        }
    }
}

/// The one fd to poll for readability: readable whenever the instance has
/// work (guest frames, host sockets). Owned by the instance: do not close.
/// -1 if `p` is NULL.
///
/// # Safety
/// `p` is NULL or a live pointer from `passt_new()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_fd(p: *const passt) -> c_int {
    // SAFETY: the caller passes a live instance pointer or NULL.
    match unsafe { p.as_ref() } {
        Some(p) => p.instance.fd(),
        None => -1,
    }
}

/// Does all work that is ready without blocking: drains guest frames and
/// host sockets in batches, runs timers due at `now_ns` (CLOCK_MONOTONIC in
/// nanoseconds, read once by the caller per wake-up).
/// Returns the milliseconds until it must be called again at the latest
/// (a soft deadline: early calls are harmless), -1 for no deadline (wait
/// for `passt_fd()` only), or below -1 a negated `passt_error` when the
/// instance cannot go on (`passt_last_error()` says why). A NULL `p`
/// gives `-PASST_ERROR_INVALID` (not -1, which means "no deadline").
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
        with_instance(p, |p| match p.instance.process(Instant::from_nanos(now_ns)) {
            Ok(None) => -1,
            Ok(Some(ms)) => ms.min(i32::MAX as u64) as c_int,
            Err(e) => {
                p.last_error = cstring(&e.to_string());
                -(e.code() as c_int)
            }
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
    match unsafe { p.as_ref() } {
        Some(p) => p.last_error.as_ptr(),
        None => c"instance is NULL".as_ptr(),
    }
}

/// Replaces the instance's log callback (see `passt_config_set_log`).
///
/// # Safety
/// `p` is NULL or a live pointer from `passt_new()`; `func`/`userdata`
/// stay valid while the instance lives.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_set_log(p: *mut passt, func: passt_log_fn, userdata: *mut c_void, max_level: c_int) {
    // SAFETY: the caller passes a live instance pointer or NULL.
    if let Some(p) = unsafe { p.as_mut() } {
        p.sink = c_sink(func, userdata, max_level);
    }
}

/// Sets the callback that receives host->guest frames for an instance
/// created with the "frames" attachment. Returns 0, or
/// `-PASST_ERROR_UNSUPPORTED` for other attachments.
///
/// # Safety
/// `p` is a live pointer from `passt_new()`; `func`/`userdata` stay valid
/// while the instance lives.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn passt_set_frame_output(p: *mut passt, func: passt_frames_fn, userdata: *mut c_void) -> c_int {
    struct Userdata(*mut c_void);
    // SAFETY: only passed back to the host's callback, on the thread that
    // drives the instance.
    unsafe impl Send for Userdata {}
    impl Userdata {
        // A method, so that closures capture the whole Send wrapper.
        fn get(&self) -> *mut c_void {
            self.0
        }
    }
    let data = Userdata(userdata);
    let set = move |p: &mut passt| {
        let Some(f) = func else { return -(passt_error::Null as c_int) };
        let out = move |frames: &[IoSlice<'_>]| -> usize {
            // SAFETY: IoSlice is ABI-compatible with struct iovec; the
            // frames stay valid during the call; the host vouched for f.
            let taken = unsafe { f(data.get(), frames.as_ptr().cast(), frames.len()) };
            taken.min(frames.len())
        };
        match p.instance.set_frame_output(Box::new(out)) {
            Ok(()) => 0,
            Err(e) => {
                p.last_error = cstring(&e.to_string());
                -(e.code() as c_int)
            }
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
    let input = |p: &mut passt| {
        if frame.is_null() {
            return -(passt_error::Null as c_int);
        }
        // SAFETY: the caller guarantees frame is valid for len bytes.
        let bytes = unsafe { std::slice::from_raw_parts(frame.cast::<u8>(), len) };
        match p.instance.frame_input(bytes, Instant::from_nanos(now_ns)) {
            Ok(()) => 0,
            Err(e) => {
                p.last_error = cstring(&e.to_string());
                -(e.code() as c_int)
            }
        }
    };
    // SAFETY: forwarded caller guarantee.
    unsafe { with_instance(p, input) }
}

/// The library's version, e.g. "0.1.0". A static string.
#[unsafe(no_mangle)]
pub extern "C" fn passt_version() -> *const c_char {
    const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };
    VERSION.as_ptr()
}
