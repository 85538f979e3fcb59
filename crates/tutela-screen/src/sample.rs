//! Seeded hashing for reproducible samples: an item is drawn when its hash is among the `k`
//! smallest, so the draw does not depend on reading order, threads or shards.

/// FNV-1a over the bytes, then the SplitMix64 finaliser (good spread, stable across builds
/// and platforms — unlike `std`'s hasher, which is randomly keyed).
pub fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// [`hash_bytes`] of a string.
pub fn hash_str(seed: u64, s: &str) -> u64 {
    hash_bytes(seed, s.as_bytes())
}

/// The rank of a document in the sample: its source and key under the seed.
pub fn key_hash(seed: u64, source: &str, key: &str) -> u64 {
    let h = hash_str(seed, source);
    hash_bytes(h, key.as_bytes())
}

/// SplitMix64's finaliser.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A small deterministic generator (SplitMix64) for examples and tests.
#[derive(Clone, Debug)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_seeded() {
        assert_eq!(key_hash(1, "a", "b"), key_hash(1, "a", "b"));
        assert_ne!(key_hash(1, "a", "b"), key_hash(2, "a", "b"));
        assert_ne!(key_hash(1, "ab", ""), key_hash(1, "a", "b"));
        let mut r = SplitMix(7);
        assert!((0..1000).all(|_| r.below(10) < 10));
    }
}
