//! Guest data that arrived after a gap, held until the gap is filled, and
//! the SACK blocks (RFC 2018) that tell the guest what we hold.
//!
//! # Theory of operation
//!
//! Without this, every guest segment after a lost one was dropped, and the
//! guest had to send its whole window again. Worse, a Linux guest that also
//! receives data from us does not count our duplicate ACKs as duplicates:
//! each one carries a newer sequence number than the last (our data went
//! out in between), which Linux takes as a window update. Without SACK it
//! then never retransmits fast, each loss costs a retransmission timeout,
//! and while recovering from one it sends new data between its
//! retransmissions, which we dropped again: a chain of timeouts, each twice
//! as long as the one before (seen as transfers stalled for minutes while
//! a guest flooded its own tap queue).
//!
//! Held segments are kept in sequence order and disjoint. A new segment is
//! cut short where it would overlap the next held one, and loses what the
//! previous one already covers; what is cut off the end is dropped (the
//! guest sends it again). Only data inside the window we advertised is
//! held, so it fits in the room the socket had when the gap fills and
//! everything is written out in order. A FIN is held with the segment it
//! ends; nothing is held past a held FIN.
//!
//! The guest controls what arrives, so the hold is bounded: at most
//! [`MAX_HELD_SEGMENTS`] per connection (our window never admits more
//! segments in flight), and a byte budget shared by every connection
//! ([`Budget`], each segment charged its length plus [`SEGMENT_COST`]).
//! Beyond either, segments are dropped as before, and counted as drops
//! for a limit ([`Hold::OverLimit`]).

use crate::wire::tcp::{seq_le, seq_lt, SackBlocks};
use std::collections::VecDeque;

/// Most segments held per connection: our window never lets more than
/// this many MSS be in flight (`conn::MAX_SEGS_IN_FLIGHT`).
pub(super) const MAX_HELD_SEGMENTS: usize = 512;
/// Bytes charged per held segment besides its payload (the allocation's
/// and the queue entry's overhead), so that tiny segments cost too.
pub(super) const SEGMENT_COST: usize = 64;
/// Default bytes held across all connections.
pub(super) const DEFAULT_BUDGET: usize = 32 << 20;

/// The bytes all connections may hold together.
#[derive(Debug)]
pub(super) struct Budget {
    used: usize,
    max: usize,
}

impl Budget {
    pub fn new(max: usize) -> Budget {
        Budget { used: 0, max }
    }

    /// Bytes held now (statistics, tests).
    pub fn used(&self) -> usize {
        self.used
    }
}

/// One held segment.
#[derive(Debug)]
pub(super) struct Held {
    pub seq: u32,
    pub data: Vec<u8>,
    /// A FIN follows the data.
    pub fin: bool,
}

impl Held {
    fn end(&self) -> u32 {
        self.seq.wrapping_add(self.data.len() as u32)
    }

    fn cost(&self) -> usize {
        cost_of(self.data.len())
    }
}

/// What holding `len` bytes as one segment charges the budget.
fn cost_of(len: usize) -> usize {
    len + SEGMENT_COST
}

/// What became of a segment offered to [`Reorder::insert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Hold {
    Held,
    /// Not after a gap, outside the window, or nothing new.
    Ignored,
    /// The connection's segment cap or the shared budget is reached.
    OverLimit,
}

/// The held segments of one connection.
#[derive(Debug, Default)]
pub(super) struct Reorder {
    /// In sequence order, disjoint.
    segs: VecDeque<Held>,
    /// Start of the segment held last (its block is reported first).
    latest: u32,
}

impl Reorder {
    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    /// Holds `data` (and a FIN after it, if `fin`) that starts at `seq`,
    /// after a gap: `next` is the first byte not accepted yet, `edge` the
    /// right edge of our window. Says what became of it.
    pub fn insert(&mut self, budget: &mut Budget, next: u32, edge: u32, seq: u32, data: &[u8], mut fin: bool) -> Hold {
        if seq_lt(edge, next) {
            return Hold::Ignored; // the guest sent past our window before
        }
        // Offsets from `next`: the window is far below 2^31.
        let off = |s: u32| s.wrapping_sub(next);
        let (start, limit) = (off(seq), off(edge));
        if start == 0 || start > limit || data.len() as u32 > limit - start {
            return Hold::Ignored; // not after a gap, or outside the window
        }
        let (mut from, mut to) = (start, start + data.len() as u32);
        if self.segs.back().is_some_and(|h| h.fin && off(h.end()) < to) {
            return Hold::Ignored; // past the FIN
        }
        let at = self.segs.partition_point(|h| off(h.seq) < from);
        if let Some(prev) = at.checked_sub(1).map(|i| &self.segs[i]) {
            let prev_end = off(prev.end());
            if prev_end >= to {
                return Hold::Ignored; // nothing new (a FIN here arrives again)
            }
            from = from.max(prev_end);
        }
        if let Some(next_held) = self.segs.get(at) {
            // The rest is held already: cut it off. A FIN before held data
            // contradicts it: ignored.
            to = to.min(off(next_held.seq));
            fin = false;
        }
        if from == to && !fin {
            return Hold::Ignored;
        }
        let data = &data[(from - start) as usize..(to - start) as usize];
        if self.segs.len() >= MAX_HELD_SEGMENTS || budget.used + cost_of(data.len()) > budget.max {
            return Hold::OverLimit;
        }
        let held = Held { seq: next.wrapping_add(from), data: data.to_vec(), fin };
        budget.used += held.cost();
        self.latest = held.seq;
        self.segs.insert(at, held);
        Hold::Held
    }

