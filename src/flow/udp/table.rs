//! The UDP flow table: slots with generations (for epoll tokens), an LRU
//! list (the oldest flow is both the next to time out and the first to be
//! evicted: every flow has the same idle timeout), and the lookup maps.

use crate::flow::hash::FlowHash;
use crate::time::Instant;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

/// "No slot" in the LRU links.
const NONE: u32 = u32::MAX;
/// Generations live in 24 bits of the epoll token.
const GEN_MASK: u32 = 0xff_ffff;
/// Guest destinations remembered per flow for replies from mapped peers.
/// A guest talking to more mapped destinations than this from one port
/// (a scan of the gateway's ports) gets the older ones' replies with the
/// source [`crate::guestnet::GuestNet::inbound`] gives, which is the same
/// for the gateway mapping and only differs for `dns-forward`.
pub(super) const MAX_MAPPED: usize = 8;

/// Host destinations that are not what the guest addressed (gateway ->
/// loopback, dns-forward -> the host's resolver...), with the guest's
/// original destination: a reply from such a peer must come from exactly
/// the address the guest sent to, or its connected socket drops it.
#[derive(Debug, Default)]
pub(super) struct Mapped(Vec<(SocketAddr, SocketAddr)>);

/// Same IP and port (flow label and scope are not part of a peer's
/// identity here).
pub(super) fn same_peer(a: &SocketAddr, b: &SocketAddr) -> bool {
    a.ip() == b.ip() && a.port() == b.port()
}

impl Mapped {
    /// Remembers that `host` stands for the guest's `guest` destination
    /// (the latest guest destination wins when two map to one host peer).
    pub(super) fn note(&mut self, host: SocketAddr, guest: SocketAddr) {
        if let Some(e) = self.0.iter_mut().find(|(h, _)| same_peer(h, &host)) {
            e.1 = guest;
            return;
        }
        if self.0.len() == MAX_MAPPED {
            self.0.remove(0);
        }
        self.0.push((host, guest));
    }

    /// The guest destination a host peer stands for, if it is a mapped one.
    pub(super) fn guest_for(&self, host: &SocketAddr) -> Option<SocketAddr> {
        self.0.iter().find(|(h, _)| same_peer(h, host)).map(|(_, g)| *g)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

/// A flow the guest started: its (address, port) and the host socket that
/// stands for it.
#[derive(Debug)]
pub(super) struct OutFlow {
    pub guest: SocketAddr,
    pub sock: OwnedFd,
    /// An IPv6 socket without IPV6_V6ONLY, able to reach IPv4 peers through
    /// IPv4-mapped addresses (only when dns-forward leads a v6 guest to a v4
    /// resolver).
    pub dual: bool,
    pub mapped: Mapped,
    /// Average datagram size lately (chooses the read strategy).
    pub rx_avg: u32,
}

/// A flow a host peer started through a forwarded port.
#[derive(Debug)]
pub(super) struct InFlow {
    /// The listener it came in through (its socket carries the replies).
    pub listener: u32,
    /// The peer as the host sees it (canonical form: no flow label,
    /// IPv4-mapped as IPv4).
    pub peer: SocketAddr,
    /// The peer as the guest sees it (loopback appears as the gateway).
    pub seen_as: SocketAddr,
    /// The guest's address and (forwarded) port.
    pub guest: SocketAddr,
}

#[derive(Debug)]
pub(super) enum Kind {
    Out(OutFlow),
    In(InFlow),
}

#[derive(Debug)]
pub(super) struct Flow {
    /// The last datagram either way.
    pub last: Instant,
    pub kind: Kind,
}

#[derive(Debug)]
struct Slot {
    gen: u32,
    flow: Option<Flow>,
    prev: u32,
    next: u32,
}

#[derive(Debug)]
pub(super) struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    /// Most flows live at once (statistics).
    pub peak: usize,
    /// Least recently used end of the LRU list.
    head: u32,
    tail: u32,
    /// Guest (address, port) -> its outbound flow.
    pub out_by_guest: HashMap<SocketAddr, u32, FlowHash>,
    /// (guest address and port, peer as the guest sees it) -> inbound flow.
    pub in_by_guest: HashMap<(SocketAddr, SocketAddr), u32, FlowHash>,
    /// (listener, host peer) -> inbound flow.
    pub in_by_peer: HashMap<(u32, SocketAddr), u32, FlowHash>,
}

impl Table {
    pub(super) fn new(hint: usize) -> Table {
        // Capacity follows use: only a modest start, whatever the hint.
        let cap = hint.min(64);
        Table {
            slots: Vec::with_capacity(cap),
            free: Vec::new(),
            live: 0,
            peak: 0,
            head: NONE,
            tail: NONE,
            out_by_guest: HashMap::default(),
            in_by_guest: HashMap::default(),
            in_by_peer: HashMap::default(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.live
    }

    /// The slot and generation the next [`Table::insert`] will use (so that
    /// a socket can be registered with its token before insertion).
    pub(super) fn next_id(&self) -> (u32, u32) {
        match self.free.last() {
            Some(&i) => (i, self.slots[i as usize].gen),
            None => (self.slots.len() as u32, 0),
        }
    }

    /// Adds a flow as the most recently used; returns its slot.
    pub(super) fn insert(&mut self, flow: Flow) -> u32 {
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot { gen: 0, flow: None, prev: NONE, next: NONE });
                (self.slots.len() - 1) as u32
            }
        };
        match &flow.kind {
            Kind::Out(o) => {
                self.out_by_guest.insert(o.guest, idx);
            }
            Kind::In(i) => {
                self.in_by_guest.insert((i.guest, i.seen_as), idx);
                self.in_by_peer.insert((i.listener, i.peer), idx);
            }
        }
        self.slots[idx as usize].flow = Some(flow);
        self.live += 1;
        self.peak = self.peak.max(self.live);
        self.link_tail(idx);
        idx
    }

