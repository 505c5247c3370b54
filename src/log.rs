//! Logging: the `log` crate inside, the host's callback outside.
//!
//! `log` allows one logger per process, so ours is installed once and routes
//! each record to the sink of the instance that is running on this thread
//! (set by `ffi` on entry to each call, see [`SinkGuard`]), or to stderr when
//! no instance has a callback. A callback never re-enters the library.

use once_cell::sync::OnceCell;
use std::cell::RefCell;
use std::sync::Arc;

/// Receives (syslog level, message); `ffi` wraps the host's C callback in one.
pub type SinkFn = Arc<dyn Fn(i32, &str) + Send + Sync>;

/// Where an instance's log lines go.
#[derive(Clone)]
pub struct Sink {
    /// `None`: stderr.
    pub func: Option<SinkFn>,
    /// Highest syslog level passed on (3 error ... 7 debug; 8 adds trace).
    pub max_level: i32,
}

impl Default for Sink {
    fn default() -> Self {
        Sink { func: None, max_level: 6 }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

/// Makes `sink` this thread's destination until dropped (restoring the
/// previous one, so nested calls behave).
pub struct SinkGuard(Option<Sink>);

impl SinkGuard {
    pub fn enter(sink: Sink) -> SinkGuard {
        install();
        raise_max_level(sink.max_level);
        SinkGuard(CURRENT.with(|c| c.borrow_mut().replace(sink)))
    }
}

/// The highest level any sink of this process has asked for so far (syslog
/// numbering, 8 = trace), mirrored in `log`'s global filter so that the
/// `debug!`/`trace!` on hot paths cost one comparison unless someone
/// listens. Only raised: several instances may want different levels.
static HIGHEST: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(6);

fn raise_max_level(level: i32) {
    use std::sync::atomic::Ordering;
    let before = HIGHEST.fetch_max(level, Ordering::Relaxed);
    if level > before && ROUTER_INSTALLED.get() == Some(&true) {
        log::set_max_level(level_filter(level));
    }
}

fn level_filter(level: i32) -> log::LevelFilter {
    match level {
        i32::MIN..=3 => log::LevelFilter::Error,
        4 => log::LevelFilter::Warn,
        5 | 6 => log::LevelFilter::Info,
        7 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

impl Drop for SinkGuard {
    fn drop(&mut self) {
        let prev = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

pub fn syslog_level(level: log::Level) -> i32 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

struct Router;

impl log::Log for Router {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let level = syslog_level(record.level());
        // Trace is only for those who ask for it at build time of the message.
        let sink = CURRENT.with(|c| c.borrow().clone()).unwrap_or_default();
        if level > sink.max_level || (record.level() == log::Level::Trace && sink.max_level < 8) {
            return;
        }
        let text = format!("{}", record.args());
        match sink.func {
            Some(f) => f(level, &text),
            None => eprintln!("passt: {text}"),
        }
    }

    fn flush(&self) {}
}

/// Whether our [`Router`] is the process's logger (false: the host had its
/// own, which then receives our records and keeps its own filter).
static ROUTER_INSTALLED: OnceCell<bool> = OnceCell::new();

/// Installs our logger once per process (a no-op if another logger is
/// already there: the host program's own then receives our records).
pub fn install() {
    ROUTER_INSTALLED.get_or_init(|| {
        let ours = log::set_logger(&Router).is_ok();
        if ours {
            log::set_max_level(level_filter(HIGHEST.load(std::sync::atomic::Ordering::Relaxed)));
        }
        ours
    });
}

/// Emits at most one line per `period` for a guest-triggerable message.
/// Keeps the last time it let a line through; counts the suppressed ones.
#[derive(Default, Debug)]
pub struct RateLimit {
    last: Option<crate::time::Instant>,
    suppressed: u64,
}

impl RateLimit {
    /// Whether to log now; when it returns `Some(n)`, `n` lines were
    /// suppressed since the last one.
    pub fn allow(&mut self, now: crate::time::Instant, period: std::time::Duration) -> Option<u64> {
        match self.last {
            Some(t) if now.since(t) < period => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Instant;
    use std::time::Duration;

    #[test]
    fn rate_limit_lets_one_line_through_per_period_and_counts_the_rest() {
        let mut r = RateLimit::default();
        let t0 = Instant::from_nanos(1_000_000_000);
        assert_eq!(r.allow(t0, Duration::from_secs(5)), Some(0));
        for _ in 0..10 {
            assert_eq!(r.allow(t0 + Duration::from_secs(1), Duration::from_secs(5)), None);
        }
        assert_eq!(r.allow(t0 + Duration::from_secs(5), Duration::from_secs(5)), Some(10));
        assert_eq!(r.allow(t0 + Duration::from_secs(6), Duration::from_secs(5)), None);
        assert_eq!(r.allow(t0 + Duration::from_secs(11), Duration::from_secs(5)), Some(1));
    }
}
