//! Seeded pseudo-random input for the property tests of the wire and
//! services modules (style guide: a seeded in-tree generator with a fixed
//! iteration count, so that CI on stable runs them and a failure replays).

/// xorshift64* (Marsaglia's xorshift with Vigna's multiplier): small,
/// fast and good enough to shake parsers; not for anything secret.
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for `seed`; the low bit is forced on (zero is a fixed
    /// point of xorshift).
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A random byte.
    pub(crate) fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// Random bytes, or a fixture with a few bytes changed, cut or grown.
pub(crate) fn mutate(rng: &mut Rng, fixtures: &[&[u8]]) -> Vec<u8> {
    if rng.below(8) == 0 {
        let len = rng.below(160);
        return (0..len).map(|_| rng.byte()).collect();
    }
    let mut msg = fixtures[rng.below(fixtures.len())].to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(4) {
            0 if !msg.is_empty() => {
                let at = rng.below(msg.len());
                msg[at] = rng.byte();
            }
            1 if !msg.is_empty() => {
                // Small lengths are the interesting ones.
                let at = rng.below(msg.len());
                msg[at] = rng.below(6) as u8;
            }
            2 => msg.truncate(rng.below(msg.len() + 1)),
            _ => msg.extend((0..rng.below(24)).map(|_| rng.byte())),
        }
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_bounds_hold() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let first: Vec<u64> = (0..64).map(|_| a.next()).collect();
        let second: Vec<u64> = (0..64).map(|_| b.next()).collect();
        assert_eq!(first, second);
        // Not stuck, not trivially repeating.
        assert!(first.windows(2).all(|w| w[0] != w[1]));
        assert_eq!(Rng::new(0).next(), Rng::new(1).next());
        for n in [1, 2, 3, 7, 1000] {
            assert!((0..200).all(|_| a.below(n) < n), "{n}");
        }
        assert_eq!(a.below(0), 0);
    }

    #[test]
    fn mutate_stays_near_its_fixtures() {
        let mut rng = Rng::new(7);
        let fixture: &[u8] = &[1, 2, 3, 4, 5, 6, 7, 8];
        let mut same_prefix = 0;
        for _ in 0..1000 {
            let msg = mutate(&mut rng, &[fixture]);
            // 4 growths of at most 23 bytes, or 159 random bytes.
            assert!(msg.len() <= fixture.len() + 4 * 23 || msg.len() < 160);
            if msg.len() >= 2 && msg[..2] == fixture[..2] {
                same_prefix += 1;
            }
        }
        assert!(same_prefix > 300, "{same_prefix}");
    }
}