    /// Removes a flow (its socket closes when the caller drops it); the
    /// slot's generation moves on so stale epoll events are recognised.
    pub(super) fn remove(&mut self, idx: u32) -> Option<Flow> {
        let slot = self.slots.get_mut(idx as usize)?;
        let flow = slot.flow.take()?;
        slot.gen = (slot.gen + 1) & GEN_MASK;
        self.unlink(idx);
        self.free.push(idx);
        self.live -= 1;
        match &flow.kind {
            Kind::Out(o) => {
                self.out_by_guest.remove(&o.guest);
            }
            Kind::In(i) => {
                // Another flow may have taken the key over since.
                let key = (i.guest, i.seen_as);
                if self.in_by_guest.get(&key) == Some(&idx) {
                    self.in_by_guest.remove(&key);
                }
                self.in_by_peer.remove(&(i.listener, i.peer));
            }
        }
        Some(flow)
    }

    /// Points an inbound flow at the guest's current address: the guest
    /// may only now have shown which address it really uses (SLAAC rather
    /// than the assigned one, say), and a peer that keeps sending would
    /// otherwise keep the flow on the old one.
    pub(super) fn retarget_in(&mut self, idx: u32, guest: SocketAddr, seen_as: SocketAddr) {
        let Some(Flow { kind: Kind::In(f), .. }) = self.slots.get_mut(idx as usize).and_then(|s| s.flow.as_mut()) else {
            return;
        };
        if f.guest == guest && f.seen_as == seen_as {
            return;
        }
        let old = (f.guest, f.seen_as);
        if self.in_by_guest.get(&old) == Some(&idx) {
            self.in_by_guest.remove(&old);
        }
        f.guest = guest;
        f.seen_as = seen_as;
        self.in_by_guest.insert((guest, seen_as), idx);
    }

    /// The live flow in `idx`, if its generation is `gen`.
    pub(super) fn get(&self, idx: u32, gen: u32) -> Option<&Flow> {
        let s = self.slots.get(idx as usize)?;
        if s.gen != gen & GEN_MASK {
            return None;
        }
        s.flow.as_ref()
    }

    /// The live flow in `idx`, whatever its generation.
    pub(super) fn at(&self, idx: u32) -> Option<&Flow> {
        self.slots.get(idx as usize)?.flow.as_ref()
    }

    pub(super) fn at_mut(&mut self, idx: u32) -> Option<&mut Flow> {
        self.slots.get_mut(idx as usize)?.flow.as_mut()
    }

    pub(super) fn gen(&self, idx: u32) -> u32 {
        self.slots.get(idx as usize).map_or(0, |s| s.gen)
    }

    /// Marks a flow used now (moves it to the recent end).
    pub(super) fn touch(&mut self, idx: u32, now: Instant) {
        let Some(f) = self.at_mut(idx) else { return };
        f.last = now;
        if self.tail != idx {
            self.unlink(idx);
            self.link_tail(idx);
        }
    }

    /// The least recently used flow and its last use.
    pub(super) fn oldest(&self) -> Option<(u32, Instant)> {
        if self.head == NONE {
            return None;
        }
        self.at(self.head).map(|f| (self.head, f.last))
    }

