//! A small slot table for forwarded-port sockets: indices stay valid (they
//! are in epoll tokens and in UDP inbound flows) while entries come and go
//! at run time (`forward_add`/`forward_remove`). A freed index is reused
//! by the next insertion; callers make sure nothing still refers to it.

/// Entries addressed by a stable `u32` index.
#[derive(Debug)]
pub struct Slots<T> {
    slots: Vec<Option<T>>,
    /// Free indices below `slots.len()`, the next one to use last.
    free: Vec<u32>,
    live: usize,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots { slots: Vec::new(), free: Vec::new(), live: 0 }
    }
}

impl<T> Slots<T> {
    /// The entry at `idx`, if there is one.
    pub fn get(&self, idx: usize) -> Option<&T> {
        self.slots.get(idx).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, idx: usize) -> Option<&mut T> {
        self.slots.get_mut(idx).and_then(Option::as_mut)
    }

    /// Entries present.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The index the next [`Slots::insert`] will use.
    pub fn next_index(&self) -> u32 {
        self.free.last().copied().unwrap_or(self.slots.len() as u32)
    }

    /// Stores `value` at [`Slots::next_index`]; returns that index.
    pub fn insert(&mut self, value: T) -> u32 {
        let idx = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        self.slots[idx] = Some(value);
        self.live += 1;
        idx as u32
    }

    /// Takes the entry at `idx` out (dropping it closes its socket).
    pub fn remove(&mut self, idx: usize) -> Option<T> {
        let v = self.slots.get_mut(idx)?.take();
        if v.is_some() {
            self.live -= 1;
            self.free.push(idx as u32);
        }
        v
    }

    /// (index, entry) of every entry.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| s.as_ref().map(|v| (i, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_stable_and_reused() {
        let mut s = Slots::default();
        assert_eq!(s.insert('a'), 0);
        assert_eq!(s.insert('b'), 1);
        assert_eq!(s.insert('c'), 2);
        assert_eq!(s.remove(1), Some('b'));
        assert_eq!(s.get(2), Some(&'c'));
        assert_eq!(s.len(), 2);
        assert_eq!(s.next_index(), 1);
        assert_eq!(s.insert('d'), 1);
        assert_eq!(s.remove(2), Some('c'));
        assert_eq!(s.remove(2), None);
        assert_eq!(s.iter().map(|(i, v)| (i, *v)).collect::<Vec<_>>(), vec![(0, 'a'), (1, 'd')]);
    }
}
