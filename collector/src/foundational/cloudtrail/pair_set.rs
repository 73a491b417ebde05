//! A set of 64-bit hashes in one flat table ([`FlatSet`]): the "seen before" caches the
//! CloudTrail detectors probe once per record ([`super::pair_hash`] of an instance and an
//! address, of a principal and an API). Here the hash is its own key and a lookup reads one slot
//! (and, at half load, rarely the next one or two): one cache line.
//!
//! The hash 0 is stored as 1: the two are one member (one chance in 2^63 per lookup of taking one
//! for the other, far below the collision odds the callers already accept for 64-bit hashes).
//!
//! The callers' hashes use a fixed seed (so they are the same in every run) and hash text an
//! attacker partly chooses (role-session names): where a member's probe starts is therefore
//! mixed again with a seed drawn per set, so nobody can line members up on one slot.

use foldhash::fast::RandomState;

use crate::flat_set::FlatSet;

#[derive(Debug, Default, Clone)]
pub struct PairSet {
    set: FlatSet<u64>,
    /// Mixes a member into its first slot (seeded per set).
    hasher: RandomState,
}

fn stored(hash: u64) -> u64 {
    hash.max(1)
}

impl PairSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Starts loading the slot where the lookup of `hash` begins into the cache (a hint: for a
    /// caller that knows the record's hash before it can use the answer).
    pub fn prefetch(&self, hash: u64) {
        self.set.prefetch(stored(hash), &self.hasher);
    }

    pub fn contains(&self, hash: u64) -> bool {
        self.set.contains(stored(hash), &self.hasher)
    }

    /// Adds `hash`; true if it was not there.
    pub fn insert(&mut self, hash: u64) -> bool {
        self.set.insert(stored(hash), &self.hasher)
    }

    /// Empties the set, keeping its table.
    pub fn clear(&mut self) {
        self.set.clear();
    }
}

impl FromIterator<u64> for PairSet {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> Self {
        let mut set = PairSet::new();
        for h in iter {
            set.insert(h);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flat_set::MIN_SLOTS;
    use std::collections::HashSet;

    /// Deterministic, well-spread test hashes (splitmix64).
    fn hashes(n: usize, seed: u64) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = x;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            })
            .collect()
    }

    #[test]
    fn agrees_with_a_hash_set_through_growth_and_clear() {
        let mut set = PairSet::new();
        let mut reference = HashSet::new();
        assert!(!set.contains(7), "an empty set holds nothing");
        let members = hashes(5_000, 1);
        for (i, &h) in members.iter().enumerate() {
            assert_eq!(set.insert(h), reference.insert(h));
            if i % 3 == 0 {
                assert!(!set.insert(h), "a second insert adds nothing");
            }
            assert_eq!(set.len(), reference.len());
        }
        for &h in &members {
            assert!(set.contains(h));
        }
        for h in hashes(5_000, 2) {
            assert_eq!(set.contains(h), reference.contains(&h), "{h:#x}");
        }
        assert!(set.set.slot_count() >= 2 * set.len(), "at most half full");
        set.clear();
        assert!(set.is_empty());
        assert!(members.iter().all(|&h| !set.contains(h)));
        assert!(set.insert(members[0]));
        assert!(set.contains(members[0]));
    }

    #[test]
    fn crowded_tables_and_zero_hold_members_like_any_other() {
        // Tables at their limit (half full), then grown from there.
        let crowd = hashes(512, 3);
        let mut set: PairSet = crowd[..8].iter().copied().collect();
        assert_eq!(set.set.slot_count(), MIN_SLOTS);
        assert!(crowd[..8].iter().all(|&h| set.contains(h)));
        assert!(crowd[8..].iter().all(|&h| !set.contains(h)));
        set.prefetch(crowd[0]);
        set.prefetch(crowd[9]);
        for &h in &crowd[8..] {
            set.insert(h);
        }
        assert!(crowd.iter().all(|&h| set.contains(h)));
        assert_eq!(set.set.slot_count(), 1024);
        assert!(!set.contains(0));
        assert!(set.insert(0));
        assert!(set.contains(0));
        assert!(set.contains(1), "0 is stored as 1");
        assert!(!set.insert(1));
        PairSet::new().prefetch(5);
    }
}