    /// Every live slot (for reset).
    pub(super) fn indices(&self) -> Vec<u32> {
        (0..self.slots.len() as u32).filter(|&i| self.slots[i as usize].flow.is_some()).collect()
    }

    /// Releases memory when empty (an idle instance stays small).
    pub(super) fn shrink_if_empty(&mut self) {
        if self.live == 0 {
            // Generations must survive, or a stale token could match a new
            // flow: keep the slots but drop the maps' memory.
            self.out_by_guest = HashMap::default();
            self.in_by_guest = HashMap::default();
            self.in_by_peer = HashMap::default();
        }
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let s = &self.slots[idx as usize];
            (s.prev, s.next)
        };
        if prev == NONE {
            if self.head == idx {
                self.head = next;
            }
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NONE {
            if self.tail == idx {
                self.tail = prev;
            }
        } else {
            self.slots[next as usize].prev = prev;
        }
        let s = &mut self.slots[idx as usize];
        s.prev = NONE;
        s.next = NONE;
    }

    fn link_tail(&mut self, idx: u32) {
        let old = self.tail;
        {
            let s = &mut self.slots[idx as usize];
            s.prev = old;
            s.next = NONE;
        }
        if old == NONE {
            self.head = idx;
        } else {
            self.slots[old as usize].next = idx;
        }
        self.tail = idx;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflow(port: u16) -> Flow {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        Flow {
            last: Instant(0),
            kind: Kind::In(InFlow {
                listener: 0,
                peer: SocketAddr::new("127.0.0.1".parse().unwrap(), port),
                seen_as: SocketAddr::new("192.0.2.1".parse().unwrap(), port),
                guest: a("192.0.2.2:53"),
            }),
        }
    }

    #[test]
    fn lru_order_touch_remove_and_generations() {
        let mut t = Table::new(4);
        let ids: Vec<u32> = (0..4).map(|p| t.insert(inflow(1000 + p))).collect();
        assert_eq!(t.len(), 4);
        assert_eq!(t.oldest().map(|o| o.0), Some(ids[0]));
        t.touch(ids[0], Instant(5));
        assert_eq!(t.oldest().map(|o| o.0), Some(ids[1]));
        t.touch(ids[2], Instant(6));
        t.remove(ids[1]).unwrap();
        assert_eq!(t.oldest().map(|o| o.0), Some(ids[3]));
        assert!(t.get(ids[1], 0).is_none());
        let (next, gen) = t.next_id();
        assert_eq!((next, gen), (ids[1], 1));
        let again = t.insert(inflow(2000));
        assert_eq!(again, ids[1]);
        assert!(t.get(again, 0).is_none(), "old generation is stale");
        assert!(t.get(again, 1).is_some());
        // Order now: 3, 0, 2, again.
        let mut order = vec![];
        while let Some((i, _)) = t.oldest() {
            order.push(i);
            t.remove(i);
        }
        assert_eq!(order, vec![ids[3], ids[0], ids[2], again]);
        assert_eq!(t.len(), 0);
        assert!(t.in_by_guest.is_empty() && t.in_by_peer.is_empty());
    }

    #[test]
    fn retargeting_an_inbound_flow_moves_its_guest_key() {
        let mut t = Table::new(4);
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let i = t.insert(inflow(7));
        let seen = a("192.0.2.1:7");
        t.retarget_in(i, a("192.0.2.9:53"), seen);
        assert_eq!(t.in_by_guest.get(&(a("192.0.2.9:53"), seen)), Some(&i));
        assert!(!t.in_by_guest.contains_key(&(a("192.0.2.2:53"), seen)));
        // A second flow taking the same guest key: removing the first one
        // leaves the second's key alone.
        let j = t.insert(inflow(8));
        t.retarget_in(j, a("192.0.2.9:53"), seen);
        t.remove(i);
        assert_eq!(t.in_by_guest.get(&(a("192.0.2.9:53"), seen)), Some(&j));
    }

    #[test]
    fn mapped_is_bounded_and_latest_wins() {
        let mut m = Mapped::default();
        let h = |p: u16| SocketAddr::new("127.0.0.1".parse().unwrap(), p);
        let g = |p: u16| SocketAddr::new("192.0.2.1".parse().unwrap(), p);
        for p in 1..=20 {
            m.note(h(p), g(p));
        }
        assert_eq!(m.len(), MAX_MAPPED);
        assert_eq!(m.guest_for(&h(20)), Some(g(20)));
        assert_eq!(m.guest_for(&h(1)), None);
        m.note(h(20), g(99));
        assert_eq!(m.guest_for(&h(20)), Some(g(99)));
        assert_eq!(m.len(), MAX_MAPPED);
    }
}
