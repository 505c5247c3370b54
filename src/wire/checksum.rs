//! The Internet checksum (RFC 1071) and the IPv4/IPv6 pseudo-headers
//! (RFC 768, RFC 793, RFC 8200 section 8.1).

use std::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` as big-endian 16-bit words to a 32-bit accumulator (an odd
/// last byte is padded with zero). Processes 8 bytes at a time into a u64 to
/// keep the loop short for 64 KiB segments.
pub fn sum(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // Add the two 32-bit halves: carries are folded at the end.
        acc += (w >> 32) + (w & 0xffff_ffff);
    }
    let rest = chunks.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds an accumulator to 16 bits and complements it.
pub fn finish(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
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
    fn a_packet_with_its_checksum_sums_to_zero() {
        let mut hdr = [0x45, 0, 0, 0x54, 0, 0, 0x40, 0, 0x40, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        let c = checksum(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&hdr), 0);
    }
}