    /// Takes the first held segment if the accepted data reaches it
    /// (`next`, the first byte not accepted yet, is at or after its start).
    /// Its beginning may be old: the caller trims it.
    pub fn pop_ready(&mut self, budget: &mut Budget, next: u32) -> Option<Held> {
        if !self.segs.front().is_some_and(|h| seq_le(h.seq, next)) {
            return None;
        }
        let held = self.segs.pop_front()?;
        budget.used -= held.cost();
        Some(held)
    }

    /// Forgets every held segment (the guest sends them again).
    pub fn clear(&mut self, budget: &mut Budget) {
        for held in self.segs.drain(..) {
            budget.used -= held.cost();
        }
    }

    /// What we hold as SACK blocks: runs of contiguous segments, the run
    /// with the segment held last first (RFC 2018 section 4), then the
    /// others from the highest down.
    pub fn sack_blocks(&self) -> SackBlocks {
        let mut blocks = SackBlocks::default();
        let latest = self.runs_downwards().find(|&(a, b)| self.latest.wrapping_sub(a) < b.wrapping_sub(a));
        if let Some((a, b)) = latest {
            blocks.push(a, b);
        }
        for run in self.runs_downwards().filter(|&run| Some(run) != latest) {
            if !blocks.push(run.0, run.1) {
                break;
            }
        }
        blocks
    }

