//! Maps keyed by integers the pool makes itself (request ids, runtime ids). Nobody outside
//! chooses these keys, so SipHash's resistance to hash flooding buys nothing here, and it was
//! a visible cost on every call.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Multiplies by the 64-bit golden ratio: sequential ids spread over all bits.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0 ^ value).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A `HashMap` keyed by pool-made integers.
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_ids_are_spread_and_found() {
        let mut map: IdMap<u64, u64> = IdMap::default();
        for id in 1..=10_000 {
            map.insert(id, id * 2);
        }
        assert!((1..=10_000).all(|id| map[&id] == id * 2));
        let hash = |id: u64| {
            let mut hasher = IdHasher::default();
            hasher.write_u64(id);
            hasher.finish()
        };
        // Neighbours differ in their top bits, which the table uses as tags.
        assert_ne!(hash(1) >> 57, hash(2) >> 57);
    }
}
