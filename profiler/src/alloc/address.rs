// Owns the hash of the allocator's side tables, keyed by addresses (blocks, return addresses,
// backtraces). Must stay a few instructions per word: the tables sit on the cold path.

//! A hasher for keys made of addresses. The standard `HashMap`'s SipHash guards against keys
//! chosen by an attacker, which addresses are not, and costs tens of instructions per key: on
//! the cold path it was the most expensive part of a free that looks at the table of sampled
//! blocks (measured: 14% of all instructions of a loop of 4-64 KiB blocks with sampling on).
//! Here each word is folded in with a rotate, an xor and a multiply, and the end mixes the high
//! bits down, so that aligned addresses (low bits zero) still spread over the buckets.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes words (addresses, lengths) with one multiply each.
#[derive(Default, Clone, Copy)]
pub struct AddressHasher(u64);

const K: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Whole words as one load each (a backtrace's 32 addresses arrive here at once).
        let words = bytes.chunks_exact(8);
        let rest = words.remainder();
        for word in words {
            self.write_u64(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(23) ^ n).wrapping_mul(K);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// The hash of one address, as a map keyed by it computes it: for the allocator's own
/// spreading of addresses (table shards, buckets), which takes low or high bits of it.
#[inline(always)]
pub fn hash(addr: usize) -> u64 {
    let mut hasher = AddressHasher::default();
    hasher.write_usize(addr);
    hasher.finish()
}

/// A map keyed by addresses (or by values made of them).
pub type AddressMap<K, V> = HashMap<K, V, BuildHasherDefault<AddressHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn hash<T: std::hash::Hash>(value: T) -> u64 {
        BuildHasherDefault::<AddressHasher>::default().hash_one(value)
    }

    #[test]
    fn aligned_addresses_spread_over_the_low_bits() {
        // 4096 page-aligned addresses: the 7 low bits (128 buckets) should see them all.
        let mut seen = [0u32; 128];
        for i in 0..4096usize {
            seen[(hash(0x7f00_0000_0000 + (i << 12)) & 127) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
        assert!(seen.iter().all(|&n| n < 96), "{seen:?}");
    }

    #[test]
    fn every_word_of_a_key_counts() {
        assert_ne!(hash([1usize, 2, 3]), hash([1usize, 2, 4]));
        assert_ne!(hash([1usize, 2, 3]), hash([2usize, 2, 3]));
        assert_ne!(hash((7usize, 1u8)), hash((7usize, 2u8)));
        // Bytes past the last whole word count too.
        assert_ne!(hash(&b"0123456789"[..]), hash(&b"0123456788"[..]));
    }
}
