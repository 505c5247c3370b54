//! The hasher of the flow tables: keyed, and cheap on addresses.
//!
//! Every guest frame looks its flow up by addresses and ports. The
//! standard library's SipHash-1-3 was the largest user-space item in the
//! profiles (up to 15 % of our instructions for TCP): `SocketAddr` feeds
//! it many small writes, each a full SipHash round. This one mixes each
//! write with a folded 64x64->128-bit multiply, starting from a random key
//! per table, so the guest cannot predict which tuples collide. It is not
//! a cryptographic PRF: a guest measuring its own timing might still work
//! collisions out, but a table holds at most `max-flows` entries, so the
//! worst it can do is slow down lookups of its own flows.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// An odd constant with well-spread bits (the golden ratio's).
const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// Builds [`FlowHasher`]s with this table's random key.
#[derive(Clone, Debug)]
pub struct FlowHash {
    key: u64,
}

impl Default for FlowHash {
    fn default() -> Self {
        FlowHash { key: RandomState::new().hash_one(0x5eed_u64) | 1 }
    }
}

impl BuildHasher for FlowHash {
    type Hasher = FlowHasher;

    fn build_hasher(&self) -> FlowHasher {
        FlowHasher { state: self.key }
    }
}

pub struct FlowHasher {
    state: u64,
}

impl FlowHasher {
    fn mix(&mut self, v: u64) {
        let m = u128::from(self.state ^ v) * u128::from(K);
        self.state = (m as u64) ^ ((m >> 64) as u64);
    }
}

impl Hasher for FlowHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            // The length keeps "ab" and "ab\0" apart.
            self.mix(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, v: u8) {
        self.mix(u64::from(v));
    }

    fn write_u16(&mut self, v: u16) {
        self.mix(u64::from(v));
    }

    fn write_u32(&mut self, v: u32) {
        self.mix(u64::from(v));
    }

    fn write_u64(&mut self, v: u64) {
        self.mix(v);
    }

    fn write_usize(&mut self, v: usize) {
        self.mix(v as u64);
    }

    fn finish(&self) -> u64 {
        // One more round so that the last write reaches every bit.
        let m = u128::from(self.state) * u128::from(K ^ 0xff51_afd7_ed55_8ccd);
        (m as u64) ^ ((m >> 64) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::SocketAddr;

    #[test]
    fn distinct_tuples_hash_apart_and_keys_differ() {
        let b = FlowHash::default();
        let mut seen = HashSet::new();
        for port in 1..=2000u16 {
            let a: SocketAddr = format!("10.0.2.15:{port}").parse().unwrap();
            let p: SocketAddr = "10.0.2.2:80".parse().unwrap();
            assert!(seen.insert(b.hash_one((a, p))), "collision at port {port}");
        }
        // Low bits pick buckets, high bits the control bytes: both vary.
        let lows: HashSet<u64> = seen.iter().map(|h| h & 0x3ff).collect();
        let highs: HashSet<u64> = seen.iter().map(|h| h >> 57).collect();
        assert!(lows.len() > 700 && highs.len() > 100, "{} {}", lows.len(), highs.len());
        let other = FlowHash::default();
        let t: (SocketAddr, SocketAddr) = ("[::1]:1".parse().unwrap(), "[::2]:2".parse().unwrap());
        assert_ne!(b.hash_one(t), other.hash_one(t));
    }
}
