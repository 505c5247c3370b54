//! Time as the host hands it to us: a monotonic instant in nanoseconds with
//! an arbitrary origin (CLOCK_MONOTONIC, read once per wake-up by the caller).
//! Logic code takes `now` as an argument and never reads a clock itself.

use std::time::Duration;

/// A point in monotonic time, in nanoseconds from an arbitrary origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub u64);

impl Instant {
    pub const fn from_nanos(ns: u64) -> Self {
        Instant(ns)
    }
    pub const fn nanos(self) -> u64 {
        self.0
    }
    /// `self + d`, saturating at the far future.
    pub fn saturating_add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d.as_nanos().min(u64::MAX as u128) as u64))
    }
    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
    /// Milliseconds from `self` until `deadline`, rounded up so that a caller
    /// sleeping that long wakes at or after the deadline; 0 if it has passed.
    pub fn millis_until(self, deadline: Instant) -> u64 {
        deadline.0.saturating_sub(self.0).div_ceil(1_000_000)
    }
}

impl std::ops::Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn arithmetic() {
        let t = Instant::from_nanos(1_000);
        assert_eq!((t + Duration::from_millis(2)).nanos(), 2_001_000);
        assert_eq!(t.millis_until(Instant(1_000_001)), 1);
        assert_eq!(t.millis_until(Instant(1_001_001)), 2);
        assert_eq!(Instant(5).millis_until(Instant(3)), 0);
        assert_eq!((Instant(u64::MAX - 1) + Duration::from_secs(9)).nanos(), u64::MAX);
    }
}