    /// `[start, end)` of each run of contiguous held data, from the
    /// highest down (a FIN alone has no data to report).
    fn runs_downwards(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let mut segs = self.segs.iter().rev().filter(|h| !h.data.is_empty()).peekable();
        std::iter::from_fn(move || {
            let h = segs.next()?;
            let (mut start, end) = (h.seq, h.end());
            while let Some(prev) = segs.next_if(|p| p.end() == start) {
                start = prev.seq;
            }
            Some((start, end))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEXT: u32 = u32::MAX - 100; // the window wraps past zero
    const EDGE: u32 = NEXT.wrapping_add(100_000);

    fn at(off: u32) -> u32 {
        NEXT.wrapping_add(off)
    }

    fn bytes(from: u32, n: usize) -> Vec<u8> {
        (0..n).map(|i| (from as usize + i) as u8).collect()
    }

    fn held(r: &Reorder) -> Vec<(u32, usize, bool)> {
        r.segs.iter().map(|h| (h.seq.wrapping_sub(NEXT), h.data.len(), h.fin)).collect()
    }

    #[test]
    fn only_data_after_a_gap_and_inside_the_window_is_held() {
        let (mut r, mut b) = (Reorder::default(), Budget::new(1 << 20));
        assert_eq!(r.insert(&mut b, NEXT, EDGE, NEXT, &bytes(0, 10), false), Hold::Ignored, "no gap");
        assert_eq!(r.insert(&mut b, NEXT, EDGE, at(99_995), &bytes(0, 10), false), Hold::Ignored, "past the edge");
        assert_eq!(r.insert(&mut b, NEXT, EDGE, NEXT.wrapping_sub(5), &bytes(0, 10), false), Hold::Ignored, "before next");
        let behind = NEXT.wrapping_sub(10); // accepted data ran past the edge
        assert_eq!(r.insert(&mut b, NEXT, behind, at(5), &bytes(0, 10), false), Hold::Ignored, "no window left");
        assert_eq!(r.insert(&mut b, NEXT, EDGE, at(99_990), &bytes(0, 10), false), Hold::Held, "ends at the edge");
        assert_eq!(held(&r), [(99_990, 10, false)]);
        assert_eq!(b.used(), 10 + SEGMENT_COST);
    }

    #[test]
    fn overlaps_are_trimmed_to_what_is_new_and_the_rest_dropped() {
        let (mut r, mut b) = (Reorder::default(), Budget::new(1 << 20));
        assert_eq!(r.insert(&mut b, NEXT, EDGE, at(100), &bytes(100, 100), false), Hold::Held);
        assert_eq!(r.insert(&mut b, NEXT, EDGE, at(300), &bytes(300, 100), false), Hold::Held);
        assert_eq!(r.insert(&mut b, NEXT, EDGE, at(120), &bytes(120, 50), false), Hold::Ignored, "covered");
        assert_eq!(r.insert(&mut b, NEXT, EDGE, at(150), &bytes(150, 100), false), Hold::Held, "the new tail");
        assert_eq!(r.insert(&mut b, NEXT, EDGE, at(50), &bytes(50, 400), false), Hold::Held, "up to the next held");
        assert_eq!(held(&r), [(50, 50, false), (100, 100, false), (200, 50, false), (300, 100, false)]);
        // Every held byte is the byte of its sequence number.
        for h in &r.segs {
            assert_eq!(h.data, bytes(h.seq.wrapping_sub(NEXT), h.data.len()));
        }
    }

    #[test]
    fn a_fin_is_held_with_its_segment_and_nothing_past_it() {
        let (mut r, mut b) = (Reorder::default(), Budget::new(1 << 20));
        assert_eq!(r.insert(&mut b, NEXT, EDGE, at(100), &bytes(100, 10), true), Hold::Held);
        assert_eq!(r.insert(&mut b, NEXT, EDGE, at(105), &bytes(105, 10), false), Hold::Ignored, "data past the FIN");
        assert_eq!(r.insert(&mut b, NEXT, EDGE, at(50), &bytes(50, 10), false), Hold::Held);
        assert_eq!(r.insert(&mut b, NEXT, EDGE, at(60), &[], true), Hold::Ignored, "a FIN before held data");
        assert_eq!(held(&r), [(50, 10, false), (100, 10, true)]);
    }

    #[test]
    fn segments_come_out_in_order_once_the_gap_is_filled() {
        let (mut r, mut b) = (Reorder::default(), Budget::new(1 << 20));
        for off in [300, 100, 200] {
            assert_eq!(r.insert(&mut b, NEXT, EDGE, at(off), &bytes(off, 100), false), Hold::Held);
        }
        assert!(r.pop_ready(&mut b, NEXT).is_none(), "the gap is still there");
        assert!(r.pop_ready(&mut b, at(99)).is_none());
        let mut next = at(150); // accepted past the first one's start
        let mut starts = Vec::new();
        while let Some(h) = r.pop_ready(&mut b, next) {
            starts.push(h.seq.wrapping_sub(NEXT));
            next = h.end();
        }
        assert_eq!(starts, [100, 200, 300]);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn the_budget_and_the_segment_cap_bound_what_is_held() {
        let mut b = Budget::new(3 * (100 + SEGMENT_COST));
        let (mut r1, mut r2) = (Reorder::default(), Reorder::default());
        assert_eq!(r1.insert(&mut b, NEXT, EDGE, at(100), &bytes(0, 100), false), Hold::Held);
        assert_eq!(r2.insert(&mut b, NEXT, EDGE, at(100), &bytes(0, 100), false), Hold::Held);
        assert_eq!(r1.insert(&mut b, NEXT, EDGE, at(300), &bytes(0, 100), false), Hold::Held);
        assert_eq!(r2.insert(&mut b, NEXT, EDGE, at(300), &bytes(0, 100), false), Hold::OverLimit, "budget spent");
        r1.clear(&mut b);
        assert_eq!(b.used(), 100 + SEGMENT_COST);
        assert_eq!(r2.insert(&mut b, NEXT, EDGE, at(300), &bytes(0, 100), false), Hold::Held, "budget back");

        let (mut r, mut b) = (Reorder::default(), Budget::new(1 << 30));
        for i in 0..MAX_HELD_SEGMENTS as u32 {
            assert_eq!(r.insert(&mut b, NEXT, EDGE, at(1 + 2 * i), &[0], false), Hold::Held);
        }
        assert_eq!(r.insert(&mut b, NEXT, EDGE, at(5000), &[0], false), Hold::OverLimit, "segment cap");
    }

    #[test]
    fn sack_blocks_report_runs_the_latest_first_then_from_the_top() {
        let (mut r, mut b) = (Reorder::default(), Budget::new(1 << 20));
        assert!(r.sack_blocks().is_empty());
        for off in [100, 150, 300, 500, 700, 900] {
            assert_eq!(r.insert(&mut b, NEXT, EDGE, at(off), &bytes(off, 50), false), Hold::Held);
        }
        assert_eq!(r.insert(&mut b, NEXT, EDGE, at(350), &bytes(350, 50), false), Hold::Held, "extends a run");
        let s = r.sack_blocks();
        let rel: Vec<(u32, u32)> = s.as_slice().iter().map(|&(a, e)| (a.wrapping_sub(NEXT), e.wrapping_sub(NEXT))).collect();
        assert_eq!(rel, [(300, 400), (900, 950), (700, 750), (500, 550)]);
    }
}
