//! Events for the host: what happened to the guest that a VMM may want to
//! show or act on (attached, gone, the addresses it uses, leases handed
//! out). The engine records them while the host listens (an event callback
//! is set) and the caller of the current entry point delivers them before
//! returning, on its own thread (see [`crate::api::Passt`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Something that happened to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A guest attached: a connection accepted on the listening socket, or
    /// the in-process frame output set.
    GuestConnected,
    /// The guest went away (its socket or fd closed).
    GuestDisconnected,
    /// The guest used a source address it had not used before, or changed
    /// it (IPv4, IPv6 global, IPv6 link-local: each is tracked on its own).
    GuestAddress(IpAddr),
    /// A DHCPACK handed `addr` to the guest with MAC `mac`.
    DhcpLease { addr: Ipv4Addr, mac: [u8; 6] },
    /// A DHCPv6 REPLY handed `addr` to the guest (`mac`: the guest's MAC
    /// as last seen, zero if unknown).
    Dhcpv6Lease { addr: Ipv6Addr, mac: [u8; 6] },
}

/// Most events kept between two deliveries: a guest cannot make this grow
/// without bound (each kind is rare, but a hostile guest can flip its
/// source address on every frame).
pub const MAX_PENDING: usize = 1024;

/// Events recorded since the last delivery.
#[derive(Debug, Default)]
pub struct Events {
    /// Whether anyone listens: otherwise nothing is recorded.
    pub enabled: bool,
    pending: Vec<Event>,
    /// Events not kept because `pending` was full.
    pub lost: u64,
}

impl Events {
    pub fn push(&mut self, e: Event) {
        if !self.enabled {
            return;
        }
        if self.pending.len() >= MAX_PENDING {
            self.lost += 1;
            return;
        }
        self.pending.push(e);
    }

    /// The recorded events, oldest first, leaving none.
    pub fn take(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.pending)
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}
