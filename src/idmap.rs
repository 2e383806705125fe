//! Maps keyed by values the server picks itself: connection ids (a counter) and room tokens
//! (from the OS CSPRNG). No client chooses these keys, so SipHash's defence against chosen
//! collisions buys nothing there, and its cost is paid on every delivery (about 4.5 % of the
//! server's CPU in the fan-out profile). Keys a client chooses (room names) keep SipHash.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply-rotate hasher (the rustc "Fx" scheme): one multiplication per 8 bytes.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl IdHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.mix(word);
    }

    fn write_usize(&mut self, word: usize) {
        self.mix(word as u64);
    }
}

/// A `HashMap` for server-chosen keys.
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A `HashSet` for server-chosen keys.
pub type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn hash(value: impl Hash) -> u64 {
        BuildHasherDefault::<IdHasher>::default().hash_one(value)
    }

    #[test]
    fn sequential_ids_spread_over_the_high_bits() {
        // hashbrown picks buckets from the low bits and tags from the top 7 bits.
        let tags: std::collections::HashSet<u64> = (1u64..=128).map(|id| hash(id) >> 57).collect();
        // Random hashes would give about 81 distinct tags of 128; a degenerate hash a handful.
        assert!(tags.len() > 40, "only {} distinct tags", tags.len());
        let buckets: std::collections::HashSet<u64> =
            (1u64..=1024).map(|id| hash(id) & 1023).collect();
        assert!(
            buckets.len() > 600,
            "only {} distinct buckets",
            buckets.len()
        );
    }

    #[test]
    fn every_byte_counts() {
        assert_ne!(hash([0u8; 10]), hash([0, 0, 0, 0, 0, 0, 0, 0, 0, 1u8]));
        let mut map = IdMap::default();
        map.insert(7u64, "seven");
        assert_eq!(map.get(&7), Some(&"seven"));
    }
}
