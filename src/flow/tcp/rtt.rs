//! The retransmission timeout towards the guest, from measured round trips
//! (RFC 6298).
//!
//! One segment at a time is timed: from when its bytes were queued to the
//! guest's ACK that covers them. A retransmission cancels the measurement
//! (Karn's algorithm: an ACK after a retransmission cannot tell which copy
//! it answers). Samples feed the smoothed round-trip time and its variation
//! (gains 1/8 and 1/4); the timeout is SRTT + 4 RTTVAR, never below
//! [`RTO_MIN`], doubled per expiry without progress, at most `RTO_MAX`.
//! Before the first sample it is RFC 6298's initial 1 s.
//!
//! The floor is Linux's 200 ms, not the second RFC 6298 suggests: a guest
//! link's round trip is microseconds to milliseconds, and a guest that drops
//! a frame (a full receive queue) and sends no duplicate ACKs would
//! otherwise stall the connection for a whole second; a guest that is slow
//! to answer (an emulated CPU under load) raises SRTT and RTTVAR itself.

use super::{RTO_INITIAL, RTO_MAX};
use crate::time::Instant;
use crate::wire::tcp::seq_le;
use std::time::Duration;

/// The smallest retransmission timeout once round trips were measured.
pub const RTO_MIN: Duration = Duration::from_millis(200);

#[derive(Debug, Default)]
pub struct Rtt {
    /// Smoothed round-trip time; `None` until the first sample.
    srtt: Option<Duration>,
    rttvar: Duration,
    /// The segment being timed: the sequence number just past it, and
    /// when it was queued.
    timing: Option<(u32, Instant)>,
}

impl Rtt {
    /// New data up to `end` was queued at `now`: time it, unless a segment
    /// is being timed already.
    pub fn sent(&mut self, end: u32, now: Instant) {
        if self.timing.is_none() {
            self.timing = Some((end, now));
        }
    }

    /// Something was sent again: the timed segment's ACK would be ambiguous.
    pub fn retransmitted(&mut self) {
        self.timing = None;
    }

    /// The guest acknowledged up to `ack` (new data) at `now`.
    pub fn acked(&mut self, ack: u32, now: Instant) {
        let Some((end, at)) = self.timing else { return };
        if seq_le(end, ack) {
            self.timing = None;
            self.sample(now.since(at));
        }
    }

    fn sample(&mut self, r: Duration) {
        // Beyond the largest timeout a sample says nothing more (and the
        // clock is the host's to move: keep the arithmetic far from overflow).
        let r = r.min(RTO_MAX);
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                let delta = if srtt > r { srtt - r } else { r - srtt };
                self.rttvar = self.rttvar * 3 / 4 + delta / 4;
                self.srtt = Some(srtt * 7 / 8 + r / 8);
            }
        }
    }

    /// The timeout after `retries` expiries without progress.
    pub fn rto(&self, retries: u8) -> Duration {
        let base = match self.srtt {
            None => RTO_INITIAL,
            Some(srtt) => (srtt + self.rttvar * 4).max(RTO_MIN),
        };
        base.saturating_mul(1u32 << retries.min(16)).min(RTO_MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn one_second_until_measured_then_the_floor_for_a_fast_link() {
        let mut r = Rtt::default();
        assert_eq!(r.rto(0), Duration::from_secs(1));
        assert_eq!(r.rto(1), Duration::from_secs(2));
        r.sent(1000, at(10));
        r.sent(2000, at(11)); // one at a time: still timing the first
        r.acked(500, at(12)); // short of it: no sample
        assert_eq!(r.rto(0), Duration::from_secs(1));
        r.acked(1500, at(12));
        assert_eq!(r.rto(0), RTO_MIN);
        assert_eq!(r.rto(2), RTO_MIN * 4);
        assert_eq!(r.rto(16), RTO_MAX);
    }

    #[test]
    fn slow_round_trips_raise_it_and_retransmissions_give_no_sample() {
        let mut r = Rtt::default();
        r.sent(100, at(0));
        r.acked(100, at(300)); // SRTT 300, RTTVAR 150: 900 ms
        assert_eq!(r.rto(0), Duration::from_millis(900));
        r.sent(200, at(1000));
        r.retransmitted();
        r.acked(200, at(1001)); // would have been a 1 ms sample
        assert_eq!(r.rto(0), Duration::from_millis(900));
        // A steady 300 ms: RTTVAR decays towards 0, SRTT stays.
        for i in 0..40 {
            let t = 2000 + i * 1000;
            r.sent(300 + i as u32, at(t));
            r.acked(300 + i as u32, at(t + 300));
        }
        let rto = r.rto(0);
        assert!(rto >= Duration::from_millis(300) && rto < Duration::from_millis(310), "{rto:?}");
    }

    #[test]
    fn a_clock_jump_gives_the_largest_timeout_not_an_overflow() {
        let mut r = Rtt::default();
        r.sent(100, at(0));
        r.acked(100, Instant::from_nanos(u64::MAX));
        r.sent(200, Instant::from_nanos(0));
        r.acked(200, Instant::from_nanos(u64::MAX));
        assert_eq!(r.rto(0), RTO_MAX);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut r = Rtt::default();
        r.sent(5, at(0)); // past the wrap
        r.acked(u32::MAX - 10, at(1)); // before it: no sample
        assert_eq!(r.rto(0), Duration::from_secs(1));
        r.acked(10, at(2));
        assert_eq!(r.rto(0), RTO_MIN);
    }
}
