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

    pub fn run(mut instance: Instance) -> Driver {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut timeout = 0i32;
            while !flag.load(Ordering::Relaxed) {
                let mut pfd = libc::pollfd { fd: instance.fd(), events: libc::POLLIN, revents: 0 };
                // Wake at least every 50 ms to notice the stop flag.
                let t = if timeout < 0 || timeout > 50 { 50 } else { timeout };
                // SAFETY: pfd is a valid pollfd array of length 1.
                unsafe { libc::poll(&mut pfd, 1, t) };
                match instance.process(now()) {
                    Ok(Some(ms)) => timeout = ms.min(i32::MAX as u64) as i32,
                    Ok(None) => timeout = -1,
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(())
        });
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

/// Number of open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}
