//! Flows: guest L4 traffic terminated into host sockets.
//!
//! One table per protocol (`tcp`, `udp`, `icmp`); each entry owns its host
//! socket(s), registered in the instance's host epoll set with a token
//! naming the table and slot (see [`crate::token`]). Every handler receives
//! a [`FlowCtx`]: the time, the host epoll set, the queue of frames to the
//! guest, the guest's network and the counters. Handlers never block.
//!
//! The shape each table follows (quinn-proto's words): `handle_guest` for
//! a packet from the guest, `handle_event` for an epoll event on one of its
//! sockets, `handle_timeout(now)` for its timers, `poll_deadline` for the
//! next of them, `handle_tx_room` when the guest queue has room again after
//! being full, and `reset_all` when the guest goes away.

pub mod hash;
pub mod icmp;
pub mod slots;
pub mod tcp;
pub mod udp;

use crate::guestnet::GuestNet;
use crate::stats::Stats;
use crate::sys::epoll::Epoll;
use crate::time::Instant;
use crate::tx::TxQueue;

/// A shared limit on flows of all protocols (`max-flows`).
#[derive(Debug)]
pub struct FlowBudget {
    pub used: usize,
    pub max: usize,
    /// Rate limit of the "limit reached" warning.
    pub warn: crate::log::RateLimit,
    /// Rate limit of the "cannot open a socket" warning (out of fds...).
    pub socket_warn: crate::log::RateLimit,
}

impl FlowBudget {
    pub fn new(max: usize) -> Self {
        FlowBudget { used: 0, max, warn: Default::default(), socket_warn: Default::default() }
    }

    /// Takes one flow slot; `false` (and a rate-limited warning) when the
    /// limit is reached.
    pub fn try_take(&mut self, now: Instant, what: &str) -> bool {
        if self.used < self.max {
            self.used += 1;
            return true;
        }
        if let Some(suppressed) = self.warn.allow(now, std::time::Duration::from_secs(5)) {
            log::warn!("flow limit of {} reached: refusing new {what} flow ({suppressed} more refusals not logged)", self.max);
        }
        false
    }

    /// Says, at most every 5 s, that a flow's socket could not be had
    /// (`EMFILE` when the process is out of fds): a guest can trigger it
    /// at any rate.
    pub fn socket_failed(&mut self, now: Instant, what: &str, e: &std::io::Error) {
        if let Some(n) = self.socket_warn.allow(now, std::time::Duration::from_secs(5)) {
            log::warn!("cannot {what}: {e} ({n} more failures not logged)");
        }
    }

    pub fn release(&mut self) {
        self.used = self.used.saturating_sub(1);
    }
}

/// What every flow handler gets.
pub struct FlowCtx<'a> {
    /// The time of this wake-up.
    pub now: Instant,
    /// The epoll set for host sockets.
    pub host: &'a Epoll,
    /// Frames to the guest. Check `room()` before reading host data.
    pub tx: &'a mut TxQueue,
    pub net: &'a GuestNet,
    pub stats: &'a mut Stats,
    pub budget: &'a mut FlowBudget,
}
