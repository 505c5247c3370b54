//! The Internet checksum (RFC 1071) and the IPv4/IPv6 pseudo-headers
//! (RFC 768, RFC 793, RFC 8200 section 8.1).

use std::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` as big-endian 16-bit words to an accumulator (an odd last
/// byte is padded with zero).
///
/// The bulk is summed as native-endian 64-bit words into 128-bit sums (add
/// with carry: two instructions per 8 bytes, no carry lost); the ones'
/// complement sum does not depend on byte order (RFC 1071 2.B), so that
/// sum is folded to 16 bits and byte-swapped once at the end. Four sums
/// over interleaved words, not one: four carry chains run side by side
/// (26 -> 40 GB/s here, and this runs over every byte of every segment
/// to and from a guest without checksum offload).
pub fn sum(acc: u64, data: &[u8]) -> u64 {
    let word = |w: &[u8]| u128::from(u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]));
    let mut blocks = data.chunks_exact(32);
    let mut sums = [0u128; 4];
    for b in &mut blocks {
        sums[0] += word(&b[0..8]);
        sums[1] += word(&b[8..16]);
        sums[2] += word(&b[16..24]);
        sums[3] += word(&b[24..32]);
    }
    let mut native: u128 = sums.iter().sum();
    let mut words = blocks.remainder().chunks_exact(8);
    for w in &mut words {
        native += word(w);
    }
    let mut acc = acc + u64::from(u16::from_be(fold(native)));
    // The tail starts at a multiple of 8: its pairs are aligned words.
    let rest = words.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds a sum of 16-bit words to 16 bits with end-around carries (not
/// complemented).
fn fold(mut acc: u128) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Folds an accumulator to 16 bits and complements it.
pub fn finish(acc: u64) -> u16 {
    !fold(u128::from(acc))
}

/// The checksum of `data` alone (IPv4 header, ICMPv4).
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(0, data))
}

/// The pseudo-header sum for IPv4 (source, destination, protocol, length).
pub fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u64 {
    let acc = sum(0, &src.octets());
    let acc = sum(acc, &dst.octets());
    acc + u64::from(proto) + len as u64
}

/// The pseudo-header sum for IPv6.
pub fn pseudo_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: usize) -> u64 {
    let acc = sum(0, &src.octets());
    let acc = sum(acc, &dst.octets());
    acc + u64::from(next_header) + len as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the sum of these words is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(finish(sum(0, &data)), !0xddf2);
    }

    #[test]
    fn odd_lengths_and_chunking_agree() {
        let data: Vec<u8> = (0..1001u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..data.len() {
            let slow = {
                let mut acc = 0u64;
                for p in data[..len].chunks(2) {
                    acc += u64::from(p[0]) << 8 | u64::from(*p.get(1).unwrap_or(&0));
                }
                finish(acc)
            };
            assert_eq!(checksum(&data[..len]), slow, "len {len}");
        }
    }

    #[test]
    fn large_inputs_carry_correctly() {
        // All ones and near-all-ones at 64 KiB: every carry path runs.
        for fill in [0xffu8, 0xfe, 0x80] {
            for len in [65535usize, 65536, 65533] {
                let data = vec![fill; len];
                let mut slow = 0x1234u64;
                for p in data.chunks(2) {
                    slow += u64::from(p[0]) << 8 | u64::from(*p.get(1).unwrap_or(&0));
                }
                assert_eq!(finish(sum(0x1234, &data)), finish(slow), "fill {fill:#x} len {len}");
            }
        }
    }

    #[test]
    fn a_packet_with_its_checksum_sums_to_zero() {
        let mut hdr = [0x45, 0, 0, 0x54, 0, 0, 0x40, 0, 0x40, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        let c = checksum(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&hdr), 0);
    }
}
