//! Runs a passt instance in a thread of its own, as a host program would:
//! poll on its fd with the timeout `process` returns, CLOCK_MONOTONIC read
//! once per wake-up. Dropping the driver stops the thread and frees the
//! instance (closing every socket it opened).

#![allow(dead_code)]

use passt::engine::Instance;
use passt::Config;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

pub fn now() -> passt::Instant {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    passt::Instant::from_nanos(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

pub struct Driver {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl Driver {
    /// Builds a config from `key=value` words (a bare word is a flag).
    pub fn config(opts: &[&str]) -> Config {
        let mut c = Config::new();
        for o in opts {
            let (k, v) = o.split_once('=').unwrap_or((o, ""));
            c.set(k, v).unwrap_or_else(|e| panic!("{o}: {e}"));
        }
        c
    }

    /// Creates the instance in this thread (so errors surface here) and
    /// drives it in another.
    pub fn start(config: &Config) -> Result<Driver, String> {
        let instance = Instance::new(config)?;
        Ok(Self::run(instance))
    }

    /// Creates and drives the instance in a thread that lives in the
    /// network namespace at `netns` (so its host sockets are there).
    pub fn start_in(netns: &std::path::Path, config: &Config) -> Result<Driver, String> {
        Self::start_in_with(netns, config, |_| {})
    }

    /// [`Self::start_in`], calling `each` with the instance on the driving
    /// thread before every wait, i.e. between two `process` calls (a
    /// test's probe).
    pub fn start_in_with(
        netns: &std::path::Path,
        config: &Config,
        each: impl FnMut(&Instance) + Send + 'static,
    ) -> Result<Driver, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (path, config) = (netns.to_path_buf(), config.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            if let Err(e) = passt::sys::netns::enter_netns(&path) {
                let _ = tx.send(Err(e.to_string()));
                return Ok(());
            }
            let _log = log_to_stderr();
            match Instance::new(&config) {
                Ok(instance) => {
                    let _ = tx.send(Ok(()));
                    drive(instance, &flag, each)
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    Ok(())
                }
            }
        });
        match rx.recv() {
            Ok(Ok(())) => Ok(Driver { stop, thread: Some(thread) }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err("driver thread died".into()),
        }
    }

    pub fn run(instance: Instance) -> Driver {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || drive(instance, &flag, |_| {}));
        Driver { stop, thread: Some(thread) }
    }

    /// Stops the thread and returns how the loop ended.
    pub fn stop(mut self) -> Result<(), String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().map(|t| t.join().unwrap_or(Err("driver panicked".into()))).unwrap_or(Ok(()))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The host program's loop: poll with the returned timeout, process.
fn drive(mut instance: Instance, stop: &AtomicBool, mut each: impl FnMut(&Instance)) -> Result<(), String> {
    let _log = log_to_stderr();
    let mut timeout = 0i32;
    while !stop.load(Ordering::Relaxed) {
        each(&instance);
        let mut pfd = libc::pollfd { fd: instance.fd(), events: libc::POLLIN, revents: 0 };
        // Wake at least every 50 ms to notice the stop flag.
        let t = if !(0..=50).contains(&timeout) { 50 } else { timeout };
        // SAFETY: pfd is a valid pollfd array of length 1.
        unsafe { libc::poll(&mut pfd, 1, t) };
        match instance.process(now()) {
            Ok(Some(ms)) => timeout = ms.min(i32::MAX as u64) as i32,
            Ok(None) => timeout = -1,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Logs of this thread's instance go to stderr (captured by the test
/// harness), at the syslog level in PASST_TEST_LOG (default 6, info).
pub fn log_to_stderr() -> passt::log::SinkGuard {
    let level = std::env::var("PASST_TEST_LOG").ok().and_then(|l| l.parse().ok()).unwrap_or(6);
    passt::log::SinkGuard::enter(passt::log::Sink { func: None, max_level: level })
}

/// Number of open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}
